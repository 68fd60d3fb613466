//! A runtime controller for servers that embed the crate: per-step
//! acceptance observations in, the chain length (capacity and depth) for the
//! next step out, from a batch latency profile (docs/THEORY.md section 5 with
//! the batch terms of [`super::ScheduleCost`]).

use super::schedule::ScheduleCost;
use crate::error::{Error, Result};

/// Longest chain a controller may choose.
pub const MAX_CONTROLLER_DEPTH: usize = 256;

/// Controller settings.
///
/// # Examples
///
/// ```
/// let c = speclight::capacity::ControllerConfig::default();
/// assert!(c.half_life_steps > 0.0 && c.hysteresis >= 0.0);
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ControllerConfig {
    /// Half-life of the exponentially weighted counts, in steps: an
    /// observation `h` steps old weighs `2^(-h / half_life_steps)`.
    pub half_life_steps: f64,
    /// Relative gain in predicted tokens per second a new length must
    /// offer over the current one before the controller switches (0.03 =
    /// 3%): without it, noise in the estimates makes the choice flap.
    pub hysteresis: f64,
    /// Weighted trials below which a depth's own estimate is not trusted;
    /// it then takes the estimate of the deepest trusted depth (acceptance
    /// per depth assumed stationary beyond what was recently drafted).
    pub min_trials: f64,
    /// Acceptance assumed before any observation.
    pub prior_acceptance: f64,
}

impl Default for ControllerConfig {
    fn default() -> Self {
        Self {
            half_life_steps: 50.0,
            hysteresis: 0.03,
            min_trials: 8.0,
            prior_acceptance: 0.5,
        }
    }
}

/// The controller's choice for the next step.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Decision {
    /// Draft tokens per request (0: do not speculate).
    pub capacity: usize,
    /// Drafter steps (the chain's depth, equal to `capacity`).
    pub max_depth: u32,
    /// Predicted system tokens per second at that length.
    pub tokens_per_second: f64,
}

/// Keeps exponentially weighted per-depth acceptance counts of the
/// drafter's first choice and picks the chain length that maximises
/// `b (1 + E[X](k)) / (T_v(b, k) + k T_d(b) + T_0)` for the next batch size
/// `b`, with hysteresis. Accepted lengths identify only the first choice's
/// acceptance, so the choice is a chain (capacity = depth).
///
/// [`Controller::observe`] costs O(K + sum of accepted lengths) and
/// [`Controller::next`] O(K log m) (`m` latency points); neither allocates
/// (the counts are sized once, in [`Controller::new`]).
///
/// # Examples
///
/// ```
/// use speclight::capacity::{BatchLatencyProfile, Controller, ControllerConfig, LatencyProfile, ScheduleCost};
/// let t_v = BatchLatencyProfile::new(&[(1, 0, 0.02), (1, 8, 0.021), (64, 0, 0.03), (64, 8, 0.2)])?;
/// let cost = ScheduleCost::new(t_v, LatencyProfile::constant(0.001)?, 0.0)?;
/// let mut c = Controller::new(cost, 8, ControllerConfig::default())?;
/// for _ in 0..200 {
///     c.observe(4, &[4, 4, 3, 4])?; // 4 requests drafted 4 tokens each
/// }
/// assert!(c.next(1).capacity >= 4);
/// # Ok::<(), speclight::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct Controller {
    cost: ScheduleCost,
    config: ControllerConfig,
    decay: f64,
    /// `accepted[d]`: weighted requests that accepted depth `d + 1`.
    accepted: Vec<f64>,
    /// `trials[d]`: weighted requests that drafted depth `d + 1` and accepted depth `d`.
    trials: Vec<f64>,
    current: usize,
}

impl Controller {
    /// A controller choosing chain lengths `0..=max_length`.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArgument`] for `max_length` outside
    /// `1..=`[`MAX_CONTROLLER_DEPTH`], a half-life that is not positive and
    /// finite, a negative or non-finite hysteresis or `min_trials`, or a
    /// prior outside `(0, 1)`.
    pub fn new(cost: ScheduleCost, max_length: usize, config: ControllerConfig) -> Result<Self> {
        let bad = |m: String| Err(Error::InvalidArgument(m));
        if !(1..=MAX_CONTROLLER_DEPTH).contains(&max_length) {
            return bad(format!(
                "controller length {max_length} is outside 1..={MAX_CONTROLLER_DEPTH}"
            ));
        }
        if !(config.half_life_steps.is_finite() && config.half_life_steps > 0.0) {
            return bad(format!(
                "half-life {} is not positive",
                config.half_life_steps
            ));
        }
        let non_negative = |x: f64| x.is_finite() && x >= 0.0;
        if !(non_negative(config.hysteresis) && non_negative(config.min_trials)) {
            return bad("hysteresis and min_trials must be finite and >= 0".into());
        }
        if !(config.prior_acceptance > 0.0 && config.prior_acceptance < 1.0) {
            return bad(format!(
                "prior acceptance {} is outside (0, 1)",
                config.prior_acceptance
            ));
        }
        Ok(Self {
            cost,
            decay: 0.5f64.powf(1.0 / config.half_life_steps),
            config,
            accepted: vec![0.0; max_length],
            trials: vec![0.0; max_length],
            current: 0,
        })
    }

    /// The chain length in use (the last decision).
    pub fn current(&self) -> usize {
        self.current
    }

    /// Records one step: every request drafted `capacity_used` tokens and
    /// accepted `accepted[i]` of them. Older observations decay first.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArgument`] for an accepted length above
    /// `capacity_used` (nothing is recorded then).
    pub fn observe(&mut self, capacity_used: usize, accepted: &[u32]) -> Result<()> {
        if let Some(&x) = accepted.iter().find(|&&x| x as usize > capacity_used) {
            return Err(Error::InvalidArgument(format!(
                "a request accepted {x} draft tokens of {capacity_used}"
            )));
        }
        for (a, t) in self.accepted.iter_mut().zip(self.trials.iter_mut()) {
            *a *= self.decay;
            *t *= self.decay;
        }
        let drafted = capacity_used.min(self.accepted.len());
        for &x in accepted {
            let x = x as usize;
            // Depths 1..=x accepted; depth x + 1 tried and refused (if drafted).
            for d in 0..x.min(drafted) {
                self.accepted[d] += 1.0;
                self.trials[d] += 1.0;
            }
            if x < drafted {
                self.trials[x] += 1.0;
            }
        }
        Ok(())
    }

    /// The estimated first-choice acceptance at depth `d + 1`.
    fn acceptance(&self, d: usize, fallback: f64) -> f64 {
        if self.trials[d] >= self.config.min_trials {
            self.accepted[d] / self.trials[d]
        } else {
            fallback
        }
    }

    /// The chain length for the next step at batch size `b`: the argmax of
    /// predicted tokens per second, kept at the current length unless the
    /// argmax beats it by more than the hysteresis.
    pub fn next(&mut self, batch_size: u64) -> Decision {
        let mut fallback = self.config.prior_acceptance;
        let (mut reach, mut expected) = (1.0, 0.0);
        let mut best = (0usize, self.cost.plain_tokens_per_second(batch_size));
        let mut current_tps = best.1;
        for k in 1..=self.accepted.len() {
            let a = self.acceptance(k - 1, fallback);
            if self.trials[k - 1] >= self.config.min_trials {
                fallback = a;
            }
            reach *= a;
            expected += reach;
            let depth = u32::try_from(k).unwrap_or(u32::MAX);
            let tps = self.cost.tokens_per_second(batch_size, expected, k, depth);
            if tps > best.1 {
                best = (k, tps);
            }
            if k == self.current {
                current_tps = tps;
            }
        }
        if best.0 != self.current && best.1 > current_tps * (1.0 + self.config.hysteresis) {
            self.current = best.0;
            current_tps = best.1;
        }
        Decision {
            capacity: self.current,
            max_depth: u32::try_from(self.current).unwrap_or(u32::MAX),
            tokens_per_second: current_tps,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::capacity::{BatchLatencyProfile, LatencyProfile};

    fn cost() -> ScheduleCost {
        let t_v = BatchLatencyProfile::new(&[
            (1, 0, 0.020),
            (1, 8, 0.021),
            (64, 0, 0.030),
            (64, 8, 0.200),
        ])
        .unwrap();
        ScheduleCost::new(t_v, LatencyProfile::constant(0.001).unwrap(), 0.0).unwrap()
    }

    #[test]
    fn counts_follow_the_definition() {
        let config = ControllerConfig {
            half_life_steps: 1e12,
            ..ControllerConfig::default()
        };
        let mut c = Controller::new(cost(), 4, config).unwrap();
        c.observe(3, &[0, 1, 3, 2]).unwrap();
        // depth 1: 4 tried, 3 accepted; depth 2: 3 tried, 2 accepted; depth 3: 2 tried, 1 accepted.
        let near = |a: &[f64], b: &[f64]| a.iter().zip(b).all(|(x, y)| (x - y).abs() < 1e-9);
        assert!(near(&c.trials, &[4.0, 3.0, 2.0, 0.0]), "{:?}", c.trials);
        assert!(near(&c.accepted, &[3.0, 2.0, 1.0, 0.0]), "{:?}", c.accepted);
        assert!(c.observe(1, &[2]).is_err());
    }

    #[test]
    fn picks_the_brute_force_argmax_and_holds_within_hysteresis() {
        let config = ControllerConfig {
            hysteresis: 0.0,
            min_trials: 0.0,
            ..ControllerConfig::default()
        };
        let mut c = Controller::new(cost(), 8, config).unwrap();
        for _ in 0..400 {
            c.observe(8, &[8, 2, 5, 8, 1, 0, 8, 3]).unwrap();
        }
        for b in [1, 8, 32, 64] {
            let d = c.next(b);
            // Second method: E[X](k) = sum_{j <= k} prod a_i, scanned directly.
            let mut best = (0, c.cost.plain_tokens_per_second(b));
            for k in 1..=8 {
                let e: f64 = (1..=k)
                    .map(|j| (0..j).map(|i| c.accepted[i] / c.trials[i]).product::<f64>())
                    .sum();
                let tps = c.cost.tokens_per_second(b, e, k, k as u32);
                if tps > best.1 {
                    best = (k, tps);
                }
            }
            assert_eq!(d.capacity, best.0, "b = {b}");
        }
        // With 50% hysteresis a small predicted gain no longer moves it.
        let sticky = ControllerConfig {
            hysteresis: 0.5,
            ..config
        };
        let mut s = Controller::new(cost(), 8, sticky).unwrap();
        s.current = 3;
        for _ in 0..400 {
            s.observe(8, &[8, 2, 5, 8, 1, 0, 8, 3]).unwrap();
        }
        let mut free = s.clone();
        free.config.hysteresis = 0.0;
        let moved = free.next(1);
        assert_ne!(moved.capacity, 3, "the test needs a better length than 3");
        let held = s.next(1);
        assert_eq!(held.capacity, 3);
        assert!(moved.tokens_per_second <= held.tokens_per_second * 1.5);
    }

    #[test]
    fn rejects_bad_settings() {
        let d = ControllerConfig::default();
        assert!(Controller::new(cost(), 0, d).is_err());
        assert!(Controller::new(cost(), MAX_CONTROLLER_DEPTH + 1, d).is_err());
        for bad in [
            ControllerConfig {
                half_life_steps: 0.0,
                ..d
            },
            ControllerConfig {
                hysteresis: f64::NAN,
                ..d
            },
            ControllerConfig {
                prior_acceptance: 1.0,
                ..d
            },
        ] {
            assert!(Controller::new(cost(), 4, bad).is_err(), "{bad:?}");
        }
    }
}
