//! Store stage: the durable memory of recur.
//!
//! Everything goes through the narrow [`Store`] trait so that another backend (a shared
//! PostgreSQL for a fleet of sidecars) can replace the embedded SQLite file without touching
//! the stages around it. `--no-state` uses the same SQLite code on an in-memory database, so
//! a one-off run follows exactly the logic of a tracked one.

pub mod sqlite;

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

/// In-scope events of one input in one hour bucket.
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
    /// Hash of the rules and parameters the input was scanned with.
    pub params: String,
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
    pub occurrences: Vec<StoredOccurrence>,
    pub coverage: Vec<CoverageCell>,
    pub inputs: Vec<InputRecord>,
    pub checkpoints: Vec<Checkpoint>,
    /// Checkpoints of files no longer followed.
    pub forget_checkpoints: Vec<String>,
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
            "pending" => DeliveryStatus::Pending,
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

/// Counts removed by `state prune`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct PruneStats {
    pub occurrences: u64,
    pub coverage: u64,
    pub intents: u64,
    pub inputs: u64,
}

/// The state backend.
pub trait Store {
    /// Whether this input was already fully processed with these parameters.
    fn input_done(&self, key: &str, size: u64, params: &str) -> Result<bool, StoreError>;
    /// Commits one batch atomically.
    fn commit(&mut self, batch: &Batch) -> Result<BatchOutcome, StoreError>;
    /// All occurrences of a remediation, timed ones sorted by time, untimed last.
    fn occurrences(&self, remediation: &str) -> Result<Vec<StoredOccurrence>, StoreError>;
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
    /// How many outbox rows have this status (without loading them).
    fn count_deliveries(&self, status: DeliveryStatus) -> Result<u64, StoreError>;
    /// Records an attempt's result on one outbox row.
    fn update_delivery(&mut self, d: &Delivery) -> Result<(), StoreError>;
    fn checkpoints(&self) -> Result<Vec<Checkpoint>, StoreError>;
    fn prune(&mut self, before: Timestamp) -> Result<PruneStats, StoreError>;
}
