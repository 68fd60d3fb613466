//! Acceptance estimation: `a[d][k]`, how often the verifier's token at depth
//! `d` is the drafter's rank-`k` candidate, with Wilson score intervals.

use super::paired::Group;
use crate::error::{Error, Result};
use crate::model::PositionalByDepth;

pub use crate::stats::Z95;

/// The Wilson score interval for a binomial proportion: with `p = s/n`,
///
/// ```text
/// centre = (p + z^2/(2n)) / (1 + z^2/n)
/// half   = z / (1 + z^2/n) * sqrt(p (1 - p) / n + z^2 / (4 n^2))
/// ```
///
/// Unlike the normal (Wald) interval it stays inside `[0, 1]` and keeps
/// close to nominal coverage for small counts and proportions near 0 or 1,
/// which is where high ranks and deep levels live. `(0, 1)` for `n = 0`.
///
/// # Examples
///
/// ```
/// use speclight::tune::{wilson_interval, Z95};
/// let (lo, hi) = wilson_interval(0, 20, Z95);
/// assert_eq!(lo, 0.0);
/// assert!(hi > 0.1 && hi < 0.2); // zero successes still leave room above 0
/// ```
pub fn wilson_interval(successes: u64, trials: u64, z: f64) -> (f64, f64) {
    if trials == 0 {
        return (0.0, 1.0);
    }
    let n = trials as f64;
    let p = successes as f64 / n;
    let z2 = z * z;
    let denom = 1.0 + z2 / n;
    let centre = (p + z2 / (2.0 * n)) / denom;
    let half = z / denom * (p * (1.0 - p) / n + z2 / (4.0 * n * n)).sqrt();
    // The interval contains p exactly; at p = 0 or 1 rounding can leave an
    // end a hair inside it (1 - 1e-16 at 6 of 6), so clamp to p as well.
    ((centre - half).clamp(0.0, p), (centre + half).clamp(p, 1.0))
}

/// Match counts per depth and rank, and the number of trials per depth.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct AcceptanceMatrix {
    /// `matches[d][k]`: trials at depth `d + 1` where the verifier's token
    /// was the drafter's rank `k`.
    pub matches: Vec<Vec<u64>>,
    /// `trials[d]`: records counted at depth `d + 1`.
    pub trials: Vec<u64>,
}

impl AcceptanceMatrix {
    fn observe(&mut self, depth_index: usize, rank: Option<u32>, weight: u64) {
        if self.trials.len() <= depth_index {
            self.trials.resize(depth_index + 1, 0);
            self.matches.resize(depth_index + 1, Vec::new());
        }
        self.trials[depth_index] += weight;
        if let Some(k) = rank {
            let row = &mut self.matches[depth_index];
            let k = k as usize;
            if row.len() <= k {
                row.resize(k + 1, 0);
            }
            row[k] += weight;
        }
    }

    /// `E[X]` of a rank tree under this matrix's point estimates:
    /// `sum_v prod_j a[j][rank_j]` (`docs/THEORY.md` sections 2-3), 0 beyond the
    /// counted depths. O(nodes).
    ///
    /// # Examples
    ///
    /// ```
    /// use speclight::tune::{chain_tree, AcceptanceMatrix};
    /// let m = AcceptanceMatrix { matches: vec![vec![3, 1], vec![1]], trials: vec![4, 2] };
    /// // Chain of 2: a[1][0] + a[1][0] a[2][0] = 0.75 + 0.75 * 0.5.
    /// assert_eq!(m.tree_value(&chain_tree(2)?), 1.125);
    /// # Ok::<(), speclight::Error>(())
    /// ```
    pub fn tree_value(&self, tree: &crate::DraftTree) -> f64 {
        let mut reach = Vec::with_capacity(tree.len());
        let mut total = 0.0;
        for node in tree.nodes() {
            let up = node.parent.map_or(1.0, |p| reach[p]);
            let r = up * self.estimate(node.depth as usize - 1, node.token as usize);
            reach.push(r);
            total += r;
        }
        total
    }

    /// Number of depth rows.
    pub fn depths(&self) -> usize {
        self.trials.len()
    }

    /// Longest row (highest rank ever matched, plus one).
    pub fn ranks(&self) -> usize {
        self.matches.iter().map(Vec::len).max().unwrap_or(0)
    }

    /// The point estimate `a[d][k] = matches / trials` (`d` 0-based), 0
    /// where nothing was counted.
    pub fn estimate(&self, d: usize, k: usize) -> f64 {
        let (s, n) = self.counts(d, k);
        if n == 0 {
            0.0
        } else {
            s as f64 / n as f64
        }
    }

    /// The Wilson interval of `a[d][k]` (see [`wilson_interval`]).
    pub fn interval(&self, d: usize, k: usize, z: f64) -> (f64, f64) {
        let (s, n) = self.counts(d, k);
        wilson_interval(s, n, z)
    }

    /// `(matches, trials)` of cell `(d, k)`, zeros outside the counted range.
    fn counts(&self, d: usize, k: usize) -> (u64, u64) {
        let n = self.trials.get(d).copied().unwrap_or(0);
        let s = self
            .matches
            .get(d)
            .and_then(|r| r.get(k))
            .copied()
            .unwrap_or(0);
        (s, n)
    }

    /// The point-estimate rows, each padded to [`AcceptanceMatrix::ranks`].
    pub fn rows(&self) -> Vec<Vec<f64>> {
        let k = self.ranks();
        (0..self.depths())
            .map(|d| (0..k).map(|r| self.estimate(d, r)).collect())
            .collect()
    }

    /// Leading depths with at least one match: no tree can accept a token
    /// at the first depth without one, so deeper rows are unusable.
    pub fn usable_depth(&self) -> usize {
        self.matches
            .iter()
            .take_while(|r| r.iter().any(|&c| c > 0))
            .count()
    }

    /// The per-depth positional model of the first
    /// [`AcceptanceMatrix::usable_depth`] rows. Build trees from it with a
    /// depth limit of at most that many levels: beyond them the model
    /// reuses the last row, which the data do not support.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArgument`] when not one match was counted.
    pub fn to_model(&self) -> Result<PositionalByDepth> {
        let usable = self.usable_depth();
        if usable == 0 {
            return Err(Error::InvalidArgument(
                "the trace has no record where the verifier's token is among the drafter's candidates at depth 1".into(),
            ));
        }
        let mut rows = self.rows();
        rows.truncate(usable);
        PositionalByDepth::new(&rows)
    }
}

/// Streaming estimator of the acceptance matrix, O(depth x top-k) memory
/// whatever the number of records.
///
/// Two matrices are kept:
///
/// - **marginal**: every record at depth `d` counts, so `a[d][k]` is how
///   often the verifier's token at depth `d` is the drafter's rank `k`;
/// - **conditional** (used for tuning): a record at depth `d` counts only
///   when the verifier's tokens at depths `1..d` were all in the drafter's
///   lists. A tree walk reaches depth `d` only in that case, and
///   acceptance is typically higher after matches (easy text is easy
///   throughout), so the marginal rate underestimates deep levels.
///
/// With `a` the conditional matrix, the per-depth positional model predicts
/// `pi(v) = prod_j a[j][rank_j]` (`docs/THEORY.md` section 3); this is exact when
/// the rank at each depth is independent of the earlier ranks given that
/// they matched.
///
/// # Examples
///
/// ```
/// use speclight::tune::{AcceptanceEstimator, Group, TraceReader};
/// let trace = br#"{"seq":0,"pos":0,"depth":1,"draft_top":[[3,-0.2],[4,-1.9]],"target":9}
/// {"seq":0,"pos":0,"depth":2,"draft_top":[[8,-0.1]],"target":8}
/// {"seq":0,"pos":1,"depth":1,"draft_top":[[8,-0.4]],"target":8}
/// {"seq":0,"pos":1,"depth":2,"draft_top":[[8,-0.4]],"target":8}
/// "#;
/// let mut est = AcceptanceEstimator::new();
/// let mut reader = TraceReader::new(&trace[..]);
/// let mut g = Group::default();
/// while reader.next_group(&mut g)? {
///     est.observe(&g);
/// }
/// assert_eq!(est.marginal().trials, vec![2, 2]);
/// assert_eq!(est.conditional().trials, vec![2, 1]); // pos 0 missed at depth 1
/// assert_eq!(est.conditional().estimate(1, 0), 1.0);
/// # Ok::<(), speclight::Error>(())
/// ```
#[derive(Debug, Clone, Default)]
pub struct AcceptanceEstimator {
    marginal: AcceptanceMatrix,
    conditional: AcceptanceMatrix,
    groups: u64,
    records: u64,
    replicates: Vec<AcceptanceMatrix>,
    seed: u64,
}

/// A uniform number in `[0, 1)` from `(seq, replicate, seed)` (splitmix64).
fn unit_hash(seq: u64, replicate: u64, seed: u64) -> f64 {
    let mut z = seq
        .wrapping_mul(0x9e37_79b9_7f4a_7c15)
        .wrapping_add(replicate.wrapping_mul(0xd1b5_4a32_d192_ed03))
        ^ seed;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^= z >> 31;
    (z >> 11) as f64 / (1u64 << 53) as f64
}

/// A Poisson(1) draw by inverting its CDF at `u`.
fn poisson1(u: f64) -> u64 {
    let mut k = 0u64;
    let mut p = (-1.0f64).exp();
    let mut cdf = p;
    while u >= cdf && k < 20 {
        k += 1;
        p /= k as f64;
        cdf += p;
    }
    k
}

impl AcceptanceEstimator {
    /// An empty estimator.
    pub fn new() -> Self {
        Self::default()
    }

    /// Also keeps `replicates` Poisson-bootstrap copies of the conditional
    /// matrix, resampling whole *sequences*: every group of sequence `s`
    /// counts `w_r(s) ~ Poisson(1)` times in replicate `r`, with `w_r(s)` a
    /// hash of `(s, r, seed)`, so no state per sequence is needed and the
    /// trace still streams. Groups of one sequence overlap and are
    /// correlated; resampling sequences keeps that correlation, which an
    /// interval assuming independent records would ignore. Memory
    /// O(replicates x depth x top-k); time O(replicates x depth) per group.
    pub fn with_bootstrap(mut self, replicates: usize, seed: u64) -> Self {
        self.replicates = vec![AcceptanceMatrix::default(); replicates];
        self.seed = seed;
        self
    }

    /// Counts one group. O(depth of the group), times the replicates.
    pub fn observe(&mut self, group: &Group) {
        self.groups += 1;
        self.records += group.depth() as u64;
        let mut on_path = true;
        let mut counted = 0;
        for (j, &rank) in group.ranks().iter().enumerate() {
            self.marginal.observe(j, rank, 1);
            if on_path {
                self.conditional.observe(j, rank, 1);
                on_path = rank.is_some();
                counted = j + 1;
            }
        }
        for (r, m) in self.replicates.iter_mut().enumerate() {
            let w = poisson1(unit_hash(group.seq(), r as u64, self.seed));
            if w > 0 {
                for (j, &rank) in group.ranks().iter().take(counted).enumerate() {
                    m.observe(j, rank, w);
                }
            }
        }
    }

    /// The bootstrap replicates of the conditional matrix (empty unless
    /// [`AcceptanceEstimator::with_bootstrap`]).
    pub fn replicates(&self) -> &[AcceptanceMatrix] {
        &self.replicates
    }

    /// Groups counted.
    pub fn groups(&self) -> u64 {
        self.groups
    }

    /// Records counted.
    pub fn records(&self) -> u64 {
        self.records
    }

    /// Every record counts.
    pub fn marginal(&self) -> &AcceptanceMatrix {
        &self.marginal
    }

    /// Only records whose earlier depths all matched count.
    pub fn conditional(&self) -> &AcceptanceMatrix {
        &self.conditional
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Found by the metrics_inputs fuzz target: 6 successes of 6 gave an
    /// upper end of 0.9999999999999999, below the estimate 1.
    #[test]
    fn wilson_interval_contains_the_estimate_at_every_count() {
        for trials in 1..=200u64 {
            for successes in 0..=trials {
                let p = successes as f64 / trials as f64;
                let (lo, hi) = wilson_interval(successes, trials, crate::stats::Z95);
                assert!(
                    0.0 <= lo && lo <= p && p <= hi && hi <= 1.0,
                    "{successes}/{trials}: [{lo}, {hi}]"
                );
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(200))]
        #[test]
        fn wilson_contains_the_estimate_and_stays_in_unit_interval(n in 1u64..5000, frac in 0.0f64..=1.0) {
            let s = ((n as f64) * frac).round() as u64;
            let (lo, hi) = wilson_interval(s, n, Z95);
            let p = s as f64 / n as f64;
            prop_assert!(0.0 <= lo && lo <= p + 1e-12 && p <= hi + 1e-12 && hi <= 1.0);
        }
    }

    #[test]
    fn poisson_weights_have_mean_and_variance_one() {
        let n = 200_000u64;
        let draws: Vec<f64> = (0..n)
            .map(|s| poisson1(unit_hash(s, 3, 9)) as f64)
            .collect();
        let mean = draws.iter().sum::<f64>() / n as f64;
        let var = draws.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n as f64;
        // Standard errors: sqrt(1/n) = 0.0022 for the mean, about 0.005 for the variance.
        assert!(
            (mean - 1.0).abs() < 0.01 && (var - 1.0).abs() < 0.02,
            "{mean} {var}"
        );
    }

    #[test]
    fn wilson_matches_the_score_test_inversion() {
        // Second method: the interval's ends are the p0 where the score
        // statistic |p - p0| / sqrt(p0 (1 - p0) / n) equals z; find them by
        // bisection and compare.
        for &(s, n) in &[(3u64, 10u64), (0, 25), (40, 41), (500, 1000)] {
            let p = s as f64 / n as f64;
            let score = |p0: f64| (p - p0).abs() / (p0 * (1.0 - p0) / n as f64).sqrt() - Z95;
            let bisect = |mut a: f64, mut b: f64| {
                for _ in 0..200 {
                    let m = 0.5 * (a + b);
                    if (score(a) > 0.0) == (score(m) > 0.0) {
                        a = m
                    } else {
                        b = m
                    }
                }
                0.5 * (a + b)
            };
            let (lo, hi) = wilson_interval(s, n, Z95);
            let lo2 = if s == 0 { 0.0 } else { bisect(1e-12, p) };
            let hi2 = if s == n { 1.0 } else { bisect(p, 1.0 - 1e-12) };
            assert!(
                (lo - lo2).abs() < 1e-9 && (hi - hi2).abs() < 1e-9,
                "{s}/{n}: ({lo}, {hi}) vs ({lo2}, {hi2})"
            );
        }
    }
}
