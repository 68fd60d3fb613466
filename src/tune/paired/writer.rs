//! Writing paired traces from a verifier and a drafter model.

use super::record::{TraceRecord, MAX_TOP_K, MAX_TRACE_DEPTH};
use crate::dist::TokenId;
use crate::error::{Error, Result};
use crate::model::NextTokenModel;
use rand::Rng;
use std::io::Write;

/// Most start positions [`write_paired_sequence`] writes for one sequence:
/// the sampled text (16 bytes a token) is held in memory.
pub const MAX_SEQUENCE_POSITIONS: u64 = 1 << 20;

/// How much of one sequence [`write_paired_sequence`] writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SequenceShape {
    /// Start positions `0..positions`.
    pub positions: u64,
    /// Depths `1..=depth` per position.
    pub depth: u32,
    /// Drafter candidates listed per record.
    pub top_k: usize,
}

impl SequenceShape {
    /// Checks the shape against the limits: depth in
    /// `1..=`[`MAX_TRACE_DEPTH`], top-k in `1..=`[`MAX_TOP_K`], positions at
    /// most [`MAX_SEQUENCE_POSITIONS`].
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArgument`] naming the value out of its range.
    pub fn check(&self) -> Result<()> {
        if !(1..=MAX_TRACE_DEPTH).contains(&self.depth) {
            return Err(Error::InvalidArgument(format!(
                "paired trace depth {} is not in 1..={MAX_TRACE_DEPTH}",
                self.depth
            )));
        }
        if !(1..=MAX_TOP_K).contains(&self.top_k) {
            return Err(Error::InvalidArgument(format!(
                "paired trace top-k {} is not in 1..={MAX_TOP_K}",
                self.top_k
            )));
        }
        if self.positions > MAX_SEQUENCE_POSITIONS {
            return Err(Error::InvalidArgument(format!(
                "{} positions per sequence is more than {MAX_SEQUENCE_POSITIONS}",
                self.positions
            )));
        }
        Ok(())
    }
}

/// Writes the paired trace of one sequence: samples `positions + depth - 1`
/// tokens from `verifier` (whose distributions must be complete; apply the
/// serving temperature in the model), then for every start position
/// `i < positions` and depth `d = 1..=depth` writes the drafter's top
/// `top_k` for the token `d` steps ahead (drafted along the sampled text),
/// the sampled token, and the verifier's log-probability of it.
///
/// Both models answer `next(path)` for the text *below a context*: set
/// their context to the sequence's prompt before calling (the path is then
/// the text sampled so far). Records come out in the order
/// [`super::TraceReader`] requires. Returns the number of records.
///
/// Time: `positions + depth` verifier calls and `positions x depth`
/// drafter calls; memory O(positions + depth) for the sampled text.
///
/// # Errors
///
/// [`Error::InvalidArgument`] for `depth` outside `1..=`[`MAX_TRACE_DEPTH`],
/// `top_k` outside `1..=`[`MAX_TOP_K`] or more than
/// [`MAX_SEQUENCE_POSITIONS`] positions (the limits a reader accepts, and
/// bounded memory),
/// [`Error::Model`] when a draw falls in the verifier's truncated tail,
/// [`Error::Io`] when writing fails, and the models' errors.
///
/// # Examples
///
/// ```
/// use rand::{rngs::StdRng, SeedableRng};
/// use speclight::tune::{validate, write_paired_sequence, SequenceShape};
/// use speclight::{Iid, TokenDist};
/// let mut verifier = Iid::new(TokenDist::from_probs(&[0.5, 0.3, 0.2])?);
/// let mut drafter = Iid::new(TokenDist::from_probs(&[0.2, 0.5, 0.3])?);
/// let mut out = Vec::new();
/// let mut rng = StdRng::seed_from_u64(3);
/// let shape = SequenceShape { positions: 10, depth: 3, top_k: 2 };
/// let n = write_paired_sequence(7, &mut verifier, &mut drafter, shape, &mut rng, &mut out)?;
/// assert_eq!(n, 30);
/// assert!(validate(&out[..], 5)?.is_valid());
/// # Ok::<(), speclight::Error>(())
/// ```
pub fn write_paired_sequence<V, D, R, W>(
    seq: u64,
    verifier: &mut V,
    drafter: &mut D,
    shape: SequenceShape,
    rng: &mut R,
    mut out: W,
) -> Result<u64>
where
    V: NextTokenModel + ?Sized,
    D: NextTokenModel + ?Sized,
    R: Rng + ?Sized,
    W: Write,
{
    let SequenceShape {
        positions,
        depth,
        top_k,
    } = shape;
    shape.check()?;
    let len = positions as usize + depth as usize - 1;
    let mut text: Vec<TokenId> = Vec::with_capacity(len);
    let mut logprobs: Vec<f64> = Vec::with_capacity(len);
    for _ in 0..len {
        let dist = verifier.next(&text)?;
        let y = dist.sample(rng).ok_or_else(|| {
            Error::Model(
                "a verifier draw fell in its truncated tail: the verifier must list every token"
                    .into(),
            )
        })?;
        logprobs.push(dist.log_prob_of(y));
        text.push(y);
    }
    let mut record = TraceRecord {
        seq,
        pos: 0,
        depth: 1,
        draft_top: Vec::with_capacity(top_k),
        target: 0,
        target_logprob: None,
    };
    let mut n = 0;
    for i in 0..positions as usize {
        for d in 1..=depth {
            let at = i + d as usize - 1;
            let dist = drafter.next(&text[..at])?;
            record.pos = i as u64;
            record.depth = d;
            record.draft_top.clear();
            record.draft_top.extend(
                dist.tokens()
                    .iter()
                    .copied()
                    .zip(dist.log_probs().iter().copied())
                    .take(top_k),
            );
            record.target = text[at];
            record.target_logprob = Some(logprobs[at]);
            serde_json::to_writer(&mut out, &record).map_err(|e| Error::Io(e.to_string()))?;
            out.write_all(b"\n").map_err(|e| Error::Io(e.to_string()))?;
            n += 1;
        }
    }
    Ok(n)
}
