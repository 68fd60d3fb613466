//! Seeded Monte-Carlo simulation of the verification walk: the second
//! method the tests compare the exact DP ([`super::Evaluator`]) with.

use crate::error::{Error, Result};
use crate::model::NextTokenModel;
use crate::stats::{Estimate, MeanAccumulator};
use crate::tree::DraftTree;
use rand::{rngs::StdRng, SeedableRng};

/// Result of [`monte_carlo`].
#[derive(Debug, Clone, PartialEq)]
pub struct MonteCarlo {
    /// Mean of `X` over the walks, with its standard error and interval.
    pub accepted: Estimate,
    /// `histogram[k]` = number of walks that accepted exactly `k` tokens.
    pub histogram: Vec<u64>,
}

/// Simulates `samples` verification walks (docs/THEORY.md section 1,
/// [`crate::walk`]): sample the verifier's token at the root, descend
/// while the tree has a child with that token. A draw in a truncated
/// verifier's tail ends the walk. Seeded, so reruns agree. Time
/// O(samples x depth x (k + |T|)): a test oracle, not a hot path.
///
/// # Errors
///
/// [`Error::InvalidArgument`] for `samples == 0`, and whatever the model returns.
///
/// # Examples
///
/// ```
/// use speclight::{evaluate, monte_carlo, Iid, TokenDist, TreeBuilder};
/// let mut p = Iid::new(TokenDist::from_probs(&[0.7, 0.3])?);
/// let tree = TreeBuilder::new(8)?.build_owned(&mut p)?;
/// let exact = evaluate(&tree, &mut p)?.expected_accepted;
/// let mc = monte_carlo(&tree, &mut p, 20_000, 7)?;
/// assert!((mc.accepted.mean - exact).abs() < 5.0 * mc.accepted.std_error);
/// # Ok::<(), speclight::Error>(())
/// ```
pub fn monte_carlo<M: NextTokenModel + ?Sized>(
    tree: &DraftTree,
    verifier: &mut M,
    samples: u64,
    seed: u64,
) -> Result<MonteCarlo> {
    if samples == 0 {
        return Err(Error::InvalidArgument(
            "monte carlo needs at least one sample".into(),
        ));
    }
    let mut rng = StdRng::seed_from_u64(seed);
    let mut histogram = vec![0u64; tree.max_depth() as usize + 1];
    let mut path = Vec::new();
    let mut moments = MeanAccumulator::new();
    for _ in 0..samples {
        tree.walk(
            |_, path| Ok(verifier.next(path)?.sample(&mut rng)),
            &mut path,
        )?;
        histogram[path.len()] += 1;
        moments.push(path.len() as f64);
    }
    Ok(MonteCarlo {
        accepted: moments.estimate(),
        histogram,
    })
}
