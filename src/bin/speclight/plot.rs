//! `speclight plot`: SVG figures from a tune report or a tree file, and the
//! renderers `speclight tune` uses for its report.

use crate::common::{emit, read_text};
use anyhow::{bail, Context, Result};
use clap::ValueEnum;
use plotters::coord::combinators::WithKeyPoints;
use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;
use speclight::format::TreeJson;
use speclight::tune::{CapacityChoice, Policy, TuneReport};
use std::path::PathBuf;

/// Draw a figure as SVG: E[X] against capacity per policy with the speed of light, the
/// solver's speedup heat map over (capacity, depth), or a tree with nodes shaded by probability.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:
  speclight tune --trace trace.jsonl --latency data/latency-example.csv --draft-step 0.002 --out report/
  speclight plot --report report/report.json --figure curve --out curve.svg
  speclight plot --report report/report.json --figure speedup --out speedup.svg
  speclight build --dist 0.6,0.2,0.1 --capacity 20 --format json > tree.json
  speclight plot --tree tree.json --out tree.svg")]
pub struct Args {
    /// A `report.json` written by `speclight tune --out DIR`.
    #[arg(long, conflicts_with = "tree", required_unless_present = "tree")]
    report: Option<PathBuf>,
    /// Which figure of the report to draw.
    #[arg(long, value_enum, default_value_t = Figure::Curve)]
    figure: Figure,
    /// A tree in speclight's JSON format (`speclight build --format json`); nodes are shaded
    /// by their `draft_prob`.
    #[arg(long)]
    tree: Option<PathBuf>,
    /// Write the SVG here instead of stdout (atomically).
    #[arg(long)]
    out: Option<PathBuf>,
}

/// The figures of a tune report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Figure {
    /// E[X] against capacity for each policy, with the trace speed of light.
    Curve,
    /// The solver's speedup over (capacity, depth limit) as a heat map (needs --latency in tune).
    Speedup,
    /// The chosen tree, nodes shaded by predicted reach probability.
    Tree,
}

pub fn run(args: Args) -> Result<()> {
    let svg = match (&args.report, &args.tree) {
        (Some(path), _) => {
            let text = read_text(path)?;
            let report: TuneReport = serde_json::from_str(&text)
                .with_context(|| format!("{} is not a speclight tune report", path.display()))?;
            match args.figure {
                Figure::Curve => curve_svg(&report)?,
                Figure::Speedup => match &report.capacity_choice {
                    Some(choice) => speedup_svg(choice)?,
                    None => bail!(
                        "the report has no solver table: run speclight tune with --latency and --draft-step"
                    ),
                },
                Figure::Tree => chosen_tree_svg(&report)?,
            }
        }
        (None, Some(path)) => {
            let text = read_text(path)?;
            let tree: TreeJson = serde_json::from_str(&text)
                .with_context(|| format!("{} is not a speclight JSON tree", path.display()))?;
            tree.to_tree().with_context(|| path.display().to_string())?;
            let reach: Option<Vec<f64>> = tree.nodes.iter().map(|n| n.draft_prob).collect();
            let Some(reach) = reach else {
                bail!(
                    "{} has nodes without draft_prob: nothing to shade by",
                    path.display()
                )
            };
            tree_svg(
                &tree,
                &reach,
                &format!("Draft tree: {} nodes", tree.nodes.len()),
                "drafter path probability, log scale",
            )?
        }
        (None, None) => bail!("give --report or --tree"),
    };
    emit(args.out.as_deref(), &svg)
}

/// 1, 2, 4, ... up to `max`: tick marks for a log-2 capacity axis.
fn powers_of_two(max: usize) -> Vec<f64> {
    std::iter::successors(Some(1usize), |&p| p.checked_mul(2))
        .take_while(|&p| p <= max)
        .map(|p| p as f64)
        .collect()
}

/// A probability as a short label: `0.25`, `0.03`, `4e-3`.
fn prob_label(p: f64) -> String {
    if p >= 0.095 {
        format!("{p:.1}")
    } else if p >= 0.0095 {
        format!("{p:.2}")
    } else {
        format!("{p:.0e}")
    }
}

fn plot_err<E: std::fmt::Display>(e: E) -> anyhow::Error {
    anyhow::anyhow!("plotting failed: {e}")
}

/// One colour per policy, in the report's order.
const POLICY_COLORS: [RGBColor; 5] = [
    RGBColor(0, 90, 181),
    RGBColor(220, 50, 32),
    RGBColor(0, 150, 80),
    RGBColor(200, 120, 0),
    RGBColor(110, 60, 160),
];
const SOL_COLOR: RGBColor = RGBColor(40, 40, 40);

/// The report's chosen tree, shaded by reach (`tune`'s tree.svg and
/// `plot --figure tree`).
pub fn chosen_tree_svg(report: &TuneReport) -> Result<String> {
    tree_svg(
        &report.chosen.tree,
        &report.chosen.reach,
        &format!(
            "Chosen tree: capacity {}, depth limit {} (labels: ranks)",
            report.chosen.capacity, report.chosen.max_depth
        ),
        "reach pi(v), log scale",
    )
}

/// E[X] against capacity (log axis): predicted curves of the static policies
/// (lines), held-out measurements of every policy (points with 95% bars),
/// and the trace speed of light (dashed, with its interval).
pub fn curve_svg(report: &TuneReport) -> Result<String> {
    let max_cap = report.curves.first().map_or(1, |c| c.values.len()).max(2);
    let y_max = (curve_y_max(report) * 1.1).max(0.5);
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (900, 560)).into_drawing_area();
        root.fill(&WHITE).map_err(plot_err)?;
        let mut chart = ChartBuilder::on(&root)
            .caption(
                "Accepted draft tokens per iteration vs capacity",
                ("sans-serif", 22),
            )
            .margin(15)
            .x_label_area_size(50)
            .y_label_area_size(65)
            .build_cartesian_2d(
                (0.8f64..max_cap as f64 * 1.25)
                    .log_scale()
                    .with_key_points(powers_of_two(max_cap)),
                0f64..y_max,
            )
            .map_err(plot_err)?;
        chart
            .configure_mesh()
            .x_desc("capacity P: draft tokens per verifier pass (log scale)")
            .y_desc("E[X]: accepted draft tokens per iteration")
            .x_label_formatter(&|x| format!("{x:.0}"))
            .y_label_formatter(&|y| format!("{y:.1}"))
            .light_line_style(WHITE.mix(0.0))
            .draw()
            .map_err(plot_err)?;
        draw_policies(&mut chart, report)?;
        draw_chosen_and_speed_of_light(&mut chart, report)?;
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperLeft)
            .background_style(WHITE.mix(0.9))
            .border_style(BLACK.mix(0.4))
            .label_font(("sans-serif", 14))
            .draw()
            .map_err(plot_err)?;
        root.present().map_err(plot_err)?;
    }
    Ok(svg)
}

/// The chart of [`curve_svg`]: log capacity against `E[X]`.
type CurveChart<'a, 'b> =
    ChartContext<'a, SVGBackend<'b>, Cartesian2d<WithKeyPoints<LogCoord<f64>>, RangedCoordf64>>;

/// The largest value [`curve_svg`] draws: curves, measured upper ends and
/// the speed of light's.
fn curve_y_max(report: &TuneReport) -> f64 {
    let mut y_max: f64 = 0.0;
    for c in &report.curves {
        y_max = y_max.max(c.values.iter().copied().fold(0.0, f64::max));
    }
    for r in &report.results {
        for p in &r.policies {
            if let Some(m) = p.measured {
                y_max = y_max.max(m.accepted.hi);
            }
        }
    }
    for b in &report.speed_of_light {
        y_max = y_max.max(b.estimate.ci_high);
    }
    y_max
}

/// Each policy's predicted curve (static policies) and held-out points
/// with 95% bars, in the report's order and colours.
fn draw_policies(chart: &mut CurveChart<'_, '_>, report: &TuneReport) -> Result<()> {
    let policies: Vec<Policy> = report
        .results
        .first()
        .map(|r| r.policies.iter().map(|p| p.policy).collect())
        .unwrap_or_default();
    for (i, name) in policies.iter().enumerate() {
        let color = POLICY_COLORS[i % POLICY_COLORS.len()];
        let curve = report.curves.iter().find(|c| &c.policy == name);
        if let Some(curve) = curve {
            chart
                .draw_series(LineSeries::new(
                    curve
                        .values
                        .iter()
                        .enumerate()
                        .map(|(n, &v)| ((n + 1) as f64, v)),
                    color.stroke_width(2),
                ))
                .map_err(plot_err)?
                .label(format!("{name}: predicted (line), held-out (bars)"))
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2))
                });
        }
        // Measured points, nudged sideways so that bars do not overlap.
        let nudge = 1.0 + 0.035 * (i as f64 - 1.5);
        let points: Vec<(f64, f64, f64, f64)> = report
            .results
            .iter()
            .filter_map(|r| {
                let p = r.policies.get(i)?;
                let m = p.measured?;
                Some((
                    r.capacity as f64 * nudge,
                    m.accepted.mean,
                    m.accepted.lo,
                    m.accepted.hi,
                ))
            })
            .collect();
        chart
            .draw_series(
                points
                    .iter()
                    .map(|&(x, y, lo, hi)| ErrorBar::new_vertical(x, lo, y, hi, color.filled(), 8)),
            )
            .map_err(plot_err)?;
        let series = chart
            .draw_series(
                points
                    .iter()
                    .map(|&(x, y, _, _)| Circle::new((x, y), 4, color.filled())),
            )
            .map_err(plot_err)?;
        if curve.is_none() {
            series
                .label(format!("{name}: held-out (dynamic, no model prediction)"))
                .legend(move |(x, y)| Circle::new((x + 10, y), 4, color.filled()));
        }
    }
    Ok(())
}

/// A ring on the chosen tree's point, and the trace speed of light with
/// its interval.
fn draw_chosen_and_speed_of_light(
    chart: &mut CurveChart<'_, '_>,
    report: &TuneReport,
) -> Result<()> {
    // The chosen tree may use a smaller depth limit than the curves
    // (the solver's choice): ring its point and say so in the legend.
    if let Some(row) = report
        .results
        .iter()
        .find(|r| r.capacity == report.chosen.capacity)
    {
        if let Some(m) = row.policies.first().and_then(|p| p.measured) {
            let nudge = 1.0 + 0.035 * (0.0 - 1.5);
            let ring = POLICY_COLORS[0].stroke_width(2);
            chart
                .draw_series([Circle::new(
                    (row.capacity as f64 * nudge, m.accepted.mean),
                    9,
                    ring,
                )])
                .map_err(plot_err)?
                .label(format!(
                    "chosen tree: n={}, depth limit {}",
                    row.capacity, row.max_depth
                ))
                .legend(move |(x, y)| Circle::new((x + 10, y), 6, ring));
        }
    }
    if !report.speed_of_light.is_empty() {
        let pts: Vec<(f64, f64)> = report
            .speed_of_light
            .iter()
            .map(|b| (b.capacity as f64, b.estimate.mean))
            .collect();
        chart
            .draw_series(DashedLineSeries::new(
                pts.clone(),
                8,
                5,
                SOL_COLOR.stroke_width(2),
            ))
            .map_err(plot_err)?
            .label("speed of light from the trace (THEORY 4d), 95% bars")
            .legend(|(x, y)| {
                PathElement::new(vec![(x, y), (x + 20, y)], SOL_COLOR.stroke_width(2))
            });
        chart
            .draw_series(report.speed_of_light.iter().map(|b| {
                ErrorBar::new_vertical(
                    b.capacity as f64,
                    b.estimate.ci_low,
                    b.estimate.mean,
                    b.estimate.ci_high,
                    SOL_COLOR.filled(),
                    8,
                )
            }))
            .map_err(plot_err)?;
    }
    Ok(())
}

/// Viridis colour of `t` in `[0, 1]` (dark purple to yellow, readable in
/// grey scale), linear between five stops of the matplotlib map.
/// A colour bar: the viridis gradient from `lo` to `lo + span`, its value
/// axis labelled by `label` (the speed-up heat map and the tree share it).
fn draw_colour_bar(
    bar: &mut ChartContext<'_, SVGBackend<'_>, Cartesian2d<RangedCoordf64, RangedCoordf64>>,
    lo: f64,
    span: f64,
    label: &dyn Fn(&f64) -> String,
) -> Result<()> {
    bar.configure_mesh()
        .disable_mesh()
        .disable_x_axis()
        .y_label_formatter(label)
        .y_label_style(("sans-serif", 13))
        .draw()
        .map_err(plot_err)?;
    let steps = 64;
    bar.draw_series((0..steps).map(|i| {
        let a = lo + span * i as f64 / steps as f64;
        let b = lo + span * (i + 1) as f64 / steps as f64;
        Rectangle::new(
            [(0.0, a), (1.0, b)],
            viridis(i as f64 / (steps - 1) as f64).filled(),
        )
    }))
    .map_err(plot_err)?;
    Ok(())
}

fn viridis(t: f64) -> RGBColor {
    const STOPS: [(f64, f64, f64); 5] = [
        (68.0, 1.0, 84.0),
        (59.0, 82.0, 139.0),
        (33.0, 145.0, 140.0),
        (94.0, 201.0, 98.0),
        (253.0, 231.0, 37.0),
    ];
    let x = t.clamp(0.0, 1.0) * (STOPS.len() - 1) as f64;
    let i = (x.floor() as usize).min(STOPS.len() - 2);
    let f = x - i as f64;
    let (a, b) = (STOPS[i], STOPS[i + 1]);
    let mix = |p: f64, q: f64| (p + (q - p) * f).round() as u8;
    RGBColor(mix(a.0, b.0), mix(a.1, b.1), mix(a.2, b.2))
}

/// The solver's speedup over (capacity, depth limit) as a heat map, the
/// argmax circled, with a colour bar.
pub fn speedup_svg(choice: &CapacityChoice) -> Result<String> {
    let table = &choice.table;
    if table.is_empty() {
        bail!("the solver table is empty");
    }
    let max_n = table.iter().map(|c| c.capacity).max().unwrap_or(1);
    let max_d = table.iter().map(|c| c.max_depth).max().unwrap_or(1);
    let lo = table
        .iter()
        .map(|c| c.speedup)
        .fold(f64::INFINITY, f64::min);
    let hi = table.iter().map(|c| c.speedup).fold(0.0, f64::max);
    let span = (hi - lo).max(1e-12);
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (900, 520)).into_drawing_area();
        root.fill(&WHITE).map_err(plot_err)?;
        let (left, right) = root.split_horizontally(790);
        let mut chart = ChartBuilder::on(&left)
            .caption(
                format!(
                    "Predicted speedup over plain decoding (best: capacity {}, depth {}, {:.2}x; grey: no tree)",
                    choice.capacity, choice.max_depth, choice.speedup
                ),
                ("sans-serif", 20),
            )
            .margin(15)
            .x_label_area_size(50)
            .y_label_area_size(55)
            .build_cartesian_2d(0.5f64..max_n as f64 + 0.5, 0.5f64..max_d as f64 + 0.5)
            .map_err(plot_err)?;
        chart
            .configure_mesh()
            .disable_mesh()
            .x_desc("capacity n: draft tokens per verifier pass")
            .y_desc("depth limit D")
            .x_label_formatter(&|x| format!("{x:.0}"))
            .y_label_formatter(&|y| format!("{y:.0}"))
            .draw()
            .map_err(plot_err)?;
        // Grey where no tree of n nodes fits within depth D.
        chart
            .draw_series([Rectangle::new(
                [(0.5, 0.5), (max_n as f64 + 0.5, f64::from(max_d) + 0.5)],
                RGBColor(225, 225, 225).filled(),
            )])
            .map_err(plot_err)?;
        chart
            .draw_series(table.iter().map(|c| {
                let (x, y) = (c.capacity as f64, f64::from(c.max_depth));
                Rectangle::new(
                    [(x - 0.5, y - 0.5), (x + 0.5, y + 0.5)],
                    viridis((c.speedup - lo) / span).filled(),
                )
            }))
            .map_err(plot_err)?;
        let best = (choice.capacity as f64, f64::from(choice.max_depth));
        chart
            .draw_series([
                Circle::new(best, 7, WHITE.stroke_width(3)),
                Circle::new(best, 7, RED.stroke_width(1)),
            ])
            .map_err(plot_err)?;
        let mut bar = ChartBuilder::on(&right)
            .margin_top(50)
            .margin_bottom(65)
            .margin_right(10)
            .y_label_area_size(60)
            .caption("speedup", ("sans-serif", 14))
            .build_cartesian_2d(0f64..1.0, lo..hi.max(lo + 1e-9))
            .map_err(plot_err)?;
        draw_colour_bar(&mut bar, lo, span, &|y| format!("{y:.2}x"))?;
        root.present().map_err(plot_err)?;
    }
    Ok(svg)
}

/// Horizontal positions of a tree's nodes: leaves at `0, 1, 2, ...` in
/// depth-first order, every parent centred over its children. Returns the
/// nodes' positions, the root's, and the number of leaves (at least 1).
/// Iterative (a deep chain does not overflow the stack); O(nodes) time and
/// memory.
fn tree_layout(tree: &TreeJson) -> (Vec<f64>, f64, f64) {
    let n = tree.nodes.len();
    let mut children = vec![Vec::new(); n + 1];
    for node in &tree.nodes {
        children[node.parent.map_or(0, |p| p + 1)].push(node.id);
    }
    let mut x = vec![0.0f64; n];
    let mut next_leaf = 0.0;
    let mut root_x = 0.0;
    // (slot, children visited); slot 0 is the root, `i + 1` is node `i`.
    let mut stack = vec![(0usize, 0usize)];
    while let Some(top) = stack.last_mut() {
        let (slot, visited) = *top;
        if let Some(&c) = children[slot].get(visited) {
            top.1 += 1;
            stack.push((c + 1, 0));
            continue;
        }
        stack.pop();
        let kids = &children[slot];
        let centre =
            (!kids.is_empty()).then(|| kids.iter().map(|&c| x[c]).sum::<f64>() / kids.len() as f64);
        if slot == 0 {
            root_x = centre.unwrap_or(0.0);
        } else {
            x[slot - 1] = centre.unwrap_or_else(|| {
                let v = next_leaf;
                next_leaf += 1.0;
                v
            });
        }
    }
    (x, root_x, next_leaf.max(1.0))
}

/// A tree drawn top-down (root at the top, leaves spread evenly), nodes
/// shaded by `reach` on a log scale, edge labels are ranks/tokens.
pub fn tree_svg(tree: &TreeJson, reach: &[f64], title: &str, shade: &str) -> Result<String> {
    let n = tree.nodes.len();
    if n == 0 || reach.len() != n {
        bail!("the tree has {n} nodes but {} probabilities", reach.len());
    }
    let (x, root_x, leaves) = tree_layout(tree);
    let max_depth = tree.nodes.iter().map(|n| n.depth).max().unwrap_or(1);
    let positive: Vec<f64> = reach.iter().copied().filter(|&p| p > 0.0).collect();
    let lmin = positive.iter().copied().fold(1.0, f64::min).log10();
    let lmax = positive.iter().copied().fold(0.0, f64::max).log10();
    let lspan = (lmax - lmin).max(1e-9);
    let shade_of = |p: f64| {
        if p > 0.0 {
            viridis((p.log10() - lmin) / lspan)
        } else {
            RGBColor(200, 200, 200)
        }
    };
    let width = (160.0 + leaves * 26.0).clamp(700.0, 2400.0) as u32;
    let height = (140 + max_depth * 70).clamp(320, 1400);
    let radius = if n > 200 { 4 } else { 9 };
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (width, height)).into_drawing_area();
        root.fill(&WHITE).map_err(plot_err)?;
        let (left, right) = root.split_horizontally(width - 150);
        let mut chart = ChartBuilder::on(&left)
            .caption(title, ("sans-serif", 20))
            .margin(20)
            .y_label_area_size(55)
            .build_cartesian_2d(-0.7f64..leaves - 0.3, -(f64::from(max_depth)) - 0.5..0.5)
            .map_err(plot_err)?;
        chart
            .configure_mesh()
            .disable_mesh()
            .disable_x_axis()
            .y_desc("depth")
            .y_labels(max_depth as usize + 1)
            .y_label_formatter(&|y| format!("{:.0}", y.abs()))
            .draw()
            .map_err(plot_err)?;
        let pos = |i: usize| (x[i], -f64::from(tree.nodes[i].depth));
        chart
            .draw_series(tree.nodes.iter().map(|node| {
                let from = node.parent.map_or((root_x, 0.0), pos);
                PathElement::new(vec![from, pos(node.id)], BLACK.mix(0.35).stroke_width(1))
            }))
            .map_err(plot_err)?;
        chart
            .draw_series([Circle::new((root_x, 0.0), radius, BLACK.filled())])
            .map_err(plot_err)?;
        chart
            .draw_series(
                tree.nodes.iter().map(|node| {
                    Circle::new(pos(node.id), radius, shade_of(reach[node.id]).filled())
                }),
            )
            .map_err(plot_err)?;
        chart
            .draw_series(
                tree.nodes
                    .iter()
                    .map(|node| Circle::new(pos(node.id), radius, BLACK.mix(0.6).stroke_width(1))),
            )
            .map_err(plot_err)?;
        if n <= 120 {
            chart
                .draw_series(tree.nodes.iter().map(|node| {
                    let (px, py) = pos(node.id);
                    Text::new(
                        node.token.to_string(),
                        (px + 0.18, py + 0.28),
                        ("sans-serif", 12).into_font().color(&BLACK),
                    )
                }))
                .map_err(plot_err)?;
        }
        let mut bar = ChartBuilder::on(&right)
            .margin_top(60)
            .margin_bottom(30)
            .margin_right(40)
            .y_label_area_size(50)
            .caption(shade, ("sans-serif", 12))
            .build_cartesian_2d(0f64..1.0, lmin..lmin + lspan)
            .map_err(plot_err)?;
        draw_colour_bar(&mut bar, lmin, lspan, &|y| prob_label(10f64.powf(*y)))?;
        root.present().map_err(plot_err)?;
    }
    Ok(svg)
}
