//! Exact evaluation of conditions against a decoded event.
//!
//! This is the final word on a match: the prefilter in [`crate::matcher`] only decides which
//! records are worth decoding. Semantics, in one place:
//! - equality is type-aware but forgiving where text formats lose types: a number condition
//!   matches a numeric string (`status=500` in logfmt), a string condition matches a number
//!   whose value it spells, a boolean matches `"true"`/`"false"`;
//! - string operators (`regex`, `contains`, `prefix`, `suffix`) see strings, and numbers and
//!   booleans as their JSON text; objects never match them;
//! - a field holding an array matches when any element does;
//! - an absent field fails every test except `exists = false` and `not`.

use serde_json::Value;

use super::{Condition, FieldPath, Remediation, Scalar, Signature, Test};
use crate::decode::Event;

/// A field as seen by a test.
#[derive(Debug, Clone, Copy)]
pub enum FieldRef<'a> {
    Json(&'a Value),
    Text(&'a str),
}

/// Reads `path` from `event`.
pub fn lookup<'a>(event: &'a Event, path: &FieldPath) -> Option<FieldRef<'a>> {
    match path {
        FieldPath::Line => Some(FieldRef::Text(&event.text)),
        FieldPath::Field(p) => event.get(p).map(FieldRef::Json),
    }
}

fn as_text(v: &Value) -> Option<std::borrow::Cow<'_, str>> {
    match v {
        Value::String(s) => Some(std::borrow::Cow::Borrowed(s)),
        Value::Number(n) => Some(std::borrow::Cow::Owned(n.to_string())),
        Value::Bool(b) => Some(std::borrow::Cow::Borrowed(if *b {
            "true"
        } else {
            "false"
        })),
        _ => None,
    }
}

fn as_number(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse::<f64>().ok().filter(|f| f.is_finite()),
        _ => None,
    }
}

fn scalar_eq(s: &Scalar, v: &Value) -> bool {
    match (s, v) {
        (Scalar::Str(a), Value::String(b)) => a == b,
        (Scalar::Str(a), Value::Number(n)) => a
            .trim()
            .parse::<f64>()
            .ok()
            .is_some_and(|x| Some(x) == n.as_f64()),
        (Scalar::Num(a), v) => as_number(v) == Some(*a),
        (Scalar::Bool(a), Value::Bool(b)) => a == b,
        (Scalar::Bool(a), Value::String(b)) => b == if *a { "true" } else { "false" },
        (Scalar::Null, Value::Null) => true,
        _ => false,
    }
}

fn text_scalar_eq(s: &Scalar, t: &str) -> bool {
    match s {
        Scalar::Str(a) => a == t,
        Scalar::Num(a) => t.trim().parse::<f64>().ok() == Some(*a),
        Scalar::Bool(a) => t == if *a { "true" } else { "false" },
        Scalar::Null => false,
    }
}

impl Test {
    /// Evaluates the test on a field (`None` when absent).
    pub fn eval(&self, field: Option<FieldRef<'_>>) -> bool {
        match self {
            Test::Exists(want) => field.is_some() == *want,
            Test::Not(inner) => !inner.eval(field),
            _ => match field {
                None => false,
                Some(FieldRef::Text(t)) => self.eval_text(t),
                Some(FieldRef::Json(Value::Array(items))) => {
                    items.iter().any(|v| self.eval_value(v))
                }
                Some(FieldRef::Json(v)) => self.eval_value(v),
            },
        }
    }

    fn eval_value(&self, v: &Value) -> bool {
        match self {
            Test::Eq(s) => scalar_eq(s, v),
            Test::AnyOf(list) => list.iter().any(|s| scalar_eq(s, v)),
            Test::Gt(n) => as_number(v).is_some_and(|x| x > *n),
            Test::Ge(n) => as_number(v).is_some_and(|x| x >= *n),
            Test::Lt(n) => as_number(v).is_some_and(|x| x < *n),
            Test::Le(n) => as_number(v).is_some_and(|x| x <= *n),
            Test::Exists(_) | Test::Not(_) => self.eval(Some(FieldRef::Json(v))),
            _ => as_text(v).is_some_and(|t| self.eval_text(&t)),
        }
    }

    fn eval_text(&self, t: &str) -> bool {
        match self {
            Test::Eq(s) => text_scalar_eq(s, t),
            Test::AnyOf(list) => list.iter().any(|s| text_scalar_eq(s, t)),
            Test::Regex(re) => re.is_match(t),
            Test::Contains(s) => t.contains(s.as_str()),
            Test::Prefix(s) => t.starts_with(s.as_str()),
            Test::Suffix(s) => t.ends_with(s.as_str()),
            Test::Gt(n) => t.trim().parse::<f64>().is_ok_and(|x| x > *n),
            Test::Ge(n) => t.trim().parse::<f64>().is_ok_and(|x| x >= *n),
            Test::Lt(n) => t.trim().parse::<f64>().is_ok_and(|x| x < *n),
            Test::Le(n) => t.trim().parse::<f64>().is_ok_and(|x| x <= *n),
            Test::Exists(_) | Test::Not(_) => self.eval(Some(FieldRef::Text(t))),
        }
    }
}

impl std::fmt::Display for Test {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Test::Eq(s) => write!(f, "= {s}"),
            Test::AnyOf(list) => {
                f.write_str("in [")?;
                for (i, s) in list.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{s}")?;
                }
                f.write_str("]")
            }
            Test::Regex(re) => write!(f, "~ /{}/", re.as_str()),
            Test::Contains(s) => write!(f, "contains {s:?}"),
            Test::Prefix(s) => write!(f, "starts with {s:?}"),
            Test::Suffix(s) => write!(f, "ends with {s:?}"),
            Test::Exists(true) => f.write_str("exists"),
            Test::Exists(false) => f.write_str("is absent"),
            Test::Not(inner) => write!(f, "not ({inner})"),
            Test::Gt(n) => write!(f, "> {n}"),
            Test::Ge(n) => write!(f, ">= {n}"),
            Test::Lt(n) => write!(f, "< {n}"),
            Test::Le(n) => write!(f, "<= {n}"),
        }
    }
}

impl std::fmt::Display for Condition {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.path, self.test)
    }
}

impl Condition {
    pub fn eval(&self, event: &Event) -> bool {
        self.test.eval(lookup(event, &self.path))
    }
}

impl Signature {
    pub fn eval(&self, event: &Event) -> bool {
        self.conditions.iter().all(|c| c.eval(event))
    }
}

/// Whether every scope condition holds (the event is in coverage).
pub fn in_scope(rem: &Remediation, event: &Event) -> bool {
    rem.scope.iter().all(|c| c.eval(event))
}

/// The index of the first signature that matches an in-scope event, if any.
pub fn first_match(rem: &Remediation, event: &Event) -> Option<usize> {
    if !in_scope(rem, event) {
        return None;
    }
    rem.signatures.iter().position(|s| s.eval(event))
}

/// One condition's result, for `recur test` explanations.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct CheckedCondition {
    /// `scope` or `signature N` (1-based).
    pub group: String,
    pub condition: String,
    pub held: bool,
    /// The field's value as found in the event (JSON text), `None` when absent.
    pub actual: Option<String>,
}

/// Full evaluation with the reason, for `recur test` and `grep --rule --explain`.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Outcome {
    pub matched: bool,
    pub signature: Option<usize>,
    pub checks: Vec<CheckedCondition>,
}

/// Evaluates every condition (no short-circuit) and records which held.
pub fn explain(rem: &Remediation, event: &Event) -> Outcome {
    let mut checks = Vec::new();
    let mut check = |group: String, c: &Condition| {
        let field = lookup(event, &c.path);
        let held = c.test.eval(field);
        let actual = field.map(|f| match f {
            FieldRef::Text(t) => format!("{t:?}"),
            FieldRef::Json(v) => v.to_string(),
        });
        checks.push(CheckedCondition {
            group,
            condition: c.to_string(),
            held,
            actual,
        });
        held
    };
    // Every condition is checked (no short-circuit) so the explanation lists them all.
    let scope_ok = rem
        .scope
        .iter()
        .map(|c| check("scope".into(), c))
        .filter(|held| !held)
        .count()
        == 0;
    let mut signature = None;
    for (i, sig) in rem.signatures.iter().enumerate() {
        let ok = sig
            .conditions
            .iter()
            .map(|c| check(format!("signature {}", i + 1), c))
            .filter(|held| !held)
            .count()
            == 0;
        if ok && signature.is_none() {
            signature = Some(i);
        }
    }
    Outcome {
        matched: scope_ok && signature.is_some(),
        signature: if scope_ok { signature } else { None },
        checks,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::Format;
    use serde_json::json;

    fn ev(v: Value) -> Event {
        Event {
            text: v.to_string(),
            fields: v,
            time: None,
            id: None,
            format: Format::Json,
            projected: false,
        }
    }

    fn c(path: &str, test: Test) -> Condition {
        Condition {
            path: FieldPath::parse_dotted(path),
            test,
        }
    }

    #[test]
    fn equality_is_forgiving_across_text_formats() {
        let e = ev(json!({"status": "500", "code": 404, "ok": "true", "n": null}));
        assert!(c("status", Test::Eq(Scalar::Num(500.0))).eval(&e));
        assert!(c("code", Test::Eq(Scalar::Str("404".into()))).eval(&e));
        assert!(c("ok", Test::Eq(Scalar::Bool(true))).eval(&e));
        assert!(c("n", Test::Eq(Scalar::Null)).eval(&e));
        assert!(!c("missing", Test::Eq(Scalar::Null)).eval(&e));
        assert!(!c("code", Test::Eq(Scalar::Str("40".into()))).eval(&e));
    }

    #[test]
    fn operators() {
        let e = ev(
            json!({"msg": "No JWT in headers", "lat": 12.5, "tags": ["a", "b"],
                          "auth": {"present": false}}),
        );
        assert!(
            c(
                "msg",
                Test::Regex(regex::Regex::new("^No JWT").unwrap().into())
            )
            .eval(&e)
        );
        assert!(c("msg", Test::Contains("JWT".into())).eval(&e));
        assert!(c("msg", Test::Prefix("No".into())).eval(&e));
        assert!(c("msg", Test::Suffix("headers".into())).eval(&e));
        assert!(c("lat", Test::Gt(12.0)).eval(&e));
        assert!(c("lat", Test::Le(12.5)).eval(&e));
        assert!(!c("lat", Test::Lt(12.5)).eval(&e));
        assert!(c("tags", Test::Eq(Scalar::Str("b".into()))).eval(&e));
        assert!(c("auth.present", Test::Eq(Scalar::Bool(false))).eval(&e));
        assert!(c("auth.present", Test::Exists(true)).eval(&e));
        assert!(c("auth.absent", Test::Exists(false)).eval(&e));
        assert!(
            c(
                "missing",
                Test::Not(Box::new(Test::Eq(Scalar::Str("x".into()))))
            )
            .eval(&e)
        );
        assert!(!c("msg", Test::Not(Box::new(Test::Contains("JWT".into())))).eval(&e));
        assert!(c("_line", Test::Contains("\"lat\":12.5".into())).eval(&e));
        assert!(!c("auth", Test::Contains("present".into())).eval(&e));
    }
}
