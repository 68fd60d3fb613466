//! The paired-trace record: one JSON object per (position, depth).

use crate::dist::{TokenId, SUM_TOLERANCE};
use serde::{Deserialize, Serialize};

/// Deepest draft depth a record may have: a group of records for one
/// `(seq, pos)` is buffered while it is walked, so its size must be bounded.
pub const MAX_TRACE_DEPTH: u32 = 256;

/// Longest `draft_top` list a record may have.
pub const MAX_TOP_K: usize = 4096;

/// One record of a paired trace (JSON Lines, one object per line):
///
/// ```text
/// {"seq": s, "pos": i, "depth": d, "draft_top": [[token, logprob], ...], "target": token, "target_logprob": x}
/// ```
///
/// - `draft_top` is the drafter's top-k for the token `d` steps ahead of
///   position `i`, drafted along the verifier's own continuation (the
///   drafter saw the verifier's tokens at depths `1..d`), most probable
///   first: the list index is the *rank*.
/// - `target` is the token the verifier actually produced there.
/// - `target_logprob` (optional) is the verifier's log-probability of
///   `target` (natural log).
///
/// Unknown fields are refused so that a misspelt field is caught.
///
/// # Examples
///
/// ```
/// use speclight::tune::TraceRecord;
/// let r: TraceRecord = serde_json::from_str(
///     r#"{"seq": 0, "pos": 5, "depth": 1, "draft_top": [[42, -0.3], [7, -1.6]], "target": 7}"#,
/// )?;
/// assert_eq!(r.target_rank(), Some(1));
/// assert!(r.check().is_ok());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TraceRecord {
    /// Sequence id.
    pub seq: u64,
    /// Position in the sequence where drafting starts.
    pub pos: u64,
    /// Draft depth, 1 for the token right after `pos`.
    pub depth: u32,
    /// The drafter's top-k `(token, logprob)`, most probable first.
    pub draft_top: Vec<(TokenId, f64)>,
    /// The verifier's token at that depth.
    pub target: TokenId,
    /// The verifier's log-probability of `target`, when recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_logprob: Option<f64>,
}

impl TraceRecord {
    /// The rank of `target` in `draft_top` (0 = the drafter's top token), or
    /// `None` when the drafter did not list it. O(k).
    pub fn target_rank(&self) -> Option<usize> {
        self.draft_top.iter().position(|&(t, _)| t == self.target)
    }

    /// Checks the record's own invariants (ordering across records is
    /// checked by [`super::TraceReader`]). O(k log k).
    ///
    /// # Errors
    ///
    /// A lower-case reason naming the value: depth outside
    /// `1..=MAX_TRACE_DEPTH`, an empty or over-long `draft_top`, a logprob
    /// that is NaN, `+inf` or positive, logprobs not non-increasing (the
    /// list must be in rank order), a repeated token, or a bad
    /// `target_logprob`.
    pub fn check(&self) -> std::result::Result<(), String> {
        if self.depth == 0 || self.depth > MAX_TRACE_DEPTH {
            return Err(format!(
                "depth {} is not in 1..={MAX_TRACE_DEPTH}",
                self.depth
            ));
        }
        if self.draft_top.is_empty() {
            return Err("draft_top is empty".into());
        }
        if self.draft_top.len() > MAX_TOP_K {
            return Err(format!(
                "draft_top has {} entries, above {MAX_TOP_K}",
                self.draft_top.len()
            ));
        }
        for (k, &(token, lp)) in self.draft_top.iter().enumerate() {
            if lp.is_nan() || lp > SUM_TOLERANCE {
                return Err(format!(
                    "draft_top[{k}] (token {token}) has logprob {lp}, not <= 0"
                ));
            }
            if k > 0 && lp > self.draft_top[k - 1].1 {
                return Err(format!(
                    "draft_top is not in rank order: logprob {lp} at rank {k} exceeds {} at rank {}",
                    self.draft_top[k - 1].1,
                    k - 1
                ));
            }
        }
        if let Some(t) = repeated_token(&self.draft_top) {
            return Err(format!("draft_top lists token {t} twice"));
        }
        if let Some(x) = self.target_logprob {
            if x.is_nan() || x > SUM_TOLERANCE {
                return Err(format!("target_logprob {x} is not <= 0"));
            }
        }
        Ok(())
    }
}

/// A token listed twice, if any: pairwise for short lists (no allocation on
/// the hot path of a typical top-8 record), by sorting otherwise.
fn repeated_token(top: &[(TokenId, f64)]) -> Option<TokenId> {
    if top.len() <= 32 {
        for (i, a) in top.iter().enumerate() {
            if top[i + 1..].iter().any(|b| b.0 == a.0) {
                return Some(a.0);
            }
        }
        return None;
    }
    let mut tokens: Vec<TokenId> = top.iter().map(|e| e.0).collect();
    tokens.sort_unstable();
    tokens.windows(2).find(|w| w[0] == w[1]).map(|w| w[0])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(json: &str) -> std::result::Result<TraceRecord, String> {
        let r: TraceRecord = serde_json::from_str(json).map_err(|e| e.to_string())?;
        r.check().map(|()| r)
    }

    #[test]
    fn repeated_tokens_are_found_in_short_and_long_lists() {
        for n in [2usize, 10, 32, 33, 100] {
            let mut top: Vec<(TokenId, f64)> = (0..n as u32).map(|t| (t, -(t as f64))).collect();
            assert_eq!(repeated_token(&top), None);
            let dup = (n / 2 - 1) as u32;
            top[n - 1].0 = dup;
            assert_eq!(repeated_token(&top), Some(dup), "n={n}");
        }
    }

    #[test]
    fn round_trips_and_ranks() {
        let r = rec(r#"{"seq":1,"pos":2,"depth":3,"draft_top":[[5,-0.1],[9,-2.0]],"target":9,"target_logprob":-0.5}"#).unwrap();
        assert_eq!(r.target_rank(), Some(1));
        let back: TraceRecord = serde_json::from_str(&serde_json::to_string(&r).unwrap()).unwrap();
        assert_eq!(back, r);
        let miss = rec(r#"{"seq":1,"pos":2,"depth":1,"draft_top":[[5,-0.1]],"target":4}"#).unwrap();
        assert_eq!(miss.target_rank(), None);
    }

    #[test]
    fn refuses_each_broken_invariant() {
        let cases = [
            (
                r#"{"seq":0,"pos":0,"depth":0,"draft_top":[[1,-0.1]],"target":1}"#,
                "depth 0",
            ),
            (
                r#"{"seq":0,"pos":0,"depth":1,"draft_top":[],"target":1}"#,
                "empty",
            ),
            (
                r#"{"seq":0,"pos":0,"depth":1,"draft_top":[[1,0.5]],"target":1}"#,
                "not <= 0",
            ),
            (
                r#"{"seq":0,"pos":0,"depth":1,"draft_top":[[1,-2.0],[2,-1.0]],"target":1}"#,
                "rank order",
            ),
            (
                r#"{"seq":0,"pos":0,"depth":1,"draft_top":[[1,-1.0],[1,-2.0]],"target":1}"#,
                "twice",
            ),
            (
                r#"{"seq":0,"pos":0,"depth":1,"draft_top":[[1,-1.0]],"target":1,"target_logprob":1.0}"#,
                "target_logprob",
            ),
            (
                r#"{"seq":0,"pos":0,"depth":1,"draft_top":[[1,-1.0]],"target":1,"extra":1}"#,
                "unknown field",
            ),
            (
                r#"{"seq":0,"pos":0,"depth":1,"draft_top":[[1,-1.0]]}"#,
                "missing field",
            ),
        ];
        for (json, want) in cases {
            let err = rec(json).unwrap_err();
            assert!(err.contains(want), "{json}: {err}");
        }
    }
}
