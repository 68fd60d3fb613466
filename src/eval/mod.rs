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
mod propagate;

pub use monte_carlo::{monte_carlo, MonteCarlo};
use propagate::{propagate, LANES};

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
#[derive(Debug, Clone, Default, PartialEq)]
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
/// one and, once warmed up, allocates only the [`Evaluation`] it returns,
/// or nothing with [`Evaluator::evaluate_into`] and a kept `Evaluation`.
#[derive(Debug, Default)]
pub struct Evaluator {
    /// `ln pi` and `pi` by slot: slot 0 is the root, node `v` is slot `v + 1`
    /// (so a parent's slot is its index plus one, the root's `u32::MAX`
    /// wrapping to 0: no branch).
    log_reach: Vec<f64>,
    reach: Vec<f64>,
    /// Token -> (p, ln p) for context-free verifiers with small token ids.
    dense: Vec<(f64, f64)>,
    /// Node -> (p, ln p) of its token given its parent, on the general path.
    conditional: Vec<(f64, f64)>,
    /// Per depth, `LANES` partial sums of `pi` ([`propagate`]).
    depth_sums: Vec<[f64; LANES]>,
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
        self.log_reach.get(1..).unwrap_or_default()
    }

    /// Per-node `pi(v)` of the last evaluation, in arena order. Prefix sums
    /// give `E[X]` of every prefix of a best-first tree.
    pub fn reach(&self) -> &[f64] {
        self.reach.get(1..).unwrap_or_default()
    }

    /// `out[n - 1]`: `E[X]` of the first `n` nodes of the last evaluated
    /// tree (arena order), for every `n`: prefix sums of `exp(ln pi(v))`.
    /// For a best-first tree these are its `E[X](n)` curve under the
    /// verifier. Clears `out` first (its buffer is reused). O(|T|).
    pub fn prefix_expected(&self, out: &mut Vec<f64>) {
        out.clear();
        let mut sum = 0.0;
        for &lr in self.log_reach() {
            sum += lr.exp();
            out.push(sum);
        }
    }

    /// Evaluates `tree` under `verifier`: one model call per internal node
    /// (one in all for a context-free model), then one pass over the arena.
    /// The per-node token look-up is O(1) for a context-free model with
    /// token ids below `4 (|T| + k)` (a table indexed by token), O(log k)
    /// otherwise; the general path also builds each model path, O(depth).
    /// Time O(|T| + max token) context-free, O(|T| (depth + log k)) in
    /// general; space O(|T| + max token).
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
        let mut out = Evaluation::default();
        self.evaluate_into(tree, verifier, &mut out)?;
        Ok(out)
    }

    /// As [`Evaluator::evaluate`], writing into `out` and reusing its
    /// buffer: a server that keeps `out` between steps allocates nothing
    /// once the buffers have grown. On error `out` is unspecified.
    ///
    /// # Errors
    ///
    /// As [`Evaluator::evaluate`].
    pub fn evaluate_into<M: NextTokenModel + ?Sized>(
        &mut self,
        tree: &DraftTree,
        verifier: &mut M,
        out: &mut Evaluation,
    ) -> Result<()> {
        self.depth_sums.clear();
        self.depth_sums
            .resize(tree.max_depth() as usize, [0.0; LANES]);
        let Self {
            log_reach,
            reach,
            dense,
            depth_sums,
            ..
        } = self;
        if verifier.is_context_free() {
            let dist = verifier.next(&[])?;
            if fill_dense(dense, dist, tree.len()) {
                let dense = &dense[..];
                let entry = |_, t: TokenId| dense.get(t as usize).copied().unwrap_or(MISSING);
                propagate(tree, reach, log_reach, depth_sums, entry)
            } else {
                let entry = |_, t| lookup(dist, t);
                propagate(tree, reach, log_reach, depth_sums, entry)
            }
        } else {
            self.fill_conditional(tree, verifier)?;
            let Self {
                log_reach,
                reach,
                conditional,
                depth_sums,
                ..
            } = self;
            let conditional = &conditional[..];
            let entry = |v: usize, _| conditional[v];
            propagate(tree, reach, log_reach, depth_sums, entry)
        }?;
        out.accept_at_least.clear();
        out.accept_at_least.extend(
            self.depth_sums
                .iter()
                .map(|lanes| lanes.iter().sum::<f64>()),
        );
        out.expected_accepted = out.accept_at_least.iter().sum();
        Ok(())
    }

    /// General path: `conditional[v]` for every node, one model call per
    /// parent with children. Time O(|T| (depth + log k)).
    fn fill_conditional<M: NextTokenModel + ?Sized>(
        &mut self,
        tree: &DraftTree,
        verifier: &mut M,
    ) -> Result<()> {
        let n = tree.len();
        let parents = tree.parent_indices();
        // Grouping needs valid parents; propagate checks them again, cheaply.
        if let Some(bad) = (0..n).find(|&i| parents[i].wrapping_add(1) as usize > i) {
            return Err(not_topological(bad));
        }
        // Every node is some slot's child, so every entry is written below.
        self.conditional.resize(n, MISSING);
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
                self.conditional[c] = lookup(dist, tree.token(c));
            }
        }
        Ok(())
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

/// `(p, ln p)` of a token the verifier does not list.
const MISSING: (f64, f64) = (0.0, f64::NEG_INFINITY);

/// Fills `dense` (token -> (p, ln p)) if `dist`'s largest token id is
/// below `4 (n + k)`, so the table costs no more than the tree; returns
/// whether it did. O(max token).
fn fill_dense(dense: &mut Vec<(f64, f64)>, dist: &TokenDist, n: usize) -> bool {
    let max_token = dist.tokens().iter().copied().max().unwrap_or(0) as usize;
    if max_token > 4 * (n + dist.len()) {
        return false;
    }
    dense.clear();
    dense.resize(max_token + 1, MISSING);
    for ((&t, &p), &lp) in dist.tokens().iter().zip(dist.probs()).zip(dist.log_probs()) {
        dense[t as usize] = (p, lp);
    }
    true
}

fn not_topological(node: usize) -> Error {
    Error::InvalidTree {
        node,
        reason: "parent does not come before the node".into(),
    }
}

/// `(p, ln p)` of `token` under `dist`, by binary search: O(log k).
#[inline]
fn lookup(dist: &TokenDist, token: TokenId) -> (f64, f64) {
    dist.index_of(token)
        .map_or(MISSING, |i| (dist.probs()[i], dist.log_probs()[i]))
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
