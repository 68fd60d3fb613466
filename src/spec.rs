//! Distribution specs, the `--dist` / `--verifier` syntax of the CLI.
//!
//! | spec | meaning |
//! | --- | --- |
//! | `0.5,0.3,0.2` | probabilities of tokens 0, 1, 2 in that order (any order, sum may be below 1) |
//! | `zipf:S:N` | `p_k` proportional to `k^-S`, `k = 1..N` (token `k-1`) |
//! | `geometric:R:N` | `p_k` proportional to `R^k`, `k = 0..N-1` |
//! | `@FILE.json` | `{"tokens": [...], "probs": [...]}` (needs the `serde` feature) |

use crate::dist::{TokenDist, TokenId};
use crate::error::{Error, Result};

/// Largest `N` a `zipf:` or `geometric:` spec may ask for (2^24 tokens), so
/// that a typo cannot allocate without bound.
pub const MAX_SPEC_TOKENS: usize = 1 << 24;

/// Parses a distribution spec (see the module docs).
///
/// # Errors
///
/// [`Error::InvalidSpec`] naming the spec and the reason, or the validation
/// errors of [`TokenDist`] (NaN, negative, sum above 1, ...).
///
/// # Examples
///
/// ```
/// use speclight::parse_dist;
/// assert_eq!(parse_dist("0.2,0.5")?.tokens(), &[1, 0]);
/// assert_eq!(parse_dist("zipf:1.1:32")?.len(), 32);
/// assert!(parse_dist("geometric:0.5:0").is_err());
/// # Ok::<(), speclight::Error>(())
/// ```
pub fn parse_dist(spec: &str) -> Result<TokenDist> {
    let bad = |reason: &str| Error::InvalidSpec {
        spec: spec.to_string(),
        reason: reason.to_string(),
    };
    let spec_trim = spec.trim();
    if let Some(path) = spec_trim.strip_prefix('@') {
        return from_file(path);
    }
    if let Some(rest) = spec_trim.strip_prefix("zipf:") {
        let (s, n) = two_params(rest).ok_or_else(|| bad("expected zipf:S:N"))?;
        if !(s.is_finite() && s >= 0.0) {
            return Err(bad("the exponent S must be a finite number >= 0"));
        }
        let weights = (1..=n).map(|k| (k as f64).powf(-s));
        return normalised(weights, n).map_err(|e| bad(&e));
    }
    if let Some(rest) = spec_trim.strip_prefix("geometric:") {
        let (r, n) = two_params(rest).ok_or_else(|| bad("expected geometric:R:N"))?;
        if !(r.is_finite() && r > 0.0) {
            return Err(bad("the ratio R must be a finite number > 0"));
        }
        // Weights r^k relative to the largest keep every term finite.
        let log_r = r.ln();
        let top = if r <= 1.0 {
            0.0
        } else {
            (n - 1) as f64 * log_r
        };
        let weights = (0..n).map(|k| (k as f64 * log_r - top).exp());
        return normalised(weights, n).map_err(|e| bad(&e));
    }
    if spec_trim.is_empty() {
        return Err(Error::EmptyDistribution);
    }
    let probs = spec_trim
        .split(',')
        .map(|x| x.trim().parse::<f64>())
        .collect::<std::result::Result<Vec<f64>, _>>()
        .map_err(|e| bad(&format!("not a comma list of numbers: {e}")))?;
    TokenDist::from_probs(&probs)
}

fn two_params(rest: &str) -> Option<(f64, usize)> {
    let (a, b) = rest.split_once(':')?;
    Some((a.trim().parse().ok()?, b.trim().parse().ok()?))
}

fn normalised(
    weights: impl Iterator<Item = f64>,
    n: usize,
) -> std::result::Result<TokenDist, String> {
    if n == 0 || n > MAX_SPEC_TOKENS {
        return Err(format!("N must be between 1 and {MAX_SPEC_TOKENS}"));
    }
    let w: Vec<f64> = weights.collect();
    let total: f64 = w.iter().sum();
    let probs: Vec<f64> = w.iter().map(|x| x / total).collect();
    // Rounding may push the sum a hair above 1; SUM_TOLERANCE absorbs it.
    TokenDist::from_probs(&probs).map_err(|e| e.to_string())
}

#[cfg(feature = "serde")]
fn from_file(path: &str) -> Result<TokenDist> {
    #[derive(serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct DistFile {
        tokens: Vec<TokenId>,
        probs: Vec<f64>,
    }
    // The i/o message stays a parse error, as it always was for `@FILE`.
    let bytes = crate::input::read_limited(path).map_err(|e| match e {
        Error::Io(message) => Error::Parse(message),
        other => other,
    })?;
    let text = crate::input::text(&bytes)?;
    let file: DistFile =
        serde_json::from_str(text).map_err(|e| Error::Parse(format!("{path}: {e}")))?;
    TokenDist::from_token_probs(&file.tokens, &file.probs)
}

#[cfg(not(feature = "serde"))]
fn from_file(path: &str) -> Result<TokenDist> {
    let _: &[TokenId] = &[];
    Err(Error::Parse(format!(
        "{path}: reading distribution files needs the `serde` feature"
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zipf_and_geometric_have_the_stated_shape() {
        let z = parse_dist("zipf:1:4").unwrap();
        let h = 1.0 + 0.5 + 1.0 / 3.0 + 0.25;
        assert!((z.probs()[0] - 1.0 / h).abs() < 1e-12);
        assert!((z.probs()[3] - 0.25 / h).abs() < 1e-12);
        let g = parse_dist("geometric:0.5:3").unwrap();
        assert!((g.probs()[0] - 4.0 / 7.0).abs() < 1e-12);
        let up = parse_dist("geometric:2:3").unwrap();
        assert_eq!(up.tokens(), &[2, 1, 0]);
    }

    #[test]
    fn bad_specs_name_the_problem() {
        for s in [
            "",
            "zipf:x:3",
            "zipf:1",
            "zipf:-1:3",
            "geometric:0:3",
            "0.5,abc",
            "zipf:1:0",
        ] {
            assert!(parse_dist(s).is_err(), "{s}");
        }
        assert!(matches!(
            parse_dist("0.6,0.6"),
            Err(Error::SumAboveOne { .. })
        ));
        assert!(matches!(parse_dist("NaN"), Err(Error::NotFinite { .. })));
    }

    /// Issue 12 items 2 and 5 through the `--dist` syntax.
    #[test]
    fn above_one_and_endless_files_are_refused() {
        for s in ["1.5", "1e308", "0.5,0.500002"] {
            assert!(
                matches!(parse_dist(s), Err(Error::SumAboveOne { .. })),
                "{s}"
            );
        }
        #[cfg(all(unix, feature = "serde"))]
        assert!(matches!(
            parse_dist("@/dev/zero"),
            Err(Error::InputTooLong { .. })
        ));
        #[cfg(feature = "serde")]
        assert!(matches!(
            parse_dist("@/no/such/file"),
            Err(Error::Parse(m)) if m.starts_with("cannot read /no/such/file: ")
        ));
    }
}
