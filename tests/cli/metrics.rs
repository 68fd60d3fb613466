//! `speclight tune --metrics` on one fixture per server format (counts
//! chosen so the fit can be computed by hand), with a latency profile, and
//! bad input: missing counters, negative counts, inconsistent totals.
#![cfg(feature = "cli")]

use crate::harness::speclight;

fn fit_json(file: &str) -> serde_json::Value {
    let out = speclight(&["tune", "--metrics", file, "--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("json")
}

/// (fixture, format, steps, reached per depth)
const CASES: [(&str, &str, u64, &[u64]); 4] = [
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
            assert!(lo < a && a < hi, "{file}: {d}");
            previous = r;
        }
        let mean = reached.iter().sum::<u64>() as f64 / steps as f64;
        assert!(
            (doc["mean_accepted"].as_f64().unwrap() - mean).abs() < 1e-12,
            "{file}"
        );
        assert!((doc["chain_expected_accepted"].as_f64().unwrap() - mean).abs() < 1e-12);
        assert!(doc["tree_prediction"]
            .as_str()
            .unwrap()
            .contains("first choice"));
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
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
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
