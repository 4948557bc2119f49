//! CRI container log lines: `<RFC 3339 time> <stdout|stderr> <P|F> <content>`.

use jiff::Timestamp;

/// One parsed CRI line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CriLine<'a> {
    pub time: Option<Timestamp>,
    pub stream: &'a str,
    /// `P`: the content continues on the next line.
    pub partial: bool,
    pub content: &'a [u8],
}

pub fn parse_cri_line(line: &[u8]) -> Option<CriLine<'_>> {
    let mut parts = line.splitn(4, |&b| b == b' ');
    let t = std::str::from_utf8(parts.next()?).ok()?;
    let stream = std::str::from_utf8(parts.next()?).ok()?;
    if stream != "stdout" && stream != "stderr" {
        return None;
    }
    let tag = parts.next()?;
    let partial = match tag {
        b"P" => true,
        b"F" => false,
        _ => return None,
    };
    let time: Timestamp = t.parse().ok()?;
    Some(CriLine { time: Some(time), stream, partial, content: parts.next().unwrap_or(b"") })
}

pub fn looks_like_cri(line: &[u8]) -> bool {
    parse_cri_line(line).is_some()
}
