//! Verifier traces: text sampled from the verifier with the log-probability
//! of every sampled token (THEORY.md section 4d), and a bounded streaming
//! reader for their JSONL form.
//!
//! One JSON object per line:
//!
//! ```text
//! {"token": 17, "logprob": -0.41}
//! {"token": 3, "logprob": -2.2, "top_logprobs": [{"token": 9, "logprob": -0.3}, {"token": 3, "logprob": -2.2}]}
//! {"end": true}
//! ```
//!
//! `{"end": true}` ends a sequence (a file may hold several; the last needs
//! no end marker). `top_logprobs`, the verifier's most probable tokens at that
//! position, is optional. Blank lines are skipped. [`Trace`] is the in-memory
//! form any reader produces.

use crate::dist::TokenId;
use crate::error::{Error, Result};

/// Largest positive log-probability accepted as rounding noise of a
/// probability-1 token; such values are stored as 0.
pub const LOGPROB_TOLERANCE: f64 = 1e-6;

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
/// use speclight::trace::TraceToken;
/// let t = TraceToken::new(7, -0.5)?;
/// assert_eq!(t.surprisal(), 0.5);
/// assert!(TraceToken::new(7, 0.5).is_err());
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
    /// As [`TraceToken::new`] for any entry (the index names the entry), and
    /// [`Error::DuplicateToken`] for a repeated token.
    pub fn with_top_logprobs(mut self, mut top: Vec<TopLogprob>) -> Result<Self> {
        for (i, t) in top.iter_mut().enumerate() {
            t.logprob = check_logprob(i, t.logprob)?;
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

/// Sequences of sampled tokens (THEORY.md section 4d).
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

/// Bounds on what [`read_jsonl`] accepts, so that a wrong or hostile file
/// fails with an error instead of exhausting memory.
///
/// # Examples
///
/// ```
/// let limits = speclight::trace::ReadLimits { max_records: 1000, ..Default::default() };
/// assert_eq!(limits.max_line_bytes, 1 << 20);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReadLimits {
    /// Most records (token and end lines) read; default 2^26.
    pub max_records: usize,
    /// Longest line in bytes, newline excluded; default 1 MiB.
    pub max_line_bytes: usize,
}

impl Default for ReadLimits {
    fn default() -> Self {
        Self {
            max_records: 1 << 26,
            max_line_bytes: 1 << 20,
        }
    }
}

#[cfg(feature = "serde")]
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLine {
    token: Option<TokenId>,
    logprob: Option<f64>,
    top_logprobs: Option<Vec<TopLogprob>>,
    end: Option<bool>,
}

/// Reads a JSONL trace (see the module docs) line by line, never holding more
/// than one line beyond the parsed tokens. Time O(bytes), space O(tokens +
/// max_line_bytes).
///
/// # Errors
///
/// [`Error::TraceLine`] with the 1-based line number for an I/O error, a line
/// longer than `limits.max_line_bytes`, more than `limits.max_records`
/// records, malformed JSON, unknown fields, a token line without `token` or
/// `logprob`, an `end` that is not `true` or comes with other fields, and a
/// log-probability that is positive or not finite.
///
/// # Examples
///
/// ```
/// use speclight::trace::{read_jsonl, ReadLimits};
/// let text = "{\"token\": 1, \"logprob\": -0.5}\n{\"end\": true}\n{\"token\": 2, \"logprob\": -1}\n";
/// let trace = read_jsonl(text.as_bytes(), &ReadLimits::default())?;
/// assert_eq!(trace.sequences().len(), 2);
/// let err = read_jsonl("{\"token\": 1}\n".as_bytes(), &ReadLimits::default()).unwrap_err();
/// assert!(err.to_string().starts_with("trace line 1:"));
/// # Ok::<(), speclight::Error>(())
/// ```
#[cfg(feature = "serde")]
pub fn read_jsonl<R: std::io::BufRead>(mut reader: R, limits: &ReadLimits) -> Result<Trace> {
    use std::io::{BufRead as _, Read};
    let mut trace = Trace::new();
    let mut buf = Vec::new();
    let mut line = 0usize;
    let mut records = 0usize;
    let cap = limits.max_line_bytes as u64 + 1;
    loop {
        buf.clear();
        line += 1;
        let bad = |reason: String| Error::TraceLine { line, reason };
        let n = (&mut reader)
            .take(cap)
            .read_until(b'\n', &mut buf)
            .map_err(|e| bad(format!("cannot read: {e}")))?;
        if n == 0 {
            break;
        }
        if buf.last() == Some(&b'\n') {
            buf.pop();
            if buf.last() == Some(&b'\r') {
                buf.pop();
            }
        } else if buf.len() > limits.max_line_bytes {
            return Err(bad(format!(
                "longer than the limit of {} bytes",
                limits.max_line_bytes
            )));
        }
        if buf.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        records += 1;
        if records > limits.max_records {
            return Err(bad(format!(
                "more than the limit of {} records",
                limits.max_records
            )));
        }
        let raw: RawLine = serde_json::from_slice(&buf).map_err(|e| bad(e.to_string()))?;
        match raw {
            RawLine {
                end: Some(true),
                token: None,
                logprob: None,
                top_logprobs: None,
            } => trace.end_sequence(),
            RawLine { end: Some(_), .. } => {
                return Err(bad(
                    "an end record must be exactly {\"end\": true}".to_string()
                ))
            }
            RawLine {
                token: Some(token),
                logprob: Some(logprob),
                top_logprobs,
                end: None,
            } => {
                let mut t = TraceToken::new(token, logprob).map_err(|e| bad(e.to_string()))?;
                if let Some(top) = top_logprobs {
                    t = t
                        .with_top_logprobs(top)
                        .map_err(|e| bad(format!("top_logprobs: {e}")))?;
                }
                trace.push(t);
            }
            RawLine { token: None, .. } => return Err(bad("missing field `token`".into())),
            RawLine { .. } => return Err(bad("missing field `logprob`".into())),
        }
    }
    Ok(trace)
}

#[cfg(all(test, feature = "serde"))]
mod tests {
    use super::*;

    fn read(text: &str) -> Result<Trace> {
        read_jsonl(text.as_bytes(), &ReadLimits::default())
    }

    #[test]
    fn reads_sequences_and_top_lists() {
        let text = "{\"token\": 1, \"logprob\": -0.5, \"top_logprobs\": [{\"token\": 1, \"logprob\": -0.5}, {\"token\": 2, \"logprob\": -1.5}]}\n\
                    \n{\"end\": true}\r\n{\"end\": true}\n{\"token\": 2, \"logprob\": 0.0}";
        let t = read(text).unwrap();
        assert_eq!(t.sequences().len(), 2);
        assert_eq!(t.sequences()[0][0].top_logprobs().unwrap().len(), 2);
        assert_eq!(t.sequences()[1][0].surprisal(), 0.0);
    }

    #[test]
    fn errors_carry_the_line_number() {
        let cases = [
            ("{\"token\": 1, \"logprob\": -1}\n{\"token\": 1}\n", 2, "logprob"),
            ("\n\n{\"logprob\": -1}\n", 3, "token"),
            ("{\"token\": 1, \"logprob\": 2}\n", 1, "above 0"),
            ("{\"end\": false}\n", 1, "end"),
            ("{\"end\": true, \"token\": 3}\n", 1, "end"),
            ("{\"token\": 1, \"logprob\": -1, \"lp\": 3}\n", 1, "unknown field"),
            ("{\"token\": -1, \"logprob\": -1}\n", 1, "invalid value"),
            ("not json\n", 1, "expected"),
            (
                "{\"token\": 1, \"logprob\": -1, \"top_logprobs\": [{\"token\": 1, \"logprob\": -1}, {\"token\": 1, \"logprob\": -2}]}",
                1,
                "more than once",
            ),
        ];
        for (text, line, needle) in cases {
            match read(text) {
                Err(Error::TraceLine { line: l, reason }) => {
                    assert_eq!(l, line, "{text}");
                    assert!(reason.contains(needle), "{reason} lacks {needle}");
                }
                other => panic!("{text}: {other:?}"),
            }
        }
    }

    #[test]
    fn limits_are_enforced() {
        let text = "{\"token\": 1, \"logprob\": -1}\n".repeat(5);
        let limits = ReadLimits {
            max_records: 4,
            ..Default::default()
        };
        let err = read_jsonl(text.as_bytes(), &limits).unwrap_err();
        assert!(matches!(err, Error::TraceLine { line: 5, .. }));
        let limits = ReadLimits {
            max_line_bytes: 10,
            ..Default::default()
        };
        let err = read_jsonl(text.as_bytes(), &limits).unwrap_err();
        assert!(matches!(err, Error::TraceLine { line: 1, .. }), "{err}");
        // A line of exactly the limit is fine.
        let line = "{\"end\":true}";
        let limits = ReadLimits {
            max_line_bytes: line.len(),
            ..Default::default()
        };
        assert!(read_jsonl(format!("{line}\n{line}").as_bytes(), &limits).is_ok());
    }
}
