//! Writes a synthetic paired trace (JSON Lines) to stdout: a known
//! per-depth acceptance process, for trying `speclight tune` without a
//! recorded trace.
//!
//! `cargo run --example synthetic_trace -- SEQS POSITIONS SEED > trace.jsonl`

use speclight::tune::SyntheticTrace;
use std::io::Write;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let arg = |i: usize, default: u64| -> Result<u64, Box<dyn std::error::Error>> {
        Ok(match std::env::args().nth(i) {
            Some(s) => s.parse()?,
            None => default,
        })
    };
    let (seqs, positions, seed) = (arg(1, 400)?, arg(2, 50)?, arg(3, 1)?);
    // One acceptance row for every depth (an i.i.d. rank process, so the
    // trace carries valid verifier log-probabilities and the report can show
    // the speed of light): the drafter's top candidate matches 60% of the time.
    let rows = vec![vec![0.60, 0.12, 0.06, 0.035, 0.02, 0.012]];
    let synth = SyntheticTrace::new(rows, 8, 8)?;
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    synth.write_jsonl(&mut out, seqs, positions, seed)?;
    out.flush()?;
    Ok(())
}
