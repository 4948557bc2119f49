//! User-facing diagnostics for rule files and `recur.toml`, rendered like rustc:
//! `error: …` / ` --> file:line:col` / the source line with a caret / `= help: …`.
//!
//! Loaders never stop at the first problem: they collect [`Diagnostic`]s (each with the byte
//! span it is about) and the caller renders them all at once with [`render`], so a user fixes a
//! whole file in one pass instead of one error per run.

pub mod reader;

use std::ops::Range;
use std::path::{Path, PathBuf};

use codespan_reporting::diagnostic::{Diagnostic as CsDiagnostic, Label};
use codespan_reporting::files::SimpleFiles;
use codespan_reporting::term::{self, Chars, Config, Styles, StylesWriter, termcolor};

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
    pub fn new(
        path: impl Into<PathBuf>,
        span: Option<Range<usize>>,
        message: impl Into<String>,
    ) -> Self {
        Diagnostic {
            path: path.into(),
            span,
            message: message.into(),
            label: None,
            hint: None,
        }
    }

    pub fn with_label(mut self, label: impl Into<String>) -> Self {
        self.label = Some(label.into());
        self
    }

    pub fn with_hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    /// 1-based line and column of the start of the span in `text` (the file's contents), or
    /// `None` for whole-file diagnostics.
    pub fn location(&self, text: &str) -> Option<(usize, usize)> {
        self.span.as_ref().map(|s| line_col(text, s.start))
    }

    /// The compact one-line form `path:line:col: message` (or `path: message` without a span),
    /// for machine-readable outputs and log lines where the rich form would not fit.
    /// `text` is the file's contents when known.
    pub fn one_line(&self, text: Option<&str>) -> String {
        match text.and_then(|t| self.location(t)) {
            Some((line, col)) => {
                format!("{}:{line}:{col}: {}", self.path.display(), self.message)
            }
            None => format!("{}: {}", self.path.display(), self.message),
        }
    }
}

/// A file's text, kept next to its diagnostics so they can show the offending line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceText {
    pub path: PathBuf,
    pub text: String,
}

impl SourceText {
    pub fn new(path: impl Into<PathBuf>, text: impl Into<String>) -> Self {
        SourceText {
            path: path.into(),
            text: text.into(),
        }
    }
}

/// 1-based line and column (in characters) of a byte offset.
pub fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let offset = floor_char_boundary(text, offset.min(text.len()));
    let before = &text[..offset];
    let line = before.bytes().filter(|&b| b == b'\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let col = text[line_start..offset].chars().count() + 1;
    (line, col)
}

/// The largest char boundary at or below `i` (`str::floor_char_boundary` is not stable yet).
fn floor_char_boundary(text: &str, mut i: usize) -> usize {
    while i > 0 && !text.is_char_boundary(i) {
        i -= 1;
    }
    i
}

/// A file's text as shown in snippets: secret values replaced by the mask, with what is
/// needed to move spans of the real text onto it.
struct Shown {
    text: String,
    /// (range in the real text, range of its replacement in `text`), in order.
    edits: Vec<(Range<usize>, Range<usize>)>,
}

impl Shown {
    /// Masks every value a diagnostic must not echo: the value of a `url`/`*_url` key
    /// (webhook and Slack URLs carry their token in the path), of any key named like a secret
    /// (`password`, `token`, `api_key` … — the notification redaction's rule, but not the
    /// `*_env` keys, which name variables), and the user:password part of any URL. Only the
    /// inside of the quotes is replaced, so the caret still points at the value.
    fn new(text: &str) -> Shown {
        let mut secret: Vec<Range<usize>> = Vec::new();
        for c in secret_value_re().captures_iter(text) {
            let key = c["key"].trim_matches(['"', '\'']);
            let lower = key.to_ascii_lowercase();
            let is_secret = !lower.ends_with("_env")
                && (lower == "url"
                    || lower.ends_with("_url")
                    || crate::redact::sensitive_name(key));
            let v = c.name("val").expect("value group");
            let quote = &v.as_str()[..1];
            // The inside of the quotes (an unclosed string runs to the end of its line).
            let start = v.start() + 1;
            let end = if v.len() > 1 && v.as_str().ends_with(quote) {
                v.end() - 1
            } else {
                v.end()
            };
            if is_secret && start < end {
                secret.push(start..end);
            }
        }
        for c in userinfo_re().captures_iter(text) {
            let m = c.name("userinfo").expect("userinfo group");
            if !secret
                .iter()
                .any(|r| r.start <= m.start() && m.end() <= r.end)
            {
                secret.push(m.range());
            }
        }
        secret.sort_by_key(|r| r.start);
        let mut out = String::with_capacity(text.len());
        let mut edits = Vec::new();
        let mut at = 0;
        for r in secret {
            if r.start < at {
                continue;
            }
            out.push_str(&text[at..r.start]);
            let new_start = out.len();
            out.push_str(crate::redact::MASK);
            edits.push((r.clone(), new_start..out.len()));
            at = r.end;
        }
        out.push_str(&text[at..]);
        Shown { text: out, edits }
    }

    /// Where a byte offset of the real text falls in the shown text (inside a masked value:
    /// the mask's start, or its end for the end of a span).
    fn map(&self, offset: usize, is_end: bool) -> usize {
        let mut delta: isize = 0;
        for (old, new) in &self.edits {
            if offset <= old.start {
                break;
            }
            if offset < old.end {
                return if is_end { new.end } else { new.start };
            }
            delta += new.len() as isize - old.len() as isize;
        }
        offset.saturating_add_signed(delta)
    }
}

/// `key = "value"` (or `'value'`), at the start of a line or inside an inline table.
fn secret_value_re() -> &'static regex::Regex {
    static RE: std::sync::OnceLock<regex::Regex> = std::sync::OnceLock::new();
    RE.get_or_init(|| {
        regex::Regex::new(
            r#"(?m)(?:^|[{,])[ \t]*(?P<key>[A-Za-z0-9_-]+|"[^"\n]*"|'[^'\n]*')[ \t]*=[ \t]*(?P<val>"(?:[^"\\\n]|\\.)*"?|'[^'\n]*'?)"#,
        )
        .expect("secret value pattern compiles")
    })
}

/// The `user:password` of a URL (`smtp://user:password@host`).
fn userinfo_re() -> &'static regex::Regex {
    static RE: std::sync::OnceLock<regex::Regex> = std::sync::OnceLock::new();
    RE.get_or_init(|| {
        regex::Regex::new(r#"[A-Za-z][A-Za-z0-9+.-]*://(?P<userinfo>[^/@\s"']+)@"#)
            .expect("userinfo pattern compiles")
    })
}

/// Renders every diagnostic, rustc style, in the order given.
///
/// `sources` supplies the text of the files the diagnostics point into; a diagnostic whose file
/// is not among them (or that has no span) is rendered without a source snippet, with just a
/// ` --> path` line so the user still knows where to look. With `color`, ANSI escapes are used.
///
/// Snippets never echo secrets: values of URL and secret-named keys are shown masked (see
/// [`Shown::new`]). Line numbers are the real file's; a column counts the mask instead of a
/// value masked earlier on the same line.
pub fn render(diags: &[Diagnostic], sources: &[SourceText], color: bool) -> String {
    let shown: Vec<Shown> = sources.iter().map(|s| Shown::new(&s.text)).collect();
    let mut files = SimpleFiles::new();
    let ids: Vec<(&Path, usize)> = sources
        .iter()
        .zip(&shown)
        .map(|(s, sh)| {
            let id = files.add(s.path.display().to_string(), sh.text.as_str());
            (s.path.as_path(), id)
        })
        .collect();
    let file_of = |p: &Path| ids.iter().find(|(q, _)| *q == p).map(|(_, id)| *id);

    // ASCII frames (` --> `, `|`), as rustc prints them: they survive any terminal, log file
    // and CI console.
    let config = Config {
        chars: Chars::ascii(),
        ..Config::default()
    };
    let styles = Styles::default();
    let mut out = String::new();
    for d in diags {
        let mut cs = CsDiagnostic::error().with_message(&d.message);
        if let Some(hint) = &d.hint {
            cs = cs.with_note(format!("help: {hint}"));
        }
        let located = match (&d.span, file_of(&d.path)) {
            (Some(span), Some(id)) => {
                let text = sources[id].text.as_str();
                let start = floor_char_boundary(text, span.start.min(text.len()));
                let end = floor_char_boundary(text, span.end.clamp(start, text.len()));
                let (start, end) = (shown[id].map(start, false), shown[id].map(end, true));
                let mut label = Label::primary(id, start..end.max(start));
                if let Some(l) = &d.label {
                    label = label.with_message(l);
                }
                cs = cs.with_label(label);
                true
            }
            _ => false,
        };
        let rendered = emit(&config, &styles, &files, &cs, color);
        if located {
            out.push_str(&rendered);
        } else {
            // No snippet to show: codespan prints the header and notes only, so add the path
            // line ourselves, where rustc would put it.
            let (header, rest) = rendered.split_once('\n').unwrap_or((&rendered, ""));
            out.push_str(header);
            out.push('\n');
            out.push_str(&format!(" --> {}\n", d.path.display()));
            out.push_str(rest);
        }
    }
    out
}

/// Emits one codespan diagnostic to a string, with or without ANSI colour.
fn emit(
    config: &Config,
    styles: &Styles,
    files: &SimpleFiles<String, &str>,
    cs: &CsDiagnostic<usize>,
    color: bool,
) -> String {
    // Rendering into memory can only fail on a file id that is not in `files`, which `render`
    // never produces; fall back to the bare message rather than lose the error.
    let fallback = || format!("error: {}\n", cs.message);
    if color {
        let mut buf = termcolor::Buffer::ansi();
        let mut writer = StylesWriter::new(&mut buf, styles);
        match term::emit_to_write_style(&mut writer, config, files, cs) {
            Ok(()) => String::from_utf8_lossy(buf.as_slice()).into_owned(),
            Err(_) => fallback(),
        }
    } else {
        term::emit_into_string(config, files, cs).unwrap_or_else(|_| fallback())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_col_counts_chars() {
        let text = "ab\ncé d\n";
        assert_eq!(line_col(text, 0), (1, 1));
        assert_eq!(line_col(text, 3), (2, 1));
        assert_eq!(line_col(text, 6), (2, 3)); // after "cé" (é is 2 bytes)
        assert_eq!(line_col(text, 100), (3, 1));
    }

    #[test]
    fn renders_like_rustc() {
        let src = SourceText::new("rules/bad.toml", "id = \"X\"\nownr = \"x\"\n");
        let d = Diagnostic::new("rules/bad.toml", Some(9..13), "unknown key `ownr`")
            .with_label("unknown key")
            .with_hint("did you mean `owner`?");
        let s = render(std::slice::from_ref(&d), std::slice::from_ref(&src), false);
        assert!(s.contains("error: unknown key `ownr`"), "{s}");
        assert!(s.contains("rules/bad.toml:2:1"), "{s}");
        assert!(s.contains("^^^^ unknown key"), "{s}");
        assert!(s.contains("= help: did you mean `owner`?"), "{s}");
        assert_eq!(
            d.one_line(Some(&src.text)),
            "rules/bad.toml:2:1: unknown key `ownr`"
        );

        let colored = render(&[d], &[src], true);
        assert!(colored.contains('\x1b'), "{colored}");
    }

    #[test]
    fn renders_without_span_or_source() {
        let d = Diagnostic::new("recur.toml", None, "cannot read file").with_hint("check it");
        let s = render(std::slice::from_ref(&d), &[], false);
        assert!(
            s.starts_with("error: cannot read file\n --> recur.toml\n"),
            "{s}"
        );
        assert!(s.contains("= help: check it"), "{s}");
        assert_eq!(d.one_line(None), "recur.toml: cannot read file");
    }

    #[test]
    fn snippets_mask_urls_and_secret_values_and_keep_the_caret_on_them() {
        let text = "[channels.hook]\ntype = \"webhook\"\nurl = \"ftp://hooks.example.com/T0/very-secret-token\"\n\
                    [channels.m]\nurl = \"smtp://bob:hunter2@mail\", tls = \"bogus\"\n\
                    password = 'pa55word'\npassword_env = \"SMTP_PASSWORD\"\nfrom = \"a@b.c\"\n";
        let src = SourceText::new("recur.toml", text);
        let at = |needle: &str| {
            let i = text.find(needle).unwrap();
            i..i + needle.len()
        };
        let diags = [
            Diagnostic::new(
                "recur.toml",
                Some(at("\"ftp://hooks.example.com/T0/very-secret-token\"")),
                "bad url",
            )
            .with_label("not an HTTP URL"),
            Diagnostic::new("recur.toml", Some(at("\"bogus\"")), "unknown tls").with_label("here"),
            Diagnostic::new("recur.toml", Some(at("password")), "unknown key `password`"),
            Diagnostic::new("recur.toml", Some(at("SMTP_PASSWORD")), "env").with_label("name"),
        ];
        let s = render(&diags, std::slice::from_ref(&src), false);
        for secret in [
            "very-secret-token",
            "hooks.example.com",
            "hunter2",
            "bob:",
            "pa55word",
        ] {
            assert!(!s.contains(secret), "`{secret}` echoed:\n{s}");
        }
        assert!(s.contains("url = \"[REDACTED]\""), "{s}");
        assert!(
            s.contains("^^^^^^^^^^^^ not an HTTP URL"),
            "caret under the mask:\n{s}"
        );
        assert!(s.contains("recur.toml:3:7"), "{s}");
        assert!(s.contains("password = '[REDACTED]'"), "{s}");
        // Variable names and ordinary values stay readable.
        assert!(s.contains("password_env = \"SMTP_PASSWORD\""), "{s}");
        assert!(s.contains("^^^^^^^ here"), "{s}");
        assert!(s.contains("^^^^^^^^^^^^^ name"), "{s}");
    }

    #[test]
    fn out_of_range_spans_are_clamped() {
        let src = SourceText::new("a.toml", "x = 1");
        let d = Diagnostic::new("a.toml", Some(3..500), "bad");
        let s = render(&[d], &[src], false);
        assert!(s.contains("a.toml:1:4"), "{s}");
    }
}
