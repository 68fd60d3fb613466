//! The DP's one pass over the arena, parents before children:
//! `pi(v) = pi(parent) p(token_v | parent)` in linear and in log space, and
//! `P(X >= k)` as the sum of `pi` over depth `k`.

use super::not_topological;
use crate::dist::TokenId;
use crate::error::Result;
use crate::tree::DraftTree;

/// Sums kept per depth: node `v` adds to lane `v % LANES`.
pub(super) const LANES: usize = 4;

/// Writes `pi` and `ln pi` of every node into slot `v + 1` of `reach` and
/// `log_reach` (slot 0 is the root: 1 and 0) and adds each node's `pi` to
/// `depth_sums[depth - 1][v % LANES]`, which must start at 0 (their sum
/// over lanes is `P(X >= depth)`).
///
/// Consecutive nodes of a best-first tree mostly share a depth
/// (docs/benchmarks.md, "Evaluation"), so one sum per depth would chain a
/// store, a load and an add from node to node; `LANES` sums make `LANES`
/// independent chains.
/// `conditional(v, token_v)` gives `(p, ln p)` of node `v`'s token given
/// its parent. Time O(|T| + depth) plus the calls, no allocation once the
/// buffers have grown.
///
/// Log space keeps `ln pi` exact and never NaN (`-inf + finite` stays
/// `-inf`); the linear product that underflows to 0 stands for a reach
/// below 1e-308, which no sum of at most `MAX_CAPACITY` nodes can notice.
///
/// # Errors
///
/// [`crate::Error::InvalidTree`] if a parent does not come before its node
/// (the buffers are then emptied).
pub(super) fn propagate(
    tree: &DraftTree,
    reach: &mut Vec<f64>,
    log_reach: &mut Vec<f64>,
    depth_sums: &mut [[f64; LANES]],
    conditional: impl Fn(usize, TokenId) -> (f64, f64),
) -> Result<()> {
    let n = tree.len();
    // Kept entries are not rewritten (no memset): every slot read below was
    // written earlier in this pass.
    reach.resize(n + 1, 0.0);
    log_reach.resize(n + 1, 0.0);
    let (r, lr) = (&mut reach[..=n], &mut log_reach[..=n]);
    (r[0], lr[0]) = (1.0, 0.0);
    // Length-n slices: no bounds check on index v.
    let parents = &tree.parent_indices()[..n];
    let tokens = &tree.tokens()[..n];
    let depths = &tree.depths()[..n];
    for v in 0..n {
        // The root's u32::MAX wraps to slot 0; a valid parent's slot is <= v.
        let up = parents[v].wrapping_add(1) as usize;
        if up > v {
            reach.clear();
            log_reach.clear();
            return Err(not_topological(v));
        }
        let (p, lp) = conditional(v, tokens[v]);
        let pi = r[up] * p;
        r[v + 1] = pi;
        lr[v + 1] = lr[up] + lp;
        // Depths start at 1; a tree's depths never exceed its max_depth.
        if let Some(sums) = depth_sums.get_mut((depths[v] as usize).wrapping_sub(1)) {
            sums[v % LANES] += pi;
        }
    }
    Ok(())
}
