//! Server integration: the verifier's inputs from a [`DraftTree`](crate::DraftTree), and the
//! verification walk over its outputs (docs/THEORY.md section 1).
//!
//! # Tree positions
//!
//! Every per-position array here has `P + 1` entries for a tree of `P` draft
//! tokens: **tree position 0 is the root** (the last accepted token, which
//! ends the context), and node `i` of the [`DraftTree`](crate::DraftTree) arena is tree position
//! `i + 1`. This is the layout Medusa, EAGLE and SGLang feed their verifier:
//! the root token is verified together with the drafts, because the
//! verifier's output at the root is its next token after the context. A
//! server whose root is already in its KV cache drops row and column 0.
//!
//! For a context of `L` tokens (the root included, at position `L - 1`), the
//! position id of a tree position is `L + depth - 1` (the root has depth 0):
//! RoPE positions follow depth, not the index.
//!
//! # One decoding step
//!
//! ```
//! use speclight::serve::{Accepted, VerifierInputs};
//! use speclight::{Iid, TokenDist, TreeBuilder};
//!
//! // Once per server (or per request): reusable buffers. Steady-state steps allocate nothing.
//! let mut builder = TreeBuilder::new(8)?;
//! let mut inputs = VerifierInputs::new();
//! let mut accepted = Accepted::new();
//!
//! // 1. Draft distributions in: here a drafter whose top-3 after every prefix is
//! //    tokens 17, 4, 99 (a server uses `builder.begin(..)` and batches draft passes).
//! let mut drafter = Iid::new(TokenDist::from_token_probs(&[17, 4, 99], &[0.6, 0.3, 0.1])?);
//! let tree = builder.build(&mut drafter)?;
//!
//! // 2. Verifier inputs out, for a context of 5 tokens that ends in token 42 (the root).
//! inputs.fill(tree, 5, 42)?;
//! let n = inputs.num_positions(); // root + 8 drafts
//! assert_eq!(n, 9);
//! assert_eq!(inputs.tokens()[..2], [42, 17]); // root first, then the drafts in arena order
//! assert_eq!(inputs.positions()[..2], [4, 5]); // L + depth - 1
//! let mut bias = vec![0f32; n * n]; // a server writes straight into its pinned buffer
//! inputs.write_mask_bias_into(&mut bias)?;
//! assert_eq!(bias[1], f32::NEG_INFINITY); // the root does not see node 0
//! assert_eq!(bias[n], 0.0); // node 0 sees the root
//!
//! // 3. Verifier outputs in: its token after every tree position (argmax under
//! //    greedy decoding). This fake verifier says 17 twice, then 5.
//! let chosen: Vec<u32> = inputs.depths().iter().map(|&d| if d < 2 { 17 } else { 5 }).collect();
//! inputs.walk_chosen(&chosen, &mut accepted)?;
//!
//! // 4. Accepted tokens out: two drafts and the verifier's bonus token.
//! assert_eq!(accepted.tokens(), &[17, 17]);
//! assert_eq!(accepted.bonus(), 5);
//! let kept: Vec<usize> = accepted.tree_positions().collect(); // KV-cache rows to keep
//! assert_eq!(kept, vec![0, 1, 2]);
//! # Ok::<(), speclight::Error>(())
//! ```
//!
//! # Files
//!
//! `inputs.rs` ([`VerifierInputs`]: tokens, positions, parents, retrieve
//! indices, child links, and the one routine that copies any of them into a
//! caller's buffer), `mask.rs` (the tree attention mask in its three forms),
//! `walk.rs` (the verification walks and their result, [`Accepted`]).

mod inputs;
mod mask;
mod walk;

pub use inputs::VerifierInputs;
pub use walk::Accepted;

/// The index meaning "none": the root's parent, a missing child or sibling,
/// and the padding of retrieve indices.
pub const NONE: i64 = -1;

/// The largest tree [`VerifierInputs::fill`] accepts, 2^14 draft tokens: the
/// attention mask is quadratic (the packed mask of this size is 32 MiB, the
/// `f32` bias 1 GiB), far beyond what a verifier checks in one pass.
pub const MAX_TREE_NODES: usize = 1 << 14;

#[cfg(test)]
mod tests;
