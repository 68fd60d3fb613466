//! Server integration: the verifier's inputs from a [`DraftTree`], and the
//! verification walk over its outputs (THEORY.md section 1).
//!
//! # Tree positions
//!
//! Every per-position array here has `P + 1` entries for a tree of `P` draft
//! tokens: **tree position 0 is the root** (the last accepted token, which
//! ends the context), and node `i` of the [`DraftTree`] arena is tree position
//! `i + 1`. This is the layout Medusa, EAGLE and SGLang feed their verifier:
//! the root token is verified together with the drafts, because the
//! verifier's output at the root is its next token after the context. A
//! server whose root is already in its KV cache drops row and column 0.
//!
//! For a context of `L` tokens (the root included, at position `L - 1`), the
//! position id of a tree position is `L + depth - 1` (the root has depth 0):
//! RoPE positions follow depth, not the index.
//!
//! # One decoding step
//!
//! ```
//! use speclight::serve::{Accepted, VerifierInputs};
//! use speclight::{Iid, TokenDist, TreeBuilder};
//!
//! // Once per server (or per request): reusable buffers. Steady-state steps allocate nothing.
//! let mut builder = TreeBuilder::new(8)?;
//! let mut inputs = VerifierInputs::new();
//! let mut accepted = Accepted::new();
//!
//! // 1. Draft distributions in: here a drafter whose top-3 after every prefix is
//! //    tokens 17, 4, 99 (a server uses `builder.begin(..)` and batches draft passes).
//! let mut drafter = Iid::new(TokenDist::from_token_probs(&[17, 4, 99], &[0.6, 0.3, 0.1])?);
//! let tree = builder.build(&mut drafter)?;
//!
//! // 2. Verifier inputs out, for a context of 5 tokens that ends in token 42 (the root).
//! inputs.fill(tree, 5, 42)?;
//! let n = inputs.num_positions(); // root + 8 drafts
//! assert_eq!(n, 9);
//! assert_eq!(inputs.tokens()[..2], [42, 17]); // root first, then the drafts in arena order
//! assert_eq!(inputs.positions()[..2], [4, 5]); // L + depth - 1
//! let mut bias = vec![0f32; n * n]; // a server writes straight into its pinned buffer
//! inputs.write_mask_bias_into(&mut bias)?;
//! assert_eq!(bias[1], f32::NEG_INFINITY); // the root does not see node 0
//! assert_eq!(bias[n], 0.0); // node 0 sees the root
//!
//! // 3. Verifier outputs in: its token after every tree position (argmax under
//! //    greedy decoding). This fake verifier says 17 twice, then 5.
//! let chosen: Vec<u32> = inputs.depths().iter().map(|&d| if d < 2 { 17 } else { 5 }).collect();
//! inputs.walk_chosen(&chosen, &mut accepted)?;
//!
//! // 4. Accepted tokens out: two drafts and the verifier's bonus token.
//! assert_eq!(accepted.tokens(), &[17, 17]);
//! assert_eq!(accepted.bonus(), 5);
//! let kept: Vec<usize> = accepted.tree_positions().collect(); // KV-cache rows to keep
//! assert_eq!(kept, vec![0, 1, 2]);
//! # Ok::<(), speclight::Error>(())
//! ```

use crate::dist::{TokenDist, TokenId, SUM_TOLERANCE};
use crate::error::{Error, Result};
use crate::tree::DraftTree;
use ndarray::{Array2, ArrayViewMut2};

/// The index meaning "none": the root's parent, a missing child or sibling,
/// and the padding of retrieve indices.
pub const NONE: i64 = -1;

/// The largest tree [`VerifierInputs::fill`] accepts, 2^14 draft tokens: the
/// attention mask is quadratic (the packed mask of this size is 32 MiB, the
/// `f32` bias 1 GiB), far beyond what a verifier checks in one pass.
pub const MAX_TREE_NODES: usize = 1 << 14;

/// Parent value of a child of the root in [`DraftTree::parent_indices`].
const TREE_ROOT: u32 = u32::MAX;

/// Everything a tree-attention verifier consumes for one tree, in reusable
/// buffers. [`VerifierInputs::fill`] overwrites them in place, so a server
/// that keeps one per request allocates nothing once its trees stop growing.
///
/// All arrays are over the `P + 1` tree positions, root first (see the
/// [module docs](self)). Time and space of a fill are
/// O(P * (P + 1) / 64) for the packed mask plus O(P log b) for the rest
/// (`b` the largest branching), and O(leaves * depth) for retrieve indices.
///
/// # Examples
///
/// ```
/// use speclight::{serve::VerifierInputs, DraftTree};
/// let mut t = DraftTree::new();
/// let a = t.push(None, 7, -0.1)?;
/// t.push(Some(a), 8, -0.2)?;
/// t.push(None, 9, -0.5)?;
/// let mut inputs = VerifierInputs::new();
/// inputs.fill(&t, 10, 1)?;
/// assert_eq!(inputs.tokens(), &[1, 7, 8, 9]);
/// assert_eq!(inputs.positions(), &[9, 10, 11, 10]);
/// assert_eq!(inputs.parents(), &[-1, 0, 1, 0]);
/// assert_eq!(inputs.retrieve_shape(), (2, 3));
/// assert_eq!(inputs.retrieve_indices(), &[0, 1, 2, 0, 3, -1]);
/// assert_eq!(inputs.first_child(), &[1, 2, -1, -1]);
/// assert_eq!(inputs.next_sibling(), &[-1, 3, -1, -1]);
/// assert!(inputs.is_visible(2, 1) && !inputs.is_visible(3, 1));
/// # Ok::<(), speclight::Error>(())
/// ```
#[derive(Debug, Clone, Default)]
pub struct VerifierInputs {
    tokens: Vec<TokenId>,
    positions: Vec<i64>,
    parents: Vec<i64>,
    depths: Vec<u32>,
    words_per_row: usize,
    mask_words: Vec<u64>,
    retrieve: Vec<i64>,
    retrieve_cols: usize,
    first_child: Vec<i64>,
    next_sibling: Vec<i64>,
    /// Children of each tree position sorted by token (CSR), for the walk:
    /// `child_by_token[child_start[j]..child_start[j + 1]]`.
    child_start: Vec<u32>,
    child_by_token: Vec<(TokenId, u32)>,
}

impl VerifierInputs {
    /// Empty buffers; call [`VerifierInputs::fill`].
    pub fn new() -> Self {
        Self::default()
    }

    /// Recomputes every input for `tree` below a context of `context_len`
    /// tokens ending in `root_token`. Reuses the buffers.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArgument`] if `context_len` is 0 (the root is the
    /// context's last token) or a position id overflows `i64`;
    /// [`Error::CapacityTooLarge`] for a tree above [`MAX_TREE_NODES`];
    /// [`Error::InvalidTree`] if two siblings carry the same token (the walk
    /// would be ambiguous). Nothing is half-written in a way later calls
    /// could mistake for a valid fill: on error the buffers are emptied.
    pub fn fill(
        &mut self,
        tree: &DraftTree,
        context_len: usize,
        root_token: TokenId,
    ) -> Result<()> {
        let result = self.fill_inner(tree, context_len, root_token);
        if result.is_err() {
            self.clear();
        }
        result
    }

    fn clear(&mut self) {
        self.tokens.clear();
        self.positions.clear();
        self.parents.clear();
        self.depths.clear();
        self.mask_words.clear();
        self.words_per_row = 0;
        self.retrieve.clear();
        self.retrieve_cols = 0;
        self.first_child.clear();
        self.next_sibling.clear();
        self.child_start.clear();
        self.child_by_token.clear();
    }

    fn fill_inner(&mut self, tree: &DraftTree, context_len: usize, root: TokenId) -> Result<()> {
        let base = context_len
            .checked_sub(1)
            .and_then(|b| i64::try_from(b).ok())
            .ok_or_else(|| {
                Error::InvalidArgument(format!(
                    "context length {context_len} must be at least 1 (the root is its last token) and fit in i64"
                ))
            })?;
        if tree.len() > MAX_TREE_NODES {
            return Err(Error::CapacityTooLarge {
                capacity: tree.len(),
                max: MAX_TREE_NODES,
            });
        }
        let n = tree.len() + 1;
        // Tree position of node i's parent.
        let parent_pos = |p: u32| if p == TREE_ROOT { 0 } else { p as usize + 1 };

        self.tokens.clear();
        self.tokens.push(root);
        self.tokens.extend_from_slice(tree.tokens());
        self.depths.clear();
        self.depths.push(0);
        self.depths.extend_from_slice(tree.depths());
        self.positions.clear();
        for &d in &self.depths {
            let pos = base.checked_add(i64::from(d)).ok_or_else(|| {
                Error::InvalidArgument(format!(
                    "position id {base} + {d} overflows i64 (context length {context_len})"
                ))
            })?;
            self.positions.push(pos);
        }
        self.parents.clear();
        self.parents.push(NONE);
        self.parents
            .extend(tree.parent_indices().iter().map(|&p| parent_pos(p) as i64));

        // Packed mask: row j = row(parent) | bit j; parents come first.
        let wpr = n.div_ceil(64);
        self.words_per_row = wpr;
        self.mask_words.clear();
        self.mask_words.resize(n * wpr, 0);
        self.mask_words[0] = 1;
        for j in 1..n {
            let p = self.parents[j] as usize;
            self.mask_words.copy_within(p * wpr..(p + 1) * wpr, j * wpr);
            self.mask_words[j * wpr + j / 64] |= 1 << (j % 64);
        }

        // First child / next sibling in arena order: prepend while scanning backwards.
        self.first_child.clear();
        self.first_child.resize(n, NONE);
        self.next_sibling.clear();
        self.next_sibling.resize(n, NONE);
        for j in (1..n).rev() {
            let p = self.parents[j] as usize;
            self.next_sibling[j] = self.first_child[p];
            self.first_child[p] = j as i64;
        }

        // Retrieve indices: one row per leaf (tree-position order), root first.
        let cols = tree.max_depth() as usize + 1;
        self.retrieve_cols = cols;
        self.retrieve.clear();
        for leaf in (0..n).filter(|&j| self.first_child[j] == NONE) {
            let start = self.retrieve.len();
            self.retrieve.resize(start + cols, NONE);
            let mut j = leaf;
            loop {
                self.retrieve[start + self.depths[j] as usize] = j as i64;
                if j == 0 {
                    break;
                }
                j = self.parents[j] as usize;
            }
        }

        // Children sorted by token, for O(log b) look-ups in the walk.
        self.child_start.clear();
        self.child_start.resize(n + 1, 0);
        for j in 1..n {
            self.child_start[self.parents[j] as usize + 1] += 1;
        }
        for j in 0..n {
            self.child_start[j + 1] += self.child_start[j];
        }
        self.child_by_token.clear();
        self.child_by_token.resize(n - 1, (0, 0));
        // Fill each group from its end using first_child/next_sibling order.
        for p in 0..n {
            let mut at = self.child_start[p] as usize;
            let mut c = self.first_child[p];
            while c != NONE {
                self.child_by_token[at] = (self.tokens[c as usize], c as u32);
                at += 1;
                c = self.next_sibling[c as usize];
            }
            let group = &mut self.child_by_token
                [self.child_start[p] as usize..self.child_start[p + 1] as usize];
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

    /// Number of tree positions, `P + 1` (the root included); 0 before the
    /// first successful fill.
    pub fn num_positions(&self) -> usize {
        self.tokens.len()
    }

    /// Tokens by tree position: the root token, then the drafts in arena order.
    pub fn tokens(&self) -> &[TokenId] {
        &self.tokens
    }

    /// The draft tokens alone (tree positions `1..`), the flattened tree.
    pub fn draft_tokens(&self) -> &[TokenId] {
        self.tokens.get(1..).unwrap_or(&[])
    }

    /// Depth of each tree position (0 for the root).
    pub fn depths(&self) -> &[u32] {
        &self.depths
    }

    /// Position ids, `L + depth - 1` per tree position.
    pub fn positions(&self) -> &[i64] {
        &self.positions
    }

    /// Parent tree position of each tree position, [`NONE`] (`-1`) for the root.
    pub fn parents(&self) -> &[i64] {
        &self.parents
    }

    /// Whether tree position `row` may attend to tree position `col`: `col`
    /// is `row` itself or one of its ancestors (the root included). False
    /// out of range.
    pub fn is_visible(&self, row: usize, col: usize) -> bool {
        let n = self.num_positions();
        row < n
            && col < n
            && self.mask_words[row * self.words_per_row + col / 64] >> (col % 64) & 1 == 1
    }

    /// `u64` words per packed mask row, `ceil((P + 1) / 64)`.
    pub fn words_per_row(&self) -> usize {
        self.words_per_row
    }

    /// The attention mask, rows packed into `u64` words, row-major: bit
    /// `col % 64` (least significant first) of word
    /// `row * words_per_row() + col / 64` is set iff `is_visible(row, col)`.
    pub fn mask_words(&self) -> &[u64] {
        &self.mask_words
    }

    /// Copies [`VerifierInputs::mask_words`] into `out`.
    ///
    /// # Errors
    ///
    /// [`Error::InputLength`] unless `out.len() == (P + 1) * words_per_row()`.
    pub fn write_mask_words_into(&self, out: &mut [u64]) -> Result<()> {
        copy_into("mask word buffer", &self.mask_words, out)
    }

    /// Writes the mask as booleans into a `(P + 1) x (P + 1)` view. O(P^2).
    ///
    /// # Errors
    ///
    /// [`Error::InputLength`] if the view has another shape.
    pub fn write_mask_bool_into(&self, mut out: ArrayViewMut2<'_, bool>) -> Result<()> {
        self.check_square("boolean mask", out.dim())?;
        out.fill(false);
        for r in 0..self.num_positions() {
            self.for_each_ancestor(r, |c| out[[r, c]] = true);
        }
        Ok(())
    }

    /// The mask as a new `(P + 1) x (P + 1)` boolean array (allocates).
    pub fn mask_bool(&self) -> Array2<bool> {
        let n = self.num_positions();
        Array2::from_shape_fn((n, n), |(r, c)| self.is_visible(r, c))
    }

    /// Writes the additive attention bias, row-major `(P + 1) x (P + 1)`:
    /// `0.0` where visible, `f32::NEG_INFINITY` elsewhere. O(P^2) for the
    /// row fills plus O(sum of depths) for the ancestors.
    ///
    /// # Errors
    ///
    /// [`Error::InputLength`] unless `out.len() == (P + 1)^2`.
    pub fn write_mask_bias_into(&self, out: &mut [f32]) -> Result<()> {
        let n = self.num_positions();
        if out.len() != n * n {
            return Err(Error::InputLength {
                what: "mask bias buffer",
                expected: n * n,
                got: out.len(),
            });
        }
        // Fill each row with -inf (a memset), then clear the O(depth) ancestors:
        // much faster than testing all (P + 1)^2 bits.
        for (r, row) in out.chunks_exact_mut(n.max(1)).enumerate() {
            row.fill(f32::NEG_INFINITY);
            self.for_each_ancestor(r, |c| row[c] = 0.0);
        }
        Ok(())
    }

    /// Calls `f` on `row` and each of its ancestors up to the root. O(depth).
    #[inline]
    fn for_each_ancestor(&self, row: usize, mut f: impl FnMut(usize)) {
        let mut j = row;
        loop {
            f(j);
            if j == 0 {
                return;
            }
            j = self.parents[j] as usize;
        }
    }

    /// The additive bias as a new `(P + 1) x (P + 1)` array (allocates).
    pub fn mask_bias(&self) -> Array2<f32> {
        self.mask_bool()
            .mapv(|v| if v { 0.0 } else { f32::NEG_INFINITY })
    }

    /// `(rows, cols)` of the retrieve indices: one row per leaf, `max_depth + 1`
    /// columns.
    pub fn retrieve_shape(&self) -> (usize, usize) {
        let rows = self
            .retrieve
            .len()
            .checked_div(self.retrieve_cols)
            .unwrap_or(0);
        (rows, self.retrieve_cols)
    }

    /// Retrieve indices, row-major (Medusa / EAGLE shape): row `r` lists the
    /// tree positions of the `r`-th leaf's path, root (0) first, padded
    /// with [`NONE`]. Leaves in tree-position order; an empty tree has one
    /// row, `[0]`.
    pub fn retrieve_indices(&self) -> &[i64] {
        &self.retrieve
    }

    /// First child of each tree position in arena order, [`NONE`] for a leaf
    /// (SGLang's `retrive_next_token`).
    pub fn first_child(&self) -> &[i64] {
        &self.first_child
    }

    /// Next sibling of each tree position in arena order, [`NONE`] for the
    /// last (SGLang's `retrive_next_sibling`).
    pub fn next_sibling(&self) -> &[i64] {
        &self.next_sibling
    }

    /// Copies [`VerifierInputs::tokens`] into `out`.
    ///
    /// # Errors
    ///
    /// [`Error::InputLength`] unless `out.len() == P + 1`.
    pub fn write_tokens_into(&self, out: &mut [TokenId]) -> Result<()> {
        copy_into("token buffer", &self.tokens, out)
    }

    /// Copies [`VerifierInputs::positions`] into `out`.
    ///
    /// # Errors
    ///
    /// [`Error::InputLength`] unless `out.len() == P + 1`.
    pub fn write_positions_into(&self, out: &mut [i64]) -> Result<()> {
        copy_into("position buffer", &self.positions, out)
    }

    /// Copies [`VerifierInputs::parents`] into `out`.
    ///
    /// # Errors
    ///
    /// [`Error::InputLength`] unless `out.len() == P + 1`.
    pub fn write_parents_into(&self, out: &mut [i64]) -> Result<()> {
        copy_into("parent buffer", &self.parents, out)
    }

    /// Copies [`VerifierInputs::retrieve_indices`] into `out`.
    ///
    /// # Errors
    ///
    /// [`Error::InputLength`] unless `out.len() == rows * cols`.
    pub fn write_retrieve_into(&self, out: &mut [i64]) -> Result<()> {
        copy_into("retrieve buffer", &self.retrieve, out)
    }

    /// Copies [`VerifierInputs::first_child`] into `out`.
    ///
    /// # Errors
    ///
    /// [`Error::InputLength`] unless `out.len() == P + 1`.
    pub fn write_first_child_into(&self, out: &mut [i64]) -> Result<()> {
        copy_into("first-child buffer", &self.first_child, out)
    }

    /// Copies [`VerifierInputs::next_sibling`] into `out`.
    ///
    /// # Errors
    ///
    /// [`Error::InputLength`] unless `out.len() == P + 1`.
    pub fn write_next_sibling_into(&self, out: &mut [i64]) -> Result<()> {
        copy_into("next-sibling buffer", &self.next_sibling, out)
    }

    fn check_square(&self, what: &'static str, (rows, cols): (usize, usize)) -> Result<()> {
        let n = self.num_positions();
        for got in [rows, cols] {
            if got != n {
                return Err(Error::InputLength {
                    what,
                    expected: n,
                    got,
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
    /// child is the bonus token (THEORY.md section 1). `token_at` is called
    /// once per visited position, so a server may sample lazily.
    ///
    /// Time O(X log b) for `X` accepted tokens and largest branching `b`.
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
        let mut j = 0;
        loop {
            let y = token_at(j)?;
            match self.child_with_token(j, y) {
                Some(c) => {
                    out.nodes.push(c - 1);
                    out.tokens.push(y);
                    j = c;
                }
                None => {
                    out.bonus = y;
                    return Ok(());
                }
            }
        }
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

    /// The lossless sampling walk of THEORY.md section 1: at each visited
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

    fn check_len(&self, what: &'static str, got: usize) -> Result<()> {
        let expected = self.num_positions();
        if got != expected {
            return Err(Error::InputLength {
                what,
                expected,
                got,
            });
        }
        Ok(())
    }
}

fn copy_into<T: Copy>(what: &'static str, src: &[T], out: &mut [T]) -> Result<()> {
    if out.len() != src.len() {
        return Err(Error::InputLength {
            what,
            expected: src.len(),
            got: out.len(),
        });
    }
    out.copy_from_slice(src);
    Ok(())
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

    fn clear(&mut self) {
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

    /// Accepted nodes as [`DraftTree`] arena indices, root's child first.
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

/// Builds one tree per request in parallel (rayon). Each rayon work split
/// gets its own [`crate::TreeBuilder`] (`map_init`) and reuses it for all
/// the requests it handles, so builders are created per split (a few per
/// thread), not per request. Trees come back in request order, equal to
/// sequential builds.
///
/// # Errors
///
/// The builder's setting errors ([`Error::ZeroCapacity`], ...) and the first
/// model error in request order.
///
/// # Examples
///
/// ```
/// use speclight::{serve::build_batch, Iid, TokenDist};
/// let mut requests: Vec<Iid> = (1..=4)
///     .map(|k| Iid::new(TokenDist::from_probs(&vec![1.0 / k as f64; k]).unwrap()))
///     .collect();
/// let trees = build_batch(&mut requests, 8, Some(3))?;
/// assert_eq!(trees.len(), 4);
/// assert_eq!(trees[0].max_depth(), 3); // one candidate per node: a chain
/// # Ok::<(), speclight::Error>(())
/// ```
#[cfg(feature = "rayon")]
pub fn build_batch<M>(
    models: &mut [M],
    capacity: usize,
    max_depth: Option<u32>,
) -> Result<Vec<DraftTree>>
where
    M: crate::NextTokenModel + Send,
{
    use crate::TreeBuilder;
    use rayon::prelude::*;
    // Check the settings once, so that workers cannot disagree about them.
    let make = || TreeBuilder::new(capacity).and_then(|b| b.with_max_depth(max_depth));
    make()?;
    models
        .par_iter_mut()
        .map_init(make, |builder, model| match builder {
            Ok(b) => b.build_owned(model),
            Err(e) => Err(e.clone()),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{evaluate, Iid, TreeBuilder};
    use proptest::prelude::*;
    use rand::{rngs::StdRng, Rng, SeedableRng};

    /// A random valid tree: node i's parent uniformly among earlier nodes or
    /// the root; tokens distinct among siblings (drawn from a small alphabet
    /// so that verifier tokens often match).
    fn random_tree(seed: u64, n: usize, alphabet: u32) -> DraftTree {
        let mut rng = StdRng::seed_from_u64(seed);
        let mut t = DraftTree::new();
        let mut used: Vec<Vec<u32>> = vec![Vec::new(); n + 1];
        while t.len() < n {
            let p = rng.random_range(0..=t.len());
            let tok = rng.random_range(0..alphabet);
            if used[p].contains(&tok) {
                continue;
            }
            used[p].push(tok);
            let parent = p.checked_sub(1);
            let lp = parent.map_or(0.0, |q| t.path_logprob(q)) - 0.1;
            t.push(parent, tok, lp).unwrap();
        }
        t
    }

    /// Tree position of node i's ancestors-or-self, root included, by brute force.
    fn ancestors(t: &DraftTree, j: usize) -> Vec<usize> {
        let mut out = vec![0];
        if j > 0 {
            let mut path = Vec::new();
            t.path_to(j - 1, &mut path);
            out.extend(path.iter().map(|&i| i + 1));
        }
        out
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        #[test]
        fn inputs_match_brute_force(seed in 0u64..1_000_000, n in 0usize..150, l in 1usize..5000) {
            let t = random_tree(seed, n, 6);
            let mut inp = VerifierInputs::new();
            inp.fill(&t, l, 999).unwrap();
            let np = n + 1;
            prop_assert_eq!(inp.num_positions(), np);
            // Position ids equal L + depth - 1.
            for j in 0..np {
                let depth = if j == 0 { 0 } else { t.depth(j - 1) as i64 };
                prop_assert_eq!(inp.positions()[j], l as i64 + depth - 1);
            }
            // The mask is exactly the ancestor(-or-self) relation, in all three forms.
            let bools = inp.mask_bool();
            let mut bias = vec![1.0f32; np * np];
            inp.write_mask_bias_into(&mut bias).unwrap();
            let mut bools2 = Array2::from_elem((np, np), false);
            inp.write_mask_bool_into(bools2.view_mut()).unwrap();
            for r in 0..np {
                let anc = ancestors(&t, r);
                for c in 0..np {
                    let want = anc.contains(&c);
                    prop_assert_eq!(bools[[r, c]], want, "row {} col {}", r, c);
                    prop_assert_eq!(bools2[[r, c]], want);
                    prop_assert_eq!(bias[r * np + c] == 0.0, want);
                    prop_assert!(want || bias[r * np + c] == f32::NEG_INFINITY);
                    let word = inp.mask_words()[r * inp.words_per_row() + c / 64];
                    prop_assert_eq!(word >> (c % 64) & 1 == 1, want);
                }
            }
            // Parents.
            for j in 1..np {
                prop_assert_eq!(inp.parents()[j], t.parent(j - 1).map_or(0, |p| p + 1) as i64);
            }
            prop_assert_eq!(inp.parents()[0], -1);
            // Retrieve indices: each leaf's path exactly once, padded with -1.
            let (rows, cols) = inp.retrieve_shape();
            let leaves: Vec<usize> = if n == 0 { vec![0] } else { t.leaves().map(|i| i + 1).collect() };
            prop_assert_eq!(rows, leaves.len());
            let mut seen = std::collections::HashSet::new();
            for r in 0..rows {
                let row = &inp.retrieve_indices()[r * cols..(r + 1) * cols];
                let path: Vec<usize> = row.iter().take_while(|&&x| x != -1).map(|&x| x as usize).collect();
                prop_assert!(row[path.len()..].iter().all(|&x| x == -1));
                let leaf = *path.last().unwrap();
                prop_assert!(leaves.contains(&leaf));
                prop_assert_eq!(&path, &ancestors(&t, leaf));
                prop_assert!(seen.insert(leaf), "leaf {} listed twice", leaf);
            }
            // First child / next sibling enumerate exactly the children in arena order.
            for j in 0..np {
                let mut kids = Vec::new();
                let mut c = inp.first_child()[j];
                while c != -1 {
                    kids.push(c as usize);
                    c = inp.next_sibling()[c as usize];
                }
                let want: Vec<usize> = t.children(j.checked_sub(1)).map(|i| i + 1).collect();
                prop_assert_eq!(kids, want);
            }
        }

        #[test]
        fn walk_accepts_exactly_the_longest_matching_path(seed in 0u64..1_000_000, n in 0usize..80) {
            let t = random_tree(seed, n, 3);
            let mut inp = VerifierInputs::new();
            inp.fill(&t, 7, 0).unwrap();
            let mut rng = StdRng::seed_from_u64(seed ^ 0xabcdef);
            let chosen: Vec<u32> = (0..=n).map(|_| rng.random_range(0..4)).collect();
            let mut out = Accepted::new();
            inp.walk_chosen(&chosen, &mut out).unwrap();
            // Brute force: a node matches iff every edge on its path carries the
            // verifier's token at the edge's upper end.
            let matching: Vec<usize> = (1..=n)
                .filter(|&j| {
                    let anc = ancestors(&t, j);
                    anc.windows(2).all(|w| chosen[w[0]] == t.token(w[1] - 1))
                })
                .collect();
            let deepest = matching.iter().copied().max_by_key(|&j| t.depth(j - 1)).unwrap_or(0);
            let want_path: Vec<usize> = ancestors(&t, deepest)[1..].iter().map(|&j| j - 1).collect();
            prop_assert_eq!(matching.len(), want_path.len(), "matches form one chain");
            prop_assert_eq!(out.nodes(), &want_path[..]);
            let want_tokens: Vec<u32> = want_path.iter().map(|&i| t.token(i)).collect();
            prop_assert_eq!(out.tokens(), &want_tokens[..]);
            prop_assert_eq!(out.bonus(), chosen[deepest]);
            prop_assert_eq!(out.emitted().count(), out.len() + 1);
        }
    }

    #[test]
    fn length_mismatches_are_rejected() {
        let t = random_tree(1, 5, 4);
        let mut inp = VerifierInputs::new();
        let mut out = Accepted::new();
        assert!(matches!(
            inp.walk_with(|_| Ok(0), &mut out),
            Err(Error::InvalidArgument(_))
        ));
        inp.fill(&t, 3, 0).unwrap();
        let err = inp.walk_chosen(&[0; 5], &mut out).unwrap_err();
        assert_eq!(
            err,
            Error::InputLength {
                what: "verifier token slice",
                expected: 6,
                got: 5
            }
        );
        assert!(err.to_string().contains("length 5, expected 6"));
        let d = TokenDist::from_probs(&[1.0]).unwrap();
        assert!(matches!(
            inp.walk_sampled(&vec![d; 7], &mut StdRng::seed_from_u64(0), &mut out),
            Err(Error::InputLength { got: 7, .. })
        ));
        assert!(matches!(
            inp.write_mask_bias_into(&mut [0.0; 35]),
            Err(Error::InputLength { expected: 36, .. })
        ));
        let mut small = Array2::from_elem((6, 5), false);
        assert!(inp.write_mask_bool_into(small.view_mut()).is_err());
        assert!(inp.write_positions_into(&mut [0; 7]).is_err());
        let mut buf = [0i64; 6];
        inp.write_parents_into(&mut buf).unwrap();
        assert_eq!(&buf[..], inp.parents());
        assert!(matches!(inp.fill(&t, 0, 0), Err(Error::InvalidArgument(_))));
        assert_eq!(
            inp.num_positions(),
            0,
            "a failed fill leaves no stale inputs"
        );
    }

    #[test]
    fn incomplete_verifier_distribution_is_refused() {
        let t = random_tree(2, 3, 4);
        let mut inp = VerifierInputs::new();
        inp.fill(&t, 3, 0).unwrap();
        let d = TokenDist::from_probs(&[0.5, 0.3]).unwrap();
        let err = inp
            .walk_sampled(
                &vec![d; 4],
                &mut StdRng::seed_from_u64(0),
                &mut Accepted::new(),
            )
            .unwrap_err();
        assert!(matches!(err, Error::SumBelowOne { .. }));
    }

    /// The sampling walk is the verification of THEORY.md section 1, so its
    /// mean accepted length must match the DP evaluator's E[X] (seed 20261129).
    #[test]
    fn sampling_walk_mean_matches_dp() {
        let p = TokenDist::from_probs(&[0.5, 0.25, 0.15, 0.1]).unwrap();
        let q = TokenDist::from_probs(&[0.4, 0.4, 0.1, 0.1]).unwrap();
        let tree = TreeBuilder::new(12)
            .unwrap()
            .build_owned(&mut Iid::new(q))
            .unwrap();
        let exact = evaluate(&tree, &mut Iid::new(p.clone()))
            .unwrap()
            .expected_accepted;
        let mut inp = VerifierInputs::new();
        inp.fill(&tree, 1, 0).unwrap();
        let dists = vec![p; inp.num_positions()];
        let mut rng = StdRng::seed_from_u64(20261129);
        let mut out = Accepted::new();
        let trials = 40_000;
        let mut sum = 0.0;
        let mut sum_sq = 0.0;
        for _ in 0..trials {
            inp.walk_sampled(&dists, &mut rng, &mut out).unwrap();
            let x = out.len() as f64;
            sum += x;
            sum_sq += x * x;
        }
        let mean = sum / trials as f64;
        let sd = ((sum_sq / trials as f64 - mean * mean) / trials as f64).sqrt();
        assert!(
            (mean - exact).abs() < 5.0 * sd,
            "monte carlo {mean} vs dp {exact} (sd {sd}, seed 20261129)"
        );
    }

    #[test]
    fn oversized_trees_are_refused() {
        let mut t = DraftTree::new();
        for i in 0..=MAX_TREE_NODES {
            t.push(None, i as u32, -1.0).unwrap();
        }
        assert_eq!(
            VerifierInputs::new().fill(&t, 2, 0),
            Err(Error::CapacityTooLarge {
                capacity: MAX_TREE_NODES + 1,
                max: MAX_TREE_NODES
            })
        );
    }

    #[test]
    fn duplicate_sibling_tokens_are_refused() {
        let mut t = DraftTree::new();
        t.push(None, 4, -0.1).unwrap();
        t.push(None, 4, -0.2).unwrap();
        assert!(matches!(
            VerifierInputs::new().fill(&t, 2, 0),
            Err(Error::InvalidTree { node: 1, .. })
        ));
    }

    #[cfg(feature = "rayon")]
    #[test]
    fn batch_equals_sequential_builds() {
        let mut models: Vec<Iid> = (0..9)
            .map(|k| {
                let probs: Vec<f64> = (0..5).map(|i| 1.0 / (i as f64 + 1.0 + k as f64)).collect();
                let s: f64 = probs.iter().sum();
                Iid::new(
                    TokenDist::from_probs(&probs.iter().map(|p| p / s).collect::<Vec<_>>())
                        .unwrap(),
                )
            })
            .collect();
        let batch = build_batch(&mut models, 30, Some(4)).unwrap();
        for (m, t) in models.iter_mut().zip(&batch) {
            let want = TreeBuilder::new(30)
                .unwrap()
                .with_max_depth(Some(4))
                .unwrap()
                .build_owned(m)
                .unwrap();
            assert_eq!(t, &want);
        }
        assert_eq!(build_batch(&mut models, 0, None), Err(Error::ZeroCapacity));
    }
}
