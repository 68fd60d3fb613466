//! `speclight trace` and `speclight bound --trace` on both trace formats, run
//! as a user would: a sampled JSONL trace and the same tokens rewritten as
//! OpenAI-compatible logprobs JSON must give the same speed of light.
#![cfg(feature = "cli")]

use crate::harness::speclight;
use std::path::Path;
use std::process::Output;

fn ok_stdout(out: &Output) -> String {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn path_str(p: &Path) -> &str {
    p.to_str().expect("utf-8 temp path")
}

/// Rewrites a JSONL trace as an OpenAI chat-completion response, one choice
/// per sequence, token id `i` spelled `"tok{i}"`.
fn to_openai(jsonl: &str) -> String {
    let mut choices = vec![Vec::new()];
    for line in jsonl.lines() {
        let v: serde_json::Value = serde_json::from_str(line).expect("jsonl");
        if v.get("end").is_some() {
            choices.push(Vec::new());
            continue;
        }
        let spell = |v: &serde_json::Value| format!("tok{}", v["token"]);
        let top: Vec<serde_json::Value> = v["top_logprobs"]
            .as_array()
            .expect("top_logprobs written")
            .iter()
            .map(|a| serde_json::json!({"token": spell(a), "logprob": a["logprob"]}))
            .collect();
        let last = choices.last_mut().expect("one choice");
        last.push(
            serde_json::json!({"token": spell(&v), "logprob": v["logprob"], "top_logprobs": top}),
        );
    }
    let choices: Vec<serde_json::Value> = choices
        .into_iter()
        .enumerate()
        .map(|(i, content)| serde_json::json!({"index": i, "logprobs": {"content": content}}))
        .collect();
    serde_json::to_string_pretty(
        &serde_json::json!({"object": "chat.completion", "choices": choices}),
    )
    .expect("serialises")
}

#[test]
fn sampled_trace_and_its_openai_form_give_the_same_bound() {
    let dir = std::env::temp_dir().join(format!("speclight-trace-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let jsonl = dir.join("trace.jsonl");
    let openai = dir.join("openai.json");
    ok_stdout(&speclight(&[
        "trace",
        "--order",
        "3",
        "--prompts",
        "4",
        "--tokens",
        "200",
        "--seed",
        "9",
        "--out",
        path_str(&jsonl),
    ]));
    let text = std::fs::read_to_string(&jsonl).expect("trace written");
    assert_eq!(text.lines().filter(|l| l.contains("\"end\"")).count(), 3);
    assert_eq!(
        text.lines().filter(|l| l.contains("top_logprobs")).count(),
        800
    );
    std::fs::write(&openai, to_openai(&text)).expect("write openai");
    let bound = |path: &Path| -> serde_json::Value {
        let out = speclight(&[
            "bound",
            "--trace",
            path_str(path),
            "--capacity",
            "16",
            "--blocks",
            "8",
            "--json",
        ]);
        serde_json::from_str(&ok_stdout(&out)).expect("json")
    };
    let (a, b) = (bound(&jsonl), bound(&openai));
    assert_eq!(a["estimate"], b["estimate"]);
    assert_eq!(a["tokens"], 800);
    assert_eq!(b["sequences"], 4);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn openai_json_without_logprobs_is_refused_in_one_line() {
    let dir = std::env::temp_dir().join(format!("speclight-trace-bad-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let file = dir.join("bad.json");
    std::fs::write(
        &file,
        "{\"choices\": [{\"message\": {\"content\": \"hi\"}}]}\n",
    )
    .expect("write");
    let out = speclight(&["bound", "--trace", path_str(&file), "--capacity", "8"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("no logprobs.content"), "{err}");
    // A JSONL file with a bad first record keeps the JSONL reader's error.
    let jsonl = dir.join("bad.jsonl");
    std::fs::write(&jsonl, "{\"tok\": 1, \"logprob\": -0.5}\n").expect("write");
    let out = speclight(&["bound", "--trace", path_str(&jsonl), "--capacity", "8"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("trace line 1"),
        "{err}"
    );
    let out = speclight(&["trace", "--corpus", "shakespeare"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("unknown corpus"),
        "{err}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// Issue 12 items 13 and 14: a compact (one-line) OpenAI response over 1 MiB
/// is read as OpenAI JSON, not refused as an over-long JSONL line; a number
/// JSON cannot hold is named with its place.
#[test]
fn compact_openai_over_a_mebibyte_and_bad_numbers() {
    let dir = std::env::temp_dir().join(format!("speclight-trace-compact-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let file = dir.join("compact.json");
    let item = |i: usize| {
        let lp = -0.2 - 0.3 * (i % 7) as f64;
        // Unlikely tokens get a likelier alternative, as in sampled text.
        let alt = if lp < -0.7 {
            format!(
                r#"{{"token": "alt", "logprob": {}}}, "#,
                (1.0 - lp.exp() - 0.01).ln()
            )
        } else {
            String::new()
        };
        let t = i % 11;
        format!(
            r#"{{"token": "t{t}", "logprob": {lp}, "top_logprobs": [{alt}{{"token": "t{t}", "logprob": {lp}}}]}}"#
        )
    };
    let content: Vec<String> = (0..14_000).map(item).collect();
    let doc = format!(
        r#"{{"id": "c", "object": "chat.completion", "choices": [{{"index": 0, "logprobs": {{"content": [{}]}}}}]}}"#,
        content.join(",")
    );
    assert!(doc.len() > 1 << 20 && !doc.contains('\n'));
    std::fs::write(&file, &doc).expect("write");
    let out = speclight(&[
        "bound",
        "--trace",
        path_str(&file),
        "--capacity",
        "16",
        "--json",
    ]);
    let v: serde_json::Value = serde_json::from_str(&ok_stdout(&out)).expect("json");
    assert_eq!(v["tokens"], 14_000);
    for bad in ["-Infinity", "NaN", "-1e400"] {
        std::fs::write(
            &file,
            doc.replacen("\"logprob\": -0.2,", &format!("\"logprob\": {bad},"), 1),
        )
        .expect("write");
        let out = speclight(&["bound", "--trace", path_str(&file), "--capacity", "16"]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1));
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(
            err.contains(&format!("`{bad}` is not a finite JSON number"))
                && err.contains("line 1 column"),
            "{err}"
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// Issue 12, item 10: `--tokens u64::MAX` aborted with "capacity overflow";
/// every size flag of `trace` is checked before anything is allocated.
#[test]
fn trace_size_flags_beyond_their_limits_are_one_line_errors() {
    for args in [
        ["--tokens", "18446744073709551615"],
        ["--prompts", "100000000"],
        ["--top-logprobs", "100000"],
    ] {
        let out = crate::harness::speclight(
            &[&["trace", "--corpus", "rust_book"][..], &args[..]].concat(),
        );
        let err = crate::harness::assert_one_line_error(&out);
        assert!(err.contains("above the limit"), "{args:?}: {err}");
    }
}
