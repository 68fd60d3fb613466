//! The tuning report: every policy at every capacity, predicted and
//! measured, and the chosen tree in the formats servers read.

use super::acceptance::AcceptanceMatrix;
use super::measurement::{CapacityTrack, Measurement};
use super::policy::Policy;
use super::prediction::{bootstrap_se, node_reach, predict, Curve, Prediction};
use super::selection::CapacityChoice;
use crate::bound::trace::TraceBound;
use crate::deploy::{deploy, Deployment, RankAcceptance, Server, MAX_LEVEL_UNIFORM_CAPACITY};
use crate::error::{Error, Result};
use crate::eval::evaluate;
use crate::format::{to_rank_paths, vllm_tree_string, RankRule, TreeJson};
use crate::model::PositionalByDepth;
use serde::{Deserialize, Serialize};

/// One policy at one capacity.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PolicyResult {
    /// The policy (written as its name: `best-first` for the static tree,
    /// `chain`, `k-ary (k=K)`, `best-first (dynamic)` or
    /// `eagle (top_k=K, depth=D)`).
    pub policy: Policy,
    /// Nodes in the tree (at most the capacity; the largest over
    /// iterations for the dynamic policy).
    pub nodes: usize,
    /// The model's prediction (static trees only).
    pub predicted: Option<Prediction>,
    /// Measured on the held-out split.
    pub measured: Option<Measurement>,
    /// For a baseline: its best-first counterpart's accepted tokens minus
    /// its own, paired on the same held-out iterations (clustered by
    /// sequence). A positive interval means best-first is ahead beyond noise.
    pub versus: Option<Versus>,
}

/// A paired comparison of a baseline with its best-first counterpart.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Versus {
    /// The counterpart: `best-first` (static) for the static baselines,
    /// `best-first (dynamic)` for the EAGLE-style tree, which sees the same
    /// per-iteration drafter information.
    pub reference: Policy,
    /// Counterpart minus baseline, accepted tokens per iteration.
    pub difference: Option<Measurement>,
}

/// All policies at one capacity.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CapacityResult {
    /// Draft tokens per verifier pass.
    pub capacity: usize,
    /// Depth limit of the best-first tree.
    pub max_depth: u32,
    /// Static best-first, chain, k-ary, dynamic best-first, EAGLE-style.
    pub policies: Vec<PolicyResult>,
}

/// The chosen tree in the formats servers read.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChosenTree {
    /// Capacity.
    pub capacity: usize,
    /// Depth limit.
    pub max_depth: u32,
    /// Rank paths (Medusa `medusa_choices`), breadth first.
    pub rank_paths: Vec<Vec<u32>>,
    /// The rank paths in vLLM's `speculative_token_tree` syntax. vLLM
    /// drafts a tree as written only when it is level-uniform
    /// ([`crate::format::is_level_uniform`]); the tree vLLM can draft is
    /// the vLLM entry of [`TuneReport::deployments`].
    pub vllm: String,
    /// The JSON tree (tokens are ranks).
    pub tree: TreeJson,
    /// Predicted reach `pi(v)` of every node, in node order.
    pub reach: Vec<f64>,
}

/// Everything [`super::tune`] found; serialisable so that plots can be redrawn.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TuneReport {
    /// Training groups and records.
    pub train_groups: u64,
    /// Training records.
    pub train_records: u64,
    /// Held-out groups measured.
    pub heldout_groups: u64,
    /// Held-out groups skipped because they record fewer depths than the
    /// deepest policy needs (a walk would be cut short).
    pub heldout_truncated: u64,
    /// Records carrying `target_logprob`, over both splits.
    pub records_with_target_logprob: u64,
    /// Conditional acceptance (used for tuning).
    pub acceptance: AcceptanceMatrix,
    /// Marginal acceptance.
    pub marginal: AcceptanceMatrix,
    /// Depth limit used for trees.
    pub max_depth: u32,
    /// Normal quantile of every interval.
    pub z: f64,
    /// Per-capacity comparison.
    pub results: Vec<CapacityResult>,
    /// Predicted curves of the static policies.
    pub curves: Vec<Curve>,
    /// The solver's choice (with a latency model).
    pub capacity_choice: Option<CapacityChoice>,
    /// The chosen tree.
    pub chosen: ChosenTree,
    /// Trace speed of light (`docs/THEORY.md` section 4d) per capacity, from the held-out
    /// verifier tokens and their `target_logprob`: no deterministic drafter
    /// of that capacity beats it on this workload.
    pub speed_of_light: Vec<TraceBound>,
    /// Why there is no speed of light, when there is none.
    pub speed_of_light_note: Option<String>,
}

impl TuneReport {
    /// For every server of [`Server::ALL`], the best configuration under its
    /// constraint ([`deploy`]) at the chosen tree's capacity and depth limit,
    /// on the conditional acceptance the tuner estimated (the same per-depth
    /// model its best-first trees and predictions use, so each entry's
    /// unconstrained value is the best-first prediction at that capacity).
    ///
    /// The capacity is cut to what a server can use: to the most draft
    /// tokens its configurations fill under the depth limit and the
    /// estimated ranks, and for vLLM to [`MAX_LEVEL_UNIFORM_CAPACITY`]; the
    /// entry's `capacity` is the one solved for. Time: the searches'
    /// (docs of [`deploy`]), once per server.
    ///
    /// # Errors
    ///
    /// The acceptance model's (none for a matrix the tuner estimated) and
    /// the searches'.
    pub fn deployments(&self) -> Result<Vec<Deployment>> {
        let model = self.acceptance.to_model()?;
        let acceptance = RankAcceptance::new(model.rows())?;
        let depth = Some(self.chosen.max_depth);
        Server::ALL
            .into_iter()
            .map(|server| {
                let capacity = match server {
                    Server::Vllm => self.chosen.capacity.min(MAX_LEVEL_UNIFORM_CAPACITY),
                    _ => self.chosen.capacity,
                };
                deploy_within(server, &acceptance, capacity, depth)
            })
            .collect()
    }
}

/// [`deploy`] at `capacity`, or at the most the server can fill when it
/// cannot use that many draft tokens (the unconstrained tree cannot either:
/// it has the same ranks and depth limit).
fn deploy_within(
    server: Server,
    acceptance: &RankAcceptance,
    capacity: usize,
    max_depth: Option<u32>,
) -> Result<Deployment> {
    match deploy(server, acceptance, capacity, max_depth) {
        Err(Error::CapacityUnfillable { max, .. }) => {
            let fill = usize::try_from(max).unwrap_or(usize::MAX).max(1);
            deploy(server, acceptance, fill, max_depth)
        }
        other => other,
    }
}

/// What [`capacity_results`] needs besides the measured policies.
pub(super) struct Estimates<'a> {
    /// The estimated per-depth model.
    pub model: &'a mut PositionalByDepth,
    /// The conditional acceptance it came from.
    pub acceptance: &'a AcceptanceMatrix,
    /// Bootstrap replicates of the acceptance matrix.
    pub replicates: &'a [AcceptanceMatrix],
    /// Held-out groups measured.
    pub heldout_groups: u64,
    /// Normal quantile of the intervals.
    pub z: f64,
}

/// Every policy at every capacity: the prediction of a static policy (its
/// estimation error from the bootstrap, else the delta method, and the
/// measured held-out error), the measurement, and a baseline's paired
/// difference with its reference. O(capacities x policies x nodes x depth).
///
/// # Errors
///
/// The evaluator's (none for the trees the tuner builds).
pub(super) fn capacity_results(
    tracks: &[CapacityTrack],
    est: Estimates<'_>,
) -> Result<Vec<CapacityResult>> {
    let mut results = Vec::with_capacity(tracks.len());
    for track in tracks {
        let mut policies = Vec::with_capacity(track.policies.len());
        for p in &track.policies {
            let measured = p.measured(est.z);
            let predicted = match &p.tree {
                Some(tree) => {
                    let tree = tree.tree();
                    let analytic = predict(
                        tree,
                        est.model,
                        &est.acceptance.trials,
                        est.heldout_groups,
                        est.z,
                    )?;
                    let boot_se = bootstrap_se(tree, est.replicates);
                    Some(match measured {
                        Some(m) if m.std_error.is_finite() => analytic.with_errors(
                            boot_se.unwrap_or(analytic.delta_se),
                            m.std_error,
                            est.z,
                        ),
                        _ => analytic,
                    })
                }
                None => None,
            };
            policies.push(PolicyResult {
                policy: p.policy,
                nodes: p.nodes,
                predicted,
                measured,
                versus: p.policy.reference().map(|reference| Versus {
                    reference,
                    difference: p.difference(est.z),
                }),
            });
        }
        results.push(CapacityResult {
            capacity: track.capacity,
            max_depth: track.max_depth,
            policies,
        });
    }
    Ok(results)
}

/// The tree to deploy: the static best-first tree at the solver's capacity,
/// else at the largest capacity, with its rank paths, vLLM string, JSON
/// (with `E[X]` and the accept-length distribution) and per-node reach.
/// O(nodes x depth).
///
/// # Errors
///
/// [`Error::InvalidArgument`] when there is no best-first tree (the tuner
/// always builds one), and the formatters' and evaluator's.
pub(super) fn chosen_tree(
    tracks: &[CapacityTrack],
    choice: Option<&CapacityChoice>,
    model: &mut PositionalByDepth,
) -> Result<ChosenTree> {
    let track = choice
        .and_then(|c| tracks.iter().find(|t| t.capacity == c.capacity))
        .or_else(|| tracks.last())
        .ok_or_else(|| Error::InvalidArgument("no capacity to choose a tree at".into()))?;
    let tree = track
        .policies
        .iter()
        .find(|p| p.policy == Policy::BestFirst)
        .and_then(|p| p.tree.as_ref())
        .ok_or_else(|| Error::InvalidArgument("no best-first tree to choose".into()))?
        .tree();
    let rank_paths = to_rank_paths(tree, RankRule::TokenIsRank)?;
    let ev = evaluate(tree, model)?;
    let mut json = TreeJson::from_tree(tree, Some(track.capacity), Some(track.max_depth));
    json.expected_accepted = Some(ev.expected_accepted);
    json.accept_length_distribution = Some(ev.accept_at_least.clone());
    Ok(ChosenTree {
        capacity: track.capacity,
        max_depth: track.max_depth,
        vllm: vllm_tree_string(&rank_paths),
        rank_paths,
        tree: json,
        reach: node_reach(tree, model),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two ranks and depth 2 fill at most 2 + 4 = 6 draft tokens: a larger
    /// capacity is solved at 6 instead of failing the whole report (SGLang's
    /// beam fills any capacity up to its own limits, ranks with no mass
    /// included, so it keeps 100).
    #[test]
    fn a_capacity_beyond_what_a_server_fills_is_cut_to_its_fill() {
        let a = RankAcceptance::context_free(&[0.5, 0.2]).unwrap();
        assert!(matches!(
            deploy(Server::Vllm, &a, 100, Some(2)),
            Err(Error::CapacityUnfillable { max: 6, .. })
        ));
        for server in Server::ALL {
            let d = deploy_within(server, &a, 100, Some(2)).unwrap();
            let expected = if server == Server::Sglang { 100 } else { 6 };
            assert_eq!(d.capacity, expected, "{server}");
            // Every tree of 6 nodes is the complete one: 0.7 + 0.7^2.
            let full = 0.7 + 0.49;
            assert!((d.unconstrained_expected_accepted - full).abs() < 1e-12);
        }
    }
}

/// What `speclight tune --json` prints and writes as report.json (and
/// Python's `speclight.tune` returns): the report, then every server's best
/// configuration at the chosen capacity ([`TuneReport::deployments`]).
/// Flattening keeps the report's own fields, and their bytes, first.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct DeployedReport<'a> {
    /// The tuning report.
    #[serde(flatten)]
    pub report: &'a TuneReport,
    /// One configuration per server ([`Server::ALL`] order).
    pub deploy: &'a [Deployment],
}

/// The per-depth acceptance a tune report (report.json) carries, and the
/// depth limit it supports (`max_depth`, capped at the depths measured), as
/// `speclight deploy --report` reads it. O(size of the report).
///
/// # Errors
///
/// [`Error::InvalidArgument`] for text that is not JSON, a report without
/// the acceptance matrix or with a malformed one, and the errors of
/// [`AcceptanceMatrix::to_model`] and [`RankAcceptance::new`].
pub fn report_rank_acceptance(
    text: &str,
    max_depth: Option<u32>,
) -> Result<(RankAcceptance, Option<u32>)> {
    let doc: serde_json::Value =
        serde_json::from_str(text).map_err(|e| Error::InvalidArgument(format!("not JSON: {e}")))?;
    let Some(matrix) = doc.get("acceptance") else {
        return Err(Error::InvalidArgument(
            "no per-depth acceptance matrix (field \"acceptance\"): write the report with `speclight tune`"
                .into(),
        ));
    };
    let matrix = AcceptanceMatrix::deserialize(matrix)
        .map_err(|e| Error::InvalidArgument(format!("field \"acceptance\": {e}")))?;
    let model = matrix.to_model()?;
    let usable = model.rows().len() as u32;
    let depth = Some(max_depth.map_or(usable, |d| d.min(usable)));
    Ok((RankAcceptance::new(model.rows())?, depth))
}
