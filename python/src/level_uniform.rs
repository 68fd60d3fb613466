//! Why a tree is not level-uniform, in words: the crate's
//! `speclight::format::is_level_uniform` answers yes or no; this names the
//! first node (breadth-first) that breaks the rule, for the `ValueError` of
//! `Tree.to_vllm()`.

use std::collections::HashMap;

/// The first violation of level-uniformity in breadth-first sorted rank
/// `paths`: a child rank with a gap below it, or a node of level `d` with a
/// different number of children than the first node of that level (nodes
/// on the deepest level have none, and are not compared). `None` when the
/// tree is level-uniform. O(sum of path lengths).
pub fn first_violation(paths: &[Vec<u32>]) -> Option<String> {
    let mut children: HashMap<&[u32], u32> = HashMap::new();
    for path in paths {
        let Some((&rank, parent)) = path.split_last() else {
            continue; // the root has no rank
        };
        let count = children.entry(parent).or_insert(0);
        if rank != *count {
            return Some(format!(
                "node {path:?} has rank {rank} but {} has {count} children of lower rank \
                 (ranks must be 0, 1, ... without gaps)",
                name(parent)
            ));
        }
        *count += 1;
    }
    let deepest = paths.iter().map(Vec::len).max().unwrap_or(0);
    // The first node seen at each level and its number of children.
    let mut first: Vec<Option<(&[u32], u32)>> = vec![None; deepest];
    let nodes = std::iter::once(&[][..]).chain(paths.iter().map(Vec::as_slice));
    for node in nodes.filter(|n| n.len() < deepest) {
        let k = children.get(node).copied().unwrap_or(0);
        match first[node.len()] {
            None => first[node.len()] = Some((node, k)),
            Some((other, want)) if want != k => {
                return Some(format!(
                    "level {}: {} has {k} children but {} has {want}",
                    node.len(),
                    name(node),
                    name(other)
                ))
            }
            Some(_) => {}
        }
    }
    None
}

/// A node by its rank path; the empty path is the root.
fn name(path: &[u32]) -> String {
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
    fn names_the_first_offence() {
        let uneven = [vec![0], vec![1], vec![0, 0]];
        assert_eq!(
            first_violation(&uneven).unwrap(),
            "level 1: node [1] has 0 children but node [0] has 1"
        );
        let gap = [vec![0], vec![2]];
        assert!(first_violation(&gap)
            .unwrap()
            .starts_with("node [2] has rank 2"));
        assert_eq!(
            first_violation(&[vec![0], vec![1], vec![0, 0], vec![1, 0]]),
            None
        );
        assert_eq!(first_violation(&[]), None);
    }
}
