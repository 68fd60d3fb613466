//! The trace speed of light (`docs/THEORY.md` section 4d) of the held-out
//! split, from the verifier's own continuation recorded in the paired trace.

use super::paired::Group;
use crate::bound::trace::{self as trace_bound, TraceBound};
use crate::error::Result;
use crate::trace::{Trace, TraceToken};

/// Most held-out verifier tokens kept for the trace speed of light (16 bytes
/// each): the one part of the tuner whose memory grows with the trace.
pub const MAX_SPEED_OF_LIGHT_TOKENS: usize = 1 << 22;

/// Collects the held-out verifier's own continuation (the depth-1 records)
/// as a [`Trace`] for `docs/THEORY.md` section 4d; a gap in positions starts a new
/// sequence, since windows must not jump over missing tokens.
#[derive(Debug, Default)]
pub(super) struct SolCollector {
    trace: Trace,
    last: Option<(u64, u64)>,
    tokens: usize,
    missing: bool,
    full: bool,
}

impl SolCollector {
    pub(super) fn push(&mut self, group: &Group) -> Result<()> {
        if self.missing {
            return Ok(());
        }
        let lp = group.target_logprobs().and_then(|v| v.first().copied());
        let (Some(lp), Some(&token)) = (lp, group.targets().first()) else {
            self.missing = true;
            return Ok(());
        };
        if self.tokens >= MAX_SPEED_OF_LIGHT_TOKENS {
            self.full = true;
            return Ok(());
        }
        if self.last != Some((group.seq(), group.pos().wrapping_sub(1))) {
            self.trace.end_sequence();
        }
        self.last = Some((group.seq(), group.pos()));
        self.trace.push(TraceToken::new(token, lp.min(0.0))?);
        self.tokens += 1;
        Ok(())
    }

    pub(super) fn bounds(&self, capacities: &[usize]) -> (Vec<TraceBound>, Option<String>) {
        if self.missing {
            return (
                Vec::new(),
                Some("some held-out records have no target_logprob: record it to get the speed of light".into()),
            );
        }
        let mut out = Vec::new();
        for &n in capacities {
            match trace_bound::estimate(&self.trace, n, trace_bound::DEFAULT_BLOCKS) {
                Ok(b) => out.push(b),
                Err(e) => return (Vec::new(), Some(e.to_string())),
            }
        }
        let note = self.full.then(|| {
            format!("speed of light from the first {MAX_SPEED_OF_LIGHT_TOKENS} held-out tokens")
        });
        (out, note)
    }
}
