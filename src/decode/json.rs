//! Plain JSON objects.

use serde_json::{Map, Value};

use super::detect::Body;
use super::{DecodeConfig, DecodeError, Format, time_from_fields};

/// Parses a whole line as one JSON object.
///
/// serde_json's `Map` keeps the last of duplicate keys (as most JSON parsers do, and as the
/// prefilter assumes), decodes `\u` escapes, refuses trailing garbage and limits nesting depth
/// (128), so hostile input cannot overflow the stack. The error text is serde's, with line and
/// column.
pub fn parse_object(line: &str) -> Result<Map<String, Value>, DecodeError> {
    serde_json::from_str(line).map_err(|e| DecodeError::Json(e.to_string()))
}

/// The body of a plain JSON object: its fields as they are, its time from the configured fields.
pub(crate) fn body(fields: Map<String, Value>, cfg: &DecodeConfig) -> Body {
    Body {
        time: time_from_fields(&fields, cfg),
        fields,
        format: Format::Json,
    }
}
