//! The CLI's `--json` reports as Python dicts: `solve`, `tune`, `deploy` and
//! `certificate` (the `bound --dist` and `check` reports). Each calls the
//! library functions its subcommand calls (`src/bin/speclight/*.rs`) and
//! serialises the same serde value the CLI prints to the same JSON text,
//! read back by Python's `json.loads`: the keys keep the CLI's order and a
//! non-finite float is `None` as the CLI's `null`. (`pythonize` would keep
//! NaN as NaN, and its route through `serde_json::Value` sorts the keys.)

use std::fs::File;
use std::io::BufReader;
use std::path::PathBuf;

use pyo3::prelude::*;
use serde::Serialize;
use speclight::bound::{
    certify_best_first, Certificate, CheckOptions, CheckReport, DualOptions, Moments,
    DEFAULT_NODE_LIMIT,
};
use speclight::capacity::{CapacitySolver, CostModel, DraftCost};
use speclight::deploy::{deploy as deploy_within, deploy_by_speed, RankAcceptance, Server};
use speclight::tune::{
    report_rank_acceptance, tune as tune_trace, DeployedReport, Split, TuneConfig,
};
use speclight::{Iid, TreeBuilder};

use crate::arrays::{dist_from_logprobs, Floats};
use crate::errors::{value_error, OrValueError};
use crate::sources::latency_profile;
use crate::tree::PyTree;

/// `value` as the Python object of its JSON text (dicts, lists, floats,
/// ...): `json.loads` of exactly the text the CLI prints. O(size of the text).
fn to_python<'py, T: Serialize>(py: Python<'py>, value: &T) -> PyResult<Bound<'py, PyAny>> {
    let text = serde_json::to_string(value).map_err(|e| value_error(e.to_string()))?;
    py.import("json")?.call_method1("loads", (text,))
}

/// The drafter's cost: seconds per sequential step, or a profile by width.
fn draft_cost(step: Option<f64>, profile: Option<&Bound<'_, PyAny>>) -> PyResult<DraftCost> {
    match (profile, step) {
        (Some(_), Some(_)) => Err(value_error("give draft_step or draft_profile, not both")),
        (Some(p), None) => Ok(DraftCost::ByWidth(latency_profile(p, "draft_profile")?)),
        (None, Some(t)) => Ok(DraftCost::PerStep(t)),
        (None, None) => Err(value_error("give draft_step or draft_profile")),
    }
}

/// `speclight solve --json`: the capacity and depth limit that maximise
/// tokens per second for a context-free drafter (`logprobs`), optionally
/// valued under another verifier, and the speed of light (docs/THEORY.md
/// section 5). `latency`: a CSV/JSON path or `(draft_tokens, seconds)`.
/// O(max_capacity x max_depth) table rows, each one build.
#[pyfunction]
#[pyo3(signature = (logprobs, latency, draft_step = None, draft_profile = None, overhead = 0.0,
                    max_depth = 16, max_capacity = None, verifier_logprobs = None, tokens = None))]
#[allow(clippy::too_many_arguments)] // the CLI's flags, one keyword each
pub fn solve<'py>(
    py: Python<'py>,
    logprobs: Floats,
    latency: &Bound<'py, PyAny>,
    draft_step: Option<f64>,
    draft_profile: Option<&Bound<'py, PyAny>>,
    overhead: f64,
    max_depth: u32,
    max_capacity: Option<usize>,
    verifier_logprobs: Option<Floats>,
    tokens: Option<Vec<i64>>,
) -> PyResult<Bound<'py, PyAny>> {
    let mut drafter = Iid::new(dist_from_logprobs(logprobs, tokens.clone())?);
    let verifier_t = latency_profile(latency, "latency")?;
    let draft = draft_cost(draft_step, draft_profile)?;
    let max_capacity = match max_capacity {
        Some(n) => n,
        None => match usize::try_from(verifier_t.last_tokens()) {
            Ok(n) if n > 0 => n,
            _ => {
                return Err(value_error(
                    "the latency profile has no point above 0 tokens: give max_capacity",
                ))
            }
        },
    };
    let cost = CostModel::new(verifier_t, draft, overhead).or_value_error()?;
    let solver = CapacitySolver::new(cost, max_capacity, max_depth).or_value_error()?;
    let mut verifier = match verifier_logprobs {
        Some(lp) => Some(Iid::new(dist_from_logprobs(lp, tokens)?)),
        None => None,
    };
    let solution = py
        .detach(|| match verifier.as_mut() {
            Some(v) => solver.solve_with_verifier(&mut drafter, v),
            None => solver.solve(&mut drafter),
        })
        .or_value_error()?;
    to_python(py, &solution)
}

/// `speclight deploy --json`: the best configuration `server` ("vllm",
/// "sglang", "trtllm", "medusa", "eagle") can run, next to the
/// unconstrained optimum. The acceptance is `logprobs` (log of the
/// acceptance of the drafter's rank-k candidate, as `--dist`) or the
/// per-depth matrix of a `speclight tune` `report` (path). With `latency`
/// and `draft_step` the capacity (at most `capacity`) is chosen by tokens
/// per second. Complexity: docs/deploy.md ("Exactness and limits").
#[pyfunction]
#[pyo3(signature = (server, logprobs = None, capacity = None, max_depth = None, report = None,
                    latency = None, draft_step = None))]
#[allow(clippy::too_many_arguments)] // the CLI's flags, one keyword each
pub fn deploy<'py>(
    py: Python<'py>,
    server: &str,
    logprobs: Option<Floats>,
    capacity: Option<usize>,
    max_depth: Option<u32>,
    report: Option<PathBuf>,
    latency: Option<&Bound<'py, PyAny>>,
    draft_step: Option<f64>,
) -> PyResult<Bound<'py, PyAny>> {
    let server: Server = server.parse().or_value_error()?;
    let (acceptance, max_depth) = match (logprobs, report) {
        (Some(lp), None) => {
            let dist = dist_from_logprobs(lp, None)?;
            (
                RankAcceptance::context_free(dist.probs()).or_value_error()?,
                max_depth,
            )
        }
        (None, Some(path)) => report_acceptance(&path, max_depth)?,
        _ => return Err(value_error("give logprobs or report, not both")),
    };
    let deployment = match (latency, draft_step) {
        (Some(latency), Some(step)) => {
            let profile = latency_profile(latency, "latency")?;
            let max = capacity
                .unwrap_or_else(|| usize::try_from(profile.last_tokens()).unwrap_or(usize::MAX));
            let cost = CostModel::new(profile, DraftCost::PerStep(step), 0.0).or_value_error()?;
            py.detach(|| deploy_by_speed(server, &acceptance, &cost, max, max_depth))
        }
        (None, None) => match capacity {
            Some(n) => py.detach(|| deploy_within(server, &acceptance, n, max_depth)),
            None => return Err(value_error("give capacity (or latency and draft_step)")),
        },
        _ => return Err(value_error("latency and draft_step go together")),
    }
    .or_value_error()?;
    to_python(py, &deployment)
}

/// The per-depth acceptance of a tune report and the depth limit it
/// supports, as `speclight deploy --report` reads them.
fn report_acceptance(
    path: &PathBuf,
    max_depth: Option<u32>,
) -> PyResult<(RankAcceptance, Option<u32>)> {
    let text = speclight::input::read_text_limited(path).or_value_error()?;
    report_rank_acceptance(&text, max_depth)
        .map_err(|e| value_error(format!("{}: {e}", path.display())))
}

/// `speclight tune --trace PATH --json`: a static tree tuned on a paired
/// trace (JSONL), measured against the baselines on held-out sequences.
/// Two passes over the file; O(records + capacities x trees).
#[pyfunction]
#[pyo3(signature = (trace, capacities = vec![1, 2, 4, 8, 16, 32, 64], holdout = 0.2,
                    heldout_from_seq = None, split_salt = 0, max_depth = None, kary = 2,
                    eagle_top_k = 8, eagle_depth = 6, latency = None, draft_step = None,
                    overhead = 0.0))]
#[allow(clippy::too_many_arguments)] // the CLI's flags, one keyword each
pub fn tune<'py>(
    py: Python<'py>,
    trace: PathBuf,
    capacities: Vec<usize>,
    holdout: f64,
    heldout_from_seq: Option<u64>,
    split_salt: u64,
    max_depth: Option<u32>,
    kary: u32,
    eagle_top_k: usize,
    eagle_depth: u32,
    latency: Option<&Bound<'py, PyAny>>,
    draft_step: Option<f64>,
    overhead: f64,
) -> PyResult<Bound<'py, PyAny>> {
    let cost = match (latency, draft_step) {
        (Some(l), Some(step)) => Some(
            CostModel::new(
                latency_profile(l, "latency")?,
                DraftCost::PerStep(step),
                overhead,
            )
            .or_value_error()?,
        ),
        (None, None) => None,
        _ => return Err(value_error("latency and draft_step go together")),
    };
    let config = TuneConfig {
        capacities,
        split: match heldout_from_seq {
            Some(first) => Split::from_seq(first),
            None => Split::new(holdout, split_salt).or_value_error()?,
        },
        max_depth,
        kary,
        eagle_top_k,
        eagle_depth,
        cost,
        ..Default::default()
    };
    let name = trace.display().to_string();
    let open = || {
        File::open(&trace)
            .map(|f| BufReader::with_capacity(1 << 16, f))
            .map_err(|e| speclight::Error::Io(format!("cannot open {name}: {e}")))
    };
    let report = py
        .detach(|| tune_trace(open, &config))
        .map_err(|e| match e {
            speclight::Error::Io(message) => value_error(message),
            e => value_error(format!("{name}: {e}")),
        })?;
    let deployments = report.deployments().or_value_error()?;
    to_python(
        py,
        &DeployedReport {
            report: &report,
            deploy: &deployments,
        },
    )
}

/// The certificate chain `E[X](T) <= OPT(P) = U(lambda*) <= B2 <= B1 <=
/// paper` under a context-free verifier (`logprobs`, docs/THEORY.md
/// section 4). Without `tree`: the best-first tree's, as `speclight bound
/// --dist --json` prints it. With `tree`: that tree's, plus whether it is
/// the best-first tree of its drafter (`drafter_logprobs`, default the
/// verifier), as `speclight check --json` prints it. The CLI exits non-zero
/// when a verdict fails; here the dict carries them (`certified`,
/// `optimality.optimal`). O(P log P) for the tree plus the dual
/// enumeration (at most `node_limit` nodes).
#[pyfunction]
#[pyo3(signature = (logprobs, capacity, max_depth = None, tree = None, drafter_logprobs = None,
                    node_limit = DEFAULT_NODE_LIMIT, tokens = None))]
#[allow(clippy::too_many_arguments)] // the CLI's flags, one keyword each
pub fn certificate<'py>(
    py: Python<'py>,
    logprobs: Floats,
    capacity: usize,
    max_depth: Option<u32>,
    tree: Option<&PyTree>,
    drafter_logprobs: Option<Floats>,
    node_limit: usize,
    tokens: Option<Vec<i64>>,
) -> PyResult<Bound<'py, PyAny>> {
    let dist = dist_from_logprobs(logprobs, tokens.clone())?;
    let opts = CheckOptions {
        dual: DualOptions::default()
            .with_max_depth(max_depth)
            .with_node_limit(node_limit),
        ..CheckOptions::default()
    };
    match tree {
        None => bound_report(py, dist, capacity, max_depth, &opts),
        Some(tree) => {
            let drafter = match drafter_logprobs {
                Some(lp) => Some(dist_from_logprobs(lp, tokens)?),
                None => None,
            };
            check_report(py, &tree.tree, dist, drafter, capacity, max_depth, &opts)
        }
    }
}

/// `speclight bound --dist --json`, field for field (`src/bin/speclight/bound.rs`).
fn bound_report<'py>(
    py: Python<'py>,
    dist: speclight::TokenDist,
    capacity: usize,
    max_depth: Option<u32>,
    opts: &CheckOptions,
) -> PyResult<Bound<'py, PyAny>> {
    let moments = Moments::of_dist(&dist).or_value_error()?;
    let mut verifier = Iid::new(dist);
    let cert = py
        .detach(|| {
            let mut builder = TreeBuilder::new(capacity)?.with_max_depth(max_depth)?;
            let tree = builder.build(&mut verifier)?;
            Certificate::compute(tree, &mut verifier, capacity, opts)
        })
        .or_value_error()?;
    to_python(py, &cert.report_json(&moments))
}

fn check_report<'py>(
    py: Python<'py>,
    tree: &speclight::DraftTree,
    verifier: speclight::TokenDist,
    drafter: Option<speclight::TokenDist>,
    capacity: usize,
    max_depth: Option<u32>,
    opts: &CheckOptions,
) -> PyResult<Bound<'py, PyAny>> {
    let mut verifier = Iid::new(verifier);
    let mut drafter = drafter.map_or_else(|| verifier.clone(), Iid::new);
    let (cert, optimality) = py
        .detach(|| {
            let cert = Certificate::compute(tree, &mut verifier, capacity, opts)?;
            let optimality = certify_best_first(tree, &mut drafter, capacity, max_depth)?;
            Ok::<_, speclight::Error>((cert, optimality))
        })
        .or_value_error()?;
    to_python(py, &CheckReport::new(&cert, optimality))
}
