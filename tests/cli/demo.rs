//! `speclight demo`, run as a user would, on a small setting so that the
//! debug binary finishes in seconds (order-4 verifier trained on
//! 20 KB, 4 prompts of 32 sampled bytes, P <= 16).
#![cfg(feature = "cli")]

use crate::harness::{scratch, speclight};

#[test]
fn demo_prints_a_table_and_writes_an_svg() {
    let dir = scratch("demo");
    let svg = dir.join("demo.svg");
    let out = speclight(&[
        "demo",
        "--out",
        svg.to_str().expect("utf-8 path"),
        "--prompts",
        "4",
        "--sequence-len",
        "32",
        "--context-stride",
        "16",
        "--max-capacity",
        "16",
        "--verifier-order",
        "4",
        "--train-bytes",
        "20000",
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for corpus in ["rust_book", "python_stdlib"] {
        assert!(
            stdout.contains(&format!("{corpus}: 8 contexts")),
            "{stdout}"
        );
    }
    // One table row per capacity 1, 2, 4, 8, 16 and corpus.
    let rows = stdout
        .lines()
        .filter(|l| {
            l.split_whitespace()
                .next()
                .is_some_and(|w| ["1", "2", "4", "8", "16"].contains(&w))
        })
        .count();
    assert_eq!(rows, 10, "{stdout}");
    let plot = std::fs::read_to_string(&svg).expect("svg written");
    assert!(plot.starts_with("<svg"));
    for curve in [
        "drafter tree",
        "oracle tree",
        "trace speed of light",
        "B2",
        "B1",
        "published",
    ] {
        assert!(plot.contains(curve), "{curve} missing from the plot");
    }
    assert!(stdout.contains("capacity solve"), "{stdout}");
}

#[test]
fn demo_refuses_bad_settings_in_one_line() {
    let out = speclight(&[
        "demo",
        "--verifier-order",
        "9",
        "--out",
        "/nonexistent/x.svg",
    ]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("order 9"), "{err}");
}
