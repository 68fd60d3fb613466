//! Certificates: upper bounds on `E[X]` valid for every tree with `|T| <= P`
//! (THEORY.md section 4).
//!
//! - [`dual_bound`]: the exact dual certificate `U(lambda)` of section 4a,
//!   enumerated by depth-first search with pruning (not the builder's heap, so
//!   that a check is a second, independent computation); [`optimal_value`]
//!   finds `lambda*` and `OPT(P)` with the same enumeration.
//! - [`renewal_bound`] (B1), [`renewal_bound_optimized`] (B2) and
//!   [`paper_bound`] (section 4b and 4c), closed forms in the entropy `mu` and
//!   the second log-moment `mu2`, all capped by the trivial bounds `P` and `D`.
//! - [`Certificate`] and [`check`]: the whole chain of section 4c for one tree,
//!   recomputed from the verifier alone, with a verdict.

use crate::build::check_capacity;
use crate::dist::{TokenDist, TokenId, SUM_TOLERANCE};
use crate::error::{Error, Result};
use crate::eval::evaluate;
use crate::model::NextTokenModel;
use crate::tree::DraftTree;

/// Default cap on the nodes one dual enumeration may visit (2^24): enough for
/// every capacity up to [`crate::MAX_CAPACITY`] at `lambda*`, small enough that a too
/// small `lambda` fails in seconds instead of hanging.
pub const DEFAULT_NODE_LIMIT: usize = 1 << 24;

/// Relative tolerance of every link of the certificate chain: `a <= b` holds
/// when `a <= b + CHAIN_TOLERANCE * max(1, |b|)`, an equality when both
/// directions do. Rounding in sums of up to millions of path probabilities
/// stays far below it.
pub const CHAIN_TOLERANCE: f64 = 1e-9;

/// A bound on `E[X]`: the closed form when it is finite, always capped by the
/// trivial bounds `P` and `D`.
///
/// A verifier with entropy `mu = 0` (deterministic) has no finite closed
/// form; [`BoundValue::closed_form`] is then `None` and
/// [`BoundValue::value`] is the trivial cap `min(P, D)`, never an infinity or
/// a NaN.
///
/// # Examples
///
/// ```
/// use speclight::bound::renewal_bound;
/// let b = renewal_bound(0.0, 0.0, 64, Some(5));
/// assert_eq!(b.closed_form(), None);
/// assert_eq!(b.value(), 5.0);
/// let b = renewal_bound(1.0, 1.5, 64, None);
/// assert!((b.closed_form().unwrap() - (64f64.ln() + 1.5)).abs() < 1e-12);
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct BoundValue {
    closed_form: Option<f64>,
    cap: f64,
}

impl BoundValue {
    /// A bound from an optional closed form and the trivial cap. A closed
    /// form that is not finite (e.g. `mu2 / mu^2` overflowing) is dropped.
    pub fn new(closed_form: Option<f64>, cap: f64) -> Self {
        Self {
            closed_form: closed_form.filter(|x| x.is_finite()),
            cap,
        }
    }

    /// The closed-form value before capping, `None` when no finite closed
    /// form exists (`mu = 0`).
    pub fn closed_form(&self) -> Option<f64> {
        self.closed_form
    }

    /// The trivial cap `min(P, D)`.
    pub fn cap(&self) -> f64 {
        self.cap
    }

    /// The bound: `min(closed form, P, D)`, always finite.
    pub fn value(&self) -> f64 {
        self.closed_form.map_or(self.cap, |c| c.min(self.cap))
    }
}

/// The trivial bound `min(P, D)`: a tree has at most `P` nodes, and at most
/// `D` of them lie on the accepted path.
///
/// # Examples
///
/// ```
/// assert_eq!(speclight::bound::trivial_cap(16, Some(4)), 4.0);
/// assert_eq!(speclight::bound::trivial_cap(16, None), 16.0);
/// ```
pub fn trivial_cap(capacity: usize, max_depth: Option<u32>) -> f64 {
    let p = capacity as f64;
    max_depth.map_or(p, |d| p.min(f64::from(d)))
}

/// `mu` and `mu2` are usable in a closed form only when finite and `mu > 0`.
fn usable(mu: f64, mu2: f64) -> bool {
    mu.is_finite() && mu > 0.0 && mu2.is_finite() && mu2 >= 0.0
}

/// (B1) of THEORY.md section 4b: `E[X] <= ln(P) / mu + mu2 / mu^2`, capped by
/// `P` and `D`. O(1).
///
/// `mu` is the (expected) entropy and `mu2` the (expected) second log-moment
/// of the verifier's next-token distributions, in nats.
///
/// # Examples
///
/// ```
/// use speclight::{bound::{renewal_bound, Moments}, TokenDist};
/// let m = Moments::of_dist(&TokenDist::from_probs(&[0.5, 0.3, 0.2])?)?;
/// let b1 = renewal_bound(m.entropy, m.second_log_moment, 1024, None);
/// assert!((b1.value() - 7.857).abs() < 1e-3);
/// # Ok::<(), speclight::Error>(())
/// ```
pub fn renewal_bound(mu: f64, mu2: f64, capacity: usize, max_depth: Option<u32>) -> BoundValue {
    let closed = usable(mu, mu2).then(|| (capacity as f64).ln() / mu + mu2 / (mu * mu));
    BoundValue::new(closed, trivial_cap(capacity, max_depth))
}

/// (B2) of THEORY.md section 4b:
/// `E[X] <= (ln(P mu) + 1) / mu + mu2 / mu^2 - 1` when `P mu > 1`, and (B1)
/// otherwise; capped by `P` and `D`. Never weaker than (B1), because
/// `ln mu + 1 <= mu`. O(1).
///
/// # Examples
///
/// ```
/// use speclight::bound::{renewal_bound, renewal_bound_optimized};
/// let b2 = renewal_bound_optimized(1.2, 2.0, 256, None).value();
/// assert!(b2 <= renewal_bound(1.2, 2.0, 256, None).value());
/// ```
pub fn renewal_bound_optimized(
    mu: f64,
    mu2: f64,
    capacity: usize,
    max_depth: Option<u32>,
) -> BoundValue {
    let p = capacity as f64;
    if !(usable(mu, mu2) && p * mu > 1.0) {
        return renewal_bound(mu, mu2, capacity, max_depth);
    }
    let closed = ((p * mu).ln() + 1.0) / mu + mu2 / (mu * mu) - 1.0;
    BoundValue::new(Some(closed), trivial_cap(capacity, max_depth))
}

/// The published bound of Pankratov and Alistarh (THEORY.md section 4c) with
/// its explicit constant: `(mu + mu2) ln(P) / mu^2 + mu2 / mu^2`, capped by
/// `P` and `D`. (B1) implies it because `mu2 ln(P) / mu^2 >= 0`. O(1).
///
/// # Examples
///
/// ```
/// use speclight::bound::{paper_bound, renewal_bound};
/// let paper = paper_bound(0.8, 1.1, 4096, None);
/// assert!(paper.closed_form().unwrap() >= renewal_bound(0.8, 1.1, 4096, None).closed_form().unwrap());
/// ```
pub fn paper_bound(mu: f64, mu2: f64, capacity: usize, max_depth: Option<u32>) -> BoundValue {
    let closed = usable(mu, mu2).then(|| {
        let mu_sq = mu * mu;
        (mu + mu2) * (capacity as f64).ln() / mu_sq + mu2 / mu_sq
    });
    BoundValue::new(closed, trivial_cap(capacity, max_depth))
}

/// The entropy `mu` and second log-moment `mu2` of a verifier distribution
/// (THEORY.md section 4b).
///
/// # Examples
///
/// ```
/// use speclight::{bound::Moments, TokenDist};
/// let m = Moments::of_dist(&TokenDist::from_probs(&[0.5, 0.5])?)?;
/// assert!((m.entropy - 2f64.ln()).abs() < 1e-12);
/// assert!(TokenDist::from_probs(&[0.5, 0.3]).and_then(|d| Moments::of_dist(&d)).is_err());
/// # Ok::<(), speclight::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Moments {
    /// `mu = E[-ln p(Y)]`, nats.
    pub entropy: f64,
    /// `mu2 = E[(ln p(Y))^2]`, nats squared.
    pub second_log_moment: f64,
}

impl Moments {
    /// The moments of a complete distribution. O(n).
    ///
    /// # Errors
    ///
    /// [`Error::SumBelowOne`] when the listed probabilities sum to less than
    /// `1 - SUM_TOLERANCE`: the closed forms need the whole distribution (an
    /// unlisted tail has unknown surprisal).
    pub fn of_dist(dist: &TokenDist) -> Result<Self> {
        if !dist.is_complete() {
            return Err(Error::SumBelowOne {
                sum: dist.listed_mass(),
                tolerance: SUM_TOLERANCE,
            });
        }
        // -sum p ln p is -0.0 for a point mass; report a plain 0.
        let entropy = dist.entropy();
        Ok(Self {
            entropy: if entropy > 0.0 { entropy } else { 0.0 },
            second_log_moment: dist.second_log_moment(),
        })
    }
}

/// Options of the dual enumeration.
///
/// # Examples
///
/// ```
/// let opts = speclight::bound::DualOptions::default().with_max_depth(Some(4));
/// assert_eq!(opts.max_depth, Some(4));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DualOptions {
    /// Depth limit `D`; nodes deeper than it are not part of any tree.
    pub max_depth: Option<u32>,
    /// Most nodes one enumeration may visit before failing with
    /// [`Error::NodeLimit`].
    pub node_limit: usize,
}

impl Default for DualOptions {
    fn default() -> Self {
        Self {
            max_depth: None,
            node_limit: DEFAULT_NODE_LIMIT,
        }
    }
}

impl DualOptions {
    /// Sets the depth limit.
    pub fn with_max_depth(mut self, max_depth: Option<u32>) -> Self {
        self.max_depth = max_depth;
        self
    }

    /// Sets the node limit.
    pub fn with_node_limit(mut self, node_limit: usize) -> Self {
        self.node_limit = node_limit;
        self
    }
}

/// The value of the dual certificate at one `lambda`.
#[derive(Debug, Clone, Copy, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct DualValue {
    /// The `lambda` used.
    pub lambda: f64,
    /// `U(lambda)`.
    pub value: f64,
    /// Number of nodes with `pi(v) > lambda` (the ones enumerated).
    pub nodes_above: usize,
}

/// `lambda*` and `OPT(P)`, found by the dual enumeration.
#[derive(Debug, Clone, Copy, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct OptimalValue {
    /// The `P`-th largest `pi` among nodes of depth `<= D` (0 when fewer
    /// than `P` nodes have positive `pi`).
    pub lambda_star: f64,
    /// `ln lambda*`, exact where `lambda*` itself underflows to 0 (deep
    /// near-deterministic trees); `-inf` when fewer than `P` nodes exist.
    pub ln_lambda_star: f64,
    /// `OPT(P)`: the sum of the `P` largest `pi`.
    pub value: f64,
}

fn check_inputs(capacity: usize, opts: &DualOptions) -> Result<()> {
    check_capacity(capacity)?;
    if opts.max_depth == Some(0) {
        return Err(Error::ZeroDepth);
    }
    Ok(())
}

/// The dual certificate `U(lambda) = sum_v (pi(v) - lambda)^+ + lambda P` of
/// THEORY.md section 4a, an upper bound on `E[X]` of every tree with
/// `|T| <= P` (and depth `<= D`) for every `lambda >= 0`.
///
/// Enumerates the nodes with `pi(v) > lambda` by depth-first search, pruning
/// a node's remaining children as soon as one falls to `lambda` (children
/// come sorted by probability). Time O(N + model calls) and space O(N) for the
/// `N` nodes above `lambda`; one model call per enumerated node whose depth is
/// below `D` (one in all for a context-free model).
///
/// # Errors
///
/// [`Error::InvalidArgument`] for a `lambda` outside `[0, 1]` or NaN,
/// [`Error::ZeroCapacity`], [`Error::CapacityTooLarge`], [`Error::ZeroDepth`],
/// [`Error::NodeLimit`] when more than `opts.node_limit` nodes lie above
/// `lambda`, and whatever the model returns.
///
/// # Examples
///
/// ```
/// use speclight::{bound::{dual_bound, DualOptions}, Iid, TokenDist};
/// let mut p = Iid::new(TokenDist::from_probs(&[0.5, 0.5])?);
/// // pi = 0.5, 0.5 at depth 1, 0.25 (x4) at depth 2: lambda = 0.25 is lambda* for P = 2..=6.
/// let u = dual_bound(&mut p, 0.25, 3, &DualOptions::default())?;
/// assert_eq!(u.nodes_above, 2);
/// assert!((u.value - (0.25 + 0.25 + 0.75)).abs() < 1e-12);
/// # Ok::<(), speclight::Error>(())
/// ```
pub fn dual_bound<M: NextTokenModel + ?Sized>(
    model: &mut M,
    lambda: f64,
    capacity: usize,
    opts: &DualOptions,
) -> Result<DualValue> {
    if !(0.0..=1.0).contains(&lambda) {
        return Err(Error::InvalidArgument(format!(
            "lambda {lambda} is not in [0, 1]"
        )));
    }
    dual_bound_ln(model, lambda.ln(), capacity, opts)
}

/// [`dual_bound`] at `lambda = exp(ln_lambda)`, with the enumeration's
/// threshold kept in log space: where `lambda` underflows to 0 (the `P`-th
/// largest path probability of a deep, near-deterministic tree) the
/// enumeration still stops at the right nodes instead of running to the
/// node limit.
///
/// # Errors
///
/// As [`dual_bound`], with `ln_lambda` outside `[-inf, 0]` or NaN refused.
///
/// # Examples
///
/// ```
/// use speclight::{bound::{dual_bound_ln, optimal_value, DualOptions}, Iid, TokenDist};
/// // pi of depth d is 0.01^d: the 400th largest, 1e-800, underflows f64.
/// let mut p = Iid::new(TokenDist::from_probs(&[0.01])?);
/// let opt = optimal_value(&mut p, 400, &DualOptions::default())?;
/// assert_eq!(opt.lambda_star, 0.0);
/// let u = dual_bound_ln(&mut p, opt.ln_lambda_star, 400, &DualOptions::default())?;
/// assert!((u.value - opt.value).abs() < 1e-15);
/// # Ok::<(), speclight::Error>(())
/// ```
pub fn dual_bound_ln<M: NextTokenModel + ?Sized>(
    model: &mut M,
    ln_lambda: f64,
    capacity: usize,
    opts: &DualOptions,
) -> Result<DualValue> {
    check_inputs(capacity, opts)?;
    if ln_lambda.is_nan() || ln_lambda > 0.0 {
        return Err(Error::InvalidArgument(format!(
            "ln lambda {ln_lambda} is not in [-inf, 0]"
        )));
    }
    let lambda = ln_lambda.exp();
    let mut excess = 0.0;
    let nodes_above = enumerate_above(model, ln_lambda, opts, usize::MAX, |lp| {
        excess += lp.exp() - lambda;
    })?;
    Ok(DualValue {
        lambda,
        value: excess + lambda * capacity as f64,
        nodes_above,
    })
}

/// `lambda*` (the `P`-th largest `pi`) and `OPT(P)` by the dual enumeration
/// alone, without the builder (THEORY.md section 4a).
///
/// Bisects on `ln lambda` over the bit patterns of `f64` (at most 64 rounds,
/// after a doubling search for a lower end) with counting enumerations that
/// stop after `2P + 1` nodes; once some `lambda` has between `P` and `2P`
/// nodes above it, those are enumerated and the `P` largest summed. Ties at
/// `lambda*` wider than `P` end the bisection at adjacent floats, where every
/// node in between has `pi = lambda*` exactly. Time O(P (64 + log range))
/// node visits, space O(P). Needs `opts.node_limit >= 2P + 1`.
///
/// # Errors
///
/// As [`dual_bound`].
///
/// # Examples
///
/// ```
/// use speclight::{bound::{optimal_value, DualOptions}, Iid, TokenDist, TreeBuilder};
/// let mut p = Iid::new(TokenDist::from_probs(&[0.5, 0.3, 0.2])?);
/// let opt = optimal_value(&mut p, 100, &DualOptions::default())?;
/// let mut builder = TreeBuilder::new(100)?;
/// builder.build(&mut p)?;
/// assert!((opt.value - builder.opt_curve()[99]).abs() < 1e-12);
/// # Ok::<(), speclight::Error>(())
/// ```
pub fn optimal_value<M: NextTokenModel + ?Sized>(
    model: &mut M,
    capacity: usize,
    opts: &DualOptions,
) -> Result<OptimalValue> {
    check_inputs(capacity, opts)?;
    let mut top = Vec::with_capacity(capacity);
    // Fewer than P nodes in all: lambda* = 0 and OPT is their total.
    let all = enumerate_above(model, f64::NEG_INFINITY, opts, capacity, |lp| top.push(lp))?;
    if all < capacity {
        return Ok(OptimalValue {
            lambda_star: 0.0,
            ln_lambda_star: f64::NEG_INFINITY,
            value: sum_exp(&mut top),
        });
    }
    let stop = capacity.saturating_mul(2).saturating_add(1);
    let count =
        |model: &mut M, ln_lambda: f64| enumerate_above(&mut *model, ln_lambda, opts, stop, |_| {});
    // count(hi) < P <= count(lo) throughout.
    let mut hi = 0.0_f64;
    let mut lo = -1.0_f64;
    let mut lo_count = count(model, lo)?;
    while lo_count < capacity {
        hi = lo;
        lo *= 2.0;
        if !lo.is_finite() {
            return Err(Error::InvalidArgument(
                "no finite lambda* found: path probabilities underflow".into(),
            ));
        }
        lo_count = count(model, lo)?;
    }
    while lo_count > 2 * capacity {
        let (klo, khi) = (order_key(lo), order_key(hi));
        if khi - klo <= 1 {
            break;
        }
        let mid = from_order_key(klo + (khi - klo) / 2);
        let c = count(model, mid)?;
        if c >= capacity {
            lo = mid;
            lo_count = c;
        } else {
            hi = mid;
        }
    }
    top.clear();
    if lo_count <= 2 * capacity {
        enumerate_above(model, lo, opts, usize::MAX, |lp| top.push(lp))?;
        top.sort_unstable_by(|a, b| b.total_cmp(a));
        top.truncate(capacity);
        let ln_lambda_star = top.last().copied().unwrap_or(f64::NEG_INFINITY);
        return Ok(OptimalValue {
            lambda_star: ln_lambda_star.exp(),
            ln_lambda_star,
            value: sum_exp(&mut top),
        });
    }
    // lo and hi are adjacent floats: the P-th largest ln pi is exactly hi.
    enumerate_above(model, hi, opts, usize::MAX, |lp| top.push(lp))?;
    let lambda_star = hi.exp();
    let rest = (capacity - top.len()) as f64 * lambda_star;
    Ok(OptimalValue {
        lambda_star,
        ln_lambda_star: hi,
        value: sum_exp(&mut top) + rest,
    })
}

/// Sum of `exp` of log values, smallest first for accuracy.
fn sum_exp(logs: &mut [f64]) -> f64 {
    logs.sort_unstable_by(|a, b| a.total_cmp(b));
    logs.iter().map(|lp| lp.exp()).sum()
}

/// Monotone map of `f64` to `i64` (IEEE total order), for bisection on bits.
fn order_key(x: f64) -> i64 {
    let bits = x.to_bits() as i64;
    if bits < 0 {
        bits ^ i64::MAX
    } else {
        bits
    }
}

fn from_order_key(k: i64) -> f64 {
    let bits = if k < 0 { k ^ i64::MAX } else { k };
    f64::from_bits(bits as u64)
}

/// One node on the explicit DFS stack: its children above the threshold are
/// `arena[next..end]`.
struct Frame {
    next: usize,
    end: usize,
    log_pi: f64,
}

/// Depth-first enumeration of every node with `ln pi(v) > ln_lambda` and depth
/// `<= D`, calling `visit(ln pi)` for each; stops after `stop_at` nodes.
/// Returns the number visited. An explicit stack, so deep chains cannot
/// overflow the call stack.
fn enumerate_above<M: NextTokenModel + ?Sized>(
    model: &mut M,
    ln_lambda: f64,
    opts: &DualOptions,
    stop_at: usize,
    mut visit: impl FnMut(f64),
) -> Result<usize> {
    let context_free = model.is_context_free();
    let shared: Vec<(TokenId, f64)> = if context_free {
        let d = model.next(&[])?;
        d.tokens()
            .iter()
            .copied()
            .zip(d.log_probs().iter().copied())
            .collect()
    } else {
        Vec::new()
    };
    let mut arena: Vec<(TokenId, f64)> = Vec::new();
    let mut frames: Vec<Frame> = Vec::new();
    let mut path: Vec<TokenId> = Vec::new();
    let lambda_for_error = ln_lambda.exp();

    // Pushes the children of the node at `path` whose ln pi exceeds ln_lambda.
    let push_children = |model: &mut M,
                         path: &[TokenId],
                         log_pi: f64,
                         arena: &mut Vec<(TokenId, f64)>,
                         frames: &mut Vec<Frame>|
     -> Result<()> {
        let start = arena.len();
        let above = |&(_, lp): &(TokenId, f64)| log_pi + lp > ln_lambda;
        if context_free {
            arena.extend(shared.iter().copied().take_while(above));
        } else {
            let d = model.next(path)?;
            arena.extend(
                d.tokens()
                    .iter()
                    .copied()
                    .zip(d.log_probs().iter().copied())
                    .take_while(above),
            );
        }
        frames.push(Frame {
            next: start,
            end: arena.len(),
            log_pi,
        });
        Ok(())
    };

    push_children(model, &path, 0.0, &mut arena, &mut frames)?;
    let mut count = 0usize;
    while let Some(top) = frames.last_mut() {
        if top.next == top.end {
            frames.pop();
            // The popped frame's children occupied the tail of the arena.
            let new_len = frames.last().map_or(0, |f| f.end);
            arena.truncate(new_len);
            if !frames.is_empty() {
                path.pop();
            }
            continue;
        }
        let (token, lp) = arena[top.next];
        top.next += 1;
        let log_pi = top.log_pi + lp;
        count += 1;
        if count > opts.node_limit {
            return Err(Error::NodeLimit {
                limit: opts.node_limit,
                lambda: lambda_for_error,
            });
        }
        visit(log_pi);
        if count >= stop_at {
            break;
        }
        let depth = frames.len(); // depth of the node just visited
        if opts.max_depth.is_none_or(|d| (depth as u64) < u64::from(d)) {
            path.push(token);
            push_children(model, &path, log_pi, &mut arena, &mut frames)?;
        }
    }
    Ok(count)
}

/// One link of the chain of THEORY.md section 4c.
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct ChainLink {
    /// The link, e.g. `"E[X](T) <= OPT(P)"`.
    pub link: String,
    /// Left-hand number.
    pub left: f64,
    /// Right-hand number.
    pub right: f64,
    /// Whether it holds within [`Certificate::tolerance`].
    pub holds: bool,
}

/// Every number of THEORY.md section 4 for one tree, plus the verdict.
///
/// Built by [`Certificate::compute`] (or [`check`], which also fails on a
/// violated link) from the tree and the verifier alone.
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Certificate {
    /// Capacity `P`.
    pub capacity: usize,
    /// Depth limit `D`, if any.
    pub max_depth: Option<u32>,
    /// Entropy `mu` (only for a context-free verifier with a complete
    /// distribution; the closed forms need it).
    pub entropy: Option<f64>,
    /// Second log-moment `mu2` (as `entropy`).
    pub second_log_moment: Option<f64>,
    /// Number of nodes of the tree checked.
    pub tree_nodes: usize,
    /// Depth of the tree checked.
    pub tree_depth: u32,
    /// `E[X]` of the tree, by the DP evaluator.
    pub tree_expected_accepted: f64,
    /// `OPT(P)`, the sum of the `P` largest `pi`.
    pub optimal_expected_accepted: f64,
    /// `lambda*`.
    pub lambda: f64,
    /// `U(lambda*)`.
    pub dual_certificate: f64,
    /// (B2), or (B1) where `P mu <= 1`; `None` without moments.
    pub renewal_bound_optimized: Option<BoundValue>,
    /// (B1); `None` without moments.
    pub renewal_bound: Option<BoundValue>,
    /// The published bound with explicit constant; `None` without moments.
    pub paper_bound: Option<BoundValue>,
    /// Relative tolerance of every link.
    pub tolerance: f64,
    /// The links checked, in chain order.
    pub links: Vec<ChainLink>,
    /// `true` when every link holds.
    pub certified: bool,
}

/// Options of [`check_with`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CheckOptions {
    /// Enumeration options (the depth limit `D` and the node limit).
    pub dual: DualOptions,
    /// Relative tolerance of each link; default [`CHAIN_TOLERANCE`].
    pub tolerance: f64,
}

impl Default for CheckOptions {
    fn default() -> Self {
        Self {
            dual: DualOptions::default(),
            tolerance: CHAIN_TOLERANCE,
        }
    }
}

fn link(name: &str, left: f64, right: f64, equal: bool, tol: f64) -> ChainLink {
    let le = |a: f64, b: f64| a <= b + tol * b.abs().max(1.0);
    let holds = le(left, right) && (!equal || le(right, left));
    ChainLink {
        link: name.to_string(),
        left,
        right,
        holds,
    }
}

impl Certificate {
    /// Computes every number of the chain for `tree` under `verifier`:
    /// `E[X](T)` by the DP evaluator, `lambda*` and `OPT(P)` by
    /// [`optimal_value`], `U(lambda*)` by a separate [`dual_bound`], and the
    /// closed forms when the verifier is context-free with a complete
    /// distribution (they hold for i.i.d. verifiers only). Violated links are
    /// recorded, not returned as errors; see [`check`].
    ///
    /// # Errors
    ///
    /// As [`dual_bound`], and [`Error::InvalidTree`] for a malformed tree.
    ///
    /// # Examples
    ///
    /// ```
    /// use speclight::{bound::{Certificate, CheckOptions}, Iid, TokenDist, TreeBuilder};
    /// let mut p = Iid::new(TokenDist::from_probs(&[0.7, 0.3])?);
    /// let tree = TreeBuilder::new(8)?.build_owned(&mut p)?;
    /// let cert = Certificate::compute(&tree, &mut p, 8, &CheckOptions::default())?;
    /// assert!(cert.certified);
    /// # Ok::<(), speclight::Error>(())
    /// ```
    pub fn compute<M: NextTokenModel + ?Sized>(
        tree: &DraftTree,
        verifier: &mut M,
        capacity: usize,
        opts: &CheckOptions,
    ) -> Result<Self> {
        check_inputs(capacity, &opts.dual)?;
        tree.validate()?;
        let tree_value = evaluate(tree, verifier)?.expected_accepted;
        let opt = optimal_value(verifier, capacity, &opts.dual)?;
        let dual = dual_bound_ln(verifier, opt.ln_lambda_star, capacity, &opts.dual)?;
        let moments = if verifier.is_context_free() {
            Moments::of_dist(verifier.next(&[])?).ok()
        } else {
            None
        };
        let d = opts.dual.max_depth;
        let bounds = moments.map(|m| {
            let (mu, mu2) = (m.entropy, m.second_log_moment);
            (
                renewal_bound_optimized(mu, mu2, capacity, d),
                renewal_bound(mu, mu2, capacity, d),
                paper_bound(mu, mu2, capacity, d),
            )
        });
        let mut cert = Self {
            capacity,
            max_depth: d,
            entropy: moments.map(|m| m.entropy),
            second_log_moment: moments.map(|m| m.second_log_moment),
            tree_nodes: tree.len(),
            tree_depth: tree.max_depth(),
            tree_expected_accepted: tree_value,
            optimal_expected_accepted: opt.value,
            lambda: opt.lambda_star,
            dual_certificate: dual.value,
            renewal_bound_optimized: bounds.map(|b| b.0),
            renewal_bound: bounds.map(|b| b.1),
            paper_bound: bounds.map(|b| b.2),
            tolerance: opts.tolerance,
            links: Vec::new(),
            certified: false,
        };
        cert.links = cert.chain();
        cert.certified = cert.links.iter().all(|l| l.holds);
        Ok(cert)
    }

    /// The links of the chain, evaluated from the stored numbers.
    fn chain(&self) -> Vec<ChainLink> {
        let tol = self.tolerance;
        let mut links = vec![link(
            "|T| <= P",
            self.tree_nodes as f64,
            self.capacity as f64,
            false,
            0.0,
        )];
        if let Some(d) = self.max_depth {
            links.push(link(
                "depth(T) <= D",
                f64::from(self.tree_depth),
                f64::from(d),
                false,
                0.0,
            ));
        }
        links.push(link(
            "E[X](T) <= OPT(P)",
            self.tree_expected_accepted,
            self.optimal_expected_accepted,
            false,
            tol,
        ));
        links.push(link(
            "OPT(P) = U(lambda*)",
            self.optimal_expected_accepted,
            self.dual_certificate,
            true,
            tol,
        ));
        match (
            self.renewal_bound_optimized,
            self.renewal_bound,
            self.paper_bound,
        ) {
            (Some(b2), Some(b1), Some(paper)) => {
                links.push(link(
                    "U(lambda*) <= B2",
                    self.dual_certificate,
                    b2.value(),
                    false,
                    tol,
                ));
                links.push(link("B2 <= B1", b2.value(), b1.value(), false, tol));
                links.push(link(
                    "B1 <= paper_bound",
                    b1.value(),
                    paper.value(),
                    false,
                    tol,
                ));
            }
            _ => links.push(link(
                "U(lambda*) <= min(P, D)",
                self.dual_certificate,
                trivial_cap(self.capacity, self.max_depth),
                false,
                tol,
            )),
        }
        links
    }

    /// Re-evaluates every link from the stored numbers (ignoring the stored
    /// `links` and `certified`, so a certificate read back from JSON is
    /// checked, not trusted) and returns the first violated one.
    ///
    /// # Errors
    ///
    /// [`Error::ChainViolated`] naming the link and its two numbers.
    ///
    /// # Examples
    ///
    /// ```
    /// use speclight::{bound::check, Error, Iid, TokenDist, TreeBuilder};
    /// let mut p = Iid::new(TokenDist::from_probs(&[0.6, 0.4])?);
    /// let tree = TreeBuilder::new(4)?.build_owned(&mut p)?;
    /// let mut cert = check(&tree, &mut p, 4)?;
    /// cert.dual_certificate += 0.5; // tamper with one number
    /// assert!(matches!(cert.verdict(), Err(Error::ChainViolated { .. })));
    /// # Ok::<(), speclight::Error>(())
    /// ```
    pub fn verdict(&self) -> Result<()> {
        match self.chain().into_iter().find(|l| !l.holds) {
            Some(l) => Err(Error::ChainViolated {
                link: l.link,
                left: l.left,
                right: l.right,
            }),
            None => Ok(()),
        }
    }
}

/// Checks `tree` against the whole chain of THEORY.md section 4c under
/// `verifier` with capacity `P` and no depth limit; see [`check_with`].
///
/// # Errors
///
/// As [`check_with`].
///
/// # Examples
///
/// ```
/// use speclight::{bound::check, Iid, TokenDist, TreeBuilder};
/// let mut p = Iid::new(TokenDist::from_probs(&[0.5, 0.3, 0.2])?);
/// let tree = TreeBuilder::new(32)?.build_owned(&mut p)?;
/// let cert = check(&tree, &mut p, 32)?;
/// assert!((cert.tree_expected_accepted - cert.optimal_expected_accepted).abs() < 1e-9);
/// // The same tree does not fit a capacity of 16.
/// assert!(check(&tree, &mut p, 16).is_err());
/// # Ok::<(), speclight::Error>(())
/// ```
pub fn check<M: NextTokenModel + ?Sized>(
    tree: &DraftTree,
    verifier: &mut M,
    capacity: usize,
) -> Result<Certificate> {
    check_with(tree, verifier, capacity, &CheckOptions::default())
}

/// [`Certificate::compute`], then fail on the first violated link.
///
/// Cost: one evaluation of the tree, the enumerations of [`optimal_value`]
/// (at most about 70 of up to `2P + 1` nodes each) and one of [`dual_bound`]
/// at `lambda*` (fewer than `P` nodes). Needs `node_limit >= 2P + 1`.
///
/// # Errors
///
/// [`Error::ChainViolated`] naming the first link that fails and its two
/// numbers, and the errors of [`Certificate::compute`].
pub fn check_with<M: NextTokenModel + ?Sized>(
    tree: &DraftTree,
    verifier: &mut M,
    capacity: usize,
    opts: &CheckOptions,
) -> Result<Certificate> {
    let cert = Certificate::compute(tree, verifier, capacity, opts)?;
    cert.verdict()?;
    Ok(cert)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Iid, TreeBuilder};

    /// All nodes up to `depth` of an i.i.d. model, by brute force.
    fn all_pis(probs: &[f64], depth: u32) -> Vec<f64> {
        let mut out = Vec::new();
        let mut level = vec![1.0];
        for _ in 0..depth {
            level = level
                .iter()
                .flat_map(|pi| probs.iter().map(move |p| pi * p))
                .collect();
            out.extend(&level);
        }
        out
    }

    #[test]
    fn dual_matches_brute_force_enumeration() {
        let probs = [0.5, 0.3, 0.2];
        let mut m = Iid::new(TokenDist::from_probs(&probs).unwrap());
        let pis = all_pis(&probs, 4);
        for lambda in [0.0, 0.011, 0.051, 0.101, 0.301, 0.9] {
            let opts = DualOptions::default().with_max_depth(Some(4));
            let u = dual_bound(&mut m, lambda, 7, &opts).unwrap();
            let brute: f64 =
                pis.iter().map(|&pi| (pi - lambda).max(0.0)).sum::<f64>() + 7.0 * lambda;
            assert!((u.value - brute).abs() < 1e-12, "lambda {lambda}");
            let above = pis.iter().filter(|&&pi| pi > lambda).count();
            assert_eq!(u.nodes_above, above);
        }
    }

    #[test]
    fn optimal_value_matches_sorted_brute_force() {
        let probs = [0.4, 0.4, 0.2];
        let mut m = Iid::new(TokenDist::from_probs(&probs).unwrap());
        let mut pis = all_pis(&probs, 3);
        pis.sort_by(|a, b| b.total_cmp(a));
        for p in [1, 2, 3, 5, 10, 20, 39, 40, 100] {
            let opts = DualOptions::default().with_max_depth(Some(3));
            let opt = optimal_value(&mut m, p, &opts).unwrap();
            let want: f64 = pis.iter().take(p).sum();
            assert!((opt.value - want).abs() < 1e-12, "P {p}");
            let lambda = if p <= pis.len() { pis[p - 1] } else { 0.0 };
            assert!((opt.lambda_star - lambda).abs() < 1e-15, "P {p}");
        }
    }

    #[test]
    fn point_mass_ties_end_at_lambda_one() {
        let mut m = Iid::new(TokenDist::from_probs(&[1.0]).unwrap());
        let opt = optimal_value(&mut m, 50, &DualOptions::default()).unwrap();
        assert_eq!(opt.lambda_star, 1.0);
        assert_eq!(opt.value, 50.0);
        let tree = TreeBuilder::new(50).unwrap().build_owned(&mut m).unwrap();
        let cert = check(&tree, &mut m, 50).unwrap();
        assert_eq!(cert.renewal_bound.unwrap().closed_form(), None);
        assert_eq!(cert.renewal_bound.unwrap().value(), 50.0);
    }

    #[test]
    fn node_limit_stops_instead_of_hanging() {
        let mut m = Iid::new(TokenDist::from_probs(&[0.5, 0.5]).unwrap());
        let opts = DualOptions::default().with_node_limit(1000);
        let err = dual_bound(&mut m, 0.0, 4, &opts).unwrap_err();
        assert!(matches!(err, Error::NodeLimit { limit: 1000, .. }));
    }

    #[test]
    fn closed_forms_state_their_formulas() {
        let (mu, mu2, p) = (0.9_f64, 1.3_f64, 300usize);
        let lp = (p as f64).ln();
        let b1 = renewal_bound(mu, mu2, p, None).closed_form().unwrap();
        assert!((b1 - (lp / mu + mu2 / mu / mu)).abs() < 1e-12);
        let b2 = renewal_bound_optimized(mu, mu2, p, None)
            .closed_form()
            .unwrap();
        let t = (p as f64 * mu).ln();
        // The renewal bound t/mu + mu2/mu^2 - 1 + P e^-t at t = ln(P mu).
        let at_t = t / mu + mu2 / mu / mu - 1.0 + p as f64 * (-t).exp();
        assert!((b2 - at_t).abs() < 1e-12);
        // P mu <= 1: B2 falls back to B1.
        assert_eq!(
            renewal_bound_optimized(0.1, 0.2, 5, None),
            renewal_bound(0.1, 0.2, 5, None)
        );
        let paper = paper_bound(mu, mu2, p, Some(3));
        assert!(
            (paper.closed_form().unwrap() - ((mu + mu2) * lp / mu / mu + mu2 / mu / mu)).abs()
                < 1e-12
        );
        assert_eq!(paper.value(), 3.0);
        assert_eq!(renewal_bound(f64::NAN, 1.0, 5, None).closed_form(), None);
        assert_eq!(renewal_bound(1e-300, 1.0, 5, None).closed_form(), None);
    }

    #[test]
    fn violated_link_names_itself() {
        // A tree evaluated under one verifier cannot beat OPT there; forge
        // a certificate whose numbers break the chain and read the error.
        let mut m = Iid::new(TokenDist::from_probs(&[0.6, 0.4]).unwrap());
        let tree = TreeBuilder::new(4).unwrap().build_owned(&mut m).unwrap();
        let mut cert = check(&tree, &mut m, 4).unwrap();
        cert.tree_expected_accepted = cert.optimal_expected_accepted + 0.5;
        match cert.verdict() {
            Err(Error::ChainViolated { link, left, right }) => {
                assert_eq!(link, "E[X](T) <= OPT(P)");
                assert_eq!(left, cert.tree_expected_accepted);
                assert_eq!(right, cert.optimal_expected_accepted);
            }
            other => panic!("expected a violated link, got {other:?}"),
        }
    }
}
