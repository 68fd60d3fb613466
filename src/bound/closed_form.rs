//! The closed-form bounds of `docs/THEORY.md` sections 4b and 4c: (B1),
//! (B2) and the published bound, in the entropy `mu` and the second
//! log-moment `mu2` of an i.i.d. verifier, all capped by the trivial bounds
//! `P` and `D`; and [`Moments`], which computes `mu` and `mu2`.

use crate::dist::{TokenDist, SUM_TOLERANCE};
use crate::error::{Error, Result};

/// A bound on `E[X]`: the closed form when it is finite, always capped by the
/// trivial bounds `P` and `D`.
///
/// A verifier with entropy `mu = 0` (deterministic) has no finite closed
/// form; [`BoundValue::closed_form`] is then `None` and
/// [`BoundValue::value`] is the trivial cap `min(P, D)`, never an infinity or
/// a NaN.
///
/// # Examples
///
/// ```
/// use speclight::bound::renewal_bound;
/// let b = renewal_bound(0.0, 0.0, 64, Some(5));
/// assert_eq!(b.closed_form(), None);
/// assert_eq!(b.value(), 5.0);
/// let b = renewal_bound(1.0, 1.5, 64, None);
/// assert!((b.closed_form().unwrap() - (64f64.ln() + 1.5)).abs() < 1e-12);
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct BoundValue {
    closed_form: Option<f64>,
    cap: f64,
}

impl BoundValue {
    /// A bound from an optional closed form and the trivial cap. A closed
    /// form that is not finite (e.g. `mu2 / mu^2` overflowing) is dropped.
    pub fn new(closed_form: Option<f64>, cap: f64) -> Self {
        Self {
            closed_form: closed_form.filter(|x| x.is_finite()),
            cap,
        }
    }

    /// The closed-form value before capping, `None` when no finite closed
    /// form exists (`mu = 0`).
    pub fn closed_form(&self) -> Option<f64> {
        self.closed_form
    }

    /// The trivial cap `min(P, D)`.
    pub fn cap(&self) -> f64 {
        self.cap
    }

    /// The bound: `min(closed form, P, D)`, always finite.
    pub fn value(&self) -> f64 {
        self.closed_form.map_or(self.cap, |c| c.min(self.cap))
    }
}

/// The trivial bound `min(P, D)`: a tree has at most `P` nodes, and at most
/// `D` of them lie on the accepted path.
///
/// # Examples
///
/// ```
/// assert_eq!(speclight::bound::trivial_cap(16, Some(4)), 4.0);
/// assert_eq!(speclight::bound::trivial_cap(16, None), 16.0);
/// ```
pub fn trivial_cap(capacity: usize, max_depth: Option<u32>) -> f64 {
    let p = capacity as f64;
    max_depth.map_or(p, |d| p.min(f64::from(d)))
}

/// `mu` and `mu2` are usable in a closed form only when finite and `mu > 0`.
fn usable(mu: f64, mu2: f64) -> bool {
    mu.is_finite() && mu > 0.0 && mu2.is_finite() && mu2 >= 0.0
}

/// (B1) of docs/THEORY.md section 4b: `E[X] <= ln(P) / mu + mu2 / mu^2`, capped by
/// `P` and `D`. O(1).
///
/// `mu` is the (expected) entropy and `mu2` the (expected) second log-moment
/// of the verifier's next-token distributions, in nats.
///
/// # Examples
///
/// ```
/// use speclight::{bound::{renewal_bound, Moments}, TokenDist};
/// let m = Moments::of_dist(&TokenDist::from_probs(&[0.5, 0.3, 0.2])?)?;
/// let b1 = renewal_bound(m.entropy, m.second_log_moment, 1024, None);
/// assert!((b1.value() - 7.857).abs() < 1e-3);
/// # Ok::<(), speclight::Error>(())
/// ```
pub fn renewal_bound(mu: f64, mu2: f64, capacity: usize, max_depth: Option<u32>) -> BoundValue {
    let closed = usable(mu, mu2).then(|| (capacity as f64).ln() / mu + mu2 / (mu * mu));
    BoundValue::new(closed, trivial_cap(capacity, max_depth))
}

/// (B2) of docs/THEORY.md section 4b:
/// `E[X] <= (ln(P mu) + 1) / mu + mu2 / mu^2 - 1` when `P mu > 1`, and (B1)
/// otherwise; capped by `P` and `D`. Never weaker than (B1), because
/// `ln mu + 1 <= mu`. O(1).
///
/// # Examples
///
/// ```
/// use speclight::bound::{renewal_bound, renewal_bound_optimized};
/// let b2 = renewal_bound_optimized(1.2, 2.0, 256, None).value();
/// assert!(b2 <= renewal_bound(1.2, 2.0, 256, None).value());
/// ```
pub fn renewal_bound_optimized(
    mu: f64,
    mu2: f64,
    capacity: usize,
    max_depth: Option<u32>,
) -> BoundValue {
    let p = capacity as f64;
    if !(usable(mu, mu2) && p * mu > 1.0) {
        return renewal_bound(mu, mu2, capacity, max_depth);
    }
    let closed = ((p * mu).ln() + 1.0) / mu + mu2 / (mu * mu) - 1.0;
    BoundValue::new(Some(closed), trivial_cap(capacity, max_depth))
}

/// The published bound of Pankratov and Alistarh (docs/THEORY.md section 4c) with
/// its explicit constant: `(mu + mu2) ln(P) / mu^2 + mu2 / mu^2`, capped by
/// `P` and `D`. (B1) implies it because `mu2 ln(P) / mu^2 >= 0`. O(1).
///
/// # Examples
///
/// ```
/// use speclight::bound::{paper_bound, renewal_bound};
/// let paper = paper_bound(0.8, 1.1, 4096, None);
/// assert!(paper.closed_form().unwrap() >= renewal_bound(0.8, 1.1, 4096, None).closed_form().unwrap());
/// ```
pub fn paper_bound(mu: f64, mu2: f64, capacity: usize, max_depth: Option<u32>) -> BoundValue {
    let closed = usable(mu, mu2).then(|| {
        let mu_sq = mu * mu;
        (mu + mu2) * (capacity as f64).ln() / mu_sq + mu2 / mu_sq
    });
    BoundValue::new(closed, trivial_cap(capacity, max_depth))
}

/// The entropy `mu` and second log-moment `mu2` of a verifier distribution
/// (docs/THEORY.md section 4b).
///
/// # Examples
///
/// ```
/// use speclight::{bound::Moments, TokenDist};
/// let m = Moments::of_dist(&TokenDist::from_probs(&[0.5, 0.5])?)?;
/// assert!((m.entropy - 2f64.ln()).abs() < 1e-12);
/// assert!(TokenDist::from_probs(&[0.5, 0.3]).and_then(|d| Moments::of_dist(&d)).is_err());
/// # Ok::<(), speclight::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Moments {
    /// `mu = E[-ln p(Y)]`, nats.
    pub entropy: f64,
    /// `mu2 = E[(ln p(Y))^2]`, nats squared.
    pub second_log_moment: f64,
}

impl Moments {
    /// The moments of a complete distribution. O(n).
    ///
    /// # Errors
    ///
    /// [`Error::SumBelowOne`] when the listed probabilities sum to less than
    /// `1 - SUM_TOLERANCE`: the closed forms need the whole distribution (an
    /// unlisted tail has unknown surprisal).
    pub fn of_dist(dist: &TokenDist) -> Result<Self> {
        if !dist.is_complete() {
            return Err(Error::SumBelowOne {
                sum: dist.listed_mass(),
                tolerance: SUM_TOLERANCE,
            });
        }
        // -sum p ln p is -0.0 for a point mass; report a plain 0.
        let entropy = dist.entropy();
        Ok(Self {
            entropy: if entropy > 0.0 { entropy } else { 0.0 },
            second_log_moment: dist.second_log_moment(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn closed_forms_state_their_formulas() {
        let (mu, mu2, p) = (0.9_f64, 1.3_f64, 300usize);
        let lp = (p as f64).ln();
        let b1 = renewal_bound(mu, mu2, p, None).closed_form().unwrap();
        assert!((b1 - (lp / mu + mu2 / mu / mu)).abs() < 1e-12);
        let b2 = renewal_bound_optimized(mu, mu2, p, None)
            .closed_form()
            .unwrap();
        let t = (p as f64 * mu).ln();
        // The renewal bound t/mu + mu2/mu^2 - 1 + P e^-t at t = ln(P mu).
        let at_t = t / mu + mu2 / mu / mu - 1.0 + p as f64 * (-t).exp();
        assert!((b2 - at_t).abs() < 1e-12);
        // P mu <= 1: B2 falls back to B1.
        assert_eq!(
            renewal_bound_optimized(0.1, 0.2, 5, None),
            renewal_bound(0.1, 0.2, 5, None)
        );
        let paper = paper_bound(mu, mu2, p, Some(3));
        assert!(
            (paper.closed_form().unwrap() - ((mu + mu2) * lp / mu / mu + mu2 / mu / mu)).abs()
                < 1e-12
        );
        assert_eq!(paper.value(), 3.0);
        assert_eq!(renewal_bound(f64::NAN, 1.0, 5, None).closed_form(), None);
        assert_eq!(renewal_bound(1e-300, 1.0, 5, None).closed_form(), None);
    }
}
