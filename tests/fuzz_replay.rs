//! Replays the fuzz corpus on stable Rust: every saved input of every target
//! in `fuzz/corpus/TARGET/` (and crash regressions in
//! `fuzz/regressions/TARGET/`) runs through the same target body that
//! cargo-fuzz runs, plus a seeded batch of random inputs so that the targets
//! stay exercised even before a corpus exists.
#![cfg(all(feature = "serde", feature = "csv"))]

#[path = "../fuzz/src/targets.rs"]
mod targets;

use rand::{rngs::StdRng, Rng, SeedableRng};
use std::path::Path;

const RANDOM_INPUTS: usize = 200;

fn replay(name: &str, target: fn(&[u8])) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz");
    let mut replayed = 0;
    for dir in [
        root.join("corpus").join(name),
        root.join("regressions").join(name),
    ] {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries {
            let path = entry.expect("readable corpus dir").path();
            let data = std::fs::read(&path).expect("readable corpus file");
            let result = std::panic::catch_unwind(|| target(&data));
            assert!(result.is_ok(), "{name}: input {} panics", path.display());
            replayed += 1;
        }
    }
    let seed = 0x5eed_0000 + name.len() as u64;
    let mut rng = StdRng::seed_from_u64(seed);
    for _ in 0..RANDOM_INPUTS {
        let len = rng.random_range(0..512);
        let data: Vec<u8> = (0..len).map(|_| rng.random()).collect();
        let result = std::panic::catch_unwind(|| target(&data));
        assert!(
            result.is_ok(),
            "{name}: random input (seed {seed}) panics: {data:?}"
        );
    }
    eprintln!(
        "{name}: replayed {replayed} corpus inputs and {RANDOM_INPUTS} random ones (seed {seed})"
    );
}

#[test]
fn dist_from_floats() {
    replay("dist_from_floats", targets::dist_from_floats);
}

#[test]
fn build_eval_check() {
    replay("build_eval_check", targets::build_eval_check);
}

#[test]
fn incremental_builder() {
    replay("incremental_builder", targets::incremental_builder);
}

#[test]
fn parse_inputs() {
    replay("parse_inputs", targets::parse_inputs);
}

#[test]
fn verification_walk() {
    replay("verification_walk", targets::verification_walk);
}

#[test]
fn workload_inputs() {
    replay("workload_inputs", targets::workload_inputs);
}

#[test]
fn paired_trace() {
    replay("paired_trace", targets::paired_trace);
}

#[test]
fn metrics_inputs() {
    replay("metrics_inputs", targets::metrics_inputs);
}
