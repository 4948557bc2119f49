//! Matcher stage: which records are occurrences of which remediation, and which are in scope.
//!
//! Two steps, so the common case costs almost nothing:
//! 1. [`Matcher::candidates`] (one record) and [`Matcher::block_candidates`] (many lines at
//!    once) look at raw bytes only, with one prefilter for all rules (see [`prefilter`]): a
//!    record that shows none of a rule's requirements is never decoded for it.
//! 2. [`Matcher::evaluate`] runs the exact conditions ([`crate::rule::cond`]) on the decoded
//!    event, for the candidate rules only.
//!
//! **Coverage** (in-scope events, needed to *verify* a fix) is kept per *scope group*: rules
//! with the same `[scope]` share one. Scopes such as `environment = "staging"` hold for most
//! lines, so evaluating them on every line would cost a full decode of most of the input. In
//! [`CoverageMode::Sampled`] (the default) the searcher instead looks, in each block of lines,
//! for the first and the last in-scope record of each group (see [`CoverageGroup::probe`]):
//! the hours in which a scope was seen, and the latest in-scope time, at the cost of a few
//! decodes per block. [`CoverageMode::Exact`] makes every record that shows a scope's
//! requirement a candidate, and counts in-scope events exactly. [`CoverageMode::Off`] (grep)
//! keeps no coverage.

#[cfg(test)]
mod differential;
pub mod prefilter;

use std::sync::Arc;

use crate::decode::Event;
use crate::rule::{Condition, Remediation, cond};
use prefilter::{ALL_TARGETS, Prefilter, Probe, Requirement, best_requirement};

/// How coverage is kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CoverageMode {
    /// No coverage (read-only searches).
    Off,
    /// The first and last in-scope event of every block of input, per scope: which hours were
    /// in scope and the latest in-scope time, without counts.
    #[default]
    Sampled,
    /// Every in-scope event, counted.
    Exact,
}

/// What evaluation found for one rule on one event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hit {
    /// The event is in scope and matches signature `signature` (first matching one).
    Occurrence { rule: usize, signature: usize },
    /// The event is in scope but matches no signature (coverage only).
    InScope { rule: usize },
}

/// Rules that share one `[scope]`, for coverage.
pub struct CoverageGroup {
    pub scope: Vec<Condition>,
    /// Indices of the rules with this scope.
    pub rules: Vec<usize>,
    /// Finds records that show the scope's requirement; `None` when the scope has no literal
    /// (or is empty): then every record may be in scope.
    pub probe: Option<Probe>,
}

impl CoverageGroup {
    /// Is the event in this scope?
    pub fn holds(&self, event: &Event) -> bool {
        self.scope.iter().all(|c| c.eval(event))
    }
}

/// Reusable per-thread scratch space for candidate sets.
#[derive(Debug, Default, Clone)]
pub struct Scratch {
    /// Rules worth evaluating.
    sig: Vec<u32>,
    /// Coverage groups worth evaluating (exact mode).
    cov: Vec<u32>,
    stamp: Vec<u32>,
    generation: u32,
}

impl Scratch {
    /// Any rule or group to evaluate?
    pub fn is_empty(&self) -> bool {
        self.sig.is_empty() && self.cov.is_empty()
    }
}

/// The compiled rule set.
pub struct Matcher {
    rules: Arc<[Remediation]>,
    mode: CoverageMode,
    /// Target ids: rule index for a rule's signatures, `rules.len() + g` for coverage group `g`
    /// (exact mode only).
    prefilter: Prefilter,
    /// Targets that are candidates on every record (no requirement).
    always: Vec<u32>,
    groups: Vec<CoverageGroup>,
}

impl Matcher {
    pub fn new(rules: Arc<[Remediation]>, mode: CoverageMode) -> Self {
        let mut reqs: Vec<(u32, Requirement)> = Vec::new();
        let mut always = Vec::new();
        for (i, r) in rules.iter().enumerate() {
            let scope_req = best_requirement(&r.scope);
            // Each signature needs one requirement; a signature without one makes the whole
            // rule an always-candidate unless the scope has one (ANDed into every signature).
            let mut sig_always = false;
            for s in &r.signatures {
                match best_requirement(&s.conditions).or_else(|| scope_req.clone()) {
                    Some(req) => reqs.push((i as u32, req)),
                    None => sig_always = true,
                }
            }
            if sig_always || r.signatures.is_empty() {
                always.push(i as u32);
            }
        }
        let mut groups: Vec<CoverageGroup> = Vec::new();
        if mode != CoverageMode::Off {
            for (i, r) in rules.iter().enumerate() {
                match groups.iter_mut().find(|g| g.scope == r.scope) {
                    Some(g) => g.rules.push(i),
                    None => groups.push(CoverageGroup {
                        scope: r.scope.clone(),
                        rules: vec![i],
                        probe: best_requirement(&r.scope).map(|req| Probe::new(&req)),
                    }),
                }
            }
        }
        if mode == CoverageMode::Exact {
            for (g, group) in groups.iter().enumerate() {
                let t = (rules.len() + g) as u32;
                match best_requirement(&group.scope) {
                    Some(req) => reqs.push((t, req)),
                    None => always.push(t),
                }
            }
        }
        prefilter::prefer_literals_when_few(&mut reqs);
        Matcher {
            prefilter: Prefilter::new(&reqs),
            rules,
            mode,
            always,
            groups,
        }
    }

    pub fn rules(&self) -> &Arc<[Remediation]> {
        &self.rules
    }

    pub fn coverage_mode(&self) -> CoverageMode {
        self.mode
    }

    /// Coverage groups (none when coverage is off).
    pub fn groups(&self) -> &[CoverageGroup] {
        &self.groups
    }

    /// True when every record is a candidate (some rule or exact-mode scope has no literal):
    /// block searches then decode every line.
    pub fn always_candidate(&self) -> bool {
        !self.always.is_empty()
    }

    /// Starts a new candidate set in `scratch`.
    pub fn begin(&self, scratch: &mut Scratch) {
        scratch.sig.clear();
        scratch.cov.clear();
        let n = self.rules.len() + self.groups.len();
        if scratch.stamp.len() != n {
            scratch.stamp = vec![0; n];
            scratch.generation = 0;
        }
        scratch.generation = scratch.generation.wrapping_add(1);
        if scratch.generation == 0 {
            scratch.stamp.iter_mut().for_each(|s| *s = 0);
            scratch.generation = 1;
        }
        for &t in &self.always {
            self.add(scratch, t);
        }
    }

    /// Adds a target (or [`ALL_TARGETS`]) to the set being built.
    pub fn add(&self, scratch: &mut Scratch, t: u32) {
        if t == ALL_TARGETS {
            for &t in self.prefilter.all_targets() {
                self.add(scratch, t);
            }
            return;
        }
        let generation = scratch.generation;
        let slot = &mut scratch.stamp[t as usize];
        if *slot != generation {
            *slot = generation;
            let r = self.rules.len() as u32;
            if t < r {
                scratch.sig.push(t)
            } else {
                scratch.cov.push(t - r)
            }
        }
    }

    /// Fills `scratch` with the rules worth evaluating on one record. Returns false when none is.
    pub fn candidates(&self, bytes: &[u8], scratch: &mut Scratch) -> bool {
        self.begin(scratch);
        self.prefilter.scan(bytes, |t| self.add(scratch, t));
        !scratch.is_empty()
    }

    /// Collects `(position, target)` for every requirement that shows anywhere in `block`
    /// (many lines). Positions let the caller find the line each belongs to; they are not
    /// sorted. Targets that need no requirement are not listed (see
    /// [`Matcher::always_candidate`]).
    /// `escapes` says whether the block may hold a `\u` escape (it has a backslash); `found`
    /// lists where [`Matcher::anchor`] occurs in it, when the reader looked.
    pub fn block_candidates(
        &self,
        block: &[u8],
        escapes: bool,
        found: Option<&[u32]>,
        out: &mut Vec<(usize, u32)>,
    ) {
        self.prefilter
            .scan_positions(block, escapes, found, |p, t| out.push((p, t)));
    }

    /// The top-level fields a candidate must be decoded with for these rules to be evaluated
    /// on it, with `cfg`'s time and id fields (see [`crate::decode::decode_keeping`]).
    pub fn keep(&self, cfg: &crate::decode::DecodeConfig) -> crate::decode::Keep {
        use crate::rule::FieldPath;
        let split = |s: &String| s.split('.').map(str::to_owned).collect::<Vec<_>>();
        let mut paths: Vec<Vec<String>> = Vec::new();
        let mut line = false;
        for r in self.rules.iter() {
            let conds = r
                .scope
                .iter()
                .chain(r.signatures.iter().flat_map(|s| &s.conditions));
            for c in conds {
                match &c.path {
                    FieldPath::Field(p) => paths.push(p.clone()),
                    FieldPath::Line => line = true,
                }
            }
        }
        paths.extend(cfg.time_fields.iter().chain(&cfg.id_fields).map(split));
        crate::decode::Keep::new(paths.iter().map(Vec::as_slice))
            .with_line(line)
            .with_ids(&cfg.id_fields)
    }

    /// What the reader can look for during its pass over each block, when the prefilter is a
    /// single needle (see [`crate::source::framing::Anchor`]).
    pub fn anchor(&self) -> Option<crate::source::framing::Anchor> {
        let anchor = self
            .prefilter
            .single_needle(crate::source::framing::wide_shape_pass())
            .and_then(crate::source::framing::Anchor::new)?;
        Some(match self.prefilter.unwanted_first_bytes() {
            Some(first) => anchor.with_unwanted_values(first),
            None => anchor,
        })
    }

    /// Evaluates the candidate rules on a decoded event.
    pub fn evaluate(&self, event: &Event, scratch: &Scratch, mut out: impl FnMut(Hit)) {
        let covered = self.mode != CoverageMode::Off;
        for &r in &scratch.sig {
            let rule = &self.rules[r as usize];
            if !cond::in_scope(rule, event) {
                continue;
            }
            match rule.signatures.iter().position(|s| s.eval(event)) {
                Some(signature) => out(Hit::Occurrence {
                    rule: r as usize,
                    signature,
                }),
                None if covered => out(Hit::InScope { rule: r as usize }),
                None => {}
            }
        }
        for &g in &scratch.cov {
            let group = &self.groups[g as usize];
            if !group.holds(event) {
                continue;
            }
            for &r in &group.rules {
                if scratch.stamp[r] != scratch.generation {
                    out(Hit::InScope { rule: r });
                }
            }
        }
    }

    /// Full evaluation without the prefilter: the reference the fast path must agree with.
    pub fn evaluate_all(&self, event: &Event, mut out: impl FnMut(Hit)) {
        let covered = self.mode != CoverageMode::Off;
        for (i, rule) in self.rules.iter().enumerate() {
            if !cond::in_scope(rule, event) {
                continue;
            }
            match rule.signatures.iter().position(|s| s.eval(event)) {
                Some(signature) => out(Hit::Occurrence { rule: i, signature }),
                None if covered => out(Hit::InScope { rule: i }),
                None => {}
            }
        }
    }
}
