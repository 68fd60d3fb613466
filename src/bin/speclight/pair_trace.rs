//! `speclight pair-trace`: a paired trace for `speclight tune` from the
//! bundled n-gram pair (a high-order verifier and a low-order drafter).

use crate::common::emit;
use anyhow::{ensure, Context, Result};
use rand::{rngs::StdRng, SeedableRng};
use speclight::corpus::{load, Corpus};
use speclight::tune::{write_paired_sequence, SequenceShape};
use speclight::NgramLm;
use std::path::PathBuf;

/// Write a paired trace from the bundled n-gram pair: verifier and drafter trained on a corpus's
/// training text, text sampled from the verifier at --temperature after prompts taken first from
/// the training text (sequences 0..T) and then from the held-out text (sequences T..T+H).
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Example (tune on the training prompts, measure on the held-out ones):
  speclight pair-trace --corpus rust_book --train-prompts 48 --heldout-prompts 16 --out pairs.jsonl
  speclight tune --trace pairs.jsonl --heldout-from-seq 48 --out report/"
)]
pub struct Args {
    /// Bundled corpus: rust_book or python_stdlib.
    #[arg(long, default_value = "rust_book")]
    corpus: String,
    /// Order of the verifier n-gram model (1 to 8).
    #[arg(long, default_value_t = 6)]
    verifier_order: usize,
    /// Order of the drafter n-gram model (1 to 8).
    #[arg(long, default_value_t = 3)]
    drafter_order: usize,
    /// The verifier's sampling temperature (the drafter's lists are its own, at temperature 1).
    #[arg(long, default_value_t = 1.0)]
    temperature: f64,
    /// Sequences prompted from the training text (ids 0..N).
    #[arg(long, default_value_t = 48)]
    train_prompts: u64,
    /// Sequences prompted from the held-out text (ids after the training ones).
    #[arg(long, default_value_t = 16)]
    heldout_prompts: u64,
    /// Bytes of corpus text per prompt.
    #[arg(long, default_value_t = 64)]
    prompt_len: usize,
    /// Start positions per sequence.
    #[arg(long, default_value_t = 256)]
    positions: u64,
    /// Draft depths per position.
    #[arg(long, default_value_t = 6)]
    depth: u32,
    /// Drafter candidates listed per record.
    #[arg(long, default_value_t = 8)]
    top_k: usize,
    /// Seed of the sampling.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Write to this file instead of stdout (atomically).
    #[arg(long)]
    out: Option<PathBuf>,
}

/// `count` prompts of `len` bytes spread evenly over `text`.
fn prompts(text: &[u8], count: u64, len: usize) -> Result<Vec<&[u8]>> {
    ensure!(
        len > 0 && len <= text.len(),
        "--prompt-len {len} is not in 1..={}",
        text.len()
    );
    let room = (text.len() - len) as u64;
    Ok((0..count)
        .map(|k| {
            let start = (room * k / count.max(1)) as usize;
            &text[start..start + len]
        })
        .collect())
}

pub fn run(args: Args) -> Result<()> {
    let corpus = Corpus::from_name(&args.corpus).context("--corpus")?;
    let text = load(corpus)?;
    let verifier_lm =
        NgramLm::train(&text.train, args.verifier_order).context("--verifier-order")?;
    let drafter_lm = NgramLm::train(&text.train, args.drafter_order).context("--drafter-order")?;
    let mut verifier = verifier_lm
        .model()
        .with_temperature(args.temperature)
        .context("--temperature")?;
    let mut drafter = drafter_lm
        .model()
        .with_top_k(args.top_k)
        .context("--top-k")?;
    let shape = SequenceShape {
        positions: args.positions,
        depth: args.depth,
        top_k: args.top_k,
    };
    let mut rng = StdRng::seed_from_u64(args.seed);
    let mut out = Vec::new();
    let train = prompts(&text.train, args.train_prompts, args.prompt_len)?;
    let heldout = prompts(&text.heldout, args.heldout_prompts, args.prompt_len)?;
    for (seq, prompt) in train.iter().chain(heldout.iter()).enumerate() {
        verifier.set_context_bytes(prompt);
        drafter.set_context_bytes(prompt);
        write_paired_sequence(
            seq as u64,
            &mut verifier,
            &mut drafter,
            shape,
            &mut rng,
            &mut out,
        )?;
    }
    let text = String::from_utf8(out).context("paired trace is not UTF-8")?;
    emit(args.out.as_deref(), &text)
}
