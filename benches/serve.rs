//! Server hot path: verifier inputs from a tree and the verification walk.
//!
//! `serve/mask/N`: `VerifierInputs::fill` for a best-first tree of N nodes
//! (tokens, positions, packed ancestor mask, parents, retrieve indices,
//! first-child/next-sibling, walk look-up), buffers reused.
//! `serve/bias/N`: writing the dense (N+1)^2 f32 bias from the packed mask.
//! `serve/walk/1024`: the greedy walk down the tree's deepest path.
//!
//! Run with short settings on a shared machine:
//! `cargo bench --bench serve -- --warm-up-time 1 --measurement-time 3`

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use speclight::serve::{Accepted, VerifierInputs};
use speclight::{DraftTree, Iid, TokenDist, TreeBuilder};
use std::hint::black_box;

fn tree(n: usize) -> DraftTree {
    let mut drafter = Iid::new(TokenDist::from_probs(&[0.5, 0.3, 0.2]).expect("valid"));
    TreeBuilder::new(n)
        .expect("capacity")
        .build_owned(&mut drafter)
        .expect("build")
}

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("serve");
    for n in [64usize, 1024] {
        let t = tree(n);
        let mut inputs = VerifierInputs::new();
        group.bench_with_input(BenchmarkId::new("mask", n), &t, |b, t| {
            b.iter(|| inputs.fill(black_box(t), 4096, 1).expect("fill"))
        });
        inputs.fill(&t, 4096, 1).expect("fill");
        let mut bias = vec![0f32; (n + 1) * (n + 1)];
        group.bench_function(BenchmarkId::new("bias", n), |b| {
            b.iter(|| {
                inputs
                    .write_mask_bias_into(black_box(&mut bias))
                    .expect("bias")
            })
        });
    }
    let t = tree(1024);
    let mut inputs = VerifierInputs::new();
    inputs.fill(&t, 4096, 1).expect("fill");
    // Token 0 after every position: the walk follows the all-zero chain, the
    // deepest path of this tree.
    let chosen = vec![0u32; inputs.num_positions()];
    let mut out = Accepted::new();
    inputs.walk_chosen(&chosen, &mut out).expect("walk");
    assert_eq!(out.len() as u32, t.max_depth());
    group.bench_function(BenchmarkId::new("walk", 1024), |b| {
        b.iter(|| {
            inputs
                .walk_chosen(black_box(&chosen), &mut out)
                .expect("walk");
            out.len()
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
