import math

import numpy as np
import pytest
import speclight
from conftest import log, node_paths, top_p_paths


@pytest.mark.parametrize("probs", [[0.5, 0.3, 0.2], [0.6, 0.25, 0.1], [0.9, 0.05]])
@pytest.mark.parametrize("capacity,max_depth", [(1, None), (7, None), (40, None), (40, 3)])
def test_build_is_the_top_p_prefixes(probs, capacity, max_depth):
    tree = speclight.build(log(probs), capacity=capacity, max_depth=max_depth)
    expected = top_p_paths(probs, capacity, max_depth)
    assert len(tree) == len(expected)
    assert tree.expected_accepted == pytest.approx(sum(p for _, p in expected), rel=1e-12)
    # Same node set up to ties: the sorted path probabilities agree.
    ours = sorted(math.exp(lp) for lp in tree.path_logprobs)
    theirs = sorted(p for _, p in expected)
    assert np.allclose(ours, theirs, rtol=1e-12)


def test_arrays_are_consistent():
    tree = speclight.build(np.log([0.5, 0.3, 0.2]), capacity=64, max_depth=5)
    parents, depths, tokens = tree.parents, tree.depths, tree.tokens
    assert parents.dtype == np.int64 and depths.dtype == np.int64 and tokens.dtype == np.int64
    for i in range(len(tree)):
        assert parents[i] < i
        assert depths[i] == (depths[parents[i]] + 1 if parents[i] >= 0 else 1)
    assert depths.max() == tree.max_depth <= 5
    assert len(set(node_paths(tree))) == len(tree)


def test_tokens_are_carried():
    tree = speclight.build(np.log([0.7, 0.3]), capacity=5, tokens=[17, 4])  # paths .7 .49 .343 .3 .24
    assert sorted(set(tree.tokens.tolist())) == [4, 17]
    assert tree.tokens[0] == 17


def test_reusable_builder_and_batch_equal_single_builds(rng):
    builder = speclight.Builder(32, max_depth=4)
    dists = [rng.dirichlet(np.ones(k)) for k in (2, 3, 5, 8)]
    batch = speclight.build_batch([np.log(d) for d in dists], 32, max_depth=4)
    for d, from_batch in zip(dists, batch):
        single = speclight.build(np.log(d), 32, max_depth=4)
        reused = builder.build(np.log(d))
        for t in (from_batch, reused):
            assert t.expected_accepted == pytest.approx(single.expected_accepted, rel=1e-12)
            assert np.array_equal(t.parents, single.parents)
            assert np.array_equal(t.tokens, single.tokens)


def test_evaluate_matches_path_products():
    tree = speclight.build(np.log([0.5, 0.3, 0.2]), capacity=20)
    verifier = [0.2, 0.3, 0.5]
    value = speclight.evaluate(tree, np.log(verifier))
    expected = sum(math.prod(verifier[t] for t in path) for path in node_paths(tree))
    assert value["expected_accepted"] == pytest.approx(expected, rel=1e-12)
    at_least = value["accept_at_least"]
    assert sum(at_least) == pytest.approx(expected, rel=1e-12)
    assert all(a >= b - 1e-15 for a, b in zip(at_least, at_least[1:]))
    assert sum(value["accept_length_pmf"]) == pytest.approx(1.0, rel=1e-12)


def test_bounds_chain():
    probs = [0.5, 0.3, 0.2]
    b = speclight.bounds(np.log(probs), capacity=50)
    opt = sum(p for _, p in top_p_paths(probs, 50))
    assert b["opt"] == pytest.approx(opt, rel=1e-12)
    assert b["opt"] <= b["b2"] + 1e-9 and b["b2"] <= b["b1"] + 1e-9
    assert b["mu"] == pytest.approx(-sum(p * math.log(p) for p in probs), rel=1e-12)


def test_medusa_choices_round_trip():
    choices = [[0], [1], [2], [0, 0], [0, 1], [1, 0], [0, 0, 0]]
    tree = speclight.Tree.from_medusa_choices(choices)
    assert tree.expected_accepted is None
    assert eval(tree.to_medusa()) == choices
    assert [list(p) for p in node_paths(tree)] == choices
    uniform = speclight.Tree.from_medusa_choices([[0], [1], [0, 0], [0, 1], [1, 0], [1, 1], [0, 0, 0], [0, 1, 0], [1, 0, 0], [1, 1, 0]])
    assert uniform.to_vllm() == "[(0,), (1,), (0, 0), (0, 1), (1, 0), (1, 1), (0, 0, 0), (0, 1, 0), (1, 0, 0), (1, 1, 0)]"


def python_level_uniform(paths):
    """Reference from the definition (docs/deploy.md): every node of level
    d - 1 has children of ranks 0..c_d for one c_d per level, the deepest
    level excepted; counted per parent, independently of the Rust check."""
    paths = [tuple(p) for p in paths]
    depth = max((len(p) for p in paths), default=0)
    nodes = [()] + paths
    for d in range(depth):
        kids = [sorted(p[-1] for p in paths if len(p) == d + 1 and p[:-1] == n) for n in nodes if len(n) == d]
        if any(k != list(range(len(k))) for k in kids) or len({len(k) for k in kids}) > 1:
            return False
    return True


def test_to_vllm_refuses_a_tree_vllm_would_not_draft():
    tree = speclight.Tree.from_medusa_choices([[0], [1], [0, 0]])
    with pytest.raises(ValueError, match=r"not level-uniform.*level 1: node \[1\] has 0 children but node \[0\] has 1"):
        tree.to_vllm()
    # A best-first tree is rarely level-uniform; the refusal names the cure.
    best_first = speclight.build(np.log([0.6, 0.3, 0.1]), capacity=10)
    with pytest.raises(ValueError, match=r"speclight.deploy\(\"vllm\""):
        best_first.to_vllm()


def test_to_vllm_accepts_exactly_the_level_uniform_trees(rng):
    for _ in range(300):
        paths = []
        for _ in range(rng.integers(1, 12)):
            parent = list(paths[rng.integers(len(paths))]) if paths and rng.random() < 0.7 else []
            used = {p[-1] for p in paths if list(p[:-1]) == parent}
            rank = min(set(range(4)) - used, default=None)
            if rank is not None:
                paths.append(parent + [rank])
        tree = speclight.Tree.from_medusa_choices(paths)
        if python_level_uniform(paths):
            assert sorted(eval(tree.to_vllm())) == sorted(tuple(p) for p in paths)
        else:
            with pytest.raises(ValueError, match="not level-uniform"):
                tree.to_vllm()


def test_to_medusa_refuses_ranks_beyond_its_top_10():
    wide = speclight.Tree.from_medusa_choices([[r] for r in range(11)])
    with pytest.raises(ValueError, match=r"rank 10 in path \[10\] is not below top_k 10"):
        wide.to_medusa()
    assert eval(wide.to_medusa(top_k=11)) == [[r] for r in range(11)]
    ten = speclight.Tree.from_medusa_choices([[r] for r in range(10)] + [[9, 0]])
    assert eval(ten.to_medusa()) == [[r] for r in range(10)] + [[9, 0]]
    with pytest.raises(ValueError, match=r"rank 9 in path \[9\] "):  # breadth-first: the first offender
        ten.to_medusa(top_k=9)
    deep = speclight.Tree.from_medusa_choices([[0], [0, 0], [0, 1], [0, 0, 12]])
    with pytest.raises(ValueError, match=r"rank 12 in path \[0, 0, 12\] "):
        deep.to_medusa()


def markov_drafter(path):
    """A path-dependent drafter: the next-token distribution depends on the last token."""
    last = path[-1] if path else 0
    probs = np.array([[0.6, 0.3, 0.1], [0.2, 0.5, 0.3], [0.1, 0.2, 0.7]])[last]
    return np.log(probs)


def python_best_first(drafter, capacity):
    """Best-first over a path-dependent drafter by brute force: the
    `capacity` most probable prefixes (every prefix is at least as likely)."""
    frontier = [((), 0.0)]
    chosen = []
    candidates = {}
    while len(chosen) < capacity:
        for path, lp in frontier:
            for t, l in enumerate(drafter(path)):
                candidates[path + (t,)] = lp + l
        frontier = []
        best = max(candidates, key=lambda p: (candidates[p], -len(p)))
        chosen.append((best, candidates.pop(best)))
        frontier = [chosen[-1]]
    return chosen


@pytest.mark.parametrize("width", [1, 3, 8])
def test_incremental_build_with_a_path_dependent_drafter(width):
    builder = speclight.Builder(20)
    builder.begin(markov_drafter(()))
    calls = 0
    while True:
        nodes = builder.next_batch(width)
        if len(nodes) == 0:
            break
        assert len(nodes) <= width
        calls += 1
        for node in nodes:
            path = tuple(builder.path_tokens(node).tolist())
            builder.feed(node, markov_drafter(path))
    tree = builder.finish()
    expected = python_best_first(markov_drafter, 20)
    assert tree.expected_accepted == pytest.approx(sum(math.exp(lp) for _, lp in expected), rel=1e-12)
    assert sorted(node_paths(tree)) == sorted(p for p, _ in expected)
    assert calls <= 20


def test_incremental_misuse_raises():
    builder = speclight.Builder(4)
    with pytest.raises(ValueError, match="begin"):
        builder.next_batch(2)
    builder.begin(np.log([0.5, 0.5]))
    nodes = builder.next_batch(2)
    with pytest.raises(ValueError, match="not fed"):
        builder.next_batch(2)
    with pytest.raises(ValueError, match="not awaiting"):
        builder.feed(999, np.log([1.0]))
    with pytest.raises(ValueError):
        builder.next_batch(0)
    assert len(nodes) >= 1


def test_logprobs_from_any_sequence_give_the_same_tree():
    """float64 arrays take a one-copy path; lists, float32 arrays, strided
    views and the rows of a 2-D array must give the very same trees."""
    weights = np.arange(1, 13, dtype=np.float64) ** -1.2
    lp = np.log(weights / weights.sum())
    strided = np.repeat(lp, 2)[::2]
    assert not strided.flags["C_CONTIGUOUS"]
    single = lp.astype(np.float32)
    for given, as_list in ((lp, lp.tolist()), (strided, lp.tolist()), (tuple(lp), lp.tolist()),
                           (single, single.tolist())):
        want = speclight.build(as_list, 20)
        got = speclight.build(given, 20)
        assert got.parents.tolist() == want.parents.tolist()
        assert got.tokens.tolist() == want.tokens.tolist()
        assert got.expected_accepted == want.expected_accepted
    want = speclight.build(lp.tolist(), 20)
    batch = speclight.build_batch(np.stack([lp, lp]), 20)
    assert [t.tokens.tolist() for t in batch] == [want.tokens.tolist()] * 2
    with pytest.raises(TypeError):
        speclight.build("not numbers", 20)
