//! Traces in and out: writing a [`Trace`] as the JSONL that
//! [`crate::trace::read_jsonl`] reads (with `top_logprobs`), and reading the
//! OpenAI-compatible `logprobs` JSON that vLLM, llama.cpp's server and the
//! OpenAI API return, so that real LLM output feeds `speclight bound --trace`.
//!
//! The OpenAI form (chat completions with `logprobs: true, top_logprobs: k`):
//!
//! ```text
//! {"choices": [{"logprobs": {"content": [
//!     {"token": "Hello", "logprob": -0.31, "top_logprobs": [{"token": "Hello", "logprob": -0.31}, ...]},
//!     ...]}}]}
//! ```
//!
//! Each choice becomes one trace sequence. Token strings are mapped to ids in
//! order of first appearance within the file (sampled tokens and alternatives
//! share one map), since the estimator needs only ids and log-probabilities.

use crate::dist::TokenId;
use crate::error::{Error, Result};
use crate::trace::{TopLogprob, Trace, TraceToken};
use std::collections::HashMap;
use std::io::Write;

#[derive(serde::Serialize)]
struct TokenLine<'a> {
    token: TokenId,
    logprob: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    top_logprobs: Option<&'a [TopLogprob]>,
}

/// Writes `trace` as JSONL: one `{"token", "logprob", "top_logprobs"?}` line
/// per token and `{"end": true}` after every sequence but the last. Reading
/// it back with [`crate::trace::read_jsonl`] gives the same trace. O(tokens).
///
/// # Errors
///
/// [`Error::Parse`] when writing fails (the message carries the I/O error).
///
/// # Examples
///
/// ```
/// use speclight::trace::{read_jsonl, ReadLimits, Trace, TraceToken};
/// use speclight::trace_io::write_jsonl;
/// let mut trace = Trace::new();
/// trace.push(TraceToken::new(3, -0.25)?);
/// let mut out = Vec::new();
/// write_jsonl(&trace, &mut out)?;
/// assert_eq!(String::from_utf8(out.clone()).unwrap(), "{\"token\":3,\"logprob\":-0.25}\n");
/// assert_eq!(read_jsonl(&out[..], &ReadLimits::default())?, trace);
/// # Ok::<(), speclight::Error>(())
/// ```
pub fn write_jsonl<W: Write>(trace: &Trace, mut out: W) -> Result<()> {
    let io = |e: std::io::Error| Error::Parse(format!("cannot write the trace: {e}"));
    let sequences = trace.sequences();
    for (i, seq) in sequences.iter().enumerate() {
        for t in seq {
            let line = TokenLine {
                token: t.token(),
                logprob: t.logprob(),
                top_logprobs: t.top_logprobs(),
            };
            serde_json::to_writer(&mut out, &line)
                .map_err(|e| Error::Parse(format!("cannot write the trace: {e}")))?;
            out.write_all(b"\n").map_err(io)?;
        }
        if i + 1 < sequences.len() {
            out.write_all(b"{\"end\":true}\n").map_err(io)?;
        }
    }
    out.flush().map_err(io)
}

#[derive(serde::Deserialize)]
struct Response {
    choices: Vec<Choice>,
}

#[derive(serde::Deserialize)]
struct Choice {
    logprobs: Option<Logprobs>,
}

#[derive(serde::Deserialize)]
struct Logprobs {
    content: Option<Vec<ContentToken>>,
}

#[derive(serde::Deserialize)]
struct ContentToken {
    token: String,
    logprob: f64,
    #[serde(default)]
    top_logprobs: Vec<TopToken>,
}

#[derive(serde::Deserialize)]
struct TopToken {
    token: String,
    logprob: f64,
}

/// A trace read from OpenAI-compatible logprobs, with the token strings its
/// ids stand for.
#[derive(Debug, Clone, PartialEq)]
pub struct OpenAiTrace {
    /// The trace: one sequence per choice, in file order.
    pub trace: Trace,
    /// `vocab[id]` is the token string that id stands for.
    pub vocab: Vec<String>,
}

/// Assigns ids to token strings in order of first appearance.
#[derive(Default)]
struct Vocab {
    ids: HashMap<String, TokenId>,
    strings: Vec<String>,
}

impl Vocab {
    fn id(&mut self, token: &str) -> Result<TokenId> {
        if let Some(&id) = self.ids.get(token) {
            return Ok(id);
        }
        let id = TokenId::try_from(self.strings.len())
            .map_err(|_| Error::Parse("more distinct tokens than u32 ids".into()))?;
        self.ids.insert(token.to_owned(), id);
        self.strings.push(token.to_owned());
        Ok(id)
    }
}

/// Reads OpenAI-compatible logprobs JSON (see the module docs): one response
/// object, several concatenated or newline-separated ones, or a JSON array of
/// them. Every choice becomes a sequence. Within one `top_logprobs` list a
/// token string repeated (two ids that decode to the same text) keeps its
/// first entry. Time and space O(bytes).
///
/// # Errors
///
/// [`Error::Parse`] naming the response, choice and position for malformed
/// JSON, a choice without `logprobs.content` (request `logprobs: true`), a
/// log-probability that is positive or not finite, or no tokens at all.
///
/// # Examples
///
/// ```
/// use speclight::trace_io::read_openai;
/// let json = r#"{"choices": [{"logprobs": {"content": [
///     {"token": "Hi", "logprob": -0.1, "top_logprobs": [{"token": "Hi", "logprob": -0.1}, {"token": "Hey", "logprob": -2.5}]},
///     {"token": "!", "logprob": -0.7, "top_logprobs": []}]}}]}"#;
/// let t = read_openai(json)?;
/// assert_eq!(t.vocab, vec!["Hi", "Hey", "!"]);
/// assert_eq!(t.trace.num_tokens(), 2);
/// assert_eq!(t.trace.sequences()[0][1].token(), 2);
/// # Ok::<(), speclight::Error>(())
/// ```
pub fn read_openai(json: &str) -> Result<OpenAiTrace> {
    let mut responses: Vec<Response> = Vec::new();
    if json.trim_start().starts_with('[') {
        responses = serde_json::from_str(json)
            .map_err(|e| Error::Parse(format!("openai logprobs: {e}")))?;
    } else {
        for (i, r) in serde_json::Deserializer::from_str(json)
            .into_iter::<Response>()
            .enumerate()
        {
            responses
                .push(r.map_err(|e| Error::Parse(format!("openai logprobs: response {i}: {e}")))?);
        }
    }
    let mut vocab = Vocab::default();
    let mut trace = Trace::new();
    for (r, response) in responses.iter().enumerate() {
        for (c, choice) in response.choices.iter().enumerate() {
            let content = choice
                .logprobs
                .as_ref()
                .and_then(|l| l.content.as_ref())
                .ok_or_else(|| {
                    Error::Parse(format!(
                        "openai logprobs: response {r}, choice {c} has no logprobs.content (request logprobs: true)"
                    ))
                })?;
            for (pos, item) in content.iter().enumerate() {
                let at = |e: Error| {
                    Error::Parse(format!(
                        "openai logprobs: response {r}, choice {c}, token {pos} ({:?}): {e}",
                        item.token
                    ))
                };
                let id = vocab.id(&item.token)?;
                let mut top = Vec::with_capacity(item.top_logprobs.len());
                for alt in &item.top_logprobs {
                    let alt_id = vocab.id(&alt.token)?;
                    if top.iter().all(|t: &TopLogprob| t.token != alt_id) {
                        top.push(TopLogprob {
                            token: alt_id,
                            logprob: alt.logprob,
                        });
                    }
                }
                let token = TraceToken::new(id, item.logprob).map_err(at)?;
                trace.push(token.with_top_logprobs(top).map_err(at)?);
            }
            trace.end_sequence();
        }
    }
    if trace.num_tokens() == 0 {
        return Err(Error::Parse(
            "openai logprobs: no tokens found (expected choices[].logprobs.content[])".into(),
        ));
    }
    Ok(OpenAiTrace {
        trace,
        vocab: vocab.strings,
    })
}

/// Whether a file whose first non-blank line is `first_line` holds
/// OpenAI-compatible logprobs JSON rather than a JSONL trace: the line opens
/// a pretty-printed object (`{` alone) or an array (`[`), or is a complete
/// object with a `choices` field. Anything else is left to the JSONL reader,
/// whose errors name the line.
///
/// # Examples
///
/// ```
/// use speclight::trace_io::looks_like_openai_json;
/// assert!(looks_like_openai_json("{"));
/// assert!(looks_like_openai_json(r#"{"choices": []}"#));
/// assert!(!looks_like_openai_json(r#"{"token": 3, "logprob": -0.2}"#));
/// assert!(!looks_like_openai_json(r#"{"tok": 3}"#));
/// ```
pub fn looks_like_openai_json(first_line: &str) -> bool {
    let line = first_line.trim();
    line == "{"
        || line.starts_with('[')
        || serde_json::from_str::<serde_json::Map<String, serde_json::Value>>(line)
            .is_ok_and(|m| m.contains_key("choices"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trace::{read_jsonl, ReadLimits};
    use crate::trace_bound::estimate;

    #[test]
    fn jsonl_round_trip_keeps_sequences_and_alternatives() {
        let mut trace = Trace::new();
        let top = vec![
            TopLogprob {
                token: 4,
                logprob: -0.1,
            },
            TopLogprob {
                token: 9,
                logprob: -2.4,
            },
        ];
        trace.push(
            TraceToken::new(4, -0.1)
                .unwrap()
                .with_top_logprobs(top)
                .unwrap(),
        );
        trace.push(TraceToken::new(9, -2.4).unwrap());
        trace.end_sequence();
        trace.push(TraceToken::new(1, -0.0).unwrap());
        let mut out = Vec::new();
        write_jsonl(&trace, &mut out).unwrap();
        let back = read_jsonl(&out[..], &ReadLimits::default()).unwrap();
        assert_eq!(back, trace);
        assert_eq!(String::from_utf8(out).unwrap().lines().count(), 4);
    }

    fn openai_doc(choices: &[&[(&str, f64)]]) -> String {
        let choice = |toks: &[(&str, f64)]| {
            let content: Vec<serde_json::Value> = toks
                .iter()
                .map(|&(t, lp)| {
                    // Unlikely tokens get a likelier alternative, as in a sampled text.
                    let alt = if lp < -1.0 { -0.01 } else { -9999.0 };
                    serde_json::json!({"token": t, "logprob": lp, "bytes": [1],
                        "top_logprobs": [{"token": t, "logprob": lp}, {"token": "zz", "logprob": alt}]})
                })
                .collect();
            serde_json::json!({"index": 0, "logprobs": {"content": content}, "finish_reason": "length"})
        };
        serde_json::json!({"id": "x", "object": "chat.completion",
            "choices": choices.iter().map(|c| choice(c)).collect::<Vec<_>>()})
        .to_string()
    }

    #[test]
    fn openai_choices_become_sequences_with_file_local_ids() {
        let doc = openai_doc(&[
            &[("The", -0.5), (" cat", -1.5)],
            &[("The", -0.5), (" dog", -2.0)],
        ]);
        let t = read_openai(&doc).unwrap();
        assert_eq!(t.vocab, vec!["The", "zz", " cat", " dog"]);
        let seqs = t.trace.sequences();
        assert_eq!(seqs.len(), 2);
        assert_eq!(seqs[1][1].token(), 3);
        assert_eq!(seqs[1][1].logprob(), -2.0);
        assert_eq!(seqs[0][0].top_logprobs().unwrap()[1].token, 1);
        // Pretty-printed, concatenated and array forms read the same.
        let pretty =
            serde_json::to_string_pretty(&serde_json::from_str::<serde_json::Value>(&doc).unwrap())
                .unwrap();
        assert_eq!(read_openai(&pretty).unwrap(), t);
        let two = read_openai(&format!("{doc}\n{doc}\n")).unwrap();
        assert_eq!(two.trace.num_tokens(), 8);
        assert_eq!(read_openai(&format!("[{doc},{doc}]")).unwrap(), two);
        assert!(looks_like_openai_json(pretty.lines().next().unwrap()));
        assert!(looks_like_openai_json(&doc));
    }

    #[test]
    fn openai_trace_feeds_the_estimator_like_the_jsonl_one() {
        let toks: Vec<(String, f64)> = (0..200)
            .map(|i| (format!("t{}", i % 7), -0.3 - 0.3 * f64::from(i % 5)))
            .collect();
        let refs: Vec<(&str, f64)> = toks.iter().map(|(t, lp)| (t.as_str(), *lp)).collect();
        let t = read_openai(&openai_doc(&[&refs])).unwrap();
        let mut out = Vec::new();
        write_jsonl(&t.trace, &mut out).unwrap();
        let jsonl = read_jsonl(&out[..], &ReadLimits::default()).unwrap();
        let a = estimate(&t.trace, 16, 4).unwrap();
        let b = estimate(&jsonl, 16, 4).unwrap();
        assert_eq!(a, b);
    }

    #[test]
    fn bad_openai_input_gets_a_specific_error() {
        let no_logprobs = r#"{"choices": [{"message": {"content": "hi"}, "logprobs": null}]}"#;
        let err = read_openai(no_logprobs).unwrap_err().to_string();
        assert!(err.contains("choice 0 has no logprobs.content"), "{err}");
        let positive = openai_doc(&[&[("a", 0.5)]]);
        let err = read_openai(&positive).unwrap_err().to_string();
        assert!(err.contains("token 0") && err.contains("above 0"), "{err}");
        assert!(read_openai("{\"choices\": []}").is_err());
        assert!(read_openai("not json").is_err());
        assert!(read_openai("").is_err());
    }
}
