//! Frontier keys and queues: the one ordered-key type every heap in the crate
//! uses ([`Scored`] over a [`LogKey`]) and the builder's candidate heap
//! ([`Frontier`]) of the general path (context-free builds have their own,
//! `context_free.rs`).
//!
//! `Scored` follows petgraph's private `scored.rs`: a score that orders the
//! entry and an item that rides along without taking part in the order. The
//! score is any `Ord` type; the builder's heaps use a bare [`LogKey`], the
//! batch allocator `(LogKey, Reverse<request>)` so that ties go to the lower
//! request.

use std::cmp::Ordering;
use std::collections::BinaryHeap;

/// A path log-probability `ln pi` used as a max-heap key: larger is better.
///
/// Keys are never NaN and never above 0 (log-probabilities from a
/// [`crate::TokenDist`] are in `[-inf, 0]`, and sums of them stay there). For
/// such floats the order is the reverse of their bit patterns' order, so one
/// comparison is one integer comparison; it agrees with `f64::total_cmp`
/// on that range (`+0.0 > -0.0 > ... > -inf`).
#[derive(Debug, Clone, Copy)]
pub struct LogKey(f64);

impl LogKey {
    /// Wraps a path log-probability (debug builds check that it is in `[-inf, 0]`).
    #[inline]
    pub fn new(log_prob: f64) -> Self {
        debug_assert!(
            log_prob <= 0.0 && !log_prob.is_nan(),
            "heap keys are log-probabilities, got {log_prob}"
        );
        Self(log_prob)
    }

    /// The log-probability.
    #[inline]
    pub fn get(self) -> f64 {
        self.0
    }

    /// The key as a `u64` that orders as the key does, larger first (the
    /// negated bits): what the context-free heap and the allocator's
    /// tournament store, so that one integer comparison orders two keys.
    #[inline]
    pub fn order(self) -> u64 {
        !self.0.to_bits()
    }

    /// The key whose [`LogKey::order`] is `order`.
    #[inline]
    pub fn from_order(order: u64) -> Self {
        Self(f64::from_bits(!order))
    }
}

impl PartialEq for LogKey {
    fn eq(&self, other: &Self) -> bool {
        self.0.to_bits() == other.0.to_bits()
    }
}
impl Eq for LogKey {}
impl PartialOrd for LogKey {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for LogKey {
    #[inline]
    fn cmp(&self, other: &Self) -> Ordering {
        self.order().cmp(&other.order())
    }
}

/// A heap entry: `score` orders it (larger first in a `BinaryHeap`), `item`
/// is carried along and never compared.
///
/// Ties need no tie-break in the builder, for correctness (a child is only
/// pushed after its parent is committed, so the tree is always prefix-closed)
/// or for determinism (the heap's operation sequence is itself
/// deterministic); a caller that wants one puts it in the score.
#[derive(Debug, Clone, Copy)]
pub struct Scored<K, T> {
    /// What the heap orders by.
    pub score: K,
    /// What the entry stands for.
    pub item: T,
}

impl<K: Ord, T> PartialEq for Scored<K, T> {
    fn eq(&self, other: &Self) -> bool {
        self.score == other.score
    }
}
impl<K: Ord, T> Eq for Scored<K, T> {}
impl<K: Ord, T> PartialOrd for Scored<K, T> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl<K: Ord, T> Ord for Scored<K, T> {
    #[inline]
    fn cmp(&self, other: &Self) -> Ordering {
        self.score.cmp(&other.score)
    }
}

/// A child waiting to enter the tree: the `rank`-th child of `parent`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Child {
    /// Tree index of the parent, `u32::MAX` for the root.
    pub parent: u32,
    /// Rank of the child in the parent's sorted distribution.
    pub rank: u32,
}

/// Parent index meaning "the root" in a [`Child`].
pub const ROOT: u32 = u32::MAX;

/// A candidate of the frontier, keyed by the `ln pi` it would have.
pub type Candidate = Scored<LogKey, Child>;

/// The max-priority queue the builder keeps its candidates in.
///
/// Two implementations exist so that the hot path can be benchmarked both
/// ways (`benches/core.rs`, feature `frontier-comparison`): [`BinaryFrontier`]
/// (the default) and `QuaternaryFrontier` and `PriorityQueueFrontier`.
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

/// [`Frontier`] over `std::collections::BinaryHeap`: O(log n) push and pop.
#[derive(Debug, Default)]
pub struct BinaryFrontier(BinaryHeap<Candidate>);

heap_frontier!(BinaryFrontier);

/// [`Frontier`] over a 4-ary heap (`dary_heap`): half the depth of a binary
/// heap, and its four children share a cache line. Measured within 10% of
/// [`BinaryFrontier`] either way (README, "Benchmarks").
#[cfg(feature = "frontier-comparison")]
#[derive(Debug, Default)]
pub struct QuaternaryFrontier(dary_heap::QuaternaryHeap<Candidate>);

#[cfg(feature = "frontier-comparison")]
heap_frontier!(QuaternaryFrontier);

/// [`Frontier`] over the `priority-queue` crate's indexed heap (kept for the
/// benchmark comparison; it is slower on this workload because every push
/// hashes its item).
#[cfg(feature = "frontier-comparison")]
#[derive(Debug, Default)]
pub struct PriorityQueueFrontier(priority_queue::PriorityQueue<Child, Candidate>);

#[cfg(feature = "frontier-comparison")]
impl Frontier for PriorityQueueFrontier {
    #[inline]
    fn push(&mut self, c: Candidate) {
        self.0.push(c.item, c);
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

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::cmp::Reverse;

    /// Non-positive keys, the infinities' end and both zeros included.
    fn key() -> impl Strategy<Value = f64> {
        prop_oneof![
            Just(0.0),
            Just(-0.0),
            Just(f64::NEG_INFINITY),
            Just(-f64::MIN_POSITIVE),
            (-1e300f64..=0.0),
            (-50.0f64..=0.0),
        ]
    }

    proptest! {
        /// The bit-pattern order is the float order (checked with `total_cmp`,
        /// independent code) on every key the builder can make.
        #[test]
        fn log_key_orders_as_total_cmp(a in key(), b in key()) {
            prop_assert_eq!(LogKey::new(a).cmp(&LogKey::new(b)), a.total_cmp(&b));
        }

        /// A heap of scored entries pops in non-increasing score order, and a
        /// tie-break in the score (the allocator's) makes the lower index win.
        #[test]
        fn heap_pops_best_first_with_tie_break(keys in proptest::collection::vec(key(), 0..64)) {
            let mut heap: BinaryHeap<Scored<(LogKey, Reverse<u32>), u32>> = keys
                .iter()
                .enumerate()
                .map(|(i, &k)| Scored { score: (LogKey::new(k), Reverse(i as u32)), item: i as u32 })
                .collect();
            let mut want: Vec<(f64, u32)> = keys.iter().enumerate().map(|(i, &k)| (k, i as u32)).collect();
            want.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
            for (k, i) in want {
                let top = heap.pop().expect("as many pops as pushes");
                prop_assert_eq!((top.score.0.get().to_bits(), top.item), (k.to_bits(), i));
            }
        }
    }
}
