//! The end-to-end speculative decoding loop on real models (docs/THEORY.md
//! section 1): build a draft tree from the drafter at the current text, walk
//! it with tokens sampled from the verifier, append the accepted tokens and
//! the bonus token, repeat.
//!
//! This is the second method next to the DP evaluator (section 2): averaged
//! over the contexts the loop visits, the simulated accepted length agrees
//! with `E[X]` of the same trees, and the text it produces is distributed as
//! plain sampling from the verifier (the walk is lossless).

use crate::build::{Frontier, TreeBuilder};
use crate::dist::TokenId;
use crate::error::{Error, Result};
use crate::eval::Evaluator;
use crate::model::ContextModel;
use crate::model::NextTokenModel;
use crate::stats::{Estimate, MeanAccumulator};
use crate::tree::DraftTree;
use rand::{rngs::StdRng, Rng, SeedableRng};

/// The lossless verification walk of docs/THEORY.md section 1 on one tree: sample
/// `y ~ p(. | context + accepted)`; descend into the child with token `y` if
/// there is one, otherwise `y` is the bonus token. The accepted tokens are
/// written into `accepted` (cleared first); the bonus token is returned.
/// Time O(depth x (|T| + k)) with `k` the verifier's list length.
///
/// # Errors
///
/// [`Error::Model`] when the verifier's draw falls in its tail (a truncated
/// verifier cannot name the token it sampled: use a complete one), and
/// whatever the verifier returns.
///
/// # Examples
///
/// ```
/// use rand::{rngs::StdRng, SeedableRng};
/// use speclight::verify_walk;
/// use speclight::{Iid, TokenDist, TreeBuilder};
/// let mut p = Iid::new(TokenDist::from_probs(&[1.0])?); // always token 0
/// let tree = TreeBuilder::new(3)?.build_owned(&mut p)?; // the chain 0-0-0
/// let mut accepted = Vec::new();
/// let bonus = verify_walk(&tree, &mut p, &mut StdRng::seed_from_u64(1), &mut accepted)?;
/// assert_eq!((accepted.len(), bonus), (3, 0));
/// # Ok::<(), speclight::Error>(())
/// ```
pub fn verify_walk<V, R>(
    tree: &DraftTree,
    verifier: &mut V,
    rng: &mut R,
    accepted: &mut Vec<TokenId>,
) -> Result<TokenId>
where
    V: NextTokenModel + ?Sized,
    R: Rng + ?Sized,
{
    let end = tree.walk(
        |_, accepted| verifier.next(accepted).map(|d| d.sample(rng)),
        accepted,
    )?;
    end.bonus.ok_or_else(|| {
        Error::Model(
            "the verifier's draw fell in its truncated tail: verify with a complete distribution"
                .into(),
        )
    })
}

/// Plain autoregressive sampling of `len` tokens from `model` after `prompt`
/// (no drafting): the reference the simulator's output must match in
/// distribution. Returns the new tokens only. Time O(len x model call).
///
/// # Errors
///
/// [`Error::Model`] when a draw falls in the model's truncated tail, and
/// whatever the model returns.
///
/// # Examples
///
/// ```
/// use rand::{rngs::StdRng, SeedableRng};
/// use speclight::{sample_text, NgramLm};
/// let lm = NgramLm::train(b"abcabcabcabc", 3)?;
/// let mut rng = StdRng::seed_from_u64(5);
/// let text = sample_text(&mut lm.model(), &[97, 98], 10, &mut rng)?;
/// assert_eq!(text.len(), 10);
/// # Ok::<(), speclight::Error>(())
/// ```
pub fn sample_text<M, R>(
    model: &mut M,
    prompt: &[TokenId],
    len: usize,
    rng: &mut R,
) -> Result<Vec<TokenId>>
where
    M: ContextModel + ?Sized,
    R: Rng + ?Sized,
{
    let mut text = prompt.to_vec();
    for _ in 0..len {
        model.set_context(&text)?;
        let y = model.next(&[])?.sample(rng).ok_or_else(|| {
            Error::Model(
                "a draw fell in the model's truncated tail: sample from a complete distribution"
                    .into(),
            )
        })?;
        text.push(y);
    }
    Ok(text.split_off(prompt.len()))
}

/// Settings of [`simulate`].
///
/// # Examples
///
/// ```
/// let config = speclight::SimConfig { iterations: 100, seed: 7, with_dp: true };
/// assert_eq!(config.iterations, 100);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SimConfig {
    /// Number of draft-and-verify iterations.
    pub iterations: usize,
    /// Seed of the verifier's sampling.
    pub seed: u64,
    /// Also evaluate every tree exactly under the verifier (one extra
    /// verifier call per internal node) and report the paired comparison.
    pub with_dp: bool,
}

/// The paired comparison of simulated and exact accepted lengths.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DpAgreement {
    /// Mean over iterations of the DP's `E[X]` for the tree built there.
    pub mean_expected: f64,
    /// Mean over iterations of `X_i - E[X_i]`, with its standard error. The
    /// differences are martingale increments (each has mean zero given the
    /// past), so the usual i.i.d. formula applies even though the contexts
    /// are dependent.
    pub difference: Estimate,
}

/// What [`simulate`] measured.
#[derive(Debug, Clone, PartialEq)]
pub struct Simulation {
    /// Number of iterations run.
    pub iterations: usize,
    /// The generated tokens (after the prompt), accepted and bonus tokens in
    /// order.
    pub output: Vec<TokenId>,
    /// `accept_histogram[k]` = iterations that accepted exactly `k` draft tokens.
    pub accept_histogram: Vec<u64>,
    /// Mean accepted draft tokens per iteration, `mean X`, with its standard
    /// error (i.i.d. formula: the iterations of one text are weakly dependent
    /// through their contexts, so treat it as approximate).
    pub accepted: Estimate,
    /// The paired comparison with the DP evaluator, when asked for.
    pub dp: Option<DpAgreement>,
}

impl Simulation {
    /// Tokens per verifier pass: `1 + mean X` (the accepted tokens plus the
    /// bonus token).
    pub fn tokens_per_iteration(&self) -> f64 {
        1.0 + self.accepted.mean
    }

    /// Normal-approximation confidence interval for tokens per iteration:
    /// `1 + mean X -+ z * std_err` (`z = 1.96` for 95%).
    ///
    /// # Examples
    ///
    /// ```
    /// use speclight::{stats::Estimate, Simulation};
    /// let s = Simulation { iterations: 4, output: vec![], accept_histogram: vec![2, 2],
    ///     accepted: Estimate::from_mean_and_error(0.5, 0.25, 4), dp: None };
    /// assert_eq!(s.confidence_interval(2.0), (1.0, 2.0));
    /// ```
    pub fn confidence_interval(&self, z: f64) -> (f64, f64) {
        let mid = self.tokens_per_iteration();
        let se = self.accepted.std_error;
        (mid - z * se, mid + z * se)
    }
}

/// Runs `config.iterations` rounds of speculative decoding after `prompt`:
/// the drafter builds a tree with `builder` at the current text, the
/// verifier walks it ([`verify_walk`]), the accepted tokens and the bonus
/// token are appended. Seeded: reruns agree.
///
/// Time per iteration: one tree build (`P log P` plus one drafter call per
/// expanded node), a walk (depth x verifier call), and with `with_dp` one
/// verifier call per internal node.
///
/// # Errors
///
/// [`Error::InvalidArgument`] for zero iterations or an empty prompt, and
/// whatever the models return (see [`verify_walk`]).
///
/// # Examples
///
/// ```
/// use speclight::{simulate, SimConfig};
/// use speclight::{NgramLm, TreeBuilder};
/// let text = b"the quick brown fox jumps over the lazy dog. ".repeat(20);
/// let verifier_lm = NgramLm::train(&text, 4)?;
/// let drafter_lm = NgramLm::train(&text[..200], 2)?;
/// let (mut p, mut q) = (verifier_lm.model(), drafter_lm.model().with_top_k(4)?);
/// let mut builder = TreeBuilder::new(8)?;
/// let config = SimConfig { iterations: 50, seed: 1, with_dp: true };
/// let prompt: Vec<u32> = b"the ".iter().map(|&b| b.into()).collect();
/// let sim = simulate(&mut q, &mut p, &mut builder, &prompt, &config)?;
/// assert!(sim.tokens_per_iteration() >= 1.0);
/// assert_eq!(sim.accept_histogram.iter().sum::<u64>(), 50);
/// # Ok::<(), speclight::Error>(())
/// ```
pub fn simulate<D, V, F>(
    drafter: &mut D,
    verifier: &mut V,
    builder: &mut TreeBuilder<F>,
    prompt: &[TokenId],
    config: &SimConfig,
) -> Result<Simulation>
where
    D: ContextModel + ?Sized,
    V: ContextModel + ?Sized,
    F: Frontier,
{
    if config.iterations == 0 {
        return Err(Error::InvalidArgument(
            "simulation needs at least one iteration".into(),
        ));
    }
    if prompt.is_empty() {
        return Err(Error::InvalidArgument(
            "simulation needs a non-empty prompt".into(),
        ));
    }
    let mut rng = StdRng::seed_from_u64(config.seed);
    let mut evaluator = Evaluator::new();
    let mut text = prompt.to_vec();
    let mut accepted = Vec::new();
    let mut histogram: Vec<u64> = Vec::new();
    let mut moments = MeanAccumulator::new();
    let (mut dp_sum, mut differences) = (0.0, MeanAccumulator::new());
    for _ in 0..config.iterations {
        drafter.set_context(&text)?;
        let tree = builder.build(drafter)?;
        verifier.set_context(&text)?;
        let expected = if config.with_dp {
            Some(evaluator.evaluate(tree, verifier)?.expected_accepted)
        } else {
            None
        };
        let bonus = verify_walk(tree, verifier, &mut rng, &mut accepted)?;
        text.extend_from_slice(&accepted);
        text.push(bonus);
        let x = accepted.len();
        if let Some(expected) = expected {
            dp_sum += expected;
            differences.push(x as f64 - expected);
        }
        if histogram.len() <= x {
            histogram.resize(x + 1, 0);
        }
        histogram[x] += 1;
        moments.push(x as f64);
    }
    let n = config.iterations;
    let dp = config.with_dp.then(|| DpAgreement {
        mean_expected: dp_sum / n as f64,
        difference: differences.estimate(),
    });
    Ok(Simulation {
        iterations: n,
        output: text.split_off(prompt.len()),
        accept_histogram: histogram,
        accepted: moments.estimate(),
        dp,
    })
}

#[cfg(all(test, feature = "corpora"))]
mod tests {
    use super::*;
    use crate::experiment::corpus::{load, Corpus};
    use crate::model::NgramLm;
    use statrs::distribution::{ChiSquared, ContinuousCDF};

    // Small and fast in debug mode: an order-3 verifier on 40 KB of the Rust
    // book, an order-2 drafter on 4 KB truncated to its top 8 bytes, trees of
    // 8 nodes, 6000 iterations.
    const VERIFIER_ORDER: usize = 3;
    const ITERATIONS: usize = 6000;

    struct Fixture {
        verifier: NgramLm,
        drafter: NgramLm,
        train: Vec<u8>,
        prompt: Vec<TokenId>,
    }

    fn fixture() -> Fixture {
        let text = load(Corpus::RustBook).unwrap();
        let train = text.train[..40_000].to_vec();
        Fixture {
            verifier: NgramLm::train(&train, VERIFIER_ORDER).unwrap(),
            drafter: NgramLm::train(&train[..4_000], 2).unwrap(),
            prompt: text.heldout[..16].iter().map(|&b| b.into()).collect(),
            train,
        }
    }

    fn run(f: &Fixture, seed: u64, with_dp: bool) -> Simulation {
        let mut p = f.verifier.model();
        let mut q = f.drafter.model().with_top_k(8).unwrap();
        let mut builder = TreeBuilder::new(8).unwrap();
        let config = SimConfig {
            iterations: ITERATIONS,
            seed,
            with_dp,
        };
        simulate(&mut q, &mut p, &mut builder, &f.prompt, &config).unwrap()
    }

    /// Pearson's chi-square of the next-byte counts after each context in
    /// `contexts` (histories of `VERIFIER_ORDER - 1` bytes) in `text`,
    /// against the verifier's exact distribution there. Cells with an
    /// expected count below 5 are pooled. Returns `(statistic, dof)`.
    fn chi_square(lm: &NgramLm, text: &[u8], contexts: &[Vec<u8>]) -> (f64, f64) {
        let h = VERIFIER_ORDER - 1;
        let mut model = lm.model();
        let (mut stat, mut dof) = (0.0, 0.0);
        for ctx in contexts {
            let mut counts = [0u64; 256];
            for i in h..text.len() {
                if &text[i - h..i] == ctx.as_slice() {
                    counts[text[i] as usize] += 1;
                }
            }
            let n: u64 = counts.iter().sum();
            assert!(n >= 100, "context {ctx:?} seen only {n} times");
            let probs = *model.with_context_ref(ctx).full_probs(&[]).unwrap();
            let (mut pooled_obs, mut pooled_exp, mut cells) = (0.0, 0.0, 0.0);
            for w in 0..256 {
                let (obs, exp) = (counts[w] as f64, n as f64 * probs[w]);
                if exp >= 5.0 {
                    stat += (obs - exp).powi(2) / exp;
                    cells += 1.0;
                } else {
                    pooled_obs += obs;
                    pooled_exp += exp;
                }
            }
            stat += (pooled_obs - pooled_exp).powi(2) / pooled_exp;
            dof += cells; // (cells + 1 pooled) - 1
        }
        (stat, dof)
    }

    /// The fixed contexts: the six most frequent histories of the training text.
    fn frequent_contexts(train: &[u8]) -> Vec<Vec<u8>> {
        let mut counts = std::collections::HashMap::<&[u8], usize>::new();
        for w in train.windows(VERIFIER_ORDER - 1) {
            *counts.entry(w).or_default() += 1;
        }
        let mut by_count: Vec<(&[u8], usize)> = counts.into_iter().collect();
        by_count.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
        by_count.iter().take(6).map(|(c, _)| c.to_vec()).collect()
    }

    fn p_value(stat: f64, dof: f64) -> f64 {
        1.0 - ChiSquared::new(dof).unwrap().cdf(stat)
    }

    fn bytes_of(tokens: &[TokenId]) -> Vec<u8> {
        tokens.iter().map(|&t| t as u8).collect()
    }

    #[test]
    fn simulated_acceptance_agrees_with_the_dp_evaluator() {
        let f = fixture();
        let seed = 11;
        let sim = run(&f, seed, true);
        let dp = sim.dp.unwrap();
        println!(
            "seed {seed}: simulated mean X {:.4} +- {:.4}, DP mean E[X] {:.4}, paired diff {:.4} +- {:.4}",
            sim.accepted.mean,
            sim.accepted.std_error,
            dp.mean_expected,
            dp.difference.mean,
            dp.difference.std_error
        );
        assert!(dp.difference.std_error > 0.0);
        assert!(dp.difference.mean.abs() < 4.0 * dp.difference.std_error);
        assert!((sim.accepted.mean - dp.mean_expected - dp.difference.mean).abs() < 1e-9);
        // The output is exactly the accepted tokens plus one bonus per iteration.
        let tokens: u64 = sim
            .accept_histogram
            .iter()
            .enumerate()
            .map(|(x, &c)| (x as u64 + 1) * c)
            .sum();
        assert_eq!(tokens as usize, sim.output.len());
        let (lo, hi) = sim.confidence_interval(1.96);
        assert!(lo < sim.tokens_per_iteration() && sim.tokens_per_iteration() < hi);
    }

    #[test]
    fn simulator_output_is_distributed_as_the_verifier() {
        let f = fixture();
        let seed = 23;
        let sim = run(&f, seed, false);
        let mut text = bytes_of(&f.prompt);
        text.extend(bytes_of(&sim.output));
        let contexts = frequent_contexts(&f.train);
        let (stat, dof) = chi_square(&f.verifier, &text, &contexts);
        let p = p_value(stat, dof);
        println!(
            "seed {seed}: {} bytes, chi2 {stat:.1} on {dof} dof, p = {p:.3}",
            text.len()
        );
        assert!(
            p > 1e-3,
            "speculative output differs from the verifier: p = {p}"
        );
    }

    #[test]
    fn chi_square_test_detects_text_not_from_the_verifier() {
        // Power check of the test above: plain samples from the verifier pass,
        // plain samples from the drafter (a different model) fail.
        let f = fixture();
        let seed = 29;
        let mut rng = StdRng::seed_from_u64(seed);
        let contexts = frequent_contexts(&f.train);
        let len = 10_000;
        let from_p = sample_text(&mut f.verifier.model(), &f.prompt, len, &mut rng).unwrap();
        let from_q = sample_text(&mut f.drafter.model(), &f.prompt, len, &mut rng).unwrap();
        let (stat, dof) = chi_square(&f.verifier, &bytes_of(&from_p), &contexts);
        println!("seed {seed}: verifier text chi2 {stat:.1} on {dof} dof");
        assert!(p_value(stat, dof) > 1e-3);
        let (stat, dof) = chi_square(&f.verifier, &bytes_of(&from_q), &contexts);
        println!("seed {seed}: drafter text chi2 {stat:.1} on {dof} dof");
        assert!(p_value(stat, dof) < 1e-6);
    }

    #[test]
    fn rejects_bad_arguments_and_truncated_verifiers() {
        let f = fixture();
        let mut p = f.verifier.model();
        let mut q = f.drafter.model();
        let mut builder = TreeBuilder::new(4).unwrap();
        let config = SimConfig {
            iterations: 0,
            seed: 0,
            with_dp: false,
        };
        assert!(simulate(&mut q, &mut p, &mut builder, &f.prompt, &config).is_err());
        let config = SimConfig {
            iterations: 5,
            ..config
        };
        assert!(simulate(&mut q, &mut p, &mut builder, &[], &config).is_err());
        assert!(matches!(p.set_context(&[1000]), Err(Error::Model(_))));
        // A verifier cut to its top byte: some draw lands in the tail.
        let mut cut = f.verifier.model().with_top_k(1).unwrap();
        let config = SimConfig {
            iterations: 200,
            ..config
        };
        assert!(matches!(
            simulate(&mut q, &mut cut, &mut builder, &f.prompt, &config),
            Err(Error::Model(_))
        ));
    }
}
