//! `speclight build`: the optimal tree for a drafter, evaluated under a verifier.

use crate::common::{emit, load_dist, rank_paths, TreeFormat};
use anyhow::Result;
use speclight::format::{medusa_choices_string, to_dot, vllm_tree_string, TreeJson};
use speclight::{DraftTree, Evaluation, Evaluator, Iid, TreeBuilder};
use std::fmt::Write;
use std::path::PathBuf;

/// Build the optimal draft tree (the P most probable prefixes) for an i.i.d. drafter.
///
/// Example: speclight build --dist zipf:1.1:64 --capacity 64 --format text
/// (`--format medusa` / `vllm` print rank paths: rank 0 = the drafter's most probable token.)
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Drafter distribution: `0.5,0.3,0.2`, `zipf:S:N`, `geometric:R:N` or `@FILE.json`.
    #[arg(long)]
    dist: String,
    /// Capacity P: the number of draft tokens the verifier checks in one pass.
    #[arg(long)]
    capacity: usize,
    /// Depth limit D (none by default).
    #[arg(long)]
    max_depth: Option<u32>,
    /// Verifier distribution to evaluate the tree under (default: the drafter's).
    #[arg(long)]
    verifier: Option<String>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = TreeFormat::Text)]
    format: TreeFormat,
    /// Short for `--format json`.
    #[arg(long, conflicts_with = "format")]
    json: bool,
    /// Write to this file instead of stdout (atomically).
    #[arg(long)]
    out: Option<PathBuf>,
}

pub fn run(args: Args) -> Result<()> {
    let mut drafter = Iid::new(load_dist("dist", &args.dist)?);
    let mut verifier = match &args.verifier {
        Some(spec) => Iid::new(load_dist("verifier", spec)?),
        None => drafter.clone(),
    };
    let mut builder = TreeBuilder::new(args.capacity)?.with_max_depth(args.max_depth)?;
    let tree = builder.build(&mut drafter)?;
    let value = Evaluator::new().evaluate(tree, &mut verifier)?;
    let format = if args.json {
        TreeFormat::Json
    } else {
        args.format
    };
    let text = match format {
        TreeFormat::Json => {
            let mut doc = TreeJson::from_tree(tree, Some(args.capacity), args.max_depth);
            doc.expected_accepted = Some(value.expected_accepted);
            doc.accept_length_distribution = Some(value.accept_at_least.clone());
            serde_json::to_string_pretty(&doc)? + "\n"
        }
        TreeFormat::Dot => to_dot(tree),
        TreeFormat::Text => render_text(tree, &value, &args),
        // Ranks in the drafter's distribution: best-first adds a node's
        // children in that order, so sibling order by probability is the rank.
        TreeFormat::Medusa => medusa_choices_string(&rank_paths(tree)?) + "\n",
        TreeFormat::Vllm => vllm_tree_string(&rank_paths(tree)?) + "\n",
    };
    emit(args.out.as_deref(), &text)
}

fn render_text(tree: &DraftTree, value: &Evaluation, args: &Args) -> String {
    let mut s = String::new();
    let depth = args.max_depth.map_or("none".to_string(), |d| d.to_string());
    let under = if args.verifier.is_some() {
        "the verifier"
    } else {
        "the drafter"
    };
    let _ = writeln!(
        s,
        "optimal tree: {} nodes (capacity {}, depth limit {depth}), depth {}",
        tree.len(),
        args.capacity,
        tree.max_depth()
    );
    let _ = writeln!(
        s,
        "E[accepted tokens] = {:.4} under {under}; tokens per verifier pass = {:.4}",
        value.expected_accepted,
        value.expected_accepted + 1.0
    );
    let dist: Vec<String> = value
        .accept_at_least
        .iter()
        .enumerate()
        .map(|(k, p)| format!("{}:{p:.3}", k + 1))
        .collect();
    let _ = writeln!(s, "P(X >= k): {}", dist.join(" "));
    let _ = writeln!(
        s,
        "tree (token, drafter probability given parent, path probability):"
    );
    write_subtree(&mut s, tree, None, "");
    s
}

fn write_subtree(s: &mut String, tree: &DraftTree, parent: Option<usize>, indent: &str) {
    let kids: Vec<usize> = tree.children(parent).collect();
    for (i, &c) in kids.iter().enumerate() {
        let last = i + 1 == kids.len();
        let _ = writeln!(
            s,
            "{indent}{} {}  q={:.4}  path={:.4}",
            if last { "└─" } else { "├─" },
            tree.token(c),
            tree.logprob(c).exp(),
            tree.path_logprob(c).exp()
        );
        let next = format!("{indent}{}", if last { "   " } else { "│  " });
        write_subtree(s, tree, Some(c), &next);
    }
}
