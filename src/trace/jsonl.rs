//! The JSONL form of a verifier trace: a bounded streaming reader and a
//! writer.
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

use super::{TopLogprob, Trace, TraceToken};
use crate::dist::TokenId;
use crate::error::{Error, Result};
use std::io::Write;

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
        let raw: RawLine =
            serde_json::from_slice(&buf).map_err(|e| bad(super::json_error(&buf, &e)))?;
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

#[derive(serde::Serialize)]
struct TokenLine<'a> {
    token: TokenId,
    logprob: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    top_logprobs: Option<&'a [TopLogprob]>,
}

/// Writes `trace` as JSONL: one `{"token", "logprob", "top_logprobs"?}` line
/// per token and `{"end": true}` after every sequence but the last. Reading
/// it back with [`read_jsonl`] gives the same trace. O(tokens).
///
/// # Errors
///
/// [`Error::Parse`] when writing fails (the message carries the I/O error).
///
/// # Examples
///
/// ```
/// use speclight::trace::{read_jsonl, write_jsonl, ReadLimits, Trace, TraceToken};
/// let mut trace = Trace::new();
/// trace.push(TraceToken::new(3, -0.25)?);
/// let mut out = Vec::new();
/// write_jsonl(&trace, &mut out)?;
/// assert_eq!(String::from_utf8(out.clone()).unwrap(), "{\"token\":3,\"logprob\":-0.25}\n");
/// assert_eq!(read_jsonl(&out[..], &ReadLimits::default())?, trace);
/// # Ok::<(), speclight::Error>(())
/// ```
pub fn write_jsonl<W: Write>(trace: &Trace, mut out: W) -> Result<()> {
    let io = |e: std::io::Error| Error::Parse(format!("cannot write the trace: {e}"));
    let sequences = trace.sequences();
    for (i, seq) in sequences.iter().enumerate() {
        for t in seq {
            let line = TokenLine {
                token: t.token(),
                logprob: t.logprob(),
                top_logprobs: t.top_logprobs(),
            };
            serde_json::to_writer(&mut out, &line)
                .map_err(|e| Error::Parse(format!("cannot write the trace: {e}")))?;
            out.write_all(b"\n").map_err(io)?;
        }
        if i + 1 < sequences.len() {
            out.write_all(b"{\"end\":true}\n").map_err(io)?;
        }
    }
    out.flush().map_err(io)
}

#[cfg(test)]
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
            // Issue 12 item 15: alternatives that sum to about 2.
            (
                "{\"token\": 1, \"logprob\": -0.01, \"top_logprobs\": [{\"token\": 1, \"logprob\": -0.01}, {\"token\": 2, \"logprob\": -0.01}]}",
                1,
                "sum to 1.98",
            ),
            // Issue 12 item 14: numbers JSON cannot hold are named.
            ("{\"token\": 1, \"logprob\": NaN}\n", 1, "`NaN` is not a finite JSON number"),
            ("\n{\"token\": 1, \"logprob\": -1e400}\n", 2, "`-1e400` is not a finite"),
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

    #[test]
    fn jsonl_round_trip_keeps_sequences_and_alternatives() {
        let mut trace = Trace::new();
        let top = vec![
            TopLogprob {
                token: 4,
                logprob: -0.1,
            },
            TopLogprob {
                token: 9,
                logprob: -2.4,
            },
        ];
        trace.push(
            TraceToken::new(4, -0.1)
                .unwrap()
                .with_top_logprobs(top)
                .unwrap(),
        );
        trace.push(TraceToken::new(9, -2.4).unwrap());
        trace.end_sequence();
        trace.push(TraceToken::new(1, -0.0).unwrap());
        let mut out = Vec::new();
        write_jsonl(&trace, &mut out).unwrap();
        let back = read_jsonl(&out[..], &ReadLimits::default()).unwrap();
        assert_eq!(back, trace);
        assert_eq!(String::from_utf8(out).unwrap().lines().count(), 4);
    }
}
