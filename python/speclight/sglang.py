"""A drop-in for SGLang's EAGLE tree selection.

``organize_draft_results`` and ``build_tree`` (alias
``build_tree_kernel_efficient``) take and return what SGLang's functions of
the same names do (``python/sglang/srt/speculative/eagle_utils.py``, commit
003ddbc; kernel ``sgl-kernel/csrc/speculative/eagle_utils.cu``
``build_tree_efficient``, commit 0e6ed14), computed by speclight's Rust core on
the CPU. Two additions SGLang has no equivalent of:

- ``allocate_budgets``: one ``num_draft_tokens`` per request from speclight's
  batch allocator (a total shared by the batch goes to the most probable
  candidates overall); pass them as ``budgets=`` to
  ``organize_draft_results``. Rows are padded to ``num_draft_token - 1`` with
  index -1 (token 0); ``build_tree`` makes padding unreachable. SGLang's own
  kernel does not understand the padding: use speclight's ``build_tree``.
- ``expected_accepted``: the exact E[X] of each selected tree when the
  verifier draws as the drafter scores.

Selection: each request keeps its ``num_draft_token - 1`` highest-scoring
candidates, ties to the lower index. Scores are path probabilities, so this
set is prefix-closed and has the largest score sum of any prefix-closed set
of its size; it is SGLang's ``torch.topk`` set except that ties are broken
deterministically (``torch.topk`` may keep a child and drop its equal-scoring
parent). Every function raises ``ValueError`` on bad input: wrong shapes,
non-finite scores, scores outside [0, 1] or above their parent's, parents out
of range. Inputs may be numpy arrays or torch tensors (copied to the CPU);
outputs are numpy arrays, or torch tensors on the input's device when the
inputs were torch tensors.
"""

from enum import IntEnum
import math

import numpy as np

from . import _native

__all__ = [
    "TreeMaskMode",
    "organize_draft_results",
    "build_tree",
    "build_tree_kernel_efficient",
    "allocate_budgets",
    "expected_accepted",
]


class TreeMaskMode(IntEnum):
    """SGLang's ``TreeMaskMode`` (same values)."""

    FULL_MASK = 0
    QLEN_ONLY = 1
    QLEN_ONLY_BITPACKING = 2


def _device(x):
    """The torch device of ``x``, or None for anything else."""
    return getattr(x, "device", None) if hasattr(x, "detach") else None


def _array(x, dtype, what):
    """``x`` (numpy, torch or nested lists) as a C-contiguous array of ``dtype``."""
    if hasattr(x, "detach"):
        x = x.detach()
        if x.is_floating_point():
            x = x.double()
        x = x.cpu().numpy()
    a = np.asarray(x)
    if dtype == np.int64 and a.size and not np.issubdtype(a.dtype, np.integer):
        raise ValueError(f"sglang: {what} must hold integers, not {a.dtype}")
    return np.ascontiguousarray(a, dtype=dtype)


def _rows(parts, dtype, what):
    """SGLang's ``torch.cat(parts, dim=1).flatten(1)``: each part as (B, -1), side by side."""
    arrays = [_array(p, dtype, what) for p in parts]
    if not arrays or any(a.ndim < 2 for a in arrays):
        raise ValueError(f"sglang: {what} must be a non-empty list of arrays of shape (B, ...)")
    b = arrays[0].shape[0]
    if any(a.shape[0] != b for a in arrays):
        raise ValueError(f"sglang: the arrays of {what} have different batch sizes")
    return np.ascontiguousarray(np.concatenate([a.reshape(b, -1) for a in arrays], axis=1))


def _beam(score_list, parents_list):
    """(scores (B, G), parent_list (B, P), topk, num_steps) from SGLang's lists."""
    if len(score_list) == 0 or len(score_list) != len(parents_list):
        raise ValueError("sglang: score_list and parents_list need one entry per step")
    first = _array(score_list[0], np.float64, "score_list")
    if first.ndim < 2:
        raise ValueError("sglang: score_list[0] must have shape (B, 1, topk)")
    topk = first.shape[-1]
    scores = _rows(score_list, np.float64, "score_list")
    if len(parents_list) > 1:
        parent_list = _rows(parents_list[:-1], np.int64, "parents_list")
    else:
        parent_list = np.empty((scores.shape[0], 0), dtype=np.int64)
    return scores, parent_list, topk, len(score_list)


def _out(device, *arrays):
    """Outputs as torch tensors on ``device`` when the inputs were tensors."""
    if device is None:
        return arrays
    import torch

    return tuple(torch.from_numpy(np.ascontiguousarray(a)).to(device) for a in arrays)


def organize_draft_results(score_list, token_list, parents_list, num_draft_token, budgets=None):
    """SGLang's ``organize_draft_results``: returns ``(parent_list,
    top_scores_index, draft_tokens)``, shapes ``(B, 1 + (steps - 1) topk)``
    (``(B, 0)`` for one step), ``(B, num_draft_token - 1)`` and the same, all
    int64. ``budgets`` (optional, one ``num_draft_tokens`` per request, each in
    ``1..=num_draft_token``) keeps ``budgets[b] - 1`` candidates in request
    ``b``'s row, padded with index -1 and token 0."""
    scores, parent_list, topk, steps = _beam(score_list, parents_list)
    tokens = _rows(token_list, np.int64, "token_list")
    if budgets is not None:
        budgets = [int(x) for x in _array(budgets, np.int64, "budgets").reshape(-1)]
    index, drafts = _native.sglang_organize(
        scores, tokens, parent_list, topk, steps, int(num_draft_token), budgets
    )
    return _out(_device(score_list[0]), parent_list, index, drafts)


def _packed_dtype(n):
    """SGLang's dtype for the bit-packed mask of ``n`` verify tokens."""
    return [np.uint8, np.uint16, np.uint32][int(math.ceil(math.log2((n + 7) // 8)))]


def build_tree(
    verified_id,
    parent_list,
    top_scores_index,
    draft_tokens,
    seq_lens,
    seq_lens_sum,
    topk,
    spec_steps,
    num_verify_tokens,
    tree_mask_mode=TreeMaskMode.FULL_MASK,
):
    """SGLang's ``build_tree_kernel_efficient``: returns ``(tree_mask,
    positions, retrive_index, retrive_next_token, retrive_next_sibling,
    draft_tokens)``. ``tree_mask`` is flat: bool of ``seq_lens_sum n + B n^2``
    (FULL_MASK) or ``B n^2`` (QLEN_ONLY), or one uint8/16/32 word per row
    (QLEN_ONLY_BITPACKING, ``n <= 32``); ``positions`` and ``draft_tokens``
    (bonus token first) are ``(B n,)`` int64, the ``retrive_*`` arrays
    ``(B, n)`` int64, where ``n = num_verify_tokens``."""
    lens = _array(seq_lens, np.int64, "seq_lens").reshape(-1)
    if int(seq_lens_sum) != int(lens.sum()):
        raise ValueError(f"sglang: seq_lens_sum {seq_lens_sum} is not sum(seq_lens) = {lens.sum()}")
    n = int(num_verify_tokens)
    mask, positions, index, next_token, next_sibling, tokens = _native.sglang_build_tree(
        _array(verified_id, np.int64, "verified_id").reshape(-1),
        _array(parent_list, np.int64, "parent_list"),
        _array(top_scores_index, np.int64, "top_scores_index"),
        _array(draft_tokens, np.int64, "draft_tokens"),
        lens,
        int(topk),
        int(spec_steps),
        n,
        int(tree_mask_mode),
    )
    if int(tree_mask_mode) == TreeMaskMode.QLEN_ONLY_BITPACKING:
        mask = mask.astype(_packed_dtype(n))
    return _out(_device(seq_lens), mask, positions, index, next_token, next_sibling, tokens)


build_tree_kernel_efficient = build_tree


def allocate_budgets(score_list, parents_list, total_draft_tokens, min_draft_tokens=2, max_draft_tokens=None):
    """One ``num_draft_tokens`` per request (int64, ``(B,)``), summing to at most
    ``total_draft_tokens`` (roots included), each in
    ``min_draft_tokens..=max_draft_tokens`` (default: 1 + all candidates):
    speclight's batch allocator gives the ``total - B`` tree nodes to the most
    probable candidates of the whole batch, which maximises the sum of the
    requests' E[X]."""
    scores, parent_list, topk, steps = _beam(score_list, parents_list)
    budgets = _native.sglang_allocate(
        scores,
        parent_list,
        topk,
        steps,
        int(total_draft_tokens),
        int(min_draft_tokens),
        None if max_draft_tokens is None else int(max_draft_tokens),
    )
    return _out(_device(score_list[0]), budgets)[0]


def expected_accepted(score_list, parents_list, top_scores_index):
    """Exact E[X] (float64, ``(B,)``) of each request's selected tree (a row of
    ``top_scores_index``, -1 padded) when the verifier draws as the drafter
    scores: the sum of the selected path probabilities, by speclight's
    evaluator."""
    scores, parent_list, topk, steps = _beam(score_list, parents_list)
    index = _array(top_scores_index, np.int64, "top_scores_index")
    return _native.sglang_expected_accepted(scores, parent_list, index, topk, steps)
