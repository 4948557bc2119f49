//! Store stage: the durable memory of recur.
//!
//! Everything goes through the narrow [`Store`] trait so that another backend (a shared
//! PostgreSQL for a fleet of sidecars) can replace the embedded SQLite file without touching
//! the stages around it. `--no-state` uses the same SQLite code on an in-memory database, so
//! a one-off run follows exactly the logic of a tracked one.

mod rows;
pub mod sqlite;

use std::fmt;
use std::sync::Arc;

use jiff::Timestamp;
use serde::Serialize;

use crate::track::{IntentDraft, IntentKind};

pub use sqlite::SqliteStore;

/// Why the store refused or failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("state database {path}: {message}")]
    Open { path: String, message: String },
    #[error(
        "state database {path} is locked by another recur process (waited {waited_ms} ms); try again when it is done"
    )]
    Locked { path: String, waited_ms: u64 },
    #[error(
        "state database {path} has schema version {found}, newer than this recur understands ({supported}); upgrade recur or point --state elsewhere"
    )]
    TooNew {
        path: String,
        found: i64,
        supported: i64,
    },
    #[error(
        "state database {path} is not a recur state file or is corrupt ({message}); move it aside to start afresh (history will be lost) or restore a backup"
    )]
    Corrupt { path: String, message: String },
    #[error("state database {path}: {source}")]
    Sql {
        path: String,
        source: rusqlite::Error,
    },
}

/// One occurrence as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StoredOccurrence {
    pub remediation: String,
    /// `id:<value>` from an id field, or `h:<hash>` of the record bytes.
    pub identity: String,
    pub time: Option<Timestamp>,
    pub signature: u32,
    pub source: String,
    pub line: u64,
    /// Redacted, size-capped text of the event.
    pub sample: String,
}

/// An occurrence's identity: what makes two readings of one event the same occurrence.
///
/// The order is the store's key order (text before hashes, then bytes), so that rows sorted by
/// it are inserted in the order of the primary key.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Identity {
    /// `id:<value>` from an id field, or where a tailed record is (`f:…`, see
    /// [`crate::mode::watch::record_identity`]).
    Text(Box<str>),
    /// A record known by its bytes (see [`Identity::of_record`]), written `h:<32 hex digits>`.
    /// Stored as 16 bytes: the key of every occurrence row and of both its indexes, so its
    /// size is most of what inserting an occurrence costs.
    Hash(u128),
}

impl Identity {
    /// The identity of a record without an id field: its event time (unix ns, the sign bit
    /// flipped so that the numbers sort as the times do; 0 when untimed) in the high 64 bits,
    /// the low 64 bits of the xxh3-128 hash of its bytes below. The time is a function of the
    /// bytes, so a record read again has the same identity; and the key it gives the stored
    /// rows follows the event times: the occurrences of a log, written in time order, are
    /// appended to the store's B-trees instead of landing on random pages (a scan storing
    /// 163,000 occurrences spent a quarter less on storing them). Schema version 5 rewrote the
    /// whole-hash identities of earlier versions to this form (their time is in the row).
    pub fn of_record(time: Option<Timestamp>, bytes: &[u8]) -> Identity {
        Identity::from_parts(time, xxhash_rust::xxh3::xxh3_128(bytes) as u64)
    }

    /// The identity of a record with this time and this hash (low 64 bits of its xxh3-128).
    pub fn from_parts(time: Option<Timestamp>, hash: u64) -> Identity {
        let t = time.map_or(0, |t| {
            let ns = t.as_nanosecond().clamp(i64::MIN as i128, i64::MAX as i128) as i64;
            (ns as u64) ^ (1 << 63)
        });
        Identity::Hash((t as u128) << 64 | hash as u128)
    }

    /// Parses the written form (`h:<32 hex>` is a hash, anything else text).
    pub fn parse(s: &str) -> Identity {
        match s.strip_prefix("h:") {
            // Lower-case only, as written: every identity reads back as it was written.
            Some(hex)
                if hex.len() == 32
                    && hex
                        .bytes()
                        .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) =>
            {
                Identity::Hash(u128::from_str_radix(hex, 16).unwrap_or_default())
            }
            _ => Identity::Text(s.into()),
        }
    }
}

impl From<&str> for Identity {
    fn from(s: &str) -> Identity {
        Identity::parse(s)
    }
}

impl From<String> for Identity {
    fn from(s: String) -> Identity {
        Identity::parse(&s)
    }
}

impl fmt::Display for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Identity::Text(s) => f.write_str(s),
            Identity::Hash(h) => write!(f, "h:{h:032x}"),
        }
    }
}

/// An occurrence as a batch brings it to the store. Cheap to make: a scan at a 5% match rate
/// makes one for every twentieth line, so the names it shares with its neighbours (the
/// remediation, the source) are shared, not copied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewOccurrence {
    pub remediation: Arc<str>,
    pub identity: Identity,
    pub time: Option<Timestamp>,
    pub signature: u32,
    pub source: Arc<str>,
    pub line: u64,
    /// Redacted, size-capped text of the event; empty when this occurrence keeps none.
    pub sample: String,
}

/// In-scope events of one input in one hour bucket. `count` is 0 for a sampled bucket, where
/// only presence and the newest time are known (see `CoverageMode`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CoverageCell {
    pub remediation: String,
    /// Unix seconds of the bucket's start (hour buckets).
    pub bucket: i64,
    /// Key of the input the events came from (see [`InputRecord::key`]).
    pub input: String,
    pub count: u64,
    pub max_time: Timestamp,
}

/// An input fully processed with the given scan parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InputRecord {
    /// Content key: a hash of the first bytes (stable while a file grows).
    pub key: String,
    pub path: String,
    pub size: u64,
    /// Hash of the last bytes: two files with the same head and size but another tail differ.
    pub tail: String,
    /// Hash of the rules and parameters the input was scanned with.
    pub params: String,
}

/// The whole input a batch's occurrences were read from (`scan` commits one input per batch).
///
/// Occurrences remember it, so that re-reading the input later *replaces* what it contributed:
/// an occurrence the current rules or decode settings no longer produce disappears, and one
/// whose time or signature changed is updated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    /// The input's content key (see [`InputRecord::key`]).
    pub key: String,
    pub size: u64,
    pub tail: String,
    /// The input's name, as occurrences' `source`.
    pub path: String,
    /// What to replace; `None` only adds (an input that failed part-way).
    pub replace: Option<Replace>,
}

/// The part of an input's earlier contribution that a re-read replaces.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Replace {
    /// The remediations the input was matched against (retired ones keep their history).
    pub remediations: Vec<String>,
    /// The event-time range read (`--since`/`--until`); untimed occurrences only when unbounded.
    pub since: Option<Timestamp>,
    pub until: Option<Timestamp>,
}

/// A tail checkpoint (`watch`): where to resume a file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Checkpoint {
    pub path: String,
    pub dev: u64,
    pub inode: u64,
    /// Hash of the file's first bytes (identity across renames).
    pub head_hash: String,
    pub head_len: u64,
    pub offset: u64,
    /// Line number of the next record.
    pub line: u64,
    /// Hash of the bytes just before `offset` (detects truncate-and-rewrite).
    pub tail_hash: String,
    /// The file's size at the last look (0 when unknown): a lower bound of what is lost when
    /// the file is gone before it was read to its end.
    pub size: u64,
}

/// Everything one batch of input changes, committed in one transaction.
#[derive(Debug, Clone, Default)]
pub struct Batch {
    pub occurrences: Vec<NewOccurrence>,
    pub coverage: Vec<CoverageCell>,
    pub inputs: Vec<InputRecord>,
    pub checkpoints: Vec<Checkpoint>,
    /// Checkpoints of files no longer followed.
    pub forget_checkpoints: Vec<String>,
    /// The one whole input the occurrences come from (`scan`); `None` in `watch`.
    pub origin: Option<Origin>,
}

/// What a batch changed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BatchOutcome {
    /// Occurrences the store had not seen before, by position in `Batch::occurrences`.
    pub new_occurrences: Vec<usize>,
}

/// In-scope coverage of one remediation.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct CoverageSummary {
    pub events: u64,
    pub last: Option<Timestamp>,
    /// In-scope events at or after a given time (the fix), when asked for.
    pub events_since: u64,
    /// Hour buckets with in-scope events, in all and at or after the given time.
    pub hours: u64,
    pub hours_since: u64,
    /// True when every bucket was counted (exact coverage); sampled buckets record presence
    /// only (a count of 0), so event counts are then lower bounds and not shown.
    pub counted: bool,
}

/// Delivery state of a notification on one channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum DeliveryStatus {
    Pending,
    Sent,
    Failed,
    /// Recorded without sending (`--notify-since`, folded into a digest, `--no-notify` kept pending).
    Suppressed,
}

impl DeliveryStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryStatus::Pending => "pending",
            DeliveryStatus::Sent => "sent",
            DeliveryStatus::Failed => "failed",
            DeliveryStatus::Suppressed => "suppressed",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            // `sending` is a pending row claimed by a run for one attempt (see
            // [`Store::claim_delivery`]): still pending as far as anyone else is concerned.
            "pending" | "sending" => DeliveryStatus::Pending,
            "sent" => DeliveryStatus::Sent,
            "failed" => DeliveryStatus::Failed,
            "suppressed" => DeliveryStatus::Suppressed,
            _ => return None,
        })
    }
}

/// A stored notification intent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StoredIntent {
    pub key: String,
    pub remediation: String,
    pub kind: IntentKind,
    pub episode_start: Timestamp,
    pub count: u64,
    pub due: Timestamp,
    pub created_at: Timestamp,
    pub status: DeliveryStatus,
    /// For digests: the keys folded into it.
    pub folded: Vec<String>,
}

/// One channel's delivery of one intent (the outbox row).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Delivery {
    pub key: String,
    pub channel: String,
    pub status: DeliveryStatus,
    pub attempts: u32,
    pub next_attempt: Option<Timestamp>,
    pub last_error: Option<String>,
}

/// What recur remembers of a remediation it has loaded (to report retired ones).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct KnownRemediation {
    pub id: String,
    pub title: String,
    pub owner: String,
    pub analysis: String,
    pub last_loaded: Timestamp,
}

/// A recorded episode: the identity it was first recorded under and what it spans now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StoredEpisode {
    pub remediation: String,
    /// The start the episode had when first recorded: its notification keys use it for good.
    pub identity: Timestamp,
    /// Where it opens in the stored history now (moves earlier when earlier events arrive).
    pub start: Timestamp,
    pub first_seen: Timestamp,
    pub last_seen: Timestamp,
    pub count: u64,
    /// Reminders the episode called for when last recorded.
    pub reminders: u64,
    /// Set when a later event joined it to another recorded episode (that one's identity).
    pub merged_into: Option<Timestamp>,
    /// One of the remediation's current episodes.
    pub active: bool,
    /// Order of first recording: when episodes join, the one recorded first keeps its identity.
    pub seq: i64,
}

/// Counts removed by `state prune`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct PruneStats {
    pub occurrences: u64,
    pub coverage: u64,
    pub episodes: u64,
    pub intents: u64,
    pub inputs: u64,
}

/// The state backend.
pub trait Store {
    /// Whether this input (content key, size and tail hash) was already fully processed with
    /// these parameters.
    fn input_done(
        &self,
        key: &str,
        size: u64,
        tail: &str,
        params: &str,
    ) -> Result<bool, StoreError>;
    /// Commits one batch atomically: [`Store::begin`], [`Store::add`] and [`Store::finish`].
    fn commit(&mut self, batch: &Batch) -> Result<BatchOutcome, StoreError> {
        self.begin(batch.origin.as_ref())?;
        let done = self
            .add(&batch.occurrences)
            .and_then(|new| self.finish(batch).map(|()| new));
        match done {
            Ok(new_occurrences) => Ok(BatchOutcome { new_occurrences }),
            Err(e) => {
                self.abort();
                Err(e)
            }
        }
    }
    /// Opens the transaction of one batch, whose occurrences then come in parts
    /// ([`Store::add`]), so that a large input is stored while the rest of it is still being
    /// read; [`Store::finish`] commits it, [`Store::abort`] (or dropping the store, or the
    /// process dying) leaves the store as it was. `origin` is the whole input the occurrences
    /// come from; when it replaces (`origin.replace`), an event already stored takes the time
    /// and signature of this reading.
    fn begin(&mut self, origin: Option<&Origin>) -> Result<(), StoreError>;
    /// Stores a part of the open batch's occurrences; returns the positions (in `occurrences`)
    /// of those the store had not seen before, this batch's earlier parts included.
    fn add(&mut self, occurrences: &[NewOccurrence]) -> Result<Vec<usize>, StoreError>;
    /// Commits the open batch with the rest of it (`batch.occurrences` is not read: they came
    /// through [`Store::add`]). When `batch.origin` replaces, what the same input contributed
    /// before and this reading did not bring again is removed (see [`Origin`]); without
    /// `replace` (an input that failed part-way) nothing is removed.
    fn finish(&mut self, batch: &Batch) -> Result<(), StoreError>;
    /// Rolls the open batch back, if one is open.
    fn abort(&mut self);
    /// The event times of a remediation's occurrences, sorted, untimed (`None`) last: all that
    /// counts and episodes need, without reading identities, sources and samples.
    fn occurrence_times(&self, remediation: &str) -> Result<Vec<Option<Timestamp>>, StoreError>;
    /// Up to `limit` occurrences of a remediation that carry a sample, with event times in
    /// `from..=to` (unbounded where `None`), oldest first.
    fn samples_between(
        &self,
        remediation: &str,
        from: Option<Timestamp>,
        to: Option<Timestamp>,
        limit: usize,
    ) -> Result<Vec<StoredOccurrence>, StoreError>;
    /// In-scope coverage of a remediation; `since` counts events at or after it.
    fn coverage(
        &self,
        remediation: &str,
        since: Option<Timestamp>,
    ) -> Result<CoverageSummary, StoreError>;
    /// Records the loaded remediations (for retired detection).
    fn note_remediations(
        &mut self,
        rules: &[crate::rule::Remediation],
        now: Timestamp,
    ) -> Result<(), StoreError>;
    fn known_remediations(&self) -> Result<Vec<KnownRemediation>, StoreError>;
    /// Inserts intents that do not exist yet (by key) with the given status and the channels
    /// to deliver to; returns the ones that were new.
    fn add_intents(
        &mut self,
        intents: &[(IntentDraft, DeliveryStatus, Vec<String>, Vec<String>)],
        now: Timestamp,
    ) -> Result<Vec<StoredIntent>, StoreError>;
    fn intents(&self, remediation: Option<&str>) -> Result<Vec<StoredIntent>, StoreError>;
    fn intent(&self, key: &str) -> Result<Option<StoredIntent>, StoreError>;
    /// Outbox rows due for an attempt at `now` (pending, next attempt reached).
    fn due_deliveries(&self, now: Timestamp) -> Result<Vec<Delivery>, StoreError>;
    fn deliveries(&self, key: Option<&str>) -> Result<Vec<Delivery>, StoreError>;
    /// Claims one outbox row for a send attempt, so that of several runs draining the same
    /// outbox at once (two scans, a scan and `outbox flush`) only one sends it. The row is
    /// claimed when it is pending and due by `due_by` (its backoff passed; `Timestamp::MAX`
    /// ignores backoff), or when an earlier claim's lease has expired at `now` (a run that
    /// died while sending); the claim lasts until `lease_until`. Returns the row as claimed,
    /// or `None` when another run has it, or it was sent or given up meanwhile. The attempt's
    /// result is recorded with [`Store::update_delivery`], which ends the claim.
    fn claim_delivery(
        &mut self,
        key: &str,
        channel: &str,
        due_by: Timestamp,
        now: Timestamp,
        lease_until: Timestamp,
    ) -> Result<Option<Delivery>, StoreError>;
    /// Ends this process's claim on an outbox row without an attempt (a send abandoned at
    /// shutdown): the row is pending and due at once. False when it was not claimed.
    fn release_delivery(&mut self, key: &str, channel: &str) -> Result<bool, StoreError>;
    /// How many outbox rows have this status (without loading them).
    fn count_deliveries(&self, status: DeliveryStatus) -> Result<u64, StoreError>;
    /// Records an attempt's result on one outbox row.
    fn update_delivery(&mut self, d: &Delivery) -> Result<(), StoreError>;
    fn checkpoints(&self) -> Result<Vec<Checkpoint>, StoreError>;
    /// The recorded episodes of a remediation (active, merged and superseded), by start.
    fn episodes(&self, remediation: &str) -> Result<Vec<StoredEpisode>, StoreError>;
    /// Records a remediation's current episodes (identities already assigned, see
    /// [`crate::track::assign_identities`]) and the recorded ones they absorbed; every other
    /// recorded episode of the remediation becomes inactive.
    fn record_episodes(
        &mut self,
        remediation: &str,
        current: &[crate::track::Episode],
        merged: &[(Timestamp, Timestamp)],
    ) -> Result<(), StoreError>;
    /// Deletes history older than `before` (see the SQLite implementation for what is kept).
    /// Events before the prune are ignored by later commits, so re-reading an old input can
    /// neither count them again nor notify them again.
    fn prune(&mut self, before: Timestamp) -> Result<PruneStats, StoreError>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_identities_sort_as_their_times_and_depend_on_the_bytes() {
        let at = |s: i64| Some(Timestamp::from_nanosecond(s as i128).unwrap());
        let ids: Vec<Identity> = [
            None,
            at(i64::MIN),
            at(-1),
            at(0),
            at(1),
            at(1_757_492_400_000_000_000),
            at(i64::MAX),
        ]
        .into_iter()
        .map(|t| Identity::of_record(t, b"{\"error_code\":\"NO_TOKEN\"}"))
        .collect();
        let mut sorted = ids.clone();
        sorted.sort();
        assert_eq!(ids, sorted);
        // The same record is the same identity; another record at the same time is not.
        let r = |b: &[u8]| Identity::of_record(at(5), b);
        assert_eq!(r(b"{\"a\":1}"), r(b"{\"a\":1}"));
        assert_ne!(r(b"{\"a\":1}"), r(b"{\"a\":2}"));
        // Written and parsed back as it was.
        assert_eq!(Identity::parse(&r(b"x").to_string()), r(b"x"));
    }
}
