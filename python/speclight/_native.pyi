"""Type stubs of the native module (``speclight._native``)."""

import os
from typing import Any, Optional, Sequence, Tuple, Union

import numpy as np
import numpy.typing as npt

MAX_CAPACITY: int

class Tree:
    """A draft tree; node ``i``'s parent is ``parents[i] < i`` or -1 (a child of the root)."""

    @staticmethod
    def from_medusa_choices(choices: Sequence[Sequence[int]], top_k: Optional[int] = None) -> "Tree": ...
    def __len__(self) -> int: ...
    @property
    def expected_accepted(self) -> Optional[float]: ...
    @property
    def parents(self) -> npt.NDArray[np.int64]: ...
    @property
    def tokens(self) -> npt.NDArray[np.int64]: ...
    @property
    def depths(self) -> npt.NDArray[np.int64]: ...
    @property
    def path_logprobs(self) -> npt.NDArray[np.float64]: ...
    @property
    def max_depth(self) -> int: ...
    def rank_paths(self) -> list[list[int]]: ...
    def to_medusa(self, top_k: int = 10) -> str: ...
    def to_vllm(self) -> str: ...

class Builder:
    """A reusable builder: keeps its buffers between steps."""

    def __init__(self, capacity: int, max_depth: Optional[int] = None) -> None: ...
    def build(self, logprobs: Sequence[float], tokens: Optional[Sequence[int]] = None) -> Tree: ...
    def begin(self, logprobs: Sequence[float], tokens: Optional[Sequence[int]] = None) -> None: ...
    def next_batch(self, width: int) -> npt.NDArray[np.int64]: ...
    def path_tokens(self, node: int) -> npt.NDArray[np.int64]: ...
    def feed(self, node: int, logprobs: Sequence[float], tokens: Optional[Sequence[int]] = None) -> None: ...
    def finish(self) -> Tree: ...
    @property
    def capacity(self) -> int: ...
    @property
    def max_depth(self) -> Optional[int]: ...

class VerifierInputs:
    """Reusable verifier buffers; tree position 0 is the root."""

    def __init__(self) -> None: ...
    def fill(self, tree: Tree, context_len: int, root_token: int) -> None: ...
    def __len__(self) -> int: ...
    @property
    def tokens(self) -> npt.NDArray[np.int64]: ...
    @property
    def positions(self) -> npt.NDArray[np.int64]: ...
    @property
    def mask_bias(self) -> npt.NDArray[np.float32]: ...
    @property
    def mask_bool(self) -> npt.NDArray[np.bool_]: ...
    @property
    def retrieve_indices(self) -> npt.NDArray[np.int64]: ...
    @property
    def first_child(self) -> npt.NDArray[np.int64]: ...
    @property
    def next_sibling(self) -> npt.NDArray[np.int64]: ...
    def write_tokens_into(self, out: npt.NDArray[np.int64]) -> None: ...
    def write_positions_into(self, out: npt.NDArray[np.int64]) -> None: ...
    def write_mask_bias_into(self, out: npt.NDArray[np.float32]) -> None: ...
    def write_mask_packed_int32_into(self, out: npt.NDArray[np.int32]) -> None: ...
    def write_retrieve_indices_into(self, out: npt.NDArray[np.int64]) -> None: ...
    def walk_chosen(
        self, chosen: Sequence[int]
    ) -> Tuple[npt.NDArray[np.int64], int, npt.NDArray[np.int64]]: ...

def build(
    logprobs: Sequence[float],
    capacity: int,
    max_depth: Optional[int] = None,
    tokens: Optional[Sequence[int]] = None,
) -> Tree: ...
def build_batch(
    logprobs: Sequence[Sequence[float]], capacity: int, max_depth: Optional[int] = None
) -> list[Tree]: ...
def verifier_inputs(tree: Tree, context_len: int, root_token: int) -> dict[str, np.ndarray]: ...
def walk_chosen(
    tree: Tree, chosen: Sequence[int]
) -> Tuple[npt.NDArray[np.int64], int, npt.NDArray[np.int64]]: ...
def evaluate(
    tree: Tree, logprobs: Sequence[float], tokens: Optional[Sequence[int]] = None
) -> dict[str, object]: ...
def bounds(
    logprobs: Sequence[float],
    capacity: int,
    max_depth: Optional[int] = None,
    tokens: Optional[Sequence[int]] = None,
) -> dict[str, float]: ...

# The CLI's --json reports as dicts.
_Latency = Union[str, "os.PathLike[str]", Tuple[Sequence[int], Sequence[float]]]

def solve(
    logprobs: Sequence[float],
    latency: _Latency,
    draft_step: Optional[float] = None,
    draft_profile: Optional[_Latency] = None,
    overhead: float = 0.0,
    max_depth: int = 16,
    max_capacity: Optional[int] = None,
    verifier_logprobs: Optional[Sequence[float]] = None,
    tokens: Optional[Sequence[int]] = None,
) -> dict[str, Any]: ...
def deploy(
    server: str,
    logprobs: Optional[Sequence[float]] = None,
    capacity: Optional[int] = None,
    max_depth: Optional[int] = None,
    report: Optional[Union[str, "os.PathLike[str]"]] = None,
    latency: Optional[_Latency] = None,
    draft_step: Optional[float] = None,
) -> dict[str, Any]: ...
def tune(
    trace: Union[str, "os.PathLike[str]"],
    capacities: Sequence[int] = (1, 2, 4, 8, 16, 32, 64),
    holdout: float = 0.2,
    heldout_from_seq: Optional[int] = None,
    split_salt: int = 0,
    max_depth: Optional[int] = None,
    kary: int = 2,
    eagle_top_k: int = 8,
    eagle_depth: int = 6,
    latency: Optional[_Latency] = None,
    draft_step: Optional[float] = None,
    overhead: float = 0.0,
) -> dict[str, Any]: ...
def certificate(
    logprobs: Sequence[float],
    capacity: int,
    max_depth: Optional[int] = None,
    tree: Optional[Tree] = None,
    drafter_logprobs: Optional[Sequence[float]] = None,
    node_limit: int = ...,
    tokens: Optional[Sequence[int]] = None,
) -> dict[str, Any]: ...

# SGLang drop-in (wrapped by speclight.sglang, which takes SGLang's per-step lists).
def sglang_organize(
    scores: npt.NDArray[np.float64],
    tokens: npt.NDArray[np.int64],
    parent_list: npt.NDArray[np.int64],
    topk: int,
    num_steps: int,
    num_draft_tokens: int,
    budgets: Optional[Sequence[int]] = None,
) -> Tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]: ...
def sglang_build_tree(
    verified_id: npt.NDArray[np.int64],
    parent_list: npt.NDArray[np.int64],
    top_scores_index: npt.NDArray[np.int64],
    draft_tokens: npt.NDArray[np.int64],
    seq_lens: npt.NDArray[np.int64],
    topk: int,
    num_steps: int,
    num_verify_tokens: int,
    tree_mask_mode: int = 0,
) -> Tuple[
    np.ndarray,
    npt.NDArray[np.int64],
    npt.NDArray[np.int64],
    npt.NDArray[np.int64],
    npt.NDArray[np.int64],
    npt.NDArray[np.int64],
]: ...
def sglang_allocate(
    scores: npt.NDArray[np.float64],
    parent_list: npt.NDArray[np.int64],
    topk: int,
    num_steps: int,
    total_draft_tokens: int,
    min_draft_tokens: int = 2,
    max_draft_tokens: Optional[int] = None,
) -> npt.NDArray[np.int64]: ...
def sglang_expected_accepted(
    scores: npt.NDArray[np.float64],
    parent_list: npt.NDArray[np.int64],
    top_scores_index: npt.NDArray[np.int64],
    topk: int,
    num_steps: int,
) -> npt.NDArray[np.float64]: ...
