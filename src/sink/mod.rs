//! Sink stage: notifications leave through the outbox.
//!
//! Intents are written by the track step (one per episode opening, reminder or digest) with
//! one outbox row per channel. [`drain`] sends what is due, marks it sent, and on failure keeps
//! it pending with exponential backoff, so a crash between sending and marking resends with the
//! same dedup key — receivers that dedup see one message.

pub mod console;
pub mod message;

use jiff::{SignedDuration, Timestamp};
use serde::Serialize;

use crate::config::Config;
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

/// Builds the channel named `name` from the config.
pub fn channel(name: &str, config: &Config, json: bool) -> Result<Box<dyn Channel>, SendError> {
    let _ = config;
    match name {
        "console" => Ok(Box::new(console::Console { json })),
        other => Err(SendError(format!(
            "channel `{other}` is not defined in recur.toml"
        ))),
    }
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
    pub failed: u64,
    pub retrying: u64,
    pub errors: Vec<String>,
}

/// Backoff before attempt `n + 1` after `n` failures: 30s, 1m, 2m, … capped at 1h.
pub fn backoff(attempts: u32) -> SignedDuration {
    let secs = 30i64.saturating_mul(1i64 << attempts.saturating_sub(1).min(7));
    SignedDuration::from_secs(secs.min(3600))
}

/// Sends every due outbox row.
pub fn drain(
    store: &mut dyn Store,
    rules: &[Remediation],
    config: &Config,
    redactor: &Redactor,
    json_console: bool,
    now: Timestamp,
) -> Result<DrainStats, StoreError> {
    let mut stats = DrainStats::default();
    let due = store.due_deliveries(now)?;
    let max_attempts = config.notify.max_attempts.max(1);
    for d in due {
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
                channel(&d.channel, config, json_console).and_then(|c| c.send(&n))
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
                let msg = redactor.text(&e.0);
                upd.last_error = Some(msg.clone());
                if upd.attempts >= max_attempts {
                    upd.status = DeliveryStatus::Failed;
                    stats.failed += 1;
                } else {
                    upd.next_attempt = Some(now + backoff(upd.attempts));
                    stats.retrying += 1;
                }
                stats
                    .errors
                    .push(format!("notification {} via {}: {msg}", d.key, d.channel));
            }
        }
        store.update_delivery(&upd)?;
    }
    Ok(stats)
}
