"""Per-step cost of speclight called from Python, P = 64: one request, and a
batch of 64 (build_batch, GIL released, rayon). Prints medians of repeated
timings; compare with the Rust benches (`cargo bench --bench core -- build/iid/64`).

    python python/bench/step_overhead.py
"""

import statistics
import timeit

import numpy as np
import speclight

P = 64
LOGPROBS = np.log(np.array([0.4, 0.2, 0.1, 0.08, 0.07, 0.05, 0.04, 0.03, 0.02, 0.01]))


def median_us(fn, number, repeat=15):
    times = timeit.repeat(fn, number=number, repeat=repeat)
    return statistics.median(times) / number * 1e6


def main():
    builder = speclight.Builder(P)
    inputs = speclight.VerifierInputs()
    tree = builder.build(LOGPROBS)
    inputs.fill(tree, 100, 1)
    n = len(inputs)
    bias = np.zeros(n * n, dtype=np.float32)
    chosen = np.zeros(n, dtype=np.int64)

    def step():
        t = builder.build(LOGPROBS)
        inputs.fill(t, 100, 1)
        inputs.write_mask_bias_into(bias)
        inputs.walk_chosen(chosen)

    batch = [LOGPROBS] * 64
    rows = [
        ("Builder.build, P=64", median_us(lambda: builder.build(LOGPROBS), 200)),
        ("one step (build + fill + mask into buffer + walk), P=64", median_us(step, 200)),
        ("build_batch, 64 requests, P=64 (per batch)", median_us(lambda: speclight.build_batch(batch, P), 20)),
    ]
    for name, us in rows:
        print(f"{name}: {us:.1f} us")


if __name__ == "__main__":
    main()
