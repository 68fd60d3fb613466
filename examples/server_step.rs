//! A server's decoding loop around speclight, with every buffer reused.
//!
//! Each step: build the draft tree (the `TreeBuilder` is reused), fill the
//! verifier's inputs into reused buffers (`VerifierInputs`, the attention
//! bias), run the verifier (here a toy), and walk its chosen tokens to find
//! the accepted ones (`Accepted`, reused). The second half builds the same
//! trees through the incremental API, as a server with a *batched* drafter
//! does: `IncrementalBuild::next_batch(W)` names the W most promising nodes
//! still awaiting a distribution, and one batched forward pass supplies them.
//!
//! Run: `cargo run --example server_step`

use speclight::{
    Accepted, NextTokenModel, Result, TokenDist, TokenId, TreeBuilder, VerifierInputs,
};

/// Draft tokens per verifier pass (the tree's capacity `P`).
const CAPACITY: usize = 16;
/// Nodes the batched drafter expands per forward pass.
const BATCH_WIDTH: usize = 4;
/// Vocabulary of the toy models.
const VOCAB: u32 = 50;
/// Decoding steps to run.
const STEPS: usize = 6;

/// The toy drafter's top-4 after `text`: the favourite depends on the last
/// two tokens. A real drafter is a small model's forward pass.
fn draft_dist(text: &[TokenId]) -> Result<TokenDist> {
    let favourite = favourite_after(text);
    let tokens: Vec<TokenId> = (0..4).map(|k| (favourite + k) % VOCAB).collect();
    TokenDist::from_token_probs(&tokens, &[0.6, 0.2, 0.1, 0.05])
}

fn favourite_after(text: &[TokenId]) -> TokenId {
    let last: u32 = text.iter().rev().take(2).sum();
    (last * 31 + 7) % VOCAB
}

/// The toy verifier's greedy choice after `text`: mostly the drafter's
/// favourite, the runner-up after every third token value, so that some
/// drafts are rejected.
fn verifier_choice(text: &[TokenId]) -> TokenId {
    let favourite = favourite_after(text);
    match text.last() {
        Some(t) if t % 3 == 0 => (favourite + 1) % VOCAB,
        _ => favourite,
    }
}

/// The drafter as a [`NextTokenModel`]: the distribution after the context
/// plus a path in the tree.
struct Drafter {
    context: Vec<TokenId>,
    scratch: Vec<TokenId>,
    last: TokenDist,
}

impl NextTokenModel for Drafter {
    fn next(&mut self, path: &[TokenId]) -> Result<&TokenDist> {
        self.scratch.clear();
        self.scratch.extend_from_slice(&self.context);
        self.scratch.extend_from_slice(path);
        self.last = draft_dist(&self.scratch)?;
        Ok(&self.last)
    }
}

/// Buffers a server keeps per request; steady-state steps reuse them.
struct Step {
    inputs: VerifierInputs,
    bias: Vec<f32>,
    chosen: Vec<TokenId>,
    accepted: Accepted,
    text: Vec<TokenId>,
    path: Vec<TokenId>,
}

impl Step {
    fn new() -> Self {
        Self {
            inputs: VerifierInputs::new(),
            bias: Vec::new(),
            chosen: Vec::new(),
            accepted: Accepted::new(),
            text: Vec::new(),
            path: Vec::new(),
        }
    }

    /// Verifies `tree` after `context` and appends the accepted tokens and
    /// the verifier's bonus token to it. Returns the number of drafts accepted.
    fn verify(&mut self, tree: &speclight::DraftTree, context: &mut Vec<TokenId>) -> Result<usize> {
        let root = *context.last().expect("a non-empty context");
        self.inputs.fill(tree, context.len(), root)?;
        let n = self.inputs.num_positions();
        // The attention bias, written into the server's own buffer (a real
        // server hands `inputs.tokens()`, `positions()` and this to its GPU).
        self.bias.resize(n * n, 0.0);
        self.inputs.write_mask_bias_into(&mut self.bias)?;
        // The verifier's token after every tree position (the root first).
        self.chosen.clear();
        for j in 0..n {
            self.text.clear();
            self.text.extend_from_slice(context);
            if j > 0 {
                tree.path_tokens(j - 1, &mut self.path);
                self.text.extend_from_slice(&self.path);
            }
            self.chosen.push(verifier_choice(&self.text));
        }
        self.inputs.walk_chosen(&self.chosen, &mut self.accepted)?;
        context.extend(self.accepted.emitted());
        Ok(self.accepted.len())
    }
}

fn main() -> Result<()> {
    let mut builder = TreeBuilder::new(CAPACITY)?;
    let mut step = Step::new();

    println!("One tree per step, built from a drafter called node by node:");
    let mut drafter = Drafter {
        context: vec![1, 2, 3],
        scratch: Vec::new(),
        last: draft_dist(&[])?,
    };
    let mut context = drafter.context.clone();
    for s in 0..STEPS {
        drafter.context.clone_from(&context);
        let tree = builder.build(&mut drafter)?;
        let accepted = step.verify(tree, &mut context)?;
        let emitted = &context[context.len() - accepted - 1..];
        println!(
            "  step {s}: {} draft nodes, {accepted} accepted + 1 bonus: {emitted:?}",
            tree.len()
        );
    }
    let greedy_text = context;

    println!("The same steps with a batched drafter ({BATCH_WIDTH} nodes per forward pass):");
    let mut context = vec![1, 2, 3];
    let mut prefix = Vec::new();
    let mut path = Vec::new();
    for s in 0..STEPS {
        let mut build = builder.begin(&draft_dist(&context)?);
        let mut passes = 0;
        loop {
            let batch = build.next_batch(BATCH_WIDTH)?.to_vec();
            if batch.is_empty() {
                break;
            }
            // One batched forward pass over the named prefixes.
            passes += 1;
            let dists: Vec<TokenDist> = batch
                .iter()
                .map(|&node| {
                    build.tree().path_tokens(node, &mut path);
                    prefix.clear();
                    prefix.extend_from_slice(&context);
                    prefix.extend_from_slice(&path);
                    draft_dist(&prefix)
                })
                .collect::<Result<_>>()?;
            for (&node, dist) in batch.iter().zip(&dists) {
                build.feed(node, dist)?;
            }
        }
        let tree = build.finish()?;
        let accepted = step.verify(tree, &mut context)?;
        println!(
            "  step {s}: {} draft nodes in {passes} draft passes, {accepted} accepted + 1 bonus",
            tree.len()
        );
    }
    // Both ways build the same optimal trees, so they decode the same text.
    assert_eq!(context, greedy_text);
    println!("Both loops decoded the same text: {context:?}");
    Ok(())
}
