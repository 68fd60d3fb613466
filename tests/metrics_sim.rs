//! Issue 14: `tune --metrics` must recover the per-depth acceptance of a
//! simulated run within its intervals, on every supported format. The run
//! is the bundled n-gram pair (verifier order 6 at temperature 0.8, drafter
//! order 3, Rust book); its truth is the mean of the verifier's exact
//! `P(X >= d)` over the steps taken.
#![cfg(all(feature = "serde", feature = "corpora"))]

use speclight::experiment::corpus::{load, Corpus};
use speclight::metrics::{
    fit, fit_totals, parse, predict_tree, read, synthetic::SimulatedChain, MetricsFormat, RankTail,
    ServerMetrics,
};
use speclight::{DraftTree, NgramLm};

/// Two-sided 99% normal quantile: 5 depths at 99% each keep the family's
/// error at most 5% (Bonferroni).
const Z99: f64 = 2.575_829_303_548_901;
const K: usize = 5;

/// The trained pair and prompt, shared by the tests (training dominates).
struct Pair {
    verifier: NgramLm,
    drafter: NgramLm,
    prompt: Vec<u32>,
}

fn pair() -> &'static Pair {
    static PAIR: std::sync::OnceLock<Pair> = std::sync::OnceLock::new();
    PAIR.get_or_init(|| {
        let text = load(Corpus::RustBook).unwrap();
        let train = &text.train[..300_000.min(text.train.len())];
        Pair {
            verifier: NgramLm::train(train, 6).unwrap(),
            drafter: NgramLm::train(train, 3).unwrap(),
            prompt: text.heldout[..64].iter().map(|&b| u32::from(b)).collect(),
        }
    })
}

const SEED: u64 = 2026;

/// The run (3000 steps, seed 2026), valuing `trees` at every step's text.
fn run_with(trees: &[DraftTree]) -> (SimulatedChain, Vec<f64>) {
    let p = pair();
    let mut verifier = p.verifier.model().with_temperature(0.8).unwrap();
    let mut drafter = p.drafter.model();
    println!("seed {SEED}");
    SimulatedChain::run_valuing(
        &mut drafter,
        &mut verifier,
        &p.prompt,
        (K, 3000, SEED),
        trees,
    )
    .unwrap()
}

/// One run shared by the tests.
fn simulated_run() -> &'static SimulatedChain {
    static RUN: std::sync::OnceLock<SimulatedChain> = std::sync::OnceLock::new();
    RUN.get_or_init(|| run_with(&[]).0)
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
        (
            run.to_mistralrs_prometheus(),
            MetricsFormat::MistralrsPrometheus,
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

#[test]
fn totals_formats_give_the_runs_mean_and_a_constant_between_the_depths() {
    let run = simulated_run();
    let trt = run.to_trtllm_perf_metrics(5);
    let ServerMetrics::Totals(trt) = read(&trt).unwrap() else {
        panic!("TensorRT-LLM perf metrics are totals")
    };
    assert_eq!(trt.format, MetricsFormat::TensorrtllmPerfMetrics);
    let text = run.to_llamacpp_timings(7);
    let ServerMetrics::Totals(totals) = read(&text).unwrap() else {
        panic!("timings are totals")
    };
    assert_eq!(totals.format, MetricsFormat::LlamacppTimings);
    // Both formats carry the same two totals of the run.
    assert_eq!(
        (trt.draft_tokens, trt.accepted_tokens),
        (totals.draft_tokens, totals.accepted_tokens)
    );
    assert_eq!((totals.records, totals.draft_tokens), (7, 3000 * K as u64));
    assert!(parse(&text)
        .unwrap_err()
        .to_string()
        .contains("only totals"));
    let f = fit_totals(&totals, Some(K)).unwrap();
    let c = f.constant_depth.unwrap();
    assert_eq!(c.steps, 3000);
    // The chain's E[X] is the servers' mean, the run's mean, and the
    // per-position fit's chain value from the same run.
    let per_pos = fit(&parse(&run.to_prometheus("vllm:")).unwrap(), Z99).unwrap();
    assert!((c.chain_expected_accepted - c.mean_accepted).abs() < 1e-12);
    assert!((c.mean_accepted - per_pos.mean_accepted).abs() < 1e-12);
    // Same chain value, so the constant lies between the per-depth estimates.
    let est: Vec<f64> = per_pos
        .acceptance_by_depth
        .iter()
        .map(|d| d.estimate)
        .collect();
    let (lo, hi) = est
        .iter()
        .fold((1.0f64, 0.0f64), |(l, h), &a| (l.min(a), h.max(a)));
    assert!(
        lo <= c.acceptance_per_depth && c.acceptance_per_depth <= hi,
        "{c:?} {est:?}"
    );
    // The true curve falls with depth here: a constant is a summary only.
    assert!(hi - lo > 0.05, "{est:?}");
}

/// The best value over every prefix-closed tree of rank paths (ranks below
/// `ranks`, at most `p` nodes, depth at most `rows.len()`), rows as in
/// `RankTail`: `[a_d, (1 - a_d) p_0, ...]`. Exponential: small cases only.
fn brute_best(rows: &[Vec<f64>], p: usize) -> f64 {
    fn grow(rows: &[Vec<f64>], left: usize, value: f64, frontier: &[(usize, f64)], best: &mut f64) {
        *best = best.max(value);
        if left == 0 {
            return;
        }
        for (i, &(depth, reach)) in frontier.iter().enumerate() {
            // Take frontier[i], skip frontier[..i] for good, open its children.
            let mut next: Vec<(usize, f64)> = frontier[i + 1..].to_vec();
            if depth + 1 < rows.len() {
                next.extend(rows[depth + 1].iter().map(|&a| (depth + 1, reach * a)));
            }
            grow(rows, left - 1, value + reach, &next, best);
        }
    }
    let roots: Vec<(usize, f64)> = rows[0].iter().map(|&a| (0, a)).collect();
    let mut best = 0.0;
    grow(rows, p, 0.0, &roots, &mut best);
    best
}

#[test]
fn tree_predictions_match_brute_force_and_never_lose_to_the_chain() {
    let run = simulated_run();
    let f = fit(&parse(&run.to_sglang(3)).unwrap(), Z99).unwrap();
    let first: Vec<f64> = f.acceptance_by_depth.iter().map(|d| d.estimate).collect();
    for spec in ["zipf:1:3", "geometric:0.5:2", "0.3,0.1"] {
        let tail = RankTail::parse(spec).unwrap();
        let fractions = tail.fractions().to_vec();
        for p in 1..=6 {
            for depth in 1..=3u32 {
                let got = predict_tree(&first, &tail, p, Some(depth)).unwrap();
                let rows: Vec<Vec<f64>> = first[..depth as usize]
                    .iter()
                    .map(|&a| {
                        std::iter::once(a)
                            .chain(fractions.iter().map(|&q| (1.0 - a) * q))
                            .collect()
                    })
                    .collect();
                let want = brute_best(&rows, p);
                let ctx = format!("{spec} P {p} D {depth}: {got:?}");
                assert!(
                    (got.expected_accepted - want).abs() < 1e-12,
                    "brute {want}: {ctx}"
                );
                assert!(
                    got.expected_accepted >= got.chain_expected_accepted - 1e-12,
                    "{ctx}"
                );
                assert!(got.width_by_depth.iter().sum::<usize>() <= p, "{ctx}");
            }
        }
    }
    // The chain part needs no assumption: it is the fitted chain's E[X].
    let whole = predict_tree(&first, &RankTail::parse("1").unwrap(), K, None).unwrap();
    assert!((whole.chain_expected_accepted - f.chain_expected_accepted).abs() < 1e-12);
}

#[test]
fn tree_predictions_against_the_pairs_true_value() {
    let run = simulated_run();
    let f = fit(&parse(&run.to_prometheus("vllm:")).unwrap(), Z99).unwrap();
    let first: Vec<f64> = f.acceptance_by_depth.iter().map(|d| d.estimate).collect();
    let tail = RankTail::parse("zipf:1:8").unwrap();
    let predictions: Vec<_> = [1, 2, 4, 8, 16, 32]
        .iter()
        .map(|&p| predict_tree(&first, &tail, p, None).unwrap())
        .collect();
    // The rank-0 chain of K, valued the same way, checks the evaluator.
    let mut chain = DraftTree::new();
    let mut parent = None;
    for _ in 0..K {
        parent = Some(chain.push(parent, 0, 0.0).unwrap());
    }
    let mut trees: Vec<DraftTree> = predictions.iter().map(|p| p.tree.clone()).collect();
    trees.push(chain);
    let (again, truth) = run_with(&trees);
    // Valuing trees changes nothing in the run.
    assert_eq!(again.accepted, run.accepted);
    let true_chain: f64 = run.true_reach.iter().sum();
    assert!(
        (truth[predictions.len()] - true_chain).abs() < 1e-12,
        "{truth:?} {true_chain}"
    );
    // One node: rank 0 at depth 1, whose truth is the first true reach.
    assert!((truth[0] - run.true_reach[0]).abs() < 1e-12);
    println!("capacity  predicted (zipf:1:8 tail)  true value  chain (fit)");
    for (p, t) in predictions.iter().zip(&truth) {
        println!(
            "{:>8}  {:>24.4}  {:>10.4}  {:>11.4}",
            p.capacity, p.expected_accepted, t, p.chain_expected_accepted
        );
        // The part the metrics prove is within the fit's intervals of the truth.
        let depth = p.capacity.min(K);
        let bound = |pick: fn(&speclight::metrics::DepthAcceptance) -> f64| {
            let mut reach = 1.0;
            f.acceptance_by_depth[..depth]
                .iter()
                .map(|d| {
                    reach *= pick(d);
                    reach
                })
                .sum::<f64>()
        };
        let true_part: f64 = run.true_reach[..depth].iter().sum();
        assert!(
            bound(|d| d.ci_low) <= true_part && true_part <= bound(|d| d.ci_high),
            "{p:?}"
        );
    }
}
