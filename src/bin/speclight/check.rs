//! `speclight check`: certify a given tree against the speed of light.

use crate::common::{load_dist, load_tree};
use anyhow::{Context, Result};
use speclight::bound::{Certificate, CheckOptions, DualOptions, DEFAULT_NODE_LIMIT};
use speclight::Iid;
use std::fmt::Write;
use std::path::PathBuf;

/// Check a tree (the JSON of `speclight build --format json`) against the
/// certificate chain E[X](T) <= OPT(P) = U(lambda*) <= B2 <= B1 <= paper bound.
/// Exits 0 only when every link holds.
///
/// Example: speclight check --tree tree.json --verifier 0.5,0.3,0.2 --capacity 64
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Tree file in the JSON schema of `speclight build --format json`.
    #[arg(long)]
    tree: PathBuf,
    /// Verifier distribution: `0.5,0.3,0.2`, `zipf:S:N`, `geometric:R:N` or `@FILE.json`.
    #[arg(long)]
    verifier: String,
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
    let tree = load_tree(&args.tree)?;
    let mut verifier = Iid::new(load_dist("verifier", &args.verifier)?);
    let opts = CheckOptions {
        dual: DualOptions::default()
            .with_max_depth(args.max_depth)
            .with_node_limit(args.node_limit),
        ..CheckOptions::default()
    };
    let cert = Certificate::compute(&tree, &mut verifier, args.capacity, &opts)?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&cert)?);
    } else {
        print!("{}", render(&cert));
    }
    cert.verdict().context("not certified")?;
    Ok(())
}

/// The certificate as text: every number, every link, the verdict.
pub fn render(cert: &Certificate) -> String {
    let mut s = String::new();
    let depth = cert.max_depth.map_or("none".into(), |d| d.to_string());
    let _ = writeln!(s, "capacity P = {}, depth limit D = {depth}", cert.capacity);
    match (cert.entropy, cert.second_log_moment) {
        (Some(mu), Some(mu2)) => {
            let _ = writeln!(
                s,
                "verifier entropy mu = {mu:.6} nats, second log-moment mu2 = {mu2:.6}"
            );
        }
        _ => {
            let _ = writeln!(
                s,
                "closed forms not applicable (they need a complete i.i.d. verifier distribution)"
            );
        }
    }
    let _ = writeln!(
        s,
        "tree: {} nodes, E[X](T) = {:.6}",
        cert.tree_nodes, cert.tree_expected_accepted
    );
    let _ = writeln!(s, "OPT(P)          = {:.6}", cert.optimal_expected_accepted);
    let _ = writeln!(
        s,
        "U(lambda*)      = {:.6}  (lambda* = {:.6e})",
        cert.dual_certificate, cert.lambda
    );
    let rows = [
        ("B2 (renewal)   ", cert.renewal_bound_optimized),
        ("B1 (renewal)   ", cert.renewal_bound),
        ("paper bound    ", cert.paper_bound),
    ];
    for (name, b) in rows {
        if let Some(b) = b {
            match b.closed_form() {
                Some(c) if c > b.cap() => {
                    let _ = writeln!(s, "{name} = {:.6}  (closed form {c:.6}, capped)", b.value());
                }
                Some(_) => {
                    let _ = writeln!(s, "{name} = {:.6}", b.value());
                }
                None => {
                    let _ = writeln!(
                        s,
                        "{name} = {:.6}  (entropy 0: no finite closed form, trivial cap min(P, D))",
                        b.value()
                    );
                }
            }
        }
    }
    let _ = writeln!(s, "chain (relative tolerance {:e}):", cert.tolerance);
    for l in &cert.links {
        let _ = writeln!(
            s,
            "  [{}] {}: {:.9} vs {:.9}",
            if l.holds { "ok" } else { "FAIL" },
            l.link,
            l.left,
            l.right
        );
    }
    let _ = writeln!(
        s,
        "certified: {}",
        if cert.certified { "yes" } else { "no" }
    );
    s
}
