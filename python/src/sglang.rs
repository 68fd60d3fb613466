//! SGLang drop-in for EAGLE tree selection (`speclight.sglang`): the inputs
//! and outputs of SGLang's `organize_draft_results` and
//! `build_tree_kernel_efficient` in its shapes and layouts, plus what SGLang
//! cannot do: per-request token budgets from the crate's batch allocator and
//! the exact `E[X]` of each selected tree. The Python wrapper
//! (`python/speclight/sglang.py`) concatenates SGLang's per-step lists; these
//! functions take the concatenated, C-contiguous arrays.

mod candidates;
mod value;
mod verify;

use numpy::{
    PyArray1, PyArray2, PyArrayMethods, PyReadonlyArray1, PyReadonlyArray2, PyUntypedArrayMethods,
};
use pyo3::prelude::*;
use speclight::{Error, Result};

use candidates::{read_batch, read_parent_batch, selected_row, Candidates, Shape};
use verify::MaskMode;

use crate::errors::{value_error, OrValueError};

/// A read-only 2-D array's dims and a copy of its elements.
fn matrix<T: numpy::Element + Copy>(
    a: &PyReadonlyArray2<'_, T>,
    what: &str,
) -> PyResult<([usize; 2], Vec<T>)> {
    let dims = [a.shape()[0], a.shape()[1]];
    let data = a
        .as_slice()
        .map_err(|_| value_error(format!("sglang: {what} must be C-contiguous")))?
        .to_vec();
    Ok((dims, data))
}

fn vector<T: numpy::Element + Copy>(a: &PyReadonlyArray1<'_, T>, what: &str) -> PyResult<Vec<T>> {
    Ok(a.as_slice()
        .map_err(|_| value_error(format!("sglang: {what} must be C-contiguous")))?
        .to_vec())
}

fn invalid(why: String) -> Error {
    Error::InvalidArgument(format!("sglang: {why}"))
}

/// `num_draft_tokens` is at least 2 and its `n - 1` nodes exist.
fn check_draft_tokens(n: usize, shape: Shape) -> Result<()> {
    if n < 2 || n - 1 > shape.candidates() {
        return Err(invalid(format!(
            "num_draft_tokens {n} must be >= 2 and at most 1 + the {} candidates",
            shape.candidates()
        )));
    }
    Ok(())
}

fn to_matrix<'py, T: numpy::Element>(
    py: Python<'py>,
    v: Vec<T>,
    rows: usize,
    cols: usize,
) -> PyResult<Bound<'py, PyArray2<T>>> {
    PyArray1::from_vec(py, v).reshape([rows, cols])
}

/// `(top_scores_index, draft_tokens)`, both `B x (n - 1)`.
type Organized<'py> = (Bound<'py, PyArray2<i64>>, Bound<'py, PyArray2<i64>>);

/// `organize_draft_results` on the concatenated `scores` and `tokens`
/// (`B x G`) and `parent_list` (`B x P`): each request keeps its
/// `budgets[b] - 1` best candidates (default `num_draft_tokens - 1`),
/// ascending, padded with -1 (tokens with 0) to `num_draft_tokens - 1`.
/// Returns `(top_scores_index, draft_tokens)`. O(B G log G).
#[pyfunction]
#[pyo3(signature = (scores, tokens, parent_list, topk, num_steps, num_draft_tokens, budgets = None))]
// The arguments are SGLang's, one for one.
#[allow(clippy::too_many_arguments)]
pub fn sglang_organize<'py>(
    py: Python<'py>,
    scores: PyReadonlyArray2<'py, f64>,
    tokens: PyReadonlyArray2<'py, i64>,
    parent_list: PyReadonlyArray2<'py, i64>,
    topk: usize,
    num_steps: usize,
    num_draft_tokens: usize,
    budgets: Option<Vec<i64>>,
) -> PyResult<Organized<'py>> {
    let (sd, s) = matrix(&scores, "score_list")?;
    let (td, t) = matrix(&tokens, "token_list")?;
    let (pd, p) = matrix(&parent_list, "parent_list")?;
    let n = num_draft_tokens;
    let (index, drafts) = py
        .detach(|| -> Result<_> {
            let shape = Shape::new(topk, num_steps)?;
            check_draft_tokens(n, shape)?;
            if td != sd {
                return Err(invalid(format!(
                    "token_list has shape {td:?}, score_list {sd:?}"
                )));
            }
            let requests = read_batch(shape, &s, sd, &p, pd)?;
            let keep = kept(&requests, n, budgets.as_deref())?;
            Ok(organize(&requests, &keep, &t, n))
        })
        .or_value_error()?;
    let b = sd[0];
    Ok((
        to_matrix(py, index, b, n - 1)?,
        to_matrix(py, drafts, b, n - 1)?,
    ))
}

/// Nodes each request keeps: `budgets[b] - 1`, each budget in `1..=n`.
fn kept(requests: &[Candidates], n: usize, budgets: Option<&[i64]>) -> Result<Vec<usize>> {
    let Some(budgets) = budgets else {
        return Ok(vec![n - 1; requests.len()]);
    };
    if budgets.len() != requests.len() {
        return Err(invalid(format!(
            "{} budgets for {} requests",
            budgets.len(),
            requests.len()
        )));
    }
    budgets
        .iter()
        .map(|&x| {
            if (1..=n as i64).contains(&x) {
                Ok(x as usize - 1)
            } else {
                Err(invalid(format!(
                    "budget {x} is not in 1..={n} (num_draft_tokens)"
                )))
            }
        })
        .collect()
}

/// Flat `(top_scores_index, draft_tokens)` rows of `n - 1`, padded.
fn organize(
    requests: &[Candidates],
    keep: &[usize],
    tokens: &[i64],
    n: usize,
) -> (Vec<i64>, Vec<i64>) {
    let g = requests.first().map_or(0, |c| c.score.len());
    let mut index = Vec::with_capacity(requests.len() * (n - 1));
    let mut drafts = Vec::with_capacity(requests.len() * (n - 1));
    for (b, (c, &m)) in requests.iter().zip(keep).enumerate() {
        for j in c.select(m) {
            index.push(j as i64);
            drafts.push(tokens[b * g + j]);
        }
        for _ in m..n - 1 {
            index.push(-1);
            drafts.push(0);
        }
    }
    (index, drafts)
}

/// What `sglang_build_tree` returns: the mask (`bool`, or `uint32` words
/// for the packed mode), positions, the three `retrive_*` arrays
/// (`B x n`) and the flat draft tokens with each request's bonus token first.
type Built<'py> = (
    Bound<'py, PyAny>,
    Bound<'py, PyArray1<i64>>,
    Bound<'py, PyArray2<i64>>,
    Bound<'py, PyArray2<i64>>,
    Bound<'py, PyArray2<i64>>,
    Bound<'py, PyArray1<i64>>,
);

/// `build_tree_kernel_efficient`'s arrays (module `verify`'s docs).
#[pyfunction]
#[pyo3(signature = (verified_id, parent_list, top_scores_index, draft_tokens, seq_lens, topk, num_steps, num_verify_tokens, tree_mask_mode = 0))]
// The arguments are SGLang's, one for one.
#[allow(clippy::too_many_arguments)]
pub fn sglang_build_tree<'py>(
    py: Python<'py>,
    verified_id: PyReadonlyArray1<'py, i64>,
    parent_list: PyReadonlyArray2<'py, i64>,
    top_scores_index: PyReadonlyArray2<'py, i64>,
    draft_tokens: PyReadonlyArray2<'py, i64>,
    seq_lens: PyReadonlyArray1<'py, i64>,
    topk: usize,
    num_steps: usize,
    num_verify_tokens: usize,
    tree_mask_mode: i64,
) -> PyResult<Built<'py>> {
    let verified = vector(&verified_id, "verified_id")?;
    let lens = vector(&seq_lens, "seq_lens")?;
    let (pd, p) = matrix(&parent_list, "parent_list")?;
    let (sd, sel) = matrix(&top_scores_index, "top_scores_index")?;
    let (dd, drafts) = matrix(&draft_tokens, "draft_tokens")?;
    let n = num_verify_tokens;
    let (mode, arrays) = py
        .detach(|| -> Result<_> {
            let shape = Shape::new(topk, num_steps)?;
            check_draft_tokens(n, shape)?;
            let b = pd[0];
            if sd != [b, n - 1] || dd != [b, n - 1] || verified.len() != b {
                return Err(invalid(format!(
                    "top_scores_index {sd:?} and draft_tokens {dd:?} must be [{b}, {}] and verified_id {} long, for parent_list {pd:?}",
                    n - 1,
                    verified.len()
                )));
            }
            let parents = read_parent_batch(shape, &p, pd)?;
            let mode = MaskMode::new(tree_mask_mode, n)?;
            Ok((mode, verify::build(&parents, &sel, n, &lens, mode)?))
        })
        .or_value_error()?;
    let b = pd[0];
    let mask = match mode {
        MaskMode::Packed => PyArray1::from_vec(py, arrays.mask_packed).into_any(),
        _ => PyArray1::from_vec(py, arrays.mask_bool).into_any(),
    };
    let mut tokens = Vec::with_capacity(b * n);
    for (i, &v) in verified.iter().enumerate() {
        tokens.push(v);
        tokens.extend_from_slice(&drafts[i * (n - 1)..(i + 1) * (n - 1)]);
    }
    Ok((
        mask,
        PyArray1::from_vec(py, arrays.positions),
        to_matrix(py, arrays.retrive_index, b, n)?,
        to_matrix(py, arrays.retrive_next_token, b, n)?,
        to_matrix(py, arrays.retrive_next_sibling, b, n)?,
        PyArray1::from_vec(py, tokens),
    ))
}

/// `num_draft_tokens` per request from the crate's batch allocator
/// (module `value`'s `allocate`).
#[pyfunction]
#[pyo3(signature = (scores, parent_list, topk, num_steps, total_draft_tokens, min_draft_tokens = 2, max_draft_tokens = None))]
// The arguments are SGLang's, one for one.
#[allow(clippy::too_many_arguments)]
pub fn sglang_allocate<'py>(
    py: Python<'py>,
    scores: PyReadonlyArray2<'py, f64>,
    parent_list: PyReadonlyArray2<'py, i64>,
    topk: usize,
    num_steps: usize,
    total_draft_tokens: usize,
    min_draft_tokens: usize,
    max_draft_tokens: Option<usize>,
) -> PyResult<Bound<'py, PyArray1<i64>>> {
    let (sd, s) = matrix(&scores, "score_list")?;
    let (pd, p) = matrix(&parent_list, "parent_list")?;
    let budgets = py
        .detach(|| -> Result<_> {
            let shape = Shape::new(topk, num_steps)?;
            let most = shape.candidates() + 1;
            let max = max_draft_tokens.unwrap_or(most);
            if max > most {
                return Err(invalid(format!(
                    "max_draft_tokens {max} exceeds 1 + the {} candidates",
                    shape.candidates()
                )));
            }
            let requests = read_batch(shape, &s, sd, &p, pd)?;
            value::allocate(&requests, total_draft_tokens, min_draft_tokens, max)
        })
        .or_value_error()?;
    Ok(PyArray1::from_iter(
        py,
        budgets.into_iter().map(|x| x as i64),
    ))
}

/// Exact `E[X]` of each request's selected tree (a row of
/// `top_scores_index`, -1 padded) when the verifier draws as the drafter
/// scores (module `value`'s `expected_accepted`).
#[pyfunction]
pub fn sglang_expected_accepted<'py>(
    py: Python<'py>,
    scores: PyReadonlyArray2<'py, f64>,
    parent_list: PyReadonlyArray2<'py, i64>,
    top_scores_index: PyReadonlyArray2<'py, i64>,
    topk: usize,
    num_steps: usize,
) -> PyResult<Bound<'py, PyArray1<f64>>> {
    let (sd, s) = matrix(&scores, "score_list")?;
    let (pd, p) = matrix(&parent_list, "parent_list")?;
    let (id, sel) = matrix(&top_scores_index, "top_scores_index")?;
    let values = py
        .detach(|| -> Result<Vec<f64>> {
            let shape = Shape::new(topk, num_steps)?;
            let requests = read_batch(shape, &s, sd, &p, pd)?;
            if id[0] != sd[0] {
                return Err(invalid(format!(
                    "top_scores_index has {} rows for {} requests",
                    id[0], sd[0]
                )));
            }
            let w = id[1];
            requests
                .iter()
                .enumerate()
                .map(|(b, c)| {
                    let chosen = selected_row(&sel[b * w..(b + 1) * w], c.score.len(), b)?;
                    value::expected_accepted(c, &chosen)
                })
                .collect()
        })
        .or_value_error()?;
    Ok(PyArray1::from_vec(py, values))
}
