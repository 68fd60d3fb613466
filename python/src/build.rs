//! Builders: the optimal tree for a context-free drafter (one next-token
//! distribution after every prefix), once or per step with a reusable
//! builder, and a batch over many requests with the GIL released.

use pyo3::prelude::*;
use speclight::{Evaluator, Iid, TreeBuilder};

use numpy::PyArray1;

use crate::arrays::{dist_from_logprobs, int64_array, Floats};
use crate::errors::{value_error, OrValueError};
use crate::tree::PyTree;

/// A reusable builder: keeps its buffers between calls, so a server's
/// steady-state step allocates nothing in Rust.
#[pyclass(name = "Builder", module = "speclight")]
pub struct PyBuilder {
    builder: TreeBuilder,
    /// An incremental build was begun and not finished.
    in_progress: bool,
}

#[pymethods]
impl PyBuilder {
    /// A builder of trees of at most `capacity` nodes and `max_depth` levels.
    #[new]
    #[pyo3(signature = (capacity, max_depth = None))]
    fn new(capacity: usize, max_depth: Option<u32>) -> PyResult<Self> {
        let builder = TreeBuilder::new(capacity)
            .and_then(|b| b.with_max_depth(max_depth))
            .or_value_error()?;
        Ok(Self {
            builder,
            in_progress: false,
        })
    }

    /// The optimal tree for a drafter whose next-token log-probabilities
    /// are `logprobs` after every prefix (token ids `tokens`, default the
    /// index), with its E[X] under that drafter.
    #[pyo3(signature = (logprobs, tokens = None))]
    fn build(
        &mut self,
        py: Python<'_>,
        logprobs: Floats,
        tokens: Option<Vec<i64>>,
    ) -> PyResult<PyTree> {
        let mut drafter = Iid::new(dist_from_logprobs(logprobs, tokens)?);
        self.in_progress = false; // a full build replaces any incremental one
        let builder = &mut self.builder;
        py.detach(|| {
            builder.build(&mut drafter)?;
            Ok(last_tree(builder))
        })
        .or_value_error()
    }

    /// Starts an incremental build for a path-dependent drafter whose
    /// distribution at the root is `logprobs` (token ids `tokens`). Then
    /// loop: `next_batch(w)` names up to `w` nodes whose distributions are
    /// needed (one batched draft forward pass), `feed` each, until the
    /// batch is empty; `finish()` returns the tree.
    #[pyo3(signature = (logprobs, tokens = None))]
    fn begin(&mut self, logprobs: Floats, tokens: Option<Vec<i64>>) -> PyResult<()> {
        let root = dist_from_logprobs(logprobs, tokens)?;
        self.builder.begin(&root);
        self.in_progress = true;
        Ok(())
    }

    /// Up to `width` nodes (`int64` node ids) whose next-token distributions
    /// the build needs, best first; empty when the tree is complete.
    fn next_batch<'py>(
        &mut self,
        py: Python<'py>,
        width: usize,
    ) -> PyResult<Bound<'py, PyArray1<i64>>> {
        self.check_in_progress()?;
        let mut build = self.builder.resume();
        let nodes: Vec<i64> = build
            .next_batch(width)
            .or_value_error()?
            .iter()
            .map(|&n| n as i64)
            .collect();
        Ok(PyArray1::from_vec(py, nodes))
    }

    /// Token ids on the path from the root to `node` of the tree in progress.
    fn path_tokens<'py>(
        &mut self,
        py: Python<'py>,
        node: usize,
    ) -> PyResult<Bound<'py, PyArray1<i64>>> {
        self.check_in_progress()?;
        let build = self.builder.resume();
        if node >= build.tree().len() {
            return Err(value_error(format!(
                "node {node} is not in the tree ({} nodes)",
                build.tree().len()
            )));
        }
        let mut path = Vec::new();
        build.tree().path_tokens(node, &mut path);
        Ok(int64_array(py, &path))
    }

    /// Supplies the drafter's distribution after `node`'s path.
    #[pyo3(signature = (node, logprobs, tokens = None))]
    fn feed(&mut self, node: usize, logprobs: Floats, tokens: Option<Vec<i64>>) -> PyResult<()> {
        self.check_in_progress()?;
        let dist = dist_from_logprobs(logprobs, tokens)?;
        self.builder.resume().feed(node, &dist).or_value_error()
    }

    /// Completes the tree from what the drafter told so far; its
    /// `expected_accepted` is E[X] under the drafter, the sum of its path
    /// probabilities (docs/THEORY.md section 2).
    fn finish(&mut self) -> PyResult<PyTree> {
        self.check_in_progress()?;
        self.builder.resume().finish().or_value_error()?;
        self.in_progress = false;
        Ok(last_tree(&self.builder))
    }

    /// Capacity (maximum number of draft nodes).
    #[getter]
    fn capacity(&self) -> usize {
        self.builder.capacity()
    }

    /// Depth limit, or None.
    #[getter]
    fn max_depth(&self) -> Option<u32> {
        self.builder.max_depth()
    }
}

impl PyBuilder {
    fn check_in_progress(&self) -> PyResult<()> {
        if self.in_progress {
            Ok(())
        } else {
            Err(value_error(
                "no incremental build in progress: call begin first",
            ))
        }
    }
}

/// The builder's last tree with its E[X] under the drafter: the sum of its
/// path probabilities, where the builder's OPT curve ends (no second pass
/// over the tree).
fn last_tree(builder: &TreeBuilder) -> PyTree {
    let value = builder.opt_curve().last().copied().unwrap_or(0.0);
    PyTree::new(builder.tree().clone(), Some(value))
}

/// The optimal tree of at most `capacity` nodes for a context-free drafter.
#[pyfunction]
#[pyo3(signature = (logprobs, capacity, max_depth = None, tokens = None))]
pub fn build(
    py: Python<'_>,
    logprobs: Floats,
    capacity: usize,
    max_depth: Option<u32>,
    tokens: Option<Vec<i64>>,
) -> PyResult<PyTree> {
    PyBuilder::new(capacity, max_depth)?.build(py, logprobs, tokens)
}

/// One optimal tree per request (a list of log-probability sequences), built
/// in parallel on Rust threads with the GIL released.
#[pyfunction]
#[pyo3(signature = (logprobs, capacity, max_depth = None))]
pub fn build_batch(
    py: Python<'_>,
    logprobs: Vec<Floats>,
    capacity: usize,
    max_depth: Option<u32>,
) -> PyResult<Vec<PyTree>> {
    let mut drafters = logprobs
        .into_iter()
        .map(|lp| dist_from_logprobs(lp, None).map(Iid::new))
        .collect::<PyResult<Vec<_>>>()?;
    let trees = py
        .detach(|| speclight::build_batch(&mut drafters, capacity, max_depth))
        .or_value_error()?;
    let mut evaluator = Evaluator::new();
    trees
        .into_iter()
        .zip(drafters.iter_mut())
        .map(|(tree, drafter)| {
            let value = evaluator
                .evaluate(&tree, drafter)
                .or_value_error()?
                .expected_accepted;
            Ok(PyTree::new(tree, Some(value)))
        })
        .collect()
}
