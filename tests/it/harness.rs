//! A small builder around the `recur` binary: a temporary workspace, files, a command line,
//! and the outcome (exit code, stdout, stderr).

#![allow(dead_code)]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// A temporary working directory with rules, logs and state.
pub struct Workspace {
    pub dir: tempfile::TempDir,
}

impl Workspace {
    pub fn new() -> Self {
        Workspace {
            dir: tempfile::tempdir().expect("temp dir"),
        }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn join(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    /// Writes a file (creating parent directories) and returns its path.
    pub fn write(&self, rel: &str, contents: impl AsRef<[u8]>) -> PathBuf {
        let p = self.join(rel);
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent).unwrap();
        }
        std::fs::write(&p, contents).unwrap();
        p
    }

    /// Marks a file as last modified an hour ago: at rest, so that `scan` and `grep` read its
    /// chunks through a memory map (a file modified in the last seconds is read).
    pub fn age(&self, path: &Path) {
        std::fs::File::options()
            .write(true)
            .open(path)
            .unwrap()
            .set_modified(std::time::SystemTime::now() - std::time::Duration::from_secs(3600))
            .unwrap();
    }

    /// Writes a rule file `rules/<name>.toml`.
    pub fn rule(&self, name: &str, toml: &str) -> PathBuf {
        self.write(&format!("rules/{name}.toml"), toml)
    }

    /// Copies the repository's shipped rules into this workspace.
    pub fn shipped_rules(&self) {
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("rules");
        for e in std::fs::read_dir(src).unwrap() {
            let e = e.unwrap();
            std::fs::create_dir_all(self.join("rules")).unwrap();
            std::fs::copy(e.path(), self.join("rules").join(e.file_name())).unwrap();
        }
    }

    /// A command running `recur` in this workspace.
    pub fn recur(&self) -> Cmd {
        let mut c = Cmd::new();
        c.cmd.current_dir(self.path());
        c
    }
}

/// The repository root (for shipped examples).
pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A `recur` invocation being built.
pub struct Cmd {
    pub cmd: Command,
    stdin: Option<Vec<u8>>,
}

impl Cmd {
    pub fn new() -> Self {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_recur"));
        // Tests must not depend on the caller's environment.
        for (k, _) in std::env::vars_os() {
            if k.to_string_lossy().starts_with("RECUR_") {
                cmd.env_remove(&k);
            }
        }
        cmd.env_remove("NO_COLOR");
        Cmd { cmd, stdin: None }
    }

    pub fn arg(mut self, a: impl AsRef<std::ffi::OsStr>) -> Self {
        self.cmd.arg(a);
        self
    }

    pub fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<std::ffi::OsStr>,
    {
        self.cmd.args(args);
        self
    }

    pub fn env(mut self, k: &str, v: impl AsRef<std::ffi::OsStr>) -> Self {
        self.cmd.env(k, v);
        self
    }

    pub fn stdin(mut self, data: impl Into<Vec<u8>>) -> Self {
        self.stdin = Some(data.into());
        self
    }

    /// Runs to completion.
    pub fn run(mut self) -> Outcome {
        self.cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
        self.cmd.stdin(if self.stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        });
        let mut child = self.cmd.spawn().expect("spawn recur");
        if let Some(data) = self.stdin.take() {
            let mut sin = child.stdin.take().unwrap();
            std::thread::spawn(move || {
                let _ = sin.write_all(&data);
            });
        }
        let out = child.wait_with_output().expect("wait recur");
        Outcome {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }
}

/// What a run produced.
#[derive(Debug)]
pub struct Outcome {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Outcome {
    /// Asserts the exit code, showing both streams on failure.
    pub fn code(self, want: i32) -> Self {
        assert_eq!(
            self.code, want,
            "exit code\n--- stdout\n{}\n--- stderr\n{}",
            self.stdout, self.stderr
        );
        self
    }

    /// Parses stdout as one JSON document.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| {
            panic!(
                "stdout is not JSON ({e}):\n{}\n--- stderr\n{}",
                self.stdout, self.stderr
            )
        })
    }
}

/// Whether the tests run as root (permission bits do not apply to root).
pub fn is_root() -> bool {
    std::process::Command::new("id")
        .arg("-u")
        .output()
        .map(|o| o.stdout.starts_with(b"0\n"))
        .unwrap_or(false)
}

/// Lets an unprivileged user enter and read a workspace (for `run_as_nobody` runs).
pub fn open_up(dir: &Path) {
    use std::os::unix::fs::PermissionsExt;
    let _ = std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o777));
    for e in walk(dir) {
        let m = std::fs::metadata(&e).unwrap();
        if m.is_dir() {
            let _ = std::fs::set_permissions(&e, std::fs::Permissions::from_mode(0o777));
        } else if m.permissions().mode() & 0o777 != 0 {
            let _ = std::fs::set_permissions(&e, std::fs::Permissions::from_mode(0o666));
        }
    }
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() && !p.is_symlink() {
                out.extend(walk(&p));
            }
            out.push(p);
        }
    }
    out
}

impl Cmd {
    /// Runs as the unprivileged `nobody` user (the tests themselves run as root in CI).
    pub fn run_as_nobody(mut self) -> Self {
        use std::os::unix::process::CommandExt;
        self.cmd.uid(65534).gid(65534);
        self
    }
}
