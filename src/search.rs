//! The searcher: drives the records of one reader through the cheap checks, the prefilter,
//! the decoder and the matcher, and hands hits to a [`Sink`]. `scan`, `watch` and `grep` share
//! it and differ in their sinks (ripgrep's Searcher/Sink split).

use std::io::{self, Read};

use jiff::Timestamp;
use memchr::memchr;

use crate::decode::{self, DecodeConfig, DecodeError, Event, RecordMeta};
use crate::matcher::{CoverageGroup, CoverageMode, Hit, Matcher, Scratch};
use crate::source::framing::{Chunk, Item, LineBlock, Record, RecordReader};

/// Receives what the searcher finds.
pub trait Sink {
    /// An event with at least one hit. `hits` lists every rule that matched or had it in scope.
    fn hits(&mut self, record: &Record<'_>, event: &Event, hits: &[Hit]);

    /// A sampled in-scope event of the given rules, with a time (coverage; see
    /// [`CoverageMode`]).
    fn covered(&mut self, _event: &Event, _rules: &[usize]) {}

    /// Called after each record the searcher decoded, and after the last record of each block
    /// of lines, with the offset just past it; `watch` uses it for checkpoints. Returning false
    /// stops the search (e.g. `grep -m`, a closed pipe, a signal).
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

    /// Like [`InvalidTally::add`] for records met in stream order: the line number is worked
    /// out only for the first record of each kind (later ones cannot have a smaller one).
    pub fn add_in_order(
        &mut self,
        kind: InvalidKind,
        line: impl FnOnce() -> u64,
        message: impl FnOnce() -> String,
    ) {
        match self.kinds.get_mut(&kind) {
            Some(e) => e.0 += 1,
            None => {
                self.kinds.insert(kind, (1, line(), message()));
            }
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
    /// Decode candidates with only these top-level fields (`scan`, `watch`: a sink that needs
    /// the whole event decodes it again); `None` decodes whole (`grep` prints events).
    pub keep: Option<crate::decode::Keep>,
    /// Events outside `[since, until)` are ignored; untimed events too when a bound is set.
    pub since: Option<Timestamp>,
    pub until: Option<Timestamp>,
}

impl SearchConfig {
    /// Decodes a record as this search does: with only the kept fields when there is a
    /// projection. `clean`: the record is a line of a block checked whole (no NUL, valid
    /// UTF-8; see [`Searcher::block`]), so it need not be checked again.
    fn decode_record(
        &self,
        bytes: &[u8],
        meta: &RecordMeta,
        clean: bool,
    ) -> Result<Event, DecodeError> {
        match &self.keep {
            Some(keep) if clean => {
                debug_assert!(std::str::from_utf8(bytes).is_ok() && !bytes.contains(&0));
                // SAFETY: a clean block is valid UTF-8 as a whole and cut at newlines, so each
                // of its lines is too.
                let line = unsafe { std::str::from_utf8_unchecked(bytes) };
                // As `decode::validate` does: a BOM opening a record is not part of it.
                let line = line.strip_prefix('\u{feff}').unwrap_or(line);
                decode::decode_keeping_valid(line, meta, &self.decode, keep)
            }
            Some(keep) => decode::decode_keeping(bytes, meta, &self.decode, keep),
            None => decode::decode(bytes, meta, &self.decode),
        }
    }

    fn in_range(&self, t: Option<Timestamp>) -> bool {
        match t {
            None => self.since.is_none() && self.until.is_none(),
            Some(t) => self.since.is_none_or(|s| t >= s) && self.until.is_none_or(|u| t < u),
        }
    }
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
    shape_check(bytes)
}

/// A record that starts like a JSON object must end like one.
fn shape_check(bytes: &[u8]) -> Result<(), (InvalidKind, String)> {
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

/// How many records one sampling probe may try before giving up on a scope for that stretch
/// of input: bounds the decoding that a scope whose literal is common but which rarely holds
/// can cost.
const SAMPLE_ATTEMPTS: usize = 32;

/// Where records come one at a time (JSON arrays, CRI, damaged blocks), coverage is sampled
/// over windows of this many records (or [`WINDOW_BYTES`]), kept in memory until the window
/// ends.
const WINDOW_RECORDS: usize = 4096;
const WINDOW_BYTES: usize = 4 << 20;

/// Records of the current window that some coverage group may sample, plus its first and
/// last record (for the newest time).
#[derive(Default)]
struct Window {
    arena: Vec<u8>,
    /// `(start, end)` in `arena`, and the record's envelope facts.
    records: Vec<(usize, usize, RecordMeta)>,
    /// Per group: indices into `records` that show the group's requirement.
    per_group: Vec<Vec<u32>>,
    first: Option<usize>,
    last: Option<usize>,
    /// The record kept only as a possible last one (overwritten by the next such record).
    scratch_last: Option<usize>,
}

impl Window {
    fn keep(&mut self, bytes: &[u8], meta: &RecordMeta) -> usize {
        let start = self.arena.len();
        self.arena.extend_from_slice(bytes);
        self.records.push((start, self.arena.len(), meta.clone()));
        self.scratch_last = None;
        self.records.len() - 1
    }

    /// Keeps a record that matters only if it stays the last: it replaces the previous such
    /// record when nothing was kept after it, so memory does not grow with them.
    fn keep_last(&mut self, bytes: &[u8], meta: &RecordMeta) -> usize {
        if let Some(i) = self.scratch_last
            && i + 1 == self.records.len()
        {
            let start = self.records[i].0;
            self.arena.truncate(start);
            self.records.pop();
        }
        let i = self.keep(bytes, meta);
        self.scratch_last = Some(i);
        i
    }
}

/// The searcher's working state for one stream.
struct Searcher<'a> {
    matcher: &'a Matcher,
    cfg: &'a SearchConfig,
    max_record: usize,
    sampled: bool,
    scratch: Scratch,
    hits: Vec<Hit>,
    cands: Vec<(usize, u32)>,
    bad: Vec<usize>,
    window: Window,
    cache: LineCache,
}

/// Samples a stretch of candidate records for one scope: the first and the last in-scope
/// record, then, wherever two samples lie more than an hour apart, the middle, until no gap of
/// a whole hour is left between neighbours. For input in time order (either way) this finds
/// every hour with in-scope events and the latest in-scope time, with a few decodes per block
/// when the block spans one hour (a busy log) and more only where the log is sparse (which is
/// where decoding is cheap anyway).
///
/// `find(from, to, forward)` finds the first (or last) in-scope record at positions in
/// `[from, to)`, hands it to the sink, and returns `(start, end, hour)`; positions are opaque
/// to this function.
fn bisect_sample(
    len: usize,
    find: &mut dyn FnMut(usize, usize, bool) -> Option<(usize, usize, i64)>,
) {
    let Some((_, fe, first)) = find(0, len, true) else {
        return;
    };
    let Some((ls, _, last)) = find(fe, len, false) else {
        return;
    };
    let mut stack = vec![(fe, ls, first, last)];
    while let Some((a, b, ha, hb)) = stack.pop() {
        if b <= a || ha.abs_diff(hb) <= 1 {
            continue;
        }
        let m = a + (b - a) / 2;
        if let Some((s, e, h)) = find(m, b, true) {
            stack.push((a, s, ha, h));
            stack.push((e, b, h, hb));
        } else if let Some((s, e, h)) = find(a, m, false) {
            stack.push((a, s, ha, h));
            stack.push((e, m, h, hb));
        }
    }
}

fn hour_of(ev: &Event) -> i64 {
    ev.time.map_or(0, |t| t.as_second().div_euclid(3600))
}

/// Lines of one block decoded for sampling, by start: the first and last lines serve every
/// scope group and the newest time, and are decoded once. Sampling asks for times and scope
/// fields only, so lines are decoded as candidates are, with the search's projection.
#[derive(Default)]
struct LineCache {
    lines: Vec<(usize, Option<Event>)>,
}

impl LineCache {
    /// The event of the line `bytes[s..e]` of a clean block (see [`Searcher::block`]).
    fn get(&mut self, bytes: &[u8], s: usize, e: usize, cfg: &SearchConfig) -> Option<&Event> {
        let i = match self.lines.iter().position(|(at, _)| *at == s) {
            Some(i) => i,
            None => {
                let ev = cfg
                    .decode_record(strip_cr(&bytes[s..e]), &RecordMeta::default(), true)
                    .ok();
                self.lines.push((s, ev));
                self.lines.len() - 1
            }
        };
        self.lines[i].1.as_ref()
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
    let sampled = matcher.coverage_mode() == CoverageMode::Sampled;
    // The reader finds the prefilter's needle on its pass over each block, when there is one.
    reader.set_anchor(matcher.anchor());
    let mut s = Searcher {
        matcher,
        cfg,
        max_record: reader.max_record(),
        sampled,
        scratch: Scratch::default(),
        hits: Vec::new(),
        cands: Vec::new(),
        bad: Vec::new(),
        window: Window {
            per_group: vec![Vec::new(); matcher.groups().len()],
            ..Window::default()
        },
        cache: LineCache::default(),
    };
    let result = s.run(reader, sink, stats, invalid);
    s.end_window(sink, stats);
    result
}

impl Searcher<'_> {
    fn run<R: Read, S: Sink>(
        &mut self,
        reader: &mut RecordReader<R>,
        sink: &mut S,
        stats: &mut Stats,
        invalid: &mut InvalidTally,
    ) -> io::Result<()> {
        loop {
            let chunk = match reader.next_chunk()? {
                None => return Ok(()),
                Some(c) => c,
            };
            let go_on = match chunk {
                Chunk::Lines(block) => {
                    stats.records += block.lines;
                    stats.bytes += block.bytes.len() as u64;
                    self.block(&block, sink, stats, invalid)
                }
                Chunk::Item(Item::TooLong { line, len, .. }) => {
                    stats.records += 1;
                    stats.bytes += len;
                    stats.invalid += 1;
                    invalid.add(InvalidKind::TooLong, line, || format!("{len} bytes"));
                    true
                }
                Chunk::Item(Item::Malformed { line, message }) => {
                    stats.invalid += 1;
                    stats.records += 1;
                    invalid.add(InvalidKind::Framing, line, || message);
                    true
                }
                Chunk::Item(Item::Record(rec, meta)) => {
                    stats.records += 1;
                    stats.bytes += rec.bytes.len() as u64 + 1;
                    self.one(&rec, &meta, sink, stats, invalid)
                }
            };
            if !go_on {
                return Ok(());
            }
        }
    }

    /// One record on its own: checks, candidates, decoding, evaluation, and (in windows)
    /// coverage sampling. Returns false when the sink asks to stop.
    fn one<S: Sink>(
        &mut self,
        rec: &Record<'_>,
        meta: &RecordMeta,
        sink: &mut S,
        stats: &mut Stats,
        invalid: &mut InvalidTally,
    ) -> bool {
        if let Err((kind, msg)) = quick_check(rec.bytes) {
            stats.invalid += 1;
            invalid.add(kind, rec.line, || msg);
            return true;
        }
        if self.matcher.candidates(rec.bytes, &mut self.scratch)
            && !self.decode_candidate(rec, meta, false, sink, stats, invalid)
        {
            return false;
        }
        self.offer(rec.bytes, meta, sink, stats);
        true
    }

    /// Decodes a candidate (the scratch holds its rules), evaluates it or counts it invalid,
    /// and tells the sink the record is done; false when the sink wants no more.
    /// `clean`: the record is a line of a block checked whole (no NUL, valid UTF-8; see
    /// [`Searcher::block`]), so it need not be checked again.
    fn decode_candidate<S: Sink>(
        &mut self,
        rec: &Record<'_>,
        meta: &RecordMeta,
        clean: bool,
        sink: &mut S,
        stats: &mut Stats,
        invalid: &mut InvalidTally,
    ) -> bool {
        stats.decoded += 1;
        match self.cfg.decode_record(rec.bytes, meta, clean) {
            Ok(e) => self.evaluate(rec, &e, sink, stats),
            Err(e) => {
                stats.invalid += 1;
                invalid.add(decode_error_kind(&e), rec.line, || e.to_string());
            }
        }
        sink.after_record(rec)
    }

    /// Evaluates a decoded candidate and hands its hits to the sink.
    fn evaluate<S: Sink>(
        &mut self,
        rec: &Record<'_>,
        event: &Event,
        sink: &mut S,
        stats: &mut Stats,
    ) {
        match event.time {
            None => stats.untimed += 1,
            Some(t) => stats.newest = stats.newest.max(Some(t)),
        }
        if !self.cfg.in_range(event.time) {
            return;
        }
        self.hits.clear();
        let hits = &mut self.hits;
        self.matcher
            .evaluate(event, &self.scratch, |h| hits.push(h));
        if !self.hits.is_empty() {
            sink.hits(rec, event, &self.hits);
        }
    }

    /// Coverage sampling for records that come one at a time: keep the record for the end
    /// of its window if some group may sample it.
    fn offer<S: Sink>(&mut self, bytes: &[u8], meta: &RecordMeta, sink: &mut S, stats: &mut Stats) {
        if self.matcher.coverage_mode() == CoverageMode::Off {
            return;
        }
        let w = &mut self.window;
        let mut kept = None;
        if self.sampled {
            for (g, group) in self.matcher.groups().iter().enumerate() {
                if group.probe.as_ref().is_none_or(|p| p.shows(bytes)) {
                    let i = *kept.get_or_insert_with(|| w.keep(bytes, meta));
                    w.per_group[g].push(i as u32);
                }
            }
        }
        // The window's first and last records give the newest time (logs are in time order,
        // one way or the other).
        let i = kept.unwrap_or_else(|| {
            if w.first.is_none() || w.records.is_empty() {
                w.keep(bytes, meta)
            } else {
                w.keep_last(bytes, meta)
            }
        });
        w.first.get_or_insert(i);
        w.last = Some(i);
        if w.records.len() >= WINDOW_RECORDS || w.arena.len() >= WINDOW_BYTES {
            self.end_window(sink, stats);
        }
    }

    /// Ends a window of single records: samples coverage and the newest time over what was
    /// kept, then starts afresh.
    fn end_window<S: Sink>(&mut self, sink: &mut S, stats: &mut Stats) {
        let w = std::mem::take(&mut self.window);
        let decode_at = |i: usize| {
            let (s, e, meta) = &w.records[i];
            decode::decode(&w.arena[*s..*e], meta, &self.cfg.decode).ok()
        };
        for i in [w.first, w.last].into_iter().flatten() {
            if let Some(ev) = decode_at(i) {
                stats.newest = stats.newest.max(ev.time);
            }
        }
        for (g, group) in self.matcher.groups().iter().enumerate() {
            let list = &w.per_group[g];
            let mut find = |from: usize, to: usize, forward: bool| {
                let mut step = |k: usize| {
                    let ev = decode_at(list[k] as usize).filter(|ev| {
                        ev.time.is_some() && group.holds(ev) && self.cfg.in_range(ev.time)
                    })?;
                    sink.covered(&ev, &group.rules);
                    Some((k, k + 1, hour_of(&ev)))
                };
                if forward {
                    (from..to).take(SAMPLE_ATTEMPTS).find_map(&mut step)
                } else {
                    (from..to).rev().take(SAMPLE_ATTEMPTS).find_map(&mut step)
                }
            };
            bisect_sample(list.len(), &mut find);
        }
        let mut per_group = w.per_group;
        per_group.iter_mut().for_each(Vec::clear);
        let mut arena = w.arena;
        arena.clear();
        self.window = Window {
            per_group,
            arena,
            ..Window::default()
        };
    }

    /// A block of whole lines: whole-block checks first, then only the lines that show a
    /// requirement are cut out and decoded.
    fn block<S: Sink>(
        &mut self,
        b: &LineBlock<'_>,
        sink: &mut S,
        stats: &mut Stats,
        invalid: &mut InvalidTally,
    ) -> bool {
        let bytes = b.bytes;
        let clean = !b.shape.nul
            && (!b.shape.non_ascii || simdutf8::basic::from_utf8(bytes).is_ok())
            && (bytes.len() <= self.max_record || !has_long_line(bytes, self.max_record));
        if !clean || self.matcher.always_candidate() {
            return self.block_by_record(b, sink, stats, invalid);
        }
        // Broken JSON among the lines that do not end with `}`.
        self.bad.clear();
        for &nl in b.suspects {
            let nl = nl as usize;
            let s = line_start(bytes, nl);
            if let Err((kind, msg)) = shape_check(&bytes[s..nl]) {
                stats.invalid += 1;
                invalid.add_in_order(kind, || b.first_line + count_lines(&bytes[..s]), || msg);
                self.bad.push(s);
            }
        }
        // Candidates, in line order.
        self.cands.clear();
        let found = b.anchor_hits;
        self.matcher
            .block_candidates(bytes, b.shape.backslash, found, &mut self.cands);
        self.cands.sort_unstable();
        let mut i = 0;
        let mut counted_to = 0usize;
        let mut line_no = b.first_line;
        let mut mark = 0usize;
        while i < self.cands.len() {
            let (p, _) = self.cands[i];
            let (s, e) = line_bounds(bytes, p);
            self.matcher.begin(&mut self.scratch);
            while i < self.cands.len() && self.cands[i].0 < e {
                self.matcher.add(&mut self.scratch, self.cands[i].1);
                i += 1;
            }
            if self.bad.binary_search(&s).is_ok() {
                continue;
            }
            // From the last line-count mark before the line, when it is past the last count.
            while mark < b.line_marks.len() && b.line_marks[mark].0 as usize <= s {
                mark += 1;
            }
            if let Some(&(at, n)) = mark.checked_sub(1).map(|m| &b.line_marks[m])
                && at as usize > counted_to
            {
                counted_to = at as usize;
                line_no = b.first_line + n as u64;
            }
            line_no += count_lines(&bytes[counted_to..s]);
            counted_to = s;
            let rec = Record {
                bytes: strip_cr(&bytes[s..e]),
                line: line_no,
                end_offset: b.start_offset + e as u64 + 1,
                terminated: true,
            };
            if !self.decode_candidate(&rec, &RecordMeta::default(), true, sink, stats, invalid) {
                return false;
            }
        }
        let mut cache = std::mem::take(&mut self.cache);
        cache.lines.clear();
        if self.sampled {
            for group in self.matcher.groups() {
                self.sample_block(bytes, group, &mut cache, sink);
            }
        }
        self.newest_in_block(bytes, &mut cache, stats);
        self.cache = cache;
        let last = Record {
            bytes: &[],
            line: b.first_line + b.lines - 1,
            end_offset: b.start_offset + bytes.len() as u64,
            terminated: true,
        };
        sink.after_record(&last)
    }

    /// A block that needs each line looked at on its own (invalid bytes in it, an over-long
    /// line, a rule that no literal can find).
    fn block_by_record<S: Sink>(
        &mut self,
        b: &LineBlock<'_>,
        sink: &mut S,
        stats: &mut Stats,
        invalid: &mut InvalidTally,
    ) -> bool {
        let bytes = b.bytes;
        let mut s = 0;
        for (line, nl) in (b.first_line..).zip(memchr::memchr_iter(b'\n', bytes)) {
            let rec = Record {
                bytes: strip_cr(&bytes[s..nl]),
                line,
                end_offset: b.start_offset + nl as u64 + 1,
                terminated: true,
            };
            // The same cap, measured the same way, as the reader applies to single lines.
            if nl - s > self.max_record {
                let len = nl - s;
                stats.invalid += 1;
                invalid.add(InvalidKind::TooLong, line, || format!("{len} bytes"));
            } else if !self.one(&rec, &RecordMeta::default(), sink, stats, invalid) {
                return false;
            }
            s = nl + 1;
        }
        true
    }

    /// Samples coverage of one group over a block (see [`bisect_sample`]).
    fn sample_block<S: Sink>(
        &self,
        bytes: &[u8],
        group: &CoverageGroup,
        cache: &mut LineCache,
        sink: &mut S,
    ) {
        let cfg = self.cfg;
        let mut usable = |s: usize, e: usize| -> Option<i64> {
            if self.bad.binary_search(&s).is_ok() {
                return None;
            }
            if !group
                .probe
                .as_ref()
                .is_none_or(|p| p.shows(strip_cr(&bytes[s..e])))
            {
                return None;
            }
            let ev = cache.get(bytes, s, e, cfg)?;
            if ev.time.is_some() && group.holds(ev) && cfg.in_range(ev.time) {
                sink.covered(ev, &group.rules);
                Some(hour_of(ev))
            } else {
                None
            }
        };
        let mut find = |from: usize, to: usize, forward: bool| -> Option<(usize, usize, i64)> {
            if forward {
                let mut at = from;
                for _ in 0..SAMPLE_ATTEMPTS {
                    let p = match &group.probe {
                        Some(probe) => probe.next(bytes, at)?,
                        None => at,
                    };
                    if p >= to {
                        return None;
                    }
                    let (s, e) = line_bounds(bytes, p);
                    if let Some(h) = usable(s, e) {
                        return Some((s, e + 1, h));
                    }
                    at = e + 1;
                }
            } else {
                let mut at = to;
                for _ in 0..SAMPLE_ATTEMPTS {
                    if at <= from {
                        return None;
                    }
                    let p = match &group.probe {
                        Some(probe) => probe.prev(bytes, at)?,
                        None => at - 1,
                    };
                    if p < from {
                        return None;
                    }
                    let (s, e) = line_bounds(bytes, p);
                    if let Some(h) = usable(s, e) {
                        return Some((s, e + 1, h));
                    }
                    at = s;
                }
            }
            None
        };
        bisect_sample(bytes.len(), &mut find);
    }

    /// The newest event time of a block, from its first and last valid timed lines (logs are
    /// written in time order, ascending or, in some exports, descending; what candidates
    /// decoded counts too).
    fn newest_in_block(&self, bytes: &[u8], cache: &mut LineCache, stats: &mut Stats) {
        let mut newest = |s: usize, e: usize| -> bool {
            if self.bad.binary_search(&s).is_ok() {
                return false;
            }
            match cache.get(bytes, s, e, self.cfg) {
                Some(ev) if ev.time.is_some() => {
                    stats.newest = stats.newest.max(ev.time);
                    true
                }
                _ => false,
            }
        };
        let mut lines = memchr::memchr_iter(b'\n', bytes);
        let mut s = 0;
        for _ in 0..4 {
            let Some(e) = lines.next() else { break };
            if newest(s, e) {
                break;
            }
            s = e + 1;
        }
        let mut to = bytes.len();
        for _ in 0..4 {
            if to == 0 {
                return;
            }
            let (s, e) = line_bounds(bytes, to - 1);
            if newest(s, e) {
                return;
            }
            to = s;
        }
    }
}

/// Start of the line that holds position `p`.
fn line_start(bytes: &[u8], p: usize) -> usize {
    memchr::memrchr(b'\n', &bytes[..p]).map_or(0, |i| i + 1)
}

/// `(start, end)` of the line that holds position `p`; `end` is its newline.
fn line_bounds(bytes: &[u8], p: usize) -> (usize, usize) {
    let s = line_start(bytes, p);
    let e = memchr(b'\n', &bytes[p..]).map_or(bytes.len(), |i| p + i);
    (s, e)
}

fn strip_cr(line: &[u8]) -> &[u8] {
    line.strip_suffix(b"\r").unwrap_or(line)
}

fn count_lines(bytes: &[u8]) -> u64 {
    memchr::memchr_iter(b'\n', bytes).count() as u64
}

fn has_long_line(bytes: &[u8], cap: usize) -> bool {
    let mut s = 0;
    for nl in memchr::memchr_iter(b'\n', bytes) {
        if nl - s > cap {
            return true;
        }
        s = nl + 1;
    }
    false
}
