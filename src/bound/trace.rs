//! Speed of light from a verifier trace, with no i.i.d. assumption
//! (docs/THEORY.md section 4d).
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

/// Most blocks [`estimate`] accepts (2^16): more than any interval needs,
/// and far from overflowing the block arithmetic.
pub const MAX_BLOCKS: usize = 1 << 16;

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
    /// `S_n` passed `-ln lambda`. They do not bias the estimate: each level
    /// `n` is averaged over the windows that reach it.
    pub windows_off_end: usize,
    /// Evaluation windows that reached the longest level any window reaches
    /// without `S_n` passing `-ln lambda`. When this is not 0, the levels
    /// beyond it are not estimated and the estimate is not an upper bound
    /// there: record longer sequences.
    pub windows_past_longest: usize,
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

/// What one window of [`Flat::window`] found.
struct Window {
    /// `sum_n w(n) (1 - exp(S_n - t))^+` over the levels it reached.
    sum: f64,
    /// It reached the end of its sequence before `S_n` passed `t`.
    off_end: bool,
    /// Levels it reached.
    levels: usize,
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

    /// Level weights of the starts `range`: `w(n) = m / c(n)` with `c(n)` the
    /// number of the `m` starts whose sequence has at least `n` tokens from
    /// there. Level `n` is then averaged over exactly the windows that reach
    /// it, an unbiased estimate of its term whatever the sequence lengths.
    /// They depend on the lengths only, never on the values. O(m).
    fn level_weights(&self, range: std::ops::Range<usize>) -> Vec<f64> {
        let m = range.len() as f64;
        let mut reach: Vec<usize> = Vec::new();
        for i in range {
            let rem = self.ends[i] - i;
            if reach.len() < rem {
                reach.resize(rem, 0);
            }
            reach[rem - 1] += 1;
        }
        // Suffix sums: c(n) = #{starts with rem >= n}.
        let mut c = 0usize;
        for r in reach.iter_mut().rev() {
            c += *r;
            *r = c;
        }
        reach.iter().map(|&c| m / c as f64).collect()
    }

    /// The weighted window starting at `i` (see [`Window`]).
    fn window(&self, i: usize, t: f64, weights: &[f64]) -> Window {
        let mut s = 0.0;
        let mut sum = 0.0;
        for (n, &x) in self.xs[i..self.ends[i]].iter().enumerate() {
            s += x;
            if s >= t {
                return Window {
                    sum,
                    off_end: false,
                    levels: n,
                };
            }
            sum += weights[n] * -(s - t).exp_m1();
        }
        Window {
            sum,
            off_end: true,
            levels: self.ends[i] - i,
        }
    }

    /// Mean weighted window value over `starts` at `t`.
    fn mean(&self, starts: std::ops::Range<usize>, t: f64) -> f64 {
        let weights = self.level_weights(starts.clone());
        let n = starts.len() as f64;
        starts.map(|i| self.window(i, t, &weights).sum).sum::<f64>() / n
    }
}

/// `U_hat(exp(-t))` on the given starts.
fn u_hat(flat: &Flat, starts: std::ops::Range<usize>, t: f64, capacity: usize) -> f64 {
    flat.mean(starts, t) + capacity as f64 * (-t).exp()
}

fn refuse_degenerate(trace: &Trace, flat: &Flat) -> Result<()> {
    let total: f64 = flat.xs.iter().sum();
    if !total.is_finite() {
        let (at, worst) =
            flat.xs
                .iter()
                .enumerate()
                .fold((0, 0.0), |b, (i, &x)| if x > b.1 { (i, x) } else { b });
        return Err(Error::TraceRefused(format!(
            "the total surprisal of the {} tokens overflows (log-probability {:e} at token {at}, \
             counted from 0 over all sequences): no sampled text has such log-probabilities",
            flat.xs.len(),
            -worst
        )));
    }
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

/// The `t = -ln lambda` minimising `U_hat` on the `select` starts:
/// golden-section search on `[0, ln P + 20]` (`U_hat` is convex in
/// `lambda`, hence unimodal in `t`), kept at 0 (`lambda = 1`, exactly `P`)
/// when nothing beats it. [`SEARCH_ROUNDS`] + 3 evaluations of `U_hat`.
fn choose_t(flat: &Flat, select: std::ops::Range<usize>, capacity: usize) -> f64 {
    let inv_phi = (5f64.sqrt() - 1.0) / 2.0;
    let (mut a, mut b) = (0.0, (capacity as f64).ln() + 20.0);
    let f = |t: f64| u_hat(flat, select.clone(), t, capacity);
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
    t
}

/// Estimates the speed of light `U_hat(lambda)` of docs/THEORY.md section 4d from
/// a trace sampled from the verifier.
///
/// Start positions (every token of every sequence, in file order) are split
/// into a first half, where `t = -ln lambda` minimising `U_hat` is found by
/// golden-section search on `[0, ln P + 20]` (`U_hat` is convex in `lambda`,
/// hence unimodal in `t`), and a second half, where `U_hat(lambda)` is
/// averaged and a 95% interval is formed from `blocks` contiguous block
/// means, each level of the sum averaged over the windows that reach it (see
/// the module docs). Time O(N L) per evaluation of `U_hat` for `N` tokens
/// and mean window length `L ~ t / entropy`, 80 evaluations in all; space
/// O(N).
///
/// # Errors
///
/// [`Error::ZeroCapacity`], [`Error::CapacityTooLarge`],
/// [`Error::InvalidArgument`] for fewer than 2 or more than [`MAX_BLOCKS`]
/// blocks,
/// [`Error::TraceRefused`] when the trace has fewer than `2 * blocks` tokens,
/// zero entropy, a total surprisal that overflows (log-probabilities near
/// `-1e308`), or looks greedy (see [`GREEDY_SURPRISAL`]).
///
/// # Examples
///
/// ```
/// use speclight::trace::{Trace, TraceToken};
/// use speclight::bound::trace::estimate;
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
    if blocks > MAX_BLOCKS {
        return Err(Error::InvalidArgument(format!(
            "{blocks} blocks: above the limit of {MAX_BLOCKS}"
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

    let t = choose_t(&flat, select, capacity);
    let lambda = (-t).exp();

    // Evaluation half: block means for the interval.
    let m = eval.len();
    let weights = flat.level_weights(eval.clone());
    let mut block_means = Vec::with_capacity(blocks);
    let mut total = 0.0;
    let (mut off_end, mut past_longest) = (0usize, 0usize);
    for k in 0..blocks {
        // k < blocks <= MAX_BLOCKS and m <= isize::MAX: k * m fits in u128.
        let lo = eval.start + (k as u128 * m as u128 / blocks as u128) as usize;
        let hi = eval.start + ((k as u128 + 1) * m as u128 / blocks as u128) as usize;
        let mut sum = 0.0;
        for i in lo..hi {
            let w = flat.window(i, t, &weights);
            sum += w.sum;
            off_end += usize::from(w.off_end);
            past_longest += usize::from(w.off_end && w.levels == weights.len());
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
        windows_past_longest: past_longest,
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

    /// Issue 12 item 9: block counts that overflowed `2 * blocks` or
    /// `k * m` are refused.
    #[test]
    fn absurd_block_counts_are_refused() {
        let trace = sampled_trace(&[0.5, 0.5], 2, 100, 1);
        for blocks in [MAX_BLOCKS + 1, 1 << 63, usize::MAX] {
            let err = estimate(&trace, 8, blocks).unwrap_err();
            assert!(matches!(err, Error::InvalidArgument(_)), "{err}");
        }
        assert!(estimate(&trace, 8, 8).is_ok());
    }

    /// Issue 12 item 15: all log-probabilities -1e308 overflow the total.
    #[test]
    fn overflowing_surprisal_is_refused_by_name() {
        let mut trace = Trace::new();
        for _ in 0..100 {
            trace.push(TraceToken::new(1, -1e308).unwrap());
        }
        let err = estimate(&trace, 16, 4).unwrap_err().to_string();
        assert!(err.contains("overflows") && err.contains("-1e308"), "{err}");
    }

    /// Issue 12 item 16: on i.i.d. traces of short sequences of random
    /// lengths (many windows run off the end), the 95% interval covers the
    /// exact `U(lambda)` in at least 90% of the repetitions. A plain mean of
    /// cut-short windows is biased low and covers far less often.
    #[test]
    fn interval_covers_the_exact_dual_whatever_the_sequence_lengths() {
        use rand::Rng;
        let probs = [0.5, 0.3, 0.2];
        let dist = TokenDist::from_probs(&probs).unwrap();
        let mut model = Iid::new(dist.clone());
        let (reps, capacity) = (60, 64);
        let mut covered = 0;
        let mut off_share = 0.0;
        for rep in 0..reps {
            let seed = 9000 + rep;
            let mut rng = StdRng::seed_from_u64(seed);
            let mut trace = Trace::new();
            while trace.num_tokens() < 4000 {
                for _ in 0..rng.random_range(8..40) {
                    let tok = dist.sample(&mut rng).unwrap();
                    trace.push(TraceToken::new(tok, dist.log_prob_of(tok)).unwrap());
                }
                trace.end_sequence();
            }
            let b = estimate(&trace, capacity, DEFAULT_BLOCKS).unwrap();
            let exact = dual_bound(&mut model, b.lambda, capacity, &DualOptions::default())
                .unwrap()
                .value;
            covered += usize::from(b.estimate.contains(exact));
            off_share += b.windows_off_end as f64 / b.evaluation_starts as f64;
        }
        let coverage = covered as f64 / reps as f64;
        // The case is hard for a plain mean: many windows are cut short.
        assert!(off_share / reps as f64 > 0.05, "off-end share {off_share}");
        assert!(
            coverage >= 0.9,
            "coverage {coverage} over {reps} seeds from 9000"
        );
    }

    /// A first-order Markov verifier: the next token's distribution is the
    /// row of the previous token (of `start` at the root).
    struct Markov {
        rows: Vec<TokenDist>,
        start: usize,
    }

    impl crate::NextTokenModel for Markov {
        fn next(&mut self, path: &[u32]) -> Result<&TokenDist> {
            Ok(&self.rows[path.last().map_or(self.start, |&t| t as usize)])
        }
    }

    /// Issue 12 item 16, second process: a low-entropy Markov chain whose
    /// sequences start from its stationary law. The true `U(lambda)` is the
    /// stationary mixture of the exact duals from each state; the 95%
    /// interval must cover it in at least 90% of the repetitions.
    #[test]
    fn interval_covers_the_exact_dual_of_a_markov_verifier() {
        use rand::Rng;
        let rows = [[0.9, 0.08, 0.02], [0.1, 0.85, 0.05], [0.3, 0.3, 0.4]];
        let dists: Vec<TokenDist> = rows
            .iter()
            .map(|r| TokenDist::from_probs(r).unwrap())
            .collect();
        // Stationary law by power iteration.
        let mut pi = [1.0 / 3.0; 3];
        for _ in 0..500 {
            let mut next = [0.0; 3];
            for (s, row) in rows.iter().enumerate() {
                for (t, p) in row.iter().enumerate() {
                    next[t] += pi[s] * p;
                }
            }
            pi = next;
        }
        let (reps, capacity) = (40, 64);
        let mut covered = 0;
        for rep in 0..reps {
            let seed = 7000 + rep;
            let mut rng = StdRng::seed_from_u64(seed);
            let mut trace = Trace::new();
            while trace.num_tokens() < 4000 {
                let u: f64 = rng.random();
                let mut state = if u < pi[0] {
                    0
                } else if u < pi[0] + pi[1] {
                    1
                } else {
                    2
                };
                for _ in 0..rng.random_range(8..40) {
                    let d = &dists[state];
                    let tok = d.sample(&mut rng).unwrap();
                    trace.push(TraceToken::new(tok, d.log_prob_of(tok)).unwrap());
                    state = tok as usize;
                }
                trace.end_sequence();
            }
            let b = estimate(&trace, capacity, DEFAULT_BLOCKS).unwrap();
            let lambda_p = b.lambda * capacity as f64;
            let mut exact = lambda_p;
            for (start, weight) in pi.iter().enumerate() {
                let mut m = Markov {
                    rows: dists.clone(),
                    start,
                };
                let u = dual_bound(&mut m, b.lambda, capacity, &DualOptions::default()).unwrap();
                exact += weight * (u.value - lambda_p);
            }
            covered += usize::from(b.estimate.contains(exact));
        }
        let coverage = covered as f64 / reps as f64;
        assert!(
            coverage >= 0.9,
            "coverage {coverage} over {reps} seeds from 7000"
        );
    }
}
