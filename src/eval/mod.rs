//! The DP evaluator: exact `E[X]` and the distribution of `X` (docs/THEORY.md
//! section 2); [`monte_carlo`] simulates the verification walk as a second
//! method for the tests.
//!
//! With `pi(v)` the verifier's probability of reaching node `v`,
//! `E[X] = sum_v pi(v)` and `P(X >= k) = sum_{depth(v) = k} pi(v)`. The
//! programme runs over the arena in topological order, in log space so that
//! trees thousands of nodes deep do not underflow to NaN:
//! `ln reach(v) = ln reach(parent) + ln p(token_v | parent)`.

use crate::dist::{TokenDist, TokenId};
use crate::error::{Error, Result};
use crate::model::NextTokenModel;
use crate::tree::DraftTree;

mod monte_carlo;

pub use monte_carlo::{monte_carlo, MonteCarlo};

/// Exact value of a tree under a verifier.
///
/// # Examples
///
/// ```
/// use speclight::{evaluate, Iid, TokenDist, TreeBuilder};
/// let mut p = Iid::new(TokenDist::from_probs(&[0.5, 0.5])?);
/// let tree = TreeBuilder::new(3)?.build_owned(&mut p)?;
/// let ev = evaluate(&tree, &mut p)?;
/// assert!((ev.expected_accepted - 1.25).abs() < 1e-12);
/// assert_eq!(ev.accept_at_least, vec![1.0, 0.25]);
/// # Ok::<(), speclight::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Evaluation {
    /// `E[X]`, the expected number of accepted draft tokens.
    pub expected_accepted: f64,
    /// `accept_at_least[k-1] = P(X >= k)` for `k = 1..=max_depth`.
    pub accept_at_least: Vec<f64>,
}

impl Evaluation {
    /// `P(X = k)` for `k = 0..=max_depth`, from the tail sums.
    pub fn accept_length_pmf(&self) -> Vec<f64> {
        let at_least = |k: usize| {
            if k == 0 {
                1.0
            } else {
                self.accept_at_least.get(k - 1).copied().unwrap_or(0.0)
            }
        };
        (0..=self.accept_at_least.len())
            .map(|k| (at_least(k) - at_least(k + 1)).max(0.0))
            .collect()
    }
}

/// Reusable buffers for [`evaluate`]: a server evaluating every step keeps
/// one and allocates nothing once warmed up.
#[derive(Debug, Default)]
pub struct Evaluator {
    log_reach: Vec<f64>,
    reach: Vec<f64>,
    /// Token -> (p, ln p) for context-free verifiers with small token ids.
    dense: Vec<(f64, f64)>,
    /// Children grouped by parent (CSR): `child_start[u+1]..child_start[u+2]`
    /// for node `u`, slot 0 for the root.
    child_start: Vec<u32>,
    child_list: Vec<u32>,
    path: Vec<TokenId>,
}

impl Evaluator {
    /// An evaluator with empty buffers.
    pub fn new() -> Self {
        Self::default()
    }

    /// Per-node `ln pi(v)` of the last evaluation, in arena order (exact
    /// even where `pi(v)` underflows `f64`).
    pub fn log_reach(&self) -> &[f64] {
        &self.log_reach
    }

    /// Per-node `pi(v)` of the last evaluation, in arena order. Prefix sums
    /// give `E[X]` of every prefix of a best-first tree.
    pub fn reach(&self) -> &[f64] {
        &self.reach
    }

    /// `out[n - 1]`: `E[X]` of the first `n` nodes of the last evaluated
    /// tree (arena order), for every `n`: prefix sums of `exp(ln pi(v))`.
    /// For a best-first tree these are its `E[X](n)` curve under the
    /// verifier. Clears `out` first (its buffer is reused). O(|T|).
    pub fn prefix_expected(&self, out: &mut Vec<f64>) {
        out.clear();
        let mut sum = 0.0;
        for &lr in &self.log_reach {
            sum += lr.exp();
            out.push(sum);
        }
    }

    /// Evaluates `tree` under `verifier`: one model call per internal node
    /// (one in all for a context-free model) and O(log k) per node for the
    /// token look-up. Time O(|T| (depth + log k)), space O(|T|).
    ///
    /// # Errors
    ///
    /// [`Error::InvalidTree`] if the arena is not topological, and whatever
    /// the model returns.
    pub fn evaluate<M: NextTokenModel + ?Sized>(
        &mut self,
        tree: &DraftTree,
        verifier: &mut M,
    ) -> Result<Evaluation> {
        let n = tree.len();
        let parents = tree.parent_indices();
        // Node i's parent is valid iff it is the root (u32::MAX, which wraps
        // to 0) or p + 1 <= i: one branch-free comparison per node.
        if let Some(bad) = (0..n).find(|&i| parents[i].wrapping_add(1) as usize > i) {
            return Err(Error::InvalidTree {
                node: bad,
                reason: "parent does not come before the node".into(),
            });
        }
        // First pass: the conditional p(token_v | parent) of every node, both
        // in log space (exact per-node reach, never NaN) and linearly (the
        // sums: a product that underflows to 0 stands for a reach below
        // 1e-308, which no sum of at most MAX_CAPACITY nodes can notice).
        self.log_reach.clear();
        self.reach.clear();
        if verifier.is_context_free() {
            let dist = verifier.next(&[])?;
            let max_token = dist.tokens().iter().copied().max().unwrap_or(0) as usize;
            if max_token <= 4 * (n + dist.len()) {
                // Dense look-up table: O(1) per node, filled in O(max token).
                self.dense.clear();
                self.dense.resize(max_token + 1, (0.0, f64::NEG_INFINITY));
                for ((&t, &p), &lp) in dist.tokens().iter().zip(dist.probs()).zip(dist.log_probs())
                {
                    self.dense[t as usize] = (p, lp);
                }
                // Written by extension, not into zeroed buffers (no memset),
                // one exact-size extension per array (no capacity check per
                // node, as a push has).
                let dense = &self.dense;
                let entry = |t: &TokenId| {
                    dense
                        .get(*t as usize)
                        .copied()
                        .unwrap_or((0.0, f64::NEG_INFINITY))
                };
                self.reach.extend(tree.tokens().iter().map(|t| entry(t).0));
                self.log_reach
                    .extend(tree.tokens().iter().map(|t| entry(t).1));
            } else {
                for &token in tree.tokens() {
                    let (p, lp) = lookup(dist, token);
                    self.reach.push(p);
                    self.log_reach.push(lp);
                }
            }
        } else {
            self.log_reach.resize(n, f64::NEG_INFINITY);
            self.reach.resize(n, 0.0);
            self.group_children(parents);
            for slot in 0..=n {
                let kids = self.child_start[slot] as usize..self.child_start[slot + 1] as usize;
                if kids.is_empty() {
                    continue;
                }
                match slot {
                    0 => self.path.clear(),
                    u => tree.path_tokens(u - 1, &mut self.path),
                }
                let dist = verifier.next(&self.path)?;
                for &c in &self.child_list[kids] {
                    let c = c as usize;
                    (self.reach[c], self.log_reach[c]) = lookup(dist, tree.token(c));
                }
            }
        }
        // Second pass, parents before children.
        let mut accept_at_least = vec![0.0; tree.max_depth() as usize];
        let mut expected = 0.0;
        // Slices of length n: the compiler drops the checks on index v.
        let depths = &tree.depths()[..n];
        let parents = &parents[..n];
        let log_reach = &mut self.log_reach[..n];
        let reach = &mut self.reach[..n];
        for v in 0..n {
            if parents[v] != u32::MAX {
                let p = parents[v] as usize;
                // -inf + finite stays -inf: an unreachable subtree adds 0, never NaN.
                log_reach[v] += log_reach[p];
                reach[v] *= reach[p];
            }
            expected += reach[v];
            accept_at_least[depths[v] as usize - 1] += reach[v];
        }
        Ok(Evaluation {
            expected_accepted: expected,
            accept_at_least,
        })
    }

    fn group_children(&mut self, parents: &[u32]) {
        let slot = |p: u32| if p == u32::MAX { 0 } else { p as usize + 1 };
        let n = parents.len();
        self.child_start.clear();
        self.child_start.resize(n + 2, 0);
        for &p in parents {
            self.child_start[slot(p) + 1] += 1;
        }
        for i in 1..self.child_start.len() {
            self.child_start[i] += self.child_start[i - 1];
        }
        self.child_list.clear();
        self.child_list.resize(n, 0);
        // Fill in arena order using a running cursor per slot, then restore starts.
        for (v, &p) in parents.iter().enumerate() {
            let s = slot(p);
            self.child_list[self.child_start[s] as usize] = v as u32;
            self.child_start[s] += 1;
        }
        for i in (1..self.child_start.len()).rev() {
            self.child_start[i] = self.child_start[i - 1];
        }
        self.child_start[0] = 0;
    }
}

#[inline]
fn lookup(dist: &TokenDist, token: TokenId) -> (f64, f64) {
    dist.index_of(token).map_or((0.0, f64::NEG_INFINITY), |i| {
        (dist.probs()[i], dist.log_probs()[i])
    })
}

/// Exact `E[X]` and `P(X >= k)` of `tree` under `verifier` (docs/THEORY.md
/// section 2). Allocates its buffers; see [`Evaluator`] to reuse them.
///
/// # Errors
///
/// As [`Evaluator::evaluate`].
pub fn evaluate<M: NextTokenModel + ?Sized>(
    tree: &DraftTree,
    verifier: &mut M,
) -> Result<Evaluation> {
    Evaluator::new().evaluate(tree, verifier)
}
