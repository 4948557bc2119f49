//! `recur scan`: the cron batch. Reads every input to the end in parallel, commits what it
//! found, records notification intents, drains the outbox and exits with a status that is news.

use std::collections::{BTreeMap, HashMap};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use jiff::Timestamp;
use rayon::prelude::*;
use serde::Serialize;

use super::common::{self, Findings, FindingsSink, IntentOptions, TimeBound};
use crate::decode::Format;
use crate::matcher::Matcher;
use crate::redact::Redactor;
use crate::report::{RemediationReport, format_time, group_thousands, paint_verdict, table};
use crate::rule::Remediation;
use crate::search::{InvalidTally, SearchConfig, Stats, search};
use crate::source::framing::{Framing, RecordReader};
use crate::source::open::{Compression, open, sniff};
use crate::source::{Input, SourceError, WorkUnit, expand, open_chunk, plan_units};
use crate::store::{Batch, CoverageCell, InputRecord, NewOccurrence, Origin, Replace};

/// Output format of `scan` and `status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum OutputFormat {
    #[default]
    Human,
    Json,
}

/// `recur scan` flags.
#[derive(Debug, Clone, clap::Args)]
pub struct ScanArgs {
    /// Files, directories (read recursively), globs, or `-` for standard input.
    #[arg(value_name = "PATH", default_value = "-")]
    pub paths: Vec<String>,
    /// Directory of rule files (one remediation per `*.toml`).
    #[arg(long, value_name = "DIR", default_value = "rules", env = "RECUR_RULES")]
    pub rules: PathBuf,
    /// Configuration file (default: ./recur.toml when present).
    #[arg(long, value_name = "FILE", env = "RECUR_CONFIG")]
    pub config: Option<PathBuf>,
    /// Only events at or after this event time: RFC 3339, or a duration back from the newest event (`24h`).
    #[arg(long, value_name = "TIME", value_parser = common::parse_time_bound)]
    pub since: Option<TimeBound>,
    /// Only events before this event time: RFC 3339, or a duration back from the newest event.
    #[arg(long, value_name = "TIME", value_parser = common::parse_time_bound)]
    pub until: Option<TimeBound>,
    /// Worker threads (default: one per core).
    #[arg(long, short = 'j', value_name = "N", env = "RECUR_THREADS")]
    pub threads: Option<usize>,
    /// Input format; `auto` detects per file and line.
    #[arg(long, value_enum, value_name = "FORMAT", default_value = "auto")]
    pub input: Format,
    /// Output: a readable table, or one JSON document.
    #[arg(long, value_enum, default_value = "human")]
    pub format: OutputFormat,
    /// Longest record kept, in bytes; longer ones are skipped and counted (default 1 MiB or the config's).
    #[arg(long, value_name = "N")]
    pub max_line_bytes: Option<usize>,
    /// Read large files only with `read`, never through a memory map (by default, chunks of
    /// files not modified for 10 s are mapped, which saves a copy; a mapped file truncated
    /// during the scan would stop recur with SIGBUS).
    #[arg(long, env = "RECUR_NO_MMAP")]
    pub no_mmap: bool,
    /// State database (default: .recur/state.db, or the config's `[state] path`).
    #[arg(long, value_name = "PATH", env = "RECUR_STATE")]
    pub state: Option<PathBuf>,
    /// Keep state in memory for this run only.
    #[arg(long, conflicts_with = "state")]
    pub no_state: bool,
    /// Re-read inputs the store has already scanned with the same rules.
    #[arg(long)]
    pub rescan: bool,
    /// Notify at most this many new episodes per run; fold the rest into one digest.
    #[arg(long, value_name = "N", env = "RECUR_MAX_NOTIFICATIONS")]
    pub max_notifications: Option<usize>,
    /// Record episodes that opened before this time without notifying them (RFC 3339 or a duration back from now).
    #[arg(long, value_name = "TIME", value_parser = common::parse_time_bound)]
    pub notify_since: Option<TimeBound>,
    /// Record notifications without sending them (they stay pending in the outbox).
    #[arg(long)]
    pub no_notify: bool,
    /// Split plain files larger than this into chunks read in parallel (bytes).
    #[arg(long, value_name = "BYTES", default_value_t = CHUNK_BYTES, hide = true)]
    pub chunk_bytes: u64,
}

/// Chunk size for splitting large plain files across threads.
const CHUNK_BYTES: u64 = 32 * 1024 * 1024;

/// Counters over all inputs, as reported in `inputs`.
#[derive(Debug, Clone, Default, Serialize)]
pub struct InputSummary {
    pub files: u64,
    /// Inputs skipped because the store had already scanned them with the same rules.
    pub skipped: u64,
    pub lines: u64,
    pub bytes: u64,
    pub events: u64,
    pub invalid: u64,
    pub untimed: u64,
    /// Records the prefilter sent to the decoder.
    pub decoded: u64,
    pub newest_event: Option<Timestamp>,
    pub seconds: f64,
}

/// A notification intent created by this run.
#[derive(Debug, Clone, Serialize)]
pub struct NotificationReport {
    pub remediation: String,
    pub kind: &'static str,
    pub key: String,
    pub episode_start: Timestamp,
    pub count: u64,
    pub status: &'static str,
}

/// The whole `scan --format json` document.
#[derive(Debug, Clone, Serialize)]
pub struct ScanReport {
    pub inputs: InputSummary,
    pub remediations: Vec<RemediationReport>,
    pub notifications: Vec<NotificationReport>,
    pub delivery: crate::sink::DrainStats,
    pub errors: Vec<SourceError>,
    pub warnings: Vec<SourceError>,
    /// New recurrences this run found (the store had not seen them).
    pub new_recurrences: u64,
}

/// What one work unit found.
#[derive(Default)]
struct UnitResult {
    stats: Stats,
    invalid: InvalidTally,
    occurrences: Vec<NewOccurrence>,
    /// (rule, hour bucket) → (count, max time)
    coverage: common::CoverageMap,
    lines: u64,
    error: Option<String>,
    error_line: Option<u64>,
}

/// Runs `recur scan`. Returns the exit code.
pub fn run(
    args: &ScanArgs,
    color: bool,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> anyhow::Result<i32> {
    let started = Instant::now();
    let Some(config) = common::load_config(args.config.as_deref(), color, err)? else {
        return Ok(2);
    };
    let loaded = match common::load_rules(&args.rules, color, err) {
        Ok(r) => r,
        Err(e) => {
            writeln!(err, "error: {e:#}")?;
            return Ok(2);
        }
    };
    let rules = loaded.rules.clone();
    let state_path = common::state_path(args.state.as_deref(), &config);
    let mut store = match common::open_store(args.no_state, &state_path) {
        Ok(s) => s,
        Err(e) => {
            writeln!(err, "error: {e}")?;
            return Ok(2);
        }
    };
    let now = Timestamp::now();
    store.note_remediations(&rules, now)?;
    let redactor = Redactor::new(&config.redact.fields, &config.redact.patterns)?;

    let mut decode_cfg = config.decode_config();
    if args.input != Format::Auto {
        decode_cfg.format = args.input;
    }
    let max_line = args.max_line_bytes.unwrap_or(config.input.max_line_bytes);
    let matcher = Matcher::new(rules.clone(), config.coverage.mode);
    let search_cfg = SearchConfig {
        keep: Some(matcher.keep(&decode_cfg)),
        decode: decode_cfg,
        since: None,
        until: None,
    };

    // Inputs, minus those already scanned with the same rules and parameters.
    let (inputs, mut errors) = expand(&args.paths);
    let params = scan_params(&rules, args, &search_cfg.decode, max_line);
    let mut keys: Vec<Option<InputKey>> = Vec::with_capacity(inputs.len());
    let mut todo = Vec::new();
    let mut skipped = 0;
    for input in &inputs {
        let key = input_key(input);
        let done = match &key {
            Some(k) if !args.rescan => store.input_done(&k.head, k.size, &k.tail, &params)?,
            _ => false,
        };
        if done {
            skipped += 1;
        } else {
            todo.push(input.clone());
            keys.push(key);
        }
    }
    let (units, plan_errors) = plan_units(&todo, args.chunk_bytes);
    errors.extend(plan_errors);

    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(args.threads.unwrap_or(0))
        // Named, so that a profile tells the readers from the thread that stores.
        .thread_name(|i| format!("recur-read-{i}"))
        .build()?;
    let ctx = UnitCtx {
        max_line,
        matcher: &matcher,
        cfg: &search_cfg,
        rules: &rules,
        redactor: &redactor,
        samples_per_hour: config.state.samples_per_hour,
        mmap: !args.no_mmap,
    };
    let mut parts_of = vec![0usize; todo.len()];
    for u in &units {
        parts_of[u.input] += 1;
    }
    let mut c = Committer {
        store: store.as_mut(),
        rules: &rules,
        by_id: rules.iter().map(|r| (r.id.as_str(), r)).collect(),
        todo: &todo,
        keys: &keys,
        params: &params,
        parts_of,
        assemblies: BTreeMap::new(),
        open: None,
        summary: InputSummary {
            skipped,
            ..Default::default()
        },
        input_errors: BTreeMap::new(),
        input_warnings: BTreeMap::new(),
        abort_after: abort_after_commits(),
        commits: 0,
        new_recurrences: 0,
        bounds: None,
    };
    // Bounds given as times are known now: each input is committed as soon as it has been read
    // (and a large one stored while it is read), while the others are still being read, so
    // that memory holds the findings of the inputs in flight rather than of the whole scan. A
    // bound given as a duration counts back from the newest event, known only once every
    // input has been read: then all commit at the end.
    let bounds_known = ![args.since, args.until]
        .iter()
        .flatten()
        .any(|b| matches!(b, TimeBound::Ago(_)));
    if bounds_known {
        let known = |b: Option<TimeBound>| b.map(|b| b.resolve(now));
        c.bounds = Some((known(args.since), known(args.until)));
    }

    // The workers read; this thread puts each input's parts together in order and stores them.
    // Bounded: when storing falls behind reading, the workers wait instead of piling up
    // findings.
    let (tx, rx) =
        std::sync::mpsc::sync_channel::<(WorkUnit, UnitResult)>(2 * pool.current_num_threads());
    std::thread::scope(|scope| -> anyhow::Result<()> {
        let (pool, units, todo, ctx) = (&pool, &units, &todo, &ctx);
        scope.spawn(move || {
            pool.install(|| {
                // One unit a job: rayon otherwise hands each thread runs of several units
                // to read in turn, and a thread that ends its run early cannot take a unit
                // out of another's (with two threads over 1 GB, one sat idle for the last
                // 45 ms of 220).
                units.par_iter().with_max_len(1).for_each_with(tx, |tx, u| {
                    // The receiver is gone only after a failed commit: the rest is moot then.
                    let _ = tx.send((u.clone(), run_unit(u, &todo[u.input], ctx)));
                })
            })
        });
        for (u, r) in rx {
            c.arrive(u, r)?;
        }
        Ok(())
    })?;
    // Event-time bounds counted back from the newest event, now that it is known.
    if c.bounds.is_none() {
        let newest = c
            .assemblies
            .values()
            .filter_map(|a| a.acc.stats.newest)
            .max();
        let reference = newest.unwrap_or(now);
        c.bounds = Some((
            args.since.map(|b| b.resolve(reference)),
            args.until.map(|b| b.resolve(reference)),
        ));
        let done: Vec<usize> = c.assemblies.keys().copied().collect();
        for idx in done {
            c.store_input(idx)?;
        }
    }
    let Committer {
        summary,
        input_errors,
        input_warnings,
        new_recurrences,
        ..
    } = c;
    let mut summary = summary;
    errors.extend(input_errors.into_values());
    let mut warnings: Vec<SourceError> = input_warnings.into_values().collect();

    // Track: episodes and intents from everything the store holds.
    let notify_since = args.notify_since.map(|b| b.resolve(now));
    let opts = IntentOptions {
        max_notifications: args
            .max_notifications
            .unwrap_or(config.notify.max_notifications as usize),
        notify_since,
    };
    let (reports, created) = common::refresh(store.as_mut(), &rules, &config, &opts, now)?;
    let delivery = if args.no_notify {
        crate::sink::DrainStats::default()
    } else {
        crate::sink::drain(
            store.as_mut(),
            &rules,
            &config,
            &redactor,
            args.format == OutputFormat::Json,
            now,
        )?
    };
    // Report each new notification with its status after the drain.
    let mut created_now = Vec::with_capacity(created.len());
    for i in created {
        created_now.push(store.intent(&i.key)?.unwrap_or(i));
    }
    let created = created_now;
    for e in &delivery.errors {
        warnings.push(SourceError {
            path: "notify".into(),
            line: None,
            message: e.clone(),
        });
    }
    summary.seconds = started.elapsed().as_secs_f64();

    let any_recurrence = reports.iter().any(|r| r.recurrences > 0);
    let report = ScanReport {
        inputs: summary,
        remediations: reports,
        notifications: created
            .iter()
            .map(|i| NotificationReport {
                remediation: i.remediation.clone(),
                kind: i.kind.as_str(),
                key: i.key.clone(),
                episode_start: i.episode_start,
                count: i.count,
                status: i.status.as_str(),
            })
            .collect(),
        delivery,
        errors,
        warnings,
        new_recurrences,
    };
    match args.format {
        OutputFormat::Json => {
            crate::report::write_json(&mut *out, &report)?;
        }
        OutputFormat::Human => write_human(&report, color, out, err)?,
    }
    let code = if !report.errors.is_empty() || loaded.invalid_files > 0 {
        2
    } else if (args.no_state && any_recurrence) || report.new_recurrences > 0 {
        1
    } else {
        0
    };
    Ok(code)
}

/// An input whose parts (chunks) are being put together, in order.
#[derive(Default)]
struct Assembly {
    /// Parts that arrived before the ones in front of them.
    waiting: BTreeMap<usize, UnitResult>,
    /// The next part to take.
    next: usize,
    /// Lines of the parts taken (chunk-local line numbers are offset by it).
    line_base: u64,
    /// Everything taken but occurrences.
    acc: UnitResult,
    /// Occurrences taken and not stored yet.
    found: Vec<NewOccurrence>,
}

/// Occurrences an input gathers before its batch is opened and they are stored while the rest
/// is read, if they are dense: at least one per [`STREAM_DENSITY`] bytes read. An input with
/// fewer (the usual case: recurrences are rare) is stored in one short transaction once read.
/// A dense one holds the state's write lock while it is read, and other writers wait for it
/// (busy timeout), but the store's work overlaps the reading. Why density: storing an
/// occurrence costs about what reading 16 KiB does, so a dense input held the lock about as
/// long in one commit at its end; a large input with a few thousand occurrences spread over
/// gigabytes would hold it for its whole reading and save little.
const STREAM_AFTER: usize = 4096;
const STREAM_DENSITY: u64 = 16 * 1024;

/// Puts each input's parts together and stores it: one transaction per input (occurrences,
/// coverage and the input's fingerprint together), so a run killed at any point leaves whole
/// inputs behind and the next run redoes the rest.
struct Committer<'a> {
    store: &'a mut dyn crate::store::Store,
    rules: &'a [Remediation],
    by_id: HashMap<&'a str, &'a Remediation>,
    todo: &'a [Input],
    keys: &'a [Option<InputKey>],
    params: &'a str,
    /// Number of parts of each input.
    parts_of: Vec<usize>,
    assemblies: BTreeMap<usize, Assembly>,
    /// The input whose batch is open in the store.
    open: Option<usize>,
    summary: InputSummary,
    // Per input, so that they are reported in input order whatever order inputs finish in.
    input_errors: BTreeMap<usize, SourceError>,
    input_warnings: BTreeMap<usize, SourceError>,
    abort_after: Option<usize>,
    commits: usize,
    new_recurrences: u64,
    /// The event-time bounds, once known (`None`: every input waits for the end).
    bounds: Option<(Option<Timestamp>, Option<Timestamp>)>,
}

impl Committer<'_> {
    /// A part has been read.
    fn arrive(&mut self, u: WorkUnit, r: UnitResult) -> anyhow::Result<()> {
        let idx = u.input;
        let a = self.assemblies.entry(idx).or_default();
        a.waiting.insert(u.chunk, r);
        self.take_parts(idx);
        if self.bounds.is_none() {
            return Ok(());
        }
        let complete = self.complete(idx);
        match self.open {
            Some(open) if open == idx => {
                self.add(idx)?;
                if complete {
                    self.store_input(idx)?;
                    // Inputs read whole while this one was open.
                    let done: Vec<usize> = (self.assemblies.keys().copied())
                        .filter(|&i| self.complete(i))
                        .collect();
                    for i in done {
                        self.store_input(i)?;
                    }
                }
            }
            // Another input is open: this one waits for it.
            Some(_) => {}
            None if complete => self.store_input(idx)?,
            None if self.dense(idx) => {
                self.begin(idx)?;
                self.add(idx)?;
            }
            None => {}
        }
        Ok(())
    }

    /// Whether every part of an input has been taken.
    fn complete(&self, idx: usize) -> bool {
        self.assemblies[&idx].next == self.parts_of[idx]
    }

    /// Whether an input has gathered enough occurrences, densely enough, to be stored while
    /// the rest of it is read.
    fn dense(&self, idx: usize) -> bool {
        let a = &self.assemblies[&idx];
        a.found.len() >= STREAM_AFTER && a.found.len() as u64 * STREAM_DENSITY >= a.acc.stats.bytes
    }

    /// Takes the parts of an input that are next in order: their line numbers made
    /// input-wide, their counts merged.
    fn take_parts(&mut self, idx: usize) {
        let a = self.assemblies.get_mut(&idx).expect("assembly");
        while let Some(mut r) = a.waiting.remove(&a.next) {
            a.next += 1;
            for o in &mut r.occurrences {
                o.line += a.line_base;
            }
            a.found.append(&mut r.occurrences);
            let acc = &mut a.acc;
            acc.invalid.merge(&r.invalid, a.line_base);
            acc.stats.add(&r.stats);
            for (k, (n, t)) in r.coverage {
                let e = acc.coverage.entry(k).or_insert((0, t));
                e.0 += n;
                e.1 = e.1.max(t);
            }
            if acc.error.is_none() && r.error.is_some() {
                acc.error = r.error;
                acc.error_line = r.error_line.map(|l| l + a.line_base);
            }
            a.line_base += r.lines;
        }
    }

    /// The whole input an input's occurrences come from; it replaces its earlier reading
    /// unless reading it failed part-way (the part not read may hold the rest).
    fn origin(&self, idx: usize, failed: bool) -> Option<Origin> {
        let k = self.keys[idx].as_ref()?;
        let (since, until) = self.bounds.unwrap_or_default();
        Some(Origin {
            key: k.head.clone(),
            size: k.size,
            tail: k.tail.clone(),
            path: self.todo[idx].display_name(),
            replace: (!failed).then(|| Replace {
                remediations: self.rules.iter().map(|r| r.id.clone()).collect(),
                since,
                until,
            }),
        })
    }

    fn begin(&mut self, idx: usize) -> anyhow::Result<()> {
        let origin = self.origin(idx, false);
        self.store.begin(origin.as_ref())?;
        self.open = Some(idx);
        Ok(())
    }

    /// Stores the occurrences an open input has gathered (those in the time range).
    fn add(&mut self, idx: usize) -> anyhow::Result<()> {
        let (since, until) = self.bounds.unwrap_or_default();
        let in_range = |t: Option<Timestamp>| match t {
            None => since.is_none() && until.is_none(),
            Some(t) => since.is_none_or(|s| t >= s) && until.is_none_or(|u| t < u),
        };
        let a = self.assemblies.get_mut(&idx).expect("assembly");
        let mut found = std::mem::take(&mut a.found);
        found.retain(|o| in_range(o.time));
        for i in self.store.add(&found)? {
            let o = &found[i];
            if let (Some(rule), Some(t)) = (self.by_id.get(&*o.remediation), o.time)
                && rule.is_recurrence_time(t)
            {
                self.new_recurrences += 1;
            }
        }
        Ok(())
    }

    /// Stores the rest of an input that has been read whole, and commits it.
    fn store_input(&mut self, idx: usize) -> anyhow::Result<()> {
        if self.open != Some(idx) {
            self.begin(idx)?;
        }
        self.add(idx)?;
        let mut acc = self.assemblies.remove(&idx).expect("assembly").acc;
        self.open = None;
        let name = self.todo[idx].display_name();
        if let Some((line, msg)) = acc.invalid.summary() {
            self.input_warnings.insert(
                idx,
                SourceError {
                    path: name.clone(),
                    line: Some(line),
                    message: msg,
                },
            );
        }
        let failed = acc.error.is_some();
        if let Some(e) = acc.error.take() {
            self.input_errors.insert(
                idx,
                SourceError {
                    path: name.clone(),
                    line: acc.error_line,
                    message: e,
                },
            );
        }
        let s = &mut self.summary;
        s.files += 1;
        s.lines += acc.stats.records;
        s.bytes += acc.stats.bytes;
        s.events += acc.stats.events();
        s.invalid += acc.stats.invalid;
        s.untimed += acc.stats.untimed;
        s.decoded += acc.stats.decoded;
        s.newest_event = s.newest_event.max(acc.stats.newest);

        let (since, until) = self.bounds.unwrap_or_default();
        let key = self.keys[idx].as_ref();
        let cov_input = key.map_or_else(|| "<stdin>".to_string(), |k| k.first_line.clone());
        let mut batch = Batch {
            origin: self.origin(idx, failed),
            ..Default::default()
        };
        for ((rule, bucket), (count, max_time)) in acc.coverage {
            if since.is_some_and(|s| max_time < s)
                || until.is_some_and(|u| Timestamp::from_second(bucket).is_ok_and(|b| b >= u))
            {
                continue;
            }
            batch.coverage.push(CoverageCell {
                remediation: self.rules[rule as usize].id.clone(),
                bucket,
                input: cov_input.clone(),
                count,
                max_time,
            });
        }
        batch
            .coverage
            .sort_by(|a, b| (&a.remediation, a.bucket).cmp(&(&b.remediation, b.bucket)));
        // An input that failed part-way is not marked done: the next run reads it again.
        if let (Some(k), false) = (key, failed) {
            batch.inputs.push(InputRecord {
                key: k.head.clone(),
                path: name,
                size: k.size,
                tail: k.tail.clone(),
                params: self.params.to_string(),
            });
        }
        self.store.finish(&batch)?;
        self.commits += 1;
        if self.abort_after.is_some_and(|n| self.commits >= n) {
            std::process::abort();
        }
        Ok(())
    }
}

/// What every work unit of a scan shares.
struct UnitCtx<'a> {
    max_line: usize,
    matcher: &'a Matcher,
    cfg: &'a SearchConfig,
    rules: &'a Arc<[Remediation]>,
    redactor: &'a Redactor,
    samples_per_hour: Option<u32>,
    mmap: bool,
}

fn run_unit(unit: &WorkUnit, input: &Input, ctx: &UnitCtx<'_>) -> UnitResult {
    let UnitCtx {
        max_line,
        matcher,
        cfg,
        rules,
        redactor,
        samples_per_hour,
        mmap,
    } = *ctx;
    let mut res = UnitResult::default();
    let name = input.display_name();
    let outcome = (|| -> std::io::Result<()> {
        let mut tally = InvalidTally::default();
        let mut stats = Stats::default();
        let mut found = Findings::default();
        let mut sink = FindingsSink {
            rules,
            decode: &cfg.decode,
            redactor,
            source: &name,
            untimed_at: None,
            coverage: matcher.coverage_mode(),
            samples_per_hour,
            position: None,
            out: &mut found,
        };
        let r = match (unit.range, input) {
            (Some((start, end)), Input::File(p)) => {
                let mut reader = open_chunk(p, max_line, (start, end), mmap)?;
                let r = search(&mut reader, matcher, cfg, &mut sink, &mut stats, &mut tally);
                res.lines = reader.lines_seen();
                r
            }
            _ => {
                let opened = open(input)?;
                let mut reader = peek_framing(opened.reader, opened.compression, max_line)?;
                let r = search(&mut reader, matcher, cfg, &mut sink, &mut stats, &mut tally);
                res.lines = reader.lines_seen();
                if let Err(e) = &r {
                    res.error_line = Some(reader.next_line_number());
                    let _ = e;
                }
                r
            }
        };
        found.finish();
        res.occurrences = found.occurrences;
        res.coverage = found.coverage;
        res.stats = stats;
        res.invalid = tally;
        r
    })();
    if let Err(e) = outcome {
        res.error = Some(match e.kind() {
            std::io::ErrorKind::UnexpectedEof => "unexpected end of compressed data (truncated archive?); records before it were scanned".to_string(),
            _ => format!("{}; records before it were scanned", crate::source::expand::describe_io(&e)),
        });
    }
    res
}

/// Reads the first bytes of a (decompressed) stream to choose its framing, then hands back a
/// reader over the whole stream.
pub(crate) fn peek_framing(
    mut reader: Box<dyn Read + Send>,
    _compression: Compression,
    max_line: usize,
) -> std::io::Result<RecordReader<Box<dyn Read + Send>>> {
    let mut head = vec![0u8; 4096];
    let mut n = 0;
    while n < head.len() {
        match reader.read(&mut head[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    head.truncate(n);
    let framing = Framing::sniff(&head);
    let chained: Box<dyn Read + Send> = Box::new(std::io::Cursor::new(head).chain(reader));
    Ok(RecordReader::new(chained, framing, max_line))
}

/// Fault injection for the crash tests: `RECUR_TEST_ABORT_AFTER_COMMITS=N` aborts the process
/// (no unwinding, no cleanup, like `kill -9`) right after the N-th input's transaction.
fn abort_after_commits() -> Option<usize> {
    std::env::var("RECUR_TEST_ABORT_AFTER_COMMITS")
        .ok()?
        .parse()
        .ok()
}

/// How much of an input's head and tail its fingerprint hashes.
const FINGERPRINT_BYTES: u64 = 64 * 1024;

/// An input's fingerprint.
#[derive(Debug, Clone, PartialEq, Eq)]
struct InputKey {
    /// Hash of the first 64 KiB: the input's content key, stable while a file grows (coverage
    /// and occurrences are attributed to it), so a renamed export is recognised.
    head: String,
    size: u64,
    /// Hash of the last 64 KiB: two files with the same head and size but another tail (a
    /// rewritten end) are told apart.
    tail: String,
    /// Hash of the first line: what coverage counts are kept under, stable even while a file
    /// smaller than the head grows (its counts are then replaced, not added to).
    first_line: String,
}

/// Fingerprints an input file (not stdin): its head, size and tail.
fn input_key(input: &Input) -> Option<InputKey> {
    let Input::File(p) = input else { return None };
    let mut f = std::fs::File::open(p).ok()?;
    let size = f.metadata().ok()?.len();
    let head = read_up_to(&mut f, FINGERPRINT_BYTES).ok()?;
    let tail = if size > FINGERPRINT_BYTES {
        f.seek(SeekFrom::Start(size - FINGERPRINT_BYTES)).ok()?;
        read_up_to(&mut f, FINGERPRINT_BYTES).ok()?
    } else {
        head.clone()
    };
    let _ = sniff;
    let first = memchr::memchr(b'\n', &head).map_or(&head[..], |i| &head[..i]);
    Some(InputKey {
        first_line: format!("l{:032x}", xxhash_rust::xxh3::xxh3_128(first)),
        head: format!("{:032x}", xxhash_rust::xxh3::xxh3_128(&head)),
        size,
        tail: format!("{:032x}", xxhash_rust::xxh3::xxh3_128(&tail)),
    })
}

fn read_up_to(f: &mut std::fs::File, n: u64) -> std::io::Result<Vec<u8>> {
    let mut buf = Vec::with_capacity(n as usize);
    f.take(n).read_to_end(&mut buf)?;
    Ok(buf)
}

/// A hash of what decides a scan's findings: rules (conditions), decoding (format, time
/// fields, time zone, id fields) and parameters. Not `fixed_at`: a moved fix re-classifies
/// stored occurrences without re-reading anything.
fn scan_params(
    rules: &[Remediation],
    args: &ScanArgs,
    decode: &crate::decode::DecodeConfig,
    max_line: usize,
) -> String {
    let mut s = format!(
        "v2|{:?}|{max_line}|{:?}|{:?}|{:?}|{:?}|{:?}|{:?}",
        args.input,
        args.since,
        args.until,
        decode.format,
        decode.time_fields,
        decode.zone,
        decode.id_fields
    );
    for r in rules {
        s.push_str(&format!("|{}|{:?}|{:?}", r.id, r.scope, r.signatures));
    }
    format!("{:016x}", xxhash_rust::xxh3::xxh3_64(s.as_bytes()))
}

fn write_human(
    report: &ScanReport,
    color: bool,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> std::io::Result<()> {
    for e in &report.errors {
        writeln!(err, "error: {e}")?;
    }
    for w in &report.warnings {
        writeln!(err, "warning: {w}")?;
    }
    let i = &report.inputs;
    writeln!(
        out,
        "Scanned {} input{} ({} skipped as already scanned): {} lines, {} events, {} invalid, {} untimed, in {:.2}s",
        i.files,
        if i.files == 1 { "" } else { "s" },
        i.skipped,
        group_thousands(i.lines),
        group_thousands(i.events),
        group_thousands(i.invalid),
        group_thousands(i.untimed),
        i.seconds
    )?;
    writeln!(out)?;
    let rows: Vec<Vec<String>> = report
        .remediations
        .iter()
        .map(|r| {
            vec![
                r.id.clone(),
                paint_verdict(r.verdict, color),
                group_thousands(r.before_fix),
                group_thousands(r.recurrences),
                r.episodes.to_string(),
                r.first_seen.map(format_time).unwrap_or_else(|| "-".into()),
                r.last_seen.map(format_time).unwrap_or_else(|| "-".into()),
                r.owner.clone(),
            ]
        })
        .collect();
    write!(
        out,
        "{}",
        table(
            &[
                "REMEDIATION",
                "VERDICT",
                "BEFORE FIX",
                "AFTER FIX",
                "EPISODES",
                "FIRST SEEN",
                "LAST SEEN",
                "OWNER"
            ],
            &rows
        )
    )?;
    writeln!(out)?;
    for r in &report.remediations {
        writeln!(out, "{}: {}", r.id, r.title)?;
        writeln!(out, "  {}", r.progress)?;
        writeln!(out, "  analysis: {}", r.analysis)?;
    }
    if !report.notifications.is_empty() {
        writeln!(out)?;
        writeln!(
            out,
            "{} new notification{}:",
            report.notifications.len(),
            if report.notifications.len() == 1 {
                ""
            } else {
                "s"
            }
        )?;
        for n in &report.notifications {
            writeln!(
                out,
                "  {} {} ({} error{}) [{}]",
                n.kind,
                n.key,
                n.count,
                if n.count == 1 { "" } else { "s" },
                n.status
            )?;
        }
    }
    Ok(())
}
