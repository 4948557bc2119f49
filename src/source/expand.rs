//! Expanding command-line paths into inputs.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use super::{Input, SourceError};

/// Expands `paths` into a sorted, de-duplicated list of inputs.
///
/// `-` is standard input; a directory is walked recursively (following symlinks, with loops
/// detected and reported rather than followed forever); a path that does not exist but contains
/// glob characters is expanded as a glob. Hidden files are read too: exported logs are often
/// named by tools we do not control. Every problem becomes a [`SourceError`] and the rest of the
/// inputs are still returned.
pub fn expand(paths: &[String]) -> (Vec<Input>, Vec<SourceError>) {
    let mut files = BTreeSet::new();
    let mut stdin = false;
    let mut errors = Vec::new();
    for raw in paths {
        if raw == "-" {
            stdin = true;
            continue;
        }
        let path = Path::new(raw);
        if path.exists() || path.symlink_metadata().is_ok() {
            add_path(path, &mut files, &mut errors);
        } else if raw.contains(['*', '?', '[']) {
            match glob::glob(raw) {
                Ok(entries) => {
                    let mut any = false;
                    for entry in entries {
                        match entry {
                            Ok(p) => {
                                any = true;
                                add_path(&p, &mut files, &mut errors);
                            }
                            Err(e) => errors.push(SourceError {
                                path: e.path().display().to_string(),
                                line: None,
                                message: e.error().to_string(),
                            }),
                        }
                    }
                    if !any {
                        errors.push(SourceError {
                            path: raw.clone(),
                            line: None,
                            message: "the glob matched no file".into(),
                        });
                    }
                }
                Err(e) => errors.push(SourceError {
                    path: raw.clone(),
                    line: None,
                    message: format!("invalid glob: {e}"),
                }),
            }
        } else {
            errors.push(SourceError {
                path: raw.clone(),
                line: None,
                message: "no such file or directory".into(),
            });
        }
    }
    let mut inputs: Vec<Input> = files.into_iter().map(Input::File).collect();
    if stdin {
        inputs.insert(0, Input::Stdin);
    }
    (inputs, errors)
}

fn add_path(path: &Path, files: &mut BTreeSet<PathBuf>, errors: &mut Vec<SourceError>) {
    match std::fs::metadata(path) {
        Ok(m) if m.is_dir() => walk_dir(path, files, errors),
        Ok(_) => {
            files.insert(path.to_path_buf());
        }
        Err(e) => errors.push(SourceError {
            path: path.display().to_string(),
            line: None,
            message: describe_io(&e),
        }),
    }
}

fn walk_dir(dir: &Path, files: &mut BTreeSet<PathBuf>, errors: &mut Vec<SourceError>) {
    for entry in walkdir::WalkDir::new(dir)
        .follow_links(true)
        .sort_by_file_name()
    {
        match entry {
            Ok(e) if e.file_type().is_file() => {
                files.insert(e.into_path());
            }
            Ok(_) => {}
            Err(e) => {
                let path = e
                    .path()
                    .map_or_else(|| dir.display().to_string(), |p| p.display().to_string());
                let message = if let Some(anc) = e.loop_ancestor() {
                    format!("symlink loop back to {} (not followed)", anc.display())
                } else if let Some(io) = e.io_error() {
                    describe_io(io)
                } else {
                    e.to_string()
                };
                errors.push(SourceError {
                    path,
                    line: None,
                    message,
                });
            }
        }
    }
}

/// An io::Error in words a user acts on.
pub fn describe_io(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::PermissionDenied => "permission denied (cannot read)".into(),
        std::io::ErrorKind::NotFound => "no such file or directory".into(),
        _ => e.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expands_dirs_globs_and_reports_missing() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::create_dir_all(d.join("sub/deeper")).unwrap();
        std::fs::write(d.join("a.log"), "x\n").unwrap();
        std::fs::write(d.join("sub/b.log"), "x\n").unwrap();
        std::fs::write(d.join("sub/deeper/c.json"), "x\n").unwrap();
        let (inputs, errors) = expand(&[
            d.display().to_string(),
            format!("{}/sub/*.log", d.display()),
            format!("{}/missing.log", d.display()),
            "-".into(),
        ]);
        assert_eq!(inputs.len(), 4, "{inputs:?}");
        assert_eq!(inputs[0], Input::Stdin);
        assert_eq!(errors.len(), 1);
        assert!(errors[0].message.contains("no such file"));
    }

    #[cfg(unix)]
    #[test]
    fn symlink_loop_is_reported_not_followed() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::create_dir(d.join("logs")).unwrap();
        std::fs::write(d.join("logs/a.log"), "x\n").unwrap();
        std::os::unix::fs::symlink(d.join("logs"), d.join("logs/loop")).unwrap();
        let (inputs, errors) = expand(&[d.join("logs").display().to_string()]);
        assert_eq!(inputs.len(), 1);
        assert_eq!(errors.len(), 1);
        assert!(errors[0].message.contains("symlink loop"), "{errors:?}");
    }
}
