//! Certificates: upper bounds on `E[X]` valid for every tree with `|T| <= P`
//! (docs/THEORY.md section 4).
//!
//! - [`dual_bound`]: the exact dual certificate `U(lambda)` of section 4a,
//!   enumerated by depth-first search with pruning (not the builder's heap, so
//!   that a check is a second, independent computation); [`optimal_value`]
//!   finds `lambda*` and `OPT(P)` with the same enumeration.
//! - [`renewal_bound`] (B1), [`renewal_bound_optimized`] (B2) and
//!   [`paper_bound`] (section 4b and 4c), closed forms in the entropy `mu` and
//!   the second log-moment `mu2`, all capped by the trivial bounds `P` and `D`.
//! - [`Certificate`] and [`check`]: the whole chain of section 4c for one tree,
//!   recomputed from the verifier alone, with a verdict.
//! - [`certify_best_first`]: an optimality certificate for a best-first
//!   tree under its drafter (prefix-closed, `min pi` over the tree `>=`
//!   `max pi` over its boundary), independent of the builder.
//! - [`trace`]: the speed of light estimated from a verifier trace
//!   (section 4d), with no i.i.d. assumption.

mod certificate;
mod closed_form;
mod dual;
mod optimality;
pub mod trace;

pub use certificate::{check, check_with, Certificate, ChainLink, CheckOptions, CHAIN_TOLERANCE};
pub use closed_form::{
    paper_bound, renewal_bound, renewal_bound_optimized, trivial_cap, BoundValue, Moments,
};
pub use dual::{
    dual_bound, dual_bound_ln, optimal_value, DualOptions, DualValue, OptimalValue,
    DEFAULT_NODE_LIMIT,
};
pub use optimality::{certify_best_first, CheckReport, Optimality, OPTIMALITY_TOLERANCE};
