//! Decode stage: one framed record (see [`crate::source`]) becomes an [`Event`].
//!
//! Formats are detected per record unless forced: a JSON object (flat or nested), a GCP
//! LogEntry (`jsonPayload` lifted to the top level, `textPayload` as the text, envelope fields
//! reachable), a Docker json-file entry (`{"log":…,"stream":…,"time":…}`, the inner line decoded
//! in turn), logfmt, or plain text (a leading RFC 3339 timestamp is the event time). CRI framing
//! (`<time> <stream> <P|F> <content>`) and JSON array files are undone by the source stage, which
//! hands the content here with the envelope's time as [`RecordMeta`].

use jiff::Timestamp;
use jiff::tz::TimeZone;
use serde_json::Value;

/// Input formats; `Auto` detects per record. `--input FORMAT` forces one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    #[default]
    Auto,
    /// One JSON object per line (also JSON array files, detected by the source).
    Json,
    /// GCP LogEntry (`gcloud logging read --format=json`, exports to files).
    Gcp,
    /// Docker json-file driver lines.
    Docker,
    /// CRI container runtime lines (`<time> <stream> <P|F> <content>`).
    Cri,
    Logfmt,
    /// Plain text; conditions use `_line`.
    Text,
}

/// Settings that shape decoding (from `recur.toml`'s `[input]` table and flags).
#[derive(Debug, Clone)]
pub struct DecodeConfig {
    pub format: Format,
    /// Fields tried in order for the event time. Dotted paths reach nested fields.
    pub time_fields: Vec<String>,
    /// Zone for timestamps without an offset.
    pub zone: TimeZone,
    /// Fields tried in order for the event identity (else a hash of the record bytes).
    pub id_fields: Vec<String>,
}

impl Default for DecodeConfig {
    fn default() -> Self {
        DecodeConfig {
            format: Format::Auto,
            time_fields: DEFAULT_TIME_FIELDS.iter().map(|s| s.to_string()).collect(),
            zone: TimeZone::UTC,
            id_fields: DEFAULT_ID_FIELDS.iter().map(|s| s.to_string()).collect(),
        }
    }
}

pub const DEFAULT_TIME_FIELDS: &[&str] = &[
    "timestamp",
    "time",
    "@timestamp",
    "ts",
    "receiveTimestamp",
    "datetime",
    "date",
];
pub const DEFAULT_ID_FIELDS: &[&str] = &["insertId", "event_id", "eventId", "id"];

/// What the source knows about a record before decoding (from CRI framing, for instance).
#[derive(Debug, Clone, Default)]
pub struct RecordMeta {
    /// The envelope's timestamp, used when the content has none.
    pub time: Option<Timestamp>,
    /// `stdout`/`stderr` from container envelopes.
    pub stream: Option<String>,
}

/// A decoded log record.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    /// The event's fields after unwrapping envelopes: always a JSON object (empty for text).
    pub fields: Value,
    /// `_line`: the record's raw text (the inner line for container envelopes, `textPayload`
    /// for GCP text entries), without the line terminator.
    pub text: String,
    /// Event time, from the configured fields, the text's leading timestamp or the envelope.
    pub time: Option<Timestamp>,
    /// Identity from the configured id fields, if one is present (else the caller hashes bytes).
    pub id: Option<String>,
    /// The format the record was decoded as.
    pub format: Format,
}

impl Event {
    /// Follows a path of keys through nested objects.
    pub fn get(&self, path: &[String]) -> Option<&Value> {
        let mut cur = &self.fields;
        for key in path {
            cur = cur.as_object()?.get(key.as_str())?;
        }
        Some(cur)
    }
}

/// Why a record could not be decoded. The record is counted as invalid and skipped.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("invalid UTF-8 at byte {0}")]
    Utf8(usize),
    #[error("NUL byte at byte {0}")]
    Nul(usize),
    #[error("malformed JSON: {0}")]
    Json(String),
    #[error("malformed {format} record: {message}")]
    Envelope { format: &'static str, message: String },
}

pub mod cri;
pub mod detect;
pub mod json;
pub mod logfmt;
pub mod text;

pub use detect::decode;
