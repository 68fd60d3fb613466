//! The order every real workload must show (issue 5), on a run small enough
//! for debug mode: an order-5 verifier and an order-2 drafter trained on
//! 150 KB of each corpus, 16 prompts from the held-out part, 256 sampled
//! bytes each (the trace), trees at 32 contexts, P up to 64.
//!
//! - drafter tree <= oracle tree (a theorem at every context: the oracle is
//!   optimal for the verifier);
//! - oracle tree <= trace speed of light: the trace estimate is a mean with a
//!   95% interval, so the oracle's mean must not exceed its upper end;
//! - oracle tree <= (B2) <= (B1) <= published bound, from the measured mu, mu2.
#![cfg(feature = "corpora")]

use speclight::bound::trace::{estimate, DEFAULT_BLOCKS};
use speclight::bound::{paper_bound, renewal_bound, renewal_bound_optimized};
use speclight::experiment::corpus::{load, Corpus};
use speclight::experiment::workload::{measure, WorkloadConfig};
use speclight::trace::to_trace;
use speclight::NgramLm;

#[test]
fn drafter_oracle_speed_of_light_and_bounds_are_ordered() {
    let config = WorkloadConfig {
        prompts: 16,
        prompt_len: 32,
        sequence_len: 256,
        context_stride: 128,
        max_capacity: 64,
        drafter_top_k: 16,
        seed: 5,
        threads: 2,
        ..WorkloadConfig::default()
    };
    println!("seed {}", config.seed);
    for corpus in Corpus::ALL {
        let text = load(corpus).expect("bundled corpus");
        let train = &text.train[..150_000];
        let verifier = NgramLm::train(train, 5).expect("trains");
        let drafter = NgramLm::train(train, 2).expect("trains");
        let r = measure(&verifier, &drafter, &text.heldout, &config, &|| {}).expect("measures");
        let trace = to_trace(&r.sequences).expect("valid trace");
        for (i, &p) in r.capacities.iter().enumerate() {
            let (drafter, oracle) = (r.drafter[i], r.oracle[i]);
            let light = estimate(&trace, p, DEFAULT_BLOCKS)
                .expect("estimate")
                .estimate;
            let b2 = renewal_bound_optimized(r.mu, r.mu2, p, None).value();
            let b1 = renewal_bound(r.mu, r.mu2, p, None).value();
            let paper = paper_bound(r.mu, r.mu2, p, None).value();
            println!(
                "{} P={p}: drafter {:.3} oracle {:.3}±{:.3} light {:.3} [{:.3}, {:.3}] B2 {b2:.3} B1 {b1:.3} paper {paper:.3}",
                corpus.name(),
                drafter.mean,
                oracle.mean,
                oracle.std_error,
                light.mean,
                light.ci_low,
                light.ci_high
            );
            assert!(drafter.mean <= oracle.mean + 1e-12);
            assert!(oracle.mean <= light.ci_high, "{} P={p}", corpus.name());
            assert!(oracle.mean <= b2 && b2 <= b1 + 1e-12 && b1 <= paper + 1e-12);
        }
    }
}
