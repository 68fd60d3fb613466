//! Acceptance histograms (`h[i]` = steps that accepted exactly `i` draft
//! tokens), the per-request form vLLM and SGLang share.

use super::{count, AcceptanceCounts, MetricsFormat, MAX_POSITIONS};
use crate::error::{Error, Result};

/// Sums histograms position by position. O(total length).
#[derive(Debug, Default)]
pub(crate) struct HistogramSum {
    bins: Vec<u64>,
}

impl HistogramSum {
    /// Adds one record's histogram (a JSON array of counts).
    pub(crate) fn add(&mut self, value: &serde_json::Value, what: &str) -> Result<()> {
        let items = value
            .as_array()
            .ok_or_else(|| Error::Metrics(format!("{what} is not an array of counts")))?;
        if items.len() > MAX_POSITIONS + 1 {
            return Err(Error::Metrics(format!(
                "{what} has {} bins, above the limit {}",
                items.len(),
                MAX_POSITIONS + 1
            )));
        }
        if self.bins.len() < items.len() {
            self.bins.resize(items.len(), 0);
        }
        for (i, item) in items.iter().enumerate() {
            let n = count(item, &format!("{what}[{i}]"))?;
            self.bins[i] = self.bins[i].saturating_add(n);
        }
        Ok(())
    }

    /// The steps and `reached[k] = sum_{i > k} h[i]`.
    pub(crate) fn into_counts(
        self,
        format: MetricsFormat,
        draft_tokens: Option<u64>,
    ) -> AcceptanceCounts {
        let steps = self.bins.iter().sum();
        let positions = self.bins.len().saturating_sub(1);
        let mut reached = vec![0u64; positions];
        let mut above = 0u64;
        for k in (0..positions).rev() {
            above += self.bins[k + 1];
            reached[k] = above;
        }
        let accepted_tokens = reached.iter().sum();
        AcceptanceCounts {
            format,
            steps,
            reached,
            draft_tokens,
            accepted_tokens,
        }
    }
}
