//! `recur check`: validates every rule file and `recur.toml`, reporting every error.
//!
//! Meant for CI on the repository that holds the rules: it never reads logs or state, so it
//! runs anywhere. Exit codes: 0 all valid, 1 a rule or the config is invalid, 2 the rules
//! directory or the named config file cannot be read.

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::config::{Config, validate_rule_channels};
use crate::diag::{Diagnostic, SourceText, render};
use crate::rule::{LoadedRules, load_rules_dir};

/// `recur.toml` as read for `check` and `test`: the config (defaults when invalid or not
/// given), its text for rendering, and its problems.
pub(crate) struct ConfigFile {
    pub config: Config,
    pub source: Option<SourceText>,
    pub diagnostics: Vec<Diagnostic>,
}

/// Inputs that `check` and `test` cannot use at all (exit 2), as opposed to invalid ones.
#[derive(Debug, thiserror::Error)]
pub(crate) enum InputError {
    #[error("cannot read rules directory {}: {source}", .dir.display())]
    RulesDir {
        dir: PathBuf,
        source: std::io::Error,
    },
    #[error("config file {} not found", .0.display())]
    ConfigMissing(PathBuf),
    #[error("cannot read config file {}: {source}", .path.display())]
    ConfigUnreadable {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// Reads the config file if one is named. A file that is named but cannot be read is an
/// error of the invocation (exit 2), not a problem of the config.
pub(crate) fn read_config(path: Option<&Path>) -> Result<ConfigFile, InputError> {
    let Some(path) = path else {
        return Ok(ConfigFile {
            config: Config::default(),
            source: None,
            diagnostics: Vec::new(),
        });
    };
    let text = std::fs::read_to_string(path).map_err(|source| match source.kind() {
        std::io::ErrorKind::NotFound => InputError::ConfigMissing(path.to_path_buf()),
        _ => InputError::ConfigUnreadable {
            path: path.to_path_buf(),
            source,
        },
    })?;
    let (config, diagnostics) = match Config::parse(path, &text) {
        Ok(c) => (c, Vec::new()),
        Err(d) => (Config::default(), d),
    };
    Ok(ConfigFile {
        config,
        source: Some(SourceText::new(path, text)),
        diagnostics,
    })
}

/// Loads the rules directory.
pub(crate) fn read_rules(dir: &Path) -> Result<LoadedRules, InputError> {
    load_rules_dir(dir).map_err(|source| InputError::RulesDir {
        dir: dir.to_path_buf(),
        source,
    })
}

/// `n thing` / `n things`.
pub(crate) fn plural(n: usize, word: &str) -> String {
    if n == 1 {
        format!("{n} {word}")
    } else {
        format!("{n} {word}s")
    }
}

/// Runs `recur check`; diagnostics go to `err`, the one-line summary to `out`.
pub fn run(
    rules_dir: &Path,
    config_path: Option<&Path>,
    color: bool,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> anyhow::Result<i32> {
    let rules = match read_rules(rules_dir) {
        Ok(r) => r,
        Err(msg) => {
            writeln!(err, "error: {msg}")?;
            return Ok(2);
        }
    };
    let cfg = match read_config(config_path) {
        Ok(c) => c,
        Err(msg) => {
            writeln!(err, "error: {msg}")?;
            return Ok(2);
        }
    };

    let mut diagnostics = rules.diagnostics.clone();
    // Channel names can only be checked against a config that was read without errors;
    // otherwise every rule would repeat the config's own problem.
    if cfg.diagnostics.is_empty() {
        diagnostics.extend(validate_rule_channels(&rules, &cfg.config));
    }
    diagnostics.extend(cfg.diagnostics.iter().cloned());

    let mut sources = rules.sources.clone();
    sources.extend(cfg.source.iter().cloned());
    // File order (rules by name, then the config), and top to bottom within a file.
    let file_index = |d: &Diagnostic| {
        sources
            .iter()
            .position(|s| s.path == d.path)
            .unwrap_or(usize::MAX)
    };
    diagnostics.sort_by_key(|d| (file_index(d), d.span.as_ref().map(|s| s.start)));

    if !diagnostics.is_empty() {
        write!(err, "{}", render(&diagnostics, &sources, color))?;
    }
    if rules.file_count() == 0 {
        writeln!(
            err,
            "warning: no rule files (*.toml) in {}",
            rules_dir.display()
        )?;
    }

    let files = plural(rules.file_count(), "rule file");
    let checked = match &cfg.source {
        Some(s) => format!("{files} and {}", s.path.display()),
        None => files,
    };
    if diagnostics.is_empty() {
        let mut line = format!("{} OK", plural(rules.remediations.len(), "rule"));
        if let Some(s) = &cfg.source {
            line.push_str(&format!(", {} OK", s.path.display()));
        }
        writeln!(out, "{line}")?;
        Ok(0)
    } else {
        let mut bad: Vec<&Path> = diagnostics.iter().map(|d| d.path.as_path()).collect();
        bad.sort();
        bad.dedup();
        writeln!(
            out,
            "checked {checked}: {} in {}",
            plural(diagnostics.len(), "error"),
            plural(bad.len(), "file")
        )?;
        Ok(1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = "id = \"R1\"\ntitle = \"t\"\nowner = \"o\"\nanalysis = \"a\"\n\
                        [fix]\nstatus = \"open\"\n[[signature]]\nx = 1\n";

    fn run_in(dir: &Path, config: Option<&Path>) -> (i32, String, String) {
        let mut out = Vec::new();
        let mut err = Vec::new();
        let code = run(dir, config, false, &mut out, &mut err).unwrap();
        (
            code,
            String::from_utf8(out).unwrap(),
            String::from_utf8(err).unwrap(),
        )
    }

    #[test]
    fn all_valid() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a.toml"), GOOD).unwrap();
        std::fs::write(dir.path().join("b.toml"), GOOD.replace("R1", "R2")).unwrap();
        let (code, out, err) = run_in(dir.path(), None);
        assert_eq!((code, out.as_str(), err.as_str()), (0, "2 rules OK\n", ""));

        let cfg = dir.path().join("recur.conf");
        std::fs::write(&cfg, "[channels.oncall]\ntype = \"console\"\n").unwrap();
        let (code, out, _) = run_in(dir.path(), Some(&cfg));
        assert_eq!(code, 0);
        assert_eq!(out, format!("2 rules OK, {} OK\n", cfg.display()));
    }

    #[test]
    fn reports_every_error_and_fails() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a.toml"), GOOD).unwrap();
        std::fs::write(
            dir.path().join("b.toml"),
            GOOD.replace("R1", "R2").replace("owner", "ownr"),
        )
        .unwrap();
        let cfg = dir.path().join("recur.conf");
        std::fs::write(&cfg, "[input]\nformat = \"jsn\"\n").unwrap();
        let (code, out, err) = run_in(dir.path(), Some(&cfg));
        assert_eq!(code, 1);
        assert_eq!(
            out,
            format!(
                "checked 2 rule files and {}: 2 errors in 2 files\n",
                cfg.display()
            )
        );
        // b.toml: unknown `ownr` (whose hint stands in for "missing `owner`"); the config:
        // unknown format.
        assert!(err.contains("error: unknown key `ownr`"), "{err}");
        assert!(err.contains("b.toml:3:1"), "{err}");
        assert!(err.contains("did you mean `owner`?"), "{err}");
        assert!(err.contains("error: unknown format `jsn`"), "{err}");
        assert!(err.contains("recur.conf:2:10"), "{err}");
        // Rules come before the config.
        assert!(err.find("ownr").unwrap() < err.find("jsn").unwrap());
    }

    #[test]
    fn unknown_rule_channels_fail() {
        let dir = tempfile::tempdir().unwrap();
        let rule = format!("{GOOD}[alert]\nchannels = [\"pager\"]\n");
        std::fs::write(dir.path().join("a.toml"), rule).unwrap();
        let (code, out, err) = run_in(dir.path(), None);
        assert_eq!(code, 1);
        assert_eq!(out, "checked 1 rule file: 1 error in 1 file\n");
        assert!(err.contains("unknown channel `pager`"), "{err}");
        assert!(err.contains("a.toml:10:13"), "{err}");
    }

    #[test]
    fn missing_inputs_are_exit_2() {
        let dir = tempfile::tempdir().unwrap();
        let (code, out, err) = run_in(&dir.path().join("nope"), None);
        assert_eq!(code, 2);
        assert_eq!(out, "");
        assert!(
            err.starts_with("error: cannot read rules directory"),
            "{err}"
        );

        let (code, _, err) = run_in(dir.path(), Some(&dir.path().join("recur.toml")));
        assert_eq!(code, 2);
        assert!(err.contains("recur.toml not found"), "{err}");
    }

    #[test]
    fn empty_directory_is_ok_with_a_warning() {
        let dir = tempfile::tempdir().unwrap();
        let (code, out, err) = run_in(dir.path(), None);
        assert_eq!(code, 0);
        assert_eq!(out, "0 rules OK\n");
        assert!(err.starts_with("warning: no rule files"), "{err}");
    }
}
