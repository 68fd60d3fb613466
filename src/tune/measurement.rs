//! Pass 2 of [`super::tune`]: every policy walked on the held-out split,
//! with means and paired differences clustered by sequence.

use super::paired::{Group, TraceReader};
use super::policy::{DynamicBestFirst, EagleTree, Policy, RankTree};
use super::prediction::Interval;
use super::speed_of_light::SolCollector;
use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};
use std::io::BufRead;

/// Accepted draft tokens measured on the held-out groups.
///
/// Every `(seq, pos)` group is one iteration. Groups of one sequence share
/// tokens and are correlated, so the standard error is clustered by
/// sequence: with `S_s` the sum and `n_s` the count of sequence `s`,
/// `G` sequences and `mean = sum S / sum n`,
/// `se^2 = G / (G - 1) * sum_s (S_s - mean n_s)^2 / (sum n)^2` (with a
/// single sequence, the independent-groups error `sd / sqrt(m)`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Measurement {
    /// Mean accepted per iteration, with `mean +- z se`.
    pub accepted: Interval,
    /// The clustered standard error `se`.
    pub std_error: f64,
    /// Iterations (held-out groups) measured.
    pub groups: u64,
    /// Sequences they came from.
    pub sequences: u64,
}

/// Running sums for a mean clustered by sequence (groups arrive sorted by
/// sequence, so one open cluster at a time).
#[derive(Debug, Clone, Copy, Default)]
struct Clustered {
    open: Option<u64>,
    s: f64,
    n: f64,
    clusters: u64,
    groups: u64,
    sum_x2: f64,
    sum_s: f64,
    sum_n: f64,
    sum_s2: f64,
    sum_n2: f64,
    sum_sn: f64,
}

impl Clustered {
    fn push(&mut self, seq: u64, x: f64) {
        if self.open != Some(seq) {
            self.close();
            self.open = Some(seq);
        }
        self.s += x;
        self.n += 1.0;
        self.groups += 1;
        self.sum_x2 += x * x;
    }

    fn close(&mut self) {
        if self.open.take().is_some() {
            self.clusters += 1;
            self.sum_s += self.s;
            self.sum_n += self.n;
            self.sum_s2 += self.s * self.s;
            self.sum_n2 += self.n * self.n;
            self.sum_sn += self.s * self.n;
        }
        self.s = 0.0;
        self.n = 0.0;
    }

    fn measurement(mut self, z: f64) -> Option<Measurement> {
        self.close();
        if self.groups == 0 {
            return None;
        }
        let mean = self.sum_s / self.sum_n;
        let g = self.clusters as f64;
        let se = if self.clusters > 1 {
            let ss = (self.sum_s2 - 2.0 * mean * self.sum_sn + mean * mean * self.sum_n2).max(0.0);
            (g / (g - 1.0) * ss).sqrt() / self.sum_n
        } else if self.groups > 1 {
            // One sequence: no clusters to compare, so fall back to the
            // independent-groups error (too small if groups are correlated).
            let n = self.groups as f64;
            ((self.sum_x2 - n * mean * mean).max(0.0) / (n - 1.0) / n).sqrt()
        } else {
            0.0
        };
        let half = z * se;
        Some(Measurement {
            accepted: Interval {
                mean,
                lo: mean - half,
                hi: mean + half,
            },
            std_error: se,
            groups: self.groups,
            sequences: self.clusters,
        })
    }
}

/// One policy at one capacity while the held-out split is walked.
pub(super) struct PolicyTrack {
    /// The policy.
    pub policy: Policy,
    /// Its tree, for a static policy.
    pub tree: Option<RankTree>,
    /// Nodes in its tree (the capacity, or the largest tree, for a dynamic one).
    pub nodes: usize,
    moments: Clustered,
    /// Its reference's accepted tokens minus its own ([`Policy::reference`]).
    difference: Clustered,
}

impl PolicyTrack {
    /// A static policy: one tree for every iteration.
    pub fn fixed(policy: Policy, tree: RankTree) -> Self {
        let nodes = tree.tree().len();
        Self::new(policy, Some(tree), nodes)
    }

    /// A dynamic policy, rebuilt at every iteration, of at most `nodes` nodes.
    pub fn dynamic(policy: Policy, nodes: usize) -> Self {
        Self::new(policy, None, nodes)
    }

    fn new(policy: Policy, tree: Option<RankTree>, nodes: usize) -> Self {
        Self {
            policy,
            tree,
            nodes,
            moments: Clustered::default(),
            difference: Clustered::default(),
        }
    }

    /// Accepted tokens per held-out iteration; `None` before any.
    pub fn measured(&self, z: f64) -> Option<Measurement> {
        self.moments.measurement(z)
    }

    /// The paired difference with the reference policy; `None` before any
    /// iteration or without a reference.
    pub fn difference(&self, z: f64) -> Option<Measurement> {
        self.difference.measurement(z)
    }
}

/// Every policy at one capacity.
pub(super) struct CapacityTrack {
    /// Draft tokens per verifier pass.
    pub capacity: usize,
    /// Depth limit of the best-first tree.
    pub max_depth: u32,
    /// The policies, in the report's order.
    pub policies: Vec<PolicyTrack>,
}

/// The dynamic policies' per-iteration state, shared by every capacity.
pub(super) struct DynamicPolicies {
    /// Best-first per iteration, built to the largest capacity.
    pub best_first: DynamicBestFirst,
    /// The EAGLE-style tree.
    pub eagle: EagleTree,
}

/// What the held-out pass found.
pub(super) struct Heldout {
    /// The policies with their measurements.
    pub tracks: Vec<CapacityTrack>,
    /// Held-out groups measured.
    pub groups: u64,
    /// Held-out groups skipped: fewer depths than the deepest policy needs.
    pub truncated: u64,
    /// The held-out verifier tokens, for the speed of light.
    pub speed_of_light: SolCollector,
}

/// Walks every policy of `tracks` on every held-out group of the trace.
/// A group recording fewer depths than the deepest tree is skipped (its
/// walks would be cut short). Time O(records + groups x policies x
/// (depth + dynamic build)); memory that of the trees and one group.
///
/// # Errors
///
/// The reader's (the first bad line stops), the dynamic builder's, and
/// [`Error::InvalidArgument`] when no held-out group is measured: a report
/// without measurements would compare nothing.
pub(super) fn measure<R: BufRead>(
    input: R,
    is_heldout: impl Fn(u64) -> bool,
    mut tracks: Vec<CapacityTrack>,
    dynamic: &mut DynamicPolicies,
) -> Result<Heldout> {
    let needed = deepest_tree(&tracks, &dynamic.eagle);
    let (mut groups, mut truncated) = (0u64, 0u64);
    let mut speed_of_light = SolCollector::default();
    let mut group = Group::default();
    let mut accepted = Vec::new();
    let mut reader = TraceReader::new(input);
    while reader.next_group(&mut group)? {
        if !is_heldout(group.seq()) {
            continue;
        }
        speed_of_light.push(&group)?;
        if group.depth() < needed {
            truncated += 1;
            continue;
        }
        groups += 1;
        dynamic.best_first.rank_group(&group)?;
        dynamic.eagle.rank_group(&group);
        for track in &mut tracks {
            walk_group(track, &group, dynamic, &mut accepted);
        }
    }
    if groups == 0 {
        return Err(no_heldout_groups(truncated, needed));
    }
    Ok(Heldout {
        tracks,
        groups,
        truncated,
        speed_of_light,
    })
}

/// Depths a held-out group must record: the deepest static tree's or the
/// EAGLE expansion's.
fn deepest_tree(tracks: &[CapacityTrack], eagle: &EagleTree) -> usize {
    tracks
        .iter()
        .flat_map(|t| &t.policies)
        .filter_map(|p| p.tree.as_ref().map(|t| t.tree().max_depth()))
        .chain([eagle.depth()])
        .max()
        .unwrap_or(1) as usize
}

/// Accepted tokens of every policy at one capacity on one group, then
/// each baseline's paired difference with its reference on that group.
fn walk_group(
    track: &mut CapacityTrack,
    group: &Group,
    dynamic: &DynamicPolicies,
    accepted: &mut Vec<f64>,
) {
    let n = track.capacity;
    accepted.clear();
    accepted.extend(track.policies.iter().map(|p| {
        (match (&p.tree, p.policy) {
            (Some(tree), _) => tree.walk(group.ranks()),
            (None, Policy::Eagle { .. }) => dynamic.eagle.accepted(n),
            (None, _) => dynamic.best_first.accepted(n),
        }) as f64
    }));
    for (i, &x) in accepted.iter().enumerate() {
        let reference = track.policies[i].policy.reference();
        let r = reference.and_then(|r| track.policies.iter().position(|q| q.policy == r));
        let p = &mut track.policies[i];
        p.moments.push(group.seq(), x);
        if let Some(r) = r {
            p.difference.push(group.seq(), accepted[r] - x);
        }
    }
}

/// The error for a held-out split with nothing to measure.
fn no_heldout_groups(truncated: u64, needed: usize) -> Error {
    if truncated > 0 {
        Error::InvalidArgument(format!(
            "no held-out group can be measured: all {truncated} record fewer than the {needed} depths the deepest tree needs"
        ))
    } else {
        Error::InvalidArgument(
            "the held-out split is empty: no sequence of the trace is held out for measurement"
                .into(),
        )
    }
}
