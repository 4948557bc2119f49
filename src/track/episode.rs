//! Episodes: bursts of recurrences, in event time.
//!
//! An episode opens at the recurrence that brings the count within `window` to `threshold`;
//! it lasts while recurrences keep coming less than `resolve` apart; while it lasts a reminder
//! is due at the first recurrence at least `repeat` after the previous notification. Each
//! notification gets a stable key `remediation/episode-start/number`, so recomputing episodes
//! from the same facts yields the same keys and nothing is notified twice.

use std::collections::VecDeque;

use jiff::Timestamp;
use serde::Serialize;

use crate::rule::Alert;

/// One burst of recurrences.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Episode {
    /// When the episode opened: the recurrence that reached the threshold.
    pub start: Timestamp,
    /// The earliest recurrence counted in the opening window.
    pub first_seen: Timestamp,
    pub last_seen: Timestamp,
    /// Recurrences in the episode (from the opening window on).
    pub count: u64,
    /// Recurrences in the window when it opened (at least `threshold`).
    pub opened_count: u64,
    /// Reminder times (the recurrence that made each due).
    pub reminders: Vec<(Timestamp, u64)>,
}

/// What a notification is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum IntentKind {
    Open,
    Reminder,
    Digest,
}

impl IntentKind {
    pub fn as_str(self) -> &'static str {
        match self {
            IntentKind::Open => "open",
            IntentKind::Reminder => "reminder",
            IntentKind::Digest => "digest",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "open" => IntentKind::Open,
            "reminder" => IntentKind::Reminder,
            "digest" => IntentKind::Digest,
            _ => return None,
        })
    }
}

/// A notification that episodes call for; the store keeps it by `key` (once).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct IntentDraft {
    pub remediation: String,
    pub kind: IntentKind,
    pub key: String,
    pub episode_start: Timestamp,
    /// Recurrences in the episode when this notification became due.
    pub count: u64,
    /// Event time at which it became due (orders notifications).
    pub due: Timestamp,
}

/// Groups sorted recurrence times into episodes.
pub fn episodes(times: &[Timestamp], alert: &Alert) -> Vec<Episode> {
    debug_assert!(times.windows(2).all(|w| w[0] <= w[1]));
    let threshold = alert.threshold.max(1) as usize;
    let mut out: Vec<Episode> = Vec::new();
    let mut window: VecDeque<Timestamp> = VecDeque::new();
    let mut open: Option<(Episode, Timestamp)> = None; // (episode, last notification time)
    for &t in times {
        if let Some((ep, last_note)) = &mut open {
            if t.duration_since(ep.last_seen) < alert.resolve {
                ep.count += 1;
                ep.last_seen = t;
                if t.duration_since(*last_note) >= alert.repeat {
                    ep.reminders.push((t, ep.count));
                    *last_note = t;
                }
                continue;
            }
            out.push(open.take().unwrap().0);
            window.clear();
        }
        window.push_back(t);
        while let Some(&front) = window.front() {
            if t.duration_since(front) > alert.window {
                window.pop_front();
            } else {
                break;
            }
        }
        if window.len() >= threshold {
            let ep = Episode {
                start: t,
                first_seen: *window.front().unwrap(),
                last_seen: t,
                count: window.len() as u64,
                opened_count: window.len() as u64,
                reminders: Vec::new(),
            };
            open = Some((ep, t));
            window.clear();
        }
    }
    if let Some((ep, _)) = open {
        out.push(ep);
    }
    out
}

/// The stable key of a notification.
pub fn intent_key(remediation: &str, episode_start: Timestamp, number: usize) -> String {
    format!(
        "{remediation}/{}/{number}",
        episode_start.strftime("%Y%m%dT%H%M%S%.fZ")
    )
}

/// The notifications an episode list calls for: one `open` each, plus their reminders.
pub fn intents_for(remediation: &str, eps: &[Episode]) -> Vec<IntentDraft> {
    let mut out = Vec::new();
    for ep in eps {
        out.push(IntentDraft {
            remediation: remediation.to_string(),
            kind: IntentKind::Open,
            key: intent_key(remediation, ep.start, 0),
            episode_start: ep.start,
            // The count when it opened: the same however the inputs were split across runs.
            count: ep.opened_count,
            due: ep.start,
        });
        for (n, (at, count)) in ep.reminders.iter().enumerate() {
            out.push(IntentDraft {
                remediation: remediation.to_string(),
                kind: IntentKind::Reminder,
                key: intent_key(remediation, ep.start, n + 1),
                episode_start: ep.start,
                count: *count,
                due: *at,
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use jiff::SignedDuration;

    fn t(h: i64, m: i64) -> Timestamp {
        Timestamp::from_second(1_757_376_000 + h * 3600 + m * 60).unwrap()
    }

    fn alert(threshold: u32, window_m: i64, repeat_m: i64, resolve_m: i64) -> Alert {
        Alert {
            threshold,
            window: SignedDuration::from_mins(window_m),
            repeat: SignedDuration::from_mins(repeat_m),
            resolve: SignedDuration::from_mins(resolve_m),
            ..Alert::default()
        }
    }

    #[test]
    fn one_recurrence_one_episode() {
        let eps = episodes(&[t(30, 0)], &alert(1, 60, 360, 60));
        assert_eq!(eps.len(), 1);
        assert_eq!(eps[0].count, 1);
        assert_eq!(intents_for("R", &eps).len(), 1);
    }

    #[test]
    fn a_burst_is_one_episode_and_reminders_follow_repeat() {
        // Every 20 minutes for 7 hours: one episode, a reminder after 6h.
        let times: Vec<_> = (0..21).map(|i| t(0, i * 20)).collect();
        let eps = episodes(&times, &alert(1, 60, 360, 60));
        assert_eq!(eps.len(), 1);
        assert_eq!(eps[0].count, 21);
        assert_eq!(eps[0].reminders, vec![(t(6, 0), 19)]);
        let intents = intents_for("R", &eps);
        assert_eq!(
            intents.iter().map(|i| i.kind).collect::<Vec<_>>(),
            [IntentKind::Open, IntentKind::Reminder]
        );
        assert!(intents[1].key.ends_with("/1"));
    }

    #[test]
    fn threshold_needs_enough_within_window() {
        let a = alert(3, 60, 360, 60);
        // Three spread over two hours: never three within an hour.
        assert!(episodes(&[t(0, 0), t(0, 50), t(1, 45)], &a).is_empty());
        let eps = episodes(&[t(0, 0), t(0, 50), t(0, 55)], &a);
        assert_eq!(eps.len(), 1);
        assert_eq!(eps[0].start, t(0, 55));
        assert_eq!(eps[0].first_seen, t(0, 0));
        assert_eq!(eps[0].count, 3);
    }

    #[test]
    fn quiet_gap_starts_a_new_episode() {
        let eps = episodes(&[t(0, 0), t(0, 30), t(5, 0)], &alert(1, 60, 360, 60));
        assert_eq!(eps.len(), 2);
        assert_eq!(eps[1].start, t(5, 0));
    }
}
