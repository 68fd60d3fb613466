//! `speclight build --format vllm|medusa` and `speclight convert` end to end.

use std::path::PathBuf;
use std::process::Command;

fn speclight(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_speclight"))
        .args(args)
        .output()
        .expect("run speclight");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn temp_file(name: &str, content: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("speclight-convert-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join(name);
    std::fs::write(&path, content).expect("write temp file");
    path
}

#[test]
fn every_format_round_trips_through_the_cli() {
    let (ok, vllm, err) = speclight(&[
        "build",
        "--dist",
        "0.5,0.3,0.2",
        "--capacity",
        "12",
        "--format",
        "vllm",
    ]);
    assert!(ok, "{err}");
    let (ok, medusa, _) = speclight(&[
        "build",
        "--dist",
        "0.5,0.3,0.2",
        "--capacity",
        "12",
        "--format",
        "medusa",
    ]);
    assert!(ok);
    let vllm_file = temp_file("tree.txt", &vllm);
    let (ok, medusa2, err) = speclight(&[
        "convert",
        "--from",
        "vllm",
        "--to",
        "medusa",
        vllm_file.to_str().unwrap(),
    ]);
    assert!(ok, "{err}");
    assert_eq!(medusa2, medusa);
    let medusa_file = temp_file("tree.json", &medusa);
    let (ok, json, _) = speclight(&[
        "convert",
        "--from",
        "medusa",
        "--to",
        "json",
        medusa_file.to_str().unwrap(),
    ]);
    assert!(ok);
    let json_file = temp_file("tree-full.json", &json);
    let (ok, vllm2, _) = speclight(&[
        "convert",
        "--from",
        "json",
        "--to",
        "vllm",
        json_file.to_str().unwrap(),
    ]);
    assert!(ok);
    assert_eq!(vllm2, vllm);
    let (ok, dot, _) = speclight(&[
        "convert",
        "--from",
        "vllm",
        "--to",
        "dot",
        vllm_file.to_str().unwrap(),
    ]);
    assert!(ok);
    assert_eq!(dot.matches("->").count(), 12);
    for f in [vllm_file, medusa_file, json_file] {
        let _ = std::fs::remove_file(f);
    }
}

#[test]
fn a_gap_is_one_line_on_stderr() {
    let bad = temp_file("gap.txt", "[(0,), (1, 2)]");
    let (ok, out, err) = speclight(&[
        "convert",
        "--from",
        "vllm",
        "--to",
        "json",
        bad.to_str().unwrap(),
    ]);
    assert!(!ok);
    assert!(out.is_empty());
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("no parent path [1]"), "{err}");
    let _ = std::fs::remove_file(bad);
}
