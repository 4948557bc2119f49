//! Redaction: secrets never leave recur.
//!
//! Applied when samples are stored and again when notifications are rendered, so a sample
//! stored by an older version or a pattern added later still cannot leak. Masks:
//! - JWTs (`eyJ….eyJ….sig`) anywhere in text;
//! - `Bearer`/`Basic` credentials, and the values of `Authorization`, `Cookie`, `Set-Cookie`
//!   and `X-Api-Key`-style headers written as text;
//! - `name=value` pairs in text (logfmt, query strings, free text) whose name is sensitive;
//! - in JSON, the whole value of any field whose name is sensitive, objects and arrays
//!   included; only flags stay readable (a boolean, null, or a structure of nothing else);
//! - extra field names and regex patterns from `recur.toml`'s `[redact]`.
//!
//! A name is sensitive when it contains token, secret, password, passwd, pwd, authorization,
//! cookie, credential, session or auth_header (case-insensitive), when it has `key` as one of
//! its words (`api_key`, `ssh-key`, `privateKey`, `key`, and the spellings `apikey`, `privkey`,
//! `sshkey` …), or when it is one of `[redact] fields`. `key` must be a word because it is
//! short and hides inside ordinary words: `keyboard`, `monkey` or `keyspace` stay readable.
//! Names that describe a secret without holding one (`*_present`, `has_*`, `*_count`) stay
//! readable too.

use std::sync::OnceLock;

use regex::{Captures, Regex};
use serde_json::Value;

pub const MASK: &str = "[REDACTED]";

/// Name parts that make a name sensitive wherever they occur in it.
const SENSITIVE_NAME_PARTS: &[&str] = &[
    "token",
    "secret",
    "password",
    "passwd",
    "pwd",
    "authorization",
    "cookie",
    "credential",
    "session",
    "auth_header",
];

/// Words that end in `key` and name a key when written as one word (`apikey`, `privkey`).
const KEY_COMPOUNDS: &[&str] = &[
    "api", "priv", "private", "secret", "access", "ssh", "signing", "master", "client", "enc",
];

/// A compiled redaction policy.
#[derive(Debug, Clone)]
pub struct Redactor {
    /// `[redact] patterns`, whole matches masked.
    extra_patterns: Vec<Regex>,
    extra_fields: Vec<String>,
}

impl Default for Redactor {
    fn default() -> Self {
        Redactor::new(&[], &[]).expect("no extra patterns")
    }
}

/// Built-in patterns applied before the `name=value` pairs, with their replacements.
/// Compiled the first time something is redacted, once per process: most runs redact a few
/// samples or nothing, and compiling them (the header pattern is case-insensitive Unicode)
/// was a millisecond of every run's serial start.
fn builtin_patterns() -> &'static [(Regex, String)] {
    static P: OnceLock<Vec<(Regex, String)>> = OnceLock::new();
    P.get_or_init(|| {
        let re = |p: &str| Regex::new(p).expect("built-in redaction patterns compile");
        vec![
            // JWT: three base64url segments, the first two JSON objects (`eyJ` = `{"`).
            (
                re(r"eyJ[A-Za-z0-9_-]{2,}\.eyJ[A-Za-z0-9_-]{2,}\.[A-Za-z0-9_-]*"),
                MASK.to_string(),
            ),
            // Header lines and header-like pairs, in text or escaped inside JSON strings.
            (
                re(
                    r#"(?i)\b(authorization|proxy-authorization|cookie|set-cookie|x-api-key|x-auth-token|api-key)(\\?"?\s*[:=]\s*\\?"?)[^"\\\r\n,;}]*(?:;[^"\\\r\n,}]*)*"#,
                ),
                format!("$1$2{MASK}"),
            ),
            (
                re(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]{6,}"),
                format!("$1 {MASK}"),
            ),
        ]
    })
}

/// `name=value` in logfmt, query strings or free text; a quoted value is masked whole.
/// `==` is a comparison, not an assignment, hence the `[^=]` guard.
fn pair_pattern() -> &'static Regex {
    static P: OnceLock<Regex> = OnceLock::new();
    P.get_or_init(|| {
        Regex::new(r#"\b([A-Za-z0-9_.-]+)=("[^"]*"|[^\s,;&"=][^\s,;&"]*)"#)
            .expect("built-in redaction patterns compile")
    })
}

impl Redactor {
    /// Builds the policy with extra field names and patterns (whole matches are masked).
    pub fn new(extra_fields: &[String], extra_patterns: &[String]) -> Result<Self, regex::Error> {
        let extra_patterns = extra_patterns
            .iter()
            .map(|p| Regex::new(p))
            .collect::<Result<_, _>>()?;
        Ok(Redactor {
            extra_patterns,
            extra_fields: extra_fields
                .iter()
                .map(|f| f.to_ascii_lowercase())
                .collect(),
        })
    }

    /// Whether a field (or a `name=value` pair) of this name holds a secret: the built-in
    /// rule ([`sensitive_name`]) or one of `[redact] fields`.
    pub fn sensitive_name(&self, name: &str) -> bool {
        self.extra_fields.contains(&name.to_ascii_lowercase()) || sensitive_name(name)
    }

    /// Masks secrets in free text.
    pub fn text(&self, s: &str) -> String {
        let mut out = std::borrow::Cow::Borrowed(s);
        for (re, rep) in builtin_patterns() {
            if re.is_match(&out) {
                out = std::borrow::Cow::Owned(re.replace_all(&out, rep.as_str()).into_owned());
            }
        }
        if out.contains('=') {
            let replaced = pair_pattern().replace_all(&out, |c: &Captures<'_>| {
                if self.sensitive_name(&c[1]) {
                    format!("{}={MASK}", &c[1])
                } else {
                    c[0].to_string()
                }
            });
            if let std::borrow::Cow::Owned(r) = replaced {
                out = std::borrow::Cow::Owned(r);
            }
        }
        for re in &self.extra_patterns {
            if re.is_match(&out) {
                out = std::borrow::Cow::Owned(re.replace_all(&out, MASK).into_owned());
            }
        }
        out.into_owned()
    }

    /// Masks secrets in a JSON value, in place.
    pub fn value(&self, v: &mut Value) {
        match v {
            Value::Object(map) => {
                for (k, child) in map.iter_mut() {
                    if self.sensitive_name(k) && !only_flags(child) {
                        // The whole value: an object such as `{"scheme":"Basic","value":…}`
                        // is a secret as a whole, and a number can be a PIN or a key.
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

/// The built-in rule for names that hold secrets (see the module documentation).
pub fn sensitive_name(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    // `*_present`/`has_*` flags describe a secret without holding one; keep them readable.
    if lower.ends_with("_present") || lower.starts_with("has_") || lower.ends_with("_count") {
        return false;
    }
    SENSITIVE_NAME_PARTS.iter().any(|p| lower.contains(p))
        || words(name).iter().any(|w| {
            w == "key"
                || w.strip_suffix("key")
                    .is_some_and(|head| KEY_COMPOUNDS.contains(&head))
        })
}

/// Whether a value is a flag, or a structure holding nothing but flags: booleans and nulls
/// say whether a secret was there, never what it was (`auth_headers: {authorization_present:
/// false}`). An empty object or array holds nothing either. A value already masked counts as
/// a flag, so masking twice changes nothing.
fn only_flags(v: &Value) -> bool {
    match v {
        Value::Bool(_) | Value::Null => true,
        Value::String(s) => s == MASK,
        Value::Number(_) => false,
        Value::Array(items) => items.iter().all(only_flags),
        Value::Object(map) => map.values().all(only_flags),
    }
}

/// The lower-cased words of a name: split at `_`, `-`, `.`, spaces and lower-to-upper case
/// changes (`privateKey` → `private`, `key`; `X-Api-Key` → `x`, `api`, `key`).
fn words(name: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut prev_lower = false;
    for c in name.chars() {
        if matches!(c, '_' | '-' | '.' | ' ') {
            if !cur.is_empty() {
                out.push(std::mem::take(&mut cur));
            }
            prev_lower = false;
            continue;
        }
        if c.is_uppercase() && prev_lower && !cur.is_empty() {
            out.push(std::mem::take(&mut cur));
        }
        prev_lower = c.is_lowercase() || c.is_ascii_digit();
        cur.extend(c.to_lowercase());
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
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
    fn a_sensitive_field_is_masked_whole_unless_it_only_holds_flags() {
        let r = Redactor::default();
        let mut v = json!({
            "authorization": {"scheme": "Basic", "value": "dXNlcjpwYXNzd29yZA"},
            "cookies": ["sid=abc", "theme=dark"],
            "api_key": 123456789,
            "session": {"id": 42, "ttl": 3600},
            "authorization_present": false,
            "auth_headers": {"authorization_present": false, "cookie_present": null},
            "token": null,
            "secret_flags": [true, false],
            "user": {"name": "bob", "password": 7},
        });
        r.value(&mut v);
        let s = v.to_string();
        for leaked in ["dXNlcjpwYXNzd29yZA", "Basic", "abc", "123456789", "3600"] {
            assert!(!s.contains(leaked), "{leaked} leaks: {s}");
        }
        assert_eq!(v["authorization"], MASK);
        assert_eq!(v["cookies"], MASK);
        assert_eq!(v["api_key"], MASK, "a numeric key is a key");
        assert_eq!(v["session"], MASK);
        assert_eq!(v["user"]["name"], "bob");
        assert_eq!(v["user"]["password"], MASK);
        // Flags say whether a secret was there, not what it was.
        assert_eq!(v["authorization_present"], false);
        assert_eq!(v["auth_headers"]["authorization_present"], false);
        assert_eq!(v["auth_headers"]["cookie_present"], json!(null));
        assert_eq!(v["token"], json!(null));
        assert_eq!(v["secret_flags"], json!([true, false]));
        // Masking twice is masking once.
        let once = v.clone();
        r.value(&mut v);
        assert_eq!(v, once);
    }

    #[test]
    fn name_value_pairs_in_text_use_the_field_rule() {
        let r = Redactor::new(&["ssn".into(), "X_Tenant".into()], &[]).unwrap();
        let t = r.text(
            "private_key=AAAAB3NzaC1 ssh_key=\"ssh-ed25519 AAAA\" apikey=k1 privateKey=pk \
             access-key=ak2 session=s1 csrf_token=c2 db_password=hunter2 \
             client_secret=cs3 credentials=cr4 ssn=123-45 x_tenant=acme \
             keyboard=us monkey=3 keyspace=prod key_count=4 has_token=true user=bob AUTHORIZATION=xyz9",
        );
        for leaked in [
            "AAAAB3NzaC1",
            "ssh-ed25519",
            "k1",
            "=pk",
            "ak2",
            "xyz9",
            "s1",
            "c2",
            "hunter2",
            "cs3",
            "cr4",
            "123-45",
            "acme",
        ] {
            assert!(!t.contains(leaked), "`{leaked}` leaks: {t}");
        }
        for kept in [
            "keyboard=us",
            "monkey=3",
            "keyspace=prod",
            "key_count=4",
            "has_token=true",
            "user=bob",
        ] {
            assert!(t.contains(kept), "`{kept}` was masked: {t}");
        }
        assert!(t.contains("private_key=[REDACTED] ssh_key=[REDACTED] apikey=[REDACTED]"));
        // Query strings end a value at `&`; masking twice is masking once.
        let q = r.text("GET /cb?code=ok&api_key=abc123&next=/home");
        assert_eq!(q, "GET /cb?code=ok&api_key=[REDACTED]&next=/home");
        assert_eq!(r.text(&q), q);
    }

    #[test]
    fn key_is_a_word_not_a_substring() {
        let r = Redactor::default();
        for name in [
            "key",
            "api_key",
            "apiKey",
            "X-Api-Key",
            "APIKEY",
            "privkey",
            "ssh.key",
            "signing_key_id",
            "KEY",
        ] {
            assert!(r.sensitive_name(name), "{name}");
        }
        for name in [
            "keyboard",
            "monkey",
            "keyspace",
            "turkey",
            "hotkeys",
            "api_key_count",
        ] {
            assert!(!r.sensitive_name(name), "{name}");
        }
    }

    #[test]
    fn caps_and_strips() {
        assert_eq!(strip_controls("a\u{1b}[31mb"), "a\u{FFFD}[31mb");
        assert_eq!(cap_text("héllo", 2), "h… (6 bytes)");
    }
}
