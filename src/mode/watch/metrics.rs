//! Prometheus text metrics and a health check, served by a tiny HTTP/1.0 server on a thread.
//! The counters are plain atomics the watch loop bumps; a scrape never blocks the loop.

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

/// Every metric `watch` exports.
#[derive(Debug, Default)]
pub struct Metrics {
    pub lines_read: AtomicU64,
    pub bytes_read: AtomicU64,
    pub events: AtomicU64,
    pub invalid: AtomicU64,
    pub occurrences: AtomicU64,
    pub recurrences: AtomicU64,
    pub notifications_sent: AtomicU64,
    pub notifications_failed: AtomicU64,
    pub notifications_pending: AtomicU64,
    pub files_watched: AtomicU64,
    pub rotations: AtomicU64,
    pub truncations: AtomicU64,
    pub bytes_lost: AtomicU64,
    pub files_lost: AtomicU64,
    pub checkpoint_lag_bytes: AtomicU64,
    pub commits: AtomicU64,
    pub commits_busy: AtomicU64,
    pub rule_reloads: AtomicU64,
    pub rule_reload_failures: AtomicU64,
    pub rules_loaded: AtomicU64,
    /// Directories with a native watch.
    pub watched_dirs: AtomicU64,
    /// 1 when polling (asked for, or native notifications unavailable or exhausted).
    pub polling: AtomicU64,
    /// Wall-clock milliseconds of the loop's last turn (see [`Metrics::beat`]).
    pub heartbeat_ms: AtomicU64,
    /// `/healthz` fails when the last turn is older than this (0: never).
    pub stall_after_ms: AtomicU64,
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

impl Metrics {
    pub fn add(c: &AtomicU64, n: u64) {
        c.fetch_add(n, Relaxed);
    }

    /// Marks a turn of the watch loop (for `/healthz`).
    pub fn beat(&self) {
        self.heartbeat_ms.store(now_ms(), Relaxed);
    }

    /// `None` when healthy, else why not: the loop has not turned for too long (stuck on a
    /// file system, a lock, or a bug), which a liveness probe should answer with a restart.
    pub fn unhealthy(&self) -> Option<String> {
        let limit = self.stall_after_ms.load(Relaxed);
        let idle = now_ms().saturating_sub(self.heartbeat_ms.load(Relaxed));
        (limit > 0 && idle > limit).then(|| {
            format!(
                "stuck: the watch loop has not turned for {:.1}s\n",
                idle as f64 / 1000.0
            )
        })
    }

    /// The Prometheus text exposition of every metric.
    pub fn render(&self) -> String {
        let rows: [(&str, &str, &str, &AtomicU64); 22] = [
            (
                "recur_lines_read_total",
                "counter",
                "Records read (invalid ones included).",
                &self.lines_read,
            ),
            (
                "recur_bytes_read_total",
                "counter",
                "Bytes read from followed files.",
                &self.bytes_read,
            ),
            (
                "recur_events_total",
                "counter",
                "Valid records (events).",
                &self.events,
            ),
            (
                "recur_invalid_total",
                "counter",
                "Records skipped as invalid (malformed, over the cap, not UTF-8).",
                &self.invalid,
            ),
            (
                "recur_occurrences_total",
                "counter",
                "Occurrences found (before deduplication by the store).",
                &self.occurrences,
            ),
            (
                "recur_recurrences_total",
                "counter",
                "New recurrences committed.",
                &self.recurrences,
            ),
            (
                "recur_notifications_sent_total",
                "counter",
                "Notifications delivered.",
                &self.notifications_sent,
            ),
            (
                "recur_notifications_failed_total",
                "counter",
                "Notification attempts that failed.",
                &self.notifications_failed,
            ),
            (
                "recur_notifications_pending",
                "gauge",
                "Outbox rows waiting to be sent or retried.",
                &self.notifications_pending,
            ),
            (
                "recur_files_watched",
                "gauge",
                "Files followed (live and draining).",
                &self.files_watched,
            ),
            (
                "recur_rotations_total",
                "counter",
                "Rotations (renames, deletions, replacements) seen.",
                &self.rotations,
            ),
            (
                "recur_truncations_total",
                "counter",
                "Truncations seen.",
                &self.truncations,
            ),
            (
                "recur_bytes_lost_total",
                "counter",
                "Bytes known to be lost (copytruncate race, truncation before reading).",
                &self.bytes_lost,
            ),
            (
                "recur_files_lost_total",
                "counter",
                "Files whose unread rest is lost (gone while recur was down).",
                &self.files_lost,
            ),
            (
                "recur_checkpoint_lag_bytes",
                "gauge",
                "Bytes written to followed files but not yet committed.",
                &self.checkpoint_lag_bytes,
            ),
            (
                "recur_commits_total",
                "counter",
                "State transactions committed.",
                &self.commits,
            ),
            (
                "recur_commits_busy_total",
                "counter",
                "Commits put off because another process held the state's write lock (retried with the next turn).",
                &self.commits_busy,
            ),
            (
                "recur_rule_reloads_total",
                "counter",
                "Successful rule reloads.",
                &self.rule_reloads,
            ),
            (
                "recur_rule_reload_failures_total",
                "counter",
                "Rule reloads refused (invalid rules; the old ones stay).",
                &self.rule_reload_failures,
            ),
            (
                "recur_rules_loaded",
                "gauge",
                "Remediations loaded.",
                &self.rules_loaded,
            ),
            (
                "recur_watched_dirs",
                "gauge",
                "Directories with a native file-system watch.",
                &self.watched_dirs,
            ),
            (
                "recur_watch_polling",
                "gauge",
                "1 when files are polled (asked for, or native notifications unavailable).",
                &self.polling,
            ),
        ];
        let mut s = String::new();
        for (name, kind, help, v) in rows {
            s.push_str(&format!(
                "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {}\n",
                v.load(Relaxed)
            ));
        }
        s
    }
}

/// Binds `addr` and serves `/metrics` and `/healthz` on a background thread.
pub fn serve(addr: &str, metrics: Arc<Metrics>) -> std::io::Result<std::net::SocketAddr> {
    let listener = TcpListener::bind(addr)?;
    let local = listener.local_addr()?;
    std::thread::Builder::new()
        .name("metrics".into())
        .spawn(move || {
            for stream in listener.incoming().flatten() {
                let _ = answer(stream, &metrics);
            }
        })?;
    Ok(local)
}

fn answer(stream: TcpStream, metrics: &Metrics) -> std::io::Result<()> {
    stream.set_read_timeout(Some(Duration::from_secs(2)))?;
    stream.set_write_timeout(Some(Duration::from_secs(2)))?;
    let mut reader = BufReader::new(&stream);
    let mut request = String::new();
    reader.read_line(&mut request)?;
    // Headers are read and ignored up to the blank line.
    let mut line = String::new();
    while reader.read_line(&mut line)? > 2 {
        line.clear();
    }
    let path = request.split_whitespace().nth(1).unwrap_or("/");
    let (status, ctype, body) = match path {
        "/metrics" => (
            "200 OK",
            "text/plain; version=0.0.4; charset=utf-8",
            metrics.render(),
        ),
        "/healthz" => match metrics.unhealthy() {
            None => ("200 OK", "text/plain; charset=utf-8", "ok\n".to_string()),
            Some(why) => ("503 Service Unavailable", "text/plain; charset=utf-8", why),
        },
        _ => (
            "404 Not Found",
            "text/plain; charset=utf-8",
            "not found\n".to_string(),
        ),
    };
    let mut w = &stream;
    write!(
        w,
        "HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )?;
    w.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_every_metric_with_help_and_type() {
        let m = Metrics::default();
        Metrics::add(&m.events, 3);
        let text = m.render();
        assert!(text.contains("# TYPE recur_events_total counter\nrecur_events_total 3\n"));
        assert_eq!(text.matches("# HELP").count(), 22);
        assert!(text.contains("# TYPE recur_commits_busy_total counter\n"));
    }

    fn get(addr: std::net::SocketAddr, path: &str) -> String {
        let mut s = TcpStream::connect(addr).unwrap();
        write!(s, "GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
        let mut body = String::new();
        std::io::Read::read_to_string(&mut s, &mut body).unwrap();
        body
    }

    #[test]
    fn health_fails_when_the_loop_stops_turning() {
        let m = Arc::new(Metrics::default());
        m.stall_after_ms.store(30_000, Relaxed);
        m.beat();
        let addr = serve("127.0.0.1:0", m.clone()).unwrap();
        assert!(get(addr, "/healthz").starts_with("HTTP/1.1 200"));
        // The last turn 31 s ago.
        m.heartbeat_ms.store(now_ms() - 31_000, Relaxed);
        let body = get(addr, "/healthz");
        assert!(body.starts_with("HTTP/1.1 503"), "{body}");
        assert!(body.contains("has not turned for 31"), "{body}");
        m.beat();
        assert!(get(addr, "/healthz").starts_with("HTTP/1.1 200"));
    }

    #[test]
    fn serves_metrics_and_health() {
        let m = Arc::new(Metrics::default());
        let addr = serve("127.0.0.1:0", m).unwrap();
        for (path, want) in [("/healthz", "ok"), ("/metrics", "recur_events_total 0")] {
            let mut s = TcpStream::connect(addr).unwrap();
            write!(s, "GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
            let mut body = String::new();
            std::io::Read::read_to_string(&mut s, &mut body).unwrap();
            assert!(body.starts_with("HTTP/1.1 200"), "{body}");
            assert!(body.contains(want), "{body}");
        }
    }
}
