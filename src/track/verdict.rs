//! Verdicts: the standing answer to "did the fix hold?". Computed, never written by hand.

use jiff::Timestamp;
use serde::Serialize;

use crate::rule::{FixStatus, Remediation};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    /// Not fixed yet, deadline (if any) not passed.
    Open,
    /// Not fixed and past its deadline.
    Overdue,
    /// Fixed, no recurrence, not yet in scope long enough to verify.
    Holding,
    /// Fixed, no recurrence, and in-scope events seen at or after `fixed_at + verify`.
    Verified,
    /// At least one recurrence since the fix.
    Recurring,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Open => "open",
            Verdict::Overdue => "overdue",
            Verdict::Holding => "holding",
            Verdict::Verified => "verified",
            Verdict::Recurring => "recurring",
        }
    }

    /// Verdicts that make `status` (and CI gates) fail.
    pub fn is_bad(self) -> bool {
        matches!(self, Verdict::Overdue | Verdict::Recurring)
    }
}

/// The verdict for a remediation given its recurrence count, the latest in-scope event time
/// and the wall clock (deadlines are promises made in wall-clock time).
pub fn verdict(
    rule: &Remediation,
    recurrences: u64,
    last_in_scope: Option<Timestamp>,
    now: Timestamp,
) -> Verdict {
    match rule.fix.status {
        FixStatus::Open => match rule.fix.deadline {
            Some(d) if now > d => Verdict::Overdue,
            _ => Verdict::Open,
        },
        FixStatus::Fixed => {
            if recurrences > 0 {
                return Verdict::Recurring;
            }
            let Some(fixed_at) = rule.fix.fixed_at else {
                return Verdict::Holding;
            };
            match last_in_scope {
                Some(t) if t >= fixed_at + rule.fix.verify => Verdict::Verified,
                _ => Verdict::Holding,
            }
        }
    }
}
