//! `speclight tune --metrics`: the first choice's per-depth acceptance from
//! the metrics servers already emit, and the best chain length per batch
//! size when a latency profile is given.

use crate::common::{emit, read_text};
use crate::schedule::{load_batch_profile, vllm_block};
use anyhow::{Context, Result};
use serde_json::json;
use speclight::capacity::{LatencyProfile, Schedule, ScheduleCost, Scheduler};
use speclight::metrics::{fit, parse, AcceptanceFit};
use speclight::stats::Z95;
use std::fmt::Write;
use std::path::Path;

/// Said with every fit: what a tree prediction would rest on.
const TREE_NOTE: &str = "these metrics count only the drafter's first choice per depth: under the fitted model no tree beats the chain (ranks below the first are never observed); a tree needs their acceptance, from a paired trace (speclight tune --trace)";

/// What `tune` hands over when `--metrics` is given.
pub struct Inputs<'a> {
    pub metrics: &'a Path,
    pub latency: Option<&'a Path>,
    pub draft_step: Option<f64>,
    pub overhead: f64,
    pub max_depth: Option<u32>,
    pub json: bool,
    pub out: Option<&'a Path>,
}

pub fn run(inputs: Inputs<'_>) -> Result<()> {
    let name = inputs.metrics.display().to_string();
    let text = read_text(inputs.metrics)?;
    let counts = parse(&text).with_context(|| name.clone())?;
    let fitted = fit(&counts, Z95).with_context(|| name.clone())?;
    let schedule = match (inputs.latency, inputs.draft_step) {
        (Some(path), Some(step)) => Some(chain_schedule(&fitted, path, step, &inputs)?),
        _ => None,
    };
    let content = if inputs.json {
        serde_json::to_string_pretty(&to_json(&fitted, schedule.as_ref()))? + "\n"
    } else {
        render_text(&fitted, schedule.as_ref())
    };
    match inputs.out {
        Some(dir) => {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
            let file = if inputs.json {
                "metrics-fit.json"
            } else {
                "metrics-fit.txt"
            };
            emit(Some(&dir.join(file)), &content)
        }
        None => emit(None, &content),
    }
}

/// The best chain length per batch size of the profile under the fit.
fn chain_schedule(
    f: &AcceptanceFit,
    latency: &Path,
    step: f64,
    inputs: &Inputs<'_>,
) -> Result<Schedule> {
    let profile = load_batch_profile(latency)?;
    let sizes = profile.batch_sizes().to_vec();
    let draft = LatencyProfile::constant(step).context("--draft-step")?;
    let cost = ScheduleCost::new(profile, draft, inputs.overhead).context("cost model")?;
    let depth = f.fitted_depths().max(1);
    let depth = inputs
        .max_depth
        .map_or(depth, |d| depth.min(d as usize).max(1));
    let mut model = f
        .to_model()
        .with_context(|| inputs.metrics.display().to_string())?;
    let scheduler = Scheduler::new(cost, depth, u32::try_from(depth).unwrap_or(u32::MAX))?;
    Ok(scheduler.solve(&sizes, &mut model)?)
}

fn to_json(f: &AcceptanceFit, schedule: Option<&Schedule>) -> serde_json::Value {
    let mut doc = json!({
        "format": f.format,
        "steps": f.steps,
        "draft_length": f.draft_length,
        "uniform_draft_length": f.uniform_draft_length,
        "acceptance_by_depth": f.acceptance_by_depth,
        "mean_accepted": f.mean_accepted,
        "chain_expected_accepted": f.chain_expected_accepted,
        "mean_acceptance_length": 1.0 + f.mean_accepted,
        "tree_prediction": TREE_NOTE,
    });
    if let Some(s) = schedule {
        doc["chain_schedule"] = json!(s.chain);
        doc["vllm"] = vllm_block(&s.chain_ranges());
    }
    doc
}

fn render_text(f: &AcceptanceFit, schedule: Option<&Schedule>) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:?}: {} verifier steps, draft length {}; mean accepted {:.4} per step (mean acceptance length {:.4})",
        f.format,
        f.steps,
        f.draft_length,
        f.mean_accepted,
        1.0 + f.mean_accepted
    );
    if f.uniform_draft_length == Some(false) {
        let _ = writeln!(out, "warning: draft tokens != steps x draft length: some steps drafted fewer tokens, deep estimates are biased down");
    }
    let _ = writeln!(
        out,
        "{:>5} {:>10} {:>10} {:>9} {:>19} {:>9}",
        "depth", "accepted", "trials", "a_d", "95% interval", "P(X>=d)"
    );
    for d in &f.acceptance_by_depth {
        let _ = writeln!(
            out,
            "{:>5} {:>10} {:>10} {:>9.4} {:>9.4}-{:<9.4} {:>9.4}",
            d.depth, d.accepted, d.trials, d.estimate, d.ci_low, d.ci_high, d.reach
        );
    }
    let _ = writeln!(
        out,
        "chain E[X] under the fit: {:.4}",
        f.chain_expected_accepted
    );
    let _ = writeln!(out, "tree: {TREE_NOTE}");
    if let Some(s) = schedule {
        let _ = writeln!(out, "best chain length per batch size:");
        for c in &s.chain {
            let _ = writeln!(
                out,
                "  batch {:>5}: length {:>3}, E[accepted] {:.4}, {:.2} tokens/s, speedup {:.3}",
                c.batch_size, c.capacity, c.expected_accepted, c.tokens_per_second, c.speedup
            );
        }
        let _ = writeln!(
            out,
            "vLLM speculative_config: {}",
            vllm_block(&s.chain_ranges())
        );
    }
    out
}
