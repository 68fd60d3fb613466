//! Properties of the core: optimality against brute force, tree invariants,
//! the shape of OPT(n), DP against Monte-Carlo, incremental against batch.

mod common;

use common::{random_tree, HashModel};
use proptest::prelude::*;
use speclight::{evaluate, monte_carlo, Iid, NextTokenModel, TokenDist, TokenId, TreeBuilder};

/// Value `sum pi(v)` of every prefix-closed tree of at most `cap` nodes with
/// depth <= `max_depth`, maximised by exhaustive enumeration. Nodes are added
/// in strictly increasing (length, lexicographic) order, each with its parent
/// already present, so every prefix-closed set is generated exactly once.
fn brute_force_opt<M: NextTokenModel>(model: &mut M, cap: usize, max_depth: usize) -> f64 {
    fn rec<M: NextTokenModel>(
        model: &mut M,
        set: &mut Vec<(Vec<TokenId>, f64)>,
        cap: usize,
        max_depth: usize,
        best: &mut f64,
    ) {
        let value: f64 = set.iter().map(|(_, p)| p).sum();
        *best = best.max(value);
        if set.len() == cap {
            return;
        }
        // Candidates: children of the root and of every member, above the last added.
        let mut parents: Vec<(Vec<TokenId>, f64)> = vec![(Vec::new(), 1.0)];
        parents.extend(set.iter().cloned());
        let mut cands = Vec::new();
        for (path, reach) in parents {
            if path.len() >= max_depth {
                continue;
            }
            let dist = model.next(&path).unwrap().clone();
            for (t, p) in dist.iter() {
                let mut child = path.clone();
                child.push(t);
                let key = (child.len(), child.clone());
                let above_last = set.last().is_none_or(|(l, _)| key > (l.len(), l.clone()));
                if above_last && !set.iter().any(|(s, _)| *s == child) {
                    cands.push((child, reach * p));
                }
            }
        }
        for c in cands {
            set.push(c);
            rec(model, set, cap, max_depth, best);
            set.pop();
        }
    }
    let mut best = 0.0;
    rec(model, &mut Vec::new(), cap, max_depth, &mut best);
    best
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, .. ProptestConfig::default() })]

    /// docs/THEORY.md section 3: best-first equals the optimum over every tree.
    #[test]
    fn builder_is_optimal_on_tiny_inputs(
        seed in any::<u64>(), vocab in 1u32..=4, cap in 1usize..=7,
        depth in prop::option::of(1u32..=4), complete in any::<bool>(),
    ) {
        let mut model = HashModel::new(seed, vocab, complete);
        let mut builder = TreeBuilder::new(cap).unwrap().with_max_depth(depth).unwrap();
        let tree = builder.build_owned(&mut model).unwrap();
        let got = evaluate(&tree, &mut model).unwrap().expected_accepted;
        let want = brute_force_opt(&mut model, cap, depth.map_or(cap, |d| d as usize));
        prop_assert!((got - want).abs() < 1e-12, "seed {seed}: builder {got} brute force {want}");
        let curve_last = builder.opt_curve().last().copied().unwrap_or(0.0);
        prop_assert!((curve_last - got).abs() < 1e-12);
    }

    /// The built tree satisfies every invariant and respects P and D.
    #[test]
    fn built_trees_are_valid(
        seed in any::<u64>(), vocab in 1u32..=12, cap in 1usize..=300,
        depth in prop::option::of(1u32..=6),
    ) {
        let mut model = HashModel::new(seed, vocab, false);
        let tree = TreeBuilder::new(cap).unwrap().with_max_depth(depth).unwrap()
            .build_owned(&mut model).unwrap();
        tree.validate().unwrap();
        prop_assert!(tree.len() <= cap);
        prop_assert!(depth.is_none_or(|d| tree.max_depth() <= d));
        // Path probabilities come out in non-increasing order (best-first).
        prop_assert!(tree.path_logprobs().windows(2).all(|w| w[1] <= w[0] + 1e-12));
    }

    /// OPT(n) is non-decreasing and concave in n.
    #[test]
    fn opt_curve_is_nondecreasing_and_concave(
        seed in any::<u64>(), vocab in 1u32..=10, cap in 1usize..=400,
    ) {
        let mut model = HashModel::new(seed, vocab, false);
        let mut builder = TreeBuilder::new(cap).unwrap();
        builder.build(&mut model).unwrap();
        let c = builder.opt_curve();
        let gains: Vec<f64> = std::iter::once(c[0]).chain(c.windows(2).map(|w| w[1] - w[0])).collect();
        prop_assert!(gains.iter().all(|&g| g >= 0.0));
        prop_assert!(gains.windows(2).all(|w| w[1] <= w[0] + 1e-12), "not concave: {gains:?}");
    }

    /// docs/THEORY.md section 2: the DP equals the mean of simulated walks.
    #[test]
    fn dp_agrees_with_monte_carlo(seed in any::<u64>(), n in 1usize..=40, vocab in 1u32..=5) {
        let tree = random_tree(seed, n, vocab);
        let mut verifier = HashModel::new(seed.wrapping_add(1), vocab, false);
        let exact = evaluate(&tree, &mut verifier).unwrap();
        let samples = 4000;
        let mc = monte_carlo(&tree, &mut verifier, samples, seed).unwrap();
        let tol = 5.0 * mc.accepted.std_error + 5.0 * f64::from(tree.max_depth()) / samples as f64;
        prop_assert!((mc.accepted.mean - exact.expected_accepted).abs() <= tol,
            "seed {seed}: dp {} mc {} +- {}", exact.expected_accepted, mc.accepted.mean, mc.accepted.std_error);
        // The histogram's tail sums estimate P(X >= k) as well.
        for (k, &p) in exact.accept_at_least.iter().enumerate() {
            let hits: u64 = mc.histogram[k + 1..].iter().sum();
            let freq = hits as f64 / samples as f64;
            let se = (p * (1.0 - p) / samples as f64).sqrt();
            prop_assert!((freq - p).abs() <= 5.0 * se + 5.0 / samples as f64, "k={} p={p} freq={freq}", k + 1);
        }
    }

    /// The incremental form, fed by the same model, gives the same tree as `build`.
    #[test]
    fn incremental_matches_build(
        seed in any::<u64>(), vocab in 1u32..=8, cap in 1usize..=200,
        depth in prop::option::of(1u32..=5), width in 1usize..=6,
    ) {
        let mut model = HashModel::new(seed, vocab, false);
        let mut builder = TreeBuilder::new(cap).unwrap().with_max_depth(depth).unwrap();
        let batch_tree = builder.build_owned(&mut model).unwrap();
        let root = model.next(&[]).unwrap().clone();
        let mut inc = builder.begin(&root);
        let mut path = Vec::new();
        loop {
            let batch = inc.next_batch(width).unwrap().to_vec();
            if batch.is_empty() { break; }
            for node in batch {
                inc.tree().path_tokens(node, &mut path);
                let dist = model.next(&path).unwrap().clone();
                inc.feed(node, &dist).unwrap();
            }
        }
        let inc_tree = inc.finish().unwrap().clone();
        inc_tree.validate().unwrap();
        let a = evaluate(&batch_tree, &mut model).unwrap().expected_accepted;
        let b = evaluate(&inc_tree, &mut model).unwrap().expected_accepted;
        prop_assert!((a - b).abs() < 1e-12, "values differ: build {a} incremental {b}");
        if width == 1 {
            // Same expansions in the same order: the very same arena.
            prop_assert_eq!(batch_tree.tokens(), inc_tree.tokens());
            prop_assert_eq!(batch_tree.parent_indices(), inc_tree.parent_indices());
        }
    }
}

/// Hides `is_context_free`, so the builder takes its general path (one heap,
/// lazy expansion) on a model that is in fact context-free.
struct Opaque(Iid);

impl NextTokenModel for Opaque {
    fn next(&mut self, path: &[TokenId]) -> speclight::Result<&TokenDist> {
        self.0.next(path)
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 32, .. ProptestConfig::default() })]

    /// Context-free builds (eager expansion, and per-rank queues for large
    /// capacities) give the same OPT curve as the general lazy path.
    #[test]
    fn context_free_paths_match_the_general_path(
        weights in prop::collection::vec(1u32..50, 1..6), mass in 0.3f64..=1.0,
        cap in 1usize..3000, depth in prop::option::of(1u32..8),
    ) {
        let total: f64 = weights.iter().map(|&w| f64::from(w)).sum();
        let probs: Vec<f64> = weights.iter().map(|&w| f64::from(w) / total * mass).collect();
        let dist = TokenDist::from_probs(&probs).unwrap();
        let mut fast = TreeBuilder::new(cap).unwrap().with_max_depth(depth).unwrap();
        let tree = fast.build_owned(&mut Iid::new(dist.clone())).unwrap();
        tree.validate().unwrap();
        let mut general = TreeBuilder::new(cap).unwrap().with_max_depth(depth).unwrap();
        general.build(&mut Opaque(Iid::new(dist))).unwrap();
        prop_assert_eq!(fast.opt_curve().len(), general.opt_curve().len());
        for (a, b) in fast.opt_curve().iter().zip(general.opt_curve()) {
            prop_assert!((a - b).abs() <= 1e-12 * b.max(1.0), "{a} vs {b}");
        }
    }
}

#[test]
fn lazy_expansion_skips_nodes_that_cannot_contribute() {
    // A chain-like drafter: with P = 10 only the nodes whose children are
    // candidates get expanded; eager expansion would ask for all 10.
    let mut model = HashModel::new(3, 3, true);
    let mut builder = TreeBuilder::new(10).unwrap();
    builder.build(&mut model).unwrap();
    assert!(
        builder.expansions() <= 10,
        "root plus at most the internal nodes and frontier"
    );
    let internal = builder.tree().has_children().iter().filter(|&&h| h).count();
    assert!(
        builder.expansions() > internal,
        "every internal node and the root were expanded"
    );
}

#[test]
fn issue_reference_value_for_the_cli_example() {
    // The issue quotes E[X] ~ 6.32 for 0.5,0.3,0.2 at P = 1024; the DP and
    // the OPT curve must agree with each other and with that figure.
    let mut m = Iid::new(TokenDist::from_probs(&[0.5, 0.3, 0.2]).unwrap());
    let mut b = TreeBuilder::new(1024).unwrap();
    let tree = b.build_owned(&mut m).unwrap();
    let v = evaluate(&tree, &mut m).unwrap().expected_accepted;
    assert!((v - b.opt_curve()[1023]).abs() < 1e-9);
    assert!((v - 6.32).abs() < 0.01, "{v}");
}

#[test]
fn deep_near_deterministic_tree_stays_finite() {
    // Depth 10,000: products of probabilities underflow f64, log space must not.
    let mut m = Iid::new(TokenDist::from_probs(&[1.0 - 1e-12, 1e-12]).unwrap());
    let tree = TreeBuilder::new(10_000)
        .unwrap()
        .build_owned(&mut m)
        .unwrap();
    assert_eq!(tree.max_depth(), 10_000);
    let ev = evaluate(&tree, &mut m).unwrap();
    assert!(ev.expected_accepted.is_finite());
    assert!((ev.expected_accepted - 10_000.0).abs() < 1e-3);
    let mut tiny = Iid::new(TokenDist::from_probs(&[0.5, 1e-300]).unwrap());
    let ev = evaluate(&tree, &mut tiny).unwrap();
    assert!(ev
        .accept_at_least
        .iter()
        .all(|p| p.is_finite() && *p >= 0.0));
}

/// A distribution with heavy ties: uniform, or weights from a small set
/// (repeated probabilities), or arbitrary weights; `mass` below 1 truncates.
fn tie_prone_dist() -> impl Strategy<Value = TokenDist> {
    let weights = prop_oneof![
        (1usize..7).prop_map(|k| vec![1u32; k]),
        prop::collection::vec(1u32..=2, 1..7),
        prop::collection::vec(1u32..50, 1..7),
    ];
    (weights, prop_oneof![Just(1.0), 0.3f64..=1.0]).prop_map(|(w, mass)| {
        let total: f64 = w.iter().map(|&x| f64::from(x)).sum();
        let probs: Vec<f64> = w.iter().map(|&x| f64::from(x) / total * mass).collect();
        TokenDist::from_probs(&probs).unwrap()
    })
}

/// The canonical order by brute force, independent of the builders: every
/// node with key at least `min_key` (keys summed root to leaf, as the
/// builders do), sorted by key descending, depth, rank path; the first `cap`.
fn canonical_first(dist: &TokenDist, cap: usize, depth: u32, min_key: f64) -> Vec<Vec<usize>> {
    let logp = dist.log_probs();
    let mut all: Vec<(f64, Vec<usize>)> = Vec::new();
    let mut level: Vec<(f64, Vec<usize>)> = vec![(0.0, Vec::new())];
    for _ in 0..depth {
        let mut next = Vec::new();
        for (key, path) in &level {
            for (r, l) in logp.iter().enumerate() {
                let k = key + l;
                if k >= min_key {
                    let mut p = path.clone();
                    p.push(r);
                    next.push((k, p));
                }
            }
        }
        if next.is_empty() {
            break;
        }
        all.extend(next.iter().cloned());
        level = next;
    }
    all.sort_by(|a, b| {
        b.0.total_cmp(&a.0)
            .then(a.1.len().cmp(&b.1.len()))
            .then(a.1.cmp(&b.1))
    });
    all.into_iter().take(cap).map(|(_, p)| p).collect()
}

/// The rank path of every node of a tree built from `dist`.
fn rank_paths(tree: &speclight::DraftTree, dist: &TokenDist) -> Vec<Vec<usize>> {
    let rank_of = |t: TokenId| dist.tokens().iter().position(|&x| x == t).unwrap();
    let mut out: Vec<Vec<usize>> = Vec::with_capacity(tree.len());
    for i in 0..tree.len() {
        let mut p = tree.parent(i).map_or_else(Vec::new, |q| out[q].clone());
        p.push(rank_of(tree.token(i)));
        out.push(p);
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, .. ProptestConfig::default() })]

    /// The builder's tie contract (`speclight::build`, "Ties"), on
    /// distributions full of ties: the eager context-free heap and the
    /// general lazy path give the same keys in the same order, and those
    /// are the keys of the canonical first `P` by brute force; where no two
    /// keys tie (checked on one node more than the tree holds) the nodes
    /// themselves are the canonical ones, in canonical order.
    #[test]
    fn heap_builds_keep_the_tie_contract(
        dist in tie_prone_dist(), cap in 1usize..600, depth in prop::option::of(1u32..6),
    ) {
        let make = |c: usize| TreeBuilder::new(c).unwrap().with_max_depth(depth).unwrap();
        let eager = make(cap).build_owned(&mut Iid::new(dist.clone())).unwrap();
        let general = make(cap).build_owned(&mut Opaque(Iid::new(dist.clone()))).unwrap();
        let bits = |t: &speclight::DraftTree| -> Vec<u64> {
            t.path_logprobs().iter().map(|l| l.to_bits()).collect()
        };
        prop_assert_eq!(bits(&eager), bits(&general));
        let min_key = eager.path_logprobs().last().copied().unwrap_or(0.0);
        let canonical = canonical_first(&dist, cap, depth.unwrap_or(cap as u32), min_key);
        let logp = dist.log_probs();
        let canonical_bits: Vec<u64> = canonical
            .iter()
            .map(|path| path.iter().fold(0.0, |key, &r| key + logp[r]).to_bits())
            .collect();
        prop_assert_eq!(bits(&eager), canonical_bits);
        let plus_one = make(cap + 1).build_owned(&mut Iid::new(dist.clone())).unwrap();
        if plus_one.path_logprobs().windows(2).all(|w| w[1] < w[0]) {
            prop_assert_eq!(rank_paths(&eager, &dist), canonical.clone());
            prop_assert_eq!(rank_paths(&general, &dist), canonical);
        }
    }
}
