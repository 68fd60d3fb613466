//! Regenerates `data/*.txt.gz` from the plain-text corpora they compress
//! (`SRC/rust_book.txt`, `SRC/python_stdlib.txt`; data/README.md says where
//! they come from).
//!
//! Usage: `cargo run --example make_data -- SRC data`
//!
//! Each corpus is split at the first newline at or after 90% of its bytes:
//! the part before (newline included) is `NAME.train.txt.gz`, the rest is
//! `NAME.heldout.txt.gz`. gzip level 9 via flate2, header mtime 0, so reruns
//! give identical files.

use flate2::{write::GzEncoder, Compression};
use std::io::Write;
use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let src = PathBuf::from(
        args.next()
            .ok_or("usage: make_data SRC [DST]: SRC holds rust_book.txt and python_stdlib.txt")?,
    );
    let dst = PathBuf::from(args.next().unwrap_or_else(|| "data".into()));
    for name in ["rust_book", "python_stdlib"] {
        let text = std::fs::read(src.join(format!("{name}.txt")))?;
        let cut = text.len() * 9 / 10;
        let split = text[cut..]
            .iter()
            .position(|&b| b == b'\n')
            .map_or(text.len(), |i| cut + i + 1);
        for (part, bytes) in [("train", &text[..split]), ("heldout", &text[split..])] {
            let mut gz = GzEncoder::new(Vec::new(), Compression::best());
            gz.write_all(bytes)?;
            let out = dst.join(format!("{name}.{part}.txt.gz"));
            std::fs::write(&out, gz.finish()?)?;
            println!("{}: {} bytes", out.display(), bytes.len());
        }
    }
    Ok(())
}
