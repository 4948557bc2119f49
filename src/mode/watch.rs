//! `recur watch`: the sidecar. Follows live log files through rotation and truncation, commits
//! each batch's findings in one transaction with the offsets that produced them, keeps
//! episodes live and sends notifications as soon as an episode opens.
//!
//! One loop on one thread: wait for a hint (a file-system event, a signal, or the timer), look
//! at every file (`stat` is the truth), read what is complete, commit, record the intents of
//! episodes that got new occurrences. Between hints the thread blocks on a channel, so an idle
//! sidecar costs nothing. The outbox is sent on a thread of its own, so a dead receiver holds
//! up neither reading nor a stop.

pub mod metrics;

use std::collections::{BTreeSet, HashMap};
use std::io::Write;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
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
use crate::source::tail::{HEAD_BYTES, StartAt, TailEvent, Tailed, Tailer};
use crate::store::{Batch, CoverageCell, DeliveryStatus, Store, StoreError};

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
/// How often watched directories are checked for having appeared or been recreated (and at
/// once after a file-system event).
const DIRS_EVERY: Duration = Duration::from_secs(1);
/// `/healthz` fails when the loop has not turned for this long (or three wait intervals).
const STALLED: Duration = Duration::from_secs(30);
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

/// The identity of a record without an id field: where it is, not its bytes — its file
/// (device, inode, and its first bytes, up to [`HEAD_BYTES`]) and its end offset. Two identical
/// untimed lines are two occurrences, and a record read again after a restart or under a
/// rotated name has the same identity, so it is stored once. The head hash
/// covers the file's first bytes up to the record's end, which are fixed once the record is
/// written, so the identity is the same whenever (and under whatever name) it is read, and an
/// inode reused by another file gives other identities.
pub fn record_identity(file: (u64, u64), head: &[u8], end_offset: u64) -> String {
    let n = (end_offset.min(HEAD_BYTES) as usize).min(head.len());
    format!(
        "f:{}:{}:{:016x}@{end_offset}",
        file.0,
        file.1,
        xxhash_rust::xxh3::xxh3_64(&head[..n])
    )
}

impl Sink for WatchSink<'_> {
    fn hits(&mut self, record: &Record<'_>, event: &Event, hits: &[Hit]) {
        self.inner.hits(record, event, hits);
    }
    fn covered(&mut self, event: &Event, rules: &[usize]) {
        self.inner.covered(event, rules);
    }
    fn after_record(&mut self, _record: &Record<'_>) -> bool {
        !self.stop.load(Ordering::Relaxed)
    }
}

/// Set to make native notifications fail to start, as when inotify is unavailable or its
/// limits are exhausted (an unprivileged process cannot lower them): lets the fallback to
/// polling be exercised. Not a user setting.
const FAULT_NO_NATIVE: &str = "RECUR_FAULT_NO_NATIVE_WATCH";

/// Native notifications on the directories the patterns live in. Directories are watched
/// again when they appear or are replaced (removed and recreated: a new inode), since a
/// watch dies with the directory it was put on.
struct NativeWatch {
    watcher: notify::RecommendedWatcher,
    /// Directory → (recursive, identity it was watched with; `None`: not watched now).
    dirs: HashMap<PathBuf, (bool, Option<DirId>)>,
}

/// Device, inode and creation time of a directory.
type DirId = (u64, u64, u128);

/// A directory's identity: device, inode and creation time (where the file system keeps it),
/// so a directory removed and recreated at once under a reused inode is still a new one.
fn dir_identity(m: &std::fs::Metadata) -> DirId {
    let born = m
        .created()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_nanos());
    (m.dev(), m.ino(), born)
}

/// Whether a watch error means notifications are exhausted (fall back to polling) rather
/// than a directory that vanished in between.
fn exhausted(e: &notify::Error) -> bool {
    match &e.kind {
        notify::ErrorKind::MaxFilesWatch => true,
        notify::ErrorKind::Io(io) => matches!(io.raw_os_error(), Some(28 | 24 | 23)), // ENOSPC, EMFILE, ENFILE
        _ => false,
    }
}

impl NativeWatch {
    fn start(tx: Sender<Wake>, ignore: PathBuf) -> notify::Result<NativeWatch> {
        if std::env::var_os(FAULT_NO_NATIVE).is_some() {
            return Err(notify::Error::generic(&format!(
                "disabled by {FAULT_NO_NATIVE}"
            )));
        }
        let watcher = notify::recommended_watcher(move |res: notify::Result<notify::Event>| {
            let wake = match res {
                Ok(ev) if ev.need_rescan() => Wake::Rescan,
                Ok(ev) => {
                    // The state database's own writes are not news.
                    if !ev.paths.is_empty()
                        && ev.paths.iter().all(|p| {
                            p.starts_with(&ignore)
                                || p.to_string_lossy().starts_with(&*ignore.to_string_lossy())
                        })
                    {
                        return;
                    }
                    Wake::Fs
                }
                Err(_) => Wake::Rescan,
            };
            let _ = tx.send(wake);
        })?;
        Ok(NativeWatch {
            watcher,
            dirs: HashMap::new(),
        })
    }

    /// Watches every wanted directory that exists and is not watched with its current
    /// identity. Returns the directories newly watched; an error when notifications are
    /// exhausted.
    fn sync(&mut self, wanted: &[(PathBuf, bool)]) -> notify::Result<Vec<PathBuf>> {
        use notify::Watcher;
        let mut added = Vec::new();
        for (dir, recursive) in wanted {
            let id = std::fs::metadata(dir)
                .ok()
                .filter(|m| m.is_dir())
                .map(|m| dir_identity(&m));
            let entry = self.dirs.entry(dir.clone()).or_insert((*recursive, None));
            if entry.1.is_some() && entry.1 == id && entry.0 == *recursive {
                continue;
            }
            if entry.1.is_some() {
                // The old watch died with its directory (or never saw the new one).
                let _ = self.watcher.unwatch(dir);
                entry.1 = None;
            }
            let Some(id) = id else { continue };
            let mode = if *recursive {
                notify::RecursiveMode::Recursive
            } else {
                notify::RecursiveMode::NonRecursive
            };
            match self.watcher.watch(dir, mode) {
                Ok(()) => {
                    *entry = (*recursive, Some(id));
                    added.push(dir.clone());
                }
                Err(e) if exhausted(&e) => return Err(e),
                Err(e) => tracing::debug!(dir = %dir.display(), "not watched: {e}"),
            }
        }
        Ok(added)
    }

    fn watched(&self) -> u64 {
        self.dirs.values().filter(|d| d.1.is_some()).count() as u64
    }
}

/// Messages to the outbox thread.
enum OutboxMsg {
    /// New intents: drain now.
    Drain,
    /// The rules in force changed.
    Rules(Arc<[Remediation]>),
}

/// Sends the outbox on its own thread with its own connection to the state database, so a
/// receiver that accepts and never answers (each send waits up to `[notify] timeout`) never
/// holds up reading, committing, or a stop. A send cut short by the process exiting leaves
/// its row pending under the same key: it is sent again at the next start.
fn spawn_outbox(
    state: PathBuf,
    rules: Arc<[Remediation]>,
    config: Config,
    redactor: Redactor,
    json: bool,
    metrics: Arc<Metrics>,
) -> std::io::Result<Sender<OutboxMsg>> {
    let (tx, rx) = mpsc::channel::<OutboxMsg>();
    std::thread::Builder::new()
        .name("outbox".into())
        .spawn(move || {
            let mut store = match crate::store::SqliteStore::open(&state) {
                Ok(s) => s,
                Err(e) => {
                    tracing::error!("outbox: {e}; notifications stay pending");
                    return;
                }
            };
            tracing::debug!("outbox: started");
            let mut rules = rules;
            loop {
                let mut msgs = Vec::new();
                match rx.recv_timeout(DRAIN_EVERY) {
                    Ok(m) => msgs.push(m),
                    Err(RecvTimeoutError::Timeout) => {}
                    Err(RecvTimeoutError::Disconnected) => return,
                }
                msgs.extend(rx.try_iter());
                for m in msgs {
                    if let OutboxMsg::Rules(r) = m {
                        rules = r;
                    }
                }
                tracing::debug!("outbox: draining");
                let d = match crate::sink::drain(
                    &mut store,
                    &rules,
                    &config,
                    &redactor,
                    json,
                    Timestamp::now(),
                ) {
                    Ok(d) => d,
                    Err(e) => {
                        tracing::warn!("outbox: {e}");
                        continue;
                    }
                };
                Metrics::add(&metrics.notifications_sent, d.sent);
                Metrics::add(&metrics.notifications_failed, d.failed + d.retrying);
                for e in &d.errors {
                    tracing::warn!("{e}");
                }
                match store.count_deliveries(DeliveryStatus::Pending) {
                    Ok(n) => metrics.notifications_pending.store(n, Ordering::Relaxed),
                    Err(e) => tracing::warn!("outbox: {e}"),
                }
            }
        })?;
    Ok(tx)
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
    // Whole events: the rules can be reloaded while the sidecar runs, and a live log is read
    // at the rate it is written.
    let search_cfg = SearchConfig {
        decode,
        keep: None,
        since: None,
        until: None,
    };
    let max_line = args.max_line_bytes.unwrap_or(config.input.max_line_bytes);

    let metrics = Arc::new(Metrics::default());
    Metrics::add(&metrics.rules_loaded, loaded.rules.len() as u64);
    metrics.beat();
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

    let mut native = None;
    let mut interval = args.poll_interval;
    if args.watch_mode != WatchMode::Poll {
        let started = NativeWatch::start(tx.clone(), state_abs.clone()).and_then(|mut w| {
            w.sync(&tailer.watch_dirs())?;
            Ok(w)
        });
        match started {
            Ok(w) => {
                for d in w.dirs.iter().filter(|d| d.1.1.is_some()) {
                    tracing::info!(dir = %d.0.display(), "watching directory");
                }
                native = Some(w);
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
    metrics
        .polling
        .store(native.is_none() as u64, Ordering::Relaxed);
    metrics.stall_after_ms.store(
        (STALLED.max(interval * 3)).as_millis() as u64,
        Ordering::Relaxed,
    );

    let outbox = if args.no_notify {
        None
    } else {
        Some(spawn_outbox(
            state_path.clone(),
            loaded.rules.clone(),
            config.clone(),
            redactor.clone(),
            args.log_format == LogFormat::Json,
            metrics.clone(),
        )?)
    };
    metrics.notifications_pending.store(
        store.count_deliveries(DeliveryStatus::Pending)?,
        Ordering::Relaxed,
    );

    let opts = IntentOptions {
        max_notifications: config.notify.max_notifications as usize,
        notify_since: None,
    };
    let mut looper = Looper {
        config: &config,
        redactor: &redactor,
        samples_per_hour: config.state.samples_per_hour,
        search_cfg: &search_cfg,
        max_line,
        metrics: &metrics,
        stop: &stop,
        opts,
        last_rules_check: Instant::now(),
        refresh_all: true,
        refresh: BTreeSet::new(),
        outbox: outbox.as_ref(),
        held: None,
    };
    let mut reload = false;
    let mut last_dirs = Instant::now();
    let mut dirs_due = false;
    loop {
        metrics.beat();
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
                    if let Some(o) = &outbox {
                        let _ = o.send(OutboxMsg::Rules(new.rules.clone()));
                    }
                    loaded = new;
                    looper.refresh_all = true;
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
        // Directories that appeared or were recreated get their watch (again).
        if let Some(w) = &mut native {
            if dirs_due || last_dirs.elapsed() >= DIRS_EVERY {
                last_dirs = Instant::now();
                dirs_due = false;
                match w.sync(&tailer.watch_dirs()) {
                    Ok(added) => {
                        for d in added {
                            tracing::info!(dir = %d.display(), "watching directory");
                        }
                    }
                    Err(e) if args.watch_mode == WatchMode::Auto => {
                        tracing::warn!(
                            "native notifications exhausted ({e}); polling every {:?}",
                            args.poll_interval
                        );
                        native = None;
                        interval = args.poll_interval;
                        metrics.polling.store(1, Ordering::Relaxed);
                    }
                    Err(e) => tracing::warn!("cannot watch a directory: {e}"),
                }
            }
            metrics.watched_dirs.store(
                native.as_ref().map_or(0, NativeWatch::watched),
                Ordering::Relaxed,
            );
        }
        let wait = if more { Duration::ZERO } else { interval };
        match wait_for(&rx, wait) {
            Some(Wake::Stop) => break,
            Some(Wake::Reload) => reload = true,
            Some(Wake::Rescan) => {
                tracing::debug!("notification queue overflowed; looking at every file");
                dirs_due = true;
            }
            Some(Wake::Fs) => dirs_due = true,
            None => {}
        }
        if stop.load(Ordering::Relaxed) {
            break;
        }
    }
    // Everything read was committed at the end of its loop turn. A send in flight on the
    // outbox thread is abandoned: its row is handed back, pending, and sent at the next start
    // (under the same dedup key).
    match crate::sink::release_in_flight(store.as_mut()) {
        Ok(0) => {}
        Ok(n) => tracing::info!(
            notifications = n,
            "send in flight abandoned; it stays pending"
        ),
        Err(e) => tracing::warn!("cannot hand back the send in flight: {e}"),
    }
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

/// A batch held back by a busy state, followed by the next one: occurrences and coverage of
/// both (coverage cells are running totals, and the store keeps the larger), and the newer
/// word on each checkpoint (a file checkpointed again, or forgotten since).
fn carry(mut held: Batch, next: Batch) -> Batch {
    let newer: std::collections::HashSet<&str> = (next.checkpoints.iter().map(|c| c.path.as_str()))
        .chain(next.forget_checkpoints.iter().map(String::as_str))
        .collect();
    held.checkpoints
        .retain(|c| !newer.contains(c.path.as_str()));
    held.forget_checkpoints
        .retain(|p| !newer.contains(p.as_str()));
    held.occurrences.extend(next.occurrences);
    held.coverage.extend(next.coverage);
    held.checkpoints.extend(next.checkpoints);
    held.forget_checkpoints.extend(next.forget_checkpoints);
    held
}

/// The per-turn work of the loop.
struct Looper<'a> {
    samples_per_hour: Option<u32>,
    config: &'a Config,
    redactor: &'a Redactor,
    search_cfg: &'a SearchConfig,
    max_line: usize,
    metrics: &'a Metrics,
    stop: &'a AtomicBool,
    opts: IntentOptions,
    last_rules_check: Instant,
    /// Recompute every remediation's episodes (at start, after a reload).
    refresh_all: bool,
    /// Remediations with new occurrences since the last refresh.
    refresh: BTreeSet<String>,
    /// The outbox thread (`None` with `--no-notify`).
    outbox: Option<&'a Sender<OutboxMsg>>,
    /// A batch whose commit found the state's write lock held by another process past the
    /// busy timeout (a scan storing a dense export): committed with the next turn's.
    held: Option<Batch>,
}

impl Looper<'_> {
    /// One turn: look, read, commit, refresh. Returns whether more input is waiting (a read
    /// stopped at its budget).
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
        let held = self.held.take();
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
        if let Some(h) = held {
            batch = carry(h, batch);
        }
        let wrote = !(batch.occurrences.is_empty()
            && batch.coverage.is_empty()
            && batch.checkpoints.is_empty()
            && batch.forget_checkpoints.is_empty());
        if wrote {
            let outcome = match store.commit(&batch) {
                Ok(o) => o,
                // Another process holds the write lock (past the busy timeout): nothing is
                // lost, the batch waits for the next turn. Checkpoints are not committed
                // either, so even a stop now only means reading those lines again.
                Err(e @ StoreError::Locked { .. }) => {
                    tracing::warn!("commit put off, retried with the next turn: {e}");
                    Metrics::add(&m.commits_busy, 1);
                    self.held = Some(batch);
                    return Ok(more);
                }
                Err(e) => return Err(e.into()),
            };
            Metrics::add(&m.commits, 1);
            for i in &outcome.new_occurrences {
                let o = &batch.occurrences[*i];
                let rule = loaded.rules.iter().find(|r| r.id == *o.remediation);
                if let (Some(rule), Some(t)) = (rule, o.time)
                    && rule.is_recurrence_time(t)
                {
                    Metrics::add(&m.recurrences, 1);
                }
                self.refresh.insert(o.remediation.to_string());
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

        // Episodes in event time and their intents. When stopping, this waits for the next
        // start, whose first refresh covers every remediation.
        if self.stop.load(Ordering::Relaxed) {
            return Ok(false);
        }
        // A busy state here too waits for the next turn: what is to be refreshed is kept until
        // a refresh succeeds, and recomputing it is idempotent.
        if let Err(e) = self.refresh(store, loaded) {
            match e.downcast_ref::<StoreError>() {
                Some(busy @ StoreError::Locked { .. }) => {
                    tracing::warn!("episode refresh put off, retried with the next turn: {busy}");
                    Metrics::add(&m.commits_busy, 1);
                }
                _ => return Err(e),
            }
        }
        Ok(more)
    }

    /// Records the intents that new occurrences call for.
    ///
    /// Episodes and their notifications (open, reminders, digests) are a function of the
    /// stored occurrence times and the rules alone: a reminder is due at an occurrence, never
    /// at a wall-clock time, so nothing here is time-driven. Only remediations with new
    /// occurrences are recomputed; all of them at start (which also repairs intents that a
    /// crash kept from being recorded after their occurrences were committed) and after a
    /// reload.
    fn refresh(&mut self, store: &mut dyn Store, loaded: &Loaded) -> anyhow::Result<()> {
        if !self.refresh_all && self.refresh.is_empty() {
            return Ok(());
        }
        let now = Timestamp::now();
        let subset: Vec<Remediation>;
        let rules: &[Remediation] = if self.refresh_all {
            &loaded.rules
        } else {
            subset = loaded
                .rules
                .iter()
                .filter(|r| self.refresh.contains(&r.id))
                .cloned()
                .collect();
            &subset
        };
        let (_, created) = common::refresh(store, rules, self.config, &self.opts, now)?;
        self.refresh_all = false;
        self.refresh.clear();
        for i in &created {
            tracing::info!(remediation = %i.remediation, key = %i.key, kind = i.kind.as_str(), count = i.count, "episode notification recorded");
        }
        if !created.is_empty() {
            match self.outbox {
                Some(o) => {
                    let _ = o.send(OutboxMsg::Drain);
                }
                None => self.metrics.notifications_pending.store(
                    store.count_deliveries(DeliveryStatus::Pending)?,
                    Ordering::Relaxed,
                ),
            }
        }
        Ok(())
    }

    /// Reads what is complete in one file into the batch. Returns whether the read stopped at
    /// its budget with more waiting.
    fn read_file(&self, t: &mut Tailed, loaded: &Loaded, batch: &mut Batch, now: Instant) -> bool {
        let source = t.path.display().to_string();
        let file_id = (t.dev, t.ino);
        let head = t.head_bytes();
        let mut found = Findings::default();
        let mut stats = Stats::default();
        let mut tally = InvalidTally::default();
        let (start, end, line, result) = {
            let mut reader = match t.reader(self.max_line, READ_BUDGET, now) {
                Ok(Some(r)) => r,
                Ok(None) => return false,
                Err(e) => {
                    tracing::warn!(file = %source, "cannot read: {e}");
                    return false;
                }
            };
            let start = reader.consumed_offset();
            let mut sink = WatchSink {
                inner: FindingsSink {
                    rules: &loaded.rules,
                    decode: &self.search_cfg.decode,
                    redactor: self.redactor,
                    source: &source,
                    untimed_at: Some(Timestamp::now()),
                    coverage: loaded.matcher.coverage_mode(),
                    samples_per_hour: self.samples_per_hour,
                    position: Some((file_id, &head)),
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
            (
                start,
                reader.consumed_offset(),
                reader.next_line_number(),
                r,
            )
        };
        if !t.advance(end, line) {
            // Truncated under the read: what was found may be new lines at old positions (or
            // a hole's zeros). Dropped; the next look handles the truncation from the offset
            // the read started at.
            tracing::debug!(file = %source, offset = start, "changed while being read; read again after the next look");
            // Look again at once rather than at the next wake-up.
            return true;
        }
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
        found.finish();
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
        TailEvent::Renamed { from, to } => {
            tracing::info!(file = %to, from = %from, "renamed; following on under the new name");
        }
        TailEvent::Skipped { path, reason } => {
            tracing::info!(file = %path, "not read: {reason}");
        }
        TailEvent::Closed { path, deleted } => {
            tracing::info!(file = %path, deleted, "closed")
        }
        TailEvent::Truncated {
            path,
            offset,
            recovered_from,
            copy_behind,
            lost,
        } => {
            Metrics::add(&m.truncations, 1);
            Metrics::add(&m.bytes_lost, *lost);
            match recovered_from {
                Some(copy) if *copy_behind && *lost == 0 => {
                    tracing::warn!(file = %path, offset, copy = %copy, bytes_lost = 0, "truncated (copytruncate); reading had gone past the end of the copy, which holds nothing unread and is not read. Lines an appending writer wrote between the copy and the truncation, before recur looked, are in neither file and cannot be counted; prefer `create` rotation")
                }
                Some(copy) if *copy_behind => {
                    tracing::warn!(file = %path, offset, copy = %copy, bytes_lost = lost, "truncated (copytruncate); reading had gone past the end of the copy, which holds nothing unread and is not read, but lines written after it are lost (at least this many bytes); prefer `create` rotation")
                }
                Some(copy) if *lost == 0 => {
                    tracing::warn!(file = %path, offset, copy = %copy, bytes_lost = 0, "truncated (copytruncate); reading the rest from the copy. Lines an appending writer wrote between the copy and the truncation, before recur looked, are in neither file and cannot be counted; prefer `create` rotation")
                }
                Some(copy) => {
                    tracing::warn!(file = %path, offset, copy = %copy, bytes_lost = lost, "truncated (copytruncate); reading the rest from the copy, but lines written between the copy and the truncation are lost (at least this many bytes); prefer `create` rotation")
                }
                None if *lost > 0 => {
                    tracing::warn!(file = %path, offset, bytes_lost = lost, "truncated before recur read everything; the unread bytes are lost (at least this many)")
                }
                None => tracing::info!(file = %path, offset, "truncated; reading from the start"),
            }
        }
        TailEvent::Hole { path, hole, lost } => {
            Metrics::add(&m.bytes_lost, *lost);
            if *lost > 0 {
                tracing::warn!(file = %path, hole, bytes_lost = lost, "truncated under a writer that does not append: skipped the hole it left; the bytes it wrote between the copy and the truncation are lost")
            } else {
                tracing::info!(file = %path, hole, "truncated under a writer that does not append: skipped the hole it left")
            }
        }
        TailEvent::Lost {
            path,
            offset,
            bytes,
            reason,
        } => {
            Metrics::add(&m.files_lost, 1);
            Metrics::add(&m.bytes_lost, *bytes);
            tracing::error!(file = %path, offset, bytes_lost = bytes, "data lost (at least bytes_lost bytes): {reason}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_identities_are_stable_and_tell_places_apart() {
        let head = b"{\"a\":1}\n{\"a\":1}\n".to_vec();
        let first = record_identity((1, 2), &head, 8);
        let second = record_identity((1, 2), &head, 16);
        assert_ne!(first, second, "identical lines at two offsets");
        // The same record read later, when the file (and its head) has grown.
        let mut grown = head.clone();
        grown.extend_from_slice(&[b'x'; 2000]);
        assert_eq!(record_identity((1, 2), &grown, 8), first);
        assert_eq!(record_identity((1, 2), &grown, 16), second);
        // Another file, or the same inode holding other bytes.
        assert_ne!(record_identity((1, 3), &head, 8), first);
        assert_ne!(record_identity((1, 2), b"{\"b\":2}\n", 8), first);
    }
}
