//! The incremental build, for servers that batch their draft forward passes.

use super::builder::TreeBuilder;
use super::frontier::{BinaryFrontier, Frontier};
use crate::dist::TokenDist;
use crate::error::Result;
use crate::tree::DraftTree;

/// An incremental build, for servers that batch their draft forward passes.
///
/// Loop: [`IncrementalBuild::next_batch`] runs best-first as far as the known
/// distributions allow and names up to `W` nodes whose distributions are
/// needed, best first; the caller runs its drafter on those prefixes (one
/// batched forward pass) and hands each result to
/// [`IncrementalBuild::feed`]. An empty batch means the tree is complete;
/// [`IncrementalBuild::finish`] returns it. Finishing early completes the tree
/// from the known candidates alone, treating unexpanded nodes as leaves.
///
/// # Examples
///
/// ```
/// use speclight::{NextTokenModel, Iid, TokenDist, TreeBuilder};
/// let mut drafter = Iid::new(TokenDist::from_probs(&[0.6, 0.3, 0.1])?);
/// let mut builder = TreeBuilder::new(16)?;
/// let root = drafter.next(&[])?.clone();
/// let mut build = builder.begin(&root);
/// let mut path = Vec::new();
/// loop {
///     let batch = build.next_batch(4)?.to_vec();
///     if batch.is_empty() { break; }
///     for node in batch {
///         build.tree().path_tokens(node, &mut path);
///         let dist = drafter.next(&path)?.clone(); // a server: one batched draft pass
///         build.feed(node, &dist)?;
///     }
/// }
/// assert_eq!(build.finish()?.len(), 16);
/// # Ok::<(), speclight::Error>(())
/// ```
#[derive(Debug)]
pub struct IncrementalBuild<'b, F: Frontier = BinaryFrontier> {
    builder: &'b mut TreeBuilder<F>,
}

impl<'b, F: Frontier> IncrementalBuild<'b, F> {
    /// Wraps a builder that [`TreeBuilder::begin`] has just reset.
    pub(super) fn new(builder: &'b mut TreeBuilder<F>) -> Self {
        Self { builder }
    }

    /// Advances best-first and returns up to `w` nodes (tree indices) whose
    /// distributions are needed next, best first. Empty when the tree is
    /// complete. The first node is always needed; the others are the next
    /// most promising ones, which a batched drafter computes at little extra
    /// cost.
    ///
    /// # Errors
    ///
    /// [`Error::BuilderState`](crate::Error::BuilderState) if nodes of the
    /// previous batch were not fed, [`Error::InvalidArgument`](crate::Error::InvalidArgument)
    /// if `w == 0`.
    pub fn next_batch(&mut self, w: usize) -> Result<&[usize]> {
        self.builder.next_batch(w)
    }

    /// Supplies the distribution after `node`'s path.
    ///
    /// # Errors
    ///
    /// [`Error::BuilderState`](crate::Error::BuilderState) if `node` was not
    /// requested by the last [`IncrementalBuild::next_batch`] or was already fed.
    pub fn feed(&mut self, node: usize, dist: &TokenDist) -> Result<()> {
        self.builder.feed(node, dist)
    }

    /// The tree built so far.
    pub fn tree(&self) -> &DraftTree {
        self.builder.tree()
    }

    /// Completes the tree from the candidates already known and returns it.
    ///
    /// # Errors
    ///
    /// [`Error::BuilderState`](crate::Error::BuilderState) if nodes of the
    /// last batch were not fed.
    pub fn finish(self) -> Result<&'b DraftTree> {
        self.builder.finish()
    }
}

#[cfg(test)]
mod tests {
    use crate::{Error, TokenDist, TreeBuilder};

    #[test]
    fn feeding_an_unrequested_node_is_an_error() {
        let root = TokenDist::from_probs(&[0.6, 0.4]).unwrap();
        let mut b = TreeBuilder::new(8).unwrap();
        let mut inc = b.begin(&root);
        assert!(matches!(inc.feed(0, &root), Err(Error::BuilderState(_))));
        let batch = inc.next_batch(2).unwrap().to_vec();
        assert!(!batch.is_empty());
        assert!(matches!(inc.next_batch(1), Err(Error::BuilderState(_))));
        assert!(matches!(inc.next_batch(0), Err(Error::InvalidArgument(_))));
    }
}
