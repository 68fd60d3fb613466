//! The tuning pipeline: estimate on the training split, choose trees, and
//! measure them and the baselines on the held-out split, in two streaming
//! passes.

use super::acceptance::{AcceptanceEstimator, AcceptanceMatrix, Z95};
use super::policy::{chain_tree, kary_tree, DynamicBestFirst, EagleTree, RankTree};
use super::reader::{Group, TraceReader};
use crate::build::{TreeBuilder, MAX_CAPACITY};
use crate::capacity::{CapacitySolver, CostModel};
use crate::error::{Error, Result};
use crate::eval::evaluate;
use crate::format::{to_rank_paths, vllm_tree_string, RankRule, TreeJson};
use crate::model::PositionalByDepth;
use crate::trace::{Trace, TraceToken};
use crate::trace_bound::{self, TraceBound};
use crate::tree::DraftTree;
use serde::{Deserialize, Serialize};
use std::io::BufRead;

/// Largest capacity the tuner accepts (trees, curves and walks stay small).
pub const MAX_TUNE_CAPACITY: usize = 4096;

/// Which sequences are held out for measurement; the rest train.
/// Splitting by sequence (not by record) keeps the overlapping windows of
/// one text on one side.
///
/// - [`Split::new`]: sequence `s` is held out when
///   `splitmix64(s ^ salt) / 2^64 < fraction`, for a trace of one source;
/// - [`Split::from_seq`]: sequences `>= first` are held out, for a trace
///   written from a training text and then a held-out text.
///
/// # Examples
///
/// ```
/// use speclight::tune::Split;
/// let split = Split::new(0.25, 0)?;
/// let held = (0..10_000u64).filter(|&s| split.is_heldout(s)).count();
/// assert!((2300..2700).contains(&held));
/// assert!(Split::from_seq(100).is_heldout(100) && !Split::from_seq(100).is_heldout(99));
/// # Ok::<(), speclight::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub enum Split {
    /// Hash of the sequence id below a fraction.
    Hash {
        /// Fraction of sequences held out.
        fraction: f64,
        /// Salt of the hash.
        salt: u64,
    },
    /// Sequence ids from this one on.
    FromSeq(u64),
}

impl Split {
    /// Holds out about `fraction` of the sequences, chosen by hash.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArgument`] unless `0 < fraction < 1`.
    pub fn new(fraction: f64, salt: u64) -> Result<Self> {
        if !(fraction > 0.0 && fraction < 1.0) {
            return Err(Error::InvalidArgument(format!(
                "hold-out fraction {fraction} is not strictly between 0 and 1"
            )));
        }
        Ok(Self::Hash { fraction, salt })
    }

    /// Holds out the sequences with id `>= first`.
    pub fn from_seq(first: u64) -> Self {
        Self::FromSeq(first)
    }

    /// Whether sequence `seq` is held out.
    pub fn is_heldout(&self, seq: u64) -> bool {
        match *self {
            Split::Hash { fraction, salt } => {
                let mut z = (seq ^ salt).wrapping_add(0x9e37_79b9_7f4a_7c15);
                z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
                z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
                z ^= z >> 31;
                ((z >> 11) as f64) / ((1u64 << 53) as f64) < fraction
            }
            Split::FromSeq(first) => seq >= first,
        }
    }
}

/// Settings of [`tune`].
#[derive(Debug, Clone)]
pub struct TuneConfig {
    /// Capacities (draft tokens per verifier pass) to choose trees for and
    /// compare policies at.
    pub capacities: Vec<usize>,
    /// The training / held-out split.
    pub split: Split,
    /// Depth limit for trees (default: every depth the training data
    /// support, see [`AcceptanceMatrix::usable_depth`]).
    pub max_depth: Option<u32>,
    /// Branching of the fixed k-ary baseline.
    pub kary: u32,
    /// EAGLE-style baseline: nodes expanded per level and children each.
    pub eagle_top_k: usize,
    /// EAGLE-style baseline: levels drafted.
    pub eagle_depth: u32,
    /// Latency model: when given, the capacity solver picks the capacity and
    /// depth limit of the chosen tree.
    pub cost: Option<CostModel>,
    /// Normal quantile of the intervals ([`Z95`] for 95%).
    pub z: f64,
    /// Bootstrap replicates (resampling training sequences) for the
    /// prediction's estimation error; below 2, the delta method is used.
    pub bootstrap: usize,
}

/// Name of the per-iteration best-first policy in reports.
pub const DYNAMIC_NAME: &str = "best-first (dynamic)";

/// Seed of the bootstrap weights (fixed: a report is reproducible).
const BOOTSTRAP_SEED: u64 = 0x7475_6e65;

impl Default for TuneConfig {
    /// Capacities 1, 2, 4, ..., 64; 20% held out; 100 bootstrap replicates; binary k-ary baseline;
    /// EAGLE-2's published shape (top_k 10, 6 levels, scaled down to top_k
    /// 8 since most traces record fewer candidates); 95% intervals.
    fn default() -> Self {
        Self {
            capacities: vec![1, 2, 4, 8, 16, 32, 64],
            split: Split::Hash {
                fraction: 0.2,
                salt: 0,
            },
            max_depth: None,
            kary: 2,
            eagle_top_k: 8,
            eagle_depth: 6,
            cost: None,
            z: Z95,
            bootstrap: 100,
        }
    }
}

/// A predicted mean with its interval.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Interval {
    /// Point value.
    pub mean: f64,
    /// Lower end.
    pub lo: f64,
    /// Upper end.
    pub hi: f64,
}

impl Interval {
    /// Whether `x` lies in `[lo, hi]`.
    pub fn contains(&self, x: f64) -> bool {
        self.lo <= x && x <= self.hi
    }
}

/// The per-depth model's prediction for one static tree.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Prediction {
    /// `E[X]` under the estimated model (accepted draft tokens).
    pub expected_accepted: f64,
    /// Standard error of `E[X]` from estimating `a` on the training split:
    /// in [`tune`], the standard deviation of `E[X]` over bootstrap
    /// replicates that resample training *sequences*
    /// ([`AcceptanceEstimator::with_bootstrap`]); from [`predict`] alone,
    /// `delta_se`.
    pub estimation_se: f64,
    /// The delta-method standard error, which treats records as
    /// independent (see [`predict`]); below `estimation_se` when the groups
    /// of a sequence are correlated.
    pub delta_se: f64,
    /// `sd(X)` of one iteration under the model.
    pub iteration_sd: f64,
    /// Interval for the *held-out mean* of `X`: `E[X] +- z sqrt(estimation_se^2 + se_h^2)`
    /// with `se_h` the held-out mean's standard error, in [`tune`] the
    /// measured one clustered by sequence ([`Measurement`]), from
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

/// One policy at one capacity.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PolicyResult {
    /// `best-first` (the static tree), `chain`, `k-ary (k=K)`,
    /// `best-first (dynamic)` ([`DynamicBestFirst`]) or
    /// `eagle (top_k=K, depth=D)` ([`EagleTree`]).
    pub policy: String,
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
    pub reference: String,
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

/// A policy's predicted `E[X]` at every capacity `1..=N` (static trees).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Curve {
    /// Policy name.
    pub policy: String,
    /// `values[n-1]` = predicted `E[X]` at capacity `n`.
    pub values: Vec<f64>,
}

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

/// The capacity solver's answer on the estimated model (THEORY.md 5).
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

/// The chosen tree in the formats servers read.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChosenTree {
    /// Capacity.
    pub capacity: usize,
    /// Depth limit.
    pub max_depth: u32,
    /// Rank paths (Medusa `medusa_choices`), breadth first.
    pub rank_paths: Vec<Vec<u32>>,
    /// vLLM `speculative_token_tree`.
    pub vllm: String,
    /// The JSON tree (tokens are ranks).
    pub tree: TreeJson,
    /// Predicted reach `pi(v)` of every node, in node order.
    pub reach: Vec<f64>,
}

/// Everything [`tune`] found; serialisable so that plots can be redrawn.
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
    /// Trace speed of light (THEORY.md 4d) per capacity, from the held-out
    /// verifier tokens and their `target_logprob`: no deterministic drafter
    /// of that capacity beats it on this workload.
    pub speed_of_light: Vec<TraceBound>,
    /// Why there is no speed of light, when there is none.
    pub speed_of_light_note: Option<String>,
}

/// Most held-out verifier tokens kept for the trace speed of light (16 bytes
/// each): the one part of the tuner whose memory grows with the trace.
pub const MAX_SPEED_OF_LIGHT_TOKENS: usize = 1 << 22;

/// Collects the held-out verifier's own continuation (the depth-1 records)
/// as a [`Trace`] for THEORY.md 4d; a gap in positions starts a new
/// sequence, since windows must not jump over missing tokens.
#[derive(Debug, Default)]
struct SolCollector {
    trace: Trace,
    last: Option<(u64, u64)>,
    tokens: usize,
    missing: bool,
    full: bool,
}

impl SolCollector {
    fn push(&mut self, group: &Group) -> Result<()> {
        if self.missing {
            return Ok(());
        }
        let lp = group.target_logprobs().and_then(|v| v.first().copied());
        let (Some(lp), Some(&token)) = (lp, group.targets().first()) else {
            self.missing = true;
            return Ok(());
        };
        if self.tokens >= MAX_SPEED_OF_LIGHT_TOKENS {
            self.full = true;
            return Ok(());
        }
        if self.last != Some((group.seq(), group.pos().wrapping_sub(1))) {
            self.trace.end_sequence();
        }
        self.last = Some((group.seq(), group.pos()));
        self.trace.push(TraceToken::new(token, lp.min(0.0))?);
        self.tokens += 1;
        Ok(())
    }

    fn bounds(&self, capacities: &[usize]) -> (Vec<TraceBound>, Option<String>) {
        if self.missing {
            return (
                Vec::new(),
                Some("some held-out records have no target_logprob: record it to get the speed of light".into()),
            );
        }
        let mut out = Vec::new();
        for &n in capacities {
            match trace_bound::estimate(&self.trace, n, trace_bound::DEFAULT_BLOCKS) {
                Ok(b) => out.push(b),
                Err(e) => return (Vec::new(), Some(e.to_string())),
            }
        }
        let note = self.full.then(|| {
            format!("speed of light from the first {MAX_SPEED_OF_LIGHT_TOKENS} held-out tokens")
        });
        (out, note)
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

/// Static policies at one capacity, walked on every held-out group.
struct StaticPolicy {
    name: String,
    tree: RankTree,
    moments: Clustered,
}

/// Tunes a static tree policy from a paired trace (see the module docs for
/// the format and ordering). `open` is called twice and must return the
/// same trace each time: pass 1 estimates the acceptance matrix on the
/// training sequences, pass 2 walks every policy's tree on the held-out
/// sequences. Memory is O(depth x top-k + policies x capacity), whatever
/// the number of records.
///
/// Steps: (1) conditional acceptance `a[d][k]` with Wilson intervals
/// ([`AcceptanceEstimator`]); (2) the per-depth positional model and, for
/// each capacity, the best-first tree over it (THEORY.md section 3; the
/// optimal static tree for the model); with a latency model the capacity
/// solver (section 5) picks the capacity and depth of the chosen tree;
/// (3) on held-out groups, accepted tokens of best-first, chain, k-ary and
/// EAGLE-style trees at equal capacity, against the predictions.
///
/// Time: O(records) for the passes plus O(groups x policies x depth).
///
/// # Errors
///
/// Reader errors (the first bad line stops: run [`super::validate`] to see
/// them all), [`Error::InvalidArgument`] for an empty capacity list, a
/// capacity above [`MAX_TUNE_CAPACITY`], no training data or no match at
/// depth 1, and errors of the model, builder or solver.
pub fn tune<R, F>(mut open: F, config: &TuneConfig) -> Result<TuneReport>
where
    R: BufRead,
    F: FnMut() -> Result<R>,
{
    let mut capacities = config.capacities.clone();
    if capacities.is_empty() {
        return Err(Error::InvalidArgument("no capacities to tune for".into()));
    }
    if let Some(&c) = capacities
        .iter()
        .find(|&&c| c == 0 || c > MAX_TUNE_CAPACITY)
    {
        return Err(Error::InvalidArgument(format!(
            "capacity {c} is not in 1..={MAX_TUNE_CAPACITY}"
        )));
    }
    // Pass 1: estimate on the training split.
    let mut estimator = AcceptanceEstimator::new().with_bootstrap(config.bootstrap, BOOTSTRAP_SEED);
    let mut group = Group::default();
    let mut with_logprob = 0u64;
    {
        let mut reader = TraceReader::new(open()?);
        while reader.next_group(&mut group)? {
            with_logprob += group.target_logprobs().map_or(0, |v| v.len() as u64);
            if !config.split.is_heldout(group.seq()) {
                estimator.observe(&group);
            }
        }
    }
    if estimator.groups() == 0 {
        return Err(Error::InvalidArgument(
            "the training split is empty: the trace has too few sequences for this hold-out fraction".into(),
        ));
    }
    let acceptance = estimator.conditional().clone();
    let mut model = acceptance.to_model()?;
    let usable = acceptance.usable_depth() as u32;
    let max_depth = config.max_depth.map_or(usable, |d| d.min(usable)).max(1);

    // The capacity solver picks the chosen tree's (n, D).
    let max_cap = *capacities.iter().max().unwrap_or(&1);
    let capacity_choice = match &config.cost {
        Some(cost) => {
            let solver = CapacitySolver::new(cost.clone(), max_cap.min(MAX_CAPACITY), max_depth)?;
            let s = solver.solve(&mut model)?;
            Some(CapacityChoice {
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
            })
        }
        None => None,
    };
    if let Some(c) = &capacity_choice {
        if !capacities.contains(&c.capacity) {
            capacities.push(c.capacity);
        }
    }
    capacities.sort_unstable();
    capacities.dedup();

    // Trees per capacity.
    let mut builder = TreeBuilder::new(max_cap)?;
    let mut statics: Vec<Vec<StaticPolicy>> = Vec::new();
    let mut depths = Vec::new();
    for &n in &capacities {
        let d = match &capacity_choice {
            Some(c) if c.capacity == n => c.max_depth,
            _ => max_depth,
        };
        builder.set_capacity(n)?;
        builder.set_max_depth(Some(d))?;
        let mut best = builder.build_owned(&mut model)?;
        best.set_no_draft_probs();
        let policies = vec![
            StaticPolicy {
                name: "best-first".into(),
                tree: RankTree::new(best),
                moments: Clustered::default(),
            },
            StaticPolicy {
                name: "chain".into(),
                tree: RankTree::new(chain_tree(n.min(max_depth as usize))?),
                moments: Clustered::default(),
            },
            StaticPolicy {
                name: format!("k-ary (k={})", config.kary),
                tree: RankTree::new(kary_tree(config.kary, n, max_depth)?),
                moments: Clustered::default(),
            },
        ];
        statics.push(policies);
        depths.push(d);
    }
    let mut eagle = EagleTree::new(config.eagle_top_k, config.eagle_depth.min(max_depth))?;
    let eagle_name = format!(
        "eagle (top_k={}, depth={})",
        config.eagle_top_k,
        eagle.depth()
    );
    let mut eagle_moments = vec![Clustered::default(); capacities.len()];
    let mut dynamic = DynamicBestFirst::new(max_cap, max_depth)?;
    let mut dynamic_moments = vec![Clustered::default(); capacities.len()];
    // Per capacity: static best-first minus chain, minus k-ary; dynamic
    // best-first minus EAGLE.
    let mut differences = vec![[Clustered::default(); 3]; capacities.len()];
    let needed = statics
        .iter()
        .flatten()
        .map(|p| p.tree.tree().max_depth())
        .chain([eagle.depth()])
        .max()
        .unwrap_or(1) as usize;

    // Pass 2: walk the held-out split.
    let mut heldout_truncated = 0u64;
    let mut sol = SolCollector::default();
    {
        let mut reader = TraceReader::new(open()?);
        while reader.next_group(&mut group)? {
            if !config.split.is_heldout(group.seq()) {
                continue;
            }
            sol.push(&group)?;
            if group.depth() < needed {
                heldout_truncated += 1;
                continue;
            }
            dynamic.rank_group(&group)?;
            eagle.rank_group(&group);
            for (i, &n) in capacities.iter().enumerate() {
                let mut walked = [0.0; 3];
                for (w, p) in walked.iter_mut().zip(statics[i].iter_mut()) {
                    *w = p.tree.walk(group.ranks()) as f64;
                    p.moments.push(group.seq(), *w);
                }
                let (dyn_x, eagle_x) = (dynamic.accepted(n) as f64, eagle.accepted(n) as f64);
                dynamic_moments[i].push(group.seq(), dyn_x);
                eagle_moments[i].push(group.seq(), eagle_x);
                // Paired differences: each baseline against its best-first
                // counterpart on the same iteration.
                let [best, chain, kary] = walked;
                for (d, x) in
                    differences[i]
                        .iter_mut()
                        .zip([best - chain, best - kary, dyn_x - eagle_x])
                {
                    d.push(group.seq(), x);
                }
            }
        }
    }
    let heldout_groups = eagle_moments.first().map_or(0, |m| m.groups);

    let mut results = Vec::new();
    for (i, &n) in capacities.iter().enumerate() {
        let mut policies = Vec::new();
        for (k, p) in statics[i].iter().enumerate() {
            let measured = p.moments.measurement(config.z);
            let analytic = predict(
                p.tree.tree(),
                &mut model,
                &acceptance.trials,
                heldout_groups,
                config.z,
            )?;
            let boot_se = bootstrap_se(p.tree.tree(), estimator.replicates());
            let predicted = match measured {
                Some(m) if m.std_error.is_finite() => analytic.with_errors(
                    boot_se.unwrap_or(analytic.delta_se),
                    m.std_error,
                    config.z,
                ),
                _ => analytic,
            };
            policies.push(PolicyResult {
                policy: p.name.clone(),
                nodes: p.tree.tree().len(),
                predicted: Some(predicted),
                measured,
                versus: (k > 0).then(|| Versus {
                    reference: "best-first".into(),
                    difference: differences[i][k - 1].measurement(config.z),
                }),
            });
        }
        policies.push(PolicyResult {
            policy: DYNAMIC_NAME.into(),
            nodes: n,
            predicted: None,
            measured: dynamic_moments[i].measurement(config.z),
            versus: None,
        });
        policies.push(PolicyResult {
            policy: eagle_name.clone(),
            nodes: n.min(eagle.max_nodes()),
            predicted: None,
            measured: eagle_moments[i].measurement(config.z),
            versus: Some(Versus {
                reference: DYNAMIC_NAME.into(),
                difference: differences[i][2].measurement(config.z),
            }),
        });
        results.push(CapacityResult {
            capacity: n,
            max_depth: depths[i],
            policies,
        });
    }

    let (speed_of_light, speed_of_light_note) = sol.bounds(&capacities);
    let curves = curves(&mut model, max_cap, max_depth, config.kary)?;

    // The chosen tree: the solver's, else the largest capacity's.
    let chosen_index = match &capacity_choice {
        Some(c) => capacities
            .iter()
            .position(|&n| n == c.capacity)
            .unwrap_or(0),
        None => capacities.len() - 1,
    };
    let tree = statics[chosen_index][0].tree.tree();
    let rank_paths = to_rank_paths(tree, RankRule::TokenIsRank)?;
    let ev = evaluate(tree, &mut model)?;
    let mut reach = Vec::with_capacity(tree.len());
    let mut path = Vec::new();
    for v in 0..tree.len() {
        tree.path_tokens(v, &mut path);
        reach.push(
            path.iter()
                .enumerate()
                .map(|(j, &r)| model.acceptance(j as u32 + 1, r))
                .product(),
        );
    }
    let mut tree_json = TreeJson::from_tree(
        tree,
        Some(capacities[chosen_index]),
        Some(depths[chosen_index]),
    );
    tree_json.expected_accepted = Some(ev.expected_accepted);
    tree_json.accept_length_distribution = Some(ev.accept_at_least.clone());
    let chosen = ChosenTree {
        capacity: capacities[chosen_index],
        max_depth: depths[chosen_index],
        vllm: vllm_tree_string(&rank_paths),
        rank_paths,
        tree: tree_json,
        reach,
    };

    Ok(TuneReport {
        train_groups: estimator.groups(),
        train_records: estimator.records(),
        heldout_groups,
        heldout_truncated,
        records_with_target_logprob: with_logprob,
        acceptance,
        marginal: estimator.marginal().clone(),
        max_depth,
        z: config.z,
        results,
        curves,
        capacity_choice,
        chosen,
        speed_of_light,
        speed_of_light_note,
    })
}

/// Standard deviation of a tree's `E[X]` over the bootstrap replicates;
/// `None` with fewer than two.
fn bootstrap_se(tree: &DraftTree, replicates: &[AcceptanceMatrix]) -> Option<f64> {
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
fn curves(
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
    let full = kary_tree(kary, max_cap, max_depth)?;
    let mut kary_curve = Vec::with_capacity(max_cap);
    let mut sum = 0.0;
    let mut path = Vec::new();
    for v in 0..max_cap {
        if v < full.len() {
            full.path_tokens(v, &mut path);
            sum += path
                .iter()
                .enumerate()
                .map(|(j, &r)| model.acceptance(j as u32 + 1, r))
                .product::<f64>();
        }
        kary_curve.push(sum);
    }
    Ok(vec![
        Curve {
            policy: "best-first".into(),
            values: best,
        },
        Curve {
            policy: "chain".into(),
            values: chain,
        },
        Curve {
            policy: format!("k-ary (k={kary})"),
            values: kary_curve,
        },
    ])
}
