//! The content of a notification, shared by every channel.

use jiff::Timestamp;
use serde::Serialize;

use crate::duration::format_duration;
use crate::redact::{Redactor, cap_text, strip_controls};
use crate::report::{RemediationReport, format_time};
use crate::rule::{FixStatus, Remediation};
use crate::store::{Store, StoreError, StoredIntent};
use crate::track::IntentKind;

/// Everything a channel needs to say what recurred and what to do.
#[derive(Debug, Clone, Serialize)]
pub struct Notification {
    pub kind: IntentKind,
    pub remediation_id: String,
    pub title: String,
    pub severity: String,
    pub verdict: String,
    /// Recurrences in the episode when the notification is rendered (for a digest: how many
    /// notifications it folds).
    pub error_count: u64,
    pub window: String,
    pub first_seen: Option<Timestamp>,
    pub last_seen: Option<Timestamp>,
    pub fixed_at: Option<Timestamp>,
    pub since_fix: Option<String>,
    pub owner: String,
    pub action_required: String,
    pub previous_analysis: String,
    pub deadline: Option<Timestamp>,
    pub samples: Vec<String>,
    pub dedup_key: String,
    pub episode_start: Timestamp,
    /// For digests: one line per folded notification.
    pub folded: Vec<String>,
    pub test: bool,
    /// The rule's `[alert] template` for the human text, if any (rendered per channel).
    #[serde(skip)]
    pub template: Option<String>,
}

/// Redacts a stored sample again with the current policy: a JSON sample is re-parsed so field
/// names added to `[redact] fields` since it was stored are masked too.
fn redact_sample(redactor: &Redactor, sample: &str) -> String {
    if sample.starts_with('{')
        && let Ok(mut v) = serde_json::from_str::<serde_json::Value>(sample)
    {
        redactor.value(&mut v);
        return v.to_string();
    }
    redactor.text(sample)
}

/// Size cap of one sample in a notification.
pub const SAMPLE_CAP: usize = 2048;

impl Notification {
    pub fn build(
        intent: &StoredIntent,
        rule: &Remediation,
        report: &RemediationReport,
        _rules: &[Remediation],
        store: &dyn Store,
        redactor: &Redactor,
        _now: Timestamp,
    ) -> Result<Self, StoreError> {
        let ep = report
            .episode_list
            .iter()
            .find(|e| e.identity == intent.episode_start);
        // The episode's first samples (busy hours keep a sample for their first few
        // occurrences only); without an episode, the first recurrences'.
        let range = match ep {
            Some(ep) => Some((ep.first_seen, Some(ep.last_seen))),
            None => rule
                .fix
                .fixed_at
                .filter(|_| rule.fix.status == FixStatus::Fixed)
                .map(|f| (f, None)),
        };
        let occ = match range {
            Some((from, to)) => {
                store.samples_between(&rule.id, Some(from), to, rule.alert.samples as usize)?
            }
            None => Vec::new(),
        };
        let samples: Vec<String> = occ
            .iter()
            .map(|o| {
                cap_text(
                    &strip_controls(&redact_sample(redactor, &o.sample)),
                    SAMPLE_CAP,
                )
            })
            .collect();
        let first_seen = ep.map(|e| e.first_seen).or(report.first_seen);
        let last_seen = ep.map(|e| e.last_seen).or(report.last_recurrence);
        let since_fix = match (rule.fix.fixed_at, first_seen) {
            (Some(f), Some(t)) => Some(format_duration(t.duration_since(f))),
            _ => None,
        };
        // Everything free-form is redacted again at render time: a secret pasted into a rule's
        // title or action, or a pattern added to `[redact]` since a sample was stored, must not
        // leave either.
        let clean = |s: &str| strip_controls(&redactor.text(s));
        // A digest is about every remediation it folds, not only the one it is filed under.
        let (remediation_id, title) = if intent.kind == IntentKind::Digest {
            let ids = crate::mode::common::digest_remediations(&intent.folded).join(", ");
            let n = intent.folded.len();
            (
                ids.clone(),
                format!(
                    "{n} older notification{} folded into this digest, for {ids}",
                    if n == 1 { "" } else { "s" }
                ),
            )
        } else {
            (rule.id.clone(), clean(&rule.title))
        };
        Ok(Notification {
            kind: intent.kind,
            remediation_id,
            title: clean(&title),
            severity: rule.severity.as_str().to_string(),
            verdict: report.verdict.as_str().to_string(),
            error_count: if intent.kind == IntentKind::Digest {
                intent.folded.len() as u64
            } else {
                // The episode so far, not only the recurrences that opened it: a batch over
                // history knows the whole burst by the time it sends.
                ep.map_or(intent.count, |e| e.count.max(intent.count))
            },
            window: format_duration(rule.alert.window),
            first_seen,
            last_seen,
            fixed_at: rule.fix.fixed_at,
            since_fix,
            owner: clean(&rule.owner),
            action_required: clean(&rule.action),
            previous_analysis: clean(&rule.analysis),
            deadline: rule.fix.deadline,
            samples,
            dedup_key: intent.key.clone(),
            episode_start: intent.episode_start,
            folded: intent.folded.iter().map(|f| clean(f)).collect(),
            test: false,
            template: rule.alert.template.clone(),
        })
    }

    /// A clearly marked test notification for `recur notify-test` (no store needed).
    pub fn test_message(channel: &str, now: Timestamp) -> Self {
        let hour = jiff::SignedDuration::from_hours(1);
        let fixed = now - hour * 24;
        Notification {
            kind: IntentKind::Open,
            remediation_id: "RECUR_TEST_NOTIFICATION".to_string(),
            title: format!("Test notification from recur through channel `{channel}`"),
            severity: "info".to_string(),
            verdict: "test".to_string(),
            error_count: 1,
            window: "1h".to_string(),
            first_seen: Some(now - hour),
            last_seen: Some(now),
            fixed_at: Some(fixed),
            since_fix: Some(format_duration((now - hour).duration_since(fixed))),
            owner: "recur".to_string(),
            action_required: "NONE: this is a test; no action is required".to_string(),
            previous_analysis: "https://example.com/recur/test-notification".to_string(),
            deadline: None,
            samples: vec![r#"{"message":"recur notify-test sample"}"#.to_string()],
            dedup_key: format!("test/{channel}/{}", now.as_second()),
            episode_start: now - hour,
            folded: Vec::new(),
            test: true,
            template: None,
        }
    }

    /// The JSON body of webhooks and console JSON lines.
    pub fn payload(&self) -> serde_json::Value {
        serde_json::to_value(self).unwrap_or_default()
    }

    /// A one-line subject: id, verdict and count.
    pub fn subject(&self) -> String {
        if self.kind == IntentKind::Digest {
            return format!(
                "{}[recur] digest: {} notification{} folded for {}",
                if self.test { "[TEST] " } else { "" },
                self.error_count,
                if self.error_count == 1 { "" } else { "s" },
                self.remediation_id
            );
        }
        let what = match self.kind {
            IntentKind::Open => "recurred",
            IntentKind::Reminder => "still recurring",
            IntentKind::Digest => "digest",
        };
        format!(
            "{}[recur] {} {what}: {} error{} ({})",
            if self.test { "[TEST] " } else { "" },
            self.remediation_id,
            self.error_count,
            if self.error_count == 1 { "" } else { "s" },
            self.verdict
        )
    }

    /// Plain-text body.
    pub fn text(&self) -> String {
        let mut s = String::new();
        let t = |x: Option<Timestamp>| x.map(format_time).unwrap_or_else(|| "-".into());
        s.push_str(&format!("{}\n", self.subject()));
        s.push_str(&format!("  {} [{}]\n", self.title, self.severity));
        s.push_str(&format!(
            "  {} error{} in this episode (alert window {}), first seen {}, last seen {}\n",
            self.error_count,
            if self.error_count == 1 { "" } else { "s" },
            self.window,
            t(self.first_seen),
            t(self.last_seen)
        ));
        if let Some(f) = self.fixed_at {
            s.push_str(&format!(
                "  fixed at {} ({} before this recurrence)\n",
                format_time(f),
                self.since_fix.as_deref().unwrap_or("-")
            ));
        }
        s.push_str(&format!("  owner: {}\n", self.owner));
        if !self.action_required.is_empty() {
            s.push_str(&format!("  action required: {}\n", self.action_required));
        }
        if let Some(d) = self.deadline {
            s.push_str(&format!("  deadline: {}\n", format_time(d)));
        }
        s.push_str(&format!(
            "  previous analysis: {}\n",
            self.previous_analysis
        ));
        for f in &self.folded {
            s.push_str(&format!("  - {f}\n"));
        }
        for (i, smp) in self.samples.iter().enumerate() {
            s.push_str(&format!("  sample {}: {smp}\n", i + 1));
        }
        s.push_str(&format!("  dedup key: {}\n", self.dedup_key));
        s
    }
}
