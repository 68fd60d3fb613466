//! The dual certificate of `docs/THEORY.md` section 4a: `U(lambda)` and
//! `lambda*`, `OPT(P)`, by a depth-first enumeration of the nodes above a
//! threshold (not the builder's heap, so that a check is a second,
//! independent computation).

use crate::build::check_capacity;
use crate::dist::{TokenDist, TokenId};
use crate::error::{Error, Result};
use crate::model::NextTokenModel;

/// Default cap on the nodes one dual enumeration may visit (2^24): enough for
/// every capacity up to [`crate::MAX_CAPACITY`] at `lambda*`, small enough that a too
/// small `lambda` fails in seconds instead of hanging.
pub const DEFAULT_NODE_LIMIT: usize = 1 << 24;

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

pub(super) fn check_inputs(capacity: usize, opts: &DualOptions) -> Result<()> {
    check_capacity(capacity)?;
    if opts.max_depth == Some(0) {
        return Err(Error::ZeroDepth);
    }
    Ok(())
}

/// The dual certificate `U(lambda) = sum_v (pi(v) - lambda)^+ + lambda P` of
/// docs/THEORY.md section 4a, an upper bound on `E[X]` of every tree with
/// `|T| <= P` (and depth `<= D`) for every `lambda >= 0`.
///
/// Enumerates the nodes with `pi(v) > lambda` by depth-first search, pruning
/// a node's remaining children as soon as one falls to `lambda` (children
/// come sorted by probability). Time O(N) steps for the `N` nodes above
/// `lambda`, space O(depth) beyond the model (no node's children are
/// copied: O(P) at `lambda*`, not O(P V)); a model that is not context-free
/// is asked about twice per node, a context-free one once in all.
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
/// alone, without the builder (docs/THEORY.md section 4a).
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

/// One node on the explicit DFS stack: its next child to visit is the
/// `next`-th of its distribution (children come sorted by probability, so the
/// first one at or below the threshold ends the node).
struct Frame {
    next: usize,
    log_pi: f64,
}

/// The `index`-th child `(token, ln p)` of the node at `path`: from the
/// shared distribution of a context-free model, or by asking the model again
/// (a node's children are never copied, so memory stays O(depth)).
fn child_at<M: NextTokenModel + ?Sized>(
    model: &mut M,
    shared: Option<&TokenDist>,
    path: &[TokenId],
    index: usize,
) -> Result<Option<(TokenId, f64)>> {
    let d = match shared {
        Some(d) => d,
        None => model.next(path)?,
    };
    Ok(d.tokens()
        .get(index)
        .copied()
        .zip(d.log_probs().get(index).copied()))
}

/// Depth-first enumeration of every node with `ln pi(v) > ln_lambda` and depth
/// `<= D`, calling `visit(ln pi)` for each; stops after `stop_at` nodes.
/// Returns the number visited. An explicit stack of one [`Frame`] per level
/// of the current path (no copy of any node's children), so space is
/// O(depth) whatever the vocabulary, and deep chains cannot overflow the
/// call stack. Time O(N) steps for `N` visited nodes; a model that is not
/// context-free is asked once per step (about twice per node).
fn enumerate_above<M: NextTokenModel + ?Sized>(
    model: &mut M,
    ln_lambda: f64,
    opts: &DualOptions,
    stop_at: usize,
    mut visit: impl FnMut(f64),
) -> Result<usize> {
    let shared = if model.is_context_free() {
        Some(model.next(&[])?.clone())
    } else {
        None
    };
    let mut frames = vec![Frame {
        next: 0,
        log_pi: 0.0,
    }];
    let mut path: Vec<TokenId> = Vec::new();
    let mut count = 0usize;
    while let Some(top) = frames.last_mut() {
        let (index, base) = (top.next, top.log_pi);
        let next = child_at(model, shared.as_ref(), &path, index)?;
        let Some((token, lp)) = next.filter(|&(_, lp)| base + lp > ln_lambda) else {
            frames.pop();
            path.pop();
            continue;
        };
        if let Some(top) = frames.last_mut() {
            top.next += 1;
        }
        let log_pi = base + lp;
        count += 1;
        if count > opts.node_limit {
            return Err(Error::NodeLimit {
                limit: opts.node_limit,
                lambda: ln_lambda.exp(),
            });
        }
        visit(log_pi);
        if count >= stop_at {
            break;
        }
        let depth = frames.len(); // depth of the node just visited
        if opts.max_depth.is_none_or(|d| (depth as u64) < u64::from(d)) {
            path.push(token);
            frames.push(Frame { next: 0, log_pi });
        }
    }
    Ok(count)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Iid, TokenDist};

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
    fn node_limit_stops_instead_of_hanging() {
        let mut m = Iid::new(TokenDist::from_probs(&[0.5, 0.5]).unwrap());
        let opts = DualOptions::default().with_node_limit(1000);
        let err = dual_bound(&mut m, 0.0, 4, &opts).unwrap_err();
        assert!(matches!(err, Error::NodeLimit { limit: 1000, .. }));
    }

    /// Issue 12 item 4: the enumeration kept every child of every level of
    /// the current path, about 16 P V bytes (8.6 GB here, an allocation
    /// failure); one frame per level it needs O(P) memory.
    #[test]
    fn a_large_vocabulary_enumerates_in_memory_linear_in_p() {
        let dist = crate::spec::parse_dist("zipf:1:131072").unwrap();
        let mut m = Iid::new(dist);
        let opt = optimal_value(&mut m, 4096, &DualOptions::default()).unwrap();
        let u = dual_bound_ln(&mut m, opt.ln_lambda_star, 4096, &DualOptions::default()).unwrap();
        assert!((u.value - opt.value).abs() < 1e-9 * opt.value.max(1.0));
        let mut builder = crate::TreeBuilder::new(4096).unwrap();
        builder.build(&mut m).unwrap();
        assert!((opt.value - builder.opt_curve()[4095]).abs() < 1e-9);
    }
}
