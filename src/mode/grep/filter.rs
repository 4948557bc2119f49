//! What `grep` looks for, compiled into one synthetic remediation so that grep runs on the same
//! hot path as `scan`: the matcher's literal prefilter (literals from `FIELD=VALUE` and from the
//! pattern's required literals), then decoding of candidates only, then exact evaluation.

use std::path::PathBuf;

use jiff::SignedDuration;
use regex::Regex;

use crate::rule::{
    Alert, Condition, FieldPath, Fix, FixStatus, Remediation, Scalar, Signature, Test,
};

/// Operators of `-w/--where`, longest first so that `>=` is not read as `>`.
const OPERATORS: &[&str] = &["!=", "!~", ">=", "<=", "=", "~", ">", "<"];

/// Parses one `-w/--where` filter: `FIELD=VALUE`, `FIELD!=VALUE`, `FIELD~REGEX`,
/// `FIELD!~REGEX`, `FIELD>N`, `FIELD>=N`, `FIELD<N`, `FIELD<=N` or `FIELD?` (present).
///
/// The first operator in the text splits it, so a value may itself contain `=` or `~`.
pub fn parse_filter(s: &str) -> Result<Condition, String> {
    let found = s.char_indices().find_map(|(i, _)| {
        OPERATORS
            .iter()
            .find(|op| s[i..].starts_with(**op))
            .map(|op| (i, *op))
    });
    let Some((at, op)) = found else {
        if let Some(field) = s.strip_suffix('?') {
            return Ok(Condition {
                path: field_path(field, s)?,
                test: Test::Exists(true),
            });
        }
        return Err(format!(
            "`{s}` has no operator: write FIELD=VALUE, FIELD!=VALUE, FIELD~REGEX, FIELD!~REGEX, \
             FIELD>N, FIELD>=N, FIELD<N, FIELD<=N or FIELD?"
        ));
    };
    let path = field_path(&s[..at], s)?;
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
        "~" => Test::Regex(regex()?),
        "!~" => Test::Not(Box::new(Test::Regex(regex()?))),
        ">" => Test::Gt(number()?),
        ">=" => Test::Ge(number()?),
        "<" => Test::Lt(number()?),
        "<=" => Test::Le(number()?),
        _ => unreachable!("operator list"),
    };
    Ok(Condition { path, test })
}

fn field_path(field: &str, whole: &str) -> Result<FieldPath, String> {
    let field = field.trim();
    if field.is_empty() || field.split('.').any(str::is_empty) {
        return Err(format!(
            "`{whole}` names no field (write e.g. error_code=NO_TOKEN)"
        ));
    }
    Ok(FieldPath::parse_dotted(field))
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
/// (when `--rule` is given), plus the `--where` filters, plus the pattern on `_line`. The
/// scope stays empty and the fix open, so the matcher reports occurrences only and never
/// spends time on coverage.
pub fn synthetic_rule(
    filters: &[Condition],
    pattern: Option<&Regex>,
    rule: Option<&Remediation>,
) -> Remediation {
    let mut common: Vec<Condition> = filters.to_vec();
    if let Some(re) = pattern {
        common.push(Condition {
            path: FieldPath::Line,
            test: Test::Regex(re.clone()),
        });
    }
    let signatures = match rule {
        None => vec![Signature { conditions: common }],
        Some(r) => r
            .signatures
            .iter()
            .map(|s| Signature {
                conditions: r
                    .scope
                    .iter()
                    .chain(&s.conditions)
                    .chain(&common)
                    .cloned()
                    .collect(),
            })
            .collect(),
    };
    Remediation {
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
    }
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
    use crate::decode::{Event, Format};
    use serde_json::json;

    fn holds(filter: &str, v: serde_json::Value) -> bool {
        let c = parse_filter(filter).unwrap();
        let e = Event {
            text: v.to_string(),
            fields: v,
            time: None,
            id: None,
            format: Format::Json,
        };
        c.eval(&e)
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
