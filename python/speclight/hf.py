"""Tree speculative decoding with any pair of Hugging Face causal LMs.

Optional: needs ``torch`` and ``transformers`` (``pip install speclight[hf]``).

- :func:`speculative_generate`: per step, the drafter's top-k after every
  node the best-first builder asks for (``Builder.next_batch``: one drafter
  pass over ``width`` new nodes on its KV cache), one verifier forward pass
  over the whole tree with speclight's additive 4-D mask and position ids on
  a KV cache, then the verification walk (greedy, or sampling, which is
  lossless: docs/THEORY.md section 1). Between steps both caches keep only
  the accepted text.
- :func:`record_paired_trace`: the paired-trace JSONL that ``speclight tune``
  reads, from any model pair.
- :func:`record_trace`: the verifier trace that ``speclight bound --trace`` reads.

Both models keep a KV cache of the accepted context across steps; the
drafter's also holds the tree nodes drafted so far in the step, so each
drafter pass reads only the new tokens. One request at a time, in Python:
this module is for measuring and testing trees, not a production server.
"""

from __future__ import annotations

import functools
import inspect
import json
import time
from dataclasses import dataclass, field
from typing import Iterable, Optional, Sequence

import numpy as np
import torch

from ._native import Builder, VerifierInputs

__all__ = ["GenerateResult", "speculative_generate", "record_paired_trace", "record_trace"]


@dataclass
class GenerateResult:
    """Output of :func:`speculative_generate`."""

    tokens: torch.Tensor
    """``(1, prompt + new)`` token ids, as ``model.generate`` returns them."""
    accepted_lengths: list = field(default_factory=list)
    """Draft tokens accepted at each step (the bonus token is extra)."""
    tree_sizes: list = field(default_factory=list)
    """Draft nodes in each step's tree."""
    draft_passes: int = 0
    """Drafter forward passes: one for the root of each step, one per batch."""
    draft_seconds: float = 0.0
    verify_seconds: float = 0.0
    walk_seconds: float = 0.0

    @property
    def steps(self) -> int:
        return len(self.accepted_lengths)

    @property
    def mean_accepted(self) -> float:
        """Mean accepted draft tokens per verifier step."""
        return float(np.mean(self.accepted_lengths)) if self.accepted_lengths else 0.0


def _check_args(input_ids, max_new_tokens, capacity, temperature):
    if input_ids.ndim != 2 or input_ids.shape[0] != 1 or input_ids.shape[1] == 0:
        raise ValueError("input_ids must have shape (1, L) with L >= 1 (one request)")
    if max_new_tokens < 1:
        raise ValueError("max_new_tokens must be at least 1")
    if capacity < 1:
        raise ValueError("capacity must be at least 1")
    if not (temperature >= 0.0 and np.isfinite(temperature)):
        raise ValueError("temperature must be finite and >= 0")


def _additive(allowed: torch.Tensor, dtype, device):
    """A boolean ``(q, keys)`` attention pattern as the additive 4-D mask
    ``(1, 1, q, keys)`` Hugging Face models take: 0 where allowed, the
    dtype's minimum elsewhere."""
    bias = torch.zeros(allowed.shape, dtype=dtype)
    bias[~allowed] = torch.finfo(dtype).min
    return bias[None, None].to(device)


def _crop(cache, length: int):
    """Crops ``cache`` to its first ``length`` tokens. Called only when there
    is something to remove: transformers 4 reads ``crop(0)`` as "keep
    nothing", 5 as "remove nothing"; a negative count means the same in both."""
    extra = cache.get_seq_length() - length
    if extra > 0:
        cache.crop(-extra)


class _DraftCache:
    """The drafter's KV cache. Between steps it holds the accepted context
    (kept across steps, like the verifier's); within a step, the tree nodes
    fed so far follow it, each fed once with a 4-D mask that shows it the
    context and its ancestors only, at position ``len(context) - 1 +
    depth``. So a drafter pass runs on q new tokens only (the context
    accepted since the last step for the root, the <= ``width`` requested
    nodes for a batch), each attending to the L context and n tree tokens
    cached: O(q * (L + n)) attention and O(q) per-token work, instead of
    ``width * (L + depth)`` tokens re-read per batch without a cache."""

    def __init__(self, drafter, k: int):
        from transformers import DynamicCache

        self.model, self.k = drafter, k
        self.cache = DynamicCache()
        self.context = 0  # context tokens in the cache
        self.slots: dict = {}  # a tree node's path tokens -> its cache index
        self.passes = 0

    @torch.no_grad()
    def _forward(self, tokens: list, positions: list, allowed: torch.Tensor):
        """One drafter pass over ``tokens`` on top of the cache; the top-k
        (log-probabilities, tokens) after each of them."""
        device = self.model.device
        self.passes += 1
        out = self.model(
            input_ids=torch.tensor([tokens], device=device),
            attention_mask=_additive(allowed, self.model.dtype, device),
            position_ids=torch.tensor([positions], device=device),
            use_cache=True,
            **_cache_kwarg(self.model, self.cache),
        )
        logp = torch.log_softmax(out.logits[0].double(), -1)
        top = torch.topk(logp, min(self.k, logp.shape[-1]), dim=-1)
        return [(v.cpu().numpy(), t.cpu().numpy()) for v, t in zip(top.values, top.indices)]

    def root(self, text: list):
        """The top-k after ``text``, whose first ``self.context`` tokens are
        the cached context (the previous step's text, a prefix of this one)."""
        # The root's logits need its own token fed: re-feed it if cached.
        self.context = min(self.context, len(text) - 1)
        _crop(self.cache, self.context)
        self.slots = {}
        cached, pending = self.context, text[self.context :]
        allowed = torch.ones((len(pending), cached + len(pending)), dtype=torch.bool)
        allowed[:, cached:] = allowed[:, cached:].tril()
        top = self._forward(pending, list(range(cached, len(text))), allowed)
        self.context = len(text)
        return top[-1]

    def expand(self, paths: Sequence[Sequence[int]]):
        """The top-k after ``context + path`` for every path (tokens below
        the root, the node last). Every proper prefix of a path must be a
        node fed earlier in this step, as in best-first building."""
        start = self.cache.get_seq_length()
        allowed = torch.zeros((len(paths), start + len(paths)), dtype=torch.bool)
        allowed[:, : self.context] = True
        for i, path in enumerate(paths):
            ancestors = [self.slots[tuple(path[:d])] for d in range(1, len(path))]
            allowed[i, ancestors] = True
            allowed[i, start + i] = True
            self.slots[tuple(path)] = start + i
        positions = [self.context - 1 + len(p) for p in paths]
        return self._forward([p[-1] for p in paths], positions, allowed)


def _build_tree(builder: Builder, draft: _DraftCache, context: list, width: int):
    builder.begin(*draft.root(context))
    while True:
        nodes = builder.next_batch(width)
        if len(nodes) == 0:
            return builder.finish()
        paths = [builder.path_tokens(int(n)).tolist() for n in nodes]
        for n, (lp, tok) in zip(nodes, draft.expand(paths)):
            builder.feed(int(n), lp, tok)


def _tree_mask(inputs: VerifierInputs, cached: int, pending: int, dtype, device):
    """The additive 4-D mask ``(1, 1, q, cached + q)`` for ``pending`` context
    tokens not yet in the cache followed by the tree (root first)."""
    n = len(inputs)
    q = pending + n
    allowed = torch.zeros((q, cached + q), dtype=torch.bool)
    allowed[:, :cached] = True
    allowed[:, cached : cached + pending] = torch.ones(q, pending, dtype=torch.bool).tril()
    allowed[pending:, cached : cached + pending] = True
    allowed[pending:, cached + pending :] = torch.from_numpy(inputs.mask_bool)
    return _additive(allowed, dtype, device)


@torch.no_grad()
def _verify(verifier, cache, text: list, cached: int, inputs: VerifierInputs):
    """One verifier pass over the uncached context and the tree; returns the
    logits at every tree position (root first) and crops the cache back to
    the context (the root included)."""
    device = verifier.device
    pending = text[cached:-1]
    ids = torch.tensor([pending + inputs.tokens.tolist()], device=device)
    positions = torch.tensor(
        [list(range(cached, len(text) - 1)) + inputs.positions.tolist()], device=device
    )
    mask = _tree_mask(inputs, cached, len(pending), verifier.dtype, device)
    out = verifier(input_ids=ids, attention_mask=mask, position_ids=positions, use_cache=True, **_cache_kwarg(verifier, cache))
    # The cache grows in place; drop the tree, keep the context.
    _crop(cache, len(text))
    return out.logits[0, len(pending) :].double(), cache


def _cache_kwarg(model, cache):
    """transformers 5.x names the cache argument `cache` (`past_key_values`
    is deprecated there); 4.x knows only `past_key_values`."""
    return {_cache_name(type(model)): cache}


@functools.lru_cache(maxsize=None)
def _cache_name(cls) -> str:
    # Once per model class, not on every drafter pass.
    params = inspect.signature(cls.forward).parameters
    return "cache" if "cache" in params else "past_key_values"


def _choose(logits: torch.Tensor, temperature: float, top_k: Optional[int], generator):
    """The verifier's token after every tree position: its argmax, or a draw
    at ``temperature`` (restricted to its ``top_k`` when given)."""
    if temperature == 0.0:
        return logits.argmax(-1).cpu().numpy()
    scaled = logits / temperature
    if top_k is not None:
        kth = torch.topk(scaled, top_k, dim=-1).values[..., -1:]
        scaled = scaled.masked_fill(scaled < kth, float("-inf"))
    probs = torch.softmax(scaled, -1).cpu()
    return torch.multinomial(probs, 1, generator=generator)[:, 0].numpy()


def speculative_generate(
    verifier,
    drafter,
    input_ids: torch.Tensor,
    max_new_tokens: int,
    capacity: int,
    max_depth: Optional[int] = None,
    temperature: float = 0.0,
    top_k: Optional[int] = None,
    seed: Optional[int] = None,
    draft_top_k: int = 8,
    width: int = 8,
) -> GenerateResult:
    """Tree speculative decoding of one request.

    Greedy (``temperature=0``) returns exactly the tokens of
    ``verifier.generate(input_ids, do_sample=False)``; sampling returns text
    distributed exactly as the verifier's own samples. Stops after
    ``max_new_tokens`` or at the verifier's end-of-sequence token, like
    ``generate``. ``capacity`` draft nodes per step (at most ``max_depth``
    deep); each node's children come from the drafter's ``draft_top_k``;
    ``width`` nodes share a drafter forward pass.
    """
    _check_args(input_ids, max_new_tokens, capacity, temperature)
    from transformers import DynamicCache

    generator = torch.Generator().manual_seed(seed if seed is not None else 0)
    eos = getattr(verifier.generation_config, "eos_token_id", None)
    eos = set([eos] if isinstance(eos, int) else (eos or []))
    builder, inputs = Builder(capacity, max_depth), VerifierInputs()
    text = input_ids[0].tolist()
    prompt_len, cached, cache = len(text), 0, DynamicCache()
    draft = _DraftCache(drafter, draft_top_k)
    result = GenerateResult(tokens=input_ids)
    while len(text) - prompt_len < max_new_tokens:
        t0 = time.perf_counter()
        tree = _build_tree(builder, draft, text, width)
        inputs.fill(tree, len(text), text[-1])
        t1 = time.perf_counter()
        logits, cache = _verify(verifier, cache, text, cached, inputs)
        cached = len(text)
        t2 = time.perf_counter()
        accepted, bonus, _ = inputs.walk_chosen(_choose(logits, temperature, top_k, generator))
        new = accepted.tolist() + [int(bonus)]
        result.draft_seconds += t1 - t0
        result.verify_seconds += t2 - t1
        result.walk_seconds += time.perf_counter() - t2
        result.accepted_lengths.append(len(accepted))
        result.tree_sizes.append(len(tree))
        for token in new[: max_new_tokens - (len(text) - prompt_len)]:
            text.append(token)
            if token in eos:
                break
        if text[-1] in eos:
            break
    result.tokens = torch.tensor([text], device=input_ids.device)
    result.draft_passes = draft.passes
    return result


def _continuations(verifier, prompts: Iterable[Sequence[int]], length: int, temperature: float, generator):
    """The verifier's own continuation of each prompt, with the log-probability
    of each sampled token at ``temperature`` and its full distribution."""
    if not (temperature > 0.0 and np.isfinite(temperature)):
        raise ValueError("traces are sampled: temperature must be finite and > 0")
    for prompt in prompts:
        text = list(prompt)
        if not text:
            raise ValueError("every prompt needs at least one token")
        logps = []
        for _ in range(length):
            with torch.no_grad():
                logits = verifier(input_ids=torch.tensor([text], device=verifier.device)).logits[0, -1]
            lp = torch.log_softmax(logits.double() / temperature, -1).cpu()
            y = int(torch.multinomial(lp.exp(), 1, generator=generator))
            logps.append(lp)
            text.append(y)
        yield len(prompt), text, logps


def record_paired_trace(
    verifier, drafter, prompts, path, depth: int = 4, top_k: int = 8, temperature: float = 1.0,
    positions: int = 32, seed: int = 0,
) -> int:
    """Writes the paired trace ``speclight tune`` reads: for every prompt
    (one sequence each), the verifier's continuation of ``positions + depth
    - 1`` tokens at ``temperature``; for every position ``i`` and depth
    ``d``, the drafter's top-``top_k`` for the token ``d`` ahead, drafted
    along the verifier's text, with the verifier's token and its
    log-probability. Returns the number of records."""
    if depth < 1 or top_k < 1 or positions < 1:
        raise ValueError("depth, top_k and positions must be at least 1")
    generator = torch.Generator().manual_seed(seed)
    n = 0
    with open(path, "w", encoding="utf-8") as out:
        stream = _continuations(verifier, prompts, positions + depth - 1, temperature, generator)
        for seq, (start, text, logps) in enumerate(stream):
            with torch.no_grad():
                logits = drafter(input_ids=torch.tensor([text], device=drafter.device)).logits[0]
            draft = torch.log_softmax(logits.double(), -1).cpu()
            top = torch.topk(draft, min(top_k, draft.shape[-1]), dim=-1)
            for i in range(positions):
                for d in range(1, depth + 1):
                    at = i + d - 1  # index in the continuation of the target token
                    row = start + at - 1  # the drafter's prediction for text[start + at]
                    record = {
                        "seq": seq,
                        "pos": i,
                        "depth": d,
                        "draft_top": [[int(t), float(v)] for t, v in zip(top.indices[row], top.values[row])],
                        "target": text[start + at],
                        "target_logprob": float(logps[at][text[start + at]]),
                    }
                    out.write(json.dumps(record) + "\n")
                    n += 1
    return n


def record_trace(verifier, prompts, path, top_logprobs: int = 5, length: int = 64, temperature: float = 1.0, seed: int = 0) -> int:
    """Writes the verifier trace ``speclight bound --trace`` reads: the
    verifier's sampled continuation of each prompt, one JSON line per token
    with its log-probability and the verifier's top alternatives there,
    ``{"end": true}`` between sequences. Returns the number of tokens."""
    if top_logprobs < 0 or length < 1:
        raise ValueError("top_logprobs must be >= 0 and length >= 1")
    generator = torch.Generator().manual_seed(seed)
    n = 0
    with open(path, "w", encoding="utf-8") as out:
        for start, text, logps in _continuations(verifier, prompts, length, temperature, generator):
            for at, lp in enumerate(logps):
                token = text[start + at]
                line = {"token": token, "logprob": float(lp[token])}
                if top_logprobs:
                    top = torch.topk(lp, min(top_logprobs, lp.shape[-1]))
                    line["top_logprobs"] = [
                        {"token": int(t), "logprob": float(v)} for t, v in zip(top.indices, top.values)
                    ]
                out.write(json.dumps(line) + "\n")
                n += 1
            out.write(json.dumps({"end": True}) + "\n")
    return n
