//! `speclight tune`: choose a static draft tree from a paired trace, measure
//! it and the baselines on held-out sequences, and write a report.

use crate::common::emit;
use crate::plot::{chosen_tree_svg, curve_svg, speedup_svg};
use anyhow::{bail, Context, Result};
use indicatif::{ProgressBar, ProgressStyle};
use speclight::capacity::{CostModel, DraftCost};
use speclight::deploy::{Deployment, Server};
use speclight::format::{is_level_uniform, medusa_choices_string};
use speclight::tune::{tune, validate, DeployedReport, Policy, Split, TuneConfig, TuneReport};
use std::fmt::Write;
use std::fs::File;
use std::io::BufReader;
use std::path::{Path, PathBuf};

/// Traces above this size get a progress bar (when stderr is a terminal).
const PROGRESS_MIN_BYTES: u64 = 8 << 20;

/// Tune a static draft tree from a paired trace (JSONL: one record per position and depth).
///
/// Estimates the acceptance matrix a[d][k] on training sequences, picks the best-first tree
/// per capacity (and the capacity and depth with --latency), and measures it against a chain,
/// a k-ary tree and an EAGLE-style dynamic tree on held-out sequences.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:
  speclight tune --trace trace.jsonl --out report/
  speclight tune --trace trace.jsonl --latency data/latency-example.csv --draft-step 0.002 --capacities 4,8,16,32,64 --holdout 0.2 --out report/
  speclight tune --trace trace.jsonl --validate

Record format (one JSON object per line, sorted by seq then pos, depths 1, 2, ... contiguous):
  {\"seq\": 0, \"pos\": 17, \"depth\": 2, \"draft_top\": [[318, -0.21], [262, -1.9]], \"target\": 262, \"target_logprob\": -0.8}")]
pub struct Args {
    /// The paired trace (JSON Lines).
    #[arg(long, required_unless_present = "metrics")]
    trace: Option<PathBuf>,
    /// Fit the first choice's per-depth acceptance from server metrics instead of a trace: vLLM,
    /// llama.cpp or mistral.rs Prometheus text, vLLM per-request JSON, SGLang meta_info records,
    /// or totals only: llama.cpp response timings, TensorRT-LLM /perf_metrics (detected by
    /// content; see docs/load.md).
    #[arg(long, conflicts_with_all = ["trace", "validate"])]
    metrics: Option<PathBuf>,
    #[command(flatten)]
    metrics_options: crate::tune_metrics::MetricsArgs,
    /// Verifier latency profile (CSV `draft_tokens,seconds` or `.json`): lets the capacity
    /// solver choose the capacity and depth limit.
    #[arg(long, requires = "draft_step")]
    latency: Option<PathBuf>,
    /// Drafter seconds per sequential draft step (with --latency).
    #[arg(long, requires = "latency")]
    draft_step: Option<f64>,
    /// Fixed seconds per iteration T_0 (with --latency).
    #[arg(long, default_value_t = 0.0)]
    overhead: f64,
    /// Capacities to compare policies at, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "1,2,4,8,16,32,64")]
    capacities: Vec<usize>,
    /// Fraction of sequences held out for measurement (chosen by a hash of the sequence id).
    #[arg(long, default_value_t = 0.2)]
    holdout: f64,
    /// Hold out the sequences with id >= N instead (a trace written from a training text, then
    /// a held-out text).
    #[arg(long, value_name = "N", conflicts_with = "holdout")]
    heldout_from_seq: Option<u64>,
    /// Salt of the sequence hash that splits training from held-out.
    #[arg(long, default_value_t = 0)]
    split_salt: u64,
    /// Depth limit for trees, at least 1 (default: every depth the training data support).
    #[arg(long)]
    max_depth: Option<u32>,
    /// Branching of the fixed k-ary baseline.
    #[arg(long, default_value_t = 2)]
    kary: u32,
    /// EAGLE-style baseline: nodes expanded per level and children per node.
    #[arg(long, default_value_t = 8)]
    eagle_top_k: usize,
    /// EAGLE-style baseline: levels drafted.
    #[arg(long, default_value_t = 6)]
    eagle_depth: u32,
    /// Write the report (report.md, report.json, SVG figures, tree files) into this directory.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Print the report as JSON instead of Markdown.
    #[arg(long)]
    json: bool,
    /// Only check the trace: list every bad line (up to 100) and the count, exit non-zero if any.
    #[arg(long)]
    validate: bool,
}

fn open_trace(path: &Path, label: &str) -> speclight::Result<BufReader<Box<dyn std::io::Read>>> {
    let file = File::open(path)
        .map_err(|e| speclight::Error::Io(format!("cannot open {}: {e}", path.display())))?;
    let len = file.metadata().map(|m| m.len()).unwrap_or(0);
    let reader: Box<dyn std::io::Read> = if len >= PROGRESS_MIN_BYTES {
        let bar = ProgressBar::new(len).with_message(label.to_owned());
        if let Ok(style) = ProgressStyle::with_template(
            "{msg} [{bar:40}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
        ) {
            bar.set_style(style.progress_chars("=> "));
        }
        Box::new(bar.wrap_read(file))
    } else {
        Box::new(file)
    };
    Ok(BufReader::with_capacity(1 << 16, reader))
}

impl Args {
    /// The trace path (`--trace` is required unless `--metrics` is given).
    fn trace_path(&self) -> &Path {
        self.trace.as_deref().unwrap_or(Path::new(""))
    }
}

pub fn run(args: Args) -> Result<()> {
    if let Some(path) = &args.metrics {
        return crate::tune_metrics::run(crate::tune_metrics::Inputs {
            metrics: path,
            options: &args.metrics_options,
            capacities: &args.capacities,
            latency: args.latency.as_deref(),
            draft_step: args.draft_step,
            overhead: args.overhead,
            max_depth: args.max_depth,
            json: args.json,
            out: args.out.as_deref(),
        });
    }
    if args.validate {
        return run_validate(&args);
    }
    if args.max_depth == Some(0) {
        // As `build` refuses it, before the trace is read.
        return Err(speclight::Error::ZeroDepth).context("--max-depth");
    }
    let config = tune_config(&args)?;
    let mut pass = 0;
    let report = tune(
        || {
            pass += 1;
            let label = if pass == 1 {
                "pass 1/2: estimating"
            } else {
                "pass 2/2: measuring"
            };
            open_trace(args.trace_path(), label)
        },
        &config,
    )
    .with_context(|| args.trace_path().display().to_string())?;
    let deploy = report
        .deployments()
        .context("server configurations for the chosen capacity")?;
    let deployed = DeployedReport {
        report: &report,
        deploy: &deploy,
    };
    let markdown = render_markdown(&deployed, &args);
    if let Some(dir) = &args.out {
        write_report_files(dir, &deployed, &markdown)?;
    }
    if args.json {
        emit(None, &(serde_json::to_string_pretty(&deployed)? + "\n"))
    } else {
        emit(None, &markdown)
    }
}

/// vLLM's level-uniform `speculative_token_tree`: the tree vLLM drafts as written.
fn vllm_tree<'a>(deployed: &DeployedReport<'a>) -> Result<&'a str> {
    deployed
        .deploy
        .iter()
        .find(|d| d.server == Server::Vllm)
        .and_then(|d| d.config.get("speculative_token_tree"))
        .and_then(|t| t.as_str())
        .context("internal: no vLLM configuration")
}

/// Medusa's `medusa_choices`: the best tree with every rank below
/// Medusa's top-10, not the unconstrained choice (whose ranks may be higher).
fn medusa_choices(deployed: &DeployedReport<'_>) -> Result<Vec<Vec<u32>>> {
    let choices = deployed
        .deploy
        .iter()
        .find(|d| d.server == Server::Medusa)
        .and_then(|d| d.config.get("medusa_choices"))
        .context("internal: no Medusa configuration")?;
    Ok(serde_json::from_value(choices.clone())?)
}

/// `--validate`: every bad line (up to 100) and the counts; fails if any.
fn run_validate(args: &Args) -> Result<()> {
    let report = validate(open_trace(args.trace_path(), "validating")?, 100)?;
    let mut out = String::new();
    for (line, reason) in &report.errors {
        let _ = writeln!(out, "{}:{line}: {reason}", args.trace_path().display());
    }
    let _ = writeln!(
        out,
        "{} lines, {} good records in {} (seq, pos) groups, {} bad lines; depth <= {}, top-k <= {}, {} records without target_logprob",
        report.lines, report.good_records, report.groups, report.bad_lines, report.max_depth, report.max_top_k, report.missing_target_logprob
    );
    emit(None, &out)?;
    if !report.is_valid() {
        bail!(
            "{} has {} bad lines (listed above)",
            args.trace_path().display(),
            report.bad_lines
        );
    }
    Ok(())
}

/// The library's settings from the flags, with the latency profile loaded.
fn tune_config(args: &Args) -> Result<TuneConfig> {
    let cost = match (&args.latency, args.draft_step) {
        (Some(path), Some(step)) => {
            let profile = crate::common::load_profile("latency", path)?;
            Some(
                CostModel::new(profile, DraftCost::PerStep(step), args.overhead)
                    .context("cost model")?,
            )
        }
        _ => None,
    };
    Ok(TuneConfig {
        capacities: args.capacities.clone(),
        split: match args.heldout_from_seq {
            Some(first) => Split::from_seq(first),
            None => Split::new(args.holdout, args.split_salt).context("--holdout")?,
        },
        max_depth: args.max_depth,
        kary: args.kary,
        eagle_top_k: args.eagle_top_k,
        eagle_depth: args.eagle_depth,
        cost,
        ..Default::default()
    })
}

/// The report, its figures and the chosen tree's files in `dir`.
fn write_report_files(dir: &Path, deployed: &DeployedReport<'_>, markdown: &str) -> Result<()> {
    let report = deployed.report;
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    emit(
        Some(&dir.join("report.json")),
        &(serde_json::to_string_pretty(deployed)? + "\n"),
    )?;
    emit(Some(&dir.join("curve.svg")), &curve_svg(report)?)?;
    if let Some(choice) = &report.capacity_choice {
        emit(Some(&dir.join("speedup.svg")), &speedup_svg(choice)?)?;
    }
    emit(Some(&dir.join("tree.svg")), &chosen_tree_svg(report)?)?;
    emit(
        Some(&dir.join("tree.json")),
        &(serde_json::to_string_pretty(&report.chosen.tree)? + "\n"),
    )?;
    emit(
        Some(&dir.join("tree.vllm.txt")),
        &(vllm_tree(deployed)?.to_owned() + "\n"),
    )?;
    emit(
        Some(&dir.join("tree.medusa.json")),
        &(medusa_choices_string(&medusa_choices(deployed)?) + "\n"),
    )?;
    emit(Some(&dir.join("report.md")), markdown)?;
    Ok(())
}

/// `mean [lo, hi]` of tokens per iteration (1 + accepted).
fn tokens(mean: f64, lo: f64, hi: f64) -> String {
    format!("{:.3} [{:.3}, {:.3}]", 1.0 + mean, 1.0 + lo, 1.0 + hi)
}

fn render_markdown(deployed: &DeployedReport<'_>, args: &Args) -> String {
    let r = deployed.report;
    let mut o = String::new();
    render_summary(&mut o, r, args);
    render_chosen(&mut o, r, args);
    render_capacity_choice(&mut o, r, args);
    render_deploy(&mut o, deployed.deploy, args);
    render_policies(&mut o, r, args);
    render_acceptance(&mut o, r);
    o
}

/// The title and the split.
fn render_summary(o: &mut String, r: &TuneReport, args: &Args) {
    let _ = writeln!(o, "# speclight tune report\n");
    let _ = writeln!(
        o,
        "Trace `{}`: {} training groups ({} records), {} held-out groups measured{}; {}. Tokens per iteration = 1 + accepted draft tokens; intervals are 95%.\n",
        args.trace_path().display(),
        r.train_groups,
        r.train_records,
        r.heldout_groups,
        if r.heldout_truncated > 0 {
            format!(" ({} skipped: fewer depths recorded than the deepest tree)", r.heldout_truncated)
        } else {
            String::new()
        },
        match args.heldout_from_seq {
            Some(first) => format!("sequences from id {first} on are held out"),
            None => format!(
                "sequences split by hash, hold-out fraction {}",
                args.holdout
            ),
        }
    );
}

/// The chosen tree: predicted, measured, against the speed of light.
fn render_chosen(o: &mut String, r: &TuneReport, args: &Args) {
    let c = &r.chosen;
    let chosen = r.results.iter().find(|x| x.capacity == c.capacity);
    let _ = writeln!(o, "## Chosen tree\n");
    let _ = writeln!(
        o,
        "Capacity {} draft tokens, depth limit {}, {} nodes{}.\n",
        c.capacity,
        c.max_depth,
        c.rank_paths.len(),
        if r.capacity_choice.is_some() {
            " (chosen by the capacity solver)"
        } else {
            " (the largest capacity asked for; give --latency to let the solver choose)"
        }
    );
    if let Some(best) = chosen.and_then(|x| x.policies.first()) {
        if let Some(p) = best.predicted {
            let i = p.heldout_interval;
            let _ = writeln!(
                o,
                "- predicted tokens/iteration: {}",
                tokens(i.mean, i.lo, i.hi)
            );
        }
        if let Some(m) = best.measured {
            let a = m.accepted;
            let _ = writeln!(o, "- measured on held-out: {}", tokens(a.mean, a.lo, a.hi));
        }
        if let Some(b) = r.speed_of_light.iter().find(|b| b.capacity == c.capacity) {
            let e = &b.estimate;
            let _ = writeln!(
                o,
                "- speed of light at this capacity (no drafter does better on this workload): {}",
                tokens(e.mean, e.ci_low, e.ci_high)
            );
            if let Some(m) = best.measured {
                let _ = writeln!(
                    o,
                    "- best-first reaches {:.1}% of the speed of light in accepted tokens",
                    100.0 * m.accepted.mean / e.mean
                );
            }
        }
    }
    if let Some(note) = &r.speed_of_light_note {
        let _ = writeln!(o, "- speed of light: {note}");
    }
    if !is_level_uniform(&c.rank_paths) {
        let _ = writeln!(
            o,
            "\nvLLM cannot draft this tree as written (it is not level-uniform); see \"Deploying to a server\" for the best tree it can draft."
        );
    } else if c.vllm.len() <= 400 {
        let _ = writeln!(o, "\nvLLM `speculative_token_tree`: `{}`", c.vllm);
    }
    if args.out.is_some() {
        let _ = writeln!(
            o,
            "\nFiles: `tree.vllm.txt` (vLLM: the best level-uniform tree, see \"Deploying to a server\"), `tree.medusa.json` (Medusa: the best tree with ranks below 10), `tree.json` (speclight JSON), `report.json` (everything here; `speclight plot --report` redraws the figures)."
        );
    }
}

/// The capacity solver's choice, with a latency profile.
fn render_capacity_choice(o: &mut String, r: &TuneReport, args: &Args) {
    if let Some(s) = &r.capacity_choice {
        let _ = writeln!(o, "\n## Capacity and depth (latency profile)\n");
        let _ = writeln!(
            o,
            "Best: capacity {}, depth limit {}: {:.1} tokens/s, speedup {:.3}x over plain decoding. The best static tree with a free drafter reaches {:.3}x.",
            s.capacity, s.max_depth, s.tokens_per_second, s.speedup, s.free_drafter_speedup
        );
        if args.out.is_some() {
            let _ = writeln!(o, "\n![speedup heat map](speedup.svg)");
        }
    }
}

/// Every server's best configuration under its constraint, with its cost.
fn render_deploy(o: &mut String, deploy: &[Deployment], args: &Args) {
    let _ = writeln!(o, "\n## Deploying to a server\n");
    let _ = writeln!(
        o,
        "The best configuration each server can run at the chosen capacity and depth limit, on the estimated acceptance (expected accepted draft tokens per iteration; cost = 1 - E[accepted] / unconstrained). vLLM drafts the same number of children below every node of a level, so its tree is level-uniform{}; TensorRT-LLM, Medusa and EAGLE take ranks below 10; SGLang builds its tree from three numbers. The full configurations are in `report.json` (`deploy`) and `speclight deploy --report` prints them ready to paste.\n",
        if args.out.is_some() {
            " and `tree.vllm.txt` holds it"
        } else {
            ""
        }
    );
    let _ = writeln!(
        o,
        "| server | capacity | configuration | E[accepted] | unconstrained | constraint cost |"
    );
    let _ = writeln!(o, "|{}", " --- |".repeat(6));
    for d in deploy {
        let _ = writeln!(
            o,
            "| {} | {} | {} | {:.4} | {:.4} | {:.1}% |",
            d.server,
            d.capacity,
            config_summary(d),
            d.expected_accepted,
            d.unconstrained_expected_accepted,
            100.0 * d.constraint_cost
        );
    }
}

/// A configuration in one table cell: numbers as they are, a tree as its
/// size (inline when short).
fn config_summary(d: &Deployment) -> String {
    let Some(fields) = d.config.as_object() else {
        return format!("`{}`", d.config);
    };
    let cells: Vec<String> = fields
        .iter()
        .map(|(key, value)| match value {
            serde_json::Value::Array(paths) => format!("`{key}`: {} paths", paths.len()),
            serde_json::Value::String(tree) if tree.len() > 80 => {
                format!("`{key}`: {} paths", tree.matches(')').count())
            }
            _ => format!("`{key}`: `{value}`"),
        })
        .collect();
    cells.join(", ")
}

/// Every policy at every capacity.
fn render_policies(o: &mut String, r: &TuneReport, args: &Args) {
    let _ = writeln!(
        o,
        "\n## Policies at equal capacity (held-out tokens per iteration)\n"
    );
    let names: Vec<Policy> = r
        .results
        .first()
        .map(|x| x.policies.iter().map(|p| p.policy).collect())
        .unwrap_or_default();
    let _ = write!(o, "| capacity | depth limit | best-first predicted |");
    for n in &names {
        let _ = write!(o, " {n} |");
    }
    let sol = !r.speed_of_light.is_empty();
    if sol {
        let _ = write!(o, " speed of light |");
    }
    let _ = writeln!(o);
    let _ = writeln!(
        o,
        "|{}",
        " --- |".repeat(3 + names.len() + usize::from(sol))
    );
    for row in &r.results {
        let pred = row
            .policies
            .first()
            .and_then(|p| p.predicted)
            .map_or("-".into(), |p| {
                let i = p.heldout_interval;
                tokens(i.mean, i.lo, i.hi)
            });
        let _ = write!(o, "| {} | {} | {} |", row.capacity, row.max_depth, pred);
        for p in &row.policies {
            match p.measured {
                Some(m) => {
                    let a = m.accepted;
                    let _ = write!(o, " {}", tokens(a.mean, a.lo, a.hi));
                    if let Some(d) = p.versus.as_ref().and_then(|v| v.difference) {
                        let i = d.accepted;
                        let _ = write!(o, "; {:+.3} [{:+.3}, {:+.3}]", i.mean, i.lo, i.hi);
                    }
                    let _ = write!(o, " |");
                }
                None => {
                    let _ = write!(o, " - |");
                }
            }
        }
        if sol {
            match r.speed_of_light.iter().find(|b| b.capacity == row.capacity) {
                Some(b) => {
                    let e = &b.estimate;
                    let _ = write!(o, " {} |", tokens(e.mean, e.ci_low, e.ci_high));
                }
                None => {
                    let _ = write!(o, " - |");
                }
            }
        }
        let _ = writeln!(o);
    }
    if args.out.is_some() {
        let _ = writeln!(
            o,
            "\n![E[X] against capacity](curve.svg)\n\n![chosen tree](tree.svg)"
        );
    }
}

/// The acceptance matrix of the training split.
fn render_acceptance(o: &mut String, r: &TuneReport) {
    let a = &r.acceptance;
    let ranks = a.ranks().min(6);
    let _ = writeln!(
        o,
        "\n## Acceptance a[d][k] (training split)\n\nShare of records at depth d (whose earlier depths all matched) where the verifier's token is the drafter's rank k, with Wilson 95% intervals.\n"
    );
    let _ = write!(o, "| depth | records |");
    for k in 0..ranks {
        let _ = write!(o, " rank {k} |");
    }
    let _ = writeln!(o, " any rank |");
    let _ = writeln!(o, "|{}", " --- |".repeat(3 + ranks));
    for d in 0..a.depths() {
        let _ = write!(o, "| {} | {} |", d + 1, a.trials[d]);
        for k in 0..ranks {
            let (lo, hi) = a.interval(d, k, r.z);
            let _ = write!(o, " {:.3} [{:.3}, {:.3}] |", a.estimate(d, k), lo, hi);
        }
        let any: f64 = (0..a.ranks()).map(|k| a.estimate(d, k)).sum();
        let _ = writeln!(o, " {any:.3} |");
    }
}
