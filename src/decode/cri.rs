//! CRI container log lines (`/var/log/pods/…`, written by containerd and CRI-O):
//! `<RFC 3339 time> <stdout|stderr> <tag> <content>`, where the tag's first `:`-separated part
//! is `P` (partial: the line was split and continues in the next record) or `F` (full).
//!
//! The source stage frames records: it joins `P` records with the following ones and passes the
//! content to [`decode`](super::decode) with the time and stream in [`RecordMeta`](super::RecordMeta).

use jiff::Timestamp;

use crate::time::scan_datetime;

/// One CRI log line, borrowed from the input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CriLine<'a> {
    /// When the runtime received the line.
    pub time: Timestamp,
    /// `stdout` or `stderr`.
    pub stream: &'a str,
    /// `P`: the content continues in the next record of the same stream; `F`: it ends here.
    pub partial: bool,
    /// The content, without the line terminator (empty when the line ends after the tag).
    pub content: &'a [u8],
}

/// Splits a CRI line into its parts; `None` if it is not one.
///
/// Strict, so that a text log that happens to begin with a timestamp is not taken for CRI:
/// the time must use `T` and carry an offset (`Z` or `±HH:MM`, as Go's `RFC3339Nano` writes),
/// the stream must be `stdout` or `stderr`, and the tag must start with `P` or `F`. A trailing
/// `\r` stays in the content (the source strips terminators).
pub fn parse_cri_line(line: &[u8]) -> Option<CriLine<'_>> {
    if line.get(10) != Some(&b'T') {
        return None;
    }
    let (scanned, mut i) = scan_datetime(line)?;
    let time = scanned.offset?.to_timestamp(scanned.datetime).ok()?;
    if line.get(i) != Some(&b' ') {
        return None;
    }
    i += 1;
    let stream = if line[i..].starts_with(b"stdout ") {
        "stdout"
    } else if line[i..].starts_with(b"stderr ") {
        "stderr"
    } else {
        return None;
    };
    i += stream.len() + 1;
    let tag_len = line[i..]
        .iter()
        .position(|&c| c == b' ')
        .unwrap_or(line.len() - i);
    let tag = &line[i..i + tag_len];
    let partial = match tag.split(|&c| c == b':').next() {
        Some(b"P") => true,
        Some(b"F") => false,
        _ => return None,
    };
    i += tag_len;
    let content = line.get(i + 1..).unwrap_or_default();
    Some(CriLine {
        time,
        stream,
        partial,
        content,
    })
}

/// Does this line look like CRI? (Cheap enough to call on a file's first lines to pick the
/// framing; it parses the prefix only.)
pub fn looks_like_cri(line: &[u8]) -> bool {
    parse_cri_line(line).is_some()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cri_lines() {
        let ts = |s: &str| s.parse::<Timestamp>().unwrap();
        /// Input, then expected time, stream, partial flag and content.
        type Case = (
            &'static [u8],
            Option<(&'static str, &'static str, bool, &'static [u8])>,
        );
        let cases: &[Case] = &[
            (
                b"2025-09-08T19:01:46.123456789Z stdout F {\"a\":1}",
                Some((
                    "2025-09-08T19:01:46.123456789Z",
                    "stdout",
                    false,
                    b"{\"a\":1}",
                )),
            ),
            (
                b"2025-09-08T21:01:46.5+02:00 stderr P first half ",
                Some(("2025-09-08T19:01:46.5Z", "stderr", true, b"first half ")),
            ),
            (
                b"2025-09-08T19:01:46Z stdout F",
                Some(("2025-09-08T19:01:46Z", "stdout", false, b"")),
            ),
            (
                b"2025-09-08T19:01:46Z stdout F ",
                Some(("2025-09-08T19:01:46Z", "stdout", false, b"")),
            ),
            (
                b"2025-09-08T19:01:46Z stdout F:x y",
                Some(("2025-09-08T19:01:46Z", "stdout", false, b"y")),
            ),
            (b"2025-09-08T19:01:46Z stdout X y", None),
            (b"2025-09-08T19:01:46Z stdin F y", None),
            (b"2025-09-08T19:01:46Z stdout", None),
            (b"2025-09-08 19:01:46Z stdout F y", None),
            (b"2025-09-08T19:01:46 stdout F y", None),
            (b"2025-09-08T19:01:46Z ERROR boom", None),
            (b"{\"log\":\"x\"}", None),
            (b"", None),
            (b"\xff\xfe garbage", None),
        ];
        for (line, want) in cases {
            let got = parse_cri_line(line);
            let want = want.map(|(t, stream, partial, content)| CriLine {
                time: ts(t),
                stream,
                partial,
                content,
            });
            assert_eq!(got, want, "line {:?}", String::from_utf8_lossy(line));
            assert_eq!(looks_like_cri(line), want.is_some());
        }
    }
}
