//! The tree policies the tuner compares, named by [`Policy`]: static trees
//! ([`static_trees`]) fixed before decoding, and dynamic ones
//! ([`dynamic`]) rebuilt at every iteration from the drafter's lists.

pub(super) mod dynamic;
pub(super) mod static_trees;

pub use dynamic::{DynamicBestFirst, EagleTree};
pub use static_trees::{chain_tree, kary_tree, RankTree};

use crate::error::{Error, Result};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use std::str::FromStr;

/// A tree policy of a tuning report. It is written (by `Display` and in
/// JSON) as the name the report shows, and read back from it:
///
/// | policy | name |
/// | --- | --- |
/// | `BestFirst` | `best-first` |
/// | `Chain` | `chain` |
/// | `KAry { k: 2 }` | `k-ary (k=2)` |
/// | `DynamicBestFirst` | `best-first (dynamic)` |
/// | `Eagle { top_k: 8, depth: 6 }` | `eagle (top_k=8, depth=6)` |
///
/// # Examples
///
/// ```
/// use speclight::tune::Policy;
/// let eagle = Policy::Eagle { top_k: 8, depth: 6 };
/// assert_eq!(eagle.to_string(), "eagle (top_k=8, depth=6)");
/// assert_eq!("k-ary (k=3)".parse::<Policy>()?, Policy::KAry { k: 3 });
/// assert_eq!(serde_json::to_string(&Policy::DynamicBestFirst).unwrap(), r#""best-first (dynamic)""#);
/// # Ok::<(), speclight::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Policy {
    /// The static tree built best-first over the estimated per-depth model
    /// (`docs/THEORY.md` section 3).
    BestFirst,
    /// The chain of the drafter's rank-0 tokens ([`chain_tree`]).
    Chain,
    /// The complete `k`-ary tree of ranks, breadth first ([`kary_tree`]).
    KAry {
        /// Children per node.
        k: u32,
    },
    /// Best-first rebuilt at every iteration from the drafter's own lists
    /// ([`DynamicBestFirst`]).
    DynamicBestFirst,
    /// The EAGLE-2-style expand-then-rerank tree ([`EagleTree`]).
    Eagle {
        /// Nodes expanded per level and children per node.
        top_k: usize,
        /// Levels drafted.
        depth: u32,
    },
}

impl Policy {
    /// The best-first policy a baseline is compared with on the same
    /// iterations: static best-first for the static baselines, dynamic
    /// best-first for EAGLE (which sees the same per-iteration information);
    /// `None` for the best-first policies themselves.
    pub fn reference(&self) -> Option<Policy> {
        match self {
            Policy::BestFirst | Policy::DynamicBestFirst => None,
            Policy::Chain | Policy::KAry { .. } => Some(Policy::BestFirst),
            Policy::Eagle { .. } => Some(Policy::DynamicBestFirst),
        }
    }
}

impl fmt::Display for Policy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Policy::BestFirst => f.write_str("best-first"),
            Policy::Chain => f.write_str("chain"),
            Policy::KAry { k } => write!(f, "k-ary (k={k})"),
            Policy::DynamicBestFirst => f.write_str("best-first (dynamic)"),
            Policy::Eagle { top_k, depth } => write!(f, "eagle (top_k={top_k}, depth={depth})"),
        }
    }
}

impl FromStr for Policy {
    type Err = Error;

    /// Reads a name written by `Display`. O(length).
    fn from_str(s: &str) -> Result<Self> {
        let bad = || Error::InvalidArgument(format!("unknown tree policy {s:?}"));
        match s {
            "best-first" => Ok(Policy::BestFirst),
            "chain" => Ok(Policy::Chain),
            "best-first (dynamic)" => Ok(Policy::DynamicBestFirst),
            _ => {
                if let Some(k) = s
                    .strip_prefix("k-ary (k=")
                    .and_then(|r| r.strip_suffix(')'))
                {
                    return Ok(Policy::KAry {
                        k: k.parse().map_err(|_| bad())?,
                    });
                }
                let inner = s
                    .strip_prefix("eagle (top_k=")
                    .and_then(|r| r.strip_suffix(')'))
                    .ok_or_else(bad)?;
                let (top_k, depth) = inner.split_once(", depth=").ok_or_else(bad)?;
                Ok(Policy::Eagle {
                    top_k: top_k.parse().map_err(|_| bad())?,
                    depth: depth.parse().map_err(|_| bad())?,
                })
            }
        }
    }
}

impl Serialize for Policy {
    fn serialize<S: Serializer>(&self, serializer: S) -> std::result::Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Policy {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> std::result::Result<Self, D::Error> {
        let name = String::deserialize(deserializer)?;
        name.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_match_the_report() {
        let all = [
            (Policy::BestFirst, "best-first"),
            (Policy::Chain, "chain"),
            (Policy::KAry { k: 12 }, "k-ary (k=12)"),
            (Policy::DynamicBestFirst, "best-first (dynamic)"),
            (
                Policy::Eagle { top_k: 4, depth: 3 },
                "eagle (top_k=4, depth=3)",
            ),
        ];
        for (policy, name) in all {
            assert_eq!(policy.to_string(), name);
            assert_eq!(name.parse::<Policy>().unwrap(), policy);
            let json = serde_json::to_string(&policy).unwrap();
            assert_eq!(json, format!("\"{name}\""));
            assert_eq!(serde_json::from_str::<Policy>(&json).unwrap(), policy);
        }
    }

    #[test]
    fn malformed_names_are_refused() {
        for name in [
            "",
            "k-ary (k=)",
            "k-ary (k=-1)",
            "eagle (top_k=3)",
            "best-first ",
            "Chain",
        ] {
            assert!(name.parse::<Policy>().is_err(), "{name:?}");
        }
    }
}
