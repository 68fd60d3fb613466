//! vLLM's per-request speculative-decoding metrics (vLLM PR #48915): a
//! response's `metrics.speculative_decoding` object, or that object alone,
//! holding `acceptance_histogram` (bin `i`: steps that accepted exactly `i`
//! draft tokens, `num_spec_tokens + 1` bins), `num_spec_steps`,
//! `num_accepted_draft_tokens` and `num_draft_tokens`; vLLM documents
//! `mean_acceptance_length = 1 + num_accepted_draft_tokens / num_spec_steps`.
//! One record per request, as a JSON array or JSON Lines.

use super::histogram::HistogramSum;
use super::{count, AcceptanceCounts, MetricsFormat};
use crate::error::{Error, Result};
use serde_json::Value;

fn block(record: &Value) -> Option<&Value> {
    let nested = record.pointer("/metrics/speculative_decoding");
    nested.or_else(|| record.get("acceptance_histogram").map(|_| record))
}

/// Whether a record holds vLLM's per-request block.
pub fn looks_like(record: &Value) -> bool {
    block(record).is_some_and(|b| {
        b.get("acceptance_histogram").is_some() && b.get("num_spec_steps").is_some()
    })
}

/// Sums the histograms of every record that has the block (records without
/// one, e.g. requests served without speculation, are skipped). O(size).
///
/// # Errors
///
/// [`Error::Metrics`] naming the record for a missing field, a bad count, a
/// histogram whose steps differ from `num_spec_steps`, or accepted tokens
/// that differ from `num_accepted_draft_tokens`.
pub fn parse(records: &[Value]) -> Result<AcceptanceCounts> {
    let mut sum = HistogramSum::default();
    let mut drafted = 0u64;
    for (r, record) in records.iter().enumerate() {
        let Some(b) = block(record) else { continue };
        let field = |k: &str| {
            b.get(k)
                .ok_or_else(|| Error::Metrics(format!("record {r}: missing {k}")))
        };
        let hist = field("acceptance_histogram")?;
        let steps = count(
            field("num_spec_steps")?,
            &format!("record {r}: num_spec_steps"),
        )?;
        let mut one = HistogramSum::default();
        one.add(hist, &format!("record {r}: acceptance_histogram"))?;
        let counts = one.into_counts(MetricsFormat::VllmRequestHistogram, None);
        if counts.steps != steps {
            return Err(Error::Metrics(format!(
                "inconsistent totals: record {r}: acceptance_histogram counts {} steps, num_spec_steps is {steps}",
                counts.steps
            )));
        }
        if let Some(a) = b.get("num_accepted_draft_tokens") {
            let accepted = count(a, &format!("record {r}: num_accepted_draft_tokens"))?;
            if accepted != counts.accepted_tokens {
                return Err(Error::Metrics(format!(
                    "inconsistent totals: record {r}: the histogram accepts {} tokens, num_accepted_draft_tokens is {accepted}",
                    counts.accepted_tokens
                )));
            }
        }
        if let Some(d) = b.get("num_draft_tokens") {
            drafted = drafted.saturating_add(count(d, &format!("record {r}: num_draft_tokens"))?);
        }
        sum.add(hist, &format!("record {r}: acceptance_histogram"))?;
    }
    Ok(sum.into_counts(MetricsFormat::VllmRequestHistogram, Some(drafted)))
}
