//! The *paired* trace: for every position of a text and every draft depth,
//! the drafter's top-k list and the token the verifier produced there
//! (`docs/THEORY.md` section 1 walks a tree along that token). It is a
//! different file from the verifier trace of [`crate::trace`], which holds
//! the verifier's tokens and log-probabilities alone.
//!
//! - [`record`]: one JSON line, [`TraceRecord`], and its limits;
//! - [`reader`]: streaming, bounded reading and [`validate`];
//! - [`writer`]: a paired trace from a verifier and a drafter model;
//! - [`synth`]: a paired trace from a known acceptance process.

pub(super) mod reader;
pub(super) mod record;
pub(super) mod synth;
pub(super) mod writer;

pub use reader::{validate, Group, TraceReader, ValidationReport, DEFAULT_MAX_LINE_BYTES};
pub use record::{TraceRecord, MAX_TOP_K, MAX_TRACE_DEPTH};
pub use synth::SyntheticTrace;
pub use writer::{write_paired_sequence, SequenceShape, MAX_SEQUENCE_POSITIONS};
