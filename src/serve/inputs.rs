//! [`VerifierInputs`]: every array a tree-attention verifier consumes, in
//! reusable buffers, and the one routine that copies any of them into a
//! caller's buffer.

use super::{MAX_TREE_NODES, NONE};
use crate::dist::TokenId;
use crate::error::{Error, Result};
use crate::tree::DraftTree;

/// Parent value of a child of the root in [`DraftTree::parent_indices`].
const TREE_ROOT: u32 = u32::MAX;
const _: () = assert!(TREE_ROOT.wrapping_add(1) == 0);

/// Everything a tree-attention verifier consumes for one tree, in reusable
/// buffers. [`VerifierInputs::fill`] overwrites them in place, so a server
/// that keeps one per request allocates nothing once its trees stop growing.
///
/// All arrays are over the `P + 1` tree positions, root first (see the
/// [module docs](crate::serve)). Time and space of a fill are
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
    pub(super) tokens: Vec<TokenId>,
    pub(super) positions: Vec<i64>,
    pub(super) parents: Vec<i64>,
    pub(super) depths: Vec<u32>,
    pub(super) words_per_row: usize,
    pub(super) mask_words: Vec<u64>,
    pub(super) retrieve: Vec<i64>,
    pub(super) retrieve_cols: usize,
    pub(super) first_child: Vec<i64>,
    pub(super) next_sibling: Vec<i64>,
    /// Children of each tree position sorted by token (CSR), for the walk:
    /// `child_by_token[child_start[j]..child_start[j + 1]]`.
    pub(super) child_start: Vec<u32>,
    pub(super) child_by_token: Vec<(TokenId, u32)>,
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
        if tree.len() > MAX_TREE_NODES {
            return Err(Error::CapacityTooLarge {
                capacity: tree.len(),
                max: MAX_TREE_NODES,
            });
        }
        let max_depth = tree.max_depth();
        // Each step stays its own function (`#[inline(never)]`): inlined
        // into one, the same code ran about 1 us slower at P = 1024 (and
        // 25 more instructions per node; issue 16, docs/benchmarks.md).
        self.fill_nodes(tree, max_depth, context_len, root)?;
        self.fill_mask();
        self.fill_links();
        self.fill_retrieve(max_depth as usize + 1);
        self.index_children()
    }

    /// Tokens, depths, position ids and parents, root first. O(P).
    #[inline(never)] // see fill_inner
    fn fill_nodes(
        &mut self,
        tree: &DraftTree,
        max_depth: u32,
        context_len: usize,
        root: TokenId,
    ) -> Result<()> {
        let base = context_len
            .checked_sub(1)
            .and_then(|b| i64::try_from(b).ok())
            .ok_or_else(|| {
                Error::InvalidArgument(format!(
                    "context length {context_len} must be at least 1 (the root is its last token) and fit in i64"
                ))
            })?;
        self.tokens.clear();
        self.tokens.push(root);
        self.tokens.extend_from_slice(tree.tokens());
        self.depths.clear();
        self.depths.push(0);
        self.depths.extend_from_slice(tree.depths());
        // Depths are at most the tree's max depth: one overflow check for all.
        if base.checked_add(i64::from(max_depth)).is_none() {
            return Err(Error::InvalidArgument(format!(
                "position id {base} + {max_depth} overflows i64 (context length {context_len})"
            )));
        }
        self.positions.clear();
        // Exact-size iterators: one reservation, no per-element capacity check.
        self.positions
            .extend(self.depths.iter().map(|&d| base + i64::from(d)));
        // Tree position of node i's parent: `TREE_ROOT` (`u32::MAX`) wraps to
        // 0, every other index moves up by one, without a branch.
        let parent_pos = |p: u32| p.wrapping_add(1);
        self.parents.clear();
        self.parents.push(NONE);
        self.parents.extend(
            tree.parent_indices()
                .iter()
                .map(|&p| i64::from(parent_pos(p))),
        );
        Ok(())
    }

    /// First child / next sibling in arena order: prepend while scanning
    /// backwards. O(P). `next_sibling` is not pre-filled: the scan writes
    /// every entry but the root's.
    #[inline(never)] // see fill_inner
    fn fill_links(&mut self) {
        let n = self.num_positions();
        self.first_child.clear();
        self.first_child.resize(n, NONE);
        // Keeps the old entries: each is overwritten below.
        self.next_sibling.resize(n, NONE);
        self.next_sibling[0] = NONE;
        for j in (1..n).rev() {
            let p = self.parents[j] as usize;
            self.next_sibling[j] = self.first_child[p];
            self.first_child[p] = j as i64;
        }
    }

    /// Retrieve indices: one row of `cols` per leaf (tree-position order),
    /// root first. O(leaves * cols), every entry written once: the leaves
    /// are counted first so the buffer is sized once, then each row gets
    /// its path (walked up from the leaf) and its padding.
    #[inline(never)] // see fill_inner
    fn fill_retrieve(&mut self, cols: usize) {
        let leaves = self.first_child.iter().filter(|&&c| c == NONE).count();
        self.retrieve_cols = cols;
        // Keeps the old entries: each is overwritten below.
        self.retrieve.resize(leaves * cols, NONE);
        self.retrieve.truncate(leaves * cols);
        let leaf_ids = (0..self.first_child.len()).filter(|&j| self.first_child[j] == NONE);
        for (row, leaf) in self.retrieve.chunks_exact_mut(cols).zip(leaf_ids) {
            let depth = self.depths[leaf] as usize;
            row[depth + 1..].fill(NONE);
            let mut j = leaf;
            for slot in row[..=depth].iter_mut().rev() {
                *slot = j as i64;
                j = self.parents[j] as usize; // the root's -1 is never used
            }
        }
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

    /// Copies one of the arrays into a caller-owned buffer (a server's pinned
    /// or device-staging memory): `array` is the accessor that names it,
    /// [`VerifierInputs::tokens`], [`positions`](VerifierInputs::positions),
    /// [`parents`](VerifierInputs::parents),
    /// [`retrieve_indices`](VerifierInputs::retrieve_indices),
    /// [`first_child`](VerifierInputs::first_child),
    /// [`next_sibling`](VerifierInputs::next_sibling) or
    /// [`mask_words`](VerifierInputs::mask_words). O(length).
    ///
    /// # Errors
    ///
    /// [`Error::InputLength`] unless `out` has exactly the array's length
    /// (`P + 1` for the per-position arrays, `rows * cols` for retrieve
    /// indices, `(P + 1) * words_per_row()` for the mask words); `out` is
    /// then left unchanged.
    ///
    /// # Examples
    ///
    /// ```
    /// use speclight::{serve::VerifierInputs, DraftTree};
    /// let mut t = DraftTree::new();
    /// t.push(None, 7, -0.1)?;
    /// let mut inputs = VerifierInputs::new();
    /// inputs.fill(&t, 10, 1)?;
    /// let mut positions = [0i64; 2];
    /// inputs.write_into(VerifierInputs::positions, &mut positions)?;
    /// assert_eq!(positions, [9, 10]);
    /// assert!(inputs.write_into(VerifierInputs::tokens, &mut [0u32; 3]).is_err());
    /// # Ok::<(), speclight::Error>(())
    /// ```
    pub fn write_into<T: Copy>(&self, array: impl Fn(&Self) -> &[T], out: &mut [T]) -> Result<()> {
        let src = array(self);
        if out.len() != src.len() {
            return Err(Error::InputLength {
                what: "caller buffer",
                expected: src.len(),
                got: out.len(),
            });
        }
        out.copy_from_slice(src);
        Ok(())
    }

    /// Refuses a slice whose length is not the number of tree positions.
    pub(super) fn check_len(&self, what: &'static str, got: usize) -> Result<()> {
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
