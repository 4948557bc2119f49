//! Episodes: bursts of recurrences, in event time.
//!
//! An episode opens at the recurrence that brings the count within `window` to `threshold`;
//! it lasts while recurrences keep coming less than `resolve` apart; while it lasts a reminder
//! is due at the first recurrence at least `repeat` after the previous notification.
//!
//! Episodes are recomputed from every stored recurrence ([`episodes`]), so counts and episodes
//! never depend on the order or the split of the inputs. Their *identity* is recorded
//! ([`assign_identities`]): an episode keeps the start it had when first recorded, and each
//! notification's key is `remediation/identity/number` (0 opens, 1… are reminders, numbered
//! within the episode). The rule, when a recomputed episode overlaps (by its span from first
//! to last recurrence) episodes recorded earlier:
//!
//! - it takes the identity of the one recorded first, so an earlier event arriving late (the
//!   08:00 export read after the 08:20 one) neither moves the key nor notifies again, and its
//!   reminders continue that episode's numbering;
//! - any other recorded episode it overlaps was notified separately before an event in between
//!   joined the two: it is marked as merged into the first; its notifications stand (they were
//!   sent) and it makes no new ones;
//! - overlapping none, it is new and recorded under its own start.
//!
//! So for one set of events, any order or split of the inputs gives the same episodes and, per
//! episode, the same notifications (one `open`, the same reminder numbers); what history can
//! change is only which start the key carries (the one notified first) and the extra `open`
//! of episodes that were distinct when notified and joined later.

use std::collections::VecDeque;

use jiff::Timestamp;
use serde::Serialize;

use crate::rule::Alert;
use crate::store::StoredEpisode;

/// One burst of recurrences.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Episode {
    /// The start it was first recorded under (its notification keys); `start` until recorded.
    pub identity: Timestamp,
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
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
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
                identity: t,
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

/// What [`assign_identities`] decided beyond the identities themselves.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Assignment {
    /// Recorded episodes joined into a current one: (their identity, the current identity).
    pub merged: Vec<(Timestamp, Timestamp)>,
    /// Whether the record differs from the current episodes (something to write).
    pub changed: bool,
}

/// Gives each recomputed episode (sorted by start) its recorded identity, following the rule in
/// the module documentation. Pure: `status` uses it read-only, `scan`/`watch` record the result.
pub fn assign_identities(eps: &mut [Episode], stored: &[StoredEpisode]) -> Assignment {
    let mut out = Assignment::default();
    let mut taken = vec![false; stored.len()];
    let overlaps =
        |s: &StoredEpisode, e: &Episode| s.first_seen <= e.last_seen && e.first_seen <= s.last_seen;
    for ep in eps.iter_mut() {
        let mut cands: Vec<usize> = (0..stored.len())
            .filter(|&i| !taken[i] && (overlaps(&stored[i], ep) || stored[i].identity == ep.start))
            .collect();
        cands.sort_by_key(|&i| (stored[i].seq, stored[i].identity));
        let Some(&winner) = cands.first() else {
            ep.identity = ep.start;
            out.changed = true;
            continue;
        };
        let w = &stored[winner];
        ep.identity = w.identity;
        out.changed |= !w.active
            || w.merged_into.is_some()
            || w.start != ep.start
            || w.first_seen != ep.first_seen
            || w.last_seen != ep.last_seen
            || w.count != ep.count
            || w.reminders != ep.reminders.len() as u64;
        for &i in &cands {
            taken[i] = true;
            if i != winner {
                let s = &stored[i];
                out.changed |= s.active || s.merged_into != Some(w.identity);
                out.merged.push((s.identity, w.identity));
            }
        }
    }
    out.changed |= stored.iter().zip(&taken).any(|(s, t)| s.active && !t);
    out
}

/// The stable key of a notification.
pub fn intent_key(remediation: &str, episode_start: Timestamp, number: usize) -> String {
    format!(
        "{remediation}/{}/{number}",
        episode_start.strftime("%Y%m%dT%H%M%S%.fZ")
    )
}

/// The notifications an episode list calls for: one `open` each, plus their reminders, keyed
/// by the episodes' identities.
pub fn intents_for(remediation: &str, eps: &[Episode]) -> Vec<IntentDraft> {
    let mut out = Vec::new();
    for ep in eps {
        out.push(IntentDraft {
            remediation: remediation.to_string(),
            kind: IntentKind::Open,
            key: intent_key(remediation, ep.identity, 0),
            episode_start: ep.identity,
            // The count when it opened: the same however the inputs were split across runs.
            count: ep.opened_count,
            due: ep.start,
        });
        for (n, (at, count)) in ep.reminders.iter().enumerate() {
            out.push(IntentDraft {
                remediation: remediation.to_string(),
                kind: IntentKind::Reminder,
                key: intent_key(remediation, ep.identity, n + 1),
                episode_start: ep.identity,
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

    fn stored(identity: Timestamp, first: Timestamp, last: Timestamp, seq: i64) -> StoredEpisode {
        StoredEpisode {
            remediation: "R".into(),
            identity,
            start: identity,
            first_seen: first,
            last_seen: last,
            count: 1,
            reminders: 0,
            merged_into: None,
            active: true,
            seq,
        }
    }

    #[test]
    fn identities_survive_an_earlier_start_and_joins_keep_the_first_recorded() {
        let a = alert(1, 60, 360, 60);
        // Recorded: an episode at 0:20 (first) and one at 1:40 (second).
        let rec = [
            stored(t(0, 20), t(0, 20), t(0, 20), 1),
            stored(t(1, 40), t(1, 40), t(1, 40), 2),
        ];
        // 0:00 arrives: the first episode now starts there, keeping its identity.
        let mut eps = episodes(&[t(0, 0), t(0, 20), t(1, 40)], &a);
        assert_eq!(eps.len(), 2);
        let asg = assign_identities(&mut eps, &rec);
        assert_eq!(eps[0].identity, t(0, 20));
        assert_eq!(eps[0].start, t(0, 0));
        assert_eq!(eps[1].identity, t(1, 40));
        assert!(asg.changed && asg.merged.is_empty());
        assert_eq!(intents_for("R", &eps)[0].key, "R/20250909T002000Z/0");
        // 1:00 joins them: one episode, under the identity recorded first.
        let mut eps = episodes(&[t(0, 0), t(0, 20), t(1, 0), t(1, 40)], &a);
        assert_eq!(eps.len(), 1);
        let asg = assign_identities(&mut eps, &rec);
        assert_eq!(eps[0].identity, t(0, 20));
        assert_eq!(asg.merged, vec![(t(1, 40), t(0, 20))]);
        // Recorded second but first in seq order wins instead.
        let rec2 = [
            stored(t(0, 20), t(0, 20), t(0, 20), 5),
            stored(t(1, 40), t(1, 40), t(1, 40), 2),
        ];
        let mut eps = episodes(&[t(0, 0), t(0, 20), t(1, 0), t(1, 40)], &a);
        assign_identities(&mut eps, &rec2);
        assert_eq!(eps[0].identity, t(1, 40));
    }

    #[test]
    fn an_unchanged_record_needs_no_write_and_a_vanished_episode_is_retired() {
        let a = alert(1, 60, 360, 60);
        let mut eps = episodes(&[t(0, 0), t(0, 20)], &a);
        let rec = [StoredEpisode {
            count: 2,
            last_seen: t(0, 20),
            ..stored(t(0, 0), t(0, 0), t(0, 20), 1)
        }];
        assert!(!assign_identities(&mut eps, &rec).changed);
        // Gone from the history (a moved fix): nothing overlaps it any more.
        let mut none: Vec<Episode> = Vec::new();
        assert!(assign_identities(&mut none, &rec).changed);
    }

    #[test]
    fn one_recorded_episode_never_lends_its_identity_twice() {
        // Threshold 2, resolve shorter than the window: extra events can re-cut the bursts,
        // so one recorded span may overlap two recomputed episodes.
        let a = alert(2, 60, 360, 30);
        let rec = [stored(t(0, 50), t(0, 0), t(0, 50), 1)];
        let mut eps = episodes(&[t(-1, 50), t(0, 0), t(0, 50), t(1, 40)], &a);
        assert_eq!(eps.len(), 2);
        assign_identities(&mut eps, &rec);
        assert_eq!(eps[0].identity, t(0, 50));
        assert_eq!(eps[1].identity, eps[1].start);
        assert_ne!(eps[0].identity, eps[1].identity);
    }
}
