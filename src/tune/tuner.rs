//! [`tune`]: the tuning pipeline as a sequence of named steps, each in its
//! own module: configuration, estimation (pass 1 over the training split),
//! selection and prediction on the estimated model, measurement (pass 2
//! over the held-out split), and the report.

use super::config::TuneConfig;
use super::estimation::estimate;
use super::measurement::{measure, DynamicPolicies};
use super::policy::{DynamicBestFirst, EagleTree};
use super::prediction::curves;
use super::report::{capacity_results, chosen_tree, Estimates, TuneReport};
use super::selection::{capacity_slots, choose_capacity, policy_tracks};
use crate::error::Result;
use std::io::BufRead;

/// Tunes a static tree policy from a paired trace (see the module docs for
/// the format and ordering). `open` is called twice and must return the
/// same trace each time: pass 1 estimates the acceptance matrix on the
/// training sequences, pass 2 walks every policy's tree on the held-out
/// sequences. Memory is O(depth x top-k + policies x capacity), whatever
/// the number of records.
///
/// Steps: (1) conditional acceptance `a[d][k]` with Wilson intervals
/// ([`super::AcceptanceEstimator`]); (2) the per-depth positional model and, for
/// each capacity, the best-first tree over it (`docs/THEORY.md` section 3; the
/// optimal static tree for the model); with a latency model the capacity
/// solver (section 5) picks the capacity and depth of the chosen tree;
/// (3) on held-out groups, accepted tokens of best-first, chain, k-ary and
/// EAGLE-style trees at equal capacity, against the predictions.
///
/// Time: O(records) for the passes plus O(groups x policies x depth).
///
/// # Errors
///
/// Reader errors (the first bad line stops: run [`super::validate`] to see
/// them all); [`crate::Error::InvalidArgument`] for an empty capacity list, a
/// capacity above [`super::MAX_TUNE_CAPACITY`], no training data, no match
/// at depth 1, or no held-out group to measure (none held out, or all
/// recording fewer depths than the deepest tree); [`crate::Error::ZeroDepth`] for
/// `max_depth: Some(0)`; and errors of the model, builder or solver.
pub fn tune<R, F>(mut open: F, config: &TuneConfig) -> Result<TuneReport>
where
    R: BufRead,
    F: FnMut() -> Result<R>,
{
    let requested = config.checked_capacities()?;
    let max_capacity = requested.iter().copied().max().unwrap_or(1);

    let training = estimate(open()?, config)?;
    let acceptance = training.estimator.conditional().clone();
    let mut model = acceptance.to_model()?;
    let max_depth = config.depth_limit(acceptance.usable_depth() as u32);

    let choice = choose_capacity(config.cost.as_ref(), &mut model, max_capacity, max_depth)?;
    let slots = capacity_slots(requested, choice.as_ref(), max_depth);
    let mut dynamic = DynamicPolicies {
        best_first: DynamicBestFirst::new(max_capacity, max_depth)?,
        eagle: EagleTree::new(config.eagle_top_k, config.eagle_depth.min(max_depth))?,
    };
    let tracks = policy_tracks(
        &slots,
        &mut model,
        config,
        max_capacity,
        max_depth,
        &dynamic.eagle,
    )?;

    let heldout = measure(
        open()?,
        |seq| config.split.is_heldout(seq),
        tracks,
        &mut dynamic,
    )?;

    let results = capacity_results(
        &heldout.tracks,
        Estimates {
            model: &mut model,
            acceptance: &acceptance,
            replicates: training.estimator.replicates(),
            heldout_groups: heldout.groups,
            z: config.z,
        },
    )?;
    let capacities: Vec<usize> = slots.iter().map(|s| s.0).collect();
    let (speed_of_light, speed_of_light_note) = heldout.speed_of_light.bounds(&capacities);
    Ok(TuneReport {
        train_groups: training.estimator.groups(),
        train_records: training.estimator.records(),
        heldout_groups: heldout.groups,
        heldout_truncated: heldout.truncated,
        records_with_target_logprob: training.with_logprob,
        marginal: training.estimator.marginal().clone(),
        max_depth,
        z: config.z,
        results,
        curves: curves(&mut model, max_capacity, max_depth, config.kary)?,
        chosen: chosen_tree(&heldout.tracks, choice.as_ref(), &mut model)?,
        capacity_choice: choice,
        acceptance,
        speed_of_light,
        speed_of_light_note,
    })
}
