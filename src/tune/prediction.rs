//! What the estimated model predicts: `E[X]` of a tree with its errors,
//! and the curves of the static policies against capacity.

use super::acceptance::AcceptanceMatrix;
use super::policy::{kary_tree, Policy};
use crate::build::TreeBuilder;
use crate::error::Result;
use crate::eval::evaluate;
use crate::model::PositionalByDepth;
/// The shared interval type (a predicted mean with its band); `tune::Interval`
/// stays its path here.
pub use crate::stats::Interval;
use crate::tree::DraftTree;
use serde::{Deserialize, Serialize};

/// The per-depth model's prediction for one static tree.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Prediction {
    /// `E[X]` under the estimated model (accepted draft tokens).
    pub expected_accepted: f64,
    /// Standard error of `E[X]` from estimating `a` on the training split:
    /// in [`super::tune`], the standard deviation of `E[X]` over bootstrap
    /// replicates that resample training *sequences*
    /// ([`super::AcceptanceEstimator::with_bootstrap`]); from [`predict`] alone,
    /// `delta_se`.
    pub estimation_se: f64,
    /// The delta-method standard error, which treats records as
    /// independent (see [`predict`]); below `estimation_se` when the groups
    /// of a sequence are correlated.
    pub delta_se: f64,
    /// `sd(X)` of one iteration under the model.
    pub iteration_sd: f64,
    /// Interval for the *held-out mean* of `X`: `E[X] +- z sqrt(estimation_se^2 + se_h^2)`
    /// with `se_h` the held-out mean's standard error, in [`super::tune`] the
    /// measured one clustered by sequence ([`super::Measurement`]), from
    /// [`predict`] alone the model's `sd(X) / sqrt(m)`.
    pub heldout_interval: Interval,
}

impl Prediction {
    /// The same prediction with `estimation_se` and the held-out standard
    /// error replaced, and the interval recomputed.
    pub fn with_errors(mut self, estimation_se: f64, heldout_se: f64, z: f64) -> Self {
        let half = z * (estimation_se * estimation_se + heldout_se * heldout_se).sqrt();
        self.estimation_se = estimation_se;
        self.heldout_interval = Interval {
            mean: self.expected_accepted,
            lo: self.expected_accepted - half,
            hi: self.expected_accepted + half,
        };
        self
    }
}

/// Predicts `E[X]` of a rank tree under the per-depth model, with
///
/// - `estimation_se` by the delta method: with `g[d][k] = dE/da[d][k]`
///   (sum over nodes using rank `k` at depth `d` of the product of the
///   other factors of `pi`) and a multinomial row covariance
///   `(diag(a_d) - a_d a_d^T) / n_d`, `Var = sum_d (sum_k a g^2 - (sum_k a g)^2) / n_d`,
///   rows treated as independent (they are asymptotically, being
///   conditional frequencies of a sequential process);
/// - `iteration_sd` from `E[X^2] = sum_k (2k - 1) P(X >= k)`.
///
/// `trials[d]` is `n_d`. O(nodes x depth).
///
/// # Errors
///
/// Whatever the evaluator returns for an invalid tree.
pub fn predict(
    tree: &DraftTree,
    model: &mut PositionalByDepth,
    trials: &[u64],
    heldout_groups: u64,
    z: f64,
) -> Result<Prediction> {
    let ev = evaluate(tree, model)?;
    let mean = ev.expected_accepted;
    let second: f64 = ev
        .accept_at_least
        .iter()
        .enumerate()
        .map(|(i, p)| (2.0 * i as f64 + 1.0) * p)
        .sum();
    let var_x = (second - mean * mean).max(0.0);
    let depth = tree.max_depth() as usize;
    let width = model.rows().iter().map(Vec::len).max().unwrap_or(0);
    let mut grad = vec![vec![0.0; width]; depth];
    let mut path = Vec::new();
    let mut factors = Vec::new();
    for v in 0..tree.len() {
        tree.path_tokens(v, &mut path);
        factors.clear();
        factors.extend(
            path.iter()
                .enumerate()
                .map(|(j, &r)| model.acceptance(j as u32 + 1, r)),
        );
        // Product of all factors but the j-th, by prefix and suffix products.
        let mut prefix = 1.0;
        let mut suffix = vec![1.0; factors.len() + 1];
        for j in (0..factors.len()).rev() {
            suffix[j] = suffix[j + 1] * factors[j];
        }
        for (j, &r) in path.iter().enumerate() {
            if let Some(g) = grad[j].get_mut(r as usize) {
                *g += prefix * suffix[j + 1];
            }
            prefix *= factors[j];
        }
    }
    let mut var_est = 0.0;
    for (d, g) in grad.iter().enumerate() {
        let n = trials.get(d).copied().unwrap_or(0);
        if n == 0 {
            continue;
        }
        let row = &model.rows()[d.min(model.rows().len() - 1)];
        let (mut ag2, mut ag) = (0.0, 0.0);
        for (k, &gk) in g.iter().enumerate() {
            let a = row.get(k).copied().unwrap_or(0.0);
            ag2 += a * gk * gk;
            ag += a * gk;
        }
        var_est += (ag2 - ag * ag).max(0.0) / n as f64;
    }
    let m = heldout_groups.max(1) as f64;
    let half = z * (var_est + var_x / m).sqrt();
    Ok(Prediction {
        expected_accepted: mean,
        estimation_se: var_est.sqrt(),
        delta_se: var_est.sqrt(),
        iteration_sd: var_x.sqrt(),
        heldout_interval: Interval {
            mean,
            lo: mean - half,
            hi: mean + half,
        },
    })
}

/// A policy's predicted `E[X]` at every capacity `1..=N` (static trees).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Curve {
    /// The policy.
    pub policy: Policy,
    /// `values[n-1]` = predicted `E[X]` at capacity `n`.
    pub values: Vec<f64>,
}

/// Standard deviation of a tree's `E[X]` over the bootstrap replicates;
/// `None` with fewer than two.
pub(super) fn bootstrap_se(tree: &DraftTree, replicates: &[AcceptanceMatrix]) -> Option<f64> {
    if replicates.len() < 2 {
        return None;
    }
    let values: Vec<f64> = replicates.iter().map(|m| m.tree_value(tree)).collect();
    let mean = values.iter().sum::<f64>() / values.len() as f64;
    let var = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (values.len() - 1) as f64;
    Some(var.sqrt())
}

/// Predicted `E[X]` at every capacity `1..=max_cap` of best-first (the
/// builder's `OPT(n)` curve, one run), chain and k-ary trees.
pub(super) fn curves(
    model: &mut PositionalByDepth,
    max_cap: usize,
    max_depth: u32,
    kary: u32,
) -> Result<Vec<Curve>> {
    let mut builder = TreeBuilder::new(max_cap)?.with_max_depth(Some(max_depth))?;
    builder.build(model)?;
    let mut best = builder.opt_curve().to_vec();
    let last = best.last().copied().unwrap_or(0.0);
    best.resize(max_cap, last);
    // Chain: E[X] = sum_{j<=n} prod_{i<=j} a[i][0]; k-ary trees by DP per n.
    let mut chain = Vec::with_capacity(max_cap);
    let (mut sum, mut prod) = (0.0, 1.0);
    for n in 1..=max_cap {
        if n <= max_depth as usize {
            prod *= model.acceptance(n as u32, 0);
            sum += prod;
        }
        chain.push(sum);
    }
    let full = node_reach(&kary_tree(kary, max_cap, max_depth)?, model);
    let mut kary_curve = Vec::with_capacity(max_cap);
    let mut sum = 0.0;
    for v in 0..max_cap {
        if let Some(pi) = full.get(v) {
            sum += pi;
        }
        kary_curve.push(sum);
    }
    Ok(vec![
        Curve {
            policy: Policy::BestFirst,
            values: best,
        },
        Curve {
            policy: Policy::Chain,
            values: chain,
        },
        Curve {
            policy: Policy::KAry { k: kary },
            values: kary_curve,
        },
    ])
}

/// The model's reach `pi(v) = prod_j a[j][rank_j]` of every node of a rank
/// tree, in node order (`docs/THEORY.md` section 2). O(nodes x depth).
pub(super) fn node_reach(tree: &DraftTree, model: &PositionalByDepth) -> Vec<f64> {
    let mut path = Vec::new();
    (0..tree.len())
        .map(|v| {
            tree.path_tokens(v, &mut path);
            path.iter()
                .enumerate()
                .map(|(j, &r)| model.acceptance(j as u32 + 1, r))
                .product()
        })
        .collect()
}
