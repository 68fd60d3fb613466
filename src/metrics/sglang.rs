//! SGLang's per-request `meta_info` (python/sglang/srt/managers/
//! tokenizer_manager.py): `spec_verify_ct` (verifier steps of the request)
//! and `spec_accept_histogram` (bin `i`: steps that accepted exactly `i`
//! draft tokens). A record is a `/generate` response (`{"text": ...,
//! "meta_info": {...}}`) or the `meta_info` object itself, as a JSON array
//! or JSON Lines.

use super::histogram::HistogramSum;
use super::{count, AcceptanceCounts, MetricsFormat};
use crate::error::{Error, Result};
use serde_json::Value;

fn meta(record: &Value) -> Option<&Value> {
    record
        .get("meta_info")
        .or_else(|| record.get("spec_verify_ct").map(|_| record))
}

/// Whether a record holds SGLang's speculative `meta_info`.
pub fn looks_like(record: &Value) -> bool {
    meta(record).is_some_and(|m| m.get("spec_verify_ct").is_some())
}

/// Sums the histograms of every record with `spec_verify_ct`. O(size).
///
/// # Errors
///
/// [`Error::Metrics`] naming the record for a missing histogram, a bad
/// count, or a histogram whose steps differ from `spec_verify_ct`.
pub fn parse(records: &[Value]) -> Result<AcceptanceCounts> {
    let mut sum = HistogramSum::default();
    for (r, record) in records.iter().enumerate() {
        let Some(m) = meta(record).filter(|m| m.get("spec_verify_ct").is_some()) else {
            continue;
        };
        let steps = count(&m["spec_verify_ct"], &format!("record {r}: spec_verify_ct"))?;
        let hist = m.get("spec_accept_histogram").ok_or_else(|| {
            Error::Metrics(format!(
                "record {r}: missing counter spec_accept_histogram (per-depth acceptance needs it)"
            ))
        })?;
        let mut one = HistogramSum::default();
        one.add(hist, &format!("record {r}: spec_accept_histogram"))?;
        let counted = one.into_counts(MetricsFormat::Sglang, None).steps;
        if counted != steps {
            return Err(Error::Metrics(format!(
                "inconsistent totals: record {r}: spec_accept_histogram counts {counted} steps, spec_verify_ct is {steps}"
            )));
        }
        sum.add(hist, &format!("record {r}: spec_accept_histogram"))?;
    }
    Ok(sum.into_counts(MetricsFormat::Sglang, None))
}
