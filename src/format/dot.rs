//! Graphviz DOT export of a tree (petgraph; feature `dot`).

use crate::tree::DraftTree;

/// Graphviz DOT of a tree (through `petgraph`): one node per draft token
/// labelled with its token and its drafter path probability, plus the root.
///
/// # Examples
///
/// ```
/// use speclight::{format::to_dot, Iid, TokenDist, TreeBuilder};
/// let mut m = Iid::new(TokenDist::from_probs(&[0.6, 0.4])?);
/// let tree = TreeBuilder::new(3)?.build_owned(&mut m)?;
/// let dot = to_dot(&tree);
/// assert!(dot.starts_with("digraph"));
/// assert_eq!(dot.matches("->").count(), 3);
/// # Ok::<(), speclight::Error>(())
/// ```
pub fn to_dot(tree: &DraftTree) -> String {
    use petgraph::dot::{Config, Dot};
    use petgraph::graph::DiGraph;
    let mut g: DiGraph<String, &str> = DiGraph::with_capacity(tree.len() + 1, tree.len());
    let root = g.add_node("root".to_string());
    let ids: Vec<_> = tree
        .nodes()
        .map(|n| {
            let label = if tree.has_draft_probs() {
                format!("token {} (p = {:.4})", n.token, n.path_logprob.exp())
            } else {
                format!("token {}", n.token)
            };
            g.add_node(label)
        })
        .collect();
    for n in tree.nodes() {
        g.add_edge(n.parent.map_or(root, |p| ids[p]), ids[n.index], "");
    }
    format!("{}", Dot::with_config(&g, &[Config::EdgeNoLabel]))
}
