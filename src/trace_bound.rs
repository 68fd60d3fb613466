//! Speed of light from a verifier trace, with no i.i.d. assumption
//! (THEORY.md section 4d).
//!
//! For text sampled from the verifier, with `S^(i)_n` the summed surprisal
//! of the `n` tokens starting at position `i`,
//!
//! ```text
//! U_hat(lambda) = mean_i sum_{n>=1} (1 - lambda exp(S^(i)_n))^+  +  lambda P
//! ```
//!
//! is an unbiased estimate of the dual certificate `U(lambda)`, an upper bound
//! on `E[X]` for every deterministic drafter with capacity `P` on that
//! workload. [`estimate`] chooses `lambda` on the first half of the start
//! positions and reports the mean and a 95% interval on the second half.

use crate::build::check_capacity;
use crate::error::{Error, Result};
use crate::stats::{Estimate, Z95};
use crate::trace::Trace;

/// Number of contiguous blocks the evaluation starts are split into for the
/// interval (batch means: neighbouring windows overlap and are correlated,
/// blocks far apart much less).
pub const DEFAULT_BLOCKS: usize = 32;

/// Total surprisal above which a trace whose every token is the argmax of
/// its `top_logprobs` is refused as greedy: a sampled trace does that with
/// probability `exp(-total)`, here below one in a million.
pub const GREEDY_SURPRISAL: f64 = 13.815_510_557_964_274; // ln(1e6)

/// Golden-section rounds for choosing `t = -ln lambda`.
const SEARCH_ROUNDS: usize = 80;

/// The result of [`estimate`].
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct TraceBound {
    /// Capacity `P`.
    pub capacity: usize,
    /// `lambda`, chosen on the selection half.
    pub lambda: f64,
    /// `U_hat(lambda)` on the evaluation half, with its 95% interval
    /// (batch means over contiguous blocks of start positions).
    pub estimate: Estimate,
    /// Number of start positions used to choose `lambda`.
    pub selection_starts: usize,
    /// Number of start positions the estimate averages over.
    pub evaluation_starts: usize,
    /// Evaluation windows that reached the end of their sequence before
    /// `S_n` passed `-ln lambda`: their sums are cut short, so the estimate
    /// is biased low by at most their share.
    pub windows_off_end: usize,
    /// Mean surprisal per token (the trace's entropy estimate), nats.
    pub mean_surprisal: f64,
    /// Number of sequences.
    pub sequences: usize,
    /// Number of tokens.
    pub tokens: usize,
}

/// Surprisals of all sequences end to end, and for each position the end of
/// its sequence.
struct Flat {
    xs: Vec<f64>,
    ends: Vec<usize>,
}

impl Flat {
    fn new(trace: &Trace) -> Self {
        let mut xs = Vec::with_capacity(trace.num_tokens());
        let mut ends = Vec::with_capacity(trace.num_tokens());
        for seq in trace.sequences() {
            let end = xs.len() + seq.len();
            xs.extend(seq.iter().map(|t| t.surprisal()));
            ends.resize(end, end);
        }
        Self { xs, ends }
    }

    /// `sum_{n>=1} (1 - exp(S_n - t))^+` for the window starting at `i`, and
    /// whether it ran off the end of its sequence.
    fn window(&self, i: usize, t: f64) -> (f64, bool) {
        let mut s = 0.0;
        let mut sum = 0.0;
        for &x in &self.xs[i..self.ends[i]] {
            s += x;
            if s >= t {
                return (sum, false);
            }
            sum += -(s - t).exp_m1();
        }
        (sum, true)
    }

    /// Mean window value over `starts` at `t`.
    fn mean(&self, starts: std::ops::Range<usize>, t: f64) -> f64 {
        let n = starts.len() as f64;
        starts.map(|i| self.window(i, t).0).sum::<f64>() / n
    }
}

/// `U_hat(exp(-t))` on the given starts.
fn u_hat(flat: &Flat, starts: std::ops::Range<usize>, t: f64, capacity: usize) -> f64 {
    flat.mean(starts, t) + capacity as f64 * (-t).exp()
}

fn refuse_degenerate(trace: &Trace, flat: &Flat) -> Result<()> {
    let total: f64 = flat.xs.iter().sum();
    if total <= 0.0 {
        return Err(Error::TraceRefused(format!(
            "every one of the {} tokens has log-probability 0: zero entropy (greedy decoding?) \
             gives no finite speed-of-light bound; record a trace sampled at the serving temperature",
            flat.xs.len()
        )));
    }
    let all_argmax = trace.sequences().iter().flatten().all(|tok| {
        tok.top_logprobs().is_some_and(|top| {
            top.iter()
                .all(|alt| alt.logprob <= tok.logprob() + 1e-9 || alt.token == tok.token())
        })
    });
    if all_argmax && total > GREEDY_SURPRISAL {
        return Err(Error::TraceRefused(format!(
            "every token is the most probable of its top_logprobs although the total surprisal \
             is {total:.1} nats (a sampled trace would do that with probability {:.1e}): this looks \
             like greedy decoding, where the entropy is zero and no finite bound exists",
            (-total).exp()
        )));
    }
    Ok(())
}

/// Estimates the speed of light `U_hat(lambda)` of THEORY.md section 4d from
/// a trace sampled from the verifier.
///
/// Start positions (every token of every sequence, in file order) are split
/// into a first half, where `t = -ln lambda` minimising `U_hat` is found by
/// golden-section search on `[0, ln P + 20]` (`U_hat` is convex in `lambda`,
/// hence unimodal in `t`), and a second half, where `U_hat(lambda)` is
/// averaged and a 95% interval is formed from `blocks` contiguous block
/// means. Time O(N L) per evaluation of `U_hat` for `N` tokens and mean
/// window length `L ~ t / entropy`, 80 evaluations in all; space O(N).
///
/// # Errors
///
/// [`Error::ZeroCapacity`], [`Error::CapacityTooLarge`],
/// [`Error::InvalidArgument`] for fewer than 2 blocks,
/// [`Error::TraceRefused`] when the trace has fewer than `2 * blocks` tokens,
/// zero entropy, or looks greedy (see [`GREEDY_SURPRISAL`]).
///
/// # Examples
///
/// ```
/// use speclight::trace::{Trace, TraceToken};
/// use speclight::trace_bound::estimate;
/// let mut trace = Trace::new();
/// for i in 0..400u32 {
///     trace.push(TraceToken::new(i % 3, -[0.7, 1.2, 1.6][(i % 3) as usize])?);
/// }
/// let b = estimate(&trace, 64, 8)?;
/// assert!(b.estimate.ci_low <= b.estimate.mean && b.estimate.mean <= 64.0);
/// # Ok::<(), speclight::Error>(())
/// ```
pub fn estimate(trace: &Trace, capacity: usize, blocks: usize) -> Result<TraceBound> {
    check_capacity(capacity)?;
    if blocks < 2 {
        return Err(Error::InvalidArgument(format!(
            "{blocks} blocks: a confidence interval needs at least 2"
        )));
    }
    let flat = Flat::new(trace);
    let n = flat.xs.len();
    if n < 2 * blocks {
        return Err(Error::TraceRefused(format!(
            "{n} tokens: at least {} are needed ({blocks} blocks in each half)",
            2 * blocks
        )));
    }
    refuse_degenerate(trace, &flat)?;
    let half = n / 2;
    let select = 0..half;
    let eval = half..n;

    // Golden-section search for the minimising t on the selection half.
    let inv_phi = (5f64.sqrt() - 1.0) / 2.0;
    let (mut a, mut b) = (0.0, (capacity as f64).ln() + 20.0);
    let f = |t: f64| u_hat(&flat, select.clone(), t, capacity);
    let mut c = b - inv_phi * (b - a);
    let mut d = a + inv_phi * (b - a);
    let (mut fc, mut fd) = (f(c), f(d));
    for _ in 0..SEARCH_ROUNDS {
        if fc <= fd {
            b = d;
            d = c;
            fd = fc;
            c = b - inv_phi * (b - a);
            fc = f(c);
        } else {
            a = c;
            c = d;
            fc = fd;
            d = a + inv_phi * (b - a);
            fd = f(d);
        }
    }
    let mut t = (a + b) / 2.0;
    // t = 0 (lambda = 1) gives exactly P; keep it when nothing beats it.
    if f(t) > f(0.0) {
        t = 0.0;
    }
    let lambda = (-t).exp();

    // Evaluation half: block means for the interval.
    let m = eval.len();
    let mut block_means = Vec::with_capacity(blocks);
    let mut total = 0.0;
    let mut off_end = 0usize;
    for k in 0..blocks {
        let lo = eval.start + k * m / blocks;
        let hi = eval.start + (k + 1) * m / blocks;
        let mut sum = 0.0;
        for i in lo..hi {
            let (w, off) = flat.window(i, t);
            sum += w;
            off_end += usize::from(off);
        }
        total += sum;
        block_means.push(sum / (hi - lo) as f64);
    }
    let bm = Estimate::from_samples(&block_means)?;
    let mean = total / m as f64 + capacity as f64 * lambda;
    let estimate = Estimate {
        mean,
        std_error: bm.std_error,
        ci_low: mean - Z95 * bm.std_error,
        ci_high: mean + Z95 * bm.std_error,
        samples: m,
    };
    Ok(TraceBound {
        capacity,
        lambda,
        estimate,
        selection_starts: half,
        evaluation_starts: m,
        windows_off_end: off_end,
        mean_surprisal: flat.xs.iter().sum::<f64>() / n as f64,
        sequences: trace.sequences().len(),
        tokens: n,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bound::{dual_bound, optimal_value, DualOptions};
    use crate::trace::{TopLogprob, TraceToken};
    use crate::{Iid, TokenDist};
    use rand::{rngs::StdRng, SeedableRng};

    fn sampled_trace(probs: &[f64], sequences: usize, len: usize, seed: u64) -> Trace {
        let dist = TokenDist::from_probs(probs).unwrap();
        let mut rng = StdRng::seed_from_u64(seed);
        let mut trace = Trace::new();
        for _ in 0..sequences {
            for _ in 0..len {
                let tok = dist.sample(&mut rng).unwrap();
                trace.push(TraceToken::new(tok, dist.log_prob_of(tok)).unwrap());
            }
            trace.end_sequence();
        }
        trace
    }

    /// Second method: for an i.i.d. verifier the exact U(lambda) comes from
    /// the dual enumeration; the trace estimate at the same lambda must
    /// cover it, and it can never be below OPT(P).
    #[test]
    fn trace_estimate_covers_the_exact_dual_of_an_iid_verifier() {
        let probs = [0.5, 0.3, 0.2];
        let seed = 2024;
        let trace = sampled_trace(&probs, 40, 1000, seed);
        let mut model = Iid::new(TokenDist::from_probs(&probs).unwrap());
        for capacity in [16usize, 1024] {
            let b = estimate(&trace, capacity, DEFAULT_BLOCKS).unwrap();
            let exact = dual_bound(&mut model, b.lambda, capacity, &DualOptions::default())
                .unwrap()
                .value;
            let opt = optimal_value(&mut model, capacity, &DualOptions::default())
                .unwrap()
                .value;
            // Off-end windows cut sums short; with 1000-token sequences
            // they are a fraction of a percent.
            assert!(b.windows_off_end * 100 < b.evaluation_starts);
            assert!(
                b.estimate.contains(exact),
                "seed {seed} P={capacity}: exact U = {exact}, estimate {:?}",
                b.estimate
            );
            assert!(exact >= opt - 1e-9, "U(lambda) >= OPT(P)");
            // The chosen lambda is near-optimal: U(lambda) close to OPT(P).
            assert!(exact - opt < 0.05 * opt, "exact {exact} vs OPT {opt}");
        }
    }

    #[test]
    fn windows_that_run_off_the_end_are_counted() {
        let trace = sampled_trace(&[0.5, 0.5], 200, 3, 5);
        let b = estimate(&trace, 4096, 4).unwrap();
        // ln 4096 = 8.3 nats needs 12 tokens at ln 2 each; sequences have 3.
        assert!(b.lambda < 1.0);
        assert_eq!(b.windows_off_end, b.evaluation_starts);
    }

    #[test]
    fn zero_entropy_and_greedy_traces_are_refused() {
        let mut zero = Trace::new();
        for _ in 0..100 {
            zero.push(TraceToken::new(1, 0.0).unwrap());
        }
        let err = estimate(&zero, 16, 4).unwrap_err();
        assert!(err.to_string().contains("zero entropy"), "{err}");

        let mut greedy = Trace::new();
        for _ in 0..100 {
            let top = vec![
                TopLogprob {
                    token: 1,
                    logprob: -0.4,
                },
                TopLogprob {
                    token: 2,
                    logprob: -1.2,
                },
            ];
            greedy.push(
                TraceToken::new(1, -0.4)
                    .unwrap()
                    .with_top_logprobs(top)
                    .unwrap(),
            );
        }
        let err = estimate(&greedy, 16, 4).unwrap_err();
        assert!(err.to_string().contains("greedy"), "{err}");
        assert!(matches!(
            estimate(&Trace::new(), 16, 4),
            Err(Error::TraceRefused(_))
        ));
    }
}
