//! `speclight bound` and `speclight check` end to end.
#![cfg(feature = "cli")]

use crate::harness::{speclight, tmp};
use rand::{rngs::StdRng, SeedableRng};
use speclight::bound::{renewal_bound, Moments};
use speclight::{parse_dist, Iid, TreeBuilder};
use std::process::Output;

fn json(out: &Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout).expect("stdout is JSON")
}

fn one_stderr_line(out: &Output) -> String {
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    assert_eq!(err.trim_end().lines().count(), 1, "stderr: {err}");
    err
}

#[test]
fn bound_dist_json_has_the_issue_numbers_and_fields() {
    let out = speclight(&[
        "bound",
        "--dist",
        "0.5,0.3,0.2",
        "--capacity",
        "1024",
        "--json",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let doc = json(&out);
    for field in [
        "capacity",
        "max_depth",
        "entropy",
        "second_log_moment",
        "optimal_expected_accepted",
        "lambda",
        "dual_certificate",
        "renewal_bound_optimized",
        "renewal_bound",
        "paper_bound",
        "certified",
    ] {
        assert!(doc.get(field).is_some(), "missing {field}");
    }
    let opt = doc["optimal_expected_accepted"].as_f64().unwrap();
    let b1 = doc["renewal_bound"].as_f64().unwrap();
    // The figures quoted in issue 3.
    assert!((opt - 6.324).abs() < 5e-4, "OPT = {opt}");
    assert!((b1 - 7.857).abs() < 5e-4, "B1 = {b1}");
    // And the same numbers from the library by the other route.
    let dist = parse_dist("0.5,0.3,0.2").unwrap();
    let m = Moments::of_dist(&dist).unwrap();
    let mut builder = TreeBuilder::new(1024).unwrap();
    builder.build(&mut Iid::new(dist)).unwrap();
    assert!((opt - builder.opt_curve()[1023]).abs() < 1e-9);
    assert_eq!(
        b1,
        renewal_bound(m.entropy, m.second_log_moment, 1024, None).value()
    );
    assert_eq!(doc["certified"], serde_json::json!(true));
    assert!(doc["renewal_bound_optimized"].as_f64().unwrap() <= b1);
    assert!(doc["paper_bound"].as_f64().unwrap() >= b1);
}

#[test]
fn bound_dist_refuses_an_incomplete_distribution() {
    let out = speclight(&["bound", "--dist", "0.5,0.3", "--capacity", "16"]);
    assert!(!out.status.success());
    let err = one_stderr_line(&out);
    assert!(
        err.contains("0.8") && err.contains("full distribution"),
        "{err}"
    );
}

#[test]
fn bound_dist_with_zero_entropy_reports_no_closed_form() {
    let out = speclight(&[
        "bound",
        "--dist",
        "1.0",
        "--capacity",
        "16",
        "--max-depth",
        "5",
        "--json",
    ]);
    assert!(out.status.success());
    let doc = json(&out);
    assert_eq!(doc["closed_form"], serde_json::json!(false));
    assert_eq!(doc["renewal_bound"].as_f64(), Some(5.0));
    assert!(doc["note"]
        .as_str()
        .unwrap()
        .contains("no finite closed form"));
}

#[test]
fn check_certifies_a_fitting_tree_and_names_a_broken_link() {
    let tree = tmp("tree.json");
    let tree_arg = tree.to_str().unwrap();
    let built = speclight(&[
        "build",
        "--dist",
        "0.6,0.3,0.1",
        "--capacity",
        "20",
        "--json",
        "--out",
        tree_arg,
    ]);
    assert!(built.status.success());
    let ok = speclight(&[
        "check",
        "--tree",
        tree_arg,
        "--verifier",
        "0.6,0.3,0.1",
        "--capacity",
        "20",
    ]);
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    assert!(String::from_utf8_lossy(&ok.stdout).contains("certified: yes"));
    // Under another verifier the bound chain still holds, but the tree is
    // not optimal there (issue 12 item 17): exit 4, both verdicts printed.
    let other = speclight(&[
        "check",
        "--tree",
        tree_arg,
        "--verifier",
        "0.1,0.3,0.6",
        "--capacity",
        "20",
        "--json",
    ]);
    assert_eq!(other.status.code(), Some(4));
    assert!(one_stderr_line(&other).contains("not optimal"));
    let doc = json(&other);
    assert_eq!(doc["certified"], true);
    assert_eq!(doc["optimality"]["optimal"], false);
    assert!(doc["gap_to_opt"].as_f64() > Some(0.1));
    assert!(doc["tree_expected_accepted"].as_f64() < doc["optimal_expected_accepted"].as_f64());
    // Named as the drafter, the tree is optimal for it: exit 0, the gap to
    // OPT under the verifier still shown.
    let drafted = speclight(&[
        "check",
        "--tree",
        tree_arg,
        "--verifier",
        "0.1,0.3,0.6",
        "--drafter",
        "0.6,0.3,0.1",
        "--capacity",
        "20",
    ]);
    assert!(drafted.status.success());
    let text = String::from_utf8_lossy(&drafted.stdout);
    assert!(text.contains("certified: yes") && text.contains("optimal for the drafter: yes"));
    assert!(text.contains("gap to OPT(P) under the verifier"), "{text}");
    // Capacity 10: the tree does not fit.
    let bad = speclight(&[
        "check",
        "--tree",
        tree_arg,
        "--verifier",
        "0.6,0.3,0.1",
        "--capacity",
        "10",
    ]);
    assert_eq!(bad.status.code(), Some(3), "not certified");
    let err = one_stderr_line(&bad);
    assert!(
        err.contains("|T| <= P") && err.contains("20") && err.contains("10"),
        "{err}"
    );
    // Bad input is a third exit code.
    let missing = speclight(&[
        "check",
        "--tree",
        "/nonexistent/t.json",
        "--verifier",
        "0.5,0.5",
        "--capacity",
        "4",
    ]);
    assert_eq!(missing.status.code(), Some(1));
    one_stderr_line(&missing);
    let _ = std::fs::remove_file(tree);
}

#[test]
fn bound_trace_estimates_and_refuses_what_it_must() {
    let dist = parse_dist("0.5,0.3,0.2").unwrap();
    let seed = 77;
    let mut rng = StdRng::seed_from_u64(seed);
    let mut lines = String::new();
    for _ in 0..10 {
        for _ in 0..400 {
            let t = dist.sample(&mut rng).unwrap();
            lines += &format!("{{\"token\": {t}, \"logprob\": {}}}\n", dist.log_prob_of(t));
        }
        lines += "{\"end\": true}\n";
    }
    let path = tmp("trace.jsonl");
    std::fs::write(&path, &lines).unwrap();
    let p = path.to_str().unwrap();
    let out = speclight(&["bound", "--trace", p, "--capacity", "64", "--json"]);
    assert!(
        out.status.success(),
        "seed {seed}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let doc = json(&out);
    let est = &doc["estimate"];
    assert!(
        est["ci_low"].as_f64() <= est["mean"].as_f64()
            && est["mean"].as_f64() <= est["ci_high"].as_f64()
    );
    assert_eq!(doc["tokens"].as_u64(), Some(4000));
    assert!(doc["windows_off_end"].as_u64().is_some());

    std::fs::write(&path, "{\"token\": 1, \"logprob\": 0}\n".repeat(200)).unwrap();
    let out = speclight(&["bound", "--trace", p, "--capacity", "64"]);
    assert!(!out.status.success());
    assert!(one_stderr_line(&out).contains("zero entropy"));

    std::fs::write(
        &path,
        "{\"token\": 1, \"logprob\": -1}\n\n{\"token\": 1, \"logprob\": \"x\"}\n",
    )
    .unwrap();
    let out = speclight(&["bound", "--trace", p, "--capacity", "64"]);
    assert!(!out.status.success());
    assert!(one_stderr_line(&out).contains("trace line 3"));

    // Issue 12 item 9: an absurd --blocks is one line, not a panic.
    std::fs::write(&path, &lines).unwrap();
    for blocks in ["9223372036854775808", "18446744073709551615"] {
        let out = speclight(&[
            "bound",
            "--trace",
            p,
            "--capacity",
            "64",
            "--blocks",
            blocks,
        ]);
        assert_eq!(out.status.code(), Some(1));
        assert!(one_stderr_line(&out).contains(&format!("{blocks} blocks: above the limit")));
    }
    // Issue 12 item 15: log-probabilities of -1e308 overflow the total.
    std::fs::write(&path, "{\"token\": 1, \"logprob\": -1e308}\n".repeat(200)).unwrap();
    let out = speclight(&["bound", "--trace", p, "--capacity", "64"]);
    assert_eq!(out.status.code(), Some(1));
    let err = one_stderr_line(&out);
    assert!(
        err.contains("total surprisal") && !err.contains("inf"),
        "{err}"
    );
    let _ = std::fs::remove_file(path);
}
