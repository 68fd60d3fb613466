//! Tree interchange formats: the JSON schema of speclight's own trees
//! (`json.rs`, feature `serde`), Graphviz DOT (`dot.rs`, feature `dot`), and
//! the static trees servers read, as rank paths (`rank_paths.rs`): Medusa's
//! `medusa_choices` (`medusa.rs`) and vLLM's `speculative_token_tree`
//! (`vllm.rs`), which share one literal parser (`literal.rs`) and need no
//! optional dependency.
//!
//! # Rank paths (Medusa, vLLM)
//!
//! Static-tree servers name a node by its *rank path*: the child ranks from
//! the root down, rank 0 being the drafter's most probable candidate at that
//! node. Medusa's `medusa_choices` is a JSON list of them, `[[0], [1], [0, 0]]`
//! ([`parse_medusa_choices`], [`medusa_choices_string`]); vLLM's
//! `speculative_token_tree` is the string of a Python list of tuples,
//! `[(0,), (1,), (0, 0)]`, sorted breadth-first by `(length, path)`
//! ([`parse_vllm_tree`], [`vllm_tree_string`]). Both servers put the root at
//! row 0 of their tree mask and the nodes after it in this breadth-first
//! order, as [`crate::serve::VerifierInputs`] does. vLLM's EAGLE proposer
//! drafts only trees whose branching is fixed per level exactly as written:
//! check with [`is_level_uniform`]. Rank paths repeat every ancestor, so
//! their total length is limited ([`MAX_TOTAL_PATH_LENGTH`]).
//!
//! A tree read from rank paths ([`from_rank_paths`]) has token = rank and no
//! drafter probabilities ([`DraftTree::set_no_draft_probs`](crate::DraftTree::set_no_draft_probs)).
//! That is exactly the tree of a [`crate::Positional`] model, where a token
//! *is* a rank, so a static tree built best-first over a `Positional` model
//! converts with [`RankRule::TokenIsRank`]. A tree over real token ids
//! converts with [`RankRule::DraftOrder`]: a node's rank is its place among
//! its siblings ordered by drafter probability, descending, ties by token id
//! ascending (the order of [`crate::TokenDist`]). For a best-first tree that
//! is the node's rank in its parent's draft distribution, because best-first
//! adds a node's children in that order, without gaps (docs/THEORY.md section 3).

#[cfg(feature = "dot")]
mod dot;
#[cfg(feature = "serde")]
mod json;
mod literal;
mod medusa;
mod rank_paths;
mod vllm;

#[cfg(feature = "dot")]
pub use dot::to_dot;
#[cfg(feature = "serde")]
pub use json::{NodeJson, TreeJson};
pub use medusa::{medusa_choices_string, parse_medusa_choices};
pub use rank_paths::{
    check_total_path_length, from_rank_paths, is_level_uniform, level_uniform_violation,
    sort_breadth_first, to_rank_paths, total_path_length, RankRule, MAX_TOTAL_PATH_LENGTH,
};
pub use vllm::{parse_vllm_tree, vllm_tree_string};

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use rand::{rngs::StdRng, Rng, SeedableRng};

    /// Random prefix-closed rank paths: each new path extends a listed one (or
    /// the root) by a rank below `limit` not yet used there.
    fn random_rank_paths(seed: u64, n: usize, limit: u32) -> Vec<Vec<u32>> {
        let mut rng = StdRng::seed_from_u64(seed);
        let mut paths: Vec<Vec<u32>> = Vec::new();
        let mut tries = 0;
        while paths.len() < n && tries < 100 * (n + 1) {
            tries += 1;
            let at = rng.random_range(0..=paths.len());
            let mut p = if at == 0 {
                Vec::new()
            } else {
                paths[at - 1].clone()
            };
            p.push(rng.random_range(0..limit));
            if !paths.contains(&p) {
                paths.push(p);
            }
        }
        paths
    }

    fn sorted(mut paths: Vec<Vec<u32>>) -> Vec<Vec<u32>> {
        sort_breadth_first(&mut paths);
        paths
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        #[test]
        fn rank_paths_round_trip_through_every_format(seed in 0u64..1_000_000, n in 0usize..60, limit in 1u32..6) {
            let paths = random_rank_paths(seed, n, limit);
            let want = sorted(paths.clone());
            // vLLM string and Medusa JSON.
            prop_assert_eq!(sorted(parse_vllm_tree(&vllm_tree_string(&paths)).unwrap()), want.clone());
            prop_assert_eq!(parse_vllm_tree(&vllm_tree_string(&paths)).unwrap(), want.clone());
            prop_assert_eq!(parse_medusa_choices(&medusa_choices_string(&paths)).unwrap(), want.clone());
            // Tree and back.
            let tree = from_rank_paths(&paths, Some(limit as usize)).unwrap();
            tree.validate().unwrap();
            prop_assert_eq!(tree.len(), paths.len());
            prop_assert_eq!(to_rank_paths(&tree, RankRule::TokenIsRank).unwrap(), want.clone());
            // JSON of the tree and back.
            #[cfg(feature = "serde")]
            {
                let text = serde_json::to_string(&TreeJson::from_tree(&tree, None, None)).unwrap();
                let back = TreeJson::parse_tree(&text).unwrap();
                prop_assert_eq!(back.tokens(), tree.tokens());
                prop_assert_eq!(back.parent_indices(), tree.parent_indices());
                // (An empty tree has vacuously "all" draft probabilities in JSON.)
                prop_assert!(tree.is_empty() || !back.has_draft_probs());
            }
            // DOT is export only: one node per draft token plus the root, one edge each.
            #[cfg(feature = "dot")]
            {
                let dot = to_dot(&tree);
                prop_assert_eq!(dot.matches("->").count(), tree.len());
                prop_assert_eq!(dot.matches("label = \"token").count(), tree.len());
            }
        }
    }
}
