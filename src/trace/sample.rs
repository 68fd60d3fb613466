//! Sampling a verifier trace from a model: text drawn from the verifier
//! after a prompt, with every token's log-probability, its top alternatives
//! and the exact moments there (the trace of `docs/THEORY.md` section 4d and
//! the `mu`, `mu2` of section 4b).

use crate::dist::TokenId;
use crate::error::{Error, Result};
use crate::model::ContextModel;
use crate::trace::{TopLogprob, Trace, TraceToken};
use rand::Rng;

/// One token sampled from the verifier, with what the verifier knew there.
#[derive(Debug, Clone, PartialEq)]
pub struct SampledToken {
    /// The sampled token.
    pub token: TokenId,
    /// Its natural-log probability under the verifier.
    pub logprob: f64,
    /// The verifier's most probable tokens there, most probable first, with
    /// their natural-log probabilities.
    pub top_logprobs: Vec<(TokenId, f64)>,
    /// The verifier's entropy there, `-sum p ln p` (nats).
    pub entropy: f64,
    /// The verifier's second log-moment there, `sum p (ln p)^2`.
    pub second_log_moment: f64,
}

/// Most tokens [`sample_with_logprobs`] samples in one call (2^20): the
/// output is allocated up front, so the length must be bounded.
pub const MAX_SAMPLED_TOKENS: usize = 1 << 20;

/// Samples `len` tokens from `model` after `prompt`, recording each token's
/// log-probability, the `top_k` best alternatives, and the entropy and
/// second log-moment of the distribution it was drawn from. Time
/// O(len x model call).
///
/// # Errors
///
/// [`Error::SizeAboveLimit`] when `len` is above [`MAX_SAMPLED_TOKENS`],
/// [`Error::Model`] when a draw falls in the model's truncated tail (sample
/// from a complete model), and whatever the model returns.
///
/// # Examples
///
/// ```
/// use rand::{rngs::StdRng, SeedableRng};
/// use speclight::{trace::sample_with_logprobs, NgramLm};
/// let lm = NgramLm::train(b"to be or not to be, that is the question", 3)?;
/// let mut rng = StdRng::seed_from_u64(3);
/// let tokens = sample_with_logprobs(&mut lm.model(), &[116, 111], 20, 5, &mut rng)?;
/// assert_eq!(tokens.len(), 20);
/// assert!(tokens.iter().all(|t| t.logprob <= 0.0 && t.top_logprobs.len() == 5));
/// # Ok::<(), speclight::Error>(())
/// ```
pub fn sample_with_logprobs<M, R>(
    model: &mut M,
    prompt: &[TokenId],
    len: usize,
    top_k: usize,
    rng: &mut R,
) -> Result<Vec<SampledToken>>
where
    M: ContextModel + ?Sized,
    R: Rng + ?Sized,
{
    if len > MAX_SAMPLED_TOKENS {
        return Err(Error::SizeAboveLimit {
            what: "sampled tokens per sequence",
            value: len as u64,
            max: MAX_SAMPLED_TOKENS as u64,
        });
    }
    let mut text = prompt.to_vec();
    let mut out = Vec::with_capacity(len);
    for _ in 0..len {
        model.set_context(&text)?;
        let dist = model.next(&[])?;
        let token = dist.sample(rng).ok_or_else(|| {
            Error::Model(
                "a draw fell in the model's truncated tail: sample from a complete distribution"
                    .into(),
            )
        })?;
        out.push(SampledToken {
            token,
            logprob: dist.log_prob_of(token),
            top_logprobs: dist
                .tokens()
                .iter()
                .copied()
                .zip(dist.log_probs().iter().copied())
                .take(top_k)
                .collect(),
            entropy: dist.entropy(),
            second_log_moment: dist.second_log_moment(),
        });
        text.push(token);
    }
    Ok(out)
}

/// The sampled sequences as a [`Trace`] (one trace sequence per prompt),
/// with each token's top alternatives: the input of
/// [`crate::bound::trace::estimate`] and of the JSONL writer. O(tokens).
///
/// # Errors
///
/// The [`TraceToken`] checks ([`Error::PositiveLogProb`], [`Error::NotFinite`],
/// [`Error::DuplicateToken`]); samples from a model never fail them.
///
/// # Examples
///
/// ```
/// use rand::{rngs::StdRng, SeedableRng};
/// use speclight::{trace::{sample_with_logprobs, to_trace}, NgramLm};
/// let lm = NgramLm::train(b"abcabd abcabd abcabd", 3)?;
/// let seq = sample_with_logprobs(&mut lm.model(), &[97], 8, 3, &mut StdRng::seed_from_u64(1))?;
/// let trace = to_trace(&[seq])?;
/// assert_eq!((trace.sequences().len(), trace.num_tokens()), (1, 8));
/// # Ok::<(), speclight::Error>(())
/// ```
pub fn to_trace(sequences: &[Vec<SampledToken>]) -> Result<Trace> {
    let mut trace = Trace::new();
    for seq in sequences {
        for t in seq {
            let top = t
                .top_logprobs
                .iter()
                .map(|&(token, logprob)| TopLogprob { token, logprob })
                .collect();
            trace.push(TraceToken::new(t.token, t.logprob)?.with_top_logprobs(top)?);
        }
        trace.end_sequence();
    }
    Ok(trace)
}
