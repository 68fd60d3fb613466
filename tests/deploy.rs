//! Issue 13: every constrained optimum of `speclight::deploy` against brute
//! force over every tree (vocabulary <= 4, P <= 8, depth limits), SGLang's
//! tree against a second, naive implementation of its beam procedure and a
//! Monte-Carlo run of verification, and the server rules on every string
//! speclight writes.

use proptest::prelude::*;
use rand::{rngs::StdRng, Rng, SeedableRng};
use speclight::deploy::{
    best_level_uniform, best_level_uniform_model, best_rank_limited, best_rank_limited_model,
    best_sglang, deploy, sglang_tree, sglang_value, RankAcceptance, Server, SglangConfig,
};
use speclight::format::{is_level_uniform, parse_vllm_tree, to_rank_paths, RankRule};
use speclight::{NextTokenModel, Result, TokenDist, TokenId};
use std::collections::{HashMap, HashSet};

/// Calls `visit` on every prefix-closed tree of rank paths with at most
/// `max_nodes` nodes, ranks below `vocab` and depth at most `max_depth`
/// (each tree once: the classic frontier enumeration of rooted subtrees).
fn every_tree(vocab: u32, max_nodes: usize, max_depth: usize, visit: &mut dyn FnMut(&[Vec<u32>])) {
    fn grow(
        chosen: &mut Vec<Vec<u32>>,
        frontier: &[Vec<u32>],
        limits: (u32, usize, usize),
        visit: &mut dyn FnMut(&[Vec<u32>]),
    ) {
        visit(chosen);
        if chosen.len() == limits.1 {
            return;
        }
        for (i, node) in frontier.iter().enumerate() {
            let mut next: Vec<Vec<u32>> = frontier[i + 1..].to_vec();
            if node.len() < limits.2 {
                next.extend((0..limits.0).map(|r| {
                    let mut c = node.clone();
                    c.push(r);
                    c
                }));
            }
            chosen.push(node.clone());
            grow(chosen, &next, limits, visit);
            chosen.pop();
        }
    }
    let roots: Vec<Vec<u32>> = (0..vocab).map(|r| vec![r]).collect();
    grow(
        &mut Vec::new(),
        &roots,
        (vocab, max_nodes, max_depth),
        visit,
    );
}

/// `pi` of a rank path under per-depth rows (depths past the last reuse it).
fn rows_pi(rows: &[Vec<f64>], path: &[u32]) -> f64 {
    path.iter()
        .enumerate()
        .map(|(d, &r)| {
            rows[d.min(rows.len() - 1)]
                .get(r as usize)
                .copied()
                .unwrap_or(0.0)
        })
        .product()
}

fn random_rows(rng: &mut StdRng, vocab: usize, depths: usize) -> Vec<Vec<f64>> {
    (0..depths)
        .map(|_| {
            let w: Vec<f64> = (0..vocab).map(|_| rng.random_range(0.02..1.0)).collect();
            let total = w.iter().sum::<f64>() / rng.random_range(0.5..1.0);
            w.iter().map(|x| x / total).collect()
        })
        .collect()
}

/// A context-dependent model: every path gets its own distribution over
/// `vocab` tokens (ids `10 + k`), all positive, from a hash of the path.
#[derive(Clone)]
struct HashModel {
    vocab: usize,
    seed: u64,
    cache: HashMap<Vec<TokenId>, TokenDist>,
}

impl HashModel {
    fn new(vocab: usize, seed: u64) -> Self {
        Self {
            vocab,
            seed,
            cache: HashMap::new(),
        }
    }
}

impl NextTokenModel for HashModel {
    fn next(&mut self, path: &[TokenId]) -> Result<&TokenDist> {
        if !self.cache.contains_key(path) {
            let mut h = self.seed ^ 0x9e37_79b9_7f4a_7c15;
            for &t in path {
                h = (h ^ u64::from(t))
                    .wrapping_mul(0x1000_0000_01b3)
                    .rotate_left(17);
            }
            let mut rng = StdRng::seed_from_u64(h);
            let w: Vec<f64> = (0..self.vocab)
                .map(|_| rng.random_range(0.05..1.0))
                .collect();
            let total = w.iter().sum::<f64>() / rng.random_range(0.6..1.0);
            let probs: Vec<f64> = w.iter().map(|x| x / total).collect();
            let tokens: Vec<TokenId> = (0..self.vocab as u32).map(|k| 10 + k).collect();
            self.cache
                .insert(path.to_vec(), TokenDist::from_token_probs(&tokens, &probs)?);
        }
        Ok(&self.cache[path])
    }
}

/// `pi` of a rank path under a model (rank = place in its distribution).
fn model_pi(model: &mut HashModel, path: &[u32]) -> f64 {
    let mut tokens = Vec::new();
    let mut pi = 1.0;
    for &r in path {
        let dist = model.next(&tokens).unwrap();
        pi *= dist.probs()[r as usize];
        tokens.push(dist.tokens()[r as usize]);
    }
    pi
}

/// Brute-force optima over every tree: (unconstrained, level-uniform,
/// rank-limited below `k`), values from `pi`.
fn brute_force(
    vocab: u32,
    p: usize,
    depth: usize,
    k: u32,
    pi: &mut dyn FnMut(&[u32]) -> f64,
) -> (f64, f64, f64) {
    let mut memo: HashMap<Vec<u32>, f64> = HashMap::new();
    let mut best = (0.0f64, 0.0f64, 0.0f64);
    every_tree(vocab, p, depth, &mut |tree| {
        let value: f64 = tree
            .iter()
            .map(|path| *memo.entry(path.clone()).or_insert_with(|| pi(path)))
            .sum();
        best.0 = best.0.max(value);
        if is_level_uniform(tree) {
            best.1 = best.1.max(value);
        }
        if tree.iter().all(|path| path.iter().all(|&r| r < k)) {
            best.2 = best.2.max(value);
        }
    });
    best
}

const CASES: [(u32, usize, Option<u32>); 7] = [
    (2, 8, None),
    (2, 8, Some(2)),
    (3, 8, Some(3)),
    (3, 7, None),
    (4, 6, None),
    (4, 7, Some(2)),
    (4, 8, Some(1)),
];

#[test]
fn constrained_optima_over_rank_acceptance_match_brute_force() {
    for seed in 0..3u64 {
        let mut rng = StdRng::seed_from_u64(seed);
        for &(vocab, p, depth) in &CASES {
            let depths = rng.random_range(1..4);
            let rows = random_rows(&mut rng, vocab as usize, depths);
            let acc = RankAcceptance::new(&rows).unwrap();
            let k = rng.random_range(1..vocab + 1);
            let d = depth.map_or(p, |d| d as usize);
            let (opt, lu, rl) = brute_force(vocab, p, d, k, &mut |path| rows_pi(&rows, path));
            let got = best_level_uniform(&acc, p, depth).unwrap();
            let c = &got.constrained;
            let ctx = format!("seed {seed} vocab {vocab} P {p} D {depth:?} K {k} rows {rows:?}");
            assert!(
                (c.expected_accepted - lu).abs() < 1e-12,
                "level-uniform {} vs {lu}: {ctx}",
                c.expected_accepted
            );
            assert!(
                (c.unconstrained_expected_accepted - opt).abs() < 1e-12,
                "{ctx}"
            );
            // The tree is what the value says, level-uniform and within limits.
            let paths = to_rank_paths(&c.tree, RankRule::TokenIsRank).unwrap();
            assert!(is_level_uniform(&paths) && paths.len() <= p, "{ctx}");
            assert!((acc.tree_value(&c.tree) - lu).abs() < 1e-12, "{ctx}");
            let got = best_rank_limited(&acc, p, depth, k as usize).unwrap();
            assert!(
                (got.expected_accepted - rl).abs() < 1e-12,
                "rank-limited {} vs {rl}: {ctx}",
                got.expected_accepted
            );
            assert!(
                got.tree.tokens().iter().all(|&r| r < k) && got.tree.len() <= p,
                "{ctx}"
            );
        }
    }
}

#[test]
fn constrained_optima_over_a_context_dependent_model_match_brute_force() {
    for seed in 0..2u64 {
        for &(vocab, p, depth) in &CASES {
            let mut model = HashModel::new(vocab as usize, seed);
            let k = 1 + (seed as u32 % vocab);
            let d = depth.map_or(p, |d| d as usize);
            let mut oracle = model.clone();
            let (opt, lu, rl) =
                brute_force(vocab, p, d, k, &mut |path| model_pi(&mut oracle, path));
            let ctx = format!("seed {seed} vocab {vocab} P {p} D {depth:?} K {k}");
            let got = best_level_uniform_model(&mut model, p, depth).unwrap();
            let c = &got.constrained;
            assert!(
                (c.expected_accepted - lu).abs() < 1e-12,
                "level-uniform {} vs {lu}: {ctx}",
                c.expected_accepted
            );
            assert!(
                (c.unconstrained_expected_accepted - opt).abs() < 1e-12,
                "{ctx}"
            );
            let value = speclight::evaluate(&c.tree, &mut model)
                .unwrap()
                .expected_accepted;
            assert!(
                (value - lu).abs() < 1e-12,
                "the tree's own value {value}: {ctx}"
            );
            let got = best_rank_limited_model(&mut model, p, depth, k as usize).unwrap();
            assert!(
                (got.expected_accepted - rl).abs() < 1e-12,
                "rank-limited {} vs {rl}: {ctx}",
                got.expected_accepted
            );
        }
    }
}

/// SGLang's procedure written a second way: explicit token paths and
/// linear scores, sorted with ties by generation order.
fn naive_sglang(
    drafter: &mut HashModel,
    topk: usize,
    steps: usize,
    n: usize,
) -> HashSet<Vec<TokenId>> {
    let mut generated: Vec<(Vec<TokenId>, f64)> = Vec::new();
    let mut beam: Vec<(Vec<TokenId>, f64)> = vec![(Vec::new(), 1.0)];
    for _ in 0..steps {
        let mut step: Vec<(Vec<TokenId>, f64)> = Vec::new();
        for (path, score) in &beam {
            let dist = drafter.next(path).unwrap().clone();
            for (token, q) in dist.iter().take(topk) {
                let mut child = path.clone();
                child.push(token);
                step.push((child, score * q));
            }
        }
        generated.extend(step.iter().cloned());
        let mut order: Vec<usize> = (0..step.len()).collect();
        order.sort_by(|&a, &b| step[b].1.partial_cmp(&step[a].1).unwrap().then(a.cmp(&b)));
        beam = order.iter().take(topk).map(|&i| step[i].clone()).collect();
    }
    let mut order: Vec<usize> = (0..generated.len()).collect();
    order.sort_by(|&a, &b| {
        generated[b]
            .1
            .partial_cmp(&generated[a].1)
            .unwrap()
            .then(a.cmp(&b))
    });
    order
        .iter()
        .take(n)
        .map(|&i| generated[i].0.clone())
        .collect()
}

#[test]
fn sglang_tree_matches_a_naive_beam_and_monte_carlo() {
    let seed = 13;
    println!("seed {seed}");
    let mut rng = StdRng::seed_from_u64(seed);
    for (topk, steps, ndt) in [(2u32, 3u32, 8u32), (3, 2, 10), (1, 4, 5), (4, 3, 12)] {
        let mut drafter = HashModel::new(5, 7);
        let mut verifier = HashModel::new(5, 8);
        let config = SglangConfig::new(topk, steps, ndt).unwrap();
        let tree = sglang_tree(&mut drafter, config).unwrap();
        let want = naive_sglang(
            &mut drafter,
            topk as usize,
            steps as usize,
            ndt as usize - 1,
        );
        let got: HashSet<Vec<TokenId>> = (0..tree.len())
            .map(|i| {
                let mut p = Vec::new();
                tree.path_tokens(i, &mut p);
                p
            })
            .collect();
        assert_eq!(got, want, "({topk}, {steps}, {ndt})");
        // Monte-Carlo: walk the verifier's samples down the naive set.
        let exact = sglang_value(&mut drafter, &mut verifier, config).unwrap();
        let runs = 20_000;
        let (mut sum, mut sum_sq) = (0.0, 0.0);
        for _ in 0..runs {
            let mut path = Vec::new();
            loop {
                let token = verifier.next(&path).unwrap().sample(&mut rng);
                match token {
                    Some(t) if want.contains(&[path.as_slice(), &[t]].concat()) => path.push(t),
                    _ => break,
                }
            }
            let x = path.len() as f64;
            sum += x;
            sum_sq += x * x;
        }
        let mean = sum / runs as f64;
        let se = ((sum_sq / runs as f64 - mean * mean) / runs as f64).sqrt();
        assert!(
            (mean - exact).abs() < 4.0 * se + 1e-9,
            "({topk}, {steps}, {ndt}): MC {mean} ± {se} vs exact {exact}"
        );
    }
}

#[test]
fn best_sglang_triple_is_the_best_of_every_triple() {
    let acc = RankAcceptance::context_free(&[0.5, 0.25, 0.1, 0.05]).unwrap();
    let mut model = acc.model().clone();
    for (p, depth) in [(4, None), (8, Some(3)), (12, Some(4))] {
        let best = best_sglang(&acc, p, depth).unwrap();
        let mut top = 0.0f64;
        for topk in 1..=10u32 {
            for steps in 1..=depth.unwrap_or(p as u32) {
                for ndt in 2..=p as u32 + 1 {
                    if let Ok(c) = SglangConfig::new(topk, steps, ndt) {
                        top = top.max(sglang_value(&mut model.clone(), &mut model, c).unwrap());
                    }
                }
            }
        }
        let got = best.constrained.expected_accepted;
        assert!((got - top).abs() < 1e-12, "P {p}: {got} vs {top}");
        assert!(got <= best.constrained.unconstrained_expected_accepted + 1e-12);
    }
}

/// vLLM's rule, written from its proposer: `child[l] = n[l] / n[l - 1]`
/// top-ranked children below every node of level `l - 1` must give back
/// exactly the tree written.
fn vllm_drafts_as_written(text: &str) -> bool {
    let paths = parse_vllm_tree(text).unwrap();
    let depth = paths.iter().map(Vec::len).max().unwrap_or(0);
    let mut per_level = vec![0usize; depth + 1];
    per_level[0] = 1;
    paths.iter().for_each(|p| per_level[p.len()] += 1);
    let mut drafted: Vec<Vec<u32>> = Vec::new();
    let mut level: Vec<Vec<u32>> = vec![Vec::new()];
    for l in 1..=depth {
        let child = per_level[l] / per_level[l - 1];
        level = level
            .iter()
            .flat_map(|p| (0..child as u32).map(move |r| [p.as_slice(), &[r]].concat()))
            .collect();
        drafted.extend(level.iter().cloned());
    }
    let want: HashSet<Vec<u32>> = paths.into_iter().collect();
    drafted.len() == want.len() && drafted.into_iter().all(|p| want.contains(&p))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn every_vllm_string_passes_vllms_rule_and_every_choice_list_has_ranks_below_10(
        seed in 0u64..1_000_000, p in 1usize..64, depth in proptest::option::of(1u32..6)
    ) {
        let mut rng = StdRng::seed_from_u64(seed);
        let vocab = rng.random_range(1..30usize);
        let depths = rng.random_range(1..4);
        let rows = random_rows(&mut rng, vocab, depths);
        let acc = RankAcceptance::new(&rows).unwrap();
        match deploy(Server::Vllm, &acc, p, depth) {
            Ok(d) => {
                let text = d.config["speculative_token_tree"].as_str().unwrap();
                prop_assert!(vllm_drafts_as_written(text), "{}", text);
                prop_assert_eq!(d.config["num_speculative_tokens"].as_u64().unwrap() as usize,
                                parse_vllm_tree(text).unwrap().len());
            }
            Err(e) => prop_assert!(matches!(e, speclight::Error::CapacityUnfillable { .. }), "{}", e),
        }
        for server in [Server::Medusa, Server::Eagle, Server::Trtllm] {
            match deploy(server, &acc, p, depth) {
                Ok(d) => {
                    let key = d.config.as_object().unwrap().keys().find(|k| k.ends_with("choices")).unwrap().clone();
                    let paths: Vec<Vec<u32>> = serde_json::from_value(d.config[&key].clone()).unwrap();
                    prop_assert!(paths.iter().flatten().all(|&r| r < 10));
                    prop_assert!(d.paste.contains(&speclight::format::medusa_choices_string(&paths)));
                }
                Err(e) => prop_assert!(matches!(e, speclight::Error::CapacityUnfillable { .. }), "{}", e),
            }
        }
    }
}

#[test]
fn the_issue_vector_costs_what_the_issue_says_for_vllm() {
    // The issue's numbers: 5.6%, 12.7%, 18.7% at P = 8, 32, 128.
    let acc = RankAcceptance::context_free(&[
        0.634, 0.108, 0.057, 0.034, 0.023, 0.016, 0.012, 0.009, 0.007, 0.005,
    ])
    .unwrap();
    for (p, cost) in [(8, 0.056), (32, 0.127), (128, 0.187)] {
        let got = best_level_uniform(&acc, p, None)
            .unwrap()
            .constrained
            .constraint_cost();
        assert!((got - cost).abs() < 0.0005, "P {p}: {got}");
    }
}
