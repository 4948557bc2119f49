//! `recur grep` end to end: every filter operator, every output mode, time ranges across
//! envelopes and offsets, exit codes, a closed pipe, and that it never touches the state.

use std::io::{BufRead, BufReader, Write};
use std::process::Stdio;

use crate::harness::{Outcome, Workspace, repo};

/// Four events tagged `n` 1..=4, with numbers, numeric strings, booleans, nesting and null.
const EVENTS: &str = concat!(
    r#"{"n":1,"timestamp":"2025-09-08T22:00:00Z","env":"staging","code":"NO_TOKEN","status":401,"latency":"12.5","auth":{"present":false},"msg":"No JWT in headers"}"#,
    "\n",
    r#"{"n":2,"timestamp":"2025-09-08T23:00:00Z","env":"production","code":"NO_TOKEN","status":"401","latency":3,"auth":{"present":true},"msg":"No JWT in subprotocols"}"#,
    "\n",
    r#"{"n":3,"timestamp":"2025-09-09T00:00:00Z","env":"staging","code":"NO_TOKEN_SCOPE","status":403,"latency":100,"msg":"scope missing"}"#,
    "\n",
    r#"{"n":4,"timestamp":"2025-09-09T01:00:00Z","env":"staging","code":"OK","status":200,"latency":0.5,"user":null}"#,
    "\n",
);

fn grep(ws: &Workspace, args: &[&str]) -> Outcome {
    ws.recur().arg("grep").args(args).run()
}

/// The `n` of every event printed by `--json`, in output order.
fn ns(ws: &Workspace, args: &[&str]) -> Vec<u64> {
    let out = ws.recur().args(["grep", "--json"]).args(args).run();
    assert!(
        out.code == 0 || out.code == 1,
        "exit {}\n{}\n{}",
        out.code,
        out.stdout,
        out.stderr
    );
    out.stdout
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).expect("JSON line");
            // logfmt values are strings.
            v["n"]
                .as_u64()
                .or_else(|| v["n"].as_str()?.parse().ok())
                .expect("n")
        })
        .collect()
}

fn events_ws() -> Workspace {
    let ws = Workspace::new();
    ws.write("logs/events.jsonl", EVENTS);
    ws
}

#[test]
fn every_filter_operator() {
    let ws = events_ws();
    let cases: &[(&[&str], &[u64])] = &[
        (&["-w", "code=NO_TOKEN"], &[1, 2]),
        (&["-w", "code!=NO_TOKEN"], &[3, 4]),
        (&["-w", "user!=x"], &[1, 2, 3, 4]),
        (&["-w", "code~^NO_TOKEN"], &[1, 2, 3]),
        (&["-w", "code!~SCOPE"], &[1, 2, 4]),
        // A number matches the number and the numeric string.
        (&["-w", "status=401"], &[1, 2]),
        (&["-w", "status>401"], &[3]),
        (&["-w", "status>=401"], &[1, 2, 3]),
        (&["-w", "latency<5"], &[2, 4]),
        (&["-w", "latency<=12.5"], &[1, 2, 4]),
        (&["-w", "auth.present=false"], &[1]),
        (&["-w", "auth.present=true"], &[2]),
        (&["-w", "auth.present?"], &[1, 2]),
        (&["-w", "user?"], &[4]),
        (&["-w", "user=null"], &[4]),
        // Several filters AND together.
        (&["-w", "env=staging", "-w", "code~NO"], &[1, 3]),
        (&["-w", "env=staging", "-w", "status<300"], &[4]),
    ];
    for (args, want) in cases {
        let mut a = args.to_vec();
        a.push("logs");
        assert_eq!(&ns(&ws, &a), want, "{args:?}");
    }
}

#[test]
fn patterns_regexps_case_and_fixed_strings() {
    let ws = events_ws();
    let cases: &[(&[&str], &[u64])] = &[
        (&["No JWT", "logs"], &[1, 2]),
        (
            &["-e", "scope missing", "-e", "subprotocols", "logs"],
            &[2, 3],
        ),
        (&["-i", "no jwt", "logs"], &[1, 2]),
        (&["-F", r#""code":"OK""#, "logs"], &[4]),
        (&["NO_TOKEN\"", "logs"], &[1, 2]),
        // A pattern and a filter together.
        (&["-e", "JWT", "-w", "env=production", "logs"], &[2]),
        (&["", "logs"], &[1, 2, 3, 4]),
    ];
    for (args, want) in cases {
        assert_eq!(&ns(&ws, args), want, "{args:?}");
    }
}

#[test]
fn rule_applies_scope_and_signatures() {
    let ws = events_ws();
    ws.rule(
        "r",
        r#"
id = "NO_TOKEN_TEST"
title = "No token"
owner = "team@example.com"
analysis = "https://example.com/a"
[fix]
status = "fixed"
fixed_at = "2025-09-08T22:30:00Z"
[scope]
env = "staging"
[[signature]]
code = "NO_TOKEN"
[[signature]]
code = "OK"
"#,
    );
    assert_eq!(ns(&ws, &["--rule", "NO_TOKEN_TEST", "logs"]), [1, 4]);
    assert_eq!(
        ns(
            &ws,
            &["--rule", "NO_TOKEN_TEST", "-w", "status=200", "logs"]
        ),
        [4]
    );
    let out = grep(&ws, &["--rule", "NO_TOKEN_TES", "logs"]).code(2);
    assert!(
        out.stderr.contains("did you mean `NO_TOKEN_TEST`"),
        "{}",
        out.stderr
    );
}

#[test]
fn lines_with_and_without_file_names() {
    let ws = events_ws();
    ws.write("logs/more.jsonl", EVENTS.lines().nth(1).unwrap());
    // One file: the events as they are.
    let out = grep(&ws, &["-w", "code=OK", "logs/events.jsonl"]).code(0);
    assert_eq!(out.stdout, format!("{}\n", EVENTS.lines().nth(3).unwrap()));
    let out = grep(&ws, &["-n", "-w", "code=OK", "logs/events.jsonl"]).code(0);
    assert!(out.stdout.starts_with("4:{\"n\":4"), "{}", out.stdout);
    // Several files: path:line: in file order.
    let out = grep(&ws, &["-w", "env=production", "logs"]).code(0);
    let prefixes: Vec<&str> = out
        .stdout
        .lines()
        .map(|l| l.split(":{").next().unwrap())
        .collect();
    assert_eq!(prefixes, ["logs/events.jsonl:2", "logs/more.jsonl:1"]);
    let out = grep(&ws, &["--no-filename", "-w", "env=production", "logs"]).code(0);
    assert!(out.stdout.lines().all(|l| l.starts_with("{\"n\":2")));
    // A JSON array element spread over lines is printed on one line.
    ws.write(
        "arr/a.json",
        "[\n  {\n    \"timestamp\": \"2025-09-10T08:00:00Z\",\n    \"code\": \"NO_TOKEN\"\n  }\n]\n",
    );
    let out = grep(&ws, &["-w", "code=NO_TOKEN", "arr/a.json"]).code(0);
    assert_eq!(
        out.stdout,
        "{\"timestamp\":\"2025-09-10T08:00:00Z\",\"code\":\"NO_TOKEN\"}\n"
    );
}

#[test]
fn json_lines_are_decoded_events_with_the_envelope_unwrapped() {
    let ws = Workspace::new();
    let out = ws
        .recur()
        .args(["grep", "--json", "-m", "1", "-w", "error_code=NO_TOKEN"])
        .arg(repo().join("examples/logs/gcp"))
        .run()
        .code(0);
    let v: serde_json::Value = serde_json::from_str(out.stdout.trim()).unwrap();
    assert_eq!(v["error_code"], "NO_TOKEN");
    assert_eq!(v["severity"], "ERROR");
    assert!(v.get("jsonPayload").is_none(), "{v}");
}

#[test]
fn counts_files_and_max_count() {
    let ws = events_ws();
    ws.write("logs/more.jsonl", EVENTS);
    ws.write("other/none.jsonl", "{\"code\":\"OK\"}\n");
    let out = grep(&ws, &["-c", "-w", "code~NO", "logs", "other"]).code(0);
    assert_eq!(out.stdout, "logs/events.jsonl:3\nlogs/more.jsonl:3\n");
    let out = grep(&ws, &["-c", "--no-filename", "-w", "code~NO", "logs"]).code(0);
    assert_eq!(out.stdout, "6\n");
    let out = grep(&ws, &["-c", "-w", "code~NO", "logs/events.jsonl"]).code(0);
    assert_eq!(out.stdout, "3\n");
    let out = grep(&ws, &["-c", "-w", "code=NOPE", "logs/events.jsonl"]).code(1);
    assert_eq!(out.stdout, "0\n");
    let out = grep(&ws, &["-l", "-w", "code~NO", "logs", "other"]).code(0);
    assert_eq!(out.stdout, "logs/events.jsonl\nlogs/more.jsonl\n");
    // -m is per file.
    assert_eq!(ns(&ws, &["-m", "2", "-w", "code~NO", "logs"]), [1, 2, 1, 2]);
    let out = grep(&ws, &["-c", "-m", "1", "-w", "code~NO", "logs"]).code(0);
    assert_eq!(out.stdout, "logs/events.jsonl:1\nlogs/more.jsonl:1\n");
}

/// Flat dotted keys (ECS-style JSON, logfmt), nested objects, both at once, and a key with
/// dots under a nested object.
const DOTTED: &str = concat!(
    r#"{"n":1,"log.level":"info","msg":"flat"}"#,
    "\n",
    r#"{"n":2,"log":{"level":"info"},"msg":"nested"}"#,
    "\n",
    r#"{"n":3,"log.level":"error","log":{"level":"info"},"msg":"both"}"#,
    "\n",
    r#"{"n":4,"log":{"level":"warn"},"k8s":{"app.kubernetes.io/name":"gateway"}}"#,
    "\n",
    r#"{"n":5,"msg":"neither"}"#,
    "\n",
);

#[test]
fn dotted_names_read_the_flat_key_first_and_quotes_name_one_key() {
    let ws = Workspace::new();
    ws.write("logs/d.jsonl", DOTTED);
    ws.write(
        "logs/f.log",
        "n=6 log.level=info msg=logfmt\nn=7 log.level=debug msg=logfmt\n",
    );
    let cases: &[(&[&str], &[u64])] = &[
        // Unquoted: the flat key when present (3 has both and says error), else nested.
        (&["-w", "log.level=info"], &[1, 2, 6]),
        (&["-w", "log.level=error"], &[3]),
        (&["-w", "log.level!=info"], &[3, 4, 5, 7]),
        (&["-w", "log.level~^(warn|debug)$"], &[4, 7]),
        (&["-w", "log.level?"], &[1, 2, 3, 4, 6, 7]),
        // Quoted: exactly the flat key, as in rule files.
        (&["-w", r#""log.level"=info"#], &[1, 6]),
        (&["-w", r#""log.level"?"#], &[1, 3, 6, 7]),
        (&["-w", r#""log.level"!=info"#], &[2, 3, 4, 5, 7]),
        // A quoted key inside a nested path.
        (&["-w", r#"k8s."app.kubernetes.io/name"=gateway"#], &[4]),
        // Two dotted filters together.
        (&["-w", "log.level=info", "-w", "msg!=flat"], &[2, 6]),
    ];
    for (args, want) in cases {
        let mut a = args.to_vec();
        a.push("logs");
        assert_eq!(&ns(&ws, &a), want, "{args:?}");
    }
    let out = grep(
        &ws,
        &["--fields", r#"n,log.level,"log.level",msg"#, "", "logs"],
    )
    .code(0);
    insta::assert_snapshot!("grep_fields_dotted", out.stdout);
    let out = grep(&ws, &["--count-by", "log.level", "", "logs"]).code(0);
    insta::assert_snapshot!("grep_count_by_dotted", out.stdout);
    let out = grep(
        &ws,
        &["--count-by", r#"k8s."app.kubernetes.io/name""#, "", "logs"],
    )
    .code(0);
    assert!(out.stdout.contains("gateway"), "{}", out.stdout);
    // Badly quoted names are errors, not silently absent fields.
    for bad in [
        r#""log.level=info"#,
        r#"log"x"=1"#,
        "log..level=1",
        "log.=1",
    ] {
        let out = grep(&ws, &["-w", bad, "logs"]).code(2);
        assert!(out.stderr.contains("field name"), "{bad}: {}", out.stderr);
    }
    let out = grep(&ws, &["--fields", r#""n"#, "", "logs"]).code(2);
    assert!(out.stderr.contains("unclosed quote"), "{}", out.stderr);
}

#[test]
fn count_by_snapshot() {
    let ws = Workspace::new();
    let out = ws
        .recur()
        .args([
            "grep",
            "--count-by",
            "error_code,environment",
            "-w",
            "error_code?",
        ])
        .arg(repo().join("examples/logs"))
        .run()
        .code(0);
    insta::assert_snapshot!("grep_count_by", out.stdout);
}

#[test]
fn fields_snapshot() {
    let ws = Workspace::new();
    let out = ws
        .recur()
        .args([
            "grep",
            "--fields",
            "_time,environment,error_code,severity,resource.labels.service_name",
            "-w",
            "error_code=NO_TOKEN",
            "--since",
            "2025-09-09T00:00:00Z",
        ])
        .arg(repo().join("examples/logs"))
        .run()
        .code(0);
    insta::assert_snapshot!("grep_fields", out.stdout);
}

#[test]
fn timeline_snapshots() {
    let ws = Workspace::new();
    ws.shipped_rules();
    let out = ws
        .recur()
        .args([
            "grep",
            "--timeline",
            "--rule",
            "WEBSOCKET_AUTH_NO_TOKEN_PERSISTENT_001",
        ])
        .arg(repo().join("examples/logs"))
        .run()
        .code(0);
    insta::assert_snapshot!("grep_timeline_rule", out.stdout);
    let out = ws
        .recur()
        .args(["grep", "--timeline=6h", "-w", "error_code~^NO_TOKEN"])
        .arg(repo().join("examples/logs"))
        .run()
        .code(0);
    insta::assert_snapshot!("grep_timeline_6h", out.stdout);
}

#[test]
fn stats_go_to_stderr() {
    let ws = events_ws();
    let out = grep(&ws, &["--stats", "-c", "-w", "code~NO", "logs"]).code(0);
    assert_eq!(out.stdout, "logs/events.jsonl:3\n");
    assert!(out.stderr.contains("3 matched events"), "{}", out.stderr);
    assert!(
        out.stderr
            .contains("1 files, 4 lines, 4 events, 0 invalid, 0 untimed"),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("MB/s"), "{}", out.stderr);
}

/// Events across envelopes whose times are written with different offsets.
fn envelopes_ws() -> Workspace {
    let ws = Workspace::new();
    ws.write(
        "logs/app.jsonl",
        concat!(
            r#"{"n":1,"timestamp":"2025-09-08T22:00:00Z","code":"NO_TOKEN"}"#,
            "\n",
            // 23:30Z written at +02:00.
            r#"{"n":2,"timestamp":"2025-09-09T01:30:00+02:00","code":"NO_TOKEN"}"#,
            "\n",
            r#"{"n":3,"timestamp":"2025-09-09T00:30:00.000+00:00","code":"NO_TOKEN"}"#,
            "\n",
            // No time at all: never inside a time range.
            r#"{"n":8,"code":"NO_TOKEN"}"#,
            "\n",
        ),
    );
    ws.write(
        "logs/gcp.json",
        r#"[{"insertId":"a","jsonPayload":{"n":4,"code":"NO_TOKEN"},"timestamp":"2025-09-08T22:10:00Z","logName":"projects/p/logs/x"},
 {"insertId":"b","jsonPayload":{"n":5,"code":"NO_TOKEN"},"timestamp":"2025-09-08T19:40:00-04:00","logName":"projects/p/logs/x"}]
"#,
    );
    ws.write(
        "logs/docker.log",
        concat!(
            // The runtime's time when the inner line has none: 23:50Z.
            r#"{"log":"{\"n\":6,\"code\":\"NO_TOKEN\"}\n","stream":"stderr","time":"2025-09-08T23:50:00.123456789Z"}"#,
            "\n",
            // The inner line's own time wins: 2025-09-09T00:00Z, written at -03:00.
            r#"{"log":"{\"n\":7,\"code\":\"NO_TOKEN\",\"timestamp\":\"2025-09-08T21:00:00-03:00\"}\n","stream":"stdout","time":"2025-09-08T20:00:00Z"}"#,
            "\n",
        ),
    );
    ws
}

#[test]
fn time_ranges_across_envelopes_and_offsets() {
    let ws = envelopes_ws();
    let all = ns(&ws, &["-w", "code=NO_TOKEN", "logs"]);
    assert_eq!(all, [1, 2, 3, 8, 6, 7, 4, 5], "file order, then line order");
    let since = ns(
        &ws,
        &[
            "-w",
            "code=NO_TOKEN",
            "--since",
            "2025-09-08T23:30:00Z",
            "logs",
        ],
    );
    assert_eq!(since, [2, 3, 6, 7, 5]);
    // The same instant written with an offset; `--until` is exclusive.
    let until = ns(
        &ws,
        &[
            "-w",
            "code=NO_TOKEN",
            "--until",
            "2025-09-09T01:30:00+02:00",
            "logs",
        ],
    );
    assert_eq!(until, [1, 4]);
    let window = ns(
        &ws,
        &[
            "-w",
            "code=NO_TOKEN",
            "--since",
            "2025-09-08T19:00:00-04:00",
            "--until",
            "2025-09-09T00:00:00Z",
            "logs",
        ],
    );
    assert_eq!(window, [2, 6, 5]);
    // A duration counts back from now: these events are long past.
    let out = grep(&ws, &["-w", "code=NO_TOKEN", "--since", "2h", "logs"]).code(1);
    assert_eq!(out.stdout, "");
    assert_eq!(
        ns(&ws, &["-w", "code=NO_TOKEN", "--since", "100000d", "logs"]),
        [1, 2, 3, 6, 7, 4, 5]
    );
}

#[test]
fn exit_codes() {
    let ws = events_ws();
    grep(&ws, &["-w", "code=OK", "logs"]).code(0);
    let out = grep(&ws, &["-w", "code=NOPE", "logs"]).code(1);
    assert_eq!(out.stdout, "");
    // An error in one input still prints the others' matches.
    let out = grep(&ws, &["-w", "code=OK", "missing.log", "logs"]).code(2);
    assert!(out.stdout.contains("\"n\":4"), "{}", out.stdout);
    assert!(
        out.stderr.contains("missing.log: no such file"),
        "{}",
        out.stderr
    );
    // With a filter, positional arguments are paths: say so when one is missing.
    let out = grep(&ws, &["-w", "code=OK", "JWT", "logs"]).code(2);
    assert!(
        out.stderr.contains("hint: with -e, -w or --rule"),
        "{}",
        out.stderr
    );
    let out = grep(&ws, &["-w", "code", "logs"]).code(2);
    assert!(out.stderr.contains("has no operator"), "{}", out.stderr);
    let out = grep(&ws, &["-w", "latency>fast", "logs"]).code(2);
    assert!(out.stderr.contains("not a number"), "{}", out.stderr);
    let out = grep(&ws, &["(unclosed", "logs"]).code(2);
    assert!(out.stderr.contains("invalid pattern"), "{}", out.stderr);
    let out = grep(&ws, &["--count", "--json", "x", "logs"]).code(2);
    assert!(out.stderr.contains("cannot be used with"), "{}", out.stderr);
    // A truncated archive is an error after its good part was searched.
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(EVENTS.repeat(2000).as_bytes()).unwrap();
    let gz = e.finish().unwrap();
    ws.write("bad/cut.gz", &gz[..gz.len() / 2]);
    let out = grep(&ws, &["-c", "-w", "code=OK", "bad/cut.gz"]).code(2);
    assert_ne!(out.stdout.trim(), "0");
    assert!(out.stderr.contains("truncated"), "{}", out.stderr);
}

#[test]
fn invalid_records_are_warned_and_skipped() {
    let ws = Workspace::new();
    ws.write("logs/a.jsonl", format!("{}{{\"code\":\"OK\",\n", EVENTS));
    let out = grep(&ws, &["-w", "code=OK", "logs/a.jsonl"]).code(0);
    assert_eq!(out.stdout.lines().count(), 1);
    assert!(
        out.stderr
            .contains("warning: logs/a.jsonl:5: 1 invalid record"),
        "{}",
        out.stderr
    );
}

#[test]
fn stdin_and_compressed_inputs() {
    let ws = Workspace::new();
    let out = ws
        .recur()
        .args(["grep", "-w", "code=OK"])
        .stdin(EVENTS)
        .run()
        .code(0);
    assert!(out.stdout.starts_with("{\"n\":4"), "{}", out.stdout);
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(EVENTS.as_bytes()).unwrap();
    let gz = e.finish().unwrap();
    let out = ws
        .recur()
        .args(["grep", "-c", "-w", "code~NO", "-"])
        .stdin(gz.clone())
        .run()
        .code(0);
    assert_eq!(out.stdout, "3\n");
    ws.write(
        "z/a.log.zst",
        zstd::encode_all(EVENTS.as_bytes(), 3).unwrap(),
    );
    ws.write("z/b.log.gz", gz);
    let out = grep(&ws, &["-c", "-w", "code~NO", "z/*"]).code(0);
    assert_eq!(out.stdout, "z/a.log.zst:3\nz/b.log.gz:3\n");
}

#[test]
fn output_order_is_deterministic_with_threads_and_chunks() {
    let ws = Workspace::new();
    for f in 0..3 {
        let mut s = String::new();
        for i in 1..=20_000 {
            let code = if i % 7 == 0 { "NO_TOKEN" } else { "OK" };
            s.push_str(&format!("{{\"f\":{f},\"i\":{i},\"code\":\"{code}\"}}\n"));
        }
        let path = ws.write(&format!("logs/{f}.jsonl"), s);
        if f != 1 {
            // Mapped (`--no-mmap` below: read), and one file read either way.
            ws.age(&path);
        }
    }
    let parallel = grep(
        &ws,
        &[
            "-j",
            "4",
            "--chunk-bytes",
            "20000",
            "-w",
            "code=NO_TOKEN",
            "logs",
        ],
    )
    .code(0);
    let serial = grep(
        &ws,
        &[
            "-j",
            "1",
            "--chunk-bytes",
            "0",
            "-w",
            "code=NO_TOKEN",
            "logs",
        ],
    )
    .code(0);
    let unmapped = grep(
        &ws,
        &[
            "-j",
            "4",
            "--chunk-bytes",
            "20000",
            "--no-mmap",
            "-w",
            "code=NO_TOKEN",
            "logs",
        ],
    )
    .code(0);
    assert_eq!(parallel.stdout, serial.stdout);
    assert_eq!(parallel.stdout, unmapped.stdout);
    assert_eq!(parallel.stdout.lines().count(), 3 * (20_000 / 7));
    // Line numbers are file line numbers across chunks.
    for l in parallel.stdout.lines() {
        let mut parts = l.splitn(3, ':');
        let (_, line, body) = (parts.next(), parts.next().unwrap(), parts.next().unwrap());
        assert!(body.contains(&format!("\"i\":{line},")), "{l}");
    }
}

#[test]
fn color_always_paints_matches_paths_and_field_names() {
    let ws = events_ws();
    let out = ws
        .recur()
        .args([
            "--color",
            "always",
            "grep",
            "-H",
            "-e",
            "JWT",
            "-w",
            "env=staging",
            "logs",
        ])
        .run()
        .code(0);
    assert!(
        out.stdout.contains("\u{1b}[1;31mJWT\u{1b}[0m"),
        "{:?}",
        out.stdout
    );
    assert!(
        out.stdout.contains("\u{1b}[36menv\u{1b}[0m"),
        "{:?}",
        out.stdout
    );
    assert!(
        out.stdout
            .starts_with("\u{1b}[35mlogs/events.jsonl\u{1b}[0m:"),
        "{:?}",
        out.stdout
    );
    // Not a terminal: no colour by default.
    let out = grep(&ws, &["JWT", "logs"]).code(0);
    assert!(!out.stdout.contains('\u{1b}'));
}

#[test]
fn a_closed_pipe_is_not_an_error() {
    let ws = Workspace::new();
    let mut s = String::new();
    for i in 0..200_000 {
        s.push_str(&format!("line {i} with a match\n"));
    }
    ws.write("big.log", s);
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_recur"))
        .current_dir(ws.path())
        .args(["grep", "match", "big.log"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut first = String::new();
    stdout.read_line(&mut first).unwrap();
    assert_eq!(first, "line 0 with a match\n");
    drop(stdout); // like `| head -1`
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(String::from_utf8_lossy(&out.stderr), "");
}

/// Runs `recur ARGS`, reads one line of its output and closes the pipe (`| head -1`).
/// Returns the exit code and stderr.
fn first_line_then_close(ws: &Workspace, args: &[&str]) -> (Option<i32>, String, String) {
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_recur"))
        .current_dir(ws.path())
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut first = String::new();
    stdout.read_line(&mut first).unwrap();
    drop(stdout);
    let out = child.wait_with_output().unwrap();
    (
        out.status.code(),
        first,
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn a_file_error_still_exits_2_when_the_pipe_closes_afterwards() {
    let ws = Workspace::new();
    let mut s = String::new();
    for i in 0..200_000 {
        s.push_str(&format!("line {i} with a match\n"));
    }
    ws.write("big.log", &s);
    // A path that does not exist, before the output is closed.
    let (code, first, stderr) =
        first_line_then_close(&ws, &["grep", "match", "missing.log", "big.log"]);
    assert!(first.ends_with("line 0 with a match\n"), "{first}");
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("missing.log: no such file"), "{stderr}");
    // A read error (a truncated archive) in a file printed before the pipe closes: the
    // error is still reported and still decides the exit code.
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(s.as_bytes()).unwrap();
    let gz = e.finish().unwrap();
    ws.write("a-cut.gz", &gz[..gz.len() / 2]);
    let (code, first, stderr) =
        first_line_then_close(&ws, &["grep", "match", "a-cut.gz", "big.log"]);
    assert_eq!(
        first, "a-cut.gz:1:line 0 with a match\n",
        "printed from the archive"
    );
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("a-cut.gz"), "{stderr}");
    assert!(stderr.contains("truncated"), "{stderr}");
    // Without an error, closing the pipe is still not one.
    let (code, _, stderr) = first_line_then_close(&ws, &["grep", "match", "big.log", "big.log"]);
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(stderr, "");
}

#[test]
fn never_touches_the_state() {
    let ws = Workspace::new();
    ws.shipped_rules();
    let logs = repo().join("examples/logs");
    // No state yet: grep creates none.
    ws.recur()
        .args(["grep", "--rule", "WEBSOCKET_AUTH_NO_TOKEN_PERSISTENT_001"])
        .arg(&logs)
        .run()
        .code(0);
    assert!(!ws.join(".recur").exists());
    // A state written by scan is left byte for byte as it was.
    ws.recur().args(["scan", "--no-notify"]).arg(&logs).run();
    let db = ws.join(".recur/state.db");
    let listing = |dir: &std::path::Path| {
        let mut v: Vec<_> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                let m = e.metadata().unwrap();
                (
                    e.file_name(),
                    m.len(),
                    m.modified().unwrap(),
                    std::fs::read(e.path()).unwrap(),
                )
            })
            .collect();
        v.sort();
        v
    };
    assert!(db.exists());
    let before = listing(&ws.join(".recur"));
    for args in [
        vec!["grep", "--rule", "WEBSOCKET_AUTH_NO_TOKEN_PERSISTENT_001"],
        vec!["grep", "--timeline", "-w", "error_code=NO_TOKEN"],
        vec!["grep", "-c", "NO_TOKEN"],
    ] {
        ws.recur().args(args).arg(&logs).run().code(0);
    }
    assert_eq!(listing(&ws.join(".recur")), before);
}

#[test]
fn redact_masks_secrets_in_every_output() {
    let ws = Workspace::new();
    ws.write(
        "a.jsonl",
        concat!(
            r#"{"code":"NO_TOKEN","headers":{"Authorization":"Bearer abcdefghijkl"},"api_token":"s3cr3t-value"}"#,
            "\n"
        ),
    );
    let plain = grep(&ws, &["-w", "code=NO_TOKEN", "a.jsonl"]).code(0);
    assert!(
        plain.stdout.contains("abcdefghijkl"),
        "grep shows logs as they are by default"
    );
    for mode in [
        &["--json"][..],
        &["--fields", "headers.Authorization,api_token"],
        &[],
    ] {
        let out = ws
            .recur()
            .args(["grep", "--redact", "-w", "code=NO_TOKEN"])
            .args(mode)
            .arg("a.jsonl")
            .run()
            .code(0);
        assert!(
            !out.stdout.contains("abcdefghijkl"),
            "{mode:?}: {}",
            out.stdout
        );
        assert!(
            out.stdout.contains("[REDACTED]"),
            "{mode:?}: {}",
            out.stdout
        );
        if !mode.is_empty() {
            assert!(!out.stdout.contains("s3cr3t"), "{mode:?}: {}", out.stdout);
        }
    }
}

/// Whether tests must fail rather than skip when a tool they drive is missing: in CI (`CI`
/// set, as CI services do) or when `RECUR_REQUIRE_TOOLS` is set (`.ci/run` sets it).
fn tools_required() -> bool {
    let set =
        |v: &str| std::env::var_os(v).is_some_and(|x| !x.is_empty() && x != "0" && x != "false");
    set("CI") || set("RECUR_REQUIRE_TOOLS")
}

/// Runs `recur ARGS` on a pseudo-terminal (util-linux `script`), or `None` when `script` is
/// not installed. Returns the exit code and what the terminal showed.
fn on_terminal(ws: &Workspace, args: &str, no_color: bool) -> Option<(i32, String)> {
    let mut cmd = std::process::Command::new("script");
    cmd.current_dir(ws.path())
        .args([
            "-qec",
            &format!("{} {args}", env!("CARGO_BIN_EXE_recur")),
            "/dev/null",
        ])
        .stdin(Stdio::null())
        .env_remove("RECUR_COLOR")
        .env_remove("NO_COLOR");
    if no_color {
        cmd.env("NO_COLOR", "1");
    }
    let out = cmd.output().ok()?;
    Some((
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    ))
}

#[test]
fn on_a_terminal_colour_is_automatic_and_stdin_is_not_read() {
    let ws = events_ws();
    let Some((code, shown)) = on_terminal(&ws, "grep JWT logs/events.jsonl", false) else {
        // A developer machine may lack `script`; CI installs it and must not skip silently.
        assert!(
            !tools_required(),
            "`script` (bsdutils/util-linux) is not installed, and CI or RECUR_REQUIRE_TOOLS \
             says the tests must not skip: install it (`apt-get install bsdutils`)"
        );
        eprintln!("skipped: `script` is not installed (apt-get install bsdutils)");
        return;
    };
    assert_eq!(code, 0, "{shown}");
    assert!(shown.contains("\u{1b}[1;31mJWT\u{1b}[0m"), "{shown:?}");
    let (code, shown) = on_terminal(&ws, "grep JWT logs/events.jsonl", true).unwrap();
    assert_eq!(code, 0, "{shown}");
    assert!(
        shown.contains("JWT") && !shown.contains('\u{1b}'),
        "NO_COLOR: {shown:?}"
    );
    // No PATH and a terminal on stdin: an error with a hint, not a hang.
    let (code, shown) = on_terminal(&ws, "grep JWT", false).unwrap();
    assert_eq!(code, 2, "{shown}");
    assert!(shown.contains("standard input is a terminal"), "{shown}");
}
