//! `speclight build`: the optimal tree for a drafter, evaluated under a verifier.

use crate::common::{emit, load_dist, rank_paths, TreeFormat};
use anyhow::{bail, Result};
use speclight::deploy::{best_level_uniform, level_uniform_tree, RankAcceptance, TopK};
use speclight::format::{
    check_total_path_length, is_level_uniform, medusa_choices_string, to_dot, vllm_tree_string,
    TreeJson,
};
use speclight::NextTokenModel;
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
    /// Build the best level-uniform tree (every node of a level has the same children, ranks
    /// 0..c): the only trees vLLM drafts as written. At most 1024 nodes.
    #[arg(long)]
    level_uniform: bool,
    /// No child of rank K or more (Medusa and EAGLE read a fixed top-10).
    /// `--format medusa` builds under --max-rank 10 unless given.
    #[arg(long)]
    max_rank: Option<usize>,
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
    let format = if args.json {
        TreeFormat::Json
    } else {
        args.format
    };
    let max_rank = match (args.max_rank, format) {
        (None, TreeFormat::Medusa) if !args.level_uniform => {
            eprintln!("speclight: --format medusa builds under --max-rank 10 (Medusa reads a fixed top-10); pass --max-rank to change it");
            Some(10)
        }
        (k, _) => k,
    };
    let mut builder = TreeBuilder::new(args.capacity)?.with_max_depth(args.max_depth)?;
    let constraint = Constraint::of(args.level_uniform, max_rank);
    let tree = match constraint {
        Constraint::None => builder.build_owned(&mut drafter)?,
        Constraint::LevelUniform(k) => {
            let probs = drafter.next(&[])?.probs();
            let row = &probs[..probs.len().min(k.unwrap_or(usize::MAX))];
            let acceptance = RankAcceptance::context_free(row)?;
            let best = best_level_uniform(&acceptance, args.capacity, args.max_depth)?;
            level_uniform_tree(&mut drafter, &best.branching)?
        }
        Constraint::MaxRank(k) => builder.build_owned(&mut TopK::new(&mut drafter, k)?)?,
    };
    let mut evaluator = Evaluator::new();
    let value = evaluator.evaluate(&tree, &mut verifier)?;
    let text = match format {
        TreeFormat::Json => {
            let mut doc = TreeJson::from_tree(&tree, Some(args.capacity), args.max_depth);
            doc.expected_accepted = Some(value.expected_accepted);
            doc.accept_length_distribution = Some(value.accept_at_least.clone());
            serde_json::to_string_pretty(&doc)? + "\n"
        }
        TreeFormat::Dot => to_dot(&tree),
        TreeFormat::Text => {
            check_total_path_length(&tree)?;
            let mut text = render_text(&tree, &value, &args, constraint.label());
            if constraint != Constraint::None {
                let optimum = builder.build(&mut drafter)?;
                let best = evaluator
                    .evaluate(optimum, &mut verifier)?
                    .expected_accepted;
                let lost = if best > 0.0 {
                    100.0 * (1.0 - value.expected_accepted / best)
                } else {
                    0.0
                };
                let _ = writeln!(
                    text,
                    "unconstrained optimum: E[accepted tokens] = {best:.4}; the constraint costs {lost:.1}%"
                );
            }
            text
        }
        // Ranks in the drafter's distribution: best-first adds a node's
        // children in that order, so sibling order by probability is the rank.
        TreeFormat::Medusa => medusa_choices_string(&rank_paths(&tree)?) + "\n",
        TreeFormat::Vllm => {
            let paths = rank_paths(&tree)?;
            if !is_level_uniform(&paths) {
                bail!("this tree is not level-uniform, so vLLM would not draft it as written (its EAGLE proposer drafts the same top-ranked children below every node of a level): add --level-uniform");
            }
            vllm_tree_string(&paths) + "\n"
        }
    };
    emit(args.out.as_deref(), &text)
}

/// The server constraint a build is under.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Constraint {
    None,
    /// Level-uniform, with ranks below the limit if one is given.
    LevelUniform(Option<usize>),
    MaxRank(usize),
}

impl Constraint {
    fn of(level_uniform: bool, max_rank: Option<usize>) -> Self {
        match (level_uniform, max_rank) {
            (true, k) => Constraint::LevelUniform(k),
            (false, Some(k)) => Constraint::MaxRank(k),
            (false, None) => Constraint::None,
        }
    }

    fn label(self) -> String {
        match self {
            Constraint::None => "optimal tree".into(),
            Constraint::LevelUniform(None) => "optimal level-uniform tree".into(),
            Constraint::LevelUniform(Some(k)) => {
                format!("optimal level-uniform tree with ranks < {k}")
            }
            Constraint::MaxRank(k) => format!("optimal tree with ranks < {k}"),
        }
    }
}

fn render_text(tree: &DraftTree, value: &Evaluation, args: &Args, label: String) -> String {
    let mut s = String::new();
    let depth = args.max_depth.map_or("none".to_string(), |d| d.to_string());
    let under = if args.verifier.is_some() {
        "the verifier"
    } else {
        "the drafter"
    };
    let _ = writeln!(
        s,
        "{label}: {} nodes (capacity {}, depth limit {depth}), depth {}",
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
    write_tree(&mut s, tree);
    s
}

/// Writes the tree below the root, one line per node in depth-first order,
/// each prefixed by its ancestors' guide columns. Iterative (an explicit
/// stack), so any depth renders; O(P + output size) time, O(P) besides the
/// output. Callers bound the output with `check_total_path_length`.
fn write_tree(s: &mut String, tree: &DraftTree) {
    let children = children_lists(tree);
    // Pending nodes: (index, last child of its parent?, length of its parent's
    // prefix in `indent`). A node's ancestors' guides are never rewritten
    // while its subtree is pending, so truncating restores its prefix.
    let mut stack: Vec<(usize, bool, usize)> = Vec::new();
    let mut indent = String::new();
    push_children(&mut stack, &children[0], 0);
    while let Some((node, last, prefix)) = stack.pop() {
        indent.truncate(prefix);
        let _ = writeln!(
            s,
            "{indent}{} {}  q={:.4}  path={:.4}",
            if last { "└─" } else { "├─" },
            tree.token(node),
            tree.logprob(node).exp(),
            tree.path_logprob(node).exp()
        );
        indent.push_str(if last { "   " } else { "│  " });
        push_children(&mut stack, &children[node + 1], indent.len());
    }
}

/// Pushes `kids` so that the first is popped first, marking the last one.
fn push_children(stack: &mut Vec<(usize, bool, usize)>, kids: &[usize], prefix: usize) {
    for (i, &c) in kids.iter().enumerate().rev() {
        stack.push((c, i + 1 == kids.len(), prefix));
    }
}

/// Children of the root (slot 0) and of every node `i` (slot `i + 1`), in
/// arena order. O(P).
fn children_lists(tree: &DraftTree) -> Vec<Vec<usize>> {
    let mut children = vec![Vec::new(); tree.len() + 1];
    for i in 0..tree.len() {
        children[tree.parent(i).map_or(0, |p| p + 1)].push(i);
    }
    children
}

#[cfg(test)]
mod tests {
    use super::*;
    use speclight::{TokenDist, TreeBuilder};

    /// The renderer before issue 12 item 12, one stack frame per level: the
    /// reference the iterative one must equal.
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

    #[test]
    fn iterative_rendering_equals_the_recursive_one() {
        let dists: [&[f64]; 5] = [
            &[0.5, 0.3, 0.2],
            &[0.9, 0.1],
            &[0.4, 0.2, 0.1, 0.1, 0.05, 0.05, 0.05, 0.05],
            &[0.25, 0.25, 0.25, 0.25],
            &[1.0],
        ];
        for probs in dists {
            for capacity in [1, 2, 7, 40, 300] {
                let dist = TokenDist::from_probs(probs).unwrap();
                let mut model = speclight::Iid::new(dist);
                let tree = TreeBuilder::new(capacity)
                    .unwrap()
                    .build_owned(&mut model)
                    .unwrap();
                let (mut want, mut got) = (String::new(), String::new());
                write_subtree(&mut want, &tree, None, "");
                write_tree(&mut got, &tree);
                assert_eq!(got, want, "{probs:?} at P = {capacity}");
            }
        }
        let mut empty = String::new();
        write_tree(&mut empty, &DraftTree::new());
        assert!(empty.is_empty());
    }

    /// Issue 12, item 12: `build --dist 1 --capacity 100000` overflowed the
    /// stack because the renderer recursed once per level. A 3000-deep chain
    /// now renders on a 64 KiB stack (the recursive renderer needs well over
    /// 20 bytes per level).
    #[test]
    fn deep_chains_render_on_a_small_stack() {
        let depth = 3000;
        let mut certain =
            speclight::Iid::new(TokenDist::from_probs(&[1.0]).expect("a valid distribution"));
        let tree = TreeBuilder::new(depth)
            .unwrap()
            .build_owned(&mut certain)
            .unwrap();
        let text = std::thread::Builder::new()
            .stack_size(64 << 10)
            .spawn(move || {
                let mut s = String::new();
                write_tree(&mut s, &tree);
                s
            })
            .unwrap()
            .join()
            .unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), depth);
        let deepest = format!("{}└─ 0  q=1.0000  path=1.0000", "   ".repeat(depth - 1));
        assert_eq!(lines[depth - 1], deepest);
    }
}
