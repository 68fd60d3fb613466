//! `speclight eval`: the exact value of a given tree under a verifier.

use crate::common::TreeUnderVerifier;
use anyhow::Result;
use speclight::{evaluate, Iid};

/// Evaluate a tree (the JSON of `speclight build --format json`) under a verifier.
///
/// Example: speclight eval --tree tree.json --verifier 0.6,0.3,0.1
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    input: TreeUnderVerifier,
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
}

pub fn run(args: Args) -> Result<()> {
    let (tree, verifier) = args.input.load()?;
    let mut verifier = Iid::new(verifier);
    let value = evaluate(&tree, &mut verifier)?;
    if args.json {
        let doc = serde_json::json!({
            "nodes": tree.len(),
            "max_depth": tree.max_depth(),
            "expected_accepted": value.expected_accepted,
            "accept_length_distribution": value.accept_at_least,
        });
        println!("{}", serde_json::to_string_pretty(&doc)?);
    } else {
        println!(
            "{} nodes, depth {}: E[accepted tokens] = {:.6}",
            tree.len(),
            tree.max_depth(),
            value.expected_accepted
        );
        for (k, p) in value.accept_at_least.iter().enumerate() {
            println!("P(X >= {}) = {p:.6}", k + 1);
        }
    }
    Ok(())
}
