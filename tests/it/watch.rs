//! `recur watch` through the binary: live files, real `logrotate`, restarts (graceful and
//! `kill -9`), truncation, deletion, new files, partial and huge lines, reloads and signals.
//!
//! Exactly-once is proven with two store counts for a rule that matches every numbered line:
//! `occurrences` (deduplicated by the line's hash: each distinct line once, so it shows what was
//! *lost*) and `in_scope_events` (coverage, summed over reading sessions: a line read twice is
//! counted twice, so it shows what was *doubled*). Both equal to the number of lines written
//! means every line was counted exactly once.

use std::fs::OpenOptions;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::harness::{Cmd, Workspace};

/// A rule matching every `{"kind":"num",…}` line; fixed long ago so every event is in scope.
const RULE: &str = r#"
id = "NUM"
title = "numbered lines"
owner = "o@example.com"
analysis = "https://docs.example.com/num.md"
[fix]
status = "fixed"
fixed_at = "2020-01-01T00:00:00Z"
[[signature]]
kind = "num"
[alert]
threshold = 1000000
window = "1h"
"#;

fn line(n: u64) -> String {
    format!(
        "{{\"kind\":\"num\",\"n\":{n},\"pad\":\"{}\"}}\n",
        "x".repeat(40)
    )
}

/// A running `recur watch`, killed on drop whatever happens in the test.
struct Watch {
    child: Child,
    stderr: PathBuf,
}

impl Drop for Watch {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Watch {
    fn start(ws: &Workspace, args: &[&str]) -> Watch {
        let n = std::fs::read_dir(ws.path())
            .unwrap()
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().starts_with("stderr"))
            .count();
        let stderr = ws.join(&format!("stderr{n}.txt"));
        // The exactly-once proofs count in-scope events: exact coverage.
        let cfg = ws.join("recur.toml");
        let text = std::fs::read_to_string(&cfg).unwrap_or_default();
        if !text.contains("[coverage]") {
            std::fs::write(&cfg, format!("{text}\n[coverage]\nmode = \"exact\"\n")).unwrap();
        }
        let mut cmd = Cmd::new().cmd;
        cmd.current_dir(ws.path())
            .args(["watch", "--metrics-addr", "127.0.0.1:0"])
            .args(args)
            .env("RECUR_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&stderr).unwrap());
        let child = cmd.spawn().expect("spawn recur watch");
        let w = Watch { child, stderr };
        w.wait_log("following", 10);
        w
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }

    /// Waits (bounded) until stderr contains `needle` `count` times in total.
    fn wait_log_n(&self, needle: &str, count: usize, secs: u64) {
        let deadline = Instant::now() + Duration::from_secs(secs);
        while self.log().matches(needle).count() < count {
            assert!(
                Instant::now() < deadline,
                "no `{needle}` ×{count} in the log:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn wait_log(&self, needle: &str, secs: u64) {
        self.wait_log_n(needle, 1, secs);
    }

    fn addr(&self) -> String {
        self.wait_log("serving /metrics", 10);
        let log = self.log();
        let i = log.find("127.0.0.1:").expect("metrics address in the log") + 10;
        let port: String = log[i..].chars().take_while(char::is_ascii_digit).collect();
        format!("127.0.0.1:{port}")
    }

    fn get(&self, path: &str) -> String {
        let mut s = TcpStream::connect(self.addr()).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        write!(s, "GET {path} HTTP/1.1\r\nHost: t\r\n\r\n").unwrap();
        let mut body = String::new();
        s.read_to_string(&mut body).unwrap();
        body
    }

    fn metric(&self, name: &str) -> u64 {
        let body = self.get("/metrics");
        body.lines()
            .find_map(|l| l.strip_prefix(&format!("{name} ")))
            .unwrap_or_else(|| panic!("no {name} in\n{body}"))
            .trim()
            .parse()
            .unwrap()
    }

    /// Waits (bounded) until a metric reaches `want`.
    fn wait_metric(&self, name: &str, want: u64, secs: u64) {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            let v = self.metric(name);
            if v >= want {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{name} = {v}, want {want}\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn signal(&self, sig: &str) {
        let ok = Command::new("kill")
            .args([format!("-{sig}"), self.child.id().to_string()])
            .status()
            .unwrap()
            .success();
        assert!(ok, "kill -{sig}");
    }

    /// SIGTERM and wait (bounded) for exit; returns the exit code.
    fn stop(mut self) -> i32 {
        self.signal("TERM");
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            if let Some(st) = self.child.try_wait().unwrap() {
                return st.code().unwrap_or(-1);
            }
            assert!(Instant::now() < deadline, "recur did not stop on SIGTERM");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// kill -9: no chance to commit anything more.
    fn kill9(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// (occurrences, in-scope events) of the rule, from `recur status`.
fn counts(ws: &Workspace) -> (u64, u64) {
    let out = ws.recur().args(["status", "--format", "json"]).run();
    let v = out.json();
    let r = v["remediations"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["id"] == "NUM")
        .unwrap_or_else(|| panic!("no NUM in {v}"))
        .clone();
    (
        r["occurrences"].as_u64().unwrap(),
        r["in_scope_events"].as_u64().unwrap(),
    )
}

fn append(path: &Path, text: &str) {
    let mut f = OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap();
    f.write_all(text.as_bytes()).unwrap();
}

/// Appends numbered lines at a steady pace on a thread, reopening the file for each line
/// (as a logger that follows the path would); returns how many it wrote when stopped.
struct Writer {
    stop: Arc<AtomicBool>,
    handle: Option<std::thread::JoinHandle<u64>>,
}

impl Writer {
    fn start(path: PathBuf, from: u64, every: Duration) -> Writer {
        let stop = Arc::new(AtomicBool::new(false));
        let s = stop.clone();
        let handle = std::thread::spawn(move || {
            let mut n = from;
            while !s.load(Ordering::Relaxed) {
                // Never create the file: logrotate does, and a writer racing it to create the
                // new file would have its line truncated away by logrotate, not by recur.
                match OpenOptions::new().append(true).open(&path) {
                    Ok(mut f) => f.write_all(line(n).as_bytes()).unwrap(),
                    Err(_) => {
                        std::thread::sleep(Duration::from_millis(1));
                        continue;
                    }
                }
                n += 1;
                std::thread::sleep(every);
            }
            n
        });
        Writer {
            stop,
            handle: Some(handle),
        }
    }

    fn finish(mut self) -> u64 {
        self.stop.store(true, Ordering::Relaxed);
        self.handle.take().unwrap().join().unwrap()
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

fn setup() -> Workspace {
    let ws = Workspace::new();
    ws.rule("num", RULE);
    ws.write("logs/app.log", "");
    ws
}

fn logrotate(ws: &Workspace, body: &str) {
    let conf = ws.write(
        "logrotate.conf",
        format!(
            "{} {{\n  rotate 20\n  missingok\n  notifempty\n{body}\n}}\n",
            ws.join("logs/app.log").display()
        ),
    );
    let out = Command::new("/usr/sbin/logrotate")
        .arg("-f")
        .arg("-s")
        .arg(ws.join("logrotate.state"))
        .arg(&conf)
        .output()
        .expect("run logrotate");
    assert!(
        out.status.success(),
        "logrotate: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// logrotate in a given mode while a writer appends; returns (lines written, watch).
fn rotate_under_load(ws: &Workspace, mode: &str, rotations: usize) -> (u64, Watch) {
    let w = Watch::start(ws, &["logs/app.log", "--from-beginning"]);
    let writer = Writer::start(ws.join("logs/app.log"), 0, Duration::from_millis(2));
    for _ in 0..rotations {
        std::thread::sleep(Duration::from_millis(400));
        logrotate(ws, mode);
    }
    std::thread::sleep(Duration::from_millis(300));
    let n = writer.finish();
    (n, w)
}

#[test]
fn logrotate_create_counts_every_line_exactly_once() {
    let ws = setup();
    let (n, w) = rotate_under_load(&ws, "  create\n  nocompress", 3);
    w.wait_metric("recur_events_total", n, 15);
    assert!(w.metric("recur_rotations_total") >= 3, "{}", w.log());
    assert_eq!(w.stop(), 0);
    assert_eq!(counts(&ws), (n, n), "every line once (written {n})");
}

#[test]
fn logrotate_create_with_delaycompress() {
    let ws = setup();
    let (n, w) = rotate_under_load(&ws, "  create\n  compress\n  delaycompress", 3);
    w.wait_metric("recur_events_total", n, 15);
    assert_eq!(w.stop(), 0);
    assert_eq!(counts(&ws), (n, n), "every line once (written {n})");
    assert!(ws.join("logs/app.log.2.gz").exists());
}

#[test]
fn logrotate_copytruncate_never_counts_twice_and_reports_loss() {
    let ws = setup();
    let (n, w) = rotate_under_load(&ws, "  copytruncate\n  nocompress", 3);
    // Wait until the file is quiet and read through.
    let deadline = Instant::now() + Duration::from_secs(15);
    let mut last = u64::MAX;
    loop {
        std::thread::sleep(Duration::from_millis(700));
        let now = w.metric("recur_events_total");
        if now == last && w.metric("recur_checkpoint_lag_bytes") == 0 {
            break;
        }
        last = now;
        assert!(Instant::now() < deadline, "never settled\n{}", w.log());
    }
    assert!(w.metric("recur_truncations_total") >= 3, "{}", w.log());
    assert!(w.log().contains("from the copy"), "{}", w.log());
    let lost_bytes = w.metric("recur_bytes_lost_total");
    let events = w.metric("recur_events_total");
    let w_log = w.log();
    assert_eq!(w.stop(), 0);
    let (distinct, read) = counts(&ws);
    assert_eq!(distinct, read, "a line was read twice");
    assert_eq!(read, events);
    assert!(read <= n);
    // Lines written between logrotate's copy and its truncation are in neither file: recur
    // reports the bytes it saw that the copy lacks, and warns at every copytruncate that this
    // window exists. Everything else is read.
    let lost = n - read;
    assert!(w_log.contains("copytruncate"), "{w_log}");
    assert!(
        lost * 10 <= n,
        "lost {lost} of {n} lines (reported {lost_bytes} bytes)\n{}",
        ws.join("stderr0.txt").display()
    );
}

#[test]
fn kill_9_and_rotation_while_down_lose_and_double_nothing() {
    let ws = setup();
    let log = ws.join("logs/app.log");
    let mut written = 0;
    let mut w = Watch::start(&ws, &["logs/app.log", "--from-beginning"]);
    for round in 0..3 {
        let writer = Writer::start(log.clone(), written, Duration::from_millis(1));
        std::thread::sleep(Duration::from_millis(600));
        w.kill9();
        written = writer.finish();
        if round == 1 {
            // Rotated while recur is down: the rest of the old file is read from its new name.
            std::fs::rename(&log, ws.join("logs/app.log.1")).unwrap();
            append(&log, &line(written));
            written += 1;
        }
        w = Watch::start(&ws, &["logs/app.log", "--from-beginning"]);
    }
    w.wait_metric("recur_checkpoint_lag_bytes", 0, 1);
    let deadline = Instant::now() + Duration::from_secs(15);
    while counts(&ws).1 < written && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(w.stop(), 0);
    assert_eq!(counts(&ws), (written, written), "every line once");
    // The third start found the file rotated while down and drained it under its new name.
    let third = std::fs::read_to_string(ws.join("stderr2.txt")).unwrap();
    assert!(third.contains("app.log.1"), "{third}");
}

#[test]
fn truncation_rereads_from_the_start() {
    let ws = setup();
    let log = ws.join("logs/app.log");
    let w = Watch::start(&ws, &["logs/app.log"]);
    for i in 0..5 {
        append(&log, &line(i));
    }
    w.wait_metric("recur_events_total", 5, 10);
    std::fs::write(&log, "").unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    for i in 100..103 {
        append(&log, &line(i));
    }
    w.wait_metric("recur_events_total", 8, 10);
    assert_eq!(w.metric("recur_truncations_total"), 1, "{}", w.log());
    assert_eq!(w.stop(), 0);
    assert_eq!(counts(&ws), (8, 8));
}

#[test]
fn deleted_file_is_drained_before_its_descriptor_is_released() {
    let ws = setup();
    let log = ws.join("logs/app.log");
    let w = Watch::start(
        &ws,
        &[
            "logs/app.log",
            "--watch-mode",
            "poll",
            "--poll-interval",
            "2s",
        ],
    );
    // Written and deleted between two looks: only the open descriptor still reaches it.
    std::thread::sleep(Duration::from_millis(300));
    let text: String = (0..1000).map(line).collect();
    append(&log, &text);
    std::fs::remove_file(&log).unwrap();
    w.wait_metric("recur_events_total", 1000, 10);
    w.wait_log("deleted=true", 10);
    assert_eq!(w.stop(), 0);
    assert_eq!(counts(&ws), (1000, 1000));
}

#[test]
fn existing_files_start_at_their_end_and_new_ones_at_their_start() {
    let ws = setup();
    append(&ws.join("logs/app.log"), &line(1));
    let w = Watch::start(&ws, &["logs/*.log"]);
    append(&ws.join("logs/app.log"), &line(2));
    for f in ["a", "b", "c"] {
        append(
            &ws.join(&format!("logs/{f}.log")),
            &(10..13).map(line).collect::<String>(),
        );
    }
    w.wait_metric("recur_events_total", 10, 10);
    assert_eq!(w.metric("recur_files_watched"), 4);
    assert_eq!(w.stop(), 0);
    // Line 1 predates the start; the three new files' lines are the same text, so 4 distinct.
    assert_eq!(counts(&ws), (4, 10));
}

#[test]
fn partial_lines_wait_for_their_newline_and_huge_lines_are_skipped() {
    let ws = setup();
    let log = ws.join("logs/app.log");
    let w = Watch::start(&ws, &["logs/app.log", "--max-line-bytes", "1024"]);
    append(&log, "{\"kind\":\"num\",\"n\":1");
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(w.metric("recur_lines_read_total"), 0);
    append(&log, "}\n");
    w.wait_metric("recur_events_total", 1, 10);
    append(
        &log,
        &format!("{{\"kind\":\"num\",\"big\":\"{}\"}}\n", "y".repeat(200_000)),
    );
    append(&log, "not json {\n");
    append(&log, "{\"kind\":\"num\",\"n\":2\n");
    append(&log, &line(3));
    w.wait_metric("recur_lines_read_total", 5, 10);
    assert_eq!(w.metric("recur_invalid_total"), 2, "{}", w.log());
    assert_eq!(w.metric("recur_events_total"), 3);
    assert!(w.log().contains("over the line-length cap"), "{}", w.log());
    assert_eq!(w.stop(), 0);
    // Two occurrences; the rule has no scope, so every valid event is in scope (`not json {`).
    assert_eq!(counts(&ws), (2, 3));
}

#[test]
fn sighup_with_a_broken_rule_keeps_the_old_rules() {
    let ws = setup();
    let log = ws.join("logs/app.log");
    let w = Watch::start(&ws, &["logs/app.log"]);
    ws.rule("broken", "id = \"B\"\ntitel = \"typo\"\n");
    w.signal("HUP");
    w.wait_log("rules not reloaded", 10);
    assert!(w.log().contains("invalid rule"), "{}", w.log());
    assert!(w.log().contains("broken.toml"), "{}", w.log());
    append(&log, &line(1));
    w.wait_metric("recur_events_total", 1, 10);
    assert_eq!(w.metric("recur_rule_reload_failures_total"), 1);
    std::fs::remove_file(ws.join("rules/broken.toml")).unwrap();
    w.signal("HUP");
    w.wait_log("rules reloaded", 10);
    assert_eq!(w.stop(), 0);
    assert_eq!(counts(&ws), (1, 1));
}

#[test]
fn health_and_json_logs() {
    let ws = setup();
    let w = Watch::start(&ws, &["logs/app.log", "--log-format", "json"]);
    assert!(w.get("/healthz").ends_with("ok\n"));
    assert!(w.get("/nope").starts_with("HTTP/1.1 404"));
    let first = w.log().lines().next().unwrap().to_string();
    let v: serde_json::Value = serde_json::from_str(&first).unwrap();
    assert_eq!(v["level"], "INFO");
    assert_eq!(w.stop(), 0);
}

#[test]
fn env_vars_configure_the_sidecar() {
    let ws = setup();
    let mut cmd = Cmd::new().cmd;
    let out = cmd
        .current_dir(ws.path())
        .args(["watch"])
        .env("RECUR_WATCH_PATHS", "logs/app.log")
        .env("RECUR_RULES", "nowhere")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("nowhere"));
}

#[test]
fn kubernetes_symlink_rotation() {
    let ws = setup();
    let target = ws.join("pods/0.log");
    std::fs::create_dir_all(ws.join("pods")).unwrap();
    std::fs::create_dir_all(ws.join("containers")).unwrap();
    append(&target, "");
    std::os::unix::fs::symlink(&target, ws.join("containers/app.log")).unwrap();
    let w = Watch::start(&ws, &["containers/*.log"]);
    append(&target, &(0..50).map(line).collect::<String>());
    // The runtime renames the file behind the link and starts a new one.
    std::fs::rename(&target, ws.join("pods/0.log.20251203-120000")).unwrap();
    append(&target, &(50..60).map(line).collect::<String>());
    w.wait_metric("recur_events_total", 60, 10);
    // The link is pointed at another file (atomic symlink swap).
    let other = ws.join("pods/1.log");
    append(&other, &(60..65).map(line).collect::<String>());
    std::os::unix::fs::symlink(&other, ws.join("containers/.tmp")).unwrap();
    std::fs::rename(ws.join("containers/.tmp"), ws.join("containers/app.log")).unwrap();
    w.wait_metric("recur_events_total", 65, 10);
    assert!(w.metric("recur_rotations_total") >= 2, "{}", w.log());
    assert_eq!(w.stop(), 0);
    assert_eq!(counts(&ws), (65, 65));
}

#[test]
fn many_files_appearing_at_once_in_a_directory() {
    let ws = setup();
    std::fs::create_dir_all(ws.join("logs/svc")).unwrap();
    let w = Watch::start(&ws, &["logs"]);
    for f in 0..40u64 {
        append(
            &ws.join(&format!("logs/svc/{f}.log")),
            &(f * 10..f * 10 + 5).map(line).collect::<String>(),
        );
    }
    w.wait_metric("recur_events_total", 200, 15);
    assert_eq!(w.metric("recur_files_watched"), 41);
    assert_eq!(w.stop(), 0);
    assert_eq!(counts(&ws), (200, 200));
}

#[test]
fn an_episode_notifies_as_soon_as_it_opens() {
    let ws = setup();
    ws.rule(
        "now",
        &RULE
            .replace("id = \"NUM\"", "id = \"NOW\"")
            .replace("threshold = 1000000", "threshold = 2"),
    );
    let log = ws.join("logs/app.log");
    let w = Watch::start(&ws, &["logs/app.log"]);
    append(&log, &line(1));
    w.wait_metric("recur_events_total", 1, 10);
    assert_eq!(w.metric("recur_notifications_sent_total"), 0);
    // The second recurrence (untimed: arrival time) opens the episode.
    append(&log, &line(2));
    w.wait_log("[recur] NOW recurred: 2 errors", 10);
    assert_eq!(w.metric("recur_notifications_sent_total"), 1);
    assert_eq!(w.metric("recur_notifications_pending"), 0);
    assert_eq!(w.stop(), 0);
}
