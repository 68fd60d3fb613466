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
/// over lanes is `P(X >= depth)`). `conditional(v, token_v)` gives
/// `(p, ln p)` of node `v`'s token given its parent. Time O(|T|) plus the
/// calls, no allocation once the buffers have grown.
///
/// Consecutive nodes of a best-first tree mostly share a depth
/// (docs/benchmarks.md, "Evaluation"), so one sum per depth would chain a
/// store, a load and an add from node to node; `LANES` sums make `LANES`
/// independent chains.
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
    let (parents, tokens, depths) = (tree.parent_indices(), tree.tokens(), tree.depths());
    // Unrolled by LANES: each node's lane is a constant, and one slicing
    // per chunk bounds every slot the chunk touches.
    let chunks = parents
        .chunks_exact(LANES)
        .zip(tokens.chunks_exact(LANES))
        .zip(depths.chunks_exact(LANES));
    let mut bad = None;
    'chunks: for (c, ((ps, ts), ds)) in chunks.enumerate() {
        let first = c * LANES;
        let (r, lr) = (&mut r[..first + LANES + 1], &mut lr[..first + LANES + 1]);
        for lane in 0..LANES {
            let v = first + lane;
            let writes = Writes { r, lr, depth_sums };
            if !writes.node(v, ps[lane], conditional(v, ts[lane]), ds[lane], lane) {
                bad = Some(v);
                break 'chunks;
            }
        }
    }
    if bad.is_none() {
        bad = (n - n % LANES..n).find(|&v| {
            let writes = Writes {
                r: &mut r[..],
                lr: &mut lr[..],
                depth_sums: &mut depth_sums[..],
            };
            let cond = conditional(v, tokens[v]);
            !writes.node(v, parents[v], cond, depths[v], v % LANES)
        });
    }
    if let Some(v) = bad {
        reach.clear();
        log_reach.clear();
        return Err(not_topological(v));
    }
    Ok(())
}

/// The buffers a node writes into, bounded for the nodes at hand.
struct Writes<'a> {
    r: &'a mut [f64],
    lr: &'a mut [f64],
    depth_sums: &'a mut [[f64; LANES]],
}

impl Writes<'_> {
    /// Node `v` with its parent, `(p, ln p)`, depth and lane; false if the
    /// parent does not come before it.
    #[inline(always)]
    fn node(self, v: usize, parent: u32, (p, lp): (f64, f64), depth: u32, lane: usize) -> bool {
        // The root's u32::MAX wraps to slot 0; a valid parent's slot is <= v.
        let up = parent.wrapping_add(1) as usize;
        if up > v {
            return false;
        }
        let pi = self.r[up] * p;
        self.r[v + 1] = pi;
        self.lr[v + 1] = self.lr[up] + lp;
        // Depths start at 1; a tree's depths never exceed its max_depth.
        if let Some(sums) = self.depth_sums.get_mut((depth as usize).wrapping_sub(1)) {
            sums[lane] += pi;
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use crate::model::Opaque;
    use crate::tree::DraftTree;
    use crate::{Error, Evaluator, Iid, NextTokenModel, TokenDist};

    /// A chain of `n` nodes (node v's parent is v - 1) except that node
    /// `bad` names node `bad + 1`, which comes later (or does not exist).
    fn chain_with_forward_parent(n: usize, bad: usize) -> DraftTree {
        let mut tree = DraftTree::new();
        for v in 0..n as u32 {
            // u32::MAX (v = 0) is the root.
            let parent = if v as usize == bad {
                v + 1
            } else {
                v.wrapping_sub(1)
            };
            tree.push_unchecked(parent, 0, v + 1, 0.0);
        }
        tree
    }

    #[test]
    fn a_forward_parent_is_an_error_in_a_chunk_and_in_the_tail() {
        let half = TokenDist::from_probs(&[0.5, 0.5]).unwrap();
        // Token ids 0 and 10^6: no dense table, the binary search.
        let sparse = TokenDist::from_token_probs(&[0, 1_000_000], &[0.5, 0.5]).unwrap();
        let mut models: [Box<dyn NextTokenModel>; 3] = [
            Box::new(Iid::new(half.clone())),
            Box::new(Iid::new(sparse)),
            Box::new(Opaque(Iid::new(half))),
        ];
        let mut evaluator = Evaluator::new();
        for model in &mut models {
            // n = 10: nodes 0..8 in two chunks of four, 8 and 9 in the tail.
            for bad in [0, 5, 9] {
                let tree = chain_with_forward_parent(10, bad);
                let err = evaluator.evaluate(&tree, model).unwrap_err();
                assert!(
                    matches!(err, Error::InvalidTree { node, .. } if node == bad),
                    "{err}"
                );
            }
            let fine = chain_with_forward_parent(10, usize::MAX);
            let ev = evaluator.evaluate(&fine, model).unwrap();
            assert!((ev.expected_accepted - (1.0 - 0.5f64.powi(10))).abs() < 1e-12);
        }
    }
}
