//! [`RankAcceptance`]: the verifier's acceptance of the drafter's rank-`k`
//! candidate at each depth, the input every server constraint is solved on.

use crate::error::Result;
use crate::model::PositionalByDepth;
use crate::tree::DraftTree;
use crate::TreeBuilder;

/// `a[d][k]`: the probability that the verifier's token at depth `d + 1` is
/// the drafter's rank-`k` candidate there (given the path so far matched).
/// Depths beyond the last row reuse it, as [`PositionalByDepth`] does.
///
/// This is a per-depth positional model (docs/THEORY.md section 3): a node
/// reached by ranks `r_1 .. r_d` has `pi(v) = prod_j a[j][r_j]`, and a tree
/// over it is a tree of rank paths (token = rank). A context-free model is
/// one row; `speclight tune` estimates the rows from a paired trace. Rows
/// need not decrease with rank: rank is the drafter's order, the value the
/// verifier's.
///
/// # Examples
///
/// ```
/// use speclight::deploy::RankAcceptance;
/// let a = RankAcceptance::context_free(&[0.6, 0.2, 0.1])?;
/// assert_eq!(a.row(5), &[0.6, 0.2, 0.1]);
/// assert!((a.mass(1, 2) - 0.8).abs() < 1e-12);
/// # Ok::<(), speclight::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct RankAcceptance {
    model: PositionalByDepth,
    /// `prefix[d][c]` = mass of the first `c` ranks of row `d`.
    prefix: Vec<Vec<f64>>,
}

impl RankAcceptance {
    /// Per-depth rows, row `d` for depth `d + 1`.
    ///
    /// # Errors
    ///
    /// [`crate::Error::InvalidAcceptance`] as [`PositionalByDepth::new`]:
    /// no rows, an empty or all-zero row, a value outside `[0, 1]`, a row
    /// summing above 1.
    pub fn new(rows: &[Vec<f64>]) -> Result<Self> {
        let model = PositionalByDepth::new(rows)?;
        let prefix = rows
            .iter()
            .map(|row| {
                std::iter::once(0.0)
                    .chain(row.iter().scan(0.0, |sum, &a| {
                        *sum += a;
                        Some(*sum)
                    }))
                    .collect()
            })
            .collect();
        Ok(Self { model, prefix })
    }

    /// One row for every depth (an i.i.d. or positional model).
    ///
    /// # Errors
    ///
    /// As [`RankAcceptance::new`].
    pub fn context_free(row: &[f64]) -> Result<Self> {
        Self::new(&[row.to_vec()])
    }

    /// The row of depth `depth` (1-based; 0 is read as 1, beyond the last
    /// row the last).
    pub fn row(&self, depth: u32) -> &[f64] {
        &self.model.rows()[self.row_index(depth)]
    }

    /// Number of distinct rows.
    pub fn depths(&self) -> usize {
        self.prefix.len()
    }

    /// `A_d(c)`: the acceptance mass of the first `c` ranks at depth `depth`.
    pub fn mass(&self, depth: u32, c: usize) -> f64 {
        let p = &self.prefix[self.row_index(depth)];
        p[c.min(p.len() - 1)]
    }

    /// The per-depth positional model (token = rank) the rows define.
    pub fn model(&self) -> &PositionalByDepth {
        &self.model
    }

    /// `E[X] = sum_v prod_j a[j][rank_j]` of a rank tree (token = rank),
    /// docs/THEORY.md section 2. O(|T|).
    pub fn tree_value(&self, tree: &DraftTree) -> f64 {
        let mut reach = Vec::with_capacity(tree.len());
        let mut total = 0.0;
        for node in tree.nodes() {
            let up = node.parent.map_or(1.0, |p| reach[p]);
            let a = self.row(node.depth).get(node.token as usize).copied();
            let r = up * a.unwrap_or(0.0);
            reach.push(r);
            total += r;
        }
        total
    }

    /// The unconstrained optimum: best-first over the rows (docs/THEORY.md
    /// section 3), `P` nodes, depth `<= max_depth`. O(P log P).
    ///
    /// # Errors
    ///
    /// The builder's: [`crate::Error::ZeroCapacity`],
    /// [`crate::Error::CapacityTooLarge`], [`crate::Error::ZeroDepth`].
    pub fn best_first(&self, capacity: usize, max_depth: Option<u32>) -> Result<DraftTree> {
        let mut model = self.model.clone();
        TreeBuilder::new(capacity)?
            .with_max_depth(max_depth)?
            .build_owned(&mut model)
    }

    fn row_index(&self, depth: u32) -> usize {
        (depth.max(1) as usize - 1).min(self.prefix.len() - 1)
    }
}
