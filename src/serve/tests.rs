//! Tests of the serving module: brute force against the definitions.

use super::*;
use crate::dist::TokenDist;
use crate::error::Error;
use crate::tree::DraftTree;
use crate::{evaluate, Iid, TreeBuilder};
use ndarray::Array2;
use proptest::prelude::*;
use rand::{rngs::StdRng, Rng, SeedableRng};

/// A random valid tree: node i's parent uniformly among earlier nodes or
/// the root; tokens distinct among siblings (drawn from a small alphabet
/// so that verifier tokens often match).
fn random_tree(seed: u64, n: usize, alphabet: u32) -> DraftTree {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut t = DraftTree::new();
    let mut used: Vec<Vec<u32>> = vec![Vec::new(); n + 1];
    while t.len() < n {
        let p = rng.random_range(0..=t.len());
        let tok = rng.random_range(0..alphabet);
        if used[p].contains(&tok) {
            continue;
        }
        used[p].push(tok);
        let parent = p.checked_sub(1);
        let lp = parent.map_or(0.0, |q| t.path_logprob(q)) - 0.1;
        t.push(parent, tok, lp).unwrap();
    }
    t
}

/// Tree position of node i's ancestors-or-self, root included, by brute force.
fn ancestors(t: &DraftTree, j: usize) -> Vec<usize> {
    let mut out = vec![0];
    if j > 0 {
        let mut path = Vec::new();
        t.path_to(j - 1, &mut path);
        out.extend(path.iter().map(|&i| i + 1));
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn inputs_match_brute_force(seed in 0u64..1_000_000, n in 0usize..150, l in 1usize..5000) {
        let t = random_tree(seed, n, 6);
        let mut inp = VerifierInputs::new();
        inp.fill(&t, l, 999).unwrap();
        let np = n + 1;
        prop_assert_eq!(inp.num_positions(), np);
        // Position ids equal L + depth - 1.
        for j in 0..np {
            let depth = if j == 0 { 0 } else { t.depth(j - 1) as i64 };
            prop_assert_eq!(inp.positions()[j], l as i64 + depth - 1);
        }
        // The mask is exactly the ancestor(-or-self) relation, in all three forms.
        let bools = inp.mask_bool();
        let mut bias = vec![1.0f32; np * np];
        inp.write_mask_bias_into(&mut bias).unwrap();
        let mut bools2 = Array2::from_elem((np, np), false);
        inp.write_mask_bool_into(bools2.view_mut()).unwrap();
        for r in 0..np {
            let anc = ancestors(&t, r);
            for c in 0..np {
                let want = anc.contains(&c);
                prop_assert_eq!(bools[[r, c]], want, "row {} col {}", r, c);
                prop_assert_eq!(bools2[[r, c]], want);
                prop_assert_eq!(bias[r * np + c] == 0.0, want);
                prop_assert!(want || bias[r * np + c] == f32::NEG_INFINITY);
                let word = inp.mask_words()[r * inp.words_per_row() + c / 64];
                prop_assert_eq!(word >> (c % 64) & 1 == 1, want);
            }
        }
        // Parents.
        for j in 1..np {
            prop_assert_eq!(inp.parents()[j], t.parent(j - 1).map_or(0, |p| p + 1) as i64);
        }
        prop_assert_eq!(inp.parents()[0], -1);
        // Retrieve indices: each leaf's path exactly once, padded with -1.
        let (rows, cols) = inp.retrieve_shape();
        let leaves: Vec<usize> = if n == 0 { vec![0] } else { t.leaves().map(|i| i + 1).collect() };
        prop_assert_eq!(rows, leaves.len());
        let mut seen = std::collections::HashSet::new();
        for r in 0..rows {
            let row = &inp.retrieve_indices()[r * cols..(r + 1) * cols];
            let path: Vec<usize> = row.iter().take_while(|&&x| x != -1).map(|&x| x as usize).collect();
            prop_assert!(row[path.len()..].iter().all(|&x| x == -1));
            let leaf = *path.last().unwrap();
            prop_assert!(leaves.contains(&leaf));
            prop_assert_eq!(&path, &ancestors(&t, leaf));
            prop_assert!(seen.insert(leaf), "leaf {} listed twice", leaf);
        }
        // First child / next sibling enumerate exactly the children in arena order.
        for j in 0..np {
            let mut kids = Vec::new();
            let mut c = inp.first_child()[j];
            while c != -1 {
                kids.push(c as usize);
                c = inp.next_sibling()[c as usize];
            }
            let want: Vec<usize> = t.children(j.checked_sub(1)).map(|i| i + 1).collect();
            prop_assert_eq!(kids, want);
        }
    }

    /// Reused buffers keep stale entries that `fill` overwrites instead of
    /// clearing (issue 16): after any sequence of trees, larger and smaller,
    /// every field equals a fresh fill's.
    #[test]
    fn reused_inputs_equal_fresh_ones(seeds in prop::collection::vec((0u64..1_000_000, 0usize..150), 1..6)) {
        let mut reused = VerifierInputs::new();
        for (seed, n) in seeds {
            let t = random_tree(seed, n, 6);
            reused.fill(&t, 10, 999).unwrap();
            let mut fresh = VerifierInputs::new();
            fresh.fill(&t, 10, 999).unwrap();
            prop_assert_eq!(format!("{reused:?}"), format!("{fresh:?}"));
        }
    }

    #[test]
    fn walk_accepts_exactly_the_longest_matching_path(seed in 0u64..1_000_000, n in 0usize..80) {
        let t = random_tree(seed, n, 3);
        let mut inp = VerifierInputs::new();
        inp.fill(&t, 7, 0).unwrap();
        let mut rng = StdRng::seed_from_u64(seed ^ 0xabcdef);
        let chosen: Vec<u32> = (0..=n).map(|_| rng.random_range(0..4)).collect();
        let mut out = Accepted::new();
        inp.walk_chosen(&chosen, &mut out).unwrap();
        // Brute force: a node matches iff every edge on its path carries the
        // verifier's token at the edge's upper end.
        let matching: Vec<usize> = (1..=n)
            .filter(|&j| {
                let anc = ancestors(&t, j);
                anc.windows(2).all(|w| chosen[w[0]] == t.token(w[1] - 1))
            })
            .collect();
        let deepest = matching.iter().copied().max_by_key(|&j| t.depth(j - 1)).unwrap_or(0);
        let want_path: Vec<usize> = ancestors(&t, deepest)[1..].iter().map(|&j| j - 1).collect();
        prop_assert_eq!(matching.len(), want_path.len(), "matches form one chain");
        prop_assert_eq!(out.nodes(), &want_path[..]);
        let want_tokens: Vec<u32> = want_path.iter().map(|&i| t.token(i)).collect();
        prop_assert_eq!(out.tokens(), &want_tokens[..]);
        prop_assert_eq!(out.bonus(), chosen[deepest]);
        prop_assert_eq!(out.emitted().count(), out.len() + 1);
    }
}

#[test]
fn length_mismatches_are_rejected() {
    let t = random_tree(1, 5, 4);
    let mut inp = VerifierInputs::new();
    let mut out = Accepted::new();
    assert!(matches!(
        inp.walk_with(|_| Ok(0), &mut out),
        Err(Error::InvalidArgument(_))
    ));
    inp.fill(&t, 3, 0).unwrap();
    let err = inp.walk_chosen(&[0; 5], &mut out).unwrap_err();
    assert_eq!(
        err,
        Error::InputLength {
            what: "verifier token slice",
            expected: 6,
            got: 5
        }
    );
    assert!(err.to_string().contains("length 5, expected 6"));
    let d = TokenDist::from_probs(&[1.0]).unwrap();
    assert!(matches!(
        inp.walk_sampled(&vec![d; 7], &mut StdRng::seed_from_u64(0), &mut out),
        Err(Error::InputLength { got: 7, .. })
    ));
    assert!(matches!(
        inp.write_mask_bias_into(&mut [0.0; 35]),
        Err(Error::InputLength { expected: 36, .. })
    ));
    let mut small = Array2::from_elem((6, 5), false);
    assert!(inp.write_mask_bool_into(small.view_mut()).is_err());
    assert_eq!(
        inp.write_into(VerifierInputs::positions, &mut [0; 7]),
        Err(Error::InputLength {
            what: "caller buffer",
            expected: 6,
            got: 7
        })
    );
    assert!(matches!(inp.fill(&t, 0, 0), Err(Error::InvalidArgument(_))));
    assert_eq!(
        inp.num_positions(),
        0,
        "a failed fill leaves no stale inputs"
    );
}

#[test]
fn incomplete_verifier_distribution_is_refused() {
    let t = random_tree(2, 3, 4);
    let mut inp = VerifierInputs::new();
    inp.fill(&t, 3, 0).unwrap();
    let d = TokenDist::from_probs(&[0.5, 0.3]).unwrap();
    let err = inp
        .walk_sampled(
            &vec![d; 4],
            &mut StdRng::seed_from_u64(0),
            &mut Accepted::new(),
        )
        .unwrap_err();
    assert!(matches!(err, Error::SumBelowOne { .. }));
}

/// The sampling walk is the verification of docs/THEORY.md section 1, so its
/// mean accepted length must match the DP evaluator's E[X] (seed 20261129).
#[test]
fn sampling_walk_mean_matches_dp() {
    let p = TokenDist::from_probs(&[0.5, 0.25, 0.15, 0.1]).unwrap();
    let q = TokenDist::from_probs(&[0.4, 0.4, 0.1, 0.1]).unwrap();
    let tree = TreeBuilder::new(12)
        .unwrap()
        .build_owned(&mut Iid::new(q))
        .unwrap();
    let exact = evaluate(&tree, &mut Iid::new(p.clone()))
        .unwrap()
        .expected_accepted;
    let mut inp = VerifierInputs::new();
    inp.fill(&tree, 1, 0).unwrap();
    let dists = vec![p; inp.num_positions()];
    let mut rng = StdRng::seed_from_u64(20261129);
    let mut out = Accepted::new();
    let trials = 40_000;
    let mut sum = 0.0;
    let mut sum_sq = 0.0;
    for _ in 0..trials {
        inp.walk_sampled(&dists, &mut rng, &mut out).unwrap();
        let x = out.len() as f64;
        sum += x;
        sum_sq += x * x;
    }
    let mean = sum / trials as f64;
    let sd = ((sum_sq / trials as f64 - mean * mean) / trials as f64).sqrt();
    assert!(
        (mean - exact).abs() < 5.0 * sd,
        "monte carlo {mean} vs dp {exact} (sd {sd}, seed 20261129)"
    );
}

#[test]
fn oversized_trees_are_refused() {
    let mut t = DraftTree::new();
    for i in 0..=MAX_TREE_NODES {
        t.push(None, i as u32, -1.0).unwrap();
    }
    assert_eq!(
        VerifierInputs::new().fill(&t, 2, 0),
        Err(Error::CapacityTooLarge {
            capacity: MAX_TREE_NODES + 1,
            max: MAX_TREE_NODES
        })
    );
}

#[test]
fn duplicate_sibling_tokens_are_refused() {
    let mut t = DraftTree::new();
    t.push(None, 4, -0.1).unwrap();
    t.push(None, 4, -0.2).unwrap();
    assert!(matches!(
        VerifierInputs::new().fill(&t, 2, 0),
        Err(Error::InvalidTree { node: 1, .. })
    ));
}

/// The one copy routine copies every array exactly, and refuses a buffer one
/// element too short or too long without touching it.
#[test]
fn write_into_copies_every_array() {
    fn check<T: Copy + Default + PartialEq + std::fmt::Debug>(
        inp: &VerifierInputs,
        array: fn(&VerifierInputs) -> &[T],
    ) {
        let want = array(inp).to_vec();
        let mut out = vec![T::default(); want.len()];
        inp.write_into(array, &mut out).unwrap();
        assert_eq!(out, want);
        for len in [want.len() - 1, want.len() + 1] {
            let mut wrong = vec![T::default(); len];
            assert!(inp.write_into(array, &mut wrong).is_err());
            assert!(wrong.iter().all(|x| *x == T::default()));
        }
    }
    let t = random_tree(3, 70, 5);
    let mut inp = VerifierInputs::new();
    inp.fill(&t, 9, 4).unwrap();
    check(&inp, VerifierInputs::tokens);
    check(&inp, VerifierInputs::positions);
    check(&inp, VerifierInputs::parents);
    check(&inp, VerifierInputs::retrieve_indices);
    check(&inp, VerifierInputs::first_child);
    check(&inp, VerifierInputs::next_sibling);
    check(&inp, VerifierInputs::mask_words);
}

/// `fill_mask` leaves each row's words right of its diagonal word as the
/// previous fill left them when the row width is unchanged (they are zero
/// there). A deep chain (every row dense up to its diagonal), then a star of
/// the same width, a failed fill, a wider and a narrower tree must each equal
/// a fresh fill.
#[test]
fn reused_mask_equals_fresh_across_widths_and_errors() {
    let chain = |n: usize| {
        let mut t = DraftTree::new();
        for i in 0..n {
            t.push(i.checked_sub(1), 1, -(i as f64)).unwrap();
        }
        t
    };
    let star = |n: usize| {
        let mut t = DraftTree::new();
        for i in 0..n {
            t.push(None, i as u32, -1.0).unwrap();
        }
        t
    };
    let mut duplicate = star(3);
    duplicate.push(None, 0, -1.0).unwrap();
    let mut reused = VerifierInputs::new();
    for (t, ok) in [
        (chain(120), true),
        (star(100), true),
        (chain(127), true),
        (duplicate, false),
        (star(126), true),
        (chain(200), true),
        (chain(70), true),
    ] {
        assert_eq!(reused.fill(&t, 5, 9).is_ok(), ok);
        let mut fresh = VerifierInputs::new();
        assert_eq!(fresh.fill(&t, 5, 9).is_ok(), ok);
        assert_eq!(format!("{reused:?}"), format!("{fresh:?}"));
    }
}
