//! Plumbing shared by the subcommands.

use anyhow::{Context, Result};
use clap::ValueEnum;
use speclight::{spec, TokenDist};
use std::io::Write;
use std::path::Path;

/// Output formats of commands that print a tree.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum TreeFormat {
    /// Human-readable indented tree with a summary.
    Text,
    /// The JSON schema of `speclight::format::TreeJson`.
    Json,
    /// Graphviz DOT.
    Dot,
    /// Medusa's `medusa_choices` (rank paths, JSON).
    Medusa,
    /// vLLM's `speculative_token_tree` (Python list of tuples).
    Vllm,
}

/// Rank paths of a tree for the Medusa and vLLM formats: a tree with drafter
/// probabilities ranks siblings by them (ties by token); one without (read
/// from rank paths) already has token = rank.
pub fn rank_paths(tree: &speclight::DraftTree) -> Result<Vec<Vec<u32>>> {
    use speclight::format::{to_rank_paths, RankRule};
    let rule = if tree.has_draft_probs() {
        RankRule::DraftOrder
    } else {
        RankRule::TokenIsRank
    };
    Ok(to_rank_paths(tree, rule)?)
}

/// Parses a `--dist` / `--verifier` spec, naming the flag in the error.
pub fn load_dist(flag: &str, spec_text: &str) -> Result<TokenDist> {
    spec::parse_dist(spec_text).with_context(|| format!("--{flag}"))
}

/// Reads a whole text file with a clear error for missing files and non-UTF-8 bytes.
pub fn read_text(path: &Path) -> Result<String> {
    let cannot = || format!("cannot read {}", path.display());
    let len = std::fs::metadata(path).with_context(cannot)?.len();
    speclight::input::check_size(len).with_context(|| path.display().to_string())?;
    let bytes = std::fs::read(path).with_context(cannot)?;
    let text = speclight::input::text(&bytes).with_context(|| path.display().to_string())?;
    Ok(text.to_string())
}

/// Reads and validates a tree file in the JSON schema of `speclight build
/// --format json`, naming the file in any error.
pub fn load_tree(path: &Path) -> Result<speclight::DraftTree> {
    let text = read_text(path)?;
    speclight::format::TreeJson::parse_tree(&text).with_context(|| path.display().to_string())
}

/// Writes `content` to `out`, or to stdout when `out` is `None`. A file is
/// written to a temporary sibling and renamed into place, so a failure never
/// leaves a truncated or half-written file behind.
pub fn emit(out: Option<&Path>, content: &str) -> Result<()> {
    match out {
        None => {
            let mut stdout = std::io::stdout().lock();
            stdout.write_all(content.as_bytes())?;
            stdout.flush()?;
        }
        Some(path) => {
            let dir = path
                .parent()
                .filter(|d| !d.as_os_str().is_empty())
                .unwrap_or(Path::new("."));
            let name = path.file_name().context("output path has no file name")?;
            let tmp = dir.join(format!(
                ".{}.tmp{}",
                name.to_string_lossy(),
                std::process::id()
            ));
            std::fs::write(&tmp, content)
                .with_context(|| format!("cannot write {}", tmp.display()))?;
            std::fs::rename(&tmp, path).with_context(|| {
                let _ = std::fs::remove_file(&tmp);
                format!("cannot move output into {}", path.display())
            })?;
        }
    }
    Ok(())
}
