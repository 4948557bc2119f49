//! Tracking through the binary: state, episodes, verdicts, idempotent and cumulative runs.

use jiff::{SignedDuration, Timestamp};

use crate::harness::{Workspace, is_root, open_up};

/// The fix time of the scenario rule.
const T: &str = "2025-09-08T23:30:00Z";

fn t0() -> Timestamp {
    T.parse().unwrap()
}

/// A rule fixed at `T` in staging with the given `[alert]` body.
fn rule(alert: &str) -> String {
    format!(
        r#"
id = "R1"
title = "NO_TOKEN"
owner = "auth@example.com"
analysis = "https://docs.example.com/a.md"
[fix]
status = "fixed"
fixed_at = "{T}"
verify = "24h"
[scope]
environment = "staging"
[[signature]]
error_code = "NO_TOKEN"
[alert]
{alert}
"#
    )
}

/// JSON lines for events at minute offsets from `T`: (minutes, is_error).
fn events(evs: &[(i64, bool)]) -> String {
    let mut s = String::new();
    for (i, (m, err)) in evs.iter().enumerate() {
        let t = t0() + SignedDuration::from_mins(*m);
        let code = if *err { "NO_TOKEN" } else { "OK" };
        s.push_str(&format!("{{\"timestamp\":\"{t}\",\"environment\":\"staging\",\"error_code\":\"{code}\",\"event_id\":\"e{i}-{m}\"}}\n"));
    }
    s
}

fn scan(ws: &Workspace, paths: &[&str]) -> serde_json::Value {
    let out = ws
        .recur()
        .args(["scan", "--format", "json", "--no-notify"])
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

fn r1(doc: &serde_json::Value) -> &serde_json::Value {
    doc["remediations"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["id"] == "R1")
        .unwrap()
}

#[test]
fn quiet_day_after_the_fix_is_verified_half_a_day_is_holding() {
    let ws = Workspace::new();
    ws.rule("r", &rule(""));
    ws.write(
        "half.jsonl",
        events(&(0..=12).map(|h| (h * 60, false)).collect::<Vec<_>>()),
    );
    let doc = scan(&ws, &["half.jsonl"]);
    assert_eq!(r1(&doc)["verdict"], "holding");
    assert_eq!(r1(&doc)["quiet"], "12h");
    assert!(
        r1(&doc)["progress"]
            .as_str()
            .unwrap()
            .starts_with("12h of 24h quiet, in scope during 13 hours"),
        "{}",
        r1(&doc)["progress"]
    );
    ws.write(
        "rest.jsonl",
        events(&(13..=25).map(|h| (h * 60, false)).collect::<Vec<_>>()),
    );
    let doc = scan(&ws, &["half.jsonl", "rest.jsonl"]);
    assert_eq!(r1(&doc)["verdict"], "verified");
    assert_eq!(
        doc["inputs"]["skipped"], 1,
        "half.jsonl was already scanned"
    );
}

#[test]
fn recurrence_at_t_plus_30h_is_one_episode_and_one_intent() {
    let ws = Workspace::new();
    ws.rule("r", &rule(""));
    ws.write(
        "a.jsonl",
        events(&[(-60, true), (600, false), (30 * 60, true)]),
    );
    let out = ws
        .recur()
        .args(["scan", "--format", "json", "--no-notify", "a.jsonl"])
        .run()
        .code(1);
    let doc = out.json();
    assert_eq!(r1(&doc)["before_fix"], 1);
    assert_eq!(r1(&doc)["recurrences"], 1);
    assert_eq!(r1(&doc)["episodes"], 1);
    let n = doc["notifications"].as_array().unwrap();
    assert_eq!(n.len(), 1);
    assert_eq!(n[0]["kind"], "open");
    assert_eq!(n[0]["key"], "R1/20250910T053000Z/0");
    assert_eq!(n[0]["episode_start"], "2025-09-10T05:30:00Z");
}

#[test]
fn a_burst_is_one_episode() {
    let ws = Workspace::new();
    ws.rule("r", &rule("threshold = 3\nwindow = \"10m\""));
    ws.write(
        "a.jsonl",
        events(&(0..10).map(|i| (120 + i * 3, true)).collect::<Vec<_>>()),
    );
    let doc = scan(&ws, &["a.jsonl"]);
    assert_eq!(r1(&doc)["recurrences"], 10);
    assert_eq!(r1(&doc)["episodes"], 1);
    assert_eq!(doc["notifications"].as_array().unwrap().len(), 1);
    assert_eq!(
        doc["notifications"][0]["count"], 3,
        "opened when the third fell within the window"
    );
}

#[test]
fn below_threshold_no_episode_but_still_recurring() {
    let ws = Workspace::new();
    ws.rule("r", &rule("threshold = 3\nwindow = \"10m\""));
    ws.write("a.jsonl", events(&[(60, true), (120, true), (180, true)]));
    let out = ws
        .recur()
        .args(["scan", "--format", "json", "--no-notify", "a.jsonl"])
        .run()
        .code(1);
    let doc = out.json();
    assert_eq!(r1(&doc)["verdict"], "recurring");
    assert_eq!(r1(&doc)["episodes"], 0);
    assert!(doc["notifications"].as_array().unwrap().is_empty());
}

#[test]
fn reminder_after_repeat_while_the_episode_lasts() {
    let ws = Workspace::new();
    ws.rule("r", &rule("window = \"1h\"\nrepeat = \"6h\""));
    // Every 30 minutes for 7 hours.
    ws.write(
        "a.jsonl",
        events(&(0..=14).map(|i| (60 + i * 30, true)).collect::<Vec<_>>()),
    );
    let doc = scan(&ws, &["a.jsonl"]);
    let kinds: Vec<_> = doc["notifications"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["kind"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(kinds, ["open", "reminder"]);
    assert_eq!(doc["notifications"][1]["key"], "R1/20250909T003000Z/1");
    assert_eq!(r1(&doc)["episodes"], 1);
}

#[test]
fn a_quiet_gap_starts_a_new_episode() {
    let ws = Workspace::new();
    ws.rule("r", &rule("window = \"1h\""));
    ws.write("a.jsonl", events(&[(60, true), (70, true), (600, true)]));
    let doc = scan(&ws, &["a.jsonl"]);
    assert_eq!(r1(&doc)["episodes"], 2);
    assert_eq!(doc["notifications"].as_array().unwrap().len(), 2);
}

#[test]
fn moving_fixed_at_reclassifies_without_rescanning() {
    let ws = Workspace::new();
    ws.rule("r", &rule(""));
    ws.write("a.jsonl", events(&[(-120, true), (-60, true), (60, true)]));
    let doc = scan(&ws, &["a.jsonl"]);
    assert_eq!(
        (
            r1(&doc)["before_fix"].as_u64(),
            r1(&doc)["recurrences"].as_u64()
        ),
        (Some(2), Some(1))
    );
    // A new fix shipped two hours later: the recurrence at T+1h now precedes it.
    ws.rule("r", &rule("").replace(T, "2025-09-09T01:30:00Z"));
    let doc = scan(&ws, &["a.jsonl"]);
    assert_eq!(doc["inputs"]["files"], 0, "nothing rescanned");
    assert_eq!(
        (
            r1(&doc)["before_fix"].as_u64(),
            r1(&doc)["recurrences"].as_u64()
        ),
        (Some(3), Some(0))
    );
    assert_eq!(r1(&doc)["verdict"], "holding");
}

#[test]
fn running_the_same_scan_twice_changes_nothing() {
    let ws = Workspace::new();
    ws.rule("r", &rule(""));
    ws.write(
        "a.jsonl",
        events(&[(-60, true), (60, true), (61, true), (600, true)]),
    );
    let first = ws
        .recur()
        .args(["scan", "--format", "json", "a.jsonl"])
        .run()
        .code(1);
    assert!(
        first.stderr.contains("\"dedup_key\":\"R1/"),
        "console notification:\n{}",
        first.stderr
    );
    for flags in [&[][..], &["--rescan"][..]] {
        let again = ws
            .recur()
            .args(["scan", "--format", "json"])
            .args(flags)
            .arg("a.jsonl")
            .run()
            .code(0);
        let (a, b) = (first.json(), again.json());
        assert_eq!(r1(&a)["recurrences"], r1(&b)["recurrences"]);
        assert_eq!(r1(&a)["episodes"], r1(&b)["episodes"]);
        assert!(b["notifications"].as_array().unwrap().is_empty());
        assert_eq!(b["delivery"]["sent"], 0);
        assert!(
            !again.stderr.contains("dedup_key"),
            "nothing re-notified:\n{}",
            again.stderr
        );
    }
}

#[test]
fn overlapping_exports_count_an_event_once() {
    let ws = Workspace::new();
    ws.rule("r", &rule(""));
    let all = events(&[(60, true), (120, true), (180, true), (240, true)]);
    let lines: Vec<&str> = all.lines().collect();
    ws.write("export-1.jsonl", lines[..3].join("\n"));
    ws.write("export-2.jsonl", lines[1..].join("\n"));
    let doc = scan(&ws, &["export-1.jsonl", "export-2.jsonl"]);
    assert_eq!(r1(&doc)["recurrences"], 4);
}

#[test]
fn first_run_over_history_notifies_the_newest_and_digests_the_older() {
    let ws = Workspace::new();
    ws.rule("r", &rule("window = \"1h\""));
    ws.rule(
        "r2",
        &rule("window = \"1h\"")
            .replace("\"R1\"", "\"R2\"")
            .replace("title = \"NO_TOKEN\"", "title = \"Second remediation\"")
            .replace("error_code = \"NO_TOKEN\"", "error_code = \"OTHER\""),
    );
    // 12 episodes, 12 hours apart, alternating between the two remediations.
    let mut lines = String::new();
    for k in 0..12i64 {
        let t = t0() + SignedDuration::from_mins(60 + k * 720);
        let code = if k % 2 == 0 { "NO_TOKEN" } else { "OTHER" };
        lines.push_str(&format!("{{\"timestamp\":\"{t}\",\"environment\":\"staging\",\"error_code\":\"{code}\",\"event_id\":\"e{k}\"}}\n"));
    }
    ws.write("a.jsonl", lines);
    let out = ws
        .recur()
        .args([
            "scan",
            "--format",
            "json",
            "--max-notifications",
            "5",
            "a.jsonl",
        ])
        .run()
        .code(1);
    let doc = out.json();
    let n = doc["notifications"].as_array().unwrap();
    let kinds: Vec<&str> = n.iter().map(|x| x["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds.iter().filter(|k| **k == "open").count(), 12);
    assert_eq!(kinds.iter().filter(|k| **k == "digest").count(), 1);
    // In due order: the 7 oldest are folded, the 5 newest sent, then the digest.
    let statuses: Vec<&str> = n.iter().map(|x| x["status"].as_str().unwrap()).collect();
    assert_eq!(
        statuses,
        [&["suppressed"; 7][..], &["sent"; 6][..]].concat(),
        "{n:#?}"
    );
    let newest = t0() + SignedDuration::from_mins(60 + 11 * 720);
    assert_eq!(n[11]["episode_start"], newest.to_string());
    assert_eq!(n[12]["kind"], "digest");
    // The digest names every remediation it folds.
    let digest: serde_json::Value = out
        .stderr
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|v| v["kind"] == "digest")
        .unwrap_or_else(|| panic!("no digest on the console:\n{}", out.stderr));
    let folded: Vec<&str> = digest["folded"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l.as_str().unwrap())
        .collect();
    assert_eq!(folded.len(), 7, "{folded:#?}");
    assert_eq!(
        folded
            .iter()
            .filter(|l| l.starts_with("R1: NO_TOKEN"))
            .count(),
        4
    );
    assert_eq!(
        folded
            .iter()
            .filter(|l| l.starts_with("R2: Second remediation"))
            .count(),
        3
    );
    assert_eq!(digest["remediation_id"], "R1, R2");
    let text = digest["text"].as_str().unwrap();
    assert!(
        text.contains("digest: 7 notifications folded for R1, R2"),
        "{text}"
    );
    let again = ws
        .recur()
        .args([
            "scan",
            "--format",
            "json",
            "--max-notifications",
            "5",
            "--rescan",
            "a.jsonl",
        ])
        .run()
        .code(0);
    assert!(again.json()["notifications"].as_array().unwrap().is_empty());
}

#[test]
fn notify_since_records_old_episodes_without_notifying() {
    let ws = Workspace::new();
    ws.rule("r", &rule("window = \"1h\""));
    ws.write(
        "a.jsonl",
        events(&[(60, true), (60 + 1440, true), (60 + 2880, true)]),
    );
    let out = ws
        .recur()
        .args([
            "scan",
            "--format",
            "json",
            "--notify-since",
            "2025-09-10T12:00:00Z",
            "a.jsonl",
        ])
        .run()
        .code(1);
    let n = out.json()["notifications"].as_array().unwrap().clone();
    let statuses: Vec<&str> = n.iter().map(|x| x["status"].as_str().unwrap()).collect();
    assert_eq!(statuses, ["suppressed", "suppressed", "sent"]);
}

#[test]
fn order_and_splitting_across_runs_do_not_matter() {
    // A fixed pseudo-random timeline, split and ordered differently each time.
    let evs: Vec<(i64, bool)> = (0..60)
        .map(|i| ((i * 7919) % 3000 - 300, i % 3 != 0))
        .collect();
    let all = events(&evs);
    let lines: Vec<&str> = all.lines().collect();
    let reference = {
        let ws = Workspace::new();
        ws.rule(
            "r",
            &rule("threshold = 2\nwindow = \"2h\"\nrepeat = \"3h\""),
        );
        ws.write("all.jsonl", all.clone());
        let doc = scan(&ws, &["all.jsonl"]);
        r1(&doc).clone()
    };
    for (seed, parts) in [(1u64, 2usize), (7, 3), (42, 5)] {
        let ws = Workspace::new();
        ws.rule(
            "r",
            &rule("threshold = 2\nwindow = \"2h\"\nrepeat = \"3h\""),
        );
        let mut order: Vec<usize> = (0..lines.len()).collect();
        let mut x = seed;
        for i in (1..order.len()).rev() {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            order.swap(i, (x >> 33) as usize % (i + 1));
        }
        let chunk = order.len().div_ceil(parts);
        let mut last = None;
        for (p, idxs) in order.chunks(chunk).enumerate().rev() {
            let body: Vec<&str> = idxs.iter().map(|&i| lines[i]).collect();
            let name = format!("part-{p}.jsonl");
            ws.write(&name, body.join("\n"));
            last = Some(scan(&ws, &[&name]));
        }
        let got = r1(last.as_ref().unwrap()).clone();
        for k in [
            "occurrences",
            "before_fix",
            "recurrences",
            "episodes",
            "first_seen",
            "last_seen",
            "verdict",
        ] {
            assert_eq!(
                got[k], reference[k],
                "{k} differs for seed {seed} in {parts} runs"
            );
        }
        let status = ws.recur().args(["status", "--format", "json"]).run();
        assert_eq!(r1(&status.json())["episodes"], reference["episodes"]);
    }
}

/// 40 hourly-ish log files in event-time order: each holds one episode of 7 recurrences (one
/// `open`, reminders at +1h, +2h and +3h).
fn killed_scan_corpus(ws: &Workspace, files: std::ops::Range<i64>) -> u64 {
    let mut expected = 0u64;
    for f in files {
        let evs: Vec<(i64, bool)> = (0..400)
            .map(|i| (f * 400 + i, i % 30 == 0 && i <= 180))
            .collect();
        expected += evs.iter().filter(|e| e.1).count() as u64;
        ws.write(&format!("logs/{f:03}.jsonl"), events(&evs));
    }
    expected
}

const KILL_RULE: &str = "window = \"1h\"\nrepeat = \"1h\"";

#[cfg(unix)]
#[test]
fn a_scan_killed_mid_way_is_completed_by_the_next_run() {
    // Every episode notified on its own (no digest), so ledgers compare key by key.
    let scan = |ws: &Workspace, paths: &[&str]| {
        let out = ws
            .recur()
            .env("RECUR_MAX_NOTIFICATIONS", "1000")
            .args(["scan", "--format", "json", "--no-notify"])
            .args(paths)
            .run();
        assert!(out.code == 0 || out.code == 1, "{}", out.stderr);
        out.json()
    };
    // The reference: everything in one clean run.
    let clean = Workspace::new();
    clean.rule("r", &rule(KILL_RULE));
    let total = killed_scan_corpus(&clean, 0..40);
    let reference = scan(&clean, &["logs"]);
    assert_eq!(r1(&reference)["recurrences"], total);
    assert_eq!(r1(&reference)["episodes"], 40);
    let reference_ledger = ledger(&clean);
    assert_eq!(reference_ledger.len(), 40 * 4);

    for n in [1u64, 9, 19] {
        let ws = Workspace::new();
        ws.rule("r", &rule(KILL_RULE));
        // A first, complete run over half the files records their episodes and intents.
        let first = killed_scan_corpus(&ws, 0..20);
        scan(&ws, &["logs"]);
        killed_scan_corpus(&ws, 20..40);
        // The next run dies (abort: no unwinding, like kill -9) after `n` of the 20 new
        // inputs were committed, before the episodes and intents of this run are written.
        let out = ws
            .recur()
            .env("RECUR_TEST_ABORT_AFTER_COMMITS", n.to_string())
            .env("RECUR_MAX_NOTIFICATIONS", "1000")
            .args(["scan", "--no-notify", "--threads", "1", "logs"])
            .run();
        assert_eq!(out.code, -1, "killed by a signal: {}", out.stderr);
        let status = ws.recur().args(["status", "--format", "json"]).run();
        let committed = r1(&status.json())["recurrences"].as_u64().unwrap();
        assert_eq!(committed, first + n * 7, "exactly {n} new inputs committed");
        assert!(first < committed && committed < total);
        assert_eq!(
            sql_count(&ws, "SELECT COUNT(*) FROM inputs"),
            20 + n as i64,
            "each committed input with its fingerprint"
        );
        assert_eq!(ledger(&ws).len(), 20 * 4, "the killed run wrote no intent");

        // The rerun reads only what was not committed and ends where the clean run did.
        let doc = scan(&ws, &["logs"]);
        assert_eq!(doc["inputs"]["skipped"], 20 + n);
        assert_eq!(doc["inputs"]["files"], 20 - n);
        for k in [
            "occurrences",
            "recurrences",
            "episodes",
            "first_seen",
            "last_seen",
        ] {
            assert_eq!(r1(&doc)[k], r1(&reference)[k], "{k} after a kill after {n}");
        }
        assert_eq!(
            ledger(&ws),
            reference_ledger,
            "no intent twice, none missing"
        );
        assert_eq!(
            doc["notifications"].as_array().unwrap().len(),
            20 * 4,
            "the intents of the second half, once"
        );
        let again = scan(&ws, &["logs"]);
        assert_eq!(again["inputs"]["files"], 0, "everything committed");
        assert!(again["notifications"].as_array().unwrap().is_empty());
    }
}

#[test]
fn status_reads_the_store_and_reports_retired_rules() {
    let ws = Workspace::new();
    ws.rule("r", &rule(""));
    ws.rule("other", &rule("").replace("\"R1\"", "\"R2\""));
    ws.write("a.jsonl", events(&[(60, true)]));
    scan(&ws, &["a.jsonl"]);
    std::fs::remove_file(ws.join("rules/other.toml")).unwrap();
    let out = ws
        .recur()
        .args(["status", "--format", "json"])
        .run()
        .code(1);
    let doc = out.json();
    assert_eq!(r1(&doc)["verdict"], "recurring");
    assert_eq!(doc["retired"][0]["id"], "R2");
    let human = ws
        .recur()
        .args(["status", "--color", "always"])
        .run()
        .code(1);
    assert!(
        human.stdout.contains("\u{1b}[1;31mrecurring"),
        "{}",
        human.stdout
    );
    assert!(human.stdout.contains("R2 (retired"), "{}", human.stdout);
    assert!(human.stdout.contains("https://docs.example.com/a.md"));
}

#[test]
fn status_exit_codes() {
    let ws = Workspace::new();
    ws.rule("r", &rule(""));
    ws.write("a.jsonl", events(&[(60, false)]));
    scan(&ws, &["a.jsonl"]);
    ws.recur().args(["status"]).run().code(0);
    ws.rule("x", "id = \"X\"\ntitle = \"t\"\nowner = \"o@x\"\nanalysis = \"https://x\"\n[fix]\nstatus = \"open\"\ndeadline = \"2020-01-01T00:00:00Z\"\n[[signature]]\ncode = \"X\"\n");
    ws.recur().args(["status"]).run().code(1);
}

#[test]
fn state_location_from_flag_env_and_prune() {
    let ws = Workspace::new();
    ws.rule("r", &rule(""));
    ws.write("a.jsonl", events(&[(60, true)]));
    ws.recur()
        .args(["scan", "--no-notify", "--state", "custom/s.db", "a.jsonl"])
        .run()
        .code(1);
    assert!(ws.join("custom/s.db").exists());
    ws.recur()
        .env("RECUR_STATE", "env.db")
        .args(["scan", "--no-notify", "a.jsonl"])
        .run()
        .code(1);
    assert!(ws.join("env.db").exists());
    assert!(!ws.join(".recur").exists());
    let out = ws
        .recur()
        .env("RECUR_STATE", "env.db")
        .args(["state", "prune", "--older-than", "1d"])
        .run()
        .code(0);
    assert!(
        out.stdout.contains("pruned 1 occurrences"),
        "{}",
        out.stdout
    );
    let doc = ws
        .recur()
        .env("RECUR_STATE", "env.db")
        .args(["status", "--format", "json"])
        .run()
        .json();
    assert_eq!(r1(&doc)["recurrences"], 0);
}

#[test]
fn corrupt_or_newer_state_is_refused_with_advice() {
    let ws = Workspace::new();
    ws.rule("r", &rule(""));
    ws.write("a.jsonl", events(&[(60, true)]));
    ws.write(".recur/state.db", vec![7u8; 4096]);
    let out = ws.recur().args(["scan", "a.jsonl"]).run().code(2);
    assert!(
        out.stderr.contains(".recur/state.db") && out.stderr.contains("move it aside"),
        "{}",
        out.stderr
    );
    assert_eq!(
        std::fs::read(ws.join(".recur/state.db")).unwrap(),
        vec![7u8; 4096],
        "never recreated"
    );
}

#[cfg(unix)]
#[test]
fn read_only_state_directory_fails_before_any_work() {
    use std::os::unix::fs::PermissionsExt;
    let ws = Workspace::new();
    ws.rule("r", &rule(""));
    ws.write("a.jsonl", events(&[(60, true)]));
    std::fs::create_dir(ws.join("ro")).unwrap();
    let mut cmd = ws
        .recur()
        .args(["scan", "--state", "ro/state.db", "a.jsonl"]);
    if is_root() {
        open_up(ws.path());
        cmd = cmd.run_as_nobody();
    }
    std::fs::set_permissions(ws.join("ro"), std::fs::Permissions::from_mode(0o555)).unwrap();
    let out = cmd.run().code(2);
    assert!(
        out.stderr.contains("ro") && out.stderr.contains("not writable"),
        "{}",
        out.stderr
    );
    assert!(out.stdout.is_empty(), "no scan output: {}", out.stdout);
}

/// One JSON line of an error event at an absolute time.
fn error_at(time: &str, id: &str) -> String {
    format!(
        "{{\"timestamp\":\"{time}\",\"environment\":\"staging\",\"error_code\":\"NO_TOKEN\",\"event_id\":\"{id}\"}}\n"
    )
}

/// Every intent key in the workspace's ledger, sorted (read straight from the file).
fn ledger(ws: &Workspace) -> Vec<String> {
    let c = rusqlite::Connection::open_with_flags(
        ws.join(".recur/state.db"),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    )
    .unwrap();
    let mut st = c.prepare("SELECT key FROM intents ORDER BY key").unwrap();
    st.query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

fn sql_count(ws: &Workspace, sql: &str) -> i64 {
    let c = rusqlite::Connection::open_with_flags(
        ws.join(".recur/state.db"),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    )
    .unwrap();
    c.query_row(sql, [], |r| r.get(0)).unwrap()
}

#[test]
fn an_earlier_export_read_later_is_the_same_episode_and_not_notified_again() {
    let ws = Workspace::new();
    ws.rule("r", &rule("threshold = 1\nwindow = \"1h\""));
    ws.write("late.jsonl", error_at("2025-09-10T08:20:00Z", "late"));
    ws.write("early.jsonl", error_at("2025-09-10T08:00:00Z", "early"));
    let first = ws
        .recur()
        .args(["scan", "--format", "json", "late.jsonl"])
        .run()
        .code(1);
    let n = first.json()["notifications"].clone();
    assert_eq!(n.as_array().unwrap().len(), 1);
    assert_eq!(n[0]["key"], "R1/20250910T082000Z/0");
    assert!(first.stderr.contains("R1/20250910T082000Z/0"));
    let second = ws
        .recur()
        .args(["scan", "--format", "json", "early.jsonl"])
        .run()
        .code(1); // a recurrence the store had not seen: news, but no new episode
    let doc = second.json();
    assert!(
        doc["notifications"].as_array().unwrap().is_empty(),
        "{doc:#}"
    );
    assert!(!second.stderr.contains("dedup_key"), "{}", second.stderr);
    assert_eq!(r1(&doc)["recurrences"], 2);
    assert_eq!(r1(&doc)["episodes"], 1);
    assert_eq!(ledger(&ws), ["R1/20250910T082000Z/0"]);
    let status = ws
        .recur()
        .args(["status", "--format", "json"])
        .run()
        .code(1);
    assert_eq!(r1(&status.json())["episodes"], 1);
    // Read together, the episode is keyed by its own start; the same one notification.
    let one = Workspace::new();
    one.rule("r", &rule("threshold = 1\nwindow = \"1h\""));
    one.write("late.jsonl", error_at("2025-09-10T08:20:00Z", "late"));
    one.write("early.jsonl", error_at("2025-09-10T08:00:00Z", "early"));
    let doc = scan(&one, &["late.jsonl", "early.jsonl"]);
    assert_eq!(r1(&doc)["episodes"], 1);
    assert_eq!(ledger(&one), ["R1/20250910T080000Z/0"]);
}

#[test]
fn episodes_are_stored_and_reported_alike_by_scan_and_status() {
    let ws = Workspace::new();
    ws.rule("r", &rule("window = \"1h\""));
    ws.write(
        "a.jsonl",
        events(&[(60, true), (70, true), (600, true), (2000, true)]),
    );
    let doc = scan(&ws, &["a.jsonl"]);
    assert_eq!(r1(&doc)["episodes"], 3);
    assert_eq!(
        sql_count(
            &ws,
            "SELECT COUNT(*) FROM episodes WHERE remediation = 'R1' AND active = 1"
        ),
        3
    );
    let status = ws
        .recur()
        .args(["status", "--format", "json"])
        .run()
        .code(1);
    assert_eq!(r1(&status.json())["episodes"], 3);
    let human = ws.recur().args(["status"]).run().code(1);
    assert!(
        human.stdout.contains("in 3 episodes since the fix"),
        "{}",
        human.stdout
    );
}

#[test]
fn prune_never_counts_or_notifies_pruned_history_again() {
    let ws = Workspace::new();
    ws.rule("r", &rule(""));
    ws.write("a.jsonl", events(&[(-60, true), (60, true), (600, true)]));
    let first = ws
        .recur()
        .args(["scan", "--format", "json", "a.jsonl"])
        .run()
        .code(1);
    assert!(first.stderr.contains("dedup_key"));
    // The events are from 2025: older than a day.
    let out = ws
        .recur()
        .args(["state", "prune", "--older-than", "1d"])
        .run()
        .code(0);
    assert!(
        out.stdout.contains("pruned 3 occurrences") && out.stdout.contains("2 episodes"),
        "{}",
        out.stdout
    );
    for flags in [&[][..], &["--rescan"][..]] {
        let again = ws
            .recur()
            .args(["scan", "--format", "json"])
            .args(flags)
            .arg("a.jsonl")
            .run()
            .code(0);
        let doc = again.json();
        assert_eq!(
            doc["inputs"]["files"],
            flags.len(),
            "skipped as scanned, or re-read"
        );
        assert_eq!(doc["new_recurrences"], 0);
        assert_eq!(r1(&doc)["recurrences"], 0, "pruned history stays pruned");
        assert!(doc["notifications"].as_array().unwrap().is_empty());
        assert_eq!(doc["delivery"]["sent"], 0);
        assert!(!again.stderr.contains("dedup_key"), "{}", again.stderr);
    }
}

#[test]
fn a_changed_time_zone_is_applied_to_inputs_already_scanned() {
    let ws = Workspace::new();
    // Fixed at 08:30Z; the event says 09:00 without an offset.
    ws.rule("r", &rule("").replace(T, "2025-09-10T08:30:00Z"));
    ws.write(
        "a.jsonl",
        "{\"timestamp\":\"2025-09-10T09:00:00\",\"environment\":\"staging\",\"error_code\":\"NO_TOKEN\",\"event_id\":\"x\"}\n",
    );
    let doc = scan(&ws, &["a.jsonl"]);
    assert_eq!(
        r1(&doc)["verdict"],
        "recurring",
        "09:00 UTC is after the fix"
    );
    ws.write("recur.toml", "[input]\ntimezone = \"Europe/Paris\"\n");
    // 09:00 in Paris is 07:00Z: before the fix. Re-read (the decoding changed), no --rescan.
    let doc = scan(&ws, &["a.jsonl"]);
    assert_eq!(doc["inputs"]["files"], 1, "{doc:#}");
    assert_eq!(r1(&doc)["before_fix"], 1);
    assert_eq!(r1(&doc)["recurrences"], 0);
    assert_eq!(r1(&doc)["verdict"], "holding");
    let doc = scan(&ws, &["--rescan", "a.jsonl"]);
    assert_eq!(r1(&doc)["recurrences"], 0);
    assert_eq!(r1(&doc)["occurrences"], 1);
}

#[test]
fn a_narrowed_rule_drops_its_false_positives_from_the_store() {
    let ws = Workspace::new();
    let wide = rule("").replace(
        "error_code = \"NO_TOKEN\"",
        "error_code = { prefix = \"NO_TOKEN\" }",
    );
    ws.rule("r", &wide);
    let scope = |m: i64, code: &str, id: &str| {
        let t = t0() + SignedDuration::from_mins(m);
        format!(
            "{{\"timestamp\":\"{t}\",\"environment\":\"staging\",\"error_code\":\"{code}\",\"event_id\":\"{id}\"}}\n"
        )
    };
    // Two overlapping exports: the NO_TOKEN event is in both.
    ws.write(
        "export-1.jsonl",
        scope(60, "NO_TOKEN_SCOPE", "a") + &scope(120, "NO_TOKEN", "b"),
    );
    ws.write(
        "export-2.jsonl",
        scope(120, "NO_TOKEN", "b") + &scope(180, "NO_TOKEN_SCOPE", "c"),
    );
    let doc = scan(&ws, &["export-1.jsonl", "export-2.jsonl"]);
    assert_eq!(r1(&doc)["recurrences"], 3);
    ws.rule("r", &rule(""));
    for flags in [&[][..], &["--rescan"][..]] {
        let mut args = flags.to_vec();
        args.extend(["export-2.jsonl", "export-1.jsonl"]);
        let doc = scan(&ws, &args);
        assert_eq!(
            r1(&doc)["recurrences"],
            1,
            "only NO_TOKEN, once: {:#}",
            r1(&doc)
        );
        assert_eq!(doc["new_recurrences"], 0);
    }
}

#[test]
fn a_file_with_the_same_head_and_size_but_another_tail_is_read() {
    let ws = Workspace::new();
    ws.rule("r", &rule(""));
    // 100 KiB of quiet events, then one different last event of the same length.
    let mut head = String::new();
    let mut i = 0;
    while head.len() < 100 * 1024 {
        head.push_str(&format!("{{\"timestamp\":\"2025-09-09T01:00:00Z\",\"environment\":\"staging\",\"error_code\":\"OK\",\"event_id\":\"q{i:06}\"}}\n"));
        i += 1;
    }
    let a = head.clone() + &error_at("2025-09-09T02:00:00Z", "tail-a");
    let b = head.clone() + &error_at("2025-09-09T03:00:00Z", "tail-b");
    assert_eq!(a.len(), b.len());
    ws.write("a.jsonl", &a);
    ws.write("b.jsonl", &b);
    let doc = scan(&ws, &["a.jsonl"]);
    assert_eq!(r1(&doc)["recurrences"], 1);
    let doc = scan(&ws, &["b.jsonl"]);
    assert_eq!(doc["inputs"]["skipped"], 0, "another file: {doc:#}");
    assert_eq!(r1(&doc)["recurrences"], 2);
    // A renamed export is still recognised.
    std::fs::rename(ws.join("a.jsonl"), ws.join("a-renamed.jsonl")).unwrap();
    let doc = scan(&ws, &["a-renamed.jsonl"]);
    assert_eq!(doc["inputs"]["skipped"], 1);
    assert_eq!(r1(&doc)["recurrences"], 2);
}

#[test]
fn an_old_state_file_is_migrated_by_state_migrate_not_by_status() {
    let ws = Workspace::new();
    ws.rule("r", &rule(""));
    std::fs::create_dir_all(ws.join(".recur")).unwrap();
    {
        let c = rusqlite::Connection::open(ws.join(".recur/state.db")).unwrap();
        c.execute_batch(recur::store::sqlite::SCHEMA_V1).unwrap();
        c.pragma_update(None, "user_version", 1).unwrap();
        c.execute(
            "INSERT INTO intents VALUES ('R1/20250910T082000Z/0', 'R1', 'open', 1757492400000000000, 1, 1757492400000000000, 0, 0, '[]')",
            [],
        )
        .unwrap();
    }
    let out = ws.recur().args(["status"]).run().code(2);
    assert!(
        out.stderr.contains(".recur/state.db") && out.stderr.contains("recur state migrate"),
        "{}",
        out.stderr
    );
    ws.recur().args(["status"]).run().code(2); // still refused: status never migrates
    let out = ws.recur().args(["state", "migrate"]).run().code(0);
    let current = format!("schema version {}", recur::store::sqlite::SCHEMA_VERSION);
    assert!(out.stdout.contains(&current), "{}", out.stdout);
    ws.recur().args(["status"]).run().code(0);
    // The episode notified under schema 1 keeps its key when an earlier event arrives.
    ws.write("early.jsonl", error_at("2025-09-10T08:00:00Z", "early"));
    ws.write("late.jsonl", error_at("2025-09-10T08:20:00Z", "late"));
    let doc = scan(&ws, &["early.jsonl", "late.jsonl"]);
    assert!(
        doc["notifications"].as_array().unwrap().is_empty(),
        "{doc:#}"
    );
    assert_eq!(ledger(&ws), ["R1/20250910T082000Z/0"]);
}

/// Coverage is kept for open remediations too: recording the fix later verifies it from the
/// logs already scanned, without reading them again.
#[test]
fn a_fix_recorded_later_is_verified_from_logs_already_scanned() {
    let ws = Workspace::new();
    let open = rule("").replace(
        &format!("status = \"fixed\"\nfixed_at = \"{T}\""),
        "status = \"open\"",
    );
    assert!(open.contains("status = \"open\""));
    ws.rule("r", &open);
    // 30 hours of quiet staging traffic after T.
    ws.write(
        "quiet.jsonl",
        events(&(0..=30).map(|h| (h * 60, false)).collect::<Vec<_>>()),
    );
    let doc = scan(&ws, &["quiet.jsonl"]);
    assert_eq!(r1(&doc)["verdict"], "open");
    ws.rule("r", &rule(""));
    let doc = scan(&ws, &["quiet.jsonl"]);
    assert_eq!(doc["inputs"]["skipped"], 1, "nothing is read again");
    assert_eq!(r1(&doc)["verdict"], "verified", "{:#}", r1(&doc));
    assert_eq!(r1(&doc)["in_scope_hours_since_fix"], 31);
}

/// With exact coverage, a small export that grows between runs replaces its counts: the
/// in-scope events are those of the file, not of the file plus its earlier version.
#[test]
fn exact_coverage_of_a_growing_file_is_not_counted_twice() {
    let ws = Workspace::new();
    ws.rule("r", &rule(""));
    ws.write("recur.toml", "[coverage]\nmode = \"exact\"\n");
    let evs: Vec<(i64, bool)> = (0..10).map(|m| (m, false)).collect();
    ws.write("grow.jsonl", events(&evs));
    let doc = scan(&ws, &["grow.jsonl"]);
    assert_eq!(r1(&doc)["in_scope_events"], 10);
    let evs: Vec<(i64, bool)> = (0..11).map(|m| (m, false)).collect();
    ws.write("grow.jsonl", events(&evs));
    let doc = scan(&ws, &["grow.jsonl"]);
    assert_eq!(doc["inputs"]["skipped"], 0);
    assert_eq!(r1(&doc)["in_scope_events"], 11);
}
