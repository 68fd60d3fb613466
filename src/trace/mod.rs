//! Verifier traces: text sampled from the verifier with the log-probability
//! of every sampled token (`docs/THEORY.md` section 4d).
//!
//! - this module: the in-memory form ([`Trace`], [`TraceToken`],
//!   [`TopLogprob`]) every reader produces, and [`read`] / [`read_path`],
//!   which read either format, told apart by content;
//! - [`jsonl`]: the JSONL form, read and written ([`read_jsonl`],
//!   [`write_jsonl`]);
//! - [`openai`]: the OpenAI-compatible `logprobs` JSON that vLLM, llama.cpp's
//!   server and the OpenAI API return ([`read_openai`]);
//! - [`sample`]: sampling a trace from a model ([`sample_with_logprobs`],
//!   [`to_trace`]).
//!
//! The speed of light *from* a trace is [`crate::bound::trace`]; the paired
//! (drafter and verifier) trace of offline tuning is a different thing, in
//! `tune`.

#[cfg(feature = "serde")]
pub mod jsonl;
#[cfg(feature = "serde")]
pub mod openai;
#[cfg(feature = "serde")]
mod path;
pub mod sample;

#[cfg(feature = "serde")]
pub use jsonl::{read_jsonl, write_jsonl, ReadLimits};
#[cfg(feature = "serde")]
pub use openai::{read_openai, sniff_openai, OpenAiTrace};
#[cfg(feature = "serde")]
pub use path::{read, read_path, SNIFF_BYTES};
pub use sample::{sample_with_logprobs, to_trace, SampledToken};

use crate::dist::TokenId;
use crate::error::{Error, Result};

/// Largest positive log-probability accepted as rounding noise of a
/// probability-1 token; such values are stored as 0.
pub const LOGPROB_TOLERANCE: f64 = 1e-6;

/// Largest amount by which the probabilities of a `top_logprobs` list may
/// sum above 1: generous for log-probabilities rounded to a few digits or
/// computed in `f32` by a server, far below a list that counts a token twice.
pub const TOP_SUM_TOLERANCE: f64 = 1e-3;

/// One entry of a token's `top_logprobs` list.
///
/// # Examples
///
/// ```
/// let t = speclight::trace::TopLogprob { token: 4, logprob: -0.1 };
/// assert_eq!(t.token, 4);
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(deny_unknown_fields))]
pub struct TopLogprob {
    /// Token id.
    pub token: TokenId,
    /// Its natural-log probability under the verifier.
    pub logprob: f64,
}

/// One sampled token of a trace: its id, its log-probability under the
/// verifier, and optionally the verifier's top alternatives there.
///
/// # Examples
///
/// ```
/// use speclight::trace::{TopLogprob, TraceToken};
/// let t = TraceToken::new(7, -0.5)?;
/// assert_eq!(t.surprisal(), 0.5);
/// assert!(TraceToken::new(7, 0.5).is_err());
/// // Top alternatives are one distribution's: they cannot sum to about 2.
/// let twice = vec![TopLogprob { token: 7, logprob: -0.01 }, TopLogprob { token: 8, logprob: -0.01 }];
/// assert!(t.clone().with_top_logprobs(twice).is_err());
/// # Ok::<(), speclight::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct TraceToken {
    token: TokenId,
    logprob: f64,
    top_logprobs: Option<Vec<TopLogprob>>,
}

fn check_logprob(index: usize, logprob: f64) -> Result<f64> {
    if !logprob.is_finite() {
        return Err(Error::NotFinite {
            index,
            value: logprob,
        });
    }
    if logprob > LOGPROB_TOLERANCE {
        return Err(Error::PositiveLogProb {
            index,
            value: logprob,
        });
    }
    Ok(logprob.min(0.0))
}

impl TraceToken {
    /// A token with its log-probability.
    ///
    /// # Errors
    ///
    /// [`Error::NotFinite`] or [`Error::PositiveLogProb`] (above
    /// [`LOGPROB_TOLERANCE`]).
    pub fn new(token: TokenId, logprob: f64) -> Result<Self> {
        Ok(Self {
            token,
            logprob: check_logprob(0, logprob)?,
            top_logprobs: None,
        })
    }

    /// Attaches the verifier's top alternatives at this position.
    ///
    /// # Errors
    ///
    /// As [`TraceToken::new`] for any entry (the index names the entry),
    /// [`Error::DuplicateToken`] for a repeated token, and
    /// [`Error::SumAboveOne`] when the probabilities sum above
    /// `1 + TOP_SUM_TOLERANCE` (they are one distribution's best tokens).
    pub fn with_top_logprobs(mut self, mut top: Vec<TopLogprob>) -> Result<Self> {
        for (i, t) in top.iter_mut().enumerate() {
            t.logprob = check_logprob(i, t.logprob)?;
        }
        let sum: f64 = top.iter().map(|t| t.logprob.exp()).sum();
        if sum > 1.0 + TOP_SUM_TOLERANCE {
            return Err(Error::SumAboveOne {
                sum,
                tolerance: TOP_SUM_TOLERANCE,
            });
        }
        let mut ids: Vec<TokenId> = top.iter().map(|t| t.token).collect();
        ids.sort_unstable();
        if let Some(w) = ids.windows(2).find(|w| w[0] == w[1]) {
            return Err(Error::DuplicateToken { token: w[0] });
        }
        self.top_logprobs = Some(top);
        Ok(self)
    }

    /// Token id.
    pub fn token(&self) -> TokenId {
        self.token
    }

    /// Natural-log probability of the token under the verifier (`<= 0`).
    pub fn logprob(&self) -> f64 {
        self.logprob
    }

    /// Surprisal `-logprob` (`>= 0`).
    pub fn surprisal(&self) -> f64 {
        -self.logprob
    }

    /// The verifier's top alternatives, if recorded.
    pub fn top_logprobs(&self) -> Option<&[TopLogprob]> {
        self.top_logprobs.as_deref()
    }
}

/// Sequences of sampled tokens (docs/THEORY.md section 4d).
///
/// # Examples
///
/// ```
/// use speclight::trace::{Trace, TraceToken};
/// let mut trace = Trace::new();
/// trace.push(TraceToken::new(1, -0.2)?);
/// trace.push(TraceToken::new(2, -1.0)?);
/// trace.end_sequence();
/// trace.push(TraceToken::new(5, -0.7)?);
/// assert_eq!(trace.sequences().len(), 2);
/// assert_eq!(trace.num_tokens(), 3);
/// # Ok::<(), speclight::Error>(())
/// ```
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Trace {
    sequences: Vec<Vec<TraceToken>>,
    open: bool,
}

impl Trace {
    /// An empty trace.
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends a token to the current sequence (starting one if needed).
    pub fn push(&mut self, token: TraceToken) {
        if !self.open {
            self.sequences.push(Vec::new());
            self.open = true;
        }
        if let Some(seq) = self.sequences.last_mut() {
            seq.push(token);
        }
    }

    /// Ends the current sequence; the next token starts a new one. Ending
    /// an empty sequence does nothing.
    pub fn end_sequence(&mut self) {
        self.open = false;
    }

    /// The sequences, each non-empty.
    pub fn sequences(&self) -> &[Vec<TraceToken>] {
        &self.sequences
    }

    /// Total number of tokens.
    pub fn num_tokens(&self) -> usize {
        self.sequences.iter().map(Vec::len).sum()
    }
}

/// A JSON parse error of a trace, with the offending literal named when it
/// is a number JSON cannot hold (`NaN`, `-Infinity`, `-1e400`): serde's
/// message alone ("expected value", "invalid number") does not say which.
#[cfg(feature = "serde")]
pub(crate) fn json_error(text: &[u8], e: &serde_json::Error) -> String {
    let msg = e.to_string();
    let Some(line) = text.split(|&b| b == b'\n').nth(e.line().saturating_sub(1)) else {
        return msg;
    };
    let at = e.column().saturating_sub(1).min(line.len());
    let in_literal = |b: &u8| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.');
    let start = line[..at]
        .iter()
        .rposition(|b| !in_literal(b))
        .map_or(0, |i| i + 1);
    let end = line[at..]
        .iter()
        .position(|b| !in_literal(b))
        .map_or(line.len(), |i| at + i);
    let literal = String::from_utf8_lossy(&line[start..end]);
    let numeric = literal.bytes().any(|b| b.is_ascii_digit())
        || ["nan", "inf"]
            .iter()
            .any(|w| literal.to_ascii_lowercase().contains(w));
    if numeric && !literal.is_empty() {
        format!("{msg}: `{literal}` is not a finite JSON number (log-probabilities must be finite)")
    } else {
        msg
    }
}
