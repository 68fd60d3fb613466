//! Real-workload hot paths: training the byte-level Kneser-Ney models on the
//! bundled 0.9 MB training text, one uncached distribution query, and one
//! draft-and-verify iteration of the simulator.
//!
//! Run with short settings on the shared machine:
//! `cargo bench --bench ngram -- --warm-up-time 1 --measurement-time 3`

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use speclight::experiment::corpus::{load, Corpus};
use speclight::{simulate, SimConfig};
use speclight::{NextTokenModel, NgramLm, TreeBuilder};
use std::hint::black_box;

fn train(c: &mut Criterion) {
    let text = load(Corpus::RustBook).expect("bundled corpus");
    let mut group = c.benchmark_group("ngram_train_0.9MB");
    group.sample_size(10);
    for order in [3, 8] {
        group.bench_with_input(BenchmarkId::from_parameter(order), &order, |b, &o| {
            b.iter(|| {
                black_box(
                    NgramLm::train(&text.train, o)
                        .expect("trains")
                        .ngram_count(),
                )
            })
        });
    }
    group.finish();
}

fn query(c: &mut Criterion) {
    let text = load(Corpus::RustBook).expect("bundled corpus");
    let lm = NgramLm::train(&text.train, 8).expect("trains");
    // Capacity 1 keeps one entry: alternating two histories never hits.
    let mut model = lm.model().with_cache_capacity(1).with_context(b"let mut");
    let paths: [&[u32]; 2] = [&[32], &[61]];
    let mut i = 0;
    c.bench_function("ngram_next_order8_uncached", |b| {
        b.iter(|| {
            i ^= 1;
            black_box(model.next(paths[i]).expect("answers").len())
        })
    });
}

fn iteration(c: &mut Criterion) {
    let text = load(Corpus::RustBook).expect("bundled corpus");
    let verifier = NgramLm::train(&text.train, 8).expect("trains");
    let drafter = NgramLm::train(&text.train, 3).expect("trains");
    let prompt: Vec<u32> = text.heldout[..64].iter().map(|&b| b.into()).collect();
    let mut group = c.benchmark_group("simulate_100_iterations");
    group.sample_size(10);
    for cap in [16, 256] {
        let mut builder = TreeBuilder::new(cap).expect("valid capacity");
        let config = SimConfig {
            iterations: 100,
            seed: 1,
            with_dp: false,
        };
        group.bench_with_input(BenchmarkId::from_parameter(cap), &cap, |b, _| {
            b.iter(|| {
                let mut p = verifier.model();
                let mut q = drafter.model().with_top_k(32).expect("k > 0");
                black_box(
                    simulate(&mut q, &mut p, &mut builder, &prompt, &config)
                        .expect("runs")
                        .accepted
                        .mean,
                )
            })
        });
    }
    group.finish();
}

criterion_group!(benches, train, query, iteration);
criterion_main!(benches);
