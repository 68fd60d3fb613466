//! `speclight tune` and `speclight plot` end to end: the report files, their
//! agreement with the library, line-numbered errors, and `--help` examples.
#![cfg(feature = "cli")]

use speclight::tune::{tune, Split, SyntheticTrace, TuneConfig, TuneReport};
use std::path::{Path, PathBuf};
use std::process::Command;

fn speclight(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_speclight"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("run speclight")
}

/// A fresh scratch directory under the target dir (no temp-file crate).
fn scratch(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("scratch dir");
    dir
}

/// Seed 5: 120 sequences x 20 positions, depth 4, one acceptance row.
fn write_trace(dir: &Path) -> (PathBuf, Vec<u8>) {
    let synth = SyntheticTrace::new(vec![vec![0.6, 0.15, 0.05]], 4, 4).unwrap();
    let mut bytes = Vec::new();
    synth.write_jsonl(&mut bytes, 120, 20, 5).unwrap();
    let path = dir.join("trace.jsonl");
    std::fs::write(&path, &bytes).unwrap();
    (path, bytes)
}

#[test]
fn tune_writes_the_report_and_agrees_with_the_library() {
    let dir = scratch("cli-tune-report");
    let (trace, bytes) = write_trace(&dir);
    let out_dir = dir.join("report");
    let out = speclight(&[
        "tune",
        "--trace",
        trace.to_str().unwrap(),
        "--latency",
        "data/latency-example.csv",
        "--draft-step",
        "0.002",
        "--capacities",
        "2,8,32",
        "--holdout",
        "0.25",
        "--out",
        out_dir.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let md = String::from_utf8(out.stdout).unwrap();
    assert!(md.starts_with("# speclight tune report"));
    for f in [
        "report.md",
        "report.json",
        "curve.svg",
        "speedup.svg",
        "tree.svg",
        "tree.json",
        "tree.vllm.txt",
        "tree.medusa.json",
    ] {
        assert!(out_dir.join(f).is_file(), "{f} missing");
    }
    assert_eq!(
        std::fs::read_to_string(out_dir.join("report.md")).unwrap(),
        md
    );
    let report: TuneReport =
        serde_json::from_str(&std::fs::read_to_string(out_dir.join("report.json")).unwrap())
            .unwrap();
    // Second computation: the library on the same bytes and settings.
    let t_v = speclight::capacity::LatencyProfile::from_csv_str(
        &std::fs::read_to_string("data/latency-example.csv").unwrap(),
    )
    .unwrap();
    let config = TuneConfig {
        capacities: vec![2, 8, 32],
        split: Split::new(0.25, 0).unwrap(),
        cost: Some(
            speclight::capacity::CostModel::new(
                t_v,
                speclight::capacity::DraftCost::PerStep(0.002),
                0.0,
            )
            .unwrap(),
        ),
        ..Default::default()
    };
    let lib = tune(|| Ok(&bytes[..]), &config).unwrap();
    assert_eq!(report.chosen.rank_paths, lib.chosen.rank_paths);
    assert_eq!(report.results.len(), lib.results.len());
    let vllm = std::fs::read_to_string(out_dir.join("tree.vllm.txt")).unwrap();
    assert_eq!(
        speclight::format::parse_vllm_tree(vllm.trim()).unwrap(),
        report.chosen.rank_paths
    );
    let tree_json = std::fs::read_to_string(out_dir.join("tree.json")).unwrap();
    assert_eq!(
        speclight::format::TreeJson::parse_tree(&tree_json)
            .unwrap()
            .len(),
        report.chosen.rank_paths.len()
    );
    // The plot subcommand redraws each figure from report.json.
    for figure in ["curve", "speedup", "tree"] {
        let svg = dir.join(format!("{figure}.svg"));
        let out = speclight(&[
            "plot",
            "--report",
            out_dir.join("report.json").to_str().unwrap(),
            "--figure",
            figure,
            "--out",
            svg.to_str().unwrap(),
        ]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let text = std::fs::read_to_string(&svg).unwrap();
        assert!(text.starts_with("<svg") && text.trim_end().ends_with("</svg>"));
    }
    // JSON on stdout.
    let out = speclight(&[
        "tune",
        "--trace",
        trace.to_str().unwrap(),
        "--json",
        "--capacities",
        "4",
    ]);
    assert!(out.status.success());
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["results"][0]["capacity"], 4);
    // Holding out sequences 90..120 measures exactly their 30 x 20 groups.
    let out = speclight(&[
        "tune",
        "--trace",
        trace.to_str().unwrap(),
        "--json",
        "--heldout-from-seq",
        "90",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["heldout_groups"], 600);
    assert_eq!(doc["train_groups"], 1800);
}

#[test]
fn bad_traces_fail_with_one_line_naming_the_line() {
    let dir = scratch("cli-tune-bad");
    let (trace, bytes) = write_trace(&dir);
    let mut text = String::from_utf8(bytes).unwrap();
    let lines = text.lines().count();
    text.push_str(
        "{\"seq\": 999, \"pos\": 0, \"depth\": 1, \"draft_top\": [[1, 0.5]], \"target\": 1}\n",
    );
    text.push_str("not json\n");
    std::fs::write(&trace, &text).unwrap();
    let out = speclight(&["tune", "--trace", trace.to_str().unwrap()]);
    assert!(!out.status.success());
    let err = String::from_utf8(out.stderr).unwrap();
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains(&format!("trace line {}", lines + 1)), "{err}");
    // --validate lists both bad lines, then fails.
    let out = speclight(&["tune", "--trace", trace.to_str().unwrap(), "--validate"]);
    assert!(!out.status.success());
    let listing = String::from_utf8(out.stdout).unwrap();
    assert!(listing.contains(&format!(":{}: ", lines + 1)), "{listing}");
    assert!(listing.contains(&format!(":{}: ", lines + 2)), "{listing}");
    assert!(listing.contains("2 bad lines"), "{listing}");
    let err = String::from_utf8(out.stderr).unwrap();
    assert_eq!(err.lines().count(), 1, "{err}");
}

#[test]
fn plot_needs_a_source_and_every_command_has_an_example() {
    let out = speclight(&["plot"]);
    assert!(!out.status.success());
    assert_eq!(String::from_utf8(out.stderr).unwrap().lines().count(), 1);
    for cmd in ["tune", "plot"] {
        let out = speclight(&[cmd, "--help"]);
        assert!(out.status.success());
        let help = String::from_utf8(out.stdout).unwrap();
        assert!(help.contains(&format!("speclight {cmd} --")), "{help}");
    }
    // A JSON tree from `speclight build` is drawn with its drafter probabilities.
    let dir = scratch("cli-plot-tree");
    let tree = speclight(&[
        "build",
        "--dist",
        "0.6,0.2,0.1",
        "--capacity",
        "12",
        "--format",
        "json",
    ]);
    assert!(
        tree.status.success(),
        "{}",
        String::from_utf8_lossy(&tree.stderr)
    );
    let path = dir.join("tree.json");
    std::fs::write(&path, &tree.stdout).unwrap();
    let out = speclight(&["plot", "--tree", path.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8(out.stdout).unwrap().starts_with("<svg"));
}

#[test]
fn pair_trace_writes_a_valid_trace_split_by_prompt_source() {
    // Small models and sizes keep this quick; seed 4.
    let dir = scratch("cli-pair-trace");
    let path = dir.join("pairs.jsonl");
    let out = speclight(&[
        "pair-trace",
        "--verifier-order",
        "3",
        "--drafter-order",
        "2",
        "--train-prompts",
        "3",
        "--heldout-prompts",
        "2",
        "--positions",
        "10",
        "--depth",
        "3",
        "--top-k",
        "4",
        "--seed",
        "4",
        "--out",
        path.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let bytes = std::fs::read(&path).unwrap();
    let report = speclight::tune::validate(&bytes[..], 5).unwrap();
    assert!(report.is_valid(), "{:?}", report.errors);
    assert_eq!(report.good_records, 5 * 10 * 3);
    assert_eq!(report.max_top_k, 4);
    assert_eq!(report.missing_target_logprob, 0);
    let out = speclight(&[
        "tune",
        "--trace",
        path.to_str().unwrap(),
        "--heldout-from-seq",
        "3",
        "--capacities",
        "2,4",
        "--json",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["train_groups"], 30);
    assert_eq!(doc["heldout_groups"], 20);
}
