//! Parallel building for a batch of requests (feature `rayon`).

use super::TreeBuilder;
use crate::error::Result;
use crate::tree::DraftTree;

/// Builds one tree per request in parallel (rayon). Each rayon work split
/// gets its own [`crate::TreeBuilder`] (`map_init`) and reuses it for all
/// the requests it handles, so builders are created per split (a few per
/// thread), not per request. Trees come back in request order, equal to
/// sequential builds.
///
/// # Errors
///
/// The builder's setting errors ([`Error::ZeroCapacity`](crate::Error::ZeroCapacity), ...) and the first
/// model error in request order.
///
/// # Examples
///
/// ```
/// use speclight::{build_batch, Iid, TokenDist};
/// let mut requests: Vec<Iid> = (1..=4)
///     .map(|k| Iid::new(TokenDist::from_probs(&vec![1.0 / k as f64; k]).unwrap()))
///     .collect();
/// let trees = build_batch(&mut requests, 8, Some(3))?;
/// assert_eq!(trees.len(), 4);
/// assert_eq!(trees[0].max_depth(), 3); // one candidate per node: a chain
/// # Ok::<(), speclight::Error>(())
/// ```
pub fn build_batch<M>(
    models: &mut [M],
    capacity: usize,
    max_depth: Option<u32>,
) -> Result<Vec<DraftTree>>
where
    M: crate::NextTokenModel + Send,
{
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
    use crate::{Error, Iid, TokenDist};

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
