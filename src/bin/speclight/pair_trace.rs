//! `speclight pair-trace`: a paired trace for `speclight tune` from the
//! bundled n-gram pair (a high-order verifier and a low-order drafter).

use anyhow::{ensure, Context, Result};
use indicatif::{ProgressBar, ProgressStyle};
use rand::{rngs::StdRng, SeedableRng};
use speclight::experiment::corpus::{load, Corpus};
use speclight::tune::{
    write_paired_sequence, SequenceShape, MAX_SEQUENCE_POSITIONS, MAX_TOP_K, MAX_TRACE_DEPTH,
};
use speclight::NgramLm;
use std::path::PathBuf;

/// Most sequences (training plus held-out prompts) one run writes.
pub const MAX_PROMPTS: u64 = 1 << 16;

/// Most records one run writes (about 300 bytes each: 20 GB).
pub const MAX_RECORDS: u64 = 1 << 26;

/// Runs of at least this many records show a progress bar (on a terminal).
const PROGRESS_MIN_RECORDS: u64 = 1 << 17;

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
    /// Sequences prompted from the training text (ids 0..N; with --heldout-prompts, at most
    /// 65536 in all, and at least 1).
    #[arg(long, default_value_t = 48)]
    train_prompts: u64,
    /// Sequences prompted from the held-out text (ids after the training ones).
    #[arg(long, default_value_t = 16)]
    heldout_prompts: u64,
    /// Bytes of corpus text per prompt.
    #[arg(long, default_value_t = 64)]
    prompt_len: usize,
    /// Start positions per sequence (1 to 1048576).
    #[arg(long, default_value_t = 256)]
    positions: u64,
    /// Draft depths per position (1 to 256).
    #[arg(long, default_value_t = 6)]
    depth: u32,
    /// Drafter candidates listed per record (1 to 4096).
    #[arg(long, default_value_t = 8)]
    top_k: usize,
    /// Seed of the sampling.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Write to this file instead of stdout (streamed to a temporary file, then renamed into
    /// place). At most 2^26 records (sequences x positions x depth) per run.
    #[arg(long)]
    out: Option<PathBuf>,
}

/// The `k`-th of `count` prompts of `len` bytes spread evenly over `text`.
fn prompt(text: &[u8], k: u64, count: u64, len: usize) -> &[u8] {
    let room = (text.len() - len) as u64;
    let start = (u128::from(room) * u128::from(k) / u128::from(count.max(1))) as usize;
    &text[start..start + len]
}

/// Checks every size flag before any work: the shape's limits, the number
/// of sequences and of records.
fn check_sizes(args: &Args, shape: &SequenceShape) -> Result<u64> {
    ensure!(
        (1..=MAX_SEQUENCE_POSITIONS).contains(&shape.positions),
        "--positions {} is not in 1..={MAX_SEQUENCE_POSITIONS}",
        shape.positions
    );
    ensure!(
        (1..=MAX_TRACE_DEPTH).contains(&shape.depth),
        "--depth {} is not in 1..={MAX_TRACE_DEPTH}",
        shape.depth
    );
    ensure!(
        (1..=MAX_TOP_K).contains(&shape.top_k),
        "--top-k {} is not in 1..={MAX_TOP_K}",
        shape.top_k
    );
    shape.check()?;
    let sequences = args.train_prompts.saturating_add(args.heldout_prompts);
    ensure!(
        sequences > 0,
        "--train-prompts and --heldout-prompts are both 0: there is nothing to write"
    );
    ensure!(
        sequences <= MAX_PROMPTS,
        "--train-prompts + --heldout-prompts = {sequences} is more than {MAX_PROMPTS}"
    );
    let records = u128::from(sequences) * u128::from(shape.positions) * u128::from(shape.depth);
    ensure!(
        records <= u128::from(MAX_RECORDS),
        "{records} records (prompts x --positions x --depth) is more than {MAX_RECORDS}"
    );
    Ok(records as u64)
}

pub fn run(args: Args) -> Result<()> {
    let shape = SequenceShape {
        positions: args.positions,
        depth: args.depth,
        top_k: args.top_k,
    };
    let records = check_sizes(&args, &shape)?;
    let corpus = Corpus::from_name(&args.corpus).context("--corpus")?;
    let text = load(corpus)?;
    for source in [&text.train, &text.heldout] {
        ensure!(
            args.prompt_len > 0 && args.prompt_len <= source.len(),
            "--prompt-len {} is not in 1..={}",
            args.prompt_len,
            source.len()
        );
    }
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
    let mut rng = StdRng::seed_from_u64(args.seed);
    let progress = progress_bar(records, args.train_prompts + args.heldout_prompts);
    crate::common::emit_with(args.out.as_deref(), |out| {
        let sources = [
            (&text.train[..], args.train_prompts),
            (&text.heldout[..], args.heldout_prompts),
        ];
        let mut seq = 0u64;
        for (source, count) in sources {
            for k in 0..count {
                let prompt = prompt(source, k, count, args.prompt_len);
                verifier.set_context_bytes(prompt);
                drafter.set_context_bytes(prompt);
                write_paired_sequence(
                    seq,
                    &mut verifier,
                    &mut drafter,
                    shape,
                    &mut rng,
                    &mut *out,
                )?;
                seq += 1;
                progress.inc(1);
            }
        }
        Ok(())
    })?;
    progress.finish_and_clear();
    Ok(())
}

/// A bar counting sequences, on stderr when it is a terminal, for runs of
/// at least [`PROGRESS_MIN_RECORDS`] records; hidden otherwise.
fn progress_bar(records: u64, sequences: u64) -> ProgressBar {
    if records < PROGRESS_MIN_RECORDS {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(sequences).with_message("pair-trace: sequences");
    if let Ok(style) = ProgressStyle::with_template("{msg} [{bar:40}] {pos}/{len} eta {eta}") {
        bar.set_style(style.progress_chars("=> "));
    }
    bar
}
