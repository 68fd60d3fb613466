//! An optimality certificate for a best-first tree, independent of the
//! builder (`docs/THEORY.md` section 3).
//!
//! A prefix-closed tree `T` with `|T| = P` nodes (or with no node left to add)
//! maximises `sum_{v in T} pi(v)` exactly when no node outside it beats a node
//! inside it: `min_{v in T} pi(v) >= max_{w in boundary(T)} pi(w)`, where the
//! boundary is the children of the root and of tree nodes that are not in the
//! tree (and not deeper than `D`). Every node outside `T` descends from a
//! boundary node and has `pi` no larger, so the condition says that `T` holds
//! `P` of the largest values of `pi`. It is checked under the drafter (the
//! model the tree was built from), recomputing every `pi` by its own dynamic
//! programme, not by the builder's heap or the tree's stored log-probabilities.

use super::certificate::Certificate;
use crate::dist::TokenId;
use crate::error::Result;
use crate::model::NextTokenModel;
use crate::tree::DraftTree;
use std::collections::HashSet;

/// Absolute tolerance on `ln pi` when comparing the tree with its boundary:
/// ties between a tree node and a boundary node are optimal either way.
pub const OPTIMALITY_TOLERANCE: f64 = 1e-9;

/// `speclight check`'s two verdicts on one tree: the certificate chain
/// under the verifier, then best-first optimality under the drafter and the
/// gap to `OPT(P)` under the verifier (its `--json`, Python's
/// `speclight.certificate` with a tree).
#[derive(Debug, Clone, Copy)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct CheckReport<'a> {
    /// The certificate chain (its fields first, flattened in JSON).
    #[cfg_attr(feature = "serde", serde(flatten))]
    pub certificate: &'a Certificate,
    /// The second verdict.
    pub optimality: Optimality,
    /// `OPT(P) - E[X](T)` under the verifier, at least 0.
    pub gap_to_opt: f64,
}

impl<'a> CheckReport<'a> {
    /// The report of `certificate` and `optimality`. `E[X](T) <= OPT(P)`
    /// holds, so a negative gap is rounding and reads as 0 (a real excess is
    /// the chain's failing link, not this number).
    pub fn new(certificate: &'a Certificate, optimality: Optimality) -> Self {
        let gap = certificate.optimal_expected_accepted - certificate.tree_expected_accepted;
        CheckReport {
            certificate,
            optimality,
            gap_to_opt: gap.max(0.0),
        }
    }
}

/// The verdict of [`certify_best_first`].
#[derive(Debug, Clone, Copy, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Optimality {
    /// Capacity `P`.
    pub capacity: usize,
    /// Number of nodes of the tree.
    pub tree_nodes: usize,
    /// `min ln pi` over the tree under the drafter (`0` for an empty tree).
    pub min_tree_ln_pi: f64,
    /// `max ln pi` over the boundary under the drafter (`-inf` when the
    /// boundary is empty or has probability 0).
    pub max_boundary_ln_pi: f64,
    /// `true` when the tree is optimal for the drafter: it has `P` nodes or
    /// an empty boundary, and `min_tree_ln_pi >= max_boundary_ln_pi` within
    /// [`OPTIMALITY_TOLERANCE`].
    pub optimal: bool,
}

/// Certifies that `tree` is a best-first (optimal) tree of capacity
/// `capacity` and depth limit `max_depth` for `drafter`; see the module docs.
/// One model call per tree node of depth below `D` and for the root; time
/// O(n (depth + log V)) for `n` nodes, space O(n).
///
/// # Errors
///
/// [`crate::Error::InvalidTree`] for a malformed tree, and whatever the
/// model returns.
///
/// # Examples
///
/// ```
/// use speclight::{bound::certify_best_first, Iid, TokenDist, TreeBuilder};
/// let mut q = Iid::new(TokenDist::from_probs(&[0.2, 0.3, 0.5])?);
/// let tree = TreeBuilder::new(16)?.build_owned(&mut q)?;
/// assert!(certify_best_first(&tree, &mut q, 16, None)?.optimal);
/// // The same tree is not the best-first tree of another model.
/// let mut p = Iid::new(TokenDist::from_probs(&[0.6, 0.3, 0.1])?);
/// assert!(!certify_best_first(&tree, &mut p, 16, None)?.optimal);
/// # Ok::<(), speclight::Error>(())
/// ```
pub fn certify_best_first<M: NextTokenModel + ?Sized>(
    tree: &DraftTree,
    drafter: &mut M,
    capacity: usize,
    max_depth: Option<u32>,
) -> Result<Optimality> {
    tree.validate()?;
    let n = tree.len();
    let mut ln_pi = vec![0.0; n];
    // Children of each node (the root is `n`) as one array sorted by parent,
    // `start[u]..start[u + 1]` its slice: two words per node, not a Vec each.
    let parent_of = |i: usize| tree.parent(i).unwrap_or(n);
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by_key(|&i| parent_of(i));
    let mut start = vec![0usize; n + 2];
    for i in 0..n {
        start[parent_of(i) + 1] += 1;
    }
    for u in 0..=n {
        start[u + 1] += start[u];
    }
    let mut boundary = f64::NEG_INFINITY;
    let mut path = Vec::new();
    // Node `n` stands for the root; the others in arena order (parents first).
    for u in std::iter::once(n).chain(0..n) {
        let (depth, base) = if u == n {
            (0, 0.0)
        } else {
            (tree.depth(u), ln_pi[u])
        };
        if max_depth.is_some_and(|d| depth >= d) {
            continue;
        }
        path.clear();
        if u < n {
            tree.path_tokens(u, &mut path);
        }
        let dist = drafter.next(&path)?;
        let children = &order[start[u]..start[u + 1]];
        let inside: HashSet<TokenId> = children.iter().map(|&c| tree.token(c)).collect();
        for &c in children {
            ln_pi[c] = base + dist.log_prob_of(tree.token(c));
        }
        // Sorted by probability: the first child not in the tree is the best.
        let outside = dist
            .tokens()
            .iter()
            .zip(dist.log_probs())
            .find(|(t, _)| !inside.contains(t));
        if let Some((_, lp)) = outside {
            boundary = boundary.max(base + lp);
        }
    }
    let min_tree = ln_pi.iter().copied().fold(0.0, f64::min);
    let room = n < capacity && boundary > f64::NEG_INFINITY;
    Ok(Optimality {
        capacity,
        tree_nodes: n,
        min_tree_ln_pi: min_tree,
        max_boundary_ln_pi: boundary,
        optimal: n <= capacity && !room && min_tree >= boundary - OPTIMALITY_TOLERANCE,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Iid, TokenDist, TreeBuilder};

    fn iid(probs: &[f64]) -> Iid {
        Iid::new(TokenDist::from_probs(probs).unwrap())
    }

    /// Issue 12 item 17: the issue's case. The chain certifies the tree
    /// under the wrong verifier (it is a bound); the optimality certificate
    /// tells the tree is not the verifier's best-first tree, and is the
    /// drafter's.
    #[test]
    fn a_tree_built_for_another_model_is_not_certified_optimal() {
        let mut q = iid(&[0.2, 0.3, 0.5]);
        let mut p = iid(&[0.5, 0.3, 0.2]);
        let tree = TreeBuilder::new(16).unwrap().build_owned(&mut q).unwrap();
        assert!(crate::bound::check(&tree, &mut p, 16).is_ok());
        assert!(!certify_best_first(&tree, &mut p, 16, None).unwrap().optimal);
        let o = certify_best_first(&tree, &mut q, 16, None).unwrap();
        assert!(o.optimal && o.min_tree_ln_pi >= o.max_boundary_ln_pi - 1e-12);
    }

    /// A builder bug (a tree missing its best node, or too small) fails.
    #[test]
    fn a_wrong_or_short_tree_fails_and_depth_limits_are_honoured() {
        let mut q = iid(&[0.6, 0.3, 0.1]);
        let short = TreeBuilder::new(6).unwrap().build_owned(&mut q).unwrap();
        assert!(certify_best_first(&short, &mut q, 6, None).unwrap().optimal);
        assert!(!certify_best_first(&short, &mut q, 7, None).unwrap().optimal);
        // A chain of the second-best token: prefix-closed, wrong.
        let mut chain = crate::DraftTree::new();
        let mut parent = None;
        for d in 0..4 {
            let lp = f64::from(d + 1) * 0.3f64.ln();
            chain.push(parent, 1, lp).unwrap();
            parent = Some(d as usize);
        }
        let token_of_second = q.next(&[]).unwrap().tokens()[1];
        assert_eq!(token_of_second, 1);
        assert!(!certify_best_first(&chain, &mut q, 4, None).unwrap().optimal);
        // With D = 1 the best tree of 3 nodes is the three children of the root.
        let flat = TreeBuilder::new(3)
            .unwrap()
            .with_max_depth(Some(1))
            .unwrap()
            .build_owned(&mut q)
            .unwrap();
        assert!(
            certify_best_first(&flat, &mut q, 3, Some(1))
                .unwrap()
                .optimal
        );
        assert!(!certify_best_first(&flat, &mut q, 3, None).unwrap().optimal);
    }
}
