//! E[X] of a tree under a context-free verifier, and the certified bounds on
//! any tree of a capacity (docs/THEORY.md sections 2 and 4).

use pyo3::prelude::*;
use pyo3::types::PyDict;
use speclight::bound::{
    optimal_value, paper_bound, renewal_bound, renewal_bound_optimized, DualOptions, Moments,
};
use speclight::{evaluate as evaluate_tree, Iid};

use crate::arrays::{dist_from_logprobs, Floats};
use crate::errors::OrValueError;
use crate::tree::PyTree;

/// The exact E[X] of `tree` and the distribution of the accepted length
/// (`accept_at_least[k - 1] = P(X >= k)`, `accept_length_pmf[k] = P(X = k)`) under a verifier whose
/// next-token log-probabilities after every prefix are `logprobs`.
#[pyfunction]
#[pyo3(signature = (tree, logprobs, tokens = None))]
pub fn evaluate<'py>(
    py: Python<'py>,
    tree: &PyTree,
    logprobs: Floats,
    tokens: Option<Vec<i64>>,
) -> PyResult<Bound<'py, PyDict>> {
    let mut verifier = Iid::new(dist_from_logprobs(logprobs, tokens)?);
    let value = evaluate_tree(&tree.tree, &mut verifier).or_value_error()?;
    let d = PyDict::new(py);
    d.set_item("expected_accepted", value.expected_accepted)?;
    d.set_item("accept_length_pmf", value.accept_length_pmf())?;
    d.set_item("accept_at_least", value.accept_at_least)?;
    Ok(d)
}

/// Certified upper bounds on E[X] for every tree of at most `capacity`
/// nodes under a context-free verifier: the optimum `opt` (by the dual
/// enumeration), the closed forms `b1`, `b2` and `paper`, and the moments
/// `mu`, `mu2`.
#[pyfunction]
#[pyo3(signature = (logprobs, capacity, max_depth = None, tokens = None))]
pub fn bounds<'py>(
    py: Python<'py>,
    logprobs: Floats,
    capacity: usize,
    max_depth: Option<u32>,
    tokens: Option<Vec<i64>>,
) -> PyResult<Bound<'py, PyDict>> {
    let dist = dist_from_logprobs(logprobs, tokens)?;
    let m = Moments::of_dist(&dist).or_value_error()?;
    let mut verifier = Iid::new(dist);
    let opts = DualOptions::default().with_max_depth(max_depth);
    let opt = py
        .detach(|| optimal_value(&mut verifier, capacity, &opts))
        .or_value_error()?;
    let d = PyDict::new(py);
    d.set_item("opt", opt.value)?;
    d.set_item(
        "b1",
        renewal_bound(m.entropy, m.second_log_moment, capacity, max_depth).value(),
    )?;
    d.set_item(
        "b2",
        renewal_bound_optimized(m.entropy, m.second_log_moment, capacity, max_depth).value(),
    )?;
    d.set_item(
        "paper",
        paper_bound(m.entropy, m.second_log_moment, capacity, max_depth).value(),
    )?;
    d.set_item("mu", m.entropy)?;
    d.set_item("mu2", m.second_log_moment)?;
    Ok(d)
}
