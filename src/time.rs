//! Event time: reading timestamps from field values and text.
//!
//! RFC 3339 with any offset; date-times without offset in a configured zone; epoch seconds,
//! milliseconds, microseconds or nanoseconds as numbers or numeric strings (told apart by
//! magnitude); GCP/protobuf `{"seconds":…, "nanos":…}` objects.
//!
//! The date-time grammar is hand-written rather than delegated to jiff's parsers because log
//! timestamps are looser than RFC 3339 (a space instead of `T`, `+0200`, a comma before the
//! fraction, no offset at all) and because [`leading_timestamp`] must report how many bytes it
//! consumed from the start of a line. jiff does the calendar work: validating the date, applying
//! the offset or resolving a civil time in a zone.
//!
//! Accepted date-time shapes (all ASCII):
//! ```text
//! YYYY-MM-DD(T|t| )HH:MM[:SS[(.|,)fraction]][offset]
//! offset = Z | z | ±HH[:MM] | ±HHMM | UTC | GMT | " ±HH:MM" | " ±HHMM" | " UTC" | " GMT"
//! ```
//! A numeric offset may be followed by a space and a zone abbreviation (`+0000 UTC`, as Go's
//! `time.Time.String` writes), which is consumed and ignored: the numeric offset is the truth.
//! A leap second (`:60`) is read as `:59`, as jiff's RFC 3339 parser does.

use jiff::Timestamp;
use jiff::civil::DateTime;
use jiff::tz::{Offset, TimeZone};
use serde_json::Value;

/// Epoch numbers below 10^11 (absolute) are seconds; this is the year 5138 in seconds and
/// 1973-03-03 in milliseconds, so both ends of the ambiguity are far from real logs.
const SECONDS_MAX_INT_DIGITS: i32 = 11;
/// Below 10^14: milliseconds (up to the year 5138 again).
const MILLIS_MAX_INT_DIGITS: i32 = 14;
/// Below 10^17: microseconds; anything larger is nanoseconds.
const MICROS_MAX_INT_DIGITS: i32 = 17;

/// Reads a timestamp from a JSON field value.
///
/// Strings are tried as date-times (see [`parse_time_str`]), then as epoch numbers; numbers
/// are epoch values whose unit is told apart by magnitude; objects are protobuf/GCP
/// `{"seconds": N, "nanos": M}` (seconds as number or string, nanos optional). Anything else,
/// or a value out of jiff's range (years -9999..=9999), gives `None`.
pub fn parse_time_value(v: &Value, zone: &TimeZone) -> Option<Timestamp> {
    match v {
        Value::String(s) => parse_time_str(s, zone),
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                epoch_from_integer(i128::from(i))
            } else if let Some(u) = n.as_u64() {
                epoch_from_integer(i128::from(u))
            } else {
                // A float: its shortest decimal representation (ryu) is exactly what was
                // written in the log for any realistic timestamp, and the decimal path keeps
                // every digit instead of going through binary floating point arithmetic.
                parse_epoch_decimal(&n.to_string())
            }
        }
        Value::Object(map) => {
            let seconds = match map.get("seconds")? {
                Value::Number(n) => n.as_i64()?,
                Value::String(s) => s.trim().parse::<i64>().ok()?,
                _ => return None,
            };
            let nanos = match map.get("nanos") {
                None | Some(Value::Null) => 0,
                Some(Value::Number(n)) => i32::try_from(n.as_i64()?).ok()?,
                Some(Value::String(s)) => s.trim().parse::<i32>().ok()?,
                Some(_) => return None,
            };
            // Protobuf normalises nanos to 0..1e9 with the sign of seconds; be tolerant of
            // unnormalised input by summing in nanoseconds.
            let total = i128::from(seconds) * 1_000_000_000 + i128::from(nanos);
            Timestamp::from_nanosecond(total).ok()
        }
        _ => None,
    }
}

/// Reads a timestamp from a whole string (surrounding whitespace ignored).
///
/// Tried in order: a date-time (see the module docs; without offset it is read in `zone`), a
/// bare date `YYYY-MM-DD` (midnight in `zone`), an epoch number (`1757358106`,
/// `1757358106.123`, `1757358106123`, `1.757358106e9`; unit by magnitude).
pub fn parse_time_str(s: &str, zone: &TimeZone) -> Option<Timestamp> {
    let s = s.trim();
    let b = s.as_bytes();
    let first = *b.first()?;
    if first.is_ascii_digit() && b.len() >= 10 && b[4] == b'-' {
        if let Some((scanned, used)) = scan_datetime(b) {
            return if used == b.len() {
                scanned.resolve(zone)
            } else {
                None
            };
        }
        if b.len() == 10 {
            let (y, m, d) = scan_date(b)?;
            let dt = DateTime::new(y, m, d, 0, 0, 0, 0).ok()?;
            return zone.to_timestamp(dt).ok();
        }
        return None;
    }
    parse_epoch_decimal(s)
}

/// Reads a timestamp at the very start of a text line, optionally inside `[` `]`.
///
/// Returns the time and the number of bytes consumed (including the brackets). The timestamp
/// must end the line or be followed by a byte that is not an ASCII letter or digit, so that a
/// line such as `2025-09-08T10:00:00Zebra` is not mistaken for a timestamped line. Epoch
/// numbers are not recognised here: at the start of free text they are too often something
/// else (a pid, a counter).
pub fn leading_timestamp(text: &str, zone: &TimeZone) -> Option<(Timestamp, usize)> {
    let b = text.as_bytes();
    let bracketed = b.first() == Some(&b'[');
    let start = usize::from(bracketed);
    let (scanned, used) = scan_datetime(&b[start..])?;
    let mut end = start + used;
    if bracketed {
        if b.get(end) != Some(&b']') {
            return None;
        }
        end += 1;
    } else if b.get(end).is_some_and(|c| c.is_ascii_alphanumeric()) {
        return None;
    }
    Some((scanned.resolve(zone)?, end))
}

/// A date-time read from text, before its offset or zone is applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Scanned {
    pub(crate) datetime: DateTime,
    /// The explicit offset, if the text carried one.
    pub(crate) offset: Option<Offset>,
}

impl Scanned {
    /// The instant: the explicit offset if present, else the civil time read in `zone`
    /// (a gap or fold resolves the way RFC 5545 and Temporal call "compatible").
    pub(crate) fn resolve(self, zone: &TimeZone) -> Option<Timestamp> {
        match self.offset {
            Some(offset) => offset.to_timestamp(self.datetime).ok(),
            None => zone.to_timestamp(self.datetime).ok(),
        }
    }
}

/// Reads `n` ASCII digits at `b[at..]` as a number.
fn digits(b: &[u8], at: usize, n: usize) -> Option<u32> {
    let s = b.get(at..at + n)?;
    s.iter().try_fold(0u32, |acc, &c| {
        c.is_ascii_digit().then(|| acc * 10 + u32::from(c - b'0'))
    })
}

/// Reads `YYYY-MM-DD` at the start of `b`.
fn scan_date(b: &[u8]) -> Option<(i16, i8, i8)> {
    let year = digits(b, 0, 4)?;
    if b.get(4) != Some(&b'-') || b.get(7) != Some(&b'-') {
        return None;
    }
    let month = digits(b, 5, 2)?;
    let day = digits(b, 8, 2)?;
    // The casts cannot truncate: 4 and 2 digits fit i16 and i8.
    Some((year as i16, month as i8, day as i8))
}

/// Reads a date-time (see the module docs) at the start of `b`; returns it and the bytes used.
///
/// The date is validated (no February 30th), so callers can trust a `Some`.
pub(crate) fn scan_datetime(b: &[u8]) -> Option<(Scanned, usize)> {
    let (year, month, day) = scan_date(b)?;
    if !matches!(b.get(10), Some(b'T' | b't' | b' ')) {
        return None;
    }
    let hour = digits(b, 11, 2)?;
    if b.get(13) != Some(&b':') {
        return None;
    }
    let minute = digits(b, 14, 2)?;
    let mut i = 16;
    let mut second = 0;
    let mut nanos = 0u32;
    let seconds = if b.get(i) == Some(&b':') {
        digits(b, i + 1, 2)
    } else {
        None
    };
    if let Some(s) = seconds {
        second = s.min(59);
        i += 3;
        if matches!(b.get(i), Some(b'.' | b',')) && b.get(i + 1).is_some_and(u8::is_ascii_digit) {
            i += 1;
            let mut scale = 100_000_000u32;
            while let Some(c) = b.get(i).filter(|c| c.is_ascii_digit()) {
                // Digits past nanoseconds are read and dropped (truncation, like jiff).
                nanos += u32::from(c - b'0') * scale;
                scale /= 10;
                i += 1;
            }
        }
    }
    let datetime = DateTime::new(
        year,
        month,
        day,
        i8::try_from(hour).ok()?,
        i8::try_from(minute).ok()?,
        i8::try_from(second).ok()?,
        i32::try_from(nanos).ok()?,
    )
    .ok()?;
    let (offset, used) = scan_offset(b, i);
    Some((Scanned { datetime, offset }, used))
}

/// Reads an optional offset at `b[i..]`; returns it and the index after it (and after a
/// trailing zone abbreviation following a numeric offset).
fn scan_offset(b: &[u8], i: usize) -> (Option<Offset>, usize) {
    match b.get(i) {
        Some(b'Z' | b'z') => return (Some(Offset::UTC), i + 1),
        Some(b'+' | b'-') => {
            if let Some((offset, end)) = numeric_offset(b, i, false) {
                return (Some(offset), skip_abbreviation(b, end));
            }
            return (None, i);
        }
        _ => {}
    }
    if let Some(end) = utc_word(b, i) {
        return (Some(Offset::UTC), end);
    }
    if b.get(i) == Some(&b' ') {
        if matches!(b.get(i + 1), Some(b'+' | b'-'))
            && let Some((offset, end)) = numeric_offset(b, i + 1, true)
        {
            return (Some(offset), skip_abbreviation(b, end));
        }
        if let Some(end) = utc_word(b, i + 1) {
            return (Some(Offset::UTC), end);
        }
    }
    (None, i)
}

/// `UTC` or `GMT` at `b[i..]`, not followed by a letter.
fn utc_word(b: &[u8], i: usize) -> Option<usize> {
    let word = b.get(i..i + 3)?;
    let is_utc = word == b"UTC" || word == b"GMT";
    (is_utc && !b.get(i + 3).is_some_and(u8::is_ascii_alphabetic)).then_some(i + 3)
}

/// `±HH`, `±HH:MM` or `±HHMM` at `b[i..]` (where `b[i]` is the sign). With `need_minutes`
/// (the space-separated form), a bare `±HH` is refused: after a space it is too easily a
/// number in the message.
fn numeric_offset(b: &[u8], i: usize, need_minutes: bool) -> Option<(Offset, usize)> {
    let negative = b[i] == b'-';
    let hours = digits(b, i + 1, 2)?;
    let mut end = i + 3;
    let mut minutes = None;
    if b.get(end) == Some(&b':') {
        minutes = digits(b, end + 1, 2);
        if minutes.is_some() {
            end += 3;
        }
    } else if let Some(m) = digits(b, end, 2) {
        minutes = Some(m);
        end += 2;
    }
    if minutes.is_none() && need_minutes {
        return None;
    }
    let minutes = minutes.unwrap_or(0);
    // A further digit means this was not an offset but a longer number.
    if b.get(end).is_some_and(u8::is_ascii_digit) || minutes > 59 {
        return None;
    }
    let secs = i32::try_from(hours * 3600 + minutes * 60).ok()?;
    let offset = Offset::from_seconds(if negative { -secs } else { secs }).ok()?;
    Some((offset, end))
}

/// Skips ` ABC` (a space and 1 to 5 uppercase letters, then a non-letter) at `b[i..]`.
fn skip_abbreviation(b: &[u8], i: usize) -> usize {
    if b.get(i) != Some(&b' ') {
        return i;
    }
    let letters = b[i + 1..]
        .iter()
        .take_while(|c| c.is_ascii_uppercase())
        .count();
    let after = b.get(i + 1 + letters);
    if (1..=5).contains(&letters) && !after.is_some_and(u8::is_ascii_alphanumeric) {
        i + 1 + letters
    } else {
        i
    }
}

/// An integer epoch value; its unit follows from its magnitude.
fn epoch_from_integer(n: i128) -> Option<Timestamp> {
    let magnitude = n.unsigned_abs();
    let scale: i128 = if magnitude < 10u128.pow(SECONDS_MAX_INT_DIGITS as u32) {
        1_000_000_000
    } else if magnitude < 10u128.pow(MILLIS_MAX_INT_DIGITS as u32) {
        1_000_000
    } else if magnitude < 10u128.pow(MICROS_MAX_INT_DIGITS as u32) {
        1_000
    } else {
        1
    };
    Timestamp::from_nanosecond(n.checked_mul(scale)?).ok()
}

/// Parses a decimal epoch number (`-12`, `1757358106.123456`, `1.757358106123e12`) exactly,
/// without floating point: the mantissa's significant digits are kept as an integer `d` with
/// a decimal exponent `e` (value = d × 10^e), then scaled to nanoseconds by the unit that the
/// value's magnitude implies. Digits beyond nanosecond precision are truncated.
fn parse_epoch_decimal(s: &str) -> Option<Timestamp> {
    /// Enough significant digits for any timestamp in jiff's range at nanosecond precision.
    const MAX_SIGNIFICANT: u32 = 30;
    let b = s.as_bytes();
    let mut i = 0;
    let negative = match b.first()? {
        b'-' => {
            i += 1;
            true
        }
        b'+' => {
            i += 1;
            false
        }
        _ => false,
    };
    let mut mantissa: u128 = 0;
    let mut significant = 0u32;
    let mut exp: i64 = 0;
    let mut seen_digit = false;
    let mut push = |c: u8, fraction: bool, mantissa: &mut u128, exp: &mut i64| {
        if significant < MAX_SIGNIFICANT {
            *mantissa = *mantissa * 10 + u128::from(c - b'0');
            if *mantissa != 0 {
                significant += 1;
            }
            if fraction {
                *exp -= 1;
            }
        } else if !fraction {
            *exp += 1;
        }
    };
    while let Some(&c) = b.get(i).filter(|c| c.is_ascii_digit()) {
        push(c, false, &mut mantissa, &mut exp);
        seen_digit = true;
        i += 1;
    }
    if b.get(i) == Some(&b'.') {
        i += 1;
        while let Some(&c) = b.get(i).filter(|c| c.is_ascii_digit()) {
            push(c, true, &mut mantissa, &mut exp);
            seen_digit = true;
            i += 1;
        }
    }
    if !seen_digit {
        return None;
    }
    if matches!(b.get(i), Some(b'e' | b'E')) {
        i += 1;
        let exp_negative = match b.get(i) {
            Some(b'-') => {
                i += 1;
                true
            }
            Some(b'+') => {
                i += 1;
                false
            }
            _ => false,
        };
        let start = i;
        let mut e: i64 = 0;
        while let Some(&c) = b.get(i).filter(|c| c.is_ascii_digit()) {
            // Saturate: anything this large is out of range anyway.
            e = (e * 10 + i64::from(c - b'0')).min(10_000);
            i += 1;
        }
        if i == start {
            return None;
        }
        exp += if exp_negative { -e } else { e };
    }
    if i != b.len() {
        return None;
    }
    let int_digits = if mantissa == 0 {
        0
    } else {
        i64::from(significant) + exp
    };
    let unit_exp = if int_digits <= i64::from(SECONDS_MAX_INT_DIGITS) {
        9
    } else if int_digits <= i64::from(MILLIS_MAX_INT_DIGITS) {
        6
    } else if int_digits <= i64::from(MICROS_MAX_INT_DIGITS) {
        3
    } else {
        0
    };
    let shift = exp + unit_exp;
    let nanos: u128 = if shift >= 0 {
        let factor = 10u128.checked_pow(u32::try_from(shift).ok()?)?;
        mantissa.checked_mul(factor)?
    } else {
        match 10u128.checked_pow(u32::try_from(-shift).ok()?) {
            Some(divisor) => mantissa / divisor,
            None => 0,
        }
    };
    let nanos = i128::try_from(nanos).ok()?;
    Timestamp::from_nanosecond(if negative { -nanos } else { nanos }).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    fn berlin() -> TimeZone {
        TimeZone::get("Europe/Berlin").unwrap()
    }

    #[test]
    fn strings() {
        let utc = TimeZone::UTC;
        let cases: &[(&str, &TimeZone, Option<&str>)] = &[
            ("2025-09-08T19:01:46Z", &utc, Some("2025-09-08T19:01:46Z")),
            ("2025-09-08t19:01:46z", &utc, Some("2025-09-08T19:01:46Z")),
            (
                "2025-09-08T19:01:46+02:00",
                &utc,
                Some("2025-09-08T17:01:46Z"),
            ),
            (
                "2025-09-08T19:01:46+0200",
                &utc,
                Some("2025-09-08T17:01:46Z"),
            ),
            ("2025-09-08T19:01:46-05", &utc, Some("2025-09-09T00:01:46Z")),
            (
                "2025-09-08T19:01:46.5Z",
                &utc,
                Some("2025-09-08T19:01:46.5Z"),
            ),
            (
                "2025-09-08T19:01:46.123456789Z",
                &utc,
                Some("2025-09-08T19:01:46.123456789Z"),
            ),
            (
                "2025-09-08T19:01:46.1234567891Z",
                &utc,
                Some("2025-09-08T19:01:46.123456789Z"),
            ),
            (
                "2025-09-08 19:01:46,250",
                &utc,
                Some("2025-09-08T19:01:46.25Z"),
            ),
            (
                "2025-09-08 19:01:46.123Z",
                &utc,
                Some("2025-09-08T19:01:46.123Z"),
            ),
            (
                "2025-09-08 19:01:46 +0200",
                &utc,
                Some("2025-09-08T17:01:46Z"),
            ),
            (
                "2025-09-08 19:01:46 UTC",
                &berlin(),
                Some("2025-09-08T19:01:46Z"),
            ),
            (
                "2025-09-08 19:01:46.5 +0000 UTC",
                &berlin(),
                Some("2025-09-08T19:01:46.5Z"),
            ),
            ("2025-09-08T19:01", &utc, Some("2025-09-08T19:01:00Z")),
            ("2016-12-31T23:59:60Z", &utc, Some("2016-12-31T23:59:59Z")),
            (
                "  2025-09-08T19:01:46Z\n",
                &utc,
                Some("2025-09-08T19:01:46Z"),
            ),
            // Local time: read in the configured zone (CEST is UTC+2 in September).
            ("2025-09-08T19:01:46", &utc, Some("2025-09-08T19:01:46Z")),
            (
                "2025-09-08T19:01:46",
                &berlin(),
                Some("2025-09-08T17:01:46Z"),
            ),
            (
                "2025-01-08 19:01:46.25",
                &berlin(),
                Some("2025-01-08T18:01:46.25Z"),
            ),
            // An explicit offset wins over the zone.
            (
                "2025-09-08T19:01:46Z",
                &berlin(),
                Some("2025-09-08T19:01:46Z"),
            ),
            ("2025-09-08", &berlin(), Some("2025-09-07T22:00:00Z")),
            // Epoch strings.
            ("1757358106", &utc, Some("2025-09-08T19:01:46Z")),
            ("1757358106.25", &utc, Some("2025-09-08T19:01:46.25Z")),
            ("1757358106123", &utc, Some("2025-09-08T19:01:46.123Z")),
            ("1757358106123.5", &utc, Some("2025-09-08T19:01:46.1235Z")),
            (
                "1757358106123456",
                &utc,
                Some("2025-09-08T19:01:46.123456Z"),
            ),
            (
                "1757358106123456789",
                &utc,
                Some("2025-09-08T19:01:46.123456789Z"),
            ),
            ("1.757358106e9", &utc, Some("2025-09-08T19:01:46Z")),
            ("-86400", &utc, Some("1969-12-31T00:00:00Z")),
            ("0", &utc, Some("1970-01-01T00:00:00Z")),
            // Garbage.
            ("", &utc, None),
            ("yesterday", &utc, None),
            ("2025-09-08T19:01:46Zjunk", &utc, None),
            ("2025-02-30T19:01:46Z", &utc, None),
            ("2025-09-08T25:01:46Z", &utc, None),
            ("2025-09-08T19:01:46+02:0", &utc, None),
            ("2025-9-8T19:01:46Z", &utc, None),
            ("1e999999999", &utc, None),
            ("99999999999999999999999999999999999999999", &utc, None),
            ("12.", &utc, Some("1970-01-01T00:00:12Z")),
            (".", &utc, None),
            ("-", &utc, None),
            ("1e", &utc, None),
            ("NaN", &utc, None),
        ];
        for (input, zone, want) in cases {
            assert_eq!(parse_time_str(input, zone), want.map(ts), "input {input:?}");
        }
    }

    #[test]
    fn values() {
        let utc = TimeZone::UTC;
        let cases = [
            (json!("2025-09-08T19:01:46Z"), Some("2025-09-08T19:01:46Z")),
            (json!(1757358106), Some("2025-09-08T19:01:46Z")),
            (json!(1757358106.5), Some("2025-09-08T19:01:46.5Z")),
            (
                json!(1757358106.123456),
                Some("2025-09-08T19:01:46.123456Z"),
            ),
            (json!(1757358106123u64), Some("2025-09-08T19:01:46.123Z")),
            (
                json!(1757358106123456i64),
                Some("2025-09-08T19:01:46.123456Z"),
            ),
            (
                json!(1757358106123456789u64),
                Some("2025-09-08T19:01:46.123456789Z"),
            ),
            (json!(1.757358106123e12), Some("2025-09-08T19:01:46.123Z")),
            (json!(u64::MAX), Some("2554-07-21T23:34:33.709551615Z")),
            (json!(-1), Some("1969-12-31T23:59:59Z")),
            (
                json!({"seconds": 1757358106, "nanos": 5}),
                Some("2025-09-08T19:01:46.000000005Z"),
            ),
            (
                json!({"seconds": "1757358106"}),
                Some("2025-09-08T19:01:46Z"),
            ),
            (
                json!({"seconds": 1757358106, "nanos": "250000000"}),
                Some("2025-09-08T19:01:46.25Z"),
            ),
            (json!({"nanos": 5}), None),
            (json!({"seconds": true}), None),
            (json!({"seconds": 1, "nanos": [1]}), None),
            (json!(null), None),
            (json!(true), None),
            (json!([1757358106]), None),
            (json!(1e300), None),
            (json!("garbage"), None),
        ];
        for (value, want) in cases {
            assert_eq!(
                parse_time_value(&value, &utc),
                want.map(ts),
                "value {value}"
            );
        }
    }

    #[test]
    fn leading() {
        let utc = TimeZone::UTC;
        /// Input, zone, then the expected time and bytes consumed.
        type Case<'z> = (&'static str, &'z TimeZone, Option<(&'static str, usize)>);
        let cases: &[Case] = &[
            (
                "2025-09-08T19:01:46Z ERROR boom",
                &utc,
                Some(("2025-09-08T19:01:46Z", 20)),
            ),
            (
                "2025-09-08T19:01:46.123+02:00 x",
                &utc,
                Some(("2025-09-08T17:01:46.123Z", 29)),
            ),
            (
                "2025-09-08 19:01:46,123 INFO x",
                &utc,
                Some(("2025-09-08T19:01:46.123Z", 23)),
            ),
            (
                "2025-09-08 19:01:46 INFO x",
                &berlin(),
                Some(("2025-09-08T17:01:46Z", 19)),
            ),
            (
                "2025-09-08 19:01:46 -0700 x",
                &utc,
                Some(("2025-09-09T02:01:46Z", 25)),
            ),
            // A bare "-07" after a space is not taken as an offset.
            (
                "2025-09-08 19:01:46 -07 items",
                &utc,
                Some(("2025-09-08T19:01:46Z", 19)),
            ),
            (
                "[2025-09-08T19:01:46Z] boom",
                &utc,
                Some(("2025-09-08T19:01:46Z", 22)),
            ),
            (
                "[2025-09-08 19:01:46] boom",
                &berlin(),
                Some(("2025-09-08T17:01:46Z", 21)),
            ),
            (
                "2025-09-08T19:01:46Z",
                &utc,
                Some(("2025-09-08T19:01:46Z", 20)),
            ),
            (
                "2025-09-08T19:01:46Z|x",
                &utc,
                Some(("2025-09-08T19:01:46Z", 20)),
            ),
            ("[2025-09-08T19:01:46Z boom", &utc, None),
            ("2025-09-08T19:01:46Zebra", &utc, None),
            ("2025-09-08 boom", &utc, None),
            ("ERROR 2025-09-08T19:01:46Z", &utc, None),
            ("1757358106 boom", &utc, None),
            ("", &utc, None),
            ("[", &utc, None),
        ];
        for (input, zone, want) in cases {
            let got = leading_timestamp(input, zone);
            assert_eq!(got, want.map(|(t, n)| (ts(t), n)), "input {input:?}");
        }
    }

    #[test]
    fn dst_gap_and_fold_resolve_compatibly() {
        // 02:30 does not exist on 2025-03-30 in Berlin (clocks jump 02:00 → 03:00): the
        // "compatible" rule moves forward by the gap's length.
        let gap = parse_time_str("2025-03-30T02:30:00", &berlin());
        assert_eq!(gap, Some(ts("2025-03-30T01:30:00Z")));
        // 02:30 happens twice on 2025-10-26: the earlier (CEST) instant is taken.
        let fold = parse_time_str("2025-10-26T02:30:00", &berlin());
        assert_eq!(fold, Some(ts("2025-10-26T00:30:00Z")));
    }
}
