//! Format detection and dispatch.

use super::{DecodeConfig, DecodeError, Event, RecordMeta};

/// Decodes one framed record (without its line terminator).
pub fn decode(bytes: &[u8], meta: &RecordMeta, cfg: &DecodeConfig) -> Result<Event, DecodeError> {
    let _ = (bytes, meta, cfg);
    todo!("decode")
}
