//! The verifier-capacity solver of docs/THEORY.md section 5: tokens per second
//! and speedup for every capacity `n <= N` and depth limit `D <= D_max`, and
//! the speed-of-light speedup no deterministic drafter can beat.

use super::depth_curves::for_each_depth_limit;
use super::latency::CostModel;
use crate::build::{TreeBuilder, MAX_CAPACITY};
use crate::error::{Error, Result};
use crate::model::NextTokenModel;

/// Largest table the solver builds (`N x D_max` rows, 40 bytes each).
pub const MAX_TABLE_ROWS: usize = 1 << 22;

/// One `(capacity, depth limit)` entry of the solver's table.
#[derive(Debug, Clone, Copy, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct CapacityPoint {
    /// `n`: draft tokens per verifier pass.
    pub capacity: usize,
    /// `D`: the depth limit of the tree.
    pub max_depth: u32,
    /// `E[X](n, D)` under the verifier.
    pub expected_accepted: f64,
    /// docs/THEORY.md section 5 ([`CostModel::tokens_per_second`]).
    pub tokens_per_second: f64,
    /// Over plain decoding ([`CostModel::speedup`]).
    pub speedup: f64,
}

/// The speed-of-light point: a certified upper bound on `E[X]` in place of
/// the drafter's value and a free drafter (`T_d = 0`), maximised over `n`.
#[derive(Debug, Clone, Copy, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct SpeedOfLight {
    /// The capacity at which the bound's speedup peaks.
    pub capacity: usize,
    /// The bound on `E[X]` at that capacity.
    pub expected_accepted: f64,
    /// Tokens per second at that capacity with a free drafter.
    pub tokens_per_second: f64,
    /// The speed-of-light speedup over plain decoding.
    pub speedup: f64,
}

/// What [`CapacitySolver`] returns.
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct Solution {
    /// The argmax of tokens per second over the table (the smallest depth
    /// limit, then the smallest capacity, among ties).
    pub best: CapacityPoint,
    /// The speed of light (see [`speed_of_light`]).
    pub speed_of_light: SpeedOfLight,
    /// `best.speedup / speed_of_light.speedup`: in `(0, 1]` up to rounding,
    /// since the speed of light bounds every row.
    pub speedup_ratio: f64,
    /// Every `(n, D)` entry, ordered by `D` then `n`. A row exists only if
    /// the `D`-limited tree can hold `n` nodes (a distribution with finite
    /// support runs out of nodes under a small depth limit).
    pub table: Vec<CapacityPoint>,
}

/// Solves docs/THEORY.md section 5 for one context.
///
/// For each depth limit `D = 1..=D_max` it runs best-first **once** to `N`
/// nodes. Best-first commits nodes in a fixed order, so the tree of `n`
/// nodes is the first `n` nodes of the `N`-node tree, and
///
/// - with the verifier equal to the drafter, `E[X](n, D) = OPT(n)` is the
///   builder's prefix-sum curve ([`TreeBuilder::opt_curve`]);
/// - with a separate verifier, one DP pass over the `N`-node tree gives every
///   node's verifier reach `pi_p(v)` ([`Evaluator::log_reach`](crate::Evaluator::log_reach)) and
///   `E[X](n, D)` is the prefix sum of the first `n` of them.
///
/// The drafter's cost of row `(n, D)` is that of the `n`-node tree
/// ([`super::DraftCost::of_levels`] over its level widths): `d * T_d` for a
/// per-step cost, where `d <= D` is the depth the tree actually reaches. A
/// tree that stops short of the limit needs no further draft steps; then row
/// `(n, D)` holds the same tree as row `(n, d)`, so the argmax is unchanged
/// and is reported at the smaller limit.
///
/// Time O(D_max (N log N + model calls)), space O(N D_max) for the table.
///
/// # Examples
///
/// ```
/// use speclight::capacity::{CapacitySolver, CostModel, DraftCost, LatencyProfile};
/// use speclight::Positional;
/// let verifier = LatencyProfile::new(&[(0, 0.025), (16, 0.025), (64, 0.040), (256, 0.100)])?;
/// let cost = CostModel::new(verifier, DraftCost::PerStep(0.002), 0.0)?;
/// let mut model = Positional::new(&[0.634, 0.108, 0.057, 0.034, 0.023])?;
/// let solution = CapacitySolver::new(cost, 128, 8)?.solve(&mut model)?;
/// assert!(solution.best.speedup > 1.0);
/// assert!(solution.speed_of_light.speedup >= solution.best.speedup);
/// // Depth limit 1 holds only the 5 ranked candidates: 5 rows, not 128.
/// assert_eq!(solution.table.iter().filter(|r| r.max_depth == 1).count(), 5);
/// # Ok::<(), speclight::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct CapacitySolver {
    cost: CostModel,
    max_capacity: usize,
    max_depth: u32,
}

/// Checks the capacity x depth-limit table of a solver or scheduler and
/// returns the depth limit clamped to `max_capacity` (a deeper limit is the
/// same). O(1).
///
/// # Errors
///
/// [`Error::ZeroCapacity`], [`Error::CapacityTooLarge`], [`Error::ZeroDepth`],
/// or [`Error::InvalidArgument`] when the table would exceed [`MAX_TABLE_ROWS`].
pub(crate) fn check_table(max_capacity: usize, max_depth: u32) -> Result<u32> {
    if max_capacity == 0 {
        return Err(Error::ZeroCapacity);
    }
    if max_capacity > MAX_CAPACITY {
        return Err(Error::CapacityTooLarge {
            capacity: max_capacity,
            max: MAX_CAPACITY,
        });
    }
    if max_depth == 0 {
        return Err(Error::ZeroDepth);
    }
    let max_depth = max_depth.min(u32::try_from(max_capacity).unwrap_or(u32::MAX));
    let rows = max_capacity.saturating_mul(max_depth as usize);
    if rows > MAX_TABLE_ROWS {
        return Err(Error::InvalidArgument(format!(
            "a table of {max_capacity} capacities x {max_depth} depth limits has {rows} rows, above {MAX_TABLE_ROWS}"
        )));
    }
    Ok(max_depth)
}

impl CapacitySolver {
    /// A solver over capacities `1..=max_capacity` and depth limits
    /// `1..=max_depth` (a limit above `max_capacity` is the same as
    /// `max_capacity`, so the range is clamped to it).
    ///
    /// # Errors
    ///
    /// [`Error::ZeroCapacity`], [`Error::CapacityTooLarge`],
    /// [`Error::ZeroDepth`], or [`Error::InvalidArgument`] when the table
    /// would exceed [`MAX_TABLE_ROWS`].
    pub fn new(cost: CostModel, max_capacity: usize, max_depth: u32) -> Result<Self> {
        let max_depth = check_table(max_capacity, max_depth)?;
        Ok(Self {
            cost,
            max_capacity,
            max_depth,
        })
    }

    /// The cost model.
    pub fn cost(&self) -> &CostModel {
        &self.cost
    }

    /// Solves with the verifier equal to the drafter (`model` is both).
    ///
    /// # Errors
    ///
    /// Whatever the model returns.
    pub fn solve<M: NextTokenModel + ?Sized>(&self, model: &mut M) -> Result<Solution> {
        let mut table = Vec::new();
        for_each_depth_limit(
            self.max_capacity,
            self.max_depth,
            model,
            None::<&mut M>,
            |d, depths, curve| self.push_rows(d, depths, curve, &mut table),
        )?;
        self.finish(table, model)
    }

    /// Solves with trees built from `drafter` and valued under `verifier`.
    /// The speed of light uses the verifier's own best-first tree (the
    /// oracle), which bounds every deterministic drafter (docs/THEORY.md 4a).
    ///
    /// # Errors
    ///
    /// Whatever the models return.
    pub fn solve_with_verifier<D, V>(&self, drafter: &mut D, verifier: &mut V) -> Result<Solution>
    where
        D: NextTokenModel + ?Sized,
        V: NextTokenModel + ?Sized,
    {
        let mut table = Vec::new();
        for_each_depth_limit(
            self.max_capacity,
            self.max_depth,
            drafter,
            Some(&mut *verifier),
            |d, depths, curve| self.push_rows(d, depths, curve, &mut table),
        )?;
        self.finish(table, verifier)
    }

    /// Appends the rows of depth limit `d`: `depths` are the node depths of
    /// the `N`-node tree in commit order, `curve[n-1] = E[X](n, d)`.
    fn push_rows(&self, d: u32, depths: &[u32], curve: &[f64], table: &mut Vec<CapacityPoint>) {
        let mut widths = vec![0usize; d as usize];
        let mut draft = 0.0;
        for (i, (&depth, &value)) in depths.iter().zip(curve).enumerate() {
            // Update the drafter's cost for the one level that grew.
            let w = &mut widths[depth as usize - 1];
            if *w > 0 {
                draft -= self.cost.draft().step(*w);
            }
            *w += 1;
            draft += self.cost.draft().step(*w);
            let n = i + 1;
            let tokens_per_second = self.cost.tokens_per_second(value, n, draft);
            table.push(CapacityPoint {
                capacity: n,
                max_depth: d,
                expected_accepted: value,
                tokens_per_second,
                speedup: self.cost.speedup(tokens_per_second),
            });
        }
    }

    /// The argmax of `table` and the speed of light of `oracle_model`'s own
    /// best-first tree without a depth limit (the oracle).
    fn finish<V: NextTokenModel + ?Sized>(
        &self,
        table: Vec<CapacityPoint>,
        oracle_model: &mut V,
    ) -> Result<Solution> {
        let mut builder = TreeBuilder::new(self.max_capacity)?;
        builder.build(oracle_model)?;
        let oracle = builder.opt_curve();
        let best = table
            .iter()
            .copied()
            .reduce(|a, b| {
                if b.tokens_per_second > a.tokens_per_second {
                    b
                } else {
                    a
                }
            })
            .ok_or_else(|| Error::InvalidArgument("the solver's table is empty".into()))?;
        let last = oracle.last().copied().unwrap_or(0.0);
        // Beyond the oracle's last node no tree can grow: OPT(n) = OPT(len).
        let bound = |n: usize| oracle.get(n - 1).copied().unwrap_or(last);
        let speed_of_light = speed_of_light(&self.cost, self.max_capacity, bound)?;
        Ok(Solution {
            best,
            speedup_ratio: best.speedup / speed_of_light.speedup,
            speed_of_light,
            table,
        })
    }
}

/// The speed-of-light speedup (docs/THEORY.md section 5): maximise over
/// `n = 1..=max_capacity`
///
/// `speedup = (1 + min(bound(n), n)) / (T_v(n) + T_0) * (T_v(0) + T_0)`,
///
/// that is [`CostModel::tokens_per_second`] with `E[X]` replaced by a
/// certified upper bound and a free drafter. `bound(n)` must bound `E[X]`
/// of every tree of `n` nodes; it is capped by the trivial bound `n`. The
/// solver passes the oracle `OPT(n)` under the verifier (exact for
/// deterministic drafters by the dual certificate, docs/THEORY.md 4a); any other
/// certified source, such as a closed-form renewal bound (docs/THEORY.md 4b) or a
/// trace estimate (4d) when the verifier cannot be queried, plugs in here.
/// Time O(N) bound calls.
///
/// # Errors
///
/// [`Error::ZeroCapacity`] for `max_capacity == 0`, [`Error::InvalidArgument`]
/// if the bound returns NaN.
///
/// # Examples
///
/// ```
/// use speclight::capacity::{speed_of_light, CostModel, DraftCost, LatencyProfile};
/// let t_v = LatencyProfile::new(&[(0, 0.02), (16, 0.02), (32, 0.04)])?;
/// let cost = CostModel::new(t_v, DraftCost::PerStep(0.001), 0.0)?;
/// // A bound of 3 accepted tokens (capped by n): flat latency up to 16 tokens,
/// // so the first n where the bound reaches 3 wins.
/// let sol = speed_of_light(&cost, 64, |_| 3.0)?;
/// assert_eq!(sol.capacity, 3);
/// assert!((sol.speedup - 4.0).abs() < 1e-12);
/// # Ok::<(), speclight::Error>(())
/// ```
pub fn speed_of_light<B: Fn(usize) -> f64>(
    cost: &CostModel,
    max_capacity: usize,
    bound: B,
) -> Result<SpeedOfLight> {
    if max_capacity == 0 {
        return Err(Error::ZeroCapacity);
    }
    let mut best: Option<SpeedOfLight> = None;
    for n in 1..=max_capacity {
        let b = bound(n);
        if b.is_nan() {
            return Err(Error::InvalidArgument(format!(
                "speed-of-light bound at capacity {n} is NaN"
            )));
        }
        let b = b.min(n as f64).max(0.0);
        let tokens_per_second = cost.tokens_per_second(b, n, 0.0);
        if best.is_none_or(|s| tokens_per_second > s.tokens_per_second) {
            best = Some(SpeedOfLight {
                capacity: n,
                expected_accepted: b,
                tokens_per_second,
                speedup: cost.speedup(tokens_per_second),
            });
        }
    }
    best.ok_or(Error::ZeroCapacity)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::capacity::{DraftCost, LatencyProfile};
    use crate::dist::TokenDist;
    use crate::eval::evaluate;
    use crate::model::{Iid, Positional};
    use proptest::prelude::*;

    fn cost(draft: DraftCost) -> CostModel {
        let t_v =
            LatencyProfile::new(&[(0, 0.025), (16, 0.025), (32, 0.03), (64, 0.04), (128, 0.07)])
                .unwrap();
        CostModel::new(t_v, draft, 0.001).unwrap()
    }

    /// Second method: one independent build per (n, D), then the formula.
    fn brute_force_row<M: NextTokenModel, V: NextTokenModel>(
        cost: &CostModel,
        drafter: &mut M,
        verifier: &mut V,
        n: usize,
        d: u32,
    ) -> (f64, f64) {
        let tree = TreeBuilder::new(n)
            .unwrap()
            .with_max_depth(Some(d))
            .unwrap()
            .build_owned(drafter)
            .unwrap();
        let value = evaluate(&tree, verifier).unwrap().expected_accepted;
        let mut widths = vec![0usize; tree.max_depth() as usize];
        for &depth in tree.depths() {
            widths[depth as usize - 1] += 1;
        }
        let draft = cost.draft().of_levels(&widths);
        (value, cost.tokens_per_second(value, n, draft))
    }

    #[test]
    fn argmax_is_the_largest_row_and_speed_of_light_dominates() {
        let c = cost(DraftCost::PerStep(0.002));
        let mut m = Positional::new(&[0.634, 0.108, 0.057, 0.034, 0.023]).unwrap();
        let s = CapacitySolver::new(c, 96, 10)
            .unwrap()
            .solve(&mut m)
            .unwrap();
        // 5 candidates per node: depth limit d holds 5 + 25 + ... + 5^d nodes.
        let rows: usize = (1..=10u32)
            .map(|d| (1..=d).map(|k| 5usize.pow(k)).sum::<usize>().min(96))
            .sum();
        assert_eq!(s.table.len(), rows);
        for row in &s.table {
            assert!(row.tokens_per_second <= s.best.tokens_per_second);
            assert!(row.speedup <= s.speed_of_light.speedup + 1e-12);
        }
        assert!(s.speedup_ratio > 0.0 && s.speedup_ratio <= 1.0);
        // The drafter is not free, so the speed of light is strictly above.
        assert!(s.speedup_ratio < 1.0);
    }

    #[test]
    fn speed_of_light_equals_a_scan_with_the_oracle_and_a_free_drafter() {
        let c = cost(DraftCost::PerStep(0.002));
        let mut p = Iid::new(TokenDist::from_probs(&[0.6, 0.25, 0.1]).unwrap());
        let mut q = Iid::new(TokenDist::from_probs(&[0.4, 0.4, 0.2]).unwrap());
        let s = CapacitySolver::new(c.clone(), 40, 6)
            .unwrap()
            .solve_with_verifier(&mut q, &mut p)
            .unwrap();
        let mut best = 0.0f64;
        for n in 1..=40 {
            let tree = TreeBuilder::new(n).unwrap().build_owned(&mut p).unwrap();
            let opt = evaluate(&tree, &mut p).unwrap().expected_accepted;
            best = best.max(c.speedup(c.tokens_per_second(opt, n, 0.0)));
        }
        assert!((s.speed_of_light.speedup - best).abs() < 1e-9);
        assert!(s.best.speedup <= s.speed_of_light.speedup);
    }

    #[test]
    fn free_drafter_equal_to_verifier_reaches_the_speed_of_light() {
        // With T_d = 0, drafter = verifier and no binding depth limit, the
        // best row is the oracle itself: ratio 1.
        let t_v = LatencyProfile::new(&[(0, 0.02), (8, 0.02), (64, 0.06)]).unwrap();
        let c = CostModel::new(t_v, DraftCost::PerStep(0.0), 0.0).unwrap();
        let mut m = Iid::new(TokenDist::from_probs(&[0.7, 0.2]).unwrap());
        let s = CapacitySolver::new(c, 64, 64)
            .unwrap()
            .solve(&mut m)
            .unwrap();
        assert!((s.speedup_ratio - 1.0).abs() < 1e-12, "{}", s.speedup_ratio);
    }

    #[test]
    fn finite_support_drops_rows_the_tree_cannot_hold() {
        let c = cost(DraftCost::PerStep(0.001));
        let mut m = Iid::new(TokenDist::from_probs(&[0.5, 0.3]).unwrap());
        let s = CapacitySolver::new(c, 10, 2)
            .unwrap()
            .solve(&mut m)
            .unwrap();
        // D = 1: 2 nodes; D = 2: 2 + 4 = 6 nodes.
        assert_eq!(s.table.iter().filter(|r| r.max_depth == 1).count(), 2);
        assert_eq!(s.table.iter().filter(|r| r.max_depth == 2).count(), 6);
    }

    #[test]
    fn rejects_bad_settings() {
        let c = cost(DraftCost::PerStep(0.001));
        assert_eq!(
            CapacitySolver::new(c.clone(), 0, 1).unwrap_err(),
            Error::ZeroCapacity
        );
        assert_eq!(
            CapacitySolver::new(c.clone(), 8, 0).unwrap_err(),
            Error::ZeroDepth
        );
        assert!(matches!(
            CapacitySolver::new(c.clone(), MAX_CAPACITY, 64),
            Err(Error::InvalidArgument(_))
        ));
        assert!(matches!(
            speed_of_light(&c, 4, |_| f64::NAN),
            Err(Error::InvalidArgument(_))
        ));
    }

    fn small_dist() -> impl Strategy<Value = Vec<f64>> {
        prop::collection::vec(0.01f64..1.0, 1..5).prop_map(|w| {
            let total: f64 = w.iter().sum::<f64>() * 1.05;
            w.iter().map(|x| x / total).collect()
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(24))]

        /// The solver's E[X](n, D) and tokens/s equal an independent build
        /// at capacity n with depth limit D, for every entry.
        #[test]
        fn every_entry_matches_an_independent_build(
            q in small_dist(),
            p in small_dist(),
            n_max in 1usize..24,
            d_max in 1u32..5,
            by_width in any::<bool>(),
        ) {
            let draft = if by_width {
                DraftCost::ByWidth(LatencyProfile::new(&[(1, 0.001), (8, 0.004)]).unwrap())
            } else {
                DraftCost::PerStep(0.002)
            };
            let c = cost(draft);
            let mut drafter = Iid::new(TokenDist::from_probs(&q).unwrap());
            let mut verifier = Iid::new(TokenDist::from_probs(&p).unwrap());
            let solver = CapacitySolver::new(c.clone(), n_max, d_max).unwrap();
            let same = solver.solve(&mut drafter.clone()).unwrap();
            let split = solver.solve_with_verifier(&mut drafter, &mut verifier).unwrap();
            for (table, separate) in [(&same.table, false), (&split.table, true)] {
                for row in table.iter() {
                    let (value, tps) = if separate {
                        brute_force_row(&c, &mut drafter, &mut verifier, row.capacity, row.max_depth)
                    } else {
                        brute_force_row(&c, &mut drafter.clone(), &mut drafter.clone(), row.capacity, row.max_depth)
                    };
                    prop_assert!((row.expected_accepted - value).abs() < 1e-9, "{row:?} vs {value}");
                    prop_assert!((row.tokens_per_second - tps).abs() < 1e-9 * tps, "{row:?} vs {tps}");
                }
            }
            prop_assert!(split.best.speedup <= split.speed_of_light.speedup + 1e-12);
        }
    }
}
