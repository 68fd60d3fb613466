//! SGLang's EAGLE candidate trees, one per request, read from the arrays
//! `organize_draft_results` receives, validated once.
//!
//! Layout (SGLang `python/sglang/srt/speculative/spec_utils.py`,
//! `_select_top_k_tokens_first` / `_select_top_k_tokens_later`, commit
//! 00731f0; `eagle_utils.py` `organize_draft_results`, commit 003ddbc): with
//! `topk = k` and `num_steps = s`, request `b`'s `G = k + (s - 1) k^2`
//! candidates are step 0's `k` children of the root (`0..k`), then for each
//! step `i >= 1` a block of `k^2` candidates, `k` children for each of the
//! step's `k` beam rows (`k + (i - 1) k^2 + r k + c`: child `c` of row `r`).
//! A candidate's score is the drafter's path probability (a product of
//! probabilities). `parent_list` (`torch.cat(parents_list[:-1], dim=1)`) has
//! `1 + (s - 1) k` columns: `-1`, then per step `i < s - 1` the `k`
//! candidates chosen as step `i + 1`'s beam rows. As in SGLang's kernel
//! (`sgl-kernel/csrc/speculative/eagle_utils.cu`, `build_tree_efficient`,
//! commit 0e6ed14), candidate `j`'s parent is the root when `j / k == 0`,
//! else candidate `parent_list[j / k]`.

use speclight::{MAX_CAPACITY, SUM_TOLERANCE};

use speclight::{Error, Result};

fn invalid(why: String) -> Error {
    Error::InvalidArgument(format!("sglang: {why}"))
}

/// Relative slack on "children's scores sum to at most their parent's":
/// the library's probability-sum tolerance.
const SUM_SLACK: f64 = SUM_TOLERANCE;

/// The beam shape: `topk` and `num_steps`.
#[derive(Debug, Clone, Copy)]
pub struct Shape {
    pub topk: usize,
    pub steps: usize,
}

impl Shape {
    /// Checks both are >= 1 and the candidates fit [`MAX_CAPACITY`].
    pub fn new(topk: usize, steps: usize) -> Result<Self> {
        if topk == 0 || steps == 0 {
            return Err(invalid(format!(
                "topk {topk} and num_steps {steps} must be >= 1"
            )));
        }
        let generated = (steps - 1)
            .checked_mul(topk)
            .and_then(|x| x.checked_mul(topk))
            .and_then(|x| x.checked_add(topk));
        match generated {
            Some(g) if g <= MAX_CAPACITY => Ok(Self { topk, steps }),
            _ => Err(invalid(format!(
                "topk {topk} and num_steps {steps} generate more than {MAX_CAPACITY} candidates"
            ))),
        }
    }

    /// `G = topk + (num_steps - 1) topk^2`: candidates per request.
    pub fn candidates(&self) -> usize {
        self.topk + (self.steps - 1) * self.topk * self.topk
    }

    /// Columns of `parent_list`: `1 + (num_steps - 1) topk`, or 0 for one step.
    pub fn parent_columns(&self) -> usize {
        if self.steps == 1 {
            0
        } else {
            1 + (self.steps - 1) * self.topk
        }
    }

    /// First candidate of step `i` (`i <= steps` gives the end).
    fn step_start(&self, i: usize) -> usize {
        if i == 0 {
            0
        } else {
            self.topk + (i - 1) * self.topk * self.topk
        }
    }
}

/// One request's candidate tree: parent of each candidate (`None` = the
/// root), always a lower index, and its score.
#[derive(Debug, Clone)]
pub struct Candidates {
    pub parent: Vec<Option<usize>>,
    pub score: Vec<f64>,
}

impl Candidates {
    /// Request `b`'s tree from its row of scores (`G`) and its parents
    /// ([`read_parents`]). Checks scores are finite in `[0, 1]`, no score
    /// exceeds its parent's, and children's scores sum to at most their
    /// parent's (relative slack 1e-6). O(G).
    pub fn new(b: usize, scores: &[f64], parent: Vec<Option<usize>>) -> Result<Self> {
        let tree = Self {
            parent,
            score: scores.to_vec(),
        };
        tree.check_scores()
            .map_err(|why| invalid(format!("request {b}: {why}")))?;
        Ok(tree)
    }

    fn check_scores(&self) -> std::result::Result<(), String> {
        let mut child_sum = vec![0.0f64; self.score.len() + 1];
        for (j, &s) in self.score.iter().enumerate() {
            if !(s.is_finite() && (0.0..=1.0).contains(&s)) {
                return Err(format!("score {s} of candidate {j} is not in [0, 1]"));
            }
            let (slot, above) = match self.parent[j] {
                None => (0, 1.0),
                Some(p) => (p + 1, self.score[p]),
            };
            if s > above {
                return Err(format!(
                    "score {s} of candidate {j} exceeds its parent's {above}: scores must be path probabilities"
                ));
            }
            child_sum[slot] += s;
        }
        for (slot, &sum) in child_sum.iter().enumerate() {
            let above = if slot == 0 { 1.0 } else { self.score[slot - 1] };
            if sum > above * (1.0 + SUM_SLACK) {
                let who = match slot {
                    0 => "the root".to_string(),
                    _ => format!("candidate {}", slot - 1),
                };
                return Err(format!(
                    "the children of {who} have scores summing to {sum}, above its own {above}"
                ));
            }
        }
        Ok(())
    }

    /// Candidates in the order SGLang's top-k ranks them: score descending,
    /// ties to the lower index. Every prefix of this order is prefix-closed
    /// (a parent has a lower index and a score at least its child's) and,
    /// by exchange, has the largest score sum of any prefix-closed set of
    /// its size. O(G log G).
    pub fn ranked(&self) -> Vec<usize> {
        let mut order: Vec<usize> = (0..self.score.len()).collect();
        order.sort_by(|&a, &b| self.score[b].total_cmp(&self.score[a]).then(a.cmp(&b)));
        order
    }

    /// The `m` best candidates (see [`Candidates::ranked`]), ascending.
    pub fn select(&self, m: usize) -> Vec<usize> {
        let mut chosen = self.ranked();
        chosen.truncate(m);
        chosen.sort_unstable();
        chosen
    }
}

/// Request `b`'s parent of each of the `G` candidates (`None` = the root)
/// from its row of `parent_list` (`1 + (s - 1) k` entries). Checks the row
/// starts with -1 and every entry points into the step before the one it
/// feeds. O(G).
pub fn read_parents(shape: Shape, b: usize, parent_list: &[i64]) -> Result<Vec<Option<usize>>> {
    let bad = |why: String| Err(invalid(format!("request {b}: {why}")));
    let k = shape.topk;
    if let Some(&first) = parent_list.first() {
        if first != -1 {
            return bad(format!("parent_list[0] is {first}, SGLang's layout has -1"));
        }
    }
    let mut parent = Vec::with_capacity(shape.candidates());
    for j in 0..shape.candidates() {
        let column = j / k;
        if column == 0 {
            parent.push(None);
            continue;
        }
        // Column 1 + (i - 1) k + r feeds step i: a candidate of step i - 1.
        let step = (column - 1) / k + 1;
        let (lo, hi) = (shape.step_start(step - 1), shape.step_start(step));
        let p = parent_list[column];
        if p < lo as i64 || p >= hi as i64 {
            return bad(format!(
                "parent_list[{column}] = {p} (parent of candidate {j}) is not a candidate of step {} ({lo}..{hi})",
                step - 1
            ));
        }
        parent.push(Some(p as usize));
    }
    Ok(parent)
}

/// Every request's parents from the row-major `(B, P)` `parent_list`.
pub fn read_parent_batch(
    shape: Shape,
    parent_list: &[i64],
    dims: [usize; 2],
) -> Result<Vec<Vec<Option<usize>>>> {
    let [b, p] = dims;
    if p != shape.parent_columns() {
        return Err(invalid(format!(
            "parent_list has {p} columns, topk {} and num_steps {} give {}",
            shape.topk,
            shape.steps,
            shape.parent_columns()
        )));
    }
    if b == 0 {
        return Err(invalid("the batch is empty".into()));
    }
    (0..b)
        .map(|i| read_parents(shape, i, &parent_list[i * p..(i + 1) * p]))
        .collect()
}

/// A batch: row-major `(B, G)` scores and `(B, P)` parent lists.
pub fn read_batch(
    shape: Shape,
    scores: &[f64],
    score_dims: [usize; 2],
    parent_list: &[i64],
    parent_dims: [usize; 2],
) -> Result<Vec<Candidates>> {
    let [b, g] = score_dims;
    if g != shape.candidates() {
        return Err(invalid(format!(
            "score_list has {g} candidates per request, topk {} and num_steps {} give {}",
            shape.topk,
            shape.steps,
            shape.candidates()
        )));
    }
    if parent_dims[0] != b {
        return Err(invalid(format!(
            "score_list has {b} requests, parent_list {}",
            parent_dims[0]
        )));
    }
    let parents = read_parent_batch(shape, parent_list, parent_dims)?;
    parents
        .into_iter()
        .enumerate()
        .map(|(i, parent)| Candidates::new(i, &scores[i * g..(i + 1) * g], parent))
        .collect()
}

/// Request `b`'s row of `top_scores_index`: strictly increasing candidates
/// below `g`, then only `-1` padding. Returns the candidates. O(len).
pub fn selected_row(row: &[i64], g: usize, b: usize) -> Result<Vec<usize>> {
    let bad = |why: String| Err(invalid(format!("request {b}: {why}")));
    let used = row.iter().position(|&x| x == -1).unwrap_or(row.len());
    if let Some(k) = row[used..].iter().position(|&x| x != -1) {
        return bad(format!(
            "top_scores_index has {} after -1 padding",
            row[used + k]
        ));
    }
    for (k, &x) in row[..used].iter().enumerate() {
        if x < 0 || x >= g as i64 {
            return bad(format!("top_scores_index {x} is not a candidate (0..{g})"));
        }
        if k > 0 && x <= row[k - 1] {
            return bad("top_scores_index must be strictly increasing".into());
        }
    }
    Ok(row[..used].iter().map(|&x| x as usize).collect())
}
