//! The end-to-end loop on the bundled Rust book: the order-8 verifier and the
//! order-3 drafter (top 32 bytes), best-first trees of P draft tokens, 1000
//! draft-and-verify iterations from a held-out prompt, compared with the DP
//! evaluator on the same trees.
//!
//! Usage: `cargo run --release --example simulate_report`

use speclight::experiment::corpus::{load, Corpus};
use speclight::{simulate, SimConfig};
use speclight::{NgramLm, TreeBuilder};

fn main() -> Result<(), speclight::Error> {
    let text = load(Corpus::RustBook)?;
    let verifier = NgramLm::train(&text.train, 8)?;
    let drafter = NgramLm::train(&text.train, 3)?;
    let prompt: Vec<u32> = text.heldout[..64].iter().map(|&b| b.into()).collect();
    println!("| P | tokens per iteration [95% CI] | DP mean E[X] + 1 | simulated - DP (± SE) | accept-length histogram X = 0, 1, 2, ... |");
    println!("| --- | --- | --- | --- | --- |");
    for capacity in [4, 16, 64, 256] {
        let config = SimConfig {
            iterations: 1000,
            seed: 42,
            with_dp: true,
        };
        let mut p = verifier.model();
        let mut q = drafter.model().with_top_k(32)?;
        let mut builder = TreeBuilder::new(capacity)?;
        let sim = simulate(&mut q, &mut p, &mut builder, &prompt, &config)?;
        let (lo, hi) = sim.confidence_interval(1.96);
        let dp = sim.dp.expect("asked for");
        let hist: Vec<String> = sim.accept_histogram.iter().map(u64::to_string).collect();
        println!(
            "| {capacity} | {:.3} [{lo:.3}, {hi:.3}] | {:.3} | {:+.3} ± {:.3} | {} |",
            sim.tokens_per_iteration(),
            dp.mean_expected + 1.0,
            dp.difference.mean,
            dp.difference.std_error,
            hist.join(" ")
        );
    }
    Ok(())
}
