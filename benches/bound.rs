//! Certificate costs: lambda*/OPT(P) by the dual enumeration, a full check
//! of the optimal tree, the optimality certificate, and the closed forms;
//! and the enumeration on an LLM-size vocabulary (V = 128k, P = 4096), whose
//! memory is O(P), not O(P V) (issue 12 item 4).

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use speclight::bound::{certify_best_first, check, optimal_value, renewal_bound, DualOptions};
use speclight::{parse_dist, Iid, TreeBuilder};
use std::hint::black_box;

fn bench_bounds(c: &mut Criterion) {
    let mut group = c.benchmark_group("bound");
    for dist_spec in ["0.5,0.3,0.2", "zipf:1.1:64"] {
        let dist = parse_dist(dist_spec).expect("valid spec");
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
            group.bench_function(BenchmarkId::new("certify_best_first", &id), |b| {
                b.iter(|| {
                    certify_best_first(&tree, &mut verifier, capacity, None).expect("valid tree")
                })
            });
        }
    }
    let mut large = Iid::new(parse_dist("zipf:1:131072").expect("valid spec"));
    group.sample_size(10);
    group.bench_function("optimal_value/zipf:1:131072/P=4096", |b| {
        b.iter(|| {
            optimal_value(&mut large, black_box(4096), &DualOptions::default())
                .expect("enumeration fits the node limit")
        })
    });
    group.bench_function("renewal_bound", |b| {
        b.iter(|| renewal_bound(black_box(1.03), black_box(1.19), black_box(1024), None))
    });
    group.finish();
}

criterion_group!(benches, bench_bounds);
criterion_main!(benches);
