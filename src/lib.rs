//! recur catches the comeback of errors a team has already analysed and fixed.
//!
//! The pipeline, one module a stage:
//! ```text
//!  source ──> decode ──> matcher ──> track ──> store ──> sink
//! ```
//! and the three modes in [`mode`]: `scan` (cron batch), `watch` (sidecar), `grep` (ad hoc).

pub mod config;
pub mod decode;
pub mod diag;
pub mod duration;
pub mod mode;
pub mod rule;
pub mod time;
