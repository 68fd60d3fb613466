use crate::dist::{TokenDist, TokenId, SUM_TOLERANCE};
use crate::error::{Error, Result};
use crate::model::NextTokenModel;

/// Per-depth positional-acceptance model for static trees (docs/THEORY.md
/// section 3, with one acceptance vector per depth).
///
/// Row `d` (0-based) is the acceptance vector `a[d][k]` used for the children
/// of a node at depth `d`, that is for draft tokens at depth `d + 1`; depths
/// beyond the last row reuse the last row. As in [`crate::Positional`], a
/// token *is* a rank, so `pi(v) = prod_j a[j][rank_j]` along the path and
/// best-first over this model gives the optimal static tree.
///
/// Unlike [`crate::Positional`], a row need not be non-increasing (an
/// estimated matrix is noisy) and may hold zeros (a rank never seen to match);
/// zero entries are dropped from that depth's distribution.
///
/// # Examples
///
/// ```
/// use speclight::{NextTokenModel, PositionalByDepth};
/// let mut m = PositionalByDepth::new(&[vec![0.7, 0.1], vec![0.5, 0.2]])?;
/// assert_eq!(m.next(&[])?.probs(), &[0.7, 0.1]);
/// assert_eq!(m.next(&[0])?.probs(), &[0.5, 0.2]);
/// assert_eq!(m.next(&[0, 1, 0])?.probs(), &[0.5, 0.2]); // last row reused
/// # Ok::<(), speclight::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct PositionalByDepth {
    rows: Vec<Vec<f64>>,
    dists: Vec<TokenDist>,
}

impl PositionalByDepth {
    /// Builds the model from one acceptance row per depth, depth 1 first.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidAcceptance`] if there are no rows, a row is empty,
    /// has a value outside `[0, 1]`, sums above 1 beyond [`SUM_TOLERANCE`],
    /// or is all zeros.
    pub fn new(rows: &[Vec<f64>]) -> Result<Self> {
        let bad = |why: String| Err(Error::InvalidAcceptance(why));
        if rows.is_empty() {
            return bad("no depth rows".into());
        }
        let mut dists = Vec::with_capacity(rows.len());
        for (d, row) in rows.iter().enumerate() {
            if row.is_empty() {
                return bad(format!("row for depth {} is empty", d + 1));
            }
            if let Some((k, a)) = row
                .iter()
                .enumerate()
                .find(|(_, a)| !(a.is_finite() && (0.0..=1.0).contains(*a)))
            {
                return bad(format!("a[{}][{k}] = {a} is not in [0, 1]", d + 1));
            }
            let sum: f64 = row.iter().sum();
            if sum > 1.0 + SUM_TOLERANCE {
                return bad(format!("row for depth {} sums to {sum}, above 1", d + 1));
            }
            if sum <= 0.0 {
                return bad(format!("row for depth {} is all zeros", d + 1));
            }
            dists.push(TokenDist::from_probs(row)?);
        }
        Ok(Self {
            rows: rows.to_vec(),
            dists,
        })
    }

    /// The acceptance rows, depth 1 first, as given.
    pub fn rows(&self) -> &[Vec<f64>] {
        &self.rows
    }

    /// `a[depth][rank]` with `depth >= 1` (the last row beyond the table);
    /// 0 for a rank beyond the row.
    pub fn acceptance(&self, depth: u32, rank: u32) -> f64 {
        let d = (depth.max(1) as usize - 1).min(self.rows.len() - 1);
        self.rows[d].get(rank as usize).copied().unwrap_or(0.0)
    }
}

impl NextTokenModel for PositionalByDepth {
    fn next(&mut self, path: &[TokenId]) -> Result<&TokenDist> {
        let d = path.len().min(self.dists.len() - 1);
        Ok(&self.dists[d])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{evaluate, Positional, TreeBuilder};

    #[test]
    fn one_row_matches_positional() {
        let a = [0.6, 0.2, 0.1];
        let mut by_depth = PositionalByDepth::new(&[a.to_vec()]).unwrap();
        let mut flat = Positional::new(&a).unwrap();
        let t1 = TreeBuilder::new(20)
            .unwrap()
            .build_owned(&mut by_depth)
            .unwrap();
        let t2 = TreeBuilder::new(20)
            .unwrap()
            .build_owned(&mut flat)
            .unwrap();
        // The general path (by depth) and the context-free one (flat) may
        // order exactly tied nodes differently (`speclight::build`, "Ties"),
        // but their keys in output order are the same, bit for bit.
        assert_eq!(t1.path_logprobs(), t2.path_logprobs());
        let e1 = evaluate(&t1, &mut by_depth).unwrap().expected_accepted;
        let e2 = evaluate(&t2, &mut flat).unwrap().expected_accepted;
        assert!((e1 - e2).abs() < 1e-12);
    }

    #[test]
    fn reach_is_product_of_rows_by_depth() {
        // Brute force: pi of node (r1, r2, r3) is a[1][r1] a[2][r2] a[3][r3]
        // (row 2 reused at depth 3); the evaluator must agree on every node.
        let rows = vec![vec![0.5, 0.3], vec![0.2, 0.4, 0.1]];
        let mut m = PositionalByDepth::new(&rows).unwrap();
        let tree = TreeBuilder::new(30).unwrap().build_owned(&mut m).unwrap();
        let mut expected = 0.0;
        for v in 0..tree.len() {
            let mut path = Vec::new();
            tree.path_tokens(v, &mut path);
            let pi: f64 = path
                .iter()
                .enumerate()
                .map(|(j, &r)| m.acceptance(j as u32 + 1, r))
                .product();
            expected += pi;
        }
        let got = evaluate(&tree, &mut m).unwrap().expected_accepted;
        assert!((got - expected).abs() < 1e-12, "{got} vs {expected}");
    }

    #[test]
    fn rejects_bad_rows() {
        for rows in [
            vec![],
            vec![vec![]],
            vec![vec![0.7, 0.5]],
            vec![vec![0.0, 0.0]],
            vec![vec![f64::NAN]],
            vec![vec![-0.1]],
        ] {
            assert!(matches!(
                PositionalByDepth::new(&rows),
                Err(Error::InvalidAcceptance(_))
            ));
        }
    }
}
