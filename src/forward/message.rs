//! The forward protocol's event messages (Fluent forward protocol v1), read
//! and written again redacted.
//!
//! A message is an array whose first element is the tag and whose second
//! says the mode:
//!
//! | mode | message | second element |
//! |---|---|---|
//! | Message | `[tag, time, record, option?]` | a time: an integer or `EventTime` (ext type 0) |
//! | Forward | `[tag, [[time, record], …], option?]` | an array of entries |
//! | PackedForward | `[tag, entries, option?]` | `bin`/`str`: entries back to back |
//! | CompressedPackedForward | same, `option.compressed: "gzip"` | the entries, gzipped |
//!
//! An entry may also be `[[time, metadata], record]` (Fluent Bit's
//! `retain_metadata_in_forward_mode`): every entry is redacted as one record
//! whatever its shape, each string payload in it masked alone, with the
//! entry's strings as context (see [`crate::scan::msgpack`]). The tag is
//! redacted too, as a record of its own. Times, numbers and extension values
//! are copied unchanged, and the mode is kept: a compressed message goes on
//! compressed (gzipped again, at the fastest level).
//!
//! The option map is copied but for `chunk`: the sender's `chunk` is kept to
//! acknowledge the message once it is delivered, and the message goes on with
//! a `chunk` of logredact's own, which the next hop acknowledges.

use std::fmt;
use std::io::{self, Read, Write};

use flate2::Compression;
use flate2::read::MultiGzDecoder;
use flate2::write::GzEncoder;

use crate::scan::msgpack::{MsgpackError, PayloadKind, RecordRedactor, Token, token, walk};

/// Why a message is refused. Each closes the connection that sent it.
#[derive(Debug)]
pub(crate) enum MessageError {
    /// Not a message of the protocol: what is wrong.
    Malformed(&'static str),
    /// The second element is none of the four modes' (a map, nil, …).
    UnknownMode,
    /// The msgpack inside is broken.
    Msgpack(MsgpackError),
    /// `option.compressed` names an unknown compression.
    UnknownCompression,
    /// The gzipped entries do not decompress.
    Gzip(io::Error),
    /// The gzipped entries decompress to more than the limit.
    Inflated {
        /// The limit, in bytes.
        limit: usize,
    },
}

impl fmt::Display for MessageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MessageError::Malformed(what) => write!(f, "not a forward message: {what}"),
            MessageError::UnknownMode => f.write_str(
                "unknown forward mode: the second element is neither a time, an array of entries nor packed entries",
            ),
            MessageError::Msgpack(e) => write!(f, "malformed msgpack in the message: {e}"),
            MessageError::UnknownCompression => {
                f.write_str("option.compressed is neither \"gzip\" nor \"text\"")
            }
            MessageError::Gzip(e) => write!(f, "the compressed entries are not valid gzip: {e}"),
            MessageError::Inflated { limit } => write!(
                f,
                "the compressed entries decompress to more than {limit} bytes"
            ),
        }
    }
}

impl From<MsgpackError> for MessageError {
    fn from(e: MsgpackError) -> MessageError {
        MessageError::Msgpack(e)
    }
}

/// A message redacted, ready to go on.
#[derive(Debug)]
pub(crate) struct Redacted {
    /// The whole message, with logredact's `chunk` in its option.
    pub(crate) message: Vec<u8>,
    /// The sender's `chunk` (a msgpack `str`, as sent), if it asked for an
    /// acknowledgement.
    pub(crate) reply_chunk: Option<Vec<u8>>,
    /// Records (entries) in the message.
    pub(crate) records: u64,
}

/// Whether the message is one of the handshake's (`PING`), not an event.
pub(crate) fn is_ping(message: &[u8]) -> bool {
    message.len() > 6 && is_array(message[0]) && message[1..].starts_with(b"\xa4PING")
}

pub(super) fn is_array(marker: u8) -> bool {
    matches!(marker, 0x90..=0x9f | 0xdc | 0xdd)
}

pub(super) fn is_map(marker: u8) -> bool {
    matches!(marker, 0x80..=0x8f | 0xde | 0xdf)
}

/// The option map of a message: its entries, raw, and what is read from it.
#[derive(Default)]
pub(super) struct Options<'a> {
    /// Every entry but `chunk`, key and value as sent, back to back.
    kept: Vec<&'a [u8]>,
    /// The sender's `chunk` value (a msgpack `str`).
    chunk: Option<&'a [u8]>,
    /// Whether the entries are gzipped.
    pub(super) gzip: bool,
}

/// The payload of a msgpack `str` value that starts `value`, if it is one.
fn str_payload(value: &[u8]) -> Option<&[u8]> {
    match token(value, 0) {
        Ok((
            Token::Payload {
                kind: PayloadKind::Str,
                body,
            },
            end,
        )) => Some(&value[body..end]),
        _ => None,
    }
}

pub(super) fn read_options(option: &[u8]) -> Result<Options<'_>, MessageError> {
    let mut options = Options::default();
    let (header, mut at) = token(option, 0)?;
    match header {
        Token::Scalar if option[0] == 0xc0 => Ok(options),
        Token::Container(n) if is_map(option[0]) => {
            for _ in 0..n / 2 {
                let key_len = walk(&option[at..], 1, |_, _, _, _| {})?;
                let value_at = at + key_len;
                let value_len = walk(&option[value_at..], 1, |_, _, _, _| {})?;
                let key = str_payload(&option[at..]);
                let value = &option[value_at..value_at + value_len];
                match key {
                    Some(b"chunk") => {
                        if str_payload(value).is_none() {
                            return Err(MessageError::Malformed("option.chunk is not a string"));
                        }
                        options.chunk = Some(value);
                    }
                    Some(b"compressed") => {
                        options.gzip = match str_payload(value) {
                            Some(b"gzip") => true,
                            Some(b"text") => false,
                            _ => return Err(MessageError::UnknownCompression),
                        };
                        options.kept.push(&option[at..value_at + value_len]);
                    }
                    _ => options.kept.push(&option[at..value_at + value_len]),
                }
                at = value_at + value_len;
            }
            Ok(options)
        }
        _ => Err(MessageError::Malformed("the option is not a map")),
    }
}

/// Limits on one message.
#[derive(Debug, Clone, Copy)]
pub(crate) struct MessageLimits {
    /// The most bytes gzipped entries may decompress to.
    pub(crate) max_decompressed: usize,
}

/// Redacts the event message `input` (one whole msgpack value), giving it
/// the `chunk` id `chunk` for the next hop; the message is written into
/// `out`, whose contents are replaced (a buffer to reuse).
pub(crate) fn redact_message(
    input: &[u8],
    redactor: &mut RecordRedactor,
    limits: MessageLimits,
    chunk: &str,
    mut out: Vec<u8>,
) -> Result<Redacted, MessageError> {
    let (Token::Container(elements), mut at) = token(input, 0)? else {
        return Err(MessageError::Malformed("not an array"));
    };
    if !is_array(input[0]) || !(2..=4).contains(&elements) {
        return Err(MessageError::Malformed("not an array of 2 to 4 elements"));
    }
    let tag_end = match token(input, at)? {
        (
            Token::Payload {
                kind: PayloadKind::Str,
                ..
            },
            end,
        ) => end,
        _ => return Err(MessageError::Malformed("the tag is not a string")),
    };
    // The mode decides the length of the array written: Message mode's is
    // 4, the others' 3 (with logredact's option).
    let (second, _) = token(input, tag_end)?;
    out.clear();
    out.reserve(input.len() + 64);
    let array_len = match second {
        Token::Scalar => 4,
        _ => 3,
    };
    let _ = rmp::encode::write_array_len(&mut out, array_len);
    at += redactor.redact(&input[at..], 1, &mut out)?;
    let second_at = at;
    let (second, second_end) = token(input, at)?;
    let body = &mut out;
    let (records, option_at, option_elements) = match second {
        Token::Scalar => {
            if !(3..=4).contains(&elements) {
                return Err(MessageError::Malformed(
                    "a message of Message mode has 3 or 4 elements",
                ));
            }
            at += redactor.redact(&input[at..], 2, body)?;
            (1, at, elements - 3)
        }
        Token::Container(entries) if is_array(input[at]) => {
            if elements > 3 {
                return Err(MessageError::Malformed(
                    "a message of Forward mode has 2 or 3 elements",
                ));
            }
            body.extend_from_slice(&input[at..second_end]);
            let (len, _) = redactor.redact_records(&input[second_end..], Some(entries), body)?;
            at = second_end + len;
            (entries, at, elements - 2)
        }
        Token::Payload { kind, body: from } => {
            if elements > 3 {
                return Err(MessageError::Malformed(
                    "a message of PackedForward mode has 2 or 3 elements",
                ));
            }
            let option_at = second_end;
            let options = match elements {
                3 => read_options(&input[option_at..])?,
                _ => Options::default(),
            };
            let packed = &input[from..second_end];
            // The entries are written in place, after room for a header as
            // long as the one they came with (the redacted length is
            // rarely of another size class).
            let header_at = body.len();
            let reserved = from - second_at;
            body.resize(header_at + reserved, 0);
            let records = if options.gzip {
                let inflated = gunzip(packed, limits.max_decompressed)?;
                let mut redacted = Vec::with_capacity(inflated.len() + 64);
                let records = redact_entries(&inflated, redactor, &mut redacted)?;
                gzip(&redacted, body);
                records
            } else {
                redact_entries(packed, redactor, body)?
            };
            put_payload_header(body, header_at, reserved, kind);
            (records, option_at, elements - 2)
        }
        _ => return Err(MessageError::UnknownMode),
    };
    let options = match option_elements {
        0 => Options::default(),
        _ => read_options(&input[option_at..])?,
    };
    let option_len = match option_elements {
        0 => 0,
        _ => walk(&input[option_at..], 1, |_, _, _, _| {})?,
    };
    if option_at + option_len != input.len() {
        return Err(MessageError::Malformed("bytes after the last element"));
    }
    let _ = rmp::encode::write_map_len(&mut out, options.kept.len() as u32 + 1);
    for entry in &options.kept {
        out.extend_from_slice(entry);
    }
    let _ = rmp::encode::write_str(&mut out, "chunk");
    let _ = rmp::encode::write_str(&mut out, chunk);
    Ok(Redacted {
        message: out,
        reply_chunk: options.chunk.map(<[u8]>::to_vec),
        records,
    })
}

/// Writes the entries back to back in `packed` to `out`, redacted; returns
/// how many there were.
fn redact_entries(
    packed: &[u8],
    redactor: &mut RecordRedactor,
    out: &mut Vec<u8>,
) -> Result<u64, MessageError> {
    out.reserve(packed.len() + 64);
    let (_, records) = redactor.redact_records(packed, None, out)?;
    Ok(records)
}

fn write_payload_header(out: &mut Vec<u8>, kind: PayloadKind, len: usize) {
    let len = u32::try_from(len).unwrap_or(u32::MAX);
    let _ = match kind {
        PayloadKind::Str => rmp::encode::write_str_len(out, len),
        PayloadKind::Bin => rmp::encode::write_bin_len(out, len),
    };
}

/// Writes, in the `reserved` bytes at `at`, the header of the payload that
/// follows them to the end of `out`, in its shortest form; the payload moves
/// only when that form is not `reserved` bytes long.
fn put_payload_header(out: &mut Vec<u8>, at: usize, reserved: usize, kind: PayloadKind) {
    let mut header = Vec::with_capacity(5);
    write_payload_header(&mut header, kind, out.len() - at - reserved);
    if header.len() == reserved {
        out[at..at + reserved].copy_from_slice(&header);
    } else {
        out.splice(at..at + reserved, header);
    }
}

/// The gzip members of `compressed`, decompressed, refused past `limit`
/// bytes (a small message must not become gigabytes in memory).
pub(super) fn gunzip(compressed: &[u8], limit: usize) -> Result<Vec<u8>, MessageError> {
    let mut inflated = Vec::new();
    MultiGzDecoder::new(compressed)
        .take(limit as u64 + 1)
        .read_to_end(&mut inflated)
        .map_err(MessageError::Gzip)?;
    if inflated.len() > limit {
        return Err(MessageError::Inflated { limit });
    }
    Ok(inflated)
}

/// `bytes` gzipped, appended to `out`.
fn gzip(bytes: &[u8], out: &mut Vec<u8>) {
    out.reserve(bytes.len() / 4);
    let mut encoder = GzEncoder::new(out, Compression::fast());
    // Writing to a Vec cannot fail.
    let _ = encoder.write_all(bytes);
    let _ = encoder.finish();
}

/// The acknowledgement `{"ack": chunk}` of a message whose option had
/// `chunk` (the msgpack `str` as sent).
pub(crate) fn ack(chunk: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(chunk.len() + 5);
    out.extend_from_slice(b"\x81\xa3ack");
    out.extend_from_slice(chunk);
    out
}

/// The `chunk` an acknowledgement `{"ack": chunk}` names, if it is one.
pub(crate) fn acknowledged(message: &[u8]) -> Option<&[u8]> {
    let (Token::Container(2), mut at) = token(message, 0).ok()? else {
        return None;
    };
    if !is_map(message[0]) || str_payload(&message[at..])? != b"ack" {
        return None;
    }
    at += walk(&message[at..], 1, |_, _, _, _| {}).ok()?;
    str_payload(&message[at..])
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::scan::fingerprint::FingerprintKey;
    use crate::scan::rule::{RuleSet, RuleSpec};
    use crate::scan::scanner::{DetectionMode, Scanner};

    fn redactor() -> RecordRedactor {
        let rule = RuleSpec {
            mask: "dapi****".into(),
            ..RuleSpec::new("databricks-pat", r"\bdapi[0-9a-f]{32}\b")
        };
        let rules = Arc::new(RuleSet::new(vec![rule], FingerprintKey::derive(b"k")).unwrap());
        RecordRedactor::new(Scanner::new(rules, DetectionMode::MaskOnly))
    }

    fn token_text() -> String {
        format!("dapi{}", &blake3::hash(b"message test").to_hex()[..32])
    }

    fn s(out: &mut Vec<u8>, text: &str) {
        rmp::encode::write_str(out, text).unwrap();
    }

    /// `{"log": text}`.
    fn record(out: &mut Vec<u8>, text: &str) {
        rmp::encode::write_map_len(out, 1).unwrap();
        s(out, "log");
        s(out, text);
    }

    fn event_time(out: &mut Vec<u8>) {
        rmp::encode::write_ext_meta(out, 8, 0).unwrap();
        out.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 2]);
    }

    fn limits() -> MessageLimits {
        MessageLimits {
            max_decompressed: 1 << 20,
        }
    }

    fn option(out: &mut Vec<u8>, chunk: &str, compressed: Option<&str>) {
        rmp::encode::write_map_len(out, 1 + u32::from(compressed.is_some())).unwrap();
        s(out, "chunk");
        s(out, chunk);
        if let Some(c) = compressed {
            s(out, "compressed");
            s(out, c);
        }
    }

    #[test]
    fn message_mode_keeps_the_time_and_gets_its_own_chunk() {
        let token = token_text();
        let mut input = Vec::new();
        rmp::encode::write_array_len(&mut input, 4).unwrap();
        s(&mut input, "app");
        event_time(&mut input);
        record(&mut input, &format!("bearer {token}"));
        option(&mut input, "their-chunk", None);
        let redacted =
            redact_message(&input, &mut redactor(), limits(), "ours", Vec::new()).unwrap();
        let mut expected = Vec::new();
        rmp::encode::write_array_len(&mut expected, 4).unwrap();
        s(&mut expected, "app");
        event_time(&mut expected);
        record(&mut expected, "bearer dapi****");
        option(&mut expected, "ours", None);
        assert_eq!(redacted.message, expected);
        assert_eq!(redacted.records, 1);
        let reply = ack(redacted.reply_chunk.as_deref().unwrap());
        assert_eq!(acknowledged(&reply), Some(&b"their-chunk"[..]));
    }

    #[test]
    fn compressed_packed_forward_is_gzipped_again_and_bombs_are_refused() {
        let token = token_text();
        let mut entries = Vec::new();
        for i in 0..3 {
            rmp::encode::write_array_len(&mut entries, 2).unwrap();
            rmp::encode::write_uint(&mut entries, 1_700_000_000 + i).unwrap();
            record(&mut entries, &format!("n={i} {token}"));
        }
        let mut input = Vec::new();
        rmp::encode::write_array_len(&mut input, 3).unwrap();
        s(&mut input, "app");
        let mut packed = Vec::new();
        gzip(&entries, &mut packed);
        rmp::encode::write_bin_len(&mut input, packed.len() as u32).unwrap();
        input.extend_from_slice(&packed);
        option(&mut input, "c1", Some("gzip"));
        let redacted =
            redact_message(&input, &mut redactor(), limits(), "ours", Vec::new()).unwrap();
        assert_eq!(redacted.records, 3);
        let (Token::Payload { body, .. }, end) = super::token(&redacted.message, 5).unwrap() else {
            panic!("packed entries expected");
        };
        let inflated = gunzip(&redacted.message[body..end], 1 << 20).unwrap();
        let text = String::from_utf8_lossy(&inflated);
        assert!(
            text.contains("n=2 dapi****") && !text.contains(&token),
            "{text}"
        );

        let mut bomb = Vec::new();
        gzip(&vec![0u8; 4 << 20], &mut bomb);
        let mut input = Vec::new();
        rmp::encode::write_array_len(&mut input, 3).unwrap();
        s(&mut input, "app");
        rmp::encode::write_bin_len(&mut input, bomb.len() as u32).unwrap();
        input.extend_from_slice(&bomb);
        option(&mut input, "c2", Some("gzip"));
        let error =
            redact_message(&input, &mut redactor(), limits(), "ours", Vec::new()).unwrap_err();
        assert_eq!(
            error.to_string(),
            "the compressed entries decompress to more than 1048576 bytes"
        );
    }

    /// Entries written in place keep the shortest header, whether the
    /// redacted length has the input's size class or a smaller one.
    #[test]
    fn packed_entries_keep_the_shortest_header() {
        let token = token_text();
        for (records, header) in [(7, 0xc5), (5, 0xc4)] {
            let (mut entries, mut masked) = (Vec::new(), Vec::new());
            for i in 0..records {
                for (out, text) in [(&mut entries, token.as_str()), (&mut masked, "dapi****")] {
                    rmp::encode::write_array_len(out, 2).unwrap();
                    rmp::encode::write_uint(out, 1_700_000_000 + i).unwrap();
                    record(out, text);
                }
            }
            // 7 records: 343 bytes in (bin16), 140 out (bin8); 5 records:
            // 245 bytes in, 100 out (bin8 both).
            let mut input = Vec::new();
            rmp::encode::write_array_len(&mut input, 3).unwrap();
            s(&mut input, "app");
            rmp::encode::write_bin_len(&mut input, entries.len() as u32).unwrap();
            input.extend_from_slice(&entries);
            option(&mut input, "c", None);
            assert_eq!(input[5], header);
            let redacted =
                redact_message(&input, &mut redactor(), limits(), "ours", Vec::new()).unwrap();
            let mut expected = Vec::new();
            rmp::encode::write_array_len(&mut expected, 3).unwrap();
            s(&mut expected, "app");
            rmp::encode::write_bin_len(&mut expected, masked.len() as u32).unwrap();
            expected.extend_from_slice(&masked);
            option(&mut expected, "ours", None);
            assert_eq!(redacted.message, expected);
            assert_eq!(redacted.records, records);
        }
    }

    #[test]
    fn unknown_modes_and_shapes_are_refused() {
        let mut map_mode = Vec::new();
        rmp::encode::write_array_len(&mut map_mode, 2).unwrap();
        s(&mut map_mode, "app");
        rmp::encode::write_map_len(&mut map_mode, 0).unwrap();
        assert!(matches!(
            redact_message(&map_mode, &mut redactor(), limits(), "x", Vec::new()),
            Err(MessageError::UnknownMode)
        ));
        let mut not_array = Vec::new();
        record(&mut not_array, "x");
        assert!(matches!(
            redact_message(&not_array, &mut redactor(), limits(), "x", Vec::new()),
            Err(MessageError::Malformed(_))
        ));
        assert!(is_ping(b"\x96\xa4PING\xa1h"));
        assert!(!is_ping(b"\x93\xa3app"));
    }
}
