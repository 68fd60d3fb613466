"""speclight.sglang against pure-numpy references of SGLang's
`organize_draft_results` and `build_tree_efficient`, written from the
semantics read in SGLang's source (python/sglang/srt/speculative/
eagle_utils.py at 003ddbc, spec_utils.py at 00731f0, sgl-kernel/csrc/
speculative/eagle_utils.cu at 0e6ed14; see docs/python.md), not from its code."""

import itertools
import math

import numpy as np
import pytest
from speclight import sglang


def draft(rng, batch, topk, steps, vocab=40, dtype=np.float32):
    """SGLang's beam drafting with random drafter distributions: returns
    (score_list, token_list, parents_list) as its EAGLE worker builds them."""
    def top(rows):
        probs = rng.dirichlet(np.full(vocab, 0.3), size=rows)
        idx = np.argsort(-probs, axis=1, kind="stable")[:, :topk]
        return np.take_along_axis(probs, idx, axis=1).astype(dtype), idx.astype(np.int64)

    p, tok = top(batch)
    score_list = [p[:, None, :]]
    token_list = [tok]
    parents_list = [np.tile(np.arange(-1, topk, dtype=np.int64), (batch, 1))]
    beam = p  # (b, topk): the beam's path probabilities
    for i in range(1, steps):
        p, tok = top(batch * topk)
        expand = beam[:, :, None] * p.reshape(batch, topk, topk)  # (b, k, k)
        flat = expand.reshape(batch, -1)
        chosen = np.argsort(-flat, axis=1, kind="stable")[:, :topk]
        beam = np.take_along_axis(flat, chosen, axis=1)
        score_list.append(expand)
        token_list.append(tok.reshape(batch, topk * topk))
        parents_list.append(chosen + topk * topk * (i - 1) + topk)
    return score_list, token_list, parents_list


def flat(score_list, token_list, parents_list):
    b = score_list[0].shape[0]
    scores = np.concatenate([s.reshape(b, -1) for s in score_list], axis=1).astype(np.float64)
    tokens = np.concatenate([t.reshape(b, -1) for t in token_list], axis=1)
    if len(parents_list) > 1:
        parent_list = np.concatenate(parents_list[:-1], axis=1)
    else:
        parent_list = np.empty((b, 0), dtype=np.int64)
    return scores, tokens, parent_list


def ref_organize(scores, tokens, m):
    """Top-m by score (ties to the lower index), sorted ascending, and their tokens."""
    order = np.argsort(-scores, axis=1, kind="stable")[:, :m]
    index = np.sort(order, axis=1)
    return index, np.take_along_axis(tokens, index, axis=1)


def parent_of(parent_list, topk, j):
    """Candidate j's parent candidate (-1 = root), from SGLang's layout."""
    column = j // topk
    return -1 if column == 0 else int(parent_list[column])


def ref_build(parent_list, selected, seq_lens, topk, n, mode):
    """build_tree_efficient's outputs for requests with no padding: per tree
    position t >= 1 (candidate selected[t-1]) its parent position, then the
    kernel's child links (prepended from the last position), positions and masks."""
    b = len(seq_lens)
    mask_rows, packed, positions = [], [], []
    r_index = np.full((b, n), -1, np.int64)
    r_next = np.full((b, n), -1, np.int64)
    r_sib = np.full((b, n), -1, np.int64)
    for i in range(b):
        sel = list(selected[i])
        par = [None] + [
            0 if parent_of(parent_list[i], topk, j) < 0 else sel.index(parent_of(parent_list[i], topk, j)) + 1
            for j in sel
        ]
        for t in range(n - 1, 0, -1):
            r_index[i, t] = i * n + t
            if r_next[i, par[t]] == -1:
                r_next[i, par[t]] = t
            else:
                r_sib[i, t] = r_next[i, par[t]]
                r_next[i, par[t]] = t
        r_index[i, 0] = i * n
        for t in range(n):
            seen, u = {0}, t
            while u > 0:
                seen.add(u)
                u = par[u]
            positions.append(seq_lens[i] + len(seen) - 1)
            row = [c in seen for c in range(n)]
            if mode == 0:
                mask_rows.append([True] * seq_lens[i] + row)
            else:
                mask_rows.append(row)
            packed.append(sum(1 << c for c in seen))
    mask = np.array(packed) if mode == 2 else np.array(list(itertools.chain(*mask_rows)), dtype=bool)
    return mask, np.array(positions), r_index, r_next, r_sib


CONFIGS = [(1, 3, 4), (2, 2, 4), (3, 3, 8), (4, 4, 16), (8, 3, 33), (2, 1, 3), (5, 2, 30)]


@pytest.mark.parametrize("topk,steps,n", CONFIGS)
@pytest.mark.parametrize("batch", [1, 3])
def test_organize_matches_sglang_reference(rng, topk, steps, n, batch):
    lists = draft(rng, batch, topk, steps)
    scores, tokens, parent_list = flat(*lists)
    got_parents, index, drafts = sglang.organize_draft_results(*lists, n)
    want_index, want_tokens = ref_organize(scores, tokens, n - 1)
    assert got_parents.shape == (batch, 0 if steps == 1 else 1 + (steps - 1) * topk)
    np.testing.assert_array_equal(got_parents, parent_list)
    assert index.dtype == np.int64 and index.shape == (batch, n - 1)
    np.testing.assert_array_equal(index, want_index)
    np.testing.assert_array_equal(drafts, want_tokens)
    # E[X] by the crate's evaluator = the selected path probabilities' sum.
    value = sglang.expected_accepted(lists[0], lists[2], index)
    np.testing.assert_allclose(value, np.take_along_axis(scores, index, axis=1).sum(axis=1), rtol=1e-9)


@pytest.mark.parametrize("topk,steps,n", CONFIGS)
@pytest.mark.parametrize("mode", [0, 1, 2])
def test_build_tree_matches_kernel_reference(rng, topk, steps, n, mode):
    if mode == 2 and n > 32:
        pytest.skip("SGLang packs at most 32 tokens per row")
    batch = 3
    lists = draft(rng, batch, topk, steps)
    parent_list, index, drafts = sglang.organize_draft_results(*lists, n)
    seq_lens = rng.integers(1, 9, size=batch)
    verified = rng.integers(0, 100, size=batch)
    out = sglang.build_tree(verified, parent_list, index, drafts, seq_lens, int(seq_lens.sum()), topk, steps, n, mode)
    mask, positions, r_index, r_next, r_sib, tokens = out
    want = ref_build(parent_list, index, list(seq_lens), topk, n, mode)
    np.testing.assert_array_equal(mask, want[0])
    if mode == 2:
        assert mask.dtype == [np.uint8, np.uint16, np.uint32][math.ceil(math.log2((n + 7) // 8))]
    else:
        assert mask.dtype == bool
    for got, ref in zip((positions, r_index, r_next, r_sib), want[1:]):
        assert got.dtype == np.int64
        np.testing.assert_array_equal(got, ref)
    np.testing.assert_array_equal(tokens, np.concatenate([verified[:, None], drafts], axis=1).reshape(-1))


def walk(r_index, r_next, r_sib, candidates, target, b, n):
    """SGLang's greedy verification over the retrive arrays (VerifyTreeGreedy's
    semantics): accepted tree positions of request b."""
    accepted, cur, last = [0], 0, r_index[b, 0]
    while len(accepted) <= n:  # a cycle in the links fails below instead of hanging
        cur = r_next[b, cur]
        while cur != -1 and candidates[b * n + cur] != target[last]:
            cur = r_sib[b, cur]
        if cur == -1:
            return accepted
        accepted.append(int(cur))
        last = r_index[b, cur]
    return accepted


def parent_walk(parent_positions, tokens, target, b, n):
    """The same walk over parent links only: from the accepted position, the
    lowest child whose token is the target's."""
    accepted = [0]
    while True:
        here = accepted[-1]
        kids = [t for t in range(1, n) if parent_positions[t] == here and tokens[b * n + t] == target[b * n + here]]
        if not kids:
            return accepted
        accepted.append(kids[0])


@pytest.mark.parametrize("topk,steps,n", [(2, 3, 6), (4, 4, 16), (3, 2, 10)])
def test_budgets_and_verification_walk(rng, topk, steps, n):
    batch = 4
    lists = draft(rng, batch, topk, steps, vocab=6)
    scores, _, parent_list = flat(*lists)
    total = batch * n
    budgets = sglang.allocate_budgets(lists[0], lists[2], total, max_draft_tokens=n)
    assert budgets.sum() <= total and budgets.min() >= 2 and budgets.max() <= n
    # Reference: each request's best candidate first, then the best of the rest overall.
    ranked = [list(np.argsort(-scores[i], kind="stable")) for i in range(batch)]
    pool = sorted((-scores[i][j], i) for i in range(batch) for j in ranked[i][1 : n - 1])
    want = np.full(batch, 2)
    for _, i in pool[: total - 2 * batch]:
        want[i] += 1
    np.testing.assert_array_equal(budgets, want)
    # Padded rows: budgets[b] - 1 candidates, then -1.
    parent_list, index, drafts = sglang.organize_draft_results(*lists, n, budgets=budgets)
    for i in range(batch):
        np.testing.assert_array_equal(index[i, : budgets[i] - 1], np.sort(ranked[i][: budgets[i] - 1]))
        assert (index[i, budgets[i] - 1 :] == -1).all()
    value = sglang.expected_accepted(lists[0], lists[2], index)
    top = [scores[i][ranked[i][: budgets[i] - 1]].sum() for i in range(batch)]
    np.testing.assert_allclose(value, top, rtol=1e-9)
    # The tree passes SGLang's walk exactly as it walks its parent links.
    seq_lens = np.full(batch, 5)
    _, positions, r_index, r_next, r_sib, tokens = sglang.build_tree(
        np.zeros(batch, np.int64), parent_list, index, drafts, seq_lens, 5 * batch, topk, steps, n
    )
    for i in range(batch):
        used = budgets[i] - 1
        sel = list(index[i, :used])
        par = [None] + [
            0 if parent_of(parent_list[i], topk, j) < 0 else sel.index(parent_of(parent_list[i], topk, j)) + 1
            for j in sel
        ] + [None] * (n - 1 - used)
        for t in range(1, used + 1):
            assert positions[i * n + t] == positions[i * n + par[t]] + 1
        for _ in range(20):
            target = rng.integers(0, 6, size=batch * n)
            got = walk(r_index, r_next, r_sib, tokens, target, i, n)
            assert got == parent_walk(par, tokens, target, i, n)
            assert all(t <= used for t in got)  # padding is never reached


def test_selection_is_the_best_prefix_closed_set(rng):
    """Brute force over every prefix-closed subset of a small candidate tree."""
    topk, steps = 2, 3
    for _ in range(5):
        lists = draft(rng, 1, topk, steps, vocab=5)
        scores, _, parent_list = flat(*lists)
        g = scores.shape[1]
        parents = [parent_of(parent_list[0], topk, j) for j in range(g)]
        for m in range(1, 6):
            best = max(
                sum(scores[0][list(s)])
                for s in itertools.combinations(range(g), m)
                if all(parents[j] < 0 or parents[j] in s for j in s)
            )
            _, index, _ = sglang.organize_draft_results(*lists, m + 1)
            assert math.isclose(sglang.expected_accepted(lists[0], lists[2], index)[0], best, rel_tol=1e-9)


def test_ties_stay_prefix_closed():
    """A child with its parent's score (probability 1) never displaces it."""
    score_list = [np.array([[[0.5, 0.5]]]), np.array([[[0.5, 0.0], [0.25, 0.25]]])]
    token_list = [np.array([[7, 8]]), np.array([[1, 2, 3, 4]])]
    parents_list = [np.array([[-1, 0, 1]]), np.array([[2, 3]])]
    _, index, drafts = sglang.organize_draft_results(score_list, token_list, parents_list, 4)
    np.testing.assert_array_equal(index, [[0, 1, 2]])
    np.testing.assert_array_equal(drafts, [[7, 8, 1]])
    # Three candidates tie at 0.5 for two places: the child (2) loses to both roots' children.
    _, index, _ = sglang.organize_draft_results(score_list, token_list, parents_list, 3)
    np.testing.assert_array_equal(index, [[0, 1]])


def test_torch_in_torch_out(rng):
    torch = pytest.importorskip("torch")
    lists = draft(rng, 2, 3, 3)
    as_torch = [[torch.from_numpy(np.ascontiguousarray(a)) for a in part] for part in lists]
    got = sglang.organize_draft_results(*as_torch, 6)
    want = sglang.organize_draft_results(*lists, 6)
    for g, w in zip(got, want):
        assert isinstance(g, torch.Tensor)
        np.testing.assert_array_equal(g.numpy(), w)
    seq_lens = torch.tensor([3, 4])
    built = sglang.build_tree(torch.tensor([1, 2]), *got, seq_lens, 7, 3, 3, 6)
    assert all(isinstance(x, torch.Tensor) for x in built)


def bad_lists():
    return draft(np.random.default_rng(1), 2, 2, 3)


def test_bad_input_raises_value_error():
    s, t, p = bad_lists()
    with pytest.raises(ValueError, match="num_draft_tokens"):
        sglang.organize_draft_results(s, t, p, 2 + 2 * 2 * 2 + 2)  # G + 2: one too many
    with pytest.raises(ValueError, match="num_draft_tokens"):
        sglang.organize_draft_results(s, t, p, 1)
    nan = [x.copy() for x in s]
    nan[1][0, 0, 0] = np.nan
    with pytest.raises(ValueError, match="not in \\[0, 1\\]"):
        sglang.organize_draft_results(nan, t, p, 4)
    above = [x.copy() for x in s]
    above[2][1, 1, 1] = 1.0
    with pytest.raises(ValueError, match="exceeds its parent"):
        sglang.organize_draft_results(above, t, p, 4)
    far = [x.copy() for x in p]
    far[1][0, 1] = 99
    with pytest.raises(ValueError, match="is not a candidate of step"):
        sglang.organize_draft_results(s, t, far, 4)
    with pytest.raises(ValueError, match="candidates per request"):
        sglang.organize_draft_results([s[0], s[1][:, :1]], [t[0], t[1][:, :2]], p[:2], 4)
    with pytest.raises(ValueError, match="token_list"):
        sglang.organize_draft_results(s, [t[0], t[1][:, :3], t[2]], p, 4)
    with pytest.raises(ValueError, match="integers"):
        sglang.organize_draft_results(s, [x.astype(float) for x in t], p, 4)
    with pytest.raises(ValueError, match="budget"):
        sglang.organize_draft_results(s, t, p, 4, budgets=[4, 5])
    with pytest.raises(ValueError, match="budgets"):
        sglang.organize_draft_results(s, t, p, 4, budgets=[4])
    with pytest.raises(ValueError, match="total_draft_tokens"):
        sglang.allocate_budgets(s, p, 3)
    with pytest.raises(ValueError, match="max_draft_tokens"):
        sglang.allocate_budgets(s, p, 20, max_draft_tokens=100)
    with pytest.raises(ValueError, match="topk"):
        sglang.organize_draft_results([x[..., :0] for x in s], t, p, 4)


def test_bad_build_tree_input_raises_value_error():
    s, t, p = bad_lists()
    parent_list, index, drafts = sglang.organize_draft_results(s, t, p, 4)
    args = (np.zeros(2, np.int64), parent_list, index, drafts, np.array([3, 3]), 6, 2, 3, 4)
    with pytest.raises(ValueError, match="seq_lens_sum"):
        sglang.build_tree(*args[:5], 7, *args[6:])
    with pytest.raises(ValueError, match="tree_mask_mode"):
        sglang.build_tree(*args, 3)
    with pytest.raises(ValueError, match="must be"):
        sglang.build_tree(*args[:2], index[:, :2], *args[3:])
    orphan = index.copy()
    orphan[0] = [0, 1, 5]  # candidate 5 is a child of a step-1 beam row
    orphan[0, 2] = [j for j in range(2, 10) if parent_of(parent_list[0], 2, j) not in (-1, 0, 1)][0]
    with pytest.raises(ValueError, match="without its parent"):
        sglang.build_tree(args[0], parent_list, orphan, *args[3:])
    with pytest.raises(ValueError, match="increasing"):
        sglang.build_tree(args[0], parent_list, index[:, ::-1].copy(), *args[3:])
    with pytest.raises(ValueError, match="after -1"):
        sglang.build_tree(args[0], parent_list, np.array([[-1, 0, 1], [0, 1, 2]]), *args[3:])
    with pytest.raises(ValueError, match="BITPACKING"):
        big = sglang.organize_draft_results(*draft(np.random.default_rng(2), 1, 6, 3), 34)
        sglang.build_tree(np.zeros(1, np.int64), *big, np.array([2]), 2, 6, 3, 34, 2)
    with pytest.raises(ValueError, match="negative"):
        sglang.build_tree(*args[:4], np.array([-1, 7]), 6, *args[6:])


def test_budget_minimums_with_score_zero_candidates(rng):
    """A request whose drafter gives its deeper candidates probability 0 still
    gets its minimum (filled with worthless candidates); the rest goes by score."""
    s, t, p = draft(rng, 3, 2, 3)
    s = [x.copy() for x in s]
    s[1][0] = 0.0  # request 0: only its two root children have positive scores
    s[2][0] = 0.0
    budgets = sglang.allocate_budgets(s, p, total_draft_tokens=15, min_draft_tokens=4)
    assert budgets.sum() <= 15 and (budgets >= 4).all()
    assert budgets[0] == 4  # never more than its minimum: the extra nodes are worth 0
    _, index, _ = sglang.organize_draft_results(s, t, p, int(budgets.max()), budgets=budgets)
    value = sglang.expected_accepted(s, p, index)
    assert math.isclose(value[0], float(s[0][0, 0].sum()), rel_tol=1e-6)
    with pytest.raises(ValueError, match="min_draft_tokens"):
        sglang.allocate_budgets(s, p, 15, min_draft_tokens=5, max_draft_tokens=4)
