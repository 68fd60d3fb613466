//! Issue 14: `tune --metrics` must recover the per-depth acceptance of a
//! simulated run within its intervals, on every supported format. The run
//! is the bundled n-gram pair (verifier order 6 at temperature 0.8, drafter
//! order 3, Rust book); its truth is the mean of the verifier's exact
//! `P(X >= d)` over the steps taken.
#![cfg(all(feature = "serde", feature = "corpora"))]

use speclight::experiment::corpus::{load, Corpus};
use speclight::metrics::{fit, parse, synthetic::SimulatedChain, MetricsFormat};
use speclight::NgramLm;

/// Two-sided 99% normal quantile: 5 depths at 99% each keep the family's
/// error at most 5% (Bonferroni).
const Z99: f64 = 2.575_829_303_548_901;
const K: usize = 5;

/// One run shared by the tests (training the pair dominates the time).
fn simulated_run() -> &'static SimulatedChain {
    static RUN: std::sync::OnceLock<SimulatedChain> = std::sync::OnceLock::new();
    RUN.get_or_init(run_once)
}

fn run_once() -> SimulatedChain {
    let text = load(Corpus::RustBook).unwrap();
    let train = &text.train[..300_000.min(text.train.len())];
    let verifier_lm = NgramLm::train(train, 6).unwrap();
    let drafter_lm = NgramLm::train(train, 3).unwrap();
    let mut verifier = verifier_lm.model().with_temperature(0.8).unwrap();
    let mut drafter = drafter_lm.model();
    let prompt: Vec<u32> = text.heldout[..64].iter().map(|&b| u32::from(b)).collect();
    let seed = 2026;
    println!("seed {seed}");
    SimulatedChain::run(&mut drafter, &mut verifier, &prompt, K, 3000, seed).unwrap()
}

#[test]
fn every_format_recovers_the_simulated_acceptance() {
    let run = simulated_run();
    let truth = run.true_acceptance();
    let observed_mean =
        run.accepted.iter().map(|&a| f64::from(a)).sum::<f64>() / run.accepted.len() as f64;
    let files = [
        (run.to_prometheus("vllm:"), MetricsFormat::VllmPrometheus),
        (
            run.to_prometheus("llamacpp:"),
            MetricsFormat::LlamacppPrometheus,
        ),
        (run.to_vllm_requests(7), MetricsFormat::VllmRequestHistogram),
        (run.to_sglang(7), MetricsFormat::Sglang),
    ];
    for (text, format) in &files {
        let counts = parse(text).unwrap();
        assert_eq!(counts.format, *format);
        assert_eq!(counts.steps, 3000);
        let f = fit(&counts, Z99).unwrap();
        assert_eq!(f.acceptance_by_depth.len(), K, "{format:?}");
        for (d, truth) in f.acceptance_by_depth.iter().zip(&truth) {
            assert!(
                d.ci_low <= *truth && *truth <= d.ci_high,
                "{format:?} depth {}: truth {truth} outside [{}, {}]",
                d.depth,
                d.ci_low,
                d.ci_high
            );
        }
        // The chain's E[X] under the fit is the servers' own mean
        // acceptance length minus the bonus token, and the run's mean.
        assert!((f.chain_expected_accepted - f.mean_accepted).abs() < 1e-12);
        assert!((f.mean_accepted - observed_mean).abs() < 1e-12);
        assert_ne!(f.uniform_draft_length, Some(false));
    }
    // The deep depths must carry information: the test can fail.
    let f = fit(&parse(&files[0].0).unwrap(), Z99).unwrap();
    assert!(f.acceptance_by_depth[K - 1].trials > 30, "{f:?}");
}

#[test]
fn vllm_mean_acceptance_length_equals_the_fitted_chain() {
    let run = simulated_run();
    let jsonl = run.to_vllm_requests(1);
    let doc: serde_json::Value = serde_json::from_str(jsonl.trim()).unwrap();
    let server = doc["metrics"]["speculative_decoding"]["mean_acceptance_length"]
        .as_f64()
        .unwrap();
    let f = fit(&parse(&jsonl).unwrap(), Z99).unwrap();
    assert!((1.0 + f.chain_expected_accepted - server).abs() < 1e-12);
}
