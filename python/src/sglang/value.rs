//! A request's candidate tree as a [`NextTokenModel`] whose probabilities are
//! the drafter's (a child's score over its parent's), so that the crate's
//! batch allocator can split a token budget among requests and its
//! evaluator can give the exact `E[X]` of a selected tree.

use speclight::capacity::{BatchAllocator, RequestLimits};
use speclight::{DraftTree, Error, Evaluator, NextTokenModel, Result, TokenDist, TokenId};

use super::candidates::Candidates;

/// Scores below this count as 0 for the allocator and the evaluator: every
/// real candidate must rank before [`LEAF_LOGPROB`]'s placeholder (SGLang's
/// `float32` scores are 0 or above `1.4e-45`).
pub const MIN_SCORE: f64 = 1e-300;

/// The placeholder child of a node with no candidate child: the crate's
/// distributions cannot be empty, so a leaf gets one token of probability
/// `e^-744` (the smallest positive `f64` order), which ranks below every
/// candidate of score >= [`MIN_SCORE`]; callers cap each request at its
/// real candidates, so no placeholder is ever chosen.
const LEAF_LOGPROB: f64 = -744.0;
const LEAF_TOKEN: TokenId = TokenId::MAX;

/// Node 0 is the root, node `j + 1` candidate `j`; a child's token is its
/// rank among its parent's children (ascending candidate index).
pub struct CandidateModel {
    children: Vec<Vec<usize>>,
    dists: Vec<TokenDist>,
    /// Candidates with a score of at least [`MIN_SCORE`].
    real: usize,
}

impl CandidateModel {
    /// O(G) distributions of O(topk) tokens each.
    pub fn new(c: &Candidates) -> Result<Self> {
        let n = c.score.len();
        let mut children = vec![Vec::new(); n + 1];
        for (j, p) in c.parent.iter().enumerate() {
            children[p.map_or(0, |p| p + 1)].push(j);
        }
        let dists = children
            .iter()
            .enumerate()
            .map(|(node, kids)| {
                let above = if node == 0 { 1.0 } else { c.score[node - 1] };
                node_dist(kids, &c.score, above)
            })
            .collect::<Result<_>>()?;
        let real = c.score.iter().filter(|&&s| s >= MIN_SCORE).count();
        Ok(Self {
            children,
            dists,
            real,
        })
    }

    /// Candidates a request can be given (score >= [`MIN_SCORE`]).
    pub fn real(&self) -> usize {
        self.real
    }

    /// Token of candidate `j` under its parent node.
    fn token_of(&self, parent_node: usize, j: usize) -> TokenId {
        let rank = self.children[parent_node].iter().position(|&x| x == j);
        rank.map_or(LEAF_TOKEN, |r| r as TokenId)
    }

    /// The selected candidates (ascending, prefix-closed) as a tree with
    /// this model's tokens. O(m log m).
    pub fn tree(&self, c: &Candidates, selected: &[usize]) -> Result<DraftTree> {
        let mut tree = DraftTree::with_capacity(selected.len());
        for &j in selected {
            let parent = match c.parent[j] {
                None => None,
                Some(p) => Some(selected.binary_search(&p).map_err(|_| {
                    Error::InvalidArgument(format!(
                        "sglang: candidate {j} is selected without its parent {p}"
                    ))
                })?),
            };
            let token = self.token_of(c.parent[j].map_or(0, |p| p + 1), j);
            tree.push(parent, token, c.score[j].ln())?;
        }
        Ok(tree)
    }
}

fn node_dist(kids: &[usize], score: &[f64], above: f64) -> Result<TokenDist> {
    let mut tokens = Vec::with_capacity(kids.len());
    let mut logprobs = Vec::with_capacity(kids.len());
    for (rank, &j) in kids.iter().enumerate() {
        if score[j] >= MIN_SCORE {
            tokens.push(rank as TokenId);
            logprobs.push((score[j].ln() - above.ln()).min(0.0));
        }
    }
    if tokens.is_empty() {
        return TokenDist::from_token_logprobs(&[LEAF_TOKEN], &[LEAF_LOGPROB]);
    }
    TokenDist::from_token_logprobs(&tokens, &logprobs)
}

impl NextTokenModel for CandidateModel {
    /// The node at the end of `path` (ranks), O(depth).
    fn next(&mut self, path: &[TokenId]) -> Result<&TokenDist> {
        let mut node = 0;
        for &t in path {
            node = match self.children[node].get(t as usize) {
                Some(&j) => j + 1,
                None => {
                    return Err(Error::Model(format!(
                        "sglang: no candidate of rank {t} below node {node}"
                    )))
                }
            };
        }
        Ok(&self.dists[node])
    }
}

/// Draft tokens per request (`num_draft_tokens`, root included) from the
/// crate's batch allocator: the `total - B` tree nodes go to the requests'
/// most probable candidates overall, each request getting between
/// `min_tokens - 1` and `max_tokens - 1` nodes. Where a request has too few
/// candidates of positive score for its minimum, the rest of its minimum is
/// reserved (filled with score-0 candidates, worth nothing). Time as
/// [`BatchAllocator::allocate`]: O(N log N + B log B + expansions log B).
pub fn allocate(
    requests: &[Candidates],
    total: usize,
    min_tokens: usize,
    max_tokens: usize,
) -> Result<Vec<usize>> {
    let b = requests.len();
    let bad = |why: String| Err(Error::InvalidArgument(format!("sglang: {why}")));
    if min_tokens < 2 || max_tokens < min_tokens {
        return bad(format!(
            "min_draft_tokens {min_tokens} must be >= 2 and <= max_draft_tokens {max_tokens}"
        ));
    }
    if total < b.saturating_mul(min_tokens) {
        return bad(format!(
            "total_draft_tokens {total} is below {b} requests x min_draft_tokens {min_tokens}"
        ));
    }
    let mut models = requests
        .iter()
        .map(CandidateModel::new)
        .collect::<Result<Vec<_>>>()?;
    let mut reserved = 0;
    let limits: Vec<RequestLimits> = models
        .iter()
        .map(|m| {
            let cap = (max_tokens - 1).min(m.real());
            let min = (min_tokens - 1).min(cap);
            reserved += min_tokens - 1 - min;
            RequestLimits { min, max: cap }
        })
        .collect();
    let budget = total - b - reserved;
    let mut nodes = vec![0; b];
    if budget > 0 && limits.iter().any(|l| l.max > 0) {
        let mut allocator = BatchAllocator::new(budget)?;
        let allocation = allocator.allocate(&mut models, &limits)?;
        for (n, r) in nodes.iter_mut().zip(&allocation.requests) {
            *n = r.capacity;
        }
    }
    Ok(nodes
        .into_iter()
        .map(|n| n.max(min_tokens - 1) + 1)
        .collect())
}

/// Exact `E[X]` of the tree of `selected` candidates (ascending) when the
/// verifier draws as the drafter scores: the crate's evaluator, O(m depth).
pub fn expected_accepted(c: &Candidates, selected: &[usize]) -> Result<f64> {
    let mut model = CandidateModel::new(c)?;
    let tree = model.tree(c, selected)?;
    Ok(Evaluator::new()
        .evaluate(&tree, &mut model)?
        .expected_accepted)
}
