//! `recur state …`: maintenance of the state database.

use std::io::Write;
use std::path::PathBuf;

use jiff::{SignedDuration, Timestamp};

use super::common;
use crate::duration::parse_duration;
use crate::store::{SqliteStore, Store};

/// `recur state` subcommands.
#[derive(Debug, Clone, clap::Subcommand)]
pub enum StateCommand {
    /// Delete occurrences, coverage, episodes, settled notifications and input fingerprints older than a duration; pruned events are never counted or notified again.
    Prune(PruneArgs),
    /// Upgrade the state database to this recur's schema (read-only commands never do).
    Migrate(MigrateArgs),
}

/// `recur state migrate` flags.
#[derive(Debug, Clone, clap::Args)]
pub struct MigrateArgs {
    /// Configuration file (default: ./recur.toml when present).
    #[arg(long, value_name = "FILE", env = "RECUR_CONFIG")]
    pub config: Option<PathBuf>,
    /// State database (default: .recur/state.db, or the config's `[state] path`).
    #[arg(long, value_name = "PATH", env = "RECUR_STATE")]
    pub state: Option<PathBuf>,
}

/// `recur state prune` flags.
#[derive(Debug, Clone, clap::Args)]
pub struct PruneArgs {
    /// Age (event time for occurrences and coverage, creation time otherwise), e.g. `90d`.
    #[arg(long, value_name = "DURATION", value_parser = parse_age)]
    pub older_than: SignedDuration,
    /// Configuration file (default: ./recur.toml when present).
    #[arg(long, value_name = "FILE", env = "RECUR_CONFIG")]
    pub config: Option<PathBuf>,
    /// State database (default: .recur/state.db, or the config's `[state] path`).
    #[arg(long, value_name = "PATH", env = "RECUR_STATE")]
    pub state: Option<PathBuf>,
}

fn parse_age(s: &str) -> Result<SignedDuration, String> {
    parse_duration(s).map_err(|e| e.to_string())
}

pub fn run(
    cmd: &StateCommand,
    color: bool,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> anyhow::Result<i32> {
    match cmd {
        StateCommand::Migrate(a) => {
            let Some(config) = common::load_config(a.config.as_deref(), color, err)? else {
                return Ok(2);
            };
            let path = common::state_path(a.state.as_deref(), &config);
            if !path.exists() {
                writeln!(err, "error: no state file at {}", path.display())?;
                return Ok(2);
            }
            match SqliteStore::open(&path) {
                Ok(_) => {
                    writeln!(
                        out,
                        "state database {} is at schema version {}",
                        path.display(),
                        crate::store::sqlite::SCHEMA_VERSION
                    )?;
                    Ok(0)
                }
                Err(e) => {
                    writeln!(err, "error: {e}")?;
                    Ok(2)
                }
            }
        }
        StateCommand::Prune(a) => {
            let Some(config) = common::load_config(a.config.as_deref(), color, err)? else {
                return Ok(2);
            };
            let path = common::state_path(a.state.as_deref(), &config);
            if !path.exists() {
                writeln!(
                    err,
                    "error: no state file at {} (nothing to prune)",
                    path.display()
                )?;
                return Ok(2);
            }
            let mut store = match SqliteStore::open(&path) {
                Ok(s) => s,
                Err(e) => {
                    writeln!(err, "error: {e}")?;
                    return Ok(2);
                }
            };
            let before = Timestamp::now() - a.older_than;
            let st = store.prune(before)?;
            writeln!(
                out,
                "pruned {} occurrences, {} coverage cells, {} episodes, {} notifications, {} input fingerprints older than {}",
                st.occurrences,
                st.coverage,
                st.episodes,
                st.intents,
                st.inputs,
                crate::report::format_time(before)
            )?;
            Ok(0)
        }
    }
}
