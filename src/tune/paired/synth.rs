//! Synthetic paired traces from a known per-depth acceptance process, so
//! that estimators and the tuner can be checked against the truth.

use super::record::TraceRecord;
use crate::dist::TokenId;
use crate::error::{Error, Result};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::io::Write;

/// A paired-trace generator whose truth is known: at depth `d` the
/// verifier's token is the drafter's rank `k` with probability
/// `rows[d][k]` (the last row beyond the table), independently of
/// everything else, and unlisted with the remaining mass. The drafter's
/// logprobs are `ln(0.6^k / Z)` jittered by up to `jitter` nats and
/// re-sorted: they carry no information about the verifier, as a badly
/// calibrated drafter's would.
///
/// The true acceptance matrix is `rows`, and for any static tree the true
/// `E[X]` is that of [`crate::PositionalByDepth`] built from `rows`.
///
/// `target_logprob` is written only with a single row: the process is then
/// an i.i.d. verifier over rank tokens (the unlisted tokens lumped into one),
/// and `ln a[rank]` is the verifier's log-probability, so the trace speed
/// of light (`docs/THEORY.md` section 4d) is valid. With several rows no verifier explains
/// acceptance that rises with depth while depth-1 records stand for the
/// text, so no log-probability is claimed.
///
/// # Examples
///
/// ```
/// use speclight::tune::{SyntheticTrace, validate};
/// let synth = SyntheticTrace::new(vec![vec![0.6, 0.2], vec![0.5, 0.1]], 4, 3)?;
/// let mut out = Vec::new();
/// let records = synth.write_jsonl(&mut out, 2, 5, 7)?;
/// assert_eq!(records, 2 * 5 * 3);
/// assert!(validate(&out[..], 5)?.is_valid());
/// # Ok::<(), speclight::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct SyntheticTrace {
    rows: Vec<Vec<f64>>,
    top_k: usize,
    depth: u32,
    jitter: f64,
}

impl SyntheticTrace {
    /// `rows[d][k]` true acceptance, `top_k` listed candidates per record
    /// (at least the longest row), `depth` records per `(seq, pos)`.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidAcceptance`] for rows that [`crate::PositionalByDepth`]
    /// refuses, [`Error::InvalidArgument`] when `top_k` is shorter than a
    /// row or `depth` is 0.
    pub fn new(rows: Vec<Vec<f64>>, top_k: usize, depth: u32) -> Result<Self> {
        crate::PositionalByDepth::new(&rows)?;
        if rows.iter().any(|r| r.len() > top_k) || depth == 0 {
            return Err(Error::InvalidArgument(format!(
                "top_k {top_k} must cover every row and depth {depth} must be >= 1"
            )));
        }
        Ok(Self {
            rows,
            top_k,
            depth,
            jitter: 0.5,
        })
    }

    /// The true acceptance rows.
    pub fn rows(&self) -> &[Vec<f64>] {
        &self.rows
    }

    /// The records of one `(seq, pos)`, depth 1 first, drawn with `rng`.
    pub fn group<R: Rng + ?Sized>(&self, seq: u64, pos: u64, rng: &mut R) -> Vec<TraceRecord> {
        let k = self.top_k;
        let z: f64 = (0..k).map(|r| 0.6f64.powi(r as i32)).sum();
        (1..=self.depth)
            .map(|depth| {
                let row = &self.rows[(depth as usize - 1).min(self.rows.len() - 1)];
                let mut lps: Vec<f64> = (0..k)
                    .map(|r| {
                        let lp = (0.6f64.powi(r as i32) / z).ln();
                        (lp + self.jitter * (rng.random::<f64>() - 0.5)).min(0.0)
                    })
                    .collect();
                lps.sort_by(|a, b| b.total_cmp(a));
                // Keep the list a sub-distribution (sum <= 1), as a real
                // drafter's top-k is.
                let sum: f64 = lps.iter().map(|lp| lp.exp()).sum();
                if sum > 1.0 {
                    lps.iter_mut().for_each(|lp| *lp -= sum.ln());
                }
                // Distinct tokens: a random offset plus a stride of 1.
                let base: TokenId = rng.random_range(0..1000);
                let draft_top: Vec<(TokenId, f64)> = lps
                    .iter()
                    .enumerate()
                    .map(|(r, &lp)| (base + r as TokenId, lp))
                    .collect();
                let u = rng.random::<f64>();
                let mut acc = 0.0;
                let mut outcome = None;
                for (r, &a) in row.iter().enumerate() {
                    acc += a;
                    if u < acc {
                        outcome = Some(r);
                        break;
                    }
                }
                let (target, p) = match outcome {
                    Some(r) => (base + r as TokenId, row[r]),
                    None => (
                        base + k as TokenId,
                        (1.0 - row.iter().sum::<f64>()).max(1e-12),
                    ),
                };
                TraceRecord {
                    seq,
                    pos,
                    depth,
                    draft_top,
                    target,
                    target_logprob: (self.rows.len() == 1).then(|| p.ln()),
                }
            })
            .collect()
    }

    /// Writes `seqs x positions` groups as JSON Lines in the order the
    /// reader requires; returns the number of records. Seeded: the same
    /// seed gives the same bytes.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] when writing fails.
    pub fn write_jsonl<W: Write>(
        &self,
        mut out: W,
        seqs: u64,
        positions: u64,
        seed: u64,
    ) -> Result<u64> {
        let mut rng = StdRng::seed_from_u64(seed);
        let mut n = 0;
        for seq in 0..seqs {
            for pos in 0..positions {
                for r in self.group(seq, pos, &mut rng) {
                    serde_json::to_writer(&mut out, &r).map_err(|e| Error::Io(e.to_string()))?;
                    out.write_all(b"\n").map_err(|e| Error::Io(e.to_string()))?;
                    n += 1;
                }
            }
        }
        Ok(n)
    }
}
