"""speclight.sglang on an illustrative batch (random Dirichlet drafter
distributions, not a real model): the summed E[X] of SGLang's uniform
num_draft_tokens against per-request budgets from speclight's batch allocator
for the same total, and the CPU time of one step's calls (medians).

    python python/bench/sglang_budgets.py
"""

import statistics
import timeit

import numpy as np
from speclight import sglang

B, TOPK, STEPS, N, VOCAB = 8, 4, 4, 8, 40


def drafts(rng):
    """SGLang's (score_list, token_list, parents_list) for a batch where half
    the requests have a confident drafter after the first step."""

    def top(rows, alpha):
        p = rng.dirichlet(np.full(VOCAB, alpha), size=rows)
        i = np.argsort(-p, axis=1)[:, :TOPK]
        return np.take_along_axis(p, i, axis=1).astype(np.float32), i

    alphas = np.repeat(rng.choice([0.05, 0.5], size=B), TOPK)
    p, tok = top(B, 0.3)
    scores, tokens, parents = [p[:, None, :]], [tok], [np.tile(np.arange(-1, TOPK), (B, 1))]
    beam = p
    for i in range(1, STEPS):
        p = np.concatenate([top(1, a)[0] for a in alphas])
        expand = beam[:, :, None] * p.reshape(B, TOPK, TOPK)
        chosen = np.argsort(-expand.reshape(B, -1), axis=1)[:, :TOPK]
        beam = np.take_along_axis(expand.reshape(B, -1), chosen, axis=1)
        scores.append(expand)
        tokens.append(rng.integers(0, VOCAB, size=(B, TOPK * TOPK)))
        parents.append(chosen + TOPK * TOPK * (i - 1) + TOPK)
    return scores, tokens, parents


def median_us(fn, number=20, repeat=15):
    return statistics.median(timeit.repeat(fn, number=number, repeat=repeat)) / number * 1e6


def main():
    scores, tokens, parents = drafts(np.random.default_rng(0))
    _, uniform, _ = sglang.organize_draft_results(scores, tokens, parents, N)
    budgets = sglang.allocate_budgets(scores, parents, total_draft_tokens=B * N, max_draft_tokens=2 * N)
    parent_list, split, drafted = sglang.organize_draft_results(scores, tokens, parents, 2 * N, budgets=budgets)
    print(f"B={B} topk={TOPK} steps={STEPS} num_draft_tokens={N}: total {B * N}")
    print("budgets", budgets.tolist(), "sum", int(budgets.sum()))
    print(
        "sum of E[X]: uniform %.4f, allocated %.4f"
        % (
            sglang.expected_accepted(scores, parents, uniform).sum(),
            sglang.expected_accepted(scores, parents, split).sum(),
        )
    )
    seq_lens = np.full(B, 512)
    print("organize_draft_results: %.1f us" % median_us(lambda: sglang.organize_draft_results(scores, tokens, parents, N)))
    print("allocate_budgets: %.1f us" % median_us(lambda: sglang.allocate_budgets(scores, parents, B * N, max_draft_tokens=2 * N)))
    print(
        "build_tree (FULL_MASK, seq_len 512): %.1f us"
        % median_us(
            lambda: sglang.build_tree(
                np.zeros(B, np.int64), parent_list, split, drafted, seq_lens, 512 * B, TOPK, STEPS, 2 * N
            )
        )
    )


if __name__ == "__main__":
    main()
