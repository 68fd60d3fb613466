//! The bad-input contract (README, "Bad input"): every row of the README's
//! table gets a specific error variant from the library, and one line on
//! stderr with a non-zero exit from the CLI, without creating or truncating
//! an output file.
#![cfg(feature = "cli")]

use speclight::capacity::LatencyProfile;
use speclight::format::{from_rank_paths, parse_medusa_choices, parse_vllm_tree, TreeJson};
use speclight::trace::{read_jsonl, ReadLimits};
use speclight::{input, spec, Error, TokenDist, TreeBuilder, MAX_CAPACITY};
use std::path::{Path, PathBuf};
use std::process::Command;

/// A scratch directory removed at the end of the test.
struct Scratch(PathBuf);

impl Scratch {
    fn new(tag: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("speclight-bad-{tag}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }

    fn file(&self, name: &str, content: &[u8]) -> String {
        let path = self.0.join(name);
        std::fs::write(&path, content).unwrap();
        path.to_str().unwrap().to_string()
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

const PRECIOUS: &str = "an earlier run's output, which a failed run must not touch\n";

/// Runs the CLI with `args`; when `writes` is true, also with `--out` to a
/// fresh path and to an existing file. Asserts one stderr line containing
/// `needle`, a non-zero exit, and that neither output file changed.
fn assert_cli_refuses(dir: &Scratch, args: &[&str], writes: bool, needle: &str) {
    let fresh = dir.0.join("fresh.out");
    let existing = dir.0.join("existing.out");
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
        let out = Command::new(env!("CARGO_BIN_EXE_speclight"))
            .args(&run)
            .output()
            .expect("the binary runs");
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
    let dir = Scratch::new("probs");
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
        let got = spec::parse_dist(spec_text).unwrap_err();
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
    let dir = Scratch::new("cap");
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
    let dir = Scratch::new("files");
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
    let dir = Scratch::new("trace");
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
    let dir = Scratch::new("latency");
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
    let dir = Scratch::new("trees");
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
    let dir = Scratch::new("guard");
    let out = dir.0.join("ok.json");
    let status = Command::new(env!("CARGO_BIN_EXE_speclight"))
        .args([
            "build",
            "--dist",
            "0.5,0.3",
            "--capacity",
            "4",
            "--json",
            "--out",
        ])
        .arg(&out)
        .status()
        .unwrap();
    assert!(status.success());
    assert!(Path::new(&out).exists());
}
