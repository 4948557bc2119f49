use super::*;
use jiff::Timestamp;

const HEAD: &str =
    "id = \"R1\"\ntitle = \"t\"\nowner = \"o@example.com\"\nanalysis = \"https://a\"\n";
const FIX_OPEN: &str = "[fix]\nstatus = \"open\"\n";
const SIG: &str = "[[signature]]\ncode = \"X\"\n";

fn path() -> &'static Path {
    Path::new("rules/r.toml")
}

fn ok(text: &str) -> Remediation {
    match parse_rule_file(path(), text) {
        Ok(r) => r,
        Err(d) => panic!("{}", render(&d, &[SourceText::new(path(), text)], false)),
    }
}

fn errs(text: &str) -> Vec<Diagnostic> {
    match parse_rule_file(path(), text) {
        Ok(r) => panic!("expected errors, parsed {r:?}"),
        Err(d) => d,
    }
}

/// The single diagnostic of `text`, with its 1-based line and column.
fn one_err(text: &str) -> (Diagnostic, (usize, usize)) {
    let d = errs(text);
    assert_eq!(
        d.len(),
        1,
        "{}",
        render(&d, &[SourceText::new(path(), text)], false)
    );
    let d = d.into_iter().next().unwrap();
    let lc = d.location(text).expect("a span");
    (d, lc)
}

fn rendered(text: &str) -> String {
    render(&errs(text), &[SourceText::new(path(), text)], false)
}

/// Conditions of the first signature whose body is `body`.
fn sig(body: &str) -> Vec<Condition> {
    let text = format!("{HEAD}{FIX_OPEN}[[signature]]\n{body}");
    ok(&text).signatures.remove(0).conditions
}

fn sig_err(body: &str) -> (Diagnostic, (usize, usize)) {
    let text = format!("{HEAD}{FIX_OPEN}[[signature]]\n{body}");
    let (d, (line, col)) = one_err(&text);
    // Lines relative to the body, which starts on line 8.
    (d, (line - 7, col))
}

fn cond(path: &[&str], test: Test) -> Condition {
    Condition {
        path: FieldPath::Field(path.iter().map(|s| s.to_string()).collect()),
        test,
    }
}

fn re(s: &str) -> Test {
    Test::Regex(regex::Regex::new(s).unwrap().into())
}

const DESIGN_EXAMPLE: &str = r#"id       = "WEBSOCKET_AUTH_NO_TOKEN_PERSISTENT_001"
title    = "WebSocket auth rejects connections: no JWT in headers or subprotocols"
severity = "critical"                       # info | warning | error | critical
owner    = "auth-oncall@example.com"
analysis = "https://docs.example.com/incidents/WEBSOCKET_AUTH_NO_TOKEN_FIVE_WHYS_ANALYSIS_20250908.md"
action   = "EXECUTE_CONFIGURATION_FIX"

[fix]
status   = "fixed"                          # open | fixed
fixed_at = "2025-09-08T23:30:00Z"           # required when fixed
deadline = "2025-09-09T04:00:00Z"           # optional; an open remediation past it is overdue
verify   = "24h"                            # success criterion: this long in scope with zero recurrences

[scope]                                     # optional; ANDed into every signature
environment = "staging"

[[signature]]                               # several signatures: any one matching is an occurrence
error_code = "NO_TOKEN"
message    = { regex = 'No JWT.* in WebSocket headers or subprotocols' }

[alert]
threshold = 1                               # recurrences …
window    = "1h"                            # … within this event-time window open an episode
repeat    = "6h"                            # reminders while an episode lasts, at most this often
channels  = ["oncall"]                      # names from recur.toml; default: console
samples   = 3                               # redacted sample events in a notification

[[example]]                                 # run by `recur test`
line  = '{"timestamp":"2025-09-08T19:01:46Z","environment":"staging","error_code":"NO_TOKEN","message":"No JWT=REDACTED in WebSocket headers or subprotocols"}'
match = true
"#;

#[test]
fn parses_the_design_example() {
    let rem = ok(DESIGN_EXAMPLE);
    let ts = |s: &str| s.parse::<Timestamp>().unwrap();
    let expected = Remediation {
        id: "WEBSOCKET_AUTH_NO_TOKEN_PERSISTENT_001".into(),
        title: "WebSocket auth rejects connections: no JWT in headers or subprotocols".into(),
        severity: Severity::Critical,
        owner: "auth-oncall@example.com".into(),
        analysis: "https://docs.example.com/incidents/WEBSOCKET_AUTH_NO_TOKEN_FIVE_WHYS_ANALYSIS_20250908.md".into(),
        action: "EXECUTE_CONFIGURATION_FIX".into(),
        fix: Fix {
            status: FixStatus::Fixed,
            fixed_at: Some(ts("2025-09-08T23:30:00Z")),
            deadline: Some(ts("2025-09-09T04:00:00Z")),
            verify: SignedDuration::from_hours(24),
        },
        scope: vec![cond(&["environment"], Test::Eq(Scalar::Str("staging".into())))],
        signatures: vec![Signature {
            conditions: vec![
                cond(&["error_code"], Test::Eq(Scalar::Str("NO_TOKEN".into()))),
                cond(&["message"], re("No JWT.* in WebSocket headers or subprotocols")),
            ],
        }],
        alert: Alert {
            threshold: 1,
            window: SignedDuration::from_hours(1),
            repeat: SignedDuration::from_hours(6),
            resolve: SignedDuration::from_hours(1),
            channels: vec!["oncall".into()],
            samples: 3,
            template: None,
        },
        examples: vec![Example {
            line: r#"{"timestamp":"2025-09-08T19:01:46Z","environment":"staging","error_code":"NO_TOKEN","message":"No JWT=REDACTED in WebSocket headers or subprotocols"}"#.into(),
            expect_match: true,
            source_line: 28,
        }],
        path: path().to_path_buf(),
    };
    assert_eq!(rem, expected);
}

#[test]
fn defaults_apply() {
    let rem = ok(&format!("{HEAD}{FIX_OPEN}{SIG}"));
    assert_eq!(rem.severity, Severity::Error);
    assert_eq!(rem.action, "");
    assert_eq!(rem.fix.status, FixStatus::Open);
    assert_eq!(rem.fix.fixed_at, None);
    assert_eq!(rem.fix.verify, SignedDuration::from_hours(24));
    assert_eq!(rem.alert, Alert::default());
    assert!(rem.scope.is_empty());
    assert!(rem.examples.is_empty());
}

#[test]
fn resolve_defaults_to_window() {
    let rem = ok(&format!("{HEAD}{FIX_OPEN}{SIG}[alert]\nwindow = \"2h\"\n"));
    assert_eq!(rem.alert.window, SignedDuration::from_hours(2));
    assert_eq!(rem.alert.resolve, SignedDuration::from_hours(2));
    let rem = ok(&format!(
        "{HEAD}{FIX_OPEN}{SIG}[alert]\nwindow = \"2h\"\nresolve = \"30m\"\nthreshold = 5\n\
         samples = 0\ntemplate = \"{{{{ id }}}}\"\n"
    ));
    assert_eq!(rem.alert.resolve, SignedDuration::from_mins(30));
    assert_eq!(rem.alert.threshold, 5);
    assert_eq!(rem.alert.samples, 0);
    assert_eq!(rem.alert.template.as_deref(), Some("{{ id }}"));
}

#[test]
fn native_offset_datetime_is_accepted_for_fix_times() {
    let rem = ok(&format!(
        "{HEAD}[fix]\nstatus = \"fixed\"\nfixed_at = 2025-09-08T23:30:00+02:00\n{SIG}"
    ));
    assert_eq!(
        rem.fix.fixed_at,
        Some("2025-09-08T21:30:00Z".parse().unwrap())
    );
}

#[test]
fn nested_paths() {
    let c = sig("auth_headers.authorization_present = false\n");
    assert_eq!(
        c,
        vec![cond(
            &["auth_headers", "authorization_present"],
            Test::Eq(Scalar::Bool(false))
        )]
    );
    let c = sig("auth = { present = false, kind = \"jwt\" }\n");
    assert_eq!(
        c,
        vec![
            cond(&["auth", "present"], Test::Eq(Scalar::Bool(false))),
            cond(&["auth", "kind"], Test::Eq(Scalar::Str("jwt".into()))),
        ]
    );
    let c = sig("code = 1\n[signature.auth_headers]\nauthorization_present = false\nx.y = 2\n");
    assert_eq!(
        c,
        vec![
            cond(&["code"], Test::Eq(Scalar::Num(1.0))),
            cond(
                &["auth_headers", "authorization_present"],
                Test::Eq(Scalar::Bool(false))
            ),
            cond(&["auth_headers", "x", "y"], Test::Eq(Scalar::Num(2.0))),
        ]
    );
    // A nested path ending in an operator table.
    let c = sig("http.status = { ge = 500 }\n");
    assert_eq!(c, vec![cond(&["http", "status"], Test::Ge(500.0))]);
    // A dotted key whose last segment is operator-like is a field, not a misspelt operator.
    let c = sig("request.id = 5\n");
    assert_eq!(
        c,
        vec![cond(&["request", "id"], Test::Eq(Scalar::Num(5.0)))]
    );
}

#[test]
fn quoted_dotted_key_is_one_segment() {
    let c = sig("\"resource.labels.service_name\" = \"api\"\nresource.\"a.b\" = 1\n");
    assert_eq!(
        c,
        vec![
            cond(
                &["resource.labels.service_name"],
                Test::Eq(Scalar::Str("api".into()))
            ),
            cond(&["resource", "a.b"], Test::Eq(Scalar::Num(1.0))),
        ]
    );
}

#[test]
fn line_and_arrays() {
    let c = sig("_line = { contains = \"timeout\" }\nlevel = [\"error\", \"fatal\", 5, true]\n");
    assert_eq!(
        c,
        vec![
            Condition {
                path: FieldPath::Line,
                test: Test::Contains("timeout".into())
            },
            cond(
                &["level"],
                Test::AnyOf(vec![
                    Scalar::Str("error".into()),
                    Scalar::Str("fatal".into()),
                    Scalar::Num(5.0),
                    Scalar::Bool(true),
                ])
            ),
        ]
    );
    // `_line` below the top is an ordinary field name.
    let c = sig("a._line = \"x\"\n");
    assert_eq!(
        c,
        vec![cond(&["a", "_line"], Test::Eq(Scalar::Str("x".into())))]
    );
}

#[test]
fn every_operator() {
    let c = sig(concat!(
        "a = { regex = '^No JWT' }\n",
        "b = { contains = \"x\" }\n",
        "c = { prefix = \"p\" }\n",
        "d = { suffix = \"s\" }\n",
        "e = { exists = true }\n",
        "f = { exists = false }\n",
        "g = { gt = 1 }\n",
        "h = { ge = 1.5 }\n",
        "i = { lt = -2 }\n",
        "j = { le = 0.25 }\n",
        "k = { not = \"x\" }\n",
        "l = { not = [1, 2] }\n",
        "m = { not = { regex = 'a+' } }\n",
        "n = { not = { not = { exists = true } } }\n",
    ));
    let not = |t: Test| Test::Not(Box::new(t));
    assert_eq!(
        c,
        vec![
            cond(&["a"], re("^No JWT")),
            cond(&["b"], Test::Contains("x".into())),
            cond(&["c"], Test::Prefix("p".into())),
            cond(&["d"], Test::Suffix("s".into())),
            cond(&["e"], Test::Exists(true)),
            cond(&["f"], Test::Exists(false)),
            cond(&["g"], Test::Gt(1.0)),
            cond(&["h"], Test::Ge(1.5)),
            cond(&["i"], Test::Lt(-2.0)),
            cond(&["j"], Test::Le(0.25)),
            cond(&["k"], not(Test::Eq(Scalar::Str("x".into())))),
            cond(
                &["l"],
                not(Test::AnyOf(vec![Scalar::Num(1.0), Scalar::Num(2.0)]))
            ),
            cond(&["m"], not(re("a+"))),
            cond(&["n"], not(not(Test::Exists(true)))),
        ]
    );
}

#[test]
fn scope_and_several_signatures() {
    let rem = ok(&format!(
        "{HEAD}{FIX_OPEN}[scope]\nenv = \"prod\"\nservice = [\"a\", \"b\"]\n\
         [[signature]]\ncode = \"A\"\n[[signature]]\ncode = \"B\"\n"
    ));
    assert_eq!(rem.scope.len(), 2);
    assert_eq!(rem.signatures.len(), 2);
    // Inline array-of-tables form.
    let rem = ok(&format!(
        "{HEAD}signature = [{{ code = \"A\" }}, {{ code = \"B\" }}]\n{FIX_OPEN}"
    ));
    assert_eq!(rem.signatures.len(), 2);
}

#[test]
fn examples_record_their_line() {
    let rem = ok(&format!(
        "{HEAD}{FIX_OPEN}{SIG}[[example]]\nline = 'a'\n\n[[example]]\nline = 'b'\nmatch = false\n"
    ));
    assert_eq!(
        rem.examples,
        vec![
            Example {
                line: "a".into(),
                expect_match: true,
                source_line: 9
            },
            Example {
                line: "b".into(),
                expect_match: false,
                source_line: 12
            },
        ]
    );
}

// ---- errors -------------------------------------------------------------------------------

#[test]
fn unknown_top_level_key_with_suggestion() {
    let text = format!("{HEAD}ownr = \"x\"\n{FIX_OPEN}{SIG}");
    let (d, lc) = one_err(&text);
    assert_eq!(d.message, "unknown key `ownr`");
    assert_eq!(d.hint.as_deref(), Some("did you mean `owner`?"));
    assert_eq!(lc, (5, 1));
}

#[test]
fn unknown_keys_in_fixed_tables() {
    let text = format!("{HEAD}[fix]\nstatus = \"open\"\ndeadlin = \"2025-01-01T00:00:00Z\"\n{SIG}");
    let (d, lc) = one_err(&text);
    assert_eq!(d.message, "unknown key `deadlin`");
    assert_eq!(d.hint.as_deref(), Some("did you mean `deadline`?"));
    assert_eq!(lc, (7, 1));

    let text = format!("{HEAD}{FIX_OPEN}{SIG}[alert]\nthreshhold = 2\n");
    let (d, lc) = one_err(&text);
    assert_eq!(d.message, "unknown key `threshhold`");
    assert_eq!(d.hint.as_deref(), Some("did you mean `threshold`?"));
    assert_eq!(lc, (10, 1));

    let text = format!("{HEAD}{FIX_OPEN}{SIG}[[example]]\nline = 'x'\nmatches = true\n");
    let (d, lc) = one_err(&text);
    assert_eq!(d.message, "unknown key `matches`");
    assert_eq!(d.hint.as_deref(), Some("did you mean `match`?"));
    assert_eq!(lc, (11, 1));

    let text = format!("{HEAD}{FIX_OPEN}{SIG}[alert]\ncolour = 1\n");
    let (d, _) = one_err(&text);
    assert!(d.hint.unwrap().contains("`[alert]` accepts `threshold`"));
}

#[test]
fn unknown_top_level_table() {
    let text = format!("{HEAD}{FIX_OPEN}{SIG}[alerts]\nwindow = \"1h\"\n");
    let (d, lc) = one_err(&text);
    assert_eq!(d.message, "unknown table `alerts`");
    assert_eq!(d.hint.as_deref(), Some("did you mean `alert`?"));
    assert_eq!(lc, (9, 2));
}

#[test]
fn wrong_types() {
    let text = format!("{HEAD}{FIX_OPEN}{SIG}[alert]\nthreshold = \"1\"\n");
    let (d, lc) = one_err(&text);
    assert_eq!(d.message, "`threshold` must be an integer, found a string");
    assert_eq!(
        d.hint.as_deref(),
        Some("remove the quotes: `threshold = 1`")
    );
    assert_eq!(lc, (10, 13));

    let (d, lc) = one_err(&format!("id = 7\n{}{FIX_OPEN}{SIG}", &HEAD[10..]));
    assert_eq!(d.message, "`id` must be a string, found an integer");
    assert_eq!(lc, (1, 6));

    let text = format!("{HEAD}{FIX_OPEN}{SIG}[alert]\nchannels = \"oncall\"\n");
    let (d, _) = one_err(&text);
    assert_eq!(
        d.message,
        "`channels` must be an array of strings, found a string"
    );

    let text = format!("{HEAD}{FIX_OPEN}{SIG}[alert]\nthreshold = 0\n");
    let (d, _) = one_err(&text);
    assert_eq!(
        d.message,
        "`threshold` must be between 1 and 4294967295, found 0"
    );

    let text = format!("{HEAD}fix = 3\n{SIG}");
    let (d, lc) = one_err(&text);
    assert_eq!(d.message, "`fix` must be a table, found an integer");
    assert_eq!(lc, (5, 7));

    let text = format!("{HEAD}{FIX_OPEN}{SIG}[[example]]\nline = 'x'\nmatch = \"false\"\n");
    let (d, _) = one_err(&text);
    assert_eq!(
        d.message,
        "`match` must be a boolean (`true` or `false`), found a string"
    );
    assert_eq!(
        d.hint.as_deref(),
        Some("remove the quotes: `match = false`")
    );
}

#[test]
fn bad_durations() {
    let text = format!("{HEAD}{FIX_OPEN}{SIG}[alert]\nwindow = \"1hour\"\n");
    let (d, lc) = one_err(&text);
    assert_eq!(
        d.message,
        "invalid duration for `window`: unknown unit `hour` in `1hour` (use ms, s, m, h, d or w)"
    );
    assert_eq!(lc, (10, 10));

    let text = format!("{HEAD}[fix]\nstatus = \"open\"\nverify = \"24\"\n{SIG}");
    let (d, lc) = one_err(&text);
    assert!(
        d.message
            .starts_with("invalid duration for `verify`: `24` has no unit"),
        "{}",
        d.message
    );
    assert_eq!(lc, (7, 10));

    let text = format!("{HEAD}{FIX_OPEN}{SIG}[alert]\nrepeat = \"0s\"\n");
    let (d, _) = one_err(&text);
    assert_eq!(d.message, "`repeat` must be longer than zero");

    let text = format!("{HEAD}{FIX_OPEN}{SIG}[alert]\nrepeat = 3600\n");
    let (d, _) = one_err(&text);
    assert_eq!(
        d.message,
        "`repeat` must be a duration string, found an integer"
    );
    assert!(d.hint.unwrap().contains("\"3600s\""));
}

#[test]
fn bad_timestamps() {
    let text = format!("{HEAD}[fix]\nstatus = \"fixed\"\nfixed_at = \"yesterday\"\n{SIG}");
    let (d, lc) = one_err(&text);
    assert!(
        d.message.starts_with("invalid timestamp for `fixed_at`: "),
        "{}",
        d.message
    );
    assert!(d.hint.unwrap().contains("RFC 3339"));
    assert_eq!(lc, (7, 12));

    let text =
        format!("{HEAD}[fix]\nstatus = \"fixed\"\nfixed_at = \"2025-09-08T23:30:00\"\n{SIG}");
    let (d, _) = one_err(&text);
    assert!(
        d.message.starts_with("invalid timestamp for `fixed_at`"),
        "{}",
        d.message
    );

    let text = format!("{HEAD}[fix]\nstatus = \"open\"\ndeadline = 2025-09-08T23:30:00\n{SIG}");
    let (d, lc) = one_err(&text);
    assert_eq!(d.message, "`deadline` has no UTC offset");
    assert_eq!(
        d.hint.as_deref(),
        Some("add the offset, e.g. `deadline = 2025-09-08T23:30:00Z` for UTC")
    );
    assert_eq!(lc, (7, 12));
}

#[test]
fn misspelt_required_key_is_reported_once() {
    let text =
        format!("id = \"R\"\ntitle = \"t\"\nownr = \"o\"\nanalysis = \"a\"\n{FIX_OPEN}{SIG}");
    let (d, _) = one_err(&text);
    assert_eq!(d.message, "unknown key `ownr`");
}

#[test]
fn missing_required_keys() {
    let text = format!("title = \"t\"\n{FIX_OPEN}{SIG}");
    let d = errs(&text);
    let msgs: Vec<&str> = d.iter().map(|d| d.message.as_str()).collect();
    assert_eq!(
        msgs,
        [
            "missing required key `id`",
            "missing required key `owner`",
            "missing required key `analysis`"
        ]
    );
    for x in &d {
        assert_eq!(x.location(&text), Some((1, 1)));
        assert!(x.hint.is_some());
    }

    let text = format!("{HEAD}{SIG}");
    let (d, lc) = one_err(&text);
    assert_eq!(d.message, "missing required table `[fix]`");
    assert_eq!(lc, (1, 1));

    let text = format!("{HEAD}[fix]\nverify = \"1h\"\n{SIG}");
    let (d, lc) = one_err(&text);
    assert_eq!(d.message, "missing required key `status`");
    assert_eq!(lc, (5, 1));

    let text = format!("{HEAD}{FIX_OPEN}");
    let (d, _) = one_err(&text);
    assert_eq!(d.message, "missing `[[signature]]`");

    let text = format!("{HEAD}{FIX_OPEN}{SIG}[[example]]\nmatch = true\n");
    let (d, lc) = one_err(&text);
    assert_eq!(d.message, "missing required key `line`");
    assert_eq!(lc, (9, 1));
}

#[test]
fn fixed_needs_fixed_at_and_open_refuses_it() {
    let text = format!("{HEAD}[fix]\nstatus = \"fixed\"\n{SIG}");
    let (d, lc) = one_err(&text);
    assert_eq!(d.message, "`fixed_at` is required when the fix is `fixed`");
    assert!(
        d.hint
            .unwrap()
            .contains("fixed_at = \"2025-09-08T23:30:00Z\"")
    );
    assert_eq!(lc, (6, 10));

    let text =
        format!("{HEAD}[fix]\nstatus = \"open\"\nfixed_at = \"2025-09-08T23:30:00Z\"\n{SIG}");
    let (d, lc) = one_err(&text);
    assert_eq!(d.message, "`fixed_at` is set but the fix is still `open`");
    assert!(d.hint.unwrap().contains("`status = \"fixed\"`"));
    assert_eq!(lc, (7, 1));
}

#[test]
fn enum_values_get_suggestions() {
    let text = format!("{HEAD}severity = \"critcal\"\n{FIX_OPEN}{SIG}");
    let (d, lc) = one_err(&text);
    assert_eq!(d.message, "unknown severity `critcal`");
    assert_eq!(d.hint.as_deref(), Some("did you mean `critical`?"));
    assert_eq!(lc, (5, 12));

    let text = format!("{HEAD}[fix]\nstatus = \"done\"\n{SIG}");
    let (d, _) = one_err(&text);
    assert_eq!(d.message, "unknown status `done`");
    assert_eq!(d.hint.as_deref(), Some("use one of `open` or `fixed`"));
}

#[test]
fn invalid_id() {
    let text = HEAD.replace("\"R1\"", "\"R 1\"") + FIX_OPEN + SIG;
    let (d, lc) = one_err(&text);
    assert_eq!(d.message, "invalid id `R 1`: spaces are not allowed");

    let text = HEAD.replace("\"R1\"", "\"R/1\"") + FIX_OPEN + SIG;
    let (d, _) = one_err(&text);
    assert_eq!(d.message, "invalid id `R/1`: `/` is not allowed");
    assert_eq!(lc, (1, 6));
}

#[test]
fn signature_shape_errors() {
    let text = format!("{HEAD}{FIX_OPEN}[[signature]]\n[[signature]]\ncode = 1\n");
    let (d, lc) = one_err(&text);
    assert_eq!(d.message, "signature 1 has no conditions");
    assert_eq!(lc, (7, 1));

    let text = format!("{HEAD}{FIX_OPEN}[signature]\ncode = 1\n");
    let (d, lc) = one_err(&text);
    assert_eq!(d.message, "`[signature]` must be written `[[signature]]`");
    assert_eq!(lc, (7, 1));
}

#[test]
fn bad_regex_points_at_the_string() {
    let (d, lc) = sig_err("message = { regex = 'No JWT (in' }\n");
    assert_eq!(d.message, "invalid regex for `message`: unclosed group");
    assert_eq!(lc, (1, 21));
    assert_eq!(d.label.as_deref(), Some("invalid regex"));
}

#[test]
fn unknown_operator() {
    let (d, lc) = sig_err("message = { regx = 'No JWT' }\n");
    assert_eq!(d.message, "unknown operator `regx`");
    assert!(
        d.hint
            .as_deref()
            .unwrap()
            .starts_with("did you mean `regex`?")
    );
    assert_eq!(lc, (1, 13));

    let (d, _) = sig_err("latency = { gte = 5 }\n");
    assert_eq!(d.message, "unknown operator `gte`");
    assert!(d.hint.as_deref().unwrap().starts_with("did you mean `gt`?"));
}

#[test]
fn operator_table_shape_errors() {
    let (d, lc) = sig_err("message = { regex = 'x', level = 3 }\n");
    assert_eq!(
        d.message,
        "operator `regex` mixed with field keys for `message`"
    );
    assert_eq!(lc, (1, 11));

    let (d, _) = sig_err("latency = { gt = 1, lt = 5 }\n");
    assert_eq!(d.message, "more than one operator for `latency`");

    let (d, lc) = sig_err("message = {}\n");
    assert_eq!(d.message, "empty table for `message`");
    assert_eq!(lc, (1, 11));

    let (d, lc) = sig_err("x = 1\n[signature.auth]\n");
    assert_eq!(d.message, "empty table for `auth`");
    assert_eq!(lc, (2, 1));

    let (d, _) = sig_err("message = { not = { foo = 1 } }\n");
    assert_eq!(
        d.message,
        "`not` for `message` takes a value, an array or one operator"
    );

    let (d, lc) = sig_err("_line.x = 1\n");
    assert_eq!(
        d.message,
        "`_line` is the raw text of the record and has no fields"
    );
    assert_eq!(lc, (1, 1));
}

#[test]
fn operator_value_types() {
    let (d, lc) = sig_err("latency = { gt = \"5\" }\n");
    assert_eq!(d.message, "`gt` must be a finite number, found a string");
    assert_eq!(d.hint.as_deref(), Some("remove the quotes: `gt = 5`"));
    assert_eq!(lc, (1, 18));

    let (d, _) = sig_err("x = { exists = 1 }\n");
    assert_eq!(
        d.message,
        "`exists` must be a boolean (`true` or `false`), found an integer"
    );

    let (d, _) = sig_err("x = { contains = 1 }\n");
    assert_eq!(d.message, "`contains` must be a string, found an integer");
}

#[test]
fn condition_value_errors() {
    let (d, lc) = sig_err("ts = 2025-09-08T23:30:00Z\n");
    assert_eq!(d.message, "`ts` compares with a TOML date-time");
    assert_eq!(
        d.hint.as_deref(),
        Some("quote it to compare with the text in the log: `\"2025-09-08T23:30:00Z\"`")
    );
    assert_eq!(lc, (1, 6));

    let (d, lc) = sig_err("level = [\"a\", [1]]\n");
    assert_eq!(d.message, "`level` lists an array inside an array");
    assert_eq!(lc, (1, 15));

    let (d, _) = sig_err("level = []\n");
    assert_eq!(d.message, "empty array for `level`");

    let (d, _) = sig_err("x = nan\n");
    assert_eq!(d.message, "`x` compares with a non-finite number");
}

#[test]
fn syntax_error_is_one_diagnostic() {
    let text = format!("{HEAD}owner = \"again\"\n");
    let (d, lc) = one_err(&text);
    assert_eq!(d.message, "invalid TOML: duplicate key");
    assert_eq!(lc, (5, 1));

    let (d, lc) = one_err("id = \n");
    assert!(d.message.starts_with("invalid TOML: "), "{}", d.message);
    assert_eq!(lc.0, 1);
}

#[test]
fn reports_every_error_in_file_order() {
    let text = format!(
        "{HEAD}ownr = \"x\"\n[fix]\nstatus = \"open\"\nverify = \"soon\"\n\
         [[signature]]\nmessage = {{ regex = '(' }}\n"
    );
    let d = errs(&text);
    assert_eq!(d.len(), 3, "{d:#?}");
    let locs: Vec<(usize, usize)> = d.iter().map(|d| d.location(&text).unwrap()).collect();
    assert_eq!(locs, [(5, 1), (8, 10), (10, 21)]);
}

// ---- directory loading --------------------------------------------------------------------

fn write(dir: &Path, name: &str, text: &str) {
    std::fs::write(dir.join(name), text).unwrap();
}

#[test]
fn loads_a_directory_in_name_order() {
    let dir = tempfile::tempdir().unwrap();
    let rule = |id: &str| format!("{}{FIX_OPEN}{SIG}", HEAD.replace("R1", id));
    write(dir.path(), "b.toml", &rule("B"));
    write(dir.path(), "a.toml", &rule("A"));
    write(dir.path(), "c.toml", &format!("{HEAD}ownr = 1\n"));
    write(dir.path(), "notes.md", "not a rule");
    write(dir.path(), "recur.toml", "[input]\nformat = \"json\"\n");
    std::fs::create_dir(dir.path().join("sub.toml")).unwrap();

    let loaded = load_rules_dir(dir.path()).unwrap();
    let ids: Vec<&str> = loaded.remediations.iter().map(|r| r.id.as_str()).collect();
    assert_eq!(ids, ["A", "B"]);
    assert_eq!(loaded.file_count(), 3);
    assert_eq!(loaded.files_with_errors(), 1);
    assert!(!loaded.is_valid());
    // c.toml: unknown key, missing [fix], missing [[signature]].
    assert_eq!(loaded.diagnostics.len(), 3);
    assert!(
        loaded
            .diagnostics
            .iter()
            .all(|d| d.path.ends_with("c.toml"))
    );
    assert!(loaded.render(false).contains("c.toml:5:1"));
}

#[test]
fn duplicate_ids_across_files() {
    let dir = tempfile::tempdir().unwrap();
    let text = format!("{HEAD}{FIX_OPEN}{SIG}");
    write(dir.path(), "a.toml", &text);
    write(dir.path(), "b.toml", &text);
    let loaded = load_rules_dir(dir.path()).unwrap();
    assert_eq!(loaded.remediations.len(), 1);
    assert_eq!(loaded.diagnostics.len(), 1);
    let d = &loaded.diagnostics[0];
    assert!(d.path.ends_with("b.toml"));
    assert_eq!(d.message, "duplicate id `R1`");
    assert!(d.label.as_deref().unwrap().contains("a.toml"));
    assert_eq!(d.location(&text), Some((1, 6)));
}

#[test]
fn unreadable_files_and_missing_dirs() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("bin.toml"), b"id = \"\xff\"\n").unwrap();
    let loaded = load_rules_dir(dir.path()).unwrap();
    assert_eq!(loaded.diagnostics.len(), 1);
    assert!(loaded.diagnostics[0].message.contains("not valid UTF-8"));

    assert!(load_rules_dir(&dir.path().join("nope")).is_err());
}

// ---- rendered snapshots -------------------------------------------------------------------

#[test]
fn snapshot_misspelt_key() {
    insta::assert_snapshot!(rendered(&format!("{HEAD}ownr = \"x\"\n{FIX_OPEN}{SIG}")));
}

#[test]
fn snapshot_bad_regex() {
    insta::assert_snapshot!(rendered(&format!(
        "{HEAD}{FIX_OPEN}[[signature]]\nmessage = {{ regex = 'No JWT (in headers' }}\n"
    )));
}

#[test]
fn snapshot_bad_duration() {
    insta::assert_snapshot!(rendered(&format!(
        "{HEAD}{FIX_OPEN}{SIG}[alert]\nwindow = \"1hour\"\n"
    )));
}

#[test]
fn snapshot_missing_fixed_at() {
    insta::assert_snapshot!(rendered(&format!("{HEAD}[fix]\nstatus = \"fixed\"\n{SIG}")));
}

#[test]
fn snapshot_unknown_operator() {
    insta::assert_snapshot!(rendered(&format!(
        "{HEAD}{FIX_OPEN}[[signature]]\nmessage = {{ regx = 'No JWT' }}\n"
    )));
}
