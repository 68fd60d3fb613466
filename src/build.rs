//! The best-first builder: the `P` most probable prefixes (THEORY.md section 3).
//!
//! Because `pi(child) <= pi(parent)`, the `P` largest path probabilities
//! already form a prefix-closed set, so the optimal tree is "take the `P` most
//! probable prefixes". The builder finds them with two max-heaps:
//!
//! - `candidates`: nodes whose key `ln pi` is known, each the `i`-th child of an
//!   expanded node. Popping one adds it to the tree and pushes its next sibling
//!   (the sibling trick: a parent's children enter one at a time, in order).
//! - `unexpanded`: tree nodes whose distribution has not been asked for yet,
//!   keyed by their own `ln pi`, an upper bound on every child's key.
//!
//! A candidate is committed when its key is at least the best unexpanded key;
//! otherwise the best unexpanded node is expanded first. So the model is asked
//! for a node's distribution only when one of its children could be next
//! (lazy expansion), and a server can batch the `W` best pending expansions
//! ([`IncrementalBuild`]). Context-free models are expanded eagerly from one
//! shared copy of the distribution.
//!
//! Cost: O(P log P) time for P nodes plus the model calls; space O(P + sum of
//! the expanded distributions' lengths). A reused [`TreeBuilder`] keeps every
//! buffer, so building trees no larger than before allocates nothing.

use crate::dist::{TokenDist, TokenId};
use crate::error::{Error, Result};
use crate::model::NextTokenModel;
use crate::tree::DraftTree;
use std::cmp::Ordering;
use std::collections::BinaryHeap;

/// The largest capacity any builder accepts (2^20 draft tokens).
///
/// Memory is O(P) for a context-free model and O(P k) for one whose `k`-token
/// distributions depend on the path (each expanded node's distribution is
/// copied, 20 bytes per token): at this maximum, measured peaks are 63 MiB and
/// 703 MiB with `k = 32` (`cargo run --release --example max_capacity`;
/// README, "Limits").
pub const MAX_CAPACITY: usize = 1 << 20;

/// A context-free build uses [`RankQueues`] when its capacity is at least
/// this many times the number of ranks (the crossover measured in
/// `benches/core.rs`).
const RANK_QUEUE_MIN_RATIO: usize = 8;

/// Parent index meaning "the root" in the candidate heap and dist spans.
const ROOT: u32 = u32::MAX;

/// A child waiting in the frontier: the `rank`-th child of `parent`, with the
/// path log-probability `key` it would have.
#[derive(Debug, Clone, Copy)]
pub struct Candidate {
    /// `ln pi` of the child.
    pub key: f64,
    /// Tree index of the parent, `u32::MAX` for the root.
    pub parent: u32,
    /// Rank of the child in the parent's sorted distribution.
    pub rank: u32,
}

impl PartialEq for Candidate {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl Eq for Candidate {}
impl PartialOrd for Candidate {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Candidate {
    /// Larger key first. Keys are log-probabilities, never NaN and never
    /// above 0 (`TokenDist` guarantees it), and for such floats the order is
    /// the reverse of their bit patterns': one integer comparison. Ties need
    /// no tie-break for correctness (a child is only pushed after its parent
    /// is committed, so the tree is always prefix-closed) nor for
    /// determinism (the heap's operation sequence is itself deterministic).
    #[inline]
    fn cmp(&self, other: &Self) -> Ordering {
        other.key.to_bits().cmp(&self.key.to_bits())
    }
}

/// The max-priority queue the builder keeps its candidates in.
///
/// Two implementations exist so that the hot path can be benchmarked both
/// ways (README, "Benchmarks"): [`StdFrontier`] (the default) and, with the
/// `frontier-comparison` feature, `QuaternaryFrontier` and
/// `PriorityQueueFrontier`.
pub trait Frontier: Default {
    /// Adds a candidate.
    fn push(&mut self, c: Candidate);
    /// Removes and returns the candidate with the largest key.
    fn pop(&mut self) -> Option<Candidate>;
    /// The candidate with the largest key, if any.
    fn peek(&self) -> Option<Candidate>;
    /// Replaces the largest candidate by `c`: one sift instead of a pop and
    /// a push (the builder's commonest step: a node leaves, its sibling enters).
    fn replace_top(&mut self, c: Candidate) {
        self.pop();
        self.push(c);
    }
    /// Removes everything, keeping allocations.
    fn clear(&mut self);
}

/// Implements [`Frontier`] for a newtype over a max-heap with the
/// `BinaryHeap` API (`push`, `pop`, `peek`, `peek_mut`, `clear`); the two
/// heaps compared in the benchmarks differ only in their type.
macro_rules! heap_frontier {
    ($name:ident) => {
        impl Frontier for $name {
            #[inline]
            fn push(&mut self, c: Candidate) {
                self.0.push(c);
            }
            #[inline]
            fn pop(&mut self) -> Option<Candidate> {
                self.0.pop()
            }
            #[inline]
            fn peek(&self) -> Option<Candidate> {
                self.0.peek().copied()
            }
            #[inline]
            fn replace_top(&mut self, c: Candidate) {
                if self.0.is_empty() {
                    self.0.push(c);
                } else if let Some(mut top) = self.0.peek_mut() {
                    *top = c;
                }
            }
            fn clear(&mut self) {
                self.0.clear();
            }
        }
    };
}

/// [`Frontier`] over `std::collections::BinaryHeap`.
#[derive(Debug, Default)]
pub struct StdFrontier(BinaryHeap<Candidate>);

heap_frontier!(StdFrontier);

/// [`Frontier`] over a 4-ary heap (`dary_heap`): half the depth of a binary
/// heap, and its four children share a cache line. Measured within 10% of
/// [`StdFrontier`] either way (README, "Benchmarks").
#[cfg(feature = "frontier-comparison")]
#[derive(Debug, Default)]
pub struct QuaternaryFrontier(dary_heap::QuaternaryHeap<Candidate>);

#[cfg(feature = "frontier-comparison")]
heap_frontier!(QuaternaryFrontier);

/// The frontier for context-free models: one FIFO queue per child rank and a
/// heap of the queues' heads (at most `k` entries for `k`-token
/// distributions).
///
/// Why it is exact: when every node shares one distribution, the rank-`r`
/// child of `u` has key `ln pi(u) + ln p_r`. Best-first commits nodes in
/// non-increasing key order, and a rank-`r` candidate is pushed when its
/// parent (`r = 0`) or its rank-`r-1` sibling (`r >= 1`) is committed, so the
/// rank-`r` candidates arrive in non-increasing key order: each queue is
/// already sorted, and the best candidate is the best head. A commit costs
/// O(log k) instead of O(log P). Only valid under that arrival order; the
/// builder uses it for context-free models alone.
#[derive(Debug, Default)]
struct RankQueues {
    /// `queues[r][heads[r]..]`: pending rank-`r` candidates, best first.
    queues: Vec<Vec<Candidate>>,
    heads: Vec<usize>,
    /// The head of every non-empty queue.
    top: BinaryHeap<Candidate>,
}

impl RankQueues {
    fn reset(&mut self, ranks: usize) {
        if self.queues.len() < ranks {
            self.queues.resize_with(ranks, Vec::new);
            self.heads.resize(ranks, 0);
        }
        for q in &mut self.queues {
            q.clear();
        }
        self.heads.iter_mut().for_each(|h| *h = 0);
        self.top.clear();
    }

    #[inline]
    fn push(&mut self, c: Candidate) {
        let r = c.rank as usize;
        let queue = &mut self.queues[r];
        debug_assert!(
            queue
                .last()
                .is_none_or(|last| last.key >= c.key - 1e-12 * last.key.abs().max(1.0)),
            "rank queues need non-increasing keys per rank"
        );
        let was_empty = self.heads[r] == queue.len();
        queue.push(c);
        if was_empty {
            self.top.push(c);
        }
    }

    #[inline]
    fn peek(&self) -> Option<Candidate> {
        self.top.peek().copied()
    }

    /// Removes the best candidate; its queue's next entry becomes a head.
    #[inline]
    fn pop(&mut self) {
        let Some(mut top) = self.top.peek_mut() else {
            return;
        };
        let r = top.rank as usize;
        self.heads[r] += 1;
        match self.queues[r].get(self.heads[r]) {
            Some(&next) => *top = next,
            None => {
                std::collections::binary_heap::PeekMut::pop(top);
            }
        }
    }
}

/// [`Frontier`] over the `priority-queue` crate's indexed heap (kept for the
/// benchmark comparison; it is slower on this workload because every push
/// hashes its item).
#[cfg(feature = "frontier-comparison")]
#[derive(Debug, Default)]
pub struct PriorityQueueFrontier(priority_queue::PriorityQueue<(u32, u32), Candidate>);

#[cfg(feature = "frontier-comparison")]
impl Frontier for PriorityQueueFrontier {
    #[inline]
    fn push(&mut self, c: Candidate) {
        self.0.push((c.parent, c.rank), c);
    }
    #[inline]
    fn pop(&mut self) -> Option<Candidate> {
        self.0.pop().map(|(_, c)| c)
    }
    #[inline]
    fn peek(&self) -> Option<Candidate> {
        self.0.peek().map(|(_, c)| *c)
    }
    fn clear(&mut self) {
        self.0.clear();
    }
}

/// An unexpanded tree node keyed by its own `ln pi`.
#[derive(Debug, Clone, Copy)]
struct Unexpanded {
    key: f64,
    node: u32,
}

impl PartialEq for Unexpanded {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl Eq for Unexpanded {}
impl PartialOrd for Unexpanded {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Unexpanded {
    /// As for [`Candidate`]: keys are non-positive, compared by bits.
    #[inline]
    fn cmp(&self, other: &Self) -> Ordering {
        other.key.to_bits().cmp(&self.key.to_bits())
    }
}

/// Where a node's copied distribution lives in the builder's arena.
#[derive(Debug, Clone, Copy, Default)]
struct Span {
    start: u32,
    len: u32,
}

/// Builds optimal draft trees (THEORY.md section 3); reuse it across decoding
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
pub struct TreeBuilder<F: Frontier = StdFrontier> {
    capacity: usize,
    max_depth: Option<u32>,
    min_prob: f64,
    tree: DraftTree,
    candidates: F,
    /// Replaces `candidates` for large context-free builds (see [`RankQueues`]).
    ranked: RankQueues,
    /// Whether `ranked` is the frontier of the current build.
    use_ranked: bool,
    unexpanded: BinaryHeap<Unexpanded>,
    /// Copied distributions: tokens and log-probabilities, sorted descending.
    arena_tokens: Vec<TokenId>,
    arena_logp: Vec<f64>,
    arena_p: Vec<f64>,
    /// Per tree node: `pi(v)` in linear space, for the OPT curve (an
    /// underflow to 0 only drops terms below 1e-308 from the sums).
    reach: Vec<f64>,
    root_span: Span,
    /// Per tree node; `len == 0` until the node is expanded.
    spans: Vec<Span>,
    /// Context-free model: every node shares the root's span.
    shared: bool,
    opt_curve: Vec<f64>,
    path: Vec<TokenId>,
    /// Nodes handed out by [`IncrementalBuild::next_batch`] and not yet fed.
    awaiting: Vec<usize>,
    expansions: usize,
}

impl TreeBuilder<StdFrontier> {
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
    /// As [`TreeBuilder::new`], with an explicit [`Frontier`] type.
    ///
    /// # Errors
    ///
    /// [`Error::ZeroCapacity`] or [`Error::CapacityTooLarge`].
    pub fn with_frontier(capacity: usize) -> Result<Self> {
        check_capacity(capacity)?;
        Ok(Self {
            capacity,
            max_depth: None,
            min_prob: 0.0,
            tree: DraftTree::with_capacity(capacity),
            candidates: F::default(),
            ranked: RankQueues::default(),
            use_ranked: false,
            unexpanded: BinaryHeap::new(),
            arena_tokens: Vec::new(),
            arena_logp: Vec::new(),
            arena_p: Vec::new(),
            reach: Vec::with_capacity(capacity),
            root_span: Span::default(),
            spans: Vec::with_capacity(capacity),
            shared: false,
            opt_curve: Vec::with_capacity(capacity),
            path: Vec::new(),
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
        self.min_prob = min_prob;
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
    /// Time O(P log P) plus one model call per expanded node.
    ///
    /// # Errors
    ///
    /// Whatever the model returns.
    pub fn build<M: NextTokenModel + ?Sized>(&mut self, model: &mut M) -> Result<&DraftTree> {
        let context_free = model.is_context_free();
        self.reset(model.next(&[])?, context_free);
        while let Some(node) = self.advance() {
            self.unexpanded.pop();
            self.tree.path_tokens(node, &mut self.path);
            let dist = model.next(&self.path)?;
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
        IncrementalBuild { builder: self }
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
        let c = self.best_candidate().map(|c| c.key);
        let u = self.unexpanded.peek().map(|u| u.key);
        match (c, u) {
            (Some(c), Some(u)) => Some(c.max(u)),
            (c, u) => c.or(u),
        }
    }

    /// One step of best-first: commits the best candidate when it beats
    /// every unexpanded node (returns `true`), else expands the best
    /// unexpanded node with one model call (returns `false`).
    pub(crate) fn step<M: NextTokenModel + ?Sized>(&mut self, model: &mut M) -> Result<bool> {
        let u = self.unexpanded.peek().map(|u| u.key);
        match self.best_candidate() {
            Some(c) if u.is_none_or(|u| c.key >= u) => {
                self.commit(c);
                Ok(true)
            }
            _ => {
                if let Some(u) = self.unexpanded.pop() {
                    self.tree.path_tokens(u.node as usize, &mut self.path);
                    let dist = model.next(&self.path)?;
                    self.expand(u.node as usize, dist);
                }
                Ok(false)
            }
        }
    }

    fn reset(&mut self, root: &TokenDist, context_free: bool) {
        self.tree.clear();
        self.candidates.clear();
        self.unexpanded.clear();
        self.arena_tokens.clear();
        self.arena_logp.clear();
        self.arena_p.clear();
        self.reach.clear();
        self.spans.clear();
        self.opt_curve.clear();
        self.awaiting.clear();
        self.expansions = 0;
        self.shared = context_free;
        // Rank queues pay off once the tree is much larger than the number of
        // ranks (criterion medians on zipf:1.1:32: 46 -> 31 us at P = 1024,
        // 538 -> 489 us at P = 16384, but 1.7 -> 2.3 us at P = 64).
        self.use_ranked = context_free && self.capacity >= RANK_QUEUE_MIN_RATIO * root.len();
        self.ranked
            .reset(if self.use_ranked { root.len() } else { 0 });
        self.root_span = self.copy_dist(root);
        self.push_first_child(ROOT, 0.0, self.root_span);
    }

    fn copy_dist(&mut self, dist: &TokenDist) -> Span {
        self.expansions += 1;
        let start = self.arena_tokens.len() as u32;
        self.arena_tokens.extend_from_slice(dist.tokens());
        self.arena_logp.extend_from_slice(dist.log_probs());
        self.arena_p.extend_from_slice(dist.probs());
        Span {
            start,
            len: dist.len() as u32,
        }
    }

    #[inline]
    fn push_candidate(&mut self, c: Candidate) {
        if self.use_ranked {
            self.ranked.push(c);
        } else {
            self.candidates.push(c);
        }
    }

    #[inline]
    fn best_candidate(&self) -> Option<Candidate> {
        if self.use_ranked {
            self.ranked.peek()
        } else {
            self.candidates.peek()
        }
    }

    /// Removes the best candidate, pushing `next` (its next sibling) in the
    /// same operation where the frontier allows it.
    #[inline]
    fn pop_best(&mut self, next: Option<Candidate>) {
        match (self.use_ranked, next) {
            (true, next) => {
                self.ranked.pop();
                if let Some(n) = next {
                    self.ranked.push(n);
                }
            }
            (false, Some(n)) => self.candidates.replace_top(n),
            (false, None) => {
                self.candidates.pop();
            }
        }
    }

    #[inline]
    fn push_first_child(&mut self, parent: u32, parent_key: f64, span: Span) {
        self.push_candidate(Candidate {
            key: parent_key + self.arena_logp[span.start as usize],
            parent,
            rank: 0,
        });
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
        let floor = self.min_prob.ln();
        while self.tree.len() < self.capacity {
            let best_unexpanded = self.unexpanded.peek().map(|u| u.key);
            match (self.best_candidate(), best_unexpanded) {
                (Some(c), u) if u.is_none_or(|u| c.key >= u) => {
                    if c.key < floor {
                        return None;
                    }
                    self.commit(c);
                }
                (_, Some(u)) if u >= floor => {
                    return Some(self.unexpanded.peek().expect("peeked").node as usize);
                }
                _ => return None,
            }
        }
        None
    }

    /// Adds the frontier's best candidate to the tree: it leaves the
    /// frontier as its next sibling enters (the sibling trick), and the new
    /// node is queued for expansion (or expanded at once when the model is
    /// context-free).
    #[inline]
    fn commit(&mut self, cand: Candidate) {
        let span = self.span_of(cand.parent);
        let at = (span.start + cand.rank) as usize;
        // Sibling keys come from the parent's stored key, so that for a
        // shared distribution they are a monotone function of it (the rank
        // queues rely on that order, up to rounding ties).
        let parent_key = if cand.parent == ROOT {
            0.0
        } else {
            self.tree.path_logprob(cand.parent as usize)
        };
        let next_sibling = (cand.rank + 1 < span.len).then(|| Candidate {
            key: parent_key + self.arena_logp[at + 1],
            parent: cand.parent,
            rank: cand.rank + 1,
        });
        self.pop_best(next_sibling);
        let depth = if cand.parent == ROOT {
            1
        } else {
            self.tree.depth(cand.parent as usize) + 1
        };
        let node = self.tree.len() as u32;
        self.tree
            .push_unchecked(cand.parent, self.arena_tokens[at], depth, cand.key);
        let reach = if cand.parent == ROOT {
            self.arena_p[at]
        } else {
            self.reach[cand.parent as usize] * self.arena_p[at]
        };
        self.reach.push(reach);
        self.opt_curve
            .push(self.opt_curve.last().copied().unwrap_or(0.0) + reach);
        self.spans.push(Span::default());
        if self.max_depth.is_none_or(|d| depth < d) {
            if self.shared {
                self.spans[node as usize] = self.root_span;
                self.push_first_child(node, cand.key, self.root_span);
            } else {
                self.unexpanded.push(Unexpanded {
                    key: cand.key,
                    node,
                });
            }
        }
    }

    fn expand(&mut self, node: usize, dist: &TokenDist) {
        let span = self.copy_dist(dist);
        self.spans[node] = span;
        self.push_first_child(node as u32, self.tree.path_logprob(node), span);
    }
}

/// Refuses a capacity of 0 or above [`MAX_CAPACITY`], as every entry point
/// that takes one does.
///
/// # Errors
///
/// [`Error::ZeroCapacity`] or [`Error::CapacityTooLarge`].
pub(crate) fn check_capacity(capacity: usize) -> Result<()> {
    if capacity == 0 {
        return Err(Error::ZeroCapacity);
    }
    if capacity > MAX_CAPACITY {
        return Err(Error::CapacityTooLarge {
            capacity,
            max: MAX_CAPACITY,
        });
    }
    Ok(())
}

/// An incremental build, for servers that batch their draft forward passes.
///
/// Loop: [`IncrementalBuild::next_batch`] runs best-first as far as the known
/// distributions allow and names up to `W` nodes whose distributions are
/// needed, best first; the caller runs its drafter on those prefixes (one
/// batched forward pass) and hands each result to
/// [`IncrementalBuild::feed`]. An empty batch means the tree is complete;
/// [`IncrementalBuild::finish`] returns it. Finishing early completes the tree
/// from the known candidates alone, treating unexpanded nodes as leaves.
///
/// # Examples
///
/// ```
/// use speclight::{NextTokenModel, Iid, TokenDist, TreeBuilder};
/// let mut drafter = Iid::new(TokenDist::from_probs(&[0.6, 0.3, 0.1])?);
/// let mut builder = TreeBuilder::new(16)?;
/// let root = drafter.next(&[])?.clone();
/// let mut build = builder.begin(&root);
/// let mut path = Vec::new();
/// loop {
///     let batch = build.next_batch(4)?.to_vec();
///     if batch.is_empty() { break; }
///     for node in batch {
///         build.tree().path_tokens(node, &mut path);
///         let dist = drafter.next(&path)?.clone(); // a server: one batched draft pass
///         build.feed(node, &dist)?;
///     }
/// }
/// assert_eq!(build.finish()?.len(), 16);
/// # Ok::<(), speclight::Error>(())
/// ```
#[derive(Debug)]
pub struct IncrementalBuild<'b, F: Frontier = StdFrontier> {
    builder: &'b mut TreeBuilder<F>,
}

impl<'b, F: Frontier> IncrementalBuild<'b, F> {
    /// Advances best-first and returns up to `w` nodes (tree indices) whose
    /// distributions are needed next, best first. Empty when the tree is
    /// complete. The first node is always needed; the others are the next
    /// most promising ones, which a batched drafter computes at little extra
    /// cost.
    ///
    /// # Errors
    ///
    /// [`Error::BuilderState`] if nodes of the previous batch were not fed,
    /// [`Error::InvalidArgument`] if `w == 0`.
    pub fn next_batch(&mut self, w: usize) -> Result<&[usize]> {
        let b = &mut *self.builder;
        if w == 0 {
            return Err(Error::InvalidArgument(
                "batch width must be at least 1".into(),
            ));
        }
        if !b.awaiting.is_empty() {
            return Err(Error::BuilderState(format!(
                "{} node(s) of the previous batch were not fed",
                b.awaiting.len()
            )));
        }
        if b.advance().is_some() {
            while b.awaiting.len() < w {
                match b.unexpanded.pop() {
                    Some(u) => b.awaiting.push(u.node as usize),
                    None => break,
                }
            }
        }
        Ok(&b.awaiting)
    }

    /// Supplies the distribution after `node`'s path.
    ///
    /// # Errors
    ///
    /// [`Error::BuilderState`] if `node` was not requested by the last
    /// [`IncrementalBuild::next_batch`] or was already fed.
    pub fn feed(&mut self, node: usize, dist: &TokenDist) -> Result<()> {
        let b = &mut *self.builder;
        let Some(pos) = b.awaiting.iter().position(|&n| n == node) else {
            return Err(Error::BuilderState(format!(
                "node {node} is not awaiting a distribution"
            )));
        };
        b.awaiting.swap_remove(pos);
        b.expand(node, dist);
        Ok(())
    }

    /// The tree built so far.
    pub fn tree(&self) -> &DraftTree {
        &self.builder.tree
    }

    /// Completes the tree from the candidates already known and returns it.
    ///
    /// # Errors
    ///
    /// [`Error::BuilderState`] if nodes of the last batch were not fed.
    pub fn finish(self) -> Result<&'b DraftTree> {
        let b = self.builder;
        if !b.awaiting.is_empty() {
            return Err(Error::BuilderState(format!(
                "{} node(s) of the last batch were not fed",
                b.awaiting.len()
            )));
        }
        // No more expansions: unexpanded nodes stay leaves.
        b.unexpanded.clear();
        b.advance();
        Ok(&b.tree)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Iid;

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

    #[test]
    fn feeding_an_unrequested_node_is_an_error() {
        let root = TokenDist::from_probs(&[0.6, 0.4]).unwrap();
        let mut b = TreeBuilder::new(8).unwrap();
        let mut inc = b.begin(&root);
        assert!(matches!(inc.feed(0, &root), Err(Error::BuilderState(_))));
        let batch = inc.next_batch(2).unwrap().to_vec();
        assert!(!batch.is_empty());
        assert!(matches!(inc.next_batch(1), Err(Error::BuilderState(_))));
    }
}
