//! [`ContextModel`]: a model whose root (the text the draft tree hangs
//! below) can be moved, for the end-to-end loop of [`crate::simulate`] and
//! the demo's workload.

use super::{NextTokenModel, NgramModel};
use crate::dist::TokenId;
use crate::error::{Error, Result};

/// A [`NextTokenModel`] whose root can be moved: `next(path)` answers for
/// `context + path`.
///
/// # Examples
///
/// ```
/// use speclight::model::ContextModel;
/// use speclight::{NextTokenModel, NgramLm};
/// let lm = NgramLm::train(b"abcabcabc", 3)?;
/// let mut m = lm.model();
/// m.set_context(&[97, 98])?; // "ab"
/// assert_eq!(m.next(&[])?.tokens()[0], 99); // 'c'
/// # Ok::<(), speclight::Error>(())
/// ```
pub trait ContextModel: NextTokenModel {
    /// Sets the text that the draft tree hangs below.
    ///
    /// # Errors
    ///
    /// Model-specific, typically [`Error::Model`] for a token the model does
    /// not know.
    fn set_context(&mut self, context: &[TokenId]) -> Result<()>;
}

impl ContextModel for NgramModel<'_> {
    /// Keeps the last `order - 1` tokens, which must be bytes. O(order).
    fn set_context(&mut self, context: &[TokenId]) -> Result<()> {
        let keep = self.lm().order() - 1;
        let mut bytes = [0u8; crate::model::ngram::MAX_ORDER];
        let tail = &context[context.len().saturating_sub(keep)..];
        for (slot, &t) in bytes.iter_mut().zip(tail) {
            *slot = u8::try_from(t)
                .map_err(|_| Error::Model(format!("token {t} is not a byte (byte-level model)")))?;
        }
        self.set_context_bytes(&bytes[..tail.len()]);
        Ok(())
    }
}

impl<M: ContextModel + ?Sized> ContextModel for &mut M {
    fn set_context(&mut self, context: &[TokenId]) -> Result<()> {
        (**self).set_context(context)
    }
}
