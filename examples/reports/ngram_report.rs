//! Training time and held-out cross-entropy of the bundled n-gram models.
//!
//! Usage: `cargo run --release --example ngram_report`
//!
//! For each bundled corpus and each order, trains on the training part and
//! scores the held-out part (every byte after the first 7, each predicted from
//! the bytes before it). Prints a Markdown table.

use speclight::experiment::corpus::{load, Corpus};
use speclight::NgramLm;
use std::time::Instant;

fn main() -> Result<(), speclight::Error> {
    println!("| corpus | order | train bytes | n-grams stored | train time (s) | held-out bits/byte | held-out nats/byte |");
    println!("| --- | --- | --- | --- | --- | --- | --- |");
    for corpus in Corpus::ALL {
        let text = load(corpus)?;
        for order in [2, 3, 4, 6, 8] {
            let start = Instant::now();
            let lm = NgramLm::train(&text.train, order)?;
            let secs = start.elapsed().as_secs_f64();
            let nats = lm.cross_entropy(&text.heldout, 7)?;
            println!(
                "| {} | {order} | {} | {} | {secs:.2} | {:.3} | {nats:.3} |",
                corpus.name(),
                lm.trained_bytes(),
                lm.ngram_count(),
                nats / std::f64::consts::LN_2
            );
        }
    }
    Ok(())
}
