//! Forward records written as lines, for an output that is not a forward
//! hop (standard output, a file, a `tcp://` or `tls://` collector).
//!
//! Each record becomes one line of JSON, `[tag, time, record]`: the record
//! as the protocol's Message mode carries it, in JSON. An entry with Fluent
//! Bit's metadata, `[[time, metadata], record]`, is `[tag, [time, metadata],
//! record]`. The line is made from the message after redaction, so only
//! masks differ from what was sent.
//!
//! msgpack holds more than JSON can say; what has no JSON form is written as
//! its nearest: an `EventTime` as seconds with nine decimals
//! (`1700000000.123456789`, exact as text), other extension values and
//! non-finite floats as `null`, a `str` or `bin` that is not UTF-8 with
//! U+FFFD in place of each invalid sequence, and a map key that is not a
//! string as its JSON text in a string (`{"1": …}`). A string's newlines are
//! escaped, so a record is always exactly one line.

use std::io::Write;

use rmp::Marker;

use crate::forward::message::{MessageError, gunzip, is_array, is_map, read_options};
use crate::scan::msgpack::{Token, token};

/// Nesting of containers in a record, at most; a deeper record is refused
/// (its message closes the connection, unacknowledged), so that a message
/// cannot make the line writer's stack as large as the message.
const MAX_DEPTH: usize = 512;

/// Appends a line to `out` for every record of `message` (a redacted
/// message, as [`crate::forward::message::redact_message`] writes it), and
/// says how many records there were. Gzipped entries are inflated again,
/// within `max_decompressed` bytes.
pub(crate) fn message_lines(
    message: &[u8],
    max_decompressed: usize,
    out: &mut Vec<u8>,
) -> Result<u64, MessageError> {
    let (Token::Container(elements), mut at) = token(message, 0)? else {
        return Err(MessageError::Malformed("not an array"));
    };
    let mut tag = Vec::new();
    at = write_value(message, at, &mut tag)?;
    let (second, second_end) = token(message, at)?;
    match second {
        Token::Scalar => {
            // Message mode: [tag, time, record, option].
            out.push(b'[');
            out.extend_from_slice(&tag);
            out.push(b',');
            at = write_value(message, at, out)?;
            out.push(b',');
            write_value(message, at, out)?;
            out.extend_from_slice(b"]\n");
            Ok(1)
        }
        Token::Container(entries) if is_array(message[at]) => {
            at = second_end;
            for _ in 0..entries {
                at = write_entry(message, at, &tag, out)?;
            }
            Ok(entries)
        }
        Token::Payload { body, .. } => {
            let gzip = elements > 2 && read_options(&message[second_end..])?.gzip;
            let inflated;
            let packed = if gzip {
                inflated = gunzip(&message[body..second_end], max_decompressed)?;
                &inflated[..]
            } else {
                &message[body..second_end]
            };
            let (mut at, mut records) = (0, 0);
            while at < packed.len() {
                at = write_entry(packed, at, &tag, out)?;
                records += 1;
            }
            Ok(records)
        }
        _ => Err(MessageError::UnknownMode),
    }
}

/// Writes the entry at `at` as the line `[tag, …its elements]` and returns
/// where it ends.
fn write_entry(
    input: &[u8],
    at: usize,
    tag: &[u8],
    out: &mut Vec<u8>,
) -> Result<usize, MessageError> {
    out.push(b'[');
    out.extend_from_slice(tag);
    let end = match token(input, at)? {
        (Token::Container(elements), mut next) if is_array(input[at]) => {
            for _ in 0..elements {
                out.push(b',');
                next = write_value(input, next, out)?;
            }
            next
        }
        _ => {
            out.push(b',');
            write_value(input, at, out)?
        }
    };
    out.extend_from_slice(b"]\n");
    Ok(end)
}

/// An open array or map: values still to come, and values written.
struct Open {
    map: bool,
    left: u64,
    written: u64,
}

/// Writes the msgpack value at `at` as JSON and returns where it ends.
fn write_value(input: &[u8], mut at: usize, out: &mut Vec<u8>) -> Result<usize, MessageError> {
    let mut open: Vec<Open> = Vec::new();
    loop {
        let mut key = false;
        if let Some(parent) = open.last_mut() {
            if parent.written > 0 {
                let colon = parent.map && parent.written % 2 == 1;
                out.push(if colon { b':' } else { b',' });
            }
            key = parent.map && parent.written % 2 == 0;
            parent.written += 1;
            parent.left -= 1;
        }
        let (value, end) = token(input, at)?;
        match value {
            Token::Payload { body, .. } => {
                write_string(&input[body..end], out);
                at = end;
            }
            _ if key => {
                // A key that is not a string: its JSON text, as a string.
                let mut text = Vec::new();
                at = write_key_value(input, at, &mut text)?;
                write_string(&text, out);
            }
            Token::Scalar => {
                write_scalar(&input[at..end], out);
                at = end;
            }
            Token::Container(values) => {
                if open.len() == MAX_DEPTH {
                    return Err(MessageError::Malformed(
                        "a record nested more than 512 deep, for a line output",
                    ));
                }
                let map = is_map(input[at]);
                out.push(if map { b'{' } else { b'[' });
                open.push(Open {
                    map,
                    left: values,
                    written: 0,
                });
                at = end;
            }
        }
        while open.last().is_some_and(|o| o.left == 0) {
            let closed = open.pop();
            out.push(if closed.is_some_and(|o| o.map) {
                b'}'
            } else {
                b']'
            });
        }
        if open.is_empty() {
            return Ok(at);
        }
    }
}

/// A key that is itself a number, nil, a boolean or an extension value (an
/// array or map as a key is refused: no producer writes one).
fn write_key_value(input: &[u8], at: usize, out: &mut Vec<u8>) -> Result<usize, MessageError> {
    match token(input, at)? {
        (Token::Scalar, end) => {
            write_scalar(&input[at..end], out);
            Ok(end)
        }
        _ => Err(MessageError::Malformed(
            "a map key that is an array or a map, for a line output",
        )),
    }
}

/// A JSON string of `bytes` (UTF-8, or U+FFFD for what is not).
fn write_string(bytes: &[u8], out: &mut Vec<u8>) {
    let text = String::from_utf8_lossy(bytes);
    // Writing to a Vec cannot fail.
    let _ = serde_json::to_writer(&mut *out, &*text);
}

/// The JSON of a msgpack scalar (`bytes` is exactly the value).
fn write_scalar(bytes: &[u8], out: &mut Vec<u8>) {
    let number = |len: usize| {
        bytes[1..=len]
            .iter()
            .fold(0u64, |n, &b| (n << 8) | u64::from(b))
    };
    // Writing to a Vec cannot fail.
    let _ = match Marker::from_u8(bytes[0]) {
        Marker::FixPos(n) => write!(out, "{n}"),
        Marker::FixNeg(n) => write!(out, "{n}"),
        Marker::Null => write!(out, "null"),
        Marker::True => write!(out, "true"),
        Marker::False => write!(out, "false"),
        Marker::U8 => write!(out, "{}", number(1)),
        Marker::U16 => write!(out, "{}", number(2)),
        Marker::U32 => write!(out, "{}", number(4)),
        Marker::U64 => write!(out, "{}", number(8)),
        Marker::I8 => write!(out, "{}", number(1) as u8 as i8),
        Marker::I16 => write!(out, "{}", number(2) as u16 as i16),
        Marker::I32 => write!(out, "{}", number(4) as u32 as i32),
        Marker::I64 => write!(out, "{}", number(8) as i64),
        // Non-finite floats are written as null.
        Marker::F32 => serde_json::to_writer(&mut *out, &f32::from_bits(number(4) as u32))
            .map_err(std::io::Error::other),
        Marker::F64 => serde_json::to_writer(&mut *out, &f64::from_bits(number(8)))
            .map_err(std::io::Error::other),
        // EventTime: extension type 0, seconds and nanoseconds, 32 bits each.
        Marker::FixExt8 if bytes[1] == 0 => event_time(&bytes[2..10], out),
        Marker::Ext8 if bytes[1] == 8 && bytes[2] == 0 => event_time(&bytes[3..11], out),
        _ => write!(out, "null"),
    };
}

fn event_time(data: &[u8], out: &mut Vec<u8>) -> std::io::Result<()> {
    let seconds = u32::from_be_bytes([data[0], data[1], data[2], data[3]]);
    let nanos = u32::from_be_bytes([data[4], data[5], data[6], data[7]]);
    write!(out, "{seconds}.{nanos:09}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(message: &[u8]) -> String {
        let mut out = Vec::new();
        message_lines(message, 1 << 20, &mut out).unwrap();
        String::from_utf8(out).unwrap()
    }

    fn event_time_ext(seconds: u32, nanos: u32) -> Vec<u8> {
        let mut v = vec![0xd7, 0x00];
        v.extend_from_slice(&seconds.to_be_bytes());
        v.extend_from_slice(&nanos.to_be_bytes());
        v
    }

    /// A record of every scalar kind, nested containers, a non-UTF-8 string
    /// with a newline, and keys of other kinds.
    fn record() -> Vec<u8> {
        let mut r = Vec::new();
        rmp::encode::write_map_len(&mut r, 7).unwrap();
        rmp::encode::write_str(&mut r, "log").unwrap();
        rmp::encode::write_str(&mut r, "line one\n\"two\"").unwrap();
        rmp::encode::write_str(&mut r, "n").unwrap();
        rmp::encode::write_array_len(&mut r, 6).unwrap();
        rmp::encode::write_sint(&mut r, -3).unwrap();
        rmp::encode::write_i64(&mut r, -5_000_000_000).unwrap();
        rmp::encode::write_u64(&mut r, u64::MAX).unwrap();
        rmp::encode::write_f64(&mut r, 1.5).unwrap();
        rmp::encode::write_f32(&mut r, f32::NAN).unwrap();
        rmp::encode::write_nil(&mut r).unwrap();
        rmp::encode::write_uint(&mut r, 7).unwrap();
        rmp::encode::write_bool(&mut r, true).unwrap();
        rmp::encode::write_str(&mut r, "bin").unwrap();
        rmp::encode::write_bin(&mut r, b"a\xffb").unwrap();
        rmp::encode::write_str(&mut r, "empty").unwrap();
        rmp::encode::write_map_len(&mut r, 0).unwrap();
        rmp::encode::write_str(&mut r, "ext").unwrap();
        rmp::encode::write_ext_meta(&mut r, 2, 5).unwrap();
        r.extend_from_slice(b"\x01\x02");
        rmp::encode::write_nil(&mut r).unwrap();
        rmp::encode::write_array_len(&mut r, 0).unwrap();
        r
    }

    const RECORD_JSON: &str = r#"{"log":"line one\n\"two\"","n":[-3,-5000000000,18446744073709551615,1.5,null,null],"7":true,"bin":"a�b","empty":{},"ext":null,"null":[]}"#;

    #[test]
    fn every_mode_is_a_line_per_record() {
        let time = event_time_ext(1_700_000_000, 5);
        let record = record();
        // Message mode, with an option.
        let mut m = vec![0x94, 0xa3];
        m.extend_from_slice(b"app");
        m.extend_from_slice(&time);
        m.extend_from_slice(&record);
        m.push(0x80);
        let expected = format!("[\"app\",1700000000.000000005,{RECORD_JSON}]\n");
        assert_eq!(lines(&m), expected);
        // Forward mode: two entries, one with an integer time and one with
        // Fluent Bit's metadata.
        let mut f = vec![0x93, 0xa3];
        f.extend_from_slice(b"app");
        f.push(0x92);
        f.push(0x92);
        f.push(0x2a);
        f.extend_from_slice(&record);
        f.extend_from_slice(&[0x92, 0x92]);
        f.extend_from_slice(&time);
        f.push(0x80);
        f.extend_from_slice(&record);
        f.push(0x80);
        assert_eq!(
            lines(&f),
            format!(
                "[\"app\",42,{RECORD_JSON}]\n[\"app\",[1700000000.000000005,{{}}],{RECORD_JSON}]\n"
            )
        );
        // PackedForward, plain and gzipped, with the entries back to back.
        let mut entries = vec![0x92];
        entries.extend_from_slice(&time);
        entries.extend_from_slice(&record);
        let packed = [entries.clone(), entries.clone()].concat();
        let mut p = vec![0x93, 0xa3];
        p.extend_from_slice(b"app");
        rmp::encode::write_bin(&mut p, &packed).unwrap();
        p.push(0x80);
        let two = expected.repeat(2);
        assert_eq!(lines(&p), two);
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&packed).unwrap();
        let mut c = vec![0x93, 0xa3];
        c.extend_from_slice(b"app");
        rmp::encode::write_bin(&mut c, &gz.finish().unwrap()).unwrap();
        rmp::encode::write_map_len(&mut c, 1).unwrap();
        rmp::encode::write_str(&mut c, "compressed").unwrap();
        rmp::encode::write_str(&mut c, "gzip").unwrap();
        assert_eq!(lines(&c), two);
        let mut out = Vec::new();
        assert!(matches!(
            message_lines(&c, 10, &mut out),
            Err(MessageError::Inflated { limit: 10 })
        ));
    }

    #[test]
    fn every_line_is_json() {
        let mut m = vec![0x93, 0xa3];
        m.extend_from_slice(b"app");
        m.push(0x01);
        m.extend_from_slice(&record());
        let text = lines(&m);
        let value: serde_json::Value = serde_json::from_str(text.trim_end()).unwrap();
        assert_eq!(value[2]["log"], "line one\n\"two\"");
        assert_eq!(text.matches('\n').count(), 1);
    }

    #[test]
    fn nesting_is_bounded() {
        let mut m = vec![0x93, 0xa3];
        m.extend_from_slice(b"app");
        m.push(0x01);
        m.extend_from_slice(&vec![0x91; MAX_DEPTH]);
        m.push(0xc0);
        assert!(lines(&m).starts_with("[\"app\",1,[[[["));
        let mut deeper = vec![0x93, 0xa3];
        deeper.extend_from_slice(b"app");
        deeper.push(0x01);
        deeper.extend_from_slice(&vec![0x91; MAX_DEPTH + 1]);
        deeper.push(0xc0);
        let error = message_lines(&deeper, 1 << 20, &mut Vec::new()).unwrap_err();
        assert_eq!(
            error.to_string(),
            "not a forward message: a record nested more than 512 deep, for a line output"
        );
    }
}
