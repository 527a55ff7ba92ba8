//! Redaction of the strings inside msgpack values: the records of the Fluent
//! forward protocol. Synchronous, over bytes, like the scanner it drives.
//!
//! A value is walked token by token (no tree is built). Every `str` and `bin`
//! payload, map keys included, is a *text* of its own for matching, and the
//! record's texts, in order, are one another's context for keywords and
//! exclusions:
//!
//! - each payload is fed to the stream's [`Scanner`] and ended with
//!   [`Scanner::end_text`], so no match ever spans two payloads, and `\b`
//!   holds at the start and end of each (a JSON string value `"dapi…"` is a
//!   token);
//! - between two payloads a newline is fed *for the context only* (its output
//!   is discarded), so that `bearer` in one string and a token in the next
//!   are two words of one context (when matches are classified; a scanner
//!   that only masks keeps no context, and skips it);
//! - at the end of the record the context ends ([`Scanner::restart`], which
//!   drops nothing since every text was ended): the next record is judged on
//!   its own.
//!
//! Only the bytes of a payload with a mask change, with its header: a masked
//! payload's length changes, so its `str`/`bin` header is written anew for
//! the new length (the shortest form). Every other byte — the structure,
//! numbers, extension values such as the forward protocol's `EventTime`,
//! unmasked strings and their headers — is copied unchanged.
//!
//! Offsets and line numbers of detections count the connection's strings as
//! if each were a line of its own: the stream a classifying scanner sees is
//! every payload followed by a newline.

use std::fmt;
use std::ops::Range;

use rmp::Marker;

use crate::scan::detection::Detection;
use crate::scan::scanner::{DetectionMode, ScanSink, Scanner, Texts};

/// What is wrong with msgpack input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MsgpackError {
    /// The input ends inside a value.
    Truncated,
    /// A byte that is no msgpack marker (`0xc1`), at this offset.
    InvalidMarker(usize),
}

impl fmt::Display for MsgpackError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MsgpackError::Truncated => f.write_str("msgpack value cut short"),
            MsgpackError::InvalidMarker(at) => {
                write!(f, "invalid msgpack marker at byte {at}")
            }
        }
    }
}

impl std::error::Error for MsgpackError {}

/// Whether a payload is a string or binary data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PayloadKind {
    /// `str`.
    Str,
    /// `bin`.
    Bin,
}

/// One token of msgpack: what it is, and where it ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Token {
    /// A number, nil, a boolean or an extension value: nothing inside.
    Scalar,
    /// A string or binary payload: its bytes are `[body, end)`.
    Payload {
        /// String or binary.
        kind: PayloadKind,
        /// Where the payload's bytes start (after the header).
        body: usize,
    },
    /// An array or map: this many values follow as its elements (a map's
    /// keys and values, two per entry).
    Container(u64),
}

/// The token that starts at `at` in `input`, and where it ends (after its
/// header, for a container; after its payload otherwise).
pub fn token(input: &[u8], at: usize) -> Result<(Token, usize), MsgpackError> {
    let marker_byte = *input.get(at).ok_or(MsgpackError::Truncated)?;
    let after = at + 1;
    let read_len = |bytes: usize| -> Result<(usize, usize), MsgpackError> {
        let field = input
            .get(after..after + bytes)
            .ok_or(MsgpackError::Truncated)?;
        let len = field.iter().fold(0usize, |n, &b| (n << 8) | usize::from(b));
        Ok((len, after + bytes))
    };
    let scalar = |bytes: usize| Ok((Token::Scalar, after + bytes));
    let payload =
        |kind, (len, body): (usize, usize)| Ok((Token::Payload { kind, body }, body + len));
    let container = |(n, end): (usize, usize), per_entry: u64| {
        Ok((Token::Container(n as u64 * per_entry), end))
    };
    let ext = |(len, end): (usize, usize)| Ok((Token::Scalar, end + 1 + len));
    let (token, end) = match Marker::from_u8(marker_byte) {
        Marker::FixPos(_) | Marker::FixNeg(_) | Marker::Null | Marker::True | Marker::False => {
            scalar(0)
        }
        Marker::U8 | Marker::I8 => scalar(1),
        Marker::U16 | Marker::I16 => scalar(2),
        Marker::U32 | Marker::I32 | Marker::F32 => scalar(4),
        Marker::U64 | Marker::I64 | Marker::F64 => scalar(8),
        Marker::FixExt1 => scalar(2),
        Marker::FixExt2 => scalar(3),
        Marker::FixExt4 => scalar(5),
        Marker::FixExt8 => scalar(9),
        Marker::FixExt16 => scalar(17),
        Marker::Ext8 => ext(read_len(1)?),
        Marker::Ext16 => ext(read_len(2)?),
        Marker::Ext32 => ext(read_len(4)?),
        Marker::FixStr(n) => payload(PayloadKind::Str, (usize::from(n), after)),
        Marker::Str8 => payload(PayloadKind::Str, read_len(1)?),
        Marker::Str16 => payload(PayloadKind::Str, read_len(2)?),
        Marker::Str32 => payload(PayloadKind::Str, read_len(4)?),
        Marker::Bin8 => payload(PayloadKind::Bin, read_len(1)?),
        Marker::Bin16 => payload(PayloadKind::Bin, read_len(2)?),
        Marker::Bin32 => payload(PayloadKind::Bin, read_len(4)?),
        Marker::FixArray(n) => container((usize::from(n), after), 1),
        Marker::Array16 => container(read_len(2)?, 1),
        Marker::Array32 => container(read_len(4)?, 1),
        Marker::FixMap(n) => container((usize::from(n), after), 2),
        Marker::Map16 => container(read_len(2)?, 2),
        Marker::Map32 => container(read_len(4)?, 2),
        Marker::Reserved => Err(MsgpackError::InvalidMarker(at)),
    }?;
    if end > input.len() {
        return Err(MsgpackError::Truncated);
    }
    Ok((token, end))
}

/// The length of the `values` msgpack values at the start of `input`,
/// calling `payload` with the kind and the byte range of each `str`/`bin`
/// payload, header included (`header..body..end`), in order.
pub fn walk(
    input: &[u8],
    values: u64,
    mut payload: impl FnMut(PayloadKind, usize, usize, usize),
) -> Result<usize, MsgpackError> {
    let (mut at, mut remaining) = (0, values);
    while remaining > 0 {
        remaining -= 1;
        let (token, end) = token(input, at)?;
        match token {
            Token::Scalar => {}
            Token::Payload { kind, body } => payload(kind, at, body, end),
            Token::Container(n) => remaining += n,
        }
        // Every value takes at least a byte: more values than bytes left
        // cannot be there.
        if remaining > (input.len() - end) as u64 {
            return Err(MsgpackError::Truncated);
        }
        at = end;
    }
    Ok(at)
}

/// Where a payload lies in the value being redacted.
#[derive(Debug, Clone, Copy)]
struct Payload {
    kind: PayloadKind,
    header: usize,
    body: usize,
    end: usize,
}

/// The scanner's output for one payload, and the detections it reports.
#[derive(Default)]
struct Collect {
    out: Vec<u8>,
    detections: Vec<Detection>,
}

impl ScanSink for Collect {
    fn write(&mut self, bytes: &[u8]) {
        self.out.extend_from_slice(bytes);
    }

    fn detection(&mut self, detection: Detection) {
        self.detections.push(detection);
    }
}

/// Fed between two payloads, for the context only.
const SEPARATOR: &[u8] = b"\n";

/// Redacts the strings of msgpack records, one record at a time, with the
/// scanner of their stream.
///
/// ```
/// use std::sync::Arc;
/// use logredact::{DetectionMode, FingerprintKey, RuleSet, RuleSpec, Scanner};
/// use logredact::scan::msgpack::RecordRedactor;
///
/// let rule = RuleSpec { mask: "dapi****".into(), ..RuleSpec::new("databricks-pat", r"\bdapi[0-9a-f]{32}\b") };
/// let rules = Arc::new(RuleSet::new(vec![rule], FingerprintKey::derive(b"k"))?);
/// let mut redactor = RecordRedactor::new(Scanner::new(rules, DetectionMode::MaskOnly));
/// // {"log": "dapi0123…"} as msgpack: a one-entry map, two strings.
/// let mut record = vec![0x81, 0xa3];
/// record.extend_from_slice(b"log");
/// record.extend_from_slice(&[0xd9, 36]); // str8 of 36 bytes
/// record.extend_from_slice(b"dapi0123456789abcdef0123456789abcdef");
/// let mut out = Vec::new();
/// assert_eq!(redactor.redact(&record, 1, &mut out)?, record.len());
/// assert_eq!(out, b"\x81\xa3log\xa8dapi****");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct RecordRedactor {
    scanner: Scanner,
    /// The payloads of the value being redacted, in order.
    payloads: Vec<Payload>,
    /// The scanner's output for the payload being redacted, and the
    /// detections not yet taken.
    collect: Collect,
}

impl fmt::Debug for RecordRedactor {
    // What is collected may be the start of a secret: never printed.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RecordRedactor")
            .field("scanner", &self.scanner)
            .finish_non_exhaustive()
    }
}

impl RecordRedactor {
    /// A redactor whose records are a stream read by `scanner`.
    pub fn new(scanner: Scanner) -> RecordRedactor {
        RecordRedactor {
            scanner,
            payloads: Vec::new(),
            collect: Collect::default(),
        }
    }

    /// The scanner, for its counters and its position.
    pub fn scanner(&self) -> &Scanner {
        &self.scanner
    }

    /// Goes on with another scanner (new rules) between two records.
    pub fn replace_scanner(&mut self, scanner: Scanner) {
        self.scanner = scanner;
    }

    /// Copies the record made of the `values` msgpack values at the start of
    /// `input` to `out`, with every string and binary payload redacted (the
    /// record's payloads are one another's context); returns the bytes the
    /// record takes in `input`. On an error nothing is written to `out`.
    pub fn redact(
        &mut self,
        input: &[u8],
        values: u64,
        out: &mut Vec<u8>,
    ) -> Result<usize, MsgpackError> {
        let len = self.walk_record(input, values)?;
        let record = &input[..len];
        self.redact_walked(&mut Texts::new(record), record, 0..len, out);
        Ok(len)
    }

    /// Copies records of one msgpack value each, back to back at the start
    /// of `input` — `count` of them, or all of them to the end of `input` —
    /// to `out`, each redacted as [`RecordRedactor::redact`] does; returns
    /// the bytes they take in `input` and how many there were. The strings
    /// of all of them are searched for the rules' literal prefixes at once.
    /// On an error, the records before the one in error have been written.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use logredact::{DetectionMode, FingerprintKey, RuleSet, RuleSpec, Scanner};
    /// use logredact::scan::msgpack::RecordRedactor;
    ///
    /// let rule = RuleSpec { mask: "dapi****".into(), ..RuleSpec::new("databricks-pat", r"\bdapi[0-9a-f]{32}\b") };
    /// let rules = Arc::new(RuleSet::new(vec![rule], FingerprintKey::derive(b"k"))?);
    /// let mut redactor = RecordRedactor::new(Scanner::new(rules, DetectionMode::MaskOnly));
    /// // ["ok"] then ["dapi0123…"]: two records, one string each.
    /// let mut records = b"\x91\xa2ok\x91\xd9\x24".to_vec();
    /// records.extend_from_slice(b"dapi0123456789abcdef0123456789abcdef");
    /// let mut out = Vec::new();
    /// assert_eq!(redactor.redact_records(&records, None, &mut out)?, (records.len(), 2));
    /// assert_eq!(out, b"\x91\xa2ok\x91\xa8dapi****");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn redact_records(
        &mut self,
        input: &[u8],
        count: Option<u64>,
        out: &mut Vec<u8>,
    ) -> Result<(usize, u64), MsgpackError> {
        let mut texts = Texts::new(input);
        let (mut at, mut records) = (0, 0);
        while count.map_or(at < input.len(), |count| records < count) {
            let len = self.walk_record(&input[at..], 1)?;
            self.redact_walked(&mut texts, input, at..at + len, out);
            at += len;
            records += 1;
        }
        Ok((at, records))
    }

    /// Walks the record made of the `values` msgpack values at the start of
    /// `input`: its payloads go to `self.payloads`; returns its length.
    fn walk_record(&mut self, input: &[u8], values: u64) -> Result<usize, MsgpackError> {
        let payloads = &mut self.payloads;
        payloads.clear();
        walk(input, values, |kind, header, body, end| {
            payloads.push(Payload {
                kind,
                header,
                body,
                end,
            })
        })
    }

    /// Redacts the record just walked, `input[record]` (`texts` holds
    /// `input`), to `out`.
    fn redact_walked(
        &mut self,
        texts: &mut Texts<'_>,
        input: &[u8],
        record: Range<usize>,
        out: &mut Vec<u8>,
    ) {
        let payloads = std::mem::take(&mut self.payloads);
        let from = record.start;
        let mut copied = from;
        let classify = self.scanner.mode() == DetectionMode::Classify;
        for payload in &payloads {
            let (body, end) = (from + payload.body, from + payload.end);
            // Most strings hold no secret: those go on with the record's
            // bytes, copied once below.
            if self.scanner.pass_text_in(texts, body..end) {
                if classify {
                    self.separate();
                }
                continue;
            }
            let masked_before = self.scanner.stats().masked;
            self.collect.out.clear();
            self.scanner.feed(&input[body..end], &mut self.collect);
            self.scanner.end_text(&mut self.collect);
            if classify {
                self.separate();
            }
            if self.scanner.stats().masked == masked_before {
                // Unchanged (an allowed match is written as it was).
                continue;
            }
            out.extend_from_slice(&input[copied..from + payload.header]);
            write_header(out, payload.kind, self.collect.out.len());
            out.extend_from_slice(&self.collect.out);
            copied = end;
        }
        out.extend_from_slice(&input[copied..record.end]);
        // The record's context ends here; every text was ended, so nothing
        // is dropped.
        self.scanner.restart(&mut self.collect);
        self.payloads = payloads;
    }

    /// Feeds the separator between two payloads, for the context only: what
    /// it writes is not kept.
    fn separate(&mut self) {
        if !self.scanner.pass_text(SEPARATOR) {
            let kept = self.collect.out.len();
            self.scanner.feed(SEPARATOR, &mut self.collect);
            self.scanner.end_text(&mut self.collect);
            self.collect.out.truncate(kept);
        }
    }

    /// The detections whose context is complete, in order.
    pub fn take_detections(&mut self) -> Vec<Detection> {
        std::mem::take(&mut self.collect.detections)
    }
}

/// A `str` or `bin` header for a payload of `len` bytes, in its shortest
/// form.
fn write_header(out: &mut Vec<u8>, kind: PayloadKind, len: usize) {
    // A masked payload of a value read from a bounded message: far below
    // 4 GiB. Writing to a Vec cannot fail.
    let len = u32::try_from(len).unwrap_or(u32::MAX);
    let _ = match kind {
        PayloadKind::Str => rmp::encode::write_str_len(out, len),
        PayloadKind::Bin => rmp::encode::write_bin_len(out, len),
    };
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use proptest::prelude::*;

    use super::*;
    use crate::scan::fingerprint::FingerprintKey;
    use crate::scan::rule::{RuleSet, RuleSpec};

    /// A msgpack value to encode.
    #[derive(Debug, Clone)]
    enum Value {
        Int(i64),
        Str(Vec<u8>),
        Bin(Vec<u8>),
        /// An `EventTime`: ext type 0, 8 bytes.
        Time(u32, u32),
        Array(Vec<Value>),
        Map(Vec<(Value, Value)>),
    }

    fn encode(value: &Value, out: &mut Vec<u8>, string: &dyn Fn(&[u8]) -> Vec<u8>) {
        match value {
            Value::Int(n) => {
                rmp::encode::write_sint(out, *n).unwrap();
            }
            Value::Str(s) => {
                let s = string(s);
                rmp::encode::write_str_len(out, s.len() as u32).unwrap();
                out.extend_from_slice(&s);
            }
            Value::Bin(b) => {
                let b = string(b);
                rmp::encode::write_bin_len(out, b.len() as u32).unwrap();
                out.extend_from_slice(&b);
            }
            Value::Time(secs, nanos) => {
                rmp::encode::write_ext_meta(out, 8, 0).unwrap();
                out.extend_from_slice(&secs.to_be_bytes());
                out.extend_from_slice(&nanos.to_be_bytes());
            }
            Value::Array(items) => {
                rmp::encode::write_array_len(out, items.len() as u32).unwrap();
                for item in items {
                    encode(item, out, string);
                }
            }
            Value::Map(entries) => {
                rmp::encode::write_map_len(out, entries.len() as u32).unwrap();
                for (key, value) in entries {
                    encode(key, out, string);
                    encode(value, out, string);
                }
            }
        }
    }

    fn token_text() -> String {
        format!("dapi{}", &blake3::hash(b"msgpack test").to_hex()[..32])
    }

    fn rules() -> Arc<RuleSet> {
        let rule = RuleSpec {
            mask: "dapi****".into(),
            keywords: vec!["bearer".into()],
            ..RuleSpec::new("databricks-pat", r"\bdapi[0-9a-f]{32}\b")
        };
        Arc::new(RuleSet::new(vec![rule], FingerprintKey::derive(b"k")).unwrap())
    }

    /// The reference: the default rule applied by the `regex` crate to one
    /// payload alone.
    fn reference(payload: &[u8]) -> Vec<u8> {
        regex::bytes::Regex::new(r"(?-u:\b)dapi[0-9a-f]{32}(?-u:\b)")
            .unwrap()
            .replace_all(payload, &b"dapi****"[..])
            .into_owned()
    }

    /// Strings where tokens, their halves and near misses are frequent.
    fn text() -> impl Strategy<Value = Vec<u8>> {
        let token = token_text();
        let pieces = prop_oneof![
            Just(token.clone().into_bytes()),
            Just(token.as_bytes()[..20].to_vec()),
            Just(token.as_bytes()[20..].to_vec()),
            Just(b"dapi".to_vec()),
            Just(b"bearer ".to_vec()),
            Just(b"0123456789abcdef".to_vec()),
            "[a-z =\n\"]{0,6}".prop_map(String::into_bytes),
            proptest::collection::vec(any::<u8>(), 0..4),
        ];
        proptest::collection::vec(pieces, 0..5).prop_map(|p| p.concat())
    }

    fn value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            any::<i64>().prop_map(Value::Int),
            text().prop_map(Value::Str),
            text().prop_map(Value::Bin),
            (any::<u32>(), any::<u32>()).prop_map(|(s, n)| Value::Time(s, n)),
        ];
        leaf.prop_recursive(4, 32, 5, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
                proptest::collection::vec((inner.clone(), inner), 0..4).prop_map(Value::Map),
            ]
        })
    }

    proptest! {
        /// Each payload is exactly its own redaction; every other byte and
        /// the structure are unchanged, records one after another, whether
        /// matches are classified or only masked.
        #[test]
        fn every_payload_is_redacted_alone_and_nothing_else_changes(
            records in proptest::collection::vec(value(), 1..4),
            classify in any::<bool>(),
        ) {
            let mode = if classify { DetectionMode::Classify } else { DetectionMode::MaskOnly };
            let mut redactor = RecordRedactor::new(Scanner::new(rules(), mode));
            for record in &records {
                let mut input = Vec::new();
                encode(record, &mut input, &|s| s.to_vec());
                input.extend_from_slice(b"trailing bytes are not read");
                let mut expected = Vec::new();
                encode(record, &mut expected, &reference);
                let mut out = Vec::new();
                let len = redactor.redact(&input, 1, &mut out).unwrap();
                prop_assert_eq!(len, input.len() - 27);
                prop_assert_eq!(out, expected);
            }
        }

        /// Cut anywhere, a record is reported cut short, never misread.
        #[test]
        fn a_record_cut_anywhere_is_truncated(record in value(), cut in any::<prop::sample::Index>()) {
            let mut input = Vec::new();
            encode(&record, &mut input, &|s| s.to_vec());
            let cut = cut.index(input.len());
            prop_assert_eq!(walk(&input[..cut], 1, |_, _, _, _| {}), Err(MsgpackError::Truncated));
        }
    }

    #[test]
    fn the_record_s_strings_are_one_context_and_map_keys_are_redacted() {
        let token = token_text().into_bytes();
        let record = Value::Map(vec![
            (Value::Str(b"auth".to_vec()), Value::Str(b"Bearer".to_vec())),
            (Value::Str(token.clone()), Value::Time(1, 2)),
        ]);
        let mut input = Vec::new();
        encode(&record, &mut input, &|s| s.to_vec());
        let mut redactor = RecordRedactor::new(Scanner::new(rules(), DetectionMode::Classify));
        let mut out = Vec::new();
        redactor.redact(&input, 1, &mut out).unwrap();
        let mut expected = Vec::new();
        encode(&record, &mut expected, &reference);
        assert_eq!(out, expected);
        let detections = redactor.take_detections();
        assert_eq!(detections.len(), 1);
        assert_eq!(detections[0].keywords.len(), 1, "bearer, in another string");
        // "auth\nBearer\n" comes first in the connection's strings.
        assert_eq!(detections[0].offset, 12);
        assert_eq!(detections[0].line, 3);
        // The next record is judged on its own: no keyword.
        let plain = Value::Array(vec![Value::Str(token)]);
        let mut input = Vec::new();
        encode(&plain, &mut input, &|s| s.to_vec());
        redactor.redact(&input, 1, &mut Vec::new()).unwrap();
        let detections = redactor.take_detections();
        assert_eq!(detections.len(), 1);
        assert!(detections[0].keywords.is_empty());
    }

    #[test]
    fn a_match_never_spans_two_payloads() {
        let token = token_text();
        let record = Value::Array(vec![
            Value::Str(token.as_bytes()[..20].to_vec()),
            Value::Str(token.as_bytes()[20..].to_vec()),
        ]);
        let mut input = Vec::new();
        encode(&record, &mut input, &|s| s.to_vec());
        let mut redactor = RecordRedactor::new(Scanner::new(rules(), DetectionMode::MaskOnly));
        let mut out = Vec::new();
        redactor.redact(&input, 1, &mut out).unwrap();
        assert_eq!(out, input);
    }

    #[test]
    fn an_invalid_marker_is_an_error_and_writes_nothing() {
        let mut redactor = RecordRedactor::new(Scanner::new(rules(), DetectionMode::MaskOnly));
        let mut out = Vec::new();
        assert_eq!(
            redactor.redact(&[0x92, 0x01, 0xc1], 1, &mut out),
            Err(MsgpackError::InvalidMarker(2))
        );
        assert!(out.is_empty());
        // A container claiming more elements than there are bytes.
        assert_eq!(
            walk(&[0xdd, 0xff, 0xff, 0xff, 0xff, 0x01], 1, |_, _, _, _| {}),
            Err(MsgpackError::Truncated)
        );
    }
}
