//! Prometheus text exposition (format 0.0.4) of the speculative-decoding
//! counters.
//!
//! vLLM (`vllm/v1/spec_decode/metrics.py`, class `SpecDecodingProm`)
//! registers the counters `vllm:spec_decode_num_drafts`,
//! `vllm:spec_decode_num_draft_tokens`, `vllm:spec_decode_num_accepted_tokens`
//! and `vllm:spec_decode_num_accepted_tokens_per_pos` (label `position`,
//! 0-based, one per draft position); `prometheus_client` exposes them with a
//! `_total` suffix and one series per engine label set, so every counter is
//! summed over its label sets (per position for the last one). Its own
//! definition of the mean acceptance length is
//! `1 + num_accepted_tokens / num_drafts`.
//!
//! llama-server (`--metrics`) exposes the same four counters with the
//! `llamacpp:` prefix and no label but `position` (checked against
//! ggml-org/llama.cpp at commit 001d906a6d86, `tools/server/server-context.cpp`:
//! per verification step `n_draft_verif_steps += 1`, `n_draft_accepted +=
//! n_accepted`, and `n_accepted_per_pos[i] += 1` for every `i < n_accepted`,
//! the vector sized to the drafter's `n_max`; its `/metrics` handler renders
//! `server_task_result_metrics::to_metrics()` of `tools/server/server-task.cpp`,
//! which writes `llamacpp:spec_decode_num_drafts_total` (the verification
//! steps), `..._num_draft_tokens_total`, `..._num_accepted_tokens_total` and
//! `..._num_accepted_tokens_per_pos_total{position="i"}`). Older llama-server
//! builds export none of these: such a file is rejected as unknown.
//! llama.cpp drafts can be shorter than `n_max` (`get_n_draft_max` caps a
//! draft by the context room and the tokens left to predict), which
//! [`super::AcceptanceFit::uniform_draft_length`] reports.

//!
//! mistral.rs (EricLBuehler/mistral.rs at commit 0003cf35120f,
//! `mistralrs-core/src/engine/logger.rs`, `add_speculative_stats`) counts
//! per verification batch `mistralrs_speculative_drafts_total` (sequences
//! that carried a draft), `..._draft_tokens_proposed_total`,
//! `..._draft_tokens_accepted_total` and
//! `..._draft_tokens_accepted_per_pos_total{position}`, the last only for
//! positions with a non-zero count in the batch: its caller increments
//! position `i` for every `i < accepted` of each sequence, as vLLM does.
//! Positions never accepted are therefore absent; when the proposed tokens
//! are a multiple of the drafts, the missing tail is read as zeros.

use super::{AcceptanceCounts, MetricsFormat, MAX_COUNT, MAX_POSITIONS};
use crate::error::{Error, Result};
use std::collections::BTreeMap;

/// One server's names for the four counters (without `_total`).
#[derive(Debug)]
struct Dialect {
    format: MetricsFormat,
    prefix: &'static str,
    names: [&'static str; 4],
    /// The server omits per-position series whose count is 0.
    omits_zero_positions: bool,
}

const VLLM_NAMES: [&str; 4] = [
    "spec_decode_num_drafts",
    "spec_decode_num_draft_tokens",
    "spec_decode_num_accepted_tokens",
    "spec_decode_num_accepted_tokens_per_pos",
];

const DIALECTS: [Dialect; 3] = [
    Dialect {
        format: MetricsFormat::VllmPrometheus,
        prefix: "vllm:",
        names: VLLM_NAMES,
        omits_zero_positions: false,
    },
    Dialect {
        format: MetricsFormat::LlamacppPrometheus,
        prefix: "llamacpp:",
        names: VLLM_NAMES,
        omits_zero_positions: false,
    },
    Dialect {
        format: MetricsFormat::MistralrsPrometheus,
        prefix: "mistralrs_speculative_",
        names: [
            "drafts",
            "draft_tokens_proposed",
            "draft_tokens_accepted",
            "draft_tokens_accepted_per_pos",
        ],
        omits_zero_positions: true,
    },
];

/// Whether the text holds a speculative-decoding sample of a known server.
pub fn looks_like(text: &str) -> bool {
    DIALECTS.iter().any(|d| {
        d.names
            .iter()
            .any(|n| text.contains(&format!("{}{n}", d.prefix)))
    })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Counter {
    Drafts,
    DraftTokens,
    AcceptedTokens,
    AcceptedPerPos,
}

const COUNTERS: [Counter; 4] = [
    Counter::Drafts,
    Counter::DraftTokens,
    Counter::AcceptedTokens,
    Counter::AcceptedPerPos,
];

/// The dialect and counter a sample name belongs to, if any.
fn counter(name: &str) -> Option<(&'static Dialect, Counter)> {
    DIALECTS.iter().find_map(|d| {
        let base = name.strip_prefix(d.prefix)?;
        let base = base.strip_suffix("_total").unwrap_or(base);
        let i = d.names.iter().position(|&n| n == base)?;
        Some((d, COUNTERS[i]))
    })
}

/// Sums of the four counters over their label sets.
#[derive(Debug, Default)]
struct Sums {
    dialect: Option<&'static Dialect>,
    drafts: Option<u64>,
    draft_tokens: Option<u64>,
    accepted: Option<u64>,
    per_pos: BTreeMap<usize, u64>,
}

/// Parses the exposition and reduces it to [`AcceptanceCounts`] (not yet
/// validated: see [`AcceptanceCounts::validate`]). O(size).
///
/// # Errors
///
/// [`Error::Metrics`] naming the line for a malformed sample, a negative,
/// non-integer or non-finite count, a `per_pos` sample without a
/// `position` label, both servers' counters in one file, a missing
/// `drafts` or `accepted_tokens_per_pos` counter, or a gap in the positions.
pub fn parse(text: &str) -> Result<AcceptanceCounts> {
    let mut sums = Sums::default();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        read_sample(line, i + 1, &mut sums)?;
    }
    finish(sums)
}

fn read_sample(line: &str, line_no: usize, sums: &mut Sums) -> Result<()> {
    let bad = |m: String| Error::Metrics(format!("line {line_no}: {m}"));
    let name_end = line
        .find(|c: char| c == '{' || c.is_whitespace())
        .unwrap_or(line.len());
    let name = &line[..name_end];
    let Some((dialect, which)) = counter(name) else {
        return Ok(()); // another metric
    };
    match sums.dialect {
        None => sums.dialect = Some(dialect),
        Some(d) if d.format != dialect.format => {
            return Err(bad(format!(
                "counters of two servers in one file ({} and {})",
                d.prefix, dialect.prefix
            )))
        }
        _ => {}
    }
    let (labels, rest) = split_labels(&line[name_end..]).map_err(bad)?;
    let value_text = rest.split_whitespace().next().unwrap_or("");
    let value = parse_count(value_text).map_err(|m| bad(format!("{name}: {m}")))?;
    let add = |slot: &mut Option<u64>| *slot = Some(slot.unwrap_or(0).saturating_add(value));
    match which {
        Counter::Drafts => add(&mut sums.drafts),
        Counter::DraftTokens => add(&mut sums.draft_tokens),
        Counter::AcceptedTokens => add(&mut sums.accepted),
        Counter::AcceptedPerPos => {
            let position = label(labels, "position")
                .ok_or_else(|| bad(format!("{name} has no position label")))?;
            let k: usize = position
                .parse()
                .ok()
                .filter(|&k| k < MAX_POSITIONS)
                .ok_or_else(|| {
                    bad(format!(
                        "position {position:?} is not in 0..{MAX_POSITIONS}"
                    ))
                })?;
            let slot = sums.per_pos.entry(k).or_insert(0);
            *slot = slot.saturating_add(value);
        }
    }
    Ok(())
}

/// Splits `{a="x",b="y"} 12 1700000000` into the label text and the rest.
fn split_labels(s: &str) -> std::result::Result<(&str, &str), String> {
    let s = s.trim_start();
    let Some(body) = s.strip_prefix('{') else {
        return Ok(("", s));
    };
    let mut in_quotes = false;
    let mut escaped = false;
    for (i, c) in body.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' => escaped = true,
            '"' => in_quotes = !in_quotes,
            '}' if !in_quotes => return Ok((&body[..i], &body[i + 1..])),
            _ => {}
        }
    }
    Err("unterminated label set".into())
}

/// The value of label `key` in `a="x",key="y"` (escapes kept as written).
fn label<'a>(labels: &'a str, key: &str) -> Option<&'a str> {
    let mut rest = labels;
    while let Some(eq) = rest.find("=\"") {
        let name = rest[..eq].trim().trim_start_matches(',').trim();
        let after = &rest[eq + 2..];
        let end = after.find('"')?;
        if name == key {
            return Some(&after[..end]);
        }
        rest = &after[end + 1..];
    }
    None
}

/// A counter value: finite, non-negative, integral, at most [`MAX_COUNT`].
fn parse_count(text: &str) -> std::result::Result<u64, String> {
    let v: f64 = text
        .parse()
        .map_err(|_| format!("value {text:?} is not a number"))?;
    if !v.is_finite() || v < 0.0 {
        return Err(format!("count {text} is negative or not finite"));
    }
    if v.fract() != 0.0 || v > MAX_COUNT as f64 {
        return Err(format!("count {text} is not an integer up to 2^53"));
    }
    Ok(v as u64)
}

fn finish(sums: Sums) -> Result<AcceptanceCounts> {
    let dialect = sums
        .dialect
        .ok_or_else(|| Error::Metrics("no speculative-decoding counters found".into()))?;
    let [drafts, _, _, per_pos] = dialect.names;
    let missing = |c: &str| Error::Metrics(format!("missing counter {}{c}", dialect.prefix));
    let steps = sums.drafts.ok_or_else(|| missing(drafts))?;
    let mut reached = Vec::with_capacity(sums.per_pos.len());
    for (i, (&k, &v)) in sums.per_pos.iter().enumerate() {
        if k != i {
            return Err(Error::Metrics(format!(
                "{}{per_pos} has position {k} but not {i}",
                dialect.prefix
            )));
        }
        reached.push(v);
    }
    if dialect.omits_zero_positions {
        pad_unaccepted_positions(&mut reached, steps, sums.draft_tokens);
    }
    if reached.is_empty() {
        return Err(missing(&format!(
            "{per_pos} (per-depth acceptance needs it)"
        )));
    }
    let sum: u64 = reached.iter().sum();
    Ok(AcceptanceCounts {
        format: dialect.format,
        steps,
        reached,
        draft_tokens: sums.draft_tokens,
        accepted_tokens: sums.accepted.unwrap_or(sum),
    })
}

/// Appends zeros up to `K = draft_tokens / steps` when that is a whole
/// number within [`MAX_POSITIONS`]: the positions a server that omits zero
/// counts never wrote.
fn pad_unaccepted_positions(reached: &mut Vec<u64>, steps: u64, draft_tokens: Option<u64>) {
    let Some(drafted) = draft_tokens else { return };
    if steps == 0 || drafted % steps != 0 {
        return;
    }
    let k = usize::try_from(drafted / steps).unwrap_or(usize::MAX);
    if k > reached.len() && k <= MAX_POSITIONS {
        reached.resize(k, 0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sums_label_sets_and_skips_other_samples() {
        let text = r#"# HELP vllm:spec_decode_num_drafts_total Number of spec decoding drafts.
# TYPE vllm:spec_decode_num_drafts_total counter
vllm:spec_decode_num_drafts_total{engine="0",model_name="m"} 60.0
vllm:spec_decode_num_drafts_total{engine="1",model_name="m"} 40.0
vllm:spec_decode_num_drafts_created{engine="0",model_name="m"} 1.7e9
vllm:spec_decode_num_accepted_tokens_total{engine="0",model_name="m"} 100.0
vllm:spec_decode_num_accepted_tokens_per_pos_total{engine="0",model_name="m",position="0"} 50.0
vllm:spec_decode_num_accepted_tokens_per_pos_total{engine="1",model_name="m",position="0"} 20.0
vllm:spec_decode_num_accepted_tokens_per_pos_total{engine="0",model_name="m",position="1"} 30.0
vllm:generation_tokens_total{model_name="m"} 5000.0
"#;
        let c = parse(text).unwrap();
        assert_eq!(
            (c.steps, c.reached.clone(), c.accepted_tokens),
            (100, vec![70, 30], 100)
        );
        assert_eq!(c.format, MetricsFormat::VllmPrometheus);
        c.validate().unwrap();
    }

    #[test]
    fn bad_counters_get_specific_errors() {
        let pos = "vllm:spec_decode_num_accepted_tokens_per_pos_total{position=\"0\"} 5\n";
        let cases = [
            (pos.to_owned(), "missing counter vllm:spec_decode_num_drafts"),
            ("vllm:spec_decode_num_drafts_total 10\n".to_owned(), "missing counter vllm:spec_decode_num_accepted_tokens_per_pos"),
            (format!("vllm:spec_decode_num_drafts_total -3\n{pos}"), "negative"),
            (format!("vllm:spec_decode_num_drafts_total 2.5\n{pos}"), "not an integer"),
            (format!("vllm:spec_decode_num_drafts_total 10\n{}", pos.replace("\"0\"", "\"1\"")), "position 1 but not 0"),
            ("vllm:spec_decode_num_drafts_total 10\nvllm:spec_decode_num_accepted_tokens_per_pos_total 5\n".to_owned(), "no position label"),
        ];
        for (text, want) in cases {
            let e = parse(&text).unwrap_err().to_string();
            assert!(e.contains(want), "{text:?}: {e}");
        }
    }

    #[test]
    fn mistralrs_positions_never_accepted_are_read_as_zeros() {
        let text = "mistralrs_speculative_drafts_total 10\n\
                    mistralrs_speculative_draft_tokens_proposed_total 30\n\
                    mistralrs_speculative_draft_tokens_accepted_total 7\n\
                    mistralrs_speculative_draft_tokens_accepted_per_pos_total{position=\"0\"} 5\n\
                    mistralrs_speculative_draft_tokens_accepted_per_pos_total{position=\"1\"} 2\n";
        let c = parse(text).unwrap();
        assert_eq!(c.format, MetricsFormat::MistralrsPrometheus);
        assert_eq!(
            (c.steps, c.reached.clone(), c.accepted_tokens),
            (10, vec![5, 2, 0], 7)
        );
        c.validate().unwrap();
        // Not a whole draft length: nothing is invented.
        let odd = text.replace(" 30", " 31");
        assert_eq!(parse(&odd).unwrap().reached, vec![5, 2]);
    }

    #[test]
    fn labels_with_braces_and_escapes() {
        let (labels, rest) = split_labels(r#"{a="x}y",position="3"} 7 123"#).unwrap();
        assert_eq!(label(labels, "position"), Some("3"));
        assert_eq!(rest.trim(), "7 123");
        assert!(split_labels(r#"{a="x"#).is_err());
    }
}
