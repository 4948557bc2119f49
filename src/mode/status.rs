//! `recur status`: the tracker view, from the store alone. Never writes.

use std::io::Write;
use std::path::PathBuf;

use jiff::Timestamp;
use serde::Serialize;

use super::common;
use super::scan::OutputFormat;
use crate::report::{
    RemediationReport, format_time, group_thousands, paint_verdict, summarize, table,
};
use crate::store::{Delivery, DeliveryStatus, SqliteStore, Store, StoredIntent};

/// `recur status` flags.
#[derive(Debug, Clone, clap::Args)]
pub struct StatusArgs {
    /// Directory of rule files.
    #[arg(long, value_name = "DIR", default_value = "rules", env = "RECUR_RULES")]
    pub rules: PathBuf,
    /// Configuration file (default: ./recur.toml when present).
    #[arg(long, value_name = "FILE", env = "RECUR_CONFIG")]
    pub config: Option<PathBuf>,
    /// State database (default: .recur/state.db, or the config's `[state] path`).
    #[arg(long, value_name = "PATH", env = "RECUR_STATE")]
    pub state: Option<PathBuf>,
    /// Output: a readable table, or JSON.
    #[arg(long, value_enum, default_value = "human")]
    pub format: OutputFormat,
}

/// A remediation the store knows but no rule file defines any more.
#[derive(Debug, Clone, Serialize)]
pub struct Retired {
    pub id: String,
    pub title: String,
    pub owner: String,
    pub analysis: String,
    pub occurrences: u64,
    pub last_loaded: Timestamp,
}

#[derive(Debug, Clone, Serialize)]
pub struct StatusReport {
    pub remediations: Vec<RemediationReport>,
    pub retired: Vec<Retired>,
    /// Notifications that could not be delivered after every attempt.
    pub failed_notifications: Vec<StoredIntent>,
    /// The outbox rows given up (channel, attempts, last error), for the failed notifications.
    pub failed_deliveries: Vec<Delivery>,
    pub pending_notifications: u64,
}

pub fn run(
    args: &StatusArgs,
    color: bool,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> anyhow::Result<i32> {
    let Some(config) = common::load_config(args.config.as_deref(), color, err)? else {
        return Ok(2);
    };
    let loaded = match common::load_rules(&args.rules, color, err) {
        Ok(r) => r,
        Err(e) => {
            writeln!(err, "error: {e:#}")?;
            return Ok(2);
        }
    };
    let path = common::state_path(args.state.as_deref(), &config);
    let store: Box<dyn Store> = if path.exists() {
        match SqliteStore::open_read_only(&path) {
            Ok(s) => Box::new(s),
            Err(e) => {
                writeln!(err, "error: {e}")?;
                return Ok(2);
            }
        }
    } else {
        // No state yet: every verdict from the rules alone (nothing seen).
        Box::new(SqliteStore::in_memory()?)
    };
    let now = Timestamp::now();
    let mut reports = Vec::new();
    for r in loaded.rules.iter() {
        reports.push(summarize(r, store.as_ref(), now)?);
    }
    let mut retired = Vec::new();
    for k in store.known_remediations()? {
        if !loaded.rules.iter().any(|r| r.id == k.id) {
            let occurrences = store.occurrence_times(&k.id)?.len() as u64;
            retired.push(Retired {
                id: k.id,
                title: k.title,
                owner: k.owner,
                analysis: k.analysis,
                occurrences,
                last_loaded: k.last_loaded,
            });
        }
    }
    let intents = store.intents(None)?;
    let failed: Vec<StoredIntent> = intents
        .iter()
        .filter(|i| i.status == DeliveryStatus::Failed)
        .cloned()
        .collect();
    let pending = intents
        .iter()
        .filter(|i| i.status == DeliveryStatus::Pending)
        .count() as u64;
    let failed_deliveries: Vec<Delivery> = store
        .deliveries(None)?
        .into_iter()
        .filter(|d| d.status == DeliveryStatus::Failed)
        .collect();
    let bad = reports.iter().any(|r| r.verdict.is_bad());
    let report = StatusReport {
        remediations: reports,
        retired,
        failed_notifications: failed,
        failed_deliveries,
        pending_notifications: pending,
    };
    match args.format {
        OutputFormat::Json => {
            crate::report::write_json(&mut *out, &report)?;
        }
        OutputFormat::Human => write_human(&report, color, out)?,
    }
    Ok(if loaded.invalid_files > 0 {
        2
    } else if bad {
        1
    } else {
        0
    })
}

fn write_human(report: &StatusReport, color: bool, out: &mut dyn Write) -> std::io::Result<()> {
    let rows: Vec<Vec<String>> = report
        .remediations
        .iter()
        .map(|r| {
            vec![
                r.id.clone(),
                paint_verdict(r.verdict, color),
                r.fixed_at.map(format_time).unwrap_or_else(|| "-".into()),
                r.deadline.map(format_time).unwrap_or_else(|| "-".into()),
                group_thousands(r.recurrences),
                r.episodes.to_string(),
                r.last_seen.map(format_time).unwrap_or_else(|| "-".into()),
                r.owner.clone(),
            ]
        })
        .collect();
    write!(
        out,
        "{}",
        table(
            &[
                "REMEDIATION",
                "VERDICT",
                "FIXED AT",
                "DEADLINE",
                "RECURRENCES",
                "EPISODES",
                "LAST SEEN",
                "OWNER"
            ],
            &rows
        )
    )?;
    writeln!(out)?;
    for r in &report.remediations {
        writeln!(out, "{}: {}", r.id, r.title)?;
        writeln!(out, "  {}", r.progress)?;
        writeln!(out, "  analysis: {}", r.analysis)?;
    }
    for r in &report.retired {
        writeln!(
            out,
            "{} (retired: no rule file; {} occurrences kept): {}",
            r.id, r.occurrences, r.title
        )?;
    }
    for f in &report.failed_notifications {
        writeln!(
            out,
            "notification {} for {} FAILED after every attempt",
            f.key, f.remediation
        )?;
        for d in report.failed_deliveries.iter().filter(|d| d.key == f.key) {
            writeln!(
                out,
                "  via {}: {} attempts, last error: {}",
                d.channel,
                d.attempts,
                d.last_error.as_deref().unwrap_or("-")
            )?;
        }
    }
    if report.pending_notifications > 0 {
        writeln!(
            out,
            "{} notification(s) pending in the outbox",
            report.pending_notifications
        )?;
    }
    Ok(())
}
