//! `speclight.Tree`: a draft tree as numpy arrays, and the rank-path formats
//! servers read (Medusa/EAGLE choices, vLLM's `speculative_token_tree`),
//! refused, as the CLI's `convert` refuses them, for a tree the server would
//! not draft as written (docs/deploy.md).

use numpy::PyArray1;
use pyo3::prelude::*;
use speclight::deploy::DEFAULT_MAX_RANK;
use speclight::format::{
    from_rank_paths, level_uniform_violation, medusa_choices_string, to_rank_paths,
    vllm_tree_string, RankRule,
};
use speclight::DraftTree;

use crate::arrays::int64_array;
use crate::errors::{value_error, OrValueError};

/// A draft tree. Node `i`'s parent is `parents[i] < i`, or -1 for a child of
/// the root (the last accepted token). Immutable.
#[pyclass(name = "Tree", module = "speclight", frozen)]
pub struct PyTree {
    pub tree: DraftTree,
    /// E[X] under the drafter that built the tree, when one did.
    pub expected_accepted: Option<f64>,
}

impl PyTree {
    pub fn new(tree: DraftTree, expected_accepted: Option<f64>) -> Self {
        Self {
            tree,
            expected_accepted,
        }
    }

    fn unsorted_rank_paths(&self) -> PyResult<Vec<Vec<u32>>> {
        let rule = if self.tree.has_draft_probs() {
            RankRule::DraftOrder
        } else {
            RankRule::TokenIsRank
        };
        to_rank_paths(&self.tree, rule).or_value_error()
    }
}

#[pymethods]
impl PyTree {
    /// A tree from Medusa/EAGLE `choices` (rank paths such as
    /// `[[0], [1], [0, 0]]`); node tokens are the ranks.
    #[staticmethod]
    #[pyo3(signature = (choices, top_k = None))]
    fn from_medusa_choices(choices: Vec<Vec<u32>>, top_k: Option<usize>) -> PyResult<Self> {
        Ok(Self::new(
            from_rank_paths(&choices, top_k).or_value_error()?,
            None,
        ))
    }

    /// Number of draft nodes (the root is not counted).
    fn __len__(&self) -> usize {
        self.tree.len()
    }

    fn __repr__(&self) -> String {
        match self.expected_accepted {
            Some(e) => format!(
                "Tree(nodes={}, max_depth={}, expected_accepted={e:.6})",
                self.tree.len(),
                self.tree.max_depth()
            ),
            None => format!(
                "Tree(nodes={}, max_depth={})",
                self.tree.len(),
                self.tree.max_depth()
            ),
        }
    }

    /// E[X] under the drafter that built the tree (None for a tree read from choices).
    #[getter]
    fn expected_accepted(&self) -> Option<f64> {
        self.expected_accepted
    }

    /// Parent of each node (`int64`), -1 for the root's children.
    #[getter]
    fn parents<'py>(&self, py: Python<'py>) -> Bound<'py, PyArray1<i64>> {
        let parents: Vec<i64> = (0..self.tree.len())
            .map(|i| self.tree.parent(i).map_or(-1, |p| p as i64))
            .collect();
        int64_array(py, &parents)
    }

    /// Token id of each node (`int64`).
    #[getter]
    fn tokens<'py>(&self, py: Python<'py>) -> Bound<'py, PyArray1<i64>> {
        int64_array(py, self.tree.tokens())
    }

    /// Depth of each node (`int64`); the root's children have depth 1.
    #[getter]
    fn depths<'py>(&self, py: Python<'py>) -> Bound<'py, PyArray1<i64>> {
        int64_array(py, self.tree.depths())
    }

    /// The drafter's log-probability of the path to each node (`float64`).
    #[getter]
    fn path_logprobs<'py>(&self, py: Python<'py>) -> Bound<'py, PyArray1<f64>> {
        PyArray1::from_slice(py, self.tree.path_logprobs())
    }

    /// The deepest node's depth (0 for an empty tree).
    #[getter]
    fn max_depth(&self) -> u32 {
        self.tree.max_depth()
    }

    /// The tree as rank paths: each node's path of sibling ranks (rank 0 =
    /// the drafter's most probable child), breadth-first.
    fn rank_paths(&self) -> PyResult<Vec<Vec<u32>>> {
        self.rank_paths_sorted()
    }

    /// Medusa/EAGLE `choices` as a Python list literal. Medusa and EAGLE
    /// draft each node's candidates from a fixed top-10 (`TOPK=10` and
    /// `torch.topk(..., TOPK)` in FasterDecoding/Medusa
    /// `medusa/model/utils.py`, commit 2b89814): a rank at or above
    /// `top_k` raises `ValueError` naming the first such path, as
    /// `speclight convert --to medusa --top-k` does.
    #[pyo3(signature = (top_k = DEFAULT_MAX_RANK))]
    fn to_medusa(&self, top_k: usize) -> PyResult<String> {
        let paths = self.rank_paths_sorted()?;
        if let Some(path) = paths
            .iter()
            .find(|p| p.iter().any(|&r| r as usize >= top_k))
        {
            let rank = path.iter().copied().max().unwrap_or(0);
            return Err(value_error(format!(
                "rank {rank} in path {path:?} is not below top_k {top_k}: Medusa reads only its \
                 top {top_k} candidates per node (build under the limit with \
                 speclight.deploy(\"medusa\", ...))"
            )));
        }
        Ok(medusa_choices_string(&paths))
    }

    /// vLLM's `speculative_token_tree` string. vLLM's EAGLE proposer drafts
    /// the same top-ranked children below every node of a level
    /// (vllm-project/vllm `vllm/v1/spec_decode/eagle.py`, commit f7eef1b:
    /// `child_drafts_per_level[l] = num_drafts_per_level[l] //
    /// num_drafts_per_level[l - 1]`), so a tree that is not level-uniform
    /// raises `ValueError` naming the first offending node, as `speclight
    /// convert --to vllm` refuses it (no override: vLLM would draft a
    /// different tree than the one printed).
    fn to_vllm(&self) -> PyResult<String> {
        let paths = self.rank_paths_sorted()?;
        if let Some(detail) = level_uniform_violation(&paths) {
            return Err(value_error(format!(
                "the tree is not level-uniform, so vLLM would not draft it as written (its \
                 EAGLE proposer drafts the same top-ranked children below every node of a \
                 level): {detail}; build the best level-uniform tree with \
                 speclight.deploy(\"vllm\", ...)"
            )));
        }
        Ok(vllm_tree_string(&paths))
    }
}

impl PyTree {
    fn rank_paths_sorted(&self) -> PyResult<Vec<Vec<u32>>> {
        let mut paths = self.unsorted_rank_paths()?;
        speclight::format::sort_breadth_first(&mut paths);
        Ok(paths)
    }
}
