//! `speclight tune --metrics` on one fixture per server format (counts
//! chosen so the fit can be computed by hand), with a latency profile, and
//! bad input: missing counters, negative counts, inconsistent totals.
#![cfg(feature = "cli")]

use crate::harness::{speclight, stdout_json};

fn fit_json(file: &str) -> serde_json::Value {
    let out = speclight(&["tune", "--metrics", file, "--json"]);
    stdout_json(&out)
}

/// (fixture, format, steps, reached per depth)
const CASES: [(&str, &str, u64, &[u64]); 5] = [
    (
        "tests/fixtures/metrics/vllm.prom",
        "vllm_prometheus",
        1000,
        &[800, 500, 200],
    ),
    (
        "tests/fixtures/metrics/llamacpp.prom",
        "llamacpp_prometheus",
        200,
        &[150, 90, 45, 15],
    ),
    (
        "tests/fixtures/metrics/mistralrs.prom",
        "mistralrs_prometheus",
        400,
        &[300, 180, 90, 0],
    ),
    (
        "tests/fixtures/metrics/vllm_requests.jsonl",
        "vllm_request_histogram",
        63,
        &[22, 18, 13],
    ),
    (
        "tests/fixtures/metrics/sglang.jsonl",
        "sglang",
        17,
        &[12, 6, 4],
    ),
];

#[test]
fn every_fixture_fits_to_the_hand_computed_values() {
    for (file, format, steps, reached) in CASES {
        let doc = fit_json(file);
        assert_eq!(doc["format"], format, "{file}");
        let depths = doc["acceptance_by_depth"].as_array().unwrap();
        assert_eq!(depths.len(), reached.len(), "{file}");
        let mut previous = steps;
        for (d, &r) in depths.iter().zip(reached) {
            let a = d["estimate"].as_f64().unwrap();
            assert!(
                (a - r as f64 / previous as f64).abs() < 1e-12,
                "{file}: {d}"
            );
            let (lo, hi) = (
                d["ci_low"].as_f64().unwrap(),
                d["ci_high"].as_f64().unwrap(),
            );
            assert!(lo <= a && a <= hi && lo < hi, "{file}: {d}");
            previous = r;
        }
        let mean = reached.iter().sum::<u64>() as f64 / steps as f64;
        assert!(
            (doc["mean_accepted"].as_f64().unwrap() - mean).abs() < 1e-12,
            "{file}"
        );
        assert!((doc["chain_expected_accepted"].as_f64().unwrap() - mean).abs() < 1e-12);
        let tree = &doc["tree_prediction"];
        assert!(tree["note"].as_str().unwrap().contains("first choice"));
        assert!(tree["assumption"].is_null() && tree["by_capacity"] == serde_json::json!([]));
    }
}

#[test]
fn with_a_profile_it_prints_the_best_chain_per_batch_size() {
    let out = speclight(&[
        "tune",
        "--metrics",
        "tests/fixtures/metrics/vllm.prom",
        "--latency",
        "data/latency-2d-example.csv",
        "--draft-step",
        "0.0015",
        "--json",
    ]);
    let doc = stdout_json(&out);
    let chain = doc["chain_schedule"].as_array().unwrap();
    assert_eq!(chain.len(), 8);
    for w in chain.windows(2) {
        assert!(w[1]["capacity"].as_u64() <= w[0]["capacity"].as_u64());
    }
    assert!(doc["vllm"]["num_speculative_tokens"].as_u64().unwrap() <= 3);
}

#[test]
fn bad_metrics_get_one_line_errors() {
    let dir = crate::harness::scratch("metrics"); // removed when dropped
    let pos = "vllm:spec_decode_num_accepted_tokens_per_pos_total{position=\"0\"} 5\n";
    let cases = [
        ("missing.prom", pos.to_owned(), "missing counter vllm:spec_decode_num_drafts"),
        ("negative.prom", format!("vllm:spec_decode_num_drafts_total -4\n{pos}"), "negative"),
        ("more.prom", format!("vllm:spec_decode_num_drafts_total 4\n{pos}"), "inconsistent totals"),
        (
            "sum.prom",
            format!("vllm:spec_decode_num_drafts_total 10\nvllm:spec_decode_num_accepted_tokens_total 9\n{pos}"),
            "inconsistent totals: accepted tokens 9",
        ),
        (
            "steps.jsonl",
            "{\"meta_info\":{\"spec_verify_ct\":5,\"spec_accept_histogram\":[1,1]}}\n".to_owned(),
            "inconsistent totals: record 0",
        ),
        ("none.jsonl", "{\"meta_info\":{\"spec_verify_ct\":5}}\n".to_owned(), "missing counter spec_accept_histogram"),
        ("neg.jsonl", "{\"meta_info\":{\"spec_verify_ct\":1,\"spec_accept_histogram\":[-1,2]}}\n".to_owned(), "not a non-negative integer"),
        ("other.json", "{\"hello\": 1}".to_owned(), "unknown format"),
        (
            "two.prom",
            format!("mistralrs_speculative_drafts_total 3\n{pos}"),
            "counters of two servers",
        ),
        (
            "timings.jsonl",
            "{\"timings\":{\"draft_n\":4,\"draft_n_accepted\":5}}\n".to_owned(),
            "inconsistent totals: record 0: draft_n_accepted 5 > draft_n 4",
        ),
        ("half.jsonl", "{\"timings\":{\"draft_n\":4}}\n".to_owned(), "missing counter draft_n_accepted"),
        (
            "trt.json",
            "[{\"perf_metrics\":{\"speculative_decoding\":{\"total_draft_tokens\":6,\"total_accepted_draft_tokens\":7}}}]".to_owned(),
            "inconsistent totals: record 0: total_accepted_draft_tokens 7 > total_draft_tokens 6",
        ),
        (
            "trt_half.json",
            "[{\"perf_metrics\":{\"speculative_decoding\":{\"total_draft_tokens\":6}}}]".to_owned(),
            "missing counter total_accepted_draft_tokens",
        ),
        ("negt.jsonl", "{\"timings\":{\"draft_n\":-4,\"draft_n_accepted\":1}}\n".to_owned(), "not a non-negative integer"),
    ];
    for (name, text, want) in cases {
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        let out = speclight(&["tune", "--metrics", path.to_str().unwrap()]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{name}");
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(err.contains(want), "{name}: {err}");
    }
}

const TIMINGS: &str = "tests/fixtures/metrics/llamacpp_timings.jsonl";

/// `sum_{d <= k} a^d`, written out here to check the fit's root.
fn powers(a: f64, k: i32) -> f64 {
    (1..=k).map(|d| a.powi(d)).sum()
}

#[test]
fn llamacpp_timings_give_the_rate_and_only_with_a_draft_length_a_model() {
    // Three responses draft 48 + 32 + 20 tokens and accept 30 + 12 + 8; the
    // fourth drafted nothing (no draft_n) and is skipped.
    let doc = fit_json(TIMINGS);
    assert_eq!(doc["format"], "llamacpp_timings");
    assert_eq!(
        (doc["records"].as_u64(), doc["draft_tokens"].as_u64()),
        (Some(3), Some(100))
    );
    assert_eq!(doc["acceptance_rate"].as_f64(), Some(0.5));
    for field in [
        "acceptance_by_depth",
        "constant_depth",
        "chain_expected_accepted",
    ] {
        assert!(doc[field].is_null(), "{field}: {doc}");
    }
    let out = speclight(&[
        "tune",
        "--metrics",
        TIMINGS,
        "--draft-length",
        "4",
        "--json",
    ]);
    let doc = stdout_json(&out);
    let c = &doc["constant_depth"];
    assert_eq!(c["steps"].as_u64(), Some(25));
    assert!(c["assumption"]
        .as_str()
        .unwrap()
        .starts_with("assumed, not measured"));
    // The chain's E[X] is the server's own mean, 50 / 25, and the constant a
    // solves (a + a^2 + a^3 + a^4) / 4 = 0.5.
    let chain = doc["chain_expected_accepted"].as_f64().unwrap();
    assert!((chain - 2.0).abs() < 1e-12, "{doc}");
    let a = c["acceptance_per_depth"].as_f64().unwrap();
    assert!((powers(a, 4) - 2.0).abs() < 1e-12, "{a}");
    assert!((doc["mean_acceptance_length"].as_f64().unwrap() - 3.0).abs() < 1e-12);
}

#[test]
fn totals_refuse_what_they_cannot_support() {
    let cases: [(&[&str], &str); 3] = [
        (
            &["--draft-length", "3"],
            "not a multiple of the draft length 3",
        ),
        (&["--rank-tail", "zipf:1:4"], "give --draft-length K"),
        (
            &[
                "--latency",
                "data/latency-2d-example.csv",
                "--draft-step",
                "0.001",
            ],
            "give --draft-length K",
        ),
    ];
    for (extra, want) in cases {
        let mut args = vec!["tune", "--metrics", TIMINGS];
        args.extend_from_slice(extra);
        let out = speclight(&args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{extra:?}");
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(err.contains(want), "{extra:?}: {err}");
    }
}

#[test]
fn rank_tail_predicts_trees_no_worse_than_the_chain_and_says_so() {
    let out = speclight(&[
        "tune",
        "--metrics",
        "tests/fixtures/metrics/vllm.prom",
        "--rank-tail",
        "zipf:1:8",
        "--capacities",
        "1,2,3,8",
        "--json",
    ]);
    let doc = stdout_json(&out);
    let tree = &doc["tree_prediction"];
    assert!(tree["assumption"]
        .as_str()
        .unwrap()
        .contains("assumed, not measured"));
    assert_eq!(tree["rank_tail"], "zipf:1:8");
    assert_eq!(tree["capacity"].as_u64(), Some(8));
    let by = tree["by_capacity"].as_array().unwrap();
    assert_eq!(by.len(), 4);
    // vllm.prom fits a = 0.8, 0.625, 0.4: chains of 1, 2, 3 are 0.8, 1.3, 1.5.
    for (p, chain) in by.iter().zip([0.8, 1.3, 1.5, 1.5]) {
        let (t, c) = (
            p["expected_accepted"].as_f64().unwrap(),
            p["chain_expected_accepted"].as_f64().unwrap(),
        );
        assert!((c - chain).abs() < 1e-12 && t >= c - 1e-12, "{p}");
    }
    // One node: the first choice at depth 1, whatever the tail.
    assert!((by[0]["expected_accepted"].as_f64().unwrap() - 0.8).abs() < 1e-12);
    // Eight nodes over three depths: the tail's ranks must add value.
    assert!(by[3]["expected_accepted"].as_f64().unwrap() > 1.5 + 0.1);
    let text = speclight(&[
        "tune",
        "--metrics",
        "tests/fixtures/metrics/vllm.prom",
        "--rank-tail",
        "zipf:1:8",
    ]);
    assert!(
        String::from_utf8_lossy(&text.stdout).contains("tree prediction (assumed, not measured")
    );
}

/// Not metrics, but issue 14's other input: a two-axis latency file given
/// to the one-axis `solve` gets a one-line hint towards the schedule mode.
#[test]
fn solve_hints_at_batch_sizes_for_a_two_axis_profile() {
    let args = [
        "solve",
        "--dist",
        "0.6,0.2",
        "--latency",
        "data/latency-2d-example.csv",
        "--draft-step",
        "0.001",
    ];
    let out = speclight(&args);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains("expected \"draft_tokens,seconds\"")
            && err.contains("hint: this is a two-axis"),
        "{err}"
    );
    assert!(err.contains("--batch-sizes"), "{err}");
    // A one-axis file with a wrong header gets no such hint.
    let dir = crate::harness::scratch("solve-header");
    let bad = dir.join("bad.csv");
    std::fs::write(&bad, "tokens,seconds\n1,0.01\n").unwrap();
    let out = speclight(&[
        "solve",
        "--dist",
        "0.6",
        "--latency",
        bad.to_str().unwrap(),
        "--draft-step",
        "0.001",
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("expected") && !err.contains("hint:"), "{err}");
}

#[test]
fn tensorrt_llm_perf_metrics_are_totals_like_llamacpp_timings() {
    // Requests 3 and 4 draft 60 + 30 tokens and accept 25 + 15; request 5
    // drafted nothing (no speculative_decoding object).
    let file = "tests/fixtures/metrics/trtllm_perf_metrics.json";
    let doc = fit_json(file);
    assert_eq!(doc["format"], "tensorrtllm_perf_metrics");
    assert_eq!(
        (doc["records"].as_u64(), doc["draft_tokens"].as_u64()),
        (Some(2), Some(90))
    );
    assert!((doc["acceptance_rate"].as_f64().unwrap() - 40.0 / 90.0).abs() < 1e-15);
    let out = speclight(&["tune", "--metrics", file, "--draft-length", "3", "--json"]);
    let doc = stdout_json(&out);
    assert_eq!(doc["constant_depth"]["steps"].as_u64(), Some(30));
    let a = doc["constant_depth"]["acceptance_per_depth"]
        .as_f64()
        .unwrap();
    assert!((powers(a, 3) - 40.0 / 30.0).abs() < 1e-12, "{a}");
}
