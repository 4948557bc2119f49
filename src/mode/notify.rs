//! `recur notify-test CHANNEL` and `recur outbox …`: trying a channel, and working the outbox
//! outside a scan (sending what `scan --no-notify` recorded, retrying failed sends now).

use std::io::Write;
use std::path::PathBuf;

use jiff::Timestamp;

use super::common;
use super::scan::OutputFormat;
use crate::config::Config;
use crate::redact::Redactor;
use crate::report::{format_time, table};
use crate::sink::{self, Due, Notification};
use crate::store::Delivery;

/// `recur notify-test` flags.
#[derive(Debug, Clone, clap::Args)]
pub struct NotifyTestArgs {
    /// The channel to try: a `[channels.NAME]` of recur.toml, or `console`.
    #[arg(value_name = "CHANNEL")]
    pub channel: String,
    /// Configuration file (default: ./recur.toml when present).
    #[arg(long, value_name = "FILE", env = "RECUR_CONFIG")]
    pub config: Option<PathBuf>,
}

/// `recur outbox` subcommands.
#[derive(Debug, Clone, clap::Subcommand)]
pub enum OutboxCommand {
    /// Send the outbox's due deliveries now (what `scan --no-notify` recorded, retries whose backoff has passed).
    Flush(FlushArgs),
    /// List every outbox entry: channel, status, attempts, next attempt and last error.
    List(ListArgs),
}

/// `recur outbox flush` flags.
#[derive(Debug, Clone, clap::Args)]
pub struct FlushArgs {
    /// Also retry pending deliveries whose backoff has not passed yet.
    #[arg(long)]
    pub force: bool,
    /// Directory of rule files (notifications are rendered from the current rules).
    #[arg(long, value_name = "DIR", default_value = "rules", env = "RECUR_RULES")]
    pub rules: PathBuf,
    /// Configuration file (default: ./recur.toml when present).
    #[arg(long, value_name = "FILE", env = "RECUR_CONFIG")]
    pub config: Option<PathBuf>,
    /// State database (default: .recur/state.db, or the config's `[state] path`).
    #[arg(long, value_name = "PATH", env = "RECUR_STATE")]
    pub state: Option<PathBuf>,
    /// Output: a readable summary, or JSON (console notifications as JSON lines on stderr).
    #[arg(long, value_enum, default_value = "human")]
    pub format: OutputFormat,
}

/// `recur outbox list` flags.
#[derive(Debug, Clone, clap::Args)]
pub struct ListArgs {
    /// Configuration file (default: ./recur.toml when present).
    #[arg(long, value_name = "FILE", env = "RECUR_CONFIG")]
    pub config: Option<PathBuf>,
    /// State database (default: .recur/state.db, or the config's `[state] path`).
    #[arg(long, value_name = "PATH", env = "RECUR_STATE")]
    pub state: Option<PathBuf>,
    /// Output: a table, or JSON.
    #[arg(long, value_enum, default_value = "human")]
    pub format: OutputFormat,
}

fn redactor(config: &Config) -> anyhow::Result<Redactor> {
    Ok(Redactor::new(
        &config.redact.fields,
        &config.redact.patterns,
    )?)
}

/// Runs `recur notify-test`: exit 0 when the channel accepted the test, 2 otherwise.
pub fn run_test(
    args: &NotifyTestArgs,
    color: bool,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> anyhow::Result<i32> {
    let Some(config) = common::load_config(args.config.as_deref(), color, err)? else {
        return Ok(2);
    };
    let redactor = redactor(&config)?;
    let name = &args.channel;
    if !config.has_channel(name) {
        let defined: Vec<&str> = config.channels.keys().map(String::as_str).collect();
        writeln!(
            err,
            "error: channel `{name}` is not defined in {} (defined: {})",
            config.display_name(),
            if defined.is_empty() {
                "none; `console` always exists".to_string()
            } else {
                format!("{}, console", defined.join(", "))
            }
        )?;
        return Ok(2);
    }
    let kind = config.channels.get(name).map_or("console", |c| c.kind());
    let n = Notification::test_message(name, Timestamp::now());
    let result = sink::channel(name, &config, false).and_then(|c| c.send(&n));
    match result {
        Ok(()) => {
            writeln!(
                out,
                "sent a test notification through channel `{name}` ({kind}); dedup key {}",
                n.dedup_key
            )?;
            Ok(0)
        }
        Err(e) => {
            writeln!(
                err,
                "error: test notification not delivered: {}",
                redactor.text(&e.0)
            )?;
            Ok(2)
        }
    }
}

/// Runs `recur outbox flush|list`.
pub fn run_outbox(
    cmd: &OutboxCommand,
    color: bool,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> anyhow::Result<i32> {
    match cmd {
        OutboxCommand::Flush(a) => flush(a, color, out, err),
        OutboxCommand::List(a) => list(a, color, out, err),
    }
}

fn flush(
    args: &FlushArgs,
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
    if !path.exists() {
        writeln!(
            err,
            "error: no state at {} (nothing was ever recorded)",
            path.display()
        )?;
        return Ok(2);
    }
    let mut store = match common::open_store(false, &path) {
        Ok(s) => s,
        Err(e) => {
            writeln!(err, "error: {e}")?;
            return Ok(2);
        }
    };
    let redactor = redactor(&config)?;
    let json = args.format == OutputFormat::Json;
    let due = if args.force { Due::All } else { Due::Backoff };
    let stats = sink::drain_with(
        store.as_mut(),
        &loaded.rules,
        &config,
        &redactor,
        json,
        Timestamp::now(),
        due,
    )?;
    if json {
        crate::report::write_json(&mut *out, &stats)?;
    } else {
        for e in &stats.errors {
            writeln!(err, "warning: {e}")?;
        }
        writeln!(
            out,
            "outbox: {} sent, {} to retry, {} given up, {} deferred",
            stats.sent, stats.retrying, stats.failed, stats.deferred
        )?;
    }
    Ok(if stats.errors.is_empty() && loaded.invalid_files == 0 {
        0
    } else {
        2
    })
}

fn list(
    args: &ListArgs,
    color: bool,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> anyhow::Result<i32> {
    let Some(config) = common::load_config(args.config.as_deref(), color, err)? else {
        return Ok(2);
    };
    let path = common::state_path(args.state.as_deref(), &config);
    let rows: Vec<Delivery> = if path.exists() {
        match crate::store::SqliteStore::open_read_only(&path) {
            Ok(s) => crate::store::Store::deliveries(&s, None)?,
            Err(e) => {
                writeln!(err, "error: {e}")?;
                return Ok(2);
            }
        }
    } else {
        Vec::new()
    };
    if args.format == OutputFormat::Json {
        crate::report::write_json(&mut *out, &rows)?;
        return Ok(0);
    }
    let cells: Vec<Vec<String>> = rows
        .iter()
        .map(|d| {
            vec![
                d.key.clone(),
                d.channel.clone(),
                d.status.as_str().to_string(),
                d.attempts.to_string(),
                d.next_attempt
                    .map(format_time)
                    .unwrap_or_else(|| "-".into()),
                d.last_error.clone().unwrap_or_else(|| "-".into()),
            ]
        })
        .collect();
    write!(
        out,
        "{}",
        table(
            &[
                "KEY",
                "CHANNEL",
                "STATUS",
                "ATTEMPTS",
                "NEXT ATTEMPT",
                "LAST ERROR"
            ],
            &cells
        )
    )?;
    writeln!(out)?;
    Ok(0)
}
