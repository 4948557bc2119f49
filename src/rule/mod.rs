//! Remediations and their conditions: the rule model.
//!
//! A rule file (`rules/*.toml`) describes one tracked remediation. [`load`] turns files into
//! [`Remediation`]s, collecting every error with its location; [`cond`] evaluates conditions
//! against a decoded [`Event`](crate::decode::Event). The matcher stage compiles a set of
//! remediations into a fast prefilter plus these exact evaluators.

pub mod cond;
pub mod load;

use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

use jiff::{SignedDuration, Timestamp};
use regex::Regex;

pub use cond::{FieldRef, Outcome};
pub use load::{LoadedRules, load_rules_dir, parse_rule_file};

/// How bad the error is when it comes back. Orders notifications and colours output.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Info,
    Warning,
    Error,
    Critical,
}

impl Severity {
    pub const NAMES: &'static [&'static str] = &["info", "warning", "error", "critical"];

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "info" => Self::Info,
            "warning" => Self::Warning,
            "error" => Self::Error,
            "critical" => Self::Critical,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Info => "info",
            Self::Warning => "warning",
            Self::Error => "error",
            Self::Critical => "critical",
        }
    }
}

/// Whether the fix has shipped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum FixStatus {
    Open,
    Fixed,
}

impl FixStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Open => "open",
            Self::Fixed => "fixed",
        }
    }
}

/// The `[fix]` table.
#[derive(Debug, Clone, PartialEq)]
pub struct Fix {
    pub status: FixStatus,
    /// When the fix shipped; events at or after it are recurrences. Required when fixed.
    pub fixed_at: Option<Timestamp>,
    /// An open remediation past its deadline is overdue.
    pub deadline: Option<Timestamp>,
    /// Success criterion: this long in scope with zero recurrences makes the fix verified.
    pub verify: SignedDuration,
}

/// The `[alert]` table: when recurrences open an episode and how often to remind.
#[derive(Debug, Clone, PartialEq)]
pub struct Alert {
    /// Recurrences within `window` that open an episode.
    pub threshold: u32,
    pub window: SignedDuration,
    /// Reminders while an episode lasts, at most this often.
    pub repeat: SignedDuration,
    /// Quiet time after which an episode ends (default: `window`).
    pub resolve: SignedDuration,
    /// Channel names from `recur.toml`; empty means the config's `default_channels`.
    pub channels: Vec<String>,
    /// Redacted sample events carried by a notification.
    pub samples: u32,
    /// Optional minijinja template overriding the human text of notifications.
    pub template: Option<String>,
}

impl Default for Alert {
    fn default() -> Self {
        Alert {
            threshold: 1,
            window: SignedDuration::from_hours(1),
            repeat: SignedDuration::from_hours(6),
            resolve: SignedDuration::from_hours(1),
            channels: Vec::new(),
            samples: 3,
            template: None,
        }
    }
}

/// Where a field is read from.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum FieldPath {
    /// `_line`: the raw text of the record (the inner line for container envelopes).
    Line,
    /// Nested object keys, outermost first. `["auth_headers", "authorization_present"]`.
    Field(Vec<String>),
}

impl FieldPath {
    /// Parses a user-typed dotted path (`resource.labels.service_name`, `_line`).
    /// Used by `grep --where`; rule files get their paths from TOML nesting.
    pub fn parse_dotted(s: &str) -> FieldPath {
        if s == "_line" {
            FieldPath::Line
        } else {
            FieldPath::Field(s.split('.').map(str::to_string).collect())
        }
    }

    /// The top-level key this path starts from, if any.
    pub fn root(&self) -> Option<&str> {
        match self {
            FieldPath::Line => None,
            FieldPath::Field(p) => p.first().map(String::as_str),
        }
    }
}

impl std::fmt::Display for FieldPath {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FieldPath::Line => f.write_str("_line"),
            FieldPath::Field(parts) => {
                for (i, p) in parts.iter().enumerate() {
                    if i > 0 {
                        f.write_str(".")?;
                    }
                    if p.contains('.') || p.is_empty() {
                        write!(f, "\"{p}\"")?;
                    } else {
                        f.write_str(p)?;
                    }
                }
                Ok(())
            }
        }
    }
}

/// A constant compared with equality.
#[derive(Debug, Clone, PartialEq)]
pub enum Scalar {
    Str(String),
    Num(f64),
    Bool(bool),
    Null,
}

impl std::fmt::Display for Scalar {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Scalar::Str(s) => write!(f, "{s:?}"),
            Scalar::Num(n) => write!(f, "{n}"),
            Scalar::Bool(b) => write!(f, "{b}"),
            Scalar::Null => f.write_str("null"),
        }
    }
}

/// A regex test's pattern: checked when the rule is read, compiled the first time a record
/// needs it (clones share the compiled regex).
///
/// A rule's regex usually refines a literal the prefilter looks for first, so in a scan most
/// are never run; compiling every one up front was about a quarter of a 100-rule scan's fixed
/// cost (~2.5 ms of 11), paid on the serial start of even a two-thread scan of 1 GB. The check
/// at load is the parse `Regex::new` starts with (the same errors, word for word); a pattern
/// that could compile past the size limit (a counted repetition, or a very long pattern) is
/// compiled at load as well, so that every error is still a rule error.
#[derive(Clone)]
pub struct Pattern(Arc<PatternInner>);

struct PatternInner {
    source: String,
    re: OnceLock<Regex>,
}

impl Pattern {
    pub fn new(source: &str) -> Result<Pattern, regex::Error> {
        let re = OnceLock::new();
        if source.contains('{') || source.len() > 1000 {
            let _ = re.set(Regex::new(source)?);
        } else if let Err(e) = regex_syntax::Parser::new().parse(source) {
            return Err(regex::Error::Syntax(e.to_string()));
        }
        Ok(Pattern(Arc::new(PatternInner {
            source: source.to_owned(),
            re,
        })))
    }

    pub fn as_str(&self) -> &str {
        &self.0.source
    }

    pub fn is_match(&self, text: &str) -> bool {
        self.regex().is_match(text)
    }

    fn regex(&self) -> &Regex {
        self.0.re.get_or_init(|| {
            // Parsed at load, and not one of the patterns that can outgrow the size limit.
            Regex::new(&self.0.source).expect("a pattern checked at load compiles")
        })
    }
}

impl From<Regex> for Pattern {
    fn from(re: Regex) -> Pattern {
        Pattern(Arc::new(PatternInner {
            source: re.as_str().to_owned(),
            re: OnceLock::from(re),
        }))
    }
}

impl std::fmt::Debug for Pattern {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Pattern").field(&self.0.source).finish()
    }
}

/// The test applied to one field.
#[derive(Debug, Clone)]
pub enum Test {
    /// A plain value: equality (strings, numbers, booleans, null).
    Eq(Scalar),
    /// An array: any of these values.
    AnyOf(Vec<Scalar>),
    Regex(Pattern),
    Contains(String),
    Prefix(String),
    Suffix(String),
    /// `exists = true` holds when the field is present (even `null`); `false` when absent.
    Exists(bool),
    /// Negation; holds when the inner test does not, including when the field is absent.
    Not(Box<Test>),
    Gt(f64),
    Ge(f64),
    Lt(f64),
    Le(f64),
}

impl PartialEq for Test {
    fn eq(&self, other: &Self) -> bool {
        use Test::*;
        match (self, other) {
            (Eq(a), Eq(b)) => a == b,
            (AnyOf(a), AnyOf(b)) => a == b,
            (Regex(a), Regex(b)) => a.as_str() == b.as_str(),
            (Contains(a), Contains(b)) | (Prefix(a), Prefix(b)) | (Suffix(a), Suffix(b)) => a == b,
            (Exists(a), Exists(b)) => a == b,
            (Not(a), Not(b)) => a == b,
            (Gt(a), Gt(b)) | (Ge(a), Ge(b)) | (Lt(a), Lt(b)) | (Le(a), Le(b)) => a == b,
            _ => false,
        }
    }
}

/// Operator keys accepted in a condition table (`message = { regex = '...' }`).
pub const OPERATORS: &[&str] = &[
    "regex", "contains", "prefix", "suffix", "exists", "not", "gt", "ge", "lt", "le",
];

/// One field test.
#[derive(Debug, Clone, PartialEq)]
pub struct Condition {
    pub path: FieldPath,
    pub test: Test,
}

/// A set of conditions that must all hold.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Signature {
    pub conditions: Vec<Condition>,
}

/// A `[[example]]`: a line and whether the remediation must match it.
#[derive(Debug, Clone, PartialEq)]
pub struct Example {
    pub line: String,
    pub expect_match: bool,
    /// 1-based line of the example's table in the rule file.
    pub source_line: usize,
}

/// One tracked remediation (one rule file).
#[derive(Debug, Clone, PartialEq)]
pub struct Remediation {
    pub id: String,
    pub title: String,
    pub severity: Severity,
    pub owner: String,
    pub analysis: String,
    pub action: String,
    pub fix: Fix,
    /// ANDed into every signature; events in scope are the coverage.
    pub scope: Vec<Condition>,
    /// Any one matching (together with the scope) is an occurrence.
    pub signatures: Vec<Signature>,
    pub alert: Alert,
    pub examples: Vec<Example>,
    /// The file this remediation was loaded from.
    pub path: PathBuf,
}

impl Remediation {
    /// True when `t` is at or after the fix, i.e. an occurrence at `t` is a recurrence.
    pub fn is_recurrence_time(&self, t: Timestamp) -> bool {
        match (self.fix.status, self.fix.fixed_at) {
            (FixStatus::Fixed, Some(f)) => t >= f,
            _ => false,
        }
    }
}

#[cfg(test)]
mod pattern_tests {
    use super::*;

    #[test]
    fn a_pattern_fails_at_load_as_the_regex_would_and_matches_as_it_does() {
        for bad in ["(unclosed", "*a", "[z-a]", r"\p{NoSuchClass}", "x{2,1}"] {
            let want = Regex::new(bad).unwrap_err().to_string();
            let got = Pattern::new(bad).err().map(|e| e.to_string());
            assert_eq!(got.as_deref(), Some(want.as_str()), "{bad}");
        }
        // Past the size limit only once compiled: still refused at load.
        let huge = r"\w{1000}\w{1000}\w{1000}";
        assert!(Regex::new(huge).is_err());
        assert!(Pattern::new(huge).is_err());
        let p = Pattern::new("^No JWT.* in WebSocket").unwrap();
        let q = p.clone();
        assert!(p.is_match("No JWT found in WebSocket headers"));
        assert!(!q.is_match("a JWT in WebSocket"));
        assert_eq!(q.as_str(), "^No JWT.* in WebSocket");
    }
}
