//! The bad-input contract (README, "Bad input"): every row of the README's
//! table gets a specific error variant from the library, and one line on
//! stderr with a non-zero exit from the CLI, without creating or truncating
//! an output file.
#![cfg(feature = "cli")]

use crate::harness::{assert_one_line_error, scratch, speclight, Scratch};
use speclight::capacity::LatencyProfile;
use speclight::format::{from_rank_paths, parse_medusa_choices, parse_vllm_tree, TreeJson};
use speclight::trace::{read_jsonl, ReadLimits};
use speclight::{input, parse_dist, Error, TokenDist, TreeBuilder, MAX_CAPACITY};
use std::path::Path;

const PRECIOUS: &str = "an earlier run's output, which a failed run must not touch\n";

/// Runs the CLI with `args`; when `writes` is true, also with `--out` to a
/// fresh path and to an existing file. Asserts one stderr line containing
/// `needle`, a non-zero exit, and that neither output file changed.
fn assert_cli_refuses(dir: &Scratch, args: &[&str], writes: bool, needle: &str) {
    let fresh = dir.join("fresh.out");
    let existing = dir.join("existing.out");
    std::fs::write(&existing, PRECIOUS).unwrap();
    let mut runs: Vec<Vec<String>> = vec![args.iter().map(|s| s.to_string()).collect()];
    if writes {
        for out in [&fresh, &existing] {
            let mut a = runs[0].clone();
            a.extend(["--out".to_string(), out.to_str().unwrap().to_string()]);
            runs.push(a);
        }
    }
    for run in runs {
        let out = speclight(&run);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{run:?} succeeded");
        assert_eq!(err.lines().count(), 1, "{run:?}: stderr {err:?}");
        assert!(!err.contains("panicked"), "{run:?}: {err}");
        assert!(
            err.to_lowercase().contains(&needle.to_lowercase()),
            "{run:?}: {err:?} lacks {needle:?}"
        );
        assert!(!fresh.exists(), "{run:?} created its output file");
        assert_eq!(
            std::fs::read_to_string(&existing).unwrap(),
            PRECIOUS,
            "{run:?} touched its output"
        );
    }
}

#[test]
fn probabilities() {
    let dir = scratch("probs");
    let dup = dir.file("dup.json", br#"{"tokens": [3, 3], "probs": [0.2, 0.3]}"#);
    let dup_spec = format!("@{dup}");
    let rows: [(&str, Error, &str); 6] = [
        (
            "0.5,NaN",
            Error::NotFinite {
                index: 1,
                value: f64::NAN,
            },
            "not finite",
        ),
        (
            "0.5,inf",
            Error::NotFinite {
                index: 1,
                value: f64::INFINITY,
            },
            "not finite",
        ),
        (
            "0.5,-0.1",
            Error::NegativeProbability {
                index: 1,
                value: -0.1,
            },
            "negative",
        ),
        (
            "0.7,0.6",
            Error::SumAboveOne {
                sum: 1.3,
                tolerance: 1e-6,
            },
            "sum to",
        ),
        ("", Error::EmptyDistribution, "empty distribution"),
        (
            &dup_spec,
            Error::DuplicateToken { token: 3 },
            "more than once",
        ),
    ];
    for (spec_text, want, needle) in rows {
        let got = parse_dist(spec_text).unwrap_err();
        assert_eq!(
            std::mem::discriminant(&got),
            std::mem::discriminant(&want),
            "{spec_text}: {got}"
        );
        assert_cli_refuses(
            &dir,
            &["build", "--dist", spec_text, "--capacity", "4"],
            true,
            needle,
        );
    }
    // The same errors straight from the constructors.
    assert!(matches!(
        TokenDist::from_probs(&[]),
        Err(Error::EmptyDistribution)
    ));
    assert!(matches!(
        TokenDist::from_token_probs(&[1, 1], &[0.1, 0.1]),
        Err(Error::DuplicateToken { token: 1 })
    ));
}

#[test]
fn capacity_and_depth() {
    let dir = scratch("cap");
    assert_eq!(TreeBuilder::new(0).unwrap_err(), Error::ZeroCapacity);
    assert_eq!(
        TreeBuilder::new(4)
            .unwrap()
            .with_max_depth(Some(0))
            .unwrap_err(),
        Error::ZeroDepth
    );
    assert!(matches!(
        TreeBuilder::new(MAX_CAPACITY + 1),
        Err(Error::CapacityTooLarge { .. })
    ));
    let too_big = (MAX_CAPACITY + 1).to_string();
    for (args, needle) in [
        (vec!["--capacity", "0"], "capacity must be at least 1"),
        (
            vec!["--capacity", "4", "--max-depth", "0"],
            "depth limit must be at least 1",
        ),
        (vec!["--capacity", too_big.as_str()], "above the maximum"),
    ] {
        let mut full = vec!["build", "--dist", "0.5,0.3"];
        full.extend(args);
        assert_cli_refuses(&dir, &full, true, needle);
    }
}

#[test]
fn files() {
    let dir = scratch("files");
    let malformed = dir.file("malformed.json", br#"{"nodes": [{"id": 0, "parent": null,"#);
    let not_utf8 = dir.file("latin1.json", b"{\"nodes\": [], \"name\": \"caf\xe9\"}");
    let empty = dir.file("empty.json", b"");
    let empty_csv = dir.file("empty.csv", b"");

    assert!(matches!(
        TreeJson::parse_tree(r#"{"nodes": ["#),
        Err(Error::Parse(_))
    ));
    assert!(matches!(TreeJson::parse_tree(""), Err(Error::Parse(_))));
    assert!(matches!(
        input::text(b"caf\xe9"),
        Err(Error::NotUtf8 { offset: 3 })
    ));
    assert_eq!(
        LatencyProfile::from_csv_str("").unwrap_err(),
        Error::EmptyLatencyProfile
    );

    let tree_args = |f: &str| {
        vec![
            "eval".to_string(),
            "--tree".into(),
            f.into(),
            "--verifier".into(),
            "0.5".into(),
        ]
    };
    for (file, needle) in [
        (&malformed, "parse error"),
        (&not_utf8, "not UTF-8"),
        (&empty, "parse error"),
    ] {
        let args = tree_args(file);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        assert_cli_refuses(&dir, &args, false, needle);
    }
    for (file, needle) in [(&not_utf8, "not UTF-8"), (&empty, "parse error")] {
        assert_cli_refuses(
            &dir,
            &["convert", "--from", "json", "--to", "vllm", file],
            true,
            needle,
        );
    }
    assert_cli_refuses(&dir, &solve_args(&empty_csv), true, "empty latency profile");
}

#[test]
fn trace_files() {
    let dir = scratch("trace");
    let limits = ReadLimits::default();
    let truncated = b"{\"token\": 1, \"logprob\": -0.5}\n{\"token\": 2, \"logpr";
    let not_utf8 = b"{\"token\": 1, \"logprob\": -0.5}\n{\"token\": 2, \"logprob\": -0.\xff}\n";
    let malformed = b"{\"token\": 1, \"logprob\": -0.5}\n[1, 2]\n";
    for (bytes, line) in [(&truncated[..], 2), (&not_utf8[..], 2), (&malformed[..], 2)] {
        match read_jsonl(bytes, &limits) {
            Err(Error::TraceLine { line: got, .. }) => assert_eq!(got, line),
            other => panic!("expected a trace line error, got {other:?}"),
        }
    }
    assert!(matches!(
        read_jsonl(&b""[..], &limits).map(|t| t.num_tokens()),
        Ok(0)
    ));
    for (name, bytes, needle) in [
        ("truncated.jsonl", &truncated[..], "trace line 2"),
        ("latin1.jsonl", &not_utf8[..], "trace line 2"),
        ("malformed.jsonl", &malformed[..], "trace line 2"),
        ("empty.jsonl", &b""[..], "trace refused"),
    ] {
        let file = dir.file(name, bytes);
        assert_cli_refuses(
            &dir,
            &["bound", "--trace", &file, "--capacity", "8"],
            false,
            needle,
        );
    }
}

fn solve_args(latency: &str) -> [&str; 7] {
    [
        "solve",
        "--dist",
        "0.6,0.2",
        "--latency",
        latency,
        "--draft-step",
        "0.001",
    ]
}

#[test]
fn latency_tables() {
    let dir = scratch("latency");
    let falling = "draft_tokens,seconds\n1,0.02\n8,0.02\n4,0.03\n";
    let negative = "draft_tokens,seconds\n1,0.02\n8,-0.5\n";
    assert!(matches!(
        LatencyProfile::from_csv_str(falling),
        Err(Error::LatencyTokensNotIncreasing {
            tokens: 4,
            previous: 8,
            ..
        })
    ));
    assert!(matches!(
        LatencyProfile::from_csv_str(negative),
        Err(Error::InvalidLatency { index: 1, .. })
    ));
    let falling = dir.file("falling.csv", falling.as_bytes());
    let negative = dir.file("negative.csv", negative.as_bytes());
    assert_cli_refuses(&dir, &solve_args(&falling), true, "must increase");
    assert_cli_refuses(
        &dir,
        &solve_args(&negative),
        true,
        "not a finite number >= 0",
    );
}

#[test]
fn tree_strings() {
    let dir = scratch("trees");
    // (0, 1) has no parent (0,): a gap.
    let gap = "[(1,), (0, 1)]";
    let paths = parse_vllm_tree(gap).unwrap();
    assert!(matches!(
        from_rank_paths(&paths, None),
        Err(Error::MissingParentPath { .. })
    ));
    let far = "[[0], [5]]";
    let paths = parse_medusa_choices(far).unwrap();
    assert!(matches!(
        from_rank_paths(&paths, Some(4)),
        Err(Error::RankOutOfRange {
            rank: 5,
            limit: 4,
            ..
        })
    ));
    let gap_file = dir.file("gap.txt", gap.as_bytes());
    let far_file = dir.file("far.json", far.as_bytes());
    assert_cli_refuses(
        &dir,
        &["convert", "--from", "vllm", "--to", "json", &gap_file],
        true,
        "no parent path",
    );
    assert_cli_refuses(
        &dir,
        &[
            "convert", "--from", "medusa", "--to", "vllm", "--top-k", "4", &far_file,
        ],
        true,
        "not below the limit 4",
    );
}

#[test]
fn the_scratch_helper_really_detects_output() {
    // Guard against a vacuous contract test: a successful run does write.
    let dir = scratch("guard");
    let out = dir.join("ok.json");
    let run = speclight(&[
        "build",
        "--dist",
        "0.5,0.3",
        "--capacity",
        "4",
        "--json",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(run.status.success());
    assert!(Path::new(&out).exists());
}

#[cfg(unix)] // symlinks
#[test]
fn an_unwritable_out_is_one_line_and_replaces_nothing() {
    let dir = scratch("out");
    let build = |out: &str| {
        speclight(&[
            "build",
            "--dist",
            "0.5,0.3",
            "--capacity",
            "4",
            "--json",
            "--out",
            out,
        ])
    };
    // A symlink loop: the old atomic rename replaced the first link by a file.
    let (a, b) = (dir.join("a.json"), dir.join("b.json"));
    std::os::unix::fs::symlink(&b, &a).unwrap();
    std::os::unix::fs::symlink(&a, &b).unwrap();
    let err = assert_one_line_error(&build(a.to_str().unwrap()));
    assert!(err.contains("too many levels of symbolic links"), "{err}");
    assert!(a.symlink_metadata().unwrap().file_type().is_symlink());
    // A directory, and a file in a directory that does not exist.
    let sub = dir.join("sub");
    std::fs::create_dir(&sub).unwrap();
    let err = assert_one_line_error(&build(sub.to_str().unwrap()));
    assert!(err.contains("cannot move output into"), "{err}");
    assert!(sub.is_dir() && std::fs::read_dir(&sub).unwrap().next().is_none());
    let missing = dir.join("missing").join("t.json");
    let err = assert_one_line_error(&build(missing.to_str().unwrap()));
    assert!(
        err.contains("cannot write") && err.contains("missing"),
        "{err}"
    );
    // Nothing but what the test made: no temporary file left behind.
    let mut names: Vec<_> = std::fs::read_dir(&*dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert_eq!(names, ["a.json", "b.json", "sub"]);
}
