"""Per-step cost of speclight called from Python at P = 64, next to the Rust
benches that do the same work, so the difference is the Python call overhead
(argument conversion, the result objects, the GIL).

Same inputs as the Rust benches: the tree is built from `zipf:1.1:32` as in
`benches/core.rs` (`build/iid/64`); the verifier inputs are filled for the
64-node tree of `0.5,0.3,0.2` as in `benches/serve.rs` (`serve/mask/64`,
`serve/bias/64`). Batch 1: one Builder and one VerifierInputs reused; batch
64: `build_batch` (Rust threads, GIL released) and 64 fills, per request.
Prints the median of individually timed calls (microseconds). Build the extension with
`maturin develop --release` first; the Rust side:

    cargo bench --bench core -- build/iid/64
    cargo bench --bench serve -- 'serve/(mask|bias)/64'
    python python/bench/step_overhead.py
"""

import statistics
import time

import numpy as np
import speclight

P = 64
BATCH = 64
ZIPF = np.arange(1, 33, dtype=np.float64) ** -1.1
ZIPF_LOGPROBS = np.log(ZIPF / ZIPF.sum())  # zipf:1.1:32 (docs: p_k proportional to k^-S)
SERVE_LOGPROBS = np.log([0.5, 0.3, 0.2])


def median_us(fn, calls):
    """Median of `calls` individually timed calls: on a shared machine a few
    calls are preempted for a whole scheduler tick (milliseconds), which a
    mean over a loop (timeit) would spread over every call."""
    fn()  # warm-up
    times = []
    for _ in range(calls):
        t0 = time.perf_counter_ns()
        fn()
        times.append(time.perf_counter_ns() - t0)
    return statistics.median(times) / 1e3


def main():
    builder = speclight.Builder(P)
    inputs = speclight.VerifierInputs()
    serve_tree = speclight.build(SERVE_LOGPROBS, P)
    inputs.fill(serve_tree, 4096, 1)
    n = len(inputs)
    bias = np.zeros(n * n, dtype=np.float32)
    batch = [ZIPF_LOGPROBS] * BATCH
    batch_inputs = [speclight.VerifierInputs() for _ in range(BATCH)]

    def step():
        inputs.fill(builder.build(ZIPF_LOGPROBS), 4096, 1)

    def batch_step():
        for tree, vi in zip(speclight.build_batch(batch, P), batch_inputs):
            vi.fill(tree, 4096, 1)

    rows = [
        ("Builder.build (zipf:1.1:32)", "build/iid/64", median_us(lambda: builder.build(ZIPF_LOGPROBS), 20000)),
        ("VerifierInputs.fill (tree of 0.5,0.3,0.2)", "serve/mask/64", median_us(lambda: inputs.fill(serve_tree, 4096, 1), 20000)),
        ("write_mask_bias_into (65 x 65 float32)", "serve/bias/64", median_us(lambda: inputs.write_mask_bias_into(bias), 20000)),
        ("batch 1: build + fill, per request", "build/iid/64 + serve/mask/64", median_us(step, 20000)),
        (f"batch {BATCH}: build_batch + {BATCH} fills, per request", "build/iid/64 + serve/mask/64",
         median_us(batch_step, 500) / BATCH),
    ]
    width = max(len(r[0]) for r in rows)
    print(f"{'Python call, P = 64':<{width}}  median us  (Rust bench of the same work)")
    for name, bench, us in rows:
        print(f"{name:<{width}}  {us:9.2f}  ({bench})")


if __name__ == "__main__":
    main()
