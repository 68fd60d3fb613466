//! The best-first builder, [`TreeBuilder`] (docs/THEORY.md section 3).

use super::check_capacity;
use super::context_free::ContextFreeFrontier;
use super::frontier::{BinaryFrontier, Candidate, Child, Frontier, LogKey, ROOT};
use super::incremental::IncrementalBuild;
use super::path_cache::PathCache;
use crate::dist::{TokenDist, TokenId};
use crate::error::{Error, Result};
use crate::model::NextTokenModel;
use crate::tree::DraftTree;

/// Where a node's copied distribution lives in the builder's arena.
#[derive(Debug, Clone, Copy, Default)]
struct Span {
    start: u32,
    len: u32,
}

/// Builds optimal draft trees (docs/THEORY.md section 3); reuse it across decoding
/// steps so that its buffers are reused.
///
/// # Examples
///
/// ```
/// use speclight::{Iid, TokenDist, TreeBuilder};
/// let mut model = Iid::new(TokenDist::from_probs(&[0.5, 0.3, 0.2])?);
/// let mut builder = TreeBuilder::new(64)?.with_max_depth(Some(8))?;
/// let tree = builder.build(&mut model)?;
/// assert_eq!(tree.len(), 64);
/// // OPT(n) for every n <= 64: prefix sums of the popped path probabilities.
/// assert_eq!(builder.opt_curve().len(), 64);
/// # Ok::<(), speclight::Error>(())
/// ```
#[derive(Debug)]
pub struct TreeBuilder<F: Frontier = BinaryFrontier> {
    capacity: usize,
    max_depth: Option<u32>,
    /// `ln` of the probability floor, computed once: `ln(0)` takes glibc's
    /// slow error path, 4.7% of a context-free build's instructions when it
    /// was computed on every `advance` (issue 16).
    log_floor: f64,
    tree: DraftTree,
    /// Whether the current build is context-free: then `context_free` is
    /// its frontier and the fields of the general path below stay empty.
    shared: bool,
    context_free: ContextFreeFrontier,
    /// The general path: candidates whose key is known, each a child of
    /// an expanded node.
    candidates: F,
    /// The unexpanded nodes are the tree's nodes from here on that may have
    /// children: nodes are committed in non-increasing key order, so the
    /// oldest unexpanded node is the best one and a cursor replaces a heap
    /// (issue 16). The node here, if any, may have children.
    expand_cursor: usize,
    /// Copied distributions: tokens and log-probabilities, sorted
    /// descending (probabilities are not copied: the OPT curve takes `exp`
    /// of each key, which costs less than a third copy, issue 16).
    arena_tokens: Vec<TokenId>,
    arena_logp: Vec<f64>,
    root_span: Span,
    /// Per tree node; `len == 0` until the node is expanded.
    spans: Vec<Span>,
    opt_curve: Vec<f64>,
    path: PathCache,
    /// Nodes handed out by [`IncrementalBuild::next_batch`] and not yet fed.
    awaiting: Vec<usize>,
    expansions: usize,
}

impl TreeBuilder<BinaryFrontier> {
    /// A builder for trees of at most `capacity` nodes, with no depth limit.
    ///
    /// # Errors
    ///
    /// [`Error::ZeroCapacity`] or [`Error::CapacityTooLarge`].
    pub fn new(capacity: usize) -> Result<Self> {
        Self::with_frontier(capacity)
    }
}

impl<F: Frontier> TreeBuilder<F> {
    /// As [`TreeBuilder::new`], with an explicit frontier type (for the
    /// heap comparison of `benches/core.rs`; not part of the API).
    ///
    /// # Errors
    ///
    /// [`Error::ZeroCapacity`] or [`Error::CapacityTooLarge`].
    #[doc(hidden)]
    pub fn with_frontier(capacity: usize) -> Result<Self> {
        check_capacity(capacity)?;
        Ok(Self {
            capacity,
            max_depth: None,
            log_floor: f64::NEG_INFINITY,
            tree: DraftTree::with_capacity(capacity),
            shared: false,
            context_free: ContextFreeFrontier::default(),
            candidates: F::default(),
            expand_cursor: 0,
            arena_tokens: Vec::new(),
            arena_logp: Vec::new(),
            root_span: Span::default(),
            spans: Vec::with_capacity(capacity),
            opt_curve: Vec::with_capacity(capacity),
            path: PathCache::default(),
            awaiting: Vec::new(),
            expansions: 0,
        })
    }

    /// Sets the depth limit `D` (`None` = unlimited).
    ///
    /// # Errors
    ///
    /// [`Error::ZeroDepth`] for `Some(0)`.
    pub fn with_max_depth(mut self, max_depth: Option<u32>) -> Result<Self> {
        self.set_max_depth(max_depth)?;
        Ok(self)
    }

    /// Stops adding nodes whose path probability is below `min_prob` (a
    /// probability floor: a server need not pay for hopeless tokens).
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArgument`] unless `0 <= min_prob <= 1`.
    pub fn with_min_prob(mut self, min_prob: f64) -> Result<Self> {
        if !(0.0..=1.0).contains(&min_prob) {
            return Err(Error::InvalidArgument(format!(
                "probability floor {min_prob} is not in [0, 1]"
            )));
        }
        self.log_floor = min_prob.ln();
        Ok(self)
    }

    /// Changes the capacity, keeping the buffers.
    ///
    /// # Errors
    ///
    /// [`Error::ZeroCapacity`] or [`Error::CapacityTooLarge`].
    pub fn set_capacity(&mut self, capacity: usize) -> Result<()> {
        check_capacity(capacity)?;
        self.capacity = capacity;
        Ok(())
    }

    /// Changes the depth limit, keeping the buffers.
    ///
    /// # Errors
    ///
    /// [`Error::ZeroDepth`] for `Some(0)`.
    pub fn set_max_depth(&mut self, max_depth: Option<u32>) -> Result<()> {
        if max_depth == Some(0) {
            return Err(Error::ZeroDepth);
        }
        self.max_depth = max_depth;
        Ok(())
    }

    /// The capacity `P`.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// The depth limit `D`, if any.
    pub fn max_depth(&self) -> Option<u32> {
        self.max_depth
    }

    /// The tree of the last build.
    pub fn tree(&self) -> &DraftTree {
        &self.tree
    }

    /// `OPT(n)` for `n = 1..=len` of the last build: `opt_curve()[n-1]` is the
    /// sum of the `n` largest path probabilities, which is the best `E[X]` any
    /// tree of `n` nodes can reach when the verifier equals the model built
    /// from. Non-decreasing and concave in `n`.
    pub fn opt_curve(&self) -> &[f64] {
        &self.opt_curve
    }

    /// How many distributions the last build asked of its model (the root
    /// included): the number of draft forward passes a server would pay.
    pub fn expansions(&self) -> usize {
        self.expansions
    }

    /// Builds the optimal tree for `model`: the `P` most probable prefixes of
    /// depth at most `D` (fewer if the model's distributions run out). The
    /// tree stays in the builder; the reference is valid until the next build.
    ///
    /// Time O(P log P) plus one model call per expanded node; a
    /// context-free model is asked once, and its build costs O(P log k)
    /// with `k` the ranks in play (`context_free.rs`).
    ///
    /// # Errors
    ///
    /// Whatever the model returns.
    pub fn build<M: NextTokenModel + ?Sized>(&mut self, model: &mut M) -> Result<&DraftTree> {
        let context_free = model.is_context_free();
        self.reset(model.next(&[])?, context_free);
        if context_free {
            self.context_free.fill(
                &mut self.tree,
                &mut self.opt_curve,
                self.capacity,
                self.log_floor,
            );
            return Ok(&self.tree);
        }
        while let Some(node) = self.advance() {
            self.take_unexpanded();
            let dist = model.next(self.path.path_to(&self.tree, node))?;
            self.expand(node, dist);
        }
        Ok(&self.tree)
    }

    /// Builds as [`TreeBuilder::build`] and returns an owned copy of the tree.
    ///
    /// # Errors
    ///
    /// Whatever the model returns.
    pub fn build_owned<M: NextTokenModel + ?Sized>(&mut self, model: &mut M) -> Result<DraftTree> {
        self.build(model).cloned()
    }

    /// Starts an incremental build from the root's distribution, for servers
    /// that batch their draft calls. See [`IncrementalBuild`].
    pub fn begin(&mut self, root: &TokenDist) -> IncrementalBuild<'_, F> {
        self.reset(root, false);
        IncrementalBuild::new(self)
    }

    /// Takes up the incremental build that the last [`TreeBuilder::begin`]
    /// started, for callers that cannot hold the borrowed
    /// [`IncrementalBuild`] between calls (the Python bindings keep the
    /// builder in an object and re-borrow it on every call). On a builder
    /// with no build in progress, the batch is empty and the tree is the
    /// last one built.
    pub fn resume(&mut self) -> IncrementalBuild<'_, F> {
        IncrementalBuild::new(self)
    }

    /// Starts a build that a caller drives one [`TreeBuilder::step`] at a
    /// time (the batch allocator interleaves many builders this way).
    pub(crate) fn start(&mut self, root: &TokenDist, context_free: bool) {
        self.reset(root, context_free);
    }

    /// An upper bound on the key (`ln pi`) of the next node this build would
    /// add: its best candidate or its best unexpanded node. `None` when the
    /// tree is full or the model's support is exhausted.
    pub(crate) fn next_key_bound(&self) -> Option<f64> {
        if self.tree.len() >= self.capacity {
            return None;
        }
        if self.shared {
            return self.context_free.best_key();
        }
        let c = self.best_candidate().map(|c| c.score.get());
        let u = self.best_unexpanded_key();
        match (c, u) {
            (Some(c), Some(u)) => Some(c.max(u)),
            (c, u) => c.or(u),
        }
    }

    /// One step of best-first: commits the best candidate when it beats
    /// every unexpanded node (returns `true`), else expands the best
    /// unexpanded node with one model call (returns `false`).
    pub(crate) fn step<M: NextTokenModel + ?Sized>(&mut self, model: &mut M) -> Result<bool> {
        if self.shared {
            self.context_free.step(&mut self.tree, &mut self.opt_curve);
            return Ok(true);
        }
        let u = self.best_unexpanded_key();
        match self.best_candidate() {
            Some(c) if u.is_none_or(|u| c.score.get() >= u) => {
                self.commit(c);
                Ok(true)
            }
            _ => {
                if let Some(u) = self.take_unexpanded() {
                    let dist = model.next(self.path.path_to(&self.tree, u))?;
                    self.expand(u, dist);
                }
                Ok(false)
            }
        }
    }

    fn reset(&mut self, root: &TokenDist, context_free: bool) {
        self.tree.clear();
        self.candidates.clear();
        self.expand_cursor = 0;
        self.arena_tokens.clear();
        self.arena_logp.clear();
        self.spans.clear();
        self.opt_curve.clear();
        self.awaiting.clear();
        self.path.clear();
        self.shared = context_free;
        if context_free {
            self.expansions = 1;
            self.context_free.reset(root, self.capacity, self.max_depth);
            return;
        }
        self.expansions = 0;
        self.root_span = self.copy_dist(root);
        self.push_first_child(ROOT, 0.0, self.root_span);
    }

    fn copy_dist(&mut self, dist: &TokenDist) -> Span {
        self.expansions += 1;
        let start = self.arena_tokens.len() as u32;
        self.arena_tokens.extend_from_slice(dist.tokens());
        self.arena_logp.extend_from_slice(dist.log_probs());
        Span {
            start,
            len: dist.len() as u32,
        }
    }

    #[inline]
    fn best_candidate(&self) -> Option<Candidate> {
        self.candidates.peek()
    }

    /// Removes the best candidate, pushing `next` (its next sibling) in the
    /// same operation.
    #[inline]
    fn pop_best(&mut self, next: Option<Candidate>) {
        match next {
            Some(n) => self.candidates.replace_top(n),
            None => {
                self.candidates.pop();
            }
        }
    }

    #[inline]
    fn push_first_child(&mut self, parent: u32, parent_key: f64, span: Span) {
        self.candidates.push(Candidate {
            score: LogKey::new(parent_key + self.arena_logp[span.start as usize]),
            item: Child { parent, rank: 0 },
        });
    }

    /// The key of the best unexpanded node, if any.
    #[inline]
    fn best_unexpanded_key(&self) -> Option<f64> {
        self.tree.path_logprobs().get(self.expand_cursor).copied()
    }

    /// Whether a node of this depth may have children.
    #[inline]
    fn may_expand(&self, depth: u32) -> bool {
        self.max_depth.is_none_or(|d| depth < d)
    }

    /// Removes the best unexpanded node from the unexpanded ones and
    /// returns it, moving the cursor to the next node that may have
    /// children. Amortised O(1).
    fn take_unexpanded(&mut self) -> Option<usize> {
        let node = self.expand_cursor;
        let depths = self.tree.depths();
        if node >= depths.len() {
            return None;
        }
        let mut next = node + 1;
        while next < depths.len() && !self.may_expand(depths[next]) {
            next += 1;
        }
        self.expand_cursor = next;
        Some(node)
    }

    #[inline]
    fn span_of(&self, parent: u32) -> Span {
        if parent == ROOT {
            self.root_span
        } else {
            self.spans[parent as usize]
        }
    }

    /// Commits candidates while they beat every unexpanded node. Returns the
    /// best unexpanded node when its distribution is needed next (left on its
    /// heap), or `None` when the tree is complete.
    fn advance(&mut self) -> Option<usize> {
        let floor = self.log_floor;
        while self.tree.len() < self.capacity {
            match (self.best_candidate(), self.best_unexpanded_key()) {
                (Some(c), u) if u.is_none_or(|u| c.score.get() >= u) => {
                    if c.score.get() < floor {
                        return None;
                    }
                    self.commit(c);
                }
                (_, Some(u)) if u >= floor => return Some(self.expand_cursor),
                _ => return None,
            }
        }
        None
    }

    /// Adds the frontier's best candidate to the tree (general path): it
    /// leaves the frontier as its next sibling enters (the sibling trick),
    /// and the new node is queued for expansion.
    #[inline]
    fn commit(&mut self, cand: Candidate) {
        let (key, Child { parent, rank }) = (cand.score.get(), cand.item);
        let span = self.span_of(parent);
        let at = (span.start + rank) as usize;
        // Sibling keys come from the parent's stored key, as the
        // context-free path computes them, so that both paths sum the same
        // log-probabilities in the same order.
        let parent_key = if parent == ROOT {
            0.0
        } else {
            self.tree.path_logprob(parent as usize)
        };
        let next_sibling = (rank + 1 < span.len).then(|| Candidate {
            score: LogKey::new(parent_key + self.arena_logp[at + 1]),
            item: Child {
                parent,
                rank: rank + 1,
            },
        });
        self.pop_best(next_sibling);
        let depth = if parent == ROOT {
            1
        } else {
            self.tree.depth(parent as usize) + 1
        };
        let node = self.tree.len() as u32;
        self.tree
            .push_unchecked(parent, self.arena_tokens[at], depth, key);
        // One `exp` per node costs less than copying every expanded
        // distribution's probabilities (callgrind, docs/benchmarks.md).
        self.opt_curve
            .push(self.opt_curve.last().copied().unwrap_or(0.0) + key.exp());
        self.spans.push(Span::default());
        // Keep the cursor on a node that may have children.
        if self.expand_cursor == node as usize && !self.may_expand(depth) {
            self.expand_cursor += 1;
        }
    }

    /// [`IncrementalBuild::next_batch`]: advances best-first, then hands out
    /// up to `w` of the best unexpanded nodes.
    pub(super) fn next_batch(&mut self, w: usize) -> Result<&[usize]> {
        if w == 0 {
            return Err(Error::InvalidArgument(
                "batch width must be at least 1".into(),
            ));
        }
        if !self.awaiting.is_empty() {
            return Err(Error::BuilderState(format!(
                "{} node(s) of the previous batch were not fed",
                self.awaiting.len()
            )));
        }
        if self.advance().is_some() {
            while self.awaiting.len() < w {
                match self.take_unexpanded() {
                    Some(u) => self.awaiting.push(u),
                    None => break,
                }
            }
        }
        Ok(&self.awaiting)
    }

    /// [`IncrementalBuild::feed`]: expands an awaited node.
    pub(super) fn feed(&mut self, node: usize, dist: &TokenDist) -> Result<()> {
        let Some(pos) = self.awaiting.iter().position(|&n| n == node) else {
            return Err(Error::BuilderState(format!(
                "node {node} is not awaiting a distribution"
            )));
        };
        self.awaiting.swap_remove(pos);
        self.expand(node, dist);
        Ok(())
    }

    /// [`IncrementalBuild::finish`]: completes the tree from the known
    /// candidates, unexpanded nodes staying leaves.
    pub(super) fn finish(&mut self) -> Result<&DraftTree> {
        if !self.awaiting.is_empty() {
            return Err(Error::BuilderState(format!(
                "{} node(s) of the last batch were not fed",
                self.awaiting.len()
            )));
        }
        // The unexpanded nodes become leaves; nodes committed from here on
        // are unexpanded as before.
        self.expand_cursor = self.tree.len();
        self.advance();
        Ok(&self.tree)
    }

    fn expand(&mut self, node: usize, dist: &TokenDist) {
        let span = self.copy_dist(dist);
        self.spans[node] = span;
        self.push_first_child(node as u32, self.tree.path_logprob(node), span);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::build::MAX_CAPACITY;
    use crate::model::{Iid, Opaque};

    #[test]
    fn takes_the_most_probable_prefixes() {
        let mut m = Iid::new(TokenDist::from_probs(&[0.5, 0.3, 0.2]).unwrap());
        let mut b = TreeBuilder::new(4).unwrap();
        let t = b.build(&mut m).unwrap().clone();
        // 0.5, 0.3, 0.25 (0,0), 0.2
        let probs: Vec<f64> = t.path_logprobs().iter().map(|l| l.exp()).collect();
        let want = [0.5, 0.3, 0.25, 0.2];
        for (p, w) in probs.iter().zip(want) {
            assert!((p - w).abs() < 1e-12, "{probs:?}");
        }
        assert!((b.opt_curve()[3] - 1.25).abs() < 1e-12);
        t.validate().unwrap();
    }

    /// The floor keeps exactly the unfloored tree's nodes whose path
    /// probability reaches it (checked on the plain build, independent of
    /// the floor's code path), for context-free and path-dependent models.
    #[test]
    fn probability_floor_keeps_the_nodes_above_it() {
        let dist = TokenDist::from_probs(&[0.5, 0.3, 0.2]).unwrap();
        for floor in [0.0, 0.011, 0.07, 0.19, 0.45, 1.0] {
            let full = TreeBuilder::new(256)
                .unwrap()
                .build_owned(&mut Iid::new(dist.clone()))
                .unwrap();
            let want = full
                .path_logprobs()
                .iter()
                .filter(|&&lp| lp.exp() >= floor * (1.0 + 1e-12))
                .count();
            let mut floored = TreeBuilder::new(256).unwrap().with_min_prob(floor).unwrap();
            let got = floored.build(&mut Iid::new(dist.clone())).unwrap().len();
            assert_eq!(got, want.min(256), "floor {floor}, context-free");
            let got = floored
                .build(&mut Opaque(Iid::new(dist.clone())))
                .unwrap()
                .len();
            assert_eq!(got, want.min(256), "floor {floor}, general path");
        }
        assert!(TreeBuilder::new(4).unwrap().with_min_prob(1.5).is_err());
    }

    #[test]
    fn depth_limit_is_respected() {
        let mut m = Iid::new(TokenDist::from_probs(&[0.9, 0.1]).unwrap());
        let mut b = TreeBuilder::new(3)
            .unwrap()
            .with_max_depth(Some(1))
            .unwrap();
        let t = b.build(&mut m).unwrap();
        assert_eq!(t.len(), 2, "only two depth-1 nodes exist");
        assert_eq!(t.max_depth(), 1);
    }

    #[test]
    fn rejects_bad_settings() {
        assert_eq!(TreeBuilder::new(0).unwrap_err(), Error::ZeroCapacity);
        assert!(matches!(
            TreeBuilder::new(MAX_CAPACITY + 1),
            Err(Error::CapacityTooLarge { .. })
        ));
        assert_eq!(
            TreeBuilder::new(1)
                .unwrap()
                .with_max_depth(Some(0))
                .unwrap_err(),
            Error::ZeroDepth
        );
    }
}
