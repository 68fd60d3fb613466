import itertools

import numpy as np
import pytest
import speclight
from conftest import ancestors_or_self, node_paths

# A choice list in Medusa's format (rank paths, breadth-first), illustrative.
CHOICES = [[0], [1], [2], [0, 0], [0, 1], [1, 0], [2, 0], [0, 0, 0], [0, 1, 0], [0, 0, 0, 0]]


def medusa_reference(choices):
    """Medusa's buffers from its documented semantics (generate_medusa_buffers):
    the root plus one row per choice; a row attends to the root and to the
    choices that are its prefixes; position id = depth; one retrieve row per
    choice that is not a prefix of another, listing the root then its prefixes."""
    n = len(choices) + 1
    mask = np.zeros((n, n), dtype=bool)
    mask[:, 0] = True
    for i, c in enumerate(choices):
        for j, d in enumerate(choices):
            if c[: len(d)] == d:
                mask[i + 1, j + 1] = True
    positions = np.array([0] + [len(c) for c in choices])
    leaves = [c for c in choices if not any(d != c and d[: len(c)] == c for d in choices)]
    rows = {tuple([0] + [choices.index(c[:k]) + 1 for k in range(1, len(c) + 1)]) for c in leaves}
    return mask, positions, rows


def test_buffers_equal_medusa_conventions():
    tree = speclight.Tree.from_medusa_choices(CHOICES)
    inputs = speclight.verifier_inputs(tree, context_len=1, root_token=7)
    mask, positions, rows = medusa_reference(CHOICES)
    assert np.array_equal(inputs["mask_bool"], mask)
    assert np.array_equal(inputs["positions"], positions)  # context_len 1: position = depth
    ours = {tuple(int(x) for x in r if x >= 0) for r in inputs["retrieve_indices"]}
    assert ours == rows
    assert np.array_equal(inputs["mask_bias"] == 0, mask)
    assert inputs["tokens"][0] == 7


def test_links_and_positions_on_built_trees(rng):
    tree = speclight.build(np.log(rng.dirichlet(np.ones(4))), capacity=30)
    L = 11
    inputs = speclight.verifier_inputs(tree, context_len=L, root_token=3)
    parents = tree.parents
    n = len(tree) + 1
    for j in range(n):
        seen = ancestors_or_self(parents, j)
        assert set(np.flatnonzero(inputs["mask_bool"][j])) == seen
    assert np.array_equal(inputs["positions"], np.concatenate([[L - 1], L - 1 + tree.depths]))
    # first_child / next_sibling enumerate exactly each position's children.
    for j in range(n):
        kids, c = [], inputs["first_child"][j]
        while c >= 0:
            kids.append(int(c))
            c = inputs["next_sibling"][c]
        assert sorted(kids) == [i + 1 for i in range(len(tree)) if parents[i] + 1 == j]


def test_packed_int32_mask_matches_bool_mask():
    tree = speclight.build(np.log([0.4, 0.3, 0.2, 0.1]), capacity=70)
    vi = speclight.VerifierInputs()
    vi.fill(tree, 5, 0)
    n = len(vi)
    words = (n + 31) // 32
    packed = np.zeros(n * words, dtype=np.int32)
    vi.write_mask_packed_int32_into(packed)
    bits = packed.reshape(n, words).view(np.uint32)
    unpacked = np.array([[(bits[r, c // 32] >> (c % 32)) & 1 for c in range(n)] for r in range(n)], dtype=bool)
    assert np.array_equal(unpacked, vi.mask_bool)


def python_walk(tree, chosen):
    paths = node_paths(tree)
    index = {p: i for i, p in enumerate(paths)}
    prefix, accepted, kept = (), [], [0]
    j = 0
    while True:
        y = chosen[j]
        nxt = index.get(prefix + (y,))
        if nxt is None:
            return accepted, y, kept
        prefix += (y,)
        accepted.append(y)
        j = nxt + 1
        kept.append(j)


def test_walk_matches_a_python_walk(rng):
    tree = speclight.build(np.log([0.5, 0.3, 0.2]), capacity=25)
    for _ in range(200):
        chosen = rng.integers(0, 4, size=len(tree) + 1)
        tokens, bonus, kept = speclight.walk_chosen(tree, chosen)
        ref_tokens, ref_bonus, ref_kept = python_walk(tree, chosen.tolist())
        assert tokens.tolist() == ref_tokens and bonus == ref_bonus and kept.tolist() == ref_kept


def test_writes_in_place_and_checks_buffers():
    tree = speclight.build(np.log([0.6, 0.4]), capacity=6)
    vi = speclight.VerifierInputs()
    vi.fill(tree, 9, 1)
    n = len(vi)
    out = np.full(n * n, 5.0, dtype=np.float32)
    address = out.ctypes.data
    vi.write_mask_bias_into(out)
    assert out.ctypes.data == address
    assert np.array_equal(out.reshape(n, n), vi.mask_bias)
    pos = np.zeros(n, dtype=np.int64)
    vi.write_positions_into(pos)
    assert np.array_equal(pos, vi.positions)
    with pytest.raises(ValueError, match="elements"):
        vi.write_positions_into(np.zeros(n + 1, dtype=np.int64))
    with pytest.raises(ValueError, match="dtype"):
        vi.write_positions_into(np.zeros(n, dtype=np.int32))
    with pytest.raises(ValueError, match="contiguous"):
        vi.write_positions_into(np.zeros(2 * n, dtype=np.int64)[::2])
    readonly = np.zeros(n, dtype=np.int64)
    readonly.flags.writeable = False
    with pytest.raises(ValueError):
        vi.write_positions_into(readonly)


@pytest.mark.parametrize("capacity", [1, 2, 5, 17])
def test_every_chain_prefix_is_accepted(capacity):
    tree = speclight.build(np.log([1.0]), capacity=capacity)
    chosen = [0] * (capacity + 1)
    tokens, bonus, kept = speclight.walk_chosen(tree, chosen)
    assert len(tokens) == capacity and bonus == 0
    assert kept.tolist() == list(range(capacity + 1))
    assert list(itertools.accumulate([1] * capacity)) == list(range(1, capacity + 1))
