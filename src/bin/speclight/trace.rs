//! `speclight trace`: sample text from a bundled n-gram verifier and write
//! the JSONL trace that `speclight bound --trace` reads.

use crate::common::emit;
use anyhow::{Context, Result};
use rand::{rngs::StdRng, SeedableRng};
use speclight::experiment::corpus::{load, Corpus};
use speclight::trace::{sample_with_logprobs, to_trace, write_jsonl};
use speclight::NgramLm;
use std::path::PathBuf;

/// Sample a verifier trace (JSONL with top_logprobs) from an n-gram model
/// trained on a bundled corpus, prompted with its held-out text.
///
/// Example: speclight trace --corpus rust_book --out trace.jsonl
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Bundled corpus: rust_book or python_stdlib.
    #[arg(long, default_value = "rust_book")]
    corpus: String,
    /// Order of the verifier n-gram model (1 to 8).
    #[arg(long, default_value_t = 8)]
    order: usize,
    /// Sampling temperature.
    #[arg(long, default_value_t = 1.0)]
    temperature: f64,
    /// Sequences (one per prompt, prompts taken evenly from the held-out text).
    #[arg(long, default_value_t = 16)]
    prompts: usize,
    /// Bytes of held-out text per prompt.
    #[arg(long, default_value_t = 64)]
    prompt_len: usize,
    /// Tokens (bytes) sampled per sequence.
    #[arg(long, default_value_t = 512)]
    tokens: usize,
    /// Alternatives recorded per token in top_logprobs.
    #[arg(long, default_value_t = 5)]
    top_logprobs: usize,
    /// Seed of the sampling.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Write to this file instead of stdout (atomically).
    #[arg(long)]
    out: Option<PathBuf>,
}

pub fn run(args: Args) -> Result<()> {
    let corpus = Corpus::from_name(&args.corpus).context("--corpus")?;
    anyhow::ensure!(args.prompts > 0, "--prompts must be at least 1");
    // Before anything is loaded or allocated (issue 12, item 10).
    speclight::experiment::limits::check_trace_size(args.prompts, args.tokens, args.top_logprobs)
        .context("--prompts, --tokens, --top-logprobs")?;
    let text = load(corpus)?;
    anyhow::ensure!(
        args.prompt_len > 0 && args.prompt_len <= text.heldout.len(),
        "--prompt-len {} is not in 1..={}",
        args.prompt_len,
        text.heldout.len()
    );
    let lm = NgramLm::train(&text.train, args.order).context("--order")?;
    let mut model = lm
        .model()
        .with_temperature(args.temperature)
        .context("--temperature")?;
    let mut rng = StdRng::seed_from_u64(args.seed);
    let room = text.heldout.len() - args.prompt_len;
    let mut sequences = Vec::with_capacity(args.prompts);
    for k in 0..args.prompts {
        let start = room * k / args.prompts;
        let prompt: Vec<u32> = text.heldout[start..start + args.prompt_len]
            .iter()
            .map(|&b| b.into())
            .collect();
        sequences.push(sample_with_logprobs(
            &mut model,
            &prompt,
            args.tokens,
            args.top_logprobs,
            &mut rng,
        )?);
    }
    let mut out = Vec::new();
    write_jsonl(&to_trace(&sequences)?, &mut out)?;
    emit(args.out.as_deref(), std::str::from_utf8(&out)?)
}
