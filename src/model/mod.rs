//! Next-token models: the drafter's `q` and the verifier's `p` of docs/THEORY.md
//! section 1.
//!
//! A model answers one question: the distribution of the next token after a
//! path of draft tokens below the current context. The builder asks it only
//! for nodes it must expand (docs/THEORY.md section 3), the evaluator once per
//! internal node (section 2).

mod context;
mod iid;
pub mod ngram;
mod positional;
mod positional_by_depth;
mod random_env;

pub use context::ContextModel;
pub use iid::Iid;
#[cfg(test)]
pub(crate) use iid::Opaque;
pub use ngram::{NgramLm, NgramModel};
pub use positional::Positional;
pub use positional_by_depth::PositionalByDepth;
pub use random_env::{EnvFamily, EnvMoments, RandomEnv, MAX_ENV_TOKENS};

use crate::dist::{TokenDist, TokenId};
use crate::error::Result;

/// A next-token distribution after any path below the current context.
///
/// # Examples
///
/// ```
/// use speclight::{Iid, NextTokenModel, TokenDist};
/// let mut m = Iid::new(TokenDist::from_probs(&[0.6, 0.4])?);
/// assert_eq!(m.next(&[1, 0, 1])?.probs()[0], 0.6);
/// # Ok::<(), speclight::Error>(())
/// ```
pub trait NextTokenModel {
    /// The distribution of the token after `path` (token ids from the root's
    /// child down; empty for the root itself). The reference is valid until
    /// the next call.
    ///
    /// # Errors
    ///
    /// Model-specific, typically [`crate::Error::Model`].
    fn next(&mut self, path: &[TokenId]) -> Result<&TokenDist>;

    /// `true` only if [`NextTokenModel::next`] returns the same distribution
    /// for every path. Builders and evaluators then ask once per call instead
    /// of once per node; a wrong `true` gives wrong trees, so the default is
    /// `false`.
    fn is_context_free(&self) -> bool {
        false
    }
}

impl<M: NextTokenModel + ?Sized> NextTokenModel for &mut M {
    fn next(&mut self, path: &[TokenId]) -> Result<&TokenDist> {
        (**self).next(path)
    }

    fn is_context_free(&self) -> bool {
        (**self).is_context_free()
    }
}

impl<M: NextTokenModel + ?Sized> NextTokenModel for Box<M> {
    fn next(&mut self, path: &[TokenId]) -> Result<&TokenDist> {
        (**self).next(path)
    }

    fn is_context_free(&self) -> bool {
        (**self).is_context_free()
    }
}
