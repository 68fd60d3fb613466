//! Server configurations: the best tree each server can deploy, written as
//! the configuration it reads. Schemas were checked against the servers'
//! own code (read, not copied):
//!
//! - **vLLM** (v0.10-v0.11): `vllm/config/speculative.py` reads
//!   `speculative_token_tree` with `ast.literal_eval` and sorts it by
//!   `(len, path)`; `vllm/v1/spec_decode/eagle.py` drafts
//!   `num_drafts_per_level[l] // num_drafts_per_level[l - 1]` top-k
//!   children below every node of level `l - 1`, so only level-uniform
//!   trees are drafted as written. `num_speculative_tokens` is the node
//!   count.
//! - **SGLang** (v0.4-v0.5): `--speculative-eagle-topk`,
//!   `--speculative-num-steps`, `--speculative-num-draft-tokens`
//!   (`python/sglang/srt/server_args.py`; the tree they build is in
//!   [`super::sglang_tree`]).
//! - **TensorRT-LLM** (v0.20-v1.0): `speculative_config` with
//!   `eagle_choices`, `max_draft_len` (the tree's depth) and
//!   `max_total_draft_tokens` (its node count), `tensorrt_llm/llmapi/llm_args.py`.
//!   Ranks are kept below 10, the `TOPK` of the EAGLE checkpoints it loads.
//! - **Medusa** (FasterDecoding/Medusa, `medusa/model/medusa_choices.py`
//!   and `utils.py`, `TOPK = 10`) and **EAGLE** (SafeAILab/EAGLE v1,
//!   `eagle/model/choices.py` and `utils.py`, `TOPK = 10`): a Python list
//!   of rank paths.

use super::level_uniform::level_uniform_curves;
use super::{
    best_level_uniform, best_rank_limited, best_sglang, best_sglang_by_speed, Constrained,
    RankAcceptance, SglangConfig, DEFAULT_MAX_RANK, MAX_SGLANG_STEPS, MAX_SGLANG_TOPK,
};
use crate::capacity::CostModel;
use crate::error::{Error, Result};
use crate::format::{
    is_level_uniform, medusa_choices_string, to_rank_paths, vllm_tree_string, RankRule,
};
use crate::tree::DraftTree;
use serde::Serialize;
use serde_json::json;
use std::fmt;
use std::str::FromStr;

/// A server speclight writes configurations for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Server {
    /// vLLM: a level-uniform `speculative_token_tree`.
    Vllm,
    /// SGLang: three numbers for its beam-built tree.
    Sglang,
    /// TensorRT-LLM: `eagle_choices` with ranks below 10.
    Trtllm,
    /// Medusa: `medusa_choices` with ranks below 10.
    Medusa,
    /// EAGLE (v1 static trees): choices with ranks below 10.
    Eagle,
}

impl Server {
    /// Every server, in the order of the CLI's help.
    pub const ALL: [Server; 5] = [
        Server::Vllm,
        Server::Sglang,
        Server::Trtllm,
        Server::Medusa,
        Server::Eagle,
    ];

    /// The lower-case name the CLI and JSON use.
    pub fn name(self) -> &'static str {
        match self {
            Server::Vllm => "vllm",
            Server::Sglang => "sglang",
            Server::Trtllm => "trtllm",
            Server::Medusa => "medusa",
            Server::Eagle => "eagle",
        }
    }

    /// The rank limit of a static-tree server (`None`: any rank).
    fn max_rank(self) -> Option<usize> {
        match self {
            Server::Vllm | Server::Sglang => None,
            Server::Trtllm | Server::Medusa | Server::Eagle => Some(DEFAULT_MAX_RANK),
        }
    }
}

impl fmt::Display for Server {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Server {
    type Err = Error;

    /// # Examples
    ///
    /// ```
    /// use speclight::deploy::Server;
    /// assert_eq!("vllm".parse::<Server>()?, Server::Vllm);
    /// assert!("tgi".parse::<Server>().is_err());
    /// # Ok::<(), speclight::Error>(())
    /// ```
    fn from_str(s: &str) -> Result<Self> {
        Server::ALL
            .into_iter()
            .find(|server| server.name() == s)
            .ok_or_else(|| {
                Error::InvalidArgument(format!(
                    "unknown server {s:?}: expected one of vllm, sglang, trtllm, medusa, eagle"
                ))
            })
    }
}

/// A server's best configuration, ready to paste, with its value.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Deployment {
    /// The server.
    pub server: Server,
    /// The configuration as JSON (the keys the server reads).
    pub config: serde_json::Value,
    /// The configuration as the server's users write it.
    #[serde(skip)]
    pub paste: String,
    /// `E[X]` of the deployed tree.
    pub expected_accepted: f64,
    /// `E[X]` of the unconstrained optimum, same capacity and depth limit.
    pub unconstrained_expected_accepted: f64,
    /// `1 - expected / unconstrained`.
    pub constraint_cost: f64,
    /// Capacity (draft tokens per verifier pass) it was chosen for.
    pub capacity: usize,
    /// Depth limit it was chosen under (`null`: none; SGLang by speed: its
    /// `num_steps`).
    pub max_depth: Option<u32>,
    /// Predicted tokens per second, when chosen by speed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tokens_per_second: Option<f64>,
}

/// The best configuration of `server` for at most `capacity` draft tokens
/// and depth `<= max_depth`, on per-depth rank acceptance: the
/// level-uniform optimum for vLLM, the rank-limited (`< 10`) optimum for
/// TensorRT-LLM, Medusa and EAGLE, the best triple for SGLang. Time as the
/// search it runs ([`best_level_uniform`], [`best_rank_limited`],
/// [`best_sglang`]).
///
/// # Errors
///
/// [`Error::CapacityUnfillable`] when no configuration of the server can
/// use `capacity` draft tokens under the depth limit, and the searches'
/// errors (zero or too large a capacity, zero depth).
///
/// # Examples
///
/// ```
/// use speclight::deploy::{deploy, RankAcceptance, Server};
/// let a = RankAcceptance::context_free(&[0.6, 0.2, 0.1])?;
/// let d = deploy(Server::Vllm, &a, 4, None)?;
/// assert_eq!(d.paste, r#"{"num_speculative_tokens":4,"speculative_token_tree":"[(0,), (0, 0), (0, 0, 0), (0, 0, 0, 0)]"}"#);
/// # Ok::<(), speclight::Error>(())
/// ```
pub fn deploy(
    server: Server,
    acceptance: &RankAcceptance,
    capacity: usize,
    max_depth: Option<u32>,
) -> Result<Deployment> {
    if capacity == 0 {
        return Err(Error::ZeroCapacity);
    }
    if let Some((max, why)) = max_fill(server, acceptance, max_depth) {
        if capacity as u64 > max {
            return Err(Error::CapacityUnfillable {
                server: server.name(),
                capacity,
                max,
                why,
            });
        }
    }
    let (constrained, sglang) = match server {
        Server::Vllm => (
            best_level_uniform(acceptance, capacity, max_depth)?.constrained,
            None,
        ),
        Server::Sglang => {
            let choice = best_sglang(acceptance, capacity, max_depth)?;
            (choice.constrained, Some(choice.config))
        }
        _ => (
            best_rank_limited(acceptance, capacity, max_depth, DEFAULT_MAX_RANK)?,
            None,
        ),
    };
    deployment(server, &constrained, sglang, capacity, max_depth)
}

/// Renders a chosen tree (or SGLang triple) as a [`Deployment`].
fn deployment(
    server: Server,
    constrained: &Constrained,
    sglang: Option<SglangConfig>,
    capacity: usize,
    max_depth: Option<u32>,
) -> Result<Deployment> {
    let (config, paste) = render(server, &constrained.tree, sglang)?;
    Ok(Deployment {
        server,
        config,
        paste,
        expected_accepted: constrained.expected_accepted,
        unconstrained_expected_accepted: constrained.unconstrained_expected_accepted,
        constraint_cost: constrained.constraint_cost(),
        capacity,
        max_depth,
        tokens_per_second: None,
    })
}

/// As [`deploy`], also choosing the capacity `n <= max_capacity` and the
/// depth limit `d <= max_depth` (32 when none is given) that maximise
/// predicted tokens per second (docs/THEORY.md section 5), the drafter charged
/// per level of the tree (per beam step of width `topk` for SGLang). A
/// `max_capacity` beyond what the server can fill is cut to it. Time: the
/// search of [`deploy`] once per depth limit, every capacity read off the
/// same table (level-uniform) or best-first order (rank-limited).
///
/// # Errors
///
/// As [`deploy`].
pub fn deploy_by_speed(
    server: Server,
    acceptance: &RankAcceptance,
    cost: &CostModel,
    max_capacity: usize,
    max_depth: Option<u32>,
) -> Result<Deployment> {
    if max_capacity == 0 {
        return Err(Error::ZeroCapacity);
    }
    let fill = max_fill(server, acceptance, max_depth).map_or(u64::MAX, |(m, _)| m);
    let top = (max_capacity as u64).min(fill) as usize;
    let deepest = max_depth.unwrap_or(SPEED_SEARCH_MAX_DEPTH);
    let (n, depth, tps) = match server {
        Server::Sglang => {
            // The triple is chosen with the capacity: keep it, not a re-solve.
            let choice = best_sglang_by_speed(acceptance, cost, top, max_depth)?;
            let c = choice.config;
            let mut d = deployment(
                server,
                &choice.constrained,
                Some(c),
                c.capacity(),
                Some(c.num_steps),
            )?;
            d.tokens_per_second = choice.tokens_per_second;
            return Ok(d);
        }
        Server::Vllm => {
            let curves = level_uniform_curves(acceptance, top, deepest)?;
            let mut best = Speed::default();
            for (d, curve) in curves.iter().enumerate() {
                for (value, branching) in curve {
                    let widths = level_widths(branching);
                    best.offer(cost, *value, &widths, d as u32 + 1);
                }
            }
            best.choice()
        }
        _ => {
            let mut best = Speed::default();
            for d in 1..=deepest {
                let tree = best_rank_limited(acceptance, top, Some(d), DEFAULT_MAX_RANK)?.tree;
                let (mut value, mut widths, mut reach) = (0.0, Vec::new(), Vec::new());
                // Best-first pops in order: every prefix is the optimum of its size.
                for node in tree.nodes() {
                    let up = node.parent.map_or(1.0, |p| reach[p]);
                    let a = acceptance.row(node.depth).get(node.token as usize);
                    reach.push(up * a.copied().unwrap_or(0.0));
                    value += reach[node.index];
                    if widths.len() < node.depth as usize {
                        widths.push(0);
                    }
                    widths[node.depth as usize - 1] += 1;
                    best.offer(cost, value, &widths, d);
                }
            }
            best.choice()
        }
    };
    let mut deployment = deploy(server, acceptance, n.max(1), depth)?;
    deployment.tokens_per_second = Some(tps);
    Ok(deployment)
}

/// Deepest tree the speed search tries when no depth limit is given.
const SPEED_SEARCH_MAX_DEPTH: u32 = 32;

/// Level widths `m_d = c_1 ... c_d` of a branching vector.
fn level_widths(branching: &[u32]) -> Vec<usize> {
    branching
        .iter()
        .scan(1usize, |m, &c| {
            *m *= c as usize;
            Some(*m)
        })
        .collect()
}

/// The fastest `(nodes, depth limit)` seen: ties go to the first offered
/// (fewer nodes, shallower).
#[derive(Default)]
struct Speed {
    best: Option<(usize, u32, f64)>,
}

impl Speed {
    /// A tree of `E[X] = value` with `widths[k]` nodes at depth `k + 1`,
    /// built under depth limit `depth`.
    fn offer(&mut self, cost: &CostModel, value: f64, widths: &[usize], depth: u32) {
        let n: usize = widths.iter().sum();
        let tps = cost.tokens_per_second(value, n, cost.draft().of_levels(widths));
        if self.best.is_none_or(|(_, _, b)| tps > b + 1e-12 * b.abs()) {
            self.best = Some((n, depth, tps));
        }
    }

    fn choice(&self) -> (usize, Option<u32>, f64) {
        self.best
            .map_or((1, None, 0.0), |(n, d, t)| (n, Some(d), t))
    }
}

/// The most draft tokens any configuration of `server` can use under the
/// depth limit, and why; `None` when unbounded.
fn max_fill(
    server: Server,
    acceptance: &RankAcceptance,
    max_depth: Option<u32>,
) -> Option<(u64, String)> {
    if server == Server::Sglang {
        let steps = max_depth.unwrap_or(MAX_SGLANG_STEPS).min(MAX_SGLANG_STEPS);
        let config = SglangConfig {
            topk: MAX_SGLANG_TOPK,
            num_steps: steps,
            num_draft_tokens: 2,
        };
        let why = format!("topk <= {MAX_SGLANG_TOPK} and num_steps <= {steps}");
        return Some((config.generated(), why));
    }
    let depth = max_depth?;
    let limit = server.max_rank().unwrap_or(usize::MAX);
    let (mut width, mut total) = (1u64, 0u64);
    for d in 1..=depth {
        let ranks = acceptance.row(d).len().min(limit) as u64;
        width = width.saturating_mul(ranks);
        total = total.saturating_add(width);
    }
    let ranks = match server.max_rank() {
        Some(k) => format!("ranks < {k} and the distribution's ranks"),
        None => "the distribution's ranks".to_string(),
    };
    Some((total, format!("{ranks}, depth <= {depth}")))
}

/// The configuration JSON and its paste-ready text.
fn render(
    server: Server,
    tree: &DraftTree,
    sglang: Option<SglangConfig>,
) -> Result<(serde_json::Value, String)> {
    if let (Server::Sglang, Some(c)) = (server, sglang) {
        let config = json!({
            "speculative_eagle_topk": c.topk,
            "speculative_num_steps": c.num_steps,
            "speculative_num_draft_tokens": c.num_draft_tokens,
        });
        let paste = format!(
            "--speculative-eagle-topk {} --speculative-num-steps {} --speculative-num-draft-tokens {}",
            c.topk, c.num_steps, c.num_draft_tokens
        );
        return Ok((config, paste));
    }
    let paths = to_rank_paths(tree, RankRule::TokenIsRank)?;
    let choices = medusa_choices_string(&paths);
    Ok(match server {
        Server::Vllm => {
            if !is_level_uniform(&paths) {
                return Err(Error::InvalidArgument(
                    "internal: the vLLM tree is not level-uniform".into(),
                ));
            }
            let config = json!({
                "num_speculative_tokens": paths.len(),
                "speculative_token_tree": vllm_tree_string(&paths),
            });
            let paste = config.to_string();
            (config, paste)
        }
        Server::Trtllm => {
            let config = json!({
                "max_draft_len": tree.max_depth(),
                "max_total_draft_tokens": paths.len(),
                "eagle_choices": paths,
            });
            let paste = format!(
                "speculative_config:\n  max_draft_len: {}\n  max_total_draft_tokens: {}\n  eagle_choices: {choices}",
                tree.max_depth(),
                paths.len()
            );
            (config, paste)
        }
        Server::Medusa => (
            json!({ "medusa_choices": paths }),
            format!("medusa_choices = {choices}"),
        ),
        _ => (
            json!({ "tree_choices": paths }),
            format!("tree_choices = {choices}"),
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_server_writes_its_schema() {
        let a = RankAcceptance::context_free(&[0.634, 0.108, 0.057, 0.034]).unwrap();
        for server in Server::ALL {
            let d = deploy(server, &a, 8, Some(4)).unwrap();
            assert!(d.expected_accepted <= d.unconstrained_expected_accepted + 1e-12);
            let keys: Vec<&str> = d
                .config
                .as_object()
                .unwrap()
                .keys()
                .map(String::as_str)
                .collect();
            let want: &[&str] = match server {
                Server::Vllm => &["num_speculative_tokens", "speculative_token_tree"],
                Server::Sglang => &[
                    "speculative_eagle_topk",
                    "speculative_num_draft_tokens",
                    "speculative_num_steps",
                ],
                Server::Trtllm => &["eagle_choices", "max_draft_len", "max_total_draft_tokens"],
                Server::Medusa => &["medusa_choices"],
                Server::Eagle => &["tree_choices"],
            };
            assert_eq!(keys, want, "{server}");
        }
    }

    #[test]
    fn an_unfillable_capacity_is_refused() {
        let a = RankAcceptance::context_free(&[0.5, 0.3]).unwrap();
        let err = deploy(Server::Medusa, &a, 7, Some(2)).unwrap_err();
        assert!(
            matches!(err, Error::CapacityUnfillable { max: 6, .. }),
            "{err}"
        );
        assert!(deploy(Server::Medusa, &a, 6, Some(2)).is_ok());
        // topk <= 10, two steps: 10 + 10^2 generated nodes.
        let err = deploy(Server::Sglang, &a, 111, Some(2)).unwrap_err();
        assert!(
            matches!(err, Error::CapacityUnfillable { max: 110, .. }),
            "{err}"
        );
    }

    /// The tokens per second a deployment's own configuration predicts.
    fn recomputed_speed(d: &Deployment, cost: &CostModel) -> f64 {
        let widths: Vec<usize> = if d.server == Server::Sglang {
            let steps = d.config["speculative_num_steps"].as_u64().unwrap() as usize;
            let topk = d.config["speculative_eagle_topk"].as_u64().unwrap() as usize;
            vec![topk; steps]
        } else {
            let key = [
                "speculative_token_tree",
                "eagle_choices",
                "medusa_choices",
                "tree_choices",
            ]
            .into_iter()
            .find(|k| d.config.get(k).is_some())
            .unwrap();
            let paths: Vec<Vec<u32>> = match &d.config[key] {
                serde_json::Value::String(text) => crate::format::parse_vllm_tree(text).unwrap(),
                list => serde_json::from_value(list.clone()).unwrap(),
            };
            let mut widths = vec![0; paths.iter().map(Vec::len).max().unwrap_or(0)];
            paths.iter().for_each(|p| widths[p.len() - 1] += 1);
            widths
        };
        let n = if d.server == Server::Sglang {
            d.capacity
        } else {
            widths.iter().sum()
        };
        cost.tokens_per_second(d.expected_accepted, n, cost.draft().of_levels(&widths))
    }

    #[test]
    fn the_speed_search_is_the_best_of_every_capacity_and_depth() {
        use crate::capacity::{DraftCost, LatencyProfile};
        let profile = LatencyProfile::new(&[(0, 0.02), (4, 0.021), (16, 0.03)]).unwrap();
        let cost = CostModel::new(profile, DraftCost::PerStep(0.003), 0.001).unwrap();
        let a = RankAcceptance::new(&[vec![0.5, 0.2, 0.1], vec![0.6, 0.15]]).unwrap();
        for server in Server::ALL {
            let d = deploy_by_speed(server, &a, &cost, 16, Some(4)).unwrap();
            let tps = d.tokens_per_second.unwrap();
            assert!(
                (tps - recomputed_speed(&d, &cost)).abs() < 1e-9 * tps,
                "{server}"
            );
            // No capacity and depth limit does better through deploy().
            for n in 1..=16 {
                for depth in 1..=4 {
                    if let Ok(other) = deploy(server, &a, n, Some(depth)) {
                        let t = recomputed_speed(&other, &cost);
                        assert!(
                            t <= tps + 1e-9 * tps,
                            "{server} n {n} D {depth}: {t} > {tps}"
                        );
                    }
                }
            }
        }
    }
}
