//! The searcher: drives the records of one reader through the cheap checks, the prefilter,
//! the decoder and the matcher, and hands hits to a [`Sink`]. `scan`, `watch` and `grep` share
//! it and differ in their sinks (ripgrep's Searcher/Sink split).

use std::io::{self, Read};

use jiff::Timestamp;
use memchr::memchr;

use crate::decode::{self, DecodeConfig, DecodeError, Event, RecordMeta};
use crate::matcher::{Hit, Matcher, Scratch};
use crate::source::framing::{Item, Record, RecordReader};

/// Receives what the searcher finds.
pub trait Sink {
    /// An event with at least one hit. `hits` lists every rule that matched or had it in scope.
    fn hits(&mut self, record: &Record<'_>, event: &Event, hits: &[Hit]);

    /// Called after each record (hit or not) with the offset just past it; `watch` uses it for
    /// checkpoints. Returning false stops the search (e.g. `grep -m`, a closed pipe).
    fn after_record(&mut self, _record: &Record<'_>) -> bool {
        true
    }
}

/// Why a record was skipped as invalid.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum InvalidKind {
    Utf8,
    Nul,
    Json,
    TooLong,
    Framing,
    Envelope,
}

impl InvalidKind {
    pub fn describe(self) -> &'static str {
        match self {
            InvalidKind::Utf8 => "invalid UTF-8",
            InvalidKind::Nul => "NUL bytes",
            InvalidKind::Json => "malformed JSON",
            InvalidKind::TooLong => "over the line-length cap",
            InvalidKind::Framing => "broken framing",
            InvalidKind::Envelope => "malformed envelope",
        }
    }
}

/// Counts of invalid records by kind, with the first line and message of each kind: enough for
/// one summary line per file instead of one message per bad line.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InvalidTally {
    pub kinds: std::collections::BTreeMap<InvalidKind, (u64, u64, String)>,
}

impl InvalidTally {
    pub fn add(&mut self, kind: InvalidKind, line: u64, message: impl FnOnce() -> String) {
        let e = self
            .kinds
            .entry(kind)
            .or_insert_with(|| (0, line, message()));
        e.0 += 1;
        if line < e.1 {
            e.1 = line;
        }
    }

    pub fn total(&self) -> u64 {
        self.kinds.values().map(|v| v.0).sum()
    }

    /// Adds another tally whose line numbers are offset by `line_base`.
    pub fn merge(&mut self, other: &InvalidTally, line_base: u64) {
        for (k, (n, line, msg)) in &other.kinds {
            let line = line + line_base;
            let e = self
                .kinds
                .entry(*k)
                .or_insert_with(|| (0, line, msg.clone()));
            if line < e.1 || e.0 == 0 {
                e.1 = line;
                e.2 = msg.clone();
            }
            e.0 += n;
        }
    }

    /// `3 invalid records (2 malformed JSON, first at line 17: …; 1 invalid UTF-8 at line 40)`.
    pub fn summary(&self) -> Option<(u64, String)> {
        let total = self.total();
        if total == 0 {
            return None;
        }
        let first_line = self.kinds.values().map(|v| v.1).min().unwrap_or(0);
        let parts: Vec<String> = self
            .kinds
            .iter()
            .map(|(k, (n, line, msg))| {
                let at = if *n == 1 {
                    format!("at line {line}")
                } else {
                    format!("first at line {line}")
                };
                format!("{n} {} {at}: {msg}", k.describe())
            })
            .collect();
        let noun = if total == 1 { "record" } else { "records" };
        Some((
            first_line,
            format!("{total} invalid {noun} skipped ({})", parts.join("; ")),
        ))
    }
}

/// Counters for one search.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Stats {
    /// Records (lines, array elements, joined CRI records), invalid ones included.
    pub records: u64,
    pub bytes: u64,
    pub invalid: u64,
    /// Decoded events without a timestamp.
    pub untimed: u64,
    /// Records the prefilter sent to the decoder.
    pub decoded: u64,
    /// Newest event time among decoded events.
    #[serde(skip)]
    pub newest: Option<Timestamp>,
}

impl Stats {
    pub fn add(&mut self, o: &Stats) {
        self.records += o.records;
        self.bytes += o.bytes;
        self.invalid += o.invalid;
        self.untimed += o.untimed;
        self.decoded += o.decoded;
        self.newest = self.newest.max(o.newest);
    }

    /// Valid records: events, decoded or not.
    pub fn events(&self) -> u64 {
        self.records - self.invalid
    }
}

/// The searcher's settings.
#[derive(Debug, Clone)]
pub struct SearchConfig {
    pub decode: DecodeConfig,
    /// Events outside `[since, until)` are ignored; untimed events too when a bound is set.
    pub since: Option<Timestamp>,
    pub until: Option<Timestamp>,
}

/// Cheap validity checks every record gets, decoded or not, so that `invalid` counts are exact
/// for the damage users see most (binary garbage, truncated JSON) without parsing every line.
fn quick_check(bytes: &[u8]) -> Result<(), (InvalidKind, String)> {
    if let Some(i) = memchr(0, bytes) {
        return Err((InvalidKind::Nul, format!("NUL byte at column {}", i + 1)));
    }
    if let Err(e) = simdutf8::compat::from_utf8(bytes) {
        return Err((
            InvalidKind::Utf8,
            format!("invalid UTF-8 at column {}", e.valid_up_to() + 1),
        ));
    }
    let trimmed = bytes.trim_ascii();
    if trimmed.first() == Some(&b'{') && trimmed.last() != Some(&b'}') {
        return Err((
            InvalidKind::Json,
            "JSON object not closed (truncated line?)".into(),
        ));
    }
    Ok(())
}

fn decode_error_kind(e: &DecodeError) -> InvalidKind {
    match e {
        DecodeError::Utf8(_) => InvalidKind::Utf8,
        DecodeError::Nul(_) => InvalidKind::Nul,
        DecodeError::Json(_) => InvalidKind::Json,
        _ => InvalidKind::Envelope,
    }
}

/// Searches every record of `reader`. Returns an I/O error that ended the stream early (a
/// truncated archive, say) after everything before it was searched.
pub fn search<R: Read, S: Sink>(
    reader: &mut RecordReader<R>,
    matcher: &Matcher,
    cfg: &SearchConfig,
    sink: &mut S,
    stats: &mut Stats,
    invalid: &mut InvalidTally,
) -> io::Result<()> {
    let mut scratch = Scratch::default();
    let mut hits: Vec<Hit> = Vec::new();
    loop {
        let item = match reader.next_item()? {
            None => return Ok(()),
            Some(item) => item,
        };
        match item {
            Item::TooLong { line, len, .. } => {
                stats.records += 1;
                stats.bytes += len;
                stats.invalid += 1;
                invalid.add(InvalidKind::TooLong, line, || format!("{len} bytes"));
            }
            Item::Malformed { line, message } => {
                stats.invalid += 1;
                stats.records += 1;
                invalid.add(InvalidKind::Framing, line, || message);
            }
            Item::Record(rec, meta) => {
                stats.records += 1;
                stats.bytes += rec.bytes.len() as u64 + 1;
                if let Err((kind, msg)) = quick_check(rec.bytes) {
                    stats.invalid += 1;
                    invalid.add(kind, rec.line, || msg);
                } else if matcher.candidates(rec.bytes, &mut scratch) {
                    stats.decoded += 1;
                    handle(
                        &rec, &meta, matcher, cfg, sink, stats, invalid, &scratch, &mut hits,
                    );
                }
                if !sink.after_record(&rec) {
                    return Ok(());
                }
            }
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn handle<S: Sink>(
    rec: &Record<'_>,
    meta: &RecordMeta,
    matcher: &Matcher,
    cfg: &SearchConfig,
    sink: &mut S,
    stats: &mut Stats,
    invalid: &mut InvalidTally,
    scratch: &Scratch,
    hits: &mut Vec<Hit>,
) {
    let event = match decode::decode(rec.bytes, meta, &cfg.decode) {
        Ok(e) => e,
        Err(e) => {
            stats.invalid += 1;
            invalid.add(decode_error_kind(&e), rec.line, || e.to_string());
            return;
        }
    };
    match event.time {
        None => {
            stats.untimed += 1;
            if cfg.since.is_some() || cfg.until.is_some() {
                return;
            }
        }
        Some(t) => {
            stats.newest = stats.newest.max(Some(t));
            if cfg.since.is_some_and(|s| t < s) || cfg.until.is_some_and(|u| t >= u) {
                return;
            }
        }
    }
    hits.clear();
    matcher.evaluate(&event, scratch, |h| hits.push(h));
    if !hits.is_empty() {
        sink.hits(rec, &event, hits);
    }
}
