//! The list-of-rank-lists literal that Medusa (JSON, `[[0], [1], [0, 0]]`)
//! and vLLM (a Python literal, `[(0,), (1,), (0, 0)]`) both write, parsed by
//! one cursor in one of two dialects.
//!
//! No Rust crate parses Python literals without a full Python parser, and
//! this grammar is a few productions, so it is parsed here directly; the JSON
//! dialect is the same grammar made strict, so that the Medusa reader needs
//! no serde. Time O(length of the text), space O(number of ranks).

use crate::error::{Error, Result};

/// Which language's spelling of the literal is accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Dialect {
    /// Python's `ast.literal_eval` (vLLM): any whitespace, `#` comments,
    /// trailing commas, tuples or lists, one-element tuples `(0,)`, integers
    /// with `_` separators and `0x`/`0o`/`0b` prefixes.
    Python,
    /// JSON (Medusa): lists only, space/tab/CR/LF only, no trailing commas,
    /// decimal integers without leading zeros.
    Json,
}

/// Parses `text` as a list of lists of ranks (integers below 2^32). `what`
/// names the input in errors ("vllm token tree").
///
/// # Errors
///
/// [`Error::Parse`] naming the byte offset and the rule broken.
pub(super) fn parse_rank_lists(
    text: &str,
    dialect: Dialect,
    what: &'static str,
) -> Result<Vec<Vec<u32>>> {
    let mut cursor = Cursor {
        text: text.as_bytes(),
        at: 0,
        dialect,
        what,
    };
    let paths = cursor.outer()?;
    if cursor.peek().is_some() {
        return Err(cursor.error("unexpected text after the tree"));
    }
    Ok(paths)
}

/// A cursor over the literal.
struct Cursor<'a> {
    text: &'a [u8],
    at: usize,
    dialect: Dialect,
    what: &'static str,
}

/// Which bracket kind a path used, so that lists and tuples are not mixed
/// (Python's `list.index` would then not find a tuple's parent).
#[derive(Clone, Copy, PartialEq, Eq)]
enum PathKind {
    Tuple,
    List,
}

impl Cursor<'_> {
    fn error(&self, why: &str) -> Error {
        Error::Parse(format!("{} at byte {}: {why}", self.what, self.at))
    }

    fn python(&self) -> bool {
        self.dialect == Dialect::Python
    }

    /// The next significant byte, skipping whitespace (and Python comments).
    fn peek(&mut self) -> Option<u8> {
        loop {
            match self.text.get(self.at) {
                Some(b' ' | b'\t' | b'\r' | b'\n') => self.at += 1,
                Some(b'\x0c') if self.python() => self.at += 1,
                Some(b'#') if self.python() => {
                    while self.text.get(self.at).is_some_and(|&c| c != b'\n') {
                        self.at += 1;
                    }
                }
                other => return other.copied(),
            }
        }
    }

    /// Consumes `c` if it is next.
    fn eat(&mut self, c: u8) -> bool {
        if self.peek() == Some(c) {
            self.at += 1;
            true
        } else {
            false
        }
    }

    /// Consumes the closing bracket if it is next; refuses it right after a
    /// comma where the dialect has no trailing commas.
    fn close(&mut self, close: u8, after_comma: bool) -> Result<bool> {
        if !self.eat(close) {
            return Ok(false);
        }
        if after_comma && !self.python() {
            self.at -= 1;
            return Err(self.error("trailing comma before the closing bracket"));
        }
        Ok(true)
    }

    fn outer(&mut self) -> Result<Vec<Vec<u32>>> {
        let close = match self.peek() {
            Some(b'[') => b']',
            Some(b'(') if self.python() => b')',
            _ if self.python() => return Err(self.error("expected '[' opening a list of tuples")),
            _ => return Err(self.error("expected '[' opening a list of rank lists")),
        };
        self.at += 1;
        let mut paths = Vec::new();
        let mut kind = None;
        let mut commas = 0;
        loop {
            if self.close(close, commas > 0)? {
                break;
            }
            let (path, k) = self.path()?;
            if kind.is_some_and(|prev| prev != k) {
                return Err(self.error("tuples and lists are mixed; use tuples throughout"));
            }
            kind = Some(k);
            paths.push(path);
            if self.eat(b',') {
                commas += 1;
            } else if self.eat(close) {
                break;
            } else {
                return Err(self.error("expected ',' or the closing bracket"));
            }
        }
        if close == b')' && paths.len() == 1 && commas == 0 {
            // `((0,))` is the tuple (0,) in parentheses, not a tree.
            return Err(self.error("a parenthesised tuple of integers is not a list of tuples"));
        }
        Ok(paths)
    }

    fn path(&mut self) -> Result<(Vec<u32>, PathKind)> {
        let (close, kind) = match self.peek() {
            Some(b'(') if self.python() => (b')', PathKind::Tuple),
            Some(b'[') => (b']', PathKind::List),
            _ if self.python() => return Err(self.error("expected '(' opening a rank tuple")),
            _ => return Err(self.error("expected '[' opening a rank list")),
        };
        self.at += 1;
        let mut path = Vec::new();
        let mut commas = 0;
        loop {
            if self.close(close, commas > 0)? {
                break;
            }
            path.push(self.rank()?);
            if self.eat(b',') {
                commas += 1;
            } else if self.eat(close) {
                break;
            } else {
                return Err(self.error("expected ',' or the closing bracket of a rank tuple"));
            }
        }
        if kind == PathKind::Tuple && path.len() == 1 && commas == 0 {
            return Err(self.error(&format!(
                "({0}) is the integer {0} in Python, not a tuple; write ({0},)",
                path[0]
            )));
        }
        Ok((path, kind))
    }

    fn rank(&mut self) -> Result<u32> {
        if self.peek() == Some(b'-') {
            return Err(self.error("a rank cannot be negative"));
        }
        if self.python() {
            self.eat(b'+'); // Python allows a unary plus, even followed by spaces
        }
        let begin = match self.peek() {
            Some(c) if c.is_ascii_digit() => self.at,
            _ => return Err(self.error("expected a rank (a non-negative integer)")),
        };
        // The whole word, so that `1.5`, `0x1f` or JSON's `1e+3` is judged as one.
        let python = self.python();
        let in_word = |c: &u8| {
            c.is_ascii_alphanumeric()
                || matches!(c, b'_' | b'.')
                || (!python && matches!(c, b'+' | b'-'))
        };
        while self.text.get(self.at).is_some_and(in_word) {
            self.at += 1;
        }
        // ASCII only, so always UTF-8.
        let word = std::str::from_utf8(&self.text[begin..self.at]).unwrap_or("");
        let value = match self.dialect {
            Dialect::Python => parse_python_int(word),
            Dialect::Json => parse_json_int(word),
        };
        value.ok_or_else(|| {
            Error::Parse(format!(
                "{} at byte {begin}: {word:?} is not a rank below 2^32",
                self.what
            ))
        })
    }
}

/// A Python integer literal (decimal without leading zeros, `_` between
/// digits, `0x`/`0o`/`0b` prefixes) that fits in `u32`.
fn parse_python_int(word: &str) -> Option<u32> {
    let lower = word.to_ascii_lowercase();
    let (digits, radix) = match lower.get(..2) {
        Some("0x") => (&lower[2..], 16),
        Some("0o") => (&lower[2..], 8),
        Some("0b") => (&lower[2..], 2),
        _ => (lower.as_str(), 10),
    };
    let digits = digits
        .strip_prefix('_')
        .filter(|_| radix != 10)
        .unwrap_or(digits);
    if digits.is_empty()
        || digits.starts_with('_')
        || digits.ends_with('_')
        || digits.contains("__")
    {
        return None;
    }
    let clean: String = digits.chars().filter(|&c| c != '_').collect();
    if radix == 10 && clean.len() > 1 && clean.starts_with('0') && clean.bytes().any(|b| b != b'0')
    {
        return None; // `01` is a syntax error in Python 3
    }
    u32::from_str_radix(&clean, radix).ok()
}

/// A JSON integer (decimal digits, no leading zero, no fraction or exponent)
/// that fits in `u32`.
fn parse_json_int(word: &str) -> Option<u32> {
    let digits_only = !word.is_empty() && word.bytes().all(|b| b.is_ascii_digit());
    let leading_zero = word.len() > 1 && word.starts_with('0');
    if !digits_only || leading_zero {
        return None;
    }
    word.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn json(text: &str) -> Result<Vec<Vec<u32>>> {
        parse_rank_lists(text, Dialect::Json, "medusa choices")
    }

    #[test]
    fn json_dialect_accepts_json() {
        let want = vec![vec![0], vec![1], vec![0, 0]];
        for text in [
            "[[0], [1], [0, 0]]",
            "[[0],[1],[0,0]]",
            " \r\n\t[ [ 0 ] , [1] ,[0 ,0]]\n",
        ] {
            assert_eq!(json(text).unwrap(), want, "{text:?}");
        }
        assert_eq!(json("[]").unwrap(), Vec::<Vec<u32>>::new());
        assert_eq!(json("[[]]").unwrap(), vec![Vec::<u32>::new()]);
        assert_eq!(json("[[4294967295]]").unwrap(), vec![vec![u32::MAX]]);
    }

    /// Everything `serde_json` refuses for a `Vec<Vec<u32>>` is refused too.
    #[test]
    fn json_dialect_refuses_what_json_refuses() {
        for (text, needle) in [
            ("[[0],]", "trailing comma"),
            ("[[0,]]", "trailing comma"),
            ("[(0,)]", "expected '['"),
            ("((0,),)", "expected '['"),
            ("[[0]] # note", "after the tree"),
            ("[[-1]]", "negative"),
            ("[[+1]]", "expected a rank"),
            ("[[01]]", "not a rank"),
            ("[[1.0]]", "not a rank"),
            ("[[1e3]]", "not a rank"),
            ("[[1_000]]", "not a rank"),
            ("[[0x1]]", "not a rank"),
            ("[[4294967296]]", "not a rank"),
            ("[[0] [1]]", "expected ','"),
            ("[[0]", "expected"),
            ("\x0c[[0]]", "expected '['"),
            ("", "expected '['"),
        ] {
            let err = json(text).unwrap_err();
            assert!(
                matches!(&err, Error::Parse(m) if m.starts_with("medusa choices at byte") && m.contains(needle)),
                "{text:?}: {err}"
            );
        }
    }
}
