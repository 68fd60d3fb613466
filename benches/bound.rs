//! Certificate costs: lambda*/OPT(P) by the dual enumeration, a full check
//! of the optimal tree, and the closed forms.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use speclight::bound::{check, optimal_value, renewal_bound, DualOptions};
use speclight::{spec, Iid, TreeBuilder};
use std::hint::black_box;

fn bench_bounds(c: &mut Criterion) {
    let mut group = c.benchmark_group("bound");
    for dist_spec in ["0.5,0.3,0.2", "zipf:1.1:64"] {
        let dist = spec::parse_dist(dist_spec).expect("valid spec");
        let mut verifier = Iid::new(dist);
        for capacity in [256usize, 4096] {
            let id = format!("{dist_spec}/P={capacity}");
            group.bench_function(BenchmarkId::new("optimal_value", &id), |b| {
                b.iter(|| {
                    optimal_value(&mut verifier, black_box(capacity), &DualOptions::default())
                        .expect("enumeration fits the node limit")
                })
            });
            let tree = TreeBuilder::new(capacity)
                .and_then(|mut t| t.build_owned(&mut verifier))
                .expect("builds");
            group.bench_function(BenchmarkId::new("check", &id), |b| {
                b.iter(|| check(&tree, &mut verifier, capacity).expect("certified"))
            });
        }
    }
    group.bench_function("renewal_bound", |b| {
        b.iter(|| renewal_bound(black_box(1.03), black_box(1.19), black_box(1024), None))
    });
    group.finish();
}

criterion_group!(benches, bench_bounds);
criterion_main!(benches);
