//! SGLang's EAGLE-2-style dynamic tree, from its three numbers
//! `--speculative-eagle-topk`, `--speculative-num-steps` and
//! `--speculative-num-draft-tokens`.
//!
//! The procedure, as read in SGLang's `python/sglang/srt/speculative/`
//! (`eagle_utils.py`: `select_top_k_tokens`, `organize_draft_results`;
//! `server_args.py`), v0.4-v0.5:
//!
//! 1. step 0: the root's `topk` most probable children are the first beam;
//! 2. steps `1 .. num_steps - 1`: every beam node is expanded into its
//!    `topk` most probable children, and the `topk` highest-scoring of
//!    those `topk^2` new nodes are the next beam (score = the drafter's
//!    path probability);
//! 3. the tree is the `num_draft_tokens - 1` highest-scoring nodes among
//!    all `topk + (num_steps - 1) topk^2` generated (torch.topk, so that
//!    many must exist); the root is the last verified token.
//!
//! With `topk = 1` SGLang sets `num_draft_tokens = num_steps + 1`.
//! Ties are broken towards the node generated first (parents come before
//! their children, so the tree stays prefix-closed; torch.topk leaves tie
//! order unspecified). Candidates the drafter gives no probability (beyond
//! its listed tokens) are left out: they would add 0 to `E[X]`.

use super::{Constrained, RankAcceptance};
use crate::capacity::CostModel;
use crate::dist::TokenId;
use crate::error::{Error, Result};
use crate::eval::Evaluator;
use crate::model::NextTokenModel;
use crate::tree::DraftTree;
use crate::MAX_CAPACITY;

/// Largest `topk` the best-triple searches try ([`best_sglang`]): SGLang's
/// own examples use 1 to 8, and Medusa/EAGLE's fixed top-k is 10.
pub const MAX_SGLANG_TOPK: u32 = 10;

/// Largest `num_steps` the best-triple searches try (SGLang's examples use
/// 1 to 8; a 32-token chain already collects all but `a_0^32` of a chain's
/// value).
pub const MAX_SGLANG_STEPS: u32 = 32;

/// SGLang's three speculative numbers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SglangConfig {
    /// `--speculative-eagle-topk`: beam width and children per expansion.
    pub topk: u32,
    /// `--speculative-num-steps`: draft steps, the tree's maximum depth.
    pub num_steps: u32,
    /// `--speculative-num-draft-tokens`: tree nodes plus the root.
    pub num_draft_tokens: u32,
}

impl SglangConfig {
    /// A configuration SGLang runs as given.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArgument`] if a number is 0, `num_draft_tokens < 2`,
    /// more draft tokens are asked than the steps generate
    /// (`num_draft_tokens - 1 > topk + (num_steps - 1) topk^2`), `topk = 1`
    /// with `num_draft_tokens != num_steps + 1` (SGLang would change it),
    /// or the generated nodes exceed [`crate::MAX_CAPACITY`].
    ///
    /// # Examples
    ///
    /// ```
    /// use speclight::deploy::SglangConfig;
    /// assert_eq!(SglangConfig::new(4, 3, 8)?.generated(), 36);
    /// assert!(SglangConfig::new(2, 2, 8).is_err()); // only 6 generated
    /// assert!(SglangConfig::new(1, 3, 3).is_err()); // SGLang makes it 4
    /// # Ok::<(), speclight::Error>(())
    /// ```
    pub fn new(topk: u32, num_steps: u32, num_draft_tokens: u32) -> Result<Self> {
        let bad = |why: String| Err(Error::InvalidArgument(format!("sglang: {why}")));
        if topk == 0 || num_steps == 0 || num_draft_tokens < 2 {
            return bad(format!(
                "topk {topk} and num_steps {num_steps} must be >= 1, num_draft_tokens {num_draft_tokens} >= 2"
            ));
        }
        let config = Self {
            topk,
            num_steps,
            num_draft_tokens,
        };
        let generated = config.generated();
        if generated > MAX_CAPACITY as u64 {
            return bad(format!(
                "{generated} generated nodes exceed the limit {MAX_CAPACITY}"
            ));
        }
        if u64::from(num_draft_tokens - 1) > generated {
            return bad(format!(
                "num_draft_tokens - 1 = {} exceeds the {generated} nodes topk {topk} and num_steps {num_steps} generate",
                num_draft_tokens - 1
            ));
        }
        if topk == 1 && num_draft_tokens != num_steps + 1 {
            return bad(format!(
                "with topk 1 SGLang sets num_draft_tokens to num_steps + 1 = {}",
                num_steps + 1
            ));
        }
        Ok(config)
    }

    /// `topk + (num_steps - 1) topk^2`: the nodes the steps generate.
    pub fn generated(&self) -> u64 {
        let k = u64::from(self.topk);
        k + u64::from(self.num_steps - 1) * k * k
    }

    /// Draft tokens the verifier checks: `num_draft_tokens - 1`.
    pub fn capacity(&self) -> usize {
        self.num_draft_tokens as usize - 1
    }
}

/// Every node the beam procedure generates, in generation order (parents
/// first), and the node indices sorted by score (descending, ties by
/// generation order). Time O(G log G) for `G` generated nodes, plus
/// `1 + (num_steps - 1) topk` model calls.
fn generate<D: NextTokenModel + ?Sized>(
    drafter: &mut D,
    topk: u32,
    num_steps: u32,
) -> Result<(DraftTree, Vec<usize>)> {
    let k = topk as usize;
    let mut tree = DraftTree::new();
    let mut path: Vec<TokenId> = Vec::new();
    let mut beam: Vec<Option<usize>> = vec![None];
    for _ in 0..num_steps {
        let first = tree.len();
        for &parent in &beam {
            let above = super::prefix(&tree, parent, &mut path);
            let dist = drafter.next(&path)?;
            let kids: Vec<(TokenId, f64)> = dist
                .tokens()
                .iter()
                .copied()
                .zip(dist.log_probs().iter().copied())
                .take(k)
                .collect();
            for (token, lp) in kids {
                tree.push(parent, token, (above + lp).min(0.0))?;
            }
        }
        let mut step: Vec<usize> = (first..tree.len()).collect();
        sort_by_score(&tree, &mut step);
        beam = step.into_iter().take(k).map(Some).collect();
        if beam.is_empty() {
            break;
        }
    }
    let mut order: Vec<usize> = (0..tree.len()).collect();
    sort_by_score(&tree, &mut order);
    Ok((tree, order))
}

fn sort_by_score(tree: &DraftTree, nodes: &mut [usize]) {
    nodes.sort_by(|&a, &b| {
        tree.path_logprob(b)
            .total_cmp(&tree.path_logprob(a))
            .then(a.cmp(&b))
    });
}

/// The subtree of `generated` made of `chosen` (prefix-closed), in
/// generation order. O(n log n).
fn subtree(generated: &DraftTree, chosen: &[usize]) -> Result<DraftTree> {
    let mut keep = chosen.to_vec();
    keep.sort_unstable();
    let mut new_index = vec![usize::MAX; generated.len()];
    let mut tree = DraftTree::with_capacity(keep.len());
    for &i in &keep {
        let parent = generated.parent(i).map(|p| new_index[p]);
        new_index[i] = tree.push(parent, generated.token(i), generated.path_logprob(i))?;
    }
    Ok(tree)
}

/// The tree SGLang drafts for `config` with `drafter` (module docs), in
/// generation order with the drafter's path log-probabilities.
///
/// # Errors
///
/// Whatever the drafter returns.
///
/// # Examples
///
/// ```
/// use speclight::deploy::{sglang_tree, SglangConfig};
/// use speclight::Positional;
/// let mut m = Positional::new(&[0.6, 0.3, 0.1])?;
/// let tree = sglang_tree(&mut m, SglangConfig::new(2, 2, 4)?)?;
/// // Generated: 0.6, 0.3 | 0.36, 0.18, 0.18, 0.09; kept: the 3 best.
/// assert_eq!(tree.len(), 3);
/// assert_eq!(tree.depths(), &[1, 1, 2]);
/// # Ok::<(), speclight::Error>(())
/// ```
pub fn sglang_tree<D: NextTokenModel + ?Sized>(
    drafter: &mut D,
    config: SglangConfig,
) -> Result<DraftTree> {
    let (generated, order) = generate(drafter, config.topk, config.num_steps)?;
    let n = config.capacity().min(order.len());
    subtree(&generated, &order[..n])
}

/// Exact `E[X]` of the tree SGLang drafts for `config` with `drafter`,
/// under `verifier` (docs/THEORY.md section 2). Time O(G log G) for the
/// `G = topk + (num_steps - 1) topk^2` generated nodes.
///
/// # Errors
///
/// Whatever the models return.
///
/// # Examples
///
/// ```
/// use speclight::deploy::{sglang_value, SglangConfig};
/// use speclight::Positional;
/// let mut m = Positional::new(&[0.6, 0.3, 0.1])?;
/// let value = sglang_value(&mut m.clone(), &mut m, SglangConfig::new(2, 2, 4)?)?;
/// assert!((value - (0.6 + 0.3 + 0.36)).abs() < 1e-12);
/// # Ok::<(), speclight::Error>(())
/// ```
pub fn sglang_value<D, V>(drafter: &mut D, verifier: &mut V, config: SglangConfig) -> Result<f64>
where
    D: NextTokenModel + ?Sized,
    V: NextTokenModel + ?Sized,
{
    let tree = sglang_tree(drafter, config)?;
    Ok(Evaluator::new()
        .evaluate(&tree, verifier)?
        .expected_accepted)
}

/// The best SGLang configuration found, with its tree and values.
#[derive(Debug, Clone, PartialEq)]
pub struct SglangChoice {
    /// The three numbers.
    pub config: SglangConfig,
    /// Its tree (token = rank), `E[X]`, and the unconstrained optimum of
    /// the same capacity and depth limit.
    pub constrained: Constrained,
    /// Predicted tokens per second, when chosen by speed.
    pub tokens_per_second: Option<f64>,
}

/// One `(topk, num_steps)` pair's generated nodes valued under the
/// acceptance rows: reach in score order, for every prefix length.
fn prefix_values(acceptance: &RankAcceptance, topk: u32, steps: u32) -> Result<(Vec<f64>, u64)> {
    let mut model = acceptance.model().clone();
    let (generated, order) = generate(&mut model, topk, steps)?;
    let mut sums = Vec::with_capacity(order.len() + 1);
    let mut total = 0.0;
    sums.push(0.0);
    for &i in &order {
        total += generated.path_logprob(i).exp();
        sums.push(total);
    }
    let formal = SglangConfig {
        topk,
        num_steps: steps,
        num_draft_tokens: 2,
    }
    .generated();
    Ok((sums, formal))
}

/// The `(topk, num_steps)` pairs searched: `topk <= MAX_SGLANG_TOPK`,
/// `num_steps <= min(max_depth, MAX_SGLANG_STEPS, capacity)`.
fn pairs(capacity: usize, max_depth: Option<u32>) -> impl Iterator<Item = (u32, u32)> {
    let cap = u32::try_from(capacity).unwrap_or(u32::MAX);
    let steps_max = max_depth
        .unwrap_or(MAX_SGLANG_STEPS)
        .min(MAX_SGLANG_STEPS)
        .min(cap);
    let top_max = MAX_SGLANG_TOPK.min(cap);
    (1..=top_max).flat_map(move |k| (1..=steps_max).map(move |s| (k, s)))
}

/// The best `(topk, num_steps, num_draft_tokens)` for at most `capacity`
/// draft tokens and `num_steps <= max_depth` (searching `topk <=`
/// [`MAX_SGLANG_TOPK`], `num_steps <=` [`MAX_SGLANG_STEPS`]), valued on per-depth rank
/// acceptance (drafter = verifier: scores are the rows' path
/// probabilities). Ties go to fewer draft tokens, then fewer steps.
///
/// Time O(T D G log G) for `T = min(10, P)` values of `topk`, `D` step
/// counts and `G <= topk + (D - 1) topk^2` generated nodes each.
///
/// # Errors
///
/// [`Error::ZeroCapacity`], [`Error::ZeroDepth`], the builder's errors.
///
/// # Examples
///
/// ```
/// use speclight::deploy::{best_sglang, RankAcceptance};
/// let a = RankAcceptance::context_free(&[0.6, 0.2, 0.1])?;
/// let best = best_sglang(&a, 4, None)?;
/// assert_eq!(best.config.num_draft_tokens, 5);
/// assert!(best.constrained.expected_accepted <= best.constrained.unconstrained_expected_accepted + 1e-12);
/// # Ok::<(), speclight::Error>(())
/// ```
pub fn best_sglang(
    acceptance: &RankAcceptance,
    capacity: usize,
    max_depth: Option<u32>,
) -> Result<SglangChoice> {
    search(acceptance, capacity, max_depth, None)
}

/// As [`best_sglang`], choosing the capacity `n <= max_capacity` too, by
/// predicted tokens per second `(1 + E[X]) / (T_v(n) + draft + T_0)`
/// (docs/THEORY.md section 5), the drafter charged one step of width `topk`
/// per draft step.
///
/// # Errors
///
/// As [`best_sglang`].
pub fn best_sglang_by_speed(
    acceptance: &RankAcceptance,
    cost: &CostModel,
    max_capacity: usize,
    max_depth: Option<u32>,
) -> Result<SglangChoice> {
    search(acceptance, max_capacity, max_depth, Some(cost))
}

fn search(
    acceptance: &RankAcceptance,
    capacity: usize,
    max_depth: Option<u32>,
    cost: Option<&CostModel>,
) -> Result<SglangChoice> {
    if capacity == 0 {
        return Err(Error::ZeroCapacity);
    }
    if max_depth == Some(0) {
        return Err(Error::ZeroDepth);
    }
    // (score, config): score is E[X], or tokens per second with a cost.
    let mut best: Option<(f64, SglangConfig)> = None;
    for (topk, steps) in pairs(capacity, max_depth) {
        let (sums, formal) = prefix_values(acceptance, topk, steps)?;
        let most = (capacity as u64).min(formal) as usize;
        let sizes: Vec<usize> = match (cost, topk) {
            (_, 1) if steps as usize > capacity => continue,
            (_, 1) => vec![steps as usize],
            (None, _) => vec![most],
            (Some(_), _) => (1..=most).collect(),
        };
        for n in sizes {
            let value = sums[n.min(sums.len() - 1)];
            let score = match cost {
                None => value,
                Some(c) => {
                    let widths = vec![topk as usize; steps as usize];
                    c.tokens_per_second(value, n, c.draft().of_levels(&widths))
                }
            };
            let config = SglangConfig::new(topk, steps, n as u32 + 1)?;
            if best.is_none_or(|(s, _)| score > s + 1e-12 * s.abs()) {
                best = Some((score, config));
            }
        }
    }
    let (score, config) = best.ok_or(Error::ZeroCapacity)?;
    let mut model = acceptance.model().clone();
    let tree = sglang_tree(&mut model, config)?;
    // By speed the capacity and depth are chosen too: compare at them.
    let (at, depth) = if cost.is_some() {
        (config.capacity(), Some(config.num_steps))
    } else {
        (capacity, max_depth)
    };
    let unconstrained = acceptance.best_first(at, depth)?;
    Ok(SglangChoice {
        config,
        constrained: Constrained {
            expected_accepted: acceptance.tree_value(&tree),
            tree,
            unconstrained_expected_accepted: acceptance.tree_value(&unconstrained),
        },
        tokens_per_second: cost.map(|_| score),
    })
}
