//! `speclight solve`: the capacity and depth limit that maximise tokens per
//! second, and the speed of light (docs/THEORY.md section 5).

use crate::common::{emit, load_dist, load_profile, max_capacity_or_profile};
use anyhow::{bail, Context, Result};
use speclight::capacity::{CapacitySolver, CostModel, DraftCost, Solution};
use speclight::Iid;
use std::fmt::Write;
use std::path::{Path, PathBuf};

/// Choose the verifier capacity n and depth limit D that maximise tokens per second.
///
/// Example: speclight solve --dist 0.634,0.108,0.057 --latency data/latency-example.csv --draft-step 0.002
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Drafter distribution: `0.5,0.3,0.2` (a positional acceptance vector is just this list),
    /// `zipf:S:N`, `geometric:R:N` or `@FILE.json`.
    #[arg(long)]
    dist: String,
    /// Verifier distribution to value the trees under (default: the drafter's).
    #[arg(long)]
    verifier: Option<String>,
    /// Verifier latency profile: CSV with header `draft_tokens,seconds`, or a `.json` array of
    /// `{"draft_tokens": N, "seconds": S}`.
    #[arg(long)]
    latency: PathBuf,
    /// Drafter seconds per sequential draft step (one per tree level).
    #[arg(
        long,
        required_unless_present_any = ["draft_profile", "draft_batch_profile"],
        conflicts_with = "draft_profile"
    )]
    draft_step: Option<f64>,
    /// Drafter latency by step width instead of --draft-step (same file format as --latency);
    /// level k of the tree costs T_d(number of nodes at depth k).
    #[arg(long)]
    draft_profile: Option<PathBuf>,
    /// Fixed seconds per iteration T_0.
    #[arg(long, default_value_t = 0.0)]
    overhead: f64,
    /// Largest depth limit D to try.
    #[arg(long, default_value_t = 16)]
    max_depth: u32,
    /// Largest capacity n to try (default: the largest token count in the latency profile).
    #[arg(long)]
    max_capacity: Option<usize>,
    /// Schedule per batch size: `1,2,4,8` or `profile` (every batch size in the latency file,
    /// which may then have the header `batch_size,draft_tokens,seconds`). Prints the best
    /// capacity and depth per batch size, the best chain, and vLLM / SGLang settings.
    #[arg(long, conflicts_with = "draft_profile")]
    batch_sizes: Option<String>,
    /// With --batch-sizes: drafter seconds per step by batch size, CSV `batch_size,seconds`.
    #[arg(long, requires = "batch_sizes", conflicts_with = "draft_step")]
    draft_batch_profile: Option<PathBuf>,
    /// Print JSON (best, speed_of_light, speedup_ratio, table) instead of text.
    #[arg(long)]
    json: bool,
    /// Write to this file instead of stdout (atomically).
    #[arg(long)]
    out: Option<PathBuf>,
}

pub fn run(args: Args) -> Result<()> {
    if let Some(batch_sizes) = &args.batch_sizes {
        return crate::schedule::run(crate::schedule::Inputs {
            dist: &args.dist,
            verifier: args.verifier.as_deref(),
            latency: &args.latency,
            batch_sizes,
            draft_step: args.draft_step,
            draft_batch_profile: args.draft_batch_profile.as_deref(),
            overhead: args.overhead,
            max_depth: args.max_depth,
            max_capacity: args.max_capacity,
            json: args.json,
            out: args.out.clone(),
        });
    }
    let mut drafter = Iid::new(load_dist("dist", &args.dist)?);
    let verifier_t =
        load_profile("latency", &args.latency).map_err(|e| two_axis_hint(e, &args.latency))?;
    let draft = match (&args.draft_profile, args.draft_step) {
        (Some(path), _) => DraftCost::ByWidth(load_profile("draft-profile", path)?),
        (None, Some(t)) => DraftCost::PerStep(t),
        (None, None) => bail!("give --draft-step or --draft-profile"),
    };
    let max_capacity = max_capacity_or_profile(args.max_capacity, verifier_t.last_tokens())?;
    let cost = CostModel::new(verifier_t, draft, args.overhead).context("cost model")?;
    let solver = CapacitySolver::new(cost, max_capacity, args.max_depth)?;
    let solution = match &args.verifier {
        Some(spec) => {
            let mut verifier = Iid::new(load_dist("verifier", spec)?);
            solver.solve_with_verifier(&mut drafter, &mut verifier)?
        }
        None => solver.solve(&mut drafter)?,
    };
    let text = if args.json {
        serde_json::to_string_pretty(&solution)? + "\n"
    } else {
        render_text(&solution, &solver)
    };
    emit(args.out.as_deref(), &text)
}

/// Adds a hint to a one-axis load error when the file is a two-axis
/// (`batch_size,draft_tokens,seconds`) profile, which only the schedule
/// mode (`--batch-sizes`) reads.
fn two_axis_hint(e: anyhow::Error, path: &Path) -> anyhow::Error {
    let first_line = std::fs::read_to_string(path)
        .ok()
        .and_then(|t| t.lines().next().map(|l| l.replace(' ', "")));
    if first_line.as_deref() == Some("batch_size,draft_tokens,seconds") {
        return anyhow::anyhow!(
            "{e:#} (hint: this is a two-axis batch_size,draft_tokens,seconds profile: add --batch-sizes 1,8,64 or --batch-sizes profile for a schedule per batch size)"
        );
    }
    e
}

fn render_text(s: &Solution, solver: &CapacitySolver) -> String {
    let mut out = String::new();
    let b = &s.best;
    let _ = writeln!(
        out,
        "plain decoding: {:.2} tokens/s (T_v(0) + T_0 = {:.6} s)",
        1.0 / solver.cost().plain_seconds(),
        solver.cost().plain_seconds()
    );
    let _ = writeln!(
        out,
        "best: capacity {} depth limit {}: E[accepted] = {:.4}, {:.2} tokens/s, speedup {:.3}x",
        b.capacity, b.max_depth, b.expected_accepted, b.tokens_per_second, b.speedup
    );
    let l = &s.speed_of_light;
    let _ = writeln!(
        out,
        "speed of light (oracle tree under the verifier, free drafter): capacity {}: E[accepted] <= {:.4}, {:.2} tokens/s, speedup {:.3}x",
        l.capacity, l.expected_accepted, l.tokens_per_second, l.speedup
    );
    let _ = writeln!(out, "best / speed of light = {:.3}", s.speedup_ratio);
    let _ = writeln!(out, "best capacity per depth limit:");
    let _ = writeln!(
        out,
        "{:>6} {:>9} {:>10} {:>11} {:>8}",
        "D", "capacity", "E[accepted]", "tokens/s", "speedup"
    );
    let max_d = s.table.iter().map(|r| r.max_depth).max().unwrap_or(0);
    for d in 1..=max_d {
        let best_d = s.table.iter().filter(|r| r.max_depth == d).reduce(|a, r| {
            if r.tokens_per_second > a.tokens_per_second {
                r
            } else {
                a
            }
        });
        if let Some(r) = best_d {
            let _ = writeln!(
                out,
                "{:>6} {:>9} {:>10.4} {:>11.2} {:>8.3}",
                d, r.capacity, r.expected_accepted, r.tokens_per_second, r.speedup
            );
        }
    }
    out
}
