//! Pass 1 of [`super::tune`]: the acceptance matrix estimated on the
//! training split, streaming.

use super::acceptance::AcceptanceEstimator;
use super::config::{TuneConfig, BOOTSTRAP_SEED};
use super::paired::{Group, TraceReader};
use crate::error::{Error, Result};
use std::io::BufRead;

/// What the training pass found.
pub(super) struct Training {
    /// The acceptance estimator fed with every training group (and its
    /// bootstrap replicates).
    pub estimator: AcceptanceEstimator,
    /// Records carrying `target_logprob`, over both splits.
    pub with_logprob: u64,
}

/// Reads the whole trace and feeds the training groups to an
/// [`AcceptanceEstimator`]. Time O(records + groups x bootstrap x depth);
/// memory O(depth x top-k x bootstrap), one group buffered.
///
/// # Errors
///
/// The reader's (the first bad line stops), and
/// [`Error::InvalidArgument`] when no group trains.
pub(super) fn estimate<R: BufRead>(input: R, config: &TuneConfig) -> Result<Training> {
    let mut estimator = AcceptanceEstimator::new().with_bootstrap(config.bootstrap, BOOTSTRAP_SEED);
    let mut group = Group::default();
    let mut with_logprob = 0u64;
    let mut reader = TraceReader::new(input);
    while reader.next_group(&mut group)? {
        with_logprob += group.target_logprobs().map_or(0, |v| v.len() as u64);
        if !config.split.is_heldout(group.seq()) {
            estimator.observe(&group);
        }
    }
    if estimator.groups() == 0 {
        return Err(Error::InvalidArgument(
            "the training split is empty: the trace has too few sequences for this hold-out fraction".into(),
        ));
    }
    Ok(Training {
        estimator,
        with_logprob,
    })
}
