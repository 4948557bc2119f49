//! Decode stage: one framed record (see the source stage) becomes an [`Event`].
//!
//! Formats are detected per record unless forced: a JSON object (flat or nested), a GCP
//! LogEntry (`jsonPayload` lifted to the top level, `textPayload` as the text, envelope fields
//! reachable), a Docker json-file entry (`{"log":…,"stream":…,"time":…}`, the inner line decoded
//! in turn), logfmt, or plain text (a leading RFC 3339 timestamp is the event time). CRI framing
//! (`<time> <stream> <P|F> <content>`) and JSON array files are undone by the source stage, which
//! hands the content here with the envelope's time as [`RecordMeta`]; [`parse_cri_line`] is the
//! CRI parser it uses.
//!
//! Rules that are easy to get wrong, decided once here:
//! - **Validation first**: invalid UTF-8 and NUL bytes reject the record (offsets count the
//!   record's bytes as given); a leading BOM and a trailing `\r` (or `\r\n`) are stripped.
//! - **JSON means `{`**: only a line whose first non-blank byte is `{` is JSON, and then it must
//!   parse as one object ([`DecodeError::Json`] otherwise). `[1]`, `"x"` or `42` lines are text.
//! - **Duplicate keys**: the last one wins, in JSON (serde_json) and logfmt alike.
//! - **Envelopes by shape**: see [`envelope`]. Forcing `json` still unwraps them; forcing `gcp`
//!   or `docker` relaxes the shape test to the payload key alone.
//! - **Event time**: the body's own time (the first of [`DecodeConfig::time_fields`] that parses,
//!   or a text line's leading timestamp) wins over an envelope's (Docker `time`, CRI time in
//!   [`RecordMeta::time`]): runtimes stamp arrival, applications stamp the event. A GCP entry's
//!   `timestamp` is the event time unless its `jsonPayload` has a configured time field.
//! - **Stream**: [`RecordMeta::stream`] (or Docker's `stream`) becomes field `stream` unless the
//!   body has one, for text lines too, so stream scopes work alike for every container format.
//! - **Identity**: the first of [`DecodeConfig::id_fields`] that is a non-empty string or a
//!   number (stringified); `None` leaves hashing the record to the caller.
//! - **[`Event::format`]** names the envelope unwrapped here (`Gcp`, `Docker`) or else the body's
//!   format (`Json`, `Logfmt`, `Text`); CRI content reports its body's format, since the source
//!   unwraps CRI and the same content must decode the same whether framing was forced or not.

use jiff::Timestamp;
use jiff::tz::TimeZone;
use serde_json::{Map, Value};

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
    /// Decoded with only some of its top-level fields ([`decode_keeping`]): what rules, time
    /// and id fields need (and `text` only if a rule reads `_line`). A sample of it must decode
    /// the record again, whole.
    pub projected: bool,
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
    Envelope {
        format: &'static str,
        message: String,
    },
}

pub mod cri;
pub mod detect;
pub mod envelope;
pub mod json;
pub mod logfmt;
pub mod text;

pub use cri::{CriLine, looks_like_cri, parse_cri_line};
pub use detect::{decode, decode_keeping, decode_keeping_valid};
pub use json::Keep;

/// Reads a configured field path (`cfg.time_fields`, `cfg.id_fields`) from an object.
///
/// A key that contains dots is first looked up as one flat key (logfmt's `http.status`,
/// an OpenTelemetry attribute name), then as a path through nested objects
/// (`metadata.time`). Flat first, because a flat key is an exact spelling of what the user
/// configured, while the nested reading is an interpretation.
pub fn field<'a>(fields: &'a Map<String, Value>, path: &str) -> Option<&'a Value> {
    if let Some(v) = fields.get(path) {
        return Some(v);
    }
    if !path.contains('.') {
        return None;
    }
    let mut parts = path.split('.');
    let mut cur = fields.get(parts.next()?)?;
    for part in parts {
        cur = cur.as_object()?.get(part)?;
    }
    Some(cur)
}

/// The first of `cfg.time_fields` present in `fields` whose value parses as a time.
///
/// A field that exists but does not parse is skipped rather than ending the search: a
/// `date: "Monday"` must not hide a good `ts` further down the list.
pub fn time_from_fields(fields: &Map<String, Value>, cfg: &DecodeConfig) -> Option<Timestamp> {
    cfg.time_fields
        .iter()
        .find_map(|path| crate::time::parse_time_value(field(fields, path)?, &cfg.zone))
}

/// The first of `cfg.id_fields` present as a non-empty string or as a number (stringified).
///
/// Empty strings are skipped: an empty id would make every such event the "same" event and
/// collapse them into one occurrence.
pub fn id_from_fields(fields: &Map<String, Value>, cfg: &DecodeConfig) -> Option<String> {
    cfg.id_fields
        .iter()
        .find_map(|path| match field(fields, path)? {
            Value::String(s) if !s.is_empty() => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            _ => None,
        })
}

#[cfg(test)]
mod tests;
