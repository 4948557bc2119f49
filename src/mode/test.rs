//! `recur test`: runs every rule's `[[example]]` lines through the real decoder and matcher.
//!
//! Each example is decoded exactly as a log line would be (same `[input]` settings) and
//! evaluated with [`cond::explain`], so a failure shows which condition did or did not hold
//! and what the field actually contained. Exit codes: 0 every example passed, 1 an example
//! failed or a rule file is invalid, 2 the rules directory or config cannot be used.

use std::io::Write;
use std::path::Path;

use super::check::{plural, read_config, read_rules};
use crate::decode::{DecodeError, Event, RecordMeta};
use crate::diag::render;
use crate::rule::cond::{self, CheckedCondition};
use crate::rule::{Example, Remediation};

/// Longest `actual` value shown in an explanation; raw lines can be kilobytes long.
const MAX_ACTUAL_CHARS: usize = 120;

/// Runs `recur test`; per-example results and the summary go to `out`, rule and config
/// diagnostics to `err`.
pub fn run(
    rules_dir: &Path,
    config_path: Option<&Path>,
    color: bool,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> anyhow::Result<i32> {
    let rules = match read_rules(rules_dir) {
        Ok(r) => r,
        Err(msg) => {
            writeln!(err, "error: {msg}")?;
            return Ok(2);
        }
    };
    let cfg = match read_config(config_path) {
        Ok(c) => c,
        Err(msg) => {
            writeln!(err, "error: {msg}")?;
            return Ok(2);
        }
    };
    if !cfg.diagnostics.is_empty() {
        // Examples must be decoded with the configured input settings; testing with other
        // settings could pass lines that production decodes differently.
        let sources: Vec<_> = cfg.source.iter().cloned().collect();
        write!(err, "{}", render(&cfg.diagnostics, &sources, color))?;
        writeln!(
            err,
            "error: the configuration is invalid; no example was run"
        )?;
        return Ok(2);
    }
    if !rules.is_valid() {
        write!(err, "{}", rules.render(color))?;
    }

    let decode_config = cfg.config.decode_config();
    let (mut passed, mut failed, mut without) = (0usize, 0usize, 0usize);
    for rem in &rules.remediations {
        if rem.examples.is_empty() {
            without += 1;
            continue;
        }
        for (i, ex) in rem.examples.iter().enumerate() {
            let decoded =
                crate::decode::decode(ex.line.as_bytes(), &RecordMeta::default(), &decode_config);
            let report = check_example(rem, i, ex, decoded.as_ref());
            write!(out, "{}", report.render(color))?;
            if report.passed {
                passed += 1;
            } else {
                failed += 1;
            }
        }
    }

    let mut summary = format!(
        "{}: {passed} passed, {failed} failed",
        plural(passed + failed, "example")
    );
    if without > 0 {
        summary.push_str(&format!("; {} without examples", plural(without, "rule")));
    }
    let invalid = rules.files_with_errors();
    if invalid > 0 {
        summary.push_str(&format!(
            "; {} invalid (not tested)",
            plural(invalid, "rule file")
        ));
    }
    writeln!(out, "{summary}")?;
    Ok(if failed > 0 || invalid > 0 { 1 } else { 0 })
}

/// The result of one example: the verdict line and, on failure, the explanation.
#[derive(Debug, Clone, PartialEq)]
pub struct ExampleReport {
    pub passed: bool,
    /// `PASS ID example N (path:line)` or `FAIL …: reason`, without colour.
    pub headline: String,
    /// Indented explanation lines (conditions with their results).
    pub details: Vec<String>,
}

impl ExampleReport {
    /// The report as printed: the headline (PASS/FAIL coloured when `color`), then details.
    pub fn render(&self, color: bool) -> String {
        let mut s = if color {
            let (word, rest) = self.headline.split_at(4);
            let code = if self.passed { "32" } else { "1;31" };
            format!("\x1b[{code}m{word}\x1b[0m{rest}\n")
        } else {
            format!("{}\n", self.headline)
        };
        for d in &self.details {
            s.push_str("    ");
            s.push_str(d);
            s.push('\n');
        }
        s
    }
}

/// Judges example `index` (0-based) of `rem` given its decoded line.
///
/// Split from [`run`] so that the verdict and its explanation can be tested on events built
/// by hand.
pub fn check_example(
    rem: &Remediation,
    index: usize,
    example: &Example,
    decoded: Result<&Event, &DecodeError>,
) -> ExampleReport {
    let name = format!(
        "{} example {} ({}:{})",
        rem.id,
        index + 1,
        rem.path.display(),
        example.source_line
    );
    let event = match decoded {
        Ok(e) => e,
        Err(e) => {
            return ExampleReport {
                passed: false,
                headline: format!("FAIL {name}: the line could not be decoded: {e}"),
                details: Vec::new(),
            };
        }
    };
    let outcome = cond::explain(rem, event);
    match (
        example.expect_match,
        outcome.signature.filter(|_| outcome.matched),
    ) {
        (true, Some(_)) | (false, None) => ExampleReport {
            passed: true,
            headline: format!("PASS {name}"),
            details: Vec::new(),
        },
        (true, None) => ExampleReport {
            passed: false,
            headline: format!("FAIL {name}: expected a match, got none"),
            details: outcome
                .checks
                .iter()
                .filter(|c| !c.held)
                .map(describe)
                .collect(),
        },
        (false, Some(sig)) => {
            let group = format!("signature {}", sig + 1);
            ExampleReport {
                passed: false,
                headline: format!("FAIL {name}: expected no match, got {group}"),
                details: outcome
                    .checks
                    .iter()
                    .filter(|c| c.group == "scope" || c.group == group)
                    .map(describe)
                    .collect(),
            }
        }
    }
}

/// `signature 1: error_code = "NO_TOKEN" — did not hold (actual "NO_TOKENS")`.
fn describe(c: &CheckedCondition) -> String {
    let verdict = if c.held { "held" } else { "did not hold" };
    let actual = match &c.actual {
        None => "field absent".to_string(),
        Some(a) => format!("actual {}", truncate(a, MAX_ACTUAL_CHARS)),
    };
    format!("{}: {} — {verdict} ({actual})", c.group, c.condition)
}

fn truncate(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        None => s.to_string(),
        Some((i, _)) => format!("{}…", &s[..i]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::Format;
    use crate::rule::parse_rule_file;
    use serde_json::json;

    const RULE: &str = r#"id = "WS_001"
title = "t"
owner = "o"
analysis = "a"
[fix]
status = "open"
[scope]
environment = "staging"
[[signature]]
error_code = "NO_TOKEN"
message = { regex = 'No JWT' }
[[signature]]
_line = { contains = "legacy" }
[[example]]
line = 'x'
"#;

    fn rem() -> Remediation {
        parse_rule_file(Path::new("rules/ws.toml"), RULE).unwrap()
    }

    fn ev(v: serde_json::Value) -> Event {
        Event {
            text: v.to_string(),
            fields: v,
            time: None,
            id: None,
            format: Format::Json,
            projected: false,
        }
    }

    fn example(expect_match: bool) -> Example {
        Example {
            line: String::new(),
            expect_match,
            source_line: 14,
        }
    }

    #[test]
    fn pass_lines() {
        let rem = rem();
        let e = ev(
            json!({"environment": "staging", "error_code": "NO_TOKEN", "message": "No JWT here"}),
        );
        let r = check_example(&rem, 0, &example(true), Ok(&e));
        assert!(r.passed);
        assert_eq!(
            r.render(false),
            "PASS WS_001 example 1 (rules/ws.toml:14)\n"
        );
        assert_eq!(
            r.render(true),
            "\x1b[32mPASS\x1b[0m WS_001 example 1 (rules/ws.toml:14)\n"
        );

        let e = ev(json!({"environment": "prod", "error_code": "NO_TOKEN", "message": "No JWT"}));
        assert!(check_example(&rem, 1, &example(false), Ok(&e)).passed);
    }

    #[test]
    fn expected_match_lists_failed_conditions() {
        let rem = rem();
        let e = ev(json!({"environment": "staging", "error_code": "NO_TOKENS"}));
        let r = check_example(&rem, 0, &example(true), Ok(&e));
        assert!(!r.passed);
        let text = r.render(false);
        assert_eq!(
            text,
            "FAIL WS_001 example 1 (rules/ws.toml:14): expected a match, got none\n\
             \x20   signature 1: error_code = \"NO_TOKEN\" — did not hold (actual \"NO_TOKENS\")\n\
             \x20   signature 1: message ~ /No JWT/ — did not hold (field absent)\n\
             \x20   signature 2: _line contains \"legacy\" — did not hold (actual \"{\\\"environment\\\":\\\"staging\\\",\\\"error_code\\\":\\\"NO_TOKENS\\\"}\")\n"
        );
    }

    #[test]
    fn unexpected_match_shows_scope_and_matching_signature() {
        let rem = rem();
        let e = ev(json!({"environment": "staging", "note": "legacy path"}));
        let r = check_example(&rem, 1, &example(false), Ok(&e));
        assert!(!r.passed);
        assert_eq!(
            r.headline,
            "FAIL WS_001 example 2 (rules/ws.toml:14): expected no match, got signature 2"
        );
        assert_eq!(r.details.len(), 2);
        assert_eq!(
            r.details[0],
            "scope: environment = \"staging\" — held (actual \"staging\")"
        );
        assert!(r.details[1].starts_with("signature 2: _line contains \"legacy\" — held (actual "));
    }

    #[test]
    fn scope_failure_is_explained() {
        let rem = rem();
        let e = ev(json!({"environment": "prod", "error_code": "NO_TOKEN", "message": "No JWT"}));
        let r = check_example(&rem, 0, &example(true), Ok(&e));
        assert!(!r.passed);
        assert_eq!(
            r.details[0],
            "scope: environment = \"staging\" — did not hold (actual \"prod\")"
        );
    }

    #[test]
    fn decode_errors_fail() {
        let rem = rem();
        let err = DecodeError::Json("expected value at line 1 column 1".into());
        let r = check_example(&rem, 0, &example(true), Err(&err));
        assert!(!r.passed);
        assert_eq!(
            r.headline,
            "FAIL WS_001 example 1 (rules/ws.toml:14): the line could not be decoded: \
             malformed JSON: expected value at line 1 column 1"
        );
    }

    #[test]
    fn long_actual_values_are_truncated() {
        assert_eq!(truncate("abcdef", 3), "abc…");
        assert_eq!(truncate("abc", 3), "abc");
        assert_eq!(truncate("ééé", 2), "éé…");
    }

    fn run_in(dir: &Path, config: Option<&Path>) -> (i32, String, String) {
        let mut out = Vec::new();
        let mut err = Vec::new();
        let code = run(dir, config, false, &mut out, &mut err).unwrap();
        (
            code,
            String::from_utf8(out).unwrap(),
            String::from_utf8(err).unwrap(),
        )
    }

    // End-to-end runs with examples need the decoder; these cover the paths that do not.
    #[test]
    fn rules_without_examples_and_invalid_rules() {
        let dir = tempfile::tempdir().unwrap();
        let no_examples = RULE.replace("[[example]]\nline = 'x'\n", "");
        std::fs::write(dir.path().join("a.toml"), &no_examples).unwrap();
        let (code, out, err) = run_in(dir.path(), None);
        assert_eq!(
            (code, out.as_str(), err.as_str()),
            (
                0,
                "0 examples: 0 passed, 0 failed; 1 rule without examples\n",
                ""
            )
        );

        std::fs::write(dir.path().join("b.toml"), "id = 1\n").unwrap();
        let (code, out, err) = run_in(dir.path(), None);
        assert_eq!(code, 1);
        assert_eq!(
            out,
            "0 examples: 0 passed, 0 failed; 1 rule without examples; \
             1 rule file invalid (not tested)\n"
        );
        assert!(err.contains("`id` must be a string"), "{err}");
    }

    #[test]
    fn unusable_inputs_are_exit_2() {
        let dir = tempfile::tempdir().unwrap();
        let (code, _, err) = run_in(&dir.path().join("nope"), None);
        assert_eq!(code, 2);
        assert!(
            err.starts_with("error: cannot read rules directory"),
            "{err}"
        );

        let cfg = dir.path().join("recur.toml");
        let (code, _, err) = run_in(dir.path(), Some(&cfg));
        assert_eq!(code, 2);
        assert!(err.contains("not found"), "{err}");

        std::fs::write(&cfg, "[input]\nformat = 3\n").unwrap();
        let (code, out, err) = run_in(dir.path(), Some(&cfg));
        assert_eq!((code, out.as_str()), (2, ""));
        assert!(err.contains("`format` must be a string"), "{err}");
        assert!(err.contains("no example was run"), "{err}");
    }
}
