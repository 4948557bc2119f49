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

use std::collections::{BTreeMap, BTreeSet};

use jiff::{SignedDuration, Timestamp};
use serde::Serialize;

use crate::config::{ChannelConfig, Config};
use crate::redact::Redactor;
use crate::report::summarize;
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

/// Backoff before attempt `n + 1` after `n` failures: `first` (`[notify] retry_after`,
/// 30s by default), then doubling (1m, 2m, …), capped at 1h.
pub fn backoff(attempts: u32, first: SignedDuration) -> SignedDuration {
    let ms =
        (first.as_millis().max(0) as i64).saturating_mul(1i64 << attempts.saturating_sub(1).min(7));
    SignedDuration::from_millis(ms.min(3_600_000))
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

/// Sends due outbox rows: send, then mark sent. A failure keeps the row pending with
/// exponential backoff until `[notify] max_attempts`, then marks it failed. Each channel is
/// built once; once a channel fails in a run its remaining rows wait for the next run, so a
/// dead mail server costs one timeout per run, not one per notification, and never holds up
/// the other channels.
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
    let rows = match due {
        Due::Backoff => store.due_deliveries(now)?,
        Due::All => store.due_deliveries(Timestamp::MAX)?,
    };
    let max_attempts = config.notify.max_attempts.max(1);
    let mut channels: BTreeMap<String, Result<Box<dyn Channel>, SendError>> = BTreeMap::new();
    let mut broken: BTreeSet<String> = BTreeSet::new();
    for d in rows {
        if broken.contains(&d.channel) {
            stats.deferred += 1;
            continue;
        }
        let Some(intent) = store.intent(&d.key)? else {
            continue;
        };
        let rule = rules.iter().find(|r| r.id == intent.remediation);
        let result = match rule {
            None => Err(SendError(format!(
                "remediation {} is no longer loaded",
                intent.remediation
            ))),
            Some(rule) => {
                let report = summarize(rule, store, now)?;
                let n = Notification::build(&intent, rule, &report, rules, store, redactor, now)?;
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
                    stats.failed += 1;
                } else {
                    upd.next_attempt = Some(now + backoff(upd.attempts, config.notify.retry_after));
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
    }
    Ok(stats)
}
