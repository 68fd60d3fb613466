//! numpy conversions: distributions in, index arrays out, and writes into
//! buffers the caller owns, numpy arrays or CPU torch tensors (checked for
//! dtype, size and contiguity, as outlines-core's `write_mask_into` does) so
//! that a server's step allocates nothing on the Python side.

use numpy::{
    Element, PyArray1, PyReadonlyArray1, PyReadwriteArrayDyn, PyUntypedArray, PyUntypedArrayMethods,
};
use pyo3::prelude::*;
use pyo3::types::PyAnyMethods;
use speclight::{TokenDist, TokenId};

use crate::errors::{value_error, OrValueError};

/// Largest token id a distribution may carry (`TokenId` is `u32`).
const MAX_TOKEN: i64 = u32::MAX as i64;

/// Floats read from Python: a 1-D `float64` numpy array in one copy, any
/// other sequence of numbers element by element. The sequence protocol
/// costs about a microsecond more for a 32-entry array, a third of a
/// build call (docs/python.md, "Overhead").
pub struct Floats(pub Vec<f64>);

impl<'a, 'py> FromPyObject<'a, 'py> for Floats {
    type Error = PyErr;

    fn extract(obj: Borrowed<'a, 'py, PyAny>) -> PyResult<Self> {
        if let Ok(array) = obj.extract::<PyReadonlyArray1<'py, f64>>() {
            return Ok(Self(array.as_array().to_vec()));
        }
        obj.extract::<Vec<f64>>().map(Self)
    }
}

/// A drafter's or verifier's next-token distribution from natural-log
/// probabilities (any sequence of floats) and optional token ids (default:
/// the index, `0..len`).
pub fn dist_from_logprobs(logprobs: Floats, tokens: Option<Vec<i64>>) -> PyResult<TokenDist> {
    let logprobs = logprobs.0;
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

/// An element type of a caller-owned buffer, with its numpy and torch names.
pub trait BufferElement: Element + Copy {
    /// numpy's name of the dtype.
    const NUMPY: &'static str;
    /// `str(tensor.dtype)` in torch.
    const TORCH: &'static str;
}

impl BufferElement for i64 {
    const NUMPY: &'static str = "int64";
    const TORCH: &'static str = "torch.int64";
}

impl BufferElement for i32 {
    const NUMPY: &'static str = "int32";
    const TORCH: &'static str = "torch.int32";
}

impl BufferElement for f32 {
    const NUMPY: &'static str = "float32";
    const TORCH: &'static str = "torch.float32";
}

/// Copies `values` into the caller's buffer of exactly `values.len()`
/// elements of dtype `T`, in place (same address): a writeable C-contiguous
/// numpy array, or a CPU torch tensor (see [`write_torch`]). Anything else
/// raises `ValueError` and nothing is written. O(len).
pub fn write_into<T: BufferElement>(
    out: &Bound<'_, PyAny>,
    values: &[T],
    what: &str,
) -> PyResult<()> {
    if out.cast::<PyUntypedArray>().is_ok() {
        write_numpy(out, values, what)
    } else if out.hasattr("data_ptr")? {
        write_torch(out, values, what)
    } else {
        Err(value_error(format!(
            "{what}: the output must be a numpy array or a torch tensor of dtype {}",
            T::NUMPY
        )))
    }
}

/// The numpy path: the `numpy` crate checks dtype and writeability.
fn write_numpy<T: BufferElement>(out: &Bound<'_, PyAny>, values: &[T], what: &str) -> PyResult<()> {
    let mut out: PyReadwriteArrayDyn<'_, T> = out.extract().map_err(|_| {
        value_error(format!(
            "{what}: the output must be a writeable numpy array of dtype {}",
            T::NUMPY
        ))
    })?;
    check_len(out.len(), values.len(), what)?;
    let slice = out
        .as_slice_mut()
        .map_err(|_| value_error(format!("{what}: the output array must be C-contiguous")))?;
    slice.copy_from_slice(values);
    Ok(())
}

fn check_len(have: usize, need: usize, what: &str) -> PyResult<()> {
    if have == need {
        Ok(())
    } else {
        Err(value_error(format!(
            "{what}: the output has {have} elements, {need} are needed"
        )))
    }
}

/// The torch path, without importing torch: the tensor's device, layout,
/// dtype, contiguity, autograd flag and size are read through Python
/// attributes and all checked before `data_ptr()` is written. A CUDA (or
/// any non-CPU) tensor is refused: its `data_ptr()` is device memory the
/// CPU cannot write; fill a pinned CPU tensor and copy it to the device.
fn write_torch<T: BufferElement>(out: &Bound<'_, PyAny>, values: &[T], what: &str) -> PyResult<()> {
    let device: String = out.getattr("device")?.getattr("type")?.extract()?;
    if device != "cpu" {
        return Err(value_error(format!(
            "{what}: the tensor is on device '{device}': its data_ptr() is not CPU memory; \
             write into a (pinned) CPU tensor and copy it with .to(device, non_blocking=True)"
        )));
    }
    let layout = out.getattr("layout")?.str()?.to_string();
    if layout != "torch.strided" {
        return Err(value_error(format!(
            "{what}: the tensor's layout is {layout}, not torch.strided"
        )));
    }
    let dtype = out.getattr("dtype")?.str()?.to_string();
    let element_size: usize = out.call_method0("element_size")?.extract()?;
    if dtype != T::TORCH || element_size != std::mem::size_of::<T>() {
        return Err(value_error(format!(
            "{what}: the tensor's dtype is {dtype}, {} is needed",
            T::TORCH
        )));
    }
    if !out.call_method0("is_contiguous")?.extract::<bool>()? {
        return Err(value_error(format!(
            "{what}: the tensor must be contiguous"
        )));
    }
    if out.getattr("requires_grad")?.extract::<bool>()? {
        return Err(value_error(format!(
            "{what}: the tensor requires grad: autograd would not see a write through data_ptr()"
        )));
    }
    check_len(out.call_method0("numel")?.extract()?, values.len(), what)?;
    let address: usize = out.call_method0("data_ptr")?.extract()?;
    write_at(address, values, what)
}

/// Writes `values` at `address`, after the checks `write_torch` made.
#[allow(unsafe_code)] // the one write through a raw pointer in the bindings
fn write_at<T: BufferElement>(address: usize, values: &[T], what: &str) -> PyResult<()> {
    if values.is_empty() {
        return Ok(()); // an empty tensor may have a null data_ptr()
    }
    if address == 0 || address % std::mem::align_of::<T>() != 0 {
        return Err(value_error(format!(
            "{what}: data_ptr() {address:#x} is null or not aligned for {}",
            T::TORCH
        )));
    }
    // SAFETY: `address` is the `data_ptr()` of a live CPU tensor (the caller
    // holds `out`, so its storage outlives this call) that is strided,
    // contiguous, of exactly `values.len()` elements of `T`'s dtype and
    // size, non-null and aligned (all checked above). The GIL is held, and
    // the source is a Rust slice, so the ranges cannot overlap. As with any
    // buffer shared by threads, the caller must not use the tensor from
    // another thread during the call.
    unsafe {
        std::ptr::copy_nonoverlapping(values.as_ptr(), address as *mut T, values.len());
    }
    Ok(())
}
