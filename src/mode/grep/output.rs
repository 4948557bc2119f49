//! How grep shows what it found: coloured lines, `--fields` and `--count-by` tables, and the
//! `--timeline` histogram.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use jiff::{SignedDuration, Timestamp};
use regex::Regex;
use serde_json::Value;

use crate::report::{format_time, group_thousands, table};

pub const MATCH: &str = "1;31";
pub const FIELD: &str = "36";
pub const PATH: &str = "35";
pub const LINE_NO: &str = "32";
pub const MARK: &str = "1;33";

/// `text` in an ANSI colour when `color` is on.
pub fn paint(text: &str, code: &str, color: bool) -> String {
    if color {
        format!("\u{1b}[{code}m{text}\u{1b}[0m")
    } else {
        text.to_string()
    }
}

/// A record as one printable line: its text, with a multi-line record (a JSON array element
/// spread over lines) compacted by dropping the whitespace outside strings, a BOM dropped.
pub fn one_line(text: &str) -> std::borrow::Cow<'_, str> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    if !text.contains('\n') {
        return std::borrow::Cow::Borrowed(text);
    }
    let text = text.trim();
    if !text.starts_with(['{', '[']) {
        // Not JSON: keep the words apart.
        return std::borrow::Cow::Owned(text.split_whitespace().collect::<Vec<_>>().join(" "));
    }
    let mut out = String::with_capacity(text.len());
    let (mut in_str, mut esc) = (false, false);
    for c in text.chars() {
        if in_str {
            out.push(c);
            if esc {
                esc = false;
            } else if c == '\\' {
                esc = true;
            } else if c == '"' {
                in_str = false;
            }
        } else if c == '"' {
            in_str = true;
            out.push(c);
        } else if !c.is_whitespace() {
            out.push(c);
        }
    }
    std::borrow::Cow::Owned(out)
}

/// Colours the pattern's matches and the tested fields' names in a line.
pub struct Highlighter {
    pattern: Option<Regex>,
    /// `"name"` followed by `:` (JSON) or `name=` (logfmt) for the tested fields.
    fields: Option<Regex>,
}

impl Highlighter {
    pub fn new(pattern: Option<Regex>, names: &[String]) -> Self {
        let fields = (!names.is_empty()).then(|| {
            let alt = names
                .iter()
                .map(|n| regex::escape(n))
                .collect::<Vec<_>>()
                .join("|");
            Regex::new(&format!(r#""({alt})"\s*:|(?:^|\s)({alt})="#)).expect("escaped names")
        });
        Highlighter { pattern, fields }
    }

    pub fn paint(&self, line: &str) -> String {
        let mut spans: Vec<(usize, usize, &str)> = Vec::new();
        if let Some(re) = &self.pattern {
            spans.extend(
                re.find_iter(line)
                    .filter(|m| !m.is_empty())
                    .map(|m| (m.start(), m.end(), MATCH)),
            );
        }
        if let Some(re) = &self.fields {
            for c in re.captures_iter(line) {
                if let Some(m) = c.get(1).or_else(|| c.get(2)) {
                    spans.push((m.start(), m.end(), FIELD));
                }
            }
        }
        if spans.is_empty() {
            return line.to_string();
        }
        // Pattern matches were pushed first; a field name overlapping one is dropped.
        let mut kept: Vec<(usize, usize, &str)> = Vec::new();
        for s in spans {
            if kept.iter().all(|k| s.1 <= k.0 || s.0 >= k.1) {
                kept.push(s);
            }
        }
        kept.sort_unstable();
        let mut out = String::with_capacity(line.len() + kept.len() * 10);
        let mut at = 0;
        for (s, e, code) in kept {
            out.push_str(&line[at..s]);
            let _ = write!(out, "\u{1b}[{code}m{}\u{1b}[0m", &line[s..e]);
            at = e;
        }
        out.push_str(&line[at..]);
        out
    }
}

/// A field's value as a table cell: strings as they are, other values as JSON, `-` when absent;
/// line breaks and tabs become spaces so columns stay aligned.
pub fn cell(v: Option<&Value>) -> String {
    let s = match v {
        None => return "-".into(),
        Some(Value::String(s)) => s.clone(),
        Some(v) => v.to_string(),
    };
    s.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

/// `--fields` output: a header of the field names and one aligned row per event.
pub fn fields_table(names: &[String], rows: &[Vec<String>]) -> String {
    let headers: Vec<&str> = names.iter().map(String::as_str).collect();
    table(&headers, rows)
}

/// `--count-by` output: value(s), count and share, most frequent first (ties by value).
pub fn count_table(names: &[String], counts: &BTreeMap<Vec<String>, u64>) -> String {
    let total: u64 = counts.values().sum();
    let mut rows: Vec<(&Vec<String>, u64)> = counts.iter().map(|(k, n)| (k, *n)).collect();
    rows.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(b.0)));
    let mut headers: Vec<&str> = names.iter().map(String::as_str).collect();
    headers.push("COUNT");
    headers.push("SHARE");
    let cells: Vec<Vec<String>> = rows
        .iter()
        .map(|(k, n)| {
            let mut r = (*k).clone();
            r.push(group_thousands(*n));
            r.push(format!("{:.1}%", *n as f64 * 100.0 / total.max(1) as f64));
            r
        })
        .collect();
    let mut out = table(&headers, &cells);
    let _ = writeln!(
        out,
        "{} distinct, {} events",
        group_thousands(rows.len() as u64),
        group_thousands(total)
    );
    out
}

/// Bucket sizes `--timeline` chooses from, in seconds.
const NICE_BUCKETS: &[i64] = &[
    1,
    5,
    10,
    30,
    60,
    5 * 60,
    10 * 60,
    15 * 60,
    30 * 60,
    3600,
    3 * 3600,
    6 * 3600,
    12 * 3600,
    86400,
    7 * 86400,
    30 * 86400,
    365 * 86400,
];
/// The most buckets an automatic timeline draws.
pub const AUTO_BUCKETS: i64 = 48;
/// The most buckets any timeline draws; a finer bucket given by hand is coarsened.
pub const MAX_BUCKETS: i64 = 2000;
const BAR_WIDTH: u64 = 40;

/// The smallest nice bucket size (seconds) that covers `[min, max]` in at most `limit` buckets.
pub fn auto_bucket(min: i64, max: i64, limit: i64) -> i64 {
    let span = (max - min).max(0) + 1;
    for &b in NICE_BUCKETS {
        if (span + b - 1) / b < limit {
            return b;
        }
    }
    *NICE_BUCKETS.last().unwrap()
}

/// `90` → `1m30s`: a bucket size as a duration word.
pub fn duration_word(secs: i64) -> String {
    let mut out = String::new();
    let mut rest = secs;
    for (unit, n) in [("d", 86400), ("h", 3600), ("m", 60), ("s", 1)] {
        if rest >= n {
            let _ = write!(out, "{}{unit}", rest / n);
            rest %= n;
        }
    }
    if out.is_empty() { "0s".into() } else { out }
}

/// What `--timeline` draws.
pub struct Timeline<'a> {
    /// Event counts per second (UTC epoch seconds).
    pub seconds: &'a BTreeMap<i64, u64>,
    /// Bucket size in seconds.
    pub bucket: i64,
    /// Matched events without a time.
    pub untimed: u64,
    /// `--rule`'s fix: marked between the buckets.
    pub fixed_at: Option<(Timestamp, &'a str)>,
    pub color: bool,
}

impl Timeline<'_> {
    /// The histogram: one line per bucket (empty ones included, so gaps show), bars scaled to
    /// the fullest bucket, the fix marked where it falls.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let (Some((&first, _)), Some((&last, _))) = (
            self.seconds.first_key_value(),
            self.seconds.last_key_value(),
        ) else {
            if self.untimed > 0 {
                let _ = writeln!(
                    out,
                    "no timed events ({} without a time)",
                    group_thousands(self.untimed)
                );
            }
            return out;
        };
        let b = self.bucket;
        let start = first.div_euclid(b) * b;
        let end = last.div_euclid(b) * b;
        let mut counts: BTreeMap<i64, u64> = BTreeMap::new();
        for (&s, &n) in self.seconds {
            *counts.entry(s.div_euclid(b) * b).or_default() += n;
        }
        let max = counts.values().copied().max().unwrap_or(1).max(1);
        let total: u64 = counts.values().sum();
        let count_w = group_thousands(max).len();
        let _ = writeln!(
            out,
            "{:<20}  {:>count_w$}  (UTC, {} buckets)",
            "TIME",
            "COUNT",
            duration_word(b),
            count_w = count_w.max(5)
        );
        let fix = self.fixed_at.map(|(t, id)| (t.as_second(), t, id));
        let mut fix_drawn = false;
        let marker = |out: &mut String, inside: bool, t: Timestamp, id: &str| {
            let note = if inside {
                " (inside the bucket above)"
            } else {
                ""
            };
            let text = format!("── fixed_at {} {id}{note} ──", format_time(t));
            let _ = writeln!(out, "{}", paint(&text, MARK, self.color));
        };
        let mut bucket = start;
        while bucket <= end {
            if let Some((s, t, id)) = fix
                && !fix_drawn
                && s <= bucket
            {
                marker(&mut out, false, t, id);
                fix_drawn = true;
            }
            let n = counts.get(&bucket).copied().unwrap_or(0);
            let label = Timestamp::from_second(bucket)
                .map(|t| t.strftime("%Y-%m-%d %H:%M:%SZ").to_string())
                .unwrap_or_else(|_| bucket.to_string());
            let _ = write!(
                out,
                "{label:<20}  {:>count_w$}",
                group_thousands(n),
                count_w = count_w.max(5)
            );
            if n > 0 {
                let _ = write!(out, "  {}", paint(&bar(n, max), MATCH, self.color));
            }
            out.push('\n');
            if let Some((s, t, id)) = fix
                && !fix_drawn
                && s > bucket
                && s < bucket + b
            {
                marker(&mut out, true, t, id);
                fix_drawn = true;
            }
            bucket += b;
        }
        if let (Some((_, t, id)), false) = (fix, fix_drawn) {
            marker(&mut out, false, t, id);
        }
        let (t0, t1) = (
            Timestamp::from_second(first).ok(),
            Timestamp::from_second(last).ok(),
        );
        let _ = write!(out, "{} events", group_thousands(total));
        if let (Some(a), Some(z)) = (t0, t1) {
            let _ = write!(out, " from {} to {}", format_time(a), format_time(z));
        }
        if self.untimed > 0 {
            let _ = write!(
                out,
                "; {} without a time (not drawn)",
                group_thousands(self.untimed)
            );
        }
        out.push('\n');
        out
    }
}

/// A bar of eighths of a block, at least a sliver for any non-zero count.
fn bar(n: u64, max: u64) -> String {
    if n == 0 {
        return String::new();
    }
    let eighths = (n * BAR_WIDTH * 8).div_ceil(max).max(1);
    let mut s = "█".repeat((eighths / 8) as usize);
    const PARTS: [&str; 8] = ["", "▏", "▎", "▍", "▌", "▋", "▊", "▉"];
    s.push_str(PARTS[(eighths % 8) as usize]);
    s
}

/// `--timeline`'s bucket size in seconds; `None` chooses one from the data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bucket(pub Option<i64>);

/// Parses `--timeline`'s bucket: `auto` or a duration (`15m`, `1h`, `1d`).
pub fn parse_bucket(s: &str) -> Result<Bucket, String> {
    if s == "auto" {
        return Ok(Bucket(None));
    }
    let d: SignedDuration = crate::duration::parse_duration(s).map_err(|e| e.to_string())?;
    let secs = d.as_secs();
    if secs < 1 {
        return Err(format!("`{s}`: a timeline bucket is at least 1s"));
    }
    Ok(Bucket(Some(secs)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_compacts_json_but_not_strings() {
        assert_eq!(one_line("plain"), "plain");
        assert_eq!(
            one_line("{\n  \"a\": \"x  y\\\" \",\n  \"b\": [1, 2] \n}"),
            r#"{"a":"x  y\" ","b":[1,2]}"#
        );
        assert_eq!(one_line("\u{feff}{\"a\":1}"), r#"{"a":1}"#);
    }

    #[test]
    fn highlight_matches_and_field_names() {
        let h = Highlighter::new(Some(Regex::new("NO_TOKEN").unwrap()), &["env".into()]);
        let s = h.paint(r#"{"env": "staging","code":"NO_TOKEN"} env=x"#);
        assert_eq!(
            s,
            "{\"\u{1b}[36menv\u{1b}[0m\": \"staging\",\"code\":\"\u{1b}[1;31mNO_TOKEN\u{1b}[0m\"} \u{1b}[36menv\u{1b}[0m=x"
        );
    }

    #[test]
    fn buckets() {
        assert_eq!(auto_bucket(0, 59, 48), 5);
        assert_eq!(auto_bucket(0, 3 * 86400, 48), 3 * 3600);
        assert_eq!(auto_bucket(0, 0, 48), 1);
        assert_eq!(duration_word(5400), "1h30m");
        assert_eq!(parse_bucket("auto"), Ok(Bucket(None)));
        assert_eq!(parse_bucket("15m"), Ok(Bucket(Some(900))));
        assert!(parse_bucket("5").is_err());
        assert_eq!(bar(0, 10), "");
        assert_eq!(bar(10, 10).chars().count(), 40);
        assert_eq!(bar(1, 1000), "▏");
    }

    #[test]
    fn timeline_marks_the_fix_where_it_falls() {
        let seconds: BTreeMap<i64, u64> = [(0, 2), (7200, 1)].into_iter().collect();
        let draw = |fix: i64| {
            Timeline {
                seconds: &seconds,
                bucket: 3600,
                untimed: 1,
                fixed_at: Some((Timestamp::from_second(fix).unwrap(), "R")),
                color: false,
            }
            .render()
        };
        let lines = |s: String| s.lines().map(str::to_string).collect::<Vec<_>>();
        // On a bucket boundary: between the buckets.
        let l = lines(draw(3600));
        assert!(
            l[2].starts_with("── fixed_at 1970-01-01 01:00:00Z R ──"),
            "{l:?}"
        );
        assert!(l[3].starts_with("1970-01-01 01:00:00Z      0"), "{l:?}");
        // Inside a bucket: after it, saying so.
        let l = lines(draw(1800));
        assert!(l[2].contains("(inside the bucket above)"), "{l:?}");
        // Before the first and after the last event.
        assert!(lines(draw(-5))[1].starts_with("── fixed_at"));
        assert!(lines(draw(99_999))[4].starts_with("── fixed_at"));
        assert!(draw(0).ends_with("3 events from 1970-01-01 00:00:00Z to 1970-01-01 02:00:00Z; 1 without a time (not drawn)\n"));
    }
}
