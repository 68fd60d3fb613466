//! `speclight solve` and `speclight allocate` end to end: JSON field names,
//! agreement with the library, and one-line errors.
#![cfg(feature = "cli")]

use crate::harness::{speclight, stdout_json, temp_file};
use speclight::capacity::{allocate, CapacitySolver, CostModel, DraftCost, LatencyProfile};
use speclight::{parse_dist, Iid};

const DIST: &str = "0.634,0.108,0.057,0.034,0.023";

fn json(args: &[&str]) -> serde_json::Value {
    let out = speclight(args);
    stdout_json(&out)
}

#[test]
fn solve_json_has_the_documented_fields_and_matches_the_library() {
    let doc = json(&[
        "solve",
        "--dist",
        DIST,
        "--latency",
        "data/latency-example.csv",
        "--draft-step",
        "0.002",
        "--max-capacity",
        "64",
        "--max-depth",
        "6",
        "--json",
    ]);
    let fields = [
        "capacity",
        "max_depth",
        "expected_accepted",
        "tokens_per_second",
        "speedup",
    ];
    for f in fields {
        assert!(doc["best"][f].is_number(), "best.{f}");
    }
    for f in ["capacity", "speedup"] {
        assert!(doc["speed_of_light"][f].is_number(), "speed_of_light.{f}");
    }
    let table = doc["table"].as_array().expect("table");
    for row in table {
        for f in fields {
            assert!(row[f].is_number(), "table row {f}");
        }
    }
    // Second computation: the library on the same inputs.
    let text = std::fs::read_to_string("data/latency-example.csv").unwrap();
    let cost = CostModel::new(
        LatencyProfile::from_csv_str(&text).unwrap(),
        DraftCost::PerStep(0.002),
        0.0,
    )
    .unwrap();
    let mut model = Iid::new(parse_dist(DIST).unwrap());
    let s = CapacitySolver::new(cost, 64, 6)
        .unwrap()
        .solve(&mut model)
        .unwrap();
    assert_eq!(table.len(), s.table.len());
    assert_eq!(doc["best"]["capacity"], s.best.capacity);
    assert_eq!(doc["best"]["max_depth"], s.best.max_depth);
    let sol = doc["speed_of_light"]["speedup"].as_f64().unwrap();
    assert!((sol - s.speed_of_light.speedup).abs() < 1e-12);
}

#[test]
fn allocate_json_lists_per_request_capacities() {
    let specs = ["0.9,0.05", "0.3,0.3,0.3", "zipf:1.1:16"];
    let doc = json(&[
        "allocate",
        "--dists",
        &specs.join(";"),
        "--budget",
        "24",
        "--json",
    ]);
    let mut models: Vec<Iid> = specs
        .iter()
        .map(|s| Iid::new(parse_dist(s).unwrap()))
        .collect();
    let a = allocate(&mut models, 24).unwrap();
    let reqs = doc["requests"].as_array().unwrap();
    assert_eq!(reqs.len(), 3);
    for (r, want) in reqs.iter().zip(&a.requests) {
        assert_eq!(r["capacity"], want.capacity);
        let e = r["expected_accepted"].as_f64().unwrap();
        assert!((e - want.expected_accepted).abs() < 1e-12);
    }
    let total = doc["expected_accepted"].as_f64().unwrap();
    let equal = doc["equal_split_expected_accepted"].as_f64().unwrap();
    assert!(total >= equal);
}

#[test]
fn bad_inputs_fail_with_one_line() {
    let cases: Vec<(String, &str)> = vec![
        ("draft_tokens,seconds\n".into(), "empty latency profile"),
        (
            "draft_tokens,seconds\n4,0.1\n2,0.1\n".into(),
            "must increase",
        ),
        ("draft_tokens,seconds\n4,0.1\n4,0.2\n".into(), "twice"),
        (
            "draft_tokens,seconds\n4,-0.1\n".into(),
            "not a finite number",
        ),
        ("tokens,time\n4,0.1\n".into(), "header"),
    ];
    for (csv, needle) in &cases {
        let path = temp_file("latency.csv", csv);
        let out = speclight(&[
            "solve",
            "--dist",
            DIST,
            "--latency",
            path.to_str().unwrap(),
            "--draft-step",
            "0.001",
        ]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success());
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(err.contains(needle), "{err} lacks {needle}");
    }
    let out = speclight(&[
        "allocate",
        "--dists",
        "0.5;0.5",
        "--budget",
        "3",
        "--min-per-request",
        "2",
    ]);
    assert!(!out.status.success());
    assert_eq!(String::from_utf8_lossy(&out.stderr).lines().count(), 1);
}
