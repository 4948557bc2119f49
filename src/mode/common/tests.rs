//! Property tests of the tracking guarantees at the store + track seam: the stored history,
//! the episodes and the notification intents depend only on the *set* of events seen — not on
//! the order the inputs were read in, on how they were split across runs, or on running the
//! same job twice.

use std::path::Path;

use jiff::Timestamp;
use proptest::prelude::*;

use std::collections::BTreeSet;

use super::{IntentOptions, refresh};
use crate::config::Config;
use crate::rule::load::parse_rule_file;
use crate::store::{Batch, CoverageCell, NewOccurrence, SqliteStore, Store};
use crate::track::IntentKind;

const FIX: i64 = 1_757_374_200; // 2025-09-08T23:30:00Z

fn rule_with(threshold: u32) -> crate::rule::Remediation {
    let text = format!(
        r#"
id = "R_1"
title = "t"
owner = "o@example.com"
analysis = "https://docs.example.com/a"
[fix]
status = "fixed"
fixed_at = "2025-09-08T23:30:00Z"
verify = "24h"
[[signature]]
code = "E"
[alert]
threshold = {threshold}
window = "1h"
repeat = "3h"
resolve = "2h"
"#
    );
    parse_rule_file(Path::new("r.toml"), &text).expect("test rule parses")
}

/// One event: minutes relative to the fix (negative: before it), and an id shared by
/// duplicates (the same event in two overlapping exports).
#[derive(Debug, Clone)]
struct Ev {
    minute: i64,
    id: u32,
}

fn occurrence(e: &Ev, input: &str) -> NewOccurrence {
    NewOccurrence {
        remediation: "R_1".into(),
        identity: format!("id:{}", e.id).into(),
        time: Some(Timestamp::from_second(FIX + e.minute * 60).unwrap()),
        signature: 0,
        source: input.into(),
        line: 1,
        sample: format!("{{\"id\":{}}}", e.id),
    }
}

fn batch(evs: &[Ev], input: &str) -> Batch {
    let mut b = Batch::default();
    for e in evs {
        b.occurrences.push(occurrence(e, input));
        let t = FIX + e.minute * 60;
        b.coverage.push(CoverageCell {
            remediation: "R_1".into(),
            bucket: t - t.rem_euclid(3600),
            input: input.into(),
            count: 1,
            max_time: Timestamp::from_second(t).unwrap(),
        });
    }
    b
}

/// What a run leaves behind that the user can see.
#[derive(Debug, PartialEq)]
struct Outcome {
    occurrences: u64,
    before_fix: u64,
    recurrences: u64,
    episodes: Vec<(Timestamp, u64)>,
    /// Every intent key in the ledger, sorted.
    intent_keys: Vec<String>,
    /// The intents of each current episode under its own identity, as (episode index, kind,
    /// number): what "the same notifications" means across orders and splits.
    own: BTreeSet<(usize, IntentKind, u64)>,
    /// Intents of recorded episodes that a later event joined into a current one, as (episode
    /// index, kind, number): notified while they were distinct.
    merged: Vec<(usize, IntentKind, u64)>,
    /// Whether every current episode's identity is its own start.
    keyed_by_start: bool,
}

const NOW: i64 = FIX + 400 * 86_400;

fn refresh_once(store: &mut SqliteStore, rules: &[crate::rule::Remediation]) {
    let opts = IntentOptions {
        max_notifications: usize::MAX,
        notify_since: None,
    };
    let now = Timestamp::from_second(NOW).unwrap();
    refresh(store, rules, &Config::default(), &opts, now).unwrap();
}

fn outcome(store: &mut SqliteStore, rules: &[crate::rule::Remediation]) -> Outcome {
    refresh_once(store, rules);
    let now = Timestamp::from_second(NOW).unwrap();
    let r = crate::report::summarize(&rules[0], store, now).unwrap();
    assert!(
        !r.episode_assignment.changed,
        "a refresh records what it computed"
    );
    let stored = store.episodes("R_1").unwrap();
    let index_of = |identity: Timestamp| -> (usize, bool) {
        // Follow joins to the current episode.
        let mut id = identity;
        let mut own = true;
        for _ in 0..=stored.len() {
            if let Some(i) = r.episode_list.iter().position(|e| e.identity == id) {
                return (i, own);
            }
            own = false;
            id = stored
                .iter()
                .find(|s| s.identity == id)
                .and_then(|s| s.merged_into)
                .unwrap_or_else(|| panic!("intent of an unrecorded or orphan episode {id}"));
        }
        panic!("merge cycle at {identity}");
    };
    let intents = store.intents(Some("R_1")).unwrap();
    let mut own = BTreeSet::new();
    let mut merged = Vec::new();
    for i in &intents {
        let number: u64 = i.key.rsplit('/').next().unwrap().parse().unwrap();
        let (idx, is_own) = index_of(i.episode_start);
        if is_own {
            assert!(
                own.insert((idx, i.kind, number)),
                "duplicate intent {}",
                i.key
            );
        } else {
            merged.push((idx, i.kind, number));
        }
    }
    let mut intent_keys: Vec<String> = intents.into_iter().map(|i| i.key).collect();
    intent_keys.sort();
    Outcome {
        occurrences: r.occurrences,
        before_fix: r.before_fix,
        recurrences: r.recurrences,
        episodes: r.episode_list.iter().map(|e| (e.start, e.count)).collect(),
        intent_keys,
        own,
        merged,
        keyed_by_start: r.episode_list.iter().all(|e| e.identity == e.start),
    }
}

fn events() -> impl Strategy<Value = Vec<Ev>> {
    // Ids index a fixed timeline so that a duplicate id is truly the same event.
    proptest::collection::vec(0u32..60, 0..40).prop_map(|ids| {
        ids.into_iter()
            .map(|id| Ev {
                // Spread over ~2 days around the fix, in bursts and gaps.
                minute: (id as i64 * 47) % 3000 - 600,
                id,
            })
            .collect()
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    /// Reading the events in one run, or shuffled and split into several runs (each of which
    /// recomputes episodes and records intents), twice over, gives the same counts, the same
    /// episodes and, per episode, the same notifications: one `open` and the same reminder
    /// numbers under the identity notified first. The only extra intents are those of
    /// episodes that were distinct when notified and that a later event joined (see
    /// `track::episode`); nothing is ever notified twice under one identity.
    #[test]
    fn history_is_independent_of_order_splitting_and_reruns(
        evs in events(),
        seed in any::<u64>(),
        parts in 1usize..5,
        threshold in 1u32..4,
    ) {
        let rules = vec![rule_with(threshold)];

        let mut one = SqliteStore::in_memory().unwrap();
        one.commit(&batch(&evs, "all")).unwrap();
        let expected = outcome(&mut one, &rules);
        prop_assert!(expected.merged.is_empty());
        // In one run each episode is keyed by its own start.
        prop_assert!(expected.keyed_by_start);

        // A deterministic shuffle from the seed.
        let mut shuffled = evs.clone();
        let mut s = seed | 1;
        for i in (1..shuffled.len()).rev() {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            shuffled.swap(i, (s % (i as u64 + 1)) as usize);
        }
        let mut split = SqliteStore::in_memory().unwrap();
        let chunk = shuffled.len().div_ceil(parts).max(1);
        let mut intents_after_first_pass = Vec::new();
        for pass in 0..2 {
            for (n, part) in shuffled.chunks(chunk).enumerate() {
                split.commit(&batch(part, &format!("part{n}"))).unwrap();
                // Each run recomputes and records intents, as `scan` does.
                refresh_once(&mut split, &rules);
            }
            let got = outcome(&mut split, &rules);
            prop_assert_eq!(got.occurrences, expected.occurrences);
            prop_assert_eq!(got.before_fix, expected.before_fix);
            prop_assert_eq!(got.recurrences, expected.recurrences);
            prop_assert_eq!(&got.episodes, &expected.episodes);
            prop_assert_eq!(&got.own, &expected.own, "intents per episode");
            // Joined episodes: each was opened once, inside the episode it joined.
            let stored = split.episodes("R_1").unwrap();
            let joined = stored.iter().filter(|s| s.merged_into.is_some()).count();
            prop_assert_eq!(
                got.merged.iter().filter(|m| m.1 == IntentKind::Open).count(),
                joined
            );
            for s in stored.iter().filter(|s| s.merged_into.is_some()) {
                let mut into = s;
                while let Some(next) = into.merged_into {
                    into = stored.iter().find(|x| x.identity == next).unwrap();
                    prop_assert!(into.seq < s.seq, "the first recorded keeps its identity");
                }
                prop_assert!(into.active);
                prop_assert!(s.first_seen >= into.first_seen && s.last_seen <= into.last_seen);
            }
            if pass == 0 {
                intents_after_first_pass = got.intent_keys;
            } else {
                // Running the same job again creates nothing new.
                prop_assert_eq!(&got.intent_keys, &intents_after_first_pass);
            }
        }
    }
}

fn at(minute: i64, id: u32) -> Ev {
    Ev { minute, id }
}

fn open_keys(store: &SqliteStore) -> Vec<String> {
    store
        .intents(Some("R_1"))
        .unwrap()
        .into_iter()
        .map(|i| i.key)
        .collect()
}

/// The 08:20 export read before the 08:00 one: one episode, one `open`, keyed by the start
/// first notified; reminders continue that key's numbering.
#[test]
fn an_earlier_event_read_later_keeps_the_notified_key() {
    let rules = vec![rule_with(1)];
    let mut store = SqliteStore::in_memory().unwrap();
    store.commit(&batch(&[at(20, 1)], "late")).unwrap();
    refresh_once(&mut store, &rules);
    let first = open_keys(&store);
    assert_eq!(first, ["R_1/20250908T235000Z/0"]);
    store.commit(&batch(&[at(0, 2)], "early")).unwrap();
    refresh_once(&mut store, &rules);
    assert_eq!(open_keys(&store), first, "no second notification");
    let now = Timestamp::from_second(NOW).unwrap();
    let r = crate::report::summarize(&rules[0], &store, now).unwrap();
    assert_eq!(r.episodes, 1);
    assert_eq!(
        r.episode_list[0].start,
        Timestamp::from_second(FIX).unwrap()
    );
    assert_eq!(
        r.episode_list[0].identity,
        Timestamp::from_second(FIX + 1200).unwrap()
    );
    let stored = store.episodes("R_1").unwrap();
    assert_eq!(stored.len(), 1);
    assert_eq!(
        stored[0].start, r.episode_list[0].start,
        "the record follows the history"
    );
    // Recurrences every 30 minutes until 3h after the (new) start: the reminder is due 3h
    // after the episode opened and carries the recorded identity.
    let more: Vec<Ev> = (1..=6).map(|i| at(i * 30, 10 + i as u32)).collect();
    store.commit(&batch(&more, "more")).unwrap();
    refresh_once(&mut store, &rules);
    assert_eq!(
        open_keys(&store),
        ["R_1/20250908T235000Z/0", "R_1/20250908T235000Z/1"]
    );
}

/// Two episodes notified apart, then an event in between joins them: one episode from then
/// on, under the identity recorded first; both notifications stand, nothing new is made.
#[test]
fn a_joining_event_merges_into_the_first_recorded_episode() {
    let rules = vec![rule_with(1)];
    let mut store = SqliteStore::in_memory().unwrap();
    store.commit(&batch(&[at(150, 1)], "b")).unwrap();
    refresh_once(&mut store, &rules);
    store.commit(&batch(&[at(0, 2)], "a")).unwrap();
    refresh_once(&mut store, &rules);
    assert_eq!(open_keys(&store).len(), 2);
    // Resolve is 2h: 75 minutes after the first and before the second joins them (and the
    // joined episode is shorter than `repeat`: no reminder).
    store.commit(&batch(&[at(75, 3)], "c")).unwrap();
    refresh_once(&mut store, &rules);
    assert_eq!(open_keys(&store).len(), 2, "nothing new");
    let now = Timestamp::from_second(NOW).unwrap();
    let r = crate::report::summarize(&rules[0], &store, now).unwrap();
    assert_eq!(r.episodes, 1);
    // The episode at +150 was recorded first: it keeps its identity.
    assert_eq!(
        r.episode_list[0].identity,
        Timestamp::from_second(FIX + 9_000).unwrap()
    );
    let stored = store.episodes("R_1").unwrap();
    let joined: Vec<_> = stored.iter().filter(|s| s.merged_into.is_some()).collect();
    assert_eq!(joined.len(), 1);
    assert_eq!(joined[0].identity, Timestamp::from_second(FIX).unwrap());
}
