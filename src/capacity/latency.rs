//! Latency profiles: seconds as a function of a token count (docs/THEORY.md
//! section 5), and the cost model of one speculative iteration.

use crate::error::{Error, Result};

/// The smallest verifier latency accepted, in seconds (1 ns). No forward
/// pass is faster, and a smaller (e.g. subnormal, `1e-320`) time would make
/// tokens per second overflow to infinity and every ratio NaN.
pub const MIN_VERIFIER_SECONDS: f64 = 1e-9;

/// A measured latency curve `T(n)`: seconds for one forward pass over `n`
/// tokens, from points `(n_i, t_i)` with strictly increasing `n_i`.
///
/// - Between points: linear interpolation. On each segment the value moves
///   monotonically from one measured point to the next, so the curve never
///   overshoots the data (a monotone interpolant of monotone data).
/// - Below the first point (in particular `T(0)` when the profile has no
///   `0` row): the first point's latency, flat. A pass over fewer tokens is
///   not assumed faster than the smallest one measured.
/// - Beyond the last point: the straight line through the last two points,
///   with its slope floored at 0 so that a noisy last pair cannot make
///   latency fall with more tokens (and eventually go negative). A
///   one-point profile is flat everywhere.
///
/// Evaluating is O(log m) for `m` points (binary search).
///
/// # Examples
///
/// ```
/// use speclight::capacity::LatencyProfile;
/// let t = LatencyProfile::new(&[(16, 0.020), (32, 0.030), (64, 0.050)])?;
/// assert_eq!(t.at(0), 0.020); // flat below the first point
/// assert!((t.at(24) - 0.025).abs() < 1e-12); // interpolated
/// assert!((t.at(96) - 0.070).abs() < 1e-12); // extrapolated from (32, 64)
/// # Ok::<(), speclight::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct LatencyProfile {
    tokens: Vec<u64>,
    seconds: Vec<f64>,
}

/// One row of a profile file: the CSV header is `draft_tokens,seconds`, the
/// JSON form an array of `{"draft_tokens": N, "seconds": S}` objects.
#[cfg(feature = "serde")]
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Row {
    draft_tokens: u64,
    seconds: f64,
}

impl LatencyProfile {
    /// A profile from `(tokens, seconds)` points in increasing token order.
    ///
    /// # Errors
    ///
    /// [`Error::EmptyLatencyProfile`] for no points,
    /// [`Error::DuplicateLatencyPoint`] for a repeated token count,
    /// [`Error::LatencyTokensNotIncreasing`] for a decreasing one, and
    /// [`Error::InvalidLatency`] for a negative, NaN or infinite time.
    ///
    /// # Examples
    ///
    /// ```
    /// use speclight::{capacity::LatencyProfile, Error};
    /// assert_eq!(LatencyProfile::new(&[]), Err(Error::EmptyLatencyProfile));
    /// assert!(matches!(
    ///     LatencyProfile::new(&[(8, 0.01), (4, 0.01)]),
    ///     Err(Error::LatencyTokensNotIncreasing { index: 1, .. })
    /// ));
    /// ```
    pub fn new(points: &[(u64, f64)]) -> Result<Self> {
        if points.is_empty() {
            return Err(Error::EmptyLatencyProfile);
        }
        for (index, &(tokens, seconds)) in points.iter().enumerate() {
            if !(seconds.is_finite() && seconds >= 0.0) {
                return Err(Error::InvalidLatency { index, seconds });
            }
            if index > 0 {
                let previous = points[index - 1].0;
                if tokens == previous {
                    return Err(Error::DuplicateLatencyPoint {
                        tokens,
                        first: index - 1,
                        second: index,
                    });
                }
                if tokens < previous {
                    return Err(Error::LatencyTokensNotIncreasing {
                        index,
                        tokens,
                        previous,
                    });
                }
            }
        }
        Ok(Self {
            tokens: points.iter().map(|p| p.0).collect(),
            seconds: points.iter().map(|p| p.1).collect(),
        })
    }

    /// The same latency for every token count (a one-point profile).
    ///
    /// # Errors
    ///
    /// [`Error::InvalidLatency`] for a negative, NaN or infinite time.
    ///
    /// # Examples
    ///
    /// ```
    /// use speclight::capacity::LatencyProfile;
    /// assert_eq!(LatencyProfile::constant(0.002)?.at(1000), 0.002);
    /// # Ok::<(), speclight::Error>(())
    /// ```
    pub fn constant(seconds: f64) -> Result<Self> {
        Self::new(&[(0, seconds)])
    }

    /// Parses CSV text with the header `draft_tokens,seconds`, one point per
    /// row (read with the `csv` crate).
    ///
    /// # Errors
    ///
    /// [`Error::Parse`] for a wrong header or a malformed row, then the
    /// checks of [`LatencyProfile::new`] (an empty file or a header alone is
    /// [`Error::EmptyLatencyProfile`]).
    ///
    /// # Examples
    ///
    /// ```
    /// use speclight::capacity::LatencyProfile;
    /// let t = LatencyProfile::from_csv_str("draft_tokens,seconds\n1,0.02\n64,0.03\n")?;
    /// assert_eq!(t.points().count(), 2);
    /// assert!(LatencyProfile::from_csv_str("tokens,time\n1,0.02\n").is_err());
    /// # Ok::<(), speclight::Error>(())
    /// ```
    #[cfg(feature = "csv")]
    pub fn from_csv_str(text: &str) -> Result<Self> {
        Self::from_csv_reader(text.as_bytes())
    }

    /// As [`LatencyProfile::from_csv_str`], from any reader.
    ///
    /// # Errors
    ///
    /// As [`LatencyProfile::from_csv_str`], plus read errors as [`Error::Parse`].
    #[cfg(feature = "csv")]
    pub fn from_csv_reader<R: std::io::Read>(reader: R) -> Result<Self> {
        let mut csv = csv::ReaderBuilder::new()
            .trim(csv::Trim::All)
            .from_reader(reader);
        let header = csv
            .headers()
            .map_err(|e| Error::Parse(format!("latency csv: {e}")))?
            .clone();
        if header.is_empty() {
            return Err(Error::EmptyLatencyProfile);
        }
        if header.iter().collect::<Vec<_>>() != ["draft_tokens", "seconds"] {
            let got: Vec<&str> = header.iter().collect();
            return Err(Error::Parse(format!(
                "latency csv header is {:?}, expected \"draft_tokens,seconds\"",
                got.join(",")
            )));
        }
        let mut points = Vec::new();
        for row in csv.deserialize::<Row>() {
            let row = row.map_err(|e| Error::Parse(format!("latency csv: {e}")))?;
            points.push((row.draft_tokens, row.seconds));
        }
        Self::new(&points)
    }

    /// Parses JSON: an array of `{"draft_tokens": N, "seconds": S}` objects.
    ///
    /// # Errors
    ///
    /// [`Error::Parse`] for malformed JSON, then the checks of
    /// [`LatencyProfile::new`].
    ///
    /// # Examples
    ///
    /// ```
    /// use speclight::capacity::LatencyProfile;
    /// let t = LatencyProfile::from_json_str(r#"[{"draft_tokens": 0, "seconds": 0.02}]"#)?;
    /// assert_eq!(t.at(5), 0.02);
    /// # Ok::<(), speclight::Error>(())
    /// ```
    #[cfg(feature = "serde")]
    pub fn from_json_str(text: &str) -> Result<Self> {
        let rows: Vec<Row> =
            serde_json::from_str(text).map_err(|e| Error::Parse(format!("latency json: {e}")))?;
        let points: Vec<(u64, f64)> = rows.iter().map(|r| (r.draft_tokens, r.seconds)).collect();
        Self::new(&points)
    }

    /// Reads a profile file, JSON when its name ends in `.json` (any case),
    /// CSV otherwise, at most the input limit
    /// ([`crate::input::read_text_limited`]). O(file size).
    ///
    /// # Errors
    ///
    /// [`Error::Io`] (naming the path), [`Error::InputTooLarge`],
    /// [`Error::InputTooLong`], [`Error::NotUtf8`], and the errors of
    /// [`LatencyProfile::from_json_str`] / [`LatencyProfile::from_csv_str`].
    #[cfg(feature = "csv")]
    pub fn from_path(path: impl AsRef<std::path::Path>) -> Result<Self> {
        read_profile(path.as_ref(), Self::from_json_str, Self::from_csv_str)
    }

    /// The measured points, in increasing token order.
    pub fn points(&self) -> impl ExactSizeIterator<Item = (u64, f64)> + '_ {
        self.tokens
            .iter()
            .copied()
            .zip(self.seconds.iter().copied())
    }

    /// Refuses a verifier profile with a point below [`MIN_VERIFIER_SECONDS`]
    /// (named by its row).
    pub(crate) fn check_verifier_floor(&self) -> Result<()> {
        match self.seconds.iter().position(|&s| s < MIN_VERIFIER_SECONDS) {
            Some(index) => Err(Error::LatencyTooSmall {
                index,
                seconds: self.seconds[index],
                min: MIN_VERIFIER_SECONDS,
            }),
            None => Ok(()),
        }
    }

    /// The largest token count measured.
    pub fn last_tokens(&self) -> u64 {
        self.tokens.last().copied().unwrap_or(0)
    }

    /// `T(n)`: see the type docs for interpolation and extrapolation.
    pub fn at(&self, n: usize) -> f64 {
        let n = n as u64;
        let m = self.tokens.len();
        if m == 1 || n <= self.tokens[0] {
            return self.seconds[0];
        }
        let beyond = n >= self.tokens[m - 1];
        // Segment (j - 1, j): the last two points, or the first point above n.
        let j = if beyond {
            m - 1
        } else {
            self.tokens.partition_point(|&t| t <= n)
        };
        let (x0, x1) = (self.tokens[j - 1] as f64, self.tokens[j] as f64);
        let (y0, y1) = (self.seconds[j - 1], self.seconds[j]);
        let slope = (y1 - y0) / (x1 - x0);
        if beyond {
            y1 + slope.max(0.0) * (n as f64 - x1)
        } else {
            y0 + slope * (n as f64 - x0)
        }
    }
}

/// The drafter's cost of one iteration.
///
/// # Examples
///
/// ```
/// use speclight::capacity::{DraftCost, LatencyProfile};
/// // 2 ms per sequential step, whatever its width: 3 levels cost 6 ms.
/// assert!((DraftCost::PerStep(0.002).of_levels(&[1, 4, 2]) - 0.006).abs() < 1e-15);
/// let by_width = DraftCost::ByWidth(LatencyProfile::new(&[(1, 0.001), (4, 0.002)])?);
/// assert!((by_width.of_levels(&[1, 4, 2]) - (0.001 + 0.002 + 0.001 + 1.0 / 3.0 * 0.001)).abs() < 1e-12);
/// # Ok::<(), speclight::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
pub enum DraftCost {
    /// `T_d` seconds per sequential draft step: a tree of depth `d` costs
    /// `d * T_d` (one drafter pass per level, docs/THEORY.md section 5).
    PerStep(f64),
    /// A latency profile over the width of a step: the step that drafts
    /// level `k` of the tree is charged `T_d(w_k)`, `w_k` the number of
    /// nodes at depth `k`, so a tree costs `sum_k T_d(w_k)` over its
    /// non-empty levels.
    ByWidth(LatencyProfile),
}

impl DraftCost {
    /// Cost of a tree whose level `k + 1` has `widths[k]` nodes; empty
    /// levels (width 0) cost nothing.
    pub fn of_levels(&self, widths: &[usize]) -> f64 {
        widths
            .iter()
            .filter(|&&w| w > 0)
            .map(|&w| self.step(w))
            .sum()
    }

    /// Cost of one step of width `w >= 1`.
    pub fn step(&self, w: usize) -> f64 {
        match self {
            DraftCost::PerStep(t) => *t,
            DraftCost::ByWidth(profile) => profile.at(w),
        }
    }

    fn validate(&self) -> Result<()> {
        match self {
            DraftCost::PerStep(t) if !(t.is_finite() && *t >= 0.0) => Err(Error::InvalidLatency {
                index: 0,
                seconds: *t,
            }),
            _ => Ok(()),
        }
    }
}

/// The hardware side of docs/THEORY.md section 5: verifier latency `T_v(n)`,
/// drafter cost and a fixed overhead `T_0` per iteration.
///
/// # Examples
///
/// ```
/// use speclight::capacity::{CostModel, DraftCost, LatencyProfile};
/// let cost = CostModel::new(LatencyProfile::constant(0.025)?, DraftCost::PerStep(0.002), 0.001)?;
/// // (1 + E[X]) / (T_v(n) + draft + T_0), times the plain-decoding time T_v(0) + T_0.
/// let tps = cost.tokens_per_second(3.0, 8, 0.004);
/// assert!((tps - 4.0 / 0.030).abs() < 1e-9);
/// assert!((cost.speedup(tps) - tps * 0.026).abs() < 1e-12);
/// # Ok::<(), speclight::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct CostModel {
    verifier: LatencyProfile,
    draft: DraftCost,
    overhead: f64,
}

impl CostModel {
    /// Validates and bundles the three costs.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidLatency`] for a negative, NaN or infinite `T_d` or
    /// `T_0`; [`Error::LatencyTooSmall`] for a verifier point below
    /// [`MIN_VERIFIER_SECONDS`] (a zero or subnormal time would make tokens
    /// per second infinite and speedup ratios NaN).
    pub fn new(verifier: LatencyProfile, draft: DraftCost, overhead: f64) -> Result<Self> {
        draft.validate()?;
        verifier.check_verifier_floor()?;
        if !(overhead.is_finite() && overhead >= 0.0) {
            return Err(Error::InvalidLatency {
                index: 0,
                seconds: overhead,
            });
        }
        let plain = verifier.at(0) + overhead;
        if plain <= 0.0 {
            return Err(Error::InvalidLatency {
                index: 0,
                seconds: plain,
            });
        }
        Ok(Self {
            verifier,
            draft,
            overhead,
        })
    }

    /// `T_v(n)`: the verifier's pass over `n` draft tokens.
    pub fn verifier(&self) -> &LatencyProfile {
        &self.verifier
    }

    /// The drafter's cost.
    pub fn draft(&self) -> &DraftCost {
        &self.draft
    }

    /// `T_0`: fixed seconds per iteration (sampling, scheduling, ...).
    pub fn overhead(&self) -> f64 {
        self.overhead
    }

    /// Seconds per token of plain decoding: `T_v(0) + T_0`.
    pub fn plain_seconds(&self) -> f64 {
        self.verifier.at(0) + self.overhead
    }

    /// docs/THEORY.md section 5:
    /// `tokens_per_second = (1 + E[X]) / (T_v(n) + draft_seconds + T_0)`,
    /// where `draft_seconds` is the drafter's cost of the tree
    /// ([`DraftCost::of_levels`]; `D * T_d` for a per-step cost).
    pub fn tokens_per_second(&self, expected_accepted: f64, n: usize, draft_seconds: f64) -> f64 {
        (1.0 + expected_accepted) / (self.verifier.at(n) + draft_seconds + self.overhead)
    }

    /// docs/THEORY.md section 5: `speedup = tokens_per_second * (T_v(0) + T_0)`,
    /// the ratio to plain decoding (one token per pass over no draft tokens).
    pub fn speedup(&self, tokens_per_second: f64) -> f64 {
        tokens_per_second * self.plain_seconds()
    }
}

/// A profile file parsed by `json` when its name ends in `.json` (any case),
/// by `csv` otherwise, reading at most the input limit. Shared by the one-
/// and two-axis profiles. O(file size).
#[cfg(feature = "csv")]
pub(crate) fn read_profile<T>(
    path: &std::path::Path,
    json: impl FnOnce(&str) -> Result<T>,
    csv: impl FnOnce(&str) -> Result<T>,
) -> Result<T> {
    let text = crate::input::read_text_limited(path)?;
    let is_json = path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("json"));
    if is_json {
        json(&text)
    } else {
        csv(&text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interpolates_between_points_and_hits_them() {
        let pts = [(0, 0.02), (16, 0.02), (32, 0.03), (128, 0.07)];
        let t = LatencyProfile::new(&pts).unwrap();
        for &(n, s) in &pts {
            assert_eq!(t.at(n as usize), s);
        }
        // Second method: the segment's line through its end points.
        for n in 17..32 {
            let want = 0.02 + (n as f64 - 16.0) * (0.03 - 0.02) / 16.0;
            assert!((t.at(n) - want).abs() < 1e-15);
        }
        // Monotone data gives a monotone curve.
        for n in 0..300 {
            assert!(t.at(n + 1) >= t.at(n));
        }
    }

    #[test]
    fn extrapolates_from_the_last_two_points() {
        let t = LatencyProfile::new(&[(1, 0.01), (64, 0.02), (128, 0.04)]).unwrap();
        let slope = 0.02 / 64.0;
        for n in [128, 129, 200, 4096] {
            let want = 0.04 + slope * (n as f64 - 128.0);
            assert!((t.at(n) - want).abs() < 1e-12, "n = {n}");
        }
        // A falling last pair does not make latency fall further.
        let noisy = LatencyProfile::new(&[(1, 0.03), (2, 0.02)]).unwrap();
        assert_eq!(noisy.at(10_000), 0.02);
    }

    #[test]
    fn t_v_zero_without_a_zero_point_is_the_first_latency() {
        let t = LatencyProfile::new(&[(4, 0.011), (8, 0.013)]).unwrap();
        assert_eq!(t.at(0), 0.011);
        assert_eq!(t.at(3), 0.011);
        let one = LatencyProfile::new(&[(5, 0.5)]).unwrap();
        assert_eq!((one.at(0), one.at(5), one.at(50)), (0.5, 0.5, 0.5));
    }

    #[test]
    fn rejects_bad_profiles_with_specific_errors() {
        assert_eq!(LatencyProfile::new(&[]), Err(Error::EmptyLatencyProfile));
        assert_eq!(
            LatencyProfile::new(&[(1, 0.1), (2, 0.2), (2, 0.3)]),
            Err(Error::DuplicateLatencyPoint {
                tokens: 2,
                first: 1,
                second: 2
            })
        );
        assert_eq!(
            LatencyProfile::new(&[(4, 0.1), (2, 0.2)]),
            Err(Error::LatencyTokensNotIncreasing {
                index: 1,
                tokens: 2,
                previous: 4
            })
        );
        assert!(matches!(
            LatencyProfile::new(&[(1, 0.1), (2, -0.2)]),
            Err(Error::InvalidLatency { index: 1, .. })
        ));
        assert!(matches!(
            LatencyProfile::new(&[(1, f64::NAN)]),
            Err(Error::InvalidLatency { index: 0, .. })
        ));
        assert!(CostModel::new(
            LatencyProfile::constant(0.0).unwrap(),
            DraftCost::PerStep(0.0),
            0.0
        )
        .is_err());
        assert!(CostModel::new(
            LatencyProfile::constant(0.1).unwrap(),
            DraftCost::PerStep(f64::NAN),
            0.0
        )
        .is_err());
    }

    /// Issue 12 item 15: latencies of 1e-320 s gave inf tokens/s and NaN
    /// ratios; now refused by name.
    #[test]
    fn subnormal_verifier_latency_is_refused_not_inf() {
        let tiny = LatencyProfile::new(&[(0, 0.02), (8, 1e-320)]).unwrap();
        assert_eq!(
            CostModel::new(tiny, DraftCost::PerStep(0.0), 0.0),
            Err(Error::LatencyTooSmall {
                index: 1,
                seconds: 1e-320,
                min: MIN_VERIFIER_SECONDS
            })
        );
        let all_tiny = LatencyProfile::constant(1e-320).unwrap();
        assert!(matches!(
            CostModel::new(all_tiny, DraftCost::PerStep(0.0), 0.0),
            Err(Error::LatencyTooSmall { index: 0, .. })
        ));
        // At the floor every rate stays finite.
        let floor = LatencyProfile::constant(MIN_VERIFIER_SECONDS).unwrap();
        let cost = CostModel::new(floor, DraftCost::PerStep(0.0), 0.0).unwrap();
        let tps = cost.tokens_per_second(1000.0, 1000, 0.0);
        assert!(tps.is_finite() && cost.speedup(tps).is_finite());
    }

    #[cfg(feature = "csv")]
    #[test]
    fn csv_and_json_agree_and_bad_files_fail() {
        let csv = "draft_tokens,seconds\n0,0.02\n16,0.02\n64,0.035\n";
        let json = r#"[{"draft_tokens":0,"seconds":0.02},{"draft_tokens":16,"seconds":0.02},
                       {"draft_tokens":64,"seconds":0.035}]"#;
        let a = LatencyProfile::from_csv_str(csv).unwrap();
        let b = LatencyProfile::from_json_str(json).unwrap();
        assert_eq!(a, b);
        assert_eq!(
            LatencyProfile::from_csv_str(""),
            Err(Error::EmptyLatencyProfile)
        );
        assert_eq!(
            LatencyProfile::from_csv_str("draft_tokens,seconds\n"),
            Err(Error::EmptyLatencyProfile)
        );
        assert!(matches!(
            LatencyProfile::from_csv_str("draft_tokens,seconds\n1,NaN\n"),
            Err(Error::InvalidLatency { index: 0, .. })
        ));
        assert!(matches!(
            LatencyProfile::from_csv_str("draft_tokens,seconds\n-1,0.1\n"),
            Err(Error::Parse(_))
        ));
        assert!(matches!(
            LatencyProfile::from_csv_str("draft_tokens,seconds\n1,abc\n"),
            Err(Error::Parse(_))
        ));
        assert!(matches!(
            LatencyProfile::from_json_str("[{\"draft_tokens\":1}]"),
            Err(Error::Parse(_))
        ));
    }

    #[test]
    fn width_profile_charges_each_non_empty_level() {
        let w = LatencyProfile::new(&[(1, 0.001), (8, 0.003)]).unwrap();
        let cost = DraftCost::ByWidth(w.clone());
        let widths = [1, 3, 8, 0];
        let want: f64 = [1, 3, 8].iter().map(|&x| w.at(x)).sum();
        assert!((cost.of_levels(&widths) - want).abs() < 1e-15);
        assert_eq!(DraftCost::PerStep(0.5).of_levels(&widths), 1.5);
    }
}
