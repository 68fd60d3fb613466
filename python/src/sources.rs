//! Inputs the dict functions share with the CLI: a latency profile given as a
//! file (what `--latency` reads) or as arrays.

use std::path::PathBuf;

use pyo3::prelude::*;
use speclight::capacity::LatencyProfile;

use crate::errors::value_error;

/// Most points a latency profile given as arrays may have (a file is limited
/// by the library's whole-file input limit, docs/limits.md).
pub const MAX_PROFILE_POINTS: usize = 1 << 20;

/// A latency profile from `source`: a path (`str` or `os.PathLike`) to a CSV
/// `draft_tokens,seconds` or `.json` file, read by the library as the CLI
/// reads it, or a tuple `(draft_tokens, seconds)` of two equal-length
/// sequences (numpy arrays or lists). `what` names the argument in errors.
pub fn latency_profile(source: &Bound<'_, PyAny>, what: &str) -> PyResult<LatencyProfile> {
    if let Ok(path) = source.extract::<PathBuf>() {
        return LatencyProfile::from_path(&path).map_err(|e| match e {
            // An I/O error already names the path.
            speclight::Error::Io(message) => value_error(message),
            e => value_error(format!("{what} {}: {e}", path.display())),
        });
    }
    let (tokens, seconds): (Vec<u64>, Vec<f64>) = source.extract().map_err(|_| {
        value_error(format!(
            "{what}: give a file path or a tuple (draft_tokens, seconds) of two sequences"
        ))
    })?;
    if tokens.len() != seconds.len() {
        return Err(value_error(format!(
            "{what}: {} token counts but {} times",
            tokens.len(),
            seconds.len()
        )));
    }
    if tokens.len() > MAX_PROFILE_POINTS {
        return Err(value_error(format!(
            "{what}: {} points, above the limit of {MAX_PROFILE_POINTS}",
            tokens.len()
        )));
    }
    let points: Vec<(u64, f64)> = tokens.into_iter().zip(seconds).collect();
    LatencyProfile::new(&points).map_err(|e| value_error(format!("{what}: {e}")))
}
