"""The README's Python examples run as written.

A block that uses ``speclight.hf`` names a ``verifier``, a ``drafter`` and
``input_ids`` the reader brings; the test brings two small randomly
initialised Llama models (no download) and checks the block's result against
``verifier.generate``. It needs torch and transformers: skipped without them
unless SPECLIGHT_REQUIRE_HF is set, as in CI."""

import os
import pathlib
import re

import pytest

README = pathlib.Path(__file__).resolve().parents[2] / "README.md"


def readme_blocks():
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), re.S)
    assert blocks, "the README has a Python example"
    return blocks


def hf_models():
    """A verifier, a drafter (another random model: acceptance is low, the
    output must still be the verifier's) and a prompt."""
    if os.environ.get("SPECLIGHT_REQUIRE_HF"):
        import torch
        import transformers
    else:
        torch = pytest.importorskip("torch")
        transformers = pytest.importorskip("transformers")

    def llama(seed):
        torch.manual_seed(seed)
        config = transformers.LlamaConfig(
            vocab_size=64, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
            num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256,
        )
        model = transformers.LlamaForCausalLM(config)
        model.generation_config.pad_token_id = 0
        return model.double().eval()

    input_ids = torch.tensor([[3, 14, 15, 9, 2, 6]])
    return {"verifier": llama(1), "drafter": llama(2), "input_ids": input_ids}


def test_readme_python_blocks_run():
    for block in readme_blocks():
        if "from speclight import hf" in block:
            continue
        exec(compile(block, str(README), "exec"), {})


def test_readme_speculative_generate_block_runs():
    blocks = [b for b in readme_blocks() if "from speclight import hf" in b]
    assert blocks, "the README shows speculative_generate"
    for block in blocks:
        names = hf_models()
        exec(compile(block, str(README), "exec"), names)
        want = names["verifier"].generate(names["input_ids"], do_sample=False, max_new_tokens=64)
        assert names["out"].tokens.tolist() == want.tolist()
