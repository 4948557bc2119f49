//! Matcher stage: which records are occurrences of which remediation, and which are in scope.
//!
//! Two steps, so the common case costs almost nothing:
//! 1. [`Matcher::candidates`] looks at raw bytes only, with one literal automaton for all rules
//!    (see [`prefilter`]): a record none of whose literals occur is never decoded.
//! 2. [`Matcher::evaluate`] runs the exact conditions ([`crate::rule::cond`]) on the decoded
//!    event, for the candidate rules only.
//!
//! Coverage (in-scope events, needed to *verify* a fix) is tracked for fixed remediations only:
//! an open remediation has nothing to verify.

pub mod prefilter;

use std::sync::Arc;

use crate::decode::Event;
use crate::rule::{FixStatus, Remediation, cond};
use prefilter::{LiteralSet, Requirement, best_requirement};

/// What evaluation found for one rule on one event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hit {
    /// The event is in scope and matches signature `signature` (first matching one).
    Occurrence { rule: usize, signature: usize },
    /// The event is in scope but matches no signature (coverage only).
    InScope { rule: usize },
}

/// Reusable per-thread scratch space for [`Matcher::candidates`].
#[derive(Debug, Default, Clone)]
pub struct Scratch {
    sig: Vec<u32>,
    cov: Vec<u32>,
    stamp: Vec<u32>,
    generation: u32,
}

impl Scratch {
    /// Any rule to evaluate?
    pub fn is_empty(&self) -> bool {
        self.sig.is_empty() && self.cov.is_empty()
    }
}

/// The compiled rule set.
pub struct Matcher {
    rules: Arc<[Remediation]>,
    /// Target id = rule * 2 (signature candidate) or rule * 2 + 1 (coverage candidate).
    literals: LiteralSet,
    /// Rules that are signature candidates on every record (a signature without literals).
    always_sig: Vec<u32>,
    /// Fixed rules that are coverage candidates on every record (a scope without literals).
    always_cov: Vec<u32>,
}

impl Matcher {
    pub fn new(rules: Arc<[Remediation]>) -> Self {
        let mut reqs: Vec<(u32, Requirement)> = Vec::new();
        let mut always_sig = Vec::new();
        let mut always_cov = Vec::new();
        for (i, r) in rules.iter().enumerate() {
            let i = i as u32;
            let scope_req = best_requirement(&r.scope);
            // Each signature needs one literal; a signature without one makes the whole rule an
            // always-candidate unless the scope has a literal (ANDed into every signature).
            let mut sig_always = false;
            for s in &r.signatures {
                match best_requirement(&s.conditions).or_else(|| scope_req.clone()) {
                    Some(req) => reqs.push((i * 2, req)),
                    None => sig_always = true,
                }
            }
            if sig_always {
                always_sig.push(i);
            }
            if r.fix.status == FixStatus::Fixed {
                match scope_req {
                    Some(req) => reqs.push((i * 2 + 1, req)),
                    None => always_cov.push(i),
                }
            }
        }
        Matcher {
            literals: LiteralSet::new(&reqs),
            rules,
            always_sig,
            always_cov,
        }
    }

    pub fn rules(&self) -> &Arc<[Remediation]> {
        &self.rules
    }

    /// Fills `scratch` with the rules worth evaluating on `bytes`. Returns false when none is.
    pub fn candidates(&self, bytes: &[u8], scratch: &mut Scratch) -> bool {
        scratch.sig.clear();
        scratch.cov.clear();
        if scratch.stamp.len() != self.rules.len() * 2 {
            scratch.stamp = vec![0; self.rules.len() * 2];
            scratch.generation = 0;
        }
        scratch.generation = scratch.generation.wrapping_add(1);
        if scratch.generation == 0 {
            scratch.stamp.iter_mut().for_each(|s| *s = 0);
            scratch.generation = 1;
        }
        let generation = scratch.generation;
        let Scratch {
            sig, cov, stamp, ..
        } = scratch;
        let mut add = |t: u32| {
            if stamp[t as usize] != generation {
                stamp[t as usize] = generation;
                if t % 2 == 0 {
                    sig.push(t / 2)
                } else {
                    cov.push(t / 2)
                }
            }
        };
        self.always_sig.iter().for_each(|&r| add(r * 2));
        self.always_cov.iter().for_each(|&r| add(r * 2 + 1));
        self.literals.scan(bytes, &mut add);
        !scratch.is_empty()
    }

    /// Evaluates the candidate rules on a decoded event.
    pub fn evaluate(&self, event: &Event, scratch: &Scratch, mut out: impl FnMut(Hit)) {
        // Signature candidates first; a rule that is both kinds is evaluated once.
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
                None if rule.fix.status == FixStatus::Fixed => {
                    out(Hit::InScope { rule: r as usize })
                }
                None => {}
            }
        }
        for &r in &scratch.cov {
            if scratch.stamp[(r * 2) as usize] == scratch.generation {
                continue; // already evaluated as a signature candidate
            }
            let rule = &self.rules[r as usize];
            if cond::in_scope(rule, event) {
                out(Hit::InScope { rule: r as usize });
            }
        }
    }

    /// Full evaluation without the prefilter: the reference the fast path must agree with.
    pub fn evaluate_all(&self, event: &Event, mut out: impl FnMut(Hit)) {
        for (i, rule) in self.rules.iter().enumerate() {
            if !cond::in_scope(rule, event) {
                continue;
            }
            match rule.signatures.iter().position(|s| s.eval(event)) {
                Some(signature) => out(Hit::Occurrence { rule: i, signature }),
                None if rule.fix.status == FixStatus::Fixed => out(Hit::InScope { rule: i }),
                None => {}
            }
        }
    }
}
