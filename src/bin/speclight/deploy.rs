//! `speclight deploy`: the best configuration a server can run, ready to paste.

use crate::common::{emit, load_dist, load_profile, read_text};
use anyhow::{bail, Context, Result};
use clap::ValueEnum;
use speclight::capacity::{CostModel, DraftCost};
use speclight::deploy::{deploy, deploy_by_speed, Deployment, RankAcceptance, Server};
use speclight::tune::report_rank_acceptance;
use std::path::PathBuf;

/// Print the best configuration a server can deploy: vLLM's speculative_config (a level-uniform
/// tree), SGLang's three flags, TensorRT-LLM's YAML, or Medusa/EAGLE choices (ranks below 10).
///
/// The configuration goes to stdout; its value next to the unconstrained optimum to stderr.
///
/// Example: speclight deploy --server vllm --dist 0.634,0.108,0.057,0.034 --capacity 32
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The server to configure.
    #[arg(long, value_enum)]
    server: ServerArg,
    /// Acceptance by drafter rank (`0.634,0.108,...`), or any `--dist` spec of `speclight build`.
    #[arg(long, required_unless_present = "report", conflicts_with = "report")]
    dist: Option<String>,
    /// A `speclight tune` report.json: its per-depth acceptance matrix is used.
    #[arg(long)]
    report: Option<PathBuf>,
    /// Capacity P: draft tokens per verifier pass (with --latency: the largest to try;
    /// default the profile's largest token count).
    #[arg(long, required_unless_present = "latency")]
    capacity: Option<usize>,
    /// Depth limit D (with --report, at most the depths the trace supports).
    #[arg(long)]
    max_depth: Option<u32>,
    /// Verifier latency profile (CSV `draft_tokens,seconds` or JSON): choose the capacity by
    /// tokens per second.
    #[arg(long, requires = "draft_step")]
    latency: Option<PathBuf>,
    /// Drafter seconds per sequential draft step (with --latency).
    #[arg(long, requires = "latency")]
    draft_step: Option<f64>,
    /// Print JSON: server, config, expected_accepted, unconstrained_expected_accepted,
    /// constraint_cost, capacity, max_depth.
    #[arg(long)]
    json: bool,
    /// Write to this file instead of stdout (atomically).
    #[arg(long)]
    out: Option<PathBuf>,
}

/// Servers `deploy` writes for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum ServerArg {
    /// vLLM `speculative_config` (`num_speculative_tokens`, `speculative_token_tree`).
    Vllm,
    /// SGLang `--speculative-eagle-topk/-num-steps/-num-draft-tokens`.
    Sglang,
    /// TensorRT-LLM `speculative_config` YAML (`eagle_choices`).
    Trtllm,
    /// Medusa `medusa_choices`.
    Medusa,
    /// EAGLE (v1) tree choices.
    Eagle,
}

impl From<ServerArg> for Server {
    fn from(s: ServerArg) -> Self {
        match s {
            ServerArg::Vllm => Server::Vllm,
            ServerArg::Sglang => Server::Sglang,
            ServerArg::Trtllm => Server::Trtllm,
            ServerArg::Medusa => Server::Medusa,
            ServerArg::Eagle => Server::Eagle,
        }
    }
}

pub fn run(args: Args) -> Result<()> {
    let server = Server::from(args.server);
    let (acceptance, max_depth) = load_acceptance(&args)?;
    let deployment = match (&args.latency, args.draft_step) {
        (Some(path), Some(step)) => {
            let profile = load_profile("latency", path)?;
            let cost = CostModel::new(profile.clone(), DraftCost::PerStep(step), 0.0)
                .context("--draft-step")?;
            let max = match args.capacity {
                Some(n) => n,
                None => usize::try_from(profile.last_tokens()).unwrap_or(usize::MAX),
            };
            deploy_by_speed(server, &acceptance, &cost, max, max_depth)?
        }
        _ => match args.capacity {
            Some(n) => deploy(server, &acceptance, n, max_depth)?,
            None => bail!("give --capacity (or --latency and --draft-step)"),
        },
    };
    let text = if args.json {
        serde_json::to_string_pretty(&deployment)? + "\n"
    } else {
        deployment.paste.clone() + "\n"
    };
    emit(args.out.as_deref(), &text)?;
    if !args.json {
        eprintln!("{}", summary(&deployment));
    }
    Ok(())
}

/// The acceptance rows and the depth limit to search under.
fn load_acceptance(args: &Args) -> Result<(RankAcceptance, Option<u32>)> {
    if let Some(spec) = &args.dist {
        let dist = load_dist("dist", spec)?;
        return Ok((RankAcceptance::context_free(dist.probs())?, args.max_depth));
    }
    let Some(path) = &args.report else {
        bail!("give --dist or --report");
    };
    report_rank_acceptance(&read_text(path)?, args.max_depth)
        .with_context(|| path.display().to_string())
}

fn summary(d: &Deployment) -> String {
    let depth = d.max_depth.map_or("none".to_string(), |x| x.to_string());
    let speed = d
        .tokens_per_second
        .map_or(String::new(), |t| format!(", {t:.1} tokens/s predicted"));
    format!(
        "speclight: {}: E[accepted] = {:.4} vs {:.4} unconstrained ({:.1}% lost) at capacity {}, depth limit {depth}{speed}",
        d.server,
        d.expected_accepted,
        d.unconstrained_expected_accepted,
        100.0 * d.constraint_cost,
        d.capacity
    )
}
