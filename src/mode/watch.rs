//! `recur watch`: the sidecar. Follows live log files through rotation and truncation, commits
//! each batch's findings in one transaction with the offsets that produced them, keeps
//! episodes live and sends notifications as soon as an episode opens.
//!
//! One loop on one thread: wait for a hint (a file-system event, a signal, or the timer), look
//! at every file (`stat` is the truth), read what is complete, commit, refresh episodes, drain
//! the outbox. Between hints the thread blocks on a channel, so an idle sidecar costs nothing.

pub mod metrics;

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use jiff::Timestamp;
use metrics::Metrics;

use super::common::{self, Findings, FindingsSink, IntentOptions};
use crate::config::Config;
use crate::decode::{Event, Format};
use crate::matcher::{CoverageMode, Hit, Matcher};
use crate::redact::Redactor;
use crate::rule::Remediation;
use crate::search::{InvalidTally, SearchConfig, Sink, Stats, search};
use crate::source::framing::{Framing, Record};
use crate::source::tail::{StartAt, TailEvent, Tailed, Tailer};
use crate::store::{Batch, CoverageCell, DeliveryStatus, Store};

/// How file changes are noticed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum WatchMode {
    /// Native notifications (inotify), falling back to polling when unavailable or exhausted.
    Auto,
    /// Native notifications only; fail when unavailable.
    Native,
    /// Look at every file every `--poll-interval` (network file systems, exhausted inotify).
    Poll,
}

/// Log line format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Human,
    Json,
}

/// `recur watch` flags. Every one has a `RECUR_…` twin for sidecar deployments.
#[derive(Debug, Clone, clap::Args)]
pub struct WatchArgs {
    /// Files, directories (followed recursively) and globs to follow; files that appear later
    /// and match are read from their start.
    #[arg(
        value_name = "PATH|GLOB",
        required = true,
        env = "RECUR_WATCH_PATHS",
        value_delimiter = ','
    )]
    pub paths: Vec<String>,
    /// Directory of rule files (reloaded on SIGHUP and when it changes).
    #[arg(long, value_name = "DIR", default_value = "rules", env = "RECUR_RULES")]
    pub rules: PathBuf,
    /// Configuration file (default: ./recur.toml when present).
    #[arg(long, value_name = "FILE", env = "RECUR_CONFIG")]
    pub config: Option<PathBuf>,
    /// State database (default: .recur/state.db, or the config's `[state] path`).
    #[arg(long, value_name = "PATH", env = "RECUR_STATE")]
    pub state: Option<PathBuf>,
    /// Input format; `auto` detects per file and line.
    #[arg(
        long,
        value_enum,
        value_name = "FORMAT",
        default_value = "auto",
        env = "RECUR_INPUT"
    )]
    pub input: Format,
    /// Read files that exist at startup (and have no checkpoint) from their start, not their end.
    #[arg(long, env = "RECUR_FROM_BEGINNING")]
    pub from_beginning: bool,
    /// How changes are noticed: native notifications, polling, or native with a polling fallback.
    #[arg(long, value_enum, default_value = "auto", env = "RECUR_WATCH_MODE")]
    pub watch_mode: WatchMode,
    /// How often to look at every file in poll mode (native mode re-checks every second).
    #[arg(long, value_name = "DURATION", default_value = "250ms", value_parser = parse_interval, env = "RECUR_POLL_INTERVAL")]
    pub poll_interval: Duration,
    /// Serve Prometheus metrics at /metrics and a health check at /healthz on this address.
    #[arg(long, value_name = "ADDR", env = "RECUR_METRICS_ADDR")]
    pub metrics_addr: Option<String>,
    /// Log lines (stderr): human-readable, or one JSON object per line.
    #[arg(long, value_enum, default_value = "human", env = "RECUR_LOG_FORMAT")]
    pub log_format: LogFormat,
    /// Longest record kept, in bytes; longer ones are skipped and counted (default 1 MiB or the config's).
    #[arg(long, value_name = "N", env = "RECUR_MAX_LINE_BYTES")]
    pub max_line_bytes: Option<usize>,
    /// Record notifications without sending them (they stay pending in the outbox).
    #[arg(long, env = "RECUR_NO_NOTIFY")]
    pub no_notify: bool,
}

fn parse_interval(s: &str) -> Result<Duration, String> {
    let d = crate::duration::parse_duration(s).map_err(|e| e.to_string())?;
    let d = Duration::try_from(d).map_err(|e| e.to_string())?;
    if d < Duration::from_millis(10) {
        return Err("the poll interval must be at least 10ms".into());
    }
    Ok(d)
}

/// Re-check every file at least this often in native mode: notifications are hints only.
const NATIVE_RECHECK: Duration = Duration::from_secs(1);
/// Bytes read from one file per loop turn, so commits stay small and a stop request is quick.
const READ_BUDGET: u64 = 4 * 1024 * 1024;
/// Episodes are recomputed at least this often (reminders), and at once after a new occurrence.
const REFRESH_EVERY: Duration = Duration::from_secs(10);
/// The outbox is drained at least this often (retries of failed sends).
const DRAIN_EVERY: Duration = Duration::from_secs(1);
/// How long to gather a burst of file events before reading.
const SETTLE: Duration = Duration::from_millis(5);

/// What wakes the loop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Wake {
    /// A file changed (a hint).
    Fs,
    /// Notifications were lost (queue overflow): look at everything.
    Rescan,
    Reload,
    Stop,
}

fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("RECUR_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
        LogFormat::Human => builder.with_ansi(false).try_init(),
    };
}

/// The rules in force and what is derived from them.
struct Loaded {
    rules: Arc<[Remediation]>,
    matcher: Matcher,
    fingerprint: u64,
}

/// A cheap fingerprint of the rules directory (names, sizes, modification times).
fn rules_fingerprint(dir: &Path) -> u64 {
    let mut entries: Vec<String> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .filter_map(|e| {
                    let m = e.metadata().ok()?;
                    let mt = m
                        .modified()
                        .ok()?
                        .duration_since(std::time::UNIX_EPOCH)
                        .ok()?;
                    Some(format!("{:?}|{}|{}", e.file_name(), m.len(), mt.as_nanos()))
                })
                .collect()
        })
        .unwrap_or_default();
    entries.sort();
    xxhash_rust::xxh3::xxh3_64(entries.join("\n").as_bytes())
}

/// Loads the rules, logging every error. `None` when any rule file is invalid.
fn load(dir: &Path, coverage: CoverageMode) -> Option<Loaded> {
    let fingerprint = rules_fingerprint(dir);
    let loaded = match crate::rule::load_rules_dir(dir) {
        Ok(l) => l,
        Err(e) => {
            tracing::error!(rules = %dir.display(), "cannot read the rules directory: {e}");
            return None;
        }
    };
    for d in &loaded.diagnostics {
        let text = crate::diag::render(std::slice::from_ref(d), &loaded.sources, false);
        tracing::error!(file = %d.path.display(), "invalid rule: {}", text.trim_end());
    }
    if !loaded.diagnostics.is_empty() {
        return None;
    }
    let rules: Arc<[Remediation]> = loaded.remediations.into();
    Some(Loaded {
        matcher: Matcher::new(rules.clone(), coverage),
        rules,
        fingerprint,
    })
}

/// The sink of one read: findings for the store, and a stop when a signal asks for it.
struct WatchSink<'a> {
    inner: FindingsSink<'a>,
    stop: &'a AtomicBool,
}

impl Sink for WatchSink<'_> {
    fn hits(&mut self, record: &Record<'_>, event: &Event, hits: &[Hit]) {
        self.inner.hits(record, event, hits);
    }
    fn after_record(&mut self, _record: &Record<'_>) -> bool {
        !self.stop.load(Ordering::Relaxed)
    }
}

/// Starts native notifications on the given directories.
fn native_watcher(
    dirs: &[(PathBuf, bool)],
    tx: Sender<Wake>,
    ignore: Option<PathBuf>,
) -> notify::Result<notify::RecommendedWatcher> {
    use notify::Watcher;
    let mut w = notify::recommended_watcher(move |res: notify::Result<notify::Event>| {
        let wake = match res {
            Ok(ev) if ev.need_rescan() => Wake::Rescan,
            Ok(ev) => {
                // The state database's own writes are not news.
                if let Some(ig) = &ignore {
                    if !ev.paths.is_empty()
                        && ev.paths.iter().all(|p| {
                            p.starts_with(ig)
                                || p.to_string_lossy().starts_with(&*ig.to_string_lossy())
                        })
                    {
                        return;
                    }
                }
                Wake::Fs
            }
            Err(_) => Wake::Rescan,
        };
        let _ = tx.send(wake);
    })?;
    let mut watched = 0;
    let mut last_err = None;
    for (dir, recursive) in dirs {
        let mode = if *recursive {
            notify::RecursiveMode::Recursive
        } else {
            notify::RecursiveMode::NonRecursive
        };
        match w.watch(dir, mode) {
            Ok(()) => watched += 1,
            Err(e) => {
                tracing::debug!(dir = %dir.display(), "not watched: {e}");
                last_err = Some(e);
            }
        }
    }
    if watched == 0 {
        if let Some(e) = last_err {
            return Err(e);
        }
    }
    Ok(w)
}

/// Runs `recur watch` until SIGTERM/SIGINT. Returns the exit code.
pub fn run(args: &WatchArgs, color: bool, err: &mut dyn Write) -> anyhow::Result<i32> {
    init_logging(args.log_format);
    let Some(config) = common::load_config(args.config.as_deref(), color, err)? else {
        return Ok(2);
    };
    let Some(mut loaded) = load(&args.rules, config.coverage.mode) else {
        tracing::error!("invalid rules; nothing started");
        return Ok(2);
    };
    let state_path = common::state_path(args.state.as_deref(), &config);
    let mut store = match common::open_store(false, &state_path) {
        Ok(s) => s,
        Err(e) => {
            tracing::error!("{e}");
            return Ok(2);
        }
    };
    store.note_remediations(&loaded.rules, Timestamp::now())?;
    let redactor = Redactor::new(&config.redact.fields, &config.redact.patterns)?;
    let mut decode = config.decode_config();
    if args.input != Format::Auto {
        decode.format = args.input;
    }
    let framing = (args.input == Format::Cri).then_some(Framing::Cri);
    let search_cfg = SearchConfig {
        decode,
        since: None,
        until: None,
    };
    let max_line = args.max_line_bytes.unwrap_or(config.input.max_line_bytes);

    let metrics = Arc::new(Metrics::default());
    Metrics::add(&metrics.rules_loaded, loaded.rules.len() as u64);
    if let Some(addr) = &args.metrics_addr {
        match metrics::serve(addr, metrics.clone()) {
            Ok(a) => tracing::info!(addr = %a, "serving /metrics and /healthz"),
            Err(e) => {
                tracing::error!(addr = %addr, "cannot serve metrics: {e}");
                return Ok(2);
            }
        }
    }

    // Signals become wake-ups on the loop's channel; the stop flag also ends a read early.
    let (tx, rx) = mpsc::channel::<Wake>();
    let stop = Arc::new(AtomicBool::new(false));
    {
        use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
        let mut signals = signal_hook::iterator::Signals::new([SIGTERM, SIGINT, SIGHUP])?;
        let tx = tx.clone();
        let stop = stop.clone();
        std::thread::Builder::new()
            .name("signals".into())
            .spawn(move || {
                for sig in signals.forever() {
                    if sig == SIGHUP {
                        let _ = tx.send(Wake::Reload);
                    } else {
                        stop.store(true, Ordering::Relaxed);
                        let _ = tx.send(Wake::Stop);
                    }
                }
            })?;
    }

    let start = if args.from_beginning {
        StartAt::Beginning
    } else {
        StartAt::End
    };
    let state_abs = std::path::absolute(&state_path).unwrap_or(state_path.clone());
    let mut tailer = Tailer::new(args.paths.clone(), start, framing, store.checkpoints()?);
    tailer.exclude(state_abs.clone());

    let mut watcher = None;
    let mut interval = args.poll_interval;
    if args.watch_mode != WatchMode::Poll {
        match native_watcher(&tailer.watch_dirs(), tx.clone(), Some(state_abs.clone())) {
            Ok(w) => {
                watcher = Some(w);
                interval = NATIVE_RECHECK;
                tracing::info!("watching with native notifications");
            }
            Err(e) if args.watch_mode == WatchMode::Auto => {
                tracing::warn!(
                    "native notifications unavailable ({e}); polling every {:?}",
                    interval
                );
            }
            Err(e) => {
                tracing::error!("native notifications unavailable: {e}");
                return Ok(2);
            }
        }
    } else {
        tracing::info!("polling every {:?}", interval);
    }
    let _watcher = Mutex::new(watcher);

    let opts = IntentOptions {
        max_notifications: config.notify.max_notifications as usize,
        notify_since: None,
    };
    let mut looper = Looper {
        args,
        config: &config,
        redactor: &redactor,
        search_cfg: &search_cfg,
        max_line,
        metrics: &metrics,
        stop: &stop,
        opts,
        last_refresh: None,
        last_drain: None,
        last_rules_check: Instant::now(),
        refresh_due: true,
    };
    let mut reload = false;
    loop {
        if reload
            || looper.last_rules_check.elapsed() >= Duration::from_secs(1)
                && rules_fingerprint(&args.rules) != loaded.fingerprint
        {
            looper.last_rules_check = Instant::now();
            match load(&args.rules, config.coverage.mode) {
                Some(new) => {
                    tracing::info!(rules = new.rules.len(), "rules reloaded");
                    store.note_remediations(&new.rules, Timestamp::now())?;
                    metrics
                        .rules_loaded
                        .store(new.rules.len() as u64, Ordering::Relaxed);
                    Metrics::add(&metrics.rule_reloads, 1);
                    loaded = new;
                    looper.refresh_due = true;
                }
                None => {
                    tracing::error!("rules not reloaded: the rules in force stay");
                    Metrics::add(&metrics.rule_reload_failures, 1);
                    // Do not retry the same broken files every second.
                    loaded.fingerprint = rules_fingerprint(&args.rules);
                }
            }
        } else if looper.last_rules_check.elapsed() >= Duration::from_secs(1) {
            looper.last_rules_check = Instant::now();
        }
        reload = false;
        let more = looper.tick(&mut tailer, store.as_mut(), &loaded)?;
        if stop.load(Ordering::Relaxed) {
            break;
        }
        let wait = if more { Duration::ZERO } else { interval };
        match wait_for(&rx, wait) {
            Some(Wake::Stop) => break,
            Some(Wake::Reload) => reload = true,
            Some(Wake::Rescan) => {
                tracing::debug!("notification queue overflowed; looking at every file")
            }
            Some(Wake::Fs) | None => {}
        }
        if stop.load(Ordering::Relaxed) {
            break;
        }
    }
    // Everything read was committed at the end of its loop turn; nothing is pending.
    tracing::info!("stopped");
    Ok(0)
}

/// Blocks until a wake-up or `timeout`; gathers a burst of file events into one. A stop or
/// reload request wins over file events.
fn wait_for(rx: &Receiver<Wake>, timeout: Duration) -> Option<Wake> {
    let first = match rx.recv_timeout(timeout) {
        Ok(w) => w,
        Err(RecvTimeoutError::Timeout) => return None,
        Err(RecvTimeoutError::Disconnected) => return Some(Wake::Stop),
    };
    let mut best = first;
    let deadline = Instant::now() + SETTLE;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let next = if left.is_zero() {
            rx.try_recv().ok()
        } else {
            rx.recv_timeout(left).ok()
        };
        let Some(w) = next else { break };
        best = match (best, w) {
            (Wake::Stop, _) | (_, Wake::Stop) => Wake::Stop,
            (Wake::Reload, _) | (_, Wake::Reload) => Wake::Reload,
            (Wake::Rescan, _) | (_, Wake::Rescan) => Wake::Rescan,
            _ => Wake::Fs,
        };
    }
    Some(best)
}

/// The per-turn work of the loop.
struct Looper<'a> {
    args: &'a WatchArgs,
    config: &'a Config,
    redactor: &'a Redactor,
    search_cfg: &'a SearchConfig,
    max_line: usize,
    metrics: &'a Metrics,
    stop: &'a AtomicBool,
    opts: IntentOptions,
    last_refresh: Option<Instant>,
    last_drain: Option<Instant>,
    last_rules_check: Instant,
    refresh_due: bool,
}

impl Looper<'_> {
    /// One turn: look, read, commit, refresh, drain. Returns whether more input is waiting
    /// (a read stopped at its budget).
    fn tick(
        &mut self,
        tailer: &mut Tailer,
        store: &mut dyn Store,
        loaded: &Loaded,
    ) -> anyhow::Result<bool> {
        let m = self.metrics;
        for ev in tailer.reconcile() {
            log_event(&ev, m);
        }
        let now_i = Instant::now();
        let mut batch = Batch::default();
        let mut more = false;
        let files: Vec<&mut Tailed> = tailer.files_mut().collect();
        for t in files {
            if self.stop.load(Ordering::Relaxed) {
                break;
            }
            more |= self.read_file(t, loaded, &mut batch, now_i);
        }
        for t in tailer.files_mut() {
            if t.committed.as_ref() != Some(&(t.key.clone(), t.offset)) {
                match t.checkpoint() {
                    Ok(cp) => {
                        t.committed = Some((t.key.clone(), t.offset));
                        batch.checkpoints.push(cp);
                    }
                    Err(e) => tracing::warn!(file = %t.path.display(), "cannot checkpoint: {e}"),
                }
            }
        }
        let keep: std::collections::HashSet<&str> =
            batch.checkpoints.iter().map(|c| c.path.as_str()).collect();
        batch.forget_checkpoints = tailer
            .forget
            .drain(..)
            .filter(|k| !keep.contains(k.as_str()))
            .collect();
        let wrote = !(batch.occurrences.is_empty()
            && batch.coverage.is_empty()
            && batch.checkpoints.is_empty()
            && batch.forget_checkpoints.is_empty());
        if wrote {
            let outcome = store.commit(&batch)?;
            Metrics::add(&m.commits, 1);
            for i in &outcome.new_occurrences {
                let o = &batch.occurrences[*i];
                let rule = loaded.rules.iter().find(|r| r.id == o.remediation);
                if let (Some(rule), Some(t)) = (rule, o.time) {
                    if rule.is_recurrence_time(t) {
                        Metrics::add(&m.recurrences, 1);
                    }
                }
            }
            if !outcome.new_occurrences.is_empty() {
                self.refresh_due = true;
            }
        }
        for (t, deleted) in tailer.close_drained(Instant::now()) {
            tracing::info!(file = %t.path.display(), deleted, offset = t.offset, "rotated file drained and closed");
        }
        m.files_watched.store(
            (tailer.live.len() + tailer.rotated.len()) as u64,
            Ordering::Relaxed,
        );
        m.checkpoint_lag_bytes
            .store(tailer.lag(), Ordering::Relaxed);

        // Episodes in event time, intents, and the outbox. When stopping, both wait for the
        // next start (they are recomputed from the store), so a slow receiver cannot hold up
        // the exit.
        if self.stop.load(Ordering::Relaxed) {
            return Ok(false);
        }
        let now = Timestamp::now();
        if self.refresh_due
            || self
                .last_refresh
                .is_none_or(|t| t.elapsed() >= REFRESH_EVERY)
        {
            self.refresh_due = false;
            self.last_refresh = Some(Instant::now());
            let (_, created) = common::refresh(store, &loaded.rules, self.config, &self.opts, now)?;
            for i in &created {
                tracing::info!(remediation = %i.remediation, key = %i.key, kind = i.kind.as_str(), count = i.count, "episode notification recorded");
            }
            if !created.is_empty() {
                self.last_drain = None;
            }
        }
        if !self.args.no_notify && self.last_drain.is_none_or(|t| t.elapsed() >= DRAIN_EVERY) {
            self.last_drain = Some(Instant::now());
            let d = crate::sink::drain(
                store,
                &loaded.rules,
                self.config,
                self.redactor,
                self.args.log_format == LogFormat::Json,
                now,
            )?;
            Metrics::add(&m.notifications_sent, d.sent);
            Metrics::add(&m.notifications_failed, d.failed + d.retrying);
            for e in &d.errors {
                tracing::warn!("{e}");
            }
            let pending = store
                .deliveries(None)?
                .iter()
                .filter(|d| d.status == DeliveryStatus::Pending)
                .count();
            m.notifications_pending
                .store(pending as u64, Ordering::Relaxed);
        }
        Ok(more)
    }

    /// Reads what is complete in one file into the batch. Returns whether the read stopped at
    /// its budget with more waiting.
    fn read_file(&self, t: &mut Tailed, loaded: &Loaded, batch: &mut Batch, now: Instant) -> bool {
        let source = t.path.display().to_string();
        let start = t.offset;
        let mut found = Findings::default();
        let mut stats = Stats::default();
        let mut tally = InvalidTally::default();
        let (end, line, result) = {
            let mut reader = match t.reader(self.max_line, READ_BUDGET, now) {
                Ok(Some(r)) => r,
                Ok(None) => return false,
                Err(e) => {
                    tracing::warn!(file = %source, "cannot read: {e}");
                    return false;
                }
            };
            let mut sink = WatchSink {
                inner: FindingsSink {
                    rules: &loaded.rules,
                    redactor: self.redactor,
                    source: &source,
                    untimed_at: Some(Timestamp::now()),
                    coverage: loaded.matcher.coverage_mode(),
                    out: &mut found,
                },
                stop: self.stop,
            };
            let r = search(
                &mut reader,
                &loaded.matcher,
                self.search_cfg,
                &mut sink,
                &mut stats,
                &mut tally,
            );
            (reader.consumed_offset(), reader.next_line_number(), r)
        };
        t.advance(end, line);
        if let Err(e) = result {
            tracing::warn!(file = %source, "read stopped: {}", crate::source::expand::describe_io(&e));
        }
        if let Some((line, msg)) = tally.summary() {
            tracing::warn!(file = %source, line, "{msg}");
        }
        let m = self.metrics;
        Metrics::add(&m.lines_read, stats.records);
        Metrics::add(&m.bytes_read, end - start);
        Metrics::add(&m.events, stats.events());
        Metrics::add(&m.invalid, stats.invalid);
        Metrics::add(&m.occurrences, found.occurrences.len() as u64);
        // Coverage accumulates over the reading session: the store keeps the larger count of
        // a (rule, bucket, input) cell, so the session's running total is what is written.
        let mut touched: HashMap<(String, i64), ()> = HashMap::new();
        for ((rule, bucket), (n, newest)) in found.coverage {
            let id = loaded.rules[rule as usize].id.clone();
            let e = t
                .coverage
                .entry((id.clone(), bucket))
                .or_insert((0, newest));
            e.0 += n;
            e.1 = e.1.max(newest);
            touched.insert((id, bucket), ());
        }
        for (id, bucket) in touched.into_keys() {
            let (count, max_time) = t.coverage[&(id.clone(), bucket)];
            batch.coverage.push(CoverageCell {
                remediation: id,
                bucket,
                input: t.session.clone(),
                count,
                max_time,
            });
        }
        batch.occurrences.append(&mut found.occurrences);
        end - start >= READ_BUDGET / 2
    }
}

fn log_event(ev: &TailEvent, m: &Metrics) {
    match ev {
        TailEvent::Opened {
            path,
            offset,
            resumed,
        } => tracing::info!(file = %path, offset, resumed, "following"),
        TailEvent::Rotated { path } => {
            Metrics::add(&m.rotations, 1);
            tracing::info!(file = %path, "rotated or deleted; draining the old file");
        }
        TailEvent::Closed { path, deleted } => {
            tracing::info!(file = %path, deleted, "closed")
        }
        TailEvent::Truncated {
            path,
            offset,
            recovered_from,
            lost,
        } => {
            Metrics::add(&m.truncations, 1);
            Metrics::add(&m.bytes_lost, *lost);
            match recovered_from {
                Some(copy) if *lost == 0 => {
                    tracing::warn!(file = %path, offset, copy = %copy, bytes_lost = 0, "truncated (copytruncate); reading the rest from the copy. Lines written between the copy and the truncation are in neither file and cannot be seen; prefer `create` rotation")
                }
                Some(copy) => {
                    tracing::warn!(file = %path, offset, copy = %copy, bytes_lost = lost, "truncated (copytruncate); reading the rest from the copy, but lines written between the copy and the truncation are lost; prefer `create` rotation")
                }
                None if *lost > 0 => {
                    tracing::warn!(file = %path, offset, bytes_lost = lost, "truncated before recur read everything; the unread bytes are lost")
                }
                None => tracing::info!(file = %path, offset, "truncated; reading from the start"),
            }
        }
        TailEvent::Lost {
            path,
            offset,
            bytes,
            reason,
        } => {
            Metrics::add(&m.files_lost, 1);
            if let Some(b) = bytes {
                Metrics::add(&m.bytes_lost, *b);
            }
            tracing::error!(file = %path, offset, bytes_lost = ?bytes, "data lost: {reason}");
        }
    }
}
