//! `speclight tune` and `speclight plot` end to end: the report files, their
//! agreement with the library, line-numbered errors, and `--help` examples.
#![cfg(feature = "cli")]

use crate::harness::{scratch, speclight, stdout_json};
use speclight::tune::{tune, Split, SyntheticTrace, TuneConfig, TuneReport};
use std::path::{Path, PathBuf};
use std::process::Command;

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
    // tree.medusa.json is Medusa's deployment (ranks below its top-10), the
    // same list report.json's deploy entry for Medusa holds.
    let medusa: Vec<Vec<u32>> =
        serde_json::from_str(&std::fs::read_to_string(out_dir.join("tree.medusa.json")).unwrap())
            .unwrap();
    assert!(medusa.iter().flatten().all(|&rank| rank < 10));
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out_dir.join("report.json")).unwrap())
            .unwrap();
    let deployed = json["deploy"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["server"] == "medusa")
        .unwrap();
    let mut listed: Vec<Vec<u32>> =
        serde_json::from_value(deployed["config"]["medusa_choices"].clone()).unwrap();
    let mut written = medusa.clone();
    listed.sort();
    written.sort();
    assert_eq!(written, listed);
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
    // tree.vllm.txt is the level-uniform tree vLLM drafts (see the deploy test below).
    let vllm = std::fs::read_to_string(out_dir.join("tree.vllm.txt")).unwrap();
    assert!(speclight::format::is_level_uniform(
        &speclight::format::parse_vllm_tree(vllm.trim()).unwrap()
    ));
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
    let doc = stdout_json(&out);
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
    let doc = stdout_json(&out);
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
    let doc = stdout_json(&out);
    assert_eq!(doc["train_groups"], 30);
    assert_eq!(doc["heldout_groups"], 20);
}

/// Runs speclight, killing it and failing after `limit`: a hang is a failure.
fn speclight_within(args: &[&str], limit: std::time::Duration) -> std::process::Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_speclight"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run speclight");
    let start = std::time::Instant::now();
    while child.try_wait().expect("wait").is_none() {
        if start.elapsed() > limit {
            let _ = child.kill();
            panic!("speclight {args:?} still running after {limit:?}");
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    child.wait_with_output().expect("output")
}

/// Issue 12 item 6: an endless line (no newline ever) stops the read at
/// the line cap; the old reader skipped to a newline that never came.
#[cfg(unix)]
#[test]
fn tune_on_dev_zero_stops_at_the_first_line() {
    let limit = std::time::Duration::from_secs(60);
    for extra in [&[][..], &["--validate"][..]] {
        let mut args = vec!["tune", "--trace", "/dev/zero"];
        args.extend_from_slice(extra);
        let out = speclight_within(&args, limit);
        assert!(!out.status.success(), "{args:?}");
        let err = String::from_utf8(out.stderr).unwrap();
        assert_eq!(err.lines().count(), 1, "{err}");
        if extra.is_empty() {
            assert!(
                err.contains("trace line 1: line is longer than 1048576 bytes"),
                "{err}"
            );
        } else {
            let listing = String::from_utf8(out.stdout).unwrap();
            assert!(
                listing.contains("/dev/zero:1: line is longer than"),
                "{listing}"
            );
        }
    }
}

/// Issue 12 item 15: nothing held out is an error, not a table of "-";
/// `--max-depth 0` is refused as `build` refuses it.
#[test]
fn tune_refuses_an_empty_heldout_split_and_a_zero_depth() {
    let dir = scratch("cli-tune-refusals");
    let (trace, _) = write_trace(&dir);
    let trace = trace.to_str().unwrap();
    let out = speclight(&["tune", "--trace", trace, "--heldout-from-seq", "1000"]);
    assert!(!out.status.success());
    let err = String::from_utf8(out.stderr).unwrap();
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("the held-out split is empty"), "{err}");
    assert!(out.stdout.is_empty());

    let out = speclight(&["tune", "--trace", trace, "--max-depth", "0"]);
    assert!(!out.status.success());
    let err = String::from_utf8(out.stderr).unwrap();
    assert_eq!(
        err.trim_end(),
        "speclight: error: --max-depth: depth limit must be at least 1"
    );
    let build = speclight(&[
        "build",
        "--dist",
        "0.5",
        "--capacity",
        "4",
        "--max-depth",
        "0",
    ]);
    assert!(!build.status.success());
    assert!(String::from_utf8(build.stderr)
        .unwrap()
        .contains("depth limit must be at least 1"));
}

/// Issue 12 items 7 and 15: every size flag of `pair-trace` is bounded and
/// checked before any work (the old code allocated 17 GB for `--depth
/// 4294967295` and wrote an empty file for zero prompts); nothing is left
/// at `--out`.
#[test]
fn pair_trace_refuses_sizes_beyond_its_limits() {
    let dir = scratch("cli-pair-trace-limits");
    let path = dir.join("pairs.jsonl");
    let out_path = path.to_str().unwrap();
    let cases: [(&[&str], &str); 8] = [
        (
            &["--train-prompts", "0", "--heldout-prompts", "0"],
            "--train-prompts and --heldout-prompts are both 0",
        ),
        (
            &["--depth", "4294967295"],
            "--depth 4294967295 is not in 1..=256",
        ),
        (&["--depth", "0"], "--depth 0 is not in 1..=256"),
        (&["--top-k", "5000"], "--top-k 5000 is not in 1..=4096"),
        (
            &["--positions", "2000000"],
            "--positions 2000000 is not in 1..=1048576",
        ),
        (&["--positions", "0"], "--positions 0 is not in 1..=1048576"),
        (
            &["--train-prompts", "1000000"],
            "--train-prompts + --heldout-prompts = 1000016 is more than 65536",
        ),
        (
            &["--train-prompts", "60000", "--positions", "1048576"],
            "is more than 67108864",
        ),
    ];
    for (flags, want) in cases {
        let mut args = vec!["pair-trace", "--out", out_path];
        args.extend_from_slice(flags);
        let out = speclight_within(&args, std::time::Duration::from_secs(60));
        assert!(!out.status.success(), "{flags:?}");
        let err = String::from_utf8(out.stderr).unwrap();
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(err.contains(want), "{flags:?}: {err}");
        assert!(!path.exists(), "{flags:?} left a file");
    }
    assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 0);
}

/// `plot --tree` lays a tree out without recursion: a chain of 60000 nodes
/// overflowed the stack of the old recursive layout (SIGABRT).
#[test]
fn plot_draws_a_deep_chain_without_overflowing_the_stack() {
    let dir = scratch("cli-plot-deep");
    let tree = speclight(&[
        "build",
        "--dist",
        "1",
        "--capacity",
        "60000",
        "--format",
        "json",
    ]);
    assert!(tree.status.success());
    let path = dir.join("deep.json");
    std::fs::write(&path, &tree.stdout).unwrap();
    let out = speclight(&["plot", "--tree", path.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.stdout.starts_with(b"<svg"));
}

/// Issue 13 item 4: `tune` reports every server's best configuration under
/// its constraint (report.json `deploy`, a report.md table), and
/// `tree.vllm.txt` is the level-uniform tree vLLM drafts as written.
#[test]
fn tune_reports_each_servers_configuration_and_a_level_uniform_vllm_tree() {
    use speclight::deploy::{RankAcceptance, Server};
    use speclight::format::{from_rank_paths, is_level_uniform, parse_vllm_tree};
    use speclight::tune::Policy;

    let dir = scratch("cli-tune-deploy");
    let (trace, bytes) = write_trace(&dir);
    let out_dir = dir.join("report");
    let out = speclight(&[
        "tune",
        "--trace",
        trace.to_str().unwrap(),
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
    let text = std::fs::read_to_string(out_dir.join("report.json")).unwrap();
    let report: TuneReport = serde_json::from_str(&text).unwrap();
    let doc: serde_json::Value = serde_json::from_str(&text).unwrap();

    // The report's own fields keep their bytes (the library's report on the
    // same trace and settings); `deploy` comes after them.
    let config = TuneConfig {
        capacities: vec![2, 8, 32],
        split: Split::new(0.25, 0).unwrap(),
        ..Default::default()
    };
    let lib = tune(|| Ok(&bytes[..]), &config).unwrap();
    let own = serde_json::to_string_pretty(&lib).unwrap();
    let own = own.strip_suffix("\n}").unwrap();
    assert!(text.starts_with(own), "report fields changed");
    assert!(text[own.len()..].starts_with(",\n  \"deploy\": ["));

    // One entry per server, in Server::ALL's order.
    let deploy = doc["deploy"].as_array().unwrap();
    let names: Vec<&str> = deploy
        .iter()
        .map(|d| d["server"].as_str().unwrap())
        .collect();
    let all: Vec<&str> = Server::ALL.iter().map(|s| s.name()).collect();
    assert_eq!(names, all);

    // The unconstrained value is the tuner's best-first prediction at the
    // chosen capacity (same model, same builder); costs are in [0, 1).
    let chosen = &report.chosen;
    let predicted = report
        .results
        .iter()
        .find(|r| r.capacity == chosen.capacity)
        .and_then(|r| r.policies.iter().find(|p| p.policy == Policy::BestFirst))
        .and_then(|p| p.predicted)
        .unwrap()
        .expected_accepted;
    for d in deploy {
        let (value, free) = (
            d["expected_accepted"].as_f64().unwrap(),
            d["unconstrained_expected_accepted"].as_f64().unwrap(),
        );
        let cost = d["constraint_cost"].as_f64().unwrap();
        assert!((free - predicted).abs() <= 1e-9 * predicted, "{d}");
        assert!((0.0..1.0).contains(&cost), "{d}");
        assert!((cost - (1.0 - value / free)).abs() < 1e-12, "{d}");
        assert_eq!(d["capacity"], chosen.capacity, "{d}");
        assert_eq!(d["max_depth"], chosen.max_depth, "{d}");
    }

    // tree.vllm.txt: the deploy block's vLLM tree, level-uniform, valued
    // again here by a second evaluator (the rank model's tree value).
    let vllm = &deploy[0];
    let file = std::fs::read_to_string(out_dir.join("tree.vllm.txt")).unwrap();
    assert_eq!(file.trim(), vllm["config"]["speculative_token_tree"]);
    let paths = parse_vllm_tree(file.trim()).unwrap();
    assert!(is_level_uniform(&paths));
    assert_eq!(vllm["config"]["num_speculative_tokens"], paths.len());
    let rows = report.acceptance.to_model().unwrap().rows().to_vec();
    let value = RankAcceptance::new(&rows)
        .unwrap()
        .tree_value(&from_rank_paths(&paths, None).unwrap());
    let reported = vllm["expected_accepted"].as_f64().unwrap();
    assert!((value - reported).abs() <= 1e-9 * reported);
    // On this trace the chosen (best-first) tree is not level-uniform: the
    // old tree.vllm.txt, its rank paths, was a tree vLLM drafts differently.
    assert!(!is_level_uniform(&chosen.rank_paths));
    assert!(vllm["constraint_cost"].as_f64().unwrap() > 0.0);

    // report.md: the table, one row per server, and the note on tree.vllm.txt.
    let md = std::fs::read_to_string(out_dir.join("report.md")).unwrap();
    assert!(md.contains("## Deploying to a server"));
    for name in all {
        assert!(
            md.contains(&format!("\n| {name} | {} | ", chosen.capacity)),
            "{name}"
        );
    }
    assert!(md.contains("`tree.vllm.txt` holds it"));

    // --json on stdout carries the same block.
    let out = speclight(&[
        "tune",
        "--trace",
        trace.to_str().unwrap(),
        "--capacities",
        "2,8,32",
        "--holdout",
        "0.25",
        "--json",
    ]);
    let json = stdout_json(&out);
    assert_eq!(json["deploy"], doc["deploy"]);
}
