//! Configuration of [`super::tune`]: the training / held-out split, the
//! capacities, the baselines' shapes, and their checks.

use super::acceptance::Z95;
use super::policy::Policy;
use crate::capacity::CostModel;
use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};

/// Largest capacity the tuner accepts (trees, curves and walks stay small).
pub const MAX_TUNE_CAPACITY: usize = 4096;

/// Which sequences are held out for measurement; the rest train.
/// Splitting by sequence (not by record) keeps the overlapping windows of
/// one text on one side.
///
/// - [`Split::new`]: sequence `s` is held out when
///   `splitmix64(s ^ salt) / 2^64 < fraction`, for a trace of one source;
/// - [`Split::from_seq`]: sequences `>= first` are held out, for a trace
///   written from a training text and then a held-out text.
///
/// # Examples
///
/// ```
/// use speclight::tune::Split;
/// let split = Split::new(0.25, 0)?;
/// let held = (0..10_000u64).filter(|&s| split.is_heldout(s)).count();
/// assert!((2300..2700).contains(&held));
/// assert!(Split::from_seq(100).is_heldout(100) && !Split::from_seq(100).is_heldout(99));
/// # Ok::<(), speclight::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub enum Split {
    /// Hash of the sequence id below a fraction.
    Hash {
        /// Fraction of sequences held out.
        fraction: f64,
        /// Salt of the hash.
        salt: u64,
    },
    /// Sequence ids from this one on.
    FromSeq(u64),
}

impl Split {
    /// Holds out about `fraction` of the sequences, chosen by hash.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArgument`] unless `0 < fraction < 1`.
    pub fn new(fraction: f64, salt: u64) -> Result<Self> {
        if !(fraction > 0.0 && fraction < 1.0) {
            return Err(Error::InvalidArgument(format!(
                "hold-out fraction {fraction} is not strictly between 0 and 1"
            )));
        }
        Ok(Self::Hash { fraction, salt })
    }

    /// Holds out the sequences with id `>= first`.
    pub fn from_seq(first: u64) -> Self {
        Self::FromSeq(first)
    }

    /// Whether sequence `seq` is held out.
    pub fn is_heldout(&self, seq: u64) -> bool {
        match *self {
            Split::Hash { fraction, salt } => {
                let mut z = (seq ^ salt).wrapping_add(0x9e37_79b9_7f4a_7c15);
                z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
                z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
                z ^= z >> 31;
                ((z >> 11) as f64) / ((1u64 << 53) as f64) < fraction
            }
            Split::FromSeq(first) => seq >= first,
        }
    }
}

/// Settings of [`super::tune`].
#[derive(Debug, Clone)]
pub struct TuneConfig {
    /// Capacities (draft tokens per verifier pass) to choose trees for and
    /// compare policies at.
    pub capacities: Vec<usize>,
    /// The training / held-out split.
    pub split: Split,
    /// Depth limit for trees, at least 1 (default: every depth the
    /// training data support, see
    /// [`super::AcceptanceMatrix::usable_depth`]).
    pub max_depth: Option<u32>,
    /// Branching of the fixed k-ary baseline.
    pub kary: u32,
    /// EAGLE-style baseline: nodes expanded per level and children each.
    pub eagle_top_k: usize,
    /// EAGLE-style baseline: levels drafted.
    pub eagle_depth: u32,
    /// Latency model: when given, the capacity solver picks the capacity and
    /// depth limit of the chosen tree.
    pub cost: Option<CostModel>,
    /// Normal quantile of the intervals ([`Z95`] for 95%).
    pub z: f64,
    /// Bootstrap replicates (resampling training sequences) for the
    /// prediction's estimation error; below 2, the delta method is used.
    pub bootstrap: usize,
}

/// Seed of the bootstrap weights (fixed: a report is reproducible).
pub(super) const BOOTSTRAP_SEED: u64 = 0x7475_6e65;

impl Default for TuneConfig {
    /// Capacities 1, 2, 4, ..., 64; 20% held out; 100 bootstrap replicates; binary k-ary baseline;
    /// EAGLE-2's published shape (top_k 10, 6 levels, scaled down to top_k
    /// 8 since most traces record fewer candidates); 95% intervals.
    fn default() -> Self {
        Self {
            capacities: vec![1, 2, 4, 8, 16, 32, 64],
            split: Split::Hash {
                fraction: 0.2,
                salt: 0,
            },
            max_depth: None,
            kary: 2,
            eagle_top_k: 8,
            eagle_depth: 6,
            cost: None,
            z: Z95,
            bootstrap: 100,
        }
    }
}

impl TuneConfig {
    /// The capacities asked for, checked. O(capacities).
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArgument`] for an empty list or a capacity outside
    /// `1..=`[`MAX_TUNE_CAPACITY`]; [`Error::ZeroDepth`] for a depth limit
    /// of 0 (as [`crate::TreeBuilder::set_max_depth`] refuses it).
    pub(super) fn checked_capacities(&self) -> Result<Vec<usize>> {
        if self.capacities.is_empty() {
            return Err(Error::InvalidArgument("no capacities to tune for".into()));
        }
        if let Some(&c) = self
            .capacities
            .iter()
            .find(|&&c| c == 0 || c > MAX_TUNE_CAPACITY)
        {
            return Err(Error::InvalidArgument(format!(
                "capacity {c} is not in 1..={MAX_TUNE_CAPACITY}"
            )));
        }
        if self.max_depth == Some(0) {
            return Err(Error::ZeroDepth);
        }
        Ok(self.capacities.clone())
    }

    /// The depth limit of the trees: the one asked for, at most `usable`
    /// (the depths the training data support), and at least 1.
    pub(super) fn depth_limit(&self, usable: u32) -> u32 {
        self.max_depth.map_or(usable, |d| d.min(usable)).max(1)
    }

    /// The fixed k-ary baseline.
    pub(super) fn kary_policy(&self) -> Policy {
        Policy::KAry { k: self.kary }
    }
}
