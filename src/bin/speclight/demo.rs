//! `speclight demo`: the whole story on the bundled real text, with no
//! arguments. For each corpus it trains an n-gram verifier and drafter,
//! measures drafter and oracle trees at contexts the verifier really decodes,
//! sets them against the speed-of-light bounds, prints a table and writes an
//! SVG plot of `E[X]` against `ln P`.

use crate::common::emit;
use anyhow::{Context, Result};
use indicatif::{ProgressBar, ProgressStyle};
use plotters::prelude::*;
use speclight::bound::trace::{estimate, TraceBound, DEFAULT_BLOCKS};
use speclight::bound::{paper_bound, renewal_bound, renewal_bound_optimized};
use speclight::capacity::{CapacitySolver, CostModel, DraftCost, LatencyProfile};
use speclight::experiment::corpus::{load, Corpus};
use speclight::experiment::limits::check_workload_size;
use speclight::experiment::workload::{
    measure, solve_capacity, WorkloadConfig, WorkloadReport, WorkloadSolution,
};
use speclight::trace::to_trace;
use speclight::NgramLm;
use std::fmt::Write as _;
use std::path::PathBuf;

/// Run the demo on the bundled corpora: drafter tree, oracle tree and
/// speed-of-light bounds for capacities 1, 2, 4, ..., 1024.
///
/// Example: speclight demo --out speclight-demo.svg
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Where to write the SVG plot.
    #[arg(long, default_value = "speclight-demo.svg")]
    out: PathBuf,
    /// Prompts per corpus, taken evenly from its held-out text.
    #[arg(long, default_value_t = 64)]
    prompts: usize,
    /// Bytes sampled from the verifier after each prompt (the trace).
    #[arg(long, default_value_t = 512)]
    sequence_len: usize,
    /// Measure trees after every this many sampled bytes.
    #[arg(long, default_value_t = 128)]
    context_stride: usize,
    /// Largest capacity P (the table doubles up to it).
    #[arg(long, default_value_t = 1024)]
    max_capacity: usize,
    /// Verifier sampling temperature.
    #[arg(long, default_value_t = 1.0)]
    temperature: f64,
    /// Order of the verifier n-gram model (1 to 8).
    #[arg(long, default_value_t = 8)]
    verifier_order: usize,
    /// Order of the drafter n-gram model (1 to 8).
    #[arg(long, default_value_t = 3)]
    drafter_order: usize,
    /// The drafter keeps its this many most probable bytes.
    #[arg(long, default_value_t = 32)]
    drafter_top_k: usize,
    /// Seed of the verifier's sampling.
    #[arg(long, default_value_t = 2026)]
    seed: u64,
    /// Train on only the first this many bytes of each training part
    /// (default: all of it, about 0.9 MB).
    #[arg(long)]
    train_bytes: Option<usize>,
}

/// The bundled illustrative verifier latency profile (not a measurement).
const LATENCY_CSV: &str = include_str!("../../../data/latency-example.csv");
/// Drafter seconds per sequential draft step for the capacity solve (an assumption).
const DRAFT_STEP_SECONDS: f64 = 0.002;
/// Largest capacity and depth limit of the capacity solve.
const SOLVE_CAPACITY: usize = 256;
const SOLVE_DEPTH: u32 = 10;
/// Contexts per corpus the capacity solve averages over.
const SOLVE_CONTEXTS: usize = 16;

/// Legend name of the published bound (scaled out of the plot).
const PUBLISHED: &str = "published bound (leaves the top)";

/// One corpus's results, ready to print and plot.
struct CorpusResult {
    corpus: Corpus,
    report: WorkloadReport,
    capacity: WorkloadSolution,
    /// Trace speed of light per capacity (docs/THEORY.md 4d).
    light: Vec<TraceBound>,
    /// (B2), (B1) and the published bound per capacity, from `mu`, `mu2` (4b, 4c).
    b2: Vec<f64>,
    b1: Vec<f64>,
    paper: Vec<f64>,
}

/// A named curve over the capacities.
struct Curve {
    name: &'static str,
    color: RGBColor,
    values: Vec<f64>,
}

impl CorpusResult {
    fn curves(&self) -> Vec<Curve> {
        let r = &self.report;
        vec![
            Curve {
                name: "drafter tree",
                color: RGBColor(31, 119, 180),
                values: r.drafter.iter().map(|m| m.mean).collect(),
            },
            Curve {
                name: "oracle tree",
                color: RGBColor(214, 39, 40),
                values: r.oracle.iter().map(|m| m.mean).collect(),
            },
            Curve {
                name: "trace speed of light",
                color: RGBColor(0, 0, 0),
                values: self.light.iter().map(|b| b.estimate.mean).collect(),
            },
            Curve {
                name: "renewal bound B2",
                color: RGBColor(44, 160, 44),
                values: self.b2.clone(),
            },
            Curve {
                name: "renewal bound B1",
                color: RGBColor(148, 103, 189),
                values: self.b1.clone(),
            },
            Curve {
                name: PUBLISHED,
                color: RGBColor(255, 127, 14),
                values: self.paper.clone(),
            },
        ]
    }
}

pub fn run(args: Args) -> Result<()> {
    let sizes = (args.prompts, args.sequence_len, args.context_stride);
    check_workload_size(
        sizes.0,
        sizes.1,
        sizes.2,
        WorkloadConfig::default().trace_top_k,
    )
    .context("--prompts, --sequence-len, --context-stride")?;
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let config = WorkloadConfig {
        temperature: args.temperature,
        drafter_top_k: args.drafter_top_k,
        prompts: args.prompts,
        sequence_len: args.sequence_len,
        context_stride: args.context_stride,
        max_capacity: args.max_capacity,
        seed: args.seed,
        threads,
        ..WorkloadConfig::default()
    };
    let per_corpus = args
        .prompts
        .saturating_mul(args.sequence_len.div_ceil(args.context_stride.max(1)));
    let bar = ProgressBar::new((per_corpus * Corpus::ALL.len()) as u64);
    bar.set_style(
        ProgressStyle::with_template("{msg:>14} [{bar:40}] {pos}/{len} contexts, {elapsed}")
            .context("progress bar template")?
            .progress_chars("=> "),
    );
    let tick = || bar.inc(1);
    let latency = LatencyProfile::from_csv_str(LATENCY_CSV).context("data/latency-example.csv")?;
    let cost = CostModel::new(latency, DraftCost::PerStep(DRAFT_STEP_SECONDS), 0.0)?;
    let solver = CapacitySolver::new(
        cost,
        SOLVE_CAPACITY.min(args.max_capacity.max(1)),
        SOLVE_DEPTH,
    )?;
    let mut results = Vec::new();
    for corpus in Corpus::ALL {
        bar.set_message(corpus.name());
        let text = load(corpus)?;
        let keep = args.train_bytes.unwrap_or(usize::MAX).min(text.train.len());
        let train = &text.train[..keep];
        let verifier = NgramLm::train(train, args.verifier_order).context("--verifier-order")?;
        let drafter = NgramLm::train(train, args.drafter_order).context("--drafter-order")?;
        let report = measure(&verifier, &drafter, &text.heldout, &config, &tick)?;
        // The capacity solve on a few contexts spread over the prompts and
        // over the positions within a sequence (contexts are prompt-major).
        let all = &report.context_tokens;
        let per_prompt = args
            .sequence_len
            .div_ceil(args.context_stride.max(1))
            .max(1);
        let step = (all.len() / SOLVE_CONTEXTS).max(1);
        let solve_contexts: Vec<_> = (0..SOLVE_CONTEXTS.min(all.len()))
            .map(|i| all[(i * step + i % per_prompt).min(all.len() - 1)].clone())
            .collect();
        let capacity = solve_capacity(
            &verifier.model().with_temperature(args.temperature)?,
            &drafter.model().with_top_k(args.drafter_top_k)?,
            &solve_contexts,
            &solver,
        )?;
        let trace = to_trace(&report.sequences)?;
        // The estimator needs two blocks of starts in each half: fewer
        // blocks for a tiny trace (a small --prompts x --sequence-len).
        let blocks = DEFAULT_BLOCKS.min(trace.num_tokens() / 4).max(2);
        let light = report
            .capacities
            .iter()
            .map(|&p| estimate(&trace, p, blocks))
            .collect::<speclight::Result<Vec<_>>>()
            .context("trace speed of light")?;
        let closed = |f: fn(f64, f64, usize, Option<u32>) -> speclight::BoundValue| {
            let caps = report.capacities.iter();
            caps.map(|&p| f(report.mu, report.mu2, p, None).value())
                .collect::<Vec<f64>>()
        };
        let (b2, b1, paper) = (
            closed(renewal_bound_optimized),
            closed(renewal_bound),
            closed(paper_bound),
        );
        results.push(CorpusResult {
            corpus,
            report,
            capacity,
            light,
            b2,
            b1,
            paper,
        });
    }
    bar.finish_and_clear();
    print!("{}", table(&args, &results));
    emit(Some(&args.out), &plot(&args, &results)?)?;
    println!("wrote {}", args.out.display());
    Ok(())
}

/// The text report: one line saying what it is, then a table per corpus.
fn table(args: &Args, results: &[CorpusResult]) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "E[X] = draft tokens accepted per verifier pass with a tree of P draft tokens, on text an \
         order-{} byte n-gram verifier samples (T = {}) after held-out prompts: the order-{} \
         drafter's tree (what a server gets) <= the oracle tree (the best any drafter can do) <= \
         the trace speed of light (a bound from the sampled log-probabilities alone); B2 <= B1 <= \
         the published bound are closed forms from the verifier's entropy mu and mu2.",
        args.verifier_order, args.temperature, args.drafter_order
    );
    for res in results {
        let r = &res.report;
        let _ = writeln!(
            s,
            "\n{}: {} contexts, trace of {} tokens, mu = {:.3} nats, mu2 = {:.3}",
            res.corpus.name(),
            r.contexts,
            res.light.first().map_or(0, |b| b.tokens),
            r.mu,
            r.mu2
        );
        let _ = writeln!(
            s,
            "{:>6} {:>14} {:>14} {:>22} {:>7} {:>7} {:>7}",
            "P", "drafter", "oracle", "trace SoL [95% CI]", "B2", "B1", "paper"
        );
        for (i, &p) in r.capacities.iter().enumerate() {
            let light = &res.light[i].estimate;
            let _ = writeln!(
                s,
                "{:>6} {:>7.3} ±{:<5.3} {:>7.3} ±{:<5.3} {:>7.3} [{:>6.3},{:>6.3}] {:>7.3} {:>7.3} {:>7.3}",
                p,
                r.drafter[i].mean,
                r.drafter[i].std_error,
                r.oracle[i].mean,
                r.oracle[i].std_error,
                light.mean,
                light.ci_low,
                light.ci_high,
                res.b2[i],
                res.b1[i],
                res.paper[i]
            );
        }
        let off_end: usize = res
            .light
            .iter()
            .map(|b| b.windows_off_end)
            .max()
            .unwrap_or(0);
        let past_longest: usize = res
            .light
            .iter()
            .map(|b| b.windows_past_longest)
            .max()
            .unwrap_or(0);
        if off_end > 0 {
            let starts = res.light.first().map_or(1, |b| b.evaluation_starts.max(1));
            // Each level is averaged over the windows that reach it, so windows
            // that end early do not bias the estimate (docs/certificates.md).
            let _ = writeln!(
                s,
                "(up to {off_end} of {starts} trace windows ended with their sequence: each level \
                 of the speed of light is averaged over the windows that reach it{})",
                if past_longest > 0 {
                    format!("; {past_longest} still below the threshold at the longest sequence: record longer ones")
                } else {
                    String::new()
                }
            );
        }
        let c = &res.capacity;
        let _ = writeln!(
            s,
            "capacity solve (data/latency-example.csv, illustrative; {} ms per draft step; {} contexts): \
             best P = {}, depth limit {}, E[X] = {:.2}, {:.2}x plain decoding; speed of light {:.2}x at P = {}",
            DRAFT_STEP_SECONDS * 1e3,
            c.contexts,
            c.best.capacity,
            c.best.max_depth,
            c.best.expected_accepted,
            c.best.speedup,
            c.speed_of_light.speedup,
            c.speed_of_light.capacity
        );
    }
    s
}

/// The SVG: one panel per corpus, `E[X]` against `ln P`, every curve.
fn plot(args: &Args, results: &[CorpusResult]) -> Result<String> {
    let mut svg = String::new();
    {
        let width = 640 * results.len().max(1) as u32;
        let root = SVGBackend::with_string(&mut svg, (width, 480)).into_drawing_area();
        root.fill(&WHITE).map_err(plot_error)?;
        let panels = root.split_evenly((1, results.len().max(1)));
        let x_max = (args.max_capacity as f64).ln().max(1.0);
        for (panel, res) in panels.iter().zip(results) {
            let curves = res.curves();
            // The published bound grows far faster than the rest; scale to
            // the others and let it leave through the top.
            let y_max = curves
                .iter()
                .filter(|c| c.name != PUBLISHED)
                .flat_map(|c| c.values.iter().copied())
                .filter(|v| v.is_finite())
                .fold(1.0f64, f64::max)
                * 1.15;
            let mut chart = ChartBuilder::on(panel)
                .caption(
                    format!("{}: E[X] against ln P", res.corpus.name()),
                    ("sans-serif", 20),
                )
                .margin(12)
                .x_label_area_size(40)
                .y_label_area_size(48)
                .build_cartesian_2d(0.0..x_max, 0.0..y_max)
                .map_err(plot_error)?;
            chart
                .configure_mesh()
                .x_desc("ln P (P = draft tokens per verifier pass)")
                .y_desc("E[X] accepted tokens")
                .draw()
                .map_err(plot_error)?;
            let xs: Vec<f64> = res
                .report
                .capacities
                .iter()
                .map(|&p| (p as f64).ln())
                .collect();
            for curve in &curves {
                let color = curve.color;
                let points = clip_at(
                    xs.iter()
                        .copied()
                        .zip(curve.values.iter().copied())
                        .filter(|(_, y)| y.is_finite()),
                    y_max,
                );
                chart
                    .draw_series(LineSeries::new(points.clone(), color.stroke_width(2)))
                    .map_err(plot_error)?
                    .label(curve.name)
                    .legend(move |(x, y)| {
                        PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2))
                    });
                chart
                    .draw_series(
                        points
                            .into_iter()
                            .map(|p| Circle::new(p, 3, color.filled())),
                    )
                    .map_err(plot_error)?;
            }
            chart
                .configure_series_labels()
                .position(SeriesLabelPosition::UpperLeft)
                .background_style(WHITE.mix(0.8))
                .border_style(BLACK)
                .draw()
                .map_err(plot_error)?;
        }
        root.present().map_err(plot_error)?;
    }
    Ok(svg)
}

/// The points of a curve up to where it first leaves `y <= y_max`, ending
/// on the border (linear interpolation), so that no line leaves the chart.
fn clip_at(points: impl Iterator<Item = (f64, f64)>, y_max: f64) -> Vec<(f64, f64)> {
    let mut out: Vec<(f64, f64)> = Vec::new();
    for (x, y) in points {
        if y <= y_max {
            out.push((x, y));
            continue;
        }
        if let Some(&(x0, y0)) = out.last() {
            out.push((x0 + (x - x0) * (y_max - y0) / (y - y0), y_max));
        }
        break;
    }
    out
}

fn plot_error<E: std::fmt::Display>(e: E) -> anyhow::Error {
    anyhow::anyhow!("cannot draw the plot: {e}")
}
