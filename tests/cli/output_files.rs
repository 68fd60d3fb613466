//! Where output goes (issue 12, items 1 and 11): `--out` writes through
//! special files and symbolic links instead of replacing them, keeps the
//! atomic rename for regular files, and a closed stdout ends every command
//! quietly, killed by `SIGPIPE` as `cat` is (shell status 141).

use crate::harness::{command, scratch, speclight};
use std::io::{BufRead, BufReader};
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::Stdio;

const BUILD: [&str; 6] = [
    "build",
    "--dist",
    "0.5,0.3,0.2",
    "--capacity",
    "12",
    "--json",
];

/// What `build` prints to stdout: the bytes every `--out` below must receive.
fn expected() -> Vec<u8> {
    let out = speclight(&BUILD);
    assert!(out.status.success());
    out.stdout
}

fn build_into(out: &Path) {
    let run = speclight(&[&BUILD[..], &["--out", out.to_str().unwrap()]].concat());
    assert!(
        run.status.success(),
        "--out {}: {}",
        out.display(),
        String::from_utf8_lossy(&run.stderr)
    );
}

#[test]
fn out_dev_null_stays_a_character_device() {
    build_into(Path::new("/dev/null"));
    let kind = std::fs::metadata("/dev/null").unwrap().file_type();
    if !kind.is_char_device() {
        // The old atomic rename, run as root, replaced /dev/null by a file:
        // repair the machine (possible only as root) before failing.
        let _ = std::fs::remove_file("/dev/null");
        let _ = std::process::Command::new("mknod")
            .args(["-m", "666", "/dev/null", "c", "1", "3"])
            .status();
    }
    assert!(kind.is_char_device(), "/dev/null is now {kind:?}");
}

#[test]
fn out_fifo_is_written_through_and_stays_a_fifo() {
    let dir = scratch("fifo");
    let fifo = dir.join("pipe");
    let made = std::process::Command::new("mkfifo").arg(&fifo).status();
    assert!(made.unwrap().success(), "mkfifo");
    // A second name for the FIFO, to unblock the reader if the FIFO's own
    // name were replaced (the old behaviour) instead of hanging the test.
    let alias = dir.join("pipe-alias");
    std::fs::hard_link(&fifo, &alias).unwrap();
    let reader = {
        let fifo = fifo.clone();
        std::thread::spawn(move || std::fs::read(fifo).unwrap())
    };
    build_into(&fifo);
    {
        use std::os::unix::fs::OpenOptionsExt;
        // No reader left: ENXIO, ignored. A reader still waiting: EOF for it.
        let _ = std::fs::OpenOptions::new()
            .write(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(&alias);
    }
    let received = reader.join().unwrap();
    assert!(std::fs::symlink_metadata(&fifo)
        .unwrap()
        .file_type()
        .is_fifo());
    assert_eq!(received, expected());
}

#[test]
fn out_through_a_symlink_writes_its_target_and_keeps_the_link() {
    let dir = scratch("symlink");
    std::fs::create_dir(dir.join("real")).unwrap();
    let target = dir.join("real").join("tree.json");
    std::fs::write(&target, "old contents\n").unwrap();
    let link = dir.join("tree.json");
    std::os::unix::fs::symlink("real/tree.json", &link).unwrap();
    build_into(&link);
    assert!(link.symlink_metadata().unwrap().file_type().is_symlink());
    assert_eq!(std::fs::read(&target).unwrap(), expected());
    // A dangling link: the file is created where the link points.
    let dangling = dir.join("new.json");
    std::os::unix::fs::symlink("real/new.json", &dangling).unwrap();
    build_into(&dangling);
    assert!(dangling
        .symlink_metadata()
        .unwrap()
        .file_type()
        .is_symlink());
    assert_eq!(
        std::fs::read(dir.join("real/new.json")).unwrap(),
        expected()
    );
    // No temporary file is left anywhere.
    assert_eq!(std::fs::read_dir(dir.join("real")).unwrap().count(), 2);
    assert_eq!(std::fs::read_dir(&*dir).unwrap().count(), 3);
}

#[test]
fn out_regular_file_is_replaced_whole_and_keeps_its_mode() {
    let dir = scratch("regular");
    let file = dir.join("tree.json");
    std::fs::write(&file, "x".repeat(100_000)).unwrap();
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o640)).unwrap();
    build_into(&file);
    assert_eq!(std::fs::read(&file).unwrap(), expected());
    let mode = std::fs::metadata(&file).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o640);
}

#[test]
fn out_a_descriptor_alias_writes_to_that_descriptor() {
    // /dev/fd/1 is this run's stdout (a pipe): the old code tried to create
    // a temporary file next to it, in /proc, and failed.
    let run = speclight(&[&BUILD[..], &["--out", "/dev/fd/1"]].concat());
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    assert_eq!(run.stdout, expected());
}

/// Runs `args` with stdout piped, reads `lines` lines, closes the pipe, and
/// checks that the command died of SIGPIPE without a word on stderr.
fn assert_quiet_on_closed_pipe(args: &[&str], lines: usize) {
    let mut child = command(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    for _ in 0..lines {
        let mut line = String::new();
        stdout.read_line(&mut line).unwrap();
        assert!(!line.is_empty(), "{args:?} ended early");
    }
    drop(stdout);
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.is_empty(), "{args:?}: stderr {err:?}");
    assert_eq!(
        out.status.signal(),
        Some(libc::SIGPIPE),
        "{args:?}: {:?}",
        out.status
    );
}

#[test]
fn a_closed_stdout_ends_every_command_quietly() {
    // Outputs of ~100 KB, more than a pipe buffers, so the write after the
    // reader has gone is certain (`eval | head -2`, `build | head -1`).
    let dir = scratch("pipe");
    let tree = dir.join("chain.json");
    let tree = tree.to_str().unwrap();
    let chain = ["build", "--dist", "1", "--capacity", "5000", "--json"];
    build_into_args(&chain, tree);
    assert_quiet_on_closed_pipe(&["eval", "--tree", tree, "--verifier", "1"], 2);
    assert_quiet_on_closed_pipe(&chain, 1);
    assert_quiet_on_closed_pipe(&["convert", "--from", "json", "--to", "dot", tree], 0);
}

fn build_into_args(args: &[&str], out: &str) {
    let run = speclight(&[args, &["--out", out]].concat());
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
}

#[test]
fn demo_into_a_closed_pipe_ends_quietly() {
    // `demo | head -1`: the pipe closes while the demo is still computing.
    let dir = scratch("demo-pipe");
    let svg = dir.join("demo.svg");
    assert_quiet_on_closed_pipe(
        &[
            "demo",
            "--out",
            svg.to_str().unwrap(),
            "--prompts",
            "2",
            "--sequence-len",
            "16",
            "--context-stride",
            "16",
            "--max-capacity",
            "4",
            "--verifier-order",
            "2",
            "--train-bytes",
            "5000",
        ],
        0,
    );
}
