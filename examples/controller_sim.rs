//! The runtime controller (`capacity::Controller`) on a generated load
//! pattern: the batch size rises and falls (a triangle wave between 1 and
//! 96 requests, period 3000 steps) while the drafter's per-depth acceptance
//! switches between two regimes (0.85 and 0.45, every 2000 steps). Each
//! request's accepted length is drawn from the regime's chain: depth `d` is
//! accepted with the regime's probability once depth `d - 1` was.
//!
//! Compared on the same profile (data/latency-2d-example.csv, illustrative)
//! and `T_d = 1.5 ms`: plain decoding, a fixed length 3, the best fixed
//! schedule (per batch size, the length that is best for the two regimes
//! averaged), the controller, and the oracle that knows the regime.
//!
//! `cargo run --release --example controller_sim [-- docs/controller-sim.svg]`
//! (with a path: an SVG of the lengths chosen over the first 6000 steps).

use rand::{rngs::StdRng, Rng, SeedableRng};
use speclight::capacity::{
    BatchLatencyProfile, Controller, ControllerConfig, LatencyProfile, ScheduleCost,
};

const STEPS: u64 = 12_000;
const MAX_LEN: usize = 8;
const REGIMES: [f64; 2] = [0.85, 0.45];
const SEED: u64 = 14;

fn batch_size(step: u64) -> u64 {
    let phase = step % 3000;
    let up = if phase < 1500 { phase } else { 3000 - phase };
    1 + up * 95 / 1500
}

fn regime(step: u64) -> usize {
    ((step / 2000) % 2) as usize
}

/// `E[X](k)` of a chain with acceptance `a` per depth.
fn chain_expected(a: f64, k: usize) -> f64 {
    (1..=k as i32).map(|j| a.powi(j)).sum()
}

fn best_length(cost: &ScheduleCost, b: u64, expected: impl Fn(usize) -> f64) -> usize {
    (0..=MAX_LEN)
        .max_by(|&x, &y| {
            let tx = cost.tokens_per_second(b, expected(x), x, x as u32);
            let ty = cost.tokens_per_second(b, expected(y), y, y as u32);
            tx.total_cmp(&ty).then(y.cmp(&x))
        })
        .unwrap_or(0)
}

/// Runs the load with `policy(step, b) -> length`, feeding each step's
/// accepted lengths to `observe`. Returns system tokens per second.
fn run(
    cost: &ScheduleCost,
    mut policy: impl FnMut(u64, u64) -> usize,
    mut observe: impl FnMut(usize, &[u32]),
) -> f64 {
    let mut rng = StdRng::seed_from_u64(SEED);
    let (mut tokens, mut seconds) = (0.0, 0.0);
    let mut accepted = Vec::with_capacity(96);
    for step in 0..STEPS {
        let b = batch_size(step);
        let k = policy(step, b);
        let a = REGIMES[regime(step)];
        accepted.clear();
        for _ in 0..b {
            let x = (0..k).take_while(|_| rng.random::<f64>() < a).count();
            accepted.push(x as u32);
            tokens += 1.0 + x as f64;
        }
        seconds += cost.seconds(b, k, k as u32);
        observe(k, &accepted);
    }
    tokens / seconds
}

fn main() -> speclight::Result<()> {
    let profile =
        BatchLatencyProfile::from_csv_str(include_str!("../data/latency-2d-example.csv"))?;
    let cost = ScheduleCost::new(profile, LatencyProfile::constant(0.0015)?, 0.0)?;
    let mixed = |k: usize| REGIMES.iter().map(|&a| chain_expected(a, k)).sum::<f64>() / 2.0;
    let plain = run(&cost, |_, _| 0, |_, _| {});
    let fixed3 = run(&cost, |_, _| 3, |_, _| {});
    let fixed = run(&cost, |_, b| best_length(&cost, b, mixed), |_, _| {});
    let mut oracle_lengths = Vec::new();
    let oracle = run(
        &cost,
        |step, b| {
            let k = best_length(&cost, b, |k| chain_expected(REGIMES[regime(step)], k));
            oracle_lengths.push(k);
            k
        },
        |_, _| {},
    );
    let mut controller_lengths = Vec::new();
    let controller = std::cell::RefCell::new(Controller::new(
        cost.clone(),
        MAX_LEN,
        ControllerConfig::default(),
    )?);
    let adaptive = run(
        &cost,
        |_, b| {
            let k = controller.borrow_mut().next(b).capacity;
            controller_lengths.push(k);
            k
        },
        |k, accepted| {
            let _ = controller.borrow_mut().observe(k, accepted);
        },
    );
    println!("policy                         tokens/s   vs best fixed");
    for (name, tps) in [
        ("plain decoding", plain),
        ("fixed length 3", fixed3),
        ("best fixed schedule", fixed),
        ("controller (default config)", adaptive),
        ("oracle (knows the regime)", oracle),
    ] {
        println!("{name:<28} {tps:>11.1}   {:>6.3}", tps / fixed);
    }
    let same = controller_lengths
        .iter()
        .zip(&oracle_lengths)
        .filter(|(c, o)| c == o)
        .count();
    let near = controller_lengths
        .iter()
        .zip(&oracle_lengths)
        .filter(|(c, o)| c.abs_diff(**o) <= 1)
        .count();
    println!(
        "controller length = oracle's on {:.1}% of steps, within 1 on {:.1}%",
        100.0 * same as f64 / STEPS as f64,
        100.0 * near as f64 / STEPS as f64
    );
    if let Some(path) = std::env::args().nth(1) {
        let svg = plot(&controller_lengths, &oracle_lengths)
            .map_err(|e| speclight::Error::Io(format!("plot: {e}")))?;
        std::fs::write(&path, svg).map_err(|e| speclight::Error::Io(format!("{path}: {e}")))?;
    }
    Ok(())
}

/// Chain length per step (controller, oracle) and the batch size, first 6000 steps.
fn plot(controller: &[usize], oracle: &[usize]) -> Result<String, Box<dyn std::error::Error>> {
    use plotters::prelude::*;
    let steps = 6000usize.min(controller.len());
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (900, 420)).into_drawing_area();
        root.fill(&WHITE)?;
        let mut chart = ChartBuilder::on(&root)
            .caption(
                "Chain length chosen per step (acceptance 0.85 / 0.45, switching every 2000 steps)",
                ("sans-serif", 18),
            )
            .margin(15)
            .x_label_area_size(40)
            .y_label_area_size(50)
            .build_cartesian_2d(0f64..steps as f64, 0f64..(MAX_LEN as f64 + 0.5))?;
        chart
            .configure_mesh()
            .x_desc("step")
            .y_desc("chain length (batch size / 12 in grey)")
            .light_line_style(WHITE.mix(0.0))
            .draw()?;
        let grey = RGBColor(160, 160, 160);
        chart
            .draw_series(LineSeries::new(
                (0..steps)
                    .step_by(5)
                    .map(|t| (t as f64, batch_size(t as u64) as f64 / 12.0)),
                grey.stroke_width(1),
            ))?
            .label("batch size / 12")
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 20, y)], grey.stroke_width(1))
            });
        for (name, series, color) in [
            ("oracle", oracle, RGBColor(230, 120, 30)),
            ("controller", controller, RGBColor(30, 90, 200)),
        ] {
            chart
                .draw_series(LineSeries::new(
                    series[..steps]
                        .iter()
                        .enumerate()
                        .map(|(t, &k)| (t as f64, k as f64)),
                    color.stroke_width(2),
                ))?
                .label(name)
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2))
                });
        }
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .draw()?;
        root.present()?;
    }
    Ok(svg)
}
