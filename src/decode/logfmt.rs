//! logfmt: `key=value` pairs separated by blanks.
//!
//! Keys match `[A-Za-z_][A-Za-z0-9_.\-]*` and stay flat (`http.status` is one key, reachable
//! from a rule through a quoted key), because logfmt has no nesting and turning dots into
//! objects would make `a=1 a.b=2` contradict itself. Values are bare (up to the next blank,
//! `=` and `"` included) or double-quoted with JSON-like escapes (`\"`, `\\`, `\n`, `\t`, `\r`,
//! `\/`, `\b`, `\f`, `\uXXXX`; any other escape is kept as written). Every value is a string:
//! logfmt carries no types, and the condition evaluator compares numbers with numeric strings.
//! A repeated key keeps its last value, as in JSON.

use serde_json::{Map, Value};

use super::detect::Body;
use super::{DecodeConfig, Format, time_from_fields};

/// How sure we must be that a line is logfmt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Auto-detection: the line is logfmt when its first token is a pair and it has at least
    /// two pairs, or when every token is a pair. Otherwise `None` (it is text).
    Detect,
    /// Forced logfmt: whatever pairs there are; other tokens are ignored.
    Lenient,
}

/// Parses a line into its pairs (tokens that are not pairs are skipped; they remain in `_line`).
pub fn parse(line: &str, mode: Mode) -> Option<Map<String, Value>> {
    let b = line.as_bytes();
    let mut fields = Map::new();
    let mut tokens = 0usize;
    let mut pairs = 0usize;
    let mut first_is_pair = false;
    let mut i = 0;
    loop {
        while b.get(i).is_some_and(u8::is_ascii_whitespace) {
            i += 1;
        }
        if i >= b.len() {
            break;
        }
        tokens += 1;
        match pair_at(line, i) {
            Some((key, value, end)) => {
                pairs += 1;
                first_is_pair |= tokens == 1;
                fields.insert(key.to_owned(), Value::String(value));
                i = end;
            }
            None => {
                if mode == Mode::Detect && tokens == 1 {
                    // Neither rule can hold any more: skip the rest of the work.
                    return None;
                }
                while b.get(i).is_some_and(|c| !c.is_ascii_whitespace()) {
                    i += 1;
                }
            }
        }
    }
    let is_logfmt = (first_is_pair && pairs >= 2) || (pairs >= 1 && pairs == tokens);
    (mode == Mode::Lenient || is_logfmt).then_some(fields)
}

/// The body of a logfmt line: its pairs, its time from the configured fields.
pub(crate) fn body(fields: Map<String, Value>, cfg: &DecodeConfig) -> Body {
    Body {
        time: time_from_fields(&fields, cfg),
        fields,
        format: Format::Logfmt,
    }
}

fn is_key_start(c: u8) -> bool {
    c.is_ascii_alphabetic() || c == b'_'
}

fn is_key_char(c: u8) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'-')
}

/// Reads `key=value` at `line[start..]` (a non-blank byte); returns key, value and the index
/// after the pair, or `None` when the token there is not a pair.
fn pair_at(line: &str, start: usize) -> Option<(&str, String, usize)> {
    let b = line.as_bytes();
    if !is_key_start(b[start]) {
        return None;
    }
    let mut i = start + 1;
    while b.get(i).copied().is_some_and(is_key_char) {
        i += 1;
    }
    if b.get(i) != Some(&b'=') {
        return None;
    }
    // Slicing is safe: every byte before `i` is ASCII.
    let key = &line[start..i];
    i += 1;
    if b.get(i) == Some(&b'"') {
        let (value, end) = quoted(line, i + 1)?;
        // `a="x"y` is not a pair: a closing quote must end the token.
        if b.get(end).is_some_and(|c| !c.is_ascii_whitespace()) {
            return None;
        }
        Some((key, value, end))
    } else {
        let end = b[i..]
            .iter()
            .position(u8::is_ascii_whitespace)
            .map_or(b.len(), |n| i + n);
        Some((key, line[i..end].to_owned(), end))
    }
}

/// Reads a quoted value whose content starts at `line[start..]`; returns the unescaped text and
/// the index after the closing quote, or `None` when the quote is never closed.
fn quoted(line: &str, start: usize) -> Option<(String, usize)> {
    let b = line.as_bytes();
    let mut out = String::new();
    let mut seg = start;
    let mut i = start;
    loop {
        match *b.get(i)? {
            b'"' => {
                out.push_str(&line[seg..i]);
                return Some((out, i + 1));
            }
            b'\\' => {
                out.push_str(&line[seg..i]);
                let esc = *b.get(i + 1)?;
                i += 2;
                match esc {
                    b'"' => out.push('"'),
                    b'\\' => out.push('\\'),
                    b'/' => out.push('/'),
                    b'n' => out.push('\n'),
                    b't' => out.push('\t'),
                    b'r' => out.push('\r'),
                    b'b' => out.push('\u{8}'),
                    b'f' => out.push('\u{c}'),
                    b'u' => match unicode_escape(b, i) {
                        Some((c, end)) => {
                            out.push(c);
                            i = end;
                        }
                        None => out.push_str("\\u"),
                    },
                    _ => {
                        // Unknown escape: keep it as written. Step back so a multi-byte
                        // character after the backslash is copied whole with the next segment.
                        out.push('\\');
                        i -= 1;
                    }
                }
                seg = i;
            }
            _ => i += 1,
        }
    }
}

/// Reads `XXXX` (after `\u`) at `b[i..]`, pairing UTF-16 surrogates (`\ud83d\ude00`); a lone
/// surrogate becomes U+FFFD. Returns the character and the index after the escape(s).
fn unicode_escape(b: &[u8], i: usize) -> Option<(char, usize)> {
    let hex = |at: usize| -> Option<u32> {
        let s = std::str::from_utf8(b.get(at..at + 4)?).ok()?;
        if !s.bytes().all(|c| c.is_ascii_hexdigit()) {
            return None;
        }
        u32::from_str_radix(s, 16).ok()
    };
    let hi = hex(i)?;
    if (0xD800..0xDC00).contains(&hi) {
        if b.get(i + 4..i + 6) == Some(b"\\u".as_slice())
            && let Some(lo) = hex(i + 6).filter(|lo| (0xDC00..0xE000).contains(lo))
        {
            let c = 0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00);
            return Some((char::from_u32(c).unwrap_or('\u{fffd}'), i + 10));
        }
        return Some(('\u{fffd}', i + 4));
    }
    Some((char::from_u32(hi).unwrap_or('\u{fffd}'), i + 4))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn detection_and_values() {
        let cases: &[(&str, Mode, Option<Value>)] = &[
            (
                "level=info msg=hello",
                Mode::Detect,
                Some(json!({"level": "info", "msg": "hello"})),
            ),
            ("level=info", Mode::Detect, Some(json!({"level": "info"}))),
            (
                r#"level=error msg="No JWT \"x\" in\\headers" code=NO_TOKEN"#,
                Mode::Detect,
                Some(
                    json!({"level": "error", "msg": "No JWT \"x\" in\\headers", "code": "NO_TOKEN"}),
                ),
            ),
            (
                r#"msg="tab\tnl\nu\u004e smile\ud83d\ude00 lone\ud800 odd\q" k=v"#,
                Mode::Detect,
                Some(json!({"msg": "tab\tnl\nuN smile\u{1f600} lone\u{fffd} odd\\q", "k": "v"})),
            ),
            (
                r#"msg="naïve \é" k=v"#,
                Mode::Detect,
                Some(json!({"msg": "naïve \\é", "k": "v"})),
            ),
            (
                "url=/a?b=c&d=e empty= x.y-z=1",
                Mode::Detect,
                Some(json!({"url": "/a?b=c&d=e", "empty": "", "x.y-z": "1"})),
            ),
            ("a=1 a=2", Mode::Detect, Some(json!({"a": "2"}))),
            (
                "a=1\tb=2  ",
                Mode::Detect,
                Some(json!({"a": "1", "b": "2"})),
            ),
            // First token a pair and two pairs: logfmt, the bare word is ignored.
            (
                "level=info msg=hello world",
                Mode::Detect,
                Some(json!({"level": "info", "msg": "hello"})),
            ),
            // One pair among words: text.
            ("user=bob logged in", Mode::Detect, None),
            ("Starting server port=8080 host=x", Mode::Detect, None),
            ("ERROR: boom", Mode::Detect, None),
            ("", Mode::Detect, None),
            ("=x a=b", Mode::Detect, None),
            ("1a=b", Mode::Detect, None),
            (r#"a="unterminated b=c"#, Mode::Detect, None),
            (r#"a="x"y b=c"#, Mode::Detect, None),
            (r#"a="trailing backslash\"#, Mode::Detect, None),
            // Forced: whatever pairs there are.
            (
                "Starting server port=8080",
                Mode::Lenient,
                Some(json!({"port": "8080"})),
            ),
            ("no pairs at all", Mode::Lenient, Some(json!({}))),
        ];
        for (line, mode, want) in cases {
            let got = parse(line, *mode).map(Value::Object);
            assert_eq!(&got, want, "line {line:?}");
        }
    }
}
