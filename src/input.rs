//! Untrusted input at the library's edge: byte limits and UTF-8.
//!
//! Whole-file readers (tree JSON, rank paths, latency tables, distribution
//! files, OpenAI logprobs) go through [`read_limited`] or [`read_text_limited`],
//! which never read more than [`MAX_INPUT_BYTES`] plus one byte whatever the
//! file claims to be (a character device such as `/dev/zero` reports size 0
//! and never ends), and through [`text`], so that a non-UTF-8 file gets the
//! same specific error from every entry point. Trace readers stream and bound
//! each line instead.

use crate::error::{Error, Result};
use std::io::Read;
use std::path::Path;

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

/// Reads the whole file at `path`, refusing it once it passes
/// [`MAX_INPUT_BYTES`]: a regular file by its size before any byte is read,
/// anything else (a pipe, a character device) after reading at most the limit
/// plus one byte. Time and space O(min(file, limit)).
///
/// # Errors
///
/// [`Error::Io`] (`cannot read PATH: REASON`) when the file cannot be opened
/// or read, [`Error::InputTooLarge`] for a regular file above the limit,
/// [`Error::InputTooLong`] for an input without a size that runs past it.
/// Only the first names the path: callers add it to the others.
///
/// # Examples
///
/// ```
/// use speclight::{input, Error};
/// assert!(input::read_limited("/dev/null")?.is_empty());
/// assert!(matches!(input::read_limited("/no/such/file"), Err(Error::Io(_))));
/// # Ok::<(), speclight::Error>(())
/// ```
pub fn read_limited(path: impl AsRef<Path>) -> Result<Vec<u8>> {
    read_at_most(path.as_ref(), MAX_INPUT_BYTES)
}

/// [`read_limited`], then [`text`]: the whole file as UTF-8 text.
///
/// # Errors
///
/// As [`read_limited`], plus [`Error::NotUtf8`].
pub fn read_text_limited(path: impl AsRef<Path>) -> Result<String> {
    let bytes = read_limited(path)?;
    text(&bytes)?;
    // Checked just above, so this never copies or fails.
    String::from_utf8(bytes).map_err(|e| Error::NotUtf8 {
        offset: e.utf8_error().valid_up_to(),
    })
}

/// [`read_limited`] with the limit `max` (tests use a small one).
fn read_at_most(path: &Path, max: u64) -> Result<Vec<u8>> {
    let cannot = |e: std::io::Error| Error::Io(format!("cannot read {}: {e}", path.display()));
    let file = std::fs::File::open(path).map_err(cannot)?;
    let meta = file.metadata().map_err(cannot)?;
    // A regular file's size is known: refuse it without reading (and say how
    // big it is). Other files report 0 or nonsense: trust only what is read.
    let expected = if meta.is_file() {
        if meta.len() > max {
            return Err(Error::InputTooLarge {
                bytes: meta.len(),
                max,
            });
        }
        meta.len()
    } else {
        0
    };
    let mut bytes = Vec::with_capacity(usize::try_from(expected).unwrap_or(0));
    file.take(max.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(cannot)?;
    if bytes.len() as u64 > max {
        return Err(Error::InputTooLong { max });
    }
    Ok(bytes)
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Issue 12 item 5: `/dev/zero` reports size 0, so the size check passed
    /// and the reader ran until memory ran out. Now it stops at the limit.
    #[test]
    #[cfg(unix)]
    fn a_character_device_is_read_only_up_to_the_limit() {
        assert_eq!(
            read_at_most(Path::new("/dev/zero"), 1000),
            Err(Error::InputTooLong { max: 1000 })
        );
        assert_eq!(
            read_limited("/dev/zero"),
            Err(Error::InputTooLong {
                max: MAX_INPUT_BYTES
            })
        );
        assert_eq!(read_limited("/dev/null"), Ok(Vec::new()));
    }

    #[test]
    fn a_regular_file_is_refused_by_its_size_and_read_up_to_the_limit() {
        let dir = std::env::temp_dir().join(format!("speclight-input-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("ten.txt");
        std::fs::write(&path, b"0123456789").unwrap();
        let small = read_at_most(&path, 9);
        let exact = read_at_most(&path, 10);
        let text = read_text_limited(&path);
        std::fs::write(&path, b"ok\xff").unwrap();
        let bad = read_text_limited(&path);
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(small, Err(Error::InputTooLarge { bytes: 10, max: 9 }));
        assert_eq!(exact.unwrap(), b"0123456789");
        assert_eq!(text.unwrap(), "0123456789");
        assert_eq!(bad, Err(Error::NotUtf8 { offset: 2 }));
        assert!(
            matches!(read_limited(dir.join("gone")), Err(Error::Io(m)) if m.starts_with("cannot read "))
        );
    }
}
