//! The end-to-end test on real text: a paired trace written from the
//! bundled n-gram pair (verifier order 6, drafter order 3, both trained on
//! the Rust book's training part), tuned on sequences prompted from the
//! training part and measured on sequences prompted from the held-out part.
#![cfg(all(feature = "serde", feature = "corpora"))]

use rand::{rngs::StdRng, SeedableRng};
use speclight::experiment::corpus::{load, Corpus};
use speclight::tune::{tune, write_paired_sequence, SequenceShape, Split, TuneConfig};
use speclight::NgramLm;

#[test]
fn ngram_pair_end_to_end() {
    let text = load(Corpus::RustBook).unwrap();
    // A 300 kB slice keeps training quick in debug builds.
    let train_text = &text.train[..300_000.min(text.train.len())];
    let verifier_lm = NgramLm::train(train_text, 6).unwrap();
    let drafter_lm = NgramLm::train(train_text, 3).unwrap();
    let mut verifier = verifier_lm.model().with_temperature(0.8).unwrap();
    let mut drafter = drafter_lm.model().with_top_k(8).unwrap();
    let shape = SequenceShape {
        positions: 120,
        depth: 5,
        top_k: 8,
    };
    let (train_prompts, heldout_prompts) = (40u64, 24u64);
    let seed = 2026;
    let mut rng = StdRng::seed_from_u64(seed);
    let mut trace = Vec::new();
    let prompt_at = |t: &[u8], k: u64, n: u64| {
        let start = ((t.len() - 64) as u64 * k / n) as usize;
        t[start..start + 64].to_vec()
    };
    for seq in 0..train_prompts + heldout_prompts {
        let prompt = if seq < train_prompts {
            prompt_at(train_text, seq, train_prompts)
        } else {
            prompt_at(&text.heldout, seq - train_prompts, heldout_prompts)
        };
        verifier.set_context_bytes(&prompt);
        drafter.set_context_bytes(&prompt);
        write_paired_sequence(
            seq,
            &mut verifier,
            &mut drafter,
            shape,
            &mut rng,
            &mut trace,
        )
        .unwrap();
    }
    let config = TuneConfig {
        capacities: vec![2, 8, 24, 64],
        split: Split::from_seq(train_prompts),
        eagle_top_k: 4,
        eagle_depth: 5,
        ..Default::default()
    };
    let report = tune(|| Ok(&trace[..]), &config).unwrap();
    println!(
        "seed {seed}: {} training groups, {} held-out groups",
        report.train_groups, report.heldout_groups
    );
    assert_eq!(report.heldout_groups, heldout_prompts * 120);
    assert!(
        !report.speed_of_light.is_empty(),
        "{:?}",
        report.speed_of_light_note
    );
    for (r, sol) in report.results.iter().zip(&report.speed_of_light) {
        let best = &r.policies[0];
        let pred = best.predicted.unwrap();
        let meas = best.measured.unwrap();
        println!(
            "n={}: predicted {:.4} [{:.4}, {:.4}], measured {:.4} [{:.4}, {:.4}], speed of light {:.4}",
            r.capacity,
            pred.expected_accepted,
            pred.heldout_interval.lo,
            pred.heldout_interval.hi,
            meas.accepted.mean,
            meas.accepted.lo,
            meas.accepted.hi,
            sol.estimate.mean
        );
        assert!(pred.heldout_interval.contains(meas.accepted.mean));
        for other in &r.policies[1..] {
            let m = other.measured.unwrap().accepted.mean;
            println!(
                "    {}: {m:.4} {:?}",
                other.policy,
                other
                    .versus
                    .as_ref()
                    .and_then(|v| v.difference)
                    .map(|d| d.accepted)
            );
            // Static baselines: static best-first is ahead on the data.
            if other.predicted.is_some() {
                assert!(
                    meas.accepted.mean >= m,
                    "{} beats best-first at {}",
                    other.policy,
                    r.capacity
                );
            }
            // Every baseline against its best-first counterpart, paired
            // (static for chain and k-ary, dynamic for EAGLE): never
            // behind beyond noise.
            if let Some(v) = &other.versus {
                let d = v.difference.unwrap().accepted;
                assert!(
                    d.hi >= 0.0,
                    "{} ahead of {} at {}: {d:?}",
                    other.policy,
                    v.reference,
                    r.capacity
                );
            }
        }
        assert!(meas.accepted.lo <= sol.estimate.ci_high);
    }
}
