//! Means with 95% confidence intervals, for Monte-Carlo moments
//! ([`crate::model::RandomEnv::moments`]) and trace estimates
//! ([`crate::trace_bound`]).

use crate::error::{Error, Result};

/// Two-sided 95% normal quantile.
pub const Z95: f64 = 1.959_963_984_540_054;

/// A sample mean with its standard error and 95% confidence interval
/// `mean +- Z95 * std_error` (normal approximation).
///
/// # Examples
///
/// ```
/// use speclight::stats::Estimate;
/// let e = Estimate::from_samples(&[1.0, 2.0, 3.0, 4.0])?;
/// assert_eq!(e.mean, 2.5);
/// assert!(e.ci_low < 2.5 && 2.5 < e.ci_high);
/// # Ok::<(), speclight::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Estimate {
    /// Sample mean.
    pub mean: f64,
    /// Standard error of the mean, `s / sqrt(n)`.
    pub std_error: f64,
    /// Lower end of the 95% interval.
    pub ci_low: f64,
    /// Upper end of the 95% interval.
    pub ci_high: f64,
    /// Number of samples.
    pub samples: usize,
}

impl Estimate {
    /// Mean and 95% interval of independent samples. O(n), two passes.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArgument`] with fewer than two samples or a
    /// non-finite sample.
    pub fn from_samples(xs: &[f64]) -> Result<Self> {
        if xs.len() < 2 {
            return Err(Error::InvalidArgument(format!(
                "{} samples: a confidence interval needs at least 2",
                xs.len()
            )));
        }
        if let Some((i, x)) = xs.iter().enumerate().find(|(_, x)| !x.is_finite()) {
            return Err(Error::NotFinite {
                index: i,
                value: *x,
            });
        }
        let n = xs.len() as f64;
        let mean = xs.iter().sum::<f64>() / n;
        let var = xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0);
        let std_error = (var / n).sqrt();
        Ok(Self {
            mean,
            std_error,
            ci_low: mean - Z95 * std_error,
            ci_high: mean + Z95 * std_error,
            samples: xs.len(),
        })
    }

    /// Whether `x` lies in the 95% interval.
    pub fn contains(&self, x: f64) -> bool {
        (self.ci_low..=self.ci_high).contains(&x)
    }
}
