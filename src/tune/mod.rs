//! Offline tree-policy tuning from paired traces.
//!
//! A team records, for every position `i` of some text and every draft depth
//! `d`, the drafter's top-k list for the token `d` steps ahead (drafted along
//! the verifier's own continuation) and the token the verifier produced
//! there. From that *paired trace* this module
//!
//! 1. reads and validates it in streaming fashion (the paired trace lives
//!    in `tune/paired/`, apart from the verifier trace of [`crate::trace`]) ([`TraceReader`],
//!    [`validate`]): every bad line is reported by its 1-based number;
//! 2. estimates the acceptance matrix `a[d][k]` with Wilson intervals
//!    ([`AcceptanceEstimator`]) in O(depth x top-k) memory;
//! 3. chooses the best static tree per capacity, best-first over the
//!    per-depth positional model ([`crate::PositionalByDepth`], `docs/THEORY.md`
//!    section 3), and the capacity and depth with the solver (`docs/THEORY.md` section 5);
//! 4. measures the chosen trees and the baselines (chain, k-ary,
//!    EAGLE-style dynamic) on held-out sequences ([`tune`]), next to the
//!    trace speed of light (`docs/THEORY.md` section 4d) when `target_logprob` is recorded.
//!
//! # Format and ordering
//!
//! JSON Lines, one [`TraceRecord`] per `(position, depth)`. Records must be
//! sorted by `(seq, pos)`, each pair once, and the records of one pair must
//! be contiguous with depths `1, 2, 3, ...`. This lets a trace of any
//! length be processed one group at a time, and the reader proves it as it
//! goes (an out-of-order record is an error naming its line).
//!
//! ```
//! use speclight::tune::{tune, Split, SyntheticTrace, TuneConfig};
//! let synth = SyntheticTrace::new(vec![vec![0.6, 0.15, 0.05], vec![0.5, 0.2, 0.1]], 4, 4)?;
//! let mut trace = Vec::new();
//! synth.write_jsonl(&mut trace, 200, 20, 1)?;
//! let config = TuneConfig { capacities: vec![4, 16], split: Split::new(0.3, 0)?, ..Default::default() };
//! let report = tune(|| Ok(&trace[..]), &config)?;
//! let best = &report.results[1].policies[0];
//! let (pred, meas) = (best.predicted.unwrap(), best.measured.unwrap());
//! assert!(pred.heldout_interval.contains(meas.accepted.mean));
//! # Ok::<(), speclight::Error>(())
//! ```

mod acceptance;
mod config;
mod estimation;
mod measurement;
mod paired;
mod policy;
mod prediction;
mod report;
mod selection;
mod speed_of_light;
mod tuner;

pub use acceptance::{wilson_interval, AcceptanceEstimator, AcceptanceMatrix, Z95};
pub use config::{Split, TuneConfig, MAX_TUNE_CAPACITY};
pub use measurement::Measurement;
pub use paired::{
    validate, write_paired_sequence, Group, SequenceShape, SyntheticTrace, TraceReader,
    TraceRecord, ValidationReport, DEFAULT_MAX_LINE_BYTES, MAX_SEQUENCE_POSITIONS, MAX_TOP_K,
    MAX_TRACE_DEPTH,
};
pub use policy::{chain_tree, kary_tree, DynamicBestFirst, EagleTree, Policy, RankTree};
pub use prediction::{predict, Curve, Interval, Prediction};
pub use report::{
    report_rank_acceptance, CapacityResult, ChosenTree, DeployedReport, PolicyResult, TuneReport,
    Versus,
};
pub use selection::{CapacityChoice, SpeedupCell};
pub use speed_of_light::MAX_SPEED_OF_LIGHT_TOKENS;
pub use tuner::tune;
