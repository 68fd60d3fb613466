//! Real-text workloads: the measurements behind `speclight demo`.
//!
//! A workload is a verifier `p` and a drafter `q` (byte-level n-gram models
//! trained on a corpus's training part) and a set of contexts. The contexts
//! are where the verifier actually decodes: text sampled from the verifier
//! itself after prompts taken from the corpus's held-out part. At every
//! context this module measures, for each capacity `P`:
//!
//! - `E[X]` of the drafter's best-first tree evaluated under the verifier
//!   (docs/THEORY.md sections 2 and 3): what a real server gets;
//! - `OPT(P)`, the oracle tree (best-first under the verifier itself): the
//!   most any deterministic drafter could get there.
//!
//! One best-first build to `P_max` nodes answers every `P <= P_max` at once:
//! nodes enter the arena in decreasing path probability, so the first `P`
//! nodes are the best-first tree of capacity `P`, and `OPT(P)` is the
//! builder's [`TreeBuilder::opt_curve`].
//!
//! The sampled text, with every token's log-probability, the verifier's
//! top alternatives and its exact entropy and second log-moment there, is
//! kept as [`SampledToken`]s: the trace of docs/THEORY.md section 4d and the
//! `mu`, `mu2` of section 4b.

use crate::build::TreeBuilder;
use crate::capacity::{speed_of_light, CapacityPoint, CapacitySolver, SpeedOfLight};
use crate::dist::TokenId;
use crate::error::{Error, Result};
use crate::eval::Evaluator;
use crate::model::ContextModel;
use crate::model::{NgramLm, NgramModel};
use crate::stats::Estimate;
use crate::trace::sample::{sample_with_logprobs, SampledToken};
use rand::{rngs::StdRng, SeedableRng};

/// Settings of a workload measurement ([`measure`]).
///
/// # Examples
///
/// ```
/// let c = speclight::experiment::workload::WorkloadConfig::default();
/// assert_eq!(c.max_capacity, 1024);
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct WorkloadConfig {
    /// Sampling temperature of the verifier (the serving temperature).
    pub temperature: f64,
    /// The drafter keeps its `drafter_top_k` most probable bytes.
    pub drafter_top_k: usize,
    /// Number of prompts taken from the held-out text (evenly spaced).
    pub prompts: usize,
    /// Bytes of held-out text before each prompt's end used as its context.
    pub prompt_len: usize,
    /// Tokens sampled from the verifier after each prompt.
    pub sequence_len: usize,
    /// Trees are measured after every `context_stride`-th sampled token of
    /// each sequence (position 0, the prompt itself, included).
    pub context_stride: usize,
    /// Largest capacity `P_max`; curves are reported at `1, 2, 4, ..` up to it.
    pub max_capacity: usize,
    /// Alternatives kept per sampled token ([`SampledToken::top_logprobs`]).
    pub trace_top_k: usize,
    /// Seed of the verifier's sampling.
    pub seed: u64,
    /// Worker threads for the tree measurements (results do not depend on it).
    pub threads: usize,
}

impl Default for WorkloadConfig {
    /// The demo's settings: 1024-node trees at 64 contexts (16 prompts,
    /// 64 sampled bytes each, a context every 16 bytes), temperature 1.
    fn default() -> Self {
        Self {
            temperature: 1.0,
            drafter_top_k: 32,
            prompts: 16,
            prompt_len: 64,
            sequence_len: 64,
            context_stride: 16,
            max_capacity: 1024,
            trace_top_k: 5,
            seed: 2026,
            threads: 1,
        }
    }
}

/// What [`measure`] found.
#[derive(Debug, Clone, PartialEq)]
pub struct WorkloadReport {
    /// Capacities `1, 2, 4, ..., P_max`.
    pub capacities: Vec<usize>,
    /// `E[X]` of the drafter's best-first tree under the verifier, per capacity,
    /// averaged over the contexts.
    pub drafter: Vec<Estimate>,
    /// `OPT(P)` (the oracle tree's `E[X]`), per capacity, averaged over the
    /// contexts.
    pub oracle: Vec<Estimate>,
    /// The sampled sequences (one per prompt): the verifier trace.
    pub sequences: Vec<Vec<SampledToken>>,
    /// `mu`: the verifier's mean entropy over the sampled positions, nats.
    pub mu: f64,
    /// `mu2`: the verifier's mean second log-moment over the sampled positions.
    pub mu2: f64,
    /// Number of contexts the curves average over.
    pub contexts: usize,
    /// The contexts themselves (prompt plus sampled tokens), in order.
    pub context_tokens: Vec<Vec<TokenId>>,
}

/// Capacities `1, 2, 4, ...` up to and including `max` (and `max` itself if
/// it is not a power of two).
///
/// # Examples
///
/// ```
/// assert_eq!(speclight::experiment::workload::capacities(10), vec![1, 2, 4, 8, 10]);
/// ```
pub fn capacities(max: usize) -> Vec<usize> {
    let mut out: Vec<usize> = std::iter::successors(Some(1usize), |&p| p.checked_mul(2))
        .take_while(|&p| p <= max)
        .collect();
    if out.last() != Some(&max) && max > 0 {
        out.push(max);
    }
    out
}

/// Per context: drafter and oracle values at each capacity.
type ContextCurves = (Vec<f64>, Vec<f64>);

/// Measures drafter and oracle curves on one corpus (see the module docs):
/// samples one sequence per prompt from the verifier at the configured
/// temperature, then at every `context_stride`-th position builds the
/// drafter's tree and the oracle tree to `P_max` nodes. `on_context` is
/// called once per finished context (from worker threads), for progress.
///
/// Time O(contexts x P_max x (log P_max + model call)); the threads split
/// the contexts.
///
/// # Errors
///
/// [`Error::InvalidArgument`] for zero prompts, sequence length, stride or
/// threads, a held-out text shorter than one prompt, and the model and
/// builder errors ([`Error::CapacityTooLarge`], [`Error::BadTemperature`],
/// ...).
pub fn measure(
    verifier: &NgramLm,
    drafter: &NgramLm,
    heldout: &[u8],
    config: &WorkloadConfig,
    on_context: &(dyn Fn() + Sync),
) -> Result<WorkloadReport> {
    check_config(config, heldout)?;
    let caps = capacities(config.max_capacity);

    // 1. The trace: one sequence per prompt, prompts evenly spaced.
    let mut rng = StdRng::seed_from_u64(config.seed);
    let mut p = verifier.model().with_temperature(config.temperature)?;
    let room = heldout.len() - config.prompt_len;
    let mut prompts = Vec::with_capacity(config.prompts);
    let mut sequences = Vec::with_capacity(config.prompts);
    for k in 0..config.prompts {
        let start = room * k / config.prompts;
        let prompt: Vec<TokenId> = heldout[start..start + config.prompt_len]
            .iter()
            .map(|&b| b.into())
            .collect();
        sequences.push(sample_with_logprobs(
            &mut p,
            &prompt,
            config.sequence_len,
            config.trace_top_k,
            &mut rng,
        )?);
        prompts.push(prompt);
    }
    let positions = sequences.iter().flatten();
    let n_tokens = (config.prompts * config.sequence_len) as f64;
    let mu = positions.clone().map(|t| t.entropy).sum::<f64>() / n_tokens;
    let mu2 = positions.map(|t| t.second_log_moment).sum::<f64>() / n_tokens;

    // 2. The contexts: prompt + the first j sampled tokens, j = 0, stride, ...
    let mut contexts: Vec<Vec<TokenId>> = Vec::new();
    for (prompt, seq) in prompts.iter().zip(&sequences) {
        for j in (0..config.sequence_len).step_by(config.context_stride) {
            let mut c = prompt.clone();
            c.extend(seq[..j].iter().map(|t| t.token));
            contexts.push(c);
        }
    }

    // 3. The trees, contexts split across threads in contiguous chunks.
    let per_context = measure_contexts(verifier, drafter, &contexts, &caps, config, on_context)?;
    let column = |pick: &dyn Fn(&ContextCurves) -> f64| {
        Estimate::of(&per_context.iter().map(pick).collect::<Vec<f64>>())
    };
    let drafter_curve = (0..caps.len()).map(|i| column(&|c| c.0[i])).collect();
    let oracle_curve = (0..caps.len()).map(|i| column(&|c| c.1[i])).collect();
    Ok(WorkloadReport {
        capacities: caps,
        drafter: drafter_curve,
        oracle: oracle_curve,
        sequences,
        mu,
        mu2,
        contexts: per_context.len(),
        context_tokens: contexts,
    })
}

/// The argument checks of [`measure`], before any work. O(1).
fn check_config(config: &WorkloadConfig, heldout: &[u8]) -> Result<()> {
    let bad = |what: &str| {
        Err(Error::InvalidArgument(format!(
            "workload {what} must be at least 1"
        )))
    };
    if config.prompts == 0 {
        return bad("prompt count");
    }
    if config.sequence_len == 0 {
        return bad("sequence length");
    }
    if config.context_stride == 0 {
        return bad("context stride");
    }
    if config.threads == 0 {
        return bad("thread count");
    }
    super::limits::check_workload_size(
        config.prompts,
        config.sequence_len,
        config.context_stride,
        config.trace_top_k,
    )?;
    if config.prompt_len == 0 || heldout.len() < config.prompt_len {
        return Err(Error::InvalidArgument(format!(
            "held-out text of {} bytes is shorter than a prompt of {} bytes",
            heldout.len(),
            config.prompt_len
        )));
    }
    // Checks the capacity before any work.
    TreeBuilder::new(config.max_capacity)?;
    Ok(())
}

/// Step 3 of [`measure`]: drafter and oracle curves at every context, the
/// contexts split across `config.threads` threads in contiguous chunks (so
/// the result does not depend on the thread count).
fn measure_contexts(
    verifier: &NgramLm,
    drafter: &NgramLm,
    contexts: &[Vec<TokenId>],
    caps: &[usize],
    config: &WorkloadConfig,
    on_context: &(dyn Fn() + Sync),
) -> Result<Vec<ContextCurves>> {
    let chunk = contexts.len().div_ceil(config.threads);
    let measure_chunk = |part: &[Vec<TokenId>]| -> Result<Vec<ContextCurves>> {
        let mut p = verifier.model().with_temperature(config.temperature)?;
        let mut q = drafter.model().with_top_k(config.drafter_top_k)?;
        let mut builder = TreeBuilder::new(config.max_capacity)?;
        let mut evaluator = Evaluator::new();
        let mut out = Vec::with_capacity(part.len());
        for context in part {
            q.set_context(context)?;
            p.set_context(context)?;
            let tree = builder.build(&mut q)?;
            evaluator.evaluate(tree, &mut p)?;
            let mut prefix = Vec::with_capacity(tree.len());
            evaluator.prefix_expected(&mut prefix);
            let at = |curve: &[f64], cap: usize| {
                curve
                    .get(cap.min(curve.len()).saturating_sub(1))
                    .copied()
                    .unwrap_or(0.0)
            };
            let drafter_values: Vec<f64> = caps.iter().map(|&c| at(&prefix, c)).collect();
            builder.build(&mut p)?;
            let oracle_values: Vec<f64> =
                caps.iter().map(|&c| at(builder.opt_curve(), c)).collect();
            out.push((drafter_values, oracle_values));
            on_context();
        }
        Ok(out)
    };
    let results: Vec<Result<Vec<ContextCurves>>> = std::thread::scope(|s| {
        let handles: Vec<_> = contexts
            .chunks(chunk.max(1))
            .map(|part| s.spawn(move || measure_chunk(part)))
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(Error::Model("a workload thread panicked".into())))
            })
            .collect()
    });
    let mut per_context = Vec::with_capacity(contexts.len());
    for r in results {
        per_context.extend(r?);
    }
    Ok(per_context)
}

/// The capacity solve of docs/THEORY.md section 5 over a whole workload
/// ([`solve_capacity`]).
#[derive(Debug, Clone, PartialEq)]
pub struct WorkloadSolution {
    /// The best `(n, D)` for the drafter: highest workload tokens per second.
    pub best: CapacityPoint,
    /// The speed of light: the oracle `OPT(n)` averaged over the contexts,
    /// with a free drafter.
    pub speed_of_light: SpeedOfLight,
    /// Number of contexts averaged.
    pub contexts: usize,
}

/// Solves the verifier capacity for a workload: runs
/// [`CapacitySolver::solve_with_verifier`] at each context and combines the
/// `(n, D)` tables as a long generation does, by the ratio of averages:
/// `tokens/s = mean(1 + E[X]) / mean(seconds per pass)` (a row's seconds are
/// `(1 + E[X]) / tokens_per_second`). Rows missing at some context (a tree
/// that cannot hold `n` nodes under limit `D`) are left out. The speed of
/// light applies [`speed_of_light`] to the oracle `OPT(n)` averaged over the
/// contexts, which bounds every deterministic drafter's mean `E[X]`.
///
/// Time: per context, the solver's `D_max` builds and evaluations plus one
/// oracle build, all of `N` nodes.
///
/// # Errors
///
/// [`Error::InvalidArgument`] for no contexts or an empty combined table,
/// and the models' and solver's errors.
///
/// # Examples
///
/// ```
/// use speclight::capacity::{CapacitySolver, CostModel, DraftCost, LatencyProfile};
/// use speclight::{experiment::workload::solve_capacity, NgramLm};
/// let text = b"the cat sat on the mat and the cat ate the rat. ".repeat(10);
/// let (p, q) = (NgramLm::train(&text, 4)?, NgramLm::train(&text[..60], 2)?);
/// let cost = CostModel::new(LatencyProfile::constant(0.02)?, DraftCost::PerStep(0.001), 0.0)?;
/// let solver = CapacitySolver::new(cost, 32, 6)?;
/// let contexts = vec![b"the c".iter().map(|&b| b.into()).collect::<Vec<u32>>()];
/// let sol = solve_capacity(&p.model(), &q.model().with_top_k(8)?, &contexts, &solver)?;
/// assert!(sol.best.speedup <= sol.speed_of_light.speedup + 1e-9);
/// # Ok::<(), speclight::Error>(())
/// ```
pub fn solve_capacity(
    verifier: &NgramModel<'_>,
    drafter: &NgramModel<'_>,
    contexts: &[Vec<TokenId>],
    solver: &CapacitySolver,
) -> Result<WorkloadSolution> {
    if contexts.is_empty() {
        return Err(Error::InvalidArgument(
            "a capacity solve needs at least one context".into(),
        ));
    }
    let (mut p, mut q) = (verifier.clone(), drafter.clone());
    // (n, D) -> (sum of 1 + E[X], sum of seconds, contexts seen)
    let mut rows: std::collections::BTreeMap<(u32, usize), (f64, f64, usize)> =
        std::collections::BTreeMap::new();
    let mut oracle_sum: Vec<f64> = Vec::new();
    let mut max_capacity = 0;
    let mut builder: Option<TreeBuilder> = None;
    for context in contexts {
        p.set_context(context)?;
        q.set_context(context)?;
        let solution = solver.solve_with_verifier(&mut q, &mut p)?;
        // The solver's N: its table's largest capacity.
        max_capacity = solution.table.iter().map(|r| r.capacity).max().unwrap_or(1);
        let builder = match &mut builder {
            Some(b) => b,
            None => builder.insert(TreeBuilder::new(max_capacity)?),
        };
        for row in &solution.table {
            let tokens = 1.0 + row.expected_accepted;
            let entry = rows.entry((row.max_depth, row.capacity)).or_default();
            entry.0 += tokens;
            entry.1 += tokens / row.tokens_per_second;
            entry.2 += 1;
        }
        builder.build(&mut p)?;
        let opt = builder.opt_curve();
        if oracle_sum.len() < opt.len() {
            oracle_sum.resize(opt.len(), 0.0);
        }
        let last = opt.last().copied().unwrap_or(0.0);
        for (n, sum) in oracle_sum.iter_mut().enumerate() {
            *sum += opt.get(n).copied().unwrap_or(last);
        }
    }
    let k = contexts.len();
    let plain = solver.cost().plain_seconds();
    let best = rows
        .iter()
        .filter(|(_, v)| v.2 == k)
        .map(|(&(d, n), &(tokens, seconds, _))| {
            let tokens_per_second = tokens / seconds;
            CapacityPoint {
                capacity: n,
                max_depth: d,
                expected_accepted: tokens / k as f64 - 1.0,
                tokens_per_second,
                speedup: tokens_per_second * plain,
            }
        })
        .reduce(|a, b| {
            if b.tokens_per_second > a.tokens_per_second {
                b
            } else {
                a
            }
        })
        .ok_or_else(|| Error::InvalidArgument("the combined capacity table is empty".into()))?;
    let last = oracle_sum.last().copied().unwrap_or(0.0);
    let sol = speed_of_light(solver.cost(), max_capacity, |n| {
        oracle_sum.get(n - 1).copied().unwrap_or(last) / k as f64
    })?;
    Ok(WorkloadSolution {
        best,
        speed_of_light: sol,
        contexts: k,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::eval::evaluate;
    use crate::model::NextTokenModel;

    const TEXT: &[u8] = b"fn main() {\n    let v = vec![1, 2, 3];\n    for x in &v {\n        println!(\"{x}\");\n    }\n    let total: i32 = v.iter().sum();\n    println!(\"total = {total}\");\n}\n";

    #[test]
    fn prefix_of_a_big_build_is_the_small_build() {
        // What measure() relies on: the first P nodes of a best-first build
        // to P_max nodes are the best-first tree of capacity P.
        let lm = NgramLm::train(&TEXT.repeat(3), 4).unwrap();
        let mut q = lm.model().with_top_k(6).unwrap().with_context(b"let ");
        let big = TreeBuilder::new(64).unwrap().build_owned(&mut q).unwrap();
        for cap in [1, 3, 8, 20, 64] {
            let small = TreeBuilder::new(cap).unwrap().build_owned(&mut q).unwrap();
            assert_eq!(small.tokens(), &big.tokens()[..cap]);
            assert_eq!(small.parent_indices(), &big.parent_indices()[..cap]);
        }
    }

    #[test]
    fn drafter_never_beats_the_oracle_and_curves_grow() {
        let verifier = NgramLm::train(&TEXT.repeat(4), 5).unwrap();
        let drafter = NgramLm::train(TEXT, 2).unwrap();
        let heldout =
            b"    let w = vec![4, 5];\n    for y in &w {\n        println!(\"{y}\");\n    }\n";
        let config = WorkloadConfig {
            prompts: 3,
            prompt_len: 16,
            sequence_len: 12,
            context_stride: 4,
            max_capacity: 32,
            threads: 2,
            ..WorkloadConfig::default()
        };
        let done = std::sync::atomic::AtomicUsize::new(0);
        let tick = || {
            done.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        };
        let r = measure(&verifier, &drafter, heldout, &config, &tick).unwrap();
        assert_eq!(r.contexts, 9);
        assert_eq!(done.into_inner(), 9);
        assert_eq!(r.capacities, vec![1, 2, 4, 8, 16, 32]);
        for i in 0..r.capacities.len() {
            assert!(r.drafter[i].mean <= r.oracle[i].mean + 1e-12);
            if i > 0 {
                assert!(r.oracle[i].mean >= r.oracle[i - 1].mean);
            }
        }
        // Threads do not change the result.
        let one = measure(
            &verifier,
            &drafter,
            heldout,
            &WorkloadConfig {
                threads: 1,
                ..config.clone()
            },
            &|| {},
        )
        .unwrap();
        assert_eq!(one, r);
        // Second method for one context: evaluate a tree of capacity 8 directly.
        let context: Vec<TokenId> = heldout[..16].iter().map(|&b| b.into()).collect();
        let mut p = verifier.model();
        p.set_context(&context).unwrap();
        let mut q = drafter.model().with_top_k(config.drafter_top_k).unwrap();
        q.set_context(&context).unwrap();
        let tree = TreeBuilder::new(8).unwrap().build_owned(&mut q).unwrap();
        let direct = evaluate(&tree, &mut p).unwrap().expected_accepted;
        let oracle = TreeBuilder::new(8).unwrap().build_owned(&mut p).unwrap();
        let best = evaluate(&oracle, &mut p).unwrap().expected_accepted;
        assert!(direct <= best + 1e-12);
        assert!(p.next(&[]).is_ok());
        // The mean entropy is the mean of the per-position entropies.
        let all: Vec<f64> = r.sequences.iter().flatten().map(|t| t.entropy).collect();
        assert!((Estimate::of(&all).mean - r.mu).abs() < 1e-12);
        assert!(r.mu2 >= r.mu * r.mu);
    }

    #[test]
    fn capacity_solve_of_one_context_is_the_solver_itself() {
        use crate::capacity::{CostModel, DraftCost, LatencyProfile};
        let verifier = NgramLm::train(&TEXT.repeat(4), 5).unwrap();
        let drafter = NgramLm::train(TEXT, 2).unwrap();
        let t_v = LatencyProfile::new(&[(0, 0.02), (8, 0.02), (64, 0.05)]).unwrap();
        let cost = CostModel::new(t_v, DraftCost::PerStep(0.002), 0.001).unwrap();
        let solver = CapacitySolver::new(cost, 48, 6).unwrap();
        let context: Vec<TokenId> = b"    let ".iter().map(|&b| b.into()).collect();
        let (p, q) = (verifier.model(), drafter.model().with_top_k(8).unwrap());
        let one = solve_capacity(&p, &q, std::slice::from_ref(&context), &solver).unwrap();
        let (mut p1, mut q1) = (p.clone(), q.clone());
        p1.set_context(&context).unwrap();
        q1.set_context(&context).unwrap();
        let direct = solver.solve_with_verifier(&mut q1, &mut p1).unwrap();
        assert_eq!(
            (one.best.capacity, one.best.max_depth),
            (direct.best.capacity, direct.best.max_depth)
        );
        assert!((one.best.tokens_per_second - direct.best.tokens_per_second).abs() < 1e-9);
        assert!((one.speed_of_light.speedup - direct.speed_of_light.speedup).abs() < 1e-9);
        // The same context twice is the same workload.
        let twice = solve_capacity(&p, &q, &[context.clone(), context], &solver).unwrap();
        assert!((twice.best.tokens_per_second - one.best.tokens_per_second).abs() < 1e-9);
        assert!(twice.best.speedup <= twice.speed_of_light.speedup + 1e-9);
        assert!(solve_capacity(&p, &q, &[], &solver).is_err());
    }

    #[test]
    fn rejects_bad_settings() {
        let lm = NgramLm::train(TEXT, 3).unwrap();
        let base = WorkloadConfig {
            prompt_len: 8,
            ..WorkloadConfig::default()
        };
        for config in [
            WorkloadConfig {
                prompts: 0,
                ..base.clone()
            },
            WorkloadConfig {
                threads: 0,
                ..base.clone()
            },
            WorkloadConfig {
                context_stride: 0,
                ..base.clone()
            },
            WorkloadConfig {
                prompt_len: 10_000,
                ..base.clone()
            },
            WorkloadConfig {
                max_capacity: 0,
                ..base.clone()
            },
            WorkloadConfig {
                temperature: -1.0,
                ..base.clone()
            },
        ] {
            assert!(
                measure(&lm, &lm, TEXT, &config, &|| {}).is_err(),
                "{config:?}"
            );
        }
    }
}
