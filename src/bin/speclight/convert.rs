//! `speclight convert`: a tree from one interchange format to another.

use crate::common::{emit, rank_paths, read_text};
use anyhow::{bail, Context, Result};
use clap::ValueEnum;
use speclight::format::{
    from_rank_paths, is_level_uniform, medusa_choices_string, parse_medusa_choices,
    parse_vllm_tree, to_dot, vllm_tree_string, TreeJson,
};
use std::path::PathBuf;

/// Convert a tree between Medusa choices, vLLM's speculative_token_tree, JSON and DOT.
///
/// Rank paths become a tree whose token is the rank. A JSON tree with drafter
/// probabilities becomes rank paths by sibling order of probability (ties by
/// token); one without them is taken as token = rank.
///
/// Example: speclight convert --from vllm --to medusa tree.txt
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Input format.
    #[arg(long, value_enum)]
    from: InputFormat,
    /// Output format.
    #[arg(long, value_enum)]
    to: OutputFormat,
    /// Input file.
    file: PathBuf,
    /// Refuse ranks at or above this top-k / vocabulary size (rank-path inputs; for
    /// `--to medusa` every output rank too, default 10: Medusa reads a fixed top-10).
    #[arg(long)]
    top_k: Option<usize>,
    /// Write to this file instead of stdout (atomically).
    #[arg(long)]
    out: Option<PathBuf>,
}

/// Formats `convert` reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum InputFormat {
    /// Medusa's `medusa_choices` (JSON list of rank paths).
    Medusa,
    /// vLLM's `speculative_token_tree` (Python list of tuples).
    Vllm,
    /// The JSON schema of `speclight build --format json`.
    Json,
}

/// Formats `convert` writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum OutputFormat {
    /// Medusa's `medusa_choices`.
    Medusa,
    /// vLLM's `speculative_token_tree`.
    Vllm,
    /// Graphviz DOT.
    Dot,
    /// The JSON schema of `speclight build --format json`.
    Json,
}

/// Medusa's `TOPK` (FasterDecoding/Medusa `medusa/model/utils.py`).
const MEDUSA_TOP_K: usize = 10;

pub fn run(args: Args) -> Result<()> {
    let text = read_text(&args.file)?;
    let name = args.file.display().to_string();
    let tree = match args.from {
        InputFormat::Medusa => from_rank_paths(&parse_medusa_choices(&text)?, args.top_k),
        InputFormat::Vllm => from_rank_paths(&parse_vllm_tree(&text)?, args.top_k),
        InputFormat::Json => TreeJson::parse_tree(&text),
    }
    .with_context(|| name.clone())?;
    let output = match args.to {
        OutputFormat::Medusa => {
            let paths = rank_paths(&tree)?;
            let limit = args.top_k.unwrap_or(MEDUSA_TOP_K);
            if let Some(path) = paths
                .iter()
                .find(|p| p.iter().any(|&r| r as usize >= limit))
            {
                let rank = path.iter().copied().max().unwrap_or(0);
                bail!("{name}: rank {rank} in path {path:?} is not below --top-k {limit}: Medusa reads only its top {limit} candidates per node (rebuild with speclight build --max-rank {limit})");
            }
            medusa_choices_string(&paths) + "\n"
        }
        OutputFormat::Vllm => {
            let paths = rank_paths(&tree)?;
            if !is_level_uniform(&paths) {
                bail!("{name}: the tree is not level-uniform, so vLLM would not draft it as written (its EAGLE proposer drafts the same top-ranked children below every node of a level): rebuild it with speclight build --level-uniform");
            }
            vllm_tree_string(&paths) + "\n"
        }
        OutputFormat::Dot => to_dot(&tree),
        OutputFormat::Json => {
            serde_json::to_string_pretty(&TreeJson::from_tree(&tree, None, None))? + "\n"
        }
    };
    emit(args.out.as_deref(), &output)
}
