//! # speclight
//!
//! Provably optimal draft trees for speculative decoding, evaluated exactly
//! and certified against the speed of light.
//!
//! A drafter proposes a tree of candidate tokens; the verifier checks up to
//! `P` of them in one forward pass and accepts the longest path that matches
//! its own samples (THEORY.md section 1). With `pi(v)` the verifier's
//! probability of reaching node `v`:
//!
//! - `E[X] = sum_v pi(v)` is the expected number of accepted tokens
//!   ([`evaluate`], section 2);
//! - the tree of the `P` largest `pi` is optimal, found best-first with a heap
//!   ([`TreeBuilder`], section 3), lazily, without allocating when reused.
//!
//! ```
//! use speclight::{evaluate, spec, Iid, TreeBuilder};
//! let mut drafter = Iid::new(spec::parse_dist("0.5,0.3,0.2")?);
//! let mut builder = TreeBuilder::new(1024)?;
//! let tree = builder.build(&mut drafter)?;
//! let value = evaluate(tree, &mut drafter)?;
//! assert!((value.expected_accepted - 6.32).abs() < 0.01);
//! # Ok::<(), speclight::Error>(())
//! ```
#![deny(missing_docs)]

pub mod bound;
pub mod build;
pub mod capacity;
#[cfg(feature = "corpora")]
pub mod corpus;
pub mod dist;
pub mod error;
pub mod eval;
#[cfg(feature = "serde")]
pub mod format;
pub mod input;
pub mod model;
pub mod serve;
pub mod simulate;
pub mod spec;
pub mod stats;
pub mod trace;
pub mod trace_bound;
#[cfg(feature = "serde")]
pub mod trace_io;
pub mod tree;
#[cfg(feature = "serde")]
pub mod tune;
pub mod workload;

pub use bound::{check, BoundValue, Certificate};
pub use build::{IncrementalBuild, TreeBuilder, MAX_CAPACITY};
pub use dist::{TokenDist, TokenId};
pub use error::{Error, Result};
pub use eval::{evaluate, monte_carlo, Evaluation, Evaluator, MonteCarlo};
pub use model::{Iid, NextTokenModel, NgramLm, NgramModel, Positional, PositionalByDepth};
pub use serve::{Accepted, VerifierInputs};
pub use tree::{DraftTree, Node};

/// The README's examples, compiled and run as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
