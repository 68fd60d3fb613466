//! What the fitted first-choice acceptance predicts for a tree, under an
//! explicit assumption about the ranks below the first choice, which no
//! server metric observes.
//!
//! The assumption ([`RankTail`]): at depth `d`, of the mass `1 - a_d` the
//! first choice misses, the drafter's rank `k + 1` catches the fraction
//! `p_k` (a distribution spec: `zipf:S:N`, `geometric:R:N` or a comma list,
//! sum at most 1). That gives per-depth rank rows
//! `[a_d, (1 - a_d) p_0, (1 - a_d) p_1, ...]`, a
//! [`crate::deploy::RankAcceptance`], whose best tree of `P` nodes is the
//! best-first tree (docs/THEORY.md section 3).

use crate::deploy::RankAcceptance;
use crate::error::{Error, Result};
use crate::DraftTree;

/// Most rank-row entries (depths x ranks) a prediction may build.
pub const MAX_PREDICTION_CELLS: usize = 1 << 24;

/// The assumed acceptance of ranks 1, 2, ... as fractions of the first
/// choice's miss.
#[derive(Debug, Clone, PartialEq)]
pub struct RankTail {
    spec: String,
    /// `p_k`: the fraction of `1 - a_d` rank `k + 1` catches.
    fractions: Vec<f64>,
}

impl RankTail {
    /// Parses a distribution spec ([`crate::parse_dist`]); token `k`'s
    /// probability is rank `k + 1`'s fraction.
    ///
    /// # Errors
    ///
    /// The spec's parse errors ([`Error::InvalidSpec`], ...).
    ///
    /// # Examples
    ///
    /// ```
    /// use speclight::metrics::RankTail;
    /// let tail = RankTail::parse("zipf:1:2")?;
    /// assert!((tail.fractions()[0] - 2.0 / 3.0).abs() < 1e-12);
    /// # Ok::<(), speclight::Error>(())
    /// ```
    pub fn parse(spec: &str) -> Result<Self> {
        let dist = crate::parse_dist(spec)?;
        let ranks = dist
            .tokens()
            .iter()
            .map(|&t| t as usize + 1)
            .max()
            .unwrap_or(0);
        let fractions = (0..ranks)
            .map(|k| dist.prob_of(k as crate::dist::TokenId))
            .collect();
        Ok(Self {
            spec: spec.trim().to_owned(),
            fractions,
        })
    }

    /// `p_k` for ranks `k + 1 = 1, 2, ...`.
    pub fn fractions(&self) -> &[f64] {
        &self.fractions
    }

    /// The spec as given.
    pub fn spec(&self) -> &str {
        &self.spec
    }

    /// The assumption in words, for reports.
    pub fn assumption(&self) -> String {
        let sum: f64 = self.fractions.iter().sum();
        format!(
            "assumed, not measured: at depth d the drafter's rank k+1 (k >= 0) is accepted with probability (1 - a_d) p_k, p = {} (sum {sum:.4}); the metrics observe only the first choice a_d",
            self.spec
        )
    }

    /// Rank rows for the first-choice acceptance `first`, ranks cut at
    /// `width` (a tree of `P` nodes uses ranks below `P`).
    fn rows(&self, first: &[f64], width: usize) -> Vec<Vec<f64>> {
        let tail = &self.fractions[..self.fractions.len().min(width.saturating_sub(1))];
        first
            .iter()
            .map(|&a| {
                std::iter::once(a)
                    .chain(tail.iter().map(|&p| (1.0 - a) * p))
                    .collect()
            })
            .collect()
    }
}

/// The best tree's value under a [`RankTail`] next to the chain's.
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct TreePrediction {
    /// [`RankTail::assumption`].
    pub assumption: String,
    /// The rank-tail spec.
    pub rank_tail: String,
    /// Draft tokens of the tree (nodes, root excluded).
    pub capacity: usize,
    /// Deepest level allowed: the depths the metrics fitted (or less).
    pub depth_limit: u32,
    /// `E[X]` of the best tree under the assumption.
    pub expected_accepted: f64,
    /// Nodes of that tree per depth (depth 1 first).
    pub width_by_depth: Vec<usize>,
    /// `E[X]` of the first-choice chain of `min(capacity, depth_limit)`
    /// tokens, which needs no assumption: `sum_d prod_{j <= d} a_j`.
    pub chain_expected_accepted: f64,
    /// The tree (token = rank), e.g. to value it under real models.
    #[cfg_attr(feature = "serde", serde(skip))]
    pub tree: DraftTree,
}

/// The best tree of `capacity` nodes and depth at most
/// `min(first.len(), max_depth)` under `first` (the fitted first-choice
/// acceptance per depth) and `tail`. Time O(P log P) plus O(D min(N, P))
/// for the rows (`D` depths, `N` tail ranks).
///
/// # Errors
///
/// [`Error::InvalidArgument`] for no depths or more than
/// [`MAX_PREDICTION_CELLS`] row entries; [`Error::InvalidAcceptance`] for
/// an acceptance outside `[0, 1]` or a first choice of 0 at depth 1 with
/// an empty tail; the builder's errors for the capacity.
///
/// # Examples
///
/// ```
/// use speclight::metrics::{predict_tree, RankTail};
/// let p = predict_tree(&[0.6, 0.5], &RankTail::parse("1")?, 2, None)?;
/// // The second node is rank 1 at depth 1 (0.4) rather than depth 2 (0.3).
/// assert_eq!(p.width_by_depth, vec![2]);
/// assert!((p.expected_accepted - 1.0).abs() < 1e-12);
/// assert!((p.chain_expected_accepted - 0.9).abs() < 1e-12);
/// # Ok::<(), speclight::Error>(())
/// ```
pub fn predict_tree(
    first: &[f64],
    tail: &RankTail,
    capacity: usize,
    max_depth: Option<u32>,
) -> Result<TreePrediction> {
    let limit = max_depth.map_or(first.len(), |d| first.len().min(d as usize));
    if limit == 0 {
        return Err(Error::InvalidArgument(
            "tree prediction needs at least one fitted depth".into(),
        ));
    }
    let first = &first[..limit];
    let width = tail.fractions.len().min(capacity.saturating_sub(1)) + 1;
    if limit.saturating_mul(width) > MAX_PREDICTION_CELLS {
        return Err(Error::InvalidArgument(format!(
            "{limit} depths x {width} ranks is above {MAX_PREDICTION_CELLS} rank-row entries"
        )));
    }
    let rows = tail.rows(first, capacity);
    let acceptance = RankAcceptance::new(&rows)?;
    let depth_limit = u32::try_from(limit).unwrap_or(u32::MAX);
    let tree = acceptance.best_first(capacity, Some(depth_limit))?;
    let mut width_by_depth = vec![0usize; limit];
    for node in tree.nodes() {
        width_by_depth[node.depth as usize - 1] += 1;
    }
    while width_by_depth.last() == Some(&0) {
        width_by_depth.pop();
    }
    Ok(TreePrediction {
        assumption: tail.assumption(),
        rank_tail: tail.spec.clone(),
        capacity,
        depth_limit,
        expected_accepted: acceptance.tree_value(&tree),
        width_by_depth,
        chain_expected_accepted: chain_value(&first[..limit.min(capacity)]),
        tree,
    })
}

/// `sum_d prod_{j <= d} a_j`. O(len).
fn chain_value(first: &[f64]) -> f64 {
    let mut reach = 1.0;
    first
        .iter()
        .map(|&a| {
            reach *= a;
            reach
        })
        .sum()
}
