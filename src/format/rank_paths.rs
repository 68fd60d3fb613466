//! Rank paths: a node named by the child ranks from the root down (rank 0
//! is the drafter's most probable candidate there), the common language of
//! Medusa's and vLLM's static trees; conversion from and to trees, their
//! breadth-first order, vLLM's level-uniformity rule, and the limit on their
//! total length.

use crate::error::{Error, Result};
use crate::tree::DraftTree;
use std::collections::HashMap;

/// How [`to_rank_paths`] turns a node into a rank among its siblings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RankRule {
    /// The token id is the rank: trees of a [`crate::Positional`] model and
    /// trees read from rank paths. Exact round trip.
    TokenIsRank,
    /// The node's place among its siblings sorted by drafter probability,
    /// descending, ties by token id ascending (without drafter probabilities
    /// every tie is broken by token). For a best-first tree this is the rank
    /// in the parent's draft distribution.
    DraftOrder,
}

/// Sorts rank paths breadth-first, by `(length, path)`: the order vLLM
/// normalises `speculative_token_tree` to and Medusa sorts its choices in.
/// O(P log P) comparisons.
///
/// # Examples
///
/// ```
/// let mut paths = vec![vec![0, 0], vec![1], vec![0]];
/// speclight::format::sort_breadth_first(&mut paths);
/// assert_eq!(paths, vec![vec![0], vec![1], vec![0, 0]]);
/// ```
pub fn sort_breadth_first(paths: &mut [Vec<u32>]) {
    paths.sort_unstable_by(|a, b| a.len().cmp(&b.len()).then_with(|| a.cmp(b)));
}

/// The tree of a list of rank paths: token = rank, nodes in breadth-first
/// order (see [`sort_breadth_first`]), no drafter probabilities. When
/// `limit` is given (the vocabulary or top-k size), every rank must be below
/// it. Time O(sum of path lengths + P log P), space O(sum of path lengths).
///
/// # Errors
///
/// [`Error::EmptyRankPath`], [`Error::RankOutOfRange`],
/// [`Error::DuplicateRankPath`], and [`Error::MissingParentPath`] when a
/// path's parent is not listed (the tree would have a gap).
///
/// # Examples
///
/// ```
/// use speclight::format::from_rank_paths;
/// let tree = from_rank_paths(&[vec![0, 0], vec![0], vec![1]], Some(4))?;
/// assert_eq!(tree.tokens(), &[0, 1, 0]);
/// assert_eq!(tree.parent(2), Some(0));
/// assert!(!tree.has_draft_probs());
/// assert!(from_rank_paths(&[vec![0, 1]], None).is_err()); // [0] is missing
/// # Ok::<(), speclight::Error>(())
/// ```
pub fn from_rank_paths(paths: &[Vec<u32>], limit: Option<usize>) -> Result<DraftTree> {
    for (index, path) in paths.iter().enumerate() {
        if path.is_empty() {
            return Err(Error::EmptyRankPath { index });
        }
        if let Some(limit) = limit {
            if let Some(&rank) = path.iter().find(|&&r| r as usize >= limit) {
                return Err(Error::RankOutOfRange {
                    path: path.clone(),
                    rank,
                    limit,
                });
            }
        }
    }
    let mut order: Vec<&[u32]> = paths.iter().map(Vec::as_slice).collect();
    order.sort_unstable_by(|a, b| a.len().cmp(&b.len()).then_with(|| a.cmp(b)));
    let mut index_of: HashMap<&[u32], usize> = HashMap::with_capacity(order.len());
    let mut tree = DraftTree::with_capacity(order.len());
    for path in order {
        let (&rank, parent_path) = path.split_last().ok_or(Error::EmptyRankPath { index: 0 })?;
        let parent = if parent_path.is_empty() {
            None
        } else {
            match index_of.get(parent_path) {
                Some(&p) => Some(p),
                None => {
                    return Err(Error::MissingParentPath {
                        path: path.to_vec(),
                        parent: parent_path.to_vec(),
                    })
                }
            }
        };
        if index_of.contains_key(path) {
            return Err(Error::DuplicateRankPath {
                path: path.to_vec(),
            });
        }
        let node = tree.push(parent, rank, 0.0)?;
        index_of.insert(path, node);
    }
    tree.set_no_draft_probs();
    Ok(tree)
}

/// The rank paths of `tree` under `rule`, sorted breadth-first. Time
/// O(P log P + sum of depths), space O(sum of depths), which is bounded by
/// [`MAX_TOTAL_PATH_LENGTH`].
///
/// # Errors
///
/// [`Error::InvalidTree`] if the tree is not valid ([`DraftTree::validate`]);
/// [`Error::PathsTooLong`] if its depths add up to more than
/// [`MAX_TOTAL_PATH_LENGTH`].
///
/// # Examples
///
/// A static tree from a positional model, as vLLM reads it:
///
/// ```
/// use speclight::format::{to_rank_paths, vllm_tree_string, RankRule};
/// use speclight::{Positional, TreeBuilder};
/// let mut model = Positional::new(&[0.6, 0.2, 0.1])?;
/// let tree = TreeBuilder::new(4)?.build_owned(&mut model)?;
/// let paths = to_rank_paths(&tree, RankRule::TokenIsRank)?;
/// assert_eq!(vllm_tree_string(&paths), "[(0,), (1,), (0, 0), (0, 0, 0)]");
/// # Ok::<(), speclight::Error>(())
/// ```
pub fn to_rank_paths(tree: &DraftTree, rule: RankRule) -> Result<Vec<Vec<u32>>> {
    tree.validate()?;
    let n = tree.len();
    check_total_path_length(tree)?;
    let rank: Vec<u32> = match rule {
        RankRule::TokenIsRank => tree.tokens().to_vec(),
        RankRule::DraftOrder => draft_order_ranks(tree),
    };
    let mut nodes = Vec::new();
    let mut paths: Vec<Vec<u32>> = (0..n)
        .map(|i| {
            tree.path_to(i, &mut nodes);
            nodes.iter().map(|&v| rank[v]).collect()
        })
        .collect();
    sort_breadth_first(&mut paths);
    Ok(paths)
}

/// Each node's place among its siblings sorted by drafter probability,
/// descending, ties by token ([`RankRule::DraftOrder`]). O(P log P).
fn draft_order_ranks(tree: &DraftTree) -> Vec<u32> {
    let n = tree.len();
    // Group siblings (by parent slot, root = 0), then sort each group.
    let mut order: Vec<usize> = (0..n).collect();
    let slot = |i: usize| tree.parent(i).map_or(0, |p| p + 1);
    let lp = |i: usize| {
        if tree.has_draft_probs() {
            tree.path_logprob(i)
        } else {
            0.0
        }
    };
    order.sort_unstable_by(|&a, &b| {
        slot(a)
            .cmp(&slot(b))
            .then_with(|| lp(b).total_cmp(&lp(a)))
            .then_with(|| tree.token(a).cmp(&tree.token(b)))
    });
    let mut rank = vec![0u32; n];
    let mut k = 0u32;
    for (pos, &i) in order.iter().enumerate() {
        k = if pos > 0 && slot(order[pos - 1]) == slot(i) {
            k + 1
        } else {
            0
        };
        rank[i] = k;
    }
    rank
}

/// The largest total length of a tree's root-to-node paths (the sum of its
/// nodes' depths) that the per-path outputs accept: 2^24 tokens.
///
/// Rank paths (Medusa, vLLM) spell out every node's whole path, and the
/// CLI's text tree indents every node by its depth, so their size grows with
/// the square of the depth: a chain of 20000 nodes would be 2 * 10^8 ranks,
/// 600 MB of vLLM text. At this limit the vLLM text is about 50 MB; the
/// deepest chain it admits has 5792 nodes, a tree of `P` nodes of average
/// depth `d` fits while `P * d <= 2^24`. JSON and DOT are linear in `P` and
/// have no such limit.
pub const MAX_TOTAL_PATH_LENGTH: u64 = 1 << 24;

/// The sum of the depths of `tree`'s nodes: the number of ranks in its rank
/// paths. O(P).
///
/// # Examples
///
/// ```
/// use speclight::{format::total_path_length, DraftTree};
/// let mut t = DraftTree::new();
/// let a = t.push(None, 7, -0.1)?;
/// t.push(Some(a), 8, -0.2)?;
/// assert_eq!(total_path_length(&t), 3); // [7] and [7, 8]
/// # Ok::<(), speclight::Error>(())
/// ```
pub fn total_path_length(tree: &DraftTree) -> u64 {
    tree.depths().iter().map(|&d| u64::from(d)).sum()
}

/// Refuses a tree whose paths are longer in total than
/// [`MAX_TOTAL_PATH_LENGTH`], before anything quadratic in its depth is
/// allocated. O(P).
///
/// # Errors
///
/// [`Error::PathsTooLong`].
///
/// # Examples
///
/// ```
/// use speclight::{format::check_total_path_length, Iid, TokenDist, TreeBuilder};
/// let mut certain = Iid::new(TokenDist::from_probs(&[1.0])?); // a chain
/// let chain = TreeBuilder::new(10_000)?.build_owned(&mut certain)?;
/// assert!(check_total_path_length(&chain).is_err()); // 5 * 10^7 ranks
/// # Ok::<(), speclight::Error>(())
/// ```
pub fn check_total_path_length(tree: &DraftTree) -> Result<()> {
    let total = total_path_length(tree);
    if total > MAX_TOTAL_PATH_LENGTH {
        return Err(Error::PathsTooLong {
            total,
            max: MAX_TOTAL_PATH_LENGTH,
        });
    }
    Ok(())
}

/// Whether every node of each level has the same children, ranks
/// `0..k_d` for a `k_d` fixed per level (a chain and a full `k`-ary tree do;
/// most best-first trees do not). vLLM's EAGLE tree proposer, in the
/// versions read while writing this, drafts `k_d` = (nodes at level `d`) /
/// (nodes at level `d - 1`) top-ranked children below *every* node of the
/// previous level, so only such trees are drafted exactly as written; vLLM
/// parses and verifies any prefix-closed tree. O(sum of path lengths).
///
/// # Examples
///
/// ```
/// use speclight::format::is_level_uniform;
/// assert!(is_level_uniform(&[vec![0], vec![1], vec![0, 0], vec![1, 0]]));
/// assert!(!is_level_uniform(&[vec![0], vec![1], vec![0, 0]]));
/// ```
pub fn is_level_uniform(paths: &[Vec<u32>]) -> bool {
    level_uniform_violation(paths).is_none()
}

/// Why a tree is not level-uniform ([`is_level_uniform`]), in words: the
/// first offence breadth-first, either a child rank with a gap below it or
/// a node with a different number of children than the first node of its
/// level (nodes on the deepest level have none and are not compared).
/// `None` when the tree is level-uniform. O(sum of path lengths) after an
/// O(n log n) breadth-first sort.
///
/// # Examples
///
/// ```
/// use speclight::format::level_uniform_violation;
/// assert_eq!(
///     level_uniform_violation(&[vec![0], vec![1], vec![0, 0]]).unwrap(),
///     "level 1: node [1] has 0 children but node [0] has 1"
/// );
/// ```
pub fn level_uniform_violation(paths: &[Vec<u32>]) -> Option<String> {
    let mut sorted = paths.to_vec();
    sort_breadth_first(&mut sorted);
    let mut children: HashMap<&[u32], u32> = HashMap::new();
    for path in &sorted {
        let Some((&rank, parent)) = path.split_last() else {
            continue; // the root has no rank
        };
        let count = children.entry(parent).or_insert(0);
        if rank != *count {
            return Some(format!(
                "node {path:?} has rank {rank} but {} has {count} children of lower rank \
                 (ranks must be 0, 1, ... without gaps)",
                node_name(parent)
            ));
        }
        *count += 1;
    }
    let deepest = sorted.last().map_or(0, Vec::len);
    // The first node seen at each level and its number of children.
    let mut first: Vec<Option<(&[u32], u32)>> = vec![None; deepest];
    let nodes = std::iter::once(&[][..]).chain(sorted.iter().map(Vec::as_slice));
    for node in nodes.filter(|n| n.len() < deepest) {
        let k = children.get(node).copied().unwrap_or(0);
        match first[node.len()] {
            None => first[node.len()] = Some((node, k)),
            Some((other, want)) if want != k => {
                return Some(format!(
                    "level {}: {} has {k} children but {} has {want}",
                    node.len(),
                    node_name(node),
                    node_name(other)
                ))
            }
            Some(_) => {}
        }
    }
    None
}

/// A node by its rank path; the empty path is the root.
fn node_name(path: &[u32]) -> String {
    if path.is_empty() {
        "the root".into()
    } else {
        format!("node {path:?}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn level_uniform_violation_names_the_first_offence() {
        let uneven = [vec![0], vec![1], vec![0, 0]];
        assert_eq!(
            level_uniform_violation(&uneven).unwrap(),
            "level 1: node [1] has 0 children but node [0] has 1"
        );
        let gap = [vec![0], vec![2]];
        assert!(level_uniform_violation(&gap)
            .unwrap()
            .starts_with("node [2] has rank 2"));
        assert_eq!(
            level_uniform_violation(&[vec![0], vec![1], vec![0, 0], vec![1, 0]]),
            None
        );
        assert_eq!(level_uniform_violation(&[]), None);
    }
    use crate::{Iid, TokenDist, TreeBuilder};
    use proptest::prelude::*;
    use rand::{rngs::StdRng, Rng, SeedableRng};

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        /// A best-first tree over real token ids: DraftOrder ranks are the
        /// ranks in the drafter's distribution, so mapping every rank back
        /// through the distribution gives the tree's token paths.
        #[test]
        fn draft_order_ranks_are_distribution_ranks(seed in 0u64..1_000_000, n in 1usize..80) {
            let mut rng = StdRng::seed_from_u64(seed);
            let k = rng.random_range(1..8usize);
            let tokens: Vec<u32> = (0..k as u32).map(|i| i * 37 + 5).collect();
            let weights: Vec<f64> = (0..k).map(|_| rng.random_range(0.05..1.0)).collect();
            let sum: f64 = weights.iter().sum();
            let probs: Vec<f64> = weights.iter().map(|w| w / sum).collect();
            let dist = TokenDist::from_token_probs(&tokens, &probs).unwrap();
            let tree = TreeBuilder::new(n).unwrap().build_owned(&mut Iid::new(dist.clone())).unwrap();
            let paths = to_rank_paths(&tree, RankRule::DraftOrder).unwrap();
            let mut from_ranks: Vec<Vec<u32>> = paths
                .iter()
                .map(|p| p.iter().map(|&r| dist.tokens()[r as usize]).collect())
                .collect();
            let mut from_tree: Vec<Vec<u32>> = (0..tree.len())
                .map(|i| { let mut v = Vec::new(); tree.path_tokens(i, &mut v); v })
                .collect();
            from_ranks.sort();
            from_tree.sort();
            prop_assert_eq!(from_ranks, from_tree);
        }
    }

    #[test]
    fn level_uniformity_matches_a_full_tree_count() {
        // Full trees with per-level branching k_d are uniform, and the node
        // count is the sum of the products of the k's.
        for ks in [vec![1, 1, 1], vec![3, 2], vec![2, 1, 3]] {
            let mut level: Vec<Vec<u32>> = vec![Vec::new()];
            let mut paths = Vec::new();
            for &k in &ks {
                level = level
                    .iter()
                    .flat_map(|p| {
                        (0..k).map(move |r| {
                            let mut c = p.clone();
                            c.push(r);
                            c
                        })
                    })
                    .collect();
                paths.extend(level.iter().cloned());
            }
            let count: u32 = (1..=ks.len())
                .map(|d| ks[..d].iter().product::<u32>())
                .sum();
            assert_eq!(paths.len() as u32, count);
            assert!(is_level_uniform(&paths), "{ks:?}");
            // Dropping the last path (the highest-ranked deepest node) breaks it,
            // unless the last level only had one node.
            let mut cut = paths.clone();
            cut.pop();
            let last_level = ks.iter().product::<u32>();
            assert_eq!(
                is_level_uniform(&cut),
                last_level == 1 || cut.is_empty(),
                "{ks:?}"
            );
        }
        assert!(!is_level_uniform(&[vec![1]]), "rank gap");
        assert!(is_level_uniform(&[]));
    }

    #[test]
    fn rank_path_errors_are_specific() {
        assert_eq!(
            from_rank_paths(&[vec![0], vec![]], None),
            Err(Error::EmptyRankPath { index: 1 })
        );
        assert_eq!(
            from_rank_paths(&[vec![0], vec![1, 2]], None),
            Err(Error::MissingParentPath {
                path: vec![1, 2],
                parent: vec![1]
            })
        );
        assert_eq!(
            from_rank_paths(&[vec![0], vec![0]], None),
            Err(Error::DuplicateRankPath { path: vec![0] })
        );
        assert_eq!(
            from_rank_paths(&[vec![0], vec![0, 3]], Some(3)),
            Err(Error::RankOutOfRange {
                path: vec![0, 3],
                rank: 3,
                limit: 3
            })
        );
        let msg = from_rank_paths(&[vec![2, 1]], None)
            .unwrap_err()
            .to_string();
        assert_eq!(msg, "rank path [2, 1] has no parent path [2] in the list");
    }

    /// Issue 12, item 8: a deep chain's rank paths are refused before they
    /// are built (the old code built 2 * 10^8 ranks for a 20000-node chain);
    /// the largest chain under the limit is accepted. The total is checked
    /// against an independent count, the closed form `n (n + 1) / 2`.
    #[test]
    fn rank_paths_past_the_total_length_limit_are_refused() {
        let chain = |n: usize| {
            let mut certain = Iid::new(TokenDist::from_probs(&[1.0]).unwrap());
            TreeBuilder::new(n)
                .unwrap()
                .build_owned(&mut certain)
                .unwrap()
        };
        let deepest = 5792; // 5792 * 5793 / 2 <= 2^24 < 5793 * 5794 / 2
        let fits = chain(deepest);
        assert_eq!(
            total_path_length(&fits),
            (deepest * (deepest + 1) / 2) as u64
        );
        assert_eq!(
            to_rank_paths(&fits, RankRule::DraftOrder).unwrap().len(),
            deepest
        );
        let too_deep = chain(deepest + 1);
        let total = ((deepest + 1) * (deepest + 2) / 2) as u64;
        assert_eq!(
            to_rank_paths(&too_deep, RankRule::DraftOrder),
            Err(Error::PathsTooLong {
                total,
                max: MAX_TOTAL_PATH_LENGTH
            })
        );
        assert_eq!(
            to_rank_paths(&chain(20_000), RankRule::TokenIsRank),
            Err(Error::PathsTooLong {
                total: 200_010_000,
                max: MAX_TOTAL_PATH_LENGTH
            })
        );
    }
}
