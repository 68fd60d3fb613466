//! `speclight build --format vllm|medusa` and `speclight convert` end to end
//! (vLLM drafts only level-uniform trees: issue 13).

use crate::harness::{speclight_text as speclight, temp_file};

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
        "--level-uniform",
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
        "--level-uniform",
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
    assert_eq!(dot.matches("->").count(), vllm.matches('(').count());
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

/// Issue 12, item 8: rank paths are quadratic in depth. `build --dist 1
/// --capacity 20000 --format vllm` wrote 600 MB (4 GB of memory); now it is
/// refused before anything is built or written, in both rank-path formats
/// and in `convert`.
#[test]
fn deep_rank_paths_are_refused_in_one_line() {
    let limit = "above the limit of 16777216";
    // `--max-rank 10` spelled out: otherwise `--format medusa` first says on
    // stderr that it applies that default (issue 13), a line of its own.
    for format in ["vllm", "medusa"] {
        let (ok, out, err) = speclight(&[
            "build",
            "--dist",
            "1",
            "--capacity",
            "20000",
            "--format",
            format,
            "--max-rank",
            "10",
        ]);
        assert!(!ok, "{format}");
        assert!(out.is_empty(), "{format}: {} bytes written", out.len());
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(
            err.contains("200010000 tokens") && err.contains(limit),
            "{err}"
        );
    }
    let (ok, json, err) = speclight(&[
        "build",
        "--dist",
        "1",
        "--capacity",
        "6000",
        "--format",
        "json",
    ]);
    assert!(ok, "{err}");
    let deep = temp_file("deep-chain.json", &json);
    let (ok, out, err) = speclight(&[
        "convert",
        "--from",
        "json",
        "--to",
        "vllm",
        deep.to_str().unwrap(),
    ]);
    assert!(!ok && out.is_empty());
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains("18003000 tokens") && err.contains(limit),
        "{err}"
    );
    let _ = std::fs::remove_file(deep);
}

/// Issue 12, item 12: `build --dist 1 --capacity 100000` (text) overflowed
/// the stack (SIGABRT). The text tree renders iteratively now; its size is
/// quadratic in depth like rank paths (this one would be 15 GB), so past the
/// same limit it is one error line, and below it the whole tree is printed.
#[test]
fn deep_text_trees_render_or_are_refused_in_one_line() {
    let (ok, out, err) = speclight(&["build", "--dist", "1", "--capacity", "100000"]);
    assert!(!ok && out.is_empty());
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("above the limit of 16777216"), "{err}");
    let (ok, out, err) = speclight(&["build", "--dist", "1", "--capacity", "5000"]);
    assert!(ok, "{err}");
    let tree_lines: Vec<&str> = out.lines().skip(4).collect();
    assert_eq!(tree_lines.len(), 5000);
    let deepest = format!("{}└─ 0  q=1.0000  path=1.0000", "   ".repeat(4999));
    assert_eq!(tree_lines[4999], deepest);
}
