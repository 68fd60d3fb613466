//! `speclight solve --batch-sizes` end to end: the JSON schema of issue 14,
//! a vLLM block that passes vLLM's own schedule rules, agreement with the
//! library, and one-line errors naming the bad row.
#![cfg(feature = "cli")]

use crate::harness::{speclight, stdout_json};
use speclight::capacity::{BatchLatencyProfile, LatencyProfile, ScheduleCost, Scheduler};
use speclight::{parse_dist, Iid};

const DIST: &str = "0.634,0.108,0.057,0.034,0.023";
const PROFILE: &str = "data/latency-2d-example.csv";

fn schedule_json() -> serde_json::Value {
    let out = speclight(&[
        "solve",
        "--dist",
        DIST,
        "--latency",
        PROFILE,
        "--draft-step",
        "0.0015",
        "--batch-sizes",
        "profile",
        "--max-capacity",
        "32",
        "--max-depth",
        "8",
        "--json",
    ]);
    stdout_json(&out)
}

#[test]
fn schedule_json_has_the_issue_fields_and_matches_the_library() {
    let doc = schedule_json();
    let rows = doc["schedule"].as_array().expect("schedule");
    let fields = [
        "batch_size",
        "capacity",
        "max_depth",
        "expected_accepted",
        "tokens_per_second",
        "speedup",
    ];
    for row in rows {
        for f in fields {
            assert!(row[f].is_number(), "schedule row {f}");
        }
    }
    // Second computation: the library on the same inputs.
    let text = std::fs::read_to_string(PROFILE).unwrap();
    let profile = BatchLatencyProfile::from_csv_str(&text).unwrap();
    let sizes = profile.batch_sizes().to_vec();
    let cost = ScheduleCost::new(profile, LatencyProfile::constant(0.0015).unwrap(), 0.0).unwrap();
    let mut model = Iid::new(parse_dist(DIST).unwrap());
    let s = Scheduler::new(cost, 32, 8)
        .unwrap()
        .solve(&sizes, &mut model)
        .unwrap();
    assert_eq!(rows.len(), s.entries.len());
    for (row, e) in rows.iter().zip(&s.entries) {
        assert_eq!(row["batch_size"], e.batch_size);
        assert_eq!(row["capacity"], e.capacity);
        assert_eq!(row["max_depth"], e.max_depth);
        assert!(e.speedup >= 1.0);
    }
    // Heavier load never asks for more draft tokens on this profile.
    for w in s.entries.windows(2) {
        assert!(w[1].capacity <= w[0].capacity);
    }
}

/// The rules of vLLM's `validate_and_normalize_dynamic_sd_schedule`
/// (vllm/v1/spec_decode/dynamic/utils.py), applied to our block.
#[test]
fn vllm_block_is_a_valid_dynamic_schedule_matching_the_chain() {
    let doc = schedule_json();
    let vllm = &doc["vllm"];
    let k_max = vllm["num_speculative_tokens"].as_u64().unwrap();
    assert!(k_max > 0);
    let ranges = vllm["num_speculative_tokens_per_batch_size"]
        .as_array()
        .unwrap();
    assert_eq!(ranges[0][0], 1, "the first range starts at 1");
    let mut previous_end = 0;
    let mut seen_max = 0;
    for r in ranges {
        let (lo, hi, k) = (
            r[0].as_u64().unwrap(),
            r[1].as_u64().unwrap(),
            r[2].as_u64().unwrap(),
        );
        assert!(lo > previous_end && lo <= hi, "{ranges:?}");
        previous_end = hi;
        seen_max = seen_max.max(k);
    }
    assert_eq!(seen_max, k_max);
    // Every listed batch size gets its chain entry's length.
    for c in doc["chain"].as_array().unwrap() {
        let b = c["batch_size"].as_u64().unwrap();
        let r = ranges
            .iter()
            .find(|r| r[0].as_u64().unwrap() <= b && b <= r[1].as_u64().unwrap())
            .expect("covered");
        assert_eq!(r[2], c["capacity"]);
    }
    let tiers = doc["sglang"]["tiers"].as_array().unwrap();
    assert_eq!(tiers[0]["min_batch_size"], 1);
}

#[test]
fn text_schedule_prints_a_pasteable_vllm_line() {
    let out = speclight(&[
        "solve",
        "--dist",
        DIST,
        "--latency",
        PROFILE,
        "--draft-step",
        "0.0015",
        "--batch-sizes",
        "1,8,64",
        "--max-capacity",
        "16",
        "--max-depth",
        "6",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let line = text
        .lines()
        .find(|l| l.starts_with("{\"num_speculative_tokens\""))
        .expect("vllm line");
    let v: serde_json::Value = serde_json::from_str(line).unwrap();
    assert!(v["num_speculative_tokens_per_batch_size"].is_array());
}

#[test]
fn bad_profiles_and_batch_sizes_get_one_line_errors() {
    let dir = crate::harness::scratch("schedule"); // removed when dropped
    let cases = [
        (
            "batch_size,draft_tokens,seconds\n1,0,0.02\n4,0,0.03\n2,0,0.03\n",
            "1,2",
            "batch size 2 at point 2",
        ),
        (
            "batch_size,draft_tokens,seconds\n1,0,0.02\n1,8,abc\n",
            "1",
            "row 1",
        ),
        (
            "batch_size,draft_tokens,seconds\n1,0,0.02\n1,8,1e-320\n",
            "1",
            "below 1e-9 s",
        ),
        (
            "batch_size,draft_tokens,seconds\n1,0,0.02\n1,8,0.03\n",
            "4,2",
            "batch sizes must increase",
        ),
    ];
    for (i, (csv, sizes, want)) in cases.iter().enumerate() {
        let path = dir.join(format!("p{i}.csv"));
        std::fs::write(&path, csv).unwrap();
        let out = speclight(&[
            "solve",
            "--dist",
            DIST,
            "--latency",
            path.to_str().unwrap(),
            "--draft-step",
            "0.001",
            "--batch-sizes",
            sizes,
            "--max-capacity",
            "8",
        ]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "case {i}");
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(err.contains(want), "case {i}: {err}");
    }
    // Issue 12 item 15: the one-axis solver printed "inf tokens/s" and NaN ratios.
    let tiny = dir.join("tiny.csv");
    std::fs::write(&tiny, "draft_tokens,seconds\n0,1e-320\n8,1e-320\n").unwrap();
    let out = speclight(&[
        "solve",
        "--dist",
        DIST,
        "--latency",
        tiny.to_str().unwrap(),
        "--draft-step",
        "0",
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("verifier latency 1e-320 s at point 0"),
        "{err}"
    );
}
