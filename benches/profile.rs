//! A driver for instruction counts (`valgrind --tool=callgrind`), which stay
//! repeatable on a loaded machine where wall-clock medians do not.
//!
//! `cargo bench --bench profile --no-run`, then
//! `valgrind --tool=callgrind target/release/deps/profile-* CASE N REPS`
//! with CASE one of `cf` (context-free build on `zipf:1.1:32`), `cf-alt`
//! (alternating `zipf:1.1:32` and `zipf:1.4:32`, as a drafter's
//! distribution changes between steps), `gen` (the
//! same model through the general path), `fill` (`VerifierInputs::fill` on a
//! context-free tree of N nodes), `eval` (evaluate that tree), `alloc` (batch
//! allocation into a reused output, 256 requests, budget N; `alloc-owned`
//! returns a new `Allocation` each time). Per-case cost = (count at REPS) -
//! (count at 0), divided by REPS (and by N for per-node figures).

use speclight::capacity::{Allocation, BatchAllocator};
use speclight::serve::VerifierInputs;
use speclight::{parse_dist, Evaluator, Iid, NextTokenModel, TokenDist, TokenId, TreeBuilder};
use std::hint::black_box;

/// A context-free model hidden from the builder: the general path.
struct Opaque(Iid);

impl NextTokenModel for Opaque {
    fn next(&mut self, path: &[TokenId]) -> speclight::Result<&TokenDist> {
        self.0.next(path)
    }
}

fn zipf() -> Iid {
    Iid::new(parse_dist("zipf:1.1:32").expect("valid spec"))
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (case, n, reps) = match args.as_slice() {
        [_, case, n, reps, ..] => (
            case.as_str(),
            n.parse::<usize>().expect("N"),
            reps.parse::<usize>().expect("REPS"),
        ),
        // `cargo bench` runs every bench binary with `--bench`: nothing to do.
        _ => return,
    };
    let mut model = zipf();
    let mut builder = TreeBuilder::new(n).expect("capacity");
    let tree = builder.build_owned(&mut model).expect("build");
    match case {
        "cf" => (0..reps).for_each(|_| {
            black_box(builder.build(&mut model).expect("build").len());
        }),
        "cf-alt" => {
            let mut other = Iid::new(parse_dist("zipf:1.4:32").expect("valid spec"));
            (0..reps).for_each(|i| {
                let m = if i % 2 == 0 { &mut other } else { &mut model };
                black_box(builder.build(m).expect("build").len());
            });
        }
        "gen" => {
            let mut opaque = Opaque(zipf());
            (0..reps).for_each(|_| {
                black_box(builder.build(&mut opaque).expect("build").len());
            });
        }
        "fill" => {
            let mut inputs = VerifierInputs::new();
            (0..reps).for_each(|_| inputs.fill(black_box(&tree), 4096, 1).expect("fill"));
        }
        "eval" => {
            let mut evaluator = Evaluator::new();
            (0..reps).for_each(|_| {
                black_box(
                    evaluator
                        .evaluate(&tree, &mut model)
                        .expect("eval")
                        .expected_accepted,
                );
            });
        }
        "alloc" | "alloc-owned" => {
            let mut models: Vec<Iid> = (0..256)
                .map(|i| {
                    let s = 0.6 + 1.9 * f64::from(i) / 255.0;
                    Iid::new(parse_dist(&format!("zipf:{s}:64")).expect("spec"))
                })
                .collect();
            let mut allocator = BatchAllocator::new(n).expect("allocator");
            let mut out = Allocation::default();
            // One warm-up so that REPS = 0 already holds the grown buffers.
            allocator
                .allocate_into(&mut models, &[], &mut out)
                .expect("allocate");
            (0..reps).for_each(|_| {
                if case == "alloc" {
                    allocator
                        .allocate_into(&mut models, &[], &mut out)
                        .expect("allocate");
                } else {
                    black_box(allocator.allocate(&mut models, &[]).expect("allocate"));
                }
            });
        }
        other => panic!("unknown case {other}"),
    }
}
