//! Static tree policies: the tree is fixed before decoding (best-first
//! over the estimated model, the rank-0 chain, the complete k-ary tree), and
//! the walk that measures one on a recorded group.

use crate::error::{Error, Result};
use crate::tree::DraftTree;

/// A static tree whose tokens are ranks, indexed for walking.
///
/// # Examples
///
/// ```
/// use speclight::tune::{chain_tree, RankTree};
/// let t = RankTree::new(chain_tree(3)?);
/// assert_eq!(t.walk(&[Some(0), Some(0), Some(1)]), 2);
/// assert_eq!(t.walk(&[Some(0), None]), 1);
/// # Ok::<(), speclight::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct RankTree {
    tree: DraftTree,
    /// `children[slot]`: `(rank, node)` below slot (0 = root, `i + 1` = node `i`).
    children: Vec<Vec<(u32, u32)>>,
}

impl RankTree {
    /// Indexes `tree` (token = rank). O(n).
    pub fn new(tree: DraftTree) -> Self {
        let mut children = vec![Vec::new(); tree.len() + 1];
        for node in tree.nodes() {
            let slot = node.parent.map_or(0, |p| p + 1);
            children[slot].push((node.token, node.index as u32));
        }
        Self { tree, children }
    }

    /// The tree.
    pub fn tree(&self) -> &DraftTree {
        &self.tree
    }

    /// Accepted draft tokens when the verifier's continuation has these
    /// ranks in the drafter's lists (`docs/THEORY.md` section 1: descend while the
    /// verifier's token is a child). O(depth x branching).
    pub fn walk(&self, ranks: &[Option<u32>]) -> usize {
        let mut slot = 0;
        let mut accepted = 0;
        for rank in ranks {
            let Some(r) = rank else { break };
            match self.children[slot].iter().find(|c| c.0 == *r) {
                Some(&(_, node)) => {
                    slot = node as usize + 1;
                    accepted += 1;
                }
                None => break,
            }
        }
        accepted
    }
}

/// The chain of rank-0 tokens of length `len` (the single-path drafter).
///
/// # Errors
///
/// [`Error::ZeroCapacity`] for `len = 0`.
pub fn chain_tree(len: usize) -> Result<DraftTree> {
    if len == 0 {
        return Err(Error::ZeroCapacity);
    }
    let mut t = DraftTree::with_capacity(len);
    let mut parent = None;
    for _ in 0..len {
        parent = Some(t.push(parent, 0, 0.0)?);
    }
    t.set_no_draft_probs();
    Ok(t)
}

/// The complete `k`-ary tree of ranks `0..k`, filled breadth first and cut
/// at `n` nodes and depth `max_depth` (a fixed, shape-only policy).
///
/// # Errors
///
/// [`Error::ZeroCapacity`], [`Error::ZeroDepth`], or
/// [`Error::InvalidArgument`] for `k = 0`.
///
/// # Examples
///
/// ```
/// let t = speclight::tune::kary_tree(2, 5, 8)?;
/// assert_eq!(t.depths(), &[1, 1, 2, 2, 2]);
/// # Ok::<(), speclight::Error>(())
/// ```
pub fn kary_tree(k: u32, n: usize, max_depth: u32) -> Result<DraftTree> {
    if n == 0 {
        return Err(Error::ZeroCapacity);
    }
    if max_depth == 0 {
        return Err(Error::ZeroDepth);
    }
    if k == 0 {
        return Err(Error::InvalidArgument("k-ary tree needs k >= 1".into()));
    }
    let mut t = DraftTree::with_capacity(n);
    let mut level: Vec<Option<usize>> = vec![None];
    'outer: for _ in 0..max_depth {
        let mut next = Vec::new();
        for &p in &level {
            for r in 0..k {
                if t.len() == n {
                    break 'outer;
                }
                next.push(Some(t.push(p, r, 0.0)?));
            }
        }
        level = next;
    }
    t.set_no_draft_probs();
    Ok(t)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Brute force for the walk: the longest prefix of the rank path that
    /// is a node of the tree, by comparing against every node's rank path.
    fn walk_brute(tree: &DraftTree, ranks: &[Option<u32>]) -> usize {
        let mut best = 0;
        for v in 0..tree.len() {
            let mut path = Vec::new();
            tree.path_tokens(v, &mut path);
            if path.len() <= ranks.len() && path.iter().zip(ranks).all(|(a, b)| Some(*a) == *b) {
                best = best.max(path.len());
            }
        }
        best
    }

    #[test]
    fn walk_matches_brute_force_on_kary_trees() {
        for k in 1..4u32 {
            for n in 1..20 {
                let t = RankTree::new(kary_tree(k, n, 5).unwrap());
                for code in 0..(5u32.pow(4)) {
                    let ranks: Vec<Option<u32>> = (0..4)
                        .map(|i| {
                            let r = (code / 5u32.pow(i)) % 5;
                            (r < 4).then_some(r)
                        })
                        .collect();
                    assert_eq!(
                        t.walk(&ranks),
                        walk_brute(t.tree(), &ranks),
                        "k={k} n={n} {ranks:?}"
                    );
                }
            }
        }
    }

    #[test]
    fn kary_is_complete_breadth_first() {
        let t = kary_tree(3, 13, 10).unwrap();
        assert_eq!(t.max_depth(), 3);
        assert_eq!(t.depths().iter().filter(|&&d| d == 2).count(), 9);
        assert!(t.validate().is_ok());
        assert_eq!(kary_tree(3, 100, 2).unwrap().len(), 12);
    }
}
