//! The tree attention mask: a position sees itself and its ancestors. Kept
//! packed (one bit per pair, `u64` words) and written on demand as booleans
//! or as an additive `f32` bias.

use super::VerifierInputs;
use crate::error::{Error, Result};
use ndarray::{Array2, ArrayViewMut2};

impl VerifierInputs {
    /// Packed mask: row `j` = row(parent) | bit `j`; parents come first.
    /// O(P * (P + 1) / 64) time, every word written once: row 0 is written
    /// whole and every other row is a copy of its parent's, so the buffer
    /// is not zeroed first (that memset was a third of `fill`'s
    /// instructions at P = 1024, issue 16).
    #[inline(never)] // see fill_inner
    pub(super) fn fill_mask(&mut self) {
        let n = self.num_positions();
        let wpr = n.div_ceil(64);
        self.words_per_row = wpr;
        // Keeps the old words: each is overwritten below.
        self.mask_words.resize(n * wpr, 0);
        if n == 0 {
            return;
        }
        let words = &mut self.mask_words[..];
        words[..wpr].fill(0);
        words[0] = 1;
        for (j, &p) in self.parents.iter().enumerate().skip(1) {
            // Parents come first: row p is already written.
            let p = p as usize;
            words.copy_within(p * wpr..(p + 1) * wpr, j * wpr);
            words[j * wpr + j / 64] |= 1 << (j % 64);
        }
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
}
