//! Plumbing shared by the modes: loading rules and config, opening the store, time bounds,
//! and turning stored facts into notification intents.

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use jiff::{SignedDuration, Timestamp};

use crate::config::Config;
use crate::decode::Event;
use crate::diag;
use crate::duration::parse_duration;
use crate::matcher::{CoverageMode, Hit};
use crate::redact::Redactor;
use crate::report::{RemediationReport, summarize};
use crate::rule::{Remediation, load_rules_dir};
use crate::search::Sink;
use crate::sink::channels_for;
use crate::source::framing::Record;
use crate::store::{
    DeliveryStatus, Identity, NewOccurrence, SqliteStore, Store, StoreError, StoredIntent,
};
use crate::track::{IntentDraft, IntentKind, intents_for};

/// The default state file, relative to the working directory.
pub const DEFAULT_STATE: &str = ".recur/state.db";

/// Loads `recur.toml`: the given path (which must exist), else `./recur.toml` when present,
/// else defaults. Diagnostics are rendered to `err`; `None` means the config is invalid.
pub fn load_config(
    path: Option<&Path>,
    color: bool,
    err: &mut dyn Write,
) -> anyhow::Result<Option<Config>> {
    let path = match path {
        Some(p) => {
            if !p.exists() {
                anyhow::bail!("config file {} does not exist", p.display());
            }
            p.to_path_buf()
        }
        None => {
            let p = PathBuf::from("recur.toml");
            if !p.exists() {
                return Ok(Some(Config::default()));
            }
            p
        }
    };
    match Config::load(&path) {
        Ok(c) => Ok(Some(c)),
        Err(diags) => {
            let text = std::fs::read_to_string(&path).unwrap_or_default();
            let sources = vec![crate::rule::load::SourceText {
                path: path.clone(),
                text,
            }];
            write!(err, "{}", diag::render(&diags, &sources, color))?;
            Ok(None)
        }
    }
}

/// Loaded rules and whether some files were invalid (rendered to `err` already).
pub struct Rules {
    pub rules: Arc<[Remediation]>,
    pub invalid_files: usize,
}

/// Loads every rule file in `dir`, rendering diagnostics of invalid ones to `err`.
pub fn load_rules(dir: &Path, color: bool, err: &mut dyn Write) -> anyhow::Result<Rules> {
    let loaded = load_rules_dir(dir)
        .map_err(|e| anyhow::anyhow!("rules directory {}: {e}", dir.display()))?;
    if !loaded.diagnostics.is_empty() {
        write!(
            err,
            "{}",
            diag::render(&loaded.diagnostics, &loaded.sources, color)
        )?;
    }
    let mut files: Vec<_> = loaded.diagnostics.iter().map(|d| d.path.clone()).collect();
    files.sort();
    files.dedup();
    Ok(Rules {
        rules: loaded.remediations.into(),
        invalid_files: files.len(),
    })
}

/// Where the state lives: `--state`/`RECUR_STATE`, else the config's `[state] path`, else
/// `.recur/state.db`.
pub fn state_path(flag: Option<&Path>, config: &Config) -> PathBuf {
    flag.map(Path::to_path_buf)
        .or_else(|| (!config.state.path.as_os_str().is_empty()).then(|| config.state.path.clone()))
        .unwrap_or_else(|| PathBuf::from(DEFAULT_STATE))
}

/// Opens the store for writing (or in memory).
pub fn open_store(no_state: bool, path: &Path) -> Result<Box<dyn Store>, StoreError> {
    Ok(if no_state {
        Box::new(SqliteStore::in_memory()?)
    } else {
        Box::new(SqliteStore::open(path)?)
    })
}

/// A `--since`/`--until` value: an instant, or a duration back from a reference time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeBound {
    At(Timestamp),
    Ago(SignedDuration),
}

impl TimeBound {
    pub fn resolve(self, reference: Timestamp) -> Timestamp {
        match self {
            TimeBound::At(t) => t,
            TimeBound::Ago(d) => reference - d,
        }
    }
}

/// Parses an RFC 3339 time (or a date-time/date read as UTC) or a duration like `2h`.
pub fn parse_time_bound(s: &str) -> Result<TimeBound, String> {
    if let Some(t) = crate::time::parse_time_str(s, &jiff::tz::TimeZone::UTC) {
        return Ok(TimeBound::At(t));
    }
    parse_duration(s)
        .map(TimeBound::Ago)
        .map_err(|e| format!("`{s}` is neither an RFC 3339 time nor a duration: {e}"))
}

/// Options of the intent step.
#[derive(Debug, Clone)]
pub struct IntentOptions {
    /// At most this many new notifications per run (the newest); the older ones fold into one
    /// digest.
    pub max_notifications: usize,
    /// Episodes that opened before this are recorded without notifying.
    pub notify_since: Option<Timestamp>,
}

/// Recomputes every remediation's report from the store, records its episodes (with their
/// identities) and the intents they call for. Returns the reports and the intents created by
/// this call (in due order).
///
/// When more notifications are new than `max_notifications`, the newest ones (by event time)
/// are sent individually — they are what an owner can still act on — and the older ones are
/// recorded without sending and listed, one line each, in a single digest.
pub fn refresh(
    store: &mut dyn Store,
    rules: &[Remediation],
    config: &Config,
    opts: &IntentOptions,
    now: Timestamp,
) -> Result<(Vec<RemediationReport>, Vec<StoredIntent>), StoreError> {
    let mut reports = Vec::with_capacity(rules.len());
    let mut drafts: Vec<(IntentDraft, Vec<String>)> = Vec::new();
    for rule in rules {
        let report = summarize(rule, store, now)?;
        // Episodes first: a run killed before its intents are written finds the same
        // identities next time and writes them then.
        if report.episode_assignment.changed {
            store.record_episodes(
                &rule.id,
                &report.episode_list,
                &report.episode_assignment.merged,
            )?;
        }
        let channels = channels_for(rule, config);
        for d in intents_for(&rule.id, &report.episode_list) {
            if store.intent(&d.key)?.is_none() {
                drafts.push((d, channels.clone()));
            }
        }
        reports.push(report);
    }
    drafts.sort_by(|a, b| (a.0.due, &a.0.key).cmp(&(b.0.due, &b.0.key)));
    let notifiable = drafts
        .iter()
        .filter(|(d, _)| opts.notify_since.is_none_or(|s| d.episode_start >= s))
        .count();
    // Of the notifiable drafts (in due order), the first `fold` are the oldest.
    let mut fold = notifiable.saturating_sub(opts.max_notifications);
    let mut rows = Vec::new();
    let mut folded = Vec::new();
    for (d, ch) in drafts {
        if opts.notify_since.is_some_and(|s| d.episode_start < s) {
            rows.push((d, DeliveryStatus::Suppressed, ch, Vec::new()));
        } else if fold > 0 {
            fold -= 1;
            folded.push(d.clone());
            rows.push((d, DeliveryStatus::Suppressed, ch, Vec::new()));
        } else {
            rows.push((d, DeliveryStatus::Pending, ch, Vec::new()));
        }
    }
    if !folded.is_empty() {
        rows.push(digest(&folded, rules, config));
    }
    let created = store.add_intents(&rows, now)?;
    Ok((reports, created))
}

/// One digest for the folded drafts, keyed by what it folds so a rerun cannot make another.
/// Each line names its remediation (id and title), so the digest lists every one it folds.
fn digest(
    folded: &[IntentDraft],
    rules: &[Remediation],
    config: &Config,
) -> (IntentDraft, DeliveryStatus, Vec<String>, Vec<String>) {
    let keys: Vec<String> = folded.iter().map(|d| d.key.clone()).collect();
    let hash = xxhash_rust::xxh3::xxh3_64(keys.join("\n").as_bytes());
    let lines: Vec<String> = folded
        .iter()
        .map(|d| {
            let title = rules
                .iter()
                .find(|r| r.id == d.remediation)
                .map_or("", |r| r.title.as_str());
            digest_line(d, title)
        })
        .collect();
    let mut channels: Vec<String> = Vec::new();
    for d in folded {
        if let Some(rule) = rules.iter().find(|r| r.id == d.remediation) {
            for c in channels_for(rule, config) {
                if !channels.contains(&c) {
                    channels.push(c);
                }
            }
        }
    }
    let first = folded.first().expect("a digest folds something");
    let last = folded.last().expect("a digest folds something");
    let digest = IntentDraft {
        remediation: first.remediation.clone(),
        kind: IntentKind::Digest,
        key: format!("digest/{hash:016x}"),
        episode_start: first.episode_start,
        count: folded.len() as u64,
        due: last.due,
    };
    (digest, DeliveryStatus::Pending, channels, lines)
}

/// One folded notification in a digest: `ID: title — open of the episode opened … (N errors), key K`.
pub fn digest_line(d: &IntentDraft, title: &str) -> String {
    format!(
        "{}: {} \u{2014} {} of the episode opened {} ({} error{}), key {}",
        d.remediation,
        title,
        d.kind.as_str(),
        crate::report::format_time(d.episode_start),
        d.count,
        if d.count == 1 { "" } else { "s" },
        d.key
    )
}

/// The remediations a digest's lines name, in order of first appearance.
pub fn digest_remediations(lines: &[String]) -> Vec<&str> {
    let mut out: Vec<&str> = Vec::new();
    for l in lines {
        if let Some((id, _)) = l.split_once(": ")
            && !out.contains(&id)
        {
            out.push(id);
        }
    }
    out
}

/// Stored sample size cap.
pub const SAMPLE_BYTES: usize = 2048;

/// What a search found for the store: occurrences, and coverage per (rule, hour bucket): the
/// in-scope events counted (0 when coverage is sampled: presence only) and the newest in-scope
/// event time of the bucket.
#[derive(Debug, Default)]
pub struct Findings {
    pub occurrences: Vec<NewOccurrence>,
    /// The remediation ids and the source name the occurrences share, made once.
    names: Vec<Option<Arc<str>>>,
    source: Option<Arc<str>>,
    pub coverage: CoverageMap,
    /// Sampled coverage per scope group (keyed by the group's first rule) and hour bucket:
    /// a sample covers every rule of its group, so it is noted once here and spread over the
    /// rules by [`Findings::finish`] (a thousand rules share two or three scopes).
    groups: HashMap<(u32, i64), Timestamp, foldhash::fast::FixedState>,
    group_rules: HashMap<u32, Vec<u32>, foldhash::fast::FixedState>,
    /// Samples taken per (rule, hour bucket): see [`FindingsSink`].
    samples: HashMap<(u32, i64), u32, foldhash::fast::FixedState>,
}

/// Coverage per (rule, hour bucket): in-scope events counted (0 when sampled) and the newest.
pub type CoverageMap = HashMap<(u32, i64), (u64, Timestamp), foldhash::fast::FixedState>;

impl Findings {
    /// Spreads the sampled group coverage over the groups' rules; call before reading
    /// `coverage`.
    pub fn finish(&mut self) {
        for ((first, bucket), t) in self.groups.drain() {
            for &rule in &self.group_rules[&first] {
                let e = self.coverage.entry((rule, bucket)).or_insert((0, t));
                e.1 = e.1.max(t);
            }
        }
    }
}

/// The [`Sink`] shared by `scan` and `watch`: turns hits into occurrences and coverage.
pub struct FindingsSink<'a> {
    pub rules: &'a [Remediation],
    /// How records are decoded: a sample of a projected event decodes its record again, whole.
    pub decode: &'a crate::decode::DecodeConfig,
    pub redactor: &'a Redactor,
    pub source: &'a str,
    /// `watch` gives an untimed event its arrival time; `scan` leaves it untimed.
    pub untimed_at: Option<Timestamp>,
    /// Sampled coverage records presence; exact coverage counts every in-scope event.
    pub coverage: CoverageMode,
    /// Redacted samples kept per rule and hour (`[state] samples_per_hour`; `None`: the
    /// rule's `[alert] samples`).
    pub samples_per_hour: Option<u32>,
    /// Where the records are read from, for events without an id field: the file's device and
    /// inode and its first bytes (`watch`; see [`crate::mode::watch::record_identity`]).
    /// `None` (`scan`): such an event is known by a hash of its bytes.
    pub position: Option<((u64, u64), &'a [u8])>,
    pub out: &'a mut Findings,
}

/// An occurrence's identity: the event's id field, else its time and a hash of the record's
/// bytes ([`Identity::of_record`]).
pub fn identity(event: &Event, bytes: &[u8]) -> Identity {
    match &event.id {
        Some(id) => Identity::Text(format!("id:{id}").into()),
        None => Identity::of_record(event.time, bytes),
    }
}

impl FindingsSink<'_> {
    /// A record's occurrence identity: its event's id field, else where it is (`watch`) or a
    /// hash of its bytes (`scan`).
    fn identity_of(&self, event: &Event, record: &Record<'_>) -> Identity {
        match (&event.id, self.position) {
            (None, Some((file, head))) => Identity::Text(
                crate::mode::watch::record_identity(file, head, record.end_offset).into(),
            ),
            _ => identity(event, record.bytes),
        }
    }

    /// The shared name of a rule's remediation id.
    fn name(&mut self, rule: usize) -> Arc<str> {
        let names = &mut self.out.names;
        if names.len() <= rule {
            names.resize(rule + 1, None);
        }
        names[rule]
            .get_or_insert_with(|| self.rules[rule].id.as_str().into())
            .clone()
    }

    fn cover(&mut self, rule: usize, t: Timestamp) {
        let bucket = t.as_second().div_euclid(3600) * 3600;
        let e = self
            .out
            .coverage
            .entry((rule as u32, bucket))
            .or_insert((0, t));
        if self.coverage == CoverageMode::Exact {
            e.0 += 1;
        }
        e.1 = e.1.max(t);
    }
}

impl Sink for FindingsSink<'_> {
    fn hits(&mut self, record: &Record<'_>, event: &Event, hits: &[Hit]) {
        let time = event.time.or(self.untimed_at);
        // One identity per record, however many rules it is an occurrence of.
        let mut id: Option<Identity> = None;
        for h in hits {
            let rule = match h {
                Hit::Occurrence { rule, .. } | Hit::InScope { rule } => *rule,
            };
            // Coverage for every rule, fixed or open: a fix recorded later must be verifiable
            // from logs already read.
            if let Some(t) = time {
                self.cover(rule, t);
            }
            if let Hit::Occurrence { rule, signature } = *h {
                let identity = id
                    .get_or_insert_with(|| self.identity_of(event, record))
                    .clone();
                // A notification shows a few samples of its episode; an episode starts in
                // some hour, so the first few occurrences of every hour keep a redacted
                // sample and the rest none: a busy hour of a frequent error costs no
                // redaction and little storage per occurrence.
                let bucket = time.map_or(i64::MIN, |t| t.as_second().div_euclid(3600));
                let taken = self.out.samples.entry((rule as u32, bucket)).or_insert(0);
                let cap = self
                    .samples_per_hour
                    .unwrap_or(self.rules[rule].alert.samples.max(1));
                let sample = if *taken < cap {
                    *taken += 1;
                    // A projected event lacks the fields no rule reads: a sample shows the
                    // whole event (its record was decoded with the envelope's default meta,
                    // see `decode_keeping`).
                    let whole = event
                        .projected
                        .then(|| {
                            crate::decode::decode(record.bytes, &Default::default(), self.decode)
                                .ok()
                        })
                        .flatten();
                    self.redactor
                        .sample(whole.as_ref().unwrap_or(event), SAMPLE_BYTES)
                } else {
                    String::new()
                };
                let remediation = self.name(rule);
                let source = self
                    .out
                    .source
                    .get_or_insert_with(|| self.source.into())
                    .clone();
                self.out.occurrences.push(NewOccurrence {
                    remediation,
                    identity,
                    time,
                    signature: signature as u32,
                    source,
                    line: record.line,
                    sample,
                });
            }
        }
    }

    /// Sampled coverage only: in exact mode the matcher reports every in-scope event as a hit.
    fn covered(&mut self, event: &Event, rules: &[usize]) {
        let Some(t) = event.time.or(self.untimed_at) else {
            return;
        };
        let Some(&first) = rules.first() else {
            return;
        };
        let bucket = t.as_second().div_euclid(3600) * 3600;
        let e = self.out.groups.entry((first as u32, bucket)).or_insert(t);
        *e = (*e).max(t);
        self.out
            .group_rules
            .entry(first as u32)
            .or_insert_with(|| rules.iter().map(|&r| r as u32).collect());
    }
}

#[cfg(test)]
#[path = "common/tests.rs"]
mod tests;
