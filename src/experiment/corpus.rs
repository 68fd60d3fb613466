//! The bundled real-text corpora (`data/*.txt.gz`), embedded in the binary so
//! that `speclight demo` runs from a fresh clone with no arguments.
//!
//! Each corpus comes as a training part (about the first 90%, split at a
//! newline) and a held-out part that no model is trained on. The files are
//! gzip-compressed (decompressed with `flate2`); their sources and licences
//! are listed in `data/README.md`.

use crate::error::{Error, Result};
use std::io::Read;

/// One of the bundled corpora.
///
/// # Examples
///
/// ```
/// use speclight::experiment::corpus::Corpus;
/// assert_eq!(Corpus::ALL.len(), 2);
/// assert_eq!(Corpus::RustBook.name(), "rust_book");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Corpus {
    /// English technical prose with code: "The Rust Programming Language"
    /// (MIT OR Apache-2.0).
    RustBook,
    /// Source code: top-level modules of the CPython 3.11 standard library
    /// (Python Software Foundation License v2).
    PythonStdlib,
}

/// A corpus decompressed: training text and held-out text, as bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CorpusText {
    /// Which corpus.
    pub corpus: Corpus,
    /// The training part (about the first 90%).
    pub train: Vec<u8>,
    /// The held-out part (the rest), for evaluation only.
    pub heldout: Vec<u8>,
}

impl Corpus {
    /// Every bundled corpus, in a fixed order.
    pub const ALL: [Corpus; 2] = [Corpus::RustBook, Corpus::PythonStdlib];

    /// Short name, as in the file names: `rust_book`, `python_stdlib`.
    pub fn name(self) -> &'static str {
        match self {
            Corpus::RustBook => "rust_book",
            Corpus::PythonStdlib => "python_stdlib",
        }
    }

    /// The gzip bytes of the training and held-out parts, as embedded.
    pub fn compressed(self) -> (&'static [u8], &'static [u8]) {
        match self {
            Corpus::RustBook => (
                include_bytes!("../../data/rust_book.train.txt.gz"),
                include_bytes!("../../data/rust_book.heldout.txt.gz"),
            ),
            Corpus::PythonStdlib => (
                include_bytes!("../../data/python_stdlib.train.txt.gz"),
                include_bytes!("../../data/python_stdlib.heldout.txt.gz"),
            ),
        }
    }

    /// Looks a corpus up by [`Corpus::name`].
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArgument`] naming the unknown corpus.
    ///
    /// # Examples
    ///
    /// ```
    /// use speclight::experiment::corpus::Corpus;
    /// assert_eq!(Corpus::from_name("python_stdlib")?, Corpus::PythonStdlib);
    /// assert!(Corpus::from_name("shakespeare").is_err());
    /// # Ok::<(), speclight::Error>(())
    /// ```
    pub fn from_name(name: &str) -> Result<Self> {
        Self::ALL
            .into_iter()
            .find(|c| c.name() == name)
            .ok_or_else(|| {
                Error::InvalidArgument(format!(
                    "unknown corpus {name:?} (known: rust_book, python_stdlib)"
                ))
            })
    }
}

/// Decompresses a bundled corpus. Time and space O(corpus size), about 1 MB.
///
/// # Errors
///
/// [`Error::Parse`] if the embedded gzip stream is corrupt (it is not, unless
/// the build was tampered with).
///
/// # Examples
///
/// ```
/// use speclight::experiment::corpus::{load, Corpus};
/// let text = load(Corpus::RustBook)?;
/// assert!(text.train.len() > 800_000 && text.heldout.len() > 80_000);
/// # Ok::<(), speclight::Error>(())
/// ```
pub fn load(corpus: Corpus) -> Result<CorpusText> {
    let (train, heldout) = corpus.compressed();
    Ok(CorpusText {
        corpus,
        train: gunzip(train)?,
        heldout: gunzip(heldout)?,
    })
}

/// Decompresses gzip bytes with `flate2`.
///
/// # Errors
///
/// [`Error::Parse`] with the decoder's message when `bytes` is not a valid
/// gzip stream.
///
/// # Examples
///
/// ```
/// assert!(speclight::experiment::corpus::gunzip(b"not gzip").is_err());
/// ```
pub fn gunzip(bytes: &[u8]) -> Result<Vec<u8>> {
    let mut out = Vec::with_capacity(bytes.len() * 4);
    flate2::read::GzDecoder::new(bytes)
        .read_to_end(&mut out)
        .map_err(|e| Error::Parse(format!("invalid gzip data: {e}")))?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_are_disjoint_and_split_at_a_newline() {
        for corpus in Corpus::ALL {
            let t = load(corpus).unwrap();
            assert_eq!(t.train.last(), Some(&b'\n'), "{}", corpus.name());
            let total = (t.train.len() + t.heldout.len()) as f64;
            let frac = t.train.len() as f64 / total;
            assert!((0.89..0.92).contains(&frac), "{}: {frac}", corpus.name());
            assert_eq!(Corpus::from_name(corpus.name()).unwrap(), corpus);
        }
    }
}
