//! Redaction: secrets never leave recur.
//!
//! Applied when samples are stored and again when notifications are rendered, so a sample
//! stored by an older version or a pattern added later still cannot leak. Masks:
//! - JWTs (`eyJ….eyJ….sig`) anywhere in text;
//! - `Bearer`/`Basic` credentials, and the values of `Authorization`, `Cookie`, `Set-Cookie`
//!   and `X-Api-Key`-style headers written as text;
//! - in JSON, the whole value of any field whose name contains token, secret, password,
//!   passwd, key, authorization, cookie, credential or session (case-insensitive);
//! - extra field names and regex patterns from `recur.toml`'s `[redact]`.

use regex::Regex;
use serde_json::Value;

pub const MASK: &str = "[REDACTED]";

const SENSITIVE_NAME_PARTS: &[&str] = &[
    "token",
    "secret",
    "password",
    "passwd",
    "pwd",
    "key",
    "authorization",
    "cookie",
    "credential",
    "session",
    "auth_header",
];

/// A compiled redaction policy.
#[derive(Debug, Clone)]
pub struct Redactor {
    patterns: Vec<(Regex, String)>,
    extra_fields: Vec<String>,
}

impl Default for Redactor {
    fn default() -> Self {
        Redactor::new(&[], &[]).expect("built-in redaction patterns compile")
    }
}

impl Redactor {
    /// Builds the policy with extra field names and patterns (whole matches are masked).
    pub fn new(extra_fields: &[String], extra_patterns: &[String]) -> Result<Self, regex::Error> {
        let mut patterns = vec![
            // JWT: three base64url segments, the first two JSON objects (`eyJ` = `{"`).
            (
                Regex::new(r"eyJ[A-Za-z0-9_-]{2,}\.eyJ[A-Za-z0-9_-]{2,}\.[A-Za-z0-9_-]*")?,
                MASK.to_string(),
            ),
            // Header lines and header-like pairs, in text or escaped inside JSON strings.
            (
                Regex::new(
                    r#"(?i)\b(authorization|proxy-authorization|cookie|set-cookie|x-api-key|x-auth-token|api-key)(\\?"?\s*[:=]\s*\\?"?)[^"\\\r\n,;}]*(?:;[^"\\\r\n,}]*)*"#,
                )?,
                format!("$1$2{MASK}"),
            ),
            (
                Regex::new(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]{6,}")?,
                format!("$1 {MASK}"),
            ),
            // key=value pairs in logfmt or text.
            (
                Regex::new(
                    r#"(?i)\b([A-Za-z0-9_.-]*(?:token|secret|password|passwd|api_?key|session_?id)[A-Za-z0-9_.-]*)=("[^"]*"|[^\s,;&]+)"#,
                )?,
                format!("$1={MASK}"),
            ),
        ];
        for p in extra_patterns {
            patterns.push((Regex::new(p)?, MASK.to_string()));
        }
        Ok(Redactor {
            patterns,
            extra_fields: extra_fields
                .iter()
                .map(|f| f.to_ascii_lowercase())
                .collect(),
        })
    }

    /// Whether a field of this name holds a secret.
    pub fn sensitive_name(&self, name: &str) -> bool {
        let lower = name.to_ascii_lowercase();
        // `*_present`/`has_*` flags describe a secret without holding one; keep them readable.
        if lower.ends_with("_present") || lower.starts_with("has_") || lower.ends_with("_count") {
            return false;
        }
        SENSITIVE_NAME_PARTS.iter().any(|p| lower.contains(p)) || self.extra_fields.contains(&lower)
    }

    /// Masks secrets in free text.
    pub fn text(&self, s: &str) -> String {
        let mut out = std::borrow::Cow::Borrowed(s);
        for (re, rep) in &self.patterns {
            if re.is_match(&out) {
                out = std::borrow::Cow::Owned(re.replace_all(&out, rep.as_str()).into_owned());
            }
        }
        out.into_owned()
    }

    /// Masks secrets in a JSON value, in place.
    pub fn value(&self, v: &mut Value) {
        match v {
            Value::Object(map) => {
                for (k, child) in map.iter_mut() {
                    if self.sensitive_name(k)
                        && !matches!(child, Value::Null | Value::Bool(_) | Value::Object(_))
                    {
                        *child = Value::String(MASK.to_string());
                    } else {
                        self.value(child);
                    }
                }
            }
            Value::Array(items) => items.iter_mut().for_each(|i| self.value(i)),
            Value::String(s) => {
                let r = self.text(s);
                if r != *s {
                    *s = r;
                }
            }
            _ => {}
        }
    }

    /// A redacted, size-capped, control-character-free sample of an event.
    pub fn sample(&self, event: &crate::decode::Event, cap: usize) -> String {
        let text = if event.fields.as_object().is_some_and(|m| !m.is_empty()) {
            let mut v = event.fields.clone();
            self.value(&mut v);
            v.to_string()
        } else {
            self.text(&event.text)
        };
        cap_text(&strip_controls(&text), cap)
    }
}

/// Replaces control characters (terminal escapes, NULs) with U+FFFD.
pub fn strip_controls(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_control() && c != '\t' {
                '\u{FFFD}'
            } else {
                c
            }
        })
        .collect()
}

/// Like [`strip_controls`] but keeps line breaks (for multi-line rendered text).
pub fn strip_controls_keep_newlines(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_control() && c != '\t' && c != '\n' {
                '\u{FFFD}'
            } else {
                c
            }
        })
        .collect()
}

/// Cuts `s` to at most `cap` bytes on a character boundary, marking the cut.
pub fn cap_text(s: &str, cap: usize) -> String {
    if s.len() <= cap {
        return s.to_string();
    }
    let mut end = cap;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}… ({} bytes)", &s[..end], s.len())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const JWT: &str = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U";

    #[test]
    fn masks_jwts_bearer_and_headers_in_text() {
        let r = Redactor::default();
        let t = r.text(&format!(
            "Authorization: Bearer {JWT} then token={JWT} cookie: a=b; c=d"
        ));
        assert!(!t.contains("eyJ"), "{t}");
        assert!(!t.contains("a=b"), "{t}");
        assert!(t.contains("Authorization: [REDACTED]"), "{t}");
        let t = r.text("password=hunter2 user=bob");
        assert_eq!(t, "password=[REDACTED] user=bob");
    }

    #[test]
    fn masks_sensitive_fields_in_json() {
        let r = Redactor::new(&["ssn".into()], &[r"\d{3}-\d{2}-\d{4}".into()]).unwrap();
        let mut v = json!({"headers": {"Authorization": format!("Bearer {JWT}"), "accept": "x"},
            "api_key": "k-123", "refresh_token": "r", "ssn": "1", "note": "call 123-45-6789",
            "auth_headers": {"authorization_present": false}, "msg": format!("got {JWT}")});
        r.value(&mut v);
        let s = v.to_string();
        assert!(
            !s.contains("eyJ") && !s.contains("k-123") && !s.contains("123-45"),
            "{s}"
        );
        assert_eq!(v["headers"]["accept"], "x");
        assert_eq!(v["auth_headers"]["authorization_present"], false);
        assert_eq!(v["ssn"], MASK);
    }

    #[test]
    fn caps_and_strips() {
        assert_eq!(strip_controls("a\u{1b}[31mb"), "a\u{FFFD}[31mb");
        assert_eq!(cap_text("héllo", 2), "h… (6 bytes)");
    }
}
