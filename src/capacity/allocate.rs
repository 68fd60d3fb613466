//! Batch allocation (docs/THEORY.md section 3, "Batch allocation"): `B` requests,
//! each with its own next-token model, share one verifier pass of `N` draft
//! tokens.
//!
//! The total expected accepted length is the sum over the requests' trees,
//! so the optimum is the `N` most probable nodes across all trees: one
//! best-first over a merged heap. Each request keeps its own lazy frontier
//! (as [`crate::TreeBuilder`] does); a global max-queue (a tournament tree,
//! `allocate/tournament.rs`) holds one entry per request, keyed by an upper
//! bound on that request's next node (its best candidate or best
//! unexpanded node). Taking the top request either commits its
//! best candidate, when that candidate beats its own unexpanded nodes (then
//! it beats every other request's bound too, so it is the global next node),
//! or expands its best unexpanded node (one model call) and re-queues it.
//!
//! **Minimums and caps.** Request `b`'s value with `n_b` nodes is its own
//! `OPT_b(n_b)`, a concave function (its increments are the popped path
//! probabilities, which never increase). Maximising `sum_b OPT_b(n_b)` under
//! `sum n_b <= N` and `min_b <= n_b <= max_b` is a separable concave
//! allocation with box constraints, for which greedy is optimal once every
//! `n_b` starts at its lower bound: an exchange argument moves any unit from
//! an allocation that skipped a larger marginal to that marginal without
//! loss. So the allocator first builds every request to its minimum, then
//! runs the merged best-first, never past a request's cap. The test
//! `brute_force_optimal_with_limits` checks this against enumeration.

mod tournament;

use crate::build::{check_capacity, TreeBuilder};
use crate::error::{Error, Result};
use crate::model::NextTokenModel;
use crate::tree::DraftTree;
use tournament::{pack, Tournament};

/// Per-request bounds on the number of draft tokens.
///
/// # Examples
///
/// ```
/// use speclight::capacity::RequestLimits;
/// let l = RequestLimits { min: 2, ..RequestLimits::default() };
/// assert_eq!(l.max, usize::MAX);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestLimits {
    /// The request gets at least this many nodes.
    pub min: usize,
    /// The request gets at most this many nodes.
    pub max: usize,
}

impl Default for RequestLimits {
    fn default() -> Self {
        Self {
            min: 0,
            max: usize::MAX,
        }
    }
}

/// One request's share of a batch.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RequestAllocation {
    /// Its number of draft tokens (the size of its tree).
    pub capacity: usize,
    /// `E[X]` of its tree under its model: `OPT_b(capacity)`.
    pub expected_accepted: f64,
    /// Its tree: the `capacity` most probable prefixes of its model.
    pub tree: DraftTree,
}

/// The result of a batch allocation.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Allocation {
    /// One entry per request, in input order.
    pub requests: Vec<RequestAllocation>,
    /// `sum_b E[X_b]`: expected accepted tokens over the whole batch.
    pub expected_accepted: f64,
}

impl Allocation {
    /// Draft tokens used: at most the budget, fewer only when every request
    /// ran out of nodes (caps, depth limit or finite support).
    pub fn used(&self) -> usize {
        self.requests.iter().map(|r| r.capacity).sum()
    }
}

/// Splits one verifier pass of `N` draft tokens among `B` requests
/// optimally (see the module docs). Reuse it across steps: its per-request
/// buffers are kept.
///
/// Time O(N log N + B + (N + expansions) x log B), plus one model call per
/// expanded node (one per request for context-free models); space O(N + B +
/// the expanded distributions).
///
/// # Examples
///
/// ```
/// use speclight::capacity::BatchAllocator;
/// use speclight::{Iid, TokenDist};
/// let mut models = vec![
///     Iid::new(TokenDist::from_probs(&[0.9, 0.05])?), // confident: deep chain
///     Iid::new(TokenDist::from_probs(&[0.3, 0.3, 0.3])?), // flat: little to gain
/// ];
/// let a = BatchAllocator::new(8)?.allocate(&mut models, &[])?;
/// assert_eq!(a.used(), 8);
/// assert!(a.requests[0].capacity > a.requests[1].capacity);
/// # Ok::<(), speclight::Error>(())
/// ```
#[derive(Debug)]
pub struct BatchAllocator {
    budget: usize,
    max_depth: Option<u32>,
    /// One reused builder per request slot, stepped by the merged heap.
    states: Vec<TreeBuilder>,
    /// The merged heap: a tournament over the requests, keyed by the bound
    /// on each one's next node (ties to the lower request, so allocations
    /// are deterministic).
    queue: Tournament,
}

impl BatchAllocator {
    /// An allocator of `budget` draft tokens per verifier pass.
    ///
    /// # Errors
    ///
    /// [`Error::ZeroCapacity`] or [`Error::CapacityTooLarge`].
    pub fn new(budget: usize) -> Result<Self> {
        check_capacity(budget)?;
        Ok(Self {
            budget,
            max_depth: None,
            states: Vec::new(),
            queue: Tournament::default(),
        })
    }

    /// Sets a depth limit `D` for every request's tree (`None` = unlimited).
    ///
    /// # Errors
    ///
    /// [`Error::ZeroDepth`] for `Some(0)`.
    pub fn with_max_depth(mut self, max_depth: Option<u32>) -> Result<Self> {
        if max_depth == Some(0) {
            return Err(Error::ZeroDepth);
        }
        self.max_depth = max_depth;
        Ok(self)
    }

    /// The budget `N`.
    pub fn budget(&self) -> usize {
        self.budget
    }

    /// Allocates the budget among `models` (one per request). `limits` is
    /// either empty (no minimum, no cap) or one [`RequestLimits`] per model.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArgument`] for no models or a `limits` of the wrong
    /// length; [`Error::InfeasibleAllocation`] if a minimum exceeds its cap,
    /// the minimums exceed the budget, or a request cannot hold its minimum
    /// (depth limit or finite support); and whatever the models return.
    pub fn allocate<M: NextTokenModel>(
        &mut self,
        models: &mut [M],
        limits: &[RequestLimits],
    ) -> Result<Allocation> {
        let mut out = Allocation::default();
        self.allocate_into(models, limits, &mut out)?;
        Ok(out)
    }

    /// As [`BatchAllocator::allocate`], writing into `out` and reusing its
    /// trees' buffers: a server that keeps `out` between steps allocates
    /// nothing once the buffers have grown. On error `out` is unspecified.
    ///
    /// # Errors
    ///
    /// As [`BatchAllocator::allocate`].
    pub fn allocate_into<M: NextTokenModel>(
        &mut self,
        models: &mut [M],
        limits: &[RequestLimits],
        out: &mut Allocation,
    ) -> Result<()> {
        let b = models.len();
        if b == 0 {
            return Err(Error::InvalidArgument(
                "batch allocation needs at least one request".into(),
            ));
        }
        if b > u32::MAX as usize {
            return Err(Error::InvalidArgument(format!("{b} requests are too many")));
        }
        if !limits.is_empty() && limits.len() != b {
            return Err(Error::InvalidArgument(format!(
                "{} request limits for {b} requests",
                limits.len()
            )));
        }
        let limit = |i: usize| limits.get(i).copied().unwrap_or_default();
        let mut min_total = 0usize;
        for i in 0..b {
            let l = limit(i);
            if l.min > l.max {
                return Err(Error::InfeasibleAllocation(format!(
                    "request {i}: minimum {} exceeds its cap {}",
                    l.min, l.max
                )));
            }
            min_total = min_total.saturating_add(l.min);
        }
        if min_total > self.budget {
            return Err(Error::InfeasibleAllocation(format!(
                "the minimums add up to {min_total}, above the budget {}",
                self.budget
            )));
        }
        while self.states.len() < b {
            self.states.push(TreeBuilder::new(1)?);
        }
        self.queue.reset(b);
        let mut used = 0;
        // Phase 1: every request up to its minimum, on its own.
        for (i, (state, model)) in self.states.iter_mut().zip(models.iter_mut()).enumerate() {
            let l = limit(i);
            // A cap of 0 still needs a valid builder; it simply never joins the queue.
            state.set_capacity(l.max.min(self.budget).max(1))?;
            state.set_max_depth(self.max_depth)?;
            let context_free = model.is_context_free();
            state.start(model.next(&[])?, context_free);
            while state.tree().len() < l.min {
                if state.next_key_bound().is_none() {
                    return Err(Error::InfeasibleAllocation(format!(
                        "request {i} has only {} nodes, below its minimum {}",
                        state.tree().len(),
                        l.min
                    )));
                }
                state.step(model)?;
            }
            used += state.tree().len();
            if let Some(key) = state.next_key_bound().filter(|_| l.max > 0) {
                self.queue.set(i, pack(key, i as u32));
            }
        }
        self.queue.build();
        // Phase 2: the merged best-first over what is left of the budget.
        while used < self.budget {
            let (i, key) = self.queue.winner();
            if key == 0 {
                break; // every request is out
            }
            let state = &mut self.states[i];
            if state.step(&mut models[i])? {
                used += 1;
            }
            let next = state.next_key_bound().map_or(0, |k| pack(k, i as u32));
            self.queue.update_winner(next);
        }
        out.requests.truncate(b);
        out.requests.resize_with(b, RequestAllocation::default);
        for (request, state) in out.requests.iter_mut().zip(&self.states) {
            request.capacity = state.tree().len();
            request.expected_accepted = state.opt_curve().last().copied().unwrap_or(0.0);
            request.tree.clone_from(state.tree());
        }
        out.expected_accepted = out.requests.iter().map(|r| r.expected_accepted).sum();
        Ok(())
    }
}

/// [`BatchAllocator::allocate`] with no limits and no depth limit.
///
/// # Errors
///
/// As [`BatchAllocator::new`] and [`BatchAllocator::allocate`].
///
/// # Examples
///
/// ```
/// use speclight::capacity::allocate;
/// use speclight::{Iid, TokenDist};
/// let mut models = vec![Iid::new(TokenDist::from_probs(&[0.5, 0.5])?); 4];
/// let a = allocate(&mut models, 8)?;
/// assert!(a.requests.iter().all(|r| r.capacity == 2)); // identical requests share equally
/// # Ok::<(), speclight::Error>(())
/// ```
pub fn allocate<M: NextTokenModel>(models: &mut [M], budget: usize) -> Result<Allocation> {
    BatchAllocator::new(budget)?.allocate(models, &[])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dist::{TokenDist, TokenId};
    use crate::eval::evaluate;
    use crate::model::{Iid, Opaque};
    use proptest::prelude::*;

    /// A context-dependent model: the distribution after a path is chosen by
    /// a hash of the path, so the allocator must expand lazily.
    #[derive(Debug, Clone)]
    struct PathModel {
        dists: Vec<TokenDist>,
    }

    impl NextTokenModel for PathModel {
        fn next(&mut self, path: &[TokenId]) -> Result<&TokenDist> {
            let h = path.iter().fold(path.len() as u64, |h, &t| {
                h.wrapping_mul(31).wrapping_add(t as u64 + 7)
            });
            Ok(&self.dists[(h % self.dists.len() as u64) as usize])
        }
    }

    /// `OPT_b(n)` by an independent build (0 for n = 0; `None` if the model
    /// cannot hold n nodes).
    fn opt<M: NextTokenModel>(model: &mut M, n: usize, d: Option<u32>) -> Option<f64> {
        if n == 0 {
            return Some(0.0);
        }
        let mut builder = TreeBuilder::new(n).unwrap().with_max_depth(d).unwrap();
        let tree = builder.build(model).unwrap();
        (tree.len() == n).then(|| builder.opt_curve()[n - 1])
    }

    /// Brute force: the best total over every split n_1 + ... + n_B = used.
    fn brute_force<M: NextTokenModel>(
        models: &mut [M],
        used: usize,
        limits: &[RequestLimits],
        d: Option<u32>,
    ) -> f64 {
        fn rec<M: NextTokenModel>(
            models: &mut [M],
            left: usize,
            limits: &[RequestLimits],
            d: Option<u32>,
        ) -> Option<f64> {
            let Some((first, rest)) = models.split_first_mut() else {
                return (left == 0).then_some(0.0);
            };
            let l = limits[0];
            let mut best: Option<f64> = None;
            for n in l.min..=left.min(l.max) {
                let (Some(v), Some(r)) = (opt(first, n, d), rec(rest, left - n, &limits[1..], d))
                else {
                    continue;
                };
                best = Some(best.map_or(v + r, |b: f64| b.max(v + r)));
            }
            best
        }
        rec(models, used, limits, d).expect("a feasible split exists")
    }

    fn dist(w: &[f64]) -> TokenDist {
        let total: f64 = w.iter().sum::<f64>() * 1.1;
        TokenDist::from_probs(&w.iter().map(|x| x / total).collect::<Vec<_>>()).unwrap()
    }

    #[test]
    fn beats_an_equal_split_on_skewed_requests() {
        let mut models = vec![
            Iid::new(TokenDist::from_probs(&[0.95, 0.03]).unwrap()),
            Iid::new(TokenDist::from_probs(&[0.6, 0.3, 0.05]).unwrap()),
            Iid::new(TokenDist::from_probs(&[0.2, 0.2, 0.2, 0.2]).unwrap()),
            Iid::new(TokenDist::from_probs(&[0.1; 8]).unwrap()),
        ];
        let budget = 64;
        let a = allocate(&mut models, budget).unwrap();
        let equal: f64 = models
            .iter_mut()
            .map(|m| opt(m, budget / 4, None).unwrap())
            .sum();
        assert_eq!(a.used(), budget);
        assert!(
            a.expected_accepted > equal + 1.0,
            "{} vs {equal}",
            a.expected_accepted
        );
        // Each tree is valid and its value is its own DP evaluation.
        for (r, m) in a.requests.iter().zip(models.iter_mut()) {
            r.tree.validate().unwrap();
            let v = evaluate(&r.tree, m).unwrap().expected_accepted;
            assert!((v - r.expected_accepted).abs() < 1e-9);
        }
    }

    #[test]
    fn identical_requests_share_equally_and_caps_bind() {
        let mut models = vec![Iid::new(TokenDist::from_probs(&[0.7, 0.2]).unwrap()); 3];
        // Path probabilities 0.7, 0.49, 0.343, 0.2401, 0.2, ...: no tie at the 4th.
        let a = allocate(&mut models, 12).unwrap();
        assert!(a.requests.iter().all(|r| r.capacity == 4));
        let limits = [
            RequestLimits { min: 0, max: 4 },
            RequestLimits::default(),
            RequestLimits { min: 15, max: 20 },
        ];
        let a = BatchAllocator::new(30)
            .unwrap()
            .allocate(&mut models, &limits)
            .unwrap();
        let caps: Vec<usize> = a.requests.iter().map(|r| r.capacity).collect();
        assert_eq!(caps[0], 4);
        assert!(caps[2] >= 15 && caps[2] <= 20);
        assert_eq!(caps.iter().sum::<usize>(), 30);
    }

    #[test]
    fn infeasible_limits_are_errors() {
        let mut models = vec![Iid::new(TokenDist::from_probs(&[0.5, 0.5]).unwrap()); 2];
        let mut alloc = BatchAllocator::new(4).unwrap();
        let min = |m| RequestLimits { min: m, max: 100 };
        assert!(matches!(
            alloc.allocate(&mut models, &[min(3), min(3)]),
            Err(Error::InfeasibleAllocation(_))
        ));
        assert!(matches!(
            alloc.allocate(&mut models, &[RequestLimits { min: 3, max: 2 }, min(0)]),
            Err(Error::InfeasibleAllocation(_))
        ));
        assert!(matches!(
            alloc.allocate(&mut models, &[min(0)]),
            Err(Error::InvalidArgument(_))
        ));
        let mut none: Vec<Iid> = Vec::new();
        assert!(matches!(
            alloc.allocate(&mut none, &[]),
            Err(Error::InvalidArgument(_))
        ));
        // Depth 1 and two tokens: a request holds at most 2 nodes.
        let mut shallow = BatchAllocator::new(4)
            .unwrap()
            .with_max_depth(Some(1))
            .unwrap();
        assert!(matches!(
            shallow.allocate(&mut models, &[min(3), min(0)]),
            Err(Error::InfeasibleAllocation(_))
        ));
        // Without the minimum it simply uses what exists.
        assert_eq!(shallow.allocate(&mut models, &[]).unwrap().used(), 4);
        assert_eq!(BatchAllocator::new(0).unwrap_err(), Error::ZeroCapacity);
    }

    fn weights() -> impl Strategy<Value = Vec<f64>> {
        prop::collection::vec(0.05f64..1.0, 1..4)
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(40))]

        /// Context-free requests (the eager path, one commit per step) get
        /// the same shares and values as the same models on the general
        /// path, ties included (each request's keys come out in the same
        /// order on both, and the tournament breaks ties by request); and
        /// `allocate_into` over an output reused across batches of other
        /// sizes gives exactly what `allocate` returns.
        #[test]
        fn context_free_requests_match_the_general_path(
            batches in prop::collection::vec(
                prop::collection::vec(prop::collection::vec(1u32..6, 1..5), 1..6), 1..4),
            budget in 1usize..40,
            depth in prop::option::of(1u32..4),
        ) {
            let mut allocator = BatchAllocator::new(budget).unwrap().with_max_depth(depth).unwrap();
            let mut out = Allocation::default();
            for weights in &batches {
                let dists: Vec<TokenDist> = weights.iter().map(|w| {
                    let w: Vec<f64> = w.iter().map(|&x| f64::from(x)).collect();
                    dist(&w)
                }).collect();
                let mut eager: Vec<Iid> = dists.iter().cloned().map(Iid::new).collect();
                let mut general: Vec<Opaque> = dists.into_iter().map(|d| Opaque(Iid::new(d))).collect();
                let a = allocator.allocate(&mut eager, &[]).unwrap();
                let g = allocator.allocate(&mut general, &[]).unwrap();
                prop_assert!((a.expected_accepted - g.expected_accepted).abs() < 1e-12);
                for (x, y) in a.requests.iter().zip(&g.requests) {
                    prop_assert_eq!(x.capacity, y.capacity);
                    prop_assert!((x.expected_accepted - y.expected_accepted).abs() < 1e-12);
                    prop_assert_eq!(x.tree.path_logprobs(), y.tree.path_logprobs());
                }
                allocator.allocate_into(&mut eager, &[], &mut out).unwrap();
                prop_assert_eq!(&out, &a);
            }
        }

        /// Brute-force optimality: enumerate every split of the used budget
        /// among the requests (each OPT_b by an independent build), with
        /// random minimums, caps and depth limits, and context-dependent
        /// models so that expansion is lazy.
        #[test]
        fn brute_force_optimal_with_limits(
            ws in prop::collection::vec(prop::collection::vec(weights(), 1..3), 1..4),
            budget in 1usize..9,
            mins in prop::collection::vec(0usize..3, 3),
            caps in prop::collection::vec(1usize..8, 3),
            depth in prop::option::of(1u32..4),
        ) {
            let mut models: Vec<PathModel> = ws
                .iter()
                .map(|w| PathModel { dists: w.iter().map(|x| dist(x)).collect() })
                .collect();
            let b = models.len();
            let limits: Vec<RequestLimits> = (0..b)
                .map(|i| RequestLimits { min: mins[i].min(caps[i]), max: caps[i] })
                .collect();
            let result = BatchAllocator::new(budget)
                .unwrap()
                .with_max_depth(depth)
                .unwrap()
                .allocate(&mut models, &limits);
            match result {
                Ok(a) => {
                    prop_assert!(a.used() <= budget);
                    for (r, l) in a.requests.iter().zip(&limits) {
                        prop_assert!(r.capacity >= l.min && r.capacity <= l.max);
                    }
                    let best = brute_force(&mut models, a.used(), &limits, depth);
                    prop_assert!((a.expected_accepted - best).abs() < 1e-9,
                        "allocated {} vs brute force {best}", a.expected_accepted);
                    // Using fewer than the budget means no request could take more.
                    if a.used() < budget {
                        for (i, (r, l)) in a.requests.iter().zip(&limits).enumerate() {
                            prop_assert!(r.capacity == l.max
                                || opt(&mut models[i], r.capacity + 1, depth).is_none());
                        }
                    }
                }
                Err(Error::InfeasibleAllocation(_)) => {
                    let mins_fit = limits.iter().map(|l| l.min).sum::<usize>() <= budget;
                    let each_fits = models.iter_mut().zip(&limits)
                        .all(|(m, l)| opt(m, l.min, depth).is_some());
                    prop_assert!(!(mins_fit && each_fits), "feasible case refused");
                }
                Err(e) => prop_assert!(false, "unexpected error {e}"),
            }
        }
    }
}
