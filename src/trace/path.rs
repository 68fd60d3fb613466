//! Reading a trace file in either format, told apart by its content.

use super::jsonl::{read_jsonl, ReadLimits};
use super::openai::{read_openai, sniff_openai};
use super::Trace;
use crate::error::{Error, Result};
use crate::input::{check_size, text, MAX_INPUT_BYTES};
use std::io::{BufRead, Read};
use std::path::Path;

/// Bytes looked at to tell the formats apart: enough to hold the first key
/// of the first object of any real file, pretty-printed or not.
pub const SNIFF_BYTES: usize = 64 << 10;

/// Reads a trace from `reader`, in either format: OpenAI-compatible
/// `logprobs` JSON (see [`super::openai`]) or a JSONL trace (see
/// [`super::jsonl`]), told apart by content ([`sniff_openai`] on the first
/// [`SNIFF_BYTES`]), not by line length, so that a compact one-line OpenAI
/// response of any size is read. A JSONL trace streams under `limits`; an
/// OpenAI document is read whole, up to [`MAX_INPUT_BYTES`]. Time O(bytes);
/// space O(tokens) for JSONL, O(bytes) for OpenAI JSON.
///
/// # Errors
///
/// As [`read_jsonl`] or [`read_openai`]; [`Error::Io`] when reading fails,
/// [`Error::InputTooLarge`] for an OpenAI document above
/// [`MAX_INPUT_BYTES`] and [`Error::NotUtf8`] for one that is not UTF-8.
///
/// # Examples
///
/// ```
/// use speclight::trace::{read, ReadLimits};
/// let jsonl = "{\"token\": 1, \"logprob\": -0.5}\n";
/// let openai = r#"{"id": "x", "choices": [{"logprobs": {"content": [{"token": "a", "logprob": -0.5}]}}]}"#;
/// let a = read(jsonl.as_bytes(), &ReadLimits::default())?;
/// let b = read(openai.as_bytes(), &ReadLimits::default())?;
/// assert_eq!(a.num_tokens(), b.num_tokens());
/// # Ok::<(), speclight::Error>(())
/// ```
pub fn read<R: BufRead>(mut reader: R, limits: &ReadLimits) -> Result<Trace> {
    let io = |e: std::io::Error| Error::Io(format!("cannot read the trace: {e}"));
    let mut head = Vec::new();
    (&mut reader)
        .take(SNIFF_BYTES as u64)
        .read_to_end(&mut head)
        .map_err(io)?;
    if !sniff_openai(&head) {
        return read_jsonl(std::io::Cursor::new(head).chain(reader), limits);
    }
    let room = (MAX_INPUT_BYTES + 1).saturating_sub(head.len() as u64);
    reader.take(room).read_to_end(&mut head).map_err(io)?;
    check_size(head.len() as u64)?;
    Ok(read_openai(text(&head)?)?.trace)
}

/// Opens `path` and [`read`]s the trace in it.
///
/// # Errors
///
/// [`Error::Io`] when the file cannot be opened, and the errors of [`read`].
pub fn read_path(path: &Path, limits: &ReadLimits) -> Result<Trace> {
    let file = std::fs::File::open(path)
        .map_err(|e| Error::Io(format!("cannot read {}: {e}", path.display())))?;
    read(std::io::BufReader::new(file), limits)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_compact_openai_response_over_a_mebibyte_is_read() {
        // One line of about 1.5 MiB: the JSONL reader's line limit is 1 MiB,
        // so a sniff by line length reads it as JSONL and refuses it.
        let item = r#"{"token": "tok", "logprob": -0.7, "top_logprobs": [{"token": "tok", "logprob": -0.7}, {"token": "alt", "logprob": -0.9}]}"#;
        let n = (3 << 19) / item.len() + 1;
        let content = vec![item; n].join(",");
        let doc =
            format!(r#"{{"id": "c", "choices": [{{"logprobs": {{"content": [{content}]}}}}]}}"#);
        assert!(doc.len() > 1 << 20 && !doc.contains('\n'));
        let trace = read(doc.as_bytes(), &ReadLimits::default()).unwrap();
        assert_eq!(trace.num_tokens(), n);
    }

    #[test]
    fn jsonl_keeps_its_line_numbers_after_the_sniff() {
        let text = "\n\n{\"token\": 1, \"logprob\": -1}\n{\"token\": 1}\n";
        let err = read(text.as_bytes(), &ReadLimits::default()).unwrap_err();
        assert!(matches!(err, Error::TraceLine { line: 4, .. }), "{err}");
        // An over-long JSONL line is still a JSONL error, named by its line.
        let long = format!(
            "{{\"token\": 1, \"logprob\": -1, \"top_logprobs\": [{}]}}\n",
            "{\"token\": 2, \"logprob\": -3},".repeat(50_000)
        );
        let err = read(long.as_bytes(), &ReadLimits::default()).unwrap_err();
        assert!(
            err.to_string()
                .contains("trace line 1: longer than the limit"),
            "{err}"
        );
    }
}
