//! Memory of a build at the documented maximum capacity (README, "Limits"):
//! `cargo run --release --example max_capacity`.
//!
//! Builds a 2^20-node tree twice, with a context-free drafter (one shared
//! distribution) and with a drafter whose distribution depends on the path
//! (every expanded node's distribution is copied into the builder's arena),
//! and prints the process's peak resident memory after each (Linux).

use speclight::{
    parse_dist, Iid, NextTokenModel, Result, TokenDist, TokenId, TreeBuilder, MAX_CAPACITY,
};

/// Peak resident set size in MiB, from /proc/self/status (Linux only).
fn peak_rss_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

/// Two distributions alternating by depth: not context-free, so the builder
/// expands lazily and copies each distribution it is given.
struct Alternating([TokenDist; 2]);

impl NextTokenModel for Alternating {
    fn next(&mut self, path: &[TokenId]) -> Result<&TokenDist> {
        Ok(&self.0[path.len() % 2])
    }
}

fn main() -> Result<()> {
    println!(
        "capacity {MAX_CAPACITY}; peak RSS before any build: {:.0} MiB",
        peak_rss_mib().unwrap_or(f64::NAN)
    );
    let mut builder = TreeBuilder::new(MAX_CAPACITY)?;
    let mut iid = Iid::new(parse_dist("zipf:1.1:32")?);
    let tree = builder.build(&mut iid)?;
    println!(
        "context-free zipf:1.1:32: {} nodes, depth {}, peak RSS {:.0} MiB",
        tree.len(),
        tree.max_depth(),
        peak_rss_mib().unwrap_or(f64::NAN)
    );
    let mut lazy = Alternating([parse_dist("zipf:1.1:32")?, parse_dist("geometric:0.7:32")?]);
    let tree = builder.build(&mut lazy)?;
    println!(
        "path-dependent (32 tokens per distribution): {} nodes, {} expansions, peak RSS {:.0} MiB",
        tree.len(),
        builder.expansions(),
        peak_rss_mib().unwrap_or(f64::NAN)
    );
    Ok(())
}
