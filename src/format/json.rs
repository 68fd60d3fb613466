//! The JSON schema of a tree (serde): what `speclight build --format json`
//! prints and `speclight eval --tree` reads.
//!
//! ```json
//! {"capacity": 4, "max_depth": null,
//!  "nodes": [{"id": 0, "parent": null, "token": 3, "depth": 1, "draft_prob": 0.5}],
//!  "expected_accepted": 0.5, "accept_length_distribution": [0.5]}
//! ```
//!
//! `nodes` is in topological order; `draft_prob` is the drafter's probability
//! of the whole path from the root to the node, `pi_q(v)` (optional on input).
//! Every field but `nodes` is optional on input and ignored by the reader.

use crate::error::{Error, Result};
use crate::tree::DraftTree;
use crate::TokenId;
use serde::{Deserialize, Serialize};

/// One node of the JSON tree schema.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeJson {
    /// Arena index; must equal the node's position in `nodes`.
    pub id: usize,
    /// Parent id, `null` for a child of the root.
    pub parent: Option<usize>,
    /// Token id.
    pub token: TokenId,
    /// Depth, 1 for children of the root.
    pub depth: u32,
    /// Drafter's path probability `pi_q(v)`, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub draft_prob: Option<f64>,
}

/// The JSON document of a tree, with its optional evaluation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TreeJson {
    /// Capacity the tree was built for.
    #[serde(default)]
    pub capacity: Option<usize>,
    /// Depth limit the tree was built with (`null` if none).
    #[serde(default)]
    pub max_depth: Option<u32>,
    /// Nodes in topological order.
    pub nodes: Vec<NodeJson>,
    /// `E[X]` under the verifier it was evaluated with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expected_accepted: Option<f64>,
    /// `P(X >= 1), P(X >= 2), ...`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub accept_length_distribution: Option<Vec<f64>>,
}

impl TreeJson {
    /// The JSON view of `tree` (no evaluation attached).
    pub fn from_tree(tree: &DraftTree, capacity: Option<usize>, max_depth: Option<u32>) -> Self {
        let nodes = tree
            .nodes()
            .map(|n| NodeJson {
                id: n.index,
                parent: n.parent,
                token: n.token,
                depth: n.depth,
                draft_prob: tree.has_draft_probs().then(|| n.path_logprob.exp()),
            })
            .collect();
        Self {
            capacity,
            max_depth,
            nodes,
            expected_accepted: None,
            accept_length_distribution: None,
        }
    }

    /// Rebuilds and validates the tree.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidTree`] when ids are out of order, a parent comes after
    /// its child, a depth disagrees with the parent's, a sibling token
    /// repeats, or a `draft_prob` is outside `[0, 1]` or above its parent's.
    pub fn to_tree(&self) -> Result<DraftTree> {
        let mut tree = DraftTree::with_capacity(self.nodes.len());
        let with_probs = self.nodes.iter().all(|n| n.draft_prob.is_some());
        for (i, n) in self.nodes.iter().enumerate() {
            let bad = |reason: String| Error::InvalidTree { node: i, reason };
            if n.id != i {
                return Err(bad(format!("id {} at position {i}", n.id)));
            }
            let lp = match n.draft_prob.filter(|_| with_probs) {
                Some(p) if (0.0..=1.0).contains(&p) => p.ln(),
                Some(p) => return Err(bad(format!("draft_prob {p} is not in [0, 1]"))),
                None => 0.0,
            };
            tree.push(n.parent, n.token, lp)?;
            if tree.depth(i) != n.depth {
                return Err(bad(format!(
                    "depth {} should be {}",
                    n.depth,
                    tree.depth(i)
                )));
            }
        }
        if !with_probs {
            tree.set_no_draft_probs();
        }
        tree.validate()?;
        Ok(tree)
    }

    /// Parses the JSON text of a tree.
    ///
    /// # Errors
    ///
    /// [`Error::Parse`] for malformed JSON, and the errors of [`TreeJson::to_tree`].
    pub fn parse_tree(text: &str) -> Result<DraftTree> {
        Self::parse(text)?.to_tree()
    }

    /// The document in `text`, not yet checked as a tree: a caller that
    /// holds a large file drops the text before [`TreeJson::to_tree`], so
    /// the text and the arena are never in memory together. O(n).
    ///
    /// # Errors
    ///
    /// [`Error::Parse`] for malformed JSON or a field of the wrong type.
    pub fn parse(text: &str) -> Result<Self> {
        serde_json::from_str(text).map_err(|e| Error::Parse(format!("tree json: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Iid, TokenDist, TreeBuilder};

    #[test]
    fn json_round_trips() {
        let mut m = Iid::new(TokenDist::from_probs(&[0.5, 0.3, 0.2]).unwrap());
        let tree = TreeBuilder::new(20).unwrap().build_owned(&mut m).unwrap();
        let text = serde_json::to_string(&TreeJson::from_tree(&tree, Some(20), None)).unwrap();
        let back = TreeJson::parse_tree(&text).unwrap();
        assert_eq!(back.tokens(), tree.tokens());
        assert_eq!(back.parent_indices(), tree.parent_indices());
        for (a, b) in back.path_logprobs().iter().zip(tree.path_logprobs()) {
            assert!((a - b).abs() < 1e-12);
        }
    }

    #[test]
    fn rejects_a_child_before_its_parent() {
        let text = r#"{"nodes": [{"id": 0, "parent": 1, "token": 0, "depth": 2},
                                 {"id": 1, "parent": null, "token": 1, "depth": 1}]}"#;
        assert!(matches!(
            TreeJson::parse_tree(text),
            Err(Error::InvalidTree { node: 0, .. })
        ));
        assert!(matches!(TreeJson::parse_tree("{"), Err(Error::Parse(_))));
    }
}
