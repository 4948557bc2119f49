//! Differential test of the hot path: [`crate::search::search`] (whole-block literal and keyed
//! prefilter, per-record fallback for damaged blocks, decoding of candidates only) must report
//! exactly the occurrences that decoding every line and evaluating every rule on it
//! ([`Matcher::evaluate_all`]) reports.
//!
//! Rules go through the real loader; events are rendered in the spellings the prefilter has to
//! see through (reordered and duplicate keys, blanks around `:` and `,`, nested objects, arrays,
//! `\uXXXX` escapes in keys and values, `\/`, look-alike values in other fields, numbers against
//! numeric strings), inside Docker and GCP envelopes, as logfmt and plain text, and mixed with
//! broken lines. Inputs are read whole or in short reads, so that blocks of lines start and end
//! everywhere, and with a small line cap as well as the usual one.

use std::fmt::Write as _;
use std::io::{Cursor, Read};
use std::path::Path;
use std::sync::Arc;

use proptest::prelude::*;
use proptest::sample::select;

use crate::decode::{self, DecodeConfig, Event, RecordMeta};
use crate::matcher::{CoverageMode, Hit, Matcher};
use crate::rule::{Remediation, parse_rule_file};
use crate::search::{self, InvalidTally, SearchConfig, Sink, Stats};
use crate::source::framing::{Framing, Record, RecordReader};

// ---------------------------------------------------------------------------------------------
// The two evaluators
// ---------------------------------------------------------------------------------------------

/// `(line, rule, signature)` of every occurrence, in order.
type Occurrences = Vec<(u64, usize, usize)>;

#[derive(Default)]
struct Collect {
    hits: Occurrences,
    /// Hits other than occurrences (there must be none with coverage off).
    other: usize,
}

impl Sink for Collect {
    fn hits(&mut self, record: &Record<'_>, _event: &Event, hits: &[Hit]) {
        for h in hits {
            match *h {
                Hit::Occurrence { rule, signature } => {
                    self.hits.push((record.line, rule, signature))
                }
                Hit::InScope { .. } => self.other += 1,
            }
        }
    }
}

/// A reader that hands out at most `max` bytes per call, so that the record reader cuts blocks
/// at every possible place.
struct Trickle {
    inner: Cursor<Vec<u8>>,
    max: usize,
}

impl Read for Trickle {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = buf.len().min(self.max);
        self.inner.read(&mut buf[..n])
    }
}

/// What the fast path reports: occurrences (sorted, duplicates kept) and the record count.
fn fast_path(
    matcher: &Matcher,
    input: &[u8],
    cap: usize,
    read: Option<usize>,
) -> (Occurrences, u64) {
    fn run<R: Read>(matcher: &Matcher, mut reader: RecordReader<R>) -> (Occurrences, u64) {
        // Candidates decoded as `scan` decodes them: only the fields the rules use.
        let cfg = SearchConfig {
            keep: Some(matcher.keep(&DecodeConfig::default())),
            decode: DecodeConfig::default(),
            since: None,
            until: None,
        };
        let mut sink = Collect::default();
        let mut stats = Stats::default();
        let mut invalid = InvalidTally::default();
        search::search(
            &mut reader,
            matcher,
            &cfg,
            &mut sink,
            &mut stats,
            &mut invalid,
        )
        .expect("in-memory input");
        assert_eq!(sink.other, 0, "coverage is off: occurrences only");
        sink.hits.sort_unstable();
        (sink.hits, stats.records)
    }
    match read {
        None => run(
            matcher,
            RecordReader::new(Cursor::new(input.to_vec()), Framing::Lines, cap),
        ),
        Some(max) => run(
            matcher,
            RecordReader::new(
                Trickle {
                    inner: Cursor::new(input.to_vec()),
                    max,
                },
                Framing::Lines,
                cap,
            ),
        ),
    }
}

/// The lines of `input` as the reader cuts them: a leading BOM dropped, split on `\n`, a last
/// line without newline included.
fn split_lines(input: &[u8]) -> Vec<&[u8]> {
    let input = input.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(input);
    let mut lines: Vec<&[u8]> = input.split(|&b| b == b'\n').collect();
    if input.is_empty() || input.ends_with(b"\n") {
        lines.pop();
    }
    lines
}

/// The plain evaluator: every line checked, decoded in full and given to every rule.
fn reference(matcher: &Matcher, input: &[u8], cap: usize) -> (Occurrences, u64) {
    let lines = split_lines(input);
    let cap = cap.max(1024);
    let mut out = Vec::new();
    for (i, raw) in lines.iter().enumerate() {
        // Over the cap (measured with the `\r`): skipped by the reader.
        if raw.len() > cap {
            continue;
        }
        let line = raw.strip_suffix(b"\r").unwrap_or(raw);
        // Invalid before decoding: NUL, invalid UTF-8, an object that is not closed.
        if line.contains(&0) || std::str::from_utf8(line).is_err() {
            continue;
        }
        let trimmed = line.trim_ascii();
        if trimmed.first() == Some(&b'{') && trimmed.last() != Some(&b'}') {
            continue;
        }
        let Ok(event) = decode::decode(line, &RecordMeta::default(), &DecodeConfig::default())
        else {
            continue;
        };
        let n = i as u64 + 1;
        matcher.evaluate_all(&event, |h| {
            if let Hit::Occurrence { rule, signature } = h {
                out.push((n, rule, signature));
            }
        });
    }
    out.sort_unstable();
    (out, lines.len() as u64)
}

fn load(tomls: &[String]) -> Matcher {
    let rules: Vec<Remediation> = tomls
        .iter()
        .map(|t| {
            parse_rule_file(Path::new("r.toml"), t)
                .unwrap_or_else(|d| panic!("generated rule does not load:\n{t}\n{d:#?}"))
        })
        .collect();
    Matcher::new(Arc::<[Remediation]>::from(rules), CoverageMode::Off)
}

fn show_input(input: &[u8]) -> String {
    let mut s = String::new();
    for (i, l) in split_lines(input).iter().enumerate() {
        let _ = writeln!(s, "{:>4}: {}", i + 1, l.escape_ascii());
    }
    s
}

// ---------------------------------------------------------------------------------------------
// Rules
// ---------------------------------------------------------------------------------------------

/// Field paths rules test, as written in TOML: a nested path, a quoted key with a dot, the
/// same dotted path unquoted (a nested `log.level`), synthesised fields, the raw line.
const RULE_FIELDS: &[&str] = &[
    "error_code",
    "code",
    "env",
    "auth.reason",
    "\"log.level\"",
    "log.level",
    "msg",
    "message",
    "stream",
    "_line",
    "level",
];

/// Values equality compares with: look-alikes, blanks, escapable bytes, numeric strings, the
/// empty string, delimiters that end a bare logfmt value when read raw, self-overlapping ones.
const RULE_STRS: &[&str] = &[
    "NO_TOKEN",
    "NO_TOKEN_SCOPE",
    "XNO_TOKEN",
    "UPSTREAM_TIMEOUT",
    "OK",
    "staging",
    "production",
    "stderr",
    "stdout",
    "a b",
    "no token here",
    "/api/ws",
    "say \"hi\"",
    "",
    "500",
    "5e2",
    " padded",
    "E_1",
    "E_2",
    "E_3",
    "warn",
    "error",
    "back\\slash",
    "tab\tin",
    "é",
    "true",
    "null",
    "a,b",
    "e=e",
    "x",
];

/// Values that can be indexed by key (no escapable bytes, no other spelling), so that lists of
/// them reach the keyed index (eight or more distinct values).
const CLEAN_STRS: &[&str] = &[
    "NO_TOKEN",
    "NO_TOKEN_SCOPE",
    "XNO_TOKEN",
    "UPSTREAM_TIMEOUT",
    "OK",
    "staging",
    "production",
    "stderr",
    "stdout",
    "a b",
    "no token here",
    "E_1",
    "E_2",
    "E_3",
    "warn",
    "error",
    "é",
    "true",
    "null",
    "a,b",
    "e=e",
    "x",
];

const RULE_NUMS: &[&str] = &["500", "500.0", "404", "-1", "0", "1.5"];

const REGEXES: &[&str] = &[
    "^NO_TOKEN$",
    "NO_TOKEN",
    "TOKEN$",
    "^NO_",
    "NO_TOKEN\\b",
    "No JWT.* in WebSocket",
    "a b",
    "[0-9]+",
    "NO_TOKEN|UPSTREAM_TIMEOUT",
    "(?i)no_token",
    "\\\\",
    "\"hi\"",
    "/api/",
    "^$",
    "é",
    "TOKEN_(SCOPE)?$",
    "^(OK|E_1)$",
    "e=e",
    "a,b",
];

const SUBSTRS: &[&str] = &[
    "TOKEN",
    "NO_",
    "_SCOPE",
    "a b",
    "/ws",
    "\"",
    "hi\"",
    "api",
    "N",
    "OK",
    "",
    "error_code",
    "é",
    "\\",
    "=NO",
    "NO_TOKEN",
    "e=e",
    ",b",
];

#[derive(Debug, Clone)]
enum RVal {
    Str(&'static str),
    Num(&'static str),
    Bool(bool),
}

#[derive(Debug, Clone)]
enum RTest {
    Eq(RVal),
    AnyOf(Vec<RVal>),
    Regex(&'static str),
    Contains(&'static str),
    Prefix(&'static str),
    Suffix(&'static str),
    Exists(bool),
    Not(Box<RTest>),
    Gt(&'static str),
    Lt(&'static str),
}

#[derive(Debug, Clone)]
struct RCond {
    field: &'static str,
    test: RTest,
}

#[derive(Debug, Clone)]
struct RRule {
    scope: Vec<RCond>,
    signatures: Vec<Vec<RCond>>,
    fixed: bool,
}

fn rval() -> impl Strategy<Value = RVal> {
    prop_oneof![
        8 => select(RULE_STRS).prop_map(RVal::Str),
        1 => select(RULE_NUMS).prop_map(RVal::Num),
        1 => any::<bool>().prop_map(RVal::Bool),
    ]
}

/// Values that always give equality a literal (at least three safe bytes, one spelling).
const STRONG_STRS: &[&str] = &[
    "NO_TOKEN",
    "NO_TOKEN_SCOPE",
    "XNO_TOKEN",
    "UPSTREAM_TIMEOUT",
    "staging",
    "production",
    "stderr",
    "stdout",
    "a b",
    "no token here",
    "/api/ws",
    "say \"hi\"",
    "E_1",
    "E_2",
    "E_3",
    "warn",
    "error",
    "back\\slash",
    "tab\tin",
    "true",
    "null",
    "a,b",
    "e=e",
];

const STRONG_SUBSTRS: &[&str] = &[
    "TOKEN",
    "NO_",
    "_SCOPE",
    "a b",
    "api",
    "error_code",
    "=NO",
    "NO_TOKEN",
    "e=e",
];

const STRONG_REGEXES: &[&str] = &[
    "^NO_TOKEN$",
    "NO_TOKEN",
    "TOKEN$",
    "^NO_",
    "NO_TOKEN\\b",
    "No JWT.* in WebSocket",
    "a b",
    "NO_TOKEN|UPSTREAM_TIMEOUT",
    "say \"hi\"",
    "/api/",
    "TOKEN_(SCOPE)?$",
    "e=e",
];

/// Tests that give the prefilter a requirement on any field.
fn strong_test() -> impl Strategy<Value = RTest> {
    prop_oneof![
        6 => select(STRONG_STRS).prop_map(|s| RTest::Eq(RVal::Str(s))),
        3 => prop::collection::vec(select(STRONG_STRS).prop_map(RVal::Str), 1..4)
            .prop_map(RTest::AnyOf),
        2 => prop::collection::vec(select(STRONG_STRS).prop_map(RVal::Str), 4..11)
            .prop_map(RTest::AnyOf),
        2 => select(STRONG_REGEXES).prop_map(RTest::Regex),
        2 => select(STRONG_SUBSTRS).prop_map(RTest::Contains),
        1 => select(STRONG_SUBSTRS).prop_map(RTest::Prefix),
        1 => select(STRONG_SUBSTRS).prop_map(RTest::Suffix),
    ]
}

/// Tests with values from the whole pool: some give a literal, some a keyed value only
/// (short values on an indexed key), some nothing (numbers, `not`, `exists`).
fn any_test() -> impl Strategy<Value = RTest> {
    let leaf = prop_oneof![
        5 => rval().prop_map(RTest::Eq),
        2 => prop::collection::vec(select(CLEAN_STRS).prop_map(RVal::Str), 1..11)
            .prop_map(RTest::AnyOf),
        2 => prop::collection::vec(rval(), 1..6).prop_map(RTest::AnyOf),
        2 => select(REGEXES).prop_map(RTest::Regex),
        2 => select(SUBSTRS).prop_map(RTest::Contains),
        1 => select(SUBSTRS).prop_map(RTest::Prefix),
        1 => select(SUBSTRS).prop_map(RTest::Suffix),
        1 => any::<bool>().prop_map(RTest::Exists),
        1 => select(RULE_NUMS).prop_map(RTest::Gt),
        1 => select(RULE_NUMS).prop_map(RTest::Lt),
    ];
    prop_oneof![
        8 => leaf.clone(),
        2 => leaf.prop_map(|t| RTest::Not(Box::new(t))),
    ]
}

fn cond(test: impl Strategy<Value = RTest>) -> impl Strategy<Value = RCond> {
    (select(RULE_FIELDS), test).prop_map(|(field, test)| RCond { field, test })
}

/// A signature: mostly one condition with a requirement first (a rule without one makes
/// every record a candidate, which leaves the block search untested), then others.
fn signature() -> impl Strategy<Value = Vec<RCond>> {
    // Enough distinct values on an indexed field to reach the keyed index.
    let keyed = (
        select(&RULE_FIELDS[..7]),
        prop::collection::vec(select(CLEAN_STRS).prop_map(RVal::Str), 6..12),
    )
        .prop_map(|(field, vs)| RCond {
            field,
            test: RTest::AnyOf(vs),
        });
    let first = prop_oneof![16 => cond(strong_test()), 3 => keyed, 1 => cond(any_test())];
    let rest = prop_oneof![
        3 => Just(Vec::new()),
        2 => prop::collection::vec(cond(any_test()), 1..3),
    ];
    (first, rest).prop_map(|(f, mut rest)| {
        rest.insert(0, f);
        rest
    })
}

fn rule() -> impl Strategy<Value = RRule> {
    (
        prop_oneof![
            4 => Just(Vec::new()),
            1 => prop::collection::vec(cond(any_test()), 1..3),
        ],
        prop::collection::vec(signature(), 1..4),
        any::<bool>(),
    )
        .prop_map(|(scope, signatures, fixed)| RRule {
            scope,
            signatures,
            fixed,
        })
}

fn toml_str(s: &str) -> String {
    let mut o = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => o.push_str("\\\""),
            '\\' => o.push_str("\\\\"),
            '\n' => o.push_str("\\n"),
            '\t' => o.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                let _ = write!(o, "\\u{:04X}", c as u32);
            }
            c => o.push(c),
        }
    }
    o.push('"');
    o
}

fn render_rval(v: &RVal) -> String {
    match v {
        RVal::Str(s) => toml_str(s),
        RVal::Num(n) => n.to_string(),
        RVal::Bool(b) => b.to_string(),
    }
}

fn render_test(t: &RTest) -> String {
    match t {
        RTest::Eq(v) => render_rval(v),
        RTest::AnyOf(vs) => {
            let items: Vec<String> = vs.iter().map(render_rval).collect();
            format!("[{}]", items.join(", "))
        }
        RTest::Regex(r) => format!("{{ regex = {} }}", toml_str(r)),
        RTest::Contains(s) => format!("{{ contains = {} }}", toml_str(s)),
        RTest::Prefix(s) => format!("{{ prefix = {} }}", toml_str(s)),
        RTest::Suffix(s) => format!("{{ suffix = {} }}", toml_str(s)),
        RTest::Exists(b) => format!("{{ exists = {b} }}"),
        RTest::Not(inner) => format!("{{ not = {} }}", render_test(inner)),
        RTest::Gt(n) => format!("{{ gt = {n} }}"),
        RTest::Lt(n) => format!("{{ lt = {n} }}"),
    }
}

/// One condition table; a field tested twice keeps its first test (TOML keys are unique).
fn render_conds(out: &mut String, conds: &[RCond]) {
    let mut seen: Vec<&str> = Vec::new();
    for c in conds {
        if seen.contains(&c.field) {
            continue;
        }
        seen.push(c.field);
        let _ = writeln!(out, "{} = {}", c.field, render_test(&c.test));
    }
}

fn render_rule(i: usize, r: &RRule) -> String {
    let mut o = format!(
        "id = \"R_{i}\"\ntitle = \"rule {i}\"\nowner = \"team@example.com\"\n\
         analysis = \"https://docs.example.com/{i}\"\n\n[fix]\n"
    );
    if r.fixed {
        o.push_str("status = \"fixed\"\nfixed_at = \"2025-09-08T23:30:00Z\"\n");
    } else {
        o.push_str("status = \"open\"\n");
    }
    if !r.scope.is_empty() {
        o.push_str("\n[scope]\n");
        render_conds(&mut o, &r.scope);
    }
    for s in &r.signatures {
        o.push_str("\n[[signature]]\n");
        render_conds(&mut o, s);
    }
    o
}

// ---------------------------------------------------------------------------------------------
// Events
// ---------------------------------------------------------------------------------------------

/// Keys of generated events: the rules' fields, parents of nested ones, and look-alikes.
const EVENT_KEYS: &[&str] = &[
    "error_code",
    "code",
    "env",
    "auth",
    "reason",
    "log.level",
    "log",
    "level",
    "msg",
    "message",
    "stream",
    "error_codes",
    "xerror_code",
    "ctx",
    "timestamp",
    "service",
    "x",
];

/// String values: every rule value plus spellings that contain one without being it.
const EVENT_STRS: &[&str] = &[
    "NO_TOKEN",
    "NO_TOKEN_SCOPE",
    "XNO_TOKEN",
    "UPSTREAM_TIMEOUT",
    "OK",
    "staging",
    "production",
    "stderr",
    "stdout",
    "a b",
    "no token here",
    "/api/ws",
    "say \"hi\"",
    "",
    "500",
    "5e2",
    " padded",
    "E_1",
    "E_2",
    "E_3",
    "warn",
    "error",
    "back\\slash",
    "tab\tin",
    "é",
    "true",
    "null",
    "a,b",
    "e=e",
    "x",
    "NO_TOKEN NO_TOKEN_SCOPE",
    "error_code=NO_TOKEN",
    "{\"error_code\":\"NO_TOKEN\"}",
    "No JWT in WebSocket headers",
    "NO_TOKEN\n",
    "NO_TOKENS",
    "prefix NO_TOKEN",
    "2025-09-10T08:00:00Z",
    "line\nbreak",
    "\\u004e",
    "e=e=e",
    "a,b,c",
    "ok 😀",
];

const EVENT_NUMS: &[&str] = &["500", "5e2", "500.0", "-1", "0", "1.5", "1E3", "404"];

/// Blanks around `:` and `,` (index by two bits of a style byte); `\r` is JSON whitespace too.
const WS: [&str; 4] = ["", " ", "\t", " \r "];

/// A JSON string and how it is escaped (see [`json_escape`]).
#[derive(Debug, Clone)]
struct JStr {
    text: &'static str,
    esc: u8,
}

#[derive(Debug, Clone)]
enum JVal {
    Str(JStr),
    Num(&'static str),
    Bool(bool),
    Null,
    Arr(Vec<JVal>),
    Obj(Vec<Entry>),
}

#[derive(Debug, Clone)]
struct Entry {
    key: &'static str,
    /// Key escaping: plain unless both bits 3 and 4 are set.
    key_esc: u8,
    /// Blanks: bits 0–1 before `:`, 2–3 after it, 4–5 before the key, 6–7 after the value.
    ws: u8,
    val: JVal,
}

#[derive(Debug, Clone)]
struct Pair {
    key: &'static str,
    val: &'static str,
    /// Bit 0: quote even when not needed; bits 1–2 both set: `\u`-escape a letter.
    quote: u8,
}

/// A record body, on its own or inside an envelope.
#[derive(Debug, Clone)]
enum Body {
    Json(Vec<Entry>, u8),
    Logfmt(Vec<Pair>, u8),
    Text(Vec<&'static str>, u8),
}

#[derive(Debug, Clone)]
enum Line {
    Plain(Body),
    Docker {
        inner: Body,
        /// Bits 0–1: line end inside `log`; bits 2–4: key order; bit 5: no `stream` (so
        /// not an envelope); bit 6: `attrs`.
        shape: u8,
        esc: u8,
    },
    GcpJson {
        payload: Vec<Entry>,
        extra: Vec<Entry>,
        order: u8,
    },
    GcpText {
        text: Body,
        esc: u8,
        extra: Vec<Entry>,
        order: u8,
    },
    Truncated(Vec<Entry>, usize),
    Broken(Vec<Entry>, u8, usize),
    Corrupt(Body, u8, usize),
    Long(Vec<Entry>, usize),
    Fixed(&'static str),
}

#[derive(Debug, Clone)]
struct LineSpec {
    line: Line,
    crlf: bool,
}

/// Lines whose shape matters on its own: blanks, brace-only, JSON-looking text, a BOM inside.
const FIXED_LINES: &[&str] = &[
    "",
    " ",
    "\t",
    "{}",
    "{ }",
    "}",
    "{",
    "[1,2]",
    "\"x\"",
    "42",
    "{\"a\":1}}",
    "{\"error_code\":\"NO_TOKEN\"",
    "\u{feff}{\"error_code\":\"NO_TOKEN\"}",
    "null",
    "{\"error_code\":\"NO_TOKEN\"} trailing",
    "  {\"error_code\" : \"NO_TOKEN\"}  ",
    "error_code=NO_TOKEN",
    "error_code",
    "=\"NO_TOKEN\" x=1",
    "code=e=e",
    "code=a,b env=x",
];

const LOGFMT_KEYS: &[&str] = &[
    "error_code",
    "code",
    "env",
    "auth.reason",
    "log.level",
    "level",
    "msg",
    "message",
    "stream",
    "reason",
    "x",
    "timestamp",
];

const TEXT_WORDS: &[&str] = &[
    "NO_TOKEN",
    "NO_TOKEN_SCOPE",
    "error",
    "error_code",
    "error_code=NO_TOKEN",
    "code:",
    "E_1",
    "a b",
    "/api/ws",
    "staging",
    "No JWT",
    "in WebSocket",
    "é",
    "\\",
    "\"hi\"",
    "500",
    "x",
    "e=e",
    "OK",
    "a,b",
];

/// What events are made of: the general pools plus the values and fields the case's rules
/// test, so that matches (and near misses) are frequent.
#[derive(Debug, Clone)]
struct Pools {
    strs: Vec<&'static str>,
    keys: Vec<&'static str>,
    /// `(field as written in the rule, value)` of the rules' string tests.
    pairs: Vec<(&'static str, &'static str)>,
}

fn harvest(rules: &[RRule]) -> Pools {
    fn test_strs(t: &RTest, out: &mut Vec<&'static str>) {
        match t {
            RTest::Eq(RVal::Str(s)) | RTest::Contains(s) | RTest::Prefix(s) | RTest::Suffix(s) => {
                out.push(s)
            }
            RTest::AnyOf(vs) => out.extend(vs.iter().filter_map(|v| match v {
                RVal::Str(s) => Some(*s),
                _ => None,
            })),
            RTest::Not(inner) => test_strs(inner, out),
            _ => {}
        }
    }
    let mut strs = Vec::new();
    let mut keys = Vec::new();
    let mut pairs = Vec::new();
    for r in rules {
        for c in r.scope.iter().chain(r.signatures.iter().flatten()) {
            let from = strs.len();
            test_strs(&c.test, &mut strs);
            pairs.extend(strs[from..].iter().map(|s| (c.field, *s)));
            let key = match c.field {
                "_line" => None,
                "auth.reason" => Some("auth"),
                "\"log.level\"" => Some("log.level"),
                "log.level" => Some("log"),
                f => Some(f),
            };
            keys.extend(key);
        }
    }
    if strs.is_empty() {
        strs.push("NO_TOKEN");
    }
    if keys.is_empty() {
        keys.push("error_code");
    }
    if pairs.is_empty() {
        pairs.push(("error_code", "NO_TOKEN"));
    }
    Pools { strs, keys, pairs }
}

/// An entry that gives one of the rules' fields one of the values it tests (nested where the
/// rule's path is), escaped and spaced like any other.
fn planted(p: &Pools) -> impl Strategy<Value = Entry> + use<> {
    (
        select(p.pairs.clone()),
        any::<u8>(),
        any::<u8>(),
        any::<u8>(),
    )
        .prop_map(|((field, v), esc, key_esc, ws)| {
            let val = JVal::Str(JStr { text: v, esc });
            let nest = |parent: &'static str, key: &'static str, val: JVal| Entry {
                key: parent,
                key_esc,
                ws,
                val: JVal::Obj(vec![Entry {
                    key,
                    key_esc: key_esc.rotate_left(3),
                    ws: ws.rotate_left(2),
                    val,
                }]),
            };
            match field {
                "auth.reason" => nest("auth", "reason", val),
                "log.level" => nest("log", "level", val),
                "\"log.level\"" => Entry {
                    key: "log.level",
                    key_esc,
                    ws,
                    val,
                },
                // `_line` has no key: any field carries the text (a text line is the match).
                "_line" => Entry {
                    key: "msg",
                    key_esc,
                    ws,
                    val,
                },
                f => Entry {
                    key: f,
                    key_esc,
                    ws,
                    val,
                },
            }
        })
}

fn pick_str(p: &Pools) -> impl Strategy<Value = &'static str> + use<> {
    prop_oneof![3 => select(p.strs.clone()), 2 => select(EVENT_STRS)]
}

fn pick_key(p: &Pools) -> impl Strategy<Value = &'static str> + Clone + use<> {
    prop_oneof![3 => select(p.keys.clone()), 2 => select(EVENT_KEYS)]
}

fn jstr(p: &Pools) -> impl Strategy<Value = JStr> + use<> {
    (pick_str(p), any::<u8>()).prop_map(|(text, esc)| JStr { text, esc })
}

fn scalar_jval(p: &Pools) -> impl Strategy<Value = JVal> + use<> {
    prop_oneof![
        7 => jstr(p).prop_map(JVal::Str),
        2 => select(EVENT_NUMS).prop_map(JVal::Num),
        1 => any::<bool>().prop_map(JVal::Bool),
        1 => Just(JVal::Null),
    ]
}

fn jval(p: &Pools) -> impl Strategy<Value = JVal> + use<> {
    let keys = pick_key(p);
    scalar_jval(p).prop_recursive(2, 12, 4, move |inner| {
        prop_oneof![
            2 => prop::collection::vec(inner.clone(), 0..4).prop_map(JVal::Arr),
            3 => prop::collection::vec(
                (keys.clone(), any::<u8>(), any::<u8>(), inner)
                    .prop_map(|(key, key_esc, ws, val)| Entry { key, key_esc, ws, val }),
                0..4,
            )
            .prop_map(JVal::Obj),
        ]
    })
}

fn entry(p: &Pools) -> impl Strategy<Value = Entry> + use<> {
    let nested = |parent: &'static str, keys: &'static [&'static str]| {
        (
            any::<u8>(),
            any::<u8>(),
            prop::collection::vec(
                (select(keys), any::<u8>(), any::<u8>(), scalar_jval(p)).prop_map(
                    |(key, key_esc, ws, val)| Entry {
                        key,
                        key_esc,
                        ws,
                        val,
                    },
                ),
                1..4,
            ),
        )
            .prop_map(move |(key_esc, ws, entries)| Entry {
                key: parent,
                key_esc,
                ws,
                val: JVal::Obj(entries),
            })
    };
    prop_oneof![
        10 => (pick_key(p), any::<u8>(), any::<u8>(), jval(p))
            .prop_map(|(key, key_esc, ws, val)| Entry { key, key_esc, ws, val }),
        6 => planted(p),
        2 => nested("auth", &["reason", "kind", "error_code"]),
        1 => nested("log", &["level", "msg"]),
    ]
}

fn entries(p: &Pools, min: usize) -> impl Strategy<Value = Vec<Entry>> + use<> {
    prop::collection::vec(entry(p), min..7)
}

fn logfmt(p: &Pools) -> impl Strategy<Value = Body> + use<> {
    let keys: Vec<&'static str> = LOGFMT_KEYS
        .iter()
        .copied()
        .chain(p.keys.iter().copied().filter(|k| LOGFMT_KEYS.contains(k)))
        .collect();
    let flat: Vec<(&'static str, &'static str)> = p
        .pairs
        .iter()
        .map(|&(f, v)| (if f == "\"log.level\"" { "log.level" } else { f }, v))
        .filter(|(f, _)| LOGFMT_KEYS.contains(f))
        .collect();
    let pair = (select(keys), pick_str(p), any::<u8>()).prop_map(|(key, val, quote)| Pair {
        key,
        val,
        quote,
    });
    let pair = if flat.is_empty() {
        pair.boxed()
    } else {
        prop_oneof![
            1 => pair,
            1 => (select(flat), any::<u8>()).prop_map(|((key, val), quote)| Pair { key, val, quote }),
        ]
        .boxed()
    };
    (prop::collection::vec(pair, 1..6), any::<u8>())
        .prop_map(|(pairs, sep)| Body::Logfmt(pairs, sep))
}

fn text(p: &Pools) -> impl Strategy<Value = Body> + use<> {
    let words = prop_oneof![2 => select(TEXT_WORDS), 1 => pick_str(p)];
    (prop::collection::vec(words, 1..6), any::<u8>())
        .prop_map(|(words, style)| Body::Text(words, style))
}

fn body(p: &Pools) -> impl Strategy<Value = Body> + use<> {
    prop_oneof![
        5 => (entries(p, 0), any::<u8>()).prop_map(|(e, ws)| Body::Json(e, ws)),
        3 => logfmt(p),
        2 => text(p),
    ]
}

fn line(p: &Pools) -> impl Strategy<Value = Line> + use<> {
    prop_oneof![
        8 => (entries(p, 0), any::<u8>()).prop_map(|(e, ws)| Line::Plain(Body::Json(e, ws))),
        3 => logfmt(p).prop_map(Line::Plain),
        2 => text(p).prop_map(Line::Plain),
        5 => (body(p), any::<u8>(), any::<u8>())
            .prop_map(|(inner, shape, esc)| Line::Docker { inner, shape, esc }),
        2 => (entries(p, 0), entries(p, 0), any::<u8>())
            .prop_map(|(payload, extra, order)| Line::GcpJson { payload, extra, order }),
        1 => (prop_oneof![logfmt(p), text(p)], any::<u8>(), entries(p, 0), any::<u8>())
            .prop_map(|(text, esc, extra, order)| Line::GcpText { text, esc, extra, order }),
        1 => (entries(p, 1), any::<usize>()).prop_map(|(e, cut)| Line::Truncated(e, cut)),
        1 => (entries(p, 1), any::<u8>(), any::<usize>())
            .prop_map(|(e, kind, at)| Line::Broken(e, kind, at)),
        1 => (body(p), any::<u8>(), any::<usize>())
            .prop_map(|(b, kind, at)| Line::Corrupt(b, kind, at)),
        1 => (entries(p, 0), 900usize..1300).prop_map(|(e, pad)| Line::Long(e, pad)),
        1 => select(FIXED_LINES).prop_map(Line::Fixed),
    ]
}

fn line_spec(p: &Pools) -> impl Strategy<Value = LineSpec> + use<> {
    (line(p), prop::bool::weighted(0.15)).prop_map(|(line, crlf)| LineSpec { line, crlf })
}

/// Escapes a JSON string's content. Styles (`style & 7` when bit 3 is set, else minimal):
/// 4 also `\/`, 5 the first letter as `\u00xx`, 6 every letter as `\u00XX`, 7 every other
/// non-alphanumeric character as `\u00xx`.
fn json_escape(s: &str, style: u8, out: &mut String) {
    let mode = if style & 8 == 0 { 0 } else { style & 7 };
    let mut escaped_one = false;
    for c in s.chars() {
        match c {
            '"' if mode == 7 => out.push_str("\\u0022"),
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            '/' if mode == 4 => out.push_str("\\/"),
            c if c.is_ascii_alphabetic() && mode == 6 => {
                let _ = write!(out, "\\u{:04X}", c as u32);
            }
            c if c.is_ascii_alphabetic() && mode == 5 && !escaped_one => {
                escaped_one = true;
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c if mode == 7 && !c.is_ascii_alphanumeric() && (c as u32) < 0x10000 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
}

fn render_jstr(s: &str, esc: u8, out: &mut String) {
    out.push('"');
    json_escape(s, esc, out);
    out.push('"');
}

fn render_val(v: &JVal, out: &mut String) {
    match v {
        JVal::Str(s) => render_jstr(s.text, s.esc, out),
        JVal::Num(n) => out.push_str(n),
        JVal::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        JVal::Null => out.push_str("null"),
        JVal::Arr(items) => {
            out.push('[');
            for (i, v) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                render_val(v, out);
            }
            out.push(']');
        }
        JVal::Obj(entries) => render_obj(entries, 0, out),
    }
}

fn render_obj(entries: &[Entry], ws: u8, out: &mut String) {
    out.push('{');
    out.push_str(WS[(ws & 3) as usize]);
    for (i, e) in entries.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(WS[((e.ws >> 4) & 3) as usize]);
        let key_style = if e.key_esc & 0x18 == 0x18 {
            e.key_esc
        } else {
            0
        };
        render_jstr(e.key, key_style, out);
        out.push_str(WS[(e.ws & 3) as usize]);
        out.push(':');
        out.push_str(WS[((e.ws >> 2) & 3) as usize]);
        render_val(&e.val, out);
        out.push_str(WS[((e.ws >> 6) & 3) as usize]);
    }
    out.push_str(WS[((ws >> 2) & 3) as usize]);
    out.push('}');
}

fn render_logfmt(pairs: &[Pair], sep: u8, out: &mut String) {
    const SEP: [&str; 4] = [" ", "  ", "\t", " "];
    for (i, p) in pairs.iter().enumerate() {
        if i > 0 {
            out.push_str(SEP[((sep >> (2 * (i % 4))) & 3) as usize]);
        }
        out.push_str(p.key);
        out.push('=');
        let v = p.val;
        let must = v.is_empty() || v.starts_with('"') || v.chars().any(|c| c.is_whitespace());
        if !must && p.quote & 1 == 0 {
            out.push_str(v);
            continue;
        }
        out.push('"');
        let mut escaped_one = p.quote & 6 != 6;
        for c in v.chars() {
            match c {
                '"' => out.push_str("\\\""),
                '\\' => out.push_str("\\\\"),
                '\n' => out.push_str("\\n"),
                '\t' => out.push_str("\\t"),
                '\r' => out.push_str("\\r"),
                c if c.is_ascii_alphabetic() && !escaped_one => {
                    escaped_one = true;
                    let _ = write!(out, "\\u{:04x}", c as u32);
                }
                c => out.push(c),
            }
        }
        out.push('"');
    }
    // Sometimes a trailing word that is not a pair.
    if sep & 0xc0 == 0xc0 {
        out.push_str(" trailing");
    }
}

fn render_text(words: &[&str], style: u8, out: &mut String) {
    match style & 3 {
        1 => out.push_str("2025-09-10T08:00:00Z "),
        2 => out.push_str("[2025-09-10 08:00:00] "),
        _ => {}
    }
    out.push_str(&words.join(" "));
}

fn render_body(b: &Body) -> String {
    let mut s = String::new();
    match b {
        Body::Json(e, ws) => render_obj(e, *ws, &mut s),
        Body::Logfmt(p, sep) => render_logfmt(p, *sep, &mut s),
        Body::Text(w, style) => render_text(w, *style, &mut s),
    }
    s
}

/// Renders an object whose entries are given as `(key, rendered value)`, blanks by `ws`.
fn render_raw_obj(parts: &[(&str, String)], ws: u8) -> String {
    let mut s = String::from("{");
    for (i, (k, v)) in parts.iter().enumerate() {
        if i > 0 {
            s.push(',');
            s.push_str(WS[((ws >> 2) & 3) as usize]);
        }
        render_jstr(k, 0, &mut s);
        s.push_str(WS[(ws & 3) as usize]);
        s.push(':');
        s.push_str(v);
    }
    s.push('}');
    s
}

fn render_entries(entries: &[Entry]) -> Vec<(&'static str, String)> {
    entries
        .iter()
        .map(|e| {
            let mut v = String::new();
            render_val(&e.val, &mut v);
            (e.key, v)
        })
        .collect()
}

fn rotate<T>(v: &mut [T], by: u8) {
    if !v.is_empty() {
        let n = by as usize % v.len();
        v.rotate_left(n);
    }
}

fn render_line(spec: &LineSpec) -> Vec<u8> {
    let mut bytes: Vec<u8> = match &spec.line {
        Line::Plain(b) => render_body(b).into_bytes(),
        Line::Docker { inner, shape, esc } => {
            let ends = ["\n", "\r\n", "", "\n"];
            let log = format!("{}{}", render_body(inner), ends[(shape & 3) as usize]);
            let mut log_json = String::new();
            render_jstr(&log, *esc, &mut log_json);
            let mut parts: Vec<(&str, String)> = vec![("log", log_json)];
            if shape & 0x20 == 0 {
                parts.push(("stream", "\"stdout\"".into()));
            }
            parts.push(("time", "\"2025-09-10T08:00:00.123456789Z\"".into()));
            if shape & 0x40 != 0 {
                parts.push(("attrs", "{\"tag\":\"app\"}".into()));
            }
            let order = (shape >> 2) & 7;
            rotate(&mut parts, order);
            if order >= 4 {
                parts.reverse();
            }
            render_raw_obj(&parts, *esc >> 4).into_bytes()
        }
        Line::GcpJson {
            payload,
            extra,
            order,
        } => {
            let mut p = String::new();
            render_obj(payload, *order >> 4, &mut p);
            let mut parts: Vec<(&str, String)> = vec![
                ("insertId", "\"id-1\"".into()),
                ("jsonPayload", p),
                ("timestamp", "\"2025-09-10T08:00:00Z\"".into()),
                ("severity", "\"ERROR\"".into()),
            ];
            parts.extend(render_entries(extra));
            rotate(&mut parts, *order);
            render_raw_obj(&parts, *order >> 3).into_bytes()
        }
        Line::GcpText {
            text,
            esc,
            extra,
            order,
        } => {
            let mut t = String::new();
            render_jstr(&render_body(text), *esc, &mut t);
            let mut parts: Vec<(&str, String)> = vec![
                ("textPayload", t),
                ("logName", "\"projects/p/logs/app\"".into()),
            ];
            parts.extend(render_entries(extra));
            rotate(&mut parts, *order);
            render_raw_obj(&parts, *order >> 3).into_bytes()
        }
        Line::Truncated(e, cut) => {
            let mut s = String::new();
            render_obj(e, 0, &mut s);
            let b = s.into_bytes();
            let n = 1 + cut % (b.len() - 1);
            b[..n].to_vec()
        }
        Line::Broken(e, kind, at) => {
            let mut s = String::new();
            render_obj(e, 0, &mut s);
            let mut b = s.into_bytes();
            let at = 1 + at % (b.len() - 1);
            match kind % 5 {
                0 => {
                    b.insert(1, b',');
                }
                1 => {
                    if let Some(i) = b.iter().position(|&c| c == b':') {
                        b.remove(i);
                    }
                }
                2 => b.insert(at, b'x'),
                3 => {
                    b.pop();
                    b.extend_from_slice(b"]}");
                }
                _ => b.insert(at, b'"'),
            }
            b
        }
        Line::Corrupt(body, kind, at) => {
            let mut b = render_body(body).into_bytes();
            let at = at % (b.len() + 1);
            let bad: &[u8] = match kind % 4 {
                0 => b"\0",
                1 => b"\xff",
                2 => b"\xc3",
                _ => b"\xed\xa0\x80",
            };
            b.splice(at..at, bad.iter().copied());
            b
        }
        Line::Long(e, pad) => {
            let mut s = String::new();
            let mut all = e.clone();
            all.push(Entry {
                key: "pad",
                key_esc: 0,
                ws: 0,
                val: JVal::Str(JStr { text: "", esc: 0 }),
            });
            render_obj(&all, 0, &mut s);
            // Pad the last (empty) string value.
            let pos = s.len() - 2;
            s.insert_str(pos, &"p".repeat(*pad));
            s.into_bytes()
        }
        Line::Fixed(s) => s.as_bytes().to_vec(),
    };
    if spec.crlf {
        bytes.push(b'\r');
    }
    bytes
}

#[derive(Debug, Clone)]
struct Case {
    rules: Vec<RRule>,
    lines: Vec<LineSpec>,
    bom: bool,
    trailing_newline: bool,
    /// `None`: whole reads; else at most this many bytes per read.
    read: Option<usize>,
    cap: usize,
}

fn case() -> impl Strategy<Value = Case> {
    prop::collection::vec(rule(), 1..7).prop_flat_map(|rules| {
        let p = harvest(&rules);
        (
            Just(rules),
            prop::collection::vec(line_spec(&p), 1..60),
            // Sometimes many more lines (kept apart so that a failing case shrinks to few).
            prop_oneof![
                8 => Just(Vec::new()),
                1 => prop::collection::vec(line_spec(&p), 0..340),
            ],
            prop::bool::weighted(0.1),
            prop::bool::weighted(0.8),
            prop_oneof![3 => Just(None), 2 => (1usize..4096).prop_map(Some)],
            prop_oneof![Just(1usize << 20), Just(1024usize)],
        )
            .prop_map(
                |(rules, mut lines, more, bom, trailing_newline, read, cap)| Case {
                    rules,
                    lines: {
                        lines.extend(more);
                        lines
                    },
                    bom,
                    trailing_newline,
                    read,
                    cap,
                },
            )
    })
}

fn render_input(lines: &[Vec<u8>], bom: bool, trailing_newline: bool) -> Vec<u8> {
    let mut input = Vec::new();
    if bom {
        input.extend_from_slice(b"\xEF\xBB\xBF");
    }
    for (i, l) in lines.iter().enumerate() {
        if i > 0 {
            input.push(b'\n');
        }
        input.extend_from_slice(l);
    }
    if trailing_newline {
        input.push(b'\n');
    }
    input
}

/// Runs both evaluators over `input` and fails with the rules and the input on any difference.
fn compare(
    tomls: &[String],
    input: &[u8],
    cap: usize,
    read: Option<usize>,
) -> Result<Occurrences, TestCaseError> {
    let matcher = load(tomls);
    let (want, lines) = reference(&matcher, input, cap);
    let (got, records) = fast_path(&matcher, input, cap, read);
    if got != want || records != lines {
        let missing: Vec<_> = want.iter().filter(|h| !got.contains(h)).collect();
        let extra: Vec<_> = got.iter().filter(|h| !want.contains(h)).collect();
        return Err(TestCaseError::fail(format!(
            "fast path differs from the full evaluation (cap {cap}, reads {read:?})\n\
             missing (line, rule, signature): {missing:?}\nextra: {extra:?}\n\
             records: {records} vs {lines} lines\n\nrules:\n{}\ninput:\n{}",
            tomls.join("\n# ----\n"),
            show_input(input)
        )));
    }
    Ok(want)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Every generated rule set and input: the same occurrences, on the same lines.
    #[test]
    fn fast_path_agrees_with_full_evaluation(c in case()) {
        let tomls: Vec<String> = c.rules.iter().enumerate().map(|(i, r)| render_rule(i, r)).collect();
        let lines: Vec<Vec<u8>> = c.lines.iter().map(render_line).collect();
        let input = render_input(&lines, c.bom, c.trailing_newline);
        compare(&tomls, &input, c.cap, c.read)?;
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    /// One rule with one condition: the prefilter then searches a single needle (a plain
    /// substring search rather than the multi-pattern automaton).
    #[test]
    fn one_condition_agrees(
        (rules, lines, read) in cond(prop_oneof![
            4 => strong_test(),
            // Values with `=` or `,`: what a bare logfmt value can hold.
            1 => select(&["e=e", "e=e=e", "a,b", "E_1"][..]).prop_map(|s| RTest::Eq(RVal::Str(s))),
        ])
        .prop_flat_map(|c| {
            let rules = vec![RRule { scope: Vec::new(), signatures: vec![vec![c]], fixed: false }];
            let p = harvest(&rules);
            (
                Just(rules),
                prop::collection::vec(line_spec(&p), 1..40),
                prop_oneof![Just(None), (1usize..300).prop_map(Some)],
            )
        }),
    ) {
        let tomls = vec![render_rule(0, &rules[0])];
        let rendered: Vec<Vec<u8>> = lines.iter().map(render_line).collect();
        let input = render_input(&rendered, false, true);
        compare(&tomls, &input, 1 << 20, read)?;
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(4))]

    /// Inputs larger than one read (256 KiB), so that the reader hands out several blocks and
    /// lines straddle reads.
    #[test]
    fn several_blocks_agree(
        (rules, lines) in prop::collection::vec(rule(), 1..7).prop_flat_map(|rules| {
            let p = harvest(&rules);
            (Just(rules), prop::collection::vec(line_spec(&p), 50..120))
        }),
    ) {
        let tomls: Vec<String> = rules.iter().enumerate().map(|(i, r)| render_rule(i, r)).collect();
        let rendered: Vec<Vec<u8>> = lines.iter().map(render_line).collect();
        let mut all = Vec::new();
        let mut size = 0;
        while size < 600 * 1024 {
            for l in &rendered {
                size += l.len() + 1;
                all.push(l.clone());
            }
        }
        let input = render_input(&all, false, true);
        compare(&tomls, &input, 1 << 20, None)?;
    }
}

// ---------------------------------------------------------------------------------------------
// Hand-written cases
// ---------------------------------------------------------------------------------------------

/// A rule with eight equality values that never occur: with it, equality is looked up by key
/// (the keyed index); without it, few values are searched as literals.
const KEYED_FILLER: &str = "id = \"FILLER\"\ntitle = \"t\"\nowner = \"o@example.com\"\n\
    analysis = \"https://docs.example.com/f\"\n[fix]\nstatus = \"open\"\n[[signature]]\n\
    code = [\"F_1\", \"F_2\", \"F_3\", \"F_4\", \"F_5\", \"F_6\", \"F_7\", \"F_8\"]\n";

fn simple_rule(id: &str, signature: &str) -> String {
    format!(
        "id = \"{id}\"\ntitle = \"t\"\nowner = \"o@example.com\"\n\
         analysis = \"https://docs.example.com/x\"\n[fix]\nstatus = \"fixed\"\n\
         fixed_at = \"2025-09-08T23:30:00Z\"\n[[signature]]\n{signature}\n"
    )
}

/// Runs `lines` (after a neutral first line, so that they are searched as a block) with the
/// literal and the keyed prefilter, whole and in short reads; both evaluators must agree, and
/// the lines (numbered from 1 here) that match rule 0 are returned.
fn matching_lines(rule0: &str, lines: &[&str]) -> Vec<u64> {
    let mut all: Vec<Vec<u8>> = vec![b"{\"level\":\"info\",\"msg\":\"start\"}".to_vec()];
    all.extend(lines.iter().map(|l| l.as_bytes().to_vec()));
    let input = render_input(&all, false, true);
    let mut answer = None;
    for keyed in [false, true] {
        let mut tomls = vec![simple_rule("R_0", rule0)];
        if keyed {
            tomls.push(KEYED_FILLER.to_string());
        }
        for read in [None, Some(7), Some(100)] {
            let hits = compare(&tomls, &input, 1 << 20, read)
                .unwrap_or_else(|e| panic!("with the keyed index: {keyed}\n{e}"));
            let got: Vec<u64> = hits.iter().filter(|h| h.1 == 0).map(|h| h.0 - 1).collect();
            match &answer {
                None => answer = Some(got),
                Some(a) => assert_eq!(a, &got, "keyed {keyed}, reads {read:?}"),
            }
        }
    }
    answer.unwrap()
}

#[test]
fn escaped_keys_and_values() {
    let got = matching_lines(
        "error_code = \"NO_TOKEN\"",
        &[
            r#"{"error\u005fcode":"NO_TOKEN"}"#,
            r#"{"error_code":"\u004eO_TOKEN"}"#,
            r#"{"\u0065rror_code":"NO\u005FTOKEN"}"#,
            r#"{"error_code":"NO\/TOKEN"}"#,
            r#"{"error_code":"NO_TOKEN\u0020"}"#,
        ],
    );
    assert_eq!(got, [1, 2, 3]);
}

#[test]
fn docker_escaped_json() {
    let got = matching_lines(
        "error_code = \"NO_TOKEN\"",
        &[
            r#"{"log":"{\"error_code\":\"NO_TOKEN\"}\n","stream":"stdout","time":"2025-09-10T08:00:00Z"}"#,
            r#"{"time":"2025-09-10T08:00:00Z","log":"{\"error_code\" : \"NO_TOKEN\"}\r\n","stream":"stderr"}"#,
            r#"{"log":"{\"error_code\":\t\"NO_TOKEN\"}\n","stream":"stdout","time":"2025-09-10T08:00:00Z"}"#,
            r#"{"log":"{\"error_code\":\"NO_TOKEN_SCOPE\"}\n","stream":"stdout","time":"2025-09-10T08:00:00Z"}"#,
            // Not an envelope (an extra key): `log` is a plain string field.
            r#"{"log":"{\"error_code\":\"NO_TOKEN\"}\n","stream":"stdout","time":"x","pod":"p"}"#,
            r#"{"log":"error_code=NO_TOKEN level=error\n","stream":"stdout","time":"2025-09-10T08:00:00Z"}"#,
        ],
    );
    assert_eq!(got, [1, 2, 3, 6]);
}

#[test]
fn blanks_around_separators() {
    let got = matching_lines(
        "error_code = \"NO_TOKEN\"",
        &[
            r#"{"error_code" : "NO_TOKEN"}"#,
            "{ \"error_code\"\t:\t\"NO_TOKEN\" }",
            r#"{"a":1 ,  "error_code":"NO_TOKEN"  }"#,
            "  {\"error_code\":\"NO_TOKEN\"}  \r",
        ],
    );
    assert_eq!(got, [1, 2, 3, 4]);
}

#[test]
fn duplicate_keys_last_wins() {
    let got = matching_lines(
        "error_code = \"NO_TOKEN\"",
        &[
            r#"{"error_code":"NO_TOKEN","error_code":"OK"}"#,
            r#"{"error_code":"OK","error_code":"NO_TOKEN"}"#,
            "error_code=NO_TOKEN error_code=OK",
            "error_code=OK error_code=NO_TOKEN",
        ],
    );
    assert_eq!(got, [2, 4]);
}

#[test]
fn the_value_only_in_another_field() {
    let got = matching_lines(
        "error_code = \"NO_TOKEN\"",
        &[
            r#"{"error_code":"OK","msg":"NO_TOKEN"}"#,
            r#"{"msg":"error_code=NO_TOKEN"}"#,
            r#"{"msg":"{\"error_code\":\"NO_TOKEN\"}"}"#,
            r#"{"xerror_code":"NO_TOKEN","error_codes":"NO_TOKEN"}"#,
            r#"{"ctx":{"error_code":"NO_TOKEN"}}"#,
            r#"{"error_code":"NO_TOKEN_SCOPE","code":"NO_TOKEN"}"#,
            "msg=\"error_code NO_TOKEN\"",
            r#"{"error_code":"NO_TOKEN"}"#,
        ],
    );
    assert_eq!(got, [8]);
}

#[test]
fn array_values() {
    let got = matching_lines(
        "error_code = \"NO_TOKEN\"",
        &[
            r#"{"error_code":["OK","NO_TOKEN"]}"#,
            r#"{"error_code":[ "NO_TOKEN" ]}"#,
            r#"{"error_code":[["NO_TOKEN"]]}"#,
            r#"{"error_code":{"v":"NO_TOKEN"}}"#,
            r#"{"error_code":[]}"#,
        ],
    );
    assert_eq!(got, [1, 2]);
}

#[test]
fn gcp_entries_and_nested_fields() {
    let got = matching_lines(
        "auth.reason = \"NO_TOKEN\"",
        &[
            r#"{"insertId":"x","jsonPayload":{"auth":{"reason":"NO_TOKEN"}},"timestamp":"2025-09-10T08:00:00Z"}"#,
            r#"{"auth":{"reason":"NO_TOKEN"}}"#,
            r#"{"reason":"NO_TOKEN","auth":{"kind":"x"}}"#,
            r#"{"auth":{"reason":"OK"},"msg":"NO_TOKEN"}"#,
            r#"{"auth.reason":"NO_TOKEN"}"#,
            "auth.reason=NO_TOKEN x=1",
        ],
    );
    assert_eq!(got, [1, 2]);
}

#[test]
fn logfmt_inside_docker_with_tabs() {
    let got = matching_lines(
        "error_code = \"NO_TOKEN\"",
        &[
            r#"{"log":"level=info\terror_code=NO_TOKEN\n","stream":"stdout","time":"2025-09-10T08:00:00Z"}"#,
        ],
    );
    assert_eq!(got, [1]);
}

#[test]
fn bare_logfmt_values_with_delimiters() {
    let got = matching_lines(
        "error_code = \"a,b\"",
        &["error_code=a,b level=info", "error_code=a,b,c level=info"],
    );
    assert_eq!(got, [1]);
}

#[test]
fn self_overlapping_literals() {
    let got = matching_lines("code = \"e=e\"", &["code=e=e"]);
    assert_eq!(got, [1]);
}
