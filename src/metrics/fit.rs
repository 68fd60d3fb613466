//! The per-depth acceptance of the drafter's first choice, fitted from
//! [`AcceptanceCounts`] with Wilson score intervals.

use super::{AcceptanceCounts, MetricsFormat};
use crate::error::{Error, Result};
use crate::model::PositionalByDepth;
use crate::tune::wilson_interval;

/// Depth `d`'s conditional acceptance: of the `trials` steps that accepted
/// depth `d - 1` (all steps for `d = 1`), `accepted` also accepted depth `d`.
#[derive(Debug, Clone, Copy, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct DepthAcceptance {
    /// `d`, from 1.
    pub depth: usize,
    /// Steps that accepted depth `d`.
    pub accepted: u64,
    /// Steps that reached depth `d` (accepted `d - 1`).
    pub trials: u64,
    /// `accepted / trials`.
    pub estimate: f64,
    /// Lower end of the Wilson interval.
    pub ci_low: f64,
    /// Upper end of the Wilson interval.
    pub ci_high: f64,
    /// `P(X >= d) = accepted / steps`.
    pub reach: f64,
}

/// What [`fit`] returns.
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct AcceptanceFit {
    /// The format read.
    pub format: MetricsFormat,
    /// Verifier steps with a draft.
    pub steps: u64,
    /// Draft positions the server reported (its chain length `K`).
    pub draft_length: usize,
    /// Whether every step drafted `K` tokens (`draft_tokens = steps * K`),
    /// when the format reports draft tokens. The fit assumes it: a step
    /// that drafted fewer tokens cannot accept the missing depths, which
    /// biases deep estimates down.
    pub uniform_draft_length: Option<bool>,
    /// One entry per depth with at least one trial.
    pub acceptance_by_depth: Vec<DepthAcceptance>,
    /// Accepted draft tokens per verifier step: `accepted / steps` (the
    /// servers' mean acceptance length is this plus 1, the bonus token).
    pub mean_accepted: f64,
    /// `E[X]` of the chain under the fitted model,
    /// `sum_d prod_{j <= d} a_j`: equals `mean_accepted` (the product
    /// telescopes to `reached[d] / steps`), computed the other way round.
    pub chain_expected_accepted: f64,
}

/// Fits `a_d = reached[d] / reached[d - 1]` (`reached[-1] = steps`) with
/// Wilson intervals at normal quantile `z`, stopping at the first depth no
/// step reached. O(K).
///
/// # Errors
///
/// [`Error::Metrics`] if the counts fail [`AcceptanceCounts::validate`].
///
/// # Examples
///
/// ```
/// use speclight::metrics::{fit, AcceptanceCounts, MetricsFormat};
/// let counts = AcceptanceCounts { format: MetricsFormat::Sglang, steps: 10,
///     reached: vec![6, 3, 0], draft_tokens: None, accepted_tokens: 9 };
/// let f = fit(&counts, 1.96)?;
/// assert_eq!(f.acceptance_by_depth.len(), 3);
/// assert_eq!(f.acceptance_by_depth[1].estimate, 0.5);
/// assert!((f.chain_expected_accepted - 0.9).abs() < 1e-12);
/// # Ok::<(), speclight::Error>(())
/// ```
pub fn fit(counts: &AcceptanceCounts, z: f64) -> Result<AcceptanceFit> {
    counts.validate()?;
    if !(z.is_finite() && z > 0.0) {
        return Err(Error::InvalidArgument(format!("z = {z} is not positive")));
    }
    let k = counts.reached.len();
    let mut by_depth = Vec::with_capacity(k);
    let mut trials = counts.steps;
    let (mut product, mut chain) = (1.0f64, 0.0f64);
    for (d, &accepted) in counts.reached.iter().enumerate() {
        if trials == 0 {
            break;
        }
        let estimate = accepted as f64 / trials as f64;
        let (ci_low, ci_high) = wilson_interval(accepted, trials, z);
        product *= estimate;
        chain += product;
        by_depth.push(DepthAcceptance {
            depth: d + 1,
            accepted,
            trials,
            estimate,
            ci_low,
            ci_high,
            reach: accepted as f64 / counts.steps as f64,
        });
        trials = accepted;
    }
    Ok(AcceptanceFit {
        format: counts.format,
        steps: counts.steps,
        draft_length: k,
        uniform_draft_length: counts
            .draft_tokens
            .map(|t| Some(t) == counts.steps.checked_mul(k as u64)),
        acceptance_by_depth: by_depth,
        mean_accepted: counts.accepted_tokens as f64 / counts.steps as f64,
        chain_expected_accepted: chain,
    })
}

impl AcceptanceFit {
    /// The fitted first-choice acceptance as a model with one rank per
    /// depth (depth `d` row `[a_d]`), for the capacity solver and the
    /// scheduler. It holds no lower ranks: these metrics never see them,
    /// so the best tree under it is the chain. Depths past the fit reuse
    /// the last row: limit the depth to [`AcceptanceFit::fitted_depths`].
    ///
    /// # Errors
    ///
    /// [`Error::Metrics`] when no depth was fitted or the first choice was
    /// never accepted.
    pub fn to_model(&self) -> Result<PositionalByDepth> {
        let rows: Vec<Vec<f64>> = self
            .acceptance_by_depth
            .iter()
            .take_while(|d| d.estimate > 0.0)
            .map(|d| vec![d.estimate])
            .collect();
        if rows.is_empty() {
            return Err(Error::Metrics(
                "the first draft token was never accepted: no acceptance to model".into(),
            ));
        }
        PositionalByDepth::new(&rows)
    }

    /// Depths with a positive fitted acceptance (the model's useful depth).
    pub fn fitted_depths(&self) -> usize {
        self.acceptance_by_depth
            .iter()
            .take_while(|d| d.estimate > 0.0)
            .count()
    }
}
