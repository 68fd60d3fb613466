//! `speclight tune --metrics`: the first choice's per-depth acceptance from
//! the metrics servers already emit (or, from totals-only formats, what
//! they support), the best chain length per batch size when a latency
//! profile is given, and with `--rank-tail` what the fit predicts for a tree
//! under a stated assumption about the ranks the metrics never see.

use crate::common::{emit, read_text};
use crate::schedule::{load_batch_profile, vllm_block};
use anyhow::{bail, Context, Result};
use serde_json::json;
use speclight::capacity::{LatencyProfile, Schedule, ScheduleCost, Scheduler};
use speclight::metrics::{
    fit, fit_totals, predict_tree, read, AcceptanceFit, RankTail, ServerMetrics, TotalsFit,
    TreePrediction,
};
use speclight::model::PositionalByDepth;
use speclight::stats::Z95;
use std::fmt::Write;
use std::path::Path;

/// Said with every fit: what these metrics can and cannot say about trees.
const TREE_NOTE: &str = "server metrics count only the drafter's first choice per depth: no tree value can be read from them; a tree prediction rests on an assumption about the lower ranks (--rank-tail) or on a paired trace (speclight tune --trace)";

/// The `--metrics` options of `speclight tune`.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct MetricsArgs {
    /// With --metrics: also predict the best tree at each of --capacities under this
    /// assumption about the ranks below the first choice (never in server metrics): at
    /// depth d rank k+1 catches the fraction p_k of the first choice's miss 1 - a_d, p a
    /// distribution spec (zipf:S:N, geometric:R:N or a comma list summing to at most 1).
    #[arg(long, requires = "metrics", value_name = "SPEC")]
    pub rank_tail: Option<String>,
    /// With --metrics in a totals-only format (llama.cpp `timings`): assume every step
    /// drafted K tokens, so steps = drafted / K, and fit one acceptance for every depth.
    #[arg(long, requires = "metrics", value_name = "K")]
    pub draft_length: Option<usize>,
}

/// What `tune` hands over when `--metrics` is given.
pub struct Inputs<'a> {
    pub metrics: &'a Path,
    pub options: &'a MetricsArgs,
    pub capacities: &'a [usize],
    pub latency: Option<&'a Path>,
    pub draft_step: Option<f64>,
    pub overhead: f64,
    pub max_depth: Option<u32>,
    pub json: bool,
    pub out: Option<&'a Path>,
}

/// Either fit, with the first-choice acceptance per depth it yields.
enum Fitted {
    PerPosition(AcceptanceFit),
    Totals(TotalsFit),
}

impl Fitted {
    /// `a_d` for `d = 1 ..`, up to the last depth with a positive estimate;
    /// `None` for totals without a draft length.
    fn first_choice(&self) -> Option<Vec<f64>> {
        match self {
            Self::PerPosition(f) => Some(
                f.acceptance_by_depth
                    .iter()
                    .take(f.fitted_depths())
                    .map(|d| d.estimate)
                    .collect(),
            ),
            Self::Totals(t) => t
                .constant_depth
                .as_ref()
                .map(|c| vec![c.acceptance_per_depth; c.draft_length]),
        }
    }
}

pub fn run(inputs: Inputs<'_>) -> Result<()> {
    let name = inputs.metrics.display().to_string();
    let text = read_text(inputs.metrics)?;
    let fitted = match read(&text).with_context(|| name.clone())? {
        ServerMetrics::PerPosition(c) => {
            Fitted::PerPosition(fit(&c, Z95).with_context(|| name.clone())?)
        }
        ServerMetrics::Totals(t) => Fitted::Totals(
            fit_totals(&t, inputs.options.draft_length).with_context(|| name.clone())?,
        ),
    };
    let first = fitted.first_choice().filter(|a| !a.is_empty());
    let schedule = match (inputs.latency, inputs.draft_step) {
        (Some(path), Some(step)) => Some(chain_schedule(first.as_deref(), path, step, &inputs)?),
        _ => None,
    };
    let trees = tree_predictions(first.as_deref(), &inputs)?;
    let content = if inputs.json {
        serde_json::to_string_pretty(&to_json(&fitted, schedule.as_ref(), &trees))? + "\n"
    } else {
        render_text(&fitted, schedule.as_ref(), &trees)
    };
    write_out(&inputs, &content)
}

fn write_out(inputs: &Inputs<'_>, content: &str) -> Result<()> {
    let Some(dir) = inputs.out else {
        return emit(None, content);
    };
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let file = if inputs.json {
        "metrics-fit.json"
    } else {
        "metrics-fit.txt"
    };
    emit(Some(&dir.join(file)), content)
}

/// The first-choice model, or why there is none.
fn first_choice_model(first: Option<&[f64]>) -> Result<(PositionalByDepth, usize)> {
    let Some(first) = first else {
        bail!("these metrics hold only totals: give --draft-length K to fit a per-depth model (an assumption, stated in the output)");
    };
    let rows: Vec<Vec<f64>> = first
        .iter()
        .take_while(|&&a| a > 0.0)
        .map(|&a| vec![a])
        .collect();
    if rows.is_empty() {
        bail!("the first draft token was never accepted: no acceptance to model");
    }
    let depth = rows.len();
    Ok((PositionalByDepth::new(&rows)?, depth))
}

/// The best chain length per batch size of the profile under the fit.
fn chain_schedule(
    first: Option<&[f64]>,
    latency: &Path,
    step: f64,
    inputs: &Inputs<'_>,
) -> Result<Schedule> {
    let (mut model, depth) = first_choice_model(first)?;
    let profile = load_batch_profile(latency)?;
    let sizes = profile.batch_sizes().to_vec();
    let draft = LatencyProfile::constant(step).context("--draft-step")?;
    let cost = ScheduleCost::new(profile, draft, inputs.overhead).context("cost model")?;
    let depth = inputs
        .max_depth
        .map_or(depth, |d| depth.min(d as usize).max(1));
    let scheduler = Scheduler::new(cost, depth, u32::try_from(depth).unwrap_or(u32::MAX))?;
    Ok(scheduler.solve(&sizes, &mut model)?)
}

/// One prediction per capacity under `--rank-tail` (none without it).
fn tree_predictions(first: Option<&[f64]>, inputs: &Inputs<'_>) -> Result<Vec<TreePrediction>> {
    let Some(spec) = inputs.options.rank_tail.as_deref() else {
        return Ok(Vec::new());
    };
    let tail = RankTail::parse(spec).context("--rank-tail")?;
    let (_, depth) = first_choice_model(first)?;
    let first = &first.unwrap_or_default()[..depth];
    inputs
        .capacities
        .iter()
        .map(|&c| {
            predict_tree(first, &tail, c, inputs.max_depth)
                .with_context(|| format!("tree prediction at capacity {c}"))
        })
        .collect()
}

fn tree_json(trees: &[TreePrediction]) -> serde_json::Value {
    let largest = trees.last();
    json!({
        "note": TREE_NOTE,
        "assumption": largest.map(|t| t.assumption.clone()),
        "rank_tail": largest.map(|t| t.rank_tail.clone()),
        "capacity": largest.map(|t| t.capacity),
        "expected_accepted": largest.map(|t| t.expected_accepted),
        "chain_expected_accepted": largest.map(|t| t.chain_expected_accepted),
        "by_capacity": trees,
    })
}

fn to_json(
    fitted: &Fitted,
    schedule: Option<&Schedule>,
    trees: &[TreePrediction],
) -> serde_json::Value {
    let mut doc = match fitted {
        Fitted::PerPosition(f) => json!({
            "format": f.format,
            "steps": f.steps,
            "draft_length": f.draft_length,
            "uniform_draft_length": f.uniform_draft_length,
            "acceptance_by_depth": f.acceptance_by_depth,
            "mean_accepted": f.mean_accepted,
            "chain_expected_accepted": f.chain_expected_accepted,
            "mean_acceptance_length": 1.0 + f.mean_accepted,
        }),
        Fitted::Totals(t) => {
            let c = t.constant_depth.as_ref();
            json!({
                "format": t.totals.format,
                "records": t.totals.records,
                "draft_tokens": t.totals.draft_tokens,
                "accepted_tokens": t.totals.accepted_tokens,
                "acceptance_rate": t.acceptance_rate,
                "acceptance_by_depth": null,
                "constant_depth": c,
                "mean_accepted": c.map(|c| c.mean_accepted),
                "chain_expected_accepted": c.map(|c| c.chain_expected_accepted),
                "mean_acceptance_length": c.map(|c| 1.0 + c.mean_accepted),
            })
        }
    };
    doc["tree_prediction"] = tree_json(trees);
    if let Some(s) = schedule {
        doc["chain_schedule"] = json!(s.chain);
        doc["vllm"] = vllm_block(&s.chain_ranges());
    }
    doc
}

fn render_text(fitted: &Fitted, schedule: Option<&Schedule>, trees: &[TreePrediction]) -> String {
    let mut out = match fitted {
        Fitted::PerPosition(f) => render_per_position(f),
        Fitted::Totals(t) => render_totals(t),
    };
    render_trees(&mut out, trees);
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

fn render_per_position(f: &AcceptanceFit) -> String {
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
    out
}

fn render_totals(t: &TotalsFit) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:?}: {} records, {} drafted and {} accepted tokens: acceptance rate {:.4} per drafted token (what these totals prove)",
        t.totals.format, t.totals.records, t.totals.draft_tokens, t.totals.accepted_tokens, t.acceptance_rate
    );
    let _ = writeln!(
        out,
        "per-depth acceptance: not in these metrics (totals only, no step count)"
    );
    match &t.constant_depth {
        None => {
            let _ = writeln!(out, "give --draft-length K (every step drafted K tokens) for the steps, the chain's E[X] and a constant per-depth model");
        }
        Some(c) => {
            let _ = writeln!(out, "{}", c.assumption);
            let _ = writeln!(
                out,
                "  K = {}: {} steps, mean accepted {:.4} per step (mean acceptance length {:.4}); constant a = {:.4}; chain E[X] {:.4}",
                c.draft_length, c.steps, c.mean_accepted, 1.0 + c.mean_accepted, c.acceptance_per_depth, c.chain_expected_accepted
            );
        }
    }
    out
}

fn render_trees(out: &mut String, trees: &[TreePrediction]) {
    let _ = writeln!(out, "tree: {TREE_NOTE}");
    let Some(first) = trees.first() else { return };
    let _ = writeln!(out, "tree prediction ({})", first.assumption);
    for t in trees {
        let _ = writeln!(
            out,
            "  capacity {:>5}: tree E[X] {:.4} (widths {:?}), chain of {} E[X] {:.4}",
            t.capacity,
            t.expected_accepted,
            t.width_by_depth,
            t.capacity.min(t.depth_limit as usize),
            t.chain_expected_accepted
        );
    }
}
