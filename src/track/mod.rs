//! Track stage: from stored occurrences and coverage to episodes, verdicts and notification
//! intents. Everything here is a pure function of the *set* of stored facts and the rule, all
//! in event time, which is what makes results independent of input order, of how inputs are
//! split across runs, and of running the same job twice — plus the recorded identity of each
//! episode, which keeps a notified episode's keys when earlier events arrive later.

pub mod episode;
pub mod verdict;

pub use episode::{
    Assignment, Episode, IntentDraft, IntentKind, assign_identities, episodes, intents_for,
};
pub use verdict::{Verdict, verdict};
