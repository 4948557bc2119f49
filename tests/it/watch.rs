//! `recur watch` through the binary: live files, real `logrotate`, restarts (graceful and
//! `kill -9`), truncation, deletion, new files, partial and huge lines, reloads and signals.
//!
//! Exactly-once is proven with the line numbers stored: a rule matches every numbered line, and
//! the occurrences' samples carry the numbers. Each number written found exactly once means no
//! line was lost or doubled. `in_scope_events` (coverage, summed over reading sessions: a line
//! read twice is counted twice) is checked too.

use std::fs::OpenOptions;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::harness::{Cmd, Workspace};
use crate::servers::{HttpServer, Reply};

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
        let w = Watch::spawn(ws, args, &[]);
        w.wait_log("following", 10);
        w
    }

    /// Started with extra environment variables.
    fn start_env(ws: &Workspace, args: &[&str], env: &[(&str, &str)]) -> Watch {
        let w = Watch::spawn(ws, args, env);
        w.wait_log("following", 10);
        w
    }

    /// Started without waiting for a file to be followed (none exists yet).
    fn start_quiet(ws: &Workspace, args: &[&str]) -> Watch {
        let w = Watch::spawn(ws, args, &[]);
        w.wait_log("serving /metrics", 10);
        w
    }

    fn spawn(ws: &Workspace, args: &[&str], env: &[(&str, &str)]) -> Watch {
        let n = std::fs::read_dir(ws.path())
            .unwrap()
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().starts_with("stderr"))
            .count();
        let stderr = ws.join(&format!("stderr{n}.txt"));
        // The exactly-once proofs count in-scope events (exact coverage) and read every
        // occurrence's sample (a sample for each).
        let cfg = ws.join("recur.toml");
        let text = std::fs::read_to_string(&cfg).unwrap_or_default();
        if !text.contains("[coverage]") {
            std::fs::write(
                &cfg,
                format!(
                    "{text}\n[coverage]\nmode = \"exact\"\n[state]\nsamples_per_hour = 1000000\n"
                ),
            )
            .unwrap();
        }
        let mut cmd = Cmd::new().cmd;
        cmd.current_dir(ws.path())
            .args(["watch", "--metrics-addr", "127.0.0.1:0"])
            .args(args)
            .env("RECUR_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&stderr).unwrap());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let child = cmd.spawn().expect("spawn recur watch");
        Watch { child, stderr }
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

    /// Waits (bounded) until a metric reaches at least `want`.
    fn wait_metric(&self, name: &str, want: u64, secs: u64) {
        self.wait_metric_where(name, &format!(">= {want}"), |v| v >= want, secs);
    }

    /// Waits (bounded) until a metric satisfies `ok` (`what` describes it for the failure).
    fn wait_metric_where(&self, name: &str, what: &str, ok: impl Fn(u64) -> bool, secs: u64) {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            let v = self.metric(name);
            if ok(v) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{name} = {v}, want {what}\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Waits (bounded) until the files are read through and quiet: the events count stays
    /// the same over two looks and nothing is left unread.
    fn wait_settled(&self, secs: u64) {
        let deadline = Instant::now() + Duration::from_secs(secs);
        let mut last = u64::MAX;
        loop {
            std::thread::sleep(Duration::from_millis(700));
            let now = self.metric("recur_events_total");
            if now == last && self.metric("recur_checkpoint_lag_bytes") == 0 {
                return;
            }
            last = now;
            assert!(Instant::now() < deadline, "never settled\n{}", self.log());
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
    fn stop(self) -> i32 {
        self.stop_timed().0
    }

    /// SIGTERM and wait (bounded) for exit; returns the exit code and how long it took.
    fn stop_timed(mut self) -> (i32, Duration) {
        self.signal("TERM");
        let t0 = Instant::now();
        let deadline = t0 + Duration::from_secs(15);
        loop {
            if let Some(st) = self.child.try_wait().unwrap() {
                return (st.code().unwrap_or(-1), t0.elapsed());
            }
            assert!(Instant::now() < deadline, "recur did not stop on SIGTERM");
            std::thread::sleep(Duration::from_millis(5));
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

/// The line numbers (`n`) of the stored occurrences of the rule, sorted, duplicates kept.
fn numbers(ws: &Workspace) -> Vec<u64> {
    let db = rusqlite::Connection::open_with_flags(
        ws.join(".recur/state.db"),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    )
    .unwrap();
    let mut st = db
        .prepare(
            "SELECT sample FROM occurrences
             WHERE rule = (SELECT id FROM rule_refs WHERE name = 'NUM')",
        )
        .unwrap();
    let mut out: Vec<u64> = st
        .query_map([], |r| r.get::<_, String>(0))
        .unwrap()
        .map(|s| {
            let v: serde_json::Value = serde_json::from_str(&s.unwrap()).unwrap();
            v["n"].as_u64().unwrap()
        })
        .collect();
    out.sort();
    out
}

/// Asserts that every number in `0..n` was stored exactly once.
fn assert_exactly_once(ws: &Workspace, n: u64) {
    let got = numbers(ws);
    let doubled: Vec<u64> = got
        .windows(2)
        .filter(|w| w[0] == w[1])
        .map(|w| w[0])
        .collect();
    let missing: Vec<u64> = (0..n).filter(|i| got.binary_search(i).is_err()).collect();
    assert!(
        doubled.is_empty() && missing.is_empty() && got.len() as u64 == n,
        "written {n}, stored {}: doubled {doubled:?}, missing {missing:?}",
        got.len()
    );
    assert_eq!(counts(ws), (n, n), "occurrences and in-scope events");
}

fn append(path: &Path, text: &str) {
    let mut f = OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap();
    f.write_all(text.as_bytes()).unwrap();
}

/// Appends numbered lines at a steady pace on a thread; returns how many it wrote when
/// stopped.
struct Writer {
    stop: Arc<AtomicBool>,
    handle: Option<std::thread::JoinHandle<u64>>,
}

impl Writer {
    /// Reopens the file for each line in append mode (as a logger that follows the path).
    fn start(path: PathBuf, from: u64, every: Duration) -> Writer {
        Writer::spawn(from, move |s: &AtomicBool, n: &mut u64| {
            while !s.load(Ordering::Relaxed) {
                // Never create the file: logrotate does, and a writer racing it to create the
                // new file would have its line truncated away by logrotate, not by recur.
                match OpenOptions::new().append(true).open(&path) {
                    Ok(mut f) => f.write_all(line(*n).as_bytes()).unwrap(),
                    Err(_) => {
                        std::thread::sleep(Duration::from_millis(1));
                        continue;
                    }
                }
                *n += 1;
                std::thread::sleep(every);
            }
        })
    }

    /// Keeps one descriptor opened without append mode, as `app > app.log` does: after a
    /// truncation its next write lands at its old position, leaving a hole.
    fn start_in_place(path: PathBuf, from: u64, every: Duration) -> Writer {
        Writer::spawn(from, move |s: &AtomicBool, n: &mut u64| {
            let mut f = OpenOptions::new().write(true).open(&path).unwrap();
            std::io::Seek::seek(&mut f, std::io::SeekFrom::End(0)).unwrap();
            while !s.load(Ordering::Relaxed) {
                f.write_all(line(*n).as_bytes()).unwrap();
                *n += 1;
                std::thread::sleep(every);
            }
        })
    }

    fn spawn(from: u64, body: impl FnOnce(&AtomicBool, &mut u64) + Send + 'static) -> Writer {
        let stop = Arc::new(AtomicBool::new(false));
        let s = stop.clone();
        let handle = std::thread::spawn(move || {
            let mut n = from;
            body(&s, &mut n);
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

/// logrotate in a given mode while a writer appends, recur following `pattern`; returns
/// (lines written, watch).
///
/// Each rotation waits until recur has seen the previous one. Two rotations between two of
/// recur's looks are another case (with `create`, the file in the middle is never opened
/// under a single-file pattern; with `copytruncate`, two truncations look like one), and a
/// loaded machine can delay a look past the pause between rotations.
fn rotate_under_load(
    ws: &Workspace,
    mode: &str,
    rotations: usize,
    pattern: &str,
    in_place: bool,
) -> (u64, Watch) {
    let w = Watch::start(ws, &[pattern, "--from-beginning"]);
    let path = ws.join("logs/app.log");
    let writer = if in_place {
        Writer::start_in_place(path, 0, Duration::from_millis(2))
    } else {
        Writer::start(path, 0, Duration::from_millis(2))
    };
    for i in 0..rotations {
        std::thread::sleep(Duration::from_millis(400));
        logrotate(ws, mode);
        // Seen: the truncation, or (a new file at the path) its opening.
        if mode.contains("copytruncate") {
            w.wait_metric("recur_truncations_total", i as u64 + 1, 15);
        } else {
            w.wait_log_n("following file=logs/app.log offset", i + 2, 15);
        }
    }
    std::thread::sleep(Duration::from_millis(300));
    let n = writer.finish();
    (n, w)
}

#[test]
fn logrotate_create_counts_every_line_exactly_once() {
    let ws = setup();
    let (n, w) = rotate_under_load(&ws, "  create\n  nocompress", 3, "logs/app.log", false);
    w.wait_metric("recur_events_total", n, 15);
    assert!(w.metric("recur_rotations_total") >= 3, "{}", w.log());
    assert_eq!(w.stop(), 0);
    assert_exactly_once(&ws, n);
}

#[test]
fn logrotate_create_with_compress_without_delaycompress() {
    let ws = setup();
    let (n, w) = rotate_under_load(&ws, "  create\n  compress", 3, "logs/app.log", false);
    w.wait_metric("recur_events_total", n, 15);
    w.wait_settled(15);
    assert_eq!(w.metric("recur_events_total"), n, "{}", w.log());
    assert_eq!(w.stop(), 0);
    assert_exactly_once(&ws, n);
    assert!(ws.join("logs/app.log.1.gz").exists());
}

/// A directory (or a glob that also matches the rotated names) sees each rotated file under
/// its new name: it is followed on from where reading was, never read again from its start,
/// and the compressed copies are not read at all.
#[test]
fn logrotate_under_a_directory_pattern_reads_every_line_once() {
    for (mode, pattern) in [
        ("  create\n  compress", "logs"),
        ("  create\n  compress\n  delaycompress", "logs/app.log*"),
        ("  create\n  nocompress", "logs"),
    ] {
        directory_run(mode, pattern, true);
    }
}

/// copytruncate under a directory: the copies (and their later renames) are never read from
/// their start; nothing is read twice.
#[test]
fn logrotate_copytruncate_under_a_directory_pattern_never_reads_twice() {
    directory_run("  copytruncate\n  nocompress", "logs", false);
}

/// Rotations under load with recur following a directory or a glob. `exact`: every line once
/// (`create`); else (copytruncate, appending writer) none twice and no more reported lost than
/// was.
fn directory_run(mode: &str, pattern: &str, exact: bool) {
    let ws = setup();
    let (n, w) = rotate_under_load(&ws, mode, 3, pattern, false);
    if exact {
        w.wait_metric("recur_events_total", n, 15);
    }
    w.wait_settled(15);
    let events = w.metric("recur_events_total");
    let invalid = w.metric("recur_invalid_total");
    let reported = w.metric("recur_bytes_lost_total");
    let log = w.log();
    assert_eq!(w.stop(), 0);
    let got = numbers(&ws);
    assert_eq!(got.len() as u64, events, "{log}");
    if exact {
        assert_eq!(events, n, "{mode} {pattern}\n{log}");
        assert_eq!(invalid, 0, "{mode}: {log}");
        assert_exactly_once(&ws, n);
        if mode.contains("  compress") {
            assert!(log.contains("not read: a compressed archive"), "{log}");
        }
    } else {
        let doubled: Vec<u64> = got
            .windows(2)
            .filter(|w| w[0] == w[1])
            .map(|w| w[0])
            .collect();
        assert!(doubled.is_empty(), "read twice: {doubled:?}\n{log}");
        let missing: Vec<u64> = (0..n).filter(|i| got.binary_search(i).is_err()).collect();
        assert!(
            reported <= bytes_of(&missing),
            "{reported} > {missing:?}\n{log}"
        );
        assert!(
            log.contains("a copy of a followed file") || log.contains("from the copy"),
            "{log}"
        );
    }
}

/// copytruncate by hand, each step waited for, in the order that makes a copy look new: the
/// truncation is seen (and handled) first, and the copy only shows up under a name the
/// pattern matches afterwards. It is known by the first bytes read, never read again.
#[test]
fn a_copy_seen_only_after_the_truncation_is_never_read_from_its_start() {
    let ws = setup();
    let log = ws.join("logs/app.log");
    let w = Watch::start(&ws, &["logs/app.log*", "--from-beginning"]);
    append(&log, &(0..20).map(line).collect::<String>());
    w.wait_metric("recur_events_total", 20, 10);
    // The copy, under a name the pattern does not match yet; then the truncation.
    std::fs::copy(&log, ws.join("logs/copy.tmp")).unwrap();
    OpenOptions::new()
        .write(true)
        .open(&log)
        .unwrap()
        .set_len(0)
        .unwrap();
    append(&log, &line(20));
    w.wait_metric("recur_truncations_total", 1, 10);
    w.wait_metric("recur_events_total", 21, 10);
    std::fs::rename(ws.join("logs/copy.tmp"), ws.join("logs/app.log.1")).unwrap();
    w.wait_log("a copy of a followed file", 10);
    // The next rotation renames it: still not read.
    std::fs::rename(ws.join("logs/app.log.1"), ws.join("logs/app.log.2")).unwrap();
    append(&log, &line(21));
    w.wait_metric("recur_events_total", 22, 10);
    w.wait_settled(15);
    assert_eq!(w.metric("recur_events_total"), 22, "{}", w.log());
    assert_eq!(w.metric("recur_bytes_lost_total"), 0, "{}", w.log());
    assert_eq!(w.stop(), 0);
    assert_exactly_once(&ws, 22);
}

/// copytruncate where recur reads lines written after logrotate's copy, before its
/// truncation: the copy ends before where reading was. It is named as the copy (the warning
/// says copytruncate), holds nothing unread and is not read; nothing is lost or doubled.
#[test]
fn copytruncate_after_reading_past_the_copy_names_the_copy_and_reads_nothing_twice() {
    let ws = setup();
    let log = ws.join("logs/app.log");
    let w = Watch::start(&ws, &["logs/app.log", "--from-beginning"]);
    append(&log, &(0..20).map(line).collect::<String>());
    w.wait_metric("recur_events_total", 20, 10);
    std::fs::copy(&log, ws.join("logs/app.log.1")).unwrap();
    append(&log, &(20..25).map(line).collect::<String>());
    w.wait_metric("recur_events_total", 25, 10);
    OpenOptions::new()
        .write(true)
        .open(&log)
        .unwrap()
        .set_len(0)
        .unwrap();
    append(&log, &line(25));
    w.wait_metric("recur_truncations_total", 1, 10);
    w.wait_metric("recur_events_total", 26, 10);
    w.wait_settled(15);
    let log_text = w.log();
    assert!(
        log_text.contains("reading had gone past the end of the copy"),
        "{log_text}"
    );
    assert!(log_text.contains("app.log.1"), "{log_text}");
    assert_eq!(w.metric("recur_events_total"), 26, "{log_text}");
    assert_eq!(w.metric("recur_bytes_lost_total"), 0, "{log_text}");
    assert_eq!(w.stop(), 0);
    assert_exactly_once(&ws, 26);
}

#[test]
fn a_renamed_file_under_a_directory_is_not_read_again() {
    let ws = setup();
    let log = ws.join("logs/app.log");
    let w = Watch::start(&ws, &["logs"]);
    append(&log, &(0..5).map(line).collect::<String>());
    w.wait_metric("recur_events_total", 5, 10);
    std::fs::rename(&log, ws.join("logs/app.log.1")).unwrap();
    append(&log, &line(5));
    w.wait_metric("recur_events_total", 6, 10);
    // Several more looks (the directory is re-checked every second).
    w.wait_log("renamed; following on under the new name", 10);
    std::thread::sleep(Duration::from_millis(2500));
    assert_eq!(w.metric("recur_events_total"), 6, "{}", w.log());
    assert_eq!(w.stop(), 0);
    assert_exactly_once(&ws, 6);
}

#[test]
fn logrotate_create_with_delaycompress() {
    let ws = setup();
    let (n, w) = rotate_under_load(
        &ws,
        "  create\n  compress\n  delaycompress",
        3,
        "logs/app.log",
        false,
    );
    w.wait_metric("recur_events_total", n, 15);
    assert_eq!(w.stop(), 0);
    assert_exactly_once(&ws, n);
    assert!(ws.join("logs/app.log.2.gz").exists());
}

/// Bytes of the lines with these numbers.
fn bytes_of(numbers: &[u64]) -> u64 {
    numbers.iter().map(|&n| line(n).len() as u64).sum()
}

/// Runs copytruncate rotations under a writer; returns (written, stored numbers, bytes lost
/// reported, log).
fn copytruncate_run(in_place: bool) -> (u64, Vec<u64>, u64, String) {
    let ws = setup();
    let (n, w) = rotate_under_load(
        &ws,
        "  copytruncate\n  nocompress",
        5,
        "logs/app.log",
        in_place,
    );
    w.wait_settled(20);
    assert!(w.metric("recur_truncations_total") >= 5, "{}", w.log());
    // Each truncation is seen; the rest is read from the copy unless recur had already read
    // past the copy's end (a slow copy-to-truncate window), which then holds nothing new.
    assert!(w.log().matches("truncated").count() >= 5, "{}", w.log());
    let lost_bytes = w.metric("recur_bytes_lost_total");
    let events = w.metric("recur_events_total");
    // The zeros of a hole are never read as a line; only a copy's cut last line may be.
    assert!(w.metric("recur_invalid_total") <= 5, "{}", w.log());
    let log = w.log();
    assert_eq!(w.stop(), 0);
    let got = numbers(&ws);
    let doubled: Vec<u64> = got
        .windows(2)
        .filter(|w| w[0] == w[1])
        .map(|w| w[0])
        .collect();
    assert!(doubled.is_empty(), "read twice: {doubled:?}\n{log}");
    let (_, read) = counts(&ws);
    assert_eq!(read, events);
    assert_eq!(read, got.len() as u64, "{log}");
    (n, got, lost_bytes, log)
}

/// A writer that does not append (`app > app.log`) keeps writing at its old position after
/// the truncation; the hole it leaves tells exactly how big the file was when truncated, so
/// every lost line is accounted for, and the hole itself is never read as a line.
#[test]
fn logrotate_copytruncate_under_a_non_appending_writer_accounts_for_every_lost_byte() {
    let (n, got, reported, log) = copytruncate_run(true);
    let missing: Vec<u64> = (0..n).filter(|i| got.binary_search(i).is_err()).collect();
    let missing_bytes = bytes_of(&missing);
    eprintln!(
        "copytruncate, writer in place: {n} written, {} lost ({missing_bytes} bytes), {reported} bytes reported",
        missing.len()
    );
    // A copy that ends inside a line holds part of it (read as an invalid line when the copy
    // is drained): those bytes are not lost, the line is. One line per rotation at most.
    let slack = 5 * line(0).len() as u64;
    assert!(
        reported + slack >= missing_bytes && reported <= missing_bytes,
        "lost {} lines ({missing_bytes} bytes: {missing:?}), reported {reported} bytes\n{log}",
        missing.len()
    );
    if !missing.is_empty() {
        assert!(reported > 0, "silent loss of {missing:?}\n{log}");
    }
}

/// An appending writer's lines written between logrotate's copy and its truncation, before
/// recur looked, are in neither file and leave no trace: recur never reads a line twice,
/// warns at every copytruncate, and what it reports lost it did see (never more than lost).
#[test]
fn logrotate_copytruncate_never_counts_twice_and_reports_what_it_saw_lost() {
    let (n, got, reported, log) = copytruncate_run(false);
    let missing: Vec<u64> = (0..n).filter(|i| got.binary_search(i).is_err()).collect();
    eprintln!(
        "copytruncate, appending writer: {n} written, {} lost ({} bytes), {reported} bytes reported",
        missing.len(),
        bytes_of(&missing)
    );
    assert!(
        reported <= bytes_of(&missing),
        "reported {reported}, missing {missing:?}\n{log}"
    );
    assert!(log.contains("copytruncate"), "{log}");
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
    w.wait_metric_where("recur_checkpoint_lag_bytes", "0", |v| v == 0, 15);
    let deadline = Instant::now() + Duration::from_secs(15);
    while counts(&ws).1 < written && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(w.stop(), 0);
    assert_exactly_once(&ws, written);
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
    w.wait_metric("recur_truncations_total", 1, 10);
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
    // Polling once an hour: recur looks at start and then only when SIGHUP wakes it.
    let w = Watch::start(
        &ws,
        &[
            "logs/app.log",
            "--watch-mode",
            "poll",
            "--poll-interval",
            "1h",
        ],
    );
    // Written and deleted between two looks: only the open descriptor still reaches it.
    let text: String = (0..1000).map(line).collect();
    append(&log, &text);
    std::fs::remove_file(&log).unwrap();
    assert_eq!(w.metric("recur_events_total"), 0, "{}", w.log());
    w.signal("HUP");
    w.wait_metric("recur_events_total", 1000, 10);
    assert!(w.log().contains("rotated or deleted"), "{}", w.log());
    w.wait_log("deleted=true", 10);
    assert_eq!(w.stop(), 0);
    assert_exactly_once(&ws, 1000);
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
    // The gauge is set at the end of the loop turn whose reads counted the events.
    w.wait_metric("recur_files_watched", 4, 10);
    assert_eq!(w.metric("recur_files_watched"), 4);
    assert_eq!(w.stop(), 0);
    // Line 1 predates the start. The three new files hold the same text, but lines without
    // an id are told apart by file and offset: 10 occurrences.
    assert_eq!(counts(&ws), (10, 10));
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
    // Counters of one read are published one after the other.
    w.wait_metric("recur_invalid_total", 2, 10);
    w.wait_metric("recur_events_total", 3, 10);
    assert_eq!(w.metric("recur_lines_read_total"), 5, "{}", w.log());
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
    // The gauge is set at the end of the loop turn whose reads counted the events.
    w.wait_metric("recur_files_watched", 41, 10);
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
    // The counters follow the send.
    w.wait_metric("recur_notifications_sent_total", 1, 10);
    w.wait_metric_where("recur_notifications_pending", "0", |v| v == 0, 10);
    assert_eq!(w.metric("recur_notifications_sent_total"), 1);
    assert_eq!(w.stop(), 0);
}

/// Another process holding the state's write lock past the busy timeout (a scan storing a
/// dense export) puts a commit off: the sidecar keeps running, and the held lines are stored
/// once, with the next turn, when the lock is free.
#[test]
fn a_busy_state_puts_commits_off_and_loses_nothing() {
    let ws = setup();
    let log = ws.join("logs/app.log");
    let w = Watch::start(&ws, &["logs/app.log"]);
    append(&log, &line(1));
    w.wait_metric("recur_commits_total", 1, 10);
    let db = rusqlite::Connection::open(ws.join(".recur/state.db")).unwrap();
    db.execute_batch("BEGIN IMMEDIATE").unwrap();
    append(&log, &line(2));
    append(&log, &line(3));
    // The busy timeout is 5 s.
    w.wait_metric("recur_commits_busy_total", 1, 15);
    append(&log, &line(4));
    db.execute_batch("COMMIT").unwrap();
    drop(db);
    w.wait_metric("recur_occurrences_total", 4, 15);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    while numbers(&ws) != [1, 2, 3, 4] && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert_eq!(numbers(&ws), [1, 2, 3, 4], "{}", w.log());
    assert!(w.log().contains("commit put off"), "{}", w.log());
    assert_eq!(w.stop(), 0);
    // The checkpoint moved past the held lines: a restart reads nothing again.
    let w = Watch::start(&ws, &["logs/app.log"]);
    append(&log, &line(5));
    w.wait_metric("recur_occurrences_total", 1, 10);
    assert_eq!(w.stop(), 0);
    assert_eq!(numbers(&ws), [1, 2, 3, 4, 5]);
}

/// A rule for the notification tests: every numbered line recurs, an episode opens at once.
fn notify_setup(url: &str, extra: &str) -> Workspace {
    let ws = setup();
    ws.rule(
        "now",
        &RULE
            .replace("id = \"NUM\"", "id = \"NOW\"")
            .replace("threshold = 1000000", "threshold = 1"),
    );
    ws.write(
        "recur.toml",
        format!(
            "default_channels = [\"hook\"]\n[notify]\ntimeout = \"10s\"\n{extra}\n[channels.hook]\ntype = \"webhook\"\nurl = \"{url}\"\n"
        ),
    );
    ws
}

/// The outbox rows, from `recur outbox list`.
fn outbox(ws: &Workspace) -> Vec<serde_json::Value> {
    let out = ws
        .recur()
        .args(["outbox", "list", "--format", "json"])
        .run();
    out.json().as_array().unwrap().clone()
}

/// A receiver that accepts and never answers holds neither reading nor a stop: SIGTERM exits
/// within the 2 s lifecycle requirement, and the send in flight stays pending (same key) for
/// the next start.
#[test]
fn sigterm_exits_promptly_while_a_send_hangs() {
    let hook = HttpServer::start(&[Reply::Silent]);
    let ws = notify_setup(&hook.url("/hook"), "");
    let log = ws.join("logs/app.log");
    let w = Watch::start(&ws, &["logs/app.log"]);
    append(&log, &line(1));
    crate::servers::wait_until("the send to reach the receiver", || {
        !hook.requests().is_empty()
    });
    // The send hangs (10 s timeout); reading goes on meanwhile.
    append(&log, &(2..50).map(line).collect::<String>());
    w.wait_metric("recur_events_total", 49, 10);
    let (code, took) = w.stop_timed();
    assert_eq!(code, 0);
    // The requirement is 2 s; the bound leaves room for a loaded machine while still far
    // below the 10 s a send waiting out its timeout would take.
    assert!(took < Duration::from_secs(3), "exit took {took:?}");
    let rows = outbox(&ws);
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0]["status"], "pending", "{rows:?}");
    assert_eq!(hook.requests().len(), 1);
    let key = hook.requests()[0].json()["dedup_key"].clone();
    // The next start sends it again, under the same key, to a receiver that answers.
    let ok = HttpServer::start(&[]);
    let config = std::fs::read_to_string(ws.join("recur.toml")).unwrap();
    ws.write(
        "recur.toml",
        config.replace(&hook.url("/hook"), &ok.url("/hook")),
    );
    let w = Watch::start(&ws, &["logs/app.log"]);
    w.wait_metric("recur_notifications_sent_total", 1, 10);
    assert_eq!(w.stop(), 0);
    assert_eq!(ok.requests().len(), 1);
    assert_eq!(ok.requests()[0].json()["dedup_key"], key);
    assert_eq!(outbox(&ws)[0]["status"], "sent");
}

/// A receiver that refuses is retried on later turns (here after `backoff`) until it
/// takes the notification.
#[test]
fn failed_sends_are_retried_on_later_turns() {
    let hook = HttpServer::start(&[Reply::Status(503), Reply::Status(503)]);
    let ws = notify_setup(&hook.url("/hook"), "backoff = \"200ms\"");
    let w = Watch::start(&ws, &["logs/app.log"]);
    append(&ws.join("logs/app.log"), &line(1));
    w.wait_metric("recur_notifications_sent_total", 1, 20);
    assert_eq!(
        w.metric("recur_notifications_failed_total"),
        2,
        "{}",
        w.log()
    );
    w.wait_metric_where("recur_notifications_pending", "0", |v| v == 0, 10);
    assert_eq!(w.stop(), 0);
    let reqs = hook.requests();
    assert_eq!(reqs.len(), 3);
    let keys: Vec<String> = reqs
        .iter()
        .map(|r| r.json()["dedup_key"].as_str().unwrap().to_string())
        .collect();
    assert!(keys.iter().all(|k| k == &keys[0]), "{keys:?}");
    assert_eq!(outbox(&ws)[0]["status"], "sent");
}

/// `--no-notify` keeps notifications pending, and the gauge says how many.
#[test]
fn pending_gauge_under_no_notify() {
    let ws = notify_setup("http://127.0.0.1:9/never", "");
    let w = Watch::start(&ws, &["logs/app.log", "--no-notify"]);
    append(&ws.join("logs/app.log"), &line(1));
    w.wait_metric("recur_notifications_pending", 1, 10);
    assert_eq!(w.stop(), 0);
    assert_eq!(outbox(&ws)[0]["status"], "pending");
}

/// Identical lines without a timestamp or an id are separate occurrences (told apart by
/// where they are), and a restart neither doubles nor loses them.
#[test]
fn identical_untimed_lines_are_separate_occurrences() {
    let ws = setup();
    let log = ws.join("logs/app.log");
    let same = "{\"kind\":\"num\",\"n\":7}\n";
    let w = Watch::start(&ws, &["logs/app.log"]);
    append(&log, &format!("{same}{same}"));
    w.wait_metric("recur_events_total", 2, 10);
    assert_eq!(w.stop(), 0);
    assert_eq!(counts(&ws), (2, 2));
    // Restart: the two are not read again; a third identical line is a third occurrence.
    let w = Watch::start(&ws, &["logs/app.log"]);
    append(&log, same);
    w.wait_metric("recur_events_total", 1, 10);
    assert_eq!(w.stop(), 0);
    assert_eq!(counts(&ws), (3, 3));
    // Read again from the start after the checkpoint is gone (a state restored from before):
    // the same records have the same identities.
    let db = rusqlite::Connection::open(ws.join(".recur/state.db")).unwrap();
    db.execute("DELETE FROM checkpoints", []).unwrap();
    drop(db);
    let w = Watch::start(&ws, &["logs/app.log", "--from-beginning"]);
    w.wait_metric("recur_events_total", 3, 10);
    assert_eq!(w.stop(), 0);
    assert_eq!(counts(&ws).0, 3, "the same records, stored once");
}

/// A directory removed and recreated is watched again (a watch dies with its directory), so
/// native notifications keep working for the files in the new one.
#[test]
fn recreated_directory_is_watched_again() {
    let ws = setup();
    let dir = ws.join("logs");
    let w = Watch::start(&ws, &["logs", "--watch-mode", "native"]);
    w.wait_metric("recur_watched_dirs", 1, 10);
    let before = w.log().matches("watching directory dir=logs").count();
    append(&dir.join("app.log"), &line(0));
    w.wait_metric("recur_events_total", 1, 10);
    std::fs::remove_dir_all(&dir).unwrap();
    std::fs::create_dir(&dir).unwrap();
    w.wait_log_n("watching directory dir=logs", before + 1, 10);
    append(&dir.join("app.log"), &line(1));
    w.wait_metric("recur_events_total", 2, 10);
    assert_eq!(w.metric("recur_watched_dirs"), 1);
    assert_eq!(w.stop(), 0);
    assert_exactly_once(&ws, 2);
}

/// A directory missing at start is watched once it appears.
#[test]
fn directory_missing_at_start_is_watched_when_it_appears() {
    let ws = Workspace::new();
    ws.rule("num", RULE);
    let w = Watch::start_quiet(&ws, &["logs", "--watch-mode", "native"]);
    w.wait_log("watching with native notifications", 10);
    assert!(!w.log().contains("dir=logs"), "{}", w.log());
    std::fs::create_dir(ws.join("logs")).unwrap();
    w.wait_log("watching directory dir=logs", 10);
    append(&ws.join("logs/app.log"), &line(0));
    w.wait_metric("recur_events_total", 1, 10);
    assert_eq!(w.stop(), 0);
}

/// When native notifications cannot start (inotify unavailable or exhausted, simulated), the
/// sidecar polls instead, says so, and still reads everything.
#[test]
fn falls_back_to_polling_when_native_notifications_fail() {
    let ws = setup();
    let w = Watch::start_env(
        &ws,
        &["logs/app.log", "--poll-interval", "50ms"],
        &[("RECUR_FAULT_NO_NATIVE_WATCH", "1")],
    );
    assert!(
        w.log().contains("native notifications unavailable"),
        "{}",
        w.log()
    );
    assert!(w.log().contains("polling every 50ms"), "{}", w.log());
    assert_eq!(w.metric("recur_watch_polling"), 1);
    assert_eq!(w.metric("recur_watched_dirs"), 0);
    append(&ws.join("logs/app.log"), &line(0));
    w.wait_metric("recur_events_total", 1, 10);
    assert_eq!(w.stop(), 0);
    // `native` does not fall back: it fails.
    let out = Cmd::new()
        .cmd
        .current_dir(ws.path())
        .args(["watch", "logs/app.log", "--watch-mode", "native"])
        .env("RECUR_FAULT_NO_NATIVE_WATCH", "1")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}

/// A change in the rules directory (no signal) reloads the rules.
#[test]
fn rules_directory_change_reloads_without_a_signal() {
    let ws = setup();
    let log = ws.join("logs/app.log");
    let w = Watch::start(&ws, &["logs/app.log"]);
    assert_eq!(w.metric("recur_rules_loaded"), 1);
    ws.rule(
        "other",
        &RULE
            .replace("id = \"NUM\"", "id = \"OTHER\"")
            .replace("kind = \"num\"", "kind = \"other\""),
    );
    w.wait_log("rules reloaded", 10);
    assert_eq!(w.metric("recur_rules_loaded"), 2);
    assert_eq!(w.metric("recur_rule_reloads_total"), 1);
    append(&log, "{\"kind\":\"other\"}\n");
    w.wait_metric("recur_occurrences_total", 1, 10);
    assert_eq!(w.stop(), 0);
}

/// Deleted and recreated under the same name: the old file is drained through its
/// descriptor, the new one read from its start.
#[test]
fn delete_and_recreate() {
    let ws = setup();
    let log = ws.join("logs/app.log");
    let w = Watch::start(&ws, &["logs/app.log"]);
    append(&log, &(0..10).map(line).collect::<String>());
    w.wait_metric("recur_events_total", 10, 10);
    std::fs::remove_file(&log).unwrap();
    append(&log, &(10..15).map(line).collect::<String>());
    w.wait_metric("recur_events_total", 15, 10);
    assert!(w.metric("recur_rotations_total") >= 1, "{}", w.log());
    assert_eq!(w.stop(), 0);
    assert_exactly_once(&ws, 15);
}

/// Inode reuse: the checkpoint's device and inode now belong to another file (different first
/// bytes). That file is new and read from its start, not from the old offset, and the old
/// one is reported lost with the bytes recur had seen but not read.
#[test]
fn inode_reuse_across_a_restart_is_a_new_file() {
    use std::os::unix::fs::MetadataExt;
    let ws = setup();
    let log = ws.join("logs/app.log");
    let w = Watch::start(&ws, &["logs/app.log"]);
    // Ten lines and a partial one: the checkpoint records the size seen past its offset.
    append(&log, &(0..10).map(line).collect::<String>());
    append(&log, "{\"kind\":\"num\",\"n\":10");
    w.wait_metric("recur_events_total", 10, 10);
    assert_eq!(w.stop(), 0);
    // Replaced while down by a shorter file; the kernel may hand the freed inode to it. Make
    // that certain by giving the checkpoint the new file's inode.
    std::fs::remove_file(&log).unwrap();
    append(&log, &(100..103).map(line).collect::<String>());
    let ino = std::fs::metadata(&log).unwrap().ino();
    let db = rusqlite::Connection::open(ws.join(".recur/state.db")).unwrap();
    let n = db
        .execute("UPDATE checkpoints SET inode = ?1", [ino as i64])
        .unwrap();
    assert_eq!(n, 1);
    drop(db);
    let w = Watch::start(&ws, &["logs/app.log"]);
    w.wait_metric("recur_events_total", 3, 10);
    assert!(w.log().contains("data lost"), "{}", w.log());
    // The unterminated line (19 bytes) was seen and never read.
    assert!(w.metric("recur_bytes_lost_total") >= 19, "{}", w.log());
    assert_eq!(w.stop(), 0);
    assert_eq!(counts(&ws), (13, 13));
}

/// A rotated file deleted while recur was down: reported lost with at least the bytes recur
/// had seen written past its offset.
#[test]
fn a_file_gone_while_down_is_reported_with_its_unread_bytes() {
    let ws = setup();
    let log = ws.join("logs/app.log");
    let w = Watch::start(&ws, &["logs/app.log"]);
    append(&log, &(0..3).map(line).collect::<String>());
    let partial = "{\"kind\":\"num\",\"n\":3";
    append(&log, partial);
    w.wait_metric("recur_events_total", 3, 10);
    assert_eq!(w.stop(), 0);
    std::fs::rename(&log, ws.join("logs/app.log.1")).unwrap();
    std::fs::remove_file(ws.join("logs/app.log.1")).unwrap();
    append(&log, &line(4));
    let w = Watch::start(&ws, &["logs/app.log"]);
    w.wait_log("data lost", 10);
    assert_eq!(w.metric("recur_files_lost_total"), 1);
    assert!(
        w.metric("recur_bytes_lost_total") >= partial.len() as u64,
        "{}",
        w.log()
    );
    w.wait_metric("recur_events_total", 1, 10);
    assert_eq!(w.stop(), 0);
}

/// `/healthz` answers ok while the loop turns.
#[test]
fn health_follows_the_loop() {
    let ws = setup();
    let w = Watch::start(&ws, &["logs/app.log"]);
    let body = w.get("/healthz");
    assert!(body.starts_with("HTTP/1.1 200"), "{body}");
    // Still ok after several idle turns (the loop wakes at least every second).
    std::thread::sleep(Duration::from_millis(1500));
    assert!(w.get("/healthz").ends_with("ok\n"));
    assert_eq!(w.stop(), 0);
}

/// Sampled coverage (the default) reaches the store from `watch` as from `scan`: a staging log
/// that stays quiet for longer than `verify` after the fix verifies it, although none of its
/// lines is a candidate of the rule.
#[test]
fn a_quiet_log_verifies_a_fix_with_sampled_coverage() {
    let ws = Workspace::new();
    ws.rule(
        "quiet",
        r#"
id = "QUIET"
title = "Quiet after the fix"
owner = "team@example.com"
analysis = "https://example.com/a"
[fix]
status = "fixed"
fixed_at = "2025-09-10T00:00:00Z"
verify = "1h"
[scope]
environment = "staging"
[[signature]]
error_code = "NO_TOKEN"
"#,
    );
    // Written before the harness's default (exact coverage) would be.
    ws.write("recur.toml", "[coverage]\nmode = \"sampled\"\n");
    ws.write("logs/app.log", "");
    let w = Watch::start(&ws, &["logs/app.log"]);
    let mut lines = String::new();
    for m in 0..180 {
        lines.push_str(&format!(
            "{{\"timestamp\":\"2025-09-10T{:02}:{:02}:00Z\",\"environment\":\"staging\",\"error_code\":\"OK\"}}\n",
            m / 60,
            m % 60
        ));
    }
    append(&ws.join("logs/app.log"), &lines);
    w.wait_metric("recur_events_total", 180, 10);
    w.wait_settled(10);
    assert_eq!(w.stop(), 0);
    let v = ws.recur().args(["status", "--format", "json"]).run().json();
    let r = &v["remediations"][0];
    assert_eq!(r["id"], "QUIET", "{v}");
    assert_eq!(r["verdict"], "verified", "{r}");
}
