//! The verifier's inputs for a tree (tokens, position ids, tree attention
//! mask, retrieve indices, child/sibling links) and the verification walk
//! over its chosen tokens. Tree position 0 is the root (the context's last
//! token); node `i` of the tree is tree position `i + 1`.

use numpy::{PyArray1, PyArray2, PyArrayMethods};
use pyo3::prelude::*;
use pyo3::types::PyDict;
use speclight::serve::{Accepted, VerifierInputs};
use speclight::TokenId;

use crate::arrays::{int64_array, write_into};
use crate::errors::{value_error, OrValueError};
use crate::tree::PyTree;

/// What the walk returns to Python: accepted tokens, bonus token, kept tree positions.
type Walked<'py> = (Bound<'py, PyArray1<i64>>, i64, Bound<'py, PyArray1<i64>>);

/// Reusable verifier buffers: `fill` once per step, then read the arrays or
/// write them into the caller's own (pinned) buffers.
#[pyclass(name = "VerifierInputs", module = "speclight")]
#[derive(Default)]
pub struct PyVerifierInputs {
    inputs: VerifierInputs,
    accepted: Accepted,
}

fn square<'py, T: numpy::Element>(
    py: Python<'py>,
    values: Vec<T>,
    n: usize,
) -> PyResult<Bound<'py, PyArray2<T>>> {
    PyArray1::from_vec(py, values).reshape([n, n])
}

#[pymethods]
impl PyVerifierInputs {
    #[new]
    fn new() -> Self {
        Self::default()
    }

    /// Recomputes every array for `tree` below a context of `context_len`
    /// tokens ending in `root_token`. Reuses the buffers.
    fn fill(&mut self, tree: &PyTree, context_len: usize, root_token: u32) -> PyResult<()> {
        self.inputs
            .fill(&tree.tree, context_len, root_token)
            .or_value_error()
    }

    /// Tree positions (root + nodes).
    fn __len__(&self) -> usize {
        self.inputs.num_positions()
    }

    /// Token at each tree position, the root first (`int64`).
    #[getter]
    fn tokens<'py>(&self, py: Python<'py>) -> Bound<'py, PyArray1<i64>> {
        int64_array(py, self.inputs.tokens())
    }

    /// Position id of each tree position: `context_len + depth - 1` (`int64`).
    #[getter]
    fn positions<'py>(&self, py: Python<'py>) -> Bound<'py, PyArray1<i64>> {
        PyArray1::from_slice(py, self.inputs.positions())
    }

    /// Additive attention mask (`float32`, n x n): 0 where row sees column, -inf elsewhere.
    #[getter]
    fn mask_bias<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyArray2<f32>>> {
        let n = self.inputs.num_positions();
        let mut bias = vec![0f32; n * n];
        self.inputs
            .write_mask_bias_into(&mut bias)
            .or_value_error()?;
        square(py, bias, n)
    }

    /// Boolean attention mask (n x n): True where row sees column (itself and its ancestors).
    #[getter]
    fn mask_bool<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyArray2<bool>>> {
        let n = self.inputs.num_positions();
        let visible = (0..n * n)
            .map(|k| self.inputs.is_visible(k / n, k % n))
            .collect();
        square(py, visible, n)
    }

    /// One row per leaf: the tree positions from the root to it, -1 padded (`int64`).
    #[getter]
    fn retrieve_indices<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyArray2<i64>>> {
        let (rows, cols) = self.inputs.retrieve_shape();
        PyArray1::from_slice(py, self.inputs.retrieve_indices()).reshape([rows, cols])
    }

    /// First child of each tree position, -1 if none (`int64`).
    #[getter]
    fn first_child<'py>(&self, py: Python<'py>) -> Bound<'py, PyArray1<i64>> {
        PyArray1::from_slice(py, self.inputs.first_child())
    }

    /// Next sibling of each tree position, -1 if none (`int64`).
    #[getter]
    fn next_sibling<'py>(&self, py: Python<'py>) -> Bound<'py, PyArray1<i64>> {
        PyArray1::from_slice(py, self.inputs.next_sibling())
    }

    /// Writes the tokens into `out` (`int64`, n elements), in place.
    fn write_tokens_into(&self, out: &Bound<'_, PyAny>) -> PyResult<()> {
        let tokens: Vec<i64> = self.inputs.tokens().iter().map(|&t| t.into()).collect();
        write_into(out, &tokens, "tokens")
    }

    /// Writes the position ids into `out` (`int64`, n elements), in place.
    fn write_positions_into(&self, out: &Bound<'_, PyAny>) -> PyResult<()> {
        write_into(out, self.inputs.positions(), "positions")
    }

    /// Writes the additive mask into `out` (`float32`, n*n elements), in place.
    fn write_mask_bias_into(&self, out: &Bound<'_, PyAny>) -> PyResult<()> {
        let n = self.inputs.num_positions();
        let mut bias = vec![0f32; n * n];
        self.inputs
            .write_mask_bias_into(&mut bias)
            .or_value_error()?;
        write_into(out, &bias, "mask_bias")
    }

    /// Writes the mask packed as TensorRT-LLM's `int32` words into `out`
    /// (n rows of ceil(n / 32) words; bit `c % 32` of word `c / 32` of row
    /// `r` is set when `r` sees `c`), in place. Layout checked against
    /// TensorRT-LLM's `SpecTreeManager.compute_spec_dec_packed_mask`
    /// (`tensorrt_llm/_torch/speculative/spec_tree_manager.py`, commit
    /// 040bc9a): rows include the root, `ceil(n / 32)` blocks per row, block
    /// value `sum(bit_k * 2^k)` for columns `32 b + k`.
    fn write_mask_packed_int32_into(&self, out: &Bound<'_, PyAny>) -> PyResult<()> {
        write_into(out, &self.packed_int32(), "mask_packed_int32")
    }

    /// Writes the retrieve indices into `out` (`int64`, rows*cols elements), in place.
    fn write_retrieve_indices_into(&self, out: &Bound<'_, PyAny>) -> PyResult<()> {
        write_into(out, self.inputs.retrieve_indices(), "retrieve_indices")
    }

    /// The verification walk: `chosen[j]` is the verifier's token after
    /// tree position `j` (argmax or sample). Returns `(accepted_tokens,
    /// bonus, kept_positions)`: the accepted draft tokens, the verifier's
    /// bonus token, and the tree positions whose KV-cache rows to keep
    /// (the root and the accepted nodes).
    fn walk_chosen<'py>(&mut self, py: Python<'py>, chosen: Vec<i64>) -> PyResult<Walked<'py>> {
        let chosen = chosen
            .iter()
            .map(|&t| {
                TokenId::try_from(t)
                    .map_err(|_| value_error(format!("token id {t} is outside 0..=2^32-1")))
            })
            .collect::<PyResult<Vec<_>>>()?;
        self.inputs
            .walk_chosen(&chosen, &mut self.accepted)
            .or_value_error()?;
        let kept: Vec<i64> = self.accepted.tree_positions().map(|p| p as i64).collect();
        Ok((
            int64_array(py, self.accepted.tokens()),
            self.accepted.bonus().into(),
            PyArray1::from_vec(py, kept),
        ))
    }
}

impl PyVerifierInputs {
    fn packed_int32(&self) -> Vec<i32> {
        let n = self.inputs.num_positions();
        let words = n.div_ceil(32);
        let mut packed = vec![0i32; n * words];
        for r in 0..n {
            for c in 0..n {
                if self.inputs.is_visible(r, c) {
                    packed[r * words + c / 32] |= (1u32 << (c % 32)) as i32;
                }
            }
        }
        packed
    }

    fn as_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let d = PyDict::new(py);
        d.set_item("tokens", self.tokens(py))?;
        d.set_item("positions", self.positions(py))?;
        d.set_item("mask_bias", self.mask_bias(py)?)?;
        d.set_item("mask_bool", self.mask_bool(py)?)?;
        d.set_item("retrieve_indices", self.retrieve_indices(py)?)?;
        d.set_item("first_child", self.first_child(py))?;
        d.set_item("next_sibling", self.next_sibling(py))?;
        Ok(d)
    }
}

/// Every verifier array for `tree` as a dict of new numpy arrays.
#[pyfunction]
pub fn verifier_inputs<'py>(
    py: Python<'py>,
    tree: &PyTree,
    context_len: usize,
    root_token: u32,
) -> PyResult<Bound<'py, PyDict>> {
    let mut inputs = PyVerifierInputs::new();
    inputs.fill(tree, context_len, root_token)?;
    inputs.as_dict(py)
}

/// The verification walk over `tree` for the verifier's `chosen` token
/// after each tree position (root first): `(accepted_tokens, bonus,
/// kept_positions)`.
#[pyfunction]
pub fn walk_chosen<'py>(py: Python<'py>, tree: &PyTree, chosen: Vec<i64>) -> PyResult<Walked<'py>> {
    let mut inputs = PyVerifierInputs::new();
    // The walk reads only the tree's shape: any context length and root will do.
    inputs.fill(tree, 1, 0)?;
    inputs.walk_chosen(py, chosen)
}
