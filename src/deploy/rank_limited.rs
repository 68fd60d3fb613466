//! The best *rank-limited* tree: no child of rank `>= K`. Medusa and EAGLE
//! take each node's candidates from a fixed top-10 (`TOPK = 10` in
//! `medusa/model/utils.py` of FasterDecoding/Medusa and
//! `eagle/model/utils.py` of SafeAILab/EAGLE): a rank of 10 or more
//! silently reads the next head's block.
//!
//! # Why best-first over the top `K` is optimal, for any model
//!
//! Let `U_K` be the nodes of the infinite draft tree whose ranks are all
//! below `K`. `U_K` is prefix-closed (a node's parent has a prefix of its
//! ranks), and `pi(child) <= pi(parent)` (docs/THEORY.md section 3). So the `P`
//! largest `pi` within `U_K` (depth `<= D`) form a prefix-closed tree, and
//! no tree inside `U_K` of `P` nodes has a larger sum: it is the
//! constrained optimum. Best-first over the model whose distributions are
//! cut to their top `K` ([`TopK`]) pops exactly those nodes. This holds
//! for any model, context-free or not; the tests confirm it by brute force
//! over every tree.

use super::{Constrained, RankAcceptance};
use crate::dist::{TokenDist, TokenId};
use crate::error::{Error, Result};
use crate::model::NextTokenModel;
use crate::TreeBuilder;

/// `K` of Medusa's and EAGLE's `TOPK`.
pub const DEFAULT_MAX_RANK: usize = 10;

/// A model whose every distribution is cut to its `k` most probable tokens
/// (the rest joins the tail), so that trees built on it use ranks `< k`.
///
/// # Examples
///
/// ```
/// use speclight::deploy::TopK;
/// use speclight::{Iid, NextTokenModel, TokenDist};
/// let mut m = TopK::new(Iid::new(TokenDist::from_probs(&[0.5, 0.3, 0.2])?), 2)?;
/// assert_eq!(m.next(&[])?.len(), 2);
/// # Ok::<(), speclight::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct TopK<M> {
    inner: M,
    k: usize,
    cut: TokenDist,
}

impl<M: NextTokenModel> TopK<M> {
    /// Wraps `inner`, keeping ranks `0..k`.
    ///
    /// # Errors
    ///
    /// [`Error::ZeroTopK`] when `k == 0`.
    pub fn new(inner: M, k: usize) -> Result<Self> {
        if k == 0 {
            return Err(Error::ZeroTopK);
        }
        Ok(Self {
            inner,
            k,
            cut: TokenDist::from_probs(&[1.0])?,
        })
    }
}

impl<M: NextTokenModel> NextTokenModel for TopK<M> {
    fn next(&mut self, path: &[TokenId]) -> Result<&TokenDist> {
        self.cut = self.inner.next(path)?.top_k(self.k)?;
        Ok(&self.cut)
    }

    fn is_context_free(&self) -> bool {
        self.inner.is_context_free()
    }
}

/// The best tree of at most `capacity` nodes, depth `<= max_depth`, with
/// every rank below `max_rank`, over per-depth rank acceptance; tokens are
/// ranks. Best-first over the rows cut to `max_rank` (module docs).
/// Time O(P log P) twice (constrained and unconstrained), space O(P).
///
/// # Errors
///
/// [`Error::ZeroTopK`] when `max_rank == 0`, and the builder's errors.
///
/// # Examples
///
/// ```
/// use speclight::deploy::{best_rank_limited, RankAcceptance};
/// let a = RankAcceptance::context_free(&[0.3, 0.25, 0.2, 0.15])?;
/// let limited = best_rank_limited(&a, 4, Some(1), 2)?;
/// assert!((limited.expected_accepted - 0.55).abs() < 1e-12);
/// assert!((limited.unconstrained_expected_accepted - 0.9).abs() < 1e-12);
/// # Ok::<(), speclight::Error>(())
/// ```
pub fn best_rank_limited(
    acceptance: &RankAcceptance,
    capacity: usize,
    max_depth: Option<u32>,
    max_rank: usize,
) -> Result<Constrained> {
    if max_rank == 0 {
        return Err(Error::ZeroTopK);
    }
    let unconstrained = acceptance.best_first(capacity, max_depth)?;
    let unconstrained_expected_accepted = acceptance.tree_value(&unconstrained);
    // Rows cut to the top ranks; a row left without mass ends the tree there.
    let all: Vec<Vec<f64>> = (1..=acceptance.depths() as u32)
        .map(|d| acceptance.row(d).iter().take(max_rank).copied().collect())
        .collect();
    let usable = all
        .iter()
        .take_while(|row| row.iter().any(|&a| a > 0.0))
        .count();
    let tree = if usable == 0 {
        crate::DraftTree::new()
    } else {
        let depth_cap = (usable < all.len()).then_some(usable as u32);
        let depth = match (max_depth, depth_cap) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        RankAcceptance::new(&all[..usable])?.best_first(capacity, depth)?
    };
    Ok(Constrained {
        expected_accepted: acceptance.tree_value(&tree),
        tree,
        unconstrained_expected_accepted,
    })
}

/// The best rank-limited tree over any model (rank = place in the model's
/// distribution), valued under the model itself. O(P log P) plus one model
/// call per expanded node, twice.
///
/// # Errors
///
/// [`Error::ZeroTopK`], the builder's errors and the model's.
///
/// # Examples
///
/// ```
/// use speclight::deploy::best_rank_limited_model;
/// use speclight::Positional;
/// let mut m = Positional::new(&[0.3, 0.25, 0.2, 0.15])?;
/// let limited = best_rank_limited_model(&mut m, 4, Some(1), 2)?;
/// assert_eq!(limited.tree.tokens(), &[0, 1]);
/// # Ok::<(), speclight::Error>(())
/// ```
pub fn best_rank_limited_model<M: NextTokenModel + ?Sized>(
    model: &mut M,
    capacity: usize,
    max_depth: Option<u32>,
    max_rank: usize,
) -> Result<Constrained> {
    let mut cut = TopK::new(&mut *model, max_rank)?;
    let mut builder = TreeBuilder::new(capacity)?.with_max_depth(max_depth)?;
    let tree = builder.build_owned(&mut cut)?;
    let expected_accepted = builder.opt_curve().last().copied().unwrap_or(0.0);
    builder.build(model)?;
    let unconstrained_expected_accepted = builder.opt_curve().last().copied().unwrap_or(0.0);
    Ok(Constrained {
        tree,
        expected_accepted,
        unconstrained_expected_accepted,
    })
}
