//! Prints the README's bounds table: OPT(P), (B2), (B1) and the published
//! bound side by side (docs/THEORY.md section 4c), each row certified by
//! `speclight::check` on the best-first tree.
//!
//! Run: cargo run --release --example bounds_table

use speclight::bound::{check_with, CheckOptions, Moments};
use speclight::{parse_dist, Iid, TreeBuilder};

fn main() -> Result<(), speclight::Error> {
    let dists = ["0.5,0.3,0.2", "zipf:1.1:64", "geometric:0.7:32"];
    let capacities = [1usize, 16, 256, 4096];
    println!(
        "| verifier | mu | mu2 | P | OPT(P) | B2 | B1 | paper bound | B1 - OPT | paper - OPT |"
    );
    println!("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
    for spec_text in dists {
        let dist = parse_dist(spec_text)?;
        let m = Moments::of_dist(&dist)?;
        let mut verifier = Iid::new(dist);
        for &p in &capacities {
            let tree = TreeBuilder::new(p)?.build_owned(&mut verifier)?;
            let cert = check_with(&tree, &mut verifier, p, &CheckOptions::default())?;
            let value = |b: Option<speclight::BoundValue>| b.map_or(f64::NAN, |b| b.value());
            let (b2, b1, paper) = (
                value(cert.renewal_bound_optimized),
                value(cert.renewal_bound),
                value(cert.paper_bound),
            );
            let opt = cert.optimal_expected_accepted;
            println!(
                "| `{spec_text}` | {:.3} | {:.3} | {p} | {opt:.3} | {b2:.3} | {b1:.3} | {paper:.3} | {:.3} | {:.3} |",
                m.entropy,
                m.second_log_moment,
                b1 - opt,
                paper - opt
            );
        }
    }
    Ok(())
}
