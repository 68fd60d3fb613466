//! Tree interchange formats. JSON (this schema is also what
//! `speclight build --format json` prints and `speclight eval --tree` reads):
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
//!
//! # Rank paths (Medusa, vLLM)
//!
//! Static-tree servers name a node by its *rank path*: the child ranks from
//! the root down, rank 0 being the drafter's most probable candidate at that
//! node. Medusa's `medusa_choices` is a list of them, `[[0], [1], [0, 0]]`
//! ([`parse_medusa_choices`], [`medusa_choices_string`], JSON through
//! serde_json); vLLM's `speculative_token_tree` is the string of a Python
//! list of tuples, `[(0,), (1,), (0, 0)]`, sorted breadth-first by
//! `(length, path)` ([`parse_vllm_tree`], [`vllm_tree_string`]). Both servers
//! put the root at row 0 of their tree mask and the nodes after it in this
//! breadth-first order, as [`crate::serve::VerifierInputs`] does. vLLM's
//! EAGLE proposer drafts only trees whose branching is fixed per level
//! exactly as written: check with [`is_level_uniform`].
//!
//! A tree read from rank paths ([`from_rank_paths`]) has token = rank and no
//! drafter probabilities ([`DraftTree::set_no_draft_probs`]). That is exactly
//! the tree of a [`crate::Positional`] model, where a token *is* a rank, so a
//! static tree built best-first over a `Positional` model converts with
//! [`RankRule::TokenIsRank`]. A tree over real token ids converts with
//! [`RankRule::DraftOrder`]: a node's rank is its place among its siblings
//! ordered by drafter probability, descending, ties by token id ascending
//! (the order of [`crate::TokenDist`]). For a best-first tree that is the
//! node's rank in its parent's draft distribution, because best-first adds a
//! node's children in that order, without gaps (THEORY.md section 3).

use crate::error::{Error, Result};
use crate::tree::DraftTree;
use crate::TokenId;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

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
        let doc: TreeJson =
            serde_json::from_str(text).map_err(|e| Error::Parse(format!("tree json: {e}")))?;
        doc.to_tree()
    }
}

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
/// O(P log P + sum of depths).
///
/// # Errors
///
/// [`Error::InvalidTree`] if the tree is not valid ([`DraftTree::validate`]).
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
    let rank: Vec<u32> = match rule {
        RankRule::TokenIsRank => tree.tokens().to_vec(),
        RankRule::DraftOrder => {
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
    let mut sorted = paths.to_vec();
    sort_breadth_first(&mut sorted);
    // Children count per parent path, and the expected count per level.
    let mut kids: HashMap<&[u32], u32> = HashMap::new();
    for p in &sorted {
        if let Some((&rank, parent)) = p.split_last() {
            let count = kids.entry(parent).or_insert(0);
            if rank != *count {
                return false; // ranks must be 0, 1, ... without gaps
            }
            *count += 1;
        }
    }
    let max_len = sorted.last().map_or(0, Vec::len);
    let mut per_level: Vec<Option<u32>> = vec![None; max_len + 1];
    let parents = std::iter::once(&[][..]).chain(sorted.iter().map(Vec::as_slice));
    for parent in parents {
        if parent.len() >= max_len {
            continue;
        }
        let k = kids.get(parent).copied().unwrap_or(0);
        match per_level[parent.len()] {
            None => per_level[parent.len()] = Some(k),
            Some(want) if want != k => return false,
            Some(_) => {}
        }
    }
    true
}

/// Parses Medusa's `medusa_choices`, a JSON list of rank paths such as
/// `[[0], [1], [0, 0]]` (serde_json). The paths are returned as given; pass
/// them to [`from_rank_paths`] for the tree and its checks.
///
/// # Errors
///
/// [`Error::Parse`] for anything that is not a JSON list of lists of
/// non-negative integers below 2^32.
///
/// # Examples
///
/// ```
/// let paths = speclight::format::parse_medusa_choices("[[0], [1], [0, 0]]")?;
/// assert_eq!(paths, vec![vec![0], vec![1], vec![0, 0]]);
/// # Ok::<(), speclight::Error>(())
/// ```
pub fn parse_medusa_choices(text: &str) -> Result<Vec<Vec<u32>>> {
    serde_json::from_str(text).map_err(|e| Error::Parse(format!("medusa choices: {e}")))
}

/// Medusa's `medusa_choices` for `paths`, breadth-first, as compact JSON
/// (`[[0],[1],[0,0]]`), which is also a Python list literal.
///
/// # Examples
///
/// ```
/// let text = speclight::format::medusa_choices_string(&[vec![0, 0], vec![0]]);
/// assert_eq!(text, "[[0],[0,0]]");
/// ```
pub fn medusa_choices_string(paths: &[Vec<u32>]) -> String {
    let mut sorted = paths.to_vec();
    sort_breadth_first(&mut sorted);
    // Serialising a Vec<Vec<u32>> cannot fail.
    serde_json::to_string(&sorted).unwrap_or_default()
}

/// vLLM's `speculative_token_tree` for `paths`: exactly what vLLM itself
/// normalises the option to, `str(sorted(tree, key=lambda t: (len(t), t)))`,
/// e.g. `[(0,), (1,), (0, 0)]` (a one-element tuple keeps its comma).
///
/// # Examples
///
/// ```
/// let s = speclight::format::vllm_tree_string(&[vec![0, 0], vec![1], vec![0]]);
/// assert_eq!(s, "[(0,), (1,), (0, 0)]");
/// ```
pub fn vllm_tree_string(paths: &[Vec<u32>]) -> String {
    let mut sorted = paths.to_vec();
    sort_breadth_first(&mut sorted);
    let tuples: Vec<String> = sorted
        .iter()
        .map(|p| match p.as_slice() {
            [one] => format!("({one},)"),
            _ => {
                let items: Vec<String> = p.iter().map(u32::to_string).collect();
                format!("({})", items.join(", "))
            }
        })
        .collect();
    format!("[{}]", tuples.join(", "))
}

/// Parses vLLM's `speculative_token_tree`: the Python literal vLLM reads
/// with `ast.literal_eval`, a list (or tuple) of tuples of rank integers.
/// Accepted as Python accepts it: any whitespace (spaces, tabs, newlines)
/// between tokens, `#` comments, trailing commas in the list and in tuples,
/// one-element tuples written `(0,)`, integers with `_` separators and
/// `0x`/`0o`/`0b` prefixes, and lists in place of tuples (`[[0], [1]]`, as
/// vLLM then works on lists) as long as all paths use the same kind. The
/// order is kept; [`from_rank_paths`] sorts.
///
/// No Rust crate parses Python literals without a full Python parser, and
/// this grammar is a few productions, so it is parsed here directly.
///
/// # Errors
///
/// [`Error::Parse`] naming the byte offset, including for `(0)` (the integer
/// 0 in Python, not a tuple: vLLM would fail on it) and negative ranks.
///
/// # Examples
///
/// ```
/// use speclight::format::parse_vllm_tree;
/// assert_eq!(parse_vllm_tree("[(0,), (1,), (0, 0)]")?, vec![vec![0], vec![1], vec![0, 0]]);
/// assert_eq!(parse_vllm_tree(" [ (0 , ) ,\n (0,1,), ] ")?, vec![vec![0], vec![0, 1]]);
/// assert!(parse_vllm_tree("[(0)]").is_err());
/// # Ok::<(), speclight::Error>(())
/// ```
pub fn parse_vllm_tree(text: &str) -> Result<Vec<Vec<u32>>> {
    let mut p = PyLiteral {
        text: text.as_bytes(),
        at: 0,
    };
    let paths = p.outer()?;
    if p.peek().is_some() {
        return Err(p.error("unexpected text after the tree"));
    }
    Ok(paths)
}

/// A cursor over the Python-literal subset of [`parse_vllm_tree`].
struct PyLiteral<'a> {
    text: &'a [u8],
    at: usize,
}

/// Which bracket kind a path used, so that lists and tuples are not mixed
/// (Python's `list.index` would then not find a tuple's parent).
#[derive(Clone, Copy, PartialEq, Eq)]
enum PathKind {
    Tuple,
    List,
}

impl PyLiteral<'_> {
    fn error(&self, why: &str) -> Error {
        Error::Parse(format!("vllm token tree at byte {}: {why}", self.at))
    }

    /// The next significant byte, skipping whitespace and comments.
    fn peek(&mut self) -> Option<u8> {
        loop {
            match self.text.get(self.at) {
                Some(b' ' | b'\t' | b'\r' | b'\n' | b'\x0c') => self.at += 1,
                Some(b'#') => {
                    while self.text.get(self.at).is_some_and(|&c| c != b'\n') {
                        self.at += 1;
                    }
                }
                other => return other.copied(),
            }
        }
    }

    /// Consumes `c` if it is next.
    fn eat(&mut self, c: u8) -> bool {
        if self.peek() == Some(c) {
            self.at += 1;
            true
        } else {
            false
        }
    }

    fn outer(&mut self) -> Result<Vec<Vec<u32>>> {
        let close = match self.peek() {
            Some(b'[') => b']',
            Some(b'(') => b')',
            _ => return Err(self.error("expected '[' opening a list of tuples")),
        };
        self.at += 1;
        let mut paths = Vec::new();
        let mut kind = None;
        let mut commas = 0;
        loop {
            if self.eat(close) {
                break;
            }
            let (path, k) = self.path()?;
            if kind.is_some_and(|prev| prev != k) {
                return Err(self.error("tuples and lists are mixed; use tuples throughout"));
            }
            kind = Some(k);
            paths.push(path);
            if self.eat(b',') {
                commas += 1;
            } else if self.eat(close) {
                break;
            } else {
                return Err(self.error("expected ',' or the closing bracket"));
            }
        }
        if close == b')' && paths.len() == 1 && commas == 0 {
            // `((0,))` is the tuple (0,) in parentheses, not a tree.
            return Err(self.error("a parenthesised tuple of integers is not a list of tuples"));
        }
        Ok(paths)
    }

    fn path(&mut self) -> Result<(Vec<u32>, PathKind)> {
        let (close, kind) = match self.peek() {
            Some(b'(') => (b')', PathKind::Tuple),
            Some(b'[') => (b']', PathKind::List),
            _ => return Err(self.error("expected '(' opening a rank tuple")),
        };
        self.at += 1;
        let mut path = Vec::new();
        let mut commas = 0;
        loop {
            if self.eat(close) {
                break;
            }
            path.push(self.rank()?);
            if self.eat(b',') {
                commas += 1;
            } else if self.eat(close) {
                break;
            } else {
                return Err(self.error("expected ',' or the closing bracket of a rank tuple"));
            }
        }
        if kind == PathKind::Tuple && path.len() == 1 && commas == 0 {
            return Err(self.error(&format!(
                "({0}) is the integer {0} in Python, not a tuple; write ({0},)",
                path[0]
            )));
        }
        Ok((path, kind))
    }

    fn rank(&mut self) -> Result<u32> {
        if self.eat(b'-') {
            return Err(self.error("a rank cannot be negative"));
        }
        self.eat(b'+'); // Python allows a unary plus, even followed by spaces
        let begin = match self.peek() {
            Some(c) if c.is_ascii_digit() => self.at,
            _ => return Err(self.error("expected a rank (a non-negative integer)")),
        };
        while self
            .text
            .get(self.at)
            .is_some_and(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.'))
        {
            self.at += 1;
        }
        // ASCII alphanumerics only, so always UTF-8.
        let word = std::str::from_utf8(&self.text[begin..self.at]).unwrap_or("");
        parse_python_int(word).ok_or_else(|| {
            Error::Parse(format!(
                "vllm token tree at byte {begin}: {word:?} is not a rank below 2^32"
            ))
        })
    }
}

/// A Python integer literal (decimal without leading zeros, `_` between
/// digits, `0x`/`0o`/`0b` prefixes) that fits in `u32`.
fn parse_python_int(word: &str) -> Option<u32> {
    let lower = word.to_ascii_lowercase();
    let (digits, radix) = match lower.get(..2) {
        Some("0x") => (&lower[2..], 16),
        Some("0o") => (&lower[2..], 8),
        Some("0b") => (&lower[2..], 2),
        _ => (lower.as_str(), 10),
    };
    let digits = digits
        .strip_prefix('_')
        .filter(|_| radix != 10)
        .unwrap_or(digits);
    if digits.is_empty()
        || digits.starts_with('_')
        || digits.ends_with('_')
        || digits.contains("__")
    {
        return None;
    }
    let clean: String = digits.chars().filter(|&c| c != '_').collect();
    if radix == 10 && clean.len() > 1 && clean.starts_with('0') && clean.bytes().any(|b| b != b'0')
    {
        return None; // `01` is a syntax error in Python 3
    }
    u32::from_str_radix(&clean, radix).ok()
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

    use crate::{evaluate, Positional};
    use proptest::prelude::*;
    use rand::{rngs::StdRng, Rng, SeedableRng};

    /// Random prefix-closed rank paths: each new path extends a listed one (or
    /// the root) by a rank below `limit` not yet used there.
    fn random_rank_paths(seed: u64, n: usize, limit: u32) -> Vec<Vec<u32>> {
        let mut rng = StdRng::seed_from_u64(seed);
        let mut paths: Vec<Vec<u32>> = Vec::new();
        let mut tries = 0;
        while paths.len() < n && tries < 100 * (n + 1) {
            tries += 1;
            let at = rng.random_range(0..=paths.len());
            let mut p = if at == 0 {
                Vec::new()
            } else {
                paths[at - 1].clone()
            };
            p.push(rng.random_range(0..limit));
            if !paths.contains(&p) {
                paths.push(p);
            }
        }
        paths
    }

    fn sorted(mut paths: Vec<Vec<u32>>) -> Vec<Vec<u32>> {
        sort_breadth_first(&mut paths);
        paths
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        #[test]
        fn rank_paths_round_trip_through_every_format(seed in 0u64..1_000_000, n in 0usize..60, limit in 1u32..6) {
            let paths = random_rank_paths(seed, n, limit);
            let want = sorted(paths.clone());
            // vLLM string and Medusa JSON.
            prop_assert_eq!(sorted(parse_vllm_tree(&vllm_tree_string(&paths)).unwrap()), want.clone());
            prop_assert_eq!(parse_vllm_tree(&vllm_tree_string(&paths)).unwrap(), want.clone());
            prop_assert_eq!(parse_medusa_choices(&medusa_choices_string(&paths)).unwrap(), want.clone());
            // Tree and back.
            let tree = from_rank_paths(&paths, Some(limit as usize)).unwrap();
            tree.validate().unwrap();
            prop_assert_eq!(tree.len(), paths.len());
            prop_assert_eq!(to_rank_paths(&tree, RankRule::TokenIsRank).unwrap(), want.clone());
            // JSON of the tree and back.
            let text = serde_json::to_string(&TreeJson::from_tree(&tree, None, None)).unwrap();
            let back = TreeJson::parse_tree(&text).unwrap();
            prop_assert_eq!(back.tokens(), tree.tokens());
            prop_assert_eq!(back.parent_indices(), tree.parent_indices());
            // (An empty tree has vacuously "all" draft probabilities in JSON.)
            prop_assert!(tree.is_empty() || !back.has_draft_probs());
            // DOT is export only: one node per draft token plus the root, one edge each.
            let dot = to_dot(&tree);
            prop_assert_eq!(dot.matches("->").count(), tree.len());
            prop_assert_eq!(dot.matches("label = \"token").count(), tree.len());
        }

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

        /// The issue's check: a static tree best-first over a Positional model,
        /// written as a vLLM string and read back, has the value OPT(n).
        #[test]
        fn vllm_string_from_best_first_keeps_its_value(seed in 0u64..1_000_000, n in 1usize..200) {
            let mut rng = StdRng::seed_from_u64(seed);
            let k = rng.random_range(1..6usize);
            let mut a: Vec<f64> = (0..k).map(|_| rng.random_range(0.01..1.0)).collect();
            let total: f64 = a.iter().sum::<f64>() / rng.random_range(0.3..1.0);
            a.iter_mut().for_each(|x| *x /= total);
            a.sort_by(|x, y| y.total_cmp(x));
            let mut model = Positional::new(&a).unwrap();
            let mut builder = TreeBuilder::new(n).unwrap();
            let tree = builder.build_owned(&mut model).unwrap();
            let opt = builder.opt_curve()[tree.len() - 1];
            let text = vllm_tree_string(&to_rank_paths(&tree, RankRule::TokenIsRank).unwrap());
            let read = from_rank_paths(&parse_vllm_tree(&text).unwrap(), Some(k)).unwrap();
            prop_assert_eq!(read.len(), tree.len());
            let value = evaluate(&read, &mut model).unwrap().expected_accepted;
            prop_assert!((value - opt).abs() < 1e-9 * opt.max(1.0), "value {} vs OPT {}", value, opt);
            // DraftOrder ranks agree with token = rank for a positional tree.
            prop_assert_eq!(
                to_rank_paths(&tree, RankRule::DraftOrder).unwrap(),
                to_rank_paths(&tree, RankRule::TokenIsRank).unwrap()
            );
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
    fn vllm_parser_accepts_python_spellings() {
        let want = vec![vec![0], vec![1], vec![0, 0]];
        for text in [
            "[(0,), (1,), (0, 0)]",
            "[(0,),(1,),(0,0)]",
            "[(0,), (1,), (0, 0),]",
            "[(0,), (1,), (0, 0,)]",
            "  [\n  (0,),  # first\n\t(1,),\n  (0, 0)\n]\n",
            "((0,), (1,), (0, 0))",
            "[[0], [1], [0, 0]]",
            "[(0x0,), (0b1,), (+0, 0_0)]",
        ] {
            assert_eq!(parse_vllm_tree(text).unwrap(), want, "{text:?}");
        }
        assert_eq!(parse_vllm_tree("[]").unwrap(), Vec::<Vec<u32>>::new());
        assert_eq!(parse_vllm_tree("[(10, 2)]").unwrap(), vec![vec![10, 2]]);
    }

    #[test]
    fn vllm_parser_rejects_what_python_or_vllm_rejects() {
        for (text, needle) in [
            ("[(0)]", "is the integer 0"),
            ("[(0,), [1]]", "mixed"),
            ("[(-1,)]", "negative"),
            ("[(01,)]", "not a rank"),
            ("[(4294967296,)]", "not a rank"),
            ("[(0,) (1,)]", "expected ','"),
            ("[(0,)", "expected"),
            ("[(0,)] x", "after the tree"),
            ("((0,))", "parenthesised"),
            ("[(0.5,)]", "not a rank"),
            ("[(a,)]", "expected a rank"),
            ("", "expected '['"),
        ] {
            let err = parse_vllm_tree(text).unwrap_err();
            assert!(
                matches!(&err, Error::Parse(m) if m.contains(needle)),
                "{text:?}: {err}"
            );
        }
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
        assert!(matches!(
            parse_medusa_choices("[[0], [-1]]"),
            Err(Error::Parse(_))
        ));
        let msg = from_rank_paths(&[vec![2, 1]], None)
            .unwrap_err()
            .to_string();
        assert_eq!(msg, "rank path [2, 1] has no parent path [2] in the list");
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
