"""Shared reference implementations, written from the documented semantics
(docs/THEORY.md sections 1-3), independent of the Rust code under test."""

import heapq
import math

import numpy as np
import pytest


def top_p_paths(probs, capacity, max_depth=None):
    """The `capacity` most probable token paths under an i.i.d. drafter, by a
    plain heap over prefixes (best-first; every prefix of a path is at least
    as probable, so the set is prefix-closed). Returns (path, prob) pairs."""
    heap = [(-p, (t,)) for t, p in enumerate(probs) if p > 0]
    heapq.heapify(heap)
    out = []
    while heap and len(out) < capacity:
        neg, path = heapq.heappop(heap)
        out.append((path, -neg))
        if max_depth is None or len(path) < max_depth:
            for t, p in enumerate(probs):
                if p > 0:
                    heapq.heappush(heap, (neg * p, path + (t,)))
    return out


def node_paths(tree):
    """Token path from the root to every node of a speclight.Tree."""
    parents, tokens = tree.parents, tree.tokens
    paths = []
    for i in range(len(tree)):
        p = parents[i]
        paths.append((paths[p] if p >= 0 else ()) + (int(tokens[i]),))
    return paths


def ancestors_or_self(parents, j):
    """Tree positions (root = 0, node i = i + 1) that position j sees."""
    seen = {0, j}
    while j > 0:
        p = parents[j - 1]
        j = p + 1 if p >= 0 else 0
        seen.add(j)
    return seen


@pytest.fixture
def rng():
    seed = 20261130
    print(f"seed {seed}")
    return np.random.default_rng(seed)


def log(probs):
    return [math.log(p) for p in probs]
