//! Reading a TOML document while collecting located [`Diagnostic`]s.
//!
//! Rule files and `recur.toml` share the same needs: every value is type-checked where it
//! stands, unknown keys get a "did you mean" hint, and nothing stops at the first error. The
//! parse keeps spans (`toml_edit::Document`), so each check can point at the key or value it is
//! about. Getters return `None` after reporting, letting callers carry on with the next key.

use std::ops::Range;
use std::path::Path;

use jiff::{SignedDuration, Timestamp};
use toml_edit::{Document, Item, TableLike, Value};

use super::Diagnostic;
use crate::duration::parse_duration;

/// Collects the diagnostics of one file.
#[derive(Debug)]
pub struct Reader<'p> {
    path: &'p Path,
    diags: Vec<Diagnostic>,
    /// Keys proposed by "did you mean" hints: `ownr = …` already tells the user about
    /// `owner`, so a second "missing `owner`" error would only be noise.
    suggested: Vec<String>,
}

/// The span at the very start of a file: where "missing key" errors of the root table point,
/// since the root table has no header to underline.
pub const FILE_START: Range<usize> = 0..0;

impl<'p> Reader<'p> {
    pub fn new(path: &'p Path) -> Self {
        Reader {
            path,
            diags: Vec::new(),
            suggested: Vec::new(),
        }
    }

    pub fn path(&self) -> &'p Path {
        self.path
    }

    /// A new diagnostic in this file (push it with [`Reader::push`]).
    pub fn at(&self, span: Option<Range<usize>>, message: impl Into<String>) -> Diagnostic {
        Diagnostic::new(self.path, span, message)
    }

    pub fn push(&mut self, d: Diagnostic) {
        self.diags.push(d);
    }

    pub fn has_errors(&self) -> bool {
        !self.diags.is_empty()
    }

    /// Every diagnostic, in file order (whole-file ones first), so they read top to bottom.
    pub fn finish(mut self) -> Vec<Diagnostic> {
        self.diags
            .sort_by_key(|d| d.span.as_ref().map(|s| (s.start, s.end)));
        self.diags
    }

    /// Parses the text; a syntax error becomes one diagnostic at the parser's span.
    pub fn parse<'t>(&mut self, text: &'t str) -> Option<Document<&'t str>> {
        match Document::parse(text) {
            Ok(doc) => Some(doc),
            Err(e) => {
                let span = e.span().unwrap_or(FILE_START);
                let d = self
                    .at(Some(span), format!("invalid TOML: {}", e.message()))
                    .with_label(e.message().to_string());
                self.push(d);
                None
            }
        }
    }

    /// Reports every key of `table` not in `known`, with a suggestion when one is close.
    /// `context` names the table in the hint (`[fix]`, `the rule file`).
    pub fn check_keys(&mut self, table: &dyn TableLike, known: &[&str], context: &str) {
        for (name, item) in table.iter() {
            if known.contains(&name) {
                continue;
            }
            let span = key_span(table, name, item);
            let what = if item.is_table() || item.is_array_of_tables() {
                "table"
            } else {
                "key"
            };
            let hint = match suggest(name, known.iter().copied()) {
                Some(s) => {
                    self.suggested.push(s.to_string());
                    format!("did you mean `{s}`?")
                }
                None => format!("{context} accepts {}", list(known)),
            };
            let d = self
                .at(span, format!("unknown {what} `{name}`"))
                .with_label(format!("unknown {what}"))
                .with_hint(hint);
            self.push(d);
        }
    }

    /// The value of a required key, or a "missing" error at `span` (the table's header).
    /// Call [`Reader::check_keys`] on the table first, so that a misspelling of the key is
    /// reported once, as a misspelling.
    pub fn required<'t>(
        &mut self,
        table: &'t dyn TableLike,
        key: &str,
        span: Option<Range<usize>>,
        hint: impl Into<String>,
    ) -> Option<&'t Item> {
        let item = table.get(key);
        if item.is_none() && !self.suggested.iter().any(|s| s == key) {
            self.missing(key, span, hint);
        }
        item
    }

    /// `check(value)` when the key is present, else `Some(default)`.
    pub fn optional<T>(
        &mut self,
        table: &dyn TableLike,
        key: &str,
        default: T,
        check: impl FnOnce(&mut Self, &Item) -> Option<T>,
    ) -> Option<T> {
        match table.get(key) {
            Some(item) => check(self, item),
            None => Some(default),
        }
    }

    /// Reports a required key that is absent; `span` is the table's header (or file start).
    pub fn missing(&mut self, key: &str, span: Option<Range<usize>>, hint: impl Into<String>) {
        let d = self
            .at(span, format!("missing required key `{key}`"))
            .with_label(format!("`{key}` is required here"))
            .with_hint(hint);
        self.push(d);
    }

    /// Reports that `key`'s value has the wrong type. Quoted numbers and booleans get a hint to
    /// drop the quotes, since that is by far the most common cause.
    pub fn wrong_type(&mut self, key: &str, item: &Item, expected: &str) {
        let mut d = self
            .at(
                item.span(),
                format!("`{key}` must be {expected}, found {}", describe(item)),
            )
            .with_label(format!("expected {expected}"));
        if let Some(s) = item.as_str() {
            let unquoted = (expected.contains("integer") && s.trim().parse::<i64>().is_ok())
                || (expected.contains("number") && s.trim().parse::<f64>().is_ok())
                || (expected.contains("boolean") && matches!(s.trim(), "true" | "false"));
            if unquoted {
                d = d.with_hint(format!("remove the quotes: `{key} = {}`", s.trim()));
            }
        }
        self.push(d);
    }

    /// The table at `item`, or a type error. Accepts `[headers]`, dotted keys and inline tables.
    pub fn table<'t>(&mut self, key: &str, item: &'t Item) -> Option<&'t dyn TableLike> {
        match item.as_table_like() {
            Some(t) => Some(t),
            None => {
                self.wrong_type(key, item, "a table");
                None
            }
        }
    }

    pub fn str<'t>(&mut self, key: &str, item: &'t Item) -> Option<&'t str> {
        match item.as_str() {
            Some(s) => Some(s),
            None => {
                self.wrong_type(key, item, "a string");
                None
            }
        }
    }

    /// A string that must not be empty (or blank).
    pub fn non_empty_str<'t>(&mut self, key: &str, item: &'t Item) -> Option<&'t str> {
        let s = self.str(key, item)?;
        if s.trim().is_empty() {
            let d = self
                .at(item.span(), format!("`{key}` must not be empty"))
                .with_label("empty");
            self.push(d);
            return None;
        }
        Some(s)
    }

    pub fn bool(&mut self, key: &str, item: &Item) -> Option<bool> {
        match item.as_bool() {
            Some(b) => Some(b),
            None => {
                self.wrong_type(key, item, "a boolean (`true` or `false`)");
                None
            }
        }
    }

    /// An integer within `min..=max`.
    pub fn int(&mut self, key: &str, item: &Item, min: i64, max: i64) -> Option<i64> {
        let Some(n) = item.as_integer() else {
            self.wrong_type(key, item, "an integer");
            return None;
        };
        if n < min || n > max {
            let range = if max == i64::MAX {
                format!("at least {min}")
            } else {
                format!("between {min} and {max}")
            };
            let d = self
                .at(item.span(), format!("`{key}` must be {range}, found {n}"))
                .with_label("out of range");
            self.push(d);
            return None;
        }
        Some(n)
    }

    /// A positive human duration (`"24h"`), checked with [`parse_duration`].
    pub fn duration(&mut self, key: &str, item: &Item) -> Option<SignedDuration> {
        let Some(s) = item.as_str() else {
            let mut d = self
                .at(
                    item.span(),
                    format!(
                        "`{key}` must be a duration string, found {}",
                        describe(item)
                    ),
                )
                .with_label("expected a duration string");
            if let Some(n) = item.as_integer() {
                d = d.with_hint(format!(
                    "durations need a unit and quotes: `{key} = \"{n}s\"`, \"{n}m\" or \"{n}h\""
                ));
            } else {
                d = d.with_hint(format!("write e.g. `{key} = \"1h\"`"));
            }
            self.push(d);
            return None;
        };
        match parse_duration(s) {
            Ok(dur) if dur.is_positive() => Some(dur),
            Ok(_) => {
                let d = self
                    .at(item.span(), format!("`{key}` must be longer than zero"))
                    .with_label("zero duration");
                self.push(d);
                None
            }
            Err(e) => {
                let d = self
                    .at(item.span(), format!("invalid duration for `{key}`: {e}"))
                    .with_label("invalid duration")
                    .with_hint("units are ms, s, m, h, d and w; e.g. \"90m\", \"24h\", \"1h30m\"");
                self.push(d);
                None
            }
        }
    }

    /// An RFC 3339 instant: a string (`"2025-09-08T23:30:00Z"`) or a native TOML offset
    /// date-time. Times without an offset are refused: a fix time read in the wrong zone would
    /// silently turn occurrences into recurrences or hide them.
    pub fn timestamp(&mut self, key: &str, item: &Item) -> Option<Timestamp> {
        let text = match item.as_value() {
            Some(Value::String(s)) => s.value().clone(),
            Some(Value::Datetime(dt)) => {
                let dt = dt.value();
                if dt.offset.is_none() {
                    let d = self
                        .at(item.span(), format!("`{key}` has no UTC offset"))
                        .with_label("local date-time")
                        .with_hint(format!("add the offset, e.g. `{key} = {dt}Z` for UTC"));
                    self.push(d);
                    return None;
                }
                dt.to_string()
            }
            _ => {
                self.wrong_type(key, item, "an RFC 3339 timestamp");
                return None;
            }
        };
        match text.trim().parse::<Timestamp>() {
            Ok(ts) => Some(ts),
            Err(e) => {
                let d = self
                    .at(item.span(), format!("invalid timestamp for `{key}`: {e}"))
                    .with_label("invalid timestamp")
                    .with_hint(format!(
                        "use RFC 3339 with an offset, e.g. `{key} = \"2025-09-08T23:30:00Z\"`"
                    ));
                self.push(d);
                None
            }
        }
    }

    /// One of a fixed set of words (`severity`, `status`, `type`), with a suggestion.
    pub fn one_of(
        &mut self,
        key: &str,
        item: &Item,
        names: &[&'static str],
    ) -> Option<&'static str> {
        let s = self.str(key, item)?;
        if let Some(n) = names.iter().find(|n| **n == s) {
            return Some(n);
        }
        let hint = match suggest(s, names.iter().copied()) {
            Some(n) => format!("did you mean `{n}`?"),
            None => format!("use one of {}", list(names)),
        };
        let d = self
            .at(item.span(), format!("unknown {key} `{s}`"))
            .with_label(format!("expected one of {}", list(names)))
            .with_hint(hint);
        self.push(d);
        None
    }

    /// An array of strings, each with its span (for later checks such as channel names).
    pub fn str_array(
        &mut self,
        key: &str,
        item: &Item,
    ) -> Option<Vec<(String, Option<Range<usize>>)>> {
        let Some(arr) = item.as_array() else {
            self.wrong_type(key, item, "an array of strings");
            return None;
        };
        let mut out = Vec::with_capacity(arr.len());
        let mut ok = true;
        for v in arr.iter() {
            match v.as_str() {
                Some(s) => out.push((s.to_string(), v.span())),
                None => {
                    let d = self
                        .at(
                            v.span(),
                            format!(
                                "`{key}` must contain only strings, found {}",
                                describe_value(v)
                            ),
                        )
                        .with_label("expected a string");
                    self.push(d);
                    ok = false;
                }
            }
        }
        ok.then_some(out)
    }
}

/// The best span for a key of `table`: the key itself, else its value.
pub fn key_span(table: &dyn TableLike, name: &str, item: &Item) -> Option<Range<usize>> {
    table
        .key(name)
        .and_then(|k| k.span())
        .or_else(|| item.span())
}

/// "a string", "an integer", … for messages.
pub fn describe(item: &Item) -> &'static str {
    match item {
        Item::None => "nothing",
        Item::Table(_) => "a table",
        Item::ArrayOfTables(_) => "an array of tables",
        Item::Value(v) => describe_value(v),
    }
}

/// "a string", "an integer", … for a value.
pub fn describe_value(v: &Value) -> &'static str {
    match v {
        Value::String(_) => "a string",
        Value::Integer(_) => "an integer",
        Value::Float(_) => "a float",
        Value::Boolean(_) => "a boolean",
        Value::Datetime(_) => "a date-time",
        Value::Array(_) => "an array",
        Value::InlineTable(_) => "an inline table",
    }
}

/// `` `a`, `b` or `c` `` for hints.
pub fn list(names: &[&str]) -> String {
    match names {
        [] => String::new(),
        [one] => format!("`{one}`"),
        [init @ .., last] => {
            let init: Vec<String> = init.iter().map(|n| format!("`{n}`")).collect();
            format!("{} or `{last}`", init.join(", "))
        }
    }
}

/// The closest candidate to a misspelt `word`, if it is close enough to be a likely typo.
///
/// Closeness is the Damerau–Levenshtein distance (a swap counts as one edit): at most 2, or 1
/// when either word is 3 characters or fewer, because with short words two edits turn almost
/// anything into anything (`id` is two edits from `gt`).
pub fn suggest<'c>(word: &str, candidates: impl IntoIterator<Item = &'c str>) -> Option<&'c str> {
    candidates
        .into_iter()
        .filter_map(|c| {
            let d = strsim::damerau_levenshtein(word, c);
            let max = if word.chars().count().min(c.chars().count()) <= 3 {
                1
            } else {
                2
            };
            (d <= max && d > 0).then_some((d, c))
        })
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

/// The last line of a `regex` error ("unclosed group"), without the pattern echo and caret
/// that the full message spreads over several lines; the caret in our rendering replaces it.
pub fn regex_reason(e: &regex::Error) -> String {
    let full = e.to_string();
    let last = full
        .lines()
        .rev()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or("invalid regex");
    last.strip_prefix("error: ").unwrap_or(last).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggestions() {
        let keys = ["id", "title", "owner", "severity"];
        assert_eq!(suggest("ownr", keys), Some("owner"));
        assert_eq!(suggest("tilte", keys), Some("title"));
        assert_eq!(suggest("severty", keys), Some("severity"));
        assert_eq!(suggest("zzz", keys), None);
        assert_eq!(suggest("ab", ["id"]), None);
        assert_eq!(
            suggest("regx", crate::rule::OPERATORS.iter().copied()),
            Some("regex")
        );
        assert_eq!(suggest("gte", ["gt"]), Some("gt"));
        assert_eq!(suggest("id", ["gt", "ge", "lt", "le"]), None);
    }

    #[test]
    fn lists() {
        assert_eq!(list(&["a"]), "`a`");
        assert_eq!(list(&["a", "b", "c"]), "`a`, `b` or `c`");
    }
}
