//! `recur scan` end to end: every input format, every operator, every kind of bad input.

use std::io::Write;

use crate::harness::{Workspace, repo};

/// A rule fixed long before the test data, so every timed match is a recurrence.
const NO_TOKEN_RULE: &str = r#"
id = "NO_TOKEN_TEST"
title = "No token"
owner = "team@example.com"
analysis = "https://example.com/a"
[fix]
status = "fixed"
fixed_at = "2025-01-01T00:00:00Z"
[[signature]]
error_code = "NO_TOKEN"
[[signature]]
err.code = "NO_TOKEN"
[[signature]]
_line = { contains = "text NO_TOKEN" }
"#;

fn scan_json(ws: &Workspace, paths: &[&str]) -> serde_json::Value {
    let out = ws
        .recur()
        .args(["scan", "--no-state", "--format", "json", "--no-notify"])
        .args(paths)
        .run();
    assert!(
        out.code == 0 || out.code == 1,
        "exit {}\n{}\n{}",
        out.code,
        out.stdout,
        out.stderr
    );
    out.json()
}

fn rem<'a>(doc: &'a serde_json::Value, id: &str) -> &'a serde_json::Value {
    doc["remediations"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["id"] == id)
        .unwrap()
}

fn gz(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

#[test]
fn shipped_examples_show_the_recurrence() {
    let ws = Workspace::new();
    ws.shipped_rules();
    let out = ws
        .recur()
        .args(["scan", "--no-state", "--format", "json", "--no-notify"])
        .arg(repo().join("examples/logs"))
        .run()
        .code(1);
    let doc = out.json();
    let r = rem(&doc, "WEBSOCKET_AUTH_NO_TOKEN_PERSISTENT_001");
    assert_eq!(r["verdict"], "recurring");
    assert_eq!(r["recurrences"], 6);
    assert_eq!(r["before_fix"], 15);
    assert_eq!(
        rem(&doc, "GATEWAY_AUTH_UPSTREAM_TIMEOUT_002")["verdict"],
        "verified"
    );
    assert_eq!(rem(&doc, "PAYMENTS_WORKER_OOM_003")["occurrences"], 4);
    assert_eq!(doc["inputs"]["files"], 3);
    assert_eq!(doc["inputs"]["invalid"], 0);
}

/// Every input format: (file name, bytes, expected recurrences).
fn format_cases() -> Vec<(&'static str, Vec<u8>, u64)> {
    let jsonl = concat!(
        r#"{"timestamp":"2025-09-10T08:00:00Z","error_code":"NO_TOKEN"}"#,
        "\n",
        r#"{ "error_code" : "NO_TOKEN" , "timestamp" : "2025-09-10T08:00:01Z" }"#,
        "\n",
        r#"{"timestamp":"2025-09-10T08:00:02Z","error_code":"\u004eO_TOKEN"}"#,
        "\n",
        r#"{"timestamp":"2025-09-10T08:00:03Z","error_code":"NO_TOKEN_SCOPE","note":"NO_TOKEN"}"#,
        "\n",
        r#"{"timestamp":"2025-09-10T08:00:04Z","err":{"code":"NO_TOKEN"}}"#,
        "\n",
    );
    let array = "[\n  {\n    \"timestamp\": \"2025-09-10T08:00:00Z\",\n    \"error_code\": \"NO_TOKEN\"\n  },\n  {\"timestamp\": \"2025-09-10T08:00:01Z\", \"error_code\": \"OTHER\"}\n]\n";
    let gcp = r#"[{"insertId":"a1","jsonPayload":{"error_code":"NO_TOKEN"},"timestamp":"2025-09-10T08:00:00Z","severity":"ERROR","logName":"projects/p/logs/x","resource":{"type":"cloud_run_revision","labels":{"service_name":"ws"}}},
 {"insertId":"a2","textPayload":"boom text NO_TOKEN here","timestamp":"2025-09-10T08:00:01Z","logName":"projects/p/logs/x"},
 {"insertId":"a3","jsonPayload":{"error_code":"OK"},"timestamp":"2025-09-10T08:00:02Z","logName":"projects/p/logs/x"}]"#;
    let docker = concat!(
        r#"{"log":"{\"error_code\":\"NO_TOKEN\",\"ts\":\"2025-09-10T08:00:00Z\"}\n","stream":"stderr","time":"2025-09-10T08:00:00.1Z"}"#,
        "\n",
        r#"{"log":"plain text NO_TOKEN line\n","stream":"stdout","time":"2025-09-10T08:00:01Z"}"#,
        "\n",
        r#"{"log":"other\n","stream":"stdout","time":"2025-09-10T08:00:02Z"}"#,
        "\n",
    );
    let cri = concat!(
        "2025-09-10T08:00:00.000000001Z stdout P {\"error_co\n",
        "2025-09-10T08:00:00.000000002Z stdout F de\":\"NO_TOKEN\"}\n",
        "2025-09-10T08:00:01Z stderr F some text NO_TOKEN line\n",
        "2025-09-10T08:00:02Z stdout F {\"error_code\":\"OK\"}\n",
    );
    let logfmt = "ts=2025-09-10T08:00:00Z level=error error_code=NO_TOKEN msg=\"no jwt\"\nts=2025-09-10T08:00:01Z level=info error_code=OK\n";
    let text = "2025-09-10T08:00:00Z ERROR text NO_TOKEN seen\n2025-09-10 10:00:01+02:00 ERROR text NO_TOKEN again\nno time text NO_TOKEN\n";
    let crlf = "\u{feff}{\"timestamp\":\"2025-09-10T08:00:00Z\",\"error_code\":\"NO_TOKEN\"}\r\n{\"timestamp\":\"2025-09-10T08:00:01Z\",\"error_code\":\"NO_TOKEN\"}";
    let mut multi = gz(b"{\"timestamp\":\"2025-09-10T08:00:00Z\",\"error_code\":\"NO_TOKEN\"}\n");
    multi.extend(gz(
        b"{\"timestamp\":\"2025-09-10T08:00:01Z\",\"error_code\":\"NO_TOKEN\"}\n",
    ));
    let zst = zstd::encode_all(jsonl.as_bytes(), 3).unwrap();
    vec![
        ("app.jsonl", jsonl.as_bytes().to_vec(), 4),
        ("array.json", array.as_bytes().to_vec(), 1),
        ("gcp-export.json", gcp.as_bytes().to_vec(), 2),
        ("docker-json.log", docker.as_bytes().to_vec(), 2),
        ("cri.log", cri.as_bytes().to_vec(), 2),
        ("logfmt.log", logfmt.as_bytes().to_vec(), 1),
        ("text.log", text.as_bytes().to_vec(), 2),
        ("crlf-bom.jsonl", crlf.as_bytes().to_vec(), 2),
        ("multi.gz", multi, 2),
        ("export-0001", zst, 4),
    ]
}

#[test]
fn every_input_format_matches_the_same_rule() {
    for (name, bytes, want) in format_cases() {
        let ws = Workspace::new();
        ws.rule("r", NO_TOKEN_RULE);
        ws.write(&format!("logs/{name}"), &bytes);
        let doc = scan_json(&ws, &["logs"]);
        assert_eq!(
            rem(&doc, "NO_TOKEN_TEST")["recurrences"],
            want,
            "{name}: {doc:#}"
        );
        assert_eq!(doc["inputs"]["invalid"], 0, "{name}: {doc:#}");
    }
}

#[test]
fn directories_globs_and_stdin() {
    let ws = Workspace::new();
    ws.rule("r", NO_TOKEN_RULE);
    let line = "{\"timestamp\":\"2025-09-10T08:00:00Z\",\"error_code\":\"NO_TOKEN\",\"n\":#}\n";
    ws.write("logs/a/one.jsonl", line.replace('#', "1"));
    ws.write("logs/a/b/c/two.jsonl", line.replace('#', "2"));
    ws.write("logs/three.log", line.replace('#', "3"));
    let doc = scan_json(&ws, &["logs"]);
    assert_eq!(rem(&doc, "NO_TOKEN_TEST")["recurrences"], 3);
    let doc = scan_json(&ws, &["logs/a/*.jsonl", "logs/*.log"]);
    assert_eq!(rem(&doc, "NO_TOKEN_TEST")["recurrences"], 2);
    let out = ws
        .recur()
        .args(["scan", "--no-state", "--format", "json", "--no-notify", "-"])
        .stdin(line.replace('#', "9"))
        .run()
        .code(1);
    assert_eq!(rem(&out.json(), "NO_TOKEN_TEST")["recurrences"], 1);
}

/// Every operator: (condition lines in [[signature]], events, expected matches).
#[test]
fn every_operator() {
    let events = [
        r#"{"timestamp":"2025-09-10T08:00:00Z","code":"NO_TOKEN","status":500,"msg":"No JWT in headers","lat":12.5,"tags":["a","b"],"auth":{"present":false},"a.b":"dotted","flag":true}"#,
        r#"{"timestamp":"2025-09-10T08:00:01Z","code":"NO_TOKEN_SCOPE","status":"404","msg":"scope missing","lat":3,"tags":["c"],"auth":{"present":true},"flag":false}"#,
        r#"{"timestamp":"2025-09-10T08:00:02Z","code":"OK","status":200,"lat":null}"#,
    ];
    let cases: &[(&str, u64)] = &[
        (r#"code = "NO_TOKEN""#, 1),
        (r#"code = ["NO_TOKEN", "OK"]"#, 2),
        (r#"status = 500"#, 1),
        (r#"status = 404"#, 1),
        (r#"flag = false"#, 1),
        (r#"msg = { regex = '^No JWT' }"#, 1),
        (r#"msg = { contains = "missing" }"#, 1),
        (r#"code = { prefix = "NO_" }"#, 2),
        (r#"code = { suffix = "SCOPE" }"#, 1),
        (r#"msg = { exists = true }"#, 2),
        (r#"msg = { exists = false }"#, 1),
        (r#"code = { not = "OK" }"#, 2),
        (r#"code = { not = { prefix = "NO_" } }"#, 1),
        (r#"code = { not = ["OK", "NO_TOKEN"] }"#, 1),
        (r#"lat = { gt = 3 }"#, 1),
        (r#"lat = { ge = 3 }"#, 2),
        (r#"lat = { lt = 12.5 }"#, 1),
        (r#"lat = { le = 12.5 }"#, 2),
        (r#"tags = "b""#, 1),
        (r#"auth.present = false"#, 1),
        ("[signature.auth]\npresent = true", 1),
        (r#""a.b" = "dotted""#, 1),
        (r#"_line = { contains = '"status":200' }"#, 1),
        (r#"status = { gt = 400 }"#, 2),
    ];
    for (cond, want) in cases {
        let ws = Workspace::new();
        ws.rule(
            "r",
            &format!(
                "id = \"OP\"\ntitle = \"t\"\nowner = \"o@example.com\"\nanalysis = \"https://x\"\n[fix]\nstatus = \"fixed\"\nfixed_at = \"2025-01-01T00:00:00Z\"\n[[signature]]\n{cond}\n"
            ),
        );
        ws.write("e.jsonl", events.join("\n"));
        let doc = scan_json(&ws, &["e.jsonl"]);
        assert_eq!(rem(&doc, "OP")["recurrences"], *want, "condition `{cond}`");
    }
}

#[test]
fn scope_and_fix_time_split_before_and_after() {
    let ws = Workspace::new();
    ws.rule(
        "r",
        r#"
id = "SCOPED"
title = "t"
owner = "o@example.com"
analysis = "https://x"
[fix]
status = "fixed"
fixed_at = "2025-09-08T23:30:00Z"
verify = "1h"
[scope]
environment = "staging"
[[signature]]
error_code = "NO_TOKEN"
"#,
    );
    ws.write(
        "e.jsonl",
        [
            r#"{"timestamp":"2025-09-08T20:00:00Z","environment":"staging","error_code":"NO_TOKEN"}"#,
            r#"{"timestamp":"2025-09-08T23:30:00Z","environment":"staging","error_code":"NO_TOKEN"}"#,
            r#"{"timestamp":"2025-09-09T01:00:00Z","environment":"production","error_code":"NO_TOKEN"}"#,
            r#"{"timestamp":"2025-09-09T02:00:00Z","environment":"staging","error_code":"OK"}"#,
        ]
        .join("\n"),
    );
    let doc = scan_json(&ws, &["e.jsonl"]);
    let r = rem(&doc, "SCOPED");
    assert_eq!(r["before_fix"], 1);
    assert_eq!(
        r["recurrences"], 1,
        "an event exactly at fixed_at is a recurrence"
    );
    assert_eq!(r["first_seen"], "2025-09-08T20:00:00Z");
    assert_eq!(r["last_seen"], "2025-09-08T23:30:00Z");
    assert_eq!(r["verdict"], "recurring");
    // Sampled coverage (the default): the hours in scope, no counts.
    assert_eq!(r["coverage"], "sampled");
    assert_eq!(r["in_scope_events"], serde_json::Value::Null);
    assert_eq!(r["in_scope_hours"], 3);
    assert_eq!(r["last_in_scope"], "2025-09-09T02:00:00Z");
    // Exact coverage counts every in-scope event.
    ws.write("recur.toml", "[coverage]\nmode = \"exact\"\n");
    let doc = scan_json(&ws, &["e.jsonl"]);
    let r = rem(&doc, "SCOPED");
    assert_eq!(r["coverage"], "exact");
    assert_eq!(r["in_scope_events"], 3);
    assert_eq!(r["in_scope_since_fix"], 2);
    assert_eq!(r["in_scope_hours"], 3);
}

#[test]
fn verdicts_holding_verified_open_overdue() {
    let ws = Workspace::new();
    let base = |id: &str, fix: &str| {
        format!(
            "id = \"{id}\"\ntitle = \"t\"\nowner = \"o@example.com\"\nanalysis = \"https://x\"\n[fix]\n{fix}\n[scope]\nenv = \"staging\"\n[[signature]]\ncode = \"BOOM\"\n"
        )
    };
    ws.rule(
        "a",
        &base(
            "HOLDING",
            "status = \"fixed\"\nfixed_at = \"2025-09-10T00:00:00Z\"\nverify = \"24h\"",
        ),
    );
    ws.rule(
        "b",
        &base(
            "VERIFIED",
            "status = \"fixed\"\nfixed_at = \"2025-09-08T00:00:00Z\"\nverify = \"24h\"",
        ),
    );
    ws.rule(
        "c",
        &base(
            "OPEN",
            "status = \"open\"\ndeadline = \"2999-01-01T00:00:00Z\"",
        ),
    );
    ws.rule(
        "d",
        &base(
            "OVERDUE",
            "status = \"open\"\ndeadline = \"2020-01-01T00:00:00Z\"",
        ),
    );
    ws.write(
        "e.jsonl",
        [
            r#"{"timestamp":"2025-09-07T00:00:00Z","env":"staging","code":"BOOM"}"#,
            r#"{"timestamp":"2025-09-10T12:00:00Z","env":"staging","code":"OK"}"#,
        ]
        .join("\n"),
    );
    let out = ws
        .recur()
        .args(["scan", "--no-state", "--format", "json", "e.jsonl"])
        .run()
        .code(0);
    let doc = out.json();
    for (id, v) in [
        ("HOLDING", "holding"),
        ("VERIFIED", "verified"),
        ("OPEN", "open"),
        ("OVERDUE", "overdue"),
    ] {
        assert_eq!(rem(&doc, id)["verdict"], v, "{id}");
    }
}

#[test]
fn bad_lines_are_counted_reported_and_skipped() {
    let ws = Workspace::new();
    ws.rule("r", NO_TOKEN_RULE);
    let good = b"{\"timestamp\":\"2025-09-10T08:00:00Z\",\"error_code\":\"NO_TOKEN\"}\n";
    let mut data = Vec::new();
    data.extend_from_slice(good);
    data.extend_from_slice(
        b"{\"timestamp\":\"2025-09-10T08:00:00Z\",\"error_code\":\"NO_TOKEN\"\n",
    ); // 2: truncated
    data.extend_from_slice(b"{\"error_code\":\"NO_TOKEN\",}\n"); // 3: malformed, a candidate
    data.extend_from_slice(b"{\"error_code\":\"NO_TOKEN\xff\xfe\"}\n"); // 4: invalid UTF-8
    data.extend_from_slice(b"{\"a\":\"\0\0\"}\n"); // 5: NUL
    // 6 and 7: binary garbage (its CR LF cuts it into two records).
    data.extend_from_slice(&[
        0x89, b'P', b'N', b'G', 0x0d, 0x0a, 0x1a, 0x00, 0x01, 0xff, b'\n',
    ]);
    data.extend_from_slice(good);
    ws.write("logs/bad.jsonl", &data);
    ws.write("logs/empty.log", b"");
    let out = ws
        .recur()
        .args([
            "scan",
            "--no-state",
            "--format",
            "json",
            "--no-notify",
            "logs",
        ])
        .run()
        .code(1);
    let doc = out.json();
    assert_eq!(
        rem(&doc, "NO_TOKEN_TEST")["recurrences"],
        1,
        "the two good lines are one event (same bytes)"
    );
    assert_eq!(doc["inputs"]["invalid"], 6, "{doc:#}");
    assert_eq!(doc["errors"].as_array().unwrap().len(), 0);
    // The empty file is an input like any other: read, no line, no complaint.
    assert_eq!(doc["inputs"]["files"], 2, "bad.jsonl and empty.log");
    assert_eq!(doc["inputs"]["lines"], 8, "only bad.jsonl's lines");
    let warnings = doc["warnings"].as_array().unwrap();
    assert_eq!(warnings.len(), 1, "one summary per file: {warnings:?}");
    assert_eq!(warnings[0]["path"], "logs/bad.jsonl");
    assert_eq!(warnings[0]["line"], 2);
    let msg = warnings[0]["message"].as_str().unwrap();
    assert!(msg.contains("6 invalid records"), "{msg}");
    assert!(
        msg.contains("malformed JSON") && msg.contains("invalid UTF-8") && msg.contains("NUL"),
        "{msg}"
    );
}

#[test]
fn a_huge_line_is_skipped_with_bounded_memory() {
    let ws = Workspace::new();
    ws.rule("r", NO_TOKEN_RULE);
    let path = ws.join("huge.jsonl");
    {
        let mut f = std::io::BufWriter::new(std::fs::File::create(&path).unwrap());
        f.write_all(
            b"{\"timestamp\":\"2025-09-10T08:00:00Z\",\"error_code\":\"NO_TOKEN\",\"pad\":\"",
        )
        .unwrap();
        let chunk = vec![b'x'; 1 << 20];
        for _ in 0..100 {
            f.write_all(&chunk).unwrap();
        }
        f.write_all(b"\"}\n{\"timestamp\":\"2025-09-10T08:00:01Z\",\"error_code\":\"NO_TOKEN\"}\n")
            .unwrap();
    }
    let doc = scan_json(&ws, &["huge.jsonl"]);
    assert_eq!(rem(&doc, "NO_TOKEN_TEST")["recurrences"], 1);
    assert_eq!(doc["inputs"]["invalid"], 1);
    let msg = doc["warnings"][0]["message"].as_str().unwrap();
    assert!(msg.contains("over the line-length cap"), "{msg}");
    assert_eq!(doc["warnings"][0]["line"], 1);
}

#[test]
fn truncated_gzip_keeps_partial_results_and_exits_2() {
    let ws = Workspace::new();
    ws.rule("r", NO_TOKEN_RULE);
    let mut plain = Vec::new();
    for i in 0..20_000 {
        plain.extend(
            format!(
                "{{\"timestamp\":\"2025-09-10T08:00:00Z\",\"error_code\":\"NO_TOKEN\",\"n\":{i}}}\n"
            )
            .bytes(),
        );
    }
    let full = gz(&plain);
    ws.write("logs/cut.jsonl.gz", &full[..full.len() / 2]);
    ws.write(
        "logs/ok.jsonl",
        b"{\"timestamp\":\"2025-09-10T09:00:00Z\",\"error_code\":\"NO_TOKEN\"}\n",
    );
    let out = ws
        .recur()
        .args([
            "scan",
            "--no-state",
            "--format",
            "json",
            "--no-notify",
            "logs",
        ])
        .run()
        .code(2);
    let doc = out.json();
    let n = rem(&doc, "NO_TOKEN_TEST")["recurrences"].as_u64().unwrap();
    assert!(n > 1 && n < 20_001, "partial results kept: {n}");
    let errors = doc["errors"].as_array().unwrap();
    assert_eq!(errors.len(), 1);
    assert_eq!(errors[0]["path"], "logs/cut.jsonl.gz");
    assert!(
        errors[0]["message"].as_str().unwrap().contains("truncated"),
        "{errors:?}"
    );
}

#[cfg(unix)]
#[test]
fn symlink_loop_and_missing_paths_are_errors_but_the_scan_completes() {
    let ws = Workspace::new();
    ws.rule("r", NO_TOKEN_RULE);
    ws.write(
        "logs/a.jsonl",
        b"{\"timestamp\":\"2025-09-10T08:00:00Z\",\"error_code\":\"NO_TOKEN\"}\n",
    );
    std::os::unix::fs::symlink(ws.join("logs"), ws.join("logs/loop")).unwrap();
    let out = ws
        .recur()
        .args(["scan", "--no-state", "--format", "json", "logs", "nope.log"])
        .run()
        .code(2);
    let doc = out.json();
    assert_eq!(rem(&doc, "NO_TOKEN_TEST")["recurrences"], 1);
    let msgs: Vec<String> = doc["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e.to_string())
        .collect();
    assert_eq!(msgs.len(), 2, "{msgs:?}");
    assert!(msgs.iter().any(|m| m.contains("symlink loop")), "{msgs:?}");
    assert!(
        msgs.iter()
            .any(|m| m.contains("nope.log") && m.contains("no such file")),
        "{msgs:?}"
    );
}

#[cfg(unix)]
#[test]
fn unreadable_file_is_an_error_entry_and_exit_2() {
    use std::os::unix::fs::PermissionsExt;
    let ws = Workspace::new();
    ws.rule("r", NO_TOKEN_RULE);
    ws.write(
        "logs/a.jsonl",
        b"{\"timestamp\":\"2025-09-10T08:00:00Z\",\"error_code\":\"NO_TOKEN\"}\n",
    );
    let secret = ws.write("logs/secret.jsonl", b"{\"error_code\":\"NO_TOKEN\"}\n");
    std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o000)).unwrap();
    let mut cmd = ws
        .recur()
        .args(["scan", "--no-state", "--format", "json", "logs"]);
    if crate::harness::is_root() {
        // Root reads anything: run as an unprivileged user so permissions apply.
        crate::harness::open_up(ws.path());
        cmd = cmd.run_as_nobody();
    }
    let out = cmd.run().code(2);
    let doc = out.json();
    assert_eq!(rem(&doc, "NO_TOKEN_TEST")["recurrences"], 1);
    let e = &doc["errors"][0];
    assert_eq!(e["path"], "logs/secret.jsonl");
    assert!(
        e["message"].as_str().unwrap().contains("permission denied"),
        "{e}"
    );
}

#[test]
fn results_do_not_depend_on_threads_chunks_or_order() {
    let ws = Workspace::new();
    ws.rule("r", NO_TOKEN_RULE);
    // Three files (one with a broken line, one gzipped), events interleaved in time.
    let mut names = Vec::new();
    for f in 0..3 {
        let mut data = String::new();
        for i in 0..3000 {
            let n = i * 3 + f;
            let code = if n % 97 == 0 { "NO_TOKEN" } else { "OK" };
            data.push_str(&format!("{{\"timestamp\":\"2025-09-10T{:02}:{:02}:{:02}Z\",\"error_code\":\"{code}\",\"n\":{n}}}\n", n / 3600, (n / 60) % 60, n % 60));
            if i == 1500 && f == 1 {
                data.push_str("{broken\n");
            }
        }
        let name = if f == 2 {
            ws.write("part-2.jsonl.gz", gz(data.as_bytes()));
            "part-2.jsonl.gz".to_string()
        } else {
            let path = ws.write(&format!("part-{f}.jsonl"), &data);
            // Chunks read through a memory map; the `--no-mmap` run below reads them.
            ws.age(&path);
            format!("part-{f}.jsonl")
        };
        names.push(name);
    }
    let orders: [[usize; 3]; 4] = [[0, 1, 2], [2, 0, 1], [1, 2, 0], [0, 2, 1]];
    let mut docs = Vec::new();
    for ((threads, chunk, mmap), order) in [
        ("1", "1000000000", &[][..]),
        ("4", "4096", &[]),
        ("2", "777", &[]),
        ("2", "777", &["--no-mmap"]),
    ]
    .into_iter()
    .zip(orders)
    {
        let out = ws
            .recur()
            .args([
                "scan",
                "--no-state",
                "--format",
                "json",
                "--no-notify",
                "--threads",
                threads,
                "--chunk-bytes",
                chunk,
            ])
            .args(mmap)
            .args(order.map(|i| names[i].as_str()))
            .run()
            .code(1);
        let mut doc = out.json();
        doc["inputs"]["seconds"] = 0.into();
        docs.push(doc);
    }
    let warnings = docs[0]["warnings"].as_array().unwrap();
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert_eq!(warnings[0]["path"], "part-1.jsonl");
    assert_eq!(warnings[0]["line"], 1502);
    assert_eq!(docs[0]["inputs"]["files"], 3);
    assert_eq!(docs[0], docs[1]);
    assert_eq!(docs[0], docs[2]);
    assert_eq!(docs[0], docs[3]);
    assert_eq!(rem(&docs[0], "NO_TOKEN_TEST")["recurrences"], 93);
}

/// An input with many occurrences is stored in parts while it is read (its batch opens after
/// a few thousand): the same findings and the same state as an input stored whole, whatever
/// the threads and chunks; a re-run and a re-read change nothing.
#[test]
fn a_dense_input_is_stored_while_it_is_read() {
    let ws = Workspace::new();
    ws.rule("r", NO_TOKEN_RULE);
    let mut data = String::new();
    for n in 0..30_000 {
        let code = if n % 3 == 0 { "OK" } else { "NO_TOKEN" };
        data.push_str(&format!(
            "{{\"timestamp\":\"2025-09-10T{:02}:{:02}:{:02}Z\",\"error_code\":\"{code}\",\"n\":{n}}}\n",
            n / 3600,
            (n / 60) % 60,
            n % 60
        ));
        // The same event twice, far apart: in two different parts.
        if n == 10 || n == 25_000 {
            data.push_str("{\"timestamp\":\"2025-09-10T00:00:10Z\",\"error_code\":\"NO_TOKEN\",\"n\":\"dup\"}\n");
        }
    }
    let dense = ws.write("dense.jsonl", &data);
    ws.age(&dense);
    ws.write(
        "small.jsonl",
        "{\"timestamp\":\"2025-09-10T12:00:00Z\",\"error_code\":\"NO_TOKEN\"}\n",
    );
    let scan = |state: &str, threads: &str, chunk: &str, code: i32| {
        let mut doc = ws
            .recur()
            .args(["scan", "--state", state, "--format", "json", "--no-notify"])
            .args(["--threads", threads, "--chunk-bytes", chunk])
            .args(["dense.jsonl", "small.jsonl"])
            .run()
            .code(code)
            .json();
        doc["inputs"]["seconds"] = 0.into();
        doc
    };
    let whole = scan("whole.db", "1", "1000000000", 1);
    let r = rem(&whole, "NO_TOKEN_TEST");
    assert_eq!(r["occurrences"], 20_000 + 1 + 1, "{r}");
    for (i, (threads, chunk)) in [("1", "65536"), ("2", "65536"), ("2", "4099")]
        .into_iter()
        .enumerate()
    {
        let state = format!("parts-{i}.db");
        let doc = scan(&state, threads, chunk, 1);
        assert_eq!(doc, whole, "threads {threads}, chunks of {chunk} bytes");
        // Nothing new the second time, and a forced re-read replaces its own findings.
        let again = scan(&state, threads, chunk, 0);
        assert_eq!(again["new_recurrences"], 0);
        assert_eq!(again["inputs"]["skipped"], 2);
        let mut reread = ws
            .recur()
            .args([
                "scan",
                "--state",
                &state,
                "--format",
                "json",
                "--no-notify",
                "--rescan",
            ])
            .args(["--threads", threads, "--chunk-bytes", chunk])
            .args(["dense.jsonl", "small.jsonl"])
            .run()
            .code(0)
            .json();
        assert_eq!(reread["new_recurrences"], 0);
        assert_eq!(
            rem(&reread, "NO_TOKEN_TEST")["occurrences"],
            r["occurrences"]
        );
        reread["inputs"]["seconds"] = 0.into();
    }
}

#[test]
fn input_flag_forces_the_format() {
    let ws = Workspace::new();
    ws.rule("r", NO_TOKEN_RULE);
    ws.write(
        "a.log",
        "{\"timestamp\":\"2025-09-10T08:00:00Z\",\"error_code\":\"NO_TOKEN\"}\n2025-09-10T08:01:00Z text NO_TOKEN seen\n",
    );
    let run = |format: &str| {
        let out = ws
            .recur()
            .args(["scan", "--no-state", "--format", "json", "--no-notify"])
            .args(["--input", format, "a.log"])
            .run();
        let doc = out.json();
        rem(&doc, "NO_TOKEN_TEST")["recurrences"].as_u64().unwrap()
    };
    assert_eq!(run("auto"), 2, "the JSON line and the text line");
    // As text, the JSON line has no `error_code` field: only the `_line` signature matches.
    assert_eq!(run("text"), 1);
    // As JSON, the text line is not an event.
    assert_eq!(run("json"), 1);
}

#[test]
fn max_line_bytes_flag_caps_records() {
    let ws = Workspace::new();
    ws.rule("r", NO_TOKEN_RULE);
    let long = format!(
        "{{\"timestamp\":\"2025-09-10T08:00:00Z\",\"error_code\":\"NO_TOKEN\",\"pad\":\"{}\"}}\n",
        "x".repeat(3000)
    );
    let short = "{\"timestamp\":\"2025-09-10T08:00:01Z\",\"error_code\":\"NO_TOKEN\"}\n";
    ws.write("a.jsonl", long + short);
    let run = |extra: &[&str]| {
        ws.recur()
            .args(["scan", "--no-state", "--format", "json", "--no-notify"])
            .args(extra)
            .arg("a.jsonl")
            .run()
            .json()
    };
    let doc = run(&[]);
    assert_eq!(rem(&doc, "NO_TOKEN_TEST")["recurrences"], 2);
    assert_eq!(doc["inputs"]["invalid"], 0);
    // (The reader never caps below 1 KiB.)
    let doc = run(&["--max-line-bytes", "2000"]);
    assert_eq!(rem(&doc, "NO_TOKEN_TEST")["recurrences"], 1);
    assert_eq!(doc["inputs"]["invalid"], 1);
    assert_eq!(doc["warnings"][0]["line"], 1);
    assert!(
        doc["warnings"][0]["message"]
            .as_str()
            .unwrap()
            .contains("over the line-length cap"),
        "{doc:#}"
    );
}

#[test]
fn config_flag_is_read_and_a_missing_one_is_an_error() {
    let ws = Workspace::new();
    ws.rule("r", NO_TOKEN_RULE);
    // Two exports of one event with different bytes: one event only by its id field.
    ws.write(
        "a.jsonl",
        "{\"timestamp\":\"2025-09-10T08:00:00Z\",\"error_code\":\"NO_TOKEN\",\"rid\":\"r-1\",\"export\":1}\n{\"timestamp\":\"2025-09-10T08:00:00Z\",\"error_code\":\"NO_TOKEN\",\"rid\":\"r-1\",\"export\":2}\n",
    );
    ws.write("conf/custom.toml", "[input]\nid_fields = [\"rid\"]\n");
    let run = |extra: &[&str]| {
        ws.recur()
            .args(["scan", "--no-state", "--format", "json", "--no-notify"])
            .args(extra)
            .arg("a.jsonl")
            .run()
    };
    let doc = run(&[]).code(1).json();
    assert_eq!(
        rem(&doc, "NO_TOKEN_TEST")["recurrences"],
        2,
        "hashes differ"
    );
    let doc = run(&["--config", "conf/custom.toml"]).code(1).json();
    assert_eq!(rem(&doc, "NO_TOKEN_TEST")["recurrences"], 1, "one `rid`");
    let out = run(&["--config", "conf/missing.toml"]).code(2);
    assert!(out.stderr.contains("conf/missing.toml"), "{}", out.stderr);
}

#[test]
fn since_and_until_in_event_time() {
    let ws = Workspace::new();
    ws.rule("r", NO_TOKEN_RULE);
    ws.write(
        "e.jsonl",
        (0..10)
            .map(|h| {
                format!(
                    "{{\"timestamp\":\"2025-09-10T{h:02}:00:00Z\",\"error_code\":\"NO_TOKEN\"}}"
                )
            })
            .collect::<Vec<_>>()
            .join("\n"),
    );
    let run = |extra: &[&str]| {
        let out = ws
            .recur()
            .args(["scan", "--no-state", "--format", "json", "--no-notify"])
            .args(extra)
            .arg("e.jsonl")
            .run();
        rem(&out.json(), "NO_TOKEN_TEST")["recurrences"]
            .as_u64()
            .unwrap()
    };
    assert_eq!(run(&["--since", "2025-09-10T05:00:00Z"]), 5);
    assert_eq!(run(&["--until", "2025-09-10T05:00:00Z"]), 5);
    assert_eq!(
        run(&["--since", "3h"]),
        4,
        "a duration back from the newest event (09:00)"
    );
    assert_eq!(
        run(&[
            "--since",
            "2025-09-10T02:00:00+02:00",
            "--until",
            "2025-09-10T03:00:00Z"
        ]),
        3
    );
}

#[test]
fn human_output_names_verdicts_owner_and_analysis() {
    let ws = Workspace::new();
    ws.shipped_rules();
    let out = ws
        .recur()
        .args(["scan", "--no-state", "--no-notify", "--color", "never"])
        .arg(repo().join("examples/logs"))
        .run()
        .code(1);
    for needle in [
        "REMEDIATION",
        "VERDICT",
        "WEBSOCKET_AUTH_NO_TOKEN_PERSISTENT_001",
        "recurring",
        "auth-oncall@example.com",
        "https://docs.example.com/incidents/WEBSOCKET_AUTH_NO_TOKEN_FIVE_WHYS_ANALYSIS_20250908.md",
        "verified",
        "overdue",
    ] {
        assert!(
            out.stdout.contains(needle),
            "missing {needle}:\n{}",
            out.stdout
        );
    }
    assert!(!out.stdout.contains('\u{1b}'));
}

#[test]
fn json_document_snapshot() {
    let ws = Workspace::new();
    ws.rule(
        "r",
        r#"
id = "SNAP_001"
title = "Snapshot rule"
severity = "warning"
owner = "o@example.com"
analysis = "https://example.com/analysis"
action = "ROLL_BACK"
[fix]
status = "fixed"
fixed_at = "2025-09-10T00:00:00Z"
verify = "2h"
[scope]
env = "staging"
[[signature]]
code = "BOOM"
"#,
    );
    ws.write(
        "e.jsonl",
        [
            r#"{"timestamp":"2025-09-09T23:00:00Z","env":"staging","code":"BOOM","token":"secret-1"}"#,
            r#"{"timestamp":"2025-09-10T01:00:00Z","env":"staging","code":"BOOM"}"#,
            r#"{"timestamp":"2025-09-10T01:10:00Z","env":"staging","code":"BOOM"}"#,
            r#"{"timestamp":"2025-09-10T03:00:00Z","env":"staging","code":"OK"}"#,
            r#"not json at all"#,
        ]
        .join("\n"),
    );
    let out = ws
        .recur()
        .args([
            "scan",
            "--no-state",
            "--format",
            "json",
            "--no-notify",
            "e.jsonl",
        ])
        .run()
        .code(1);
    insta::assert_json_snapshot!(out.json(), { ".inputs.seconds" => "[seconds]" });
}

/// The shipped rules are valid and their own `[[example]]`s pass.
#[test]
fn shipped_rules_check_and_pass_their_examples() {
    let ws = Workspace::new();
    ws.shipped_rules();
    ws.recur().arg("check").run().code(0);
    let out = ws.recur().arg("test").run().code(0);
    assert!(out.stdout.contains(" 0 failed"), "{}", out.stdout);
    assert!(!out.stdout.contains("FAIL "), "{}", out.stdout);
}
