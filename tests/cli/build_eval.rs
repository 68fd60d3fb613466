//! The `build` and `eval` subcommands, run as a user would.
#![cfg(feature = "cli")]

use crate::harness::{assert_one_line_error, scratch, speclight, stdout_json};

#[test]
fn build_json_reports_the_expected_value_and_schema() {
    let out = speclight(&[
        "build",
        "--dist",
        "0.5,0.3,0.2",
        "--capacity",
        "1024",
        "--format",
        "json",
    ]);
    let doc = stdout_json(&out);
    let e = doc["expected_accepted"].as_f64().unwrap();
    assert!((e - 6.32).abs() < 0.01, "{e}");
    assert_eq!(doc["capacity"], 1024);
    assert!(doc["max_depth"].is_null());
    let nodes = doc["nodes"].as_array().unwrap();
    assert_eq!(nodes.len(), 1024);
    assert!(nodes[0]["parent"].is_null());
    for key in ["id", "parent", "token", "depth", "draft_prob"] {
        assert!(nodes[5].get(key).is_some(), "missing {key}");
    }
    // P(X >= 1) is the mass of the depth-1 nodes: all three tokens here.
    let dist = doc["accept_length_distribution"].as_array().unwrap();
    assert!((dist[0].as_f64().unwrap() - 1.0).abs() < 1e-9);
    let sum: f64 = dist.iter().map(|v| v.as_f64().unwrap()).sum();
    assert!((sum - e).abs() < 1e-9, "E[X] = sum_k P(X >= k)");
    // --json is the short form.
    let short = stdout_json(&speclight(&[
        "build",
        "--dist",
        "0.5,0.3,0.2",
        "--capacity",
        "1024",
        "--json",
    ]));
    assert_eq!(short, doc);
}

#[test]
fn eval_reads_what_build_writes() {
    let dir = scratch("eval");
    let tree = dir.join("tree.json");
    let tree_s = tree.to_str().unwrap();
    let built = speclight(&[
        "build",
        "--dist",
        "zipf:1.1:16",
        "--capacity",
        "50",
        "--max-depth",
        "4",
        "--verifier",
        "geometric:0.7:16",
        "--json",
        "--out",
        tree_s,
    ]);
    assert!(built.status.success());
    let doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&tree).unwrap()).unwrap();
    let evald = stdout_json(&speclight(&[
        "eval",
        "--tree",
        tree_s,
        "--verifier",
        "geometric:0.7:16",
        "--json",
    ]));
    let a = doc["expected_accepted"].as_f64().unwrap();
    let b = evald["expected_accepted"].as_f64().unwrap();
    assert!((a - b).abs() < 1e-12, "build {a} vs eval {b}");
    assert_eq!(
        doc["accept_length_distribution"],
        evald["accept_length_distribution"]
    );
}

#[test]
fn bad_input_gets_one_line_and_no_output_file() {
    let dir = scratch("bad");
    let out = dir.join("never.json");
    let out_s = out.to_str().unwrap();
    for (args, needle) in [
        (
            vec!["build", "--dist", "0.5,NaN", "--capacity", "4"],
            "not finite",
        ),
        (vec!["build", "--dist", "0.7,0.6", "--capacity", "4"], "sum"),
        (
            vec!["build", "--dist", "0.5", "--capacity", "0"],
            "capacity",
        ),
        (
            vec![
                "build",
                "--dist",
                "0.5",
                "--capacity",
                "4",
                "--max-depth",
                "0",
            ],
            "depth",
        ),
        (
            vec!["build", "--dist", "zipf:1:0", "--capacity", "4"],
            "zipf",
        ),
        (
            vec!["build", "--dist", "0.5", "--capacity", "99999999"],
            "maximum",
        ),
        (vec!["build", "--capacity", "4"], "--dist"),
        (
            vec!["eval", "--tree", "/nonexistent/t.json", "--verifier", "0.5"],
            "cannot read",
        ),
    ] {
        let mut full = args.clone();
        if args[0] == "build" {
            full.extend(["--out", out_s]);
        }
        let err = assert_one_line_error(&speclight(&full));
        assert!(err.contains(needle), "{args:?}: {err}");
        assert!(!out.exists(), "{args:?} created the output file");
    }
    // Malformed tree files.
    let bad = dir.join("bad.json");
    for (content, needle) in [
        (&b"{"[..], "parse"),
        (&b"\xff\xfe"[..], "UTF-8"),
        (
            &br#"{"nodes": [{"id": 0, "parent": 3, "token": 1, "depth": 1}]}"#[..],
            "invalid tree",
        ),
    ] {
        std::fs::write(&bad, content).unwrap();
        let err = assert_one_line_error(&speclight(&[
            "eval",
            "--tree",
            bad.to_str().unwrap(),
            "--verifier",
            "0.5",
        ]));
        assert!(err.contains(needle), "{err}");
    }
}
