//! Plumbing shared by the subcommands.

use anyhow::{Context, Result};
use clap::ValueEnum;
use speclight::{parse_dist, TokenDist};
use std::io::Write;
use std::path::{Path, PathBuf};

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
    parse_dist(spec_text).with_context(|| format!("--{flag}"))
}

/// `--max-capacity`, or by default the profile's largest measured token
/// count (`solve` and its `--batch-sizes` schedule).
pub fn max_capacity_or_profile(given: Option<usize>, last_tokens: u64) -> Result<usize> {
    match given {
        Some(n) => Ok(n),
        None => match usize::try_from(last_tokens) {
            Ok(n) if n > 0 => Ok(n),
            _ => anyhow::bail!(
                "the latency profile has no point above 0 tokens: give --max-capacity"
            ),
        },
    }
}

/// Reads a whole text file with a clear error for missing files and non-UTF-8 bytes.
pub fn read_text(path: &Path) -> Result<String> {
    // At most the input limit is read, whatever size the file claims (a
    // character device claims 0). An I/O error already names the path.
    speclight::input::read_text_limited(path).map_err(|e| match e {
        speclight::Error::Io(message) => anyhow::anyhow!(message),
        e => anyhow::Error::new(e).context(path.display().to_string()),
    })
}

/// Reads a latency profile (`--latency`, `--draft-profile`), naming the flag
/// and the file in any error that is not about reading it.
pub fn load_profile(flag: &str, path: &Path) -> Result<speclight::capacity::LatencyProfile> {
    load_with(flag, path, |p| {
        speclight::capacity::LatencyProfile::from_path(p)
    })
}

/// A file read by `load`, with the flag and the file named in any error that
/// is not about reading it (an I/O error names the path already).
pub fn load_with<T>(
    flag: &str,
    path: &Path,
    load: impl FnOnce(&Path) -> speclight::Result<T>,
) -> Result<T> {
    load(path).map_err(|e| match e {
        speclight::Error::Io(message) => anyhow::anyhow!(message),
        e => anyhow::Error::new(e).context(format!("--{flag} {}", path.display())),
    })
}

/// Reads and validates a tree file in the JSON schema of `speclight build
/// --format json`, naming the file in any error.
pub fn load_tree(path: &Path) -> Result<speclight::DraftTree> {
    let name = || path.display().to_string();
    // The text (140 MB for 2^20 nodes) is dropped before the arena is built.
    let doc = speclight::format::TreeJson::parse(&read_text(path)?).with_context(name)?;
    doc.to_tree().with_context(name)
}

/// The `--tree` and `--verifier` pair of the commands that judge a given
/// tree (`eval`, `check`), shared through `#[command(flatten)]`.
#[derive(Debug, clap::Args)]
pub struct TreeUnderVerifier {
    /// Tree file in the JSON schema of `speclight build --format json`.
    #[arg(long)]
    pub tree: PathBuf,
    /// Verifier distribution: `0.5,0.3,0.2`, `zipf:S:N`, `geometric:R:N` or `@FILE.json`.
    #[arg(long)]
    pub verifier: String,
}

impl TreeUnderVerifier {
    /// Reads the tree file and parses the verifier, naming the file or the flag in any error.
    pub fn load(&self) -> Result<(speclight::DraftTree, TokenDist)> {
        Ok((
            load_tree(&self.tree)?,
            load_dist("verifier", &self.verifier)?,
        ))
    }
}

/// Writes `content` to `out`, or to stdout when `out` is `None`.
///
/// A regular file (new or existing) is written to a temporary sibling and
/// renamed into place, so a failure never leaves a truncated or half-written
/// file behind. Symbolic links are followed, and the rename happens at the
/// real target, so the link survives. Anything else (a character device such
/// as `/dev/null`, a FIFO, a socket) and a file-descriptor alias
/// (`/dev/stdout`, `/dev/fd/N`, `/proc/...`) is written through in place:
/// renaming over it would replace the device or detach the reader.
pub fn emit(out: Option<&Path>, content: &str) -> Result<()> {
    emit_with(out, |w| Ok(w.write_all(content.as_bytes())?))
}

/// [`emit`] for output produced piece by piece: `write` streams into a
/// buffered writer (stdout, the special file, or the temporary sibling that
/// is renamed into place only once `write` has succeeded).
pub fn emit_with(
    out: Option<&Path>,
    write: impl FnOnce(&mut dyn Write) -> Result<()>,
) -> Result<()> {
    match out {
        None => {
            let mut stdout = std::io::BufWriter::new(std::io::stdout().lock());
            write(&mut stdout)?;
            stdout.flush()?;
            Ok(())
        }
        Some(path) => {
            let cannot = || format!("cannot write {}", path.display());
            match resolve_output(path).with_context(cannot)? {
                Output::InPlace(target) => write_in_place(&target, write, cannot),
                Output::Atomic(target) => write_atomically(&target, write),
            }
        }
    }
}

/// Symbolic links followed before giving up, as Linux's `ELOOP` limit.
const MAX_SYMLINK_HOPS: usize = 40;

/// Where and how [`emit`] writes a file.
enum Output {
    /// A special file or descriptor alias: open it and write.
    InPlace(PathBuf),
    /// A regular file, existing or not: temporary sibling, then rename.
    Atomic(PathBuf),
}

/// Follows `path`'s symbolic links (each hop's directory canonicalised) to
/// the file that is really written. A target that does not exist yet (a
/// dangling link) is created where the link points. O(hops) system calls.
fn resolve_output(path: &Path) -> std::io::Result<Output> {
    let mut current = path.to_path_buf();
    for _ in 0..MAX_SYMLINK_HOPS {
        current = with_canonical_parent(&current)?;
        // The kernel's magic links (/proc/self/fd/1 and everything that
        // reaches it: /dev/stdout, /dev/fd/1) name an open descriptor, not a
        // path that can be replaced.
        if current.starts_with("/proc") {
            return Ok(Output::InPlace(current));
        }
        match std::fs::symlink_metadata(&current) {
            Ok(meta) if meta.file_type().is_symlink() => {
                let target = std::fs::read_link(&current)?;
                current = match current.parent() {
                    Some(dir) => dir.join(target),
                    None => target,
                };
            }
            Ok(meta) if meta.is_file() || meta.is_dir() => return Ok(Output::Atomic(current)),
            Ok(_) => return Ok(Output::InPlace(current)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Ok(Output::Atomic(current))
            }
            Err(e) => return Err(e),
        }
    }
    Err(std::io::Error::other("too many levels of symbolic links"))
}

/// `path` with its directory made absolute and free of links (`.` for a bare name).
fn with_canonical_parent(path: &Path) -> std::io::Result<PathBuf> {
    let name = path
        .file_name()
        .ok_or_else(|| std::io::Error::other("output path has no file name"))?;
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    Ok(std::fs::canonicalize(dir)?.join(name))
}

/// Opens an existing special file without creating, truncating or replacing it.
fn write_in_place(
    target: &Path,
    write: impl FnOnce(&mut dyn Write) -> Result<()>,
    cannot: impl Fn() -> String,
) -> Result<()> {
    let file = std::fs::OpenOptions::new()
        .write(true)
        .open(target)
        .with_context(&cannot)?;
    let mut file = std::io::BufWriter::with_capacity(1 << 16, file);
    write(&mut file)?;
    file.flush().with_context(cannot)
}

/// Writes a temporary sibling of `target` and renames it into place, keeping
/// an existing file's permissions. On any error the sibling is removed and
/// `target` is untouched.
fn write_atomically(target: &Path, write: impl FnOnce(&mut dyn Write) -> Result<()>) -> Result<()> {
    let dir = target.parent().unwrap_or(Path::new("."));
    let name = target.file_name().context("output path has no file name")?;
    let tmp = dir.join(format!(
        ".{}.tmp{}",
        name.to_string_lossy(),
        std::process::id()
    ));
    let result = (|| -> Result<()> {
        let cannot = || format!("cannot write {}", tmp.display());
        let file = std::fs::File::create(&tmp).with_context(cannot)?;
        let mut file = std::io::BufWriter::with_capacity(1 << 16, file);
        write(&mut file)?;
        file.flush().with_context(cannot)?;
        if let Ok(meta) = std::fs::metadata(target) {
            // Best effort: a file we may replace but not chmod keeps the default mode.
            let _ = std::fs::set_permissions(&tmp, meta.permissions());
        }
        std::fs::rename(&tmp, target)
            .with_context(|| format!("cannot move output into {}", target.display()))
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}
