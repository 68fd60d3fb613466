//! The token path of the node being expanded, rebuilt from the last one.

use super::frontier::ROOT;
use crate::dist::TokenId;
use crate::tree::DraftTree;

/// The root-to-node token path the builder hands its model, kept between
/// expansions: best-first expands the child or a near relative of the last
/// expanded node, so most of the path is already in place. Walking to the
/// root on every expansion was 14% of a general-path build (issue 16).
#[derive(Debug, Default)]
pub(super) struct PathCache {
    /// `nodes[k]`: the depth-`k + 1` node of the cached path.
    nodes: Vec<u32>,
    tokens: Vec<TokenId>,
}

impl PathCache {
    /// Forgets the cached path (node indices are reused by the next build).
    pub(super) fn clear(&mut self) {
        self.nodes.clear();
        self.tokens.clear();
    }

    /// The tokens from the root's child down to `node`.
    ///
    /// Time O(distance from `node` up to its deepest ancestor on the cached
    /// path), at most O(depth): once one ancestor matches, every ancestor
    /// above it does (a node has one path to the root).
    pub(super) fn path_to(&mut self, tree: &DraftTree, node: usize) -> &[TokenId] {
        let (parents, tokens, depths) = (tree.parent_indices(), tree.tokens(), tree.depths());
        let depth = depths[node] as usize;
        // New slots hold ROOT, which matches no node, so they are written.
        self.nodes.resize(depth, ROOT);
        self.tokens.resize(depth, 0);
        let mut cur = node as u32;
        // Zipped iterators: no bounds checks on the cached slots.
        for (slot, token) in self.nodes.iter_mut().zip(self.tokens.iter_mut()).rev() {
            if *slot == cur {
                break;
            }
            *slot = cur;
            *token = tokens[cur as usize];
            cur = parents[cur as usize];
        }
        &self.tokens
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Any sequence of lookups on a random tree gives what the plain
        /// walk to the root (`DraftTree::path_tokens`, other code) gives.
        #[test]
        fn equals_the_walk_to_the_root(
            parents in proptest::collection::vec(any::<prop::sample::Index>(), 1..60),
            queries in proptest::collection::vec(any::<prop::sample::Index>(), 1..40),
        ) {
            let mut tree = DraftTree::new();
            for (i, p) in parents.iter().enumerate() {
                // Node i's parent is an earlier node or the root (index i).
                let parent = p.index(i + 1);
                let parent = (parent < i).then_some(parent);
                tree.push(parent, i as TokenId, -(i as f64)).unwrap();
            }
            let mut cache = PathCache::default();
            let mut want = Vec::new();
            for q in queries {
                let node = q.index(tree.len());
                tree.path_tokens(node, &mut want);
                prop_assert_eq!(cache.path_to(&tree, node), want.as_slice());
            }
        }
    }
}
