//! `speclight solve --batch-sizes`: the best capacity and depth per batch
//! size, and the same schedule as server settings (vLLM, SGLang).

use crate::common::{emit, load_dist, max_capacity_or_profile, read_text};
use anyhow::{bail, Context, Result};
use serde_json::json;
use speclight::capacity::{
    BatchLatencyProfile, BatchTier, LatencyProfile, Schedule, ScheduleCost, Scheduler,
};
use speclight::Iid;
use std::fmt::Write;
use std::path::{Path, PathBuf};

/// What `solve` hands over when `--batch-sizes` is given.
pub struct Inputs<'a> {
    pub dist: &'a str,
    pub verifier: Option<&'a str>,
    pub latency: &'a Path,
    pub batch_sizes: &'a str,
    pub draft_step: Option<f64>,
    pub draft_batch_profile: Option<&'a Path>,
    pub overhead: f64,
    pub max_depth: u32,
    pub max_capacity: Option<usize>,
    pub json: bool,
    pub out: Option<PathBuf>,
}

pub fn run(inputs: Inputs<'_>) -> Result<()> {
    let profile = load_batch_profile(inputs.latency)?;
    let batch_sizes = parse_batch_sizes(inputs.batch_sizes, &profile)?;
    let draft = match (inputs.draft_batch_profile, inputs.draft_step) {
        (Some(path), _) => load_draft_by_batch(path)?,
        (None, Some(t)) => LatencyProfile::constant(t).context("--draft-step")?,
        (None, None) => bail!("--batch-sizes charges the drafter per step: give --draft-step or --draft-batch-profile"),
    };
    let max_capacity = max_capacity_or_profile(inputs.max_capacity, profile.last_tokens())?;
    let cost = ScheduleCost::new(profile, draft, inputs.overhead).context("cost model")?;
    let scheduler = Scheduler::new(cost, max_capacity, inputs.max_depth)?;
    let mut drafter = Iid::new(load_dist("dist", inputs.dist)?);
    let schedule = match inputs.verifier {
        Some(spec) => {
            let mut verifier = Iid::new(load_dist("verifier", spec)?);
            scheduler.solve_with_verifier(&batch_sizes, &mut drafter, &mut verifier)?
        }
        None => scheduler.solve(&batch_sizes, &mut drafter)?,
    };
    let text = if inputs.json {
        serde_json::to_string_pretty(&to_json(&schedule))? + "\n"
    } else {
        render_text(&schedule)
    };
    emit(inputs.out.as_deref(), &text)
}

pub fn load_batch_profile(path: &Path) -> Result<BatchLatencyProfile> {
    crate::common::load_with("latency", path, |p| BatchLatencyProfile::from_path(p))
}

/// `1,2,4,8` or `profile` (every batch size the latency file measures).
fn parse_batch_sizes(spec: &str, profile: &BatchLatencyProfile) -> Result<Vec<u64>> {
    if spec.trim() == "profile" {
        return Ok(profile.batch_sizes().to_vec());
    }
    spec.split(',')
        .map(|s| {
            s.trim()
                .parse::<u64>()
                .with_context(|| format!("--batch-sizes: {s:?} is not a batch size"))
        })
        .collect()
}

/// CSV `batch_size,seconds`: one drafter step at each batch size.
fn load_draft_by_batch(path: &Path) -> Result<LatencyProfile> {
    let text = read_text(path)?;
    let context = || format!("--draft-batch-profile {}", path.display());
    let mut reader = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .from_reader(text.as_bytes());
    let header: Vec<String> = reader
        .headers()
        .with_context(context)?
        .iter()
        .map(str::to_owned)
        .collect();
    if header != ["batch_size", "seconds"] {
        bail!(
            "{}: header is {:?}, expected \"batch_size,seconds\"",
            context(),
            header.join(",")
        );
    }
    let mut points = Vec::new();
    for (row, record) in reader.deserialize::<(u64, f64)>().enumerate() {
        points.push(record.with_context(|| format!("{} row {row}", context()))?);
    }
    LatencyProfile::new(&points).with_context(context)
}

/// The JSON document: `schedule` (trees), `chain`, and the server blocks.
fn to_json(s: &Schedule) -> serde_json::Value {
    json!({
        "schedule": s.entries,
        "chain": s.chain,
        "vllm": vllm_block(&s.chain_ranges()),
        "sglang": { "tiers": sglang_tiers(&s.tree_tiers()) },
    })
}

/// vLLM's `speculative_config` keys for a chain. The schema is that of
/// vllm-project/vllm `vllm/config/speculative.py`
/// (`num_speculative_tokens_per_batch_size: list[tuple[int, int, int]] | None`)
/// as validated by `vllm/v1/spec_decode/dynamic/utils.py`
/// (`validate_and_normalize_dynamic_sd_schedule`, main at commit a6f6bb1d):
/// inclusive `(range_start, range_end, num_speculative_tokens)` entries,
/// sorted and non-overlapping, the first starting at 1; a gap or the tail
/// carries the previous K forward, K may be 0, and the per-batch-size K is
/// capped by `num_speculative_tokens`, which must be positive.
pub fn vllm_block(ranges: &[BatchTier]) -> serde_json::Value {
    let k = ranges.iter().map(|t| t.capacity).max().unwrap_or(0);
    let per_batch: Vec<[u64; 3]> = ranges
        .iter()
        .map(|t| [t.lo, t.hi, t.capacity as u64])
        .collect();
    if k == 0 {
        // vLLM refuses num_speculative_tokens = 0: no speculative_config at all.
        return json!({ "num_speculative_tokens": 0, "num_speculative_tokens_per_batch_size": null });
    }
    json!({ "num_speculative_tokens": k, "num_speculative_tokens_per_batch_size": per_batch })
}

/// SGLang's server arguments per batch-size tier: `speculative_num_steps`
/// (drafter steps = depth reached) and `speculative_num_draft_tokens` (the
/// draft tokens plus the verified root, as SGLang counts them).
fn sglang_tiers(tiers: &[BatchTier]) -> Vec<serde_json::Value> {
    tiers
        .iter()
        .map(|t| {
            let speculate = t.capacity > 0;
            json!({
                "min_batch_size": t.lo,
                "max_batch_size": t.hi,
                "speculate": speculate,
                "speculative_num_steps": t.depth,
                "speculative_num_draft_tokens": if speculate { t.capacity + 1 } else { 0 },
            })
        })
        .collect()
}

fn render_text(s: &Schedule) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "system tokens/s = b (1 + E[X](n, D)) / (T_v(b, n) + d T_d(b) + T_0); capacity 0 = do not speculate"
    );
    let _ = writeln!(
        out,
        "{:>6} {:>9} {:>6} {:>6} {:>11} {:>12} {:>8} | {:>5} {:>11} {:>12} {:>8}",
        "batch",
        "capacity",
        "D",
        "depth",
        "E[accepted]",
        "tokens/s",
        "speedup",
        "chain",
        "E[accepted]",
        "tokens/s",
        "speedup"
    );
    for (t, c) in s.entries.iter().zip(&s.chain) {
        let _ = writeln!(
            out,
            "{:>6} {:>9} {:>6} {:>6} {:>11.4} {:>12.2} {:>8.3} | {:>5} {:>11.4} {:>12.2} {:>8.3}",
            t.batch_size,
            t.capacity,
            t.max_depth,
            t.depth,
            t.expected_accepted,
            t.tokens_per_second,
            t.speedup,
            c.capacity,
            c.expected_accepted,
            c.tokens_per_second,
            c.speedup
        );
    }
    let _ = writeln!(
        out,
        "vLLM speculative_config (a chain of the drafter's first choices):"
    );
    let _ = writeln!(out, "{}", vllm_block(&s.chain_ranges()));
    let _ = writeln!(out, "SGLang per batch-size tier (tree schedule):");
    for t in s.tree_tiers() {
        if t.capacity == 0 {
            let _ = writeln!(out, "  batch {}-{}: do not speculate", t.lo, t.hi);
        } else {
            let _ = writeln!(
                out,
                "  batch {}-{}: --speculative-num-steps {} --speculative-num-draft-tokens {}",
                t.lo,
                t.hi,
                t.depth,
                t.capacity + 1
            );
        }
    }
    out
}
