//! Medusa's `medusa_choices`: a JSON list of rank paths, `[[0], [1], [0, 0]]`,
//! read and written without serde (the strict JSON dialect of the shared
//! literal parser).

use super::literal::{parse_rank_lists, Dialect};
use super::rank_paths::sort_breadth_first;
use crate::error::Result;
use std::fmt::Write;

/// Parses Medusa's `medusa_choices`, a JSON list of rank paths such as
/// `[[0], [1], [0, 0]]`. The paths are returned as given; pass them to
/// [`from_rank_paths`](super::from_rank_paths) for the tree and its checks.
/// O(length of the text).
///
/// # Errors
///
/// [`Error::Parse`](crate::Error::Parse), naming the byte offset, for
/// anything that is not a JSON list of lists of non-negative integers below
/// 2^32 (JSON has no trailing commas, comments or tuples).
///
/// # Examples
///
/// ```
/// let paths = speclight::format::parse_medusa_choices("[[0], [1], [0, 0]]")?;
/// assert_eq!(paths, vec![vec![0], vec![1], vec![0, 0]]);
/// assert!(speclight::format::parse_medusa_choices("[[0],]").is_err());
/// # Ok::<(), speclight::Error>(())
/// ```
pub fn parse_medusa_choices(text: &str) -> Result<Vec<Vec<u32>>> {
    parse_rank_lists(text, Dialect::Json, "medusa choices")
}

/// Medusa's `medusa_choices` for `paths`, breadth-first, as compact JSON
/// (`[[0],[1],[0,0]]`), which is also a Python list literal. O(P log P +
/// sum of path lengths).
///
/// # Examples
///
/// ```
/// let text = speclight::format::medusa_choices_string(&[vec![0, 0], vec![0]]);
/// assert_eq!(text, "[[0],[0,0]]");
/// ```
pub fn medusa_choices_string(paths: &[Vec<u32>]) -> String {
    let mut sorted = paths.to_vec();
    sort_breadth_first(&mut sorted);
    let mut out = String::from("[");
    for (i, path) in sorted.iter().enumerate() {
        out.push_str(if i == 0 { "[" } else { ",[" });
        for (j, rank) in path.iter().enumerate() {
            let sep = if j == 0 { "" } else { "," };
            // Writing to a String cannot fail.
            let _ = write!(out, "{sep}{rank}");
        }
        out.push(']');
    }
    out.push(']');
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Error;

    #[test]
    fn writes_compact_json() {
        assert_eq!(medusa_choices_string(&[]), "[]");
        assert_eq!(medusa_choices_string(&[vec![]]), "[[]]");
        assert_eq!(
            medusa_choices_string(&[vec![1, 0], vec![0], vec![4294967295]]),
            "[[0],[4294967295],[1,0]]"
        );
    }

    /// Two independent implementations agree: serde_json reads what this
    /// writer writes, and this reader reads what serde_json writes.
    #[cfg(feature = "serde")]
    #[test]
    fn agrees_with_serde_json() {
        let paths = vec![vec![0], vec![1], vec![0, 0], vec![7, 3, 12]];
        let ours = medusa_choices_string(&paths);
        let theirs = serde_json::to_string(&paths).unwrap();
        assert_eq!(ours, theirs);
        let back: Vec<Vec<u32>> = serde_json::from_str(&ours).unwrap();
        assert_eq!(back, paths);
        assert_eq!(parse_medusa_choices(&theirs).unwrap(), paths);
        let pretty = serde_json::to_string_pretty(&paths).unwrap();
        assert_eq!(parse_medusa_choices(&pretty).unwrap(), paths);
    }

    #[test]
    fn refuses_negative_ranks() {
        assert!(matches!(
            parse_medusa_choices("[[0], [-1]]"),
            Err(Error::Parse(m)) if m == "medusa choices at byte 7: a rank cannot be negative"
        ));
    }
}
