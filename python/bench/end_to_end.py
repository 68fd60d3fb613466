"""End to end on CPU: tree speculative decoding (`speclight.hf.speculative_generate`)
against plain greedy `verifier.generate(do_sample=False)`, with two small
randomly initialised Llama models (nothing is downloaded).

Illustrative construction, not a real model pair: the verifier is a tiny
Llama whose last layers are weak refinements (their output projections are
scaled by --refine-scale, so they change the residual stream little); the
drafter is the same model truncated to its first --draft-layers layers,
sharing the embedding, those layers, the final norm and the head. That gives
a drafter that agrees with the verifier often but not always, the situation
speculative decoding is for. Reports, per run: accepted draft tokens per
verifier step, tokens per step, drafter passes per step, wall time of both
methods, and whether the outputs are identical (greedy speculative decoding
must equal `generate`).

    python python/bench/end_to_end.py [--new-tokens 128 --capacity 16 ...]
    # a verifier far more expensive than its drafter (docs/python.md):
    python python/bench/end_to_end.py --layers 48 --hidden 64 --draft-layers 1 --refine-scale 0.02
"""

import argparse
import statistics
import time

import torch
import transformers

from speclight import hf


def models(args):
    torch.manual_seed(args.seed)
    config = transformers.LlamaConfig(
        vocab_size=args.vocab, hidden_size=args.hidden, intermediate_size=2 * args.hidden,
        num_hidden_layers=args.layers, num_attention_heads=4, num_key_value_heads=2,
        max_position_embeddings=1024, initializer_range=args.init_std,
    )
    verifier = transformers.LlamaForCausalLM(config)
    with torch.no_grad():
        for layer in verifier.model.layers[args.draft_layers:]:
            layer.self_attn.o_proj.weight.mul_(args.refine_scale)
            layer.mlp.down_proj.weight.mul_(args.refine_scale)
    drafter = transformers.LlamaForCausalLM(
        transformers.LlamaConfig(**{**config.to_dict(), "num_hidden_layers": args.draft_layers})
    )
    # Shared modules, not copies: the drafter is the verifier's first layers.
    drafter.model.embed_tokens = verifier.model.embed_tokens
    drafter.model.layers = torch.nn.ModuleList(verifier.model.layers[: args.draft_layers])
    drafter.model.norm = verifier.model.norm
    drafter.lm_head = verifier.lm_head
    for m in (verifier, drafter):
        m.config._attn_implementation = "sdpa"
        m.generation_config.pad_token_id = 0
        m.generation_config.eos_token_id = None  # random models: run to max_new_tokens
    return verifier.to(args.dtype).eval(), drafter.to(args.dtype).eval()


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--new-tokens", type=int, default=128)
    p.add_argument("--capacity", type=int, default=16)
    p.add_argument("--max-depth", type=int, default=6)
    p.add_argument("--width", type=int, default=8, help="tree nodes per drafter forward pass")
    p.add_argument("--prompts", type=int, default=4)
    p.add_argument("--prompt-len", type=int, default=16)
    p.add_argument("--vocab", type=int, default=512)
    p.add_argument("--hidden", type=int, default=128)
    p.add_argument("--layers", type=int, default=6)
    p.add_argument("--draft-layers", type=int, default=2)
    p.add_argument("--refine-scale", type=float, default=0.1)
    p.add_argument("--init-std", type=float, default=0.1)
    p.add_argument("--dtype", default="float64", choices=["float32", "float64"])
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()
    args.dtype = getattr(torch, args.dtype)
    torch.set_num_threads(args.threads)
    verifier, drafter = models(args)
    gen = torch.Generator().manual_seed(args.seed + 1)
    prompts = [torch.randint(1, args.vocab, (1, args.prompt_len), generator=gen) for _ in range(args.prompts)]

    print(f"models: verifier {args.layers} layers, drafter its first {args.draft_layers} "
          f"(hidden {args.hidden}, vocab {args.vocab}, {str(args.dtype)[6:]}, {args.threads} thread(s)); "
          f"capacity {args.capacity}, depth <= {args.max_depth}, {args.new_tokens} new tokens, {args.prompts} prompts")
    plain_s, spec_s, accepted, identical = [], [], [], 0
    draft_s, verify_s, passes = 0.0, 0.0, 0
    for ids in prompts:
        with torch.no_grad():
            verifier.generate(ids, do_sample=False, max_new_tokens=2)  # warm-up
            t0 = time.perf_counter()
            want = verifier.generate(ids, do_sample=False, max_new_tokens=args.new_tokens)
            plain_s.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        out = hf.speculative_generate(verifier, drafter, ids, max_new_tokens=args.new_tokens,
                                      capacity=args.capacity, max_depth=args.max_depth,
                                      temperature=0.0, width=args.width)
        spec_s.append(time.perf_counter() - t0)
        accepted += out.accepted_lengths
        draft_s, verify_s, passes = draft_s + out.draft_seconds, verify_s + out.verify_seconds, passes + out.draft_passes
        identical += int(torch.equal(out.tokens, want))
        print(f"  prompt: {out.steps} steps, {out.mean_accepted:.2f} accepted/step, "
              f"draft {out.draft_seconds:.2f} s + verify {out.verify_seconds:.2f} s; "
              f"speculative {spec_s[-1]:.2f} s vs generate {plain_s[-1]:.2f} s")
    mean_acc = statistics.mean(accepted)
    print(f"accepted draft tokens per verifier step: mean {mean_acc:.3f} over {len(accepted)} steps "
          f"(tokens per step {1 + mean_acc:.3f}); drafter passes per step {passes / len(accepted):.2f}")
    print(f"wall time, total over prompts: speculative {sum(spec_s):.2f} s (drafting {draft_s:.2f} s, "
          f"verifying {verify_s:.2f} s), generate {sum(plain_s):.2f} s (ratio {sum(plain_s) / sum(spec_s):.2f}x)")
    print(f"outputs identical to generate: {identical} of {len(prompts)}")


if __name__ == "__main__":
    main()
