//! The verification walk (docs/THEORY.md section 1): from the root, follow the
//! child carrying the verifier's token while one exists; the first token
//! without one is the bonus token. [`Accepted`] holds the result.

use super::VerifierInputs;
use crate::dist::{TokenDist, TokenId, SUM_TOLERANCE};
use crate::error::{Error, Result};
use crate::tree::walk;

impl VerifierInputs {
    /// Children sorted by token (CSR), for O(log b) look-ups in the walk;
    /// refuses two siblings with one token. O(P log b).
    ///
    /// A counting sort by parent (children land in arena order), then each
    /// group is sorted by token unless every group already is.
    #[inline(never)] // see fill_inner
    pub(super) fn index_children(&mut self) -> Result<()> {
        let n = self.num_positions();
        // Counts at `p + 2`, so that after the prefix sum `child_start[p + 1]`
        // is group p's start, the scatter's cursor; the scatter leaves it at
        // group p's end, which is group p + 1's start.
        self.child_start.clear();
        self.child_start.resize(n + 2, 0);
        for &p in &self.parents[1..] {
            self.child_start[p as usize + 2] += 1;
        }
        for j in 2..n + 2 {
            self.child_start[j] += self.child_start[j - 1];
        }
        // Keeps the old entries: each is overwritten by the scatter.
        self.child_by_token.resize(n - 1, (0, 0));
        self.child_by_token.truncate(n - 1);
        for (j, (&p, &token)) in self.parents.iter().zip(&self.tokens).enumerate().skip(1) {
            let at = &mut self.child_start[p as usize + 1];
            self.child_by_token[*at as usize] = (token, j as u32);
            *at += 1;
        }
        self.child_start.truncate(n + 1);
        // One pass over neighbours: two of them share a group iff they share
        // a parent. A builder's tree lists children by rank, which for most
        // drafters is token order, so this usually ends the work.
        let parents = &self.parents;
        let sorted = self
            .child_by_token
            .windows(2)
            .all(|w| w[0].0 < w[1].0 || parents[w[0].1 as usize] != parents[w[1].1 as usize]);
        if sorted {
            return Ok(());
        }
        for p in 0..n {
            let group = &mut self.child_by_token
                [self.child_start[p] as usize..self.child_start[p + 1] as usize];
            if group.windows(2).all(|w| w[0].0 < w[1].0) {
                continue;
            }
            group.sort_unstable();
            if let Some(w) = group.windows(2).find(|w| w[0].0 == w[1].0) {
                return Err(Error::InvalidTree {
                    node: w[1].1 as usize - 1,
                    reason: format!("token {} repeats among its siblings", w[1].0),
                });
            }
        }
        Ok(())
    }

    /// The child of tree position `j` carrying `token`. O(log b).
    #[inline]
    fn child_with_token(&self, j: usize, token: TokenId) -> Option<usize> {
        let group =
            &self.child_by_token[self.child_start[j] as usize..self.child_start[j + 1] as usize];
        group
            .binary_search_by_key(&token, |&(t, _)| t)
            .ok()
            .map(|k| group[k].1 as usize)
    }

    /// The verification walk with the verifier's token at each tree
    /// position supplied on demand: `token_at(j)` is the verifier's token
    /// after tree position `j` (its argmax, or a sample from its
    /// distribution there). Starting at the root, descend into the child
    /// carrying that token while one exists; the first token with no such
    /// child is the bonus token (docs/THEORY.md section 1). `token_at` is called
    /// once per visited position, so a server may sample lazily.
    ///
    /// Runs the crate's one walk ([`crate::walk`]) with the children
    /// found through the sorted CSR index. Time O(X log b) for `X` accepted
    /// tokens and largest branching `b`; no allocation once `out` has room.
    ///
    /// # Errors
    ///
    /// Whatever `token_at` returns; [`Error::InvalidArgument`] before any fill.
    ///
    /// # Examples
    ///
    /// ```
    /// use speclight::{serve::{Accepted, VerifierInputs}, DraftTree};
    /// let mut t = DraftTree::new();
    /// t.push(None, 5, -0.1)?;
    /// let mut inputs = VerifierInputs::new();
    /// inputs.fill(&t, 3, 0)?;
    /// let mut out = Accepted::new();
    /// inputs.walk_with(|j| Ok(if j == 0 { 5 } else { 6 }), &mut out)?;
    /// assert_eq!((out.tokens(), out.bonus()), (&[5][..], 6));
    /// # Ok::<(), speclight::Error>(())
    /// ```
    pub fn walk_with<F>(&self, mut token_at: F, out: &mut Accepted) -> Result<()>
    where
        F: FnMut(usize) -> Result<TokenId>,
    {
        out.clear();
        if self.num_positions() == 0 {
            return Err(Error::InvalidArgument(
                "verifier inputs are empty: call fill first".into(),
            ));
        }
        // The shared walk names nodes by arena index (`None` = root); tree
        // position `j` is node `j - 1`, so map both ways around the CSR index.
        let position = |at: Option<usize>| at.map_or(0, |node| node + 1);
        let nodes = &mut out.nodes;
        let end = walk(
            |at, y| {
                let node = self.child_with_token(position(at), y)? - 1;
                nodes.push(node);
                Some(node)
            },
            |at, _| token_at(position(at)).map(Some),
            &mut out.tokens,
        )?;
        // `token_at` always names a token, so the walk always ends on one.
        out.bonus = end.bonus.unwrap_or_default();
        Ok(())
    }

    /// The verification walk from the verifier's chosen token at every tree
    /// position (`chosen[j]` = its argmax or sample after position `j`):
    /// accepts exactly the longest draft path that matches. O(X log b).
    ///
    /// # Errors
    ///
    /// [`Error::InputLength`] unless `chosen.len() == P + 1`.
    pub fn walk_chosen(&self, chosen: &[TokenId], out: &mut Accepted) -> Result<()> {
        self.check_len("verifier token slice", chosen.len())?;
        self.walk_with(|j| Ok(chosen[j]), out)
    }

    /// The lossless sampling walk of docs/THEORY.md section 1: at each visited
    /// position `j` draw `y ~ dists[j]` (the verifier's distribution after
    /// that position) with `rng`, descend while `y` is a child's token. The
    /// emitted text is distributed exactly as sampling from the verifier.
    /// O(X (log b + k)) for distributions of `k` tokens.
    ///
    /// # Errors
    ///
    /// [`Error::InputLength`] unless `dists.len() == P + 1`;
    /// [`Error::SumBelowOne`] if a visited distribution is not complete (a
    /// draw in its unlisted tail would leave the bonus token unknown).
    ///
    /// # Examples
    ///
    /// ```
    /// use rand::{rngs::StdRng, SeedableRng};
    /// use speclight::{serve::{Accepted, VerifierInputs}, DraftTree, TokenDist};
    /// let mut t = DraftTree::new();
    /// t.push(None, 1, -0.1)?;
    /// let mut inputs = VerifierInputs::new();
    /// inputs.fill(&t, 3, 0)?;
    /// let sure = TokenDist::from_probs(&[0.0, 1.0])?; // always token 1
    /// let mut out = Accepted::new();
    /// inputs.walk_sampled(&[sure.clone(), sure], &mut StdRng::seed_from_u64(7), &mut out)?;
    /// assert_eq!((out.tokens(), out.bonus()), (&[1][..], 1));
    /// # Ok::<(), speclight::Error>(())
    /// ```
    pub fn walk_sampled<R: rand::Rng + ?Sized>(
        &self,
        dists: &[TokenDist],
        rng: &mut R,
        out: &mut Accepted,
    ) -> Result<()> {
        self.check_len("verifier distribution slice", dists.len())?;
        self.walk_with(
            |j| {
                let d = &dists[j];
                if !d.is_complete() {
                    return Err(Error::SumBelowOne {
                        sum: d.listed_mass(),
                        tolerance: SUM_TOLERANCE,
                    });
                }
                d.sample(rng).ok_or(Error::SumBelowOne {
                    sum: d.listed_mass(),
                    tolerance: SUM_TOLERANCE,
                })
            },
            out,
        )
    }
}

/// The result of a verification walk, in reusable buffers.
///
/// # Examples
///
/// ```
/// let out = speclight::serve::Accepted::new();
/// assert_eq!(out.len(), 0);
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Accepted {
    nodes: Vec<usize>,
    tokens: Vec<TokenId>,
    bonus: TokenId,
}

impl Accepted {
    /// Empty buffers.
    pub fn new() -> Self {
        Self::default()
    }

    pub(super) fn clear(&mut self) {
        self.nodes.clear();
        self.tokens.clear();
        self.bonus = 0;
    }

    /// Number of accepted draft tokens, `X`.
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// Whether no draft token was accepted.
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// Accepted nodes as [`DraftTree`](crate::DraftTree) arena indices, root's child first.
    pub fn nodes(&self) -> &[usize] {
        &self.nodes
    }

    /// Tree positions of the root and the accepted nodes (`0, i1 + 1, ...`):
    /// the KV-cache rows to keep.
    pub fn tree_positions(&self) -> impl Iterator<Item = usize> + '_ {
        std::iter::once(0).chain(self.nodes.iter().map(|&i| i + 1))
    }

    /// Accepted draft tokens, in order.
    pub fn tokens(&self) -> &[TokenId] {
        &self.tokens
    }

    /// The verifier's bonus token after the accepted path.
    pub fn bonus(&self) -> TokenId {
        self.bonus
    }

    /// All `X + 1` tokens the pass emits: the accepted drafts, then the bonus.
    pub fn emitted(&self) -> impl Iterator<Item = TokenId> + '_ {
        self.tokens
            .iter()
            .copied()
            .chain(std::iter::once(self.bonus))
    }
}
