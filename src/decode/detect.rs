//! Format detection and dispatch.
//!
//! Every record goes through the same steps: [`validate`] (UTF-8, NUL, BOM, `\r`), then either
//! the forced format or detection by the first non-blank byte (`{` → JSON, then envelope shapes;
//! otherwise logfmt when the line reads as `key=value` pairs, else text), then `finish`, which
//! merges what the body says about itself (fields, own time) with what its envelope says (time,
//! stream) into an [`Event`].

use jiff::Timestamp;
use serde_json::{Map, Value};

use super::{DecodeConfig, DecodeError, Event, Format, RecordMeta, envelope, id_from_fields};
use super::{json, logfmt, text};

/// Decodes one framed record (without its line terminator).
///
/// Never panics; every input is either an [`Event`] or a [`DecodeError`].
pub fn decode(bytes: &[u8], meta: &RecordMeta, cfg: &DecodeConfig) -> Result<Event, DecodeError> {
    decode_valid(validate(bytes)?, meta, cfg)
}

/// [`decode`] of a record [`validate`] has passed.
fn decode_valid(line: &str, meta: &RecordMeta, cfg: &DecodeConfig) -> Result<Event, DecodeError> {
    match cfg.format {
        // CRI framing is undone by the source; the content is an ordinary line.
        Format::Auto | Format::Cri => {
            if starts_with_brace(line) {
                envelope::from_object(json::parse_object(line)?, line, meta, cfg)
            } else {
                let body = match logfmt::parse(line, logfmt::Mode::Detect) {
                    Some(fields) => logfmt::body(fields, cfg),
                    None => text::body(line, cfg),
                };
                Ok(finish(body, line.to_owned(), None, meta, cfg))
            }
        }
        // Forced JSON still recognises GCP and Docker envelopes by their shape (see the module
        // docs of `decode`): `--input json` over a gcloud export should still lift `jsonPayload`.
        Format::Json => envelope::from_object(json::parse_object(line)?, line, meta, cfg),
        Format::Gcp => envelope::gcp(json::parse_object(line)?, line, meta, cfg),
        Format::Docker => envelope::docker(json::parse_object(line)?, meta, cfg),
        Format::Logfmt => {
            let fields = logfmt::parse(line, logfmt::Mode::Lenient).unwrap_or_default();
            Ok(finish(
                logfmt::body(fields, cfg),
                line.to_owned(),
                None,
                meta,
                cfg,
            ))
        }
        Format::Text => Ok(finish(
            text::body(line, cfg),
            line.to_owned(),
            None,
            meta,
            cfg,
        )),
    }
}

/// [`decode`], keeping of a JSON object only the top-level fields in `keep` (the others are
/// parsed, so the record is checked as a whole, but not built): most of what decoding a
/// candidate costs is allocating every field of it, and rules look at a few. The event is
/// [`Event::projected`] when a field was left out. Other records, and envelopes that carry
/// their own time or stream (`meta`), decode whole.
pub fn decode_keeping(
    bytes: &[u8],
    meta: &RecordMeta,
    cfg: &DecodeConfig,
    keep: &json::Keep,
) -> Result<Event, DecodeError> {
    let plain_meta = meta.time.is_none() && meta.stream.is_none();
    if !plain_meta || !matches!(cfg.format, Format::Auto | Format::Cri | Format::Json) {
        return decode(bytes, meta, cfg);
    }
    let line = validate(bytes)?;
    if !starts_with_brace(line) {
        return decode_valid(line, meta, cfg);
    }
    decode_keeping_valid(line, meta, cfg, keep)
}

/// [`decode_keeping`] of a record already checked (no NUL, valid UTF-8, no terminator): a
/// candidate cut from a block whose bytes were checked whole.
pub fn decode_keeping_valid(
    line: &str,
    meta: &RecordMeta,
    cfg: &DecodeConfig,
    keep: &json::Keep,
) -> Result<Event, DecodeError> {
    let plain_meta = meta.time.is_none() && meta.stream.is_none();
    if !plain_meta || !matches!(cfg.format, Format::Auto | Format::Cri | Format::Json) {
        return decode(line.as_bytes(), meta, cfg);
    }
    if !starts_with_brace(line) {
        return decode_valid(line, meta, cfg);
    }
    // The fast path tells which kinds of keys it met; serde's does not.
    let (map, dropped, roles) = match json::parse_flat_keeping(line, keep) {
        Some((map, seen)) => (map, seen.dropped, seen.roles),
        None => {
            let (map, dropped) = json::parse_object_keeping(line, keep)?;
            (map, dropped, json::Role::ANY)
        }
    };
    // Keys are marked as id fields only for the configuration the projection was made for.
    debug_assert!(keep.ids_marked(&cfg.id_fields) || !keep.ids_known());
    // Every key of a Docker entry is kept: with one left out, it cannot be one. A projected
    // plain object has no `_line` text unless a rule reads it.
    let with_text = !dropped || keep.line();
    let mut ev = envelope::from_object_shaped(map, line, meta, cfg, !dropped, with_text, roles)?;
    ev.projected = dropped;
    Ok(ev)
}

/// Checks a record and returns its text without a leading BOM and a trailing line terminator.
///
/// Offsets in errors count bytes of `bytes` as given (BOM included), so they point into the
/// file. When a record has both a NUL and invalid UTF-8, the earlier one is reported.
pub fn validate(bytes: &[u8]) -> Result<&str, DecodeError> {
    let nul = memchr::memchr(0, bytes);
    let text = match simdutf8::compat::from_utf8(bytes) {
        Ok(text) => text,
        Err(e) => {
            return Err(match nul {
                Some(at) if at < e.valid_up_to() => DecodeError::Nul(at),
                _ => DecodeError::Utf8(e.valid_up_to()),
            });
        }
    };
    if let Some(at) = nul {
        return Err(DecodeError::Nul(at));
    }
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let text = text.strip_suffix('\n').unwrap_or(text);
    Ok(text.strip_suffix('\r').unwrap_or(text))
}

/// Is the first non-blank byte `{`? Only such lines are JSON: a line that happens to be a JSON
/// array, string or number is far more likely text (`[INFO] …`, `"quoted" …`, `42 items`).
pub(crate) fn starts_with_brace(line: &str) -> bool {
    line.trim_start().starts_with('{')
}

/// What a record's body says about itself, before envelope facts are merged in.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Body {
    pub fields: Map<String, Value>,
    /// The body's own time: a configured time field, or a text line's leading timestamp.
    pub time: Option<Timestamp>,
    pub format: Format,
}

/// Builds the event: the body's own time wins over the envelope's (`envelope_time`, then
/// `meta.time`), because a container runtime stamps a line when it receives it, while the
/// application stamped it when the event happened. `meta.stream` becomes field `stream` unless
/// the body has one, so that `stream = "stderr"` scopes work alike for Docker and CRI.
pub(crate) fn finish(
    body: Body,
    text: String,
    envelope_time: Option<Timestamp>,
    meta: &RecordMeta,
    cfg: &DecodeConfig,
) -> Event {
    finish_with(body, text, envelope_time, meta, cfg, true)
}

/// [`finish`], looking for an id only when `with_id` (false: the record has no id field).
pub(crate) fn finish_with(
    body: Body,
    text: String,
    envelope_time: Option<Timestamp>,
    meta: &RecordMeta,
    cfg: &DecodeConfig,
    with_id: bool,
) -> Event {
    let Body {
        mut fields,
        time,
        format,
    } = body;
    if let Some(stream) = &meta.stream
        && !fields.contains_key("stream")
    {
        fields.insert("stream".to_owned(), Value::String(stream.clone()));
    }
    let id = with_id.then(|| id_from_fields(&fields, cfg)).flatten();
    Event {
        fields: Value::Object(fields),
        text,
        time: time.or(envelope_time).or(meta.time),
        id,
        format,
        projected: false,
    }
}
