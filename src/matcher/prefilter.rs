//! Prefilter: decides from raw bytes which rules could match a record, before anything is
//! decoded.
//!
//! Exactness rests on one property: for every rule the prefilter is asked about, the raw bytes
//! of any record whose decoded event satisfies the rule *must* show the rule's requirement,
//! whatever the encoding (plain JSON, JSON escaped inside a Docker envelope or a GCP entry,
//! logfmt, text). The prefilter may say yes too often (the exact evaluator then says no); it
//! must never say no to a record that matches. Two kinds of requirement:
//!
//! - **Literals** ([`Requirement::Literals`]): any of these byte strings occurs. Cut from runs of
//!   bytes no JSON encoder escapes, so an escaped encoding (`\"NO_TOKEN\"` inside a Docker line)
//!   still contains them. Equality literals carry boundary checks: a value `NO_TOKEN` is always
//!   delimited in its encoding (`"NO_TOKEN"`, `=NO_TOKEN `, `\"NO_TOKEN\"`), so a hit inside
//!   `NO_TOKEN_SCOPE` is rejected before anything is decoded.
//! - **Keyed values** ([`Requirement::Keyed`]): the field's key occurs, followed by a separator
//!   and one of the wanted values, read raw. This is how equality conditions are indexed: one
//!   search for the key (`error_code`) and one hash lookup of the value it carries serve any
//!   number of rules, so a thousand rules on `error_code` cost what one does. The raw reading
//!   accepts every spelling the decoders accept (`"k": "v"`, `\"k\":\"v\"` inside an envelope,
//!   `k=v`, `k="v"`); whenever the raw value cannot be read without decoding (an escape inside
//!   it, an array), the record is a candidate for every rule on that key.
//!
//! `\uXXXX` escapes can spell any character (even inside keys), so a record containing `\u` is
//! a candidate for every rule with a requirement. Rare in practice; see the README's notes on
//! the hot path.

use std::collections::HashMap;

use aho_corasick::{AhoCorasick, AhoCorasickBuilder, AhoCorasickKind, MatchKind};
use memchr::memmem;

use crate::rule::{Condition, FieldPath, Scalar, Test};

/// The literal requirement of one condition: any of these must show in the raw bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Requirement {
    /// Any of these literals occurs (with its boundary checks).
    Literals(Vec<Lit>),
    /// The key `key` occurs followed by a separator and, raw, one of `values`.
    Keyed { key: Vec<u8>, values: Vec<Vec<u8>> },
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

/// A string that equality may also match in another spelling: numbers (`"500"` equals `500`,
/// `5e2`) and strings with surrounding blanks (logfmt and text lose them).
fn equality_is_spelling_free(s: &str) -> bool {
    s.trim().parse::<f64>().is_err() && s.trim() == s
}

fn eq_lit(s: &Scalar) -> Option<Lit> {
    let Scalar::Str(s) = s else { return None };
    if !equality_is_spelling_free(s) {
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

/// Keys the decoders may synthesise from other raw keys (GCP's `message` from `textPayload`,
/// `stream` from a CRI prefix): a keyed search for them could miss, so they are not indexed.
const SYNTHETIC_KEYS: &[&str] = &["message", "stream", "attrs"];

/// The raw key a path's value is written under, when equality on it can be indexed.
fn index_key(path: &FieldPath) -> Option<Vec<u8>> {
    let FieldPath::Field(parts) = path else {
        return None;
    };
    let last = parts.last()?;
    if parts.len() == 1 && SYNTHETIC_KEYS.contains(&last.as_str()) {
        return None;
    }
    if last.is_empty() || last.bytes().any(is_escapable) {
        return None;
    }
    Some(last.as_bytes().to_vec())
}

/// A value equality can look up raw: no spelling variants, no escapable bytes (those would be
/// read as "cannot tell" anyway).
fn index_value(s: &Scalar) -> Option<Vec<u8>> {
    let Scalar::Str(s) = s else { return None };
    (equality_is_spelling_free(s) && !s.bytes().any(is_escapable)).then(|| s.as_bytes().to_vec())
}

/// What a condition requires of the raw bytes, if anything: a keyed value for equality on a
/// field, else literals.
pub fn requirement(c: &Condition) -> Option<Requirement> {
    if let Some(key) = index_key(&c.path) {
        let values = match &c.test {
            Test::Eq(s) => index_value(s).map(|v| vec![v]),
            Test::AnyOf(list) => list.iter().map(index_value).collect::<Option<Vec<_>>>(),
            _ => None,
        };
        if let Some(values) = values.filter(|v| !v.is_empty()) {
            return Some(Requirement::Keyed { key, values });
        }
    }
    literal_requirement(c)
}

/// The literal form of a condition's requirement (what `_line` tests and operators give).
pub fn literal_requirement(c: &Condition) -> Option<Requirement> {
    // `_line` holds the record's text, which for JSON is the raw line itself and for envelopes
    // the inner line (escaped in the raw bytes): substring literals still hold, boundaries too.
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
    Some(Requirement::Literals(alternatives))
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
/// bounded literals counted as longer since their hits are checked before decoding. A keyed
/// value scores as its value would as a bounded literal (the key adds an exact field test, so
/// it wins a tie): of `error_code = "NO_TOKEN"` and `environment = "staging"` the rarer-looking
/// value is the one searched.
pub fn score(r: &Requirement) -> usize {
    let lit = |l: &Lit| l.bytes.len() + 4 * (l.left as usize + l.right as usize);
    match r {
        Requirement::Keyed { values, .. } => {
            values
                .iter()
                .map(|v| {
                    let word = |b: Option<&u8>| b.is_some_and(|&b| is_word(b)) as usize;
                    v.len() + 4 * (word(v.first()) + word(v.last()))
                })
                .min()
                .unwrap_or(0)
                * 2
                + 1
        }
        Requirement::Literals(alts) => alts.iter().map(lit).min().unwrap_or(0) * 2,
    }
}

/// Picks the most selective requirement among conditions.
pub fn best_requirement<'a>(conds: impl IntoIterator<Item = &'a Condition>) -> Option<Requirement> {
    conds.into_iter().filter_map(requirement).max_by_key(score)
}

/// Below this many distinct keyed values, equality is searched by its value literals instead:
/// a rare value is found faster by a substring search than by reading a key that every line
/// carries; past it, one key search and a hash lookup beat a growing literal automaton.
pub const KEYED_MIN_VALUES: usize = 8;

/// Rewrites keyed requirements as literal ones when there are few distinct keyed values (see
/// [`KEYED_MIN_VALUES`]) and every value has a usable literal.
pub fn prefer_literals_when_few(reqs: &mut [(u32, Requirement)]) {
    let mut distinct: Vec<&[u8]> = Vec::new();
    for (_, r) in reqs.iter() {
        if let Requirement::Keyed { values, .. } = r {
            for v in values {
                if !distinct.contains(&v.as_slice()) {
                    distinct.push(v);
                }
            }
        }
    }
    if distinct.len() >= KEYED_MIN_VALUES {
        return;
    }
    for (_, r) in reqs.iter_mut() {
        if let Requirement::Keyed { values, .. } = r {
            let lits: Option<Vec<Lit>> = values
                .iter()
                .map(|v| eq_lit(&Scalar::Str(String::from_utf8_lossy(v).into_owned())))
                .collect();
            if let Some(lits) = lits {
                *r = Requirement::Literals(lits);
            }
        }
    }
}

/// A target id reported for a record containing `\u`: every target is a candidate.
pub const ALL_TARGETS: u32 = u32::MAX;

/// What follows a key in the raw bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RawValue<'a> {
    /// Not a key followed by a separator (a word in a message, say).
    NotAKey,
    /// A value that cannot be read without decoding (an escape inside, an array).
    Unknown,
    /// The value's bytes as written.
    Value(&'a [u8]),
    /// A bare value, read two ways: up to a JSON delimiter (`5,` `true}`) and up to the next
    /// blank (logfmt's reading: `a,b` is one value there).
    Bare(&'a [u8], &'a [u8]),
    /// A string value whose first byte, written plainly, starts no wanted value.
    Unwanted,
}

/// Is the byte before `s` a word byte that makes `s` no word start? A word byte that ends an
/// escape (`\t` before a logfmt key inside a Docker line) is a separator in the decoded text.
fn word_before(hay: &[u8], s: usize) -> bool {
    s > 0 && is_word(hay[s - 1]) && !(s >= 2 && hay[s - 2] == b'\\')
}

fn is_json_ws(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\r' | b'\n')
}

/// Reads the value after a key that ends at `i` (just past its last byte). Accepts `"k":"v"`,
/// `"k": v`, `\"k\":\"v\"` (JSON inside a JSON string), `k=v` and `k="v"`.
///
/// A quoted value whose first byte is written plainly (no escape) and fails `may_start` is
/// [`RawValue::Unwanted`] before its end is looked for: the key is in nearly every line, its
/// value is usually one no rule wants, and its first byte says so (`"OK"`, three lines in
/// four of a typical log) without the search for the closing quote.
fn raw_value(hay: &[u8], mut i: usize, may_start: impl Fn(u8) -> bool) -> RawValue<'_> {
    let at = |i: usize| hay.get(i).copied();
    // A string starting at `start` whose first byte, written plainly, starts no wanted value.
    let unwanted =
        |start: usize| at(start).is_some_and(|b| b != b'"' && b != b'\\' && !may_start(b));
    // The key's closing quote, plain or escaped.
    if at(i) == Some(b'"') {
        i += 1;
    } else if at(i) == Some(b'\\') && at(i + 1) == Some(b'"') {
        i += 2;
    }
    while at(i).is_some_and(is_json_ws) {
        i += 1;
    }
    match at(i) {
        Some(b':') | Some(b'=') => i += 1,
        // An escaped blank (`\t`) inside an escaped object: cannot tell without decoding.
        Some(b'\\') => return RawValue::Unknown,
        _ => return RawValue::NotAKey,
    }
    while at(i).is_some_and(is_json_ws) {
        i += 1;
    }
    match at(i) {
        None => RawValue::NotAKey,
        Some(b'"') => {
            let start = i + 1;
            if unwanted(start) {
                return RawValue::Unwanted;
            }
            match memchr::memchr2(b'"', b'\\', &hay[start..]) {
                Some(n) if hay[start + n] == b'"' => RawValue::Value(&hay[start..start + n]),
                // An escape inside the value, or no closing quote.
                _ => RawValue::Unknown,
            }
        }
        Some(b'\\') => {
            if at(i + 1) != Some(b'"') {
                return RawValue::Unknown;
            }
            let start = i + 2;
            if unwanted(start) {
                return RawValue::Unwanted;
            }
            match memchr::memchr2(b'"', b'\\', &hay[start..]) {
                Some(n) if hay[start + n] == b'\\' && at(start + n + 1) == Some(b'"') => {
                    RawValue::Value(&hay[start..start + n])
                }
                _ => RawValue::Unknown,
            }
        }
        // An array may hold the value; objects never equal a string.
        Some(b'[') => RawValue::Unknown,
        Some(b'{') => RawValue::NotAKey,
        Some(_) => {
            let rest = &hay[i..];
            // logfmt's bare value runs to the next blank; JSON's ends at a delimiter too. An
            // unescaped `"` ends the string a logfmt line sits in (a Docker `log`); in a plain
            // logfmt line it would be part of the value, but no indexed value holds one.
            let blank = rest
                .iter()
                .position(|&b| matches!(b, b' ' | b'\t' | b'\r' | b'\n' | b'\\' | b'"'))
                .unwrap_or(rest.len());
            if rest.get(blank) == Some(&b'\\') {
                return RawValue::Unknown;
            }
            let json = rest[..blank]
                .iter()
                .position(|&b| matches!(b, b',' | b'}' | b']'))
                .unwrap_or(blank);
            RawValue::Bare(&rest[..json], &rest[..blank])
        }
    }
}

/// Searches many byte strings at once: one `memmem` finder when there is one (the fastest
/// search there is), else a packed (Teddy) Aho-Corasick automaton. Aho-Corasick's default
/// prefilter is slow on JSON, where `"` is a tenth of all bytes; the DFA it falls back to for
/// large sets is still far better than a regex set.
enum Multi {
    One(Box<memmem::Finder<'static>>),
    Many(AhoCorasick),
}

impl Multi {
    fn new(pats: &[Vec<u8>]) -> Option<Multi> {
        match pats.len() {
            0 => None,
            1 => Some(Multi::One(Box::new(
                memmem::Finder::new(&pats[0]).into_owned(),
            ))),
            _ => {
                let kind = if pats.len() <= 64 {
                    None
                } else {
                    Some(AhoCorasickKind::DFA)
                };
                Some(Multi::Many(
                    AhoCorasickBuilder::new()
                        .match_kind(MatchKind::Standard)
                        .kind(kind)
                        .build(pats)
                        .expect("literal automaton"),
                ))
            }
        }
    }

    /// Calls `f(pattern, start, end)` for every occurrence, overlapping ones included.
    fn each(&self, hay: &[u8], mut f: impl FnMut(usize, usize, usize)) {
        match self {
            Multi::One(finder) => {
                // Overlapping hits too (`e=e` in `error_code=e=e`): a hit that fails its
                // boundary check must not hide one that starts inside it.
                let n = finder.needle().len();
                let mut at = 0;
                while let Some(i) = finder.find(&hay[at..]) {
                    f(0, at + i, at + i + n);
                    at += i + 1;
                }
            }
            Multi::Many(ac) => {
                for m in ac.find_overlapping_iter(hay) {
                    f(m.pattern().as_usize(), m.start(), m.end());
                }
            }
        }
    }
}

/// One indexed key: the targets of each value, and of any value that cannot be read raw.
struct KeyEntry {
    key: Vec<u8>,
    values: HashMap<Vec<u8>, Vec<u32>, foldhash::fast::FixedState>,
    /// Every target on this key (candidates when the raw value is unknown).
    all: Vec<u32>,
    /// Lengths (bit `min(len, 63)`) and first bytes of the wanted values: most raw values
    /// are turned away by these two bit tests before anything is hashed.
    lens: u64,
    firsts: [u64; 4],
}

impl KeyEntry {
    fn add_value(&mut self, v: &[u8], t: u32) {
        self.lens |= 1 << v.len().min(63);
        let f = v.first().copied().unwrap_or(0);
        self.firsts[(f >> 6) as usize] |= 1 << (f & 63);
        let list = self.values.entry(v.to_vec()).or_default();
        if !list.contains(&t) {
            list.push(t);
        }
    }

    /// Whether a wanted value starts with this byte.
    fn may_start(&self, f: u8) -> bool {
        self.firsts[(f >> 6) as usize] & (1 << (f & 63)) != 0
    }

    fn lookup(&self, v: &[u8]) -> Option<&Vec<u32>> {
        if self.lens & (1 << v.len().min(63)) == 0 {
            return None;
        }
        let f = v.first().copied().unwrap_or(0);
        if self.firsts[(f >> 6) as usize] & (1 << (f & 63)) == 0 {
            return None;
        }
        self.values.get(v)
    }
}

/// A compiled set of requirements, each mapped to the targets (opaque ids) it makes candidates.
pub struct Prefilter {
    lits: Option<Multi>,
    lit_meta: Vec<Lit>,
    lit_targets: Vec<Vec<u32>>,
    keys: Option<Multi>,
    key_entries: Vec<KeyEntry>,
    /// Every target that has a requirement: candidates on a `\u` record.
    all_targets: Vec<u32>,
    escape_u: memmem::Finder<'static>,
}

impl Prefilter {
    /// Builds the set from `(target, requirement)` pairs.
    pub fn new(reqs: &[(u32, Requirement)]) -> Self {
        let mut lit_meta: Vec<Lit> = Vec::new();
        let mut lit_targets: Vec<Vec<u32>> = Vec::new();
        let mut key_entries: Vec<KeyEntry> = Vec::new();
        let mut all_targets = Vec::new();
        let add = |list: &mut Vec<u32>, t: u32| {
            if !list.contains(&t) {
                list.push(t)
            }
        };
        for (t, r) in reqs {
            all_targets.push(*t);
            match r {
                Requirement::Literals(alts) => {
                    for l in alts {
                        let idx = match lit_meta.iter().position(|x| x == l) {
                            Some(i) => i,
                            None => {
                                lit_meta.push(l.clone());
                                lit_targets.push(Vec::new());
                                lit_meta.len() - 1
                            }
                        };
                        add(&mut lit_targets[idx], *t);
                    }
                }
                Requirement::Keyed { key, values } => {
                    let idx = match key_entries.iter().position(|e| &e.key == key) {
                        Some(i) => i,
                        None => {
                            key_entries.push(KeyEntry {
                                key: key.clone(),
                                values: HashMap::default(),
                                all: Vec::new(),
                                lens: 0,
                                firsts: [0; 4],
                            });
                            key_entries.len() - 1
                        }
                    };
                    let e = &mut key_entries[idx];
                    add(&mut e.all, *t);
                    for v in values {
                        e.add_value(v, *t);
                    }
                }
            }
        }
        all_targets.sort_unstable();
        all_targets.dedup();
        let lit_pats: Vec<Vec<u8>> = lit_meta.iter().map(|l| l.bytes.clone()).collect();
        let key_pats: Vec<Vec<u8>> = key_entries.iter().map(|e| e.key.clone()).collect();
        Prefilter {
            lits: Multi::new(&lit_pats),
            lit_meta,
            lit_targets,
            keys: Multi::new(&key_pats),
            key_entries,
            all_targets,
            escape_u: memmem::Finder::new(b"\\u").into_owned(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.all_targets.is_empty()
    }

    /// Every target with a requirement.
    pub fn all_targets(&self) -> &[u32] {
        &self.all_targets
    }

    /// Calls `hit(position, target)` for every requirement that shows in `hay`, with the
    /// position of the evidence, so that a caller scanning many records at once can tell which
    /// record it belongs to. A `\u` escape is reported once as [`ALL_TARGETS`] at its position.
    /// Targets may be reported more than once, and not in position order.
    /// `escapes` false promises that `hay` holds no backslash (so no `\u`). `found`, when
    /// given, lists every occurrence of [`Prefilter::single_needle`] in `hay` (found by the
    /// caller on its way), so it is not searched again.
    pub fn scan_positions(
        &self,
        hay: &[u8],
        escapes: bool,
        found: Option<&[u32]>,
        mut hit: impl FnMut(usize, u32),
    ) {
        if self.all_targets.is_empty() {
            return;
        }
        if escapes {
            for p in self.escape_u.find_iter(hay) {
                hit(p, ALL_TARGETS);
            }
        }
        self.scan_requirements(hay, found, hit);
    }

    /// When the whole prefilter is one literal, that literal: what the reader's pass over each
    /// block can find on its way. An indexed key (the whole prefilter one key) only when
    /// `keys` says so: a key is in nearly every record (a field name appears in every event
    /// that has the field), and with AVX2 checking a candidate per line inside that pass cost
    /// more than a separate `memmem` search of the block, still in cache (100 rules on
    /// `error_code` over 1 GB: 0.37 s fused, 0.33 s apart); with AVX-512 the pass has room for
    /// it (0.229 s fused, 0.262 s apart; 1000 rules 0.325 s against 0.351 s).
    pub fn single_needle(&self, keys: bool) -> Option<&[u8]> {
        match (&self.lits, &self.keys) {
            (Some(Multi::One(f)), None) => Some(f.needle()),
            (None, Some(Multi::One(f))) if keys => Some(f.needle()),
            _ => None,
        }
    }

    /// For a prefilter that is one indexed key: the bytes that start no wanted value, as
    /// [`raw_value`] judges the first byte of a quoted value (a quote or a backslash is never
    /// one of them: an empty value, an escape).
    pub fn unwanted_first_bytes(&self) -> Option<[bool; 256]> {
        match (&self.lits, &self.keys, self.key_entries.as_slice()) {
            (None, Some(Multi::One(_)), [entry]) => {
                let mut t = [false; 256];
                for (b, u) in t.iter_mut().enumerate() {
                    let b = b as u8;
                    *u = b != b'"' && b != b'\\' && !entry.may_start(b);
                }
                Some(t)
            }
            _ => None,
        }
    }

    /// The literal and keyed searches of [`Prefilter::scan_positions`], without `\u`.
    fn scan_requirements(
        &self,
        hay: &[u8],
        found: Option<&[u32]>,
        mut hit: impl FnMut(usize, u32),
    ) {
        let each = |m: &Multi, f: &mut dyn FnMut(usize, usize, usize)| match (found, m) {
            (Some(found), Multi::One(finder)) => {
                let n = finder.needle().len();
                for &s in found {
                    f(0, s as usize, s as usize + n);
                }
            }
            _ => m.each(hay, f),
        };
        if let Some(lits) = &self.lits {
            each(lits, &mut |pat, s, e| {
                let lit = &self.lit_meta[pat];
                if lit.left && word_before(hay, s) {
                    return;
                }
                if lit.right && e < hay.len() && is_word(hay[e]) {
                    return;
                }
                self.lit_targets[pat].iter().for_each(|&t| hit(s, t));
            });
        }
        if let Some(keys) = &self.keys {
            each(keys, &mut |k, s, e| {
                if word_before(hay, s) || e < hay.len() && is_word(hay[e]) {
                    return;
                }
                let entry = &self.key_entries[k];
                let mut found = |v: &[u8]| {
                    if let Some(ts) = entry.lookup(v) {
                        ts.iter().for_each(|&t| hit(s, t));
                        true
                    } else {
                        false
                    }
                };
                match raw_value(hay, e, |b| entry.may_start(b)) {
                    RawValue::NotAKey | RawValue::Unwanted => {}
                    RawValue::Unknown => entry.all.iter().for_each(|&t| hit(s, t)),
                    RawValue::Value(v) => {
                        found(v);
                    }
                    RawValue::Bare(json, logfmt) => {
                        if !found(json) && logfmt != json {
                            found(logfmt);
                        }
                    }
                }
            });
        }
    }

    /// Calls `hit` with every target whose requirement shows in one record's bytes.
    pub fn scan(&self, hay: &[u8], mut hit: impl FnMut(u32)) {
        if self.all_targets.is_empty() {
            return;
        }
        if self.escape_u.find(hay).is_some() {
            self.all_targets.iter().for_each(|&t| hit(t));
            return;
        }
        self.scan_requirements(hay, None, |_, t| hit(t));
    }
}

/// Finds the records of a block that show one requirement, from the front or from the back:
/// how coverage sampling reaches the first and last in-scope record without decoding the rest.
///
/// Both directions search growing windows with forward `memmem` finders: the work is about the
/// distance to the hit, not the size of the block (a reverse two-way search, or one search per
/// needle to the end of the block, cost a whole pass each time).
pub struct Probe {
    needles: Vec<memmem::Finder<'static>>,
    set: Prefilter,
}

/// First window of a probe, doubled until a hit or the end.
const PROBE_WINDOW: usize = 4096;

impl Probe {
    pub fn new(req: &Requirement) -> Probe {
        let mut needles: Vec<Vec<u8>> = match req {
            Requirement::Literals(alts) => alts.iter().map(|l| l.bytes.clone()).collect(),
            Requirement::Keyed { key, .. } => vec![key.clone()],
        };
        // `\u` can spell anything: records holding one are probed too.
        needles.push(b"\\u".to_vec());
        Probe {
            needles: needles
                .iter()
                .map(|n| memmem::Finder::new(n).into_owned())
                .collect(),
            set: Prefilter::new(&[(0, req.clone())]),
        }
    }

    /// Does this record show the requirement (boundaries and raw values checked)?
    pub fn shows(&self, record: &[u8]) -> bool {
        let mut any = false;
        self.set.scan(record, |_| any = true);
        any
    }

    /// The first position at or after `from` where some needle starts.
    pub fn next(&self, hay: &[u8], from: usize) -> Option<usize> {
        let mut lo = from;
        let mut win = PROBE_WINDOW;
        while lo < hay.len() {
            let hi = (lo + win).min(hay.len());
            // Needles starting in [lo, hi), which may end past `hi`.
            let best = self
                .needles
                .iter()
                .filter_map(|f| {
                    let end = (hi + f.needle().len() - 1).min(hay.len());
                    f.find(&hay[lo..end]).map(|p| p + lo)
                })
                .min();
            if best.is_some() {
                return best;
            }
            lo = hi;
            win *= 2;
        }
        None
    }

    /// The last position where some needle lies wholly before `to`.
    pub fn prev(&self, hay: &[u8], to: usize) -> Option<usize> {
        let mut hi = to.min(hay.len());
        let mut win = PROBE_WINDOW;
        while hi > 0 {
            let lo = hi.saturating_sub(win);
            // Needles starting in [lo, hi) and ending by `to`.
            let best = self
                .needles
                .iter()
                .filter_map(|f| {
                    let end = (hi + f.needle().len() - 1).min(to);
                    f.find_iter(&hay[lo..end]).last().map(|p| p + lo)
                })
                .max();
            if best.is_some() {
                return best;
            }
            hi = lo;
            win *= 2;
        }
        None
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
        literal_requirement(&cond(test)).map(|r| match r {
            Requirement::Literals(alts) => alts
                .into_iter()
                .map(|l| (String::from_utf8(l.bytes).unwrap(), l.left, l.right))
                .collect(),
            Requirement::Keyed { .. } => unreachable!(),
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
                regex::Regex::new("No JWT.* in WebSocket").unwrap().into()
            )),
            Some(vec![(" in WebSocket".into(), false, false)])
        );
        assert_eq!(lits(Test::Exists(true)), None);
        assert_eq!(lits(Test::Not(Box::new(Test::Contains("x".into())))), None);
    }

    #[test]
    fn equality_on_fields_is_keyed() {
        let r = requirement(&cond(Test::Eq(Scalar::Str("NO_TOKEN".into()))));
        assert_eq!(
            r,
            Some(Requirement::Keyed {
                key: b"f".to_vec(),
                values: vec![b"NO_TOKEN".to_vec()]
            })
        );
        // Synthetic keys, `_line`, numbers and escapable values fall back to literals.
        let msg = Condition {
            path: FieldPath::parse_dotted("message"),
            test: Test::Eq(Scalar::Str("boom now".into())),
        };
        assert!(matches!(requirement(&msg), Some(Requirement::Literals(_))));
        let line = Condition {
            path: FieldPath::Line,
            test: Test::Eq(Scalar::Str("boom".into())),
        };
        assert!(matches!(requirement(&line), Some(Requirement::Literals(_))));
        assert!(requirement(&cond(Test::Eq(Scalar::Str("500".into())))).is_none());
        assert!(matches!(
            requirement(&cond(Test::Eq(Scalar::Str("/api/ws".into())))),
            Some(Requirement::Literals(_))
        ));
        // Nested paths are indexed by their last key.
        let nested = Condition {
            path: FieldPath::parse_dotted("auth.reason"),
            test: Test::AnyOf(vec![Scalar::Str("a b".into()), Scalar::Str("c".into())]),
        };
        assert_eq!(
            requirement(&nested),
            Some(Requirement::Keyed {
                key: b"reason".to_vec(),
                values: vec![b"a b".to_vec(), b"c".to_vec()]
            })
        );
    }

    fn set_hits(set: &Prefilter, s: &str) -> bool {
        let mut v = Vec::new();
        set.scan(s.as_bytes(), |t| v.push(t));
        !v.is_empty()
    }

    #[test]
    fn boundaries_reject_lookalikes() {
        let r = literal_requirement(&cond(Test::Eq(Scalar::Str("NO_TOKEN".into())))).unwrap();
        let set = Prefilter::new(&[(7, r)]);
        let hits = |s: &str| set_hits(&set, s);
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

    #[test]
    fn keyed_values_in_every_spelling() {
        let c = Condition {
            path: FieldPath::parse_dotted("error_code"),
            test: Test::Eq(Scalar::Str("NO_TOKEN".into())),
        };
        let set = Prefilter::new(&[(3, requirement(&c).unwrap())]);
        let hits = |s: &str| set_hits(&set, s);
        for yes in [
            r#"{"error_code":"NO_TOKEN"}"#,
            r#"{"a":1, "error_code" :  "NO_TOKEN" }"#,
            "{\"error_code\"\n:\t\"NO_TOKEN\"}",
            r#"{"log":"{\"error_code\":\"NO_TOKEN\"}\n","stream":"stdout","time":"x"}"#,
            r#"{"log":"{\"error_code\": \"NO_TOKEN\"}"}"#,
            "level=error error_code=NO_TOKEN msg=x",
            "error_code=\"NO_TOKEN\"",
            "error_code=NO_TOKEN",
            r#"{"log":"error_code=\"NO_TOKEN\" x=1"}"#,
            r#"{"nested":{"error_code":"NO_TOKEN"}}"#,
            // Cannot be read raw: candidates.
            r#"{"error_code":["X","NO_TOKEN"]}"#,
            r#"{"error_code":"NO\/TOKEN"}"#,
            r#"{"error_code":"\u004eO_TOKEN"}"#,
            r#"{"error\u005fcode":"NO_TOKEN"}"#,
            r#"{"log":"{\"error_code\":\t\"NO_TOKEN\"}"}"#,
            // Any occurrence counts (duplicate keys: the decoder decides).
            r#"{"error_code":"OK","error_code":"NO_TOKEN"}"#,
        ] {
            assert!(hits(yes), "{yes}");
        }
        for no in [
            r#"{"error_code":"NO_TOKEN_SCOPE"}"#,
            r#"{"error_code":"OK","message":"NO_TOKEN"}"#,
            r#"{"xerror_code":"NO_TOKEN"}"#,
            r#"{"error_codes":"NO_TOKEN"}"#,
            r#"{"message":"error_code NO_TOKEN"}"#,
            r#"{"error_code":{"v":"NO_TOKEN"}}"#,
            r#"{"error_code":null,"x":"NO_TOKEN"}"#,
            "error_code=NO_TOKENS",
            "",
        ] {
            assert!(!hits(no), "{no}");
        }
    }

    #[test]
    fn positions_point_into_the_record() {
        let c = Condition {
            path: FieldPath::parse_dotted("code"),
            test: Test::Eq(Scalar::Str("A1".into())),
        };
        let lit = literal_requirement(&Condition {
            path: FieldPath::Line,
            test: Test::Contains("boom".into()),
        })
        .unwrap();
        let set = Prefilter::new(&[(0, requirement(&c).unwrap()), (1, lit)]);
        let hay = b"{\"code\":\"B\"}\n{\"code\":\"A1\"}\nboom\n{\"x\":\"\\u0041\"}\n";
        let mut got = Vec::new();
        set.scan_positions(hay, true, None, |p, t| got.push((p, t)));
        got.sort();
        assert_eq!(got, vec![(15, 0), (27, 1), (38, ALL_TARGETS)]);
    }

    #[test]
    fn many_literals_use_the_dfa_and_still_find_all() {
        let reqs: Vec<(u32, Requirement)> = (0..200)
            .map(|i| {
                (
                    i,
                    Requirement::Literals(vec![Lit {
                        bytes: format!("LIT_{i:04}").into_bytes(),
                        left: true,
                        right: true,
                    }]),
                )
            })
            .collect();
        let set = Prefilter::new(&reqs);
        let mut got = Vec::new();
        set.scan(b"x LIT_0007 LIT_0199 LIT_01999", |t| got.push(t));
        got.sort();
        assert_eq!(got, vec![7, 199]);
    }

    #[test]
    fn probes_find_records_from_both_ends() {
        let c = Condition {
            path: FieldPath::parse_dotted("env"),
            test: Test::Eq(Scalar::Str("staging".into())),
        };
        let p = Probe::new(&requirement(&c).unwrap());
        let hay = b"{\"env\":\"prod\"}\n{\"env\":\"staging\"}\n{\"env\":\"staging\"}\n";
        assert_eq!(p.next(hay, 0), Some(2));
        assert_eq!(p.next(hay, 3), Some(17));
        assert_eq!(p.prev(hay, hay.len()), Some(35));
        assert_eq!(p.prev(hay, 35), Some(17));
        assert_eq!(p.prev(hay, 2), None);
        // Across window edges, in a long haystack.
        let mut long = vec![b' '; 20_000];
        long[10_000..10_003].copy_from_slice(b"env");
        long[4_095..4_098].copy_from_slice(b"env");
        assert_eq!(p.next(&long, 0), Some(4_095));
        assert_eq!(p.next(&long, 4_096), Some(10_000));
        assert_eq!(p.prev(&long, 20_000), Some(10_000));
        assert_eq!(p.prev(&long, 10_002), Some(4_095));
        assert_eq!(p.prev(&long, 4_097), None);
        assert!(!p.shows(b"{\"env\":\"prod\"}"));
        assert!(p.shows(b"{\"env\":\"staging\"}"));
    }
}
