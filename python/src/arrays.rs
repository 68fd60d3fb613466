//! numpy conversions: distributions in, index arrays out, and writes into
//! buffers the caller owns (checked for dtype, size and contiguity, as
//! outlines-core's `write_mask_into` does) so that a server's step
//! allocates nothing on the Python side.

use numpy::{Element, PyArray1, PyReadwriteArrayDyn, PyUntypedArrayMethods};
use pyo3::prelude::*;
use speclight::{TokenDist, TokenId};

use crate::errors::{value_error, OrValueError};

/// Largest token id a distribution may carry (`TokenId` is `u32`).
const MAX_TOKEN: i64 = u32::MAX as i64;

/// A drafter's or verifier's next-token distribution from natural-log
/// probabilities (any sequence of floats) and optional token ids (default:
/// the index, `0..len`).
pub fn dist_from_logprobs(logprobs: Vec<f64>, tokens: Option<Vec<i64>>) -> PyResult<TokenDist> {
    let tokens = match tokens {
        Some(t) => token_ids(&t, logprobs.len())?,
        None => (0..logprobs.len())
            .map(|i| TokenId::try_from(i).map_err(|_| value_error("too many tokens")))
            .collect::<PyResult<_>>()?,
    };
    TokenDist::from_token_logprobs(&tokens, &logprobs).or_value_error()
}

/// Token ids checked to fit `u32` and to match `len` log-probabilities.
fn token_ids(tokens: &[i64], len: usize) -> PyResult<Vec<TokenId>> {
    if tokens.len() != len {
        return Err(value_error(format!(
            "tokens has {} entries but logprobs has {len}",
            tokens.len()
        )));
    }
    tokens
        .iter()
        .map(|&t| {
            if (0..=MAX_TOKEN).contains(&t) {
                Ok(t as TokenId)
            } else {
                Err(value_error(format!("token id {t} is outside 0..=2^32-1")))
            }
        })
        .collect()
}

/// A new 1-D `int64` array from any integer slice.
pub fn int64_array<'py, T: Copy + Into<i64>>(
    py: Python<'py>,
    values: &[T],
) -> Bound<'py, PyArray1<i64>> {
    PyArray1::from_iter(py, values.iter().map(|&v| v.into()))
}

/// Copies `values` into the caller's contiguous array of exactly
/// `values.len()` elements of dtype `T`, in place (same address).
pub fn write_into<T: Element + Copy>(
    out: &Bound<'_, PyAny>,
    values: &[T],
    what: &str,
) -> PyResult<()> {
    let mut out: PyReadwriteArrayDyn<'_, T> = out.extract().map_err(|_| {
        value_error(format!(
            "{what}: the output must be a writeable numpy array of dtype {}",
            std::any::type_name::<T>()
        ))
    })?;
    if out.len() != values.len() {
        return Err(value_error(format!(
            "{what}: the output array has {} elements, {} are needed",
            out.len(),
            values.len()
        )));
    }
    let slice = out
        .as_slice_mut()
        .map_err(|_| value_error(format!("{what}: the output array must be C-contiguous")))?;
    slice.copy_from_slice(values);
    Ok(())
}
