//! Two-axis verifier latency: seconds for one pass over `b` requests that
//! each carry `n` draft tokens (plus the root), `T_v(b, n)` of
//! docs/THEORY.md section 5 extended to batches.

use super::latency::LatencyProfile;
use crate::error::{Error, Result};

/// Most distinct batch sizes a profile may list.
pub const MAX_PROFILE_BATCH_SIZES: usize = 4096;

/// A measured latency surface `T_v(b, n)` from rows
/// `(batch_size, draft_tokens, seconds)`.
///
/// Rows are grouped by batch size (non-decreasing, each at least 1); within
/// a batch size the token counts increase strictly, as in a one-axis
/// [`LatencyProfile`], which gives the curve `T_v(b_i, .)` of each measured
/// batch size `b_i` (with its interpolation and extrapolation in `n`).
///
/// Between measured batch sizes, `T_v(b, n)` is linear in `b` between
/// `T_v(b_i, n)` and `T_v(b_{i+1}, n)` (both from their own curves), so the
/// surface passes through every measured point and stays between its
/// neighbours. Below the smallest measured batch size it is that batch
/// size's curve (flat, as the one-axis profile is below its first point);
/// above the largest, the straight line through the last two batch sizes at
/// the same `n`, with its slope floored at 0 (latency never falls with load).
/// A one-axis file is the profile of batch size 1.
///
/// Evaluating is O(log m + log k) for `m` batch sizes with `k` points each.
///
/// # Examples
///
/// ```
/// use speclight::capacity::BatchLatencyProfile;
/// let t = BatchLatencyProfile::new(&[
///     (1, 0, 0.020), (1, 8, 0.022),
///     (8, 0, 0.024), (8, 8, 0.040),
/// ])?;
/// assert_eq!(t.at(1, 8), 0.022);
/// assert!((t.at(4, 0) - (0.020 + 3.0 / 7.0 * 0.004)).abs() < 1e-12);
/// assert!((t.at(15, 8) - 0.058).abs() < 1e-12); // extrapolated in b
/// # Ok::<(), speclight::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct BatchLatencyProfile {
    batch_sizes: Vec<u64>,
    curves: Vec<LatencyProfile>,
}

/// One row of a two-axis JSON profile; `batch_size` defaults to 1.
#[cfg(feature = "serde")]
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Row {
    #[serde(default = "one")]
    batch_size: u64,
    draft_tokens: u64,
    seconds: f64,
}

#[cfg(feature = "serde")]
fn one() -> u64 {
    1
}

impl BatchLatencyProfile {
    /// A profile from `(batch_size, draft_tokens, seconds)` rows.
    ///
    /// # Errors
    ///
    /// [`Error::EmptyLatencyProfile`] for no rows, [`Error::LatencyBatchSize`]
    /// for a batch size of 0 or one below the row before, more than
    /// [`MAX_PROFILE_BATCH_SIZES`] batch sizes, then the checks of
    /// [`LatencyProfile::new`] within each batch size and
    /// [`Error::LatencyTooSmall`] for a time below
    /// [`super::MIN_VERIFIER_SECONDS`]. Every error names the row (0-based,
    /// header excluded).
    ///
    /// # Examples
    ///
    /// ```
    /// use speclight::{capacity::BatchLatencyProfile, Error};
    /// assert!(matches!(
    ///     BatchLatencyProfile::new(&[(4, 0, 0.02), (2, 0, 0.02)]),
    ///     Err(Error::LatencyBatchSize { index: 1, batch_size: 2, .. })
    /// ));
    /// ```
    pub fn new(rows: &[(u64, u64, f64)]) -> Result<Self> {
        if rows.is_empty() {
            return Err(Error::EmptyLatencyProfile);
        }
        let mut batch_sizes = Vec::new();
        let mut curves = Vec::new();
        let mut start = 0;
        while start < rows.len() {
            let b = rows[start].0;
            check_batch_size(rows, start)?;
            let end = start + rows[start..].iter().take_while(|r| r.0 == b).count();
            if end < rows.len() {
                check_batch_size(rows, end)?;
            }
            let points: Vec<(u64, f64)> = rows[start..end].iter().map(|r| (r.1, r.2)).collect();
            let curve = LatencyProfile::new(&points).map_err(|e| shift_row(e, start))?;
            curve
                .check_verifier_floor()
                .map_err(|e| shift_row(e, start))?;
            batch_sizes.push(b);
            curves.push(curve);
            if batch_sizes.len() > MAX_PROFILE_BATCH_SIZES {
                return Err(Error::LatencyBatchSize {
                    index: start,
                    batch_size: b,
                    reason: format!(
                        "is past the limit of {MAX_PROFILE_BATCH_SIZES} distinct batch sizes"
                    ),
                });
            }
            start = end;
        }
        Ok(Self {
            batch_sizes,
            curves,
        })
    }

    /// The one-axis profile as batch size 1.
    ///
    /// # Errors
    ///
    /// [`Error::LatencyTooSmall`] for a point below [`super::MIN_VERIFIER_SECONDS`].
    pub fn from_one_axis(profile: LatencyProfile) -> Result<Self> {
        profile.check_verifier_floor()?;
        Ok(Self {
            batch_sizes: vec![1],
            curves: vec![profile],
        })
    }

    /// Parses CSV with the header `batch_size,draft_tokens,seconds`, or the
    /// one-axis header `draft_tokens,seconds` (batch size 1).
    ///
    /// # Errors
    ///
    /// [`Error::Parse`] for another header or a malformed row (naming the
    /// row), then the checks of [`BatchLatencyProfile::new`].
    ///
    /// # Examples
    ///
    /// ```
    /// use speclight::capacity::BatchLatencyProfile;
    /// let two = BatchLatencyProfile::from_csv_str("batch_size,draft_tokens,seconds\n1,0,0.02\n4,0,0.03\n")?;
    /// assert_eq!(two.batch_sizes(), &[1, 4]);
    /// let one = BatchLatencyProfile::from_csv_str("draft_tokens,seconds\n0,0.02\n")?;
    /// assert_eq!(one.batch_sizes(), &[1]);
    /// # Ok::<(), speclight::Error>(())
    /// ```
    #[cfg(feature = "csv")]
    pub fn from_csv_str(text: &str) -> Result<Self> {
        let mut csv = csv::ReaderBuilder::new()
            .trim(csv::Trim::All)
            .from_reader(text.as_bytes());
        let header: Vec<String> = csv
            .headers()
            .map_err(|e| Error::Parse(format!("latency csv: {e}")))?
            .iter()
            .map(str::to_owned)
            .collect();
        if header.is_empty() || header == [""] {
            return Err(Error::EmptyLatencyProfile);
        }
        let two_axis = match header.join(",").as_str() {
            "batch_size,draft_tokens,seconds" => true,
            "draft_tokens,seconds" => false,
            got => {
                return Err(Error::Parse(format!(
                    "latency csv header is {got:?}, expected \"batch_size,draft_tokens,seconds\" or \"draft_tokens,seconds\""
                )))
            }
        };
        let mut rows = Vec::new();
        for (index, record) in csv.records().enumerate() {
            let record =
                record.map_err(|e| Error::Parse(format!("latency csv row {index}: {e}")))?;
            rows.push(parse_record(&record, index, two_axis)?);
        }
        Self::new(&rows)
    }

    /// Parses JSON: an array of `{"batch_size": B, "draft_tokens": N,
    /// "seconds": S}` objects (`batch_size` may be omitted: 1).
    ///
    /// # Errors
    ///
    /// [`Error::Parse`] for malformed JSON, then the checks of
    /// [`BatchLatencyProfile::new`].
    #[cfg(feature = "serde")]
    pub fn from_json_str(text: &str) -> Result<Self> {
        let rows: Vec<Row> =
            serde_json::from_str(text).map_err(|e| Error::Parse(format!("latency json: {e}")))?;
        let rows: Vec<(u64, u64, f64)> = rows
            .iter()
            .map(|r| (r.batch_size, r.draft_tokens, r.seconds))
            .collect();
        Self::new(&rows)
    }

    /// Reads a two-axis profile file, JSON when its name ends in `.json`
    /// (any case), CSV otherwise, at most the input limit. O(file size).
    ///
    /// # Errors
    ///
    /// The errors of reading the file ([`Error::Io`] naming the path, the
    /// size and UTF-8 errors) and of [`BatchLatencyProfile::from_json_str`] /
    /// [`BatchLatencyProfile::from_csv_str`].
    #[cfg(feature = "csv")]
    pub fn from_path(path: impl AsRef<std::path::Path>) -> Result<Self> {
        super::latency::read_profile(path.as_ref(), Self::from_json_str, Self::from_csv_str)
    }

    /// The measured batch sizes, increasing.
    pub fn batch_sizes(&self) -> &[u64] {
        &self.batch_sizes
    }

    /// The largest token count measured at any batch size.
    pub fn last_tokens(&self) -> u64 {
        self.curves
            .iter()
            .map(LatencyProfile::last_tokens)
            .max()
            .unwrap_or(0)
    }

    /// `T_v(b, n)`: see the type docs for interpolation in both axes.
    pub fn at(&self, batch_size: u64, n: usize) -> f64 {
        let m = self.batch_sizes.len();
        if m == 1 || batch_size <= self.batch_sizes[0] {
            return self.curves[0].at(n);
        }
        let beyond = batch_size >= self.batch_sizes[m - 1];
        let j = if beyond {
            m - 1
        } else {
            self.batch_sizes.partition_point(|&b| b <= batch_size)
        };
        let (x0, x1) = (self.batch_sizes[j - 1] as f64, self.batch_sizes[j] as f64);
        let (y0, y1) = (self.curves[j - 1].at(n), self.curves[j].at(n));
        let slope = (y1 - y0) / (x1 - x0);
        if beyond {
            y1 + slope.max(0.0) * (batch_size as f64 - x1)
        } else {
            y0 + slope * (batch_size as f64 - x0)
        }
    }
}

/// Row `index` must have a batch size of at least 1, not below the row before.
fn check_batch_size(rows: &[(u64, u64, f64)], index: usize) -> Result<()> {
    let b = rows[index].0;
    let reason = if b == 0 {
        Some("is 0: a pass serves at least one request".to_owned())
    } else if index > 0 && b < rows[index - 1].0 {
        Some(format!(
            "follows {}: rows must be grouped by increasing batch size",
            rows[index - 1].0
        ))
    } else {
        None
    };
    match reason {
        Some(reason) => Err(Error::LatencyBatchSize {
            index,
            batch_size: b,
            reason,
        }),
        None => Ok(()),
    }
}

/// Re-numbers a one-axis validation error from its group's row to the file's row.
fn shift_row(e: Error, offset: usize) -> Error {
    match e {
        Error::LatencyTokensNotIncreasing {
            index,
            tokens,
            previous,
        } => Error::LatencyTokensNotIncreasing {
            index: index + offset,
            tokens,
            previous,
        },
        Error::DuplicateLatencyPoint {
            tokens,
            first,
            second,
        } => Error::DuplicateLatencyPoint {
            tokens,
            first: first + offset,
            second: second + offset,
        },
        Error::InvalidLatency { index, seconds } => Error::InvalidLatency {
            index: index + offset,
            seconds,
        },
        Error::LatencyTooSmall {
            index,
            seconds,
            min,
        } => Error::LatencyTooSmall {
            index: index + offset,
            seconds,
            min,
        },
        other => other,
    }
}

#[cfg(feature = "csv")]
fn parse_record(
    record: &csv::StringRecord,
    index: usize,
    two_axis: bool,
) -> Result<(u64, u64, f64)> {
    let want = if two_axis { 3 } else { 2 };
    if record.len() != want {
        return Err(Error::Parse(format!(
            "latency csv row {index}: {} fields, expected {want}",
            record.len()
        )));
    }
    let field = |i: usize| record.get(i).unwrap_or("");
    let int = |i: usize, name: &str| {
        field(i).parse::<u64>().map_err(|e| {
            Error::Parse(format!(
                "latency csv row {index}: {name} {:?}: {e}",
                field(i)
            ))
        })
    };
    let (batch, tokens_at) = if two_axis {
        (int(0, "batch_size")?, 1)
    } else {
        (1, 0)
    };
    let tokens = int(tokens_at, "draft_tokens")?;
    let seconds = field(tokens_at + 1).parse::<f64>().map_err(|e| {
        Error::Parse(format!(
            "latency csv row {index}: seconds {:?}: {e}",
            field(tokens_at + 1)
        ))
    })?;
    Ok((batch, tokens, seconds))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grid() -> BatchLatencyProfile {
        BatchLatencyProfile::new(&[
            (1, 0, 0.020),
            (1, 16, 0.022),
            (4, 0, 0.024),
            (4, 16, 0.030),
            (16, 0, 0.030),
            (16, 16, 0.060),
        ])
        .unwrap()
    }

    #[test]
    fn hits_every_measured_point() {
        let t = grid();
        for (b, n, s) in [
            (1, 0, 0.020),
            (4, 16, 0.030),
            (16, 0, 0.030),
            (16, 16, 0.060),
        ] {
            assert_eq!(t.at(b, n), s, "({b}, {n})");
        }
    }

    #[test]
    fn bilinear_inside_flat_below_and_floored_beyond() {
        let t = grid();
        // Second method: interpolate in n first at both batch sizes by hand.
        let at4 = 0.024 + 8.0 / 16.0 * 0.006;
        let at16 = 0.030 + 8.0 / 16.0 * 0.030;
        let want = at4 + (10.0 - 4.0) / 12.0 * (at16 - at4);
        assert!((t.at(10, 8) - want).abs() < 1e-15);
        assert_eq!(t.at(0, 16), t.at(1, 16));
        let slope = (0.060 - 0.030) / 12.0;
        assert!((t.at(28, 16) - (0.060 + 12.0 * slope)).abs() < 1e-15);
        let falling = BatchLatencyProfile::new(&[(1, 0, 0.03), (2, 0, 0.02)]).unwrap();
        assert_eq!(falling.at(100, 0), 0.02);
        for b in 0..40 {
            for n in 0..40 {
                assert!(t.at(b + 1, n) >= t.at(b, n) && t.at(b, n + 1) >= t.at(b, n));
            }
        }
    }

    #[test]
    fn errors_name_the_file_row() {
        assert_eq!(
            BatchLatencyProfile::new(&[]),
            Err(Error::EmptyLatencyProfile)
        );
        assert!(matches!(
            BatchLatencyProfile::new(&[(1, 0, 0.02), (0, 0, 0.02)]),
            Err(Error::LatencyBatchSize {
                index: 1,
                batch_size: 0,
                ..
            })
        ));
        assert_eq!(
            BatchLatencyProfile::new(&[(1, 0, 0.02), (2, 0, 0.02), (2, 4, 0.02), (2, 4, 0.03)]),
            Err(Error::DuplicateLatencyPoint {
                tokens: 4,
                first: 2,
                second: 3
            })
        );
        assert!(matches!(
            BatchLatencyProfile::new(&[(1, 0, 0.02), (2, 8, 0.02), (2, 4, 0.03)]),
            Err(Error::LatencyTokensNotIncreasing { index: 2, .. })
        ));
        assert!(matches!(
            BatchLatencyProfile::new(&[(1, 0, 0.02), (2, 8, f64::INFINITY)]),
            Err(Error::InvalidLatency { index: 1, .. })
        ));
        assert!(matches!(
            BatchLatencyProfile::new(&[(1, 0, 0.02), (2, 8, 1e-320)]),
            Err(Error::LatencyTooSmall { index: 1, .. })
        ));
    }

    #[cfg(feature = "csv")]
    #[test]
    fn csv_one_and_two_axes_and_bad_rows() {
        let one = "draft_tokens,seconds\n0,0.02\n16,0.03\n";
        let a = BatchLatencyProfile::from_csv_str(one).unwrap();
        let b =
            BatchLatencyProfile::from_one_axis(LatencyProfile::from_csv_str(one).unwrap()).unwrap();
        assert_eq!(a, b);
        let json =
            r#"[{"draft_tokens": 0, "seconds": 0.02}, {"draft_tokens": 16, "seconds": 0.03}]"#;
        assert_eq!(BatchLatencyProfile::from_json_str(json).unwrap(), a);
        let e = BatchLatencyProfile::from_csv_str(
            "batch_size,draft_tokens,seconds\n1,0,0.02\n2,x,0.02\n",
        )
        .unwrap_err();
        assert!(e.to_string().contains("row 1"), "{e}");
        assert!(BatchLatencyProfile::from_csv_str("b,n,s\n1,0,0.02\n").is_err());
        assert_eq!(
            BatchLatencyProfile::from_csv_str(""),
            Err(Error::EmptyLatencyProfile)
        );
        assert_eq!(
            BatchLatencyProfile::from_csv_str("batch_size,draft_tokens,seconds\n"),
            Err(Error::EmptyLatencyProfile)
        );
    }
}
