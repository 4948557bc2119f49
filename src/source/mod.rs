//! Source stage: which inputs to read, how to open them, and how to cut them into records.
//!
//! - [`expand`]: paths, directories (recursively), globs and `-` become a sorted list of
//!   [`Input`]s; problems (missing paths, symlink loops) become [`SourceError`]s, never a stop.
//! - [`open`]: a reader that undoes gzip (multi-member) and zstd, detected by magic bytes.
//! - [`framing`]: records out of bytes — lines (with a length cap that bounds memory), JSON array
//!   elements, CRI lines with partials joined — each with its 1-based line number.
//! - [`plan`]: work units for parallel reading; a large plain file is split into chunks on
//!   line boundaries.

pub mod expand;
pub mod framing;
pub mod open;
pub mod plan;
pub mod tail;

use std::fmt;
use std::path::PathBuf;

pub use expand::expand;
pub use framing::{Framing, Record, RecordReader};
pub use plan::{WorkUnit, open_chunk, plan_units};

/// One input to read.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Input {
    /// `-`: standard input.
    Stdin,
    File(PathBuf),
}

impl Input {
    /// The name used in reports (`<stdin>` for standard input).
    pub fn display_name(&self) -> String {
        match self {
            Input::Stdin => "<stdin>".to_string(),
            Input::File(p) => p.display().to_string(),
        }
    }
}

impl fmt::Display for Input {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.display_name())
    }
}

/// A problem with one input or one place in it. Reported with file and line; the run goes on.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct SourceError {
    pub path: String,
    pub line: Option<u64>,
    pub message: String,
}

impl fmt::Display for SourceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(l) => write!(f, "{}:{}: {}", self.path, l, self.message),
            None => write!(f, "{}: {}", self.path, self.message),
        }
    }
}
