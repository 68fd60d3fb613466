//! Properties of the certificates (docs/THEORY.md section 4) over random
//! distributions (1 to 64 tokens), capacities 1 to 4096 and depth limits.

use proptest::prelude::*;
use rand::{rngs::StdRng, Rng, SeedableRng};
use speclight::bound::{
    certify_best_first, check_with, dual_bound, optimal_value, paper_bound, renewal_bound,
    renewal_bound_optimized, CheckOptions, DualOptions, Moments,
};
use speclight::{evaluate, DraftTree, Iid, TokenDist, TreeBuilder};
use std::collections::HashSet;

/// A complete distribution from positive weights.
fn dist_strategy() -> impl Strategy<Value = TokenDist> {
    prop::collection::vec(0.01f64..1.0, 1..=64).prop_map(|w| {
        let total: f64 = w.iter().sum();
        let probs: Vec<f64> = w.iter().map(|x| x / total).collect();
        TokenDist::from_probs(&probs).expect("normalised weights form a distribution")
    })
}

fn depth_strategy() -> impl Strategy<Value = Option<u32>> {
    prop_oneof![Just(None), (1u32..=12).prop_map(Some)]
}

/// A random prefix-closed tree of at most `capacity` nodes and depth `<= D`
/// over tokens `0..=k` (token `k` is never drafted by the verifier: pi = 0).
fn random_tree(k: u32, capacity: usize, max_depth: Option<u32>, seed: u64) -> DraftTree {
    let mut rng = StdRng::seed_from_u64(seed);
    let target = rng.random_range(1..=capacity.min(300));
    let mut tree = DraftTree::new();
    let mut used: HashSet<(Option<usize>, u32)> = HashSet::new();
    for _ in 0..target * 4 {
        if tree.len() == target {
            break;
        }
        let parent = match rng.random_range(0..=tree.len()) {
            0 => None,
            i => Some(i - 1),
        };
        let depth = parent.map_or(1, |p| tree.depth(p) + 1);
        if max_depth.is_some_and(|d| depth > d) {
            continue;
        }
        let token = rng.random_range(0..=k);
        if used.insert((parent, token)) {
            tree.push(parent, token, 0.0).expect("parent exists");
        }
    }
    tree
}

fn rel_close(a: f64, b: f64, tol: f64) -> bool {
    (a - b).abs() <= tol * a.abs().max(b.abs()).max(1.0)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    /// The chain E[X](T) <= OPT(P) = U(lambda*) <= B2 <= B1 <= paper holds
    /// for the best-first tree, and the dual at lambda* (DFS, no heap)
    /// equals the builder's OPT(P) to 1e-9 relative.
    #[test]
    fn chain_holds_and_dual_equals_builder_opt(
        dist in dist_strategy(),
        capacity in 1usize..=4096,
        max_depth in depth_strategy(),
    ) {
        let mut model = Iid::new(dist);
        let mut builder = TreeBuilder::new(capacity).unwrap().with_max_depth(max_depth).unwrap();
        let tree = builder.build_owned(&mut model).unwrap();
        let builder_opt = *builder.opt_curve().last().unwrap();
        let opts = CheckOptions {
            dual: DualOptions::default().with_max_depth(max_depth),
            ..CheckOptions::default()
        };
        let cert = check_with(&tree, &mut model, capacity, &opts)
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert!(cert.certified);
        let opt = optimal_value(&mut model, capacity, &opts.dual).unwrap();
        let dual = dual_bound(&mut model, opt.lambda_star, capacity, &opts.dual).unwrap();
        prop_assert!(rel_close(dual.value, builder_opt, 1e-9),
            "U(lambda*) = {} but the builder's OPT(P) = {builder_opt}", dual.value);
        prop_assert!(rel_close(cert.optimal_expected_accepted, builder_opt, 1e-9));
    }

    /// B2 <= B1 <= paper bound, capped or not; B1 and the paper bound are
    /// >= 1 when finite (`ln P >= 0` and `mu2 >= mu^2`). B2 need not be: at
    /// `t = ln(P mu)` it is `(ln(P mu) + 1) / mu + mu2 / mu^2 - 1`, below 1
    /// when `mu > 1 + ln(P mu)` (a flat distribution at small `P`); it still
    /// bounds `OPT(P)`, which `chain_holds_and_dual_equals_builder_opt` checks.
    #[test]
    fn closed_forms_are_ordered(
        dist in dist_strategy(),
        capacity in 1usize..=4096,
        max_depth in depth_strategy(),
    ) {
        let m = Moments::of_dist(&dist).unwrap();
        let (mu, mu2) = (m.entropy, m.second_log_moment);
        let b2 = renewal_bound_optimized(mu, mu2, capacity, max_depth);
        let b1 = renewal_bound(mu, mu2, capacity, max_depth);
        let paper = paper_bound(mu, mu2, capacity, max_depth);
        let tol = 1e-12;
        prop_assert!(b2.value() <= b1.value() + tol && b1.value() <= paper.value() + tol);
        if let (Some(c2), Some(c1), Some(cp)) = (b2.closed_form(), b1.closed_form(), paper.closed_form()) {
            prop_assert!(c2 <= c1 + tol * c1.abs() && c1 <= cp + tol * cp.abs());
            prop_assert!(c1 >= 1.0 - 1e-9, "mu2 >= mu^2 makes B1 >= 1, got {c1}");
            prop_assert!(c2 > 0.0, "B2 = {c2}");
        }
        prop_assert!(b2.value().is_finite() && paper.value() <= capacity as f64);
    }

    /// Every bound is above E[X] of random (non-optimal) trees, including the
    /// dual U(lambda) at any lambda in [lambda*, 1].
    #[test]
    fn bounds_dominate_random_trees(
        dist in dist_strategy(),
        capacity in 1usize..=4096,
        max_depth in depth_strategy(),
        seed in any::<u64>(),
        lambda_frac in 0.0f64..=1.0,
    ) {
        let k = dist.len() as u32;
        let m = Moments::of_dist(&dist).unwrap();
        let mut model = Iid::new(dist);
        let tree = random_tree(k, capacity, max_depth, seed);
        let value = evaluate(&tree, &mut model).unwrap().expected_accepted;
        let opts = DualOptions::default().with_max_depth(max_depth);
        let opt = optimal_value(&mut model, capacity, &opts).unwrap();
        let lambda = opt.lambda_star + lambda_frac * (1.0 - opt.lambda_star);
        let dual = dual_bound(&mut model, lambda, capacity, &opts).unwrap().value;
        let (mu, mu2) = (m.entropy, m.second_log_moment);
        let bounds = [
            ("OPT(P)", opt.value),
            ("U(lambda)", dual),
            ("B2", renewal_bound_optimized(mu, mu2, capacity, max_depth).value()),
            ("B1", renewal_bound(mu, mu2, capacity, max_depth).value()),
            ("paper", paper_bound(mu, mu2, capacity, max_depth).value()),
        ];
        for (name, b) in bounds {
            prop_assert!(value <= b * (1.0 + 1e-9) + 1e-12,
                "tree seed {seed}: E[X] = {value} above {name} = {b}");
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(16))]

    /// The same on a context-dependent verifier (a random environment, where
    /// every node has its own distribution): the DFS asks the model per node,
    /// the builder lazily through its heap, and both agree on OPT(P). The
    /// closed forms do not apply per instance there, so the certificate
    /// ends the chain at the trivial cap.
    #[test]
    fn dual_matches_builder_in_a_random_environment(
        alpha in 0.05f64..3.0,
        k in 1usize..=16,
        capacity in 1usize..=512,
        max_depth in depth_strategy(),
        seed in any::<u64>(),
    ) {
        let mut env = speclight::model::RandomEnv::dirichlet(alpha, k, seed).unwrap();
        let mut builder = TreeBuilder::new(capacity).unwrap().with_max_depth(max_depth).unwrap();
        let tree = builder.build_owned(&mut env).unwrap();
        let builder_opt = *builder.opt_curve().last().unwrap();
        let opts = CheckOptions {
            dual: DualOptions::default().with_max_depth(max_depth),
            ..CheckOptions::default()
        };
        let cert = check_with(&tree, &mut env, capacity, &opts)
            .map_err(|e| TestCaseError::fail(format!("env seed {seed}: {e}")))?;
        prop_assert!(cert.renewal_bound.is_none());
        prop_assert!(rel_close(cert.dual_certificate, builder_opt, 1e-9),
            "env seed {seed}: U(lambda*) = {} vs builder OPT = {builder_opt}", cert.dual_certificate);
    }
}

/// docs/THEORY.md 4b notes that both renewal bounds are >= 1; that holds for B1
/// but not for B2 (see `closed_forms_are_ordered`): a flat distribution at
/// P = 1 has B2 below 1, still above OPT(1).
#[test]
fn b2_can_be_below_one_and_still_bounds_opt() {
    let dist = TokenDist::from_probs(&[0.05; 20]).unwrap();
    let m = Moments::of_dist(&dist).unwrap();
    let b2 = renewal_bound_optimized(m.entropy, m.second_log_moment, 1, None)
        .closed_form()
        .unwrap();
    assert!(b2 < 1.0, "B2 = {b2}");
    let opt = optimal_value(&mut Iid::new(dist), 1, &DualOptions::default()).unwrap();
    assert!((opt.value - 0.05).abs() < 1e-12);
    assert!(opt.value <= b2);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(32))]

    /// Issue 12 item 17: the builder's tree passes the optimality
    /// certificate (computed without the heap) under its own model, and a
    /// tree with one node fewer than `P` does not while the boundary has mass.
    #[test]
    fn best_first_trees_are_certified_optimal(
        dist in dist_strategy(),
        capacity in 2usize..=512,
        max_depth in depth_strategy(),
    ) {
        let mut m = Iid::new(dist);
        let tree = TreeBuilder::new(capacity)?.with_max_depth(max_depth)?.build_owned(&mut m)?;
        let o = certify_best_first(&tree, &mut m, capacity, max_depth)?;
        prop_assert!(o.optimal, "{o:?}");
        if tree.len() == capacity {
            let o = certify_best_first(&tree, &mut m, capacity + 1, max_depth)?;
            prop_assert_eq!(o.optimal, o.max_boundary_ln_pi == f64::NEG_INFINITY);
        }
    }
}
