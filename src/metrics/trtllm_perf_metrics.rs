//! TensorRT-LLM's per-request perf metrics, as `trtllm-serve` returns them
//! from `/perf_metrics` (NVIDIA/TensorRT-LLM at commit 00057725d9a6,
//! `tensorrt_llm/serve/openai_server.py`, `get_perf_metrics`; requests are
//! recorded with `return_perf_metrics`): a JSON array of
//! `{"request_id": ..., "perf_metrics": {..., "speculative_decoding":
//! {"acceptance_rate", "total_accepted_draft_tokens", "total_draft_tokens"}}}`,
//! the `speculative_decoding` object present only when the request drafted.
//! The counts are accumulated per iteration by the C++ request
//! (`cpp/include/tensorrt_llm/batch_manager/llmRequest.h` at commit
//! 00e9b8a773a6, `updateNumTokensPerIteration`): accepted += tokens of the
//! step - 1, drafted += min(draft tokens, `getMaxDraftPathLen()`), so for a
//! tree the drafted count is the longest path, not the nodes. There is
//! no histogram and no step count: totals only (see [`super::totals`]).
//! A record is an array item, its `perf_metrics`, or the
//! `speculative_decoding` object itself; `acceptance_rate` is not read.

use super::totals::DraftTotals;
use super::{count, MetricsFormat};
use crate::error::{Error, Result};
use serde_json::Value;

fn block(record: &Value) -> Option<&Value> {
    record
        .pointer("/perf_metrics/speculative_decoding")
        .or_else(|| record.get("speculative_decoding"))
        .or_else(|| record.get("total_draft_tokens").map(|_| record))
        .filter(|b| b.get("total_draft_tokens").is_some())
}

/// Whether a record holds TensorRT-LLM's speculative perf metrics.
pub fn looks_like(record: &Value) -> bool {
    block(record).is_some()
}

/// Sums `total_draft_tokens` and `total_accepted_draft_tokens` over the
/// records that drafted. O(size).
///
/// # Errors
///
/// [`Error::Metrics`] naming the record for a missing accepted count, a bad
/// count, or more accepted than drafted tokens.
pub fn parse(records: &[Value]) -> Result<DraftTotals> {
    let mut totals = DraftTotals {
        format: MetricsFormat::TensorrtllmPerfMetrics,
        records: 0,
        draft_tokens: 0,
        accepted_tokens: 0,
    };
    for (r, record) in records.iter().enumerate() {
        let Some(b) = block(record) else { continue };
        let drafted = count(
            &b["total_draft_tokens"],
            &format!("record {r}: total_draft_tokens"),
        )?;
        let accepted = b
            .get("total_accepted_draft_tokens")
            .ok_or_else(|| {
                Error::Metrics(format!(
                    "record {r}: missing counter total_accepted_draft_tokens"
                ))
            })
            .and_then(|v| count(v, &format!("record {r}: total_accepted_draft_tokens")))?;
        if accepted > drafted {
            return Err(Error::Metrics(format!(
                "inconsistent totals: record {r}: total_accepted_draft_tokens {accepted} > total_draft_tokens {drafted}"
            )));
        }
        totals.records += 1;
        totals.draft_tokens = totals.draft_tokens.saturating_add(drafted);
        totals.accepted_tokens = totals.accepted_tokens.saturating_add(accepted);
    }
    Ok(totals)
}
