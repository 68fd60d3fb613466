//! `speclight trace` and `speclight bound --trace` on both trace formats, run
//! as a user would: a sampled JSONL trace and the same tokens rewritten as
//! OpenAI-compatible logprobs JSON must give the same speed of light.
#![cfg(feature = "cli")]

use std::path::Path;
use std::process::{Command, Output};

fn speclight(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_speclight"))
        .args(args)
        .output()
        .expect("the binary runs")
}

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
