//! The threshold build for context-free models (issue 16).
//!
//! When every node shares one distribution, the optimal tree of capacity `P`
//! is the first `P` nodes in the canonical order (see the module docs of
//! [`crate::build`]): every node with `ln pi > tau` plus the first of those
//! with `ln pi == tau`, where `tau` is the `P`-th largest key. So no priority
//! queue is needed:
//!
//! 1. **Search.** A pass at a trial `t` walks the tree depth-first, visiting
//!    only nodes with key `> t` (children are sorted, so a node's scan stops
//!    at its first child not above `t`); it records them, counts the nodes
//!    with key `== t` (a binary search per run of ties), and notes the
//!    largest key below `t`. A pass aborts once more than `cap = 2P + 64`
//!    nodes are above `t`. `t` moves by a secant step on `ln(count)` (counts
//!    grow about exponentially as `t` falls), then by bisection once
//!    bracketed, stepping straight to the next key below when that is
//!    closer. The first trial is [`HINT_MARGIN`] below the last build's
//!    `tau`, so a drafter whose distribution changes little needs one pass.
//! 2. **Order.** The records are sorted by (key descending, depth, index in
//!    depth-first order), which is the canonical order, since depth-first
//!    order with children visited by rank is the lexicographic order of rank
//!    paths ([`super::bucket_sort`], expected linear time). If at least `P`
//!    nodes are above `t`, the first `P` are the tree; else the missing ones
//!    are the first ties at `t`, by depth, then by their parent's
//!    depth-first position, then by rank, appended before the sort.
//! 3. **Emit.** Parents precede their children in that order, so parent
//!    indices are remapped in one pass.
//!
//! Cost: O(P) per pass (at most `cap` nodes plus one binary search over the
//! distribution per run of ties) for a few passes (one when the last `tau`
//! still holds), and expected O(P) for the sort (O(P log P) worst case);
//! space O(P). It declines (and the heap builder
//! runs instead) when a node's key stops falling along a path with ties
//! at `tau` (a rank whose log-probability is 0 or is absorbed by rounding),
//! where depth-first counting would not end, and after [`MAX_PASSES`] passes
//! that do not settle `tau`.
//!
//! Measured (callgrind, docs/benchmarks.md) it runs more instructions per
//! node than the heap builder at `P` = 64, 1024 and 16384, so
//! [`super::TreeBuilder::build`] does not use it; it is reached through the
//! hidden `TreeBuilder::build_by_threshold`, and the property tests hold it
//! to the canonical order.

use super::bucket_sort::{BucketSort, SortKey};
use crate::dist::TokenDist;
use crate::tree::DraftTree;

/// Parent index meaning "the root" in a [`Record`].
const ROOT: u32 = u32::MAX;

/// How far below the last build's `tau` the first trial goes, in nats:
/// about 1.4 times as many nodes when counts grow like `e^(-t)`.
const HINT_MARGIN: f64 = 0.35;

/// How many counting passes the search may take before it declines.
const MAX_PASSES: usize = 200;

/// A node found by a pass: it is written to the tree if selected.
#[derive(Debug, Clone, Copy)]
struct Record {
    key: f64,
    reach: f64,
    /// Record index of the parent, [`ROOT`] for depth 1.
    parent: u32,
    rank: u32,
    depth: u32,
}

/// A depth-first frame: a node whose children are being scanned.
#[derive(Debug, Clone, Copy)]
struct Frame {
    key: f64,
    reach: f64,
    /// Record index ([`ROOT`] for the root).
    index: u32,
    depth: u32,
    /// The next child rank to look at.
    next: u32,
}

/// A run of children of one node whose keys equal the trial threshold.
#[derive(Debug, Clone, Copy)]
struct TieRun {
    /// `depth << 32 | parent index`: the canonical order of runs.
    order: u64,
    first_rank: u32,
    len: u32,
}

/// What one pass at a trial threshold found.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Pass {
    /// More than `cap` nodes are above the threshold.
    Over,
    /// A tie at the threshold has a child with the same key: declined.
    Degenerate,
    /// `above` nodes (now in `records`), `ties` more at the threshold, and
    /// the largest eligible key below it, if any.
    Counted {
        above: usize,
        ties: usize,
        below: Option<f64>,
    },
}

/// What a pass learns where it stops scanning a node's children: the run
/// of children tied at the threshold and the largest key below it.
struct Edge<'a> {
    logp: &'a [f64],
    t: f64,
    max_depth: u32,
    runs: &'a mut Vec<TieRun>,
    ties: usize,
    below: f64,
}

impl Edge<'_> {
    /// Scans the node (`key`, `depth`, record `index`) from rank `r`, its
    /// first child not above `t`. Returns `false` when a tied child could
    /// have a tied child (the pass must decline).
    #[inline]
    fn close(&mut self, key: f64, r: u32, depth: u32, index: u32) -> bool {
        let Some(&l) = self.logp.get(r as usize) else {
            return true;
        };
        let mut first_below = r as usize;
        if key + l == self.t {
            let t = self.t;
            let run = self.logp[first_below..].partition_point(|&l| key + l >= t);
            if t + self.logp[0] == t && depth + 1 < self.max_depth {
                return false;
            }
            self.runs.push(TieRun {
                order: u64::from(depth + 1) << 32 | u64::from(index),
                first_rank: r,
                len: run as u32,
            });
            self.ties += run;
            first_below += run;
        }
        if let Some(&l) = self.logp.get(first_below) {
            let b = key + l;
            if b > self.below {
                self.below = b;
            }
        }
        true
    }
}

/// The settings and distribution of one build.
#[derive(Debug, Clone, Copy)]
pub(super) struct Setup<'a> {
    pub dist: &'a TokenDist,
    pub capacity: usize,
    /// Depth limit, `u32::MAX` for none.
    pub max_depth: u32,
    /// `ln` of the probability floor (`-inf` for none).
    pub log_floor: f64,
}

/// The threshold builder's reusable buffers and its last threshold.
#[derive(Debug, Default)]
pub(super) struct ThresholdBuild {
    stack: Vec<Frame>,
    records: Vec<Record>,
    runs: Vec<TieRun>,
    /// Sort keys `(key bits, depth << 32 | record index)`.
    order: Vec<SortKey>,
    sorter: BucketSort,
    /// Output index of every record, written as records are emitted.
    out_index: Vec<u32>,
    /// The last build's `tau`, the next build's first trial.
    hint: Option<f64>,
}

impl ThresholdBuild {
    /// Builds the tree of `s` into `tree` and its OPT curve into `curve`
    /// (both cleared first). Returns `false`, leaving them in an unspecified
    /// state, when it declines (see the module docs).
    pub(super) fn build(&mut self, s: &Setup, tree: &mut DraftTree, curve: &mut Vec<f64>) -> bool {
        let Some((t, above, ties)) = self.search(s) else {
            return false;
        };
        let p = s.capacity;
        if above >= p {
            self.select_above(p);
        } else {
            self.hint = Some(t);
            self.add_ties(s, t, (p - above).min(ties));
            self.order_all();
        }
        self.emit(s.dist, tree, curve);
        true
    }

    /// Finds a trial `t` whose pass left in `records` every node the tree
    /// needs: `(t, above, ties)` with `above + ties >= P` and `above <= cap`,
    /// or fewer when no eligible node lies below `t`.
    fn search(&mut self, s: &Setup) -> Option<(f64, usize, usize)> {
        let p = s.capacity;
        let cap = 2 * p + 64;
        self.reserve(cap);
        let target = (1.4 * p as f64).ln();
        // Below the last `tau` by a margin, so that a drafter whose
        // distribution moved a little still needs one pass.
        let mut t = self
            .hint
            .map_or(-(2.0 * p as f64).ln(), |h| h - HINT_MARGIN);
        // Bracket: `lo` too low (over cap), `hi` too high (short of P).
        let (mut lo, mut hi): (Option<f64>, Option<(f64, f64)>) = (None, None);
        let mut up_step = 1.0;
        let mut slope = 1.0;
        let mut last: Option<(f64, f64)> = None;
        for _ in 0..MAX_PASSES {
            t = t.clamp(s.log_floor.max(-f64::MAX), 0.0);
            match self.pass(s, t, cap) {
                Pass::Degenerate => return None,
                Pass::Over => {
                    lo = Some(t);
                    if hi.is_none() {
                        t += up_step;
                        up_step *= 2.0;
                        continue;
                    }
                }
                Pass::Counted { above, ties, below } => {
                    let found = above + ties;
                    if found >= p || below.is_none() {
                        return Some((t, above, ties));
                    }
                    let ln_found = (found.max(1) as f64).ln();
                    if let Some((t0, ln0)) = last {
                        if t0 != t && ln_found != ln0 {
                            slope = ((ln_found - ln0) / (t0 - t)).clamp(0.01, 100.0);
                        }
                    }
                    last = Some((t, ln_found));
                    let next_key = below.unwrap_or(f64::NEG_INFINITY);
                    hi = Some((t, next_key));
                    if lo.is_none() {
                        t = next_key.min(t - (target - ln_found) / slope);
                        continue;
                    }
                }
            }
            // Bracketed: bisect, or step to the next key below `hi` when it
            // is lower than the midpoint (nothing lies between the two).
            let (Some(l), Some((h, next_key))) = (lo, hi) else {
                return None;
            };
            let mid = l + (h - l) / 2.0;
            t = if mid > l && mid < h {
                mid.min(next_key)
            } else {
                next_key
            };
            if t <= l {
                return None;
            }
        }
        None
    }

    /// Sizes every buffer for `cap` records at once, so that a reused
    /// builder allocates nothing however its passes go.
    fn reserve(&mut self, cap: usize) {
        let more = |len: usize| cap.saturating_sub(len);
        self.stack.reserve(more(self.stack.len()) + 1);
        self.records.reserve(more(self.records.len()));
        self.runs.reserve(more(self.runs.len()) + 1);
        self.order.reserve(more(self.order.len()));
        self.out_index.reserve(more(self.out_index.len()));
        self.sorter.reserve(cap);
    }

    /// One depth-first pass at threshold `t`: records every eligible node
    /// with key above `t` (aborting past `cap`), counts those at `t` and
    /// their runs. O(nodes above t + runs of ties * log k).
    fn pass(&mut self, s: &Setup, t: f64, cap: usize) -> Pass {
        let logp = s.dist.log_probs();
        let probs = s.dist.probs();
        let k = logp.len() as u32;
        let (records, stack) = (&mut self.records, &mut self.stack);
        let mut edge = Edge {
            logp,
            t,
            max_depth: s.max_depth,
            runs: &mut self.runs,
            ties: 0,
            below: f64::NEG_INFINITY,
        };
        edge.runs.clear();
        records.clear();
        stack.clear();
        stack.push(Frame {
            key: 0.0,
            reach: 1.0,
            index: ROOT,
            depth: 0,
            next: 0,
        });
        while let Some(top) = stack.last_mut() {
            let r = top.next;
            let key = if r < k {
                top.key + logp[r as usize]
            } else {
                f64::NEG_INFINITY
            };
            if key > t {
                if records.len() >= cap {
                    return Pass::Over;
                }
                top.next = r + 1;
                let index = records.len() as u32;
                let (reach, depth) = (top.reach * probs[r as usize], top.depth + 1);
                records.push(Record {
                    key,
                    reach,
                    parent: top.index,
                    rank: r,
                    depth,
                });
                // A node whose first child is not above `t` is closed at
                // once, without a frame (about half of them).
                if depth < s.max_depth {
                    if key + logp[0] > t {
                        stack.push(Frame {
                            key,
                            reach,
                            index,
                            depth,
                            next: 0,
                        });
                    } else if !edge.close(key, 0, depth, index) {
                        return Pass::Degenerate;
                    }
                }
                continue;
            }
            let (key, depth, index) = (top.key, top.depth, top.index);
            stack.pop();
            if !edge.close(key, r, depth, index) {
                return Pass::Degenerate;
            }
        }
        Pass::Counted {
            above: records.len(),
            ties: edge.ties,
            below: (edge.below >= s.log_floor && edge.below > f64::NEG_INFINITY)
                .then_some(edge.below),
        }
    }

    /// At least `P` nodes are above the trial: keeps the first `P` in
    /// canonical order (an expected O(n) sort of all `n <= cap` of them).
    fn select_above(&mut self, p: usize) {
        self.fill_order();
        self.sorter.sort_first(&mut self.order, p);
        self.hint = self.order.last().map(|&(bits, _)| f64::from_bits(bits));
    }

    /// Appends the first `m` ties at `t` in canonical order: runs by depth,
    /// then by their parent's depth-first position, each run by rank.
    fn add_ties(&mut self, s: &Setup, t: f64, m: usize) {
        let probs = s.dist.probs();
        self.runs.sort_unstable_by_key(|r| r.order);
        let mut left = m;
        for run in &self.runs {
            if left == 0 {
                break;
            }
            let parent = (run.order & u64::from(u32::MAX)) as u32;
            let depth = (run.order >> 32) as u32;
            let base = if parent == ROOT {
                1.0
            } else {
                self.records[parent as usize].reach
            };
            let take = left.min(run.len as usize);
            for rank in run.first_rank..run.first_rank + take as u32 {
                self.records.push(Record {
                    key: t,
                    reach: base * probs[rank as usize],
                    parent,
                    rank,
                    depth,
                });
            }
            left -= take;
        }
    }

    /// Every record is selected: sorts them all into canonical order.
    fn order_all(&mut self) {
        self.fill_order();
        self.sorter.sort_first(&mut self.order, usize::MAX);
    }

    /// Sort keys of every record: key bits ascending is key descending (the
    /// [`super::frontier::LogKey`] order), then depth, then record index
    /// (depth-first order for nodes above `t`, canonical order for ties).
    fn fill_order(&mut self) {
        self.order.clear();
        self.order.extend(
            self.records
                .iter()
                .enumerate()
                .map(|(i, r)| (r.key.to_bits(), u64::from(r.depth) << 32 | i as u64)),
        );
    }

    /// Writes the records named by `order` into the tree, remapping parents.
    fn emit(&mut self, dist: &TokenDist, tree: &mut DraftTree, curve: &mut Vec<f64>) {
        let tokens = dist.tokens();
        tree.clear();
        curve.clear();
        if self.out_index.len() < self.records.len() {
            self.out_index.resize(self.records.len(), 0);
        }
        let mut sum = 0.0;
        for (out, &(_, low)) in self.order.iter().enumerate() {
            let index = (low & u64::from(u32::MAX)) as usize;
            let r = self.records[index];
            let parent = if r.parent == ROOT {
                ROOT
            } else {
                self.out_index[r.parent as usize]
            };
            self.out_index[index] = out as u32;
            tree.push_unchecked(parent, tokens[r.rank as usize], r.depth, r.key);
            sum += r.reach;
            curve.push(sum);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse_dist;

    fn run(spec: &str, capacity: usize, max_depth: u32) -> (bool, DraftTree, Vec<f64>) {
        let dist = parse_dist(spec).unwrap();
        let setup = Setup {
            dist: &dist,
            capacity,
            max_depth,
            log_floor: f64::NEG_INFINITY,
        };
        let (mut tree, mut curve) = (DraftTree::new(), Vec::new());
        let done = ThresholdBuild::default().build(&setup, &mut tree, &mut curve);
        (done, tree, curve)
    }

    /// The fast path does run (so the property tests that compare it with
    /// the heap builds compare two different codes), and declines only where
    /// a key stops falling along a tied path.
    #[test]
    fn runs_on_ordinary_and_tied_inputs_and_declines_on_flat_paths() {
        for (spec, p) in [
            ("zipf:1.1:32", 1024),
            ("zipf:0:4", 23),
            ("zipf:0:32", 1057),
            ("0.5,0.3,0.2", 1),
        ] {
            let (done, tree, curve) = run(spec, p, u32::MAX);
            assert!(done, "{spec} P = {p}");
            assert_eq!((tree.len(), curve.len()), (p, p));
            tree.validate().unwrap();
        }
        let (done, tree, _) = run("zipf:0:2", 100, 3);
        assert!(done);
        assert_eq!(tree.len(), 14, "every node of depth <= 3");
        // A certain token: every path has key 0, depth-first would not end.
        assert!(!run("1.0", 8, u32::MAX).0);
    }
}
