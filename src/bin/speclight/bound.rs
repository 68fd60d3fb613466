//! `speclight bound`: the certified speed of light, from a verifier
//! distribution (closed forms and dual) or from a verifier trace.

use crate::common::{emit, load_dist};
use anyhow::{Context, Result};
use speclight::bound::trace::{estimate, TraceBound, DEFAULT_BLOCKS};
use speclight::bound::{Certificate, CheckOptions, DualOptions, Moments, DEFAULT_NODE_LIMIT};
use speclight::trace::ReadLimits;
use speclight::{Iid, TreeBuilder};
use std::fmt::Write;
use std::path::{Path, PathBuf};

/// Certified upper bounds on the expected accepted tokens of any draft tree
/// with P nodes: for an i.i.d. verifier distribution (--dist) or estimated
/// from a trace sampled from the verifier (--trace).
///
/// Examples:
///   speclight bound --dist 0.5,0.3,0.2 --capacity 1024 --json
///   speclight bound --trace trace.jsonl --capacity 64
#[derive(Debug, clap::Args)]
#[command(group(clap::ArgGroup::new("source").required(true).args(["dist", "trace"])))]
pub struct Args {
    /// Verifier distribution (must be complete): `0.5,0.3,0.2`, `zipf:S:N`,
    /// `geometric:R:N` or `@FILE.json`.
    #[arg(long)]
    dist: Option<String>,
    /// JSONL trace sampled from the verifier: `{"token": id, "logprob": x}`
    /// per line, `{"end": true}` between sequences; or OpenAI-compatible
    /// logprobs JSON (`choices[].logprobs.content[]`), told apart by content
    /// (an array, or an object whose first key is not a JSONL record's).
    #[arg(long)]
    trace: Option<PathBuf>,
    /// Capacity P: the number of draft tokens the verifier checks in one pass.
    #[arg(long)]
    capacity: usize,
    /// Depth limit D (none by default; --dist only).
    #[arg(long, conflicts_with = "trace")]
    max_depth: Option<u32>,
    /// Most nodes one dual enumeration may visit before giving up (--dist only).
    #[arg(long, default_value_t = DEFAULT_NODE_LIMIT)]
    node_limit: usize,
    /// Blocks for the confidence interval of a trace estimate.
    #[arg(long, default_value_t = DEFAULT_BLOCKS)]
    blocks: usize,
    /// Most records read from a trace.
    #[arg(long, default_value_t = ReadLimits::default().max_records)]
    max_records: usize,
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
    /// Write to this file instead of stdout (atomically).
    #[arg(long)]
    out: Option<PathBuf>,
}

pub fn run(args: Args) -> Result<()> {
    match (&args.dist, &args.trace) {
        (Some(spec), _) => from_dist(spec, &args),
        (None, Some(path)) => from_trace(path, &args),
        (None, None) => anyhow::bail!("one of --dist or --trace is required"),
    }
}

fn from_dist(spec: &str, args: &Args) -> Result<()> {
    let dist = load_dist("dist", spec)?;
    let moments = Moments::of_dist(&dist)
        .context("--dist: the closed-form bounds need the whole verifier distribution")?;
    let mut verifier = Iid::new(dist);
    let mut builder = TreeBuilder::new(args.capacity)?.with_max_depth(args.max_depth)?;
    let tree = builder.build(&mut verifier)?;
    let opts = CheckOptions {
        dual: DualOptions::default()
            .with_max_depth(args.max_depth)
            .with_node_limit(args.node_limit),
        ..CheckOptions::default()
    };
    let cert = Certificate::compute(tree, &mut verifier, args.capacity, &opts)?;
    let text = if args.json {
        serde_json::to_string_pretty(&cert.report_json(&moments))? + "\n"
    } else {
        cert.to_string()
    };
    emit(args.out.as_deref(), &text)?;
    cert.verdict().context("not certified")?;
    Ok(())
}

fn from_trace(path: &Path, args: &Args) -> Result<()> {
    let file =
        std::fs::File::open(path).with_context(|| format!("cannot read {}", path.display()))?;
    let limits = ReadLimits {
        max_records: args.max_records,
        ..ReadLimits::default()
    };
    let trace = speclight::trace::read(std::io::BufReader::new(file), &limits)
        .with_context(|| path.display().to_string())?;
    let bound =
        estimate(&trace, args.capacity, args.blocks).with_context(|| path.display().to_string())?;
    let text = if args.json {
        serde_json::to_string_pretty(&bound)? + "\n"
    } else {
        render_trace(&bound)
    };
    emit(args.out.as_deref(), &text)
}

fn render_trace(b: &TraceBound) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "trace: {} tokens in {} sequences, mean surprisal {:.4} nats/token",
        b.tokens, b.sequences, b.mean_surprisal
    );
    let _ = writeln!(
        s,
        "speed of light at capacity P = {}: E[X] <= {:.4}  (95% CI [{:.4}, {:.4}])",
        b.capacity, b.estimate.mean, b.estimate.ci_low, b.estimate.ci_high
    );
    let _ = writeln!(
        s,
        "lambda = {:.6e} chosen on {} start positions, estimate over the other {}",
        b.lambda, b.selection_starts, b.evaluation_starts
    );
    let _ = writeln!(
        s,
        "windows that ran off the end of their sequence: {} of {}",
        b.windows_off_end, b.evaluation_starts
    );
    if b.windows_past_longest > 0 {
        let _ = writeln!(
            s,
            "windows still below -ln lambda at the longest sequence: {} (levels beyond it are \
             not estimated: record longer sequences)",
            b.windows_past_longest
        );
    }
    s
}
