//! The token-sprawl summary of an audit file: per fingerprint and rule, how
//! often it was seen, in which streams, first and last, and with what
//! confidence. One streaming pass over lines of bounded length; memory grows
//! with the number of distinct fingerprints (about a hundred bytes each), not
//! with the file or its longest line.

use std::cmp::Ordering;
use std::collections::HashMap;
use std::io::{self, BufRead, Write};

use serde::{Deserialize, Serialize};

use crate::scrub::scrub;

/// The longest line read as a record, newline excluded. logredact's own
/// records are a few hundred bytes (a stream id is at most a path); a longer
/// line is an error rather than a buffer as long as the line.
pub const MAX_RECORD_BYTES: usize = 64 * 1024;

/// The fields of an audit record the summary needs.
#[derive(Deserialize)]
struct SummaryInput<'a> {
    #[serde(borrow)]
    ts: &'a str,
    #[serde(borrow)]
    stream: std::borrow::Cow<'a, str>,
    #[serde(borrow)]
    rule: std::borrow::Cow<'a, str>,
    #[serde(borrow)]
    confidence: &'a str,
    masked: bool,
    #[serde(borrow)]
    fingerprint: &'a str,
}

/// Counts by confidence.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ConfidenceCounts {
    /// Low-confidence detections.
    pub low: u64,
    /// Medium-confidence detections.
    pub medium: u64,
    /// High-confidence detections.
    pub high: u64,
}

/// One fingerprint seen under one rule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SummaryRow {
    /// The fingerprint.
    pub fingerprint: String,
    /// The rule.
    pub rule: String,
    /// Detections.
    pub count: u64,
    /// Detections let through by an allow-list.
    pub unmasked: u64,
    /// Distinct streams it was seen in, sorted.
    pub streams: Vec<String>,
    /// Earliest `ts`.
    pub first_seen: String,
    /// Latest `ts`.
    pub last_seen: String,
    /// Detections by confidence.
    pub confidence: ConfidenceCounts,
}

/// An audit file could not be summarised.
#[derive(Debug, thiserror::Error)]
pub enum SummaryError {
    /// Reading failed.
    #[error("{origin}: {source}")]
    Read {
        /// The file.
        origin: String,
        /// The error.
        source: io::Error,
    },
    /// A line is not an audit record.
    #[error("{origin}:{line}: not an audit record: {message}")]
    Record {
        /// The file.
        origin: String,
        /// 1-based line.
        line: u64,
        /// What is wrong.
        message: String,
    },
    /// A line is longer than any audit record ([`MAX_RECORD_BYTES`]).
    #[error("{origin}:{line}: not an audit record: longer than {limit} bytes")]
    TooLong {
        /// The file.
        origin: String,
        /// 1-based line.
        line: u64,
        /// The limit, [`MAX_RECORD_BYTES`].
        limit: usize,
    },
}

/// Distinct strings (rule ids, stream ids, and the rare fingerprint or
/// timestamp not in the form logredact writes), each kept once and named by
/// its number, as they are printed: masked like every message, since an
/// audit file logredact did not write may hold a token anywhere.
///
/// Invariant: `names[index[name]] == scrub(name)` for every `name` in
/// `index`.
#[derive(Default)]
struct Names {
    names: Vec<Box<str>>,
    index: HashMap<Box<str>, u32>,
}

impl Names {
    /// The number of `name`, added if new.
    fn intern(&mut self, name: &str) -> u32 {
        if let Some(&id) = self.index.get(name) {
            return id;
        }
        // More than 4 billion distinct names cannot come from one audit file
        // that fits in memory; saturating keeps this total.
        let id = u32::try_from(self.names.len()).unwrap_or(u32::MAX);
        self.names.push(scrub(name).into());
        self.index.insert(name.into(), id);
        id
    }

    fn get(&self, id: u32) -> &str {
        self.names.get(id as usize).map_or("", |n| n)
    }
}

/// A fingerprint: the 16 lower-case hex digits logredact writes, packed into
/// 8 bytes, or any other text (kept in [`Names`]). Packed values order as
/// their text does.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Fingerprint {
    Hex(u64),
    Other(u32),
}

/// Parses 16 lower-case hex digits.
fn packed_hex(text: &str) -> Option<u64> {
    let bytes = text.as_bytes();
    if bytes.len() != 16 {
        return None;
    }
    bytes.iter().try_fold(0u64, |value, &b| {
        let digit = match b {
            b'0'..=b'9' => b - b'0',
            b'a'..=b'f' => b - b'a' + 10,
            _ => return None,
        };
        Some(value << 4 | u64::from(digit))
    })
}

fn hex_text(value: u64) -> String {
    format!("{value:016x}")
}

/// A timestamp. The form logredact writes, `YYYY-MM-DDTHH:MM:SS.mmmZ`, is
/// packed as the number its 17 digits spell (below 2^57, ordered as the
/// text); any other text is `OTHER | its number in Names`.
#[derive(Clone, Copy, PartialEq, Eq)]
struct Stamp(u64);

impl Stamp {
    const OTHER: u64 = 1 << 63;
    /// The usual form: a `0` stands for any digit.
    const TEMPLATE: &'static [u8; 24] = b"0000-00-00T00:00:00.000Z";

    fn packed(text: &str) -> Option<Stamp> {
        let bytes = text.as_bytes();
        if bytes.len() != 24 {
            return None;
        }
        let mut value = 0u64;
        for (&b, &t) in bytes.iter().zip(Self::TEMPLATE) {
            if t == b'0' {
                if !b.is_ascii_digit() {
                    return None;
                }
                value = value * 10 + u64::from(b - b'0');
            } else if b != t {
                return None;
            }
        }
        Some(Stamp(value))
    }

    fn text(self, names: &Names) -> String {
        if self.0 & Self::OTHER != 0 {
            return names.get((self.0 & !Self::OTHER) as u32).to_string();
        }
        let mut out = *Self::TEMPLATE;
        let mut value = self.0;
        for digit in out.iter_mut().rev().filter(|b| **b == b'0') {
            *digit = b'0' + (value % 10) as u8;
            value /= 10;
        }
        String::from_utf8_lossy(&out).into_owned()
    }

    /// Orders as the texts do.
    fn cmp(self, other: Stamp, names: &Names) -> Ordering {
        if (self.0 | other.0) & Self::OTHER == 0 {
            self.0.cmp(&other.0)
        } else {
            self.text(names).cmp(&other.text(names))
        }
    }
}

/// One fingerprint under one rule, so far.
///
/// Invariants: `low + medium <= count` (the rest is high confidence);
/// `stream` is the first stream seen, and `more_streams`, when not 0, is one
/// past the index in `Summary::stream_sets` of the others, sorted and
/// without `stream`; `next` is one past the index of the next row with the
/// same fingerprint (another rule), or 0.
struct Row {
    fingerprint: Fingerprint,
    count: u64,
    unmasked: u64,
    low: u64,
    medium: u64,
    first_seen: Stamp,
    last_seen: Stamp,
    rule: u32,
    stream: u32,
    more_streams: u32,
    next: u32,
}

/// The summary, built one record at a time.
pub struct Summary {
    rows: Vec<Row>,
    /// Packed fingerprint → its first row.
    by_hex: HashMap<u64, u32>,
    /// Any other fingerprint's number in `names` → its first row.
    by_other: HashMap<u32, u32>,
    /// Rule ids, stream ids, and fingerprints and timestamps not in the
    /// usual form. Number 0 is the empty string.
    names: Names,
    stream_sets: Vec<Vec<u32>>,
    /// Records read.
    pub records: u64,
    /// A final line without a newline that did not parse (being written).
    pub skipped_partial_line: bool,
}

impl Default for Summary {
    fn default() -> Summary {
        let mut names = Names::default();
        names.intern("");
        Summary {
            rows: Vec::new(),
            by_hex: HashMap::new(),
            by_other: HashMap::new(),
            names,
            stream_sets: Vec::new(),
            records: 0,
            skipped_partial_line: false,
        }
    }
}

/// What [`read_line`] found.
enum Line {
    /// A line (with its newline, if it has one) is in the buffer.
    Read,
    /// The line is longer than the limit; the buffer holds its start.
    TooLong,
    /// The input has ended.
    End,
}

/// Reads one line into `line` (cleared first), reading no further once it
/// holds more than `limit` bytes before a newline.
fn read_line<R: BufRead>(input: &mut R, line: &mut Vec<u8>, limit: usize) -> io::Result<Line> {
    line.clear();
    loop {
        let available = match input.fill_buf() {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if available.is_empty() {
            return Ok(if line.is_empty() {
                Line::End
            } else {
                Line::Read
            });
        }
        let (take, ended) = match memchr::memchr(b'\n', available) {
            Some(at) => (at + 1, true),
            None => (available.len(), false),
        };
        let content = line.len() + take - usize::from(ended);
        if content > limit {
            return Ok(Line::TooLong);
        }
        line.extend_from_slice(&available[..take]);
        input.consume(take);
        if ended {
            return Ok(Line::Read);
        }
    }
}

impl Summary {
    /// Reads every record of `input` (JSON Lines). A final line without a
    /// newline that does not parse is skipped, because a writer may be in the
    /// middle of it; any other line that does not parse, and any line longer
    /// than [`MAX_RECORD_BYTES`], is an error.
    pub fn read<R: BufRead>(input: R, origin: &str) -> Result<Summary, SummaryError> {
        Summary::read_with_limit(input, origin, MAX_RECORD_BYTES)
    }

    fn read_with_limit<R: BufRead>(
        mut input: R,
        origin: &str,
        limit: usize,
    ) -> Result<Summary, SummaryError> {
        let mut summary = Summary::default();
        let mut line = Vec::new();
        let mut number = 0u64;
        loop {
            let read =
                read_line(&mut input, &mut line, limit).map_err(|source| SummaryError::Read {
                    origin: origin.to_string(),
                    source,
                })?;
            number += 1;
            match read {
                Line::End => return Ok(summary),
                Line::TooLong => {
                    return Err(SummaryError::TooLong {
                        origin: origin.to_string(),
                        line: number,
                        limit,
                    });
                }
                Line::Read => {}
            }
            let complete = line.last() == Some(&b'\n');
            let text = line.trim_ascii();
            if text.is_empty() {
                continue;
            }
            match serde_json::from_slice::<SummaryInput<'_>>(text) {
                Ok(record) => summary.add(&record),
                Err(_) if !complete => summary.skipped_partial_line = true,
                Err(e) => {
                    return Err(SummaryError::Record {
                        origin: origin.to_string(),
                        line: number,
                        message: describe(&e),
                    });
                }
            }
        }
    }

    /// The stamp of `text`, packed if it has the usual form.
    fn stamp(&mut self, text: &str) -> Stamp {
        Stamp::packed(text)
            .unwrap_or_else(|| Stamp(Stamp::OTHER | u64::from(self.names.intern(text))))
    }

    /// The row of `fingerprint` under `rule`, made if new.
    fn row(&mut self, fingerprint: &str, rule: &str) -> usize {
        let rule = self.names.intern(rule);
        let (fingerprint, first) = match packed_hex(fingerprint) {
            Some(hex) => (Fingerprint::Hex(hex), self.by_hex.get(&hex).copied()),
            None => {
                let id = self.names.intern(fingerprint);
                (Fingerprint::Other(id), self.by_other.get(&id).copied())
            }
        };
        // Walk the rows of this fingerprint (one per rule) to this rule's.
        let mut last = None;
        let mut at = first;
        while let Some(i) = at {
            let row = &self.rows[i as usize];
            if row.rule == rule {
                return i as usize;
            }
            last = Some(i);
            at = row.next.checked_sub(1);
        }
        let index = self.rows.len();
        let id = u32::try_from(index).unwrap_or(u32::MAX);
        self.rows.push(Row {
            fingerprint,
            count: 0,
            unmasked: 0,
            low: 0,
            medium: 0,
            first_seen: Stamp(Stamp::OTHER),
            last_seen: Stamp(Stamp::OTHER),
            rule,
            stream: u32::MAX,
            more_streams: 0,
            next: 0,
        });
        match (last, fingerprint) {
            (Some(previous), _) => self.rows[previous as usize].next = id.saturating_add(1),
            (None, Fingerprint::Hex(hex)) => {
                self.by_hex.insert(hex, id);
            }
            (None, Fingerprint::Other(other)) => {
                self.by_other.insert(other, id);
            }
        }
        index
    }

    fn add(&mut self, record: &SummaryInput<'_>) {
        self.records += 1;
        let index = self.row(record.fingerprint, &record.rule);
        let stream = self.names.intern(&record.stream);
        let ts = self.stamp(record.ts);
        let empty = Stamp(Stamp::OTHER);
        let names = &self.names;
        let row = &mut self.rows[index];
        row.count += 1;
        if !record.masked {
            row.unmasked += 1;
        }
        if row.stream == u32::MAX {
            row.stream = stream;
        } else if row.stream != stream {
            if row.more_streams == 0 {
                self.stream_sets.push(Vec::new());
                row.more_streams = u32::try_from(self.stream_sets.len()).unwrap_or(u32::MAX);
            }
            if let Some(set) = self.stream_sets.get_mut(row.more_streams as usize - 1) {
                if let Err(at) = set.binary_search(&stream) {
                    set.insert(at, stream);
                }
            }
        }
        // As the texts compare; an empty first-seen is taken as unset.
        if row.first_seen == empty || ts.cmp(row.first_seen, names) == Ordering::Less {
            row.first_seen = ts;
        }
        if ts.cmp(row.last_seen, names) == Ordering::Greater {
            row.last_seen = ts;
        }
        match record.confidence {
            "low" => row.low += 1,
            "medium" => row.medium += 1,
            _ => {}
        }
    }

    fn fingerprint_text(&self, fingerprint: Fingerprint) -> String {
        match fingerprint {
            Fingerprint::Hex(hex) => hex_text(hex),
            Fingerprint::Other(id) => self.names.get(id).to_string(),
        }
    }

    fn compare_fingerprints(&self, a: Fingerprint, b: Fingerprint) -> Ordering {
        match (a, b) {
            (Fingerprint::Hex(a), Fingerprint::Hex(b)) => a.cmp(&b),
            _ => self.fingerprint_text(a).cmp(&self.fingerprint_text(b)),
        }
    }

    /// The rows' indices, most frequent first, then by fingerprint and rule.
    fn order(&self) -> Vec<u32> {
        let mut order: Vec<u32> = (0..self.rows.len())
            .map(|i| u32::try_from(i).unwrap_or(u32::MAX))
            .collect();
        order.sort_unstable_by(|&a, &b| {
            let (a, b) = (&self.rows[a as usize], &self.rows[b as usize]);
            b.count
                .cmp(&a.count)
                .then_with(|| self.compare_fingerprints(a.fingerprint, b.fingerprint))
                .then_with(|| self.names.get(a.rule).cmp(self.names.get(b.rule)))
        });
        order
    }

    /// Row `index` as it is printed.
    fn row_at(&self, index: u32) -> SummaryRow {
        let row = &self.rows[index as usize];
        let mut streams = vec![self.names.get(row.stream).to_string()];
        let more = (row.more_streams as usize).checked_sub(1);
        if let Some(more) = more.and_then(|i| self.stream_sets.get(i)) {
            streams.extend(more.iter().map(|&s| self.names.get(s).to_string()));
        }
        streams.sort_unstable();
        SummaryRow {
            fingerprint: self.fingerprint_text(row.fingerprint),
            rule: self.names.get(row.rule).to_string(),
            count: row.count,
            unmasked: row.unmasked,
            streams,
            first_seen: row.first_seen.text(&self.names),
            last_seen: row.last_seen.text(&self.names),
            confidence: ConfidenceCounts {
                low: row.low,
                medium: row.medium,
                high: row.count - row.low - row.medium,
            },
        }
    }

    /// The rows, most frequent first, one at a time.
    fn sorted_rows(&self) -> impl Iterator<Item = SummaryRow> + '_ {
        self.order().into_iter().map(|i| self.row_at(i))
    }

    /// The rows, most frequent first.
    pub fn rows(&self) -> Vec<SummaryRow> {
        self.sorted_rows().collect()
    }

    /// Writes the rows as an aligned text table. Rows are made one at a
    /// time, twice (once to measure the columns), so that the table never
    /// holds all of them in memory.
    pub fn write_table<W: Write>(&self, out: &mut W) -> io::Result<()> {
        let header = [
            "FINGERPRINT",
            "RULE",
            "COUNT",
            "STREAMS",
            "FIRST SEEN",
            "LAST SEEN",
            "LOW",
            "MEDIUM",
            "HIGH",
            "UNMASKED",
            "STREAM IDS",
        ];
        let cells = |r: SummaryRow| -> [String; 11] {
            [
                r.fingerprint,
                r.rule,
                r.count.to_string(),
                r.streams.len().to_string(),
                r.first_seen,
                r.last_seen,
                r.confidence.low.to_string(),
                r.confidence.medium.to_string(),
                r.confidence.high.to_string(),
                r.unmasked.to_string(),
                r.streams.join(","),
            ]
        };
        let order = self.order();
        let mut widths = header.map(str::len);
        for &i in &order {
            for (width, cell) in widths.iter_mut().zip(cells(self.row_at(i))) {
                *width = (*width).max(cell.len());
            }
        }
        let numeric = |column: usize| matches!(column, 2 | 3 | 6 | 7 | 8 | 9);
        let mut line = String::new();
        let mut write_row = |cells: &[&str]| -> io::Result<()> {
            line.clear();
            for (column, cell) in cells.iter().enumerate() {
                let last = column + 1 == cells.len();
                if column > 0 {
                    line.push_str("  ");
                }
                let width = widths[column];
                if numeric(column) {
                    line.push_str(&format!("{cell:>width$}"));
                } else if last {
                    line.push_str(cell);
                } else {
                    line.push_str(&format!("{cell:<width$}"));
                }
            }
            writeln!(out, "{line}")
        };
        write_row(&header)?;
        for &i in &order {
            let row = cells(self.row_at(i));
            let cells: Vec<&str> = row.iter().map(String::as_str).collect();
            write_row(&cells)?;
        }
        Ok(())
    }

    /// Writes the rows as one JSON array, a row at a time.
    pub fn write_json<W: Write>(&self, out: &mut W) -> io::Result<()> {
        out.write_all(b"[")?;
        for (n, row) in self.sorted_rows().enumerate() {
            if n > 0 {
                out.write_all(b",")?;
            }
            serde_json::to_writer(&mut *out, &row).map_err(io::Error::other)?;
        }
        out.write_all(b"]")?;
        writeln!(out)
    }
}

/// A parse error without any of the line's content (which might be anything,
/// if the wrong file was given).
fn describe(error: &serde_json::Error) -> String {
    use serde_json::error::Category;
    let what = match error.classify() {
        Category::Syntax | Category::Eof => "invalid JSON",
        Category::Data => {
            "missing or mistyped fields (need ts, stream, rule, confidence, masked, fingerprint)"
        }
        Category::Io => "unreadable",
    };
    format!("{what} at column {}", error.column())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(ts: &str, stream: &str, fingerprint: &str, confidence: &str, masked: bool) -> String {
        format!(
            "{{\"ts\":\"{ts}\",\"stream\":\"{stream}\",\"rule\":\"databricks-pat\",\"offset\":1,\"line\":1,\"confidence\":\"{confidence}\",\"keywords\":[],\"exclusions\":[],\"placeholder\":false,\"masked\":{masked},\"fingerprint\":\"{fingerprint}\"}}\n"
        )
    }

    #[test]
    fn aggregates_per_fingerprint() {
        let text = [
            record(
                "2026-11-22T14:00:02.000Z",
                "stdin",
                "aaaaaaaaaaaaaaaa",
                "high",
                true,
            ),
            record(
                "2026-11-22T14:00:01.000Z",
                "tcp:1.2.3.4:5",
                "aaaaaaaaaaaaaaaa",
                "low",
                true,
            ),
            record(
                "2026-11-22T14:00:03.000Z",
                "stdin",
                "aaaaaaaaaaaaaaaa",
                "high",
                false,
            ),
            record(
                "2026-11-22T14:00:04.000Z",
                "stdin",
                "bbbbbbbbbbbbbbbb",
                "medium",
                true,
            ),
        ]
        .concat();
        let summary = Summary::read(text.as_bytes(), "audit.jsonl").unwrap();
        assert_eq!(summary.records, 4);
        let rows = summary.rows();
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].fingerprint, "aaaaaaaaaaaaaaaa");
        assert_eq!(rows[0].count, 3);
        assert_eq!(rows[0].unmasked, 1);
        assert_eq!(rows[0].streams, ["stdin", "tcp:1.2.3.4:5"]);
        assert_eq!(rows[0].first_seen, "2026-11-22T14:00:01.000Z");
        assert_eq!(rows[0].last_seen, "2026-11-22T14:00:03.000Z");
        assert_eq!(
            rows[0].confidence,
            ConfidenceCounts {
                low: 1,
                medium: 0,
                high: 2
            }
        );
        let mut table = Vec::new();
        summary.write_table(&mut table).unwrap();
        let table = String::from_utf8(table).unwrap();
        let lines: Vec<&str> = table.lines().collect();
        assert_eq!(lines.len(), 3);
        assert!(
            lines[0].starts_with("FINGERPRINT       RULE            COUNT"),
            "{table}"
        );
        assert!(
            lines[1].starts_with("aaaaaaaaaaaaaaaa  databricks-pat      3        2"),
            "{table}"
        );
        assert!(lines[1].ends_with("stdin,tcp:1.2.3.4:5"), "{table}");
    }

    #[test]
    fn bad_lines_are_errors_but_a_partial_last_line_is_skipped() {
        let good = record(
            "2026-11-22T14:00:02.000Z",
            "stdin",
            "aaaaaaaaaaaaaaaa",
            "high",
            true,
        );
        let text = format!("{good}{{\"ts\":\"x\"}}\n{good}");
        let e = Summary::read(text.as_bytes(), "a.jsonl").err().unwrap();
        assert_eq!(
            e.to_string(),
            "a.jsonl:2: not an audit record: missing or mistyped fields (need ts, stream, rule, confidence, masked, fingerprint) at column 10"
        );
        let text = format!("{good}{}", &good[..40]);
        let summary = Summary::read(text.as_bytes(), "a.jsonl").unwrap();
        assert_eq!(summary.records, 1);
        assert!(summary.skipped_partial_line);
    }

    #[test]
    fn a_line_longer_than_a_record_is_an_error_naming_it() {
        let good = record(
            "2026-11-22T14:00:02.000Z",
            "stdin",
            "aaaaaaaaaaaaaaaa",
            "high",
            true,
        );
        // The limit counts the bytes before the newline.
        let limit = good.len() - 1;
        let text = format!("{good}{good}");
        let summary = Summary::read_with_limit(text.as_bytes(), "a.jsonl", limit).unwrap();
        assert_eq!(summary.records, 2);
        let long = good.replace("stdin", "stdin2");
        for tail in ["\n", ""] {
            let text = format!("{good}\n{}{tail}{good}", long.trim_end());
            let e = Summary::read_with_limit(text.as_bytes(), "a.jsonl", limit)
                .err()
                .unwrap();
            assert_eq!(
                e.to_string(),
                format!("a.jsonl:3: not an audit record: longer than {limit} bytes")
            );
        }
        let e = Summary::read(vec![b' '; MAX_RECORD_BYTES + 1].as_slice(), "b.jsonl")
            .err()
            .unwrap();
        assert_eq!(
            e.to_string(),
            "b.jsonl:1: not an audit record: longer than 65536 bytes"
        );
    }

    #[test]
    fn a_token_in_a_name_is_masked() {
        // Built at run time, so that no token-shaped literal is committed.
        let token = format!("dapi{}", "0123456789abcdef".repeat(2).replace('0', "7"));
        let text = record(
            "2026-11-22T14:00:02.000Z",
            &format!("file:/\\u0009{token}"),
            &format!("x{token}"),
            "high",
            true,
        );
        let rows = Summary::read(text.as_bytes(), "a.jsonl").unwrap().rows();
        assert_eq!(rows[0].streams, ["file:/\tdapi****"]);
        assert_eq!(rows[0].fingerprint, "xdapi****");
    }

    #[test]
    fn timestamps_pack_and_unpack_exactly() {
        let names = Names::default();
        for text in [
            "2026-11-22T14:03:07.123Z",
            "0000-00-00T00:00:00.000Z",
            "9999-99-99T99:99:99.999Z",
        ] {
            let stamp = Stamp::packed(text).unwrap();
            assert_eq!(stamp.text(&names), text);
        }
        for text in [
            "2026-11-22T14:03:07.123",
            "2026-11-22 14:03:07.123Z",
            "2026-11-22T14:03:07.12aZ",
            "",
        ] {
            assert!(Stamp::packed(text).is_none(), "{text}");
        }
        let (a, b) = ("2026-11-22T14:03:07.123Z", "2026-11-22T14:03:08.001Z");
        let (pa, pb) = (Stamp::packed(a).unwrap(), Stamp::packed(b).unwrap());
        assert_eq!(pa.cmp(pb, &names), a.cmp(b));
        assert_eq!(
            packed_hex("00ff00ff00ff00ff").map(hex_text).as_deref(),
            Some("00ff00ff00ff00ff")
        );
        assert!(packed_hex("00FF00FF00FF00FF").is_none());
    }

    /// The summary as it was computed before per-fingerprint state was made
    /// compact: strings, sets and the table written from all rows at once.
    /// The oracle for "the output is unchanged".
    mod reference {
        use super::super::*;
        use std::collections::{BTreeSet, HashMap};

        #[derive(Default)]
        struct Acc {
            count: u64,
            unmasked: u64,
            streams: BTreeSet<String>,
            first_seen: String,
            last_seen: String,
            confidence: ConfidenceCounts,
        }

        pub fn rows(text: &str) -> Vec<SummaryRow> {
            let mut all: HashMap<(String, String), Acc> = HashMap::new();
            for line in text.lines().filter(|l| !l.trim().is_empty()) {
                let r: SummaryInput<'_> = serde_json::from_str(line.trim()).unwrap();
                let row = all
                    .entry((r.fingerprint.to_string(), r.rule.to_string()))
                    .or_default();
                row.count += 1;
                row.unmasked += u64::from(!r.masked);
                row.streams.insert(r.stream.to_string());
                if row.first_seen.is_empty() || r.ts < row.first_seen.as_str() {
                    row.first_seen = r.ts.to_string();
                }
                if r.ts > row.last_seen.as_str() {
                    row.last_seen = r.ts.to_string();
                }
                match r.confidence {
                    "low" => row.confidence.low += 1,
                    "medium" => row.confidence.medium += 1,
                    _ => row.confidence.high += 1,
                }
            }
            let mut rows: Vec<SummaryRow> = all
                .into_iter()
                .map(|((fingerprint, rule), acc)| SummaryRow {
                    fingerprint,
                    rule,
                    count: acc.count,
                    unmasked: acc.unmasked,
                    streams: acc.streams.into_iter().collect(),
                    first_seen: acc.first_seen,
                    last_seen: acc.last_seen,
                    confidence: acc.confidence,
                })
                .collect();
            rows.sort_by(|a, b| {
                b.count
                    .cmp(&a.count)
                    .then_with(|| a.fingerprint.cmp(&b.fingerprint))
                    .then_with(|| a.rule.cmp(&b.rule))
            });
            rows
        }

        pub fn table(rows: &[SummaryRow]) -> String {
            let header = [
                "FINGERPRINT",
                "RULE",
                "COUNT",
                "STREAMS",
                "FIRST SEEN",
                "LAST SEEN",
                "LOW",
                "MEDIUM",
                "HIGH",
                "UNMASKED",
                "STREAM IDS",
            ];
            let rows: Vec<[String; 11]> = rows
                .iter()
                .cloned()
                .map(|r| {
                    [
                        r.fingerprint,
                        r.rule,
                        r.count.to_string(),
                        r.streams.len().to_string(),
                        r.first_seen,
                        r.last_seen,
                        r.confidence.low.to_string(),
                        r.confidence.medium.to_string(),
                        r.confidence.high.to_string(),
                        r.unmasked.to_string(),
                        r.streams.join(","),
                    ]
                })
                .collect();
            let mut widths = header.map(str::len);
            for row in &rows {
                for (width, cell) in widths.iter_mut().zip(row) {
                    *width = (*width).max(cell.len());
                }
            }
            let numeric = |column: usize| matches!(column, 2 | 3 | 6 | 7 | 8 | 9);
            let mut out = String::new();
            let mut write_row = |cells: &[&str]| {
                for (column, cell) in cells.iter().enumerate() {
                    if column > 0 {
                        out.push_str("  ");
                    }
                    if numeric(column) {
                        out.push_str(&format!("{cell:>width$}", width = widths[column]));
                    } else if column + 1 == cells.len() {
                        out.push_str(cell);
                    } else {
                        out.push_str(&format!("{cell:<width$}", width = widths[column]));
                    }
                }
                out.push('\n');
            };
            write_row(&header);
            for row in &rows {
                let cells: Vec<&str> = row.iter().map(String::as_str).collect();
                write_row(&cells);
            }
            out
        }
    }

    /// Random records with the odd cases: fingerprints and timestamps not
    /// in logredact's form (upper case, short, empty, another time format),
    /// several rules and streams per fingerprint, unmasked detections. The
    /// table and the JSON are byte for byte what the former summary wrote.
    #[test]
    fn output_is_what_the_former_summary_wrote() {
        let mut state = 0x2545_f491_4f6c_dd1du64;
        let mut next = |n: u64| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state % n
        };
        let fingerprints = [
            "00000000000000ff",
            "0f0f0f0f0f0f0f0f",
            "ffffffffffffffff",
            "a0a0a0a0a0a0a0a0",
            "A0A0A0A0A0A0A0A0",
            "short",
            "",
            "0f0f0f0f0f0f0f0g",
            "0f0f0f0f0f0f0f0f0",
        ];
        let stamps = [
            "2026-11-22T14:00:01.000Z",
            "2026-11-22T14:00:01.001Z",
            "2025-01-01T00:00:00.000Z",
            "2026-11-22T14:00:01Z",
            "2026-11-22T14:00:01.000+00:00",
            "",
            "zzz",
            "2026-11-22T14:00:00.999Z",
        ];
        let streams = [
            "stdin",
            "tcp:1.2.3.4:5",
            "file:/var/log/a b.log",
            "file:/é",
            "a\\\"b",
        ];
        let rules = ["databricks-pat", "other", "a-rule"];
        let confidences = ["low", "medium", "high", "weird"];
        for round in 0..20 {
            let mut text = String::new();
            for _ in 0..(1 + next(300)) {
                text.push_str(&format!(
                    "{{\"ts\":\"{}\",\"stream\":\"{}\",\"rule\":\"{}\",\"confidence\":\"{}\",\"masked\":{},\"fingerprint\":\"{}\"}}\n",
                    stamps[next(stamps.len() as u64) as usize],
                    streams[next(streams.len() as u64) as usize],
                    rules[next(if round % 2 == 0 { 1 } else { 3 }) as usize],
                    confidences[next(4) as usize],
                    next(5) != 0,
                    fingerprints[next(fingerprints.len() as u64) as usize],
                ));
            }
            let expected = reference::rows(&text);
            let summary = Summary::read(text.as_bytes(), "a.jsonl").unwrap();
            assert_eq!(summary.rows(), expected, "{text}");
            let mut table = Vec::new();
            summary.write_table(&mut table).unwrap();
            assert_eq!(
                String::from_utf8(table).unwrap(),
                reference::table(&expected)
            );
            let mut json = Vec::new();
            summary.write_json(&mut json).unwrap();
            let mut expected_json = serde_json::to_vec(&expected).unwrap();
            expected_json.push(b'\n');
            assert_eq!(json, expected_json);
        }
    }
}
