"""speclight: provably optimal draft trees for speculative decoding.

The Rust core (``speclight._native``) builds the tree, evaluates it exactly,
fills the verifier's buffers and walks its outputs; this package re-exports
it. Every function raises ``ValueError`` with the library's message on bad
input. See ``docs/python.md`` in the repository for the per-step loop.
"""

from ._native import (
    MAX_CAPACITY,
    Builder,
    Tree,
    VerifierInputs,
    bounds,
    build,
    build_batch,
    evaluate,
    verifier_inputs,
    walk_chosen,
)

# The CLI's --json reports as dicts.
from ._native import certificate, deploy, solve, tune

# SGLang's tree selection, in its layouts (speclight.sglang).
from . import sglang

__all__ = [
    "MAX_CAPACITY",
    "Builder",
    "Tree",
    "VerifierInputs",
    "bounds",
    "build",
    "build_batch",
    "evaluate",
    "verifier_inputs",
    "walk_chosen",
    "certificate",
    "deploy",
    "solve",
    "sglang",
    "tune",
]
