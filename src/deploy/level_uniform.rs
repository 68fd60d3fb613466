//! The best *level-uniform* tree: every node at depth `d - 1` has the same
//! `c_d` children, the drafter's ranks `0..c_d`. This is the only shape
//! vLLM's EAGLE proposer drafts exactly as written (it drafts the top
//! `c_d` children below every node of the level above).
//!
//! # What is computed, and why it is exact
//!
//! A level-uniform tree is fixed by its branching vector `(c_1, .., c_L)`:
//! level `d` has `m_d = c_1 ... c_d` nodes, the tree `sum_d m_d` nodes.
//!
//! - **Per-depth positional model** ([`RankAcceptance`], a context-free
//!   model being one row): every node at depth `d - 1` gives its children
//!   ranks `0..c_d` the same mass `A_d(c_d) = sum_{k < c_d} a[d][k]`, so
//!   level `d` holds `prod_{j <= d} A_j(c_j)` of the verifier's probability
//!   and `E[X] = sum_d prod_{j <= d} A_j(c_j)` (docs/THEORY.md sections 2-3).
//!   [`best_level_uniform`] maximises it by dynamic programming over
//!   `(depth, m, budget left)`:
//!   `G(d, m, B) = max(0, max_{c: m c <= B} A_d(c) (1 + G(d + 1, m c, B - m c)))`,
//!   which is the exact maximum over every branching vector because the
//!   value of the levels below `d` depends on the choices above only
//!   through the width `m` and the budget left (the common factor
//!   `prod_{j < d} A_j` multiplies them all).
//! - **Any model** ([`best_level_uniform_model`]): the mass of the first
//!   `c` ranks differs from node to node, so no product formula holds.
//!   Every branching vector is enumerated depth-first, each level
//!   materialised once per prefix and valued under the model with the
//!   same sum as the DP evaluator; the maximum over all of them is exact
//!   by exhaustion. "Rank" is the place in the model's distribution.

use super::{Constrained, RankAcceptance};
use crate::dist::TokenId;
use crate::error::{Error, Result};
use crate::model::NextTokenModel;
use crate::tree::DraftTree;
use crate::{TreeBuilder, MAX_CAPACITY};
use std::collections::HashMap;

/// Largest capacity [`best_level_uniform`] accepts: its table grows with
/// the square of the capacity (about 0.5 M states at 1024).
pub const MAX_LEVEL_UNIFORM_CAPACITY: usize = 1024;

/// Largest capacity [`best_level_uniform_model`] accepts: it enumerates
/// every branching vector (54 at P = 8, 4,440 at P = 32, ~10^5 at P = 64).
pub const MAX_LEVEL_UNIFORM_MODEL_CAPACITY: usize = 64;

/// The best level-uniform tree and its branching vector.
#[derive(Debug, Clone, PartialEq)]
pub struct LevelUniform {
    /// `c_d`, the children of every node at depth `d - 1`, root first.
    pub branching: Vec<u32>,
    /// The tree, its value and the unconstrained optimum.
    pub constrained: Constrained,
}

/// The best level-uniform tree of at most `capacity` nodes and depth at
/// most `max_depth` over per-depth rank acceptance (see the module docs).
/// The tree's tokens are ranks and it carries no drafter probabilities.
///
/// Time O(S K) and space O(S) for the `S <= min(D, P) P^2 / 2` reachable
/// `(depth, width, budget)` states and `K` ranks per row; O(P log P) more
/// for the unconstrained optimum.
///
/// # Errors
///
/// [`Error::ZeroCapacity`], [`Error::ZeroDepth`], and
/// [`Error::CapacityTooLarge`] above [`MAX_LEVEL_UNIFORM_CAPACITY`].
///
/// # Examples
///
/// ```
/// use speclight::deploy::{best_level_uniform, RankAcceptance};
/// let a = RankAcceptance::context_free(&[0.6, 0.2, 0.1])?;
/// let best = best_level_uniform(&a, 4, None)?;
/// // A chain of 4 (0.6 + 0.36 + 0.216 + 0.1296) beats every other shape.
/// assert_eq!(best.branching, vec![1, 1, 1, 1]);
/// assert!((best.constrained.expected_accepted - 1.3056).abs() < 1e-12);
/// # Ok::<(), speclight::Error>(())
/// ```
pub fn best_level_uniform(
    acceptance: &RankAcceptance,
    capacity: usize,
    max_depth: Option<u32>,
) -> Result<LevelUniform> {
    check_limits(capacity, max_depth, MAX_LEVEL_UNIFORM_CAPACITY)?;
    let mut search = Search {
        acceptance,
        max_depth,
        memo: HashMap::new(),
    };
    let budget = capacity as u32;
    let value = search.best(1, 1, budget);
    let branching = search.branching(budget);
    let tree = rank_tree(&branching);
    let unconstrained = acceptance.best_first(capacity, max_depth)?;
    Ok(LevelUniform {
        branching,
        constrained: Constrained {
            tree,
            expected_accepted: value,
            unconstrained_expected_accepted: acceptance.tree_value(&unconstrained),
        },
    })
}

fn check_limits(capacity: usize, max_depth: Option<u32>, max: usize) -> Result<()> {
    if capacity == 0 {
        return Err(Error::ZeroCapacity);
    }
    if max_depth == Some(0) {
        return Err(Error::ZeroDepth);
    }
    if capacity > max {
        return Err(Error::CapacityTooLarge { capacity, max });
    }
    Ok(())
}

/// Memoised `G(d, m, B)` of the module docs.
struct Search<'a> {
    acceptance: &'a RankAcceptance,
    max_depth: Option<u32>,
    /// `(row, levels left, width, budget) -> (G, best c)`; `c = 0` = stop.
    memo: HashMap<(u32, u32, u32, u32), (f64, u32)>,
}

impl Search<'_> {
    /// The state key: depths past the last row share it, and more levels
    /// left than budget is the same as no limit.
    fn key(&self, depth: u32, m: u32, budget: u32) -> (u32, u32, u32, u32) {
        let row = depth.min(self.acceptance.depths() as u32);
        let left = self
            .max_depth
            .map_or(budget, |d| (d + 1).saturating_sub(depth).min(budget));
        (row, left, m, budget)
    }

    /// `G(depth, m, budget)`: the best value of the levels from `depth` on,
    /// per unit of reach of the level above, with `m` nodes there.
    fn best(&mut self, depth: u32, m: u32, budget: u32) -> f64 {
        let key = self.key(depth, m, budget);
        if key.1 == 0 || m > budget {
            return 0.0;
        }
        if let Some(&(g, _)) = self.memo.get(&key) {
            return g;
        }
        let ranks = self.acceptance.row(depth).len() as u32;
        let (mut best, mut best_c) = (0.0, 0);
        for c in 1..=ranks.min(budget / m) {
            let a = self.acceptance.mass(depth, c as usize);
            let g = a * (1.0 + self.best(depth + 1, m * c, budget - m * c));
            if g > best {
                (best, best_c) = (g, c);
            }
        }
        self.memo.insert(key, (best, best_c));
        best
    }

    /// The branching vector of the optimum found by [`Search::best`].
    fn branching(&self, mut budget: u32) -> Vec<u32> {
        let (mut depth, mut m, mut out) = (1, 1, Vec::new());
        while let Some(&(_, c)) = self.memo.get(&self.key(depth, m, budget)) {
            if c == 0 {
                break;
            }
            out.push(c);
            m *= c;
            budget -= m;
            depth += 1;
        }
        out
    }
}

/// A best value and its branching vector.
#[cfg(feature = "serde")]
pub(crate) type Optimum = (f64, Vec<u32>);

/// The best level-uniform value and branching vector for every depth limit
/// `d = 1..=max_depth` (outer index `d - 1`) and every capacity
/// `n = 1..=max_capacity` (inner index `n - 1`), sharing one table: a state
/// `(row, levels left, width, budget)` means the same under every limit.
/// Time and space as [`best_level_uniform`] at `max_capacity`, plus
/// O(D^2 P) to read the vectors.
#[cfg(feature = "serde")]
pub(crate) fn level_uniform_curves(
    acceptance: &RankAcceptance,
    max_capacity: usize,
    max_depth: u32,
) -> Result<Vec<Vec<Optimum>>> {
    check_limits(max_capacity, Some(max_depth), MAX_LEVEL_UNIFORM_CAPACITY)?;
    let mut search = Search {
        acceptance,
        max_depth: None,
        memo: HashMap::new(),
    };
    Ok((1..=max_depth)
        .map(|d| {
            search.max_depth = Some(d);
            (1..=max_capacity as u32)
                .map(|n| (search.best(1, 1, n), search.branching(n)))
                .collect()
        })
        .collect())
}

/// The rank tree (token = rank, no drafter probabilities) of a branching
/// vector, breadth-first. O(nodes).
fn rank_tree(branching: &[u32]) -> DraftTree {
    let mut tree = DraftTree::new();
    let mut level: Vec<Option<usize>> = vec![None];
    for &c in branching {
        let mut next = Vec::with_capacity(level.len() * c as usize);
        for &parent in &level {
            for rank in 0..c {
                // Parents come first and log-probabilities are 0: cannot fail.
                if let Ok(node) = tree.push(parent, rank, 0.0) {
                    next.push(Some(node));
                }
            }
        }
        level = next;
    }
    tree.set_no_draft_probs();
    tree
}

/// The level-uniform tree of `branching` over any model: below every node
/// of depth `d - 1`, the first `c_d` tokens of the model's distribution
/// there (fewer if it lists fewer), with the model's path log-probabilities.
/// O(nodes) model calls.
///
/// # Errors
///
/// [`Error::CapacityTooLarge`] if the tree would exceed
/// [`crate::MAX_CAPACITY`] nodes, and whatever the model returns.
///
/// # Examples
///
/// ```
/// use speclight::deploy::level_uniform_tree;
/// use speclight::{Iid, TokenDist};
/// let mut m = Iid::new(TokenDist::from_token_probs(&[7, 9], &[0.3, 0.7])?);
/// let tree = level_uniform_tree(&mut m, &[2, 1])?;
/// assert_eq!(tree.tokens(), &[9, 7, 9, 9]);
/// # Ok::<(), speclight::Error>(())
/// ```
pub fn level_uniform_tree<M: NextTokenModel + ?Sized>(
    model: &mut M,
    branching: &[u32],
) -> Result<DraftTree> {
    let mut tree = DraftTree::new();
    let mut level: Vec<Option<usize>> = vec![None];
    let mut path: Vec<TokenId> = Vec::new();
    for &c in branching {
        let mut next = Vec::new();
        for &parent in &level {
            let above = super::prefix(&tree, parent, &mut path);
            let dist = model.next(&path)?;
            for (&token, &lp) in dist.tokens().iter().zip(dist.log_probs()).take(c as usize) {
                if tree.len() >= MAX_CAPACITY {
                    return Err(Error::CapacityTooLarge {
                        capacity: tree.len() + 1,
                        max: MAX_CAPACITY,
                    });
                }
                next.push(Some(tree.push(parent, token, (above + lp).min(0.0))?));
            }
        }
        level = next;
    }
    Ok(tree)
}

/// The best level-uniform tree over any model, valued under the model
/// itself, by exhaustive enumeration of branching vectors (module docs).
/// `c_d` never exceeds the widest distribution seen at that level.
///
/// Time O(sum over feasible prefixes of their last level's width) model
/// calls and additions; space O(P) per level on the DFS stack.
///
/// # Errors
///
/// [`Error::ZeroCapacity`], [`Error::ZeroDepth`],
/// [`Error::CapacityTooLarge`] above [`MAX_LEVEL_UNIFORM_MODEL_CAPACITY`],
/// and whatever the model returns.
///
/// # Examples
///
/// ```
/// use speclight::deploy::best_level_uniform_model;
/// use speclight::Positional;
/// let mut m = Positional::new(&[0.6, 0.2, 0.1])?;
/// let best = best_level_uniform_model(&mut m, 4, None)?;
/// assert_eq!(best.branching, vec![1, 1, 1, 1]);
/// # Ok::<(), speclight::Error>(())
/// ```
pub fn best_level_uniform_model<M: NextTokenModel + ?Sized>(
    model: &mut M,
    capacity: usize,
    max_depth: Option<u32>,
) -> Result<LevelUniform> {
    check_limits(capacity, max_depth, MAX_LEVEL_UNIFORM_MODEL_CAPACITY)?;
    let mut enumeration = Enumeration {
        max_depth: max_depth.unwrap_or(u32::MAX),
        best: (0.0, Vec::new()),
        prefix: Vec::new(),
    };
    let root = vec![(Vec::new(), 1.0)];
    enumeration.descend(model, &root, 0.0, capacity)?;
    let branching = enumeration.best.1;
    let tree = level_uniform_tree(model, &branching)?;
    let mut builder = TreeBuilder::new(capacity)?.with_max_depth(max_depth)?;
    builder.build(model)?;
    let unconstrained = builder.opt_curve().last().copied().unwrap_or(0.0);
    Ok(LevelUniform {
        branching,
        constrained: Constrained {
            tree,
            expected_accepted: enumeration.best.0,
            unconstrained_expected_accepted: unconstrained,
        },
    })
}

/// Depth-first enumeration state of [`best_level_uniform_model`].
struct Enumeration {
    max_depth: u32,
    /// Best value and its branching vector so far.
    best: (f64, Vec<u32>),
    prefix: Vec<u32>,
}

/// One node of a materialised level: its token path and its reach.
type LevelNode = (Vec<TokenId>, f64);

impl Enumeration {
    /// Tries every `c` for the level below `level` (value so far `value`,
    /// `budget` nodes left), recursing into each.
    fn descend<M: NextTokenModel + ?Sized>(
        &mut self,
        model: &mut M,
        level: &[LevelNode],
        value: f64,
        budget: usize,
    ) -> Result<()> {
        if value > self.best.0 {
            self.best = (value, self.prefix.clone());
        }
        let depth = self.prefix.len() as u32;
        if depth >= self.max_depth || level.len() > budget {
            return Ok(());
        }
        // Each parent's distribution, truncated to what the budget allows.
        let widest = budget / level.len();
        let mut kids: Vec<Vec<(TokenId, f64)>> = Vec::with_capacity(level.len());
        for (path, _) in level {
            let dist = model.next(path)?;
            kids.push(dist.iter().take(widest).collect());
        }
        let most = kids.iter().map(Vec::len).max().unwrap_or(0);
        for c in 1..=most {
            let mut next = Vec::with_capacity(level.len() * c);
            for ((path, reach), children) in level.iter().zip(&kids) {
                for &(token, p) in children.iter().take(c) {
                    let mut child = path.clone();
                    child.push(token);
                    next.push((child, reach * p));
                }
            }
            let mass: f64 = next.iter().map(|(_, r)| r).sum();
            self.prefix.push(c as u32);
            self.descend(model, &next, value + mass, budget - level.len() * c)?;
            self.prefix.pop();
        }
        Ok(())
    }
}
