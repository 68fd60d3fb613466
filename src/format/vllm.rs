//! vLLM's `speculative_token_tree`: the string of a Python list of tuples,
//! `[(0,), (1,), (0, 0)]`, sorted breadth-first, read as Python reads it.

use super::literal::{parse_rank_lists, Dialect};
use super::rank_paths::sort_breadth_first;
use crate::error::Result;
use std::fmt::Write;

/// vLLM's `speculative_token_tree` for `paths`: exactly what vLLM itself
/// normalises the option to, `str(sorted(tree, key=lambda t: (len(t), t)))`,
/// e.g. `[(0,), (1,), (0, 0)]` (a one-element tuple keeps its comma).
/// O(P log P + sum of path lengths).
///
/// # Examples
///
/// ```
/// let s = speclight::format::vllm_tree_string(&[vec![0, 0], vec![1], vec![0]]);
/// assert_eq!(s, "[(0,), (1,), (0, 0)]");
/// ```
pub fn vllm_tree_string(paths: &[Vec<u32>]) -> String {
    let mut sorted = paths.to_vec();
    sort_breadth_first(&mut sorted);
    let mut out = String::from("[");
    for (i, path) in sorted.iter().enumerate() {
        out.push_str(if i == 0 { "(" } else { ", (" });
        for (j, rank) in path.iter().enumerate() {
            let sep = if j == 0 { "" } else { ", " };
            // Writing to a String cannot fail.
            let _ = write!(out, "{sep}{rank}");
        }
        // A one-element tuple keeps its comma: `(0,)`.
        out.push_str(if path.len() == 1 { ",)" } else { ")" });
    }
    out.push(']');
    out
}

/// Parses vLLM's `speculative_token_tree`: the Python literal vLLM reads
/// with `ast.literal_eval`, a list (or tuple) of tuples of rank integers.
/// Accepted as Python accepts it: any whitespace (spaces, tabs, newlines)
/// between tokens, `#` comments, trailing commas in the list and in tuples,
/// one-element tuples written `(0,)`, integers with `_` separators and
/// `0x`/`0o`/`0b` prefixes, and lists in place of tuples (`[[0], [1]]`, as
/// vLLM then works on lists) as long as all paths use the same kind. The
/// order is kept; [`from_rank_paths`](super::from_rank_paths) sorts.
///
/// The parser is the Python dialect of the literal parser Medusa's reader
/// shares. O(length of the text).
///
/// # Errors
///
/// [`Error::Parse`](crate::Error::Parse) naming the byte offset, including for `(0)` (the integer
/// 0 in Python, not a tuple: vLLM would fail on it) and negative ranks.
///
/// # Examples
///
/// ```
/// use speclight::format::parse_vllm_tree;
/// assert_eq!(parse_vllm_tree("[(0,), (1,), (0, 0)]")?, vec![vec![0], vec![1], vec![0, 0]]);
/// assert_eq!(parse_vllm_tree(" [ (0 , ) ,\n (0,1,), ] ")?, vec![vec![0], vec![0, 1]]);
/// assert!(parse_vllm_tree("[(0)]").is_err());
/// # Ok::<(), speclight::Error>(())
/// ```
pub fn parse_vllm_tree(text: &str) -> Result<Vec<Vec<u32>>> {
    parse_rank_lists(text, Dialect::Python, "vllm token tree")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::{from_rank_paths, to_rank_paths, RankRule};
    use crate::{evaluate, Error, Positional, TreeBuilder};
    use proptest::prelude::*;
    use rand::{rngs::StdRng, Rng, SeedableRng};

    #[test]
    fn writes_what_python_prints() {
        assert_eq!(vllm_tree_string(&[]), "[]");
        assert_eq!(vllm_tree_string(&[vec![]]), "[()]");
        assert_eq!(
            vllm_tree_string(&[vec![1, 0, 2], vec![3]]),
            "[(3,), (1, 0, 2)]"
        );
    }

    #[test]
    fn vllm_parser_accepts_python_spellings() {
        let want = vec![vec![0], vec![1], vec![0, 0]];
        for text in [
            "[(0,), (1,), (0, 0)]",
            "[(0,),(1,),(0,0)]",
            "[(0,), (1,), (0, 0),]",
            "[(0,), (1,), (0, 0,)]",
            "  [\n  (0,),  # first\n\t(1,),\n  (0, 0)\n]\n",
            "((0,), (1,), (0, 0))",
            "[[0], [1], [0, 0]]",
            "[(0x0,), (0b1,), (+0, 0_0)]",
        ] {
            assert_eq!(parse_vllm_tree(text).unwrap(), want, "{text:?}");
        }
        assert_eq!(parse_vllm_tree("[]").unwrap(), Vec::<Vec<u32>>::new());
        assert_eq!(parse_vllm_tree("[(10, 2)]").unwrap(), vec![vec![10, 2]]);
    }

    #[test]
    fn vllm_parser_rejects_what_python_or_vllm_rejects() {
        for (text, needle) in [
            ("[(0)]", "is the integer 0"),
            ("[(0,), [1]]", "mixed"),
            ("[(-1,)]", "negative"),
            ("[(01,)]", "not a rank"),
            ("[(4294967296,)]", "not a rank"),
            ("[(0,) (1,)]", "expected ','"),
            ("[(0,)", "expected"),
            ("[(0,)] x", "after the tree"),
            ("((0,))", "parenthesised"),
            ("[(0.5,)]", "not a rank"),
            ("[(a,)]", "expected a rank"),
            ("", "expected '['"),
        ] {
            let err = parse_vllm_tree(text).unwrap_err();
            assert!(
                matches!(&err, Error::Parse(m) if m.contains(needle)),
                "{text:?}: {err}"
            );
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        /// The issue's check: a static tree best-first over a Positional model,
        /// written as a vLLM string and read back, has the value OPT(n).
        #[test]
        fn vllm_string_from_best_first_keeps_its_value(seed in 0u64..1_000_000, n in 1usize..200) {
            let mut rng = StdRng::seed_from_u64(seed);
            let k = rng.random_range(1..6usize);
            let mut a: Vec<f64> = (0..k).map(|_| rng.random_range(0.01..1.0)).collect();
            let total: f64 = a.iter().sum::<f64>() / rng.random_range(0.3..1.0);
            a.iter_mut().for_each(|x| *x /= total);
            a.sort_by(|x, y| y.total_cmp(x));
            let mut model = Positional::new(&a).unwrap();
            let mut builder = TreeBuilder::new(n).unwrap();
            let tree = builder.build_owned(&mut model).unwrap();
            let opt = builder.opt_curve()[tree.len() - 1];
            let text = vllm_tree_string(&to_rank_paths(&tree, RankRule::TokenIsRank).unwrap());
            let read = from_rank_paths(&parse_vllm_tree(&text).unwrap(), Some(k)).unwrap();
            prop_assert_eq!(read.len(), tree.len());
            let value = evaluate(&read, &mut model).unwrap().expected_accepted;
            prop_assert!((value - opt).abs() < 1e-9 * opt.max(1.0), "value {} vs OPT {}", value, opt);
            // DraftOrder ranks agree with token = rank for a positional tree.
            prop_assert_eq!(
                to_rank_paths(&tree, RankRule::DraftOrder).unwrap(),
                to_rank_paths(&tree, RankRule::TokenIsRank).unwrap()
            );
        }
    }
}
