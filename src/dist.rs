//! [`TokenDist`]: a validated next-token distribution (docs/THEORY.md section 1).
//!
//! Distributions are kept sorted by probability, descending (ties by token id,
//! ascending), because the best-first builder walks a node's children in that
//! order (docs/THEORY.md section 3). Probabilities may sum to less than one: the
//! missing mass is [`TokenDist::tail_mass`], the tokens that a truncated top-k
//! list does not name and that nobody drafts.

use crate::error::{Error, Result};

/// A token id. Byte-level models use `0..=255`; LLM vocabularies fit in `u32`.
pub type TokenId = u32;

/// How far above 1 a sum of probabilities may drift from rounding before it is
/// refused with [`Error::SumAboveOne`]. A sum within it is accepted and
/// *renormalised*: every probability is divided by the sum (every
/// log-probability lowered by its logarithm), so that an accepted
/// distribution sums to 1 up to rounding and every bound of
/// `docs/THEORY.md` section 4 holds for it as stated. A sum above 1 by no
/// more than the rounding of the summation itself (`n * f64::EPSILON` for
/// `n` entries) is taken to be 1 and kept as given.
pub const SUM_TOLERANCE: f64 = 1e-6;

/// A validated next-token distribution, sorted by probability descending.
///
/// Invariants (checked by every constructor): at least one token; every
/// probability finite and strictly positive (zero entries are dropped, they
/// can never be drafted usefully); token ids distinct; the sum of the
/// probabilities *as given* at most `1 + SUM_TOLERANCE` (no entry is clamped
/// before that check, so `[1.5]` is refused), and at most 1 once accepted:
/// a sum in `(1, 1 + SUM_TOLERANCE]` is renormalised to 1.
///
/// # Examples
///
/// ```
/// use speclight::TokenDist;
/// let d = TokenDist::from_probs(&[0.2, 0.5, 0.2])?;
/// assert_eq!(d.tokens(), &[1, 0, 2]);
/// assert!((d.tail_mass() - 0.1).abs() < 1e-12);
/// # Ok::<(), speclight::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct TokenDist {
    tokens: Vec<TokenId>,
    probs: Vec<f64>,
    log_probs: Vec<f64>,
    /// `(token, index into tokens)` sorted by token, for [`TokenDist::prob_of`].
    by_token: Vec<(TokenId, u32)>,
    tail: f64,
}

impl TokenDist {
    /// Builds a distribution over tokens `0, 1, ..., n-1` from probabilities.
    ///
    /// # Errors
    ///
    /// [`Error::EmptyDistribution`], [`Error::NotFinite`],
    /// [`Error::NegativeProbability`], [`Error::SumAboveOne`], or
    /// [`Error::ZeroMass`] when every probability is zero.
    ///
    /// # Examples
    ///
    /// ```
    /// let d = speclight::TokenDist::from_probs(&[0.5, 0.3, 0.2])?;
    /// assert_eq!(d.len(), 3);
    /// # Ok::<(), speclight::Error>(())
    /// ```
    pub fn from_probs(probs: &[f64]) -> Result<Self> {
        let tokens: Vec<TokenId> = (0..probs.len() as u64).map(|t| t as TokenId).collect();
        Self::from_token_probs(&tokens, probs)
    }

    /// Builds a distribution from parallel slices of token ids and probabilities.
    ///
    /// # Errors
    ///
    /// As [`TokenDist::from_probs`], plus [`Error::LengthMismatch`] and
    /// [`Error::DuplicateToken`].
    ///
    /// # Examples
    ///
    /// ```
    /// let d = speclight::TokenDist::from_token_probs(&[7, 3], &[0.25, 0.75])?;
    /// assert_eq!(d.tokens(), &[3, 7]);
    /// # Ok::<(), speclight::Error>(())
    /// ```
    pub fn from_token_probs(tokens: &[TokenId], probs: &[f64]) -> Result<Self> {
        check_lengths(tokens, probs)?;
        for (index, &value) in probs.iter().enumerate() {
            if !value.is_finite() {
                return Err(Error::NotFinite { index, value });
            }
            if value < 0.0 {
                return Err(Error::NegativeProbability { index, value });
            }
        }
        // No clamping here: the sum check must see the values as given.
        let pairs = tokens
            .iter()
            .copied()
            .zip(probs.iter().map(|&p| (p, p.ln())));
        Self::from_checked_pairs(pairs)
    }

    /// Builds a distribution from token ids and natural-log probabilities.
    ///
    /// `-inf` is allowed and means probability zero (the entry is dropped).
    ///
    /// # Errors
    ///
    /// [`Error::NotFinite`] for NaN or `+inf`, [`Error::PositiveLogProb`] for
    /// a value above `SUM_TOLERANCE`, and the errors of
    /// [`TokenDist::from_token_probs`].
    ///
    /// # Examples
    ///
    /// ```
    /// let d = speclight::TokenDist::from_token_logprobs(&[0, 1], &[0.5f64.ln(), 0.5f64.ln()])?;
    /// assert!((d.probs()[0] - 0.5).abs() < 1e-12);
    /// # Ok::<(), speclight::Error>(())
    /// ```
    pub fn from_token_logprobs(tokens: &[TokenId], log_probs: &[f64]) -> Result<Self> {
        check_lengths(tokens, log_probs)?;
        for (index, &value) in log_probs.iter().enumerate() {
            if value.is_nan() || value == f64::INFINITY {
                return Err(Error::NotFinite { index, value });
            }
            if value > SUM_TOLERANCE {
                return Err(Error::PositiveLogProb { index, value });
            }
        }
        // Keep the caller's log-probabilities: they are more precise than
        // ln(exp(x)) for very unlikely tokens. A slightly positive one is
        // rounding; the sum check and the renormalisation account for it.
        let pairs = tokens
            .iter()
            .copied()
            .zip(log_probs.iter().map(|&lp| (lp.exp(), lp)));
        Self::from_checked_pairs(pairs)
    }

    /// Builds a distribution from logits: `softmax(logits / temperature)`,
    /// then keeps the `top_k` most probable tokens (all when `None`); the rest
    /// of the mass becomes the tail.
    ///
    /// Numerically safe for logits as large as `+-1e300` and temperatures near
    /// zero or very large: the softmax is computed from `(l - max) / T`, which
    /// is never NaN. Time O(n log n), space O(n).
    ///
    /// # Errors
    ///
    /// [`Error::EmptyDistribution`], [`Error::NotFinite`] for a NaN or infinite
    /// logit, [`Error::BadTemperature`], [`Error::ZeroTopK`],
    /// [`Error::LengthMismatch`] and [`Error::DuplicateToken`].
    ///
    /// # Examples
    ///
    /// ```
    /// let d = speclight::TokenDist::from_logits(&[0, 1, 2], &[2.0, 1.0, 0.0], 1.0, Some(2))?;
    /// assert_eq!(d.len(), 2);
    /// assert!(d.tail_mass() > 0.0);
    /// # Ok::<(), speclight::Error>(())
    /// ```
    pub fn from_logits(
        tokens: &[TokenId],
        logits: &[f64],
        temperature: f64,
        top_k: Option<usize>,
    ) -> Result<Self> {
        check_lengths(tokens, logits)?;
        if logits.is_empty() {
            return Err(Error::EmptyDistribution);
        }
        if !(temperature.is_finite() && temperature > 0.0) {
            return Err(Error::BadTemperature(temperature));
        }
        if top_k == Some(0) {
            return Err(Error::ZeroTopK);
        }
        for (index, &value) in logits.iter().enumerate() {
            if !value.is_finite() {
                return Err(Error::NotFinite { index, value });
            }
        }
        let max = logits.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        // (l - max) <= 0 may overflow to -inf for +-1e308 logits or a tiny
        // temperature; exp(-inf) = 0 is the right answer then.
        let scaled: Vec<f64> = logits.iter().map(|&l| (l - max) / temperature).collect();
        let log_norm = scaled.iter().map(|&s| s.exp()).sum::<f64>().ln();
        let mut order: Vec<usize> = (0..logits.len()).collect();
        order.sort_by(|&a, &b| scaled[b].total_cmp(&scaled[a]));
        order.truncate(top_k.unwrap_or(usize::MAX));
        let picked_tokens: Vec<TokenId> = order.iter().map(|&i| tokens[i]).collect();
        let picked_logprobs: Vec<f64> = order.iter().map(|&i| scaled[i] - log_norm).collect();
        Self::from_token_logprobs(&picked_tokens, &picked_logprobs)
    }

    /// Shared tail of the constructors: drops zero entries, sorts, checks
    /// duplicates and the sum, renormalises a sum within [`SUM_TOLERANCE`]
    /// above 1. Values are already known finite and >= 0 (log-probabilities
    /// at most `SUM_TOLERANCE`).
    fn from_checked_pairs(pairs: impl Iterator<Item = (TokenId, (f64, f64))>) -> Result<Self> {
        let mut entries: Vec<(TokenId, f64, f64)> = pairs.map(|(t, (p, lp))| (t, p, lp)).collect();
        if entries.is_empty() {
            return Err(Error::EmptyDistribution);
        }
        let mut by_token: Vec<TokenId> = entries.iter().map(|e| e.0).collect();
        by_token.sort_unstable();
        if let Some(w) = by_token.windows(2).find(|w| w[0] == w[1]) {
            return Err(Error::DuplicateToken { token: w[0] });
        }
        let sum: f64 = entries.iter().map(|e| e.1).sum();
        if sum > 1.0 + SUM_TOLERANCE {
            return Err(Error::SumAboveOne {
                sum,
                tolerance: SUM_TOLERANCE,
            });
        }
        entries.retain(|e| e.1 > 0.0);
        if entries.is_empty() {
            return Err(Error::ZeroMass);
        }
        renormalise_excess(&mut entries, sum);
        entries.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        let tokens: Vec<TokenId> = entries.iter().map(|e| e.0).collect();
        let mut by_token: Vec<(TokenId, u32)> = tokens
            .iter()
            .enumerate()
            .map(|(i, &t)| (t, i as u32))
            .collect();
        by_token.sort_unstable();
        Ok(Self {
            probs: entries.iter().map(|e| e.1).collect(),
            log_probs: entries.iter().map(|e| e.2).collect(),
            tokens,
            by_token,
            tail: (1.0 - sum).max(0.0),
        })
    }

    /// Number of tokens listed (never zero).
    pub fn len(&self) -> usize {
        self.tokens.len()
    }

    /// Always `false`: an empty distribution cannot be built. Present for
    /// API symmetry with [`TokenDist::len`].
    pub fn is_empty(&self) -> bool {
        self.tokens.is_empty()
    }

    /// Token ids, most probable first.
    pub fn tokens(&self) -> &[TokenId] {
        &self.tokens
    }

    /// Probabilities, descending, aligned with [`TokenDist::tokens`].
    pub fn probs(&self) -> &[f64] {
        &self.probs
    }

    /// Natural-log probabilities, aligned with [`TokenDist::tokens`].
    pub fn log_probs(&self) -> &[f64] {
        &self.log_probs
    }

    /// Iterates `(token, probability)` pairs, most probable first.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = (TokenId, f64)> + '_ {
        self.tokens.iter().copied().zip(self.probs.iter().copied())
    }

    /// Mass not assigned to any listed token: `max(0, 1 - sum p)`.
    pub fn tail_mass(&self) -> f64 {
        self.tail
    }

    /// Total listed mass, `sum p`.
    pub fn listed_mass(&self) -> f64 {
        self.probs.iter().sum()
    }

    /// Whether the listed tokens carry all the mass (within [`SUM_TOLERANCE`]).
    pub fn is_complete(&self) -> bool {
        self.tail <= SUM_TOLERANCE
    }

    /// Probability of `token`, zero when it is not listed. O(log n).
    ///
    /// # Examples
    ///
    /// ```
    /// let d = speclight::TokenDist::from_probs(&[0.5, 0.3])?;
    /// assert_eq!(d.prob_of(1), 0.3);
    /// assert_eq!(d.prob_of(9), 0.0);
    /// # Ok::<(), speclight::Error>(())
    /// ```
    pub fn prob_of(&self, token: TokenId) -> f64 {
        self.index_of(token).map_or(0.0, |i| self.probs[i])
    }

    /// Natural-log probability of `token`, `-inf` when it is not listed. O(log n).
    pub fn log_prob_of(&self, token: TokenId) -> f64 {
        self.index_of(token)
            .map_or(f64::NEG_INFINITY, |i| self.log_probs[i])
    }

    /// Rank of `token` (0 = most probable), if listed. O(log n).
    pub fn index_of(&self, token: TokenId) -> Option<usize> {
        self.by_token
            .binary_search_by_key(&token, |&(t, _)| t)
            .ok()
            .map(|pos| self.by_token[pos].1 as usize)
    }

    /// Entropy `mu = -sum_k p_k ln p_k` in nats (docs/THEORY.md section 4b), over
    /// the listed tokens. For a complete distribution it is the verifier's
    /// expected surprisal `E[-ln p(Y)]`. O(n).
    ///
    /// # Examples
    ///
    /// ```
    /// let d = speclight::TokenDist::from_probs(&[0.5, 0.5])?;
    /// assert!((d.entropy() - 2f64.ln()).abs() < 1e-12);
    /// # Ok::<(), speclight::Error>(())
    /// ```
    pub fn entropy(&self) -> f64 {
        -self
            .probs
            .iter()
            .zip(&self.log_probs)
            .map(|(p, lp)| p * lp)
            .sum::<f64>()
    }

    /// Second log-moment `mu2 = sum_k p_k (ln p_k)^2` in nats squared
    /// (docs/THEORY.md section 4b): `E[xi^2]` for the surprisal `xi = -ln p(Y)`.
    /// O(n).
    ///
    /// # Examples
    ///
    /// ```
    /// let d = speclight::TokenDist::from_probs(&[0.5, 0.5])?;
    /// assert!((d.second_log_moment() - 2f64.ln().powi(2)).abs() < 1e-12);
    /// # Ok::<(), speclight::Error>(())
    /// ```
    pub fn second_log_moment(&self) -> f64 {
        self.probs
            .iter()
            .zip(&self.log_probs)
            .map(|(p, lp)| p * lp * lp)
            .sum()
    }

    /// Draws a token from the distribution given a uniform `u` in `[0, 1)`:
    /// inverse-CDF over the sorted list. `None` means the draw fell in the
    /// tail (a token no one listed). O(n).
    ///
    /// # Examples
    ///
    /// ```
    /// let d = speclight::TokenDist::from_probs(&[0.5, 0.3])?;
    /// assert_eq!(d.sample_with(0.1), Some(0));
    /// assert_eq!(d.sample_with(0.6), Some(1));
    /// assert_eq!(d.sample_with(0.9), None);
    /// # Ok::<(), speclight::Error>(())
    /// ```
    pub fn sample_with(&self, u: f64) -> Option<TokenId> {
        let mut acc = 0.0;
        for (t, p) in self.iter() {
            acc += p;
            if u < acc {
                return Some(t);
            }
        }
        // Rounding can leave u just above the sum of a complete distribution:
        // that draw belongs to the last token, not to an empty tail.
        (self.is_complete()).then(|| self.tokens[self.len() - 1])
    }

    /// Draws a token with `rng`; `None` means the tail. O(n).
    pub fn sample<R: rand::Rng + ?Sized>(&self, rng: &mut R) -> Option<TokenId> {
        self.sample_with(rng.random::<f64>())
    }

    /// The `k` most probable tokens; the rest joins the tail.
    ///
    /// # Errors
    ///
    /// [`Error::ZeroTopK`] when `k == 0`.
    pub fn top_k(&self, k: usize) -> Result<Self> {
        if k == 0 {
            return Err(Error::ZeroTopK);
        }
        let n = k.min(self.len());
        Self::from_token_logprobs(&self.tokens[..n], &self.log_probs[..n])
    }
}

/// Divides every probability by `sum` when `sum` exceeds 1 by more than the
/// rounding of an `n`-term sum (an excess the caller has already checked is
/// within [`SUM_TOLERANCE`]), so that no accepted
/// distribution gives the verifier more than probability 1 and the bounds of
/// `docs/THEORY.md` section 4 keep their links. Log-probabilities are capped
/// at 0 afterwards: the builder's heap relies on `ln p <= 0`. O(n).
fn renormalise_excess(entries: &mut [(TokenId, f64, f64)], sum: f64) {
    let rounding = entries.len() as f64 * f64::EPSILON;
    if sum > 1.0 + rounding {
        let log_sum = sum.ln();
        for e in entries.iter_mut() {
            e.1 = (e.1 / sum).min(1.0);
            e.2 = (e.2 - log_sum).min(0.0);
        }
    } else {
        for e in entries.iter_mut() {
            e.2 = e.2.min(0.0);
        }
    }
}

fn check_lengths(tokens: &[TokenId], values: &[f64]) -> Result<()> {
    if tokens.len() != values.len() {
        return Err(Error::LengthMismatch {
            tokens: tokens.len(),
            values: values.len(),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sorts_descending_with_token_tiebreak() {
        let d = TokenDist::from_token_probs(&[5, 2, 9], &[0.25, 0.25, 0.5]).unwrap();
        assert_eq!(d.tokens(), &[9, 2, 5]);
        assert_eq!(d.probs(), &[0.5, 0.25, 0.25]);
    }

    #[test]
    fn rejects_bad_values_with_specific_errors() {
        assert_eq!(TokenDist::from_probs(&[]), Err(Error::EmptyDistribution));
        assert!(matches!(
            TokenDist::from_probs(&[0.1, f64::INFINITY]),
            Err(Error::NotFinite { index: 1, .. })
        ));
        assert!(matches!(
            TokenDist::from_probs(&[-0.1]),
            Err(Error::NegativeProbability { index: 0, .. })
        ));
        assert!(matches!(
            TokenDist::from_probs(&[0.7, 0.7]),
            Err(Error::SumAboveOne { .. })
        ));
        assert_eq!(
            TokenDist::from_token_probs(&[1, 1], &[0.1, 0.2]),
            Err(Error::DuplicateToken { token: 1 })
        );
        assert_eq!(TokenDist::from_probs(&[0.0, 0.0]), Err(Error::ZeroMass));
        assert!(matches!(
            TokenDist::from_token_logprobs(&[0], &[0.5]),
            Err(Error::PositiveLogProb { .. })
        ));
    }

    #[test]
    fn sum_within_tolerance_is_accepted() {
        let d = TokenDist::from_probs(&[0.5, 0.5 + 1e-9]).unwrap();
        assert_eq!(d.tail_mass(), 0.0);
        assert!(d.is_complete());
    }

    /// Issue 12 item 2: an entry above 1 was clamped to 1 before the sum
    /// check, so `[1.5]` and `[1e308]` were accepted as `[1.0]`.
    #[test]
    fn a_probability_above_one_is_refused_not_clamped() {
        for probs in [&[1.5][..], &[1e308], &[1.0 + 2e-6], &[f64::MAX, f64::MAX]] {
            assert!(
                matches!(TokenDist::from_probs(probs), Err(Error::SumAboveOne { .. })),
                "{probs:?}"
            );
        }
        assert!(matches!(
            TokenDist::from_token_logprobs(&[0, 1], &[1e-6, 0.0]),
            Err(Error::SumAboveOne { .. })
        ));
    }

    /// Issue 12 item 3: a sum within the tolerance above 1 is renormalised,
    /// so no accepted distribution carries more than probability 1.
    #[test]
    fn a_sum_slightly_above_one_is_renormalised() {
        let d = TokenDist::from_probs(&[0.5, 0.500_000_9]).unwrap();
        assert!(
            d.listed_mass() <= 1.0 + 2.0 * f64::EPSILON,
            "{}",
            d.listed_mass()
        );
        assert!((d.probs()[0] - 0.500_000_9 / 1.000_000_9).abs() < 1e-15);
        assert!(d.log_probs().iter().all(|&lp| lp <= 0.0));
        let single = TokenDist::from_token_logprobs(&[3], &[5e-7]).unwrap();
        assert_eq!(single.probs(), &[1.0]);
        assert!((-1e-15..=0.0).contains(&single.log_probs()[0]));
        // An exact-by-construction sum that rounds a hair above 1 is kept.
        let third = 1.0 / 3.0;
        let kept = TokenDist::from_probs(&[third, third, third + 1e-16]).unwrap();
        assert_eq!(kept.probs()[2], third);
    }

    #[test]
    fn logits_match_softmax_and_survive_extremes() {
        let d = TokenDist::from_logits(&[0, 1], &[0.0, 2f64.ln()], 1.0, None).unwrap();
        assert!((d.probs()[0] - 2.0 / 3.0).abs() < 1e-12);
        for &(l, t) in &[(1e300, 1.0), (1e300, 1e-300), (1.0, 1e300), (-1e300, 1e-12)] {
            let d = TokenDist::from_logits(&[0, 1, 2], &[l, -l, 0.0], t, None).unwrap();
            assert!(d.probs().iter().all(|p| p.is_finite() && *p > 0.0));
            assert!(d.entropy().is_finite() && d.entropy() >= 0.0);
            assert!((d.listed_mass() - 1.0).abs() < 1e-9);
        }
    }

    #[test]
    fn moments_of_a_uniform_distribution() {
        let n = 8.0f64;
        let d = TokenDist::from_probs(&[1.0 / n; 8]).unwrap();
        assert!((d.entropy() - n.ln()).abs() < 1e-12);
        assert!((d.second_log_moment() - n.ln().powi(2)).abs() < 1e-12);
    }

    #[test]
    fn top_k_moves_mass_to_the_tail() {
        let d = TokenDist::from_probs(&[0.5, 0.3, 0.2])
            .unwrap()
            .top_k(2)
            .unwrap();
        assert_eq!(d.tokens(), &[0, 1]);
        assert!((d.tail_mass() - 0.2).abs() < 1e-12);
    }
}
