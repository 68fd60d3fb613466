"""speculative_generate and the trace recorders on small randomly initialised
Llama and GPT-2 models (no download). Skipped only when torch or
transformers is missing and SPECLIGHT_REQUIRE_HF is unset; CI sets it, so
there a missing dependency fails."""

import json
import math
import os
import pathlib
import subprocess

import numpy as np
import pytest

if os.environ.get("SPECLIGHT_REQUIRE_HF"):
    import torch
    import transformers
else:
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")

import speclight
from speclight import hf

VOCAB = 48


def tiny(kind, seed, attn, vocab=VOCAB):
    torch.manual_seed(seed)
    if kind == "llama":
        config = transformers.LlamaConfig(
            vocab_size=vocab, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
            num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256,
        )
        model = transformers.LlamaForCausalLM(config)
    else:
        config = transformers.GPT2Config(vocab_size=vocab, n_embd=32, n_layer=2, n_head=4, n_positions=256)
        model = transformers.GPT2LMHeadModel(config)
    model.config._attn_implementation = attn
    model.generation_config.pad_token_id = 0
    return model.double().eval()


MODELS = [("llama", "eager"), ("llama", "sdpa"), ("gpt2", "eager"), ("gpt2", "sdpa")]


@pytest.mark.parametrize("kind,attn", MODELS)
def test_tree_forward_equals_path_by_path_decoding(kind, attn):
    verifier, drafter = tiny(kind, 1, attn), tiny(kind, 2, attn)
    prompt = [3, 9, 4, 17, 5]
    builder = speclight.Builder(24, max_depth=4)
    tree = hf._build_tree(builder, hf._DraftCache(drafter, 3), prompt, width=4)
    inputs = speclight.VerifierInputs()
    inputs.fill(tree, len(prompt), prompt[-1])
    logits, _ = hf._verify(verifier, transformers.DynamicCache(), prompt, 0, inputs)
    paths = [[]] + [builder_path(tree, i) for i in range(len(tree))]
    for j, path in enumerate(paths):
        with torch.no_grad():
            ref = verifier(input_ids=torch.tensor([prompt + path])).logits[0, -1].double()
        assert torch.allclose(logits[j], ref, atol=1e-4), f"tree position {j}"


def random_batches(rng, nodes, width, depth):
    """A random tree as best-first building feeds it: batches of at most
    ``width`` new nodes (paths of tokens below the root), each the child of
    the root or of a node of an earlier batch, siblings' tokens distinct."""
    fed, batches = [()], []
    while sum(len(b) for b in batches) < nodes:
        batch = []
        for _ in range(rng.integers(1, width + 1)):
            parent = fed[rng.integers(len(fed))]
            taken = {p[-1] for p in fed + batch if len(p) == len(parent) + 1 and p[:-1] == parent}
            free = [t for t in range(VOCAB) if t not in taken]
            if len(parent) < depth and free:
                batch.append(parent + (int(rng.choice(free)),))
        if batch:
            batches.append(batch)
            fed += batch
    return [[list(p) for p in b] for b in batches]


def uncached_topk(drafter, context, path, k):
    """Reference: the drafter's top-k after ``context + path`` from one plain
    forward pass over the whole sequence, no cache, no custom mask."""
    with torch.no_grad():
        logits = drafter(input_ids=torch.tensor([context + path])).logits[0, -1].double()
    top = torch.topk(torch.log_softmax(logits, -1), k)
    return top.values.numpy(), top.indices.numpy()


@pytest.mark.parametrize("kind,attn", MODELS)
def test_cached_draft_topk_equals_uncached(kind, attn):
    """Three steps of random trees on one _DraftCache: the context grows
    between steps by a random path of the tree and one more token (as after
    a walk), so the cache must drop the tree and keep the context."""
    drafter, k = tiny(kind, 2, attn), 4
    rng = np.random.default_rng(7)
    draft = hf._DraftCache(drafter, k)
    context = [int(t) for t in rng.integers(0, VOCAB, 5)]
    for step in range(3):
        checked = [([], draft.root(context))]
        batches = random_batches(rng, nodes=int(rng.integers(1, 20)), width=int(rng.integers(1, 6)), depth=4)
        for batch in batches:
            checked += zip(batch, draft.expand(batch))
        for path, (lp, tok) in checked:
            want_lp, want_tok = uncached_topk(drafter, context, path, k)
            assert np.abs(lp - want_lp).max() < 1e-6, (step, path)
            assert tok.tolist() == want_tok.tolist(), (step, path)
        accepted = batches[-1][int(rng.integers(len(batches[-1])))]
        context = context + accepted + [int(rng.integers(VOCAB))]
    # The same context twice: the root's token is cached and must be re-fed.
    for _ in range(2):
        lp, tok = draft.root(context)
        want_lp, want_tok = uncached_topk(drafter, context, [], k)
        assert np.abs(lp - want_lp).max() < 1e-6 and tok.tolist() == want_tok.tolist()


def builder_path(tree, i):
    parents, tokens = tree.parents, tree.tokens
    path = []
    while i >= 0:
        path.append(int(tokens[i]))
        i = parents[i]
    return path[::-1]


@pytest.mark.parametrize("kind,attn", MODELS)
@pytest.mark.parametrize("capacity,max_depth", [(1, None), (6, 3), (20, None)])
def test_greedy_equals_generate(kind, attn, capacity, max_depth):
    verifier = tiny(kind, 1, attn)
    for drafter in (verifier, tiny(kind, 2, attn)):
        for prompt in ([1, 5, 9], [7], [2, 3, 4, 5, 6, 7, 8]):
            ids = torch.tensor([prompt])
            expected = verifier.generate(ids, do_sample=False, max_new_tokens=12)
            got = hf.speculative_generate(verifier, drafter, ids, 12, capacity, max_depth=max_depth)
            assert got.tokens.tolist() == expected.tolist()
            assert sum(n + 1 for n in got.accepted_lengths) >= got.tokens.shape[1] - len(prompt)
            assert all(s <= capacity for s in got.tree_sizes)
            # A root pass per step, at most one pass per drafted node.
            assert got.steps <= got.draft_passes <= got.steps + sum(got.tree_sizes)
        if drafter is verifier:
            assert got.mean_accepted > 0  # a drafter equal to the verifier is accepted


def chi_square_quantile(df, z=3.09):
    """Wilson-Hilferty approximation of the chi-square quantile at normal
    deviate z (3.09: the 0.999 quantile)."""
    return df * (1 - 2 / (9 * df) + z * math.sqrt(2 / (9 * df))) ** 3


def chi_square_ok(counts, probs):
    """Pearson's test at level 0.001, cells with expected count < 5 pooled."""
    n = counts.sum()
    expected = probs * n
    keep = expected >= 5
    obs = np.append(counts[keep], counts[~keep].sum())
    exp = np.append(expected[keep], expected[~keep].sum())
    if exp[-1] == 0:
        obs, exp = obs[:-1], exp[:-1]
    stat = float(((obs - exp) ** 2 / exp).sum())
    return stat < chi_square_quantile(len(obs) - 1), stat


def test_sampling_walk_is_lossless():
    """One step's sampling walk, drawn many times over one tree and one
    verifier pass (the only random part of a step): the first emitted token
    follows the verifier's p(. | prompt), and the second, when the first was
    a drafted child, follows p(. | prompt, first), both computed here by
    plain forward passes."""
    vocab = 6
    verifier, drafter = tiny("llama", 11, "eager", vocab), tiny("llama", 12, "eager", vocab)
    prompt = [1, 2]
    with torch.no_grad():
        p1 = torch.softmax(verifier(input_ids=torch.tensor([prompt])).logits[0, -1].double(), -1).numpy()
        p2 = torch.softmax(
            verifier(input_ids=torch.tensor([[*prompt, t] for t in range(vocab)])).logits[:, -1].double(), -1
        ).numpy()
    tree = hf._build_tree(speclight.Builder(6), hf._DraftCache(drafter, 3), prompt, width=4)
    inputs = speclight.VerifierInputs()
    inputs.fill(tree, len(prompt), prompt[-1])
    logits, _ = hf._verify(verifier, transformers.DynamicCache(), prompt, 0, inputs)
    generator = torch.Generator().manual_seed(5)
    first = np.zeros(vocab)
    second = np.zeros((vocab, vocab))
    for _ in range(6000):
        accepted, bonus, _ = inputs.walk_chosen(hf._choose(logits, 1.0, None, generator))
        emitted = accepted.tolist() + [int(bonus)]
        first[emitted[0]] += 1
        if len(emitted) >= 2:
            second[emitted[0], emitted[1]] += 1
    ok, stat = chi_square_ok(first, p1)
    assert ok, ("first token", stat)
    drafted = [t for t in range(vocab) if second[t].sum() >= 200]
    assert drafted, "some first tokens are drafted children"
    for t in drafted:
        ok, stat = chi_square_ok(second[t], p2[t])
        assert ok, ("second token after", t, stat)


def test_sampling_generate_runs_end_to_end():
    verifier, drafter = tiny("gpt2", 3, "sdpa"), tiny("gpt2", 4, "sdpa")
    ids = torch.tensor([[1, 2, 3]])
    outs = [hf.speculative_generate(verifier, drafter, ids, 8, 6, temperature=1.0, top_k=5, seed=s) for s in range(3)]
    assert all(o.tokens.shape == (1, 11) for o in outs)
    assert len({tuple(o.tokens[0].tolist()) for o in outs}) > 1  # seeds matter
    again = hf.speculative_generate(verifier, drafter, ids, 8, 6, temperature=1.0, top_k=5, seed=0)
    assert again.tokens.tolist() == outs[0].tokens.tolist()  # and are reproducible


def speclight_binary():
    root = pathlib.Path(__file__).resolve().parents[2]
    for candidate in (os.environ.get("SPECLIGHT_BIN"), root / "target/debug/speclight", root / "target/release/speclight"):
        if candidate and pathlib.Path(candidate).is_file():
            return str(candidate)
    pytest.fail("no speclight binary: run cargo build (scripts/test builds it) or set SPECLIGHT_BIN")


def test_paired_trace_feeds_speclight_tune(tmp_path):
    verifier, drafter = tiny("gpt2", 1, "eager"), tiny("gpt2", 2, "eager")
    path = tmp_path / "pairs.jsonl"
    prompts = [[1 + i, 2 + i, 3] for i in range(6)]
    n = hf.record_paired_trace(verifier, drafter, prompts, path, depth=3, top_k=4, positions=10)
    assert n == 6 * 10 * 3
    first = json.loads(path.read_text().splitlines()[0])
    assert set(first) == {"seq", "pos", "depth", "draft_top", "target", "target_logprob"}
    binary = speclight_binary()
    check = subprocess.run([binary, "tune", "--trace", str(path), "--validate"], capture_output=True, text=True)
    assert check.returncode == 0, check.stderr
    run = subprocess.run(
        [binary, "tune", "--trace", str(path), "--heldout-from-seq", "4", "--capacities", "2,4",
         "--out", str(tmp_path / "report")],
        capture_output=True, text=True,
    )
    assert run.returncode == 0, run.stderr
    assert (tmp_path / "report" / "report.json").is_file()


def test_verifier_trace_feeds_speclight_bound(tmp_path):
    verifier = tiny("llama", 1, "sdpa")
    path = tmp_path / "trace.jsonl"
    n = hf.record_trace(verifier, [[1, 2], [3, 4]], path, top_logprobs=3, length=40)
    assert n == 80
    run = subprocess.run(
        [speclight_binary(), "bound", "--trace", str(path), "--capacity", "8"], capture_output=True, text=True
    )
    assert run.returncode == 0, run.stderr


@pytest.mark.parametrize(
    "kwargs,message",
    [({"max_new_tokens": 0}, "max_new_tokens"), ({"capacity": 0}, "capacity"), ({"temperature": -1.0}, "temperature")],
)
def test_bad_generate_arguments(kwargs, message):
    model = tiny("gpt2", 1, "eager")
    args = {"max_new_tokens": 4, "capacity": 4, **kwargs}
    with pytest.raises(ValueError, match=message):
        hf.speculative_generate(model, model, torch.tensor([[1, 2]]), **args)
    with pytest.raises(ValueError, match="shape"):
        hf.speculative_generate(model, model, torch.tensor([1, 2]), 4, 4)
