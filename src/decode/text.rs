//! Plain text lines.

use serde_json::Map;

use super::detect::Body;
use super::{DecodeConfig, Format};
use crate::time::leading_timestamp;

/// A text line has no fields (conditions use `_line`); its time is a leading timestamp, if any
/// (`2025-09-08T19:01:46Z …`, `[2025-09-08 19:01:46] …`), read in `cfg.zone` without offset.
pub(crate) fn body(line: &str, cfg: &DecodeConfig) -> Body {
    Body {
        fields: Map::new(),
        time: leading_timestamp(line, &cfg.zone).map(|(time, _)| time),
        format: Format::Text,
    }
}
