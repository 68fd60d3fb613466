"""Type stubs of speclight.sglang (SGLang drop-in for EAGLE tree selection)."""

from enum import IntEnum
from typing import Any, Optional, Sequence, Tuple

class TreeMaskMode(IntEnum):
    FULL_MASK = 0
    QLEN_ONLY = 1
    QLEN_ONLY_BITPACKING = 2

def organize_draft_results(
    score_list: Sequence[Any],
    token_list: Sequence[Any],
    parents_list: Sequence[Any],
    num_draft_token: int,
    budgets: Optional[Any] = None,
) -> Tuple[Any, Any, Any]: ...
def build_tree(
    verified_id: Any,
    parent_list: Any,
    top_scores_index: Any,
    draft_tokens: Any,
    seq_lens: Any,
    seq_lens_sum: int,
    topk: int,
    spec_steps: int,
    num_verify_tokens: int,
    tree_mask_mode: int = ...,
) -> Tuple[Any, Any, Any, Any, Any, Any]: ...

build_tree_kernel_efficient = build_tree

def allocate_budgets(
    score_list: Sequence[Any],
    parents_list: Sequence[Any],
    total_draft_tokens: int,
    min_draft_tokens: int = 2,
    max_draft_tokens: Optional[int] = None,
) -> Any: ...
def expected_accepted(score_list: Sequence[Any], parents_list: Sequence[Any], top_scores_index: Any) -> Any: ...
