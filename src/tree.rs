//! [`DraftTree`]: a draft tree stored as a flat arena in topological order.
//!
//! The root (the current context) is implicit and not counted. Node `i`'s
//! parent has an index below `i`, so one forward pass over the arrays visits
//! every parent before its children: the DP evaluator (docs/THEORY.md section 2)
//! and every exporter rely on this. Arrays are kept separately (struct of
//! arrays) because the hot loops read one field at a time.

use crate::dist::TokenId;
use crate::error::{Error, Result};
use std::collections::HashSet;

/// Sentinel parent index for children of the root.
const ROOT: u32 = u32::MAX;

/// A prefix-closed draft tree in topological order.
///
/// Each node stores its token, its depth (children of the root have depth 1)
/// and the drafter's natural-log probability of the whole path from the root
/// to it, `ln pi_q(v)` (docs/THEORY.md section 3). Trees read from formats that
/// carry no probabilities store `0.0` there; see [`DraftTree::has_draft_probs`].
///
/// # Examples
///
/// ```
/// use speclight::DraftTree;
/// let mut t = DraftTree::new();
/// let a = t.push(None, 7, 0.6f64.ln())?;
/// let b = t.push(Some(a), 3, (0.6f64 * 0.5).ln())?;
/// assert_eq!(t.len(), 2);
/// assert_eq!(t.parent(b), Some(a));
/// assert_eq!(t.depth(b), 2);
/// t.validate()?;
/// # Ok::<(), speclight::Error>(())
/// ```
#[derive(Debug, Default, PartialEq)]
pub struct DraftTree {
    parent: Vec<u32>,
    token: Vec<TokenId>,
    depth: Vec<u32>,
    path_logprob: Vec<f64>,
    has_draft_probs: bool,
}

/// Written out so that `clone_from` reuses the target's buffers (the
/// derived one allocates anew), which keeps a reused batch allocation
/// free of allocations.
impl Clone for DraftTree {
    fn clone(&self) -> Self {
        Self {
            parent: self.parent.clone(),
            token: self.token.clone(),
            depth: self.depth.clone(),
            path_logprob: self.path_logprob.clone(),
            has_draft_probs: self.has_draft_probs,
        }
    }

    fn clone_from(&mut self, source: &Self) {
        self.parent.clone_from(&source.parent);
        self.token.clone_from(&source.token);
        self.depth.clone_from(&source.depth);
        self.path_logprob.clone_from(&source.path_logprob);
        self.has_draft_probs = source.has_draft_probs;
    }
}

/// The columns of nodes appended by [`DraftTree::grow`], to be written.
pub(crate) struct NodeColumns<'t> {
    pub(crate) parent: &'t mut [u32],
    pub(crate) token: &'t mut [TokenId],
    pub(crate) depth: &'t mut [u32],
    pub(crate) path_logprob: &'t mut [f64],
}

/// One node of a [`DraftTree`], as yielded by [`DraftTree::nodes`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Node {
    /// Index in the arena.
    pub index: usize,
    /// Parent index, `None` for a child of the root.
    pub parent: Option<usize>,
    /// The drafted token.
    pub token: TokenId,
    /// Depth: 1 for children of the root.
    pub depth: u32,
    /// Drafter's log-probability of the path root -> node.
    pub path_logprob: f64,
}

impl DraftTree {
    /// An empty tree (the root alone).
    pub fn new() -> Self {
        Self {
            has_draft_probs: true,
            ..Self::default()
        }
    }

    /// An empty tree with room for `n` nodes.
    pub fn with_capacity(n: usize) -> Self {
        Self {
            parent: Vec::with_capacity(n),
            token: Vec::with_capacity(n),
            depth: Vec::with_capacity(n),
            path_logprob: Vec::with_capacity(n),
            has_draft_probs: true,
        }
    }

    /// Removes every node, keeping the allocations.
    pub fn clear(&mut self) {
        self.parent.clear();
        self.token.clear();
        self.depth.clear();
        self.path_logprob.clear();
        self.has_draft_probs = true;
    }

    /// Appends a node below `parent` (`None` = the root) and returns its index.
    ///
    /// O(1): sibling uniqueness is left to [`DraftTree::validate`].
    ///
    /// # Errors
    ///
    /// [`Error::InvalidTree`] if `parent` is not an existing node or
    /// `path_logprob` is NaN or positive.
    pub fn push(
        &mut self,
        parent: Option<usize>,
        token: TokenId,
        path_logprob: f64,
    ) -> Result<usize> {
        let index = self.len();
        let depth = match parent {
            None => 1,
            Some(p) if p < index => self.depth[p] + 1,
            Some(p) => {
                return Err(Error::InvalidTree {
                    node: index,
                    reason: format!("parent {p} does not come before the node"),
                })
            }
        };
        if path_logprob.is_nan() || path_logprob > 0.0 {
            return Err(Error::InvalidTree {
                node: index,
                reason: format!("path log-probability {path_logprob} is not <= 0"),
            });
        }
        self.push_unchecked(
            parent.map_or(ROOT, |p| p as u32),
            token,
            depth,
            path_logprob,
        );
        Ok(index)
    }

    /// Appends a node whose parent is known valid (the builder's hot path).
    #[inline]
    pub(crate) fn push_unchecked(&mut self, parent: u32, token: TokenId, depth: u32, lp: f64) {
        self.parent.push(parent);
        self.token.push(token);
        self.depth.push(depth);
        self.path_logprob.push(lp);
    }

    /// Appends `n` placeholder nodes and returns the new nodes' columns,
    /// for a builder that writes nodes through pre-sized slices instead of
    /// one push per field (issue 16); it must write every node it keeps
    /// and [`DraftTree::truncate`] the rest.
    pub(crate) fn grow(&mut self, n: usize) -> NodeColumns<'_> {
        let start = self.len();
        self.parent.resize(start + n, 0);
        self.token.resize(start + n, 0);
        self.depth.resize(start + n, 0);
        self.path_logprob.resize(start + n, 0.0);
        NodeColumns {
            parent: &mut self.parent[start..],
            token: &mut self.token[start..],
            depth: &mut self.depth[start..],
            path_logprob: &mut self.path_logprob[start..],
        }
    }

    /// Keeps the first `len` nodes.
    pub(crate) fn truncate(&mut self, len: usize) {
        self.parent.truncate(len);
        self.token.truncate(len);
        self.depth.truncate(len);
        self.path_logprob.truncate(len);
    }

    /// Marks the tree as carrying no drafter probabilities (read from a format
    /// such as rank paths); its path log-probabilities are then all `0.0`.
    pub fn set_no_draft_probs(&mut self) {
        self.has_draft_probs = false;
        self.path_logprob.iter_mut().for_each(|lp| *lp = 0.0);
    }

    /// Whether [`DraftTree::path_logprob`] holds real drafter probabilities.
    pub fn has_draft_probs(&self) -> bool {
        self.has_draft_probs
    }

    /// Number of nodes, the root excluded.
    pub fn len(&self) -> usize {
        self.token.len()
    }

    /// Whether the tree holds no draft token.
    pub fn is_empty(&self) -> bool {
        self.token.is_empty()
    }

    /// Parent of node `i`, `None` for a child of the root.
    ///
    /// # Panics
    ///
    /// If `i >= self.len()`.
    pub fn parent(&self, i: usize) -> Option<usize> {
        let p = self.parent[i];
        (p != ROOT).then_some(p as usize)
    }

    /// Token of node `i`. Panics if `i` is out of range.
    pub fn token(&self, i: usize) -> TokenId {
        self.token[i]
    }

    /// Depth of node `i` (1 for children of the root). Panics if out of range.
    pub fn depth(&self, i: usize) -> u32 {
        self.depth[i]
    }

    /// Drafter's log-probability of the path root -> `i`. Panics if out of range.
    pub fn path_logprob(&self, i: usize) -> f64 {
        self.path_logprob[i]
    }

    /// Drafter's conditional log-probability of node `i`'s token given its
    /// parent: `path_logprob(i) - path_logprob(parent)`.
    pub fn logprob(&self, i: usize) -> f64 {
        let above = self.parent(i).map_or(0.0, |p| self.path_logprob[p]);
        self.path_logprob[i] - above
    }

    /// All tokens in arena order.
    pub fn tokens(&self) -> &[TokenId] {
        &self.token
    }

    /// All depths in arena order.
    pub fn depths(&self) -> &[u32] {
        &self.depth
    }

    /// Raw parent indices in arena order, with `u32::MAX` for the root.
    pub fn parent_indices(&self) -> &[u32] {
        &self.parent
    }

    /// All path log-probabilities in arena order.
    pub fn path_logprobs(&self) -> &[f64] {
        &self.path_logprob
    }

    /// Largest depth, 0 for an empty tree.
    pub fn max_depth(&self) -> u32 {
        self.depth.iter().copied().max().unwrap_or(0)
    }

    /// Iterates the nodes in topological (arena) order.
    pub fn nodes(&self) -> impl ExactSizeIterator<Item = Node> + '_ {
        (0..self.len()).map(move |index| Node {
            index,
            parent: self.parent(index),
            token: self.token[index],
            depth: self.depth[index],
            path_logprob: self.path_logprob[index],
        })
    }

    /// Children of `parent` (`None` = the root), in arena order. O(len).
    pub fn children(&self, parent: Option<usize>) -> impl Iterator<Item = usize> + '_ {
        let want = parent.map_or(ROOT, |p| p as u32);
        let start = parent.map_or(0, |p| p + 1);
        (start..self.len()).filter(move |&i| self.parent[i] == want)
    }

    /// Whether each node has at least one child. O(len).
    pub fn has_children(&self) -> Vec<bool> {
        let mut has = vec![false; self.len()];
        for &p in &self.parent {
            if p != ROOT {
                has[p as usize] = true;
            }
        }
        has
    }

    /// Leaves (nodes without children) in arena order. O(len).
    pub fn leaves(&self) -> impl Iterator<Item = usize> {
        self.has_children()
            .into_iter()
            .enumerate()
            .filter_map(|(i, has)| (!has).then_some(i))
    }

    /// Node indices from the root's child down to `i`, written into `out`
    /// (cleared first). O(depth).
    pub fn path_to(&self, i: usize, out: &mut Vec<usize>) {
        out.clear();
        let mut cur = Some(i);
        while let Some(c) = cur {
            out.push(c);
            cur = self.parent(c);
        }
        out.reverse();
    }

    /// Tokens from the root's child down to `i`, written into `out` (cleared
    /// first). This is the prefix a model is asked about. O(depth).
    pub fn path_tokens(&self, i: usize, out: &mut Vec<TokenId>) {
        out.clear();
        let mut cur = i as u32;
        while cur != ROOT {
            out.push(self.token[cur as usize]);
            cur = self.parent[cur as usize];
        }
        out.reverse();
    }

    /// Root-to-leaf paths (node indices), one per leaf, leaves in arena order.
    pub fn paths(&self) -> impl Iterator<Item = Vec<usize>> + '_ {
        self.leaves().map(move |leaf| {
            let mut path = Vec::with_capacity(self.depth[leaf] as usize);
            self.path_to(leaf, &mut path);
            path
        })
    }

    /// Checks every invariant: parents come first, depths follow parents,
    /// siblings carry distinct tokens, and path log-probabilities are finite
    /// (or `-inf`), at most 0 and non-increasing from parent to child
    /// (within `1e-9`). O(len) time and space.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidTree`] naming the first offending node.
    pub fn validate(&self) -> Result<()> {
        let n = self.len();
        let bad = |node: usize, reason: String| Err(Error::InvalidTree { node, reason });
        if [self.parent.len(), self.depth.len(), self.path_logprob.len()]
            .iter()
            .any(|&l| l != n)
        {
            return bad(0, "field arrays have different lengths".into());
        }
        let mut seen = HashSet::with_capacity(n);
        for i in 0..n {
            let (expected_depth, parent_lp) = match self.parent(i) {
                None => (1, 0.0),
                Some(p) if p < i => (self.depth[p] + 1, self.path_logprob[p]),
                Some(p) => return bad(i, format!("parent {p} does not come before the node")),
            };
            if self.depth[i] != expected_depth {
                return bad(
                    i,
                    format!("depth {} should be {expected_depth}", self.depth[i]),
                );
            }
            let lp = self.path_logprob[i];
            if lp.is_nan() || lp > 0.0 || lp > parent_lp + 1e-9 {
                return bad(
                    i,
                    format!("path log-probability {lp} exceeds its parent's {parent_lp}"),
                );
            }
            if !seen.insert((self.parent[i], self.token[i])) {
                return bad(
                    i,
                    format!("token {} repeats among its siblings", self.token[i]),
                );
            }
        }
        Ok(())
    }
}

/// Where a verification walk stopped (see [`walk`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WalkEnd {
    /// The deepest accepted node, `None` when nothing was accepted.
    pub last: Option<usize>,
    /// The verifier's token that no child carried (the bonus token), or
    /// `None` when the verifier's draw named no token (fell in the unlisted
    /// tail of a truncated distribution).
    pub bonus: Option<TokenId>,
}

/// The one verification walk of `docs/THEORY.md` section 1, shared by the
/// evaluator's Monte-Carlo check, the simulator and the serving walk:
/// descend from the root; at each node ask `sample(node, accepted_tokens)`
/// which token the verifier picks there (`node` is `None` at the root),
/// follow the child `child(node, token)` that carries it, and stop at the
/// first token no child carries. The accepted tokens are written into
/// `accepted` (cleared first); the walk itself allocates nothing once
/// `accepted` has room, so a server can reuse its buffers. The caller
/// chooses how a child is found (a scan of the arena, or an index) and
/// records the accepted nodes in `child` if it needs them.
///
/// Time O(X (c + s)) for `X` accepted tokens, `c` the cost of one `child`
/// look-up and `s` of one `sample`; space O(X) in `accepted`.
///
/// # Errors
///
/// Whatever `sample` returns.
///
/// # Examples
///
/// ```
/// use speclight::{walk, DraftTree};
/// let mut t = DraftTree::new();
/// let a = t.push(None, 5, -0.1)?;
/// t.push(Some(a), 6, -0.2)?;
/// let mut accepted = Vec::new();
/// let end = t.walk(|_, path| Ok(Some([5, 6, 9][path.len()])), &mut accepted)?;
/// assert_eq!((accepted.as_slice(), end.bonus), (&[5, 6][..], Some(9)));
/// let end = walk(|_, _| None, |_, _| Ok(Some(5)), &mut accepted)?;
/// assert_eq!((accepted.len(), end.last, end.bonus), (0, None, Some(5)));
/// # Ok::<(), speclight::Error>(())
/// ```
pub fn walk<C, S>(mut child: C, mut sample: S, accepted: &mut Vec<TokenId>) -> Result<WalkEnd>
where
    C: FnMut(Option<usize>, TokenId) -> Option<usize>,
    S: FnMut(Option<usize>, &[TokenId]) -> Result<Option<TokenId>>,
{
    accepted.clear();
    let mut at = None;
    loop {
        let Some(y) = sample(at, accepted)? else {
            return Ok(WalkEnd {
                last: at,
                bonus: None,
            });
        };
        match child(at, y) {
            Some(c) => {
                at = Some(c);
                accepted.push(y);
            }
            None => {
                return Ok(WalkEnd {
                    last: at,
                    bonus: Some(y),
                })
            }
        }
    }
}

impl DraftTree {
    /// [`walk`] on this tree, finding children by a scan of the arena:
    /// O(X |T|) look-ups, fine for tests and simulations; a server indexes
    /// the children instead (the serving walk).
    ///
    /// # Errors
    ///
    /// Whatever `sample` returns.
    pub fn walk<S>(&self, sample: S, accepted: &mut Vec<TokenId>) -> Result<WalkEnd>
    where
        S: FnMut(Option<usize>, &[TokenId]) -> Result<Option<TokenId>>,
    {
        walk(
            |at, y| self.children(at).find(|&c| self.token(c) == y),
            sample,
            accepted,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> DraftTree {
        // root -> 0 (a) -> 2 (c)
        //      -> 1 (b)
        let mut t = DraftTree::new();
        t.push(None, 10, -0.1).unwrap();
        t.push(None, 11, -1.0).unwrap();
        t.push(Some(0), 12, -0.5).unwrap();
        t
    }

    #[test]
    fn iterators_agree_with_structure() {
        let t = sample();
        assert_eq!(t.children(None).collect::<Vec<_>>(), vec![0, 1]);
        assert_eq!(t.children(Some(0)).collect::<Vec<_>>(), vec![2]);
        assert_eq!(t.leaves().collect::<Vec<_>>(), vec![1, 2]);
        assert_eq!(t.paths().collect::<Vec<_>>(), vec![vec![1], vec![0, 2]]);
        let mut toks = Vec::new();
        t.path_tokens(2, &mut toks);
        assert_eq!(toks, vec![10, 12]);
        assert!((t.logprob(2) - (-0.4)).abs() < 1e-12);
        t.validate().unwrap();
    }

    #[test]
    fn validate_catches_each_broken_invariant() {
        let mut t = sample();
        t.token[1] = 10;
        assert!(matches!(
            t.validate(),
            Err(Error::InvalidTree { node: 1, .. })
        ));
        let mut t = sample();
        t.depth[2] = 5;
        assert!(matches!(
            t.validate(),
            Err(Error::InvalidTree { node: 2, .. })
        ));
        let mut t = sample();
        t.parent[0] = 2;
        assert!(matches!(
            t.validate(),
            Err(Error::InvalidTree { node: 0, .. })
        ));
        let mut t = sample();
        t.path_logprob[2] = 0.0;
        assert!(matches!(
            t.validate(),
            Err(Error::InvalidTree { node: 2, .. })
        ));
        assert!(sample().push(Some(3), 1, -1.0).is_err());
    }
}
