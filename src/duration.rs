//! Human durations used in rules, config and flags: `"24h"`, `"90m"`, `"7d"`, `"1h30m"`, `"45s"`.
//!
//! Units: `ms`, `s`, `m`, `h`, `d`, `w`. A bare number is rejected: a duration without a unit is
//! almost always a mistake (seconds? hours?), so the caller must say.

use jiff::SignedDuration;

/// Why a duration string was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DurationError {
    #[error("empty duration")]
    Empty,
    #[error("`{0}` has no unit (write e.g. \"30s\", \"90m\", \"24h\", \"7d\")")]
    NoUnit(String),
    #[error("unknown unit `{unit}` in `{text}` (use ms, s, m, h, d or w)")]
    UnknownUnit { text: String, unit: String },
    #[error("`{0}` is not a duration (write e.g. \"30s\", \"90m\", \"24h\", \"7d\")")]
    Invalid(String),
    #[error("`{0}` is too large")]
    Overflow(String),
}

/// Parses a positive duration such as `"24h"` or `"1h30m"`.
pub fn parse_duration(text: &str) -> Result<SignedDuration, DurationError> {
    let s = text.trim();
    if s.is_empty() {
        return Err(DurationError::Empty);
    }
    let bytes = s.as_bytes();
    let mut i = 0;
    let mut total: i64 = 0; // milliseconds
    while i < bytes.len() {
        let start = i;
        while i < bytes.len() && bytes[i].is_ascii_digit() {
            i += 1;
        }
        if start == i {
            return Err(DurationError::Invalid(text.to_string()));
        }
        let n: i64 = s[start..i]
            .parse()
            .map_err(|_| DurationError::Overflow(text.to_string()))?;
        let ustart = i;
        while i < bytes.len() && bytes[i].is_ascii_alphabetic() {
            i += 1;
        }
        let unit = &s[ustart..i];
        let ms: i64 = match unit {
            "" => return Err(DurationError::NoUnit(text.to_string())),
            "ms" => 1,
            "s" | "sec" | "secs" => 1_000,
            "m" | "min" | "mins" => 60_000,
            "h" | "hr" | "hrs" => 3_600_000,
            "d" | "day" | "days" => 86_400_000,
            "w" | "week" | "weeks" => 7 * 86_400_000,
            other => {
                return Err(DurationError::UnknownUnit {
                    text: text.to_string(),
                    unit: other.to_string(),
                });
            }
        };
        total = n
            .checked_mul(ms)
            .and_then(|v| total.checked_add(v))
            .ok_or_else(|| DurationError::Overflow(text.to_string()))?;
        while i < bytes.len() && bytes[i] == b' ' {
            i += 1;
        }
    }
    Ok(SignedDuration::from_millis(total))
}

/// Formats a duration compactly and exactly: `1d 6h`, `90m` becomes `1h 30m`, `0s`.
pub fn format_duration(d: SignedDuration) -> String {
    let neg = d.is_negative();
    let mut secs = d.as_secs().unsigned_abs();
    if secs == 0 {
        let ms = d.as_millis().unsigned_abs();
        return if ms == 0 {
            "0s".into()
        } else {
            format!("{}{ms}ms", if neg { "-" } else { "" })
        };
    }
    let mut parts = Vec::new();
    // Under two days, hours read better than "1d 6h" (and "24h" stays "24h", as rules say it).
    let units: &[(&str, u64)] = if secs >= 2 * 86_400 {
        &[("d", 86_400), ("h", 3_600), ("m", 60), ("s", 1)]
    } else {
        &[("h", 3_600), ("m", 60), ("s", 1)]
    };
    for &(unit, size) in units {
        if secs >= size {
            parts.push(format!("{}{unit}", secs / size));
            secs %= size;
        }
    }
    // Two units are enough for a human; "3d 4h" reads better than "3d 4h 12m 9s".
    parts.truncate(2);
    format!("{}{}", if neg { "-" } else { "" }, parts.join(" "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_units() {
        assert_eq!(
            parse_duration("24h").unwrap(),
            SignedDuration::from_hours(24)
        );
        assert_eq!(
            parse_duration("90m").unwrap(),
            SignedDuration::from_mins(90)
        );
        assert_eq!(
            parse_duration("7d").unwrap(),
            SignedDuration::from_hours(168)
        );
        assert_eq!(
            parse_duration("1h30m").unwrap(),
            SignedDuration::from_mins(90)
        );
        assert_eq!(
            parse_duration("1h 30m").unwrap(),
            SignedDuration::from_mins(90)
        );
        assert_eq!(
            parse_duration("250ms").unwrap(),
            SignedDuration::from_millis(250)
        );
        assert_eq!(
            parse_duration("2w").unwrap(),
            SignedDuration::from_hours(336)
        );
    }

    #[test]
    fn rejects_bad() {
        assert_eq!(parse_duration(""), Err(DurationError::Empty));
        assert!(matches!(
            parse_duration("24"),
            Err(DurationError::NoUnit(_))
        ));
        assert!(matches!(
            parse_duration("24x"),
            Err(DurationError::UnknownUnit { .. })
        ));
        assert!(matches!(
            parse_duration("h"),
            Err(DurationError::Invalid(_))
        ));
        assert!(matches!(
            parse_duration("-5m"),
            Err(DurationError::Invalid(_))
        ));
    }

    #[test]
    fn formats() {
        assert_eq!(format_duration(SignedDuration::from_mins(90)), "1h 30m");
        assert_eq!(format_duration(SignedDuration::from_hours(30)), "30h");
        assert_eq!(format_duration(SignedDuration::from_hours(24)), "24h");
        assert_eq!(format_duration(SignedDuration::from_hours(50)), "2d 2h");
        assert_eq!(format_duration(SignedDuration::ZERO), "0s");
    }
}
