//! Literal prefilter: decides from raw bytes which rules could match a record.
//!
//! Exactness rests on one property: every literal is a substring that *must* appear in the raw
//! bytes of any record whose decoded event satisfies the condition it came from, whatever the
//! encoding (plain JSON, JSON escaped inside a Docker or GCP envelope, logfmt, text). Two
//! encodings can hide bytes:
//! - `\uXXXX` escapes can spell any character, so a record containing `\u` is a candidate for
//!   every rule (rare in practice; see PERF notes in the README);
//! - JSON short escapes change `"`, `\`, `/` and control characters, so literals are cut from
//!   runs of bytes that no encoder escapes.
//!
//! Equality literals add boundary checks: a value `NO_TOKEN` is always delimited in its
//! encoding (`"NO_TOKEN"`, `=NO_TOKEN `, `\"NO_TOKEN\"`), so a hit inside `NO_TOKEN_SCOPE` is
//! rejected before anything is decoded.

use aho_corasick::{AhoCorasick, AhoCorasickBuilder, MatchKind};

use crate::rule::{Condition, FieldPath, Scalar, Test};

/// The literal requirement of one condition: any of these strings must occur.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Requirement {
    pub alternatives: Vec<Lit>,
}

/// One literal and the delimiters its hits must have.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Lit {
    pub bytes: Vec<u8>,
    /// The byte before a hit must not be a word byte.
    pub left: bool,
    /// The byte after a hit must not be a word byte.
    pub right: bool,
}

fn is_word(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

/// Bytes that some JSON encoder may escape, or that may be escaped in nested encodings.
fn is_escapable(b: u8) -> bool {
    b == b'"' || b == b'\\' || b == b'/' || b < 0x20 || b == 0x7f
}

/// The longest run of `s` made of bytes no encoder escapes, and whether it is all of `s`.
fn safe_run(s: &str) -> Option<(Vec<u8>, bool, bool)> {
    let b = s.as_bytes();
    let mut best: Option<(usize, usize)> = None;
    let mut i = 0;
    while i < b.len() {
        if is_escapable(b[i]) {
            i += 1;
            continue;
        }
        let start = i;
        while i < b.len() && !is_escapable(b[i]) {
            i += 1;
        }
        if best.is_none_or(|(s0, e0)| i - start > e0 - s0) {
            best = Some((start, i));
        }
    }
    let (s0, e0) = best?;
    Some((b[s0..e0].to_vec(), s0 == 0, e0 == b.len()))
}

/// Minimum literal length worth searching for: shorter ones hit nearly every line.
const MIN_LIT: usize = 3;

fn eq_lit(s: &Scalar) -> Option<Lit> {
    let Scalar::Str(s) = s else { return None };
    // A numeric string equals a number too, and numbers have many spellings (`5e2`).
    if s.trim().parse::<f64>().is_ok() || s.trim() != s {
        return None;
    }
    let (bytes, at_start, at_end) = safe_run(s)?;
    if bytes.len() < MIN_LIT {
        return None;
    }
    let left = at_start && is_word(bytes[0]);
    let right = at_end && is_word(*bytes.last().unwrap());
    Some(Lit { bytes, left, right })
}

fn sub_lit(s: &str) -> Option<Lit> {
    let (bytes, _, _) = safe_run(s)?;
    (bytes.len() >= MIN_LIT).then_some(Lit {
        bytes,
        left: false,
        right: false,
    })
}

/// What a condition requires of the raw bytes, if anything.
pub fn requirement(c: &Condition) -> Option<Requirement> {
    // `_line` holds the record's text, which for JSON is the raw line itself and for envelopes
    // the inner line (escaped in the raw bytes): substring literals still hold, boundaries too.
    let _ = matches!(c.path, FieldPath::Line);
    let alternatives = match &c.test {
        Test::Eq(s) => vec![eq_lit(s)?],
        Test::AnyOf(list) => list.iter().map(eq_lit).collect::<Option<Vec<_>>>()?,
        Test::Contains(s) | Test::Prefix(s) | Test::Suffix(s) => vec![sub_lit(s)?],
        Test::Regex(re) => regex_literal(re.as_str())?,
        _ => return None,
    };
    if alternatives.is_empty() {
        return None;
    }
    Some(Requirement { alternatives })
}

/// Literals a regex requires, from `regex-syntax`'s extractor: only when every alternative is
/// a required substring (no case folding, no `\u`-unsafe bytes).
fn regex_literal(pattern: &str) -> Option<Vec<Lit>> {
    use regex_syntax::hir::literal::{ExtractKind, Extractor};
    let hir = regex_syntax::ParserBuilder::new()
        .build()
        .parse(pattern)
        .ok()?;
    let mut best: Option<Vec<Lit>> = None;
    for kind in [ExtractKind::Prefix, ExtractKind::Suffix] {
        let mut ex = Extractor::new();
        ex.kind(kind);
        let seq = ex.extract(&hir);
        let lits = seq.literals()?;
        if lits.is_empty() {
            continue;
        }
        let mut out = Vec::new();
        for l in lits {
            let s = std::str::from_utf8(l.as_bytes()).ok()?;
            out.push(sub_lit(s)?);
        }
        let score = out.iter().map(|l| l.bytes.len()).min().unwrap_or(0);
        if best
            .as_ref()
            .is_none_or(|b| score > b.iter().map(|l| l.bytes.len()).min().unwrap_or(0))
        {
            best = Some(out);
        }
    }
    best
}

/// How selective a requirement probably is: the length of its shortest alternative, with
/// bounded literals counted as longer since their hits are checked before decoding.
pub fn score(r: &Requirement) -> usize {
    r.alternatives
        .iter()
        .map(|l| l.bytes.len() + 4 * (l.left as usize + l.right as usize))
        .min()
        .unwrap_or(0)
}

/// Picks the most selective requirement among conditions.
pub fn best_requirement<'a>(conds: impl IntoIterator<Item = &'a Condition>) -> Option<Requirement> {
    conds.into_iter().filter_map(requirement).max_by_key(score)
}

/// A compiled set of literals, each mapped to the targets (opaque ids) it makes candidates.
pub struct LiteralSet {
    ac: Option<AhoCorasick>,
    lits: Vec<Lit>,
    /// For each literal: the target ids it serves.
    targets: Vec<Vec<u32>>,
    /// Every target that has literals: candidates on a `\u` record.
    all_targets: Vec<u32>,
}

impl LiteralSet {
    /// Builds the set from `(target, requirement)` pairs.
    pub fn new(reqs: &[(u32, Requirement)]) -> Self {
        let mut lits: Vec<Lit> = Vec::new();
        let mut targets: Vec<Vec<u32>> = Vec::new();
        let mut all_targets = Vec::new();
        for (t, r) in reqs {
            all_targets.push(*t);
            for l in &r.alternatives {
                let idx = match lits.iter().position(|x| x == l) {
                    Some(i) => i,
                    None => {
                        lits.push(l.clone());
                        targets.push(Vec::new());
                        lits.len() - 1
                    }
                };
                if !targets[idx].contains(t) {
                    targets[idx].push(*t);
                }
            }
        }
        all_targets.sort_unstable();
        all_targets.dedup();
        let ac = if lits.is_empty() {
            None
        } else {
            Some(
                AhoCorasickBuilder::new()
                    .match_kind(MatchKind::Standard)
                    .build(lits.iter().map(|l| &l.bytes))
                    .expect("literal automaton"),
            )
        };
        LiteralSet {
            ac,
            lits,
            targets,
            all_targets,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.lits.is_empty()
    }

    /// Calls `hit` with every target some literal of which occurs (properly delimited) in
    /// `hay`. Targets may be reported more than once.
    pub fn scan(&self, hay: &[u8], mut hit: impl FnMut(u32)) {
        let Some(ac) = &self.ac else { return };
        if memchr::memmem::find(hay, b"\\u").is_some() {
            self.all_targets.iter().for_each(|&t| hit(t));
            return;
        }
        for m in ac.find_overlapping_iter(hay) {
            let lit = &self.lits[m.pattern().as_usize()];
            if lit.left && m.start() > 0 && is_word(hay[m.start() - 1]) {
                continue;
            }
            if lit.right && m.end() < hay.len() && is_word(hay[m.end()]) {
                continue;
            }
            self.targets[m.pattern().as_usize()]
                .iter()
                .for_each(|&t| hit(t));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rule::FieldPath;

    fn cond(test: Test) -> Condition {
        Condition {
            path: FieldPath::parse_dotted("f"),
            test,
        }
    }

    fn lits(test: Test) -> Option<Vec<(String, bool, bool)>> {
        requirement(&cond(test)).map(|r| {
            r.alternatives
                .into_iter()
                .map(|l| (String::from_utf8(l.bytes).unwrap(), l.left, l.right))
                .collect()
        })
    }

    #[test]
    fn literal_extraction() {
        assert_eq!(
            lits(Test::Eq(Scalar::Str("NO_TOKEN".into()))),
            Some(vec![("NO_TOKEN".into(), true, true)])
        );
        assert_eq!(lits(Test::Eq(Scalar::Str("500".into()))), None);
        assert_eq!(lits(Test::Eq(Scalar::Num(500.0))), None);
        assert_eq!(
            lits(Test::Eq(Scalar::Str("/api/ws".into()))),
            Some(vec![("api".into(), false, false)])
        );
        assert_eq!(
            lits(Test::Eq(Scalar::Str("a\"quoted\"".into()))),
            Some(vec![("quoted".into(), false, false)])
        );
        assert_eq!(
            lits(Test::Contains("JWT".into())),
            Some(vec![("JWT".into(), false, false)])
        );
        assert_eq!(
            lits(Test::Regex(
                regex::Regex::new("No JWT.* in WebSocket").unwrap()
            )),
            Some(vec![(" in WebSocket".into(), false, false)])
        );
        assert_eq!(lits(Test::Exists(true)), None);
        assert_eq!(lits(Test::Not(Box::new(Test::Contains("x".into())))), None);
    }

    #[test]
    fn boundaries_reject_lookalikes() {
        let r = requirement(&cond(Test::Eq(Scalar::Str("NO_TOKEN".into())))).unwrap();
        let set = LiteralSet::new(&[(7, r)]);
        let hits = |s: &str| {
            let mut v = Vec::new();
            set.scan(s.as_bytes(), |t| v.push(t));
            !v.is_empty()
        };
        assert!(hits(r#"{"error_code":"NO_TOKEN"}"#));
        assert!(hits(r#"{"log":"{\"error_code\":\"NO_TOKEN\"}"}"#));
        assert!(hits("error_code=NO_TOKEN level=error"));
        assert!(!hits(r#"{"error_code":"NO_TOKEN_SCOPE"}"#));
        assert!(!hits(r#"{"error_code":"XNO_TOKEN"}"#));
        assert!(
            hits(r#"{"error_code":"\u004eO_TOKEN"}"#),
            "\\u makes every rule a candidate"
        );
    }
}
