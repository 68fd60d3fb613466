//! The largest sizes the sampling experiments (`speclight trace`,
//! `speclight demo`, [`super::workload::measure`]) accept, checked before
//! anything is allocated, so that a typo such as `--tokens 18446744073709551615`
//! gets one clear error instead of a capacity-overflow panic or a run that
//! grows without progress.
//!
//! Each sampled token keeps its alternatives (about 100 bytes with five), so
//! [`MAX_TRACE_TOKENS`] keeps a trace under about half a gigabyte.

use crate::error::{Error, Result};

/// Most sequences (prompts) one experiment samples.
pub const MAX_PROMPTS: usize = 1 << 16;
/// Most tokens sampled after one prompt.
pub const MAX_SEQUENCE_TOKENS: usize = 1 << 20;
/// Most tokens sampled in all, `prompts x tokens per sequence`.
pub const MAX_TRACE_TOKENS: usize = 1 << 22;
/// Most alternatives recorded per sampled token (a byte-level model has 256).
pub const MAX_TOP_LOGPROBS: usize = 256;
/// Most contexts at which the demo's workload measures trees per corpus,
/// `prompts x ceil(sequence length / context stride)`.
pub const MAX_CONTEXTS: usize = 1 << 16;

/// Checks the sizes of a sampled trace before any is allocated. O(1).
///
/// # Errors
///
/// [`Error::SizeAboveLimit`] naming the first size above its limit:
/// `prompts`, `tokens per sequence`, `alternatives per token` or
/// `sampled tokens (prompts x tokens per sequence)`.
///
/// # Examples
///
/// ```
/// use speclight::experiment::limits::check_trace_size;
/// assert!(check_trace_size(16, 512, 5).is_ok());
/// let e = check_trace_size(16, usize::MAX, 5).unwrap_err();
/// assert!(e.to_string().starts_with("tokens per sequence 18446744073709551615 is above"));
/// ```
pub fn check_trace_size(prompts: usize, tokens: usize, top_logprobs: usize) -> Result<()> {
    at_most("prompts", prompts, MAX_PROMPTS)?;
    at_most("tokens per sequence", tokens, MAX_SEQUENCE_TOKENS)?;
    at_most("alternatives per token", top_logprobs, MAX_TOP_LOGPROBS)?;
    // Both factors are bounded above, so the product cannot overflow.
    at_most(
        "sampled tokens (prompts x tokens per sequence)",
        prompts * tokens,
        MAX_TRACE_TOKENS,
    )
}

/// [`check_trace_size`], plus the number of contexts the workload measures
/// trees at (`context_stride` 0 is refused elsewhere; it counts as 1 here).
/// O(1).
///
/// # Errors
///
/// As [`check_trace_size`], and [`Error::SizeAboveLimit`] for
/// `contexts (prompts x ceil(sequence length / stride))`.
pub fn check_workload_size(
    prompts: usize,
    sequence_len: usize,
    context_stride: usize,
    top_logprobs: usize,
) -> Result<()> {
    check_trace_size(prompts, sequence_len, top_logprobs)?;
    at_most(
        "contexts (prompts x ceil(sequence length / stride))",
        prompts * sequence_len.div_ceil(context_stride.max(1)),
        MAX_CONTEXTS,
    )
}

fn at_most(what: &'static str, value: usize, max: usize) -> Result<()> {
    if value > max {
        return Err(Error::SizeAboveLimit {
            what,
            value: value as u64,
            max: max as u64,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Issue 12 items 7 and 10: `trace --tokens 18446744073709551615` and
    /// `--prompts 100000000` reached the allocator (a capacity-overflow
    /// panic, a run without progress); every size is refused first.
    #[test]
    fn every_size_has_a_limit() {
        let big = |r: Result<()>| matches!(r, Err(Error::SizeAboveLimit { .. }));
        assert!(big(check_trace_size(16, usize::MAX, 5)));
        assert!(big(check_trace_size(100_000_000, 512, 5)));
        assert!(big(check_trace_size(16, 512, 100_000)));
        assert!(big(check_trace_size(MAX_PROMPTS, MAX_SEQUENCE_TOKENS, 5)));
        assert!(big(check_workload_size(1 << 16, 1 << 6, 1, 5)));
        assert!(check_trace_size(MAX_PROMPTS, MAX_TRACE_TOKENS / MAX_PROMPTS, 5).is_ok());
        assert!(check_workload_size(64, 512, 128, 5).is_ok());
        assert_eq!(
            check_trace_size(100_000_000, 1, 5).unwrap_err().to_string(),
            "prompts 100000000 is above the limit of 65536"
        );
    }
}
