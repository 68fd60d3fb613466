//! Tuning from paired traces: estimator coverage against a known matrix,
//! the reader's line-numbered errors, and the end-to-end check on a
//! synthetic trace (held-out measurement inside the prediction interval,
//! best-first at least every baseline).

use proptest::prelude::*;
use speclight::tune::{
    predict, tune, validate, AcceptanceEstimator, Group, Policy, Split, SyntheticTrace,
    TraceReader, TuneConfig, Z95,
};
use speclight::{evaluate, format::from_rank_paths, PositionalByDepth};

fn truth() -> Vec<Vec<f64>> {
    vec![
        vec![0.55, 0.15, 0.08, 0.04],
        vec![0.65, 0.12, 0.05],
        vec![0.7, 0.1],
    ]
}

fn estimator_for(trace: &[u8]) -> AcceptanceEstimator {
    let mut est = AcceptanceEstimator::new();
    let mut reader = TraceReader::new(trace);
    let mut g = Group::default();
    while reader.next_group(&mut g).unwrap() {
        est.observe(&g);
    }
    est
}

#[test]
fn wilson_intervals_cover_the_true_matrix() {
    // Seeds 0..200; 100 groups of depth 4 each. Ranks are drawn
    // independently, so the truth of both matrices is `truth()` (the last
    // row reused at depth 4), rank 3 and beyond being 0 where the row stops.
    let synth = SyntheticTrace::new(truth(), 4, 4).unwrap();
    let rows = synth.rows().to_vec();
    let (mut covered, mut cells) = (0u32, 0u32);
    for seed in 0..200 {
        let mut trace = Vec::new();
        synth.write_jsonl(&mut trace, 10, 10, seed).unwrap();
        let est = estimator_for(&trace);
        for m in [est.marginal(), est.conditional()] {
            for d in 0..4 {
                for (k, &a) in rows[d.min(2)].iter().take(2).enumerate() {
                    let (lo, hi) = m.interval(d, k, Z95);
                    cells += 1;
                    covered += u32::from(lo <= a && a <= hi);
                }
            }
        }
    }
    let coverage = f64::from(covered) / f64::from(cells);
    println!("seeds 0..200: Wilson 95% coverage {coverage:.4} over {cells} cells");
    assert!((0.93..=0.975).contains(&coverage), "coverage {coverage}");
}

#[test]
fn delta_method_interval_covers_the_true_expected_accepted() {
    // For a fixed tree, E[X] under the estimated model +- z * estimation_se
    // must cover E[X] under the true model about 95% of the time.
    let synth = SyntheticTrace::new(truth(), 4, 3).unwrap();
    let mut true_model = PositionalByDepth::new(&truth()).unwrap();
    let paths: Vec<Vec<u32>> = vec![
        vec![0],
        vec![1],
        vec![0, 0],
        vec![0, 1],
        vec![1, 0],
        vec![0, 0, 0],
        vec![2],
    ];
    let tree = from_rank_paths(&paths, None).unwrap();
    let true_value = evaluate(&tree, &mut true_model).unwrap().expected_accepted;
    let (mut covered, runs) = (0u32, 150u32);
    for seed in 1000..1000 + u64::from(runs) {
        let mut trace = Vec::new();
        synth.write_jsonl(&mut trace, 20, 20, seed).unwrap();
        let est = estimator_for(&trace);
        let mut model = est.conditional().to_model().unwrap();
        let p = predict(&tree, &mut model, &est.conditional().trials, 1, Z95).unwrap();
        let half = Z95 * p.estimation_se;
        covered += u32::from((p.expected_accepted - true_value).abs() <= half);
    }
    let coverage = f64::from(covered) / f64::from(runs);
    println!("seeds 1000..1150: delta-method 95% coverage {coverage:.3}");
    assert!((0.90..=0.99).contains(&coverage), "coverage {coverage}");
}

#[test]
fn end_to_end_on_a_synthetic_trace() {
    // Seed 7: 400 sequences x 30 positions x depth 5; 30% of sequences held out.
    let synth = SyntheticTrace::new(truth(), 6, 5).unwrap();
    let mut trace = Vec::new();
    synth.write_jsonl(&mut trace, 400, 30, 7).unwrap();
    let config = TuneConfig {
        capacities: vec![1, 3, 8, 20, 48],
        split: Split::new(0.3, 0).unwrap(),
        eagle_top_k: 4,
        eagle_depth: 5,
        ..Default::default()
    };
    let report = tune(|| Ok(&trace[..]), &config).unwrap();
    assert!(report.heldout_groups > 2000, "{}", report.heldout_groups);
    assert_eq!(report.heldout_truncated, 0);
    let mut true_model = PositionalByDepth::new(&truth()).unwrap();
    for r in &report.results {
        let best = &r.policies[0];
        assert_eq!(best.policy, Policy::BestFirst);
        let pred = best.predicted.unwrap();
        let meas = best.measured.unwrap();
        println!(
            "n={}: predicted {:.4} [{:.4}, {:.4}], measured {:.4}",
            r.capacity,
            pred.expected_accepted,
            pred.heldout_interval.lo,
            pred.heldout_interval.hi,
            meas.accepted.mean
        );
        assert!(pred.heldout_interval.contains(meas.accepted.mean));
        // Issue 11: one interval type. The prediction band and the measured
        // mean's interval are both `stats::Interval` (a second `tune::Interval`
        // type would not compile here).
        let bands: [&speclight::stats::Interval; 2] = [&pred.heldout_interval, &meas.accepted];
        assert!(bands.iter().all(|i| i.lo <= i.mean && i.mean <= i.hi));
        assert!(best.nodes <= r.capacity);
        for other in &r.policies[1..] {
            let m = other.measured.unwrap().accepted.mean;
            println!("    {}: measured {m:.4}", other.policy);
            assert!(other.nodes <= r.capacity);
            assert!(
                meas.accepted.mean >= m,
                "{} beats best-first at {}",
                other.policy,
                r.capacity
            );
            if let Some(p) = other.predicted {
                assert!(pred.expected_accepted >= p.expected_accepted - 1e-12);
            }
            // Paired: no static baseline is ahead of static best-first
            // beyond noise (best-first is optimal under the true model).
            // The dynamic policies see uninformative drafter scores here,
            // so their paired comparison would test noise against noise.
            if let Some(v) = other
                .versus
                .as_ref()
                .filter(|v| v.reference == Policy::BestFirst)
            {
                let d = v.difference.unwrap();
                assert!(d.accepted.hi >= 0.0, "{}: {:?}", other.policy, d);
            }
        }
        // The chosen static tree's value under the *true* model lies in the
        // estimation interval too (a second computation of the same E[X]).
        let tree = from_rank_paths(
            &speclight::format::to_rank_paths(
                &report_tree(&report, r.capacity, &config),
                speclight::format::RankRule::TokenIsRank,
            )
            .unwrap(),
            None,
        )
        .unwrap();
        let t = evaluate(&tree, &mut true_model).unwrap().expected_accepted;
        assert!((t - pred.expected_accepted).abs() <= 4.0 * pred.estimation_se + 1e-9);
    }
    // The emitted formats agree with each other.
    let paths = speclight::format::parse_vllm_tree(&report.chosen.vllm).unwrap();
    assert_eq!(paths, report.chosen.rank_paths);
    assert_eq!(report.chosen.tree.nodes.len(), paths.len());
}

/// Rebuilds best-first at capacity `n` from the report's acceptance matrix
/// (the same computation the tuner makes, redone from the serialised data).
fn report_tree(
    report: &speclight::tune::TuneReport,
    n: usize,
    _config: &TuneConfig,
) -> speclight::DraftTree {
    let mut model = report.acceptance.to_model().unwrap();
    let d = report
        .results
        .iter()
        .find(|r| r.capacity == n)
        .unwrap()
        .max_depth;
    speclight::TreeBuilder::new(n)
        .unwrap()
        .with_max_depth(Some(d))
        .unwrap()
        .build_owned(&mut model)
        .unwrap()
}

#[test]
fn tune_with_latency_uses_the_solver_choice() {
    use speclight::capacity::{CostModel, DraftCost, LatencyProfile};
    let synth = SyntheticTrace::new(truth(), 4, 4).unwrap();
    let mut trace = Vec::new();
    synth.write_jsonl(&mut trace, 100, 20, 3).unwrap();
    let t_v = LatencyProfile::new(&[(0, 0.02), (8, 0.02), (64, 0.05)]).unwrap();
    let config = TuneConfig {
        capacities: vec![2, 64],
        cost: Some(CostModel::new(t_v, DraftCost::PerStep(0.002), 0.0).unwrap()),
        ..Default::default()
    };
    let report = tune(|| Ok(&trace[..]), &config).unwrap();
    let choice = report.capacity_choice.as_ref().unwrap();
    assert_eq!(report.chosen.capacity, choice.capacity);
    assert!(report.results.iter().any(|r| r.capacity == choice.capacity));
    // The choice is the argmax of its own table.
    let max = choice.table.iter().map(|c| c.speedup).fold(0.0, f64::max);
    assert_eq!(choice.speedup, max);
    assert!(choice.free_drafter_speedup >= choice.speedup);
}

#[test]
fn tune_stops_at_the_first_bad_line_with_its_number() {
    let synth = SyntheticTrace::new(truth(), 4, 2).unwrap();
    let mut trace = Vec::new();
    synth.write_jsonl(&mut trace, 3, 3, 0).unwrap();
    let mut text = String::from_utf8(trace).unwrap();
    text.push_str("{\"seq\": 0}\n");
    let err = tune(|| Ok(text.as_bytes()), &TuneConfig::default()).unwrap_err();
    assert!(err.to_string().starts_with("trace line 19: "), "{err}");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(40))]
    /// Corrupting any set of lines makes `validate` report exactly those
    /// line numbers plus the good lines the ordering rule then refuses.
    #[test]
    fn validate_reports_exactly_the_corrupted_lines(seed in 0u64..1000, picks in proptest::collection::btree_set(0usize..36, 0..6)) {
        let synth = SyntheticTrace::new(truth(), 4, 3).unwrap();
        let mut trace = Vec::new();
        synth.write_jsonl(&mut trace, 3, 4, seed).unwrap();
        let text = String::from_utf8(trace).unwrap();
        let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
        prop_assert_eq!(lines.len(), 36);
        let mut expected = std::collections::BTreeSet::new();
        for &i in &picks {
            lines[i] = "{ broken".into();
            expected.insert(i + 1);
        }
        // Ordering consequences, by simulating the rule: a group whose
        // depth-1 line is corrupted has all its other lines refused ("starts
        // at depth d, not 1"); otherwise a line whose predecessor in the
        // group was refused or corrupted is refused ("depth k follows j").
        for g in 0..12 {
            let good: Vec<usize> = (0..3).filter(|j| !picks.contains(&(3 * g + j))).collect();
            let mut last: Option<usize> = None;
            for &k in &good {
                let ok = match last {
                    None => k == 0,
                    Some(l) => k == l + 1,
                };
                if ok {
                    last = Some(k);
                } else {
                    expected.insert(3 * g + k + 1);
                }
            }
        }
        let report = validate(lines.join("\n").as_bytes(), 100).unwrap();
        let got: std::collections::BTreeSet<usize> = report.errors.iter().map(|e| e.0).collect();
        prop_assert_eq!(report.bad_lines as usize, report.errors.len());
        prop_assert_eq!(got, expected);
    }
}

#[test]
fn measured_values_stay_below_the_trace_speed_of_light() {
    // One acceptance row for every depth: the rank process is then an i.i.d.
    // verifier over "rank tokens" (plus one lumped miss token), the depth-1
    // records of consecutive positions are a sample of it, and docs/THEORY.md 4d
    // bounds every tree's E[X]. Seed 11.
    let row = vec![0.5, 0.2, 0.1, 0.05];
    let synth = SyntheticTrace::new(vec![row], 4, 6).unwrap();
    let mut trace = Vec::new();
    synth.write_jsonl(&mut trace, 60, 200, 11).unwrap();
    let config = TuneConfig {
        capacities: vec![2, 8, 32],
        split: Split::new(0.5, 3).unwrap(),
        ..Default::default()
    };
    let report = tune(|| Ok(&trace[..]), &config).unwrap();
    assert_eq!(
        report.speed_of_light.len(),
        3,
        "{:?}",
        report.speed_of_light_note
    );
    for (r, sol) in report.results.iter().zip(&report.speed_of_light) {
        assert_eq!(r.capacity, sol.capacity);
        let best = &r.policies[0];
        let predicted = best.predicted.unwrap().expected_accepted;
        println!(
            "n={}: predicted {predicted:.4}, measured {:.4}, speed of light {:.4} [{:.4}, {:.4}]",
            r.capacity,
            best.measured.unwrap().accepted.mean,
            sol.estimate.mean,
            sol.estimate.ci_low,
            sol.estimate.ci_high
        );
        // Every policy's measurement is consistent with the bound (the
        // intervals meet), and the true OPT(n), computed from the true
        // model, is inside or below the bound's interval.
        for p in &r.policies {
            assert!(p.measured.unwrap().accepted.lo <= sol.estimate.ci_high);
        }
        let mut truth_model = PositionalByDepth::new(synth.rows()).unwrap();
        let tree = speclight::TreeBuilder::new(r.capacity)
            .unwrap()
            .build_owned(&mut truth_model)
            .unwrap();
        let opt = evaluate(&tree, &mut truth_model).unwrap().expected_accepted;
        println!("    true OPT({}) = {opt:.4}", r.capacity);
        assert!(opt <= sol.estimate.ci_high);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]
    /// Arbitrary bytes, and valid traces with bytes overwritten, never make
    /// the reader, the validator or the tuner panic: they return a report
    /// or an error.
    #[test]
    fn hostile_input_gives_errors_not_panics(
        noise in proptest::collection::vec(any::<u8>(), 0..600),
        flips in proptest::collection::vec((0usize..4000, any::<u8>()), 0..8),
        seed in 0u64..100,
    ) {
        let config = TuneConfig { capacities: vec![1, 5], ..Default::default() };
        let _ = validate(&noise[..], 10).unwrap();
        let _ = tune(|| Ok(&noise[..]), &config);
        let synth = SyntheticTrace::new(truth(), 4, 3).unwrap();
        let mut trace = Vec::new();
        synth.write_jsonl(&mut trace, 4, 4, seed).unwrap();
        for &(at, byte) in &flips {
            let i = at % trace.len();
            trace[i] = byte;
        }
        let report = validate(&trace[..], 10).unwrap();
        prop_assert!(report.lines <= 48 + flips.len() as u64);
        let result = tune(|| Ok(&trace[..]), &config);
        if report.is_valid() {
            // A trace the validator accepts is one the tuner reads (it may
            // still refuse it for lack of data, never for a line).
            if let Err(e) = result {
                prop_assert!(!e.to_string().starts_with("trace line"), "{}", e);
            }
        } else {
            prop_assert!(result.is_err());
        }
    }
}

#[test]
fn writer_acceptance_matches_the_closed_form_for_iid_models() {
    // With i.i.d. verifier p and drafter q, the verifier's token is the
    // drafter's rank-k candidate with probability p(q's k-th token), at every
    // depth: the estimator on a written trace must recover it (seed 21).
    use rand::{rngs::StdRng, SeedableRng};
    use speclight::{Iid, TokenDist};
    let p = TokenDist::from_probs(&[0.05, 0.4, 0.25, 0.2, 0.1]).unwrap();
    let q = TokenDist::from_probs(&[0.3, 0.1, 0.35, 0.05, 0.2]).unwrap();
    let mut verifier = Iid::new(p.clone());
    let mut drafter = Iid::new(q.clone());
    let mut rng = StdRng::seed_from_u64(21);
    let mut trace = Vec::new();
    for seq in 0..40 {
        speclight::tune::write_paired_sequence(
            seq,
            &mut verifier,
            &mut drafter,
            speclight::tune::SequenceShape {
                positions: 100,
                depth: 3,
                top_k: 4,
            },
            &mut rng,
            &mut trace,
        )
        .unwrap();
    }
    let est = estimator_for(&trace);
    for d in 0..3 {
        for (k, &token) in q.tokens().iter().take(4).enumerate() {
            let truth = p.prob_of(token);
            let (lo, hi) = est.marginal().interval(d, k, 3.5);
            assert!(
                lo <= truth && truth <= hi,
                "a[{d}][{k}]: {truth} not in [{lo}, {hi}]"
            );
        }
    }
    assert_eq!(est.marginal().trials, vec![4000, 4000, 4000]);
}

#[test]
fn bootstrap_and_delta_method_agree_when_groups_are_independent() {
    // Synthetic groups are independent draws, so resampling sequences
    // (bootstrap) and the delta method (independent records) estimate the
    // same standard error: a second computation of it. Seed 99.
    let synth = SyntheticTrace::new(truth(), 4, 4).unwrap();
    let mut trace = Vec::new();
    synth.write_jsonl(&mut trace, 300, 20, 99).unwrap();
    let config = TuneConfig {
        capacities: vec![4, 16, 48],
        bootstrap: 200,
        ..Default::default()
    };
    let report = tune(|| Ok(&trace[..]), &config).unwrap();
    for r in &report.results {
        for p in &r.policies {
            if let Some(pred) = p.predicted {
                let ratio = pred.estimation_se / pred.delta_se;
                println!(
                    "n={} {}: bootstrap se / delta se = {ratio:.3}",
                    r.capacity, p.policy
                );
                assert!((0.75..=1.33).contains(&ratio), "{ratio}");
            }
        }
    }
}

#[test]
fn one_held_out_sequence_still_gives_finite_intervals_and_a_readable_report() {
    // Seed 8: two sequences, the second held out; the clustered error needs
    // two clusters, so the measurement falls back to independent groups.
    let synth = SyntheticTrace::new(truth(), 4, 3).unwrap();
    let mut trace = Vec::new();
    synth.write_jsonl(&mut trace, 2, 200, 8).unwrap();
    let config = TuneConfig {
        capacities: vec![4],
        split: Split::from_seq(1),
        ..Default::default()
    };
    let report = tune(|| Ok(&trace[..]), &config).unwrap();
    let m = report.results[0].policies[0].measured.unwrap();
    assert_eq!((m.groups, m.sequences), (200, 1));
    assert!(m.std_error.is_finite() && m.std_error > 0.0);
    let json = serde_json::to_string(&report).unwrap();
    let back: speclight::tune::TuneReport = serde_json::from_str(&json).unwrap();
    assert_eq!(back.results.len(), 1);
}

/// Issue 12 item 15: `tune` with nothing to measure is an error naming the
/// cause (the old code returned a report of empty measurements), and a
/// depth limit of 0 is refused as the builder refuses it.
#[test]
fn tune_refuses_an_empty_heldout_split_and_a_zero_depth() {
    let synth = SyntheticTrace::new(vec![vec![0.6, 0.2]], 3, 3).unwrap();
    let mut trace = Vec::new();
    synth.write_jsonl(&mut trace, 20, 10, 2).unwrap();
    let config = TuneConfig {
        capacities: vec![2, 4],
        split: Split::from_seq(20),
        ..Default::default()
    };
    let err = tune(|| Ok(&trace[..]), &config).unwrap_err();
    assert!(
        err.to_string().contains("the held-out split is empty"),
        "{err}"
    );

    // Held-out groups exist but none records the depths the trees need.
    let mut short = Vec::new();
    let shallow = SyntheticTrace::new(vec![vec![0.6, 0.2]], 3, 2).unwrap();
    synth.write_jsonl(&mut short, 10, 10, 2).unwrap();
    let mut tail = Vec::new();
    shallow.write_jsonl(&mut tail, 20, 10, 3).unwrap();
    // Sequences 10..20 of the shallow trace (depth 2) follow 0..10 (depth 3).
    let tail = String::from_utf8(tail).unwrap();
    let from = tail.find("\"seq\":10,").unwrap();
    let start = tail[..from].rfind('\n').map_or(0, |i| i + 1);
    short.extend_from_slice(&tail.as_bytes()[start..]);
    let config = TuneConfig {
        capacities: vec![4],
        split: Split::from_seq(10),
        eagle_depth: 3,
        ..Default::default()
    };
    let err = tune(|| Ok(&short[..]), &config).unwrap_err();
    assert!(
        err.to_string().contains("record fewer than the 3 depths"),
        "{err}"
    );

    let config = TuneConfig {
        max_depth: Some(0),
        split: Split::new(0.3, 0).unwrap(),
        ..Default::default()
    };
    assert_eq!(
        tune(|| Ok(&trace[..]), &config).unwrap_err(),
        speclight::Error::ZeroDepth
    );
}

/// Issue 12 item 7: the writer's sizes are bounded by the limits a reader
/// accepts (the old code tried to allocate for `depth = u32::MAX`).
#[test]
fn paired_writer_refuses_shapes_beyond_the_limits() {
    use speclight::tune::{
        write_paired_sequence, SequenceShape, MAX_SEQUENCE_POSITIONS, MAX_TOP_K, MAX_TRACE_DEPTH,
    };
    use speclight::{Iid, TokenDist};
    let mut verifier = Iid::new(TokenDist::from_probs(&[0.5, 0.3, 0.2]).unwrap());
    let mut drafter = verifier.clone();
    let mut rng = <rand::rngs::StdRng as rand::SeedableRng>::seed_from_u64(1);
    let ok = SequenceShape {
        positions: 3,
        depth: MAX_TRACE_DEPTH,
        top_k: MAX_TOP_K,
    };
    assert!(ok.check().is_ok());
    for bad in [
        SequenceShape {
            depth: u32::MAX,
            ..ok
        },
        SequenceShape {
            depth: MAX_TRACE_DEPTH + 1,
            ..ok
        },
        SequenceShape { depth: 0, ..ok },
        SequenceShape {
            top_k: MAX_TOP_K + 1,
            ..ok
        },
        SequenceShape { top_k: 0, ..ok },
        SequenceShape {
            positions: MAX_SEQUENCE_POSITIONS + 1,
            ..ok
        },
        SequenceShape {
            positions: u64::MAX,
            ..ok
        },
    ] {
        assert!(bad.check().is_err(), "{bad:?}");
        let mut out = Vec::new();
        let err = write_paired_sequence(0, &mut verifier, &mut drafter, bad, &mut rng, &mut out);
        assert!(
            matches!(err, Err(speclight::Error::InvalidArgument(_))),
            "{bad:?}: {err:?}"
        );
        assert!(out.is_empty());
    }
}
