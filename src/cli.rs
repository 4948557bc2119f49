//! Command-line interface (clap derive). Each mode owns its flags; this file composes them.

use std::io::IsTerminal;
use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};

use crate::mode;

/// recur: catch the comeback of errors you already analysed and fixed.
///
/// Each rule file in `rules/` tracks one remediation: the error's signature, the fix and its
/// time, the owner and the link to the analysis. recur reads structured logs, finds the
/// error's occurrences, tells recurrences (after the fix) apart and notifies the owner once.
#[derive(Debug, Parser)]
#[command(name = "recur", version, about, long_about, max_term_width = 100)]
pub struct Cli {
    /// When to colour output: auto (a terminal without NO_COLOR), always, never.
    #[arg(
        long,
        global = true,
        value_enum,
        default_value = "auto",
        env = "RECUR_COLOR"
    )]
    pub color: ColorChoice,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ColorChoice {
    Auto,
    Always,
    Never,
}

impl ColorChoice {
    /// Whether to colour a stream, honouring NO_COLOR (https://no-color.org).
    pub fn enabled(self, is_terminal: bool) -> bool {
        match self {
            ColorChoice::Always => true,
            ColorChoice::Never => false,
            ColorChoice::Auto => {
                is_terminal && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
            }
        }
    }
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Scan logs (cron batch): count occurrences before and after each fix, record episodes, notify.
    Scan(mode::scan::ScanArgs),
    /// Search logs ad hoc (read-only): matching events, counts by field, or a timeline.
    Grep(mode::grep::GrepArgs),
    /// Show every remediation's verdict from the state (did the fixes hold?).
    Status(mode::status::StatusArgs),
    /// Validate rule files and recur.toml; report every error with its location.
    Check(RulesArgs),
    /// Run every rule's [[example]] lines and report pass/fail.
    Test(RulesArgs),
    /// Send a clearly marked test notification through one channel; exit 0 if it was accepted, 2 with the precise failure otherwise.
    NotifyTest(mode::notify::NotifyTestArgs),
    /// Work the notification outbox: send due deliveries now, or list them.
    #[command(subcommand)]
    Outbox(mode::notify::OutboxCommand),
    /// Follow live log files (sidecar): through rotation, truncation and restarts, notifying as episodes open.
    Watch(mode::watch::WatchArgs),
    /// Maintain the state database.
    #[command(subcommand)]
    State(mode::state::StateCommand),
}

/// Flags of `check` and `test`.
#[derive(Debug, Clone, clap::Args)]
pub struct RulesArgs {
    /// Directory of rule files.
    #[arg(long, value_name = "DIR", default_value = "rules", env = "RECUR_RULES")]
    pub rules: PathBuf,
    /// Configuration file (default: ./recur.toml when present).
    #[arg(long, value_name = "FILE", env = "RECUR_CONFIG")]
    pub config: Option<PathBuf>,
}

/// Runs the parsed command line and returns the process exit code.
pub fn run(cli: Cli) -> anyhow::Result<i32> {
    let stdout = std::io::stdout();
    let stderr = std::io::stderr();
    let color_out = cli.color.enabled(stdout.is_terminal());
    let color_err = cli.color.enabled(stderr.is_terminal());
    if let Command::Watch(a) = &cli.command {
        // The sidecar's threads (outbox, metrics) log too: nobody may hold the stderr lock.
        return mode::watch::run(a, color_err, &mut std::io::stderr());
    }
    let mut out = stdout.lock();
    let mut err = stderr.lock();
    match &cli.command {
        Command::Scan(a) => mode::scan::run(a, color_out, &mut out, &mut err),
        Command::Grep(a) => mode::grep::run(a, color_out, color_err, &mut out, &mut err),
        Command::Watch(_) => unreachable!("run above"),
        Command::Status(a) => mode::status::run(a, color_out, &mut out, &mut err),
        Command::Check(a) => {
            let config = a
                .config
                .clone()
                .or_else(|| Some(PathBuf::from("recur.toml")).filter(|p| p.exists()));
            mode::check::run(&a.rules, config.as_deref(), color_err, &mut out, &mut err)
        }
        Command::NotifyTest(a) => mode::notify::run_test(a, color_err, &mut out, &mut err),
        Command::Outbox(c) => mode::notify::run_outbox(c, color_err, &mut out, &mut err),
        Command::State(c) => mode::state::run(c, color_err, &mut out, &mut err),
        Command::Test(a) => {
            let config = a
                .config
                .clone()
                .or_else(|| Some(PathBuf::from("recur.toml")).filter(|p| p.exists()));
            mode::test::run(&a.rules, config.as_deref(), color_out, &mut out, &mut err)
        }
    }
}
