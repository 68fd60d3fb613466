//! `speclight tune`: choose a static draft tree from a paired trace, measure
//! it and the baselines on held-out sequences, and write a report.

use crate::common::{emit, read_text};
use crate::plot::{curve_svg, speedup_svg, tree_svg};
use anyhow::{bail, Context, Result};
use indicatif::{ProgressBar, ProgressStyle};
use speclight::capacity::{CostModel, DraftCost, LatencyProfile};
use speclight::format::medusa_choices_string;
use speclight::tune::{tune, validate, Split, TuneConfig, TuneReport};
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
    #[arg(long)]
    trace: PathBuf,
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
    /// Depth limit for trees (default: every depth the training data support).
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

pub fn run(args: Args) -> Result<()> {
    if args.validate {
        let report = validate(open_trace(&args.trace, "validating")?, 100)?;
        let mut out = String::new();
        for (line, reason) in &report.errors {
            let _ = writeln!(out, "{}:{line}: {reason}", args.trace.display());
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
                args.trace.display(),
                report.bad_lines
            );
        }
        return Ok(());
    }
    let cost = match (&args.latency, args.draft_step) {
        (Some(path), Some(step)) => {
            let text = read_text(path)?;
            let profile = if path
                .extension()
                .is_some_and(|e| e.eq_ignore_ascii_case("json"))
            {
                LatencyProfile::from_json_str(&text)
            } else {
                LatencyProfile::from_csv_str(&text)
            }
            .with_context(|| format!("--latency {}", path.display()))?;
            Some(
                CostModel::new(profile, DraftCost::PerStep(step), args.overhead)
                    .context("cost model")?,
            )
        }
        _ => None,
    };
    let config = TuneConfig {
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
    };
    let mut pass = 0;
    let report = tune(
        || {
            pass += 1;
            let label = if pass == 1 {
                "pass 1/2: estimating"
            } else {
                "pass 2/2: measuring"
            };
            open_trace(&args.trace, label)
        },
        &config,
    )
    .with_context(|| args.trace.display().to_string())?;
    let markdown = render_markdown(&report, &args);
    if let Some(dir) = &args.out {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        emit(
            Some(&dir.join("report.json")),
            &(serde_json::to_string_pretty(&report)? + "\n"),
        )?;
        emit(Some(&dir.join("curve.svg")), &curve_svg(&report)?)?;
        if let Some(choice) = &report.capacity_choice {
            emit(Some(&dir.join("speedup.svg")), &speedup_svg(choice)?)?;
        }
        emit(
            Some(&dir.join("tree.svg")),
            &tree_svg(
                &report.chosen.tree,
                &report.chosen.reach,
                &format!(
                    "Chosen tree: capacity {}, depth limit {} (labels: ranks)",
                    report.chosen.capacity, report.chosen.max_depth
                ),
                "reach pi(v), log scale",
            )?,
        )?;
        emit(
            Some(&dir.join("tree.json")),
            &(serde_json::to_string_pretty(&report.chosen.tree)? + "\n"),
        )?;
        emit(
            Some(&dir.join("tree.vllm.txt")),
            &(report.chosen.vllm.clone() + "\n"),
        )?;
        emit(
            Some(&dir.join("tree.medusa.json")),
            &(medusa_choices_string(&report.chosen.rank_paths) + "\n"),
        )?;
        emit(Some(&dir.join("report.md")), &markdown)?;
    }
    if args.json {
        emit(None, &(serde_json::to_string_pretty(&report)? + "\n"))
    } else {
        emit(None, &markdown)
    }
}

/// `mean [lo, hi]` of tokens per iteration (1 + accepted).
fn tokens(mean: f64, lo: f64, hi: f64) -> String {
    format!("{:.3} [{:.3}, {:.3}]", 1.0 + mean, 1.0 + lo, 1.0 + hi)
}

fn render_markdown(r: &TuneReport, args: &Args) -> String {
    let mut o = String::new();
    let _ = writeln!(o, "# speclight tune report\n");
    let _ = writeln!(
        o,
        "Trace `{}`: {} training groups ({} records), {} held-out groups measured{}; {}. Tokens per iteration = 1 + accepted draft tokens; intervals are 95%.\n",
        args.trace.display(),
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
    if c.vllm.len() <= 400 {
        let _ = writeln!(o, "\nvLLM `speculative_token_tree`: `{}`", c.vllm);
    }
    if args.out.is_some() {
        let _ = writeln!(
            o,
            "\nFiles: `tree.vllm.txt` (vLLM), `tree.medusa.json` (Medusa choices), `tree.json` (speclight JSON), `report.json` (everything here; `speclight plot --report` redraws the figures)."
        );
    }
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
    let _ = writeln!(
        o,
        "\n## Policies at equal capacity (held-out tokens per iteration)\n"
    );
    let names: Vec<&str> = r
        .results
        .first()
        .map(|x| x.policies.iter().map(|p| p.policy.as_str()).collect())
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
    o
}
