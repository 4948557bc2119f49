//! `recur grep`: ad-hoc investigation. Read-only: it never opens the state store and never
//! notifies; it prints matching events, counts or a timeline.
//!
//! What to look for (the pattern, `-w` filters, `--rule`) is compiled into one synthetic
//! remediation ([`filter::synthetic_rule`]) and handed to the same [`Matcher`] and
//! [`search`] loop as `scan`: literal prefilter on raw bytes, decoding of candidates only,
//! exact evaluation. Inputs are expanded and split into work units like `scan`'s and read on
//! several threads; [`ordered`] hands the results back in unit order so the output is
//! deterministic.

pub mod filter;
pub mod ordered;
pub mod output;

use std::collections::BTreeMap;
use std::io::{BufWriter, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use jiff::Timestamp;

use super::common::{self, TimeBound};
use crate::decode::{Event, Format};
use crate::matcher::{CoverageMode, Hit, Matcher};
use crate::redact::Redactor;
use crate::report::group_thousands;
use crate::rule::Remediation;
use crate::rule::cond::FieldRef;
use crate::search::{InvalidTally, SearchConfig, Sink, Stats, search};
use crate::source::framing::Record;
use crate::source::open::open;
use crate::source::{Input, SourceError, WorkUnit, expand, open_chunk, plan_units};
use filter::FieldName;
use output::{Bucket, Highlighter, paint};

/// `recur grep` flags.
#[derive(Debug, Clone, clap::Args)]
#[command(group(
    clap::ArgGroup::new("output")
        .args(["json", "fields", "count", "count_by", "timeline", "files_with_matches"])
))]
pub struct GrepArgs {
    /// Regex over each event's text (`_line`: the line itself; the inner line for Docker/CRI).
    /// With -e, -w or --rule there is no positional PATTERN: every argument is a PATH.
    #[arg(value_name = "PATTERN")]
    pub pattern: Option<String>,
    /// Files, directories (read recursively), globs, or `-` for standard input (the default
    /// when standard input is not a terminal).
    #[arg(value_name = "PATH")]
    pub paths: Vec<String>,
    /// A pattern (repeatable: an event matches when any pattern does).
    #[arg(short = 'e', long = "regexp", value_name = "PATTERN")]
    pub regexp: Vec<String>,
    /// Field filter, repeatable (all must hold): FIELD=VALUE, FIELD!=VALUE, FIELD~REGEX,
    /// FIELD!~REGEX, FIELD>N, FIELD>=N, FIELD<N, FIELD<=N, FIELD? (present). `a.b` is the flat
    /// key "a.b" if present, else b inside a; quote a key to mean exactly it: '"log.level"=info'.
    #[arg(short = 'w', long = "where", value_name = "FILTER", value_parser = filter::parse_filter)]
    pub filters: Vec<filter::Filter>,
    /// Patterns ignore case.
    #[arg(short = 'i', long)]
    pub ignore_case: bool,
    /// Patterns are literal strings, not regexes.
    #[arg(short = 'F', long)]
    pub fixed_strings: bool,
    /// Only events of this remediation (its scope and signatures), from --rules.
    #[arg(long, value_name = "ID")]
    pub rule: Option<String>,
    /// Directory of rule files (for --rule).
    #[arg(long, value_name = "DIR", default_value = "rules", env = "RECUR_RULES")]
    pub rules: PathBuf,
    /// Configuration file (default: ./recur.toml when present); its [input] table applies.
    #[arg(long, value_name = "FILE", env = "RECUR_CONFIG")]
    pub config: Option<PathBuf>,
    /// Only events at or after this event time: RFC 3339, or a duration back from now (`2h`).
    #[arg(long, value_name = "TIME", value_parser = common::parse_time_bound)]
    pub since: Option<TimeBound>,
    /// Only events before this event time: RFC 3339, or a duration back from now.
    #[arg(long, value_name = "TIME", value_parser = common::parse_time_bound)]
    pub until: Option<TimeBound>,
    /// Input format; `auto` detects per file and line.
    #[arg(long, value_enum, value_name = "FORMAT", default_value = "auto")]
    pub input: Format,
    /// Worker threads (default: one per core).
    #[arg(long, short = 'j', value_name = "N", env = "RECUR_THREADS")]
    pub threads: Option<usize>,
    /// Longest record kept, in bytes (default 1 MiB or the config's).
    #[arg(long, value_name = "N")]
    pub max_line_bytes: Option<usize>,
    /// Read large files only with `read`, never through a memory map (by default, chunks of
    /// files not modified for 10 s are mapped, which saves a copy; a mapped file truncated
    /// during the scan would stop recur with SIGBUS).
    #[arg(long, env = "RECUR_NO_MMAP")]
    pub no_mmap: bool,
    /// Print each matching event as a JSON line (decoded, envelope unwrapped).
    #[arg(long)]
    pub json: bool,
    /// Print these fields of each matching event as aligned columns (`_time`, `_path`, `_line` too).
    #[arg(long, value_name = "FIELD,...", value_delimiter = ',')]
    pub fields: Vec<String>,
    /// Print the number of matching events (per file with several files, else the total).
    #[arg(short = 'c', long)]
    pub count: bool,
    /// Count matching events by the values of these fields, most frequent first.
    #[arg(long, value_name = "FIELD,...", value_delimiter = ',')]
    pub count_by: Vec<String>,
    /// Histogram of matching events over event time; BUCKET is a duration (`--timeline=15m`) or auto.
    #[arg(
        long,
        value_name = "BUCKET",
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = "auto",
        value_parser = output::parse_bucket
    )]
    pub timeline: Option<Bucket>,
    /// Stop reading a file after N matching events.
    #[arg(short = 'm', long, value_name = "N")]
    pub max_count: Option<u64>,
    /// Print only the names of files with a matching event.
    #[arg(short = 'l', long)]
    pub files_with_matches: bool,
    /// Prefix lines with the file name (default with several files).
    #[arg(short = 'H', long, overrides_with = "no_filename")]
    pub with_filename: bool,
    /// Never prefix lines with the file name (`-c` then prints one total).
    #[arg(long, overrides_with = "with_filename")]
    pub no_filename: bool,
    /// Prefix lines with their line number (default with file names).
    #[arg(short = 'n', long)]
    pub line_number: bool,
    /// Mask secrets in what is printed (JWTs, bearer tokens, authorization and cookie headers,
    /// fields named like token/secret/password/key, the config's [redact] additions).
    #[arg(long)]
    pub redact: bool,
    /// Print counters (files, lines, events, invalid, time taken, throughput) on stderr.
    #[arg(long)]
    pub stats: bool,
    /// Split plain files larger than this into chunks read in parallel (bytes).
    #[arg(long, value_name = "BYTES", default_value_t = CHUNK_BYTES, hide = true)]
    pub chunk_bytes: u64,
}

/// Chunk size for splitting large plain files across threads (as `scan`).
const CHUNK_BYTES: u64 = 32 * 1024 * 1024;

/// What is printed.
#[derive(Debug, Clone)]
enum Mode {
    Lines,
    Json,
    Fields(Vec<Column>),
    Count,
    CountBy(Vec<Column>),
    Timeline(Option<i64>),
    Files,
}

/// A column of `--fields` or a key of `--count-by`.
#[derive(Debug, Clone)]
enum Column {
    Time,
    Path,
    Field(FieldName),
}

impl Column {
    fn parse(name: &str) -> Result<Column, String> {
        Ok(match name.trim() {
            "_time" => Column::Time,
            "_path" => Column::Path,
            _ => Column::Field(FieldName::parse(name)?),
        })
    }

    fn parse_all(names: &[String]) -> Result<Vec<Column>, String> {
        names.iter().map(|n| Column::parse(n)).collect()
    }

    fn value(&self, event: &Event, source: &str, absent: &str) -> String {
        match self {
            Column::Time => event
                .time
                .map_or_else(|| absent.to_string(), |t| t.to_string()),
            Column::Path => source.to_string(),
            Column::Field(f) => match f.lookup(event) {
                None => absent.to_string(),
                Some(FieldRef::Text(t)) => output::cell(Some(&serde_json::Value::String(t.into()))),
                Some(FieldRef::Json(v)) => output::cell(Some(v)),
            },
        }
    }
}

/// Settings every worker reads.
struct Ctx<'a> {
    mode: &'a Mode,
    redactor: Option<&'a Redactor>,
    highlighter: &'a Highlighter,
    color: bool,
    max_count: Option<u64>,
    cancel: &'a AtomicBool,
    /// Whether chunks of large files at rest may be memory-mapped.
    mmap: bool,
}

/// One printed item.
enum Entry {
    Text(String),
    Row(Vec<String>),
}

/// What one work unit found.
#[derive(Default)]
struct UnitOut {
    stats: Stats,
    invalid: InvalidTally,
    /// Records read, to number the next chunk's lines.
    lines: u64,
    error: Option<(Option<u64>, String)>,
    matched: u64,
    /// (chunk-local line, item)
    entries: Vec<(u64, Entry)>,
    counts: BTreeMap<Vec<String>, u64>,
    /// Matched events per UTC epoch second (for the timeline).
    seconds: BTreeMap<i64, u64>,
    untimed: u64,
}

struct GrepSink<'a> {
    ctx: &'a Ctx<'a>,
    source: &'a str,
    out: UnitOut,
}

impl Sink for GrepSink<'_> {
    fn hits(&mut self, record: &Record<'_>, event: &Event, hits: &[Hit]) {
        if !hits.iter().any(|h| matches!(h, Hit::Occurrence { .. }))
            || self.ctx.max_count.is_some_and(|m| self.out.matched >= m)
        {
            return;
        }
        self.out.matched += 1;
        let out = &mut self.out;
        // Redaction works on a copy of the event, and only for matches: the hot path is untouched.
        let redacted;
        let event = match self.ctx.redactor {
            Some(r) if !matches!(self.ctx.mode, Mode::Lines | Mode::Count | Mode::Files) => {
                let mut fields = event.fields.clone();
                r.value(&mut fields);
                redacted = Event {
                    fields,
                    text: r.text(&event.text),
                    ..event.clone()
                };
                &redacted
            }
            _ => event,
        };
        match self.ctx.mode {
            Mode::Lines => {
                let text = String::from_utf8_lossy(record.bytes);
                let mut line = output::one_line(&text);
                if let Some(r) = self.ctx.redactor {
                    line = std::borrow::Cow::Owned(r.text(&line));
                }
                let body = if self.ctx.color {
                    self.ctx.highlighter.paint(&line)
                } else {
                    line.into_owned()
                };
                out.entries.push((record.line, Entry::Text(body)));
            }
            Mode::Json => out
                .entries
                .push((record.line, Entry::Text(event.fields.to_string()))),
            Mode::Fields(cols) => {
                let row = cols
                    .iter()
                    .map(|c| c.value(event, self.source, "-"))
                    .collect();
                out.entries.push((record.line, Entry::Row(row)));
            }
            Mode::CountBy(cols) => {
                let key = cols
                    .iter()
                    .map(|c| c.value(event, self.source, "(absent)"))
                    .collect();
                *out.counts.entry(key).or_default() += 1;
            }
            Mode::Timeline(_) => match event.time {
                Some(t) => *out.seconds.entry(t.as_second()).or_default() += 1,
                None => out.untimed += 1,
            },
            Mode::Count | Mode::Files => {}
        }
    }

    fn after_record(&mut self, _record: &Record<'_>) -> bool {
        !self.ctx.cancel.load(Ordering::Relaxed)
            && self.ctx.max_count.is_none_or(|m| self.out.matched < m)
    }
}

/// Runs `recur grep`. Returns the exit code: 0 something matched, 1 nothing, 2 an error.
pub fn run(
    args: &GrepArgs,
    color: bool,
    color_err: bool,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> anyhow::Result<i32> {
    let started = Instant::now();
    let Some(config) = common::load_config(args.config.as_deref(), color_err, err)? else {
        return Ok(2);
    };

    // Pattern and paths: with -e, -w or --rule every positional argument is a path.
    let filtered = !args.regexp.is_empty() || !args.filters.is_empty() || args.rule.is_some();
    let mut patterns = args.regexp.clone();
    let mut paths = args.paths.clone();
    let mut first_path_was_pattern = None;
    if let Some(p) = &args.pattern {
        if filtered {
            paths.insert(0, p.clone());
            first_path_was_pattern = Some(p.clone());
        } else {
            patterns.push(p.clone());
        }
    }
    if patterns.is_empty() && !filtered {
        writeln!(
            err,
            "error: give a PATTERN, -e PATTERN, -w FILTER or --rule ID (`recur grep '' PATH` prints every event)"
        )?;
        return Ok(2);
    }
    if paths.is_empty() {
        if std::io::stdin().is_terminal() {
            writeln!(
                err,
                "error: no PATH given and standard input is a terminal\n  \
                 hint: name files or directories (`recur grep NO_TOKEN logs/`, `.` for the \
                 working directory), or pipe logs in"
            )?;
            return Ok(2);
        }
        paths.push("-".into());
    }
    let pattern = match filter::pattern_regex(&patterns, args.ignore_case, args.fixed_strings) {
        Ok(p) => p,
        Err(e) => {
            writeln!(err, "error: {e}")?;
            return Ok(2);
        }
    };
    let rule = match &args.rule {
        None => None,
        Some(id) => match find_rule(&args.rules, id, color_err, err)? {
            Some(r) => Some(r),
            None => return Ok(2),
        },
    };
    let synthetic = match filter::synthetic_rule(&args.filters, pattern.as_ref(), rule.as_ref()) {
        Ok(r) => r,
        Err(e) => {
            writeln!(err, "error: {e}")?;
            return Ok(2);
        }
    };
    let highlighter = Highlighter::new(pattern.clone(), &filter::field_names(&synthetic));
    let matcher = Matcher::new(Arc::from(vec![synthetic]), CoverageMode::Off);

    let mut decode = config.decode_config();
    if args.input != Format::Auto {
        decode.format = args.input;
    }
    let now = Timestamp::now();
    let search_cfg = SearchConfig {
        decode,
        // Whole events: they are printed.
        keep: None,
        since: args.since.map(|b| b.resolve(now)),
        until: args.until.map(|b| b.resolve(now)),
    };
    let max_line = args.max_line_bytes.unwrap_or(config.input.max_line_bytes);

    let columns =
        Column::parse_all(&args.fields).and_then(|f| Ok((f, Column::parse_all(&args.count_by)?)));
    let (field_columns, count_columns) = match columns {
        Ok(c) => c,
        Err(e) => {
            writeln!(err, "error: {e}")?;
            return Ok(2);
        }
    };
    let mode = if args.json {
        Mode::Json
    } else if !args.fields.is_empty() {
        Mode::Fields(field_columns)
    } else if args.count {
        Mode::Count
    } else if !args.count_by.is_empty() {
        Mode::CountBy(count_columns)
    } else if let Some(b) = args.timeline {
        Mode::Timeline(b.0)
    } else if args.files_with_matches {
        Mode::Files
    } else {
        Mode::Lines
    };
    let max_count = if args.files_with_matches {
        Some(1)
    } else {
        args.max_count
    };

    let (inputs, errors) = expand(&paths);
    let mut had_error = false;
    for e in &errors {
        had_error = true;
        let hint = match &first_path_was_pattern {
            Some(p) if *p == e.path => {
                "\n  hint: with -e, -w or --rule every argument is a PATH; search for it with -e"
            }
            _ => "",
        };
        writeln!(err, "error: {e}{hint}")?;
    }
    // `-m` and `-l` stop a file early, which only a whole-file unit can do exactly.
    let chunk_bytes = if max_count.is_some() {
        0
    } else {
        args.chunk_bytes
    };
    let (units, plan_errors) = plan_units(&inputs, chunk_bytes);
    for e in &plan_errors {
        had_error = true;
        writeln!(err, "error: {e}")?;
    }
    let with_filename = args.with_filename
        || (!args.no_filename
            && (inputs.len() > 1
                || paths.iter().any(|p| {
                    let path = Path::new(p);
                    path.is_dir() || (!path.exists() && p.contains(['*', '?', '[']))
                })));

    let redactor = if args.redact {
        match Redactor::new(&config.redact.fields, &config.redact.patterns) {
            Ok(r) => Some(r),
            Err(e) => {
                writeln!(err, "error: [redact] pattern: {e}")?;
                return Ok(2);
            }
        }
    } else {
        None
    };
    let cancel = AtomicBool::new(false);
    let ctx = Ctx {
        mode: &mode,
        redactor: redactor.as_ref(),
        highlighter: &highlighter,
        color,
        max_count,
        cancel: &cancel,
        mmap: !args.no_mmap,
    };
    let threads = args.threads.filter(|&n| n > 0).unwrap_or_else(|| {
        std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
    });
    let mut printer = Printer {
        out: BufWriter::with_capacity(64 * 1024, out),
        err,
        mode: &mode,
        color,
        color_err,
        with_filename,
        line_number: args.line_number || with_filename,
        inputs: &inputs,
        current: None,
        totals: Totals::default(),
    };
    let names: Vec<String> = inputs.iter().map(Input::display_name).collect();
    let printed = ordered::run(
        units.len(),
        threads,
        threads * 2 + 2,
        &cancel,
        |i| {
            let u = &units[i];
            run_unit(
                u,
                &inputs[u.input],
                &names[u.input],
                &ctx,
                &matcher,
                &search_cfg,
                max_line,
            )
        },
        |_| UnitOut {
            error: Some((None, "internal error while reading".into())),
            ..Default::default()
        },
        |i, r| printer.unit(&units[i], r),
    )
    .and_then(|()| printer.finish_input());
    let totals = match printed {
        Ok(()) => {
            had_error |= printer.totals.errors > 0;
            let totals = std::mem::take(&mut printer.totals);
            match printer
                .summary(&totals, &args.fields, &args.count_by, rule.as_ref())
                .and_then(|()| printer.out.flush())
            {
                Ok(()) => totals,
                Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {
                    return Ok(if had_error { 2 } else { 0 });
                }
                Err(e) => return Err(e.into()),
            }
        }
        // The reader closed the pipe (`| head`): not an error in itself, so stop quietly —
        // but an error already met in a file still decides the exit code, and is still said.
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {
            had_error |= printer.abandon() > 0;
            return Ok(if had_error { 2 } else { 0 });
        }
        Err(e) => return Err(e.into()),
    };
    drop(printer);
    if args.stats {
        write_stats(err, &totals, started.elapsed().as_secs_f64())?;
    }
    Ok(if had_error {
        2
    } else if totals.matched > 0 {
        0
    } else {
        1
    })
}

/// Finds `--rule ID` in the rules directory; rule-file diagnostics are shown only when the
/// rule cannot be found (an unrelated broken file does not stop an investigation).
fn find_rule(
    dir: &Path,
    id: &str,
    color: bool,
    err: &mut dyn Write,
) -> anyhow::Result<Option<Remediation>> {
    let loaded = match crate::rule::load_rules_dir(dir) {
        Ok(l) => l,
        Err(e) => {
            writeln!(err, "error: rules directory {}: {e}", dir.display())?;
            return Ok(None);
        }
    };
    if let Some(r) = loaded.remediations.iter().find(|r| r.id == id) {
        return Ok(Some(r.clone()));
    }
    if !loaded.diagnostics.is_empty() {
        write!(
            err,
            "{}",
            crate::diag::render(&loaded.diagnostics, &loaded.sources, color)
        )?;
    }
    let known: Vec<&str> = loaded.remediations.iter().map(|r| r.id.as_str()).collect();
    let close = known
        .iter()
        .max_by(|a, b| strsim::jaro_winkler(id, a).total_cmp(&strsim::jaro_winkler(id, b)))
        .filter(|k| strsim::jaro_winkler(id, k) > 0.8);
    let hint = match close {
        Some(k) => format!("\n  hint: did you mean `{k}`?"),
        None if known.is_empty() => String::new(),
        None => format!("\n  hint: known rules: {}", known.join(", ")),
    };
    writeln!(
        err,
        "error: no rule with id `{id}` in {}{hint}",
        dir.display()
    )?;
    Ok(None)
}

/// Reads one work unit through the shared search loop.
fn run_unit(
    unit: &WorkUnit,
    input: &Input,
    source: &str,
    ctx: &Ctx<'_>,
    matcher: &Matcher,
    cfg: &SearchConfig,
    max_line: usize,
) -> UnitOut {
    let mut sink = GrepSink {
        ctx,
        source,
        out: UnitOut::default(),
    };
    let mut stats = Stats::default();
    let mut tally = InvalidTally::default();
    let mut lines = 0;
    let mut error_line = None;
    let result = (|| -> std::io::Result<()> {
        match (unit.range, input) {
            (Some((start, end)), Input::File(p)) => {
                let mut reader = open_chunk(p, max_line, (start, end), ctx.mmap)?;
                let r = search(&mut reader, matcher, cfg, &mut sink, &mut stats, &mut tally);
                lines = reader.lines_seen();
                r
            }
            _ => {
                let opened = open(input)?;
                let mut reader =
                    super::scan::peek_framing(opened.reader, opened.compression, max_line)?;
                let r = search(&mut reader, matcher, cfg, &mut sink, &mut stats, &mut tally);
                lines = reader.lines_seen();
                if r.is_err() {
                    error_line = Some(reader.next_line_number());
                }
                r
            }
        }
    })();
    let mut out = sink.out;
    out.stats = stats;
    out.invalid = tally;
    out.lines = lines;
    if let Err(e) = result {
        let message = match e.kind() {
            std::io::ErrorKind::UnexpectedEof => "unexpected end of compressed data (truncated archive?); records before it were searched".to_string(),
            _ => format!(
                "{}; records before it were searched",
                crate::source::expand::describe_io(&e)
            ),
        };
        out.error = Some((error_line, message));
    }
    out
}

/// Totals over every input.
#[derive(Default)]
struct Totals {
    stats: Stats,
    /// Inputs read (to the end or to an error).
    files: u64,
    matched: u64,
    errors: u64,
    rows: Vec<Vec<String>>,
    counts: BTreeMap<Vec<String>, u64>,
    seconds: BTreeMap<i64, u64>,
    untimed: u64,
}

/// The input being printed.
struct Current {
    idx: usize,
    line_base: u64,
    matched: u64,
    invalid: InvalidTally,
    error: Option<(Option<u64>, String)>,
}

/// Prints results on the consuming thread, in unit order.
struct Printer<'a, W: Write> {
    out: BufWriter<W>,
    err: &'a mut dyn Write,
    mode: &'a Mode,
    color: bool,
    color_err: bool,
    with_filename: bool,
    line_number: bool,
    inputs: &'a [Input],
    current: Option<Current>,
    totals: Totals,
}

impl<W: Write> Printer<'_, W> {
    fn unit(&mut self, unit: &WorkUnit, mut r: UnitOut) -> std::io::Result<()> {
        if self.current.as_ref().is_some_and(|c| c.idx != unit.input) {
            self.finish_input()?;
        }
        let cur = self.current.get_or_insert_with(|| Current {
            idx: unit.input,
            line_base: 0,
            matched: 0,
            invalid: InvalidTally::default(),
            error: None,
        });
        let base = cur.line_base;
        // Noted before printing, so that an output closed while printing still knows of it.
        if cur.error.is_none() {
            cur.error = r.error.take().map(|(l, m)| (l.map(|l| l + base), m));
        }
        let name = self.inputs[unit.input].display_name();
        for (line, entry) in r.entries.drain(..) {
            match entry {
                Entry::Text(body) => {
                    if matches!(self.mode, Mode::Lines) {
                        if self.with_filename {
                            write!(self.out, "{}:", paint(&name, output::PATH, self.color))?;
                        }
                        if self.line_number {
                            let n = (base + line).to_string();
                            write!(self.out, "{}:", paint(&n, output::LINE_NO, self.color))?;
                        }
                    }
                    self.out.write_all(body.as_bytes())?;
                    self.out.write_all(b"\n")?;
                }
                Entry::Row(row) => self.totals.rows.push(row),
            }
        }
        for (k, n) in std::mem::take(&mut r.counts) {
            *self.totals.counts.entry(k).or_default() += n;
        }
        for (s, n) in std::mem::take(&mut r.seconds) {
            *self.totals.seconds.entry(s).or_default() += n;
        }
        self.totals.untimed += r.untimed;
        cur.matched += r.matched;
        cur.invalid.merge(&r.invalid, base);
        cur.line_base += r.lines;
        self.totals.stats.add(&r.stats);
        self.totals.matched += r.matched;
        // Whole units are printed as they complete: a long search shows progress.
        self.out.flush()
    }

    /// After the output closed: reports the error of the input being printed, if it had one,
    /// on stderr (which may still be open). Returns the number of inputs with an error.
    fn abandon(&mut self) -> u64 {
        if let Some(cur) = self.current.take()
            && let Some((line, message)) = cur.error
        {
            self.totals.errors += 1;
            let e = SourceError {
                path: self.inputs[cur.idx].display_name(),
                line,
                message,
            };
            let _ = writeln!(self.err, "{}: {e}", paint("error", "1;31", self.color_err));
        }
        self.totals.errors
    }

    /// Per-input lines after the input's last unit: `-c`/`-l` output, warnings, errors.
    fn finish_input(&mut self) -> std::io::Result<()> {
        let Some(cur) = self.current.take() else {
            return Ok(());
        };
        self.totals.files += 1;
        let name = self.inputs[cur.idx].display_name();
        match self.mode {
            Mode::Count if self.with_filename && cur.matched > 0 => writeln!(
                self.out,
                "{}:{}",
                paint(&name, output::PATH, self.color),
                cur.matched
            )?,
            Mode::Files if cur.matched > 0 => {
                writeln!(self.out, "{}", paint(&name, output::PATH, self.color))?
            }
            _ => {}
        }
        self.out.flush()?;
        if let Some((line, msg)) = cur.invalid.summary() {
            let w = SourceError {
                path: name.clone(),
                line: Some(line),
                message: msg,
            };
            writeln!(self.err, "{}: {w}", paint("warning", "33", self.color_err))?;
        }
        if let Some((line, message)) = cur.error {
            self.totals.errors += 1;
            let e = SourceError {
                path: name,
                line,
                message,
            };
            writeln!(self.err, "{}: {e}", paint("error", "1;31", self.color_err))?;
        }
        Ok(())
    }

    /// What is printed once all inputs are read: tables, the timeline, the total count.
    fn summary(
        &mut self,
        totals: &Totals,
        fields: &[String],
        count_by: &[String],
        rule: Option<&Remediation>,
    ) -> std::io::Result<()> {
        match self.mode {
            Mode::Count if !self.with_filename => writeln!(self.out, "{}", totals.matched)?,
            Mode::Fields(_) if !totals.rows.is_empty() => {
                write!(self.out, "{}", output::fields_table(fields, &totals.rows))?
            }
            Mode::CountBy(_) if !totals.counts.is_empty() => write!(
                self.out,
                "{}",
                output::count_table(count_by, &totals.counts)
            )?,
            Mode::Timeline(given) => {
                let (min, max) = match (
                    totals.seconds.first_key_value(),
                    totals.seconds.last_key_value(),
                ) {
                    (Some((&a, _)), Some((&z, _))) => (a, z),
                    _ => (0, 0),
                };
                let span = max - min + 1;
                let bucket = match given {
                    Some(b) if span / b < output::MAX_BUCKETS => *b,
                    Some(b) => {
                        let auto = output::auto_bucket(min, max, output::MAX_BUCKETS);
                        writeln!(
                            self.err,
                            "warning: a {} bucket would draw {} lines; using {}",
                            output::duration_word(*b),
                            group_thousands((span / b) as u64),
                            output::duration_word(auto)
                        )?;
                        auto
                    }
                    None => output::auto_bucket(min, max, output::AUTO_BUCKETS),
                };
                let timeline = output::Timeline {
                    seconds: &totals.seconds,
                    bucket,
                    untimed: totals.untimed,
                    fixed_at: rule.and_then(|r| r.fix.fixed_at.map(|t| (t, r.id.as_str()))),
                    color: self.color,
                };
                write!(self.out, "{}", timeline.render())?;
            }
            _ => {}
        }
        Ok(())
    }
}

fn write_stats(err: &mut dyn Write, t: &Totals, seconds: f64) -> std::io::Result<()> {
    let s = &t.stats;
    let mb = s.bytes as f64 / 1e6;
    writeln!(
        err,
        "{} matched events\n{} files, {} lines, {} events, {} invalid, {} untimed, {} decoded\n\
         {:.2} MB in {:.3}s ({:.1} MB/s)",
        group_thousands(t.matched),
        group_thousands(t.files),
        group_thousands(s.records),
        group_thousands(s.events()),
        group_thousands(s.invalid),
        group_thousands(s.untimed),
        group_thousands(s.decoded),
        mb,
        seconds,
        if seconds > 0.0 { mb / seconds } else { 0.0 }
    )
}
