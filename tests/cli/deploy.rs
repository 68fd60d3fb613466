//! Issue 13 through the CLI: `speclight deploy`, `build --level-uniform /
//! --max-rank`, and the vLLM / Medusa refusals (one stderr line, nothing
//! written).

use crate::harness::{speclight_text as speclight, tmp, Scratch};

const VECTOR: &str = "0.634,0.108,0.057,0.034,0.023,0.016,0.012,0.009,0.007,0.005";

/// A path in a fresh temporary directory, removed when dropped.
fn scratch(name: &str) -> Scratch {
    tmp(name)
}

/// Runs a command that must fail: one stderr line holding `needle`, no
/// stdout, and `--out` never created.
fn refuses(args: &[&str], needle: &str) {
    let out = scratch(&format!("refused-{}", args.join("_").len()));
    let _ = std::fs::remove_file(&out);
    let mut full: Vec<&str> = args.to_vec();
    let out_str = out.to_str().unwrap().to_string();
    full.extend(["--out", &out_str]);
    let (ok, stdout, stderr) = speclight(&full);
    assert!(!ok, "{args:?} succeeded");
    assert!(stdout.is_empty(), "{stdout}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains(needle), "{args:?}: {stderr}");
    assert!(!out.exists(), "{args:?} wrote {}", out.display());
}

#[test]
fn deploy_prints_each_servers_configuration() {
    let (ok, out, err) = speclight(&[
        "deploy",
        "--server",
        "vllm",
        "--dist",
        VECTOR,
        "--capacity",
        "8",
    ]);
    assert!(ok, "{err}");
    let config: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(config["num_speculative_tokens"], 8);
    assert!(err.contains("5.6% lost"), "{err}");
    let (ok, out, _) = speclight(&[
        "deploy",
        "--server",
        "sglang",
        "--dist",
        VECTOR,
        "--capacity",
        "8",
    ]);
    assert!(ok);
    assert!(out.starts_with("--speculative-eagle-topk "), "{out}");
    let (ok, out, _) = speclight(&[
        "deploy",
        "--server",
        "trtllm",
        "--dist",
        VECTOR,
        "--capacity",
        "8",
    ]);
    assert!(ok);
    assert!(
        out.starts_with("speculative_config:\n  max_draft_len: "),
        "{out}"
    );
    let (ok, out, _) = speclight(&[
        "deploy",
        "--server",
        "medusa",
        "--dist",
        "zipf:1.1:32",
        "--capacity",
        "64",
    ]);
    assert!(ok);
    let list = out.trim().strip_prefix("medusa_choices = ").unwrap();
    let paths: Vec<Vec<u32>> = serde_json::from_str(list).unwrap();
    assert_eq!(paths.len(), 64);
    assert!(paths.iter().flatten().all(|&r| r < 10));
    let (ok, out, _) = speclight(&[
        "deploy",
        "--server",
        "eagle",
        "--dist",
        VECTOR,
        "--capacity",
        "32",
        "--max-depth",
        "4",
        "--json",
    ]);
    assert!(ok);
    let doc: serde_json::Value = serde_json::from_str(&out).unwrap();
    let keys: Vec<&String> = doc.as_object().unwrap().keys().collect();
    for key in [
        "server",
        "config",
        "expected_accepted",
        "unconstrained_expected_accepted",
        "constraint_cost",
        "capacity",
        "max_depth",
    ] {
        assert!(doc.get(key).is_some(), "{key} missing from {keys:?}");
    }
    let (e, u, c) = (
        doc["expected_accepted"].as_f64().unwrap(),
        doc["unconstrained_expected_accepted"].as_f64().unwrap(),
        doc["constraint_cost"].as_f64().unwrap(),
    );
    assert!((c - (1.0 - e / u)).abs() < 1e-12);
}

#[test]
fn deploy_chooses_the_capacity_by_speed_with_a_latency_profile() {
    let csv = scratch("latency.csv");
    std::fs::write(
        &csv,
        "draft_tokens,seconds\n0,0.020\n16,0.021\n64,0.030\n256,0.080\n",
    )
    .unwrap();
    let (ok, out, err) = speclight(&[
        "deploy",
        "--server",
        "vllm",
        "--dist",
        VECTOR,
        "--latency",
        csv.to_str().unwrap(),
        "--draft-step",
        "0.002",
        "--json",
    ]);
    assert!(ok, "{err}");
    let doc: serde_json::Value = serde_json::from_str(&out).unwrap();
    let n = doc["capacity"].as_u64().unwrap();
    assert!((1..=256).contains(&n));
    assert!(doc["tokens_per_second"].as_f64().unwrap() > 1.0 / 0.020);
}

#[test]
fn bad_deploy_input_is_refused_and_nothing_written() {
    refuses(
        &[
            "deploy",
            "--server",
            "tgi",
            "--dist",
            VECTOR,
            "--capacity",
            "8",
        ],
        "tgi",
    );
    refuses(
        &[
            "deploy",
            "--server",
            "medusa",
            "--dist",
            "0.5,0.3",
            "--capacity",
            "7",
            "--max-depth",
            "2",
        ],
        "no medusa configuration fills capacity 7: at most 6 draft tokens",
    );
    let report = scratch("report.json");
    std::fs::write(&report, r#"{"train_groups": 3, "results": []}"#).unwrap();
    refuses(
        &[
            "deploy",
            "--server",
            "vllm",
            "--report",
            report.to_str().unwrap(),
            "--capacity",
            "8",
        ],
        "no per-depth acceptance matrix",
    );
    refuses(
        &[
            "deploy",
            "--server",
            "vllm",
            "--dist",
            VECTOR,
            "--capacity",
            "0",
        ],
        "capacity",
    );
}

#[test]
fn build_refuses_a_vllm_tree_that_is_not_level_uniform() {
    refuses(
        &[
            "build",
            "--dist",
            "0.5,0.3,0.2",
            "--capacity",
            "12",
            "--format",
            "vllm",
        ],
        "--level-uniform",
    );
    let (ok, out, err) = speclight(&[
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
    let paths = speclight::format::parse_vllm_tree(out.trim()).unwrap();
    assert!(speclight::format::is_level_uniform(&paths));
}

#[test]
fn build_medusa_keeps_ranks_below_10_and_says_so() {
    let (ok, out, err) = speclight(&[
        "build",
        "--dist",
        "zipf:1.1:32",
        "--capacity",
        "256",
        "--format",
        "medusa",
    ]);
    assert!(ok, "{err}");
    assert!(err.contains("--max-rank 10"), "{err}");
    let paths: Vec<Vec<u32>> = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(paths.len(), 256);
    assert!(paths.iter().flatten().all(|&r| r < 10));
    // Told otherwise, it builds the unconstrained tree, ranks >= 10 included.
    let (ok, out, _) = speclight(&[
        "build",
        "--dist",
        "zipf:1.1:32",
        "--capacity",
        "256",
        "--format",
        "medusa",
        "--max-rank",
        "32",
    ]);
    assert!(ok);
    let paths: Vec<Vec<u32>> = serde_json::from_str(out.trim()).unwrap();
    assert!(paths.iter().flatten().any(|&r| r >= 10));
}

#[test]
fn build_text_reports_the_constraint_cost() {
    let (ok, out, err) = speclight(&[
        "build",
        "--dist",
        VECTOR,
        "--capacity",
        "32",
        "--level-uniform",
    ]);
    assert!(ok, "{err}");
    assert!(out.starts_with("optimal level-uniform tree: "), "{out}");
    assert!(out.contains("the constraint costs 12.7%"), "{out}");
}

#[test]
fn convert_refuses_what_the_server_cannot_run() {
    let wide = scratch("wide.json");
    let ranks: Vec<String> = (0..12).map(|r| format!("[{r}]")).collect();
    std::fs::write(&wide, format!("[{}]", ranks.join(","))).unwrap();
    let wide = wide.to_str().unwrap();
    refuses(
        &["convert", "--from", "medusa", "--to", "medusa", wide],
        "rank 10 in path [10] is not below --top-k 10",
    );
    let (ok, _, err) = speclight(&[
        "convert", "--from", "medusa", "--to", "medusa", "--top-k", "12", wide,
    ]);
    assert!(ok, "{err}");
    let ragged = scratch("ragged.txt");
    std::fs::write(&ragged, "[(0,), (1,), (0, 0)]").unwrap();
    refuses(
        &[
            "convert",
            "--from",
            "vllm",
            "--to",
            "vllm",
            ragged.to_str().unwrap(),
        ],
        "--level-uniform",
    );
}
