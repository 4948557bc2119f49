//! Envelopes recognised inside JSON objects: GCP LogEntry and Docker json-file.
//!
//! Auto-detection goes by shape, strictly enough that an application's own JSON is not taken
//! for an envelope by accident:
//! - **GCP LogEntry**: a payload (`jsonPayload` object, `textPayload` string, or `protoPayload`)
//!   plus at least one of `insertId`, `logName`, `resource`, `receiveTimestamp`;
//! - **Docker json-file**: a string `log` with `stream` and `time`, and no keys besides those
//!   and `attrs` (what `--log-opt labels=…/env=…` adds).
//!
//! When the format is forced (`--input gcp|docker`), only the payload key (GCP) or the string
//! `log` (Docker) is required; a record without it is a [`DecodeError::Envelope`].

use serde_json::{Map, Value};

use super::detect::{Body, finish, finish_with, starts_with_brace};
use super::json::Role;
use super::{DecodeConfig, DecodeError, Event, Format, RecordMeta, json, logfmt, text};
use super::{field, time_from_fields};
use crate::time::{leading_timestamp, parse_time_value};

const GCP_MARKERS: [&str; 4] = ["insertId", "logName", "resource", "receiveTimestamp"];
const DOCKER_KEYS: [&str; 4] = ["log", "stream", "time", "attrs"];

/// Every top-level key that envelope detection and unwrapping look at: a projected decode
/// keeps them all (see [`super::decode_keeping`]).
pub const ENVELOPE_KEYS: &[&str] = &[
    "insertId",
    "logName",
    "resource",
    "receiveTimestamp",
    "timestamp",
    "jsonPayload",
    "textPayload",
    "protoPayload",
    "message",
    "log",
    "stream",
    "time",
    "attrs",
];

/// Turns a parsed JSON object into an event, unwrapping a GCP or Docker envelope if it has
/// that shape. `raw` is the record's text (for `_line`).
pub fn from_object(
    map: Map<String, Value>,
    raw: &str,
    meta: &RecordMeta,
    cfg: &DecodeConfig,
) -> Result<Event, DecodeError> {
    from_object_shaped(map, raw, meta, cfg, true, true, Role::ANY)
}

/// [`from_object`]; `may_be_docker` false when the object is known not to be a Docker entry
/// (some of its keys were left out, see [`super::decode_keeping`]).
pub(crate) fn from_object_shaped(
    map: Map<String, Value>,
    raw: &str,
    meta: &RecordMeta,
    cfg: &DecodeConfig,
    may_be_docker: bool,
    with_text: bool,
    roles: u8,
) -> Result<Event, DecodeError> {
    // Without a key that [`Role::SHAPES`] marks, the object is neither a GCP entry nor a
    // Docker one, and without a [`Role::ID`] key it has no id: no need to look them up.
    let shaped = roles & Role::SHAPES != 0;
    if shaped && is_gcp(&map) {
        gcp(map, raw, meta, cfg)
    } else if shaped && may_be_docker && is_docker(&map) {
        docker(map, meta, cfg)
    } else {
        // `_line` of a plain object is the line itself: a copy of every candidate that only
        // a `_line` condition reads.
        let text = if with_text {
            raw.to_owned()
        } else {
            String::new()
        };
        let body = json::body(map, cfg);
        Ok(finish_with(
            body,
            text,
            None,
            meta,
            cfg,
            roles & Role::ID != 0,
        ))
    }
}

/// Which payload a GCP entry carries (`None`: no recognisable payload).
fn gcp_payload(map: &Map<String, Value>) -> Option<Payload> {
    if matches!(map.get("jsonPayload"), Some(Value::Object(_))) {
        Some(Payload::Json)
    } else if matches!(map.get("textPayload"), Some(Value::String(_))) {
        Some(Payload::Text)
    } else if map.contains_key("protoPayload") {
        Some(Payload::Proto)
    } else {
        None
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Payload {
    Json,
    Text,
    Proto,
}

/// Does this object have the GCP LogEntry shape?
pub fn is_gcp(map: &Map<String, Value>) -> bool {
    gcp_payload(map).is_some() && GCP_MARKERS.iter().any(|k| map.contains_key(*k))
}

/// Does this object have the Docker json-file shape?
pub fn is_docker(map: &Map<String, Value>) -> bool {
    matches!(map.get("log"), Some(Value::String(_)))
        && map.contains_key("stream")
        && map.contains_key("time")
        && map.keys().all(|k| DOCKER_KEYS.contains(&k.as_str()))
}

/// Unwraps a GCP LogEntry.
///
/// - `jsonPayload`: its keys are lifted to the top level (the payload wins a name clash) and
///   the `jsonPayload` key is removed; everything else of the envelope stays where it was
///   (`severity`, `resource.labels.service_name`, `labels`, `insertId`…). `_line` is the raw
///   record. Time: a configured time field *in the payload*, else the entry's `timestamp`,
///   else `receiveTimestamp`.
/// - `textPayload`: `_line` is the payload, which also stays as field `textPayload` and is
///   copied to `message` unless the entry has one. Time: `timestamp`, `receiveTimestamp`, then
///   a leading timestamp in the text (GCP's `timestamp` is when the event happened, so it wins).
/// - `protoPayload` (audit logs): kept as it is; `_line` is the raw record.
///
/// The id comes from the configured id fields (`insertId` by default, first in the list).
pub fn gcp(
    mut map: Map<String, Value>,
    raw: &str,
    meta: &RecordMeta,
    cfg: &DecodeConfig,
) -> Result<Event, DecodeError> {
    let Some(payload) = gcp_payload(&map) else {
        return Err(DecodeError::Envelope {
            format: "gcp",
            message: "no jsonPayload, textPayload or protoPayload".to_owned(),
        });
    };
    let entry_time = ["timestamp", "receiveTimestamp"]
        .iter()
        .find_map(|k| parse_time_value(map.get(*k)?, &cfg.zone));
    let event = match payload {
        Payload::Json => {
            let payload = match map.remove("jsonPayload") {
                Some(Value::Object(payload)) => payload,
                _ => Map::new(),
            };
            let payload_time = time_from_fields(&payload, cfg);
            map.extend(payload);
            let body = Body {
                fields: map,
                time: payload_time,
                format: Format::Gcp,
            };
            finish(body, raw.to_owned(), entry_time, meta, cfg)
        }
        Payload::Text => {
            let text = match map.get("textPayload") {
                Some(Value::String(text)) => text.clone(),
                _ => String::new(),
            };
            let own_time = leading_timestamp(&text, &cfg.zone).map(|(t, _)| t);
            if !map.contains_key("message") {
                map.insert("message".to_owned(), Value::String(text.clone()));
            }
            let time = entry_time.or(own_time);
            let body = Body {
                fields: map,
                time,
                format: Format::Gcp,
            };
            finish(body, text, None, meta, cfg)
        }
        Payload::Proto => {
            let time = entry_time.or_else(|| time_from_fields(&map, cfg));
            let body = Body {
                fields: map,
                time,
                format: Format::Gcp,
            };
            finish(body, raw.to_owned(), None, meta, cfg)
        }
    };
    Ok(event)
}

/// Unwraps a Docker json-file entry: the inner line (`log` without its trailing `\n`/`\r\n`)
/// is decoded in turn — a JSON object (no further envelopes), logfmt or text — and becomes
/// `_line`. Docker's `time` is the event time when the inner line has none; `stream` (and
/// `attrs`, if present) are added as fields unless the inner line has them.
///
/// An inner line starting with `{` that is not valid JSON is a [`DecodeError::Json`], exactly
/// as the same line would be on its own or inside a CRI record, so that one line decodes the
/// same whatever runtime wrote it.
pub fn docker(
    mut map: Map<String, Value>,
    meta: &RecordMeta,
    cfg: &DecodeConfig,
) -> Result<Event, DecodeError> {
    let Some(Value::String(mut line)) = map.remove("log") else {
        return Err(DecodeError::Envelope {
            format: "docker",
            message: "no string field \"log\"".to_owned(),
        });
    };
    let trimmed = line.strip_suffix('\n').unwrap_or(&line);
    let trimmed = trimmed.strip_suffix('\r').unwrap_or(trimmed);
    line.truncate(trimmed.len());

    let docker_time = field(&map, "time").and_then(|v| parse_time_value(v, &cfg.zone));
    let stream = match map.remove("stream") {
        Some(Value::String(s)) => Some(s),
        _ => meta.stream.clone(),
    };
    let mut body = inner_body(&line, cfg)?;
    if let Some(attrs) = map.remove("attrs") {
        body.fields.entry("attrs").or_insert(attrs);
    }
    body.format = Format::Docker;
    let inner_meta = RecordMeta {
        time: docker_time.or(meta.time),
        stream,
    };
    Ok(finish(body, line, None, &inner_meta, cfg))
}

/// Decodes the line inside a container envelope: JSON object, logfmt or text.
fn inner_body(line: &str, cfg: &DecodeConfig) -> Result<Body, DecodeError> {
    if starts_with_brace(line) {
        return Ok(json::body(json::parse_object(line)?, cfg));
    }
    Ok(match logfmt::parse(line, logfmt::Mode::Detect) {
        Some(fields) => logfmt::body(fields, cfg),
        None => text::body(line, cfg),
    })
}
