//! Untrusted input at the library's edge: byte limits and UTF-8.
//!
//! Whole-file readers (tree JSON, rank paths, latency tables, distribution
//! files) go through [`text`], so that a non-UTF-8 file gets the same
//! specific error from every entry point, and through [`check_size`], so that
//! no input makes a reader allocate without bound. Trace readers stream and
//! bound each line instead.

use crate::error::{Error, Result};

/// Largest whole file a reader accepts: 256 MiB.
pub const MAX_INPUT_BYTES: u64 = 256 << 20;

/// Checks `bytes` is UTF-8 and returns it as text.
///
/// # Errors
///
/// [`Error::NotUtf8`] with the offset of the first invalid byte.
///
/// # Examples
///
/// ```
/// use speclight::{input, Error};
/// assert_eq!(input::text(b"[[0]]")?, "[[0]]");
/// assert_eq!(input::text(b"ok\xff"), Err(Error::NotUtf8 { offset: 2 }));
/// # Ok::<(), speclight::Error>(())
/// ```
pub fn text(bytes: &[u8]) -> Result<&str> {
    std::str::from_utf8(bytes).map_err(|e| Error::NotUtf8 {
        offset: e.valid_up_to(),
    })
}

/// Checks a file of `len` bytes is within [`MAX_INPUT_BYTES`] before it is read.
///
/// # Errors
///
/// [`Error::InputTooLarge`].
pub fn check_size(len: u64) -> Result<()> {
    if len > MAX_INPUT_BYTES {
        return Err(Error::InputTooLarge {
            bytes: len,
            max: MAX_INPUT_BYTES,
        });
    }
    Ok(())
}
