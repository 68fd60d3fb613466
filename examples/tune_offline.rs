//! Offline tuning: a paired trace in, the draft tree to deploy out.
//!
//! A paired trace records, for positions of real text, the drafter's ranked
//! candidates and the token the verifier produced (see `speclight
//! pair-trace` and the README's "Tune" section). `speclight::tune::tune`
//! reads it twice (estimate on the training split, measure on the held-out
//! split), so it takes a function that opens the trace afresh.
//!
//! Run: `cargo run --example tune_offline [TRACE.jsonl [TREE.json]]`.
//! Without a trace it tunes on a synthetic one whose truth is known.

use speclight::tune::{tune, SyntheticTrace, TuneConfig};
use speclight::{Error, Result};
use std::io::BufReader;

fn main() -> Result<()> {
    let mut args = std::env::args().skip(1);
    let trace_path = args.next();
    let tree_out = args.next();
    let config = TuneConfig {
        capacities: vec![4, 16, 64],
        bootstrap: 0, // the delta method: fast; use the default 100 for a report
        ..TuneConfig::default()
    };
    let report = match &trace_path {
        Some(path) => {
            let open = || {
                let file = std::fs::File::open(path)
                    .map_err(|e| Error::Io(format!("cannot open {path}: {e}")))?;
                Ok(BufReader::new(file))
            };
            tune(open, &config)?
        }
        None => {
            // Acceptance 0.6 / 0.15 / 0.05 for the drafter's ranks 0, 1, 2.
            let synth = SyntheticTrace::new(vec![vec![0.6, 0.15, 0.05]], 4, 4)?;
            let mut trace = Vec::new();
            synth.write_jsonl(&mut trace, 400, 20, 1)?;
            tune(|| Ok(&trace[..]), &config)?
        }
    };
    println!(
        "trace: {}, {} training and {} held-out groups",
        trace_path.as_deref().unwrap_or("synthetic"),
        report.train_groups,
        report.heldout_groups
    );
    let chosen = &report.chosen;
    println!(
        "chosen tree: {} nodes, depth limit {}",
        chosen.capacity, chosen.max_depth
    );
    println!("vLLM speculative_token_tree: {}", chosen.vllm);
    println!("Medusa medusa_choices: {:?}", chosen.rank_paths);
    if let Some(path) = tree_out {
        let json = serde_json::to_string_pretty(&chosen.tree)
            .map_err(|e| Error::Io(format!("cannot serialise the tree: {e}")))?;
        std::fs::write(&path, json + "\n")
            .map_err(|e| Error::Io(format!("cannot write {path}: {e}")))?;
        println!("wrote {path}");
    }
    Ok(())
}
