//! Trees that servers can deploy: the best tree under each server's
//! constraint, and the configuration the server reads (the mathematics:
//! docs/THEORY.md section 6).
//!
//! speclight's unconstrained trees (docs/THEORY.md section 3) are optimal, but a
//! server drafts only trees of its own shape:
//!
//! - **vLLM** drafts a `speculative_token_tree` level by level, the same
//!   number `c_d` of top-ranked children below *every* node of level
//!   `d - 1`: [`best_level_uniform`] finds the best such tree exactly;
//! - **Medusa, EAGLE** (and TensorRT-LLM's `eagle_choices`) take each
//!   node's candidates from a fixed top-10: [`best_rank_limited`] is the
//!   best tree with no child of rank `>= K`;
//! - **SGLang** takes no tree, only `(topk, num_steps, num_draft_tokens)`
//!   for its beam-built tree: [`sglang_tree`] builds the tree it drafts,
//!   [`sglang_value`] gives its exact `E[X]`, [`best_sglang`] the best
//!   triple for a capacity.
//!
//! Every result carries its value next to the unconstrained optimum
//! ([`Constrained`]), so the cost of a constraint is one subtraction.
//! Per-depth acceptance by drafter rank ([`RankAcceptance`]) is what
//! `speclight tune` estimates and what a positional model is; the same
//! searches over any [`crate::NextTokenModel`] are
//! [`best_level_uniform_model`] and [`best_rank_limited`].

mod level_uniform;
mod rank_acceptance;
mod rank_limited;
#[cfg(feature = "serde")]
mod servers;
mod sglang;

pub use level_uniform::{
    best_level_uniform, best_level_uniform_model, level_uniform_tree, LevelUniform,
    MAX_LEVEL_UNIFORM_CAPACITY, MAX_LEVEL_UNIFORM_MODEL_CAPACITY,
};
pub use rank_acceptance::RankAcceptance;
pub use rank_limited::{best_rank_limited, best_rank_limited_model, TopK, DEFAULT_MAX_RANK};
#[cfg(feature = "serde")]
pub use servers::{deploy, deploy_by_speed, Deployment, Server};
pub use sglang::{
    best_sglang, best_sglang_by_speed, sglang_tree, sglang_value, SglangChoice, SglangConfig,
    MAX_SGLANG_STEPS, MAX_SGLANG_TOPK,
};

use crate::tree::DraftTree;

/// A tree chosen under a server's constraint, valued next to the
/// unconstrained optimum of the same capacity and depth limit.
#[derive(Debug, Clone, PartialEq)]
pub struct Constrained {
    /// The constrained tree (rank paths: token = rank when built from a
    /// [`RankAcceptance`]).
    pub tree: DraftTree,
    /// Its `E[X]` (docs/THEORY.md section 2).
    pub expected_accepted: f64,
    /// `E[X]` of the unconstrained best-first tree (docs/THEORY.md section 3).
    pub unconstrained_expected_accepted: f64,
}

impl Constrained {
    /// `1 - E[X] / E[X]_unconstrained`: the fraction of accepted tokens the
    /// constraint costs (0 when the unconstrained value is 0).
    ///
    /// # Examples
    ///
    /// ```
    /// use speclight::deploy::Constrained;
    /// let c = Constrained { tree: Default::default(), expected_accepted: 1.5,
    ///                       unconstrained_expected_accepted: 2.0 };
    /// assert_eq!(c.constraint_cost(), 0.25);
    /// ```
    pub fn constraint_cost(&self) -> f64 {
        if self.unconstrained_expected_accepted > 0.0 {
            1.0 - self.expected_accepted / self.unconstrained_expected_accepted
        } else {
            0.0
        }
    }
}

/// The tokens on the path to `parent` (the root when `None`) into `path`,
/// and the drafter's log-probability of that path: what a level-by-level
/// tree writer needs before asking the model for `parent`'s children.
/// O(depth).
fn prefix(tree: &crate::DraftTree, parent: Option<usize>, path: &mut Vec<crate::TokenId>) -> f64 {
    match parent {
        Some(p) => {
            tree.path_tokens(p, path);
            tree.path_logprob(p)
        }
        None => {
            path.clear();
            0.0
        }
    }
}
