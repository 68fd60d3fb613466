//! The crate's one vocabulary for estimates: a mean with its standard error
//! and 95% interval ([`Estimate`], built from samples or streamed through a
//! [`MeanAccumulator`]), and a point value with lower and upper ends
//! ([`Interval`]). Monte-Carlo moments ([`crate::model::RandomEnv::moments`]),
//! trace estimates ([`crate::bound::trace`]), the Monte-Carlo check of the
//! evaluator ([`crate::MonteCarlo`]), the simulator and the demo's workload
//! all report through them.

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
        Ok(Self::of(xs))
    }

    /// [`Estimate::from_samples`] without the checks, for summaries that
    /// must always print: no samples give NaN everywhere, one sample a
    /// standard error of 0. O(n), two passes.
    ///
    /// # Examples
    ///
    /// ```
    /// let m = speclight::stats::Estimate::of(&[1.0, 3.0]);
    /// assert_eq!((m.mean, m.std_error, m.samples), (2.0, 1.0, 2));
    /// assert_eq!(speclight::stats::Estimate::of(&[5.0]).std_error, 0.0);
    /// assert!(speclight::stats::Estimate::of(&[]).mean.is_nan());
    /// ```
    pub fn of(xs: &[f64]) -> Self {
        if xs.is_empty() {
            return Self::from_mean_and_error(f64::NAN, f64::NAN, 0);
        }
        let n = xs.len() as f64;
        let mean = xs.iter().sum::<f64>() / n;
        let var = if xs.len() > 1 {
            xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0)
        } else {
            0.0
        };
        Self::from_mean_and_error(mean, (var / n).sqrt(), xs.len())
    }

    /// An estimate from its mean and standard error, with the 95% interval
    /// `mean +- Z95 * std_error`.
    ///
    /// # Examples
    ///
    /// ```
    /// use speclight::stats::{Estimate, Z95};
    /// let e = Estimate::from_mean_and_error(1.0, 0.5, 10);
    /// assert_eq!(e.ci_high, 1.0 + Z95 * 0.5);
    /// ```
    pub fn from_mean_and_error(mean: f64, std_error: f64, samples: usize) -> Self {
        Self {
            mean,
            std_error,
            ci_low: mean - Z95 * std_error,
            ci_high: mean + Z95 * std_error,
            samples,
        }
    }

    /// Whether `x` lies in the 95% interval.
    pub fn contains(&self, x: f64) -> bool {
        (self.ci_low..=self.ci_high).contains(&x)
    }

    /// The 95% interval with the mean as its point value.
    ///
    /// # Examples
    ///
    /// ```
    /// let e = speclight::stats::Estimate::of(&[1.0, 3.0]);
    /// let i = e.interval();
    /// assert_eq!((i.mean, i.lo, i.hi), (e.mean, e.ci_low, e.ci_high));
    /// ```
    pub fn interval(&self) -> Interval {
        Interval {
            mean: self.mean,
            lo: self.ci_low,
            hi: self.ci_high,
        }
    }
}

/// A point value with the lower and upper ends of an interval around it
/// (a confidence interval, or a prediction band).
///
/// # Examples
///
/// ```
/// let i = speclight::stats::Interval { mean: 2.0, lo: 1.5, hi: 2.5 };
/// assert!(i.contains(1.5) && !i.contains(2.6));
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Interval {
    /// Point value.
    pub mean: f64,
    /// Lower end.
    pub lo: f64,
    /// Upper end.
    pub hi: f64,
}

impl Interval {
    /// Whether `x` lies in `[lo, hi]`.
    pub fn contains(&self, x: f64) -> bool {
        self.lo <= x && x <= self.hi
    }
}

/// Streams samples into an [`Estimate`] in O(1) space, from their sum and
/// sum of squares (for simulations that do not keep their samples; the
/// one-pass variance is fine for the small counts they average).
///
/// # Examples
///
/// ```
/// let mut acc = speclight::stats::MeanAccumulator::new();
/// for x in [1.0, 3.0] {
///     acc.push(x);
/// }
/// let e = acc.estimate();
/// assert_eq!((e.mean, e.std_error, e.samples), (2.0, 1.0, 2));
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct MeanAccumulator {
    count: usize,
    sum: f64,
    sum_sq: f64,
}

impl MeanAccumulator {
    /// An empty accumulator.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds one sample. O(1).
    pub fn push(&mut self, x: f64) {
        self.count += 1;
        self.sum += x;
        self.sum_sq += x * x;
    }

    /// Number of samples pushed.
    pub fn count(&self) -> usize {
        self.count
    }

    /// Mean and standard error of the samples pushed so far (a standard
    /// error of 0 for one sample, NaN for none). O(1).
    pub fn estimate(&self) -> Estimate {
        let n = self.count as f64;
        let mean = self.sum / n;
        let var = if self.count > 1 {
            ((self.sum_sq - n * mean * mean) / (n - 1.0)).max(0.0)
        } else {
            0.0
        };
        Estimate::from_mean_and_error(mean, (var / n).sqrt(), self.count)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The one-pass and two-pass formulas are different code for the same
    /// number: they must agree.
    #[test]
    fn streamed_and_two_pass_estimates_agree() {
        let xs = [0.0, 1.0, 1.0, 2.0, 5.0, 3.0, 0.0];
        let mut acc = MeanAccumulator::new();
        xs.iter().for_each(|&x| acc.push(x));
        let (a, b) = (acc.estimate(), Estimate::from_samples(&xs).unwrap());
        assert_eq!(a.samples, b.samples);
        assert!((a.mean - b.mean).abs() < 1e-12);
        assert!((a.std_error - b.std_error).abs() < 1e-12);
        assert!(a.interval().contains(b.mean));
    }

    #[test]
    fn too_few_or_bad_samples_are_refused() {
        assert!(Estimate::from_samples(&[1.0]).is_err());
        assert!(matches!(
            Estimate::from_samples(&[1.0, f64::NAN]),
            Err(Error::NotFinite { index: 1, .. })
        ));
    }
}
