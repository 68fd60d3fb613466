//! Formats that report only totals per request (drafted and accepted
//! tokens, no per-position counts, no step count): what can be fitted from
//! them, and under which assumption.
//!
//! The totals prove one number, the acceptance rate per drafted token
//! `alpha = accepted / drafted`. Everything else needs assumptions:
//!
//! - **fixed draft length `K`** (every step drafted `K` tokens): then the
//!   steps are `drafted / K` and the chain's `E[X] = accepted / steps =
//!   K alpha`, the server's mean acceptance length minus the bonus token;
//! - **constant per-depth acceptance `a`** (on top of the first): the only
//!   per-depth model the totals pin down, the root of
//!   `(1 / K) sum_{d=1..K} a^d = alpha`. It reproduces the chain's `E[X]`
//!   exactly and lies between the smallest and largest true `a_d`, but real
//!   acceptance usually falls with depth, so it is a summary, not a fit of
//!   the curve.

use super::MetricsFormat;
use crate::error::{Error, Result};

/// Totals of a run, summed over its records (requests).
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct DraftTotals {
    /// Where the totals came from.
    pub format: MetricsFormat,
    /// Records (responses) that carried a draft.
    pub records: u64,
    /// Draft tokens proposed.
    pub draft_tokens: u64,
    /// Draft tokens accepted.
    pub accepted_tokens: u64,
}

impl DraftTotals {
    /// Sums the drafted and accepted counts of every record `object_of`
    /// finds an object in (records it skips carried no draft), read from
    /// the keys `drafted` and `accepted`: the loop every totals-only format
    /// shares. O(records).
    ///
    /// # Errors
    ///
    /// [`Error::Metrics`] naming the record for a missing accepted count, a
    /// bad count, or more accepted than drafted tokens.
    pub(super) fn sum_records<'a>(
        format: MetricsFormat,
        records: &'a [serde_json::Value],
        object_of: impl Fn(&'a serde_json::Value) -> Option<&'a serde_json::Value>,
        drafted: &str,
        accepted: &str,
    ) -> Result<Self> {
        let mut totals = DraftTotals {
            format,
            records: 0,
            draft_tokens: 0,
            accepted_tokens: 0,
        };
        for (r, record) in records.iter().enumerate() {
            let Some(object) = object_of(record) else {
                continue;
            };
            let read = |key: &str| {
                object
                    .get(key)
                    .ok_or_else(|| Error::Metrics(format!("record {r}: missing counter {key}")))
                    .and_then(|v| super::count(v, &format!("record {r}: {key}")))
            };
            let (d, a) = (read(drafted)?, read(accepted)?);
            if a > d {
                return Err(Error::Metrics(format!(
                    "inconsistent totals: record {r}: {accepted} {a} > {drafted} {d}"
                )));
            }
            totals.records += 1;
            totals.draft_tokens = totals.draft_tokens.saturating_add(d);
            totals.accepted_tokens = totals.accepted_tokens.saturating_add(a);
        }
        Ok(totals)
    }

    /// At least one record with drafted tokens, `accepted <= drafted`.
    ///
    /// # Errors
    ///
    /// [`Error::Metrics`] naming the broken invariant.
    pub fn validate(&self) -> Result<()> {
        if self.records == 0 || self.draft_tokens == 0 {
            return Err(Error::Metrics(
                "no drafted tokens: no record carried a draft".into(),
            ));
        }
        if self.draft_tokens > super::MAX_COUNT {
            return Err(Error::Metrics(format!(
                "{} drafted tokens, above {}",
                self.draft_tokens,
                super::MAX_COUNT
            )));
        }
        if self.accepted_tokens > self.draft_tokens {
            return Err(Error::Metrics(format!(
                "inconsistent totals: {} accepted tokens but only {} drafted",
                self.accepted_tokens, self.draft_tokens
            )));
        }
        Ok(())
    }
}

/// Said with every constant-acceptance fit.
pub const CONSTANT_ASSUMPTION: &str = "assumed, not measured: every step drafted the same K tokens (K given by --draft-length) and the first choice's acceptance is the same a at every depth; these totals carry no per-position counts";

/// The fit of [`fit_totals`].
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct TotalsFit {
    /// The totals read.
    pub totals: DraftTotals,
    /// `accepted / drafted`: what the totals prove.
    pub acceptance_rate: f64,
    /// The constant per-depth model, when a draft length was given.
    pub constant_depth: Option<ConstantDepthFit>,
}

/// The constant per-depth acceptance under a fixed draft length.
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct ConstantDepthFit {
    /// [`CONSTANT_ASSUMPTION`].
    pub assumption: &'static str,
    /// The draft length `K` assumed.
    pub draft_length: usize,
    /// `drafted / K`.
    pub steps: u64,
    /// `accepted / steps` (the server's mean acceptance length minus 1).
    pub mean_accepted: f64,
    /// The root `a` of `(1 / K) sum_{d <= K} a^d = alpha`.
    pub acceptance_per_depth: f64,
    /// `sum_{d <= K} a^d`, computed from `a`: equals `mean_accepted`.
    pub chain_expected_accepted: f64,
}

/// Fits the totals: the acceptance rate, and with `draft_length = Some(K)`
/// the constant per-depth acceptance (see the module docs).
/// O(K log(1 / eps)) (bisection to machine precision).
///
/// # Errors
///
/// [`Error::Metrics`] if the totals fail [`DraftTotals::validate`] or the
/// drafted tokens are not a multiple of `K` (the steps were not all `K`
/// long); [`Error::InvalidArgument`] for `K = 0` or `K` above
/// [`super::MAX_POSITIONS`].
///
/// # Examples
///
/// ```
/// use speclight::metrics::{fit_totals, DraftTotals, MetricsFormat};
/// let totals = DraftTotals { format: MetricsFormat::LlamacppTimings, records: 2,
///     draft_tokens: 40, accepted_tokens: 15 };
/// let f = fit_totals(&totals, Some(2))?;
/// assert_eq!(f.acceptance_rate, 0.375);
/// let c = f.constant_depth.unwrap();
/// assert_eq!((c.steps, c.mean_accepted), (20, 0.75));
/// // a + a^2 = 0.75 at a = 0.5.
/// assert!((c.acceptance_per_depth - 0.5).abs() < 1e-12);
/// # Ok::<(), speclight::Error>(())
/// ```
pub fn fit_totals(totals: &DraftTotals, draft_length: Option<usize>) -> Result<TotalsFit> {
    totals.validate()?;
    let alpha = totals.accepted_tokens as f64 / totals.draft_tokens as f64;
    let constant_depth = draft_length
        .map(|k| constant_fit(totals, k, alpha))
        .transpose()?;
    Ok(TotalsFit {
        totals: totals.clone(),
        acceptance_rate: alpha,
        constant_depth,
    })
}

fn constant_fit(totals: &DraftTotals, k: usize, alpha: f64) -> Result<ConstantDepthFit> {
    if k == 0 || k > super::MAX_POSITIONS {
        return Err(Error::InvalidArgument(format!(
            "draft length {k} is not in 1..={}",
            super::MAX_POSITIONS
        )));
    }
    let k64 = k as u64;
    if totals.draft_tokens % k64 != 0 {
        return Err(Error::Metrics(format!(
            "{} drafted tokens are not a multiple of the draft length {k}: the steps did not all draft {k} tokens",
            totals.draft_tokens
        )));
    }
    let steps = totals.draft_tokens / k64;
    let a = constant_acceptance(alpha, k);
    Ok(ConstantDepthFit {
        assumption: CONSTANT_ASSUMPTION,
        draft_length: k,
        steps,
        mean_accepted: totals.accepted_tokens as f64 / steps as f64,
        acceptance_per_depth: a,
        chain_expected_accepted: geometric_sum(a, k),
    })
}

/// `sum_{d=1..k} a^d`. O(k).
pub(crate) fn geometric_sum(a: f64, k: usize) -> f64 {
    let mut term = 1.0;
    (0..k)
        .map(|_| {
            term *= a;
            term
        })
        .sum()
}

/// The `a` in `[0, 1]` with `geometric_sum(a, k) / k = alpha`, by bisection
/// (the sum increases in `a` from 0 to `k`). O(k log(1 / eps)).
fn constant_acceptance(alpha: f64, k: usize) -> f64 {
    let target = alpha * k as f64;
    let (mut lo, mut hi) = (0.0f64, 1.0f64);
    for _ in 0..200 {
        let mid = 0.5 * (lo + hi);
        if mid <= lo || mid >= hi {
            break;
        }
        if geometric_sum(mid, k) < target {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    0.5 * (lo + hi)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn totals(drafted: u64, accepted: u64) -> DraftTotals {
        DraftTotals {
            format: MetricsFormat::LlamacppTimings,
            records: 1,
            draft_tokens: drafted,
            accepted_tokens: accepted,
        }
    }

    #[test]
    fn the_constant_fit_reproduces_the_mean_and_inverts_the_sum() {
        for (k, a) in [(1, 0.3), (3, 0.8), (5, 0.55), (8, 0.95), (4, 0.0), (4, 1.0)] {
            let alpha = geometric_sum(a, k) / k as f64;
            assert!((constant_acceptance(alpha, k) - a).abs() < 1e-12, "{k} {a}");
        }
        let f = fit_totals(&totals(300, 137), Some(3)).unwrap();
        let c = f.constant_depth.unwrap();
        assert!((c.chain_expected_accepted - c.mean_accepted).abs() < 1e-12);
        assert!((c.mean_accepted - 137.0 / 100.0).abs() < 1e-15);
    }

    #[test]
    fn bad_totals_and_lengths_are_refused() {
        let e = |t: DraftTotals, k| fit_totals(&t, k).unwrap_err().to_string();
        assert!(e(totals(10, 11), None).contains("inconsistent totals"));
        assert!(e(totals(0, 0), None).contains("no drafted tokens"));
        assert!(e(totals(10, 5), Some(3)).contains("not a multiple"));
        assert!(e(totals(10, 5), Some(0)).contains("draft length 0"));
    }
}
