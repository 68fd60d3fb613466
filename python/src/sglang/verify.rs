//! The verifier's arrays of SGLang's `build_tree_kernel_efficient`, in its
//! layouts, read from `sgl-kernel/csrc/speculative/eagle_utils.cu`
//! (`build_tree_efficient`, `build_tree_efficient_partial_packed`, commit
//! 0e6ed14) and `python/sglang/srt/speculative/eagle_utils.py` (commit
//! 003ddbc). With `n = num_verify_tokens`, tree position 0 is the bonus
//! (last verified) token and position `t >= 1` the candidate
//! `top_scores_index[b, t - 1]`:
//!
//! - `positions[b n + t] = seq_lens[b] + depth(t)` (the root has depth 0);
//! - `retrive_index[b, t] = b n + t`;
//! - `retrive_next_token[b, t]`: the first child of `t`, `-1` for none;
//!   `retrive_next_sibling[b, t]`: the next child of `t`'s parent; children
//!   go in ascending tree position (the kernel links them from the last);
//! - FULL_MASK: one flat `bool` array; request `b`'s block starts at
//!   `sum_{i<b} seq_lens[i] n + b n^2` and holds `n` rows of
//!   `seq_lens[b] + n` columns: the prefix (all true), then the tree
//!   positions the row sees (the root, its ancestors, itself);
//! - QLEN_ONLY: the same without the prefix columns, `n x n` per request;
//! - QLEN_ONLY_BITPACKING: one word per row, bit `t` set when the row sees
//!   tree position `t` (the kernel writes little-endian bytes; SGLang's
//!   dtype is `uint8`/`uint16`/`uint32` for `n <= 8`/`<= 16`/`<= 32`).
//!
//! Where speclight differs: a selected candidate whose parent is not selected
//! is an error (the kernel prints a warning and leaves it unlinked), and
//! `-1` entries at the end of a row of `top_scores_index` (a request given
//! fewer tokens than `n - 1`) are unreachable padding: a row that sees the
//! root and itself, position `seq_len + 1`, linked from nothing.

use speclight::{Error, Result};

use super::candidates::selected_row;

/// Largest FULL_MASK the bindings build: 2^28 booleans (256 MiB).
pub const MAX_MASK_ELEMENTS: usize = 1 << 28;

/// Largest `num_verify_tokens` of the bit-packed mask (one `uint32` per row).
pub const MAX_PACKED_TOKENS: usize = 32;

/// SGLang's `TreeMaskMode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MaskMode {
    Full,
    QlenOnly,
    Packed,
}

impl MaskMode {
    pub fn new(mode: i64, n: usize) -> Result<Self> {
        match mode {
            0 => Ok(Self::Full),
            1 => Ok(Self::QlenOnly),
            2 if n <= MAX_PACKED_TOKENS => Ok(Self::Packed),
            2 => Err(Error::InvalidArgument(format!(
                "sglang: QLEN_ONLY_BITPACKING needs num_verify_tokens <= {MAX_PACKED_TOKENS}, got {n}"
            ))),
            _ => Err(Error::InvalidArgument(format!(
                "sglang: tree_mask_mode {mode} is not 0 (FULL_MASK), 1 (QLEN_ONLY) or 2 (QLEN_ONLY_BITPACKING)"
            ))),
        }
    }
}

/// One request's tree over its `n` positions: parent position (`None` for
/// the root and for padding) and depth.
struct Positions {
    parent: Vec<Option<usize>>,
    depth: Vec<i64>,
}

/// Reads request `b`'s row of `top_scores_index` (`n - 1` entries: strictly
/// increasing candidates, then `-1` padding) against its candidate tree.
/// O(n log n).
fn positions(parents: &[Option<usize>], b: usize, row: &[i64]) -> Result<Positions> {
    let used = selected_row(row, parents.len(), b)?.len();
    let n = row.len() + 1;
    let mut parent = vec![None; n];
    let mut depth = vec![0i64; n];
    for t in 1..n {
        depth[t] = 1;
        if t > used {
            continue; // padding
        }
        let j = row[t - 1] as usize;
        if let Some(p) = parents[j] {
            let at = row[..used].binary_search(&(p as i64)).map_err(|_| {
                Error::InvalidArgument(format!(
                    "sglang: request {b}: candidate {j} is selected without its parent {p}"
                ))
            })?;
            parent[t] = Some(at + 1);
            depth[t] = depth[at + 1] + 1;
        } else {
            parent[t] = Some(0);
        }
    }
    Ok(Positions { parent, depth })
}

/// Every array of `build_tree_kernel_efficient` for a batch, flat.
#[derive(Debug, Default)]
pub struct TreeArrays {
    pub mask_bool: Vec<bool>,
    pub mask_packed: Vec<u32>,
    pub positions: Vec<i64>,
    pub retrive_index: Vec<i64>,
    pub retrive_next_token: Vec<i64>,
    pub retrive_next_sibling: Vec<i64>,
}

/// Builds the arrays for the requests' candidate trees (`parents`, from
/// [`super::candidates::read_parents`]) given row-major `top_scores_index`
/// (`B x (n - 1)`) and `seq_lens`. Time O(B n (log n + depth) + mask size).
pub fn build(
    requests: &[Vec<Option<usize>>],
    selected: &[i64],
    n: usize,
    seq_lens: &[i64],
    mode: MaskMode,
) -> Result<TreeArrays> {
    let b = requests.len();
    if seq_lens.len() != b || selected.len() != b * (n - 1) {
        return Err(Error::InvalidArgument(format!(
            "sglang: seq_lens has {} entries and top_scores_index {} for {b} requests of {} draft tokens",
            seq_lens.len(),
            selected.len(),
            n - 1
        )));
    }
    if let Some(&bad) = seq_lens.iter().find(|&&s| s < 0) {
        return Err(Error::InvalidArgument(format!(
            "sglang: seq_len {bad} is negative"
        )));
    }
    let prefix: usize = seq_lens.iter().map(|&s| s as usize).sum();
    let mask_len = match mode {
        MaskMode::Full => prefix.checked_mul(n).and_then(|x| x.checked_add(b * n * n)),
        MaskMode::QlenOnly => Some(b * n * n),
        MaskMode::Packed => Some(0),
    };
    let mask_len = mask_len
        .filter(|&m| m <= MAX_MASK_ELEMENTS)
        .ok_or_else(|| {
            Error::InvalidArgument(format!(
                "sglang: the tree mask would hold more than {MAX_MASK_ELEMENTS} elements"
            ))
        })?;
    let mut out = TreeArrays {
        mask_bool: Vec::with_capacity(mask_len),
        ..TreeArrays::default()
    };
    for (i, parents) in requests.iter().enumerate() {
        let p = positions(parents, i, &selected[i * (n - 1)..(i + 1) * (n - 1)])?;
        let seq_len = seq_lens[i];
        push_links(&mut out, &p, i * n);
        for t in 0..n {
            out.positions.push(seq_len + p.depth[t]);
            let sees = sees(&p, t, n);
            match mode {
                MaskMode::Full => {
                    out.mask_bool
                        .extend(std::iter::repeat_n(true, seq_len as usize));
                    out.mask_bool.extend_from_slice(&sees);
                }
                MaskMode::QlenOnly => out.mask_bool.extend_from_slice(&sees),
                MaskMode::Packed => out.mask_packed.push(
                    sees.iter()
                        .enumerate()
                        .filter(|(_, &s)| s)
                        .map(|(k, _)| 1u32 << k)
                        .sum(),
                ),
            }
        }
    }
    Ok(out)
}

/// Row `t` of the tree part of the mask: the root, `t` and its ancestors.
fn sees(p: &Positions, t: usize, n: usize) -> Vec<bool> {
    let mut row = vec![false; n];
    row[0] = true;
    let mut at = Some(t);
    while let Some(u) = at.filter(|&u| u > 0) {
        row[u] = true;
        at = p.parent[u];
    }
    row
}

/// `retrive_index`, `retrive_next_token`, `retrive_next_sibling` of one
/// request whose first flat position is `base`.
fn push_links(out: &mut TreeArrays, p: &Positions, base: usize) {
    let n = p.parent.len();
    let mut next_token = vec![-1i64; n];
    let mut next_sibling = vec![-1i64; n];
    let mut last_child: Vec<Option<usize>> = vec![None; n];
    for t in 1..n {
        // Padding has depth 1 but no parent link: it stays unreachable.
        let Some(parent) = p.parent[t] else { continue };
        match last_child[parent] {
            None => next_token[parent] = t as i64,
            Some(prev) => next_sibling[prev] = t as i64,
        }
        last_child[parent] = Some(t);
    }
    out.retrive_index.extend((0..n).map(|t| (base + t) as i64));
    out.retrive_next_token.extend(next_token);
    out.retrive_next_sibling.extend(next_sibling);
}
