//! Batch-aware schedules (docs/THEORY.md section 5, extended to a batch):
//! for every batch size `b`, the capacity and depth limit that maximise the
//! system's tokens per second, and the chain length a server with a
//! per-batch-size schedule (vLLM's `num_speculative_tokens_per_batch_size`)
//! should use.

use super::batch_latency::BatchLatencyProfile;
use super::depth_curves::for_each_depth_limit;
use super::latency::LatencyProfile;
use crate::dist::TokenId;
use crate::error::{Error, Result};
use crate::model::NextTokenModel;

/// Most batch sizes one schedule may list.
pub const MAX_SCHEDULE_BATCH_SIZES: usize = 4096;
/// Largest batch size a schedule accepts.
pub const MAX_SCHEDULE_BATCH_SIZE: u64 = 1 << 24;
/// Most (batch size, capacity, depth limit) evaluations one solve may do.
pub const MAX_SCHEDULE_WORK: usize = 1 << 26;

/// The cost side of a batched iteration:
///
/// - `T_v(b, n)`: one verifier pass over `b` requests that each carry `n`
///   draft tokens plus the root ([`BatchLatencyProfile`]);
/// - `T_d(b)`: one sequential drafter step for the whole batch (a
///   [`LatencyProfile`] whose axis is the batch size, constant if flat); a
///   tree that reaches depth `d` costs `d * T_d(b)`, one step per level;
/// - `T_0`: fixed seconds per iteration (sampling, scheduling).
///
/// `system tokens/s = b (1 + E[X](n, D)) / (T_v(b, n) + d T_d(b) + T_0)`:
/// each of the `b` requests gains its accepted tokens plus the bonus token.
/// Plain decoding (`n = 0`, no drafter) gives `b / (T_v(b, 0) + T_0)`.
///
/// # Examples
///
/// ```
/// use speclight::capacity::{BatchLatencyProfile, LatencyProfile, ScheduleCost};
/// let t_v = BatchLatencyProfile::new(&[(1, 0, 0.02), (1, 8, 0.02), (8, 0, 0.03), (8, 8, 0.06)])?;
/// let cost = ScheduleCost::new(t_v, LatencyProfile::constant(0.002)?, 0.0)?;
/// assert!((cost.tokens_per_second(8, 3.0, 8, 4) - 8.0 * 4.0 / (0.06 + 0.008)).abs() < 1e-9);
/// assert!((cost.plain_tokens_per_second(8) - 8.0 / 0.03).abs() < 1e-9);
/// # Ok::<(), speclight::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct ScheduleCost {
    verifier: BatchLatencyProfile,
    draft_step: LatencyProfile,
    overhead: f64,
}

impl ScheduleCost {
    /// Bundles the three costs.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidLatency`] for a negative, NaN or infinite `T_0`.
    pub fn new(
        verifier: BatchLatencyProfile,
        draft_step: LatencyProfile,
        overhead: f64,
    ) -> Result<Self> {
        if !(overhead.is_finite() && overhead >= 0.0) {
            return Err(Error::InvalidLatency {
                index: 0,
                seconds: overhead,
            });
        }
        Ok(Self {
            verifier,
            draft_step,
            overhead,
        })
    }

    /// `T_v(b, n)`.
    pub fn verifier(&self) -> &BatchLatencyProfile {
        &self.verifier
    }

    /// `T_d(b)`: one drafter step at batch size `b`.
    pub fn draft_step(&self, batch_size: u64) -> f64 {
        let b = usize::try_from(batch_size).unwrap_or(usize::MAX);
        self.draft_step.at(b)
    }

    /// `T_0`.
    pub fn overhead(&self) -> f64 {
        self.overhead
    }

    /// Seconds of one iteration: `T_v(b, n) + d T_d(b) + T_0`.
    pub fn seconds(&self, batch_size: u64, n: usize, depth: u32) -> f64 {
        self.verifier.at(batch_size, n)
            + f64::from(depth) * self.draft_step(batch_size)
            + self.overhead
    }

    /// `b (1 + E[X]) / (T_v(b, n) + d T_d(b) + T_0)`.
    pub fn tokens_per_second(&self, batch_size: u64, expected: f64, n: usize, depth: u32) -> f64 {
        batch_size as f64 * (1.0 + expected) / self.seconds(batch_size, n, depth)
    }

    /// Plain decoding: `b / (T_v(b, 0) + T_0)`.
    pub fn plain_tokens_per_second(&self, batch_size: u64) -> f64 {
        self.tokens_per_second(batch_size, 0.0, 0, 0)
    }
}

/// The best choice at one batch size.
#[derive(Debug, Clone, Copy, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct ScheduleEntry {
    /// `b`.
    pub batch_size: u64,
    /// `n` draft tokens per request (0: do not speculate).
    pub capacity: usize,
    /// The depth limit `D` (0 when `n = 0`).
    pub max_depth: u32,
    /// The depth `d <= D` the tree reaches (drafter steps charged).
    pub depth: u32,
    /// `E[X](n, D)` per request.
    pub expected_accepted: f64,
    /// System tokens per second.
    pub tokens_per_second: f64,
    /// Over plain decoding at the same batch size.
    pub speedup: f64,
}

/// A schedule: one tree entry and one chain entry per batch size.
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct Schedule {
    /// The best tree (capacity, depth limit) per batch size, increasing `b`.
    pub entries: Vec<ScheduleEntry>,
    /// The best chain (the drafter's rank-0 path) per batch size: `capacity`
    /// is the chain length `k`, `max_depth = depth = k`.
    pub chain: Vec<ScheduleEntry>,
}

/// A tier of batch sizes sharing one setting: `[lo, hi]` inclusive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct BatchTier {
    /// First batch size of the tier.
    pub lo: u64,
    /// Last batch size of the tier.
    pub hi: u64,
    /// Draft tokens per request.
    pub capacity: usize,
    /// Drafter steps (depth reached).
    pub depth: u32,
}

impl Schedule {
    /// Consecutive batch sizes with the same chain length merged into
    /// inclusive ranges `[lo, hi]`. Range `i` runs from its batch size to
    /// the one before the next listed batch size (the last ends at its own);
    /// the first starts at 1 so that every runtime batch size is covered, as
    /// vLLM requires (batch sizes below the first listed use its length).
    pub fn chain_ranges(&self) -> Vec<BatchTier> {
        merge_tiers(&self.chain)
    }

    /// The tree entries merged the same way (equal capacity and depth).
    pub fn tree_tiers(&self) -> Vec<BatchTier> {
        merge_tiers(&self.entries)
    }
}

fn merge_tiers(entries: &[ScheduleEntry]) -> Vec<BatchTier> {
    let mut tiers: Vec<BatchTier> = Vec::new();
    for (i, e) in entries.iter().enumerate() {
        let hi = entries
            .get(i + 1)
            .map_or(e.batch_size, |next| next.batch_size - 1);
        let lo = if i == 0 { 1 } else { e.batch_size };
        match tiers.last_mut() {
            Some(t) if t.capacity == e.capacity && t.depth == e.depth => t.hi = hi,
            _ => tiers.push(BatchTier {
                lo,
                hi,
                capacity: e.capacity,
                depth: e.depth,
            }),
        }
    }
    tiers
}

/// One `(n, D)` cell of the acceptance table: the best-first tree of `n`
/// nodes under depth limit `D` reaches depth `depth` and accepts
/// `expected_accepted` tokens on average.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Cell {
    capacity: usize,
    max_depth: u32,
    depth: u32,
    expected_accepted: f64,
}

/// Finds the schedule: for every batch size, the best `(n, D)` (or `n = 0`)
/// and the best chain length.
///
/// One best-first run per depth limit gives `E[X](n, D)` and the depth
/// reached for every `n <= N` (as [`super::CapacitySolver`] does: the tree
/// of `n` nodes is the first `n` nodes of the `N`-node one); one walk along
/// the drafter's rank-0 path gives the chain's `E[X](k)`. Then every cell is
/// scored at every batch size. Ties keep the smaller depth limit, then the
/// smaller capacity, and "do not speculate" wins ties with it.
///
/// Time O(D_max (N log N + model calls) + |B| N D_max log m), space
/// O(N D_max) for the table (`m` latency points).
///
/// # Examples
///
/// ```
/// use speclight::capacity::{BatchLatencyProfile, LatencyProfile, ScheduleCost, Scheduler};
/// use speclight::Positional;
/// let t_v = BatchLatencyProfile::new(&[
///     (1, 0, 0.020), (1, 64, 0.022),
///     (64, 0, 0.030), (64, 64, 0.400),
/// ])?;
/// let cost = ScheduleCost::new(t_v, LatencyProfile::constant(0.001)?, 0.0)?;
/// let mut model = Positional::new(&[0.7, 0.1, 0.05])?;
/// let s = Scheduler::new(cost, 32, 8)?.solve(&[1, 64], &mut model)?;
/// assert!(s.entries[0].capacity >= s.entries[1].capacity);
/// assert!(s.entries.iter().all(|e| e.speedup >= 1.0));
/// # Ok::<(), speclight::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct Scheduler {
    cost: ScheduleCost,
    max_capacity: usize,
    max_depth: u32,
}

impl Scheduler {
    /// A scheduler over capacities `1..=max_capacity` and depth limits
    /// `1..=max_depth` (clamped to `max_capacity`).
    ///
    /// # Errors
    ///
    /// [`Error::ZeroCapacity`], [`Error::CapacityTooLarge`],
    /// [`Error::ZeroDepth`], or [`Error::InvalidArgument`] when the table
    /// would exceed [`super::MAX_TABLE_ROWS`].
    pub fn new(cost: ScheduleCost, max_capacity: usize, max_depth: u32) -> Result<Self> {
        let max_depth = super::solver::check_table(max_capacity, max_depth)?;
        Ok(Self {
            cost,
            max_capacity,
            max_depth,
        })
    }

    /// The cost model.
    pub fn cost(&self) -> &ScheduleCost {
        &self.cost
    }

    /// The schedule with the verifier equal to the drafter.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArgument`] for batch sizes that are empty, not
    /// strictly increasing, 0, above [`MAX_SCHEDULE_BATCH_SIZE`], more than
    /// [`MAX_SCHEDULE_BATCH_SIZES`], or too much work
    /// ([`MAX_SCHEDULE_WORK`]); whatever the model returns.
    pub fn solve<M: NextTokenModel + ?Sized>(
        &self,
        batch_sizes: &[u64],
        model: &mut M,
    ) -> Result<Schedule> {
        self.check_batch_sizes(batch_sizes)?;
        let mut cells = Vec::new();
        for_each_depth_limit(
            self.max_capacity,
            self.max_depth,
            model,
            None::<&mut M>,
            |d, depths, curve| push_cells(d, depths, curve, &mut cells),
        )?;
        let chain = chain_curve(model, None::<&mut M>, self.max_depth as usize)?;
        Ok(self.score(batch_sizes, &cells, &chain))
    }

    /// The schedule with trees built from `drafter` and valued under `verifier`.
    ///
    /// # Errors
    ///
    /// As [`Scheduler::solve`].
    pub fn solve_with_verifier<D, V>(
        &self,
        batch_sizes: &[u64],
        drafter: &mut D,
        verifier: &mut V,
    ) -> Result<Schedule>
    where
        D: NextTokenModel + ?Sized,
        V: NextTokenModel + ?Sized,
    {
        self.check_batch_sizes(batch_sizes)?;
        let mut cells = Vec::new();
        for_each_depth_limit(
            self.max_capacity,
            self.max_depth,
            drafter,
            Some(&mut *verifier),
            |d, depths, curve| push_cells(d, depths, curve, &mut cells),
        )?;
        let chain = chain_curve(drafter, Some(verifier), self.max_depth as usize)?;
        Ok(self.score(batch_sizes, &cells, &chain))
    }

    fn check_batch_sizes(&self, batch_sizes: &[u64]) -> Result<()> {
        let bad = |m: String| Err(Error::InvalidArgument(m));
        if batch_sizes.is_empty() {
            return bad("no batch sizes to schedule".into());
        }
        if batch_sizes.len() > MAX_SCHEDULE_BATCH_SIZES {
            return bad(format!(
                "{} batch sizes, above the limit {MAX_SCHEDULE_BATCH_SIZES}",
                batch_sizes.len()
            ));
        }
        for (i, &b) in batch_sizes.iter().enumerate() {
            if b == 0 || b > MAX_SCHEDULE_BATCH_SIZE {
                return bad(format!(
                    "batch size {b} is outside 1..={MAX_SCHEDULE_BATCH_SIZE}"
                ));
            }
            if i > 0 && b <= batch_sizes[i - 1] {
                return bad(format!(
                    "batch sizes must increase: {b} follows {}",
                    batch_sizes[i - 1]
                ));
            }
        }
        let work = batch_sizes
            .len()
            .saturating_mul(self.max_capacity)
            .saturating_mul(self.max_depth as usize);
        if work > MAX_SCHEDULE_WORK {
            return bad(format!(
                "{} batch sizes x {} capacities x {} depth limits is {work} evaluations, above {MAX_SCHEDULE_WORK}",
                batch_sizes.len(),
                self.max_capacity,
                self.max_depth
            ));
        }
        Ok(())
    }

    fn score(&self, batch_sizes: &[u64], cells: &[Cell], chain: &[f64]) -> Schedule {
        let mut entries = Vec::with_capacity(batch_sizes.len());
        let mut chains = Vec::with_capacity(batch_sizes.len());
        for &b in batch_sizes {
            let plain = self.cost.plain_tokens_per_second(b);
            let tree = cells
                .iter()
                .map(|c| (c.capacity, c.max_depth, c.depth, c.expected_accepted));
            entries.push(self.best_at(b, plain, tree));
            let chain_cells = chain
                .iter()
                .enumerate()
                .filter(|(k, _)| *k < self.max_capacity)
                .map(|(k, &e)| (k + 1, k as u32 + 1, k as u32 + 1, e));
            chains.push(self.best_at(b, plain, chain_cells));
        }
        Schedule {
            entries,
            chain: chains,
        }
    }

    /// The best of "do not speculate" and the given `(n, D, d, E)` cells at batch size `b`.
    fn best_at<I>(&self, b: u64, plain: f64, cells: I) -> ScheduleEntry
    where
        I: Iterator<Item = (usize, u32, u32, f64)>,
    {
        let mut best = ScheduleEntry {
            batch_size: b,
            capacity: 0,
            max_depth: 0,
            depth: 0,
            expected_accepted: 0.0,
            tokens_per_second: plain,
            speedup: 1.0,
        };
        for (n, max_depth, depth, e) in cells {
            let tps = self.cost.tokens_per_second(b, e, n, depth);
            if tps > best.tokens_per_second {
                best = ScheduleEntry {
                    batch_size: b,
                    capacity: n,
                    max_depth,
                    depth,
                    expected_accepted: e,
                    tokens_per_second: tps,
                    speedup: tps / plain,
                };
            }
        }
        best
    }
}

/// Appends the cells of depth limit `d` from the node depths of the
/// `N`-node tree in commit order and its prefix-sum curve.
fn push_cells(d: u32, depths: &[u32], curve: &[f64], cells: &mut Vec<Cell>) {
    let mut reached = 0;
    for (i, (&depth, &value)) in depths.iter().zip(curve).enumerate() {
        reached = reached.max(depth);
        cells.push(Cell {
            capacity: i + 1,
            max_depth: d,
            depth: reached,
            expected_accepted: value,
        });
    }
}

/// `E[X]` of the chain of length `k = 1..=max_len` along the drafter's
/// rank-0 path, valued under `verifier` (or the drafter itself):
/// `E[X](k) = sum_{j <= k} prod_{i <= j} p(t_i | t_1..t_{i-1})`.
/// O(max_len) model calls.
fn chain_curve<D, V>(
    drafter: &mut D,
    mut verifier: Option<&mut V>,
    max_len: usize,
) -> Result<Vec<f64>>
where
    D: NextTokenModel + ?Sized,
    V: NextTokenModel + ?Sized,
{
    let mut path: Vec<TokenId> = Vec::with_capacity(max_len);
    let mut curve = Vec::with_capacity(max_len);
    let (mut reach, mut sum) = (1.0f64, 0.0f64);
    for _ in 0..max_len {
        let (token, own_prob) = {
            let dist = drafter.next(&path)?;
            (dist.tokens()[0], dist.probs()[0])
        };
        let p = match verifier.as_deref_mut() {
            Some(v) => v.next(&path)?.prob_of(token),
            None => own_prob,
        };
        reach *= p;
        sum += reach;
        curve.push(sum);
        path.push(token);
    }
    Ok(curve)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::build::TreeBuilder;
    use crate::dist::TokenDist;
    use crate::eval::evaluate;
    use crate::model::{Iid, Positional};
    use proptest::prelude::*;

    /// `T_v(b, n) = a + beta b (n + 1)` on a grid (exact under interpolation).
    fn linear_load(a: f64, beta: f64, batch_sizes: &[u64], max_n: u64) -> BatchLatencyProfile {
        let mut rows = Vec::new();
        for &b in batch_sizes {
            for n in [0, max_n] {
                rows.push((b, n, a + beta * b as f64 * (n as f64 + 1.0)));
            }
        }
        BatchLatencyProfile::new(&rows).unwrap()
    }

    /// Second method: an independent build and evaluation per cell, and the formula.
    fn brute_force<V: NextTokenModel + Clone>(
        cost: &ScheduleCost,
        drafter: &Iid,
        verifier: &V,
        b: u64,
        max_n: usize,
        max_d: u32,
    ) -> f64 {
        let mut best = cost.plain_tokens_per_second(b);
        for d in 1..=max_d {
            for n in 1..=max_n {
                let tree = TreeBuilder::new(n)
                    .unwrap()
                    .with_max_depth(Some(d))
                    .unwrap()
                    .build_owned(&mut drafter.clone())
                    .unwrap();
                if tree.len() < n {
                    continue;
                }
                let e = evaluate(&tree, &mut verifier.clone())
                    .unwrap()
                    .expected_accepted;
                best = best.max(cost.tokens_per_second(b, e, n, tree.max_depth()));
            }
        }
        best
    }

    #[test]
    fn chain_curve_is_the_rank0_path() {
        let mut q = Positional::new(&[0.6, 0.3, 0.05]).unwrap();
        let c = chain_curve(&mut q, None::<&mut Positional>, 4).unwrap();
        let want = [0.6, 0.96, 1.176, 1.3056];
        for (got, want) in c.iter().zip(want) {
            assert!((got - want).abs() < 1e-12, "{got} vs {want}");
        }
        let mut p = Iid::new(TokenDist::from_probs(&[0.5, 0.5]).unwrap());
        let mut q = Iid::new(TokenDist::from_probs(&[0.4, 0.6]).unwrap());
        // q's rank-0 token is id 1, which p gives 0.5.
        let c = chain_curve(&mut q, Some(&mut p), 2).unwrap();
        assert!((c[1] - 0.75).abs() < 1e-12);
    }

    #[test]
    fn heavy_load_turns_speculation_off_and_tiers_merge() {
        let t_v = linear_load(0.01, 0.001, &[1, 2, 4, 8, 64], 32);
        let cost = ScheduleCost::new(t_v, LatencyProfile::constant(0.0005).unwrap(), 0.0).unwrap();
        let mut m = Iid::new(TokenDist::from_probs(&[0.5, 0.2]).unwrap());
        let s = Scheduler::new(cost, 16, 4)
            .unwrap()
            .solve(&[1, 2, 4, 8, 64], &mut m)
            .unwrap();
        assert!(s.entries[0].capacity > 0);
        let last = s.entries.last().unwrap();
        assert_eq!((last.capacity, last.speedup), (0, 1.0));
        let ranges = s.chain_ranges();
        assert_eq!(ranges[0].lo, 1);
        assert_eq!(ranges.last().unwrap().hi, 64);
        for w in ranges.windows(2) {
            assert_eq!(w[0].hi + 1, w[1].lo);
            assert_ne!(w[0].capacity, w[1].capacity);
        }
    }

    #[test]
    fn rejects_bad_batch_sizes() {
        let t_v = linear_load(0.01, 0.001, &[1], 8);
        let cost = ScheduleCost::new(t_v, LatencyProfile::constant(0.0).unwrap(), 0.0).unwrap();
        let s = Scheduler::new(cost, 8, 2).unwrap();
        let mut m = Iid::new(TokenDist::from_probs(&[0.5]).unwrap());
        for bad in [
            &[][..],
            &[0],
            &[4, 2],
            &[2, 2],
            &[MAX_SCHEDULE_BATCH_SIZE + 1],
        ] {
            assert!(
                matches!(s.solve(bad, &mut m), Err(Error::InvalidArgument(_))),
                "{bad:?}"
            );
        }
    }

    fn small_dist() -> impl Strategy<Value = Vec<f64>> {
        prop::collection::vec(0.01f64..1.0, 1..4).prop_map(|w| {
            let total: f64 = w.iter().sum::<f64>() * 1.05;
            w.iter().map(|x| x / total).collect()
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(24))]

        /// With `T_v(b, n) = a + beta b (n + 1)`, a free drafter and no
        /// overhead, the score is `(1 + E*(n)) / (a / b + beta (n + 1))`
        /// (`E*(n)` the best over depth limits): raising `b` lowers the
        /// constant `a / b`, which favours smaller `n` (increasing
        /// differences, Topkis), so the chosen capacity never grows.
        #[test]
        fn capacity_never_grows_with_load(
            q in small_dist(),
            a in 0.001f64..0.05,
            beta in 0.00001f64..0.002,
        ) {
            let sizes = [1u64, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64, 128];
            let t_v = linear_load(a, beta, &sizes, 64);
            let cost = ScheduleCost::new(t_v, LatencyProfile::constant(0.0).unwrap(), 0.0).unwrap();
            let mut m = Iid::new(TokenDist::from_probs(&q).unwrap());
            let s = Scheduler::new(cost, 24, 6).unwrap().solve(&sizes, &mut m).unwrap();
            for w in s.entries.windows(2) {
                prop_assert!(w[1].capacity <= w[0].capacity, "{:?}", s.entries);
            }
            for w in s.chain.windows(2) {
                prop_assert!(w[1].capacity <= w[0].capacity, "{:?}", s.chain);
            }
        }

        /// Every entry equals the best over independently built cells.
        #[test]
        fn every_entry_is_the_brute_force_best(
            q in small_dist(),
            p in small_dist(),
            step in 0.0f64..0.004,
            max_n in 1usize..10,
            max_d in 1u32..4,
        ) {
            let sizes = [1u64, 3, 8, 20];
            let t_v = BatchLatencyProfile::new(&[
                (1, 0, 0.02), (1, 4, 0.021), (1, 16, 0.03),
                (8, 0, 0.025), (8, 4, 0.03), (8, 16, 0.06),
            ]).unwrap();
            let draft = LatencyProfile::new(&[(1, step), (8, 2.0 * step)]).unwrap();
            let cost = ScheduleCost::new(t_v, draft, 0.001).unwrap();
            let drafter = Iid::new(TokenDist::from_probs(&q).unwrap());
            let verifier = Iid::new(TokenDist::from_probs(&p).unwrap());
            let scheduler = Scheduler::new(cost.clone(), max_n, max_d).unwrap();
            let s = scheduler
                .solve_with_verifier(&sizes, &mut drafter.clone(), &mut verifier.clone())
                .unwrap();
            for e in &s.entries {
                let want = brute_force(&cost, &drafter, &verifier, e.batch_size, max_n, max_d);
                prop_assert!((e.tokens_per_second - want).abs() <= 1e-9 * want, "{e:?} vs {want}");
            }
        }
    }
}
