//! What `grep` looks for, compiled into one synthetic remediation so that grep runs on the same
//! hot path as `scan`: the matcher's literal prefilter (literals from `FIELD=VALUE` and from the
//! pattern's required literals), then decoding of candidates only, then exact evaluation.

use std::path::PathBuf;

use jiff::SignedDuration;
use regex::Regex;

use crate::decode::Event;
use crate::rule::cond::{FieldRef, lookup};
use crate::rule::{
    Alert, Condition, FieldPath, Fix, FixStatus, Remediation, Scalar, Signature, Test,
};

/// Operators of `-w/--where`, longest first so that `>=` is not read as `>`.
const OPERATORS: &[&str] = &["!=", "!~", ">=", "<=", "=", "~", ">", "<"];

/// A field as named on grep's command line (`-w`, `--fields`, `--count-by`).
///
/// The syntax is the rules' (TOML keys): dots separate nested keys, and a part in double
/// quotes is one key, dots included. Logs also spell nested fields as flat dotted keys
/// (`{"log.level": …}`, logfmt's `log.level=…`), so an unquoted dotted name reads like the
/// configuration's `time_fields` do ([`crate::decode::field`]): the whole name as one flat key
/// first, then the path through nested objects. Quoting says exactly which one is meant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FieldName {
    /// `_line`: the event's text.
    Line,
    /// These keys through nested objects, exactly (an undotted name, or one with quotes).
    Path(Vec<String>),
    /// An unquoted dotted name: the flat key `flat` when the event has it, else `path`.
    Dotted { flat: String, path: Vec<String> },
}

impl FieldName {
    /// Parses a typed name; the error says what is wrong with it.
    pub fn parse(s: &str) -> Result<FieldName, String> {
        let s = s.trim();
        if s == "_line" {
            return Ok(FieldName::Line);
        }
        let mut parts = Vec::new();
        let mut quoted = false;
        let mut rest = s;
        loop {
            let part;
            if let Some(q) = rest.strip_prefix('"') {
                let Some(end) = q.find('"') else {
                    return Err(format!("unclosed quote in field name `{s}`"));
                };
                part = &q[..end];
                rest = &q[end + 1..];
                quoted = true;
            } else {
                let end = rest.find('.').unwrap_or(rest.len());
                part = &rest[..end];
                if part.contains('"') {
                    return Err(format!(
                        "misplaced quote in field name `{s}`: quote whole keys, as in \
                         `\"log.level\"` or `kubernetes.\"app.kubernetes.io/name\"`"
                    ));
                }
                if part.is_empty() {
                    return Err(format!("empty key in field name `{s}`"));
                }
                rest = &rest[end..];
            }
            parts.push(part.to_string());
            if rest.is_empty() {
                break;
            }
            match rest.strip_prefix('.') {
                Some(r) if !r.is_empty() => rest = r,
                _ => {
                    return Err(format!(
                        "field name `{s}`: a key must follow each `.` (and a quoted key ends \
                         the name or is followed by `.`)"
                    ));
                }
            }
        }
        Ok(if parts.len() > 1 && !quoted {
            FieldName::Dotted {
                flat: parts.join("."),
                path: parts,
            }
        } else {
            FieldName::Path(parts)
        })
    }

    /// The value of this field in `event`, with the flat-then-nested reading of dotted names.
    pub fn lookup<'a>(&self, event: &'a Event) -> Option<FieldRef<'a>> {
        match self {
            FieldName::Line => lookup(event, &FieldPath::Line),
            FieldName::Path(p) => event.get(p).map(FieldRef::Json),
            // Unquoted parts hold no dots, so `flat` read as a path is `path`.
            FieldName::Dotted { flat, .. } => event
                .fields
                .as_object()
                .and_then(|m| crate::decode::field(m, flat))
                .map(FieldRef::Json),
        }
    }

    /// What a test on this field means as rule conditions: alternatives, each a conjunction.
    /// A dotted name becomes "the flat key exists and passes" or "the flat key is absent and
    /// the nested path passes", so that negated tests (`!=`, `!~`) keep the flat-first reading.
    fn conditions(&self, test: Test) -> Vec<Vec<Condition>> {
        let cond = |path: FieldPath, test: Test| Condition { path, test };
        match self {
            FieldName::Line => vec![vec![cond(FieldPath::Line, test)]],
            FieldName::Path(p) => vec![vec![cond(FieldPath::Field(p.clone()), test)]],
            FieldName::Dotted { flat, path } => {
                let flat = FieldPath::Field(vec![flat.clone()]);
                vec![
                    vec![
                        cond(flat.clone(), Test::Exists(true)),
                        cond(flat.clone(), test.clone()),
                    ],
                    vec![
                        cond(flat, Test::Exists(false)),
                        cond(FieldPath::Field(path.clone()), test),
                    ],
                ]
            }
        }
    }
}

/// One `-w/--where` filter, as rule conditions: the event passes when any alternative (a
/// conjunction of conditions) holds.
#[derive(Debug, Clone)]
pub struct Filter {
    pub alternatives: Vec<Vec<Condition>>,
}

/// The most signatures the filters may expand to (each dotted name doubles them).
const MAX_SIGNATURES: usize = 256;

/// Parses one `-w/--where` filter: `FIELD=VALUE`, `FIELD!=VALUE`, `FIELD~REGEX`,
/// `FIELD!~REGEX`, `FIELD>N`, `FIELD>=N`, `FIELD<N`, `FIELD<=N` or `FIELD?` (present).
///
/// The first operator outside quotes splits it, so a value may itself contain `=` or `~`,
/// and a quoted key may contain operators.
pub fn parse_filter(s: &str) -> Result<Filter, String> {
    let mut in_quote = false;
    let found = s.char_indices().find_map(|(i, c)| {
        if c == '"' {
            in_quote = !in_quote;
            return None;
        }
        if in_quote {
            return None;
        }
        OPERATORS
            .iter()
            .find(|op| s[i..].starts_with(**op))
            .map(|op| (i, *op))
    });
    let Some((at, op)) = found else {
        if s.matches('"').count() % 2 == 1 {
            return Err(format!("`{s}`: unclosed quote in field name"));
        }
        if let Some(field) = s.strip_suffix('?') {
            return Ok(Filter {
                alternatives: field_name(field, s)?.conditions(Test::Exists(true)),
            });
        }
        return Err(format!(
            "`{s}` has no operator: write FIELD=VALUE, FIELD!=VALUE, FIELD~REGEX, FIELD!~REGEX, \
             FIELD>N, FIELD>=N, FIELD<N, FIELD<=N or FIELD?"
        ));
    };
    let name = field_name(&s[..at], s)?;
    let value = &s[at + op.len()..];
    let number = || {
        value
            .trim()
            .parse::<f64>()
            .ok()
            .filter(|n| n.is_finite())
            .ok_or_else(|| format!("`{value}` in `{s}` is not a number (`{op}` compares numbers)"))
    };
    let regex = || Regex::new(value).map_err(|e| format!("invalid regex `{value}` in `{s}`: {e}"));
    let test = match op {
        "=" => equality(value),
        "!=" => Test::Not(Box::new(equality(value))),
        "~" => Test::Regex(regex()?.into()),
        "!~" => Test::Not(Box::new(Test::Regex(regex()?.into()))),
        ">" => Test::Gt(number()?),
        ">=" => Test::Ge(number()?),
        "<" => Test::Lt(number()?),
        "<=" => Test::Le(number()?),
        _ => unreachable!("operator list"),
    };
    Ok(Filter {
        alternatives: name.conditions(test),
    })
}

fn field_name(field: &str, whole: &str) -> Result<FieldName, String> {
    if field.trim().is_empty() {
        return Err(format!(
            "`{whole}` names no field (write e.g. error_code=NO_TOKEN)"
        ));
    }
    FieldName::parse(field).map_err(|e| format!("`{whole}`: {e}"))
}

/// The equality a typed command-line value means, with the rules' semantics: `true`/`false`
/// are booleans (matching the strings too), `null` is null (or the string), anything else is a
/// string, which in rule semantics also matches a number it spells (`status=500` holds for
/// `500` and `"500"`) while `user=007` still needs the string `"007"` or the number 7.
fn equality(value: &str) -> Test {
    match value {
        "true" => Test::Eq(Scalar::Bool(true)),
        "false" => Test::Eq(Scalar::Bool(false)),
        "null" => Test::AnyOf(vec![Scalar::Null, Scalar::Str("null".into())]),
        _ => Test::Eq(Scalar::Str(value.to_string())),
    }
}

/// Builds the pattern regex from `PATTERN`/`-e` values: several patterns are alternatives (an
/// event matches when any does). Flags are written inline (`(?i)`) because the prefilter reads
/// literals from the pattern's text: a flag set on the builder would be invisible to it and
/// the prefilter would then miss case variants.
pub fn pattern_regex(
    patterns: &[String],
    ignore_case: bool,
    fixed: bool,
) -> Result<Option<Regex>, String> {
    if patterns.is_empty() {
        return Ok(None);
    }
    let parts: Vec<String> = patterns
        .iter()
        .map(|p| if fixed { regex::escape(p) } else { p.clone() })
        .collect();
    let body = if parts.len() == 1 {
        parts[0].clone()
    } else {
        parts
            .iter()
            .map(|p| format!("(?:{p})"))
            .collect::<Vec<_>>()
            .join("|")
    };
    let text = if ignore_case {
        format!("(?i){body}")
    } else {
        body
    };
    // Validate each pattern alone first, so the error names the one that is wrong.
    if !fixed {
        for p in patterns {
            Regex::new(p).map_err(|e| format!("invalid pattern `{p}`: {e}"))?;
        }
    }
    Regex::new(&text)
        .map(Some)
        .map_err(|e| format!("invalid pattern: {e}"))
}

/// The synthetic remediation: each signature is the rule's scope and one of its signatures
/// (when `--rule` is given), plus one alternative of every `--where` filter, plus the pattern
/// on `_line`. The scope stays empty and the fix open, so the matcher reports occurrences
/// only and never spends time on coverage.
pub fn synthetic_rule(
    filters: &[Filter],
    pattern: Option<&Regex>,
    rule: Option<&Remediation>,
) -> Result<Remediation, String> {
    // Every combination of the filters' alternatives (one for most filters, two per dotted
    // name).
    let mut common: Vec<Vec<Condition>> = vec![Vec::new()];
    for f in filters {
        common = common
            .iter()
            .flat_map(|done| {
                f.alternatives.iter().map(move |alt| {
                    let mut c = done.clone();
                    c.extend(alt.iter().cloned());
                    c
                })
            })
            .collect();
    }
    if let Some(re) = pattern {
        for c in &mut common {
            c.push(Condition {
                path: FieldPath::Line,
                test: Test::Regex(re.clone().into()),
            });
        }
    }
    let signatures: Vec<Signature> = match rule {
        None => common
            .into_iter()
            .map(|conditions| Signature { conditions })
            .collect(),
        Some(r) => r
            .signatures
            .iter()
            .flat_map(|s| {
                common.iter().map(move |c| Signature {
                    conditions: r
                        .scope
                        .iter()
                        .chain(&s.conditions)
                        .chain(c)
                        .cloned()
                        .collect(),
                })
            })
            .collect(),
    };
    if signatures.len() > MAX_SIGNATURES {
        return Err(format!(
            "too many dotted field names to try both ways ({} combinations): quote the ones \
             that are flat keys (`'\"log.level\"=info'`) or write nested ones as they are nested",
            signatures.len()
        ));
    }
    Ok(Remediation {
        id: "grep".into(),
        title: "recur grep".into(),
        severity: crate::rule::Severity::Info,
        owner: String::new(),
        analysis: String::new(),
        action: String::new(),
        fix: Fix {
            status: FixStatus::Open,
            fixed_at: None,
            deadline: None,
            verify: SignedDuration::ZERO,
        },
        scope: Vec::new(),
        signatures,
        alert: Alert::default(),
        examples: Vec::new(),
        path: PathBuf::new(),
    })
}

/// The field names to colour in printed lines: the last key of every field path tested.
pub fn field_names(rule: &Remediation) -> Vec<String> {
    let mut names: Vec<String> = rule
        .signatures
        .iter()
        .flat_map(|s| &s.conditions)
        .filter_map(|c| match &c.path {
            FieldPath::Field(p) => p.last().cloned(),
            FieldPath::Line => None,
        })
        .collect();
    names.sort();
    names.dedup();
    names
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::Format;
    use serde_json::json;

    fn event(v: serde_json::Value) -> Event {
        Event {
            text: v.to_string(),
            fields: v,
            time: None,
            id: None,
            format: Format::Json,
            projected: false,
        }
    }

    fn holds(filter: &str, v: serde_json::Value) -> bool {
        let f = parse_filter(filter).unwrap();
        let e = event(v);
        f.alternatives
            .iter()
            .any(|alt| alt.iter().all(|c| c.eval(&e)))
    }

    #[test]
    fn operators() {
        let v = json!({"code": "NO_TOKEN", "status": 500, "s": "503", "ok": false,
                       "auth": {"present": false}, "lat": 12.5, "msg": "a=b"});
        assert!(holds("code=NO_TOKEN", v.clone()));
        assert!(!holds("code=NO_TOKEN_SCOPE", v.clone()));
        assert!(holds("code!=OK", v.clone()));
        assert!(holds("missing!=OK", v.clone()), "!= holds when absent");
        assert!(holds("status=500", v.clone()));
        assert!(holds("s=503", v.clone()));
        assert!(holds("auth.present=false", v.clone()));
        assert!(holds("ok=false", v.clone()));
        assert!(holds("code~^NO_", v.clone()));
        assert!(holds("code!~SCOPE$", v.clone()));
        assert!(holds("lat>12", v.clone()));
        assert!(holds("lat>=12.5", v.clone()));
        assert!(!holds("lat<12.5", v.clone()));
        assert!(holds("lat<=12.5", v.clone()));
        assert!(
            holds("s>500", v.clone()),
            "numeric strings compare as numbers"
        );
        assert!(holds("auth.present?", v.clone()));
        assert!(!holds("auth.absent?", v.clone()));
        assert!(holds("msg=a=b", v.clone()), "first operator splits");
    }

    #[test]
    fn bad_filters_are_explained() {
        assert!(parse_filter("code").unwrap_err().contains("no operator"));
        assert!(parse_filter("=x").unwrap_err().contains("names no field"));
        assert!(
            parse_filter("lat>abc")
                .unwrap_err()
                .contains("not a number")
        );
        assert!(parse_filter("m~(").unwrap_err().contains("invalid regex"));
    }

    #[test]
    fn field_names_quote_like_rule_keys() {
        let path = |p: &[&str]| FieldName::Path(p.iter().map(|s| s.to_string()).collect());
        assert_eq!(FieldName::parse("_line").unwrap(), FieldName::Line);
        assert_eq!(FieldName::parse("code").unwrap(), path(&["code"]));
        assert_eq!(
            FieldName::parse("log.level").unwrap(),
            FieldName::Dotted {
                flat: "log.level".into(),
                path: vec!["log".into(), "level".into()]
            }
        );
        assert_eq!(
            FieldName::parse(r#""log.level""#).unwrap(),
            path(&["log.level"])
        );
        assert_eq!(
            FieldName::parse(r#"k8s."app.kubernetes.io/name".x"#).unwrap(),
            path(&["k8s", "app.kubernetes.io/name", "x"])
        );
        for bad in [r#""open"#, r#"a"b""#, "a..b", "a.", ".a", r#""a"b"#] {
            assert!(FieldName::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn dotted_names_read_the_flat_key_first() {
        let both = event(json!({"log.level": "error", "log": {"level": "info"}}));
        let nested = event(json!({"log": {"level": "info"}}));
        let dotted = FieldName::parse("log.level").unwrap();
        let value = |f: &FieldName, e: &Event| match f.lookup(e) {
            Some(FieldRef::Json(v)) => v.clone(),
            other => panic!("{other:?}"),
        };
        assert_eq!(value(&dotted, &both), json!("error"));
        assert_eq!(value(&dotted, &nested), json!("info"));
        assert!(
            FieldName::parse(r#""log.level""#)
                .unwrap()
                .lookup(&nested)
                .is_none()
        );
        // The same reading through filters, negations included.
        assert!(holds("log.level=error", both.fields.clone()));
        assert!(!holds("log.level=info", both.fields.clone()));
        assert!(holds("log.level!=info", both.fields.clone()));
        assert!(!holds("log.level!=info", nested.fields.clone()));
        assert!(holds(r#""log.level"!=info"#, nested.fields.clone()));
        assert!(
            holds(r#""a=b"=c"#, json!({"a=b": "c"})),
            "operators inside quotes"
        );
    }

    #[test]
    fn patterns_are_alternatives_with_inline_flags() {
        let re = pattern_regex(&["a.c".into(), "x+y".into()], true, true)
            .unwrap()
            .unwrap();
        assert_eq!(re.as_str(), r"(?i)(?:a\.c)|(?:x\+y)");
        assert!(re.is_match("X+Y"));
        assert!(!re.is_match("abc"));
        assert!(pattern_regex(&["(".into()], false, false).is_err());
    }
}
