//! The token-sprawl summary of an audit file: per fingerprint and rule, how
//! often it was seen, in which streams, first and last, and with what
//! confidence. One streaming pass; memory grows with the number of distinct
//! fingerprints, not with the file.

use std::collections::{BTreeSet, HashMap};
use std::io::{self, BufRead, Write};

use serde::{Deserialize, Serialize};

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
}

/// The summary, built one record at a time.
#[derive(Default)]
pub struct Summary {
    rows: HashMap<(String, String), Accumulator>,
    /// Records read.
    pub records: u64,
    /// A final line without a newline that did not parse (being written).
    pub skipped_partial_line: bool,
}

#[derive(Default)]
struct Accumulator {
    count: u64,
    unmasked: u64,
    streams: BTreeSet<String>,
    first_seen: String,
    last_seen: String,
    confidence: ConfidenceCounts,
}

impl Summary {
    /// Reads every record of `input` (JSON Lines). A final line without a
    /// newline that does not parse is skipped, because a writer may be in the
    /// middle of it; any other line that does not parse is an error.
    pub fn read<R: BufRead>(mut input: R, origin: &str) -> Result<Summary, SummaryError> {
        let mut summary = Summary::default();
        let mut line = Vec::new();
        let mut number = 0u64;
        loop {
            line.clear();
            let n = input
                .read_until(b'\n', &mut line)
                .map_err(|source| SummaryError::Read {
                    origin: origin.to_string(),
                    source,
                })?;
            if n == 0 {
                return Ok(summary);
            }
            number += 1;
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

    fn add(&mut self, record: &SummaryInput<'_>) {
        self.records += 1;
        let key = (record.fingerprint.to_string(), record.rule.to_string());
        let row = self.rows.entry(key).or_default();
        row.count += 1;
        if !record.masked {
            row.unmasked += 1;
        }
        if !row.streams.contains(record.stream.as_ref()) {
            row.streams.insert(record.stream.to_string());
        }
        // RFC 3339 UTC timestamps of one format sort as text.
        if row.first_seen.is_empty() || record.ts < row.first_seen.as_str() {
            row.first_seen = record.ts.to_string();
        }
        if record.ts > row.last_seen.as_str() {
            row.last_seen = record.ts.to_string();
        }
        match record.confidence {
            "low" => row.confidence.low += 1,
            "medium" => row.confidence.medium += 1,
            _ => row.confidence.high += 1,
        }
    }

    /// The rows, most frequent first.
    pub fn rows(&self) -> Vec<SummaryRow> {
        let mut rows: Vec<SummaryRow> = self
            .rows
            .iter()
            .map(|((fingerprint, rule), acc)| SummaryRow {
                fingerprint: fingerprint.clone(),
                rule: rule.clone(),
                count: acc.count,
                unmasked: acc.unmasked,
                streams: acc.streams.iter().cloned().collect(),
                first_seen: acc.first_seen.clone(),
                last_seen: acc.last_seen.clone(),
                confidence: acc.confidence.clone(),
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

    /// Writes the rows as an aligned text table.
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
        let rows: Vec<[String; 11]> = self
            .rows()
            .into_iter()
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
        let mut write_row = |cells: &[&str]| -> io::Result<()> {
            let mut line = String::new();
            for (column, cell) in cells.iter().enumerate() {
                let last = column + 1 == cells.len();
                if column > 0 {
                    line.push_str("  ");
                }
                if numeric(column) {
                    line.push_str(&format!("{cell:>width$}", width = widths[column]));
                } else if last {
                    line.push_str(cell);
                } else {
                    line.push_str(&format!("{cell:<width$}", width = widths[column]));
                }
            }
            writeln!(out, "{line}")
        };
        write_row(&header)?;
        for row in &rows {
            let cells: Vec<&str> = row.iter().map(String::as_str).collect();
            write_row(&cells)?;
        }
        Ok(())
    }

    /// Writes the rows as one JSON array.
    pub fn write_json<W: Write>(&self, out: &mut W) -> io::Result<()> {
        serde_json::to_writer(&mut *out, &self.rows()).map_err(io::Error::other)?;
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
}
