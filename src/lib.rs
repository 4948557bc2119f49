//! recur catches the comeback of errors a team has already analysed and fixed.
//!
//! The pipeline, one module a stage:
//! ```text
//!  source ──> decode ──> matcher ──> track ──> store ──> sink
//! ```
//! and the three modes in [`mode`]: `scan` (cron batch), `watch` (sidecar), `grep` (ad hoc).

pub mod cli;
pub mod config;
pub mod decode;
pub mod diag;
pub mod duration;
pub mod matcher;
pub mod mode;
pub mod redact;
pub mod report;
pub mod rule;
pub mod search;
pub mod sink;
pub mod source;
pub mod store;
pub mod time;
pub mod track;
