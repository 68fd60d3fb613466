//! Capacity solver and batch allocation benches (targets in the README:
//! solve N=1024, D=16 under 20 ms; allocate B=256, N=8192 under 3 ms).
//!
//! Run with short settings on a shared machine:
//! `cargo bench --bench capacity -- --warm-up-time 1 --measurement-time 3`

use criterion::{criterion_group, criterion_main, Criterion};
use speclight::capacity::{
    Allocation, BatchAllocator, CapacitySolver, CostModel, DraftCost, LatencyProfile,
};
use speclight::{parse_dist, Iid, Positional};
use std::hint::black_box;

/// The bundled example profile (data/latency-example.csv): flat to 16 tokens, then rising.
fn example_profile() -> LatencyProfile {
    LatencyProfile::new(&[
        (0, 0.025),
        (16, 0.025),
        (32, 0.0262),
        (64, 0.029),
        (128, 0.035),
        (256, 0.048),
        (512, 0.075),
        (1024, 0.13),
    ])
    .expect("valid profile")
}

fn solve(c: &mut Criterion) {
    let cost = CostModel::new(example_profile(), DraftCost::PerStep(0.002), 0.0).expect("cost");
    let solver = CapacitySolver::new(cost, 1024, 16).expect("solver");
    let acceptance = [
        0.634, 0.108, 0.057, 0.034, 0.023, 0.016, 0.012, 0.009, 0.007, 0.005,
    ];
    let mut model = Positional::new(&acceptance).expect("acceptance");
    let mut group = c.benchmark_group("solve");
    group.bench_function("N=1024,D=16", |b| {
        b.iter(|| black_box(solver.solve(&mut model).expect("solve")))
    });
    group.finish();
}

fn allocate(c: &mut Criterion) {
    // 256 requests from confident (zipf exponent 2.5) to flat (0.6), 64 tokens each.
    let mut models: Vec<Iid> = (0..256)
        .map(|i| {
            let s = 0.6 + 1.9 * f64::from(i) / 255.0;
            Iid::new(parse_dist(&format!("zipf:{s}:64")).expect("spec"))
        })
        .collect();
    let mut allocator = BatchAllocator::new(8192).expect("allocator");
    let mut group = c.benchmark_group("allocate");
    group.bench_function("B=256,N=8192", |b| {
        b.iter(|| black_box(allocator.allocate(&mut models, &[]).expect("allocate")))
    });
    // The server's path: the output reused, so no allocation per step.
    let mut out = Allocation::default();
    group.bench_function("into/B=256,N=8192", |b| {
        b.iter(|| {
            allocator
                .allocate_into(&mut models, &[], &mut out)
                .expect("allocate");
            black_box(out.expected_accepted)
        })
    });
    group.finish();
}

criterion_group!(benches, solve, allocate);
criterion_main!(benches);
