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
use super::MetricsFormat;
use crate::error::Result;
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
/// [`Error::Metrics`](crate::Error::Metrics) naming the record for a missing accepted count, a bad
/// count, or more accepted than drafted tokens.
pub fn parse(records: &[Value]) -> Result<DraftTotals> {
    DraftTotals::sum_records(
        MetricsFormat::TensorrtllmPerfMetrics,
        records,
        block,
        "total_draft_tokens",
        "total_accepted_draft_tokens",
    )
}
