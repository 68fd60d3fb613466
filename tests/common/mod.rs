//! Test helpers shared by the integration tests: a context-dependent model
//! whose distributions are pseudo-random functions of the path, and a random
//! (non-optimal) tree generator.
#![allow(dead_code)] // each test binary uses a different subset

use rand::{rngs::StdRng, Rng, SeedableRng};
use speclight::{DraftTree, NextTokenModel, Result, TokenDist, TokenId};
use std::collections::HashMap;

/// A model whose distribution after each path is drawn once, reproducibly,
/// from `seed` and the path: every node sees a different distribution, so the
/// builder's lazy expansion and the evaluator's per-parent look-ups are
/// exercised (unlike `Iid`). Distributions may be incomplete (a tail).
#[derive(Debug, Clone)]
pub struct HashModel {
    pub seed: u64,
    pub vocab: u32,
    pub complete: bool,
    cache: HashMap<Vec<TokenId>, TokenDist>,
    pub calls: usize,
}

impl HashModel {
    pub fn new(seed: u64, vocab: u32, complete: bool) -> Self {
        Self {
            seed,
            vocab,
            complete,
            cache: HashMap::new(),
            calls: 0,
        }
    }

    fn draw(&self, path: &[TokenId]) -> TokenDist {
        let mut h = self.seed ^ 0x9E37_79B9_7F4A_7C15;
        for &t in path {
            h = (h ^ u64::from(t))
                .wrapping_mul(0x100_0000_01B3)
                .rotate_left(17);
        }
        h ^= path.len() as u64;
        let mut rng = StdRng::seed_from_u64(h);
        let k = rng.random_range(1..=self.vocab);
        let mut tokens: Vec<TokenId> = (0..self.vocab).collect();
        for i in 0..tokens.len() {
            let j = rng.random_range(i..tokens.len());
            tokens.swap(i, j);
        }
        tokens.truncate(k as usize);
        // Quantised weights make exact ties (the builder's hard case) common.
        let weights: Vec<f64> = (0..k)
            .map(|_| f64::from(rng.random_range(1..=4u32)))
            .collect();
        let mass = if self.complete {
            1.0
        } else {
            rng.random_range(0.3..1.0)
        };
        let total: f64 = weights.iter().sum();
        let probs: Vec<f64> = weights.iter().map(|w| w / total * mass).collect();
        TokenDist::from_token_probs(&tokens, &probs).expect("valid by construction")
    }
}

impl NextTokenModel for HashModel {
    fn next(&mut self, path: &[TokenId]) -> Result<&TokenDist> {
        self.calls += 1;
        if !self.cache.contains_key(path) {
            let d = self.draw(path);
            self.cache.insert(path.to_vec(), d);
        }
        Ok(&self.cache[path])
    }
}

/// A random prefix-closed tree of up to `n` nodes over tokens `0..vocab`,
/// with random (but consistent) draft log-probabilities.
pub fn random_tree(seed: u64, n: usize, vocab: u32) -> DraftTree {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut tree = DraftTree::new();
    for _ in 0..n {
        let parent = match rng.random_range(0..=tree.len()) {
            0 => None,
            p => Some(p - 1),
        };
        let used: Vec<TokenId> = tree.children(parent).map(|c| tree.token(c)).collect();
        let free: Vec<TokenId> = (0..vocab).filter(|t| !used.contains(t)).collect();
        if free.is_empty() {
            continue;
        }
        let token = free[rng.random_range(0..free.len())];
        let above = parent.map_or(0.0, |p| tree.path_logprob(p));
        let lp = above + rng.random_range(0.05f64..1.0).ln();
        tree.push(parent, token, lp).expect("parent exists");
    }
    tree
}
