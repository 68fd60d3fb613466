use crate::dist::{TokenDist, TokenId, SUM_TOLERANCE};
use crate::error::{Error, Result};
use crate::model::NextTokenModel;

/// Positional-acceptance model for static trees (docs/THEORY.md section 3).
///
/// `a_k` is the probability that the verifier's token equals the drafter's
/// `k`-th ranked candidate, whatever the position. A token here *is* a rank:
/// token `k` means "the drafter's rank-`k` candidate", so `pi(v) = prod a_rank`
/// along the path and the tail `1 - sum a` is the chance that no candidate
/// matches. Best-first over this model gives the optimal static tree.
///
/// # Examples
///
/// ```
/// use speclight::{Positional, NextTokenModel};
/// let mut m = Positional::new(&[0.634, 0.108, 0.057])?;
/// let d = m.next(&[0, 1])?;
/// assert_eq!(d.tokens(), &[0, 1, 2]);
/// assert!((d.tail_mass() - (1.0 - 0.799)).abs() < 1e-12);
/// # Ok::<(), speclight::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Positional {
    dist: TokenDist,
}

impl Positional {
    /// Builds the model from an acceptance vector `a_1 >= a_2 >= ... > 0`
    /// with `sum a <= 1`.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidAcceptance`] if the vector is empty, has a value
    /// outside `(0, 1]`, is not non-increasing, or sums above 1 beyond
    /// [`SUM_TOLERANCE`].
    pub fn new(acceptance: &[f64]) -> Result<Self> {
        let bad = |why: String| Err(Error::InvalidAcceptance(why));
        if acceptance.is_empty() {
            return bad("empty".into());
        }
        for (k, &a) in acceptance.iter().enumerate() {
            if !(a.is_finite() && a > 0.0 && a <= 1.0) {
                return bad(format!("a[{k}] = {a} is not in (0, 1]"));
            }
            if k > 0 && a > acceptance[k - 1] {
                return bad(format!(
                    "a[{k}] = {a} exceeds a[{}] = {}",
                    k - 1,
                    acceptance[k - 1]
                ));
            }
        }
        let sum: f64 = acceptance.iter().sum();
        if sum > 1.0 + SUM_TOLERANCE {
            return bad(format!("sums to {sum}, above 1"));
        }
        Ok(Self {
            dist: TokenDist::from_probs(acceptance)?,
        })
    }

    /// The acceptance vector, rank 0 first.
    pub fn acceptance(&self) -> &[f64] {
        self.dist.probs()
    }
}

impl NextTokenModel for Positional {
    fn next(&mut self, _path: &[TokenId]) -> Result<&TokenDist> {
        Ok(&self.dist)
    }

    fn is_context_free(&self) -> bool {
        true
    }
}
