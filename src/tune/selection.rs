//! Choosing what to compare and deploy from the estimated model: the
//! capacity and depth limit (the capacity solver, `docs/THEORY.md`
//! section 5), and at every capacity the trees of the policies (best-first
//! over the model is the optimal static tree, section 3).

use super::config::TuneConfig;
use super::measurement::{CapacityTrack, PolicyTrack};
use super::policy::{chain_tree, kary_tree, EagleTree, Policy, RankTree};
use crate::build::{TreeBuilder, MAX_CAPACITY};
use crate::capacity::{CapacitySolver, CostModel};
use crate::error::Result;
use crate::model::PositionalByDepth;
use serde::{Deserialize, Serialize};

/// One cell of the solver's speedup table.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SpeedupCell {
    /// Capacity `n`.
    pub capacity: usize,
    /// Depth limit `D`.
    pub max_depth: u32,
    /// Predicted `E[X](n, D)`.
    pub expected_accepted: f64,
    /// Speedup over plain decoding.
    pub speedup: f64,
}

/// The capacity solver's answer on the estimated model (`docs/THEORY.md` section 5).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CapacityChoice {
    /// Chosen capacity.
    pub capacity: usize,
    /// Chosen depth limit.
    pub max_depth: u32,
    /// Predicted tokens per second.
    pub tokens_per_second: f64,
    /// Predicted speedup over plain decoding.
    pub speedup: f64,
    /// Speedup of the best static tree with a free drafter, maximised over
    /// capacity: the ceiling for static trees on this model.
    pub free_drafter_speedup: f64,
    /// Every `(n, D)` cell.
    pub table: Vec<SpeedupCell>,
}

/// With a latency model, the capacity solver's `(n, D)` on the estimated
/// model, over capacities up to `max_capacity` and depths up to `max_depth`;
/// `None` without one. Time: the solver's, O(n log n) per depth.
///
/// # Errors
///
/// The solver's.
pub(super) fn choose_capacity(
    cost: Option<&CostModel>,
    model: &mut PositionalByDepth,
    max_capacity: usize,
    max_depth: u32,
) -> Result<Option<CapacityChoice>> {
    let Some(cost) = cost else {
        return Ok(None);
    };
    let solver = CapacitySolver::new(cost.clone(), max_capacity.min(MAX_CAPACITY), max_depth)?;
    let s = solver.solve(model)?;
    Ok(Some(CapacityChoice {
        capacity: s.best.capacity,
        max_depth: s.best.max_depth,
        tokens_per_second: s.best.tokens_per_second,
        speedup: s.best.speedup,
        free_drafter_speedup: s.speed_of_light.speedup,
        table: s
            .table
            .iter()
            .map(|p| SpeedupCell {
                capacity: p.capacity,
                max_depth: p.max_depth,
                expected_accepted: p.expected_accepted,
                speedup: p.speedup,
            })
            .collect(),
    }))
}

/// Every capacity to compare policies at, ascending, with the depth limit
/// of its best-first tree: the capacities asked for plus the solver's, the
/// solver's with its own depth limit, the others with `max_depth`.
pub(super) fn capacity_slots(
    mut capacities: Vec<usize>,
    choice: Option<&CapacityChoice>,
    max_depth: u32,
) -> Vec<(usize, u32)> {
    if let Some(c) = choice {
        if !capacities.contains(&c.capacity) {
            capacities.push(c.capacity);
        }
    }
    capacities.sort_unstable();
    capacities.dedup();
    capacities
        .into_iter()
        .map(|n| match choice {
            Some(c) if c.capacity == n => (n, c.max_depth),
            _ => (n, max_depth),
        })
        .collect()
}

/// The policies to measure at every `(capacity, depth limit)` slot, in the
/// report's order: static best-first, chain, k-ary, dynamic best-first,
/// EAGLE-style. Builds the static trees (best-first over `model`, at most
/// `max_capacity` nodes): O(slots x capacity log capacity).
///
/// # Errors
///
/// The builder's, and [`chain_tree`]'s and [`kary_tree`]'s.
pub(super) fn policy_tracks(
    slots: &[(usize, u32)],
    model: &mut PositionalByDepth,
    config: &TuneConfig,
    max_capacity: usize,
    max_depth: u32,
    eagle: &EagleTree,
) -> Result<Vec<CapacityTrack>> {
    let mut builder = TreeBuilder::new(max_capacity)?;
    let eagle_policy = Policy::Eagle {
        top_k: config.eagle_top_k,
        depth: eagle.depth(),
    };
    let mut tracks = Vec::with_capacity(slots.len());
    for &(n, depth) in slots {
        builder.set_capacity(n)?;
        builder.set_max_depth(Some(depth))?;
        let mut best = builder.build_owned(model)?;
        best.set_no_draft_probs();
        let statics = [
            (Policy::BestFirst, best),
            (Policy::Chain, chain_tree(n.min(max_depth as usize))?),
            (config.kary_policy(), kary_tree(config.kary, n, max_depth)?),
        ];
        let mut policies: Vec<PolicyTrack> = statics
            .into_iter()
            .map(|(policy, tree)| PolicyTrack::fixed(policy, RankTree::new(tree)))
            .collect();
        policies.push(PolicyTrack::dynamic(Policy::DynamicBestFirst, n));
        policies.push(PolicyTrack::dynamic(eagle_policy, n.min(eagle.max_nodes())));
        tracks.push(CapacityTrack {
            capacity: n,
            max_depth: depth,
            policies,
        });
    }
    Ok(tracks)
}
