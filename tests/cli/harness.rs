//! The one way these tests run the binary, and scratch paths that the
//! `tempfile` crate removes when they drop, so a run leaves nothing behind.
#![allow(dead_code)] // not every module uses every helper

use std::ffi::OsStr;
use std::ops::Deref;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The `speclight` binary with `args`, run from the crate root (so
/// `data/...` paths resolve), stdin closed; waits for it to exit.
pub fn speclight<S: AsRef<OsStr>>(args: &[S]) -> Output {
    command(args).output().expect("the speclight binary runs")
}

/// The `speclight` command with `args`, not yet started (for piping).
pub fn command<S: AsRef<OsStr>>(args: &[S]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_speclight"));
    cmd.args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .stdin(std::process::Stdio::null());
    cmd
}

/// [`speclight`]'s run as (success, stdout, stderr), both streams as text.
pub fn speclight_text(args: &[&str]) -> (bool, String, String) {
    let out = speclight(args);
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The run's stdout parsed as JSON, after asserting it succeeded.
pub fn stdout_json(out: &Output) -> serde_json::Value {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("stdout is JSON")
}

/// Exactly one line on stderr, a non-zero exit, and no panic text; returns the line.
pub fn assert_one_line_error(out: &Output) -> String {
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    assert_eq!(err.lines().count(), 1, "stderr: {err:?}");
    assert!(
        !err.contains("panicked") && !err.contains("RUST_BACKTRACE"),
        "{err}"
    );
    err
}

/// A path inside a fresh temporary directory; the directory and everything
/// in it are removed when this drops. Derefs to the path.
pub struct Scratch {
    path: PathBuf,
    _dir: tempfile::TempDir,
}

impl Scratch {
    /// Writes `content` to `name` inside this directory; returns the path as text.
    pub fn file(&self, name: &str, content: impl AsRef<[u8]>) -> String {
        let path = self.path.join(name);
        std::fs::write(&path, content).expect("write a scratch file");
        path.to_str().expect("utf-8 temp path").to_string()
    }
}

impl Deref for Scratch {
    type Target = Path;
    fn deref(&self) -> &Path {
        &self.path
    }
}

impl AsRef<Path> for Scratch {
    fn as_ref(&self) -> &Path {
        &self.path
    }
}

fn fresh_dir(tag: &str) -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix(&format!("speclight-{tag}-"))
        .tempdir()
        .expect("a temporary directory")
}

/// A fresh, empty scratch directory.
pub fn scratch(tag: &str) -> Scratch {
    let dir = fresh_dir(tag);
    Scratch {
        path: dir.path().to_path_buf(),
        _dir: dir,
    }
}

/// A path named `name` in a fresh scratch directory; the file does not exist yet.
pub fn tmp(name: &str) -> Scratch {
    let dir = fresh_dir("out");
    Scratch {
        path: dir.path().join(name),
        _dir: dir,
    }
}

/// A file named `name` holding `content`, in a fresh scratch directory.
pub fn temp_file(name: &str, content: &str) -> Scratch {
    let file = tmp(name);
    std::fs::write(&file, content).expect("write a scratch file");
    file
}
