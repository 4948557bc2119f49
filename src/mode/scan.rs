//! `recur scan`: the cron batch. Reads every input to the end in parallel, commits what it
//! found, records notification intents, drains the outbox and exits with a status that is news.

use std::collections::BTreeMap;
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
use crate::store::{Batch, CoverageCell, InputRecord, Origin, Replace, StoredOccurrence};

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
    occurrences: Vec<StoredOccurrence>,
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
    let search_cfg = SearchConfig {
        decode: decode_cfg,
        since: None,
        until: None,
    };
    let matcher = Matcher::new(rules.clone(), config.coverage.mode);

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
    // Bounds given as times are known now: each input is committed as soon as it has been read,
    // while the others are still being read, so that memory holds the findings of the inputs in
    // flight rather than of the whole scan. A bound given as a duration counts back from the
    // newest event, known only once every input has been read: then all commit at the end.
    let bounds_known = ![args.since, args.until]
        .iter()
        .flatten()
        .any(|b| matches!(b, TimeBound::Ago(_)));
    let mut pending = vec![0usize; todo.len()];
    for u in &units {
        pending[u.input] += 1;
    }
    let mut summary = InputSummary {
        skipped,
        ..Default::default()
    };
    // Per input, so that they are reported in input order whatever order inputs finish in.
    let mut input_errors: BTreeMap<usize, SourceError> = BTreeMap::new();
    let mut input_warnings: BTreeMap<usize, SourceError> = BTreeMap::new();

    // Merges the parts of one input (chunks, in order), fixing chunk-local line numbers; returns
    // its findings and whether reading it failed part-way.
    let mut merge = |idx: usize, mut parts: Vec<(WorkUnit, UnitResult)>| -> (UnitResult, bool) {
        parts.sort_by_key(|(u, _)| u.chunk);
        let mut acc = UnitResult::default();
        let mut line_base = 0;
        for (_, mut r) in parts {
            for o in &mut r.occurrences {
                o.line += line_base;
            }
            acc.invalid.merge(&r.invalid, line_base);
            acc.stats.add(&r.stats);
            acc.occurrences.append(&mut r.occurrences);
            for (k, (n, t)) in r.coverage {
                let e = acc.coverage.entry(k).or_insert((0, t));
                e.0 += n;
                e.1 = e.1.max(t);
            }
            if acc.error.is_none() && r.error.is_some() {
                acc.error = r.error;
                acc.error_line = r.error_line.map(|l| l + line_base);
            }
            line_base += r.lines;
        }
        let name = todo[idx].display_name();
        if let Some((line, msg)) = acc.invalid.summary() {
            input_warnings.insert(
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
            input_errors.insert(
                idx,
                SourceError {
                    path: name,
                    line: acc.error_line,
                    message: e,
                },
            );
        }
        summary.files += 1;
        summary.lines += acc.stats.records;
        summary.bytes += acc.stats.bytes;
        summary.events += acc.stats.events();
        summary.invalid += acc.stats.invalid;
        summary.untimed += acc.stats.untimed;
        summary.decoded += acc.stats.decoded;
        summary.newest_event = summary.newest_event.max(acc.stats.newest);
        (acc, failed)
    };

    // One transaction per input: occurrences, coverage and the input's fingerprint together,
    // so a run killed at any point leaves whole inputs behind and the next run redoes the rest.
    let abort_after = abort_after_commits();
    let mut commits = 0usize;
    let mut new_recurrences = 0u64;
    let mut commit = |idx: usize,
                      acc: UnitResult,
                      failed: bool,
                      since: Option<Timestamp>,
                      until: Option<Timestamp>|
     -> anyhow::Result<()> {
        let in_range = |t: Option<Timestamp>| match t {
            None => since.is_none() && until.is_none(),
            Some(t) => since.is_none_or(|s| t >= s) && until.is_none_or(|u| t < u),
        };
        let input_key = keys[idx].clone();
        let cov_input = input_key
            .as_ref()
            .map_or_else(|| "<stdin>".to_string(), |k| k.first_line.clone());
        let mut batch = Batch {
            occurrences: acc
                .occurrences
                .into_iter()
                .filter(|o| in_range(o.time))
                .collect(),
            ..Default::default()
        };
        for ((rule, bucket), (count, max_time)) in acc.coverage {
            if since.is_some_and(|s| max_time < s)
                || until.is_some_and(|u| Timestamp::from_second(bucket).is_ok_and(|b| b >= u))
            {
                continue;
            }
            batch.coverage.push(CoverageCell {
                remediation: rules[rule as usize].id.clone(),
                bucket,
                input: cov_input.clone(),
                count,
                max_time,
            });
        }
        batch
            .coverage
            .sort_by(|a, b| (&a.remediation, a.bucket).cmp(&(&b.remediation, b.bucket)));
        // An input that failed part-way is not marked done: the next run reads it again. Its
        // findings are added, but replace nothing (the part not read may hold the rest).
        if let Some(k) = input_key {
            batch.origin = Some(Origin {
                key: k.head.clone(),
                size: k.size,
                tail: k.tail.clone(),
                path: todo[idx].display_name(),
                replace: (!failed).then(|| Replace {
                    remediations: rules.iter().map(|r| r.id.clone()).collect(),
                    since,
                    until,
                }),
            });
            if !failed {
                batch.inputs.push(InputRecord {
                    key: k.head,
                    path: todo[idx].display_name(),
                    size: k.size,
                    tail: k.tail,
                    params: params.clone(),
                });
            }
        }
        let outcome = store.commit(&batch)?;
        commits += 1;
        if abort_after.is_some_and(|n| commits >= n) {
            std::process::abort();
        }
        for i in outcome.new_occurrences {
            let o = &batch.occurrences[i];
            let rule = rules.iter().find(|r| r.id == o.remediation);
            if let (Some(rule), Some(t)) = (rule, o.time) {
                if rule.is_recurrence_time(t) {
                    new_recurrences += 1;
                }
            }
        }
        Ok(())
    };

    // The workers read; this thread merges each input once all its parts are in, and commits.
    let known = |b: Option<TimeBound>| b.map(|b| b.resolve(now));
    let mut merged: Vec<(usize, UnitResult, bool)> = Vec::new();
    let mut parts: BTreeMap<usize, Vec<(WorkUnit, UnitResult)>> = BTreeMap::new();
    // Bounded: when committing falls behind reading, the workers wait instead of piling up
    // findings.
    let (tx, rx) =
        std::sync::mpsc::sync_channel::<(WorkUnit, UnitResult)>(2 * pool.current_num_threads());
    std::thread::scope(|scope| -> anyhow::Result<()> {
        let (pool, units, todo, ctx) = (&pool, &units, &todo, &ctx);
        scope.spawn(move || {
            pool.install(|| {
                units.par_iter().for_each_with(tx, |tx, u| {
                    // The receiver is gone only after a failed commit: the rest is moot then.
                    let _ = tx.send((u.clone(), run_unit(u, &todo[u.input], ctx)));
                })
            })
        });
        for (u, r) in rx {
            let idx = u.input;
            parts.entry(idx).or_default().push((u, r));
            pending[idx] -= 1;
            if pending[idx] > 0 {
                continue;
            }
            let (acc, failed) = merge(idx, parts.remove(&idx).unwrap_or_default());
            if bounds_known {
                commit(idx, acc, failed, known(args.since), known(args.until))?;
            } else {
                merged.push((idx, acc, failed));
            }
        }
        Ok(())
    })?;
    // Event-time bounds counted back from the newest event, now that it is known.
    let reference = summary.newest_event.unwrap_or(now);
    let since = args.since.map(|b| b.resolve(reference));
    let until = args.until.map(|b| b.resolve(reference));
    merged.sort_by_key(|(idx, _, _)| *idx);
    for (idx, acc, failed) in merged {
        commit(idx, acc, failed, since, until)?;
    }
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
            serde_json::to_writer_pretty(&mut *out, &report)?;
            writeln!(out)?;
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
