//! Property tests of the tracking guarantees at the store + track seam: the stored history,
//! the episodes and the notification intents depend only on the *set* of events seen — not on
//! the order the inputs were read in, on how they were split across runs, or on running the
//! same job twice.

use std::path::Path;

use jiff::Timestamp;
use proptest::prelude::*;

use super::{IntentOptions, refresh};
use crate::config::Config;
use crate::rule::load::parse_rule_file;
use crate::store::{Batch, CoverageCell, SqliteStore, Store, StoredOccurrence};

const FIX: i64 = 1_757_374_200; // 2025-09-08T23:30:00Z

fn rule() -> crate::rule::Remediation {
    let text = r#"
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
threshold = 2
window = "1h"
repeat = "3h"
resolve = "2h"
"#;
    parse_rule_file(Path::new("r.toml"), text).expect("test rule parses")
}

/// One event: minutes relative to the fix (negative: before it), and an id shared by
/// duplicates (the same event in two overlapping exports).
#[derive(Debug, Clone)]
struct Ev {
    minute: i64,
    id: u32,
}

fn occurrence(e: &Ev, input: &str) -> StoredOccurrence {
    StoredOccurrence {
        remediation: "R_1".into(),
        identity: format!("id:{}", e.id),
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
    intent_keys: Vec<String>,
}

fn outcome(store: &mut SqliteStore, rules: &[crate::rule::Remediation]) -> Outcome {
    let now = Timestamp::from_second(FIX + 400 * 86_400).unwrap();
    let opts = IntentOptions {
        max_notifications: usize::MAX,
        notify_since: None,
    };
    let (reports, _) = refresh(store, rules, &Config::default(), &opts, now).unwrap();
    let r = &reports[0];
    let mut intent_keys: Vec<String> = store
        .intents(Some("R_1"))
        .unwrap()
        .into_iter()
        .map(|i| i.key)
        .collect();
    intent_keys.sort();
    Outcome {
        occurrences: r.occurrences,
        before_fix: r.before_fix,
        recurrences: r.recurrences,
        episodes: r.episode_list.iter().map(|e| (e.start, e.count)).collect(),
        intent_keys,
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
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    /// Reading the events in one run, or shuffled and split into several runs (each of which
    /// recomputes episodes), twice over, gives the same counts, episodes and final intents.
    #[test]
    fn history_is_independent_of_order_splitting_and_reruns(
        evs in events(),
        seed in any::<u64>(),
        parts in 1usize..5,
    ) {
        let rules = vec![rule()];

        let mut one = SqliteStore::in_memory().unwrap();
        one.commit(&batch(&evs, "all")).unwrap();
        let expected = outcome(&mut one, &rules);

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
                outcome(&mut split, &rules);
            }
            let got = outcome(&mut split, &rules);
            prop_assert_eq!(got.occurrences, expected.occurrences);
            prop_assert_eq!(got.before_fix, expected.before_fix);
            prop_assert_eq!(got.recurrences, expected.recurrences);
            prop_assert_eq!(&got.episodes, &expected.episodes);
            // Every intent of the one-run history exists in the split history.
            for k in &expected.intent_keys {
                prop_assert!(got.intent_keys.contains(k), "missing intent {}", k);
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
