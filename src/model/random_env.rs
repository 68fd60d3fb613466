use crate::dist::{TokenDist, TokenId};
use crate::error::{Error, Result};
use crate::model::NextTokenModel;
use crate::stats::Estimate;
use rand::{rngs::StdRng, Rng, SeedableRng};
use rand_distr::{Distribution, Gamma};

/// Largest number of tokens a [`RandomEnv`] family may have (2^20), so that a
/// typo cannot allocate without bound.
pub const MAX_ENV_TOKENS: usize = 1 << 20;

/// The family the next-token distributions of a [`RandomEnv`] are drawn from.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum EnvFamily {
    /// `p ~ Dirichlet(alpha, ..., alpha)` over tokens `0..k`.
    Dirichlet {
        /// Concentration `alpha > 0` (small: peaked, large: near uniform).
        alpha: f64,
        /// Number of tokens.
        k: usize,
    },
    /// `p_j` proportional to `j^-s` over tokens `0..n` (token `j - 1` has
    /// rank `j`), with the exponent `s ~ Uniform[exponent_min, exponent_max]`.
    Zipf {
        /// Number of tokens.
        n: usize,
        /// Smallest exponent.
        exponent_min: f64,
        /// Largest exponent.
        exponent_max: f64,
    },
}

/// Random-environment model (docs/THEORY.md section 4b): the distribution at each
/// node is an i.i.d. draw from an [`EnvFamily`].
///
/// The draw at a node is a pure function of the seed and the node's path, so
/// the same tree can be rebuilt and re-evaluated and the builder, evaluator and
/// certificate all see one environment. Each call costs one draw: O(k) for
/// the family's `k` tokens plus an O(k log k) sort. Reproducible for a given
/// `rand` version (`StdRng` is not promised stable across versions).
///
/// # Examples
///
/// ```
/// use speclight::{model::RandomEnv, NextTokenModel};
/// let mut env = RandomEnv::dirichlet(0.5, 8, 42)?;
/// let first = env.next(&[3, 1])?.clone();
/// assert_eq!(env.next(&[3, 1])?, &first);
/// assert_ne!(env.next(&[3, 2])?, &first);
/// # Ok::<(), speclight::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct RandomEnv {
    family: EnvFamily,
    seed: u64,
    gamma: Option<Gamma<f64>>,
    current: Option<TokenDist>,
    weights: Vec<f64>,
}

/// [`RandomEnv::moments`]: `mu` and `mu2` of the family with 95% intervals.
#[derive(Debug, Clone, Copy, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct EnvMoments {
    /// `mu = E[entropy]`.
    pub entropy: Estimate,
    /// `mu2 = E[second log-moment]`.
    pub second_log_moment: Estimate,
}

impl RandomEnv {
    /// A Dirichlet(`alpha`) environment over `k` tokens.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArgument`] unless `alpha` is finite and positive and
    /// `1 <= k <= MAX_ENV_TOKENS`.
    pub fn dirichlet(alpha: f64, k: usize, seed: u64) -> Result<Self> {
        Self::new(EnvFamily::Dirichlet { alpha, k }, seed)
    }

    /// A Zipf environment over `n` tokens with a uniform random exponent in
    /// `[exponent_min, exponent_max]`.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArgument`] unless `0 <= exponent_min <= exponent_max`
    /// are finite and `1 <= n <= MAX_ENV_TOKENS`.
    pub fn zipf(n: usize, exponent_min: f64, exponent_max: f64, seed: u64) -> Result<Self> {
        Self::new(
            EnvFamily::Zipf {
                n,
                exponent_min,
                exponent_max,
            },
            seed,
        )
    }

    /// An environment of `family` with `seed`.
    ///
    /// # Errors
    ///
    /// As [`RandomEnv::dirichlet`] and [`RandomEnv::zipf`].
    pub fn new(family: EnvFamily, seed: u64) -> Result<Self> {
        let bad = |why: String| Err(Error::InvalidArgument(why));
        let size = match family {
            EnvFamily::Dirichlet { k, .. } => k,
            EnvFamily::Zipf { n, .. } => n,
        };
        if !(1..=MAX_ENV_TOKENS).contains(&size) {
            return bad(format!(
                "random environment with {size} tokens: must be between 1 and {MAX_ENV_TOKENS}"
            ));
        }
        let gamma =
            match family {
                EnvFamily::Dirichlet { alpha, .. } => {
                    if !(alpha.is_finite() && alpha > 0.0) {
                        return bad(format!(
                            "dirichlet alpha {alpha} is not a positive finite number"
                        ));
                    }
                    Some(Gamma::new(alpha, 1.0).map_err(|e| {
                        Error::InvalidArgument(format!("dirichlet alpha {alpha}: {e}"))
                    })?)
                }
                EnvFamily::Zipf {
                    exponent_min: lo,
                    exponent_max: hi,
                    ..
                } => {
                    if !(lo.is_finite() && hi.is_finite() && 0.0 <= lo && lo <= hi) {
                        return bad(format!(
                            "zipf exponent range [{lo}, {hi}] is not 0 <= min <= max, finite"
                        ));
                    }
                    None
                }
            };
        Ok(Self {
            family,
            seed,
            gamma,
            current: None,
            weights: Vec::with_capacity(size),
        })
    }

    /// The family.
    pub fn family(&self) -> EnvFamily {
        self.family
    }

    /// The seed.
    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// One i.i.d. draw from the family, using `rng`. O(k log k).
    ///
    /// # Errors
    ///
    /// None in practice (the family was validated); the signature keeps
    /// [`TokenDist`] validation visible.
    pub fn sample_dist<R: Rng + ?Sized>(&mut self, rng: &mut R) -> Result<TokenDist> {
        self.fill_weights(rng);
        TokenDist::from_probs(&self.weights)
    }

    fn fill_weights<R: Rng + ?Sized>(&mut self, rng: &mut R) {
        self.weights.clear();
        match (self.family, &self.gamma) {
            (EnvFamily::Dirichlet { k, .. }, Some(gamma)) => {
                self.weights.extend((0..k).map(|_| gamma.sample(rng)));
            }
            (
                EnvFamily::Zipf {
                    n,
                    exponent_min,
                    exponent_max,
                },
                _,
            ) => {
                let s = exponent_min + (exponent_max - exponent_min) * rng.random::<f64>();
                self.weights.extend((1..=n).map(|j| (j as f64).powf(-s)));
            }
            (EnvFamily::Dirichlet { .. }, None) => {}
        }
        let total: f64 = self.weights.iter().sum();
        if total > 0.0 && total.is_finite() {
            self.weights.iter_mut().for_each(|w| *w /= total);
        } else {
            // Gamma draws with tiny alpha can all underflow to zero: the
            // Dirichlet limit is then a point mass on one token.
            let len = self.weights.len().max(1);
            let pick = rng.random_range(0..len);
            self.weights.clear();
            self.weights.resize(len, 0.0);
            self.weights[pick] = 1.0;
        }
    }

    /// The seed of the draw at `path`: the environment seed mixed with every
    /// token by SplitMix64 steps, so different paths get unrelated streams.
    fn node_seed(&self, path: &[TokenId]) -> u64 {
        let mut h = splitmix64(self.seed ^ 0x5EED_0FE4_F1A0_u64);
        for &t in path {
            h = splitmix64(h ^ (u64::from(t) + 1));
        }
        splitmix64(h ^ path.len() as u64)
    }

    /// Monte-Carlo estimates of `mu` and `mu2` from `samples` independent
    /// draws of the family (seeded with `seed`), with 95% intervals.
    /// O(samples * k log k).
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArgument`] for fewer than 2 samples.
    ///
    /// # Examples
    ///
    /// ```
    /// use speclight::model::RandomEnv;
    /// // Dirichlet(1) over 2 tokens: p ~ U(0,1), E[entropy] = 1/2 exactly.
    /// let m = RandomEnv::dirichlet(1.0, 2, 0)?.moments(4000, 7)?;
    /// assert!(m.entropy.contains(0.5));
    /// # Ok::<(), speclight::Error>(())
    /// ```
    pub fn moments(&self, samples: usize, seed: u64) -> Result<EnvMoments> {
        let mut rng = StdRng::seed_from_u64(seed);
        let mut env = self.clone();
        let mut h = Vec::with_capacity(samples);
        let mut h2 = Vec::with_capacity(samples);
        for _ in 0..samples {
            let d = env.sample_dist(&mut rng)?;
            h.push(d.entropy());
            h2.push(d.second_log_moment());
        }
        Ok(EnvMoments {
            entropy: Estimate::from_samples(&h)?,
            second_log_moment: Estimate::from_samples(&h2)?,
        })
    }
}

fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

impl NextTokenModel for RandomEnv {
    fn next(&mut self, path: &[TokenId]) -> Result<&TokenDist> {
        let mut rng = StdRng::seed_from_u64(self.node_seed(path));
        let dist = self.sample_dist(&mut rng)?;
        Ok(self.current.insert(dist))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bound::renewal_bound;
    use crate::{evaluate, TreeBuilder};

    #[test]
    fn uniform_dirichlet_moments_match_closed_forms() {
        // Dirichlet(1,1): p ~ U(0,1). E[H] = 2 int_0^1 -p ln p dp = 1/2,
        // E[sum p ln^2 p] = 2 int_0^1 p ln^2 p dp = 2 * 2/2^3 = 1/2.
        let seed = 11;
        let m = RandomEnv::dirichlet(1.0, 2, 0)
            .unwrap()
            .moments(20_000, seed)
            .unwrap();
        assert!(m.entropy.contains(0.5), "seed {seed}: {:?}", m.entropy);
        assert!(
            m.second_log_moment.contains(0.5),
            "seed {seed}: {:?}",
            m.second_log_moment
        );
    }

    #[test]
    fn zipf_with_a_fixed_exponent_is_the_zipf_distribution() {
        let mut env = RandomEnv::zipf(5, 1.2, 1.2, 3).unwrap();
        let d = env.next(&[0, 4]).unwrap();
        let total: f64 = (1..=5).map(|j| (j as f64).powf(-1.2)).sum();
        for j in 1..=5u32 {
            let want = (j as f64).powf(-1.2) / total;
            assert!((d.prob_of(j - 1) - want).abs() < 1e-12);
        }
    }

    #[test]
    fn trees_rebuild_and_reevaluate_identically() {
        let mut env = RandomEnv::dirichlet(0.3, 6, 99).unwrap();
        let mut b = TreeBuilder::new(200).unwrap();
        let t1 = b.build_owned(&mut env).unwrap();
        let opt = *b.opt_curve().last().unwrap();
        let t2 = b.build_owned(&mut env).unwrap();
        assert_eq!(t1, t2);
        let ev = evaluate(&t1, &mut env).unwrap().expected_accepted;
        assert!((ev - opt).abs() < 1e-9 * opt.max(1.0));
    }

    #[test]
    fn bad_families_are_refused() {
        assert!(RandomEnv::dirichlet(0.0, 3, 0).is_err());
        assert!(RandomEnv::dirichlet(f64::NAN, 3, 0).is_err());
        assert!(RandomEnv::dirichlet(1.0, 0, 0).is_err());
        assert!(RandomEnv::zipf(4, 2.0, 1.0, 0).is_err());
        assert!(RandomEnv::zipf(4, -1.0, 1.0, 0).is_err());
    }

    /// docs/THEORY.md section 4b holds in a random environment: the mean of
    /// OPT(P) over independent environments stays below (B1). The check is
    /// conservative on both sides: the upper end of OPT's 95% interval
    /// against (B1) at the least favourable end of the moment intervals.
    #[test]
    fn mean_opt_stays_below_b1_in_random_environments() {
        let families = [
            EnvFamily::Dirichlet { alpha: 0.5, k: 8 },
            EnvFamily::Zipf {
                n: 32,
                exponent_min: 0.8,
                exponent_max: 1.6,
            },
        ];
        for family in families {
            let m = RandomEnv::new(family, 0)
                .unwrap()
                .moments(5_000, 1234)
                .unwrap();
            for capacity in [16usize, 256] {
                let mut builder = TreeBuilder::new(capacity).unwrap();
                let opts: Vec<f64> = (0..100u64)
                    .map(|seed| {
                        let mut env = RandomEnv::new(family, seed).unwrap();
                        builder.build(&mut env).unwrap();
                        *builder.opt_curve().last().unwrap()
                    })
                    .collect();
                let opt = Estimate::from_samples(&opts).unwrap();
                let b1_low = renewal_bound(
                    m.entropy.ci_high,
                    m.second_log_moment.ci_low,
                    capacity,
                    None,
                )
                .value();
                eprintln!(
                    "{family:?} P={capacity}: E[OPT] = {:.4} +- {:.4}, B1 >= {b1_low:.4}",
                    opt.mean,
                    opt.ci_high - opt.mean
                );
                assert!(
                    opt.ci_high <= b1_low,
                    "{family:?} P={capacity} (env seeds 0..100, moment seed 1234): \
                     E[OPT] in [{}, {}] but B1 >= {b1_low}",
                    opt.ci_low,
                    opt.ci_high
                );
            }
        }
    }
}
