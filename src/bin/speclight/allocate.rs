//! `speclight allocate`: split one verifier pass of N draft tokens among a
//! batch of requests (docs/THEORY.md section 3, "Batch allocation").

use crate::common::{emit, load_dist};
use anyhow::{bail, Context, Result};
use speclight::capacity::{Allocation, BatchAllocator, RequestLimits};
use speclight::{Iid, TreeBuilder};
use std::fmt::Write;
use std::path::PathBuf;

/// Allocate a shared budget of draft tokens among requests, optimally (merged best-first).
///
/// Example: speclight allocate --dists '0.9,0.05;0.4,0.3,0.2;zipf:1.1:32' --budget 64
#[derive(Debug, clap::Args)]
pub struct Args {
    /// One distribution spec per request, separated by `;` (each as for `build --dist`).
    #[arg(long)]
    dists: String,
    /// Draft tokens N in the shared verifier pass.
    #[arg(long)]
    budget: usize,
    /// Depth limit D for every request's tree (none by default).
    #[arg(long)]
    max_depth: Option<u32>,
    /// Every request gets at least this many draft tokens.
    #[arg(long, default_value_t = 0)]
    min_per_request: usize,
    /// No request gets more than this many draft tokens.
    #[arg(long)]
    max_per_request: Option<usize>,
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
    /// Write to this file instead of stdout (atomically).
    #[arg(long)]
    out: Option<PathBuf>,
}

pub fn run(args: Args) -> Result<()> {
    let mut models = Vec::new();
    for (i, spec) in args.dists.split(';').enumerate() {
        if spec.trim().is_empty() {
            bail!("--dists: request {i} has an empty spec");
        }
        models.push(Iid::new(
            load_dist("dists", spec).with_context(|| format!("request {i}"))?,
        ));
    }
    let limit = RequestLimits {
        min: args.min_per_request,
        max: args.max_per_request.unwrap_or(usize::MAX),
    };
    let limits = vec![limit; models.len()];
    let mut allocator = BatchAllocator::new(args.budget)?.with_max_depth(args.max_depth)?;
    let allocation = allocator.allocate(&mut models, &limits)?;
    let equal = equal_split(&mut models, args.budget, args.max_depth)?;
    let text = if args.json {
        let doc = serde_json::json!({
            "budget": args.budget,
            "used": allocation.used(),
            "expected_accepted": allocation.expected_accepted,
            "equal_split_expected_accepted": equal,
            "requests": allocation.requests.iter().map(|r| serde_json::json!({
                "capacity": r.capacity,
                "expected_accepted": r.expected_accepted,
            })).collect::<Vec<_>>(),
        });
        serde_json::to_string_pretty(&doc)? + "\n"
    } else {
        render_text(&allocation, args.budget, equal)
    };
    emit(args.out.as_deref(), &text)
}

/// The total `E[X]` of giving every request `budget / B` tokens (the first
/// `budget % B` requests one more), for comparison.
fn equal_split(models: &mut [Iid], budget: usize, max_depth: Option<u32>) -> Result<f64> {
    let b = models.len();
    let mut total = 0.0;
    for (i, m) in models.iter_mut().enumerate() {
        let share = budget / b + usize::from(i < budget % b);
        if share == 0 {
            continue;
        }
        let mut builder = TreeBuilder::new(share)?.with_max_depth(max_depth)?;
        builder.build(m)?;
        total += builder.opt_curve().last().copied().unwrap_or(0.0);
    }
    Ok(total)
}

fn render_text(a: &Allocation, budget: usize, equal: f64) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "{:>8} {:>9} {:>12}",
        "request", "capacity", "E[accepted]"
    );
    for (i, r) in a.requests.iter().enumerate() {
        let _ = writeln!(
            s,
            "{:>8} {:>9} {:>12.4}",
            i, r.capacity, r.expected_accepted
        );
    }
    let _ = writeln!(
        s,
        "total: {} of {budget} draft tokens, E[accepted] = {:.4} (equal split: {:.4})",
        a.used(),
        a.expected_accepted,
        equal
    );
    s
}
