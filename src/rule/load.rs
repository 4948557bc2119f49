//! Loading rule files with every error located (file, line, column) and explained.

use std::path::{Path, PathBuf};

use super::Remediation;
use crate::diag::Diagnostic;

/// A rule file's text, kept for rendering diagnostics.
#[derive(Debug, Clone)]
pub struct SourceText {
    pub path: PathBuf,
    pub text: String,
}

/// Everything loaded from a rules directory: the valid remediations and every error.
#[derive(Debug, Default)]
pub struct LoadedRules {
    pub remediations: Vec<Remediation>,
    pub diagnostics: Vec<Diagnostic>,
    pub sources: Vec<SourceText>,
}

/// Loads every `*.toml` in `dir` (sorted by name). Never stops at the first bad file.
pub fn load_rules_dir(dir: &Path) -> std::io::Result<LoadedRules> {
    let _ = dir;
    todo!()
}

/// Parses and validates one rule file's text, returning every error found in it.
pub fn parse_rule_file(path: &Path, text: &str) -> Result<Remediation, Vec<Diagnostic>> {
    let _ = (path, text);
    todo!()
}
