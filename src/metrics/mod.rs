//! Server acceptance metrics: read what inference servers already emit about
//! speculative decoding, and fit the per-depth acceptance of the drafter's
//! first choice (docs/load.md).
//!
//! For a chain (or the rank-0 spine of a tree) the servers' counters give,
//! per verifier step with a draft, how many draft tokens were accepted, so
//! `P(X >= k)` for every `k` (docs/THEORY.md section 2):
//!
//! | format | read from | module |
//! | --- | --- | --- |
//! | vLLM Prometheus text (`/metrics`) | `vllm:spec_decode_num_drafts`, `..._num_draft_tokens`, `..._num_accepted_tokens`, `..._num_accepted_tokens_per_pos{position}` | [`prometheus`] |
//! | llama.cpp Prometheus text (`llama-server /metrics`) | the same counters with the `llamacpp:` prefix | [`prometheus`] |
//! | mistral.rs Prometheus text | `mistralrs_speculative_drafts`, `..._draft_tokens_proposed`, `..._draft_tokens_accepted`, `..._draft_tokens_accepted_per_pos{position}` | [`prometheus`] |
//! | vLLM per-request JSON | `metrics.speculative_decoding.acceptance_histogram` | [`vllm_histogram`] |
//! | SGLang responses | `meta_info.spec_verify_ct`, `meta_info.spec_accept_histogram` | [`sglang`] |
//! | llama.cpp responses (totals only) | `timings.draft_n`, `timings.draft_n_accepted` | [`llamacpp_timings`] |
//! | TensorRT-LLM `/perf_metrics` (totals only) | `perf_metrics.speculative_decoding.total_draft_tokens`, `..total_accepted_draft_tokens` | [`trtllm_perf_metrics`] |
//!
//! [`read`] detects the format by content; [`fit`] turns per-position
//! counts into per-depth acceptance with Wilson intervals, [`fit_totals`]
//! says what totals alone support; [`predict_tree`] values the best tree
//! under an explicit assumption about the ranks these metrics never see;
//! [`synthetic`] writes every format from a simulated run of the bundled
//! n-gram pair, whose true acceptance is known.
//!
//! ```
//! use speclight::metrics::{fit, parse};
//! let text = "vllm:spec_decode_num_drafts_total 100\n\
//!             vllm:spec_decode_num_draft_tokens_total 300\n\
//!             vllm:spec_decode_num_accepted_tokens_total 150\n\
//!             vllm:spec_decode_num_accepted_tokens_per_pos_total{position=\"0\"} 80\n\
//!             vllm:spec_decode_num_accepted_tokens_per_pos_total{position=\"1\"} 50\n\
//!             vllm:spec_decode_num_accepted_tokens_per_pos_total{position=\"2\"} 20\n";
//! let f = fit(&parse(text)?, speclight::stats::Z95)?;
//! assert_eq!(f.acceptance_by_depth[1].estimate, 50.0 / 80.0);
//! assert_eq!(f.mean_accepted, 1.5);
//! # Ok::<(), speclight::Error>(())
//! ```

mod fit;
mod histogram;
pub mod llamacpp_timings;
pub mod prometheus;
pub mod sglang;
pub mod synthetic;
pub mod totals;
mod tree_prediction;
pub mod trtllm_perf_metrics;
pub mod vllm_histogram;

pub use fit::{fit, AcceptanceFit, DepthAcceptance};
pub use totals::{fit_totals, ConstantDepthFit, DraftTotals, TotalsFit};
pub use tree_prediction::{predict_tree, RankTail, TreePrediction, MAX_PREDICTION_CELLS};

use crate::error::{Error, Result};

/// Most draft positions (depths) a metrics file may describe.
pub const MAX_POSITIONS: usize = 4096;
/// Largest count accepted: integers above 2^53 are not exact in `f64`.
pub const MAX_COUNT: u64 = 1 << 53;

/// Which server format a file was read as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "snake_case"))]
pub enum MetricsFormat {
    /// vLLM's Prometheus text exposition.
    VllmPrometheus,
    /// llama-server's Prometheus text exposition (`llamacpp:` counters).
    LlamacppPrometheus,
    /// mistral.rs's Prometheus text exposition (`mistralrs_speculative_`).
    MistralrsPrometheus,
    /// vLLM's per-request `metrics.speculative_decoding` JSON.
    VllmRequestHistogram,
    /// SGLang's `meta_info` records.
    Sglang,
    /// llama-server's per-response `timings` (totals only).
    LlamacppTimings,
    /// TensorRT-LLM's `/perf_metrics` records (totals only).
    TensorrtllmPerfMetrics,
}

/// What a metrics file holds: counts per draft position, or totals only.
#[derive(Debug, Clone, PartialEq)]
pub enum ServerMetrics {
    /// Steps and the steps that reached each position.
    PerPosition(AcceptanceCounts),
    /// Drafted and accepted tokens only.
    Totals(DraftTotals),
}

/// Acceptance counts of a chain, whatever the format.
///
/// `reached[k]` is the number of verifier steps that accepted at least
/// `k + 1` draft tokens; `reached.len()` is the number of draft positions
/// the server reported (its draft length `K`).
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct AcceptanceCounts {
    /// Where the counts came from.
    pub format: MetricsFormat,
    /// Verifier steps that carried a draft.
    pub steps: u64,
    /// `reached[k]`: steps with at least `k + 1` accepted draft tokens.
    pub reached: Vec<u64>,
    /// Draft tokens proposed in total, when the format reports it.
    pub draft_tokens: Option<u64>,
    /// Accepted draft tokens in total (`sum reached`).
    pub accepted_tokens: u64,
}

impl AcceptanceCounts {
    /// Checks the invariants every format must meet: at least one step,
    /// `steps >= reached[0] >= reached[1] >= ...`, `accepted = sum reached`,
    /// `accepted <= draft tokens` and at most [`MAX_POSITIONS`] positions.
    ///
    /// # Errors
    ///
    /// [`Error::Metrics`] naming the broken invariant.
    pub fn validate(&self) -> Result<()> {
        let bad = |m: String| Err(Error::Metrics(m));
        if self.steps == 0 {
            return bad("no verifier steps with a draft (drafts counter is 0)".into());
        }
        if self.reached.is_empty() {
            return bad("no per-position acceptance counts".into());
        }
        if self.reached.len() > MAX_POSITIONS {
            return bad(format!(
                "{} draft positions, above the limit {MAX_POSITIONS}",
                self.reached.len()
            ));
        }
        let mut previous = self.steps;
        for (k, &r) in self.reached.iter().enumerate() {
            if r > previous {
                let what = if k == 0 {
                    "verifier steps"
                } else {
                    "the position before"
                };
                return bad(format!(
                    "inconsistent totals: {r} steps accepted position {k}, more than {previous} ({what})"
                ));
            }
            previous = r;
        }
        let sum: u64 = self.reached.iter().sum();
        if sum != self.accepted_tokens {
            return bad(format!(
                "inconsistent totals: accepted tokens {} but the per-position counts sum to {sum}",
                self.accepted_tokens
            ));
        }
        if let Some(drafted) = self.draft_tokens {
            if self.accepted_tokens > drafted {
                return bad(format!(
                    "inconsistent totals: {} accepted tokens but only {drafted} drafted",
                    self.accepted_tokens
                ));
            }
        }
        Ok(())
    }
}

/// Reads a metrics file, detecting the format by content: Prometheus text
/// (a vLLM, llama.cpp or mistral.rs speculative-decoding sample), or JSON /
/// JSON Lines records holding vLLM's `speculative_decoding` block, SGLang's
/// `meta_info`, llama-server's `timings` with `draft_n` or TensorRT-LLM's
/// `perf_metrics.speculative_decoding`. Counts of several
/// records (requests) are summed. O(size).
///
/// # Errors
///
/// [`Error::Metrics`] for an unknown format, missing counters, negative or
/// non-integer counts and inconsistent totals; [`Error::Parse`] for
/// malformed JSON.
pub fn read(text: &str) -> Result<ServerMetrics> {
    if prometheus::looks_like(text) {
        let counts = prometheus::parse(text)?;
        counts.validate()?;
        return Ok(ServerMetrics::PerPosition(counts));
    }
    let records = json_records(text)?;
    let counts = if records.iter().any(vllm_histogram::looks_like) {
        vllm_histogram::parse(&records)?
    } else if records.iter().any(sglang::looks_like) {
        sglang::parse(&records)?
    } else if records.iter().any(llamacpp_timings::looks_like) {
        return totals_of(llamacpp_timings::parse(&records)?);
    } else if records.iter().any(trtllm_perf_metrics::looks_like) {
        return totals_of(trtllm_perf_metrics::parse(&records)?);
    } else {
        return Err(Error::Metrics(
            "unknown format: expected vLLM, llama.cpp or mistral.rs Prometheus text (speculative counters), \
             vLLM per-request JSON (metrics.speculative_decoding), SGLang records (meta_info.spec_verify_ct), \
             llama-server responses (timings.draft_n) or TensorRT-LLM /perf_metrics (speculative_decoding.total_draft_tokens)"
                .into(),
        ));
    };
    counts.validate()?;
    Ok(ServerMetrics::PerPosition(counts))
}

fn totals_of(totals: DraftTotals) -> Result<ServerMetrics> {
    totals.validate()?;
    Ok(ServerMetrics::Totals(totals))
}

/// [`read`], for the formats with per-position counts.
///
/// # Errors
///
/// As [`read`]; [`Error::Metrics`] for a totals-only format (use [`read`]
/// and [`fit_totals`]).
pub fn parse(text: &str) -> Result<AcceptanceCounts> {
    match read(text)? {
        ServerMetrics::PerPosition(counts) => Ok(counts),
        ServerMetrics::Totals(t) => Err(Error::Metrics(format!(
            "{:?} carries only totals (drafted, accepted), no per-position counts: see metrics::fit_totals",
            t.format
        ))),
    }
}

/// One JSON document (an object or an array of objects) or JSON Lines.
fn json_records(text: &str) -> Result<Vec<serde_json::Value>> {
    let trimmed = text.trim_start();
    if let Ok(value) = serde_json::from_str::<serde_json::Value>(trimmed) {
        return Ok(match value {
            serde_json::Value::Array(items) => items,
            other => vec![other],
        });
    }
    let mut records = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let value = serde_json::from_str(line)
            .map_err(|e| Error::Parse(format!("metrics line {}: {e}", i + 1)))?;
        records.push(value);
    }
    Ok(records)
}

/// A JSON count: a non-negative integer no larger than [`MAX_COUNT`].
fn count(value: &serde_json::Value, what: &str) -> Result<u64> {
    match value.as_u64() {
        Some(n) if n <= MAX_COUNT => Ok(n),
        Some(n) => Err(Error::Metrics(format!("{what} = {n} is above {MAX_COUNT}"))),
        None => Err(Error::Metrics(format!(
            "{what} = {value} is not a non-negative integer count"
        ))),
    }
}
