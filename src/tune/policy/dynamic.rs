//! Dynamic tree policies: the tree changes with every iteration's drafter
//! lists (best-first per iteration, and the EAGLE-2-style expand-then-rerank
//! baseline), measured on recorded groups.

use crate::error::{Error, Result};
use crate::tune::paired::Group;

/// An EAGLE-style dynamic tree (EAGLE-2's expand-then-rerank): expand the
/// `top_k` best children of the `top_k` best nodes of each level for
/// `depth` levels, scoring nodes by the drafter's path log-probability, then
/// keep the `total_tokens` best nodes overall. The tree changes with every
/// iteration's drafter confidences.
///
/// A paired trace records the drafter's list only along the verifier's own
/// continuation, so off-path nodes at depth `d` are scored with the
/// on-path list at depth `d` (the recorded node's scores are exact, its
/// competitors' are approximated). The walk needs no more: a group's
/// accepted count is how many on-path nodes, from depth 1, are kept.
///
/// # Examples
///
/// ```
/// use speclight::tune::{EagleTree, Group, TraceReader};
/// let trace = br#"{"seq":0,"pos":0,"depth":1,"draft_top":[[3,-0.1],[4,-2.0]],"target":4}
/// {"seq":0,"pos":0,"depth":2,"draft_top":[[5,-0.1],[6,-0.2]],"target":5}
/// "#;
/// let mut g = Group::default();
/// TraceReader::new(&trace[..]).next_group(&mut g)?;
/// let mut eagle = EagleTree::new(2, 2)?;
/// eagle.rank_group(&g);
/// // Scores: (0) -0.1, (0,0) -0.2, (0,1) -0.3, (1) -2.0, (1,0) -2.1, (1,1) -2.2.
/// assert_eq!(eagle.accepted(3), 0); // (1) is 4th
/// assert_eq!(eagle.accepted(4), 1);
/// assert_eq!(eagle.accepted(5), 2);
/// # Ok::<(), speclight::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct EagleTree {
    top_k: usize,
    depth: u32,
    /// `(score, depth, parent, rank)`; parent `u32::MAX` is the root.
    cands: Vec<(f64, u32, u32, u32)>,
    order: Vec<u32>,
    position: Vec<u32>,
    frontier: Vec<u32>,
    next: Vec<u32>,
    on_path: Vec<u32>,
}

impl EagleTree {
    /// `top_k` children per expanded node and nodes expanded per level,
    /// `depth` levels.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArgument`] for `top_k = 0`, [`Error::ZeroDepth`].
    pub fn new(top_k: usize, depth: u32) -> Result<Self> {
        if top_k == 0 {
            return Err(Error::InvalidArgument("EAGLE top_k must be >= 1".into()));
        }
        if depth == 0 {
            return Err(Error::ZeroDepth);
        }
        Ok(Self {
            top_k,
            depth,
            cands: Vec::new(),
            order: Vec::new(),
            position: Vec::new(),
            frontier: Vec::new(),
            next: Vec::new(),
            on_path: Vec::new(),
        })
    }

    /// Levels drafted.
    pub fn depth(&self) -> u32 {
        self.depth
    }

    /// Largest tree the expansion can produce: `top_k + (depth - 1) top_k^2`.
    pub fn max_nodes(&self) -> usize {
        self.top_k + (self.depth as usize - 1) * self.top_k * self.top_k
    }

    /// Builds this group's candidate set and ranks it; then
    /// [`EagleTree::accepted`] answers for any `total_tokens`. Levels beyond
    /// the group's recorded depth are not drafted. O(depth top_k^2 log).
    pub fn rank_group(&mut self, group: &Group) {
        self.cands.clear();
        self.frontier.clear();
        let levels = (self.depth as usize).min(group.depth());
        for j in 0..levels {
            let lps = group.draft_logprobs(j);
            let width = self.top_k.min(lps.len());
            self.next.clear();
            if j == 0 {
                for (r, &lp) in lps.iter().take(width).enumerate() {
                    self.next.push(self.cands.len() as u32);
                    self.cands.push((lp, 1, u32::MAX, r as u32));
                }
            } else {
                // The top_k best of the previous level (stable on ties).
                let cands = &self.cands;
                self.frontier.sort_by(|&a, &b| {
                    cands[b as usize]
                        .0
                        .total_cmp(&cands[a as usize].0)
                        .then(a.cmp(&b))
                });
                self.frontier.truncate(self.top_k);
                for &p in &self.frontier {
                    let base = self.cands[p as usize].0;
                    for (r, &lp) in lps.iter().take(width).enumerate() {
                        self.next.push(self.cands.len() as u32);
                        self.cands.push((base + lp, j as u32 + 1, p, r as u32));
                    }
                }
            }
            std::mem::swap(&mut self.frontier, &mut self.next);
        }
        // Rerank: score descending, then depth (a parent ties its child only
        // with a zero log-probability, and must come first), then age.
        self.order.clear();
        self.order.extend(0..self.cands.len() as u32);
        let cands = &self.cands;
        self.order.sort_by(|&a, &b| {
            let (ca, cb) = (&cands[a as usize], &cands[b as usize]);
            cb.0.total_cmp(&ca.0).then(ca.1.cmp(&cb.1)).then(a.cmp(&b))
        });
        self.position.clear();
        self.position.resize(self.cands.len(), 0);
        for (i, &c) in self.order.iter().enumerate() {
            self.position[c as usize] = i as u32;
        }
        // The verifier's path through the candidates.
        self.on_path.clear();
        let mut parent = u32::MAX;
        for &rank in group.ranks().iter().take(levels) {
            let Some(r) = rank else { break };
            match self.cands.iter().position(|c| c.2 == parent && c.3 == r) {
                Some(c) => {
                    self.on_path.push(self.position[c]);
                    parent = c as u32;
                }
                None => break,
            }
        }
    }

    /// Accepted draft tokens for the last ranked group when the tree keeps
    /// its `total_tokens` best candidates.
    pub fn accepted(&self, total_tokens: usize) -> usize {
        self.on_path
            .iter()
            .take_while(|&&p| (p as usize) < total_tokens)
            .count()
    }
}

/// Best-first *per iteration* over the drafter's own probabilities: the
/// tree a server builds with [`crate::TreeBuilder`] from the drafter's `q`
/// at every step (`docs/THEORY.md` section 3), as opposed to one static tree for
/// all steps. With the same information as [`EagleTree`] (the drafter's
/// lists along the verifier's path; off-path nodes at depth `d` scored with
/// the on-path list at depth `d`), it keeps the `n` nodes of highest drafter
/// path probability among *all* nodes, where EAGLE keeps them among its
/// beam's expansions.
///
/// Best-first commits nodes in decreasing path probability, so one build to
/// the largest capacity answers every smaller one: the tree of `n` nodes is
/// the first `n` nodes.
///
/// # Examples
///
/// ```
/// use speclight::tune::{DynamicBestFirst, Group, TraceReader};
/// let trace = br#"{"seq":0,"pos":0,"depth":1,"draft_top":[[3,-0.1],[4,-2.0]],"target":4}
/// {"seq":0,"pos":0,"depth":2,"draft_top":[[5,-0.1],[6,-0.2]],"target":5}
/// "#;
/// let mut g = Group::default();
/// TraceReader::new(&trace[..]).next_group(&mut g)?;
/// let mut policy = DynamicBestFirst::new(8, 2)?;
/// policy.rank_group(&g)?;
/// // Path probabilities: (0) .90, (0,0) .82, (0,1) .74, (1) .14, ...: (1) is 4th.
/// assert_eq!(policy.accepted(3), 0);
/// assert_eq!(policy.accepted(4), 1);
/// assert_eq!(policy.accepted(5), 2);
/// # Ok::<(), speclight::Error>(())
/// ```
#[derive(Debug)]
pub struct DynamicBestFirst {
    builder: crate::TreeBuilder,
    depth: u32,
    rows: Vec<Vec<f64>>,
    on_path: Vec<u32>,
}

impl DynamicBestFirst {
    /// Trees of up to `max_capacity` nodes and `depth` levels.
    ///
    /// # Errors
    ///
    /// The builder's capacity errors, [`Error::ZeroDepth`].
    pub fn new(max_capacity: usize, depth: u32) -> Result<Self> {
        let builder = crate::TreeBuilder::new(max_capacity)?.with_max_depth(Some(depth))?;
        Ok(Self {
            builder,
            depth,
            rows: Vec::new(),
            on_path: Vec::new(),
        })
    }

    /// Builds this group's tree from its drafter lists (probabilities
    /// `exp(logprob)`, scaled down if a list sums above 1) and locates the
    /// verifier's path in it. O(capacity log capacity).
    ///
    /// # Errors
    ///
    /// Only the builder's own (none for valid lists).
    pub fn rank_group(&mut self, group: &Group) -> Result<()> {
        let levels = (self.depth as usize).min(group.depth());
        self.on_path.clear();
        if levels == 0 {
            return Ok(());
        }
        self.rows.resize(levels, Vec::new());
        self.rows.truncate(levels);
        let mut usable = levels;
        for (j, row) in self.rows.iter_mut().enumerate() {
            row.clear();
            row.extend(group.draft_logprobs(j).iter().map(|lp| lp.exp()));
            let sum: f64 = row.iter().sum();
            if sum > 1.0 {
                row.iter_mut().for_each(|p| *p /= sum);
            }
            // A list whose probabilities all underflow to 0 offers nothing:
            // the tree stops above it.
            if sum <= 0.0 && usable == levels {
                usable = j;
            }
        }
        self.rows.truncate(usable);
        let levels = usable;
        if levels == 0 {
            return Ok(());
        }
        let mut model = crate::PositionalByDepth::new(&self.rows)?;
        self.builder.set_max_depth(Some(levels as u32))?;
        let tree = self.builder.build(&mut model)?;
        let mut slot: Option<usize> = None;
        for &rank in group.ranks().iter().take(levels) {
            let Some(r) = rank else { break };
            match tree.children(slot).find(|&c| tree.token(c) == r) {
                Some(c) => {
                    self.on_path.push(c as u32);
                    slot = Some(c);
                }
                None => break,
            }
        }
        Ok(())
    }

    /// Accepted draft tokens for the last ranked group with a tree of
    /// `capacity` nodes.
    pub fn accepted(&self, capacity: usize) -> usize {
        self.on_path
            .iter()
            .take_while(|&&i| (i as usize) < capacity)
            .count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tune::TraceReader;

    #[test]
    fn dynamic_best_first_stops_above_a_list_that_underflows() {
        let trace = br#"{"seq":0,"pos":0,"depth":1,"draft_top":[[3,-0.1]],"target":3}
{"seq":0,"pos":0,"depth":2,"draft_top":[[5,-1000.0]],"target":5}
"#;
        let mut g = Group::default();
        TraceReader::new(&trace[..]).next_group(&mut g).unwrap();
        let mut policy = DynamicBestFirst::new(4, 2).unwrap();
        policy.rank_group(&g).unwrap();
        assert_eq!(policy.accepted(4), 1);
    }

    #[test]
    fn eagle_kept_set_is_prefix_closed_and_matches_brute_force() {
        // Brute force: enumerate the expansion explicitly with full rank
        // paths, sort, and check the on-path nodes' positions.
        let lps = [
            vec![-0.3, -0.9, -1.2],
            vec![-0.2, -0.25, -2.0],
            vec![-0.5, -0.6, -0.7],
        ];
        let mut text = String::new();
        for (j, row) in lps.iter().enumerate() {
            let top: Vec<String> = row
                .iter()
                .enumerate()
                .map(|(r, lp)| format!("[{r},{lp}]"))
                .collect();
            text += &format!(
                "{{\"seq\":0,\"pos\":0,\"depth\":{},\"draft_top\":[{}],\"target\":{}}}\n",
                j + 1,
                top.join(","),
                [1, 0, 2][j]
            );
        }
        let mut g = Group::default();
        TraceReader::new(text.as_bytes())
            .next_group(&mut g)
            .unwrap();
        let top_k = 2;
        // Explicit expansion.
        let mut all: Vec<(f64, Vec<u32>)> = Vec::new();
        let mut level: Vec<(f64, Vec<u32>)> = vec![(0.0, vec![])];
        for row in &lps {
            level.sort_by(|a, b| b.0.total_cmp(&a.0));
            level.truncate(top_k);
            let mut next = Vec::new();
            for (s, p) in &level {
                for (r, lp) in row.iter().take(top_k).enumerate() {
                    let mut q = p.clone();
                    q.push(r as u32);
                    next.push((s + lp, q));
                }
            }
            all.extend(next.iter().cloned());
            level = next;
        }
        all.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.len().cmp(&b.1.len())));
        let mut eagle = EagleTree::new(top_k, 3).unwrap();
        eagle.rank_group(&g);
        for n in 1..=all.len() {
            let kept: Vec<&Vec<u32>> = all[..n].iter().map(|x| &x.1).collect();
            for p in &kept {
                assert!(p.len() == 1 || kept.contains(&&p[..p.len() - 1].to_vec()));
            }
            let target = [1u32, 0, 2];
            let want = (1..=3)
                .take_while(|&l| kept.contains(&&target[..l].to_vec()))
                .count();
            assert_eq!(eagle.accepted(n), want, "n={n}");
        }
        assert_eq!(eagle.max_nodes(), all.len());
    }
}
