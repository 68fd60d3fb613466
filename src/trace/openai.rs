//! Reading the OpenAI-compatible `logprobs` JSON that vLLM, llama.cpp's
//! server and the OpenAI API return, so that real LLM output feeds
//! `speclight bound --trace`, and telling it apart from a JSONL trace.
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

use super::{TopLogprob, Trace, TraceToken};
use crate::dist::TokenId;
use crate::error::{Error, Result};
use std::collections::HashMap;

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
/// use speclight::trace::read_openai;
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
        responses = serde_json::from_str(json).map_err(|e| {
            Error::Parse(format!(
                "openai logprobs: {}",
                super::json_error(json.as_bytes(), &e)
            ))
        })?;
    } else {
        for (i, r) in serde_json::Deserializer::from_str(json)
            .into_iter::<Response>()
            .enumerate()
        {
            responses.push(r.map_err(|e| {
                Error::Parse(format!(
                    "openai logprobs: response {i}: {}",
                    super::json_error(json.as_bytes(), &e)
                ))
            })?);
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

/// Whether a trace file that starts with `head` holds OpenAI-compatible
/// logprobs JSON rather than a JSONL trace, judged by content: the first
/// non-blank byte opens an array (`[`), or an object whose first key is not
/// one of a JSONL record's (`token`, `logprob`, `top_logprobs`, `end`) while
/// `head` holds the key `"choices"`. Only the first key is parsed, so a
/// prefix of a document is enough and the line layout does not matter (a
/// compact one-line response of any size is told apart). Anything else is
/// left to the JSONL reader, whose errors name the line. O(`head.len()`).
///
/// # Examples
///
/// ```
/// use speclight::trace::sniff_openai;
/// assert!(sniff_openai(b"{\n  \"id\": \"chatcmpl-1\",\n  \"choices\": ["));
/// assert!(sniff_openai(br#"[{"choices": []}]"#));
/// assert!(sniff_openai(br#"{"choices": [{"logprobs": {"content": [{"token": "a", "#));
/// assert!(!sniff_openai(br#"{"token": 3, "logprob": -0.2}"#));
/// assert!(!sniff_openai(b"\n{\"end\": true}"));
/// assert!(!sniff_openai(br#"{"tok": 3, "logprob": -0.2}"#));
/// assert!(!sniff_openai(b"not json"));
/// ```
pub fn sniff_openai(head: &[u8]) -> bool {
    match head.iter().find(|b| !b.is_ascii_whitespace()) {
        Some(b'[') => true,
        Some(b'{') => {
            first_key(head).is_some_and(|k| !JSONL_KEYS.contains(&k.as_str()))
                && head.windows(CHOICES.len()).any(|w| w == CHOICES)
        }
        _ => false,
    }
}

/// The key every OpenAI-compatible response has.
const CHOICES: &[u8] = b"\"choices\"";

/// The keys a JSONL trace record may have.
const JSONL_KEYS: [&str; 4] = ["token", "logprob", "top_logprobs", "end"];

/// The first key of the object `head` starts with, parsed from a prefix that
/// may be cut anywhere after it.
fn first_key(head: &[u8]) -> Option<String> {
    use serde::de::{DeserializeSeed, MapAccess, Visitor};
    struct FirstKey<'a>(&'a mut Option<String>);
    impl<'de> DeserializeSeed<'de> for FirstKey<'_> {
        type Value = ();
        fn deserialize<D: serde::Deserializer<'de>>(
            self,
            d: D,
        ) -> std::result::Result<(), D::Error> {
            d.deserialize_map(self)
        }
    }
    impl<'de> Visitor<'de> for FirstKey<'_> {
        type Value = ();
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("an object")
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> std::result::Result<(), A::Error> {
            *self.0 = map.next_key::<String>()?;
            // Stop here: the rest of the prefix may be cut anywhere.
            Err(serde::de::Error::custom("first key read"))
        }
    }
    let mut key = None;
    let mut de = serde_json::Deserializer::from_slice(head);
    let _ = FirstKey(&mut key).deserialize(&mut de);
    key
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bound::trace::estimate;
    use crate::trace::{read_jsonl, write_jsonl, ReadLimits};

    fn openai_doc(choices: &[&[(&str, f64)]]) -> String {
        let choice = |toks: &[(&str, f64)]| {
            let content: Vec<serde_json::Value> = toks
                .iter()
                .map(|&(t, lp)| {
                    // Unlikely tokens get a likelier alternative, as in a sampled text.
                    let alt = if lp < -1.0 { -0.5 } else { -9999.0 };
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
        assert!(sniff_openai(pretty.as_bytes()));
        assert!(sniff_openai(doc.as_bytes()));
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
        // Issue 12 item 14: the bad number and its place are named.
        for bad in ["-Infinity", "NaN", "-1e400"] {
            let doc = openai_doc(&[&[("a", -0.5), ("b", -0.25)]]).replace("-0.25", bad);
            let err = read_openai(&doc).unwrap_err().to_string();
            let want = format!("`{bad}` is not a finite JSON number");
            assert!(
                err.contains(&want) && err.contains("line 1 column"),
                "{err}"
            );
        }
        assert!(read_openai("not json").is_err());
        assert!(read_openai("").is_err());
    }
}
