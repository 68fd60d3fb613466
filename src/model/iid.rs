use crate::dist::{TokenDist, TokenId};
use crate::error::Result;
use crate::model::NextTokenModel;

/// The same next-token distribution after every prefix (the i.i.d. model of
/// docs/THEORY.md section 4b with a point-mass environment).
///
/// # Examples
///
/// ```
/// use speclight::{Iid, NextTokenModel, TokenDist};
/// let mut m = Iid::new(TokenDist::from_probs(&[0.5, 0.3, 0.2])?);
/// assert!(m.is_context_free());
/// assert_eq!(m.next(&[])?.len(), 3);
/// # Ok::<(), speclight::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Iid {
    dist: TokenDist,
}

impl Iid {
    /// Wraps `dist` as a context-free model.
    pub fn new(dist: TokenDist) -> Self {
        Self { dist }
    }

    /// The distribution used after every prefix.
    pub fn dist(&self) -> &TokenDist {
        &self.dist
    }
}

impl NextTokenModel for Iid {
    fn next(&mut self, _path: &[TokenId]) -> Result<&TokenDist> {
        Ok(&self.dist)
    }

    fn is_context_free(&self) -> bool {
        true
    }
}

/// An [`Iid`] that does not say it is context-free, so that builders and
/// evaluators take their general path on it: the unit tests compare the two
/// paths with it.
#[cfg(test)]
pub(crate) struct Opaque(pub(crate) Iid);

#[cfg(test)]
impl NextTokenModel for Opaque {
    fn next(&mut self, path: &[TokenId]) -> Result<&TokenDist> {
        self.0.next(path)
    }
}
