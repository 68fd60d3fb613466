//! Streaming reader of paired traces: bounded lines, 1-based line numbers in
//! every error, and the ordering the tuner relies on.

use super::record::TraceRecord;
use crate::dist::TokenId;
use crate::error::{Error, Result};
use std::io::BufRead;

/// Default cap on one line of a trace (1 MiB): a longer line is reported as
/// bad instead of being buffered, and ends the reading.
pub const DEFAULT_MAX_LINE_BYTES: usize = 1 << 20;

/// The records of one `(seq, pos)`: the verifier's continuation as ranks in
/// the drafter's lists, depth 1 first. Buffers are reused between groups.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Group {
    seq: u64,
    pos: u64,
    first_line: usize,
    ranks: Vec<Option<u32>>,
    targets: Vec<TokenId>,
    draft_logprobs: Vec<Vec<f64>>,
    target_logprobs: Vec<Option<f64>>,
}

impl Group {
    /// Sequence id.
    pub fn seq(&self) -> u64 {
        self.seq
    }
    /// Start position.
    pub fn pos(&self) -> u64 {
        self.pos
    }
    /// Line number of the group's depth-1 record.
    pub fn first_line(&self) -> usize {
        self.first_line
    }
    /// Number of depths recorded (`1..=depth()`).
    pub fn depth(&self) -> usize {
        self.ranks.len()
    }
    /// `ranks()[j]`: rank of the verifier's token at depth `j + 1` in the
    /// drafter's list, `None` if unlisted.
    pub fn ranks(&self) -> &[Option<u32>] {
        &self.ranks
    }
    /// The verifier's tokens, depth 1 first.
    pub fn targets(&self) -> &[TokenId] {
        &self.targets
    }
    /// The drafter's logprobs at depth `j + 1`, rank order.
    pub fn draft_logprobs(&self, j: usize) -> &[f64] {
        self.draft_logprobs.get(j).map_or(&[], Vec::as_slice)
    }
    /// The verifier's logprobs of its tokens, when every record had one.
    pub fn target_logprobs(&self) -> Option<Vec<f64>> {
        self.target_logprobs.iter().copied().collect()
    }

    fn start(&mut self, line: usize, r: &TraceRecord) {
        self.seq = r.seq;
        self.pos = r.pos;
        self.first_line = line;
        self.ranks.clear();
        self.targets.clear();
        self.target_logprobs.clear();
        self.push(r);
    }

    fn push(&mut self, r: &TraceRecord) {
        let j = self.ranks.len();
        self.ranks.push(r.target_rank().map(|k| k as u32));
        self.targets.push(r.target);
        self.target_logprobs.push(r.target_logprob);
        if self.draft_logprobs.len() <= j {
            self.draft_logprobs.push(Vec::new());
        }
        let lp = &mut self.draft_logprobs[j];
        lp.clear();
        lp.extend(r.draft_top.iter().map(|e| e.1));
    }
}

/// The ordering a trace must have, checked one record at a time: groups in
/// strictly increasing `(seq, pos)` order (sorted by sequence, then
/// position, each pair once), and inside a group the depths `1, 2, 3, ...`
/// contiguous. A writer that loops over sequences, then positions, then
/// depths produces exactly this. It lets the tuner stream the trace in
/// constant memory and proves no group is split or repeated.
#[derive(Debug, Clone, Default)]
struct OrderCheck {
    last: Option<(u64, u64, u32)>,
}

impl OrderCheck {
    /// `Ok(true)` if `r` starts a new group, `Ok(false)` if it continues the
    /// current one; the state changes only on success.
    fn admit(&mut self, r: &TraceRecord) -> std::result::Result<bool, String> {
        let starts = match self.last {
            Some((s, p, d)) if (s, p) == (r.seq, r.pos) => {
                if r.depth != d + 1 {
                    return Err(format!(
                        "depth {} follows depth {d} for seq {s} pos {p}: depths must be 1, 2, 3, ... in order",
                        r.depth
                    ));
                }
                false
            }
            Some((s, p, _)) if (r.seq, r.pos) < (s, p) => {
                return Err(format!(
                    "seq {} pos {} comes after seq {s} pos {p}: records must be sorted by (seq, pos)",
                    r.seq, r.pos
                ));
            }
            _ => {
                if r.depth != 1 {
                    return Err(format!(
                        "seq {} pos {} starts at depth {}, not 1",
                        r.seq, r.pos, r.depth
                    ));
                }
                true
            }
        };
        self.last = Some((r.seq, r.pos, r.depth));
        Ok(starts)
    }
}

/// Reads a paired trace record by record or group by group, in constant
/// memory: one line (at most [`TraceReader::with_max_line_bytes`] bytes) and
/// one group are buffered. Blank lines are skipped. A line longer than the
/// cap ends the reading (after at most the cap plus one buffer of it is
/// read), so an endless input without newlines cannot hang the reader.
///
/// [`TraceReader::bytes_read`] is a byte counter a caller can poll for
/// progress.
///
/// # Examples
///
/// ```
/// use speclight::tune::{Group, TraceReader};
/// let trace = br#"{"seq":0,"pos":0,"depth":1,"draft_top":[[3,-0.2],[4,-1.9]],"target":4}
/// {"seq":0,"pos":0,"depth":2,"draft_top":[[8,-0.1]],"target":8}
/// {"seq":0,"pos":1,"depth":1,"draft_top":[[8,-0.4]],"target":2}
/// "#;
/// let mut reader = TraceReader::new(&trace[..]);
/// let mut g = Group::default();
/// assert!(reader.next_group(&mut g)?);
/// assert_eq!(g.ranks(), &[Some(1), Some(0)]);
/// assert!(reader.next_group(&mut g)?);
/// assert_eq!((g.pos(), g.ranks()), (1, &[None][..]));
/// assert!(!reader.next_group(&mut g)?);
/// # Ok::<(), speclight::Error>(())
/// ```
#[derive(Debug)]
pub struct TraceReader<R> {
    input: R,
    max_line: usize,
    line: usize,
    bytes: u64,
    buf: Vec<u8>,
    order: OrderCheck,
    pending: Option<(usize, TraceRecord)>,
    /// Set by an over-long line: the reading has ended.
    stopped: bool,
}

impl<R: BufRead> TraceReader<R> {
    /// A reader with the default line cap [`DEFAULT_MAX_LINE_BYTES`].
    pub fn new(input: R) -> Self {
        Self {
            input,
            max_line: DEFAULT_MAX_LINE_BYTES,
            line: 0,
            bytes: 0,
            buf: Vec::new(),
            order: OrderCheck::default(),
            pending: None,
            stopped: false,
        }
    }

    /// Sets the longest line accepted, in bytes (newline excluded).
    pub fn with_max_line_bytes(mut self, max: usize) -> Self {
        self.max_line = max;
        self
    }

    /// Bytes consumed so far.
    pub fn bytes_read(&self) -> u64 {
        self.bytes
    }

    /// Lines consumed so far (the number of the last line read).
    pub fn lines_read(&self) -> usize {
        self.line
    }

    /// Reads the next non-blank line into `buf`; `Ok(false)` at the end.
    /// A line over the cap ends the reading: its rest is not consumed (it
    /// may have no end: `/dev/zero` has no newline), so at most the cap
    /// plus one buffer is read past its start, and every later call returns
    /// `Ok(false)`.
    fn read_line(&mut self) -> Result<bool> {
        if self.stopped {
            return Ok(false);
        }
        loop {
            self.buf.clear();
            let mut any = false;
            loop {
                let avail = self.input.fill_buf().map_err(|e| {
                    Error::Io(format!("reading trace after line {}: {e}", self.line))
                })?;
                if avail.is_empty() {
                    break;
                }
                any = true;
                let newline = avail.iter().position(|&b| b == b'\n');
                let take = newline.map_or(avail.len(), |p| p + 1);
                let content = self.buf.len() + take - usize::from(newline.is_some());
                let too_long = content > self.max_line;
                if !too_long {
                    self.buf.extend_from_slice(&avail[..take]);
                }
                self.input.consume(take);
                self.bytes += take as u64;
                if too_long {
                    self.stopped = true;
                    self.buf.clear();
                    self.line += 1;
                    return Err(Error::TraceLine {
                        line: self.line,
                        reason: format!(
                            "line is longer than {} bytes (reading stops here)",
                            self.max_line
                        ),
                    });
                }
                if newline.is_some() {
                    break;
                }
            }
            if !any {
                return Ok(false);
            }
            self.line += 1;
            if !self.buf.iter().all(u8::is_ascii_whitespace) {
                return Ok(true);
            }
        }
    }

    /// The next record with its line number, parsed and checked
    /// ([`TraceRecord::check`]); ordering is not checked here.
    ///
    /// # Errors
    ///
    /// [`Error::TraceLine`] with the 1-based line number for a line that
    /// is too long, not JSON of the schema, or breaks a record invariant;
    /// [`Error::Io`] when reading fails. After a record error the reader
    /// can go on with the next line, except after an over-long line: its
    /// end may never come (`/dev/zero`), so the reading stops there and
    /// later calls return `Ok(None)`.
    pub fn next_record(&mut self) -> Result<Option<(usize, TraceRecord)>> {
        if !self.read_line()? {
            return Ok(None);
        }
        let line = self.line;
        let record: TraceRecord =
            serde_json::from_slice(&self.buf).map_err(|e| Error::TraceLine {
                line,
                reason: e.to_string(),
            })?;
        record
            .check()
            .map_err(|reason| Error::TraceLine { line, reason })?;
        Ok(Some((line, record)))
    }

    /// The next record that also passes the ordering check.
    fn next_ordered(&mut self) -> Result<Option<(usize, TraceRecord, bool)>> {
        match self.next_record()? {
            None => Ok(None),
            Some((line, r)) => {
                let starts = self
                    .order
                    .admit(&r)
                    .map_err(|reason| Error::TraceLine { line, reason })?;
                Ok(Some((line, r, starts)))
            }
        }
    }

    /// Fills `group` with the next `(seq, pos)` group; `Ok(false)` at the
    /// end of the trace. O(records of the group) time; memory is that of
    /// one group.
    ///
    /// # Errors
    ///
    /// As [`TraceReader::next_record`], plus [`Error::TraceLine`] for a
    /// record out of order (see the module docs: sorted by `(seq, pos)`,
    /// depths `1, 2, ...` contiguous). The first bad line stops the read.
    pub fn next_group(&mut self, group: &mut Group) -> Result<bool> {
        let (line, first) = match self.pending.take() {
            Some(p) => p,
            None => match self.next_ordered()? {
                None => return Ok(false),
                Some((line, r, _)) => (line, r),
            },
        };
        group.start(line, &first);
        while let Some((line, r, starts)) = self.next_ordered()? {
            if starts {
                self.pending = Some((line, r));
                break;
            }
            group.push(&r);
        }
        Ok(true)
    }
}

/// What [`validate`] found.
#[derive(Debug, Clone, Default, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct ValidationReport {
    /// Lines holding a record (blank lines excluded), good or bad.
    pub lines: u64,
    /// Records that parsed, passed their checks and were in order.
    pub good_records: u64,
    /// `(seq, pos)` groups among the good records.
    pub groups: u64,
    /// Number of bad lines, all of them.
    pub bad_lines: u64,
    /// The first bad lines (up to the cap given to [`validate`]), each as
    /// `(line, reason)`.
    pub errors: Vec<(usize, String)>,
    /// Deepest depth seen.
    pub max_depth: u32,
    /// Longest `draft_top` seen.
    pub max_top_k: usize,
    /// Good records without a `target_logprob`.
    pub missing_target_logprob: u64,
}

impl ValidationReport {
    /// `true` when no line was bad.
    pub fn is_valid(&self) -> bool {
        self.bad_lines == 0
    }
}

/// Checks a whole trace, reporting every bad line by number (the first
/// `max_errors` with their reasons, all of them in the count) instead of
/// stopping at the first. A record out of order is reported and skipped, so
/// one misplaced line yields one error. An over-long line is the last one
/// read (see [`TraceReader::next_record`]): it is reported, and the check
/// stops there. Streaming: O(1) memory in the number of records.
///
/// # Errors
///
/// Only [`Error::Io`]: bad records are the report's content.
///
/// # Examples
///
/// ```
/// use speclight::tune::validate;
/// let trace = br#"{"seq":0,"pos":0,"depth":1,"draft_top":[[3,-0.2]],"target":4}
/// not json
/// {"seq":0,"pos":0,"depth":3,"draft_top":[[3,-0.2]],"target":4}
/// "#;
/// let report = validate(&trace[..], 10)?;
/// assert_eq!(report.bad_lines, 2);
/// assert_eq!(report.errors.iter().map(|e| e.0).collect::<Vec<_>>(), vec![2, 3]);
/// # Ok::<(), speclight::Error>(())
/// ```
pub fn validate<R: BufRead>(input: R, max_errors: usize) -> Result<ValidationReport> {
    let mut reader = TraceReader::new(input);
    let mut report = ValidationReport::default();
    let bad = |report: &mut ValidationReport, line: usize, reason: String| {
        report.bad_lines += 1;
        if report.errors.len() < max_errors {
            report.errors.push((line, reason));
        }
    };
    loop {
        match reader.next_record() {
            Ok(None) => break,
            Ok(Some((line, r))) => {
                report.lines += 1;
                match reader.order.admit(&r) {
                    Ok(starts) => {
                        report.good_records += 1;
                        report.groups += u64::from(starts);
                        report.max_depth = report.max_depth.max(r.depth);
                        report.max_top_k = report.max_top_k.max(r.draft_top.len());
                        report.missing_target_logprob += u64::from(r.target_logprob.is_none());
                    }
                    Err(reason) => bad(&mut report, line, reason),
                }
            }
            Err(Error::TraceLine { line, reason }) => {
                report.lines += 1;
                bad(&mut report, line, reason);
            }
            Err(e) => return Err(e),
        }
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(seq: u64, pos: u64, depth: u32, target: u32) -> String {
        format!(
            r#"{{"seq":{seq},"pos":{pos},"depth":{depth},"draft_top":[[1,-0.5],[2,-1.5]],"target":{target}}}"#
        )
    }

    #[test]
    fn groups_and_ranks() {
        let text = [
            line(0, 0, 1, 1),
            line(0, 0, 2, 2),
            line(0, 0, 3, 9),
            String::new(),
            line(0, 1, 1, 2),
            line(3, 0, 1, 1),
        ]
        .join("\n");
        let mut r = TraceReader::new(text.as_bytes());
        let mut g = Group::default();
        let mut seen = Vec::new();
        while r.next_group(&mut g).unwrap() {
            seen.push((g.seq(), g.pos(), g.first_line(), g.ranks().to_vec()));
        }
        assert_eq!(
            seen,
            vec![
                (0, 0, 1, vec![Some(0), Some(1), None]),
                (0, 1, 5, vec![Some(1)]),
                (3, 0, 6, vec![Some(0)]),
            ]
        );
        assert_eq!(r.bytes_read(), text.len() as u64);
    }

    #[test]
    fn ordering_errors_name_the_line() {
        let cases = [
            (vec![line(0, 0, 2, 1)], 1, "not 1"),
            (
                vec![line(0, 0, 1, 1), line(0, 0, 3, 1)],
                2,
                "depth 3 follows depth 1",
            ),
            (vec![line(0, 5, 1, 1), line(0, 4, 1, 1)], 2, "sorted"),
            (vec![line(1, 0, 1, 1), line(0, 9, 1, 1)], 2, "sorted"),
            (
                vec![line(0, 0, 1, 1), line(0, 1, 1, 1), line(0, 0, 1, 1)],
                3,
                "sorted",
            ),
        ];
        for (lines, want_line, want) in cases {
            let text = lines.join("\n");
            let mut r = TraceReader::new(text.as_bytes());
            let mut g = Group::default();
            let err = loop {
                match r.next_group(&mut g) {
                    Ok(true) => continue,
                    Ok(false) => panic!("no error for {lines:?}"),
                    Err(e) => break e,
                }
            };
            match err {
                Error::TraceLine { line, reason } => {
                    assert_eq!(line, want_line, "{reason}");
                    assert!(reason.contains(want), "{reason}");
                }
                e => panic!("unexpected {e}"),
            }
        }
    }

    #[test]
    fn long_lines_are_bounded_reported_and_end_the_reading() {
        let long = format!(
            r#"{{"seq":0,"pos":1,"depth":1,"draft_top":[{}[1,-0.5]],"target":1}}"#,
            "[1,-0.5],".repeat(500)
        );
        let text = [line(0, 0, 1, 1), long, line(0, 2, 1, 1)].join("\n");
        let mut r = TraceReader::new(text.as_bytes()).with_max_line_bytes(200);
        assert!(r.next_record().unwrap().is_some());
        let err = r.next_record().unwrap_err();
        assert_eq!(
            err,
            Error::TraceLine {
                line: 2,
                reason: "line is longer than 200 bytes (reading stops here)".into()
            }
        );
        // Issue 12 item 6: the reader stops at the bad line instead of
        // skipping to a newline that may never come.
        assert_eq!(r.next_record().unwrap(), None);
        assert!(
            r.buf.capacity() <= 1024,
            "buffer grew to {}",
            r.buf.capacity()
        );
    }

    #[test]
    fn a_line_exactly_at_the_cap_is_read_one_byte_over_is_not() {
        for with_newline in [true, false] {
            let record = line(0, 0, 1, 1);
            let text = if with_newline {
                format!("{record}\n")
            } else {
                record.clone()
            };
            let mut r = TraceReader::new(text.as_bytes()).with_max_line_bytes(record.len());
            assert!(r.next_record().unwrap().is_some());
            let mut r = TraceReader::new(text.as_bytes()).with_max_line_bytes(record.len() - 1);
            assert!(r.next_record().is_err());
        }
    }

    #[test]
    fn an_endless_line_stops_after_the_cap_plus_one_buffer() {
        // 64 MiB of zero bytes and no newline, as from /dev/zero: the old
        // reader consumed all of it looking for the end of the line.
        let input = std::io::BufReader::new(std::io::Read::take(std::io::repeat(0), 64 << 20));
        let mut r = TraceReader::new(input);
        let err = r.next_record().unwrap_err();
        assert!(matches!(err, Error::TraceLine { line: 1, .. }), "{err}");
        assert!(
            r.bytes_read() <= (DEFAULT_MAX_LINE_BYTES + 8192) as u64,
            "read {} bytes",
            r.bytes_read()
        );
        assert_eq!(r.next_record().unwrap(), None);
        let mut g = Group::default();
        let input = std::io::BufReader::new(std::io::Read::take(std::io::repeat(0), 64 << 20));
        assert!(TraceReader::new(input).next_group(&mut g).is_err());
        let input = std::io::BufReader::new(std::io::Read::take(std::io::repeat(0), 64 << 20));
        let report = validate(input, 10).unwrap();
        assert_eq!((report.lines, report.bad_lines), (1, 1));
    }

    #[test]
    fn validate_collects_every_bad_line_with_a_cap() {
        let mut lines = Vec::new();
        let mut bad_lines = Vec::new();
        for pos in 0..50u64 {
            if pos % 7 == 3 {
                lines.push(format!(
                    r#"{{"seq":0,"pos":{pos},"depth":1,"draft_top":[[1,NaN]],"target":1}}"#
                ));
                bad_lines.push(lines.len());
            } else {
                lines.push(line(0, pos, 1, 1));
            }
        }
        let text = lines.join("\n");
        let report = validate(text.as_bytes(), 3).unwrap();
        assert_eq!(report.bad_lines, bad_lines.len() as u64);
        assert_eq!(
            report.errors.iter().map(|e| e.0).collect::<Vec<_>>(),
            bad_lines[..3].to_vec()
        );
        assert_eq!(report.good_records, 50 - bad_lines.len() as u64);
        assert_eq!(report.groups, report.good_records);
        assert!(!report.is_valid());
        assert_eq!(report.missing_target_logprob, report.good_records);
    }
}
