//! `tune/estimate/1M-records`: streaming acceptance estimation over one
//! million paired-trace records (JSON Lines parsed from memory), alone and
//! with the bootstrap replicates `tune` keeps.
//!
//! `cargo bench --bench tune -- --warm-up-time 1 --measurement-time 3`

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use speclight::tune::{AcceptanceEstimator, Group, SyntheticTrace, TraceReader};
use std::hint::black_box;

const RECORDS: u64 = 1_000_000;

fn estimate(c: &mut Criterion) {
    // 8 candidates per record, depth 5: 200 000 groups, generated once
    // (seed 42), about 150 bytes per line.
    let synth = SyntheticTrace::new(
        vec![vec![0.55, 0.15, 0.08, 0.04], vec![0.65, 0.12, 0.05]],
        8,
        5,
    )
    .expect("valid synthetic rows");
    let mut bytes = Vec::with_capacity(160 << 20);
    let written = synth
        .write_jsonl(&mut bytes, 1000, RECORDS / 5 / 1000, 42)
        .expect("writing to memory");
    assert_eq!(written, RECORDS);
    let mut group = c.benchmark_group("tune/estimate");
    group.throughput(Throughput::Elements(RECORDS));
    group.sample_size(10);
    group.bench_function("1M-records", |b| {
        b.iter(|| {
            let mut est = AcceptanceEstimator::new();
            let mut reader = TraceReader::new(&bytes[..]);
            let mut g = Group::default();
            while reader.next_group(&mut g).expect("valid trace") {
                est.observe(&g);
            }
            black_box(est.records())
        })
    });
    // The same with the 100 bootstrap replicates `tune` keeps by default.
    group.bench_function("1M-records-bootstrap-100", |b| {
        b.iter(|| {
            let mut est = AcceptanceEstimator::new().with_bootstrap(100, 1);
            let mut reader = TraceReader::new(&bytes[..]);
            let mut g = Group::default();
            while reader.next_group(&mut g).expect("valid trace") {
                est.observe(&g);
            }
            black_box(est.records())
        })
    });
    group.finish();
}

criterion_group!(benches, estimate);
criterion_main!(benches);
