//! The best-first builder: the `P` most probable prefixes (docs/THEORY.md section 3).
//!
//! Because `pi(child) <= pi(parent)`, the `P` largest path probabilities
//! already form a prefix-closed set, so the optimal tree is "take the `P` most
//! probable prefixes". The builder finds them best-first, with a max-heap
//! and a cursor:
//!
//! - `candidates` ([`frontier`]): nodes whose key `ln pi` is known, each the
//!   `i`-th child of an expanded node. Popping one adds it to the tree and
//!   pushes its next sibling (the sibling trick: a parent's children enter
//!   one at a time, in order).
//! - the unexpanded nodes: tree nodes whose distribution has not been asked
//!   for yet, keyed by their own `ln pi`, an upper bound on every child's
//!   key. Nodes enter the tree in non-increasing key order, so the best
//!   unexpanded node is the oldest, and a cursor into the tree finds it.
//!
//! A candidate is committed when its key is at least the best unexpanded key;
//! otherwise the best unexpanded node is expanded first. So the model is asked
//! for a node's distribution only when one of its children could be next
//! (lazy expansion), and a server can batch the `W` best pending expansions
//! ([`IncrementalBuild`]). Context-free models take their own path
//! (`context_free.rs`): one shared distribution, so each rank's pending
//! children are a cursor into the committed nodes and a small heap holds
//! the ranks' heads.
//!
//! Cost: O(P log P) time for P nodes plus the model calls; space O(P + sum of
//! the expanded distributions' lengths). A reused [`TreeBuilder`] keeps every
//! buffer, so building trees no larger than before allocates nothing.
//!
//! # Ties
//!
//! Nodes whose path log-probabilities (summed root to leaf, as the builder
//! computes them) are exactly equal are *tied*. Call **canonical order**:
//! path log-probability descending, then depth ascending, then rank path
//! (the ranks of the tokens along the path) lexicographically ascending;
//! parents always precede their children in it. The builder guarantees
//! less: among exactly tied nodes, which ones are included at the boundary
//! and their order in the tree are deterministic but unspecified, while the
//! path log-probabilities in output order, hence `E[X]` and the OPT curve,
//! are exactly those of the canonical first `P`. Without ties the nodes and
//! their order are fully determined (tests/core_properties.rs checks both
//! against a brute-force canonical order). Following the canonical order
//! exactly would need a rank-path comparison on every tied heap comparison.
//!
//! Files: `frontier.rs` (heap keys and the general path's candidate heap),
//! `context_free.rs` (the context-free path), `builder.rs` ([`TreeBuilder`]),
//! `incremental.rs` ([`IncrementalBuild`]), `path_cache.rs` (the path handed
//! to the model, rebuilt from the last one), `batch.rs` (`build_batch`, feature
//! `rayon`).

#[cfg(feature = "rayon")]
mod batch;
mod builder;
mod context_free;
pub(crate) mod frontier;
mod incremental;
mod path_cache;

#[cfg(feature = "rayon")]
pub use batch::build_batch;
pub use builder::TreeBuilder;
pub(crate) use frontier::Frontier;
pub use incremental::IncrementalBuild;

use crate::error::{Error, Result};

/// The largest capacity any builder accepts (2^20 draft tokens).
///
/// Memory is O(P) for a context-free model and O(P k) for one whose `k`-token
/// distributions depend on the path (each expanded node's distribution is
/// copied, 12 bytes per token: token and log-probability): at this maximum,
/// measured peak RSS is 55 MiB and 463 MiB with `k = 32`
/// (`cargo run --release --example max_capacity`; docs/limits.md).
pub const MAX_CAPACITY: usize = 1 << 20;

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

/// The frontier heaps the builder was measured against, for
/// `benches/core.rs` only (feature `frontier-comparison`; not part of the API).
#[cfg(feature = "frontier-comparison")]
#[doc(hidden)]
pub mod frontier_comparison {
    pub use super::frontier::{
        BinaryFrontier, Candidate, Child, Frontier, LogKey, PriorityQueueFrontier,
        QuaternaryFrontier, Scored,
    };
}
