//! llama-server's per-response `timings` (ggml-org/llama.cpp at commit
//! 00efb3e18426, `tools/server/server-task.cpp`, `result_timings::to_json`):
//! when the request drafted (`draft_n > 0`) the object carries `draft_n`,
//! the draft tokens proposed over the whole request, and `draft_n_accepted`,
//! those the target accepted. It is in the `/completion` response, the
//! OpenAI-compatible responses and the last streamed chunk. A record is a
//! response (`{"timings": {...}, ...}`) or the `timings` object itself, as
//! a JSON array or JSON Lines; records without `draft_n` are skipped.
//!
//! These are totals: no step count and no per-position breakdown (see
//! [`super::totals`] for what they support).

use super::totals::DraftTotals;
use super::MetricsFormat;
use crate::error::Result;
use serde_json::Value;

fn timings(record: &Value) -> Option<&Value> {
    record
        .get("timings")
        .or_else(|| record.get("draft_n").map(|_| record))
}

/// Whether a record holds llama-server `timings` with draft counts.
pub fn looks_like(record: &Value) -> bool {
    timings(record).is_some_and(|t| t.get("draft_n").is_some())
}

/// Sums `draft_n` and `draft_n_accepted` over the records. O(size).
///
/// # Errors
///
/// [`Error::Metrics`](crate::Error::Metrics) naming the record for a missing `draft_n_accepted`, a
/// bad count, or more accepted than drafted tokens.
pub fn parse(records: &[Value]) -> Result<DraftTotals> {
    DraftTotals::sum_records(
        MetricsFormat::LlamacppTimings,
        records,
        |record| timings(record).filter(|t| t.get("draft_n").is_some()),
        "draft_n",
        "draft_n_accepted",
    )
}
