//! Best-first for context-free drafters: every node shares one distribution
//! (docs/THEORY.md section 3), so the frontier needs no per-candidate storage.
//!
//! Nodes that may still have children (depth below the limit) are kept as
//! *parents*, the root first, in commit order, which is non-increasing key
//! order. The rank-`r` child of parent `i` has key `key_i + ln p_r`; for a
//! fixed `r` these keys are non-increasing in `i` (adding a constant is
//! monotone, rounding included), so rank `r`'s pending children form a
//! queue that is just a cursor `heads[r]` into the parents. The best
//! candidate is the best queue head, and a small heap holds the heads.
//!
//! A rank-`r` head waits outside the heap while it names the same parent as
//! rank `r - 1`'s head: that child cannot come before its better-ranked
//! sibling (the builder's sibling trick, so siblings enter in rank order,
//! ties included). So, with `h` the cursors and `n` the number of parents:
//! rank 0 is in the heap iff `h[0] < n`, rank `r >= 1` iff `h[r] < h[r-1]`.
//! A commit moves one cursor; it can bring in the next rank and, when the
//! new node is a parent, rank 0: one heap replacement and at most two pushes.
//!
//! Cost per node: O(log k) for `k` heap entries (at most the number of
//! ranks, `min(V, P)`, and in practice the handful of ranks whose cursors
//! differ), no model call and no allocation once the buffers have grown;
//! reset O(min(V, P)). Space O(P + min(V, P)).

use super::frontier::{LogKey, ROOT};
use crate::dist::{TokenDist, TokenId};
use crate::tree::DraftTree;

/// A committed node whose children may still enter the tree (or the root).
#[derive(Debug, Clone, Copy, Default)]
struct Parent {
    key: f64,
    /// `pi` in linear space, for the OPT curve without an `exp` per node (an
    /// underflow to 0 only drops terms below 1e-308 from the sums).
    reach: f64,
    node: u32,
    depth: u32,
}

/// One rank of the shared distribution and its queue's cursor: what a
/// commit reads about a rank sits in one place.
#[derive(Debug, Clone, Copy, Default)]
struct Rank {
    logp: f64,
    prob: f64,
    token: TokenId,
    /// The parent whose rank-`r` child is next.
    head: u32,
}

/// A queue head in the heap: its rank and the key of its candidate, stored
/// as [`order_bits`] so that one integer comparison orders two heads.
#[derive(Debug, Clone, Copy, Default)]
struct Head {
    order: u64,
    rank: u32,
}

/// A key's [`LogKey::order`].
#[inline]
fn order_bits(key: f64) -> u64 {
    LogKey::new(key).order()
}

#[inline]
fn key_of(order: u64) -> f64 {
    LogKey::from_order(order).get()
}

/// A node leaving the queues for the tree, with the OPT curve's new value.
#[derive(Debug, Clone, Copy)]
struct NewNode {
    parent: u32,
    token: TokenId,
    depth: u32,
    key: f64,
    opt: f64,
}

/// The frontier of a context-free build; see the module docs. Its buffers
/// only grow, to the largest tree built: `parents` and `heap` are used up
/// to their counts, so a reset costs O(ranks), not O(P).
#[derive(Debug, Default)]
pub(super) struct ContextFreeFrontier {
    /// The shared distribution's first ranks, best first.
    ranks: Vec<Rank>,
    parents: Vec<Parent>,
    parent_count: usize,
    /// Max-heap of the heads that may be next, `heap[..heap_len]`.
    heap: Vec<Head>,
    heap_len: usize,
    max_depth: u32,
    /// Running sum of the committed nodes' path probabilities.
    opt_sum: f64,
}

impl ContextFreeFrontier {
    /// Starts a build from the shared distribution. Only the first
    /// `capacity` ranks can enter a tree of `capacity` nodes (the rank-`r`
    /// child of a node needs its `r` better siblings first).
    pub(super) fn reset(&mut self, dist: &TokenDist, capacity: usize, max_depth: Option<u32>) {
        let ranks = dist.len().min(capacity);
        self.ranks.clear();
        self.ranks.extend(
            dist.log_probs()[..ranks]
                .iter()
                .zip(&dist.probs()[..ranks])
                .zip(&dist.tokens()[..ranks])
                .map(|((&logp, &prob), &token)| Rank {
                    logp,
                    prob,
                    token,
                    head: 0,
                }),
        );
        // Room for the root; `commit_while` makes room for the nodes it may
        // add, so that a builder whose trees stay small (the batch
        // allocator's 256 per step, each with capacity N) stays small.
        if self.parents.is_empty() {
            self.parents.push(Parent::default());
        }
        self.parents[0] = Parent {
            key: 0.0,
            reach: 1.0,
            node: ROOT,
            depth: 0,
        };
        self.parent_count = 1;
        if self.heap.len() < ranks {
            self.heap.resize(ranks, Head::default());
        }
        self.heap[0] = Head {
            order: order_bits(self.ranks[0].logp),
            rank: 0,
        };
        self.heap_len = 1;
        self.max_depth = max_depth.unwrap_or(u32::MAX);
        self.opt_sum = 0.0;
    }

    /// The key of the best candidate, if any is left.
    #[inline]
    pub(super) fn best_key(&self) -> Option<f64> {
        self.heap[..self.heap_len].first().map(|h| key_of(h.order))
    }

    /// Commits candidates, best first, until `tree` holds `capacity` nodes,
    /// the best key is below `log_floor` or the candidates run out; each
    /// node's path probability extends the OPT curve. The nodes are written
    /// through pre-sized slices (no push per field, issue 16).
    pub(super) fn fill(
        &mut self,
        tree: &mut DraftTree,
        opt_curve: &mut Vec<f64>,
        capacity: usize,
        log_floor: f64,
    ) {
        let start = tree.len();
        if start >= capacity {
            return;
        }
        let room = capacity - start;
        opt_curve.resize(capacity, 0.0);
        let opt = &mut opt_curve[start..];
        let cols = tree.grow(room);
        let (parent, token, depth, key) = (
            &mut cols.parent[..room],
            &mut cols.token[..room],
            &mut cols.depth[..room],
            &mut cols.path_logprob[..room],
        );
        let written = self.commit_while(start, room, log_floor, |i, node| {
            parent[i] = node.parent;
            token[i] = node.token;
            depth[i] = node.depth;
            key[i] = node.key;
            opt[i] = node.opt;
        });
        tree.truncate(start + written);
        opt_curve.truncate(start + written);
    }

    /// Commits the best candidate, if any (one step of the batch allocator).
    pub(super) fn step(&mut self, tree: &mut DraftTree, opt_curve: &mut Vec<f64>) {
        self.commit_while(tree.len(), 1, f64::NEG_INFINITY, |_, node| {
            tree.push_unchecked(node.parent, node.token, node.depth, node.key);
            opt_curve.push(node.opt);
        });
    }

    /// Takes up to `limit` candidates off the queues, best first, as tree
    /// nodes `start..`, handing each to `sink` with its offset; stops early
    /// when none is left or the best key is below `log_floor`. Returns how
    /// many it took. The state lives in locals for the loop (spilled
    /// fields around a call cost a third of the instructions otherwise).
    #[inline(always)]
    fn commit_while(
        &mut self,
        start: usize,
        limit: usize,
        log_floor: f64,
        mut sink: impl FnMut(usize, NewNode),
    ) -> usize {
        let room = self.parent_count + limit;
        if self.parents.len() < room {
            self.parents.resize(room, Parent::default());
        }
        let ranks = &mut self.ranks[..];
        let parents = &mut self.parents[..];
        let mut heap = Heap {
            items: &mut self.heap[..],
            len: self.heap_len,
        };
        let (mut parent_count, mut opt_sum, max_depth) =
            (self.parent_count, self.opt_sum, self.max_depth);
        let mut taken = 0;
        while taken < limit {
            let Some(Head { order, rank }) = heap.top() else {
                break;
            };
            let key = key_of(order);
            if key < log_floor {
                break;
            }
            let r = rank as usize;
            let Rank {
                prob, token, head, ..
            } = ranks[r];
            let at = head as usize;
            let from = parents[at];
            let child = Parent {
                key,
                reach: from.reach * prob,
                node: (start + taken) as u32,
                depth: from.depth + 1,
            };
            opt_sum += child.reach;
            sink(
                taken,
                NewNode {
                    parent: from.node,
                    token,
                    depth: child.depth,
                    key,
                    opt: opt_sum,
                },
            );
            taken += 1;
            let before = parent_count;
            if child.depth < max_depth {
                parents[before] = child;
                parent_count += 1;
            }
            // Rank r's cursor moves past `at`: it takes its next parent or
            // leaves the heap.
            let next = at + 1;
            ranks[r].head = next as u32;
            let still_queued = match r.checked_sub(1) {
                None => next < parent_count,
                Some(better) => next < ranks[better].head as usize,
            };
            if still_queued {
                heap.replace_top(order_bits(parents[next].key + ranks[r].logp));
            } else {
                heap.pop();
            }
            // Rank r + 1 enters if it was waiting on the same parent.
            if let Some(waiting) = ranks.get(r + 1) {
                if waiting.head as usize == at {
                    heap.push(order_bits(from.key + waiting.logp), r + 1);
                }
            }
            // Rank 0's queue had run dry: the new parent refills it.
            if r != 0 && ranks[0].head as usize == before && parent_count > before {
                heap.push(order_bits(key + ranks[0].logp), 0);
            }
        }
        self.heap_len = heap.len;
        (self.parent_count, self.opt_sum) = (parent_count, opt_sum);
        taken
    }
}

/// A binary max-heap of queue heads over a borrowed buffer (`items[..len]`
/// in use), so that the build loop keeps its length in a register.
struct Heap<'h> {
    items: &'h mut [Head],
    len: usize,
}

impl Heap<'_> {
    #[inline(always)]
    fn top(&self) -> Option<Head> {
        (self.len > 0).then(|| self.items[0])
    }

    /// Adds a head and sifts it up. The buffer holds one slot per rank and
    /// each rank is in the heap at most once, so it never overflows.
    #[inline(always)]
    fn push(&mut self, order: u64, r: usize) {
        let mut i = self.len;
        self.len += 1;
        while i > 0 {
            let up = (i - 1) / 2;
            if self.items[up].order >= order {
                break;
            }
            self.items[i] = self.items[up];
            i = up;
        }
        self.items[i] = Head {
            order,
            rank: r as u32,
        };
    }

    /// Gives the top head a new (never larger) key and sifts it down.
    #[inline(always)]
    fn replace_top(&mut self, order: u64) {
        let rank = self.items[0].rank;
        self.sift_down(Head { order, rank });
    }

    /// Removes the top head.
    #[inline(always)]
    fn pop(&mut self) {
        self.len -= 1;
        if self.len > 0 {
            self.sift_down(self.items[self.len]);
        }
    }

    /// Places `item` at the top and sifts it down to its place. (Bottom-up,
    /// to a leaf and back up, measured worse: 197 -> 239 instructions per
    /// node at P = 1024, as re-keyed heads often stay near the top.)
    #[inline(always)]
    fn sift_down(&mut self, item: Head) {
        let heap = &mut self.items[..self.len];
        let len = heap.len();
        let mut i = 0;
        loop {
            let left = 2 * i + 1;
            if left >= len {
                break;
            }
            let right = left + 1;
            let child = if right < len && heap[right].order > heap[left].order {
                right
            } else {
                left
            };
            if heap[child].order <= item.order {
                break;
            }
            heap[i] = heap[child];
            i = child;
        }
        heap[i] = item;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BinaryHeap;

    proptest! {
        /// The heap yields the same tops as std's `BinaryHeap` under pushes,
        /// re-keyings of the top to a lower key and pops, ties included.
        #[test]
        fn heap_matches_std(ops in prop::collection::vec((0u8..3, 0u64..16), 1..200)) {
            let mut buf = vec![Head::default(); ops.len()];
            let mut heap = Heap { items: &mut buf, len: 0 };
            let mut reference = BinaryHeap::new();
            for (op, order) in ops {
                match (op, heap.top()) {
                    (0, _) | (_, None) => {
                        heap.push(order, 0);
                        reference.push(order);
                    }
                    (1, Some(top)) => {
                        let lower = top.order.min(order);
                        heap.replace_top(lower);
                        reference.pop();
                        reference.push(lower);
                    }
                    _ => {
                        heap.pop();
                        reference.pop();
                    }
                }
                prop_assert_eq!(heap.top().map(|h| h.order), reference.peek().copied());
                prop_assert_eq!(heap.len, reference.len());
            }
        }
    }
}
