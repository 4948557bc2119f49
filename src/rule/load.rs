//! Loading rule files with every error located (file, line, column) and explained.
//!
//! A rule file is read with `toml_edit`, which keeps the byte span of every key and value, and
//! validated field by field: each problem becomes a [`Diagnostic`] and reading goes on, so one
//! `recur check` shows everything wrong in every file. A [`Remediation`] is only produced from
//! a file without errors.
//!
//! Conditions (`[scope]`, `[[signature]]`) follow the JSON nesting of the events:
//! - a plain value is equality, an array is "any of";
//! - a table with exactly one key that is an operator (`regex`, `contains`, …) is that test;
//! - any other table is a nested field path: `auth.present = false`, `auth = { present = false }`
//!   and a `[signature.auth]` header all mean the field `auth` → `present`;
//! - a quoted key containing dots (`"resource.labels.service_name"`) is one field name;
//! - `_line` at the top of a condition table is the raw text of the record.

use std::collections::HashMap;
use std::ops::Range;
use std::path::{Path, PathBuf};

use jiff::SignedDuration;
use toml_edit::{Item, TableLike, Value};

use super::{
    Alert, Condition, Example, FieldPath, Fix, FixStatus, OPERATORS, Remediation, Scalar, Severity,
    Signature, Test,
};
pub use crate::diag::SourceText;
use crate::diag::reader::{
    FILE_START, Reader, describe, describe_value, key_span, list, regex_reason, suggest,
};
use crate::diag::{Diagnostic, line_col, render};

/// Keys of the top-level table.
const TOP_KEYS: &[&str] = &[
    "id",
    "title",
    "severity",
    "owner",
    "analysis",
    "action",
    "fix",
    "scope",
    "signature",
    "alert",
    "example",
];
const FIX_KEYS: &[&str] = &["status", "fixed_at", "deadline", "verify"];
const ALERT_KEYS: &[&str] = &[
    "threshold",
    "window",
    "repeat",
    "resolve",
    "channels",
    "samples",
    "template",
];
const EXAMPLE_KEYS: &[&str] = &["line", "match"];

/// The success criterion when `[fix] verify` is not given.
const DEFAULT_VERIFY: SignedDuration = SignedDuration::from_hours(24);

/// Everything loaded from a rules directory: the valid remediations and every error.
#[derive(Debug, Default)]
pub struct LoadedRules {
    /// Remediations from files without errors, in file-name order.
    pub remediations: Vec<Remediation>,
    /// Every problem in every file, file by file, in order within a file.
    pub diagnostics: Vec<Diagnostic>,
    /// The text of every file read, for rendering the diagnostics.
    pub sources: Vec<SourceText>,
}

impl LoadedRules {
    /// True when no file had an error.
    pub fn is_valid(&self) -> bool {
        self.diagnostics.is_empty()
    }

    /// How many rule files were read (valid or not).
    pub fn file_count(&self) -> usize {
        self.sources.len()
    }

    /// How many distinct files have at least one diagnostic.
    pub fn files_with_errors(&self) -> usize {
        let mut paths: Vec<&Path> = self.diagnostics.iter().map(|d| d.path.as_path()).collect();
        paths.sort();
        paths.dedup();
        paths.len()
    }

    /// The text of a loaded file.
    pub fn source(&self, path: &Path) -> Option<&SourceText> {
        self.sources.iter().find(|s| s.path == path)
    }

    /// Every diagnostic rendered rustc style.
    pub fn render(&self, color: bool) -> String {
        render(&self.diagnostics, &self.sources, color)
    }
}

/// The config file's name; never a rule, even when kept next to the rules.
const CONFIG_FILE_NAME: &str = "recur.toml";

/// Loads every `*.toml` in `dir` (sorted by name) except `recur.toml`. Never stops at the
/// first bad file.
///
/// Only a directory that cannot be listed is an `Err`; a file that cannot be read or is not
/// UTF-8 is a diagnostic like any other problem. Two files with the same `id` are an error on
/// the second one (in name order), naming the first: state and notifications are keyed by id.
pub fn load_rules_dir(dir: &Path) -> std::io::Result<LoadedRules> {
    let mut paths = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        // `metadata` follows symlinks, so a linked rule file counts.
        let is_file = std::fs::metadata(&path).is_ok_and(|m| m.is_file());
        let is_config = path.file_name().is_some_and(|n| n == CONFIG_FILE_NAME);
        if is_file && !is_config && path.extension().is_some_and(|e| e == "toml") {
            paths.push(path);
        }
    }
    paths.sort_by(|a, b| a.file_name().cmp(&b.file_name()));

    let mut loaded = LoadedRules::default();
    let mut ids: HashMap<String, PathBuf> = HashMap::new();
    for path in paths {
        let text = match std::fs::read(&path) {
            Err(e) => {
                loaded.diagnostics.push(
                    Diagnostic::new(&path, None, format!("cannot read rule file: {e}"))
                        .with_hint("check the file's permissions"),
                );
                continue;
            }
            Ok(bytes) => match String::from_utf8(bytes) {
                Ok(text) => text,
                Err(e) => {
                    let at = e.utf8_error().valid_up_to();
                    loaded.diagnostics.push(
                        Diagnostic::new(
                            &path,
                            None,
                            format!("rule file is not valid UTF-8 (at byte {at})"),
                        )
                        .with_hint("save the file as UTF-8"),
                    );
                    continue;
                }
            },
        };
        let parsed = parse_rule(&path, &text);
        let mut diags = match parsed.result {
            Ok(_) => Vec::new(),
            Err(ref d) => d.clone(),
        };
        let mut duplicate = false;
        if let Some((id, span)) = parsed.id {
            match ids.get(&id) {
                Some(first) => {
                    duplicate = true;
                    diags.push(
                        Diagnostic::new(&path, span, format!("duplicate id `{id}`"))
                            .with_label(format!("already used by {}", first.display()))
                            .with_hint("each remediation needs its own id; rename one of them"),
                    );
                    diags.sort_by_key(|d| d.span.as_ref().map(|s| (s.start, s.end)));
                }
                None => {
                    ids.insert(id, path.clone());
                }
            }
        }
        match parsed.result {
            Ok(rem) if !duplicate => loaded.remediations.push(rem),
            _ => loaded.diagnostics.extend(diags),
        }
        loaded.sources.push(SourceText::new(path, text));
    }
    Ok(loaded)
}

/// Parses and validates one rule file's text, returning every error found in it.
pub fn parse_rule_file(path: &Path, text: &str) -> Result<Remediation, Vec<Diagnostic>> {
    parse_rule(path, text).result
}

/// A parsed rule file, plus its id when readable even if the rest is not, so that duplicate
/// ids are reported across files regardless of other errors.
struct Parsed {
    result: Result<Remediation, Vec<Diagnostic>>,
    id: Option<(String, Option<Range<usize>>)>,
}

fn parse_rule(path: &Path, text: &str) -> Parsed {
    let mut r = Reader::new(path);
    let Some(doc) = r.parse(text) else {
        return Parsed {
            result: Err(r.finish()),
            id: None,
        };
    };
    let root: &dyn TableLike = doc.as_table();
    r.check_keys(root, TOP_KEYS, "a rule file");

    let start = Some(FILE_START);
    let id = r
        .required(
            root,
            "id",
            start.clone(),
            "add the remediation's id, e.g. `id = \"WEBSOCKET_AUTH_NO_TOKEN_001\"`",
        )
        .and_then(|item| parse_id(&mut r, item));
    let title = r
        .required(
            root,
            "title",
            start.clone(),
            "add a one-line `title = \"…\"`",
        )
        .and_then(|item| r.non_empty_str("title", item));
    let owner = r
        .required(
            root,
            "owner",
            start.clone(),
            "add who is told when it comes back, e.g. `owner = \"team@example.com\"`",
        )
        .and_then(|item| r.non_empty_str("owner", item));
    let analysis = r
        .required(
            root,
            "analysis",
            start.clone(),
            "add the link to the analysis, e.g. `analysis = \"https://docs.example.com/…\"`",
        )
        .and_then(|item| r.non_empty_str("analysis", item));
    let severity = r.optional(root, "severity", Severity::Error, |r, item| {
        r.one_of("severity", item, Severity::NAMES)
            .and_then(Severity::parse)
    });
    let action = r.optional(root, "action", String::new(), |r, item| {
        r.str("action", item).map(str::to_string)
    });
    let fix = parse_fix(&mut r, root);
    let scope = match root.get("scope") {
        None => Some(Vec::new()),
        Some(item) => r.table("scope", item).map(|t| conditions(&mut r, t)),
    };
    let signatures = parse_signatures(&mut r, root);
    let alert = parse_alert(&mut r, root, text);
    let examples = parse_examples(&mut r, root, text);

    let id_for_dupes = id.clone();
    let built = (|| {
        Some(Remediation {
            id: id?.0,
            title: title?.to_string(),
            severity: severity?,
            owner: owner?.to_string(),
            analysis: analysis?.to_string(),
            action: action?,
            fix: fix?,
            scope: scope?,
            signatures: signatures?,
            alert: alert?,
            examples: examples?,
            path: path.to_path_buf(),
        })
    })();
    let result = match built {
        Some(rem) if !r.has_errors() => Ok(rem),
        _ => {
            if !r.has_errors() {
                // Every `None` above comes with a diagnostic; this guards the invariant.
                let d = r.at(None, "rule file could not be read");
                r.push(d);
            }
            Err(r.finish())
        }
    };
    Parsed {
        result,
        id: id_for_dupes,
    }
}

/// `id`: non-empty, `[A-Za-z0-9_.-]+`, because it names state rows, dedup keys and mail ids.
fn parse_id(r: &mut Reader<'_>, item: &Item) -> Option<(String, Option<Range<usize>>)> {
    let s = r.non_empty_str("id", item)?;
    let ok = |c: char| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-');
    if let Some(bad) = s.chars().find(|c| !ok(*c)) {
        let what = if bad.is_whitespace() {
            "spaces are".to_string()
        } else {
            format!("`{bad}` is")
        };
        let d = r
            .at(item.span(), format!("invalid id `{s}`: {what} not allowed"))
            .with_label("invalid id")
            .with_hint("ids use only letters, digits, `_`, `.` and `-`");
        r.push(d);
        return None;
    }
    Some((s.to_string(), item.span()))
}

fn parse_fix(r: &mut Reader<'_>, root: &dyn TableLike) -> Option<Fix> {
    let Some(item) = root.get("fix") else {
        let d = r
            .at(Some(FILE_START), "missing required table `[fix]`")
            .with_label("`[fix]` is required")
            .with_hint(
                "add `[fix]` with `status = \"open\"`, or `status = \"fixed\"` and \
                 `fixed_at = \"2025-09-08T23:30:00Z\"`",
            );
        r.push(d);
        return None;
    };
    let t = r.table("fix", item)?;
    r.check_keys(t, FIX_KEYS, "`[fix]`");
    let header = item.span();
    let status_item = r.required(
        t,
        "status",
        header,
        "add `status = \"open\"` or `status = \"fixed\"`",
    );
    let status = status_item
        .and_then(|i| r.one_of("status", i, &["open", "fixed"]))
        .map(|s| {
            if s == "fixed" {
                FixStatus::Fixed
            } else {
                FixStatus::Open
            }
        });
    let fixed_at_item = t.get("fixed_at");
    let fixed_at = fixed_at_item.and_then(|i| r.timestamp("fixed_at", i));
    let deadline = t.get("deadline").and_then(|i| r.timestamp("deadline", i));
    let deadline_ok = t.get("deadline").is_none() || deadline.is_some();
    let verify = r.optional(t, "verify", DEFAULT_VERIFY, |r, i| r.duration("verify", i));

    match (status, fixed_at_item) {
        (Some(FixStatus::Fixed), None) => {
            let d = r
                .at(
                    status_item.and_then(Item::span),
                    "`fixed_at` is required when the fix is `fixed`",
                )
                .with_label("marked fixed here")
                .with_hint(
                    "add when the fix shipped: `fixed_at = \"2025-09-08T23:30:00Z\"`; \
                     events at or after it are recurrences",
                );
            r.push(d);
        }
        (Some(FixStatus::Open), Some(i)) => {
            let d = r
                .at(
                    key_span(t, "fixed_at", i),
                    "`fixed_at` is set but the fix is still `open`",
                )
                .with_label("fix time of an open remediation")
                .with_hint("set `status = \"fixed\"` if the fix has shipped, or remove `fixed_at`");
            r.push(d);
        }
        _ => {}
    }
    if !deadline_ok {
        return None;
    }
    Some(Fix {
        status: status?,
        fixed_at,
        deadline,
        verify: verify?,
    })
}

fn parse_alert(r: &mut Reader<'_>, root: &dyn TableLike, text: &str) -> Option<Alert> {
    let default = Alert::default();
    let Some(item) = root.get("alert") else {
        return Some(default);
    };
    let t = r.table("alert", item)?;
    r.check_keys(t, ALERT_KEYS, "`[alert]`");
    let max = i64::from(u32::MAX);
    let threshold = r.optional(t, "threshold", default.threshold, |r, i| {
        r.int("threshold", i, 1, max)
            .and_then(|n| u32::try_from(n).ok())
    });
    let window = r.optional(t, "window", default.window, |r, i| r.duration("window", i));
    let repeat = r.optional(t, "repeat", default.repeat, |r, i| r.duration("repeat", i));
    // An episode ends after a quiet `window` unless told otherwise: the same span that opened
    // it.
    let resolve = match t.get("resolve") {
        Some(i) => r.duration("resolve", i),
        None => window,
    };
    let channels = r.optional(t, "channels", Vec::new(), |r, i| {
        let list = r.str_array("channels", i)?;
        let mut ok = true;
        for (name, span) in &list {
            if name.trim().is_empty() {
                let d = r.at(span.clone(), "empty channel name").with_label("empty");
                r.push(d);
                ok = false;
            }
        }
        ok.then(|| list.into_iter().map(|(n, _)| n).collect())
    });
    let samples = r.optional(t, "samples", default.samples, |r, i| {
        r.int("samples", i, 0, max)
            .and_then(|n| u32::try_from(n).ok())
    });
    let template = r.optional(t, "template", None, |r, i| {
        let s = r.str("template", i)?;
        match crate::sink::render::check_template(s) {
            Ok(()) => Some(Some(s.to_string())),
            Err(e) => {
                let d = r
                    .at(
                        template_error_span(text, i.span(), s, &e),
                        format!(
                            "invalid template: {}{}",
                            e.detail().unwrap_or("syntax error"),
                            e.line()
                                .map(|l| format!(" (template line {l})"))
                                .unwrap_or_default()
                        ),
                    )
                    .with_label("template syntax error")
                    .with_hint("`[alert] template` is a minijinja (Jinja2) template; fields such as {{ remediation_id }}, {{ error_count }}, {{ previous_analysis }} are available");
                r.push(d);
                None
            }
        }
    });
    Some(Alert {
        threshold: threshold?,
        window: window?,
        repeat: repeat?,
        resolve: resolve?,
        channels: channels?,
        samples: samples?,
        template: template?,
    })
}

/// Where a template error is in the rule file: the exact bytes when the TOML string holds the
/// template verbatim (literal strings, or basic strings without escapes), else the whole value.
fn template_error_span(
    text: &str,
    item_span: Option<Range<usize>>,
    template: &str,
    e: &minijinja::Error,
) -> Option<Range<usize>> {
    let span = item_span?;
    let raw = text.get(span.clone())?;
    let (Some(range), Some(delim)) = (
        e.range(),
        ["'''", "\"\"\"", "'", "\""]
            .iter()
            .find(|d| raw.starts_with(**d)),
    ) else {
        return Some(span);
    };
    let mut start = span.start + delim.len();
    // A newline right after an opening triple quote is not part of the string.
    if delim.len() == 3 {
        if text[start..].starts_with("\r\n") {
            start += 2;
        } else if text[start..].starts_with('\n') {
            start += 1;
        }
    }
    let body = text.get(start..start + template.len());
    if body == Some(template) && range.end <= template.len() {
        let end = if range.end > range.start {
            range.end
        } else {
            range.start + 1
        };
        Some(start + range.start..start + end.min(template.len()))
    } else {
        Some(span)
    }
}

/// A table with the span of its header (`[[signature]]`) or of its braces.
type SpannedTable<'t> = (&'t dyn TableLike, Option<Range<usize>>);

/// The tables of an array-of-tables key (`[[signature]]`, or `signature = [{…}, …]`), each with
/// the span of its header.
fn tables_of<'t>(
    r: &mut Reader<'_>,
    root: &'t dyn TableLike,
    key: &str,
) -> Option<Vec<SpannedTable<'t>>> {
    let item = root.get(key)?;
    match item {
        Item::ArrayOfTables(a) => Some(a.iter().map(|t| (t as &dyn TableLike, t.span())).collect()),
        Item::Value(Value::Array(arr)) => {
            let mut out = Vec::new();
            for v in arr.iter() {
                match v.as_inline_table() {
                    Some(t) => out.push((t as &dyn TableLike, t.span())),
                    None => {
                        let d = r
                            .at(
                                v.span(),
                                format!("`{key}` must contain tables, found {}", describe_value(v)),
                            )
                            .with_label("expected a table");
                        r.push(d);
                    }
                }
            }
            Some(out)
        }
        Item::Table(t) => {
            let d = r
                .at(t.span(), format!("`[{key}]` must be written `[[{key}]]`"))
                .with_label("single brackets")
                .with_hint(format!(
                    "a rule can have several; each `[[{key}]]` (double brackets) starts one"
                ));
            r.push(d);
            None
        }
        other => {
            r.wrong_type(key, other, &format!("an array of tables (`[[{key}]]`)"));
            None
        }
    }
}

fn parse_signatures(r: &mut Reader<'_>, root: &dyn TableLike) -> Option<Vec<Signature>> {
    let Some(item) = root.get("signature") else {
        let d = r
            .at(Some(FILE_START), "missing `[[signature]]`")
            .with_label("a rule needs at least one signature")
            .with_hint(
                "add a `[[signature]]` table with the conditions that identify the error, \
                 e.g. `error_code = \"NO_TOKEN\"`",
            );
        r.push(d);
        return None;
    };
    let tables = tables_of(r, root, "signature")?;
    if tables.is_empty() {
        let d = r
            .at(item.span(), "no signatures")
            .with_label("empty")
            .with_hint("add at least one `[[signature]]` table");
        r.push(d);
        return None;
    }
    let mut out = Vec::with_capacity(tables.len());
    for (i, (t, span)) in tables.into_iter().enumerate() {
        if t.is_empty() {
            let d = r
                .at(span, format!("signature {} has no conditions", i + 1))
                .with_label("empty signature")
                .with_hint(
                    "add conditions, e.g. `error_code = \"NO_TOKEN\"`; an empty signature \
                     would match every event in scope",
                );
            r.push(d);
            continue;
        }
        out.push(Signature {
            conditions: conditions(r, t),
        });
    }
    Some(out)
}

fn parse_examples(r: &mut Reader<'_>, root: &dyn TableLike, text: &str) -> Option<Vec<Example>> {
    if root.get("example").is_none() {
        return Some(Vec::new());
    }
    let tables = tables_of(r, root, "example")?;
    let mut out = Vec::with_capacity(tables.len());
    for (t, span) in tables {
        r.check_keys(t, EXAMPLE_KEYS, "`[[example]]`");
        let line = r
            .required(
                t,
                "line",
                span.clone(),
                "add the log line to test, e.g. `line = '{\"error_code\":\"NO_TOKEN\"}'`",
            )
            .and_then(|i| r.str("line", i));
        let expect_match = r.optional(t, "match", true, |r, i| r.bool("match", i));
        if let (Some(line), Some(expect_match)) = (line, expect_match) {
            out.push(Example {
                line: line.to_string(),
                expect_match,
                source_line: span.map_or(1, |s| line_col(text, s.start).0),
            });
        }
    }
    Some(out)
}

/// Reads a condition table (`[scope]`, one `[[signature]]`). Errors are reported and the
/// faulty conditions left out; the caller knows from the reader whether any occurred.
fn conditions(r: &mut Reader<'_>, table: &dyn TableLike) -> Vec<Condition> {
    let mut out = Vec::new();
    for (name, item) in table.iter() {
        let path = if name == "_line" {
            FieldPath::Line
        } else {
            FieldPath::Field(vec![name.to_string()])
        };
        field(r, table, name, path, item, &mut out);
    }
    out
}

/// How a table in a condition position is read.
enum TableKind<'t> {
    /// `{ regex = '…' }`: exactly one key, an operator.
    Operator(&'static str, &'t Item),
    /// Nested fields: `auth = { present = false }`, `auth.present = false`, `[signature.auth]`.
    Nested,
    /// Already reported.
    Invalid,
}

fn classify<'t>(
    r: &mut Reader<'_>,
    path: &FieldPath,
    item: &Item,
    t: &'t dyn TableLike,
) -> TableKind<'t> {
    if t.is_empty() {
        let d = r
            .at(item.span(), format!("empty table for `{path}`"))
            .with_label("empty table")
            .with_hint(
                "write a value (`field = \"x\"`), an array of values, or one operator such as \
                 `{ regex = '…' }`",
            );
        r.push(d);
        return TableKind::Invalid;
    }
    let mut ops = t
        .iter()
        .filter_map(|(k, v)| OPERATORS.iter().find(|o| **o == k).map(|o| (*o, v)));
    let Some((op, value)) = ops.next() else {
        // No operator. A lone key that looks like a misspelt operator is almost certainly one
        // when written as an inline table (`{ regx = '…' }`), the documented operator syntax;
        // dotted keys and `[headers]` are how nested fields are written, so they are exempt
        // (`request.id = 5` must not be taken for a misspelt `ge`).
        let lone_inline = t.len() == 1 && item.is_inline_table() && !t.is_dotted();
        let typo = t
            .iter()
            .next()
            .filter(|(_, v)| lone_inline && !v.is_table_like())
            .and_then(|(name, v)| Some((name, v, suggest(name, OPERATORS.iter().copied())?)));
        if let Some((name, v, s)) = typo {
            let d = r
                .at(key_span(t, name, v), format!("unknown operator `{name}`"))
                .with_label("unknown operator")
                .with_hint(format!(
                    "did you mean `{s}`? (to match a nested field named `{name}`, write a \
                     dotted key: `{path}.{name} = …`)"
                ));
            r.push(d);
            return TableKind::Invalid;
        }
        return TableKind::Nested;
    };
    if t.len() == 1 {
        return TableKind::Operator(op, value);
    }
    let others: Vec<&str> = t.iter().map(|(k, _)| k).filter(|k| *k != op).collect();
    let d = if others.iter().all(|k| OPERATORS.contains(k)) {
        r.at(item.span(), format!("more than one operator for `{path}`"))
            .with_label(format!("`{op}` and {}", list(&others)))
            .with_hint("a condition takes exactly one operator")
    } else {
        r.at(
            item.span(),
            format!("operator `{op}` mixed with field keys for `{path}`"),
        )
        .with_label(format!("`{op}` and {}", list(&others)))
        .with_hint(
            "a table is either one operator (`{ regex = '…' }`) or nested fields \
             (`{ field = value }`), not both",
        )
    };
    r.push(d);
    TableKind::Invalid
}

/// One key of a condition table: a test on `path`, or a table of nested fields.
fn field(
    r: &mut Reader<'_>,
    parent: &dyn TableLike,
    name: &str,
    path: FieldPath,
    item: &Item,
    out: &mut Vec<Condition>,
) {
    let Some(t) = item.as_table_like() else {
        if let Some(test) = value_test(r, &path, item) {
            out.push(Condition { path, test });
        }
        return;
    };
    match classify(r, &path, item, t) {
        TableKind::Invalid => {}
        TableKind::Operator(op, value) => {
            if let Some(test) = operator_test(r, &path, op, value) {
                out.push(Condition { path, test });
            }
        }
        TableKind::Nested => match path {
            FieldPath::Line => {
                let d = r
                    .at(
                        key_span(parent, name, item),
                        "`_line` is the raw text of the record and has no fields",
                    )
                    .with_label("nested under `_line`")
                    .with_hint(
                        "test `_line` with a value or an operator, e.g. \
                         `_line = { contains = \"timeout\" }`",
                    );
                r.push(d);
            }
            FieldPath::Field(prefix) => {
                for (k, v) in t.iter() {
                    let mut p = prefix.clone();
                    p.push(k.to_string());
                    field(r, t, k, FieldPath::Field(p), v, out);
                }
            }
        },
    }
}

/// A plain value (equality) or an array (any of).
fn value_test(r: &mut Reader<'_>, path: &FieldPath, item: &Item) -> Option<Test> {
    match item.as_value() {
        Some(Value::Array(arr)) => {
            if arr.is_empty() {
                let d = r
                    .at(item.span(), format!("empty array for `{path}`"))
                    .with_label("matches nothing")
                    .with_hint("list the values to accept, e.g. `[\"a\", \"b\"]`");
                r.push(d);
                return None;
            }
            let mut values = Vec::with_capacity(arr.len());
            let mut ok = true;
            for v in arr.iter() {
                match scalar(r, path, v) {
                    Some(s) => values.push(s),
                    None => ok = false,
                }
            }
            ok.then_some(Test::AnyOf(values))
        }
        Some(v) => scalar(r, path, v).map(Test::Eq),
        None => {
            let d = r
                .at(
                    item.span(),
                    format!("`{path}` must be a value, an array or an operator table"),
                )
                .with_label(format!("found {}", describe(item)));
            r.push(d);
            None
        }
    }
}

/// A constant compared with equality.
fn scalar(r: &mut Reader<'_>, path: &FieldPath, v: &Value) -> Option<Scalar> {
    let (message, label, hint) = match v {
        Value::String(s) => return Some(Scalar::Str(s.value().clone())),
        // f64 is the model's number type; integers beyond 2^53 lose precision, as in JSON.
        Value::Integer(i) => return Some(Scalar::Num(*i.value() as f64)),
        Value::Float(f) if f.value().is_finite() => return Some(Scalar::Num(*f.value())),
        Value::Boolean(b) => return Some(Scalar::Bool(*b.value())),
        Value::Float(_) => (
            format!("`{path}` compares with a non-finite number"),
            "not a finite number",
            "NaN and infinity never equal a logged value".to_string(),
        ),
        Value::Datetime(dt) => (
            format!("`{path}` compares with a TOML date-time"),
            "unquoted date-time",
            format!(
                "quote it to compare with the text in the log: `\"{}\"`",
                dt.value()
            ),
        ),
        Value::Array(_) | Value::InlineTable(_) => (
            format!("`{path}` lists {} inside an array", describe_value(v)),
            "expected a plain value",
            "the values of an array must be strings, numbers or booleans".to_string(),
        ),
    };
    let d = r.at(v.span(), message).with_label(label).with_hint(hint);
    r.push(d);
    None
}

fn operator_test(r: &mut Reader<'_>, path: &FieldPath, op: &'static str, v: &Item) -> Option<Test> {
    match op {
        "regex" => {
            let s = r.str(op, v)?;
            match super::Pattern::new(s) {
                Ok(re) => Some(Test::Regex(re)),
                Err(e) => {
                    let d = r
                        .at(
                            v.span(),
                            format!("invalid regex for `{path}`: {}", regex_reason(&e)),
                        )
                        .with_label("invalid regex")
                        .with_hint(
                            "the syntax is Rust's `regex` crate (no look-around or \
                             backreferences); escape literal metacharacters with `\\`",
                        );
                    r.push(d);
                    None
                }
            }
        }
        "contains" => r.str(op, v).map(|s| Test::Contains(s.to_string())),
        "prefix" => r.str(op, v).map(|s| Test::Prefix(s.to_string())),
        "suffix" => r.str(op, v).map(|s| Test::Suffix(s.to_string())),
        "exists" => r.bool(op, v).map(Test::Exists),
        "not" => {
            let inner = match v.as_table_like() {
                None => value_test(r, path, v)?,
                Some(t) => match classify(r, path, v, t) {
                    TableKind::Operator(op2, v2) => operator_test(r, path, op2, v2)?,
                    TableKind::Invalid => return None,
                    TableKind::Nested => {
                        let d = r
                            .at(v.span(), format!("`not` for `{path}` takes a value, an array or one operator"))
                            .with_label("not an operator")
                            .with_hint("e.g. `{ not = \"x\" }`, `{ not = [\"a\", \"b\"] }` or `{ not = { regex = '…' } }`");
                        r.push(d);
                        return None;
                    }
                },
            };
            Some(Test::Not(Box::new(inner)))
        }
        "gt" | "ge" | "lt" | "le" => {
            let n = match v.as_value() {
                Some(Value::Integer(i)) => *i.value() as f64,
                Some(Value::Float(f)) if f.value().is_finite() => *f.value(),
                _ => {
                    r.wrong_type(op, v, "a finite number");
                    return None;
                }
            };
            Some(match op {
                "gt" => Test::Gt(n),
                "ge" => Test::Ge(n),
                "lt" => Test::Lt(n),
                _ => Test::Le(n),
            })
        }
        other => {
            // OPERATORS and this match are kept in step; a new operator must be handled here.
            let d = r.at(v.span(), format!("operator `{other}` is not supported"));
            r.push(d);
            None
        }
    }
}

#[cfg(test)]
mod tests;
