//! Core hot paths: building and evaluating trees on `zipf:1.1:32`, and the
//! frontier heap comparison (std `BinaryHeap`, a 4-ary heap, and the
//! `priority-queue` crate, the last two with `--features frontier-comparison`).

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use speclight::{parse_dist, Evaluator, Iid, NextTokenModel, TokenDist, TokenId, TreeBuilder};
use std::hint::black_box;

const CAPACITIES: [usize; 3] = [64, 1024, 16384];

fn zipf() -> Iid {
    Iid::new(parse_dist("zipf:1.1:32").expect("valid spec"))
}

fn build(c: &mut Criterion) {
    let mut group = c.benchmark_group("build");
    let mut model = zipf();
    // The second model alternates with the first in the `*_alt` benches,
    // as a drafter's distribution changes between steps.
    let mut other = Iid::new(parse_dist("zipf:1.4:32").expect("valid spec"));
    for p in CAPACITIES {
        let mut builder = TreeBuilder::new(p).expect("valid capacity");
        group.bench_with_input(BenchmarkId::new("iid", p), &p, |b, _| {
            b.iter(|| black_box(builder.build(&mut model).expect("builds").len()))
        });
        group.bench_with_input(BenchmarkId::new("iid_alt", p), &p, |b, _| {
            b.iter(|| {
                black_box(builder.build(&mut other).expect("builds").len());
                black_box(builder.build(&mut model).expect("builds").len())
            })
        });
    }
    group.finish();
}

fn eval(c: &mut Criterion) {
    let mut group = c.benchmark_group("eval");
    let mut model = zipf();
    for p in CAPACITIES {
        let tree = TreeBuilder::new(p)
            .and_then(|mut b| b.build_owned(&mut model))
            .expect("builds");
        let mut evaluator = Evaluator::new();
        group.bench_with_input(BenchmarkId::new("iid", p), &p, |b, _| {
            b.iter(|| {
                black_box(
                    evaluator
                        .evaluate(&tree, &mut model)
                        .expect("evaluates")
                        .expected_accepted,
                )
            })
        });
    }
    group.finish();
}

/// `zipf:1.1:32` after every prefix, but not declared context-free: the
/// builder takes its general path (lazy expansion, one frontier heap), which
/// is the one every context-dependent drafter uses and the one the
/// frontier type decides.
struct Opaque(Iid);

impl NextTokenModel for Opaque {
    fn next(&mut self, path: &[TokenId]) -> speclight::Result<&TokenDist> {
        self.0.next(path)
    }
}

fn frontier(c: &mut Criterion) {
    let mut group = c.benchmark_group("frontier");
    let mut model = Opaque(zipf());
    for p in CAPACITIES {
        let mut std_heap = TreeBuilder::new(p).expect("valid capacity");
        group.bench_with_input(BenchmarkId::new("binary_heap", p), &p, |b, _| {
            b.iter(|| black_box(std_heap.build(&mut model).expect("builds").len()))
        });
        #[cfg(feature = "frontier-comparison")]
        {
            use speclight::frontier_comparison::{PriorityQueueFrontier, QuaternaryFrontier};
            let mut quaternary =
                TreeBuilder::<QuaternaryFrontier>::with_frontier(p).expect("valid capacity");
            group.bench_with_input(BenchmarkId::new("quaternary_heap", p), &p, |b, _| {
                b.iter(|| black_box(quaternary.build(&mut model).expect("builds").len()))
            });
            let mut pq =
                TreeBuilder::<PriorityQueueFrontier>::with_frontier(p).expect("valid capacity");
            group.bench_with_input(BenchmarkId::new("priority_queue", p), &p, |b, _| {
                b.iter(|| black_box(pq.build(&mut model).expect("builds").len()))
            });
        }
    }
    group.finish();
}

criterion_group!(benches, build, eval, frontier);
criterion_main!(benches);
