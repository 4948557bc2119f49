//! What `scan` and `status` report per remediation, built from the store alone so both
//! commands (and every run of them) tell the same story.

use jiff::{SignedDuration, Timestamp};
use serde::Serialize;

use crate::duration::format_duration;
use crate::rule::{FixStatus, Remediation, Severity};
use crate::store::{CoverageSummary, Store, StoreError};
use crate::track::{Assignment, Episode, Verdict, assign_identities, episodes, verdict};

/// The tracker's view of one remediation.
#[derive(Debug, Clone, Serialize)]
pub struct RemediationReport {
    pub id: String,
    pub title: String,
    pub severity: Severity,
    pub owner: String,
    pub analysis: String,
    pub action: String,
    pub status: FixStatus,
    pub verdict: Verdict,
    pub fixed_at: Option<Timestamp>,
    pub deadline: Option<Timestamp>,
    /// Every occurrence the store holds (timed and untimed).
    pub occurrences: u64,
    pub before_fix: u64,
    pub recurrences: u64,
    /// Occurrences without an event time (cannot be placed before or after the fix).
    pub untimed: u64,
    pub first_seen: Option<Timestamp>,
    pub last_seen: Option<Timestamp>,
    pub last_recurrence: Option<Timestamp>,
    pub episodes: u64,
    /// How coverage was kept: `exact` (every in-scope event counted) or `sampled`.
    pub coverage: &'static str,
    /// In-scope events (coverage) in the store, and at or after the fix; `null` when coverage
    /// is sampled (presence per hour only).
    pub in_scope_events: Option<u64>,
    pub in_scope_since_fix: Option<u64>,
    /// Hours with in-scope events, in all and from the fix's hour on.
    pub in_scope_hours: u64,
    pub in_scope_hours_since_fix: u64,
    pub last_in_scope: Option<Timestamp>,
    /// The success criterion (`[fix] verify`).
    pub verify: String,
    /// Quiet time in scope since the fix, toward `verify` (holding and verified only).
    pub quiet: Option<String>,
    /// One line: "18h of 24h quiet, 41 230 in-scope events".
    pub progress: String,
    pub path: String,
    /// The current episodes, each with its recorded identity.
    #[serde(skip)]
    pub episode_list: Vec<Episode>,
    /// How the current episodes relate to the recorded ones (what `refresh` records).
    #[serde(skip)]
    pub episode_assignment: Assignment,
}

/// Builds the report of one remediation from the store.
pub fn summarize(
    rule: &Remediation,
    store: &dyn Store,
    now: Timestamp,
) -> Result<RemediationReport, StoreError> {
    // Times only: a frequent error has many occurrences, and counts and episodes need no more.
    let occ = store.occurrence_times(&rule.id)?;
    let mut before_fix = 0;
    let mut untimed = 0;
    let mut rec_times = Vec::new();
    for t in &occ {
        match *t {
            None => untimed += 1,
            Some(t) if rule.is_recurrence_time(t) => rec_times.push(t),
            Some(_) => before_fix += 1,
        }
    }
    let timed: Vec<Timestamp> = occ.iter().filter_map(|t| *t).collect();
    let cov: CoverageSummary = store.coverage(&rule.id, rule.fix.fixed_at)?;
    let mut eps = episodes(&rec_times, &rule.alert);
    let episode_assignment = assign_identities(&mut eps, &store.episodes(&rule.id)?);
    let v = verdict(rule, rec_times.len() as u64, cov.last, now);
    let quiet = match (rule.fix.status, rule.fix.fixed_at, v) {
        (FixStatus::Fixed, Some(f), Verdict::Holding | Verdict::Verified) => {
            let q = cov.last.map_or(SignedDuration::ZERO, |l| {
                l.duration_since(f).max(SignedDuration::ZERO)
            });
            Some(q)
        }
        _ => None,
    };
    let progress = match v {
        Verdict::Holding | Verdict::Verified if cov.counted => format!(
            "{} of {} quiet, {} in-scope events since the fix",
            format_duration(quiet.unwrap_or_default()),
            format_duration(rule.fix.verify),
            group_thousands(cov.events_since)
        ),
        Verdict::Holding | Verdict::Verified => format!(
            "{} of {} quiet, in scope during {} hour{} since the fix",
            format_duration(quiet.unwrap_or_default()),
            format_duration(rule.fix.verify),
            group_thousands(cov.hours_since),
            if cov.hours_since == 1 { "" } else { "s" }
        ),
        Verdict::Recurring => format!(
            "{} recurrences in {} episode{} since the fix, last {}",
            group_thousands(rec_times.len() as u64),
            eps.len(),
            if eps.len() == 1 { "" } else { "s" },
            rec_times
                .last()
                .map(|t| format_time(*t))
                .unwrap_or_default()
        ),
        Verdict::Overdue => format!(
            "fix overdue by {}",
            rule.fix
                .deadline
                .map(|d| format_duration(now.duration_since(d)))
                .unwrap_or_default()
        ),
        Verdict::Open => match rule.fix.deadline {
            Some(d) => format!("fix due in {}", format_duration(d.duration_since(now))),
            None => "no fix yet".to_string(),
        },
    };
    Ok(RemediationReport {
        id: rule.id.clone(),
        title: rule.title.clone(),
        severity: rule.severity,
        owner: rule.owner.clone(),
        analysis: rule.analysis.clone(),
        action: rule.action.clone(),
        status: rule.fix.status,
        verdict: v,
        fixed_at: rule.fix.fixed_at,
        deadline: rule.fix.deadline,
        occurrences: occ.len() as u64,
        before_fix,
        recurrences: rec_times.len() as u64,
        untimed,
        first_seen: timed.iter().min().copied(),
        last_seen: timed.iter().max().copied(),
        last_recurrence: rec_times.last().copied(),
        episodes: eps.len() as u64,
        coverage: if cov.counted { "exact" } else { "sampled" },
        in_scope_events: cov.counted.then_some(cov.events),
        in_scope_since_fix: cov.counted.then_some(cov.events_since),
        in_scope_hours: cov.hours,
        in_scope_hours_since_fix: cov.hours_since,
        last_in_scope: cov.last,
        verify: format_duration(rule.fix.verify),
        quiet: quiet.map(format_duration),
        progress,
        path: rule.path.display().to_string(),
        episode_list: eps,
        episode_assignment,
    })
}

/// `41230` → `41 230` (a thin, unambiguous separator in any locale).
pub fn group_thousands(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(' ');
        }
        out.push(c);
    }
    out
}

/// `2025-09-08 19:01:46Z`: RFC 3339 in UTC, readable in a table.
pub fn format_time(t: Timestamp) -> String {
    t.strftime("%Y-%m-%d %H:%M:%SZ").to_string()
}

/// Renders a table with aligned columns (two spaces apart).
pub fn table(headers: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for r in rows {
        for (i, c) in r.iter().enumerate() {
            if i < widths.len() {
                widths[i] = widths[i].max(visible_width(c));
            }
        }
    }
    let mut out = String::new();
    let line = |cells: Vec<&str>, out: &mut String| {
        let n = cells.len();
        for (i, c) in cells.into_iter().enumerate() {
            out.push_str(c);
            if i + 1 < n {
                out.push_str(&" ".repeat(widths[i] - visible_width(c) + 2));
            }
        }
        out.push('\n');
    };
    line(headers.to_vec(), &mut out);
    for r in rows {
        line(r.iter().map(String::as_str).collect(), &mut out);
    }
    out
}

/// Width of a cell without ANSI colour escapes.
pub fn visible_width(s: &str) -> usize {
    let mut w = 0;
    let mut in_esc = false;
    for c in s.chars() {
        if in_esc {
            if c == 'm' {
                in_esc = false;
            }
        } else if c == '\u{1b}' {
            in_esc = true;
        } else {
            w += 1;
        }
    }
    w
}

/// Colours a verdict for a terminal.
pub fn paint_verdict(v: Verdict, color: bool) -> String {
    if !color {
        return v.as_str().to_string();
    }
    let code = match v {
        Verdict::Recurring => "1;31",
        Verdict::Overdue => "1;35",
        Verdict::Holding => "33",
        Verdict::Verified => "32",
        Verdict::Open => "36",
    };
    format!("\u{1b}[{code}m{}\u{1b}[0m", v.as_str())
}

/// Writes a JSON document (pretty, then a newline) in large writes: standard output is line
/// buffered, and a report of a thousand remediations is tens of thousands of lines (one
/// `write` each cost more than producing them).
pub fn write_json(
    out: &mut dyn std::io::Write,
    value: &impl serde::Serialize,
) -> anyhow::Result<()> {
    use std::io::Write;
    let mut w = std::io::BufWriter::with_capacity(64 * 1024, out);
    serde_json::to_writer_pretty(&mut w, value)?;
    writeln!(w)?;
    w.flush()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thousands() {
        assert_eq!(group_thousands(41230), "41 230");
        assert_eq!(group_thousands(999), "999");
        assert_eq!(group_thousands(1_000_000), "1 000 000");
    }

    #[test]
    fn table_aligns_ignoring_colour() {
        let t = table(
            &["A", "B"],
            &[
                vec![paint_verdict(Verdict::Open, true), "x".into()],
                vec!["long".into(), "y".into()],
            ],
        );
        assert_eq!(
            crate::report::visible_width(t.lines().nth(1).unwrap()),
            "open  x".len()
        );
    }
}
