#![doc = include_str!("manual.md")]
#![deny(missing_docs)]
#![forbid(unsafe_code)]

// Namespaces that help: each groups one concept a user looks for by name.
pub mod bound;
pub mod capacity;
pub mod deploy;
pub mod format;
#[cfg(feature = "serde")]
pub mod metrics;
pub mod model;
pub mod serve;
pub mod stats;
pub mod trace;
#[cfg(feature = "serde")]
pub mod tune;

// Implementation modules: private, their public items re-exported below.
mod build;
mod dist;
mod error;
mod eval;
mod simulate;
mod spec;
mod tree;

// CLI and demo support, outside the documented surface.
#[doc(hidden)]
pub mod experiment;
#[doc(hidden)]
pub mod input;

pub use bound::{check, BoundValue, Certificate};
#[cfg(feature = "rayon")]
pub use build::build_batch;
#[cfg(feature = "frontier-comparison")]
#[doc(hidden)]
pub use build::frontier_comparison;
pub use build::{IncrementalBuild, TreeBuilder, MAX_CAPACITY};
pub use dist::{TokenDist, TokenId, SUM_TOLERANCE};
pub use error::{Error, Result};
pub use eval::{evaluate, monte_carlo, Evaluation, Evaluator, MonteCarlo};
pub use input::MAX_INPUT_BYTES;
pub use model::{Iid, NextTokenModel, NgramLm, NgramModel, Positional, PositionalByDepth};
pub use serve::{Accepted, VerifierInputs};
pub use simulate::{sample_text, simulate, verify_walk, DpAgreement, SimConfig, Simulation};
pub use spec::{parse_dist, MAX_SPEC_TOKENS};
pub use tree::{walk, DraftTree, Node, WalkEnd};

/// The README's examples, compiled and run as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;

/// The project's long-form documentation as rustdoc pages: the theory the code
/// implements, the design and conventions, and the module map.
pub mod documentation {
    /// The mathematics the library implements (`docs/THEORY.md`): doc
    /// comments cite its sections.
    #[doc = include_str!("../docs/THEORY.md")]
    pub mod theory {}

    /// Design and conventions (`docs/DESIGN.md`).
    #[doc = include_str!("../docs/DESIGN.md")]
    pub mod design {}

    /// The module map (`docs/ARCHITECTURE.md`).
    #[doc = include_str!("../docs/ARCHITECTURE.md")]
    pub mod architecture {}

    /// The guides in `docs/`, compiled and run as doc tests so their code
    /// stays true (not part of the rendered documentation).
    #[cfg(doctest)]
    mod guides {
        #[doc = include_str!("../docs/serving.md")]
        struct Serving;
        #[doc = include_str!("../docs/tuning.md")]
        struct Tuning;
        #[doc = include_str!("../docs/capacity.md")]
        struct Capacity;
        #[doc = include_str!("../docs/speed-of-light.md")]
        struct SpeedOfLight;
        #[doc = include_str!("../docs/workloads.md")]
        struct Workloads;
        #[doc = include_str!("../docs/benchmarks.md")]
        struct Benchmarks;
        #[doc = include_str!("../docs/limits.md")]
        struct Limits;
        #[doc = include_str!("../docs/load.md")]
        struct Load;
        #[doc = include_str!("../docs/deploy.md")]
        struct Deploy;
        #[doc = include_str!("../docs/certificates.md")]
        struct Certificates;
    }
}
