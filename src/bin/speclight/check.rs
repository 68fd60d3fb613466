//! `speclight check`: certify a given tree against the speed of light, and
//! certify that it is the best-first tree of its drafter.

use crate::common::{load_dist, TreeUnderVerifier};
use anyhow::Result;
use speclight::bound::{
    certify_best_first, Certificate, CheckOptions, CheckReport, DualOptions, Optimality,
    DEFAULT_NODE_LIMIT,
};
use speclight::Iid;
use std::io::Write;

/// Exit code when the bound chain fails (a tree above the capacity, or a bug).
pub const EXIT_NOT_CERTIFIED: i32 = 3;
/// Exit code when the chain holds but the tree is not the best-first tree of
/// its drafter.
pub const EXIT_NOT_OPTIMAL: i32 = 4;

/// Check a tree (the JSON of `speclight build --format json`) against the
/// certificate chain E[X](T) <= OPT(P) = U(lambda*) <= B2 <= B1 <= paper bound,
/// and check that it is optimal for its drafter (min pi over the tree >= max
/// pi over its boundary), with its gap to OPT(P) under the verifier.
///
/// Exit codes: 0 both verdicts hold; 1 bad input; 2 bad arguments; 3 the
/// bound chain fails; 4 the chain holds but the tree is not optimal for its
/// drafter.
///
/// Example: speclight check --tree tree.json --verifier 0.5,0.3,0.2 --capacity 64
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    input: TreeUnderVerifier,
    /// Drafter distribution the tree was built from (default: the verifier).
    #[arg(long)]
    drafter: Option<String>,
    /// Capacity P the tree must fit.
    #[arg(long)]
    capacity: usize,
    /// Depth limit D (none by default).
    #[arg(long)]
    max_depth: Option<u32>,
    /// Most nodes one dual enumeration may visit before giving up.
    #[arg(long, default_value_t = DEFAULT_NODE_LIMIT)]
    node_limit: usize,
    /// Print the certificate as JSON.
    #[arg(long)]
    json: bool,
}

pub fn run(args: Args) -> Result<()> {
    let (tree, verifier) = args.input.load()?;
    let mut verifier = Iid::new(verifier);
    let mut drafter = match &args.drafter {
        Some(spec) => Iid::new(load_dist("drafter", spec)?),
        None => verifier.clone(),
    };
    let opts = CheckOptions {
        dual: DualOptions::default()
            .with_max_depth(args.max_depth)
            .with_node_limit(args.node_limit),
        ..CheckOptions::default()
    };
    let cert = Certificate::compute(&tree, &mut verifier, args.capacity, &opts)?;
    let optimality = certify_best_first(&tree, &mut drafter, args.capacity, args.max_depth)?;
    let report = CheckReport::new(&cert, optimality);
    let gap = report.gap_to_opt;
    let who = if args.drafter.is_some() {
        "drafter"
    } else {
        "drafter (the verifier)"
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{cert}{}", render_optimality(&optimality, gap, who));
    }
    let _ = std::io::stdout().flush();
    if let Err(e) = cert.verdict() {
        eprintln!("speclight: error: not certified: {e}");
        std::process::exit(EXIT_NOT_CERTIFIED);
    }
    if !optimality.optimal {
        eprintln!(
            "speclight: error: not optimal: the tree is not the best-first tree of its {who} \
             (gap to OPT(P) under the verifier {gap:.6})"
        );
        std::process::exit(EXIT_NOT_OPTIMAL);
    }
    Ok(())
}

/// The second verdict: best-first optimality under the drafter, and the gap
/// to `OPT(P)` under the verifier.
fn render_optimality(o: &Optimality, gap: f64, who: &str) -> String {
    let full = if o.tree_nodes >= o.capacity {
        format!("{} nodes = P", o.tree_nodes)
    } else {
        format!("{} nodes < P = {}", o.tree_nodes, o.capacity)
    };
    format!(
        "best-first under the {who}: {full}, min ln pi over the tree = {:.6}, \
         max ln pi over its boundary = {:.6}\n\
         gap to OPT(P) under the verifier: {gap:.6}\n\
         optimal for the {who}: {}\n",
        o.min_tree_ln_pi,
        o.max_boundary_ln_pi,
        if o.optimal { "yes" } else { "no" }
    )
}
