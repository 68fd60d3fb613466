//! `Evaluator::evaluate` against a straightforward reference: for every node,
//! walk to the root and multiply the verifier's probabilities of the path's
//! tokens (one model call per node and ancestor, no shared pass). Covers the
//! three paths of the evaluator: context-free with a dense token table,
//! context-free with token ids too large for one (binary search), and the
//! general path (a model per prefix).

mod common;

use common::{random_tree, HashModel};
use proptest::prelude::*;
use speclight::{DraftTree, Evaluator, Iid, NextTokenModel, TokenDist, TokenId, TreeBuilder};

/// Per-node `(pi(v), ln pi(v))` by walking to the root.
fn reference_reach<M: NextTokenModel>(tree: &DraftTree, model: &mut M) -> Vec<(f64, f64)> {
    let mut path = Vec::new();
    (0..tree.len())
        .map(|v| {
            tree.path_tokens(v, &mut path);
            let (mut p, mut lp) = (1.0, 0.0);
            for k in 0..path.len() {
                let dist = model.next(&path[..k]).unwrap();
                p *= dist.prob_of(path[k]);
                lp += dist.log_prob_of(path[k]);
            }
            (p, lp)
        })
        .collect()
}

/// Evaluates with a reused `evaluator` and checks every output against the
/// reference: `E[X]`, `P(X >= k)`, `reach`, `log_reach`, `prefix_expected`.
fn check<M: NextTokenModel>(
    evaluator: &mut Evaluator,
    tree: &DraftTree,
    model: &mut M,
) -> Result<(), TestCaseError> {
    let want = reference_reach(tree, model);
    let got = evaluator.evaluate(tree, model).unwrap();
    let expected: f64 = want.iter().map(|r| r.0).sum();
    prop_assert!((got.expected_accepted - expected).abs() < 1e-12);
    let mut at_least = vec![0.0; tree.max_depth() as usize];
    for (v, r) in want.iter().enumerate() {
        at_least[tree.depth(v) as usize - 1] += r.0;
    }
    prop_assert_eq!(got.accept_at_least.len(), at_least.len());
    for (g, w) in got.accept_at_least.iter().zip(&at_least) {
        prop_assert!((g - w).abs() < 1e-12, "P(X >= k): {} vs {}", g, w);
    }
    prop_assert_eq!(evaluator.reach().len(), tree.len());
    prop_assert_eq!(evaluator.log_reach().len(), tree.len());
    for (v, r) in want.iter().enumerate() {
        prop_assert!((evaluator.reach()[v] - r.0).abs() < 1e-12);
        let lr = evaluator.log_reach()[v];
        prop_assert!(
            lr == r.1 || (lr - r.1).abs() < 1e-9,
            "ln pi({}): {} vs {}",
            v,
            lr,
            r.1
        );
    }
    let mut curve = Vec::new();
    evaluator.prefix_expected(&mut curve);
    let mut sum = 0.0;
    for (c, r) in curve.iter().zip(&want) {
        sum += r.0;
        prop_assert!((c - sum).abs() < 1e-12);
    }
    prop_assert_eq!(curve.len(), tree.len());
    Ok(())
}

/// A complete distribution over `k` tokens with ids `base + stride * i`.
fn spread_dist(seed: u64, k: u32, base: u32, stride: u32) -> TokenDist {
    let tokens: Vec<TokenId> = (0..k).map(|i| base + stride * i).collect();
    let weights: Vec<f64> = (0..k)
        .map(|i| 1.0 + f64::from((seed.wrapping_mul(2_654_435_761).rotate_left(i) % 4) as u32))
        .collect();
    let total: f64 = weights.iter().sum();
    let probs: Vec<f64> = weights.iter().map(|w| w / total).collect();
    TokenDist::from_token_probs(&tokens, &probs).unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, .. ProptestConfig::default() })]

    /// General path: every prefix has its own distribution; random
    /// (non-optimal) trees, some nodes off the verifier's support.
    #[test]
    fn general_path_matches_reference(
        seed in any::<u64>(), vocab in 1u32..=8, n in 0usize..=120, complete in any::<bool>(),
    ) {
        let mut model = HashModel::new(seed, vocab, complete);
        let mut evaluator = Evaluator::new();
        // Two trees through one evaluator: reused buffers, smaller then larger.
        check(&mut evaluator, &random_tree(seed ^ 1, n / 2, vocab + 1), &mut model)?;
        check(&mut evaluator, &random_tree(seed, n, vocab + 1), &mut model)?;
    }

    /// Context-free paths: small token ids (dense table) and ids far apart
    /// (binary search), on random trees and on built (best-first) trees.
    #[test]
    fn context_free_paths_match_reference(
        seed in any::<u64>(), k in 1u32..=6, n in 0usize..=200, stride in prop::sample::select(vec![1u32, 100_000]),
    ) {
        let mut model = Iid::new(spread_dist(seed, k, 3, stride));
        let mut evaluator = Evaluator::new();
        let built = TreeBuilder::new(n.max(1)).unwrap().build_owned(&mut model).unwrap();
        check(&mut evaluator, &built, &mut model)?;
        // Random trees use ids 0..=k+3 * stride: some on the support, some not.
        let random = random_tree(seed, n, k + 4);
        check(&mut evaluator, &random, &mut model)?;
        check(&mut evaluator, &built, &mut model)?;
    }
}

/// A chain deeper than `f64` can follow in linear space: `ln pi` stays
/// exact where `pi` underflows to 0.
#[test]
fn a_deep_chain_keeps_exact_log_reach() {
    let mut model = Iid::new(TokenDist::from_probs(&[0.5, 0.5]).unwrap());
    let mut tree = DraftTree::new();
    for v in 0..3000usize {
        tree.push(v.checked_sub(1), 0, 0.0).unwrap();
    }
    let mut evaluator = Evaluator::new();
    let ev = evaluator.evaluate(&tree, &mut model).unwrap();
    assert!((ev.expected_accepted - 1.0).abs() < 1e-12);
    let ln_half = 0.5f64.ln();
    for (v, &lr) in evaluator.log_reach().iter().enumerate() {
        assert!((lr - (v + 1) as f64 * ln_half).abs() < 1e-9 * (v + 1) as f64);
    }
    assert_eq!(evaluator.reach()[2999], 0.0);
}
