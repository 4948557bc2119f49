//! Sink stage: notifications leave through the outbox.
//!
//! Intents are written by the track step (one per episode opening, reminder or digest) with
//! one outbox row per channel. [`drain`] sends what is due, marks it sent, and on failure keeps
//! it pending with exponential backoff, so a crash between sending and marking resends with the
//! same dedup key — receivers that dedup see one message.

pub mod console;
pub mod email;
pub mod http;
pub mod message;
pub mod render;

use std::collections::btree_map::Entry;
use std::collections::{BTreeMap, BTreeSet};

use jiff::{SignedDuration, Timestamp};
use serde::Serialize;

use crate::config::{ChannelConfig, Config};
use crate::redact::Redactor;
use crate::report::{RemediationReport, summarize};
use crate::rule::Remediation;
use crate::store::{Delivery, DeliveryStatus, Store, StoreError};
pub use message::Notification;

/// Why a send failed, precise enough to act on (DNS, TCP, TLS, auth, HTTP status).
#[derive(Debug, Clone, thiserror::Error)]
#[error("{0}")]
pub struct SendError(pub String);

/// A notification channel.
pub trait Channel: Send {
    fn send(&self, n: &Notification) -> Result<(), SendError>;
}

/// Builds the channel named `name` from the config, reading its secrets from the environment.
pub fn channel(name: &str, config: &Config, json: bool) -> Result<Box<dyn Channel>, SendError> {
    let timeout = config.notify.timeout.unsigned_abs();
    match config.channels.get(name) {
        None if name == crate::config::CONSOLE => Ok(Box::new(console::Console { json })),
        None => Err(SendError(format!(
            "channel `{name}` is not defined in {}",
            config.display_name()
        ))),
        Some(ChannelConfig::Console) => Ok(Box::new(console::Console { json })),
        Some(ChannelConfig::Email {
            url,
            tls,
            from,
            to,
            username_env,
            password_env,
            ca_file,
        }) => Ok(Box::new(email::Email::new(
            name,
            url,
            *tls,
            from,
            to,
            username_env.as_deref(),
            password_env.as_deref(),
            ca_file.as_deref(),
            timeout,
        )?)),
        Some(ChannelConfig::Webhook {
            url,
            url_env,
            headers_env,
        }) => Ok(Box::new(http::Http::new(
            name,
            http::Flavor::Webhook,
            url.as_deref(),
            url_env.as_deref(),
            headers_env,
            timeout,
        )?)),
        Some(ChannelConfig::Slack { url, url_env }) => Ok(Box::new(http::Http::new(
            name,
            http::Flavor::Slack,
            url.as_deref(),
            url_env.as_deref(),
            &BTreeMap::new(),
            timeout,
        )?)),
    }
}

/// Replaces every occurrence of each secret (URLs, passwords, header values) with the mask.
/// Short strings are left alone: masking every `a` in a message would say nothing.
pub fn scrub(message: &str, secrets: &[&str]) -> String {
    let mut out = message.to_string();
    let mut secrets: Vec<&str> = secrets.iter().copied().filter(|s| s.len() >= 4).collect();
    // Longest first, so a URL is masked whole before its path is.
    secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
    for s in secrets {
        if out.contains(s) {
            out = out.replace(s, crate::redact::MASK);
        }
    }
    out
}

/// The channels a rule notifies: its own, else the config's defaults, else the console.
pub fn channels_for(rule: &Remediation, config: &Config) -> Vec<String> {
    if !rule.alert.channels.is_empty() {
        rule.alert.channels.clone()
    } else if !config.default_channels.is_empty() {
        config.default_channels.clone()
    } else {
        vec!["console".to_string()]
    }
}

/// Result of draining the outbox.
#[derive(Debug, Clone, Default, Serialize)]
pub struct DrainStats {
    pub sent: u64,
    /// Given up after `[notify] max_attempts`.
    pub failed: u64,
    /// Failed this time; retried with backoff on a later run.
    pub retrying: u64,
    /// Not attempted because their channel already failed in this run (kept due).
    pub deferred: u64,
    pub errors: Vec<String>,
}

/// Backoff before attempt `n + 1` after `n` failures: `base` (`[notify] backoff`, 30 s by
/// default), then doubling — 30 s, 1 min, 2 min, … — capped at an hour, or at `base` when
/// that is longer.
pub fn backoff(base: SignedDuration, attempts: u32) -> SignedDuration {
    let cap = base.max(SignedDuration::from_hours(1));
    let factor = 1i32 << attempts.saturating_sub(1).min(20);
    base.checked_mul(factor).map_or(cap, |d| d.min(cap))
}

/// How long a run may hold a delivery it is sending before another run may take it over
/// (the first one presumably died mid-send). Comfortably longer than one send can take with
/// the configured timeout (connect, TLS, and each protocol step may each use it).
pub fn lease(timeout: SignedDuration) -> SignedDuration {
    timeout
        .checked_mul(6)
        .unwrap_or(SignedDuration::MAX)
        .max(SignedDuration::from_secs(60))
}

/// How a drain picks its rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Due {
    /// Rows whose backoff has passed.
    #[default]
    Backoff,
    /// Every pending row, ignoring backoff (`recur outbox flush --force`).
    All,
}

/// Sends every due outbox row (see [`drain_with`]).
pub fn drain(
    store: &mut dyn Store,
    rules: &[Remediation],
    config: &Config,
    redactor: &Redactor,
    json_console: bool,
    now: Timestamp,
) -> Result<DrainStats, StoreError> {
    drain_with(
        store,
        rules,
        config,
        redactor,
        json_console,
        now,
        Due::Backoff,
    )
}

/// Sends due outbox rows: claim, send, then mark sent. A failure keeps the row pending with
/// exponential backoff until `[notify] max_attempts`, then marks it failed. Each channel is
/// built once; once a channel fails in a run its remaining rows wait for the next run, so a
/// dead mail server costs one timeout per run, not one per notification, and never holds up
/// the other channels.
///
/// Each row is claimed just before its send ([`Store::claim_delivery`]): runs draining the
/// same outbox at once (overlapping cron scans, `watch` and `outbox flush`) send each
/// notification once, and a row claimed by a run that died is retried when its [`lease`]
/// expires — with the same dedup key, so a receiver that dedups still sees one message.
pub fn drain_with(
    store: &mut dyn Store,
    rules: &[Remediation],
    config: &Config,
    redactor: &Redactor,
    json_console: bool,
    now: Timestamp,
    due: Due,
) -> Result<DrainStats, StoreError> {
    let mut stats = DrainStats::default();
    let due_by = match due {
        Due::Backoff => now,
        Due::All => Timestamp::MAX,
    };
    let rows = store.due_deliveries(due_by)?;
    let lease_until = now + lease(config.notify.timeout);
    let max_attempts = config.notify.max_attempts.max(1);
    let mut channels: BTreeMap<String, Result<Box<dyn Channel>, SendError>> = BTreeMap::new();
    let mut broken: BTreeSet<String> = BTreeSet::new();
    // One report per remediation for the whole drain, however many rows it has.
    let mut reports: BTreeMap<String, RemediationReport> = BTreeMap::new();
    for d in rows {
        if broken.contains(&d.channel) {
            stats.deferred += 1;
            continue;
        }
        let Some(intent) = store.intent(&d.key)? else {
            continue;
        };
        // Another run is sending it, or sent it since the rows were listed: not ours.
        let Some(d) = store.claim_delivery(&d.key, &d.channel, due_by, now, lease_until)? else {
            continue;
        };
        in_flight(|v| v.push((d.key.clone(), d.channel.clone())));
        let rule = rules.iter().find(|r| r.id == intent.remediation);
        let result = match rule {
            None => Err(SendError(format!(
                "remediation {} is no longer loaded",
                intent.remediation
            ))),
            Some(rule) => {
                let report = match reports.entry(rule.id.clone()) {
                    Entry::Occupied(e) => e.into_mut(),
                    Entry::Vacant(e) => e.insert(summarize(rule, store, now)?),
                };
                let n = Notification::build(&intent, rule, report, rules, store, redactor, now)?;
                let ch = channels
                    .entry(d.channel.clone())
                    .or_insert_with(|| channel(&d.channel, config, json_console));
                match ch {
                    Ok(c) => c.send(&n),
                    Err(e) => Err(e.clone()),
                }
            }
        };
        let mut upd = Delivery {
            attempts: d.attempts + 1,
            ..d.clone()
        };
        match result {
            Ok(()) => {
                upd.status = DeliveryStatus::Sent;
                upd.next_attempt = None;
                upd.last_error = None;
                stats.sent += 1;
            }
            Err(e) => {
                if rule.is_some() {
                    broken.insert(d.channel.clone());
                }
                let msg = redactor.text(&e.0);
                upd.last_error = Some(msg.clone());
                if upd.attempts >= max_attempts {
                    upd.status = DeliveryStatus::Failed;
                    upd.next_attempt = None;
                    stats.failed += 1;
                } else {
                    upd.status = DeliveryStatus::Pending;
                    upd.next_attempt = Some(now + backoff(config.notify.backoff, upd.attempts));
                    stats.retrying += 1;
                }
                stats.errors.push(format!(
                    "notification {} via {}: {msg}{}",
                    d.key,
                    d.channel,
                    if upd.status == DeliveryStatus::Failed {
                        format!(" (gave up after {} attempts)", upd.attempts)
                    } else {
                        format!(
                            " (attempt {}/{max_attempts}; retried after {})",
                            upd.attempts,
                            upd.next_attempt
                                .map(crate::report::format_time)
                                .unwrap_or_default()
                        )
                    }
                ));
            }
        }
        store.update_delivery(&upd)?;
        in_flight(|v| v.retain(|(k, c)| !(k == &d.key && c == &d.channel)));
    }
    Ok(stats)
}

/// Rows this process has claimed and not yet settled: what a stopping `watch` hands back.
static IN_FLIGHT: std::sync::Mutex<Vec<(String, String)>> = std::sync::Mutex::new(Vec::new());

fn in_flight<T>(f: impl FnOnce(&mut Vec<(String, String)>) -> T) -> T {
    f(&mut IN_FLIGHT.lock().unwrap_or_else(|e| e.into_inner()))
}

/// Hands back the rows whose send this process abandoned (a stop while a receiver hangs):
/// they are due again at once, for the next run, instead of waiting out their claim's lease.
/// Returns how many were released.
pub fn release_in_flight(store: &mut dyn Store) -> Result<usize, StoreError> {
    let rows = in_flight(std::mem::take);
    let mut n = 0;
    for (key, channel) in rows {
        n += store.release_delivery(&key, &channel)? as usize;
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::SqliteStore;
    use crate::track::{IntentDraft, IntentKind};

    fn t(s: i64) -> Timestamp {
        Timestamp::from_second(s).unwrap()
    }

    #[test]
    fn backoff_doubles_from_the_configured_base_up_to_an_hour() {
        let s = SignedDuration::from_secs;
        assert_eq!(backoff(s(30), 1), s(30));
        assert_eq!(backoff(s(30), 2), s(60));
        assert_eq!(backoff(s(30), 3), s(120));
        assert_eq!(backoff(s(30), 9), s(3600));
        assert_eq!(backoff(s(1), 1), s(1));
        assert_eq!(backoff(s(1), 4), s(8));
        assert_eq!(backoff(s(1), 60), s(3600));
        assert_eq!(backoff(s(7200), 3), s(7200), "a longer base is its own cap");
        assert_eq!(lease(s(10)), s(60));
        assert_eq!(lease(s(30)), s(180));
    }

    /// Two connections to one file, as two processes would have.
    #[test]
    fn a_delivery_is_claimed_by_one_run_and_an_expired_claim_is_retried() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.db");
        let mut a = SqliteStore::open(&path).unwrap();
        let mut b = SqliteStore::open(&path).unwrap();
        let draft = IntentDraft {
            remediation: "R".into(),
            kind: IntentKind::Open,
            key: "R/x/0".into(),
            episode_start: t(1000),
            count: 1,
            due: t(1000),
        };
        a.add_intents(
            &[(draft, DeliveryStatus::Pending, vec!["hook".into()], vec![])],
            t(1000),
        )
        .unwrap();
        let now = t(2000);
        let claimed = a
            .claim_delivery("R/x/0", "hook", now, now, t(2060))
            .unwrap()
            .expect("a pending row is claimed");
        assert_eq!(claimed.status, DeliveryStatus::Pending);
        assert_eq!(claimed.attempts, 0);
        // The other run finds it claimed, even ignoring backoff, until the lease ends.
        assert!(
            b.claim_delivery("R/x/0", "hook", Timestamp::MAX, now, t(2060))
                .unwrap()
                .is_none()
        );
        assert!(b.due_deliveries(t(2059)).unwrap().is_empty());
        // The first run died: after the lease the row is due again and can be claimed.
        assert_eq!(b.due_deliveries(t(2060)).unwrap().len(), 1);
        let again = b
            .claim_delivery("R/x/0", "hook", t(2061), t(2061), t(2121))
            .unwrap()
            .expect("an expired claim is taken over");
        // Still pending for status and prune while it is claimed.
        assert_eq!(
            a.intent("R/x/0").unwrap().unwrap().status,
            DeliveryStatus::Pending
        );
        assert_eq!(a.prune(t(1_000_000)).unwrap().intents, 0);
        b.update_delivery(&Delivery {
            status: DeliveryStatus::Sent,
            attempts: again.attempts + 1,
            next_attempt: None,
            ..again
        })
        .unwrap();
        // Sent: nobody claims it any more.
        assert!(
            a.claim_delivery("R/x/0", "hook", Timestamp::MAX, t(9999), t(99999))
                .unwrap()
                .is_none()
        );
        assert_eq!(
            a.intent("R/x/0").unwrap().unwrap().status,
            DeliveryStatus::Sent
        );
    }

    #[test]
    fn a_row_in_backoff_is_claimed_only_when_backoff_is_ignored() {
        let mut s = SqliteStore::in_memory().unwrap();
        let draft = IntentDraft {
            remediation: "R".into(),
            kind: IntentKind::Open,
            key: "R/x/0".into(),
            episode_start: t(1000),
            count: 1,
            due: t(1000),
        };
        s.add_intents(
            &[(draft, DeliveryStatus::Pending, vec!["hook".into()], vec![])],
            t(1000),
        )
        .unwrap();
        let mut d = s.deliveries(None).unwrap()[0].clone();
        d.attempts = 1;
        d.next_attempt = Some(t(3000));
        s.update_delivery(&d).unwrap();
        assert!(
            s.claim_delivery("R/x/0", "hook", t(2000), t(2000), t(2060))
                .unwrap()
                .is_none()
        );
        let c = s
            .claim_delivery("R/x/0", "hook", Timestamp::MAX, t(2000), t(2060))
            .unwrap()
            .expect("--force ignores backoff");
        assert_eq!(c.attempts, 1);
    }
}
