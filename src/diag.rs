//! User-facing diagnostics for rule files and `recur.toml`, rendered like rustc:
//! `error: …` / ` --> file:line:col` / the source line with a caret / `= help: …`.

use std::ops::Range;
use std::path::PathBuf;

/// One problem in one file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    pub path: PathBuf,
    /// Byte range in the file's text that the caret underlines; `None` for whole-file problems.
    pub span: Option<Range<usize>>,
    pub message: String,
    /// Short text printed beside the caret.
    pub label: Option<String>,
    /// `= help: …` line: what to do about it.
    pub hint: Option<String>,
}

impl Diagnostic {
    pub fn new(path: impl Into<PathBuf>, span: Option<Range<usize>>, message: impl Into<String>) -> Self {
        Diagnostic { path: path.into(), span, message: message.into(), label: None, hint: None }
    }

    pub fn with_label(mut self, label: impl Into<String>) -> Self {
        self.label = Some(label.into());
        self
    }

    pub fn with_hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }
}

/// 1-based line and column (in characters) of a byte offset.
pub fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let before = &text[..offset];
    let line = before.bytes().filter(|&b| b == b'\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let col = text[line_start..offset].chars().count() + 1;
    (line, col)
}

/// Renders diagnostics (temporary; replaced by the full renderer).
pub fn render(diags: &[Diagnostic], _sources: &[crate::rule::load::SourceText], _color: bool) -> String {
    diags.iter().map(|d| format!("error: {}: {}\n", d.path.display(), d.message)).collect()
}
