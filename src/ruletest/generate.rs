//! Values generated at test time, so that a rule test never needs a
//! credential-shaped literal in a committed file (a secret scanner would
//! rightly flag one, and a real one must never be written down).
//!
//! In a test's `input` and `output`, `{{KIND:N}}` stands for N characters of
//! KIND, and `{{KIND:N:LABEL}}` for another such value. Within one test the
//! same placeholder text is the same value, in the input and in the output,
//! so a near miss that passes through unchanged can be expected as written.
//! Values are derived from the test's name and the placeholder text: the same
//! test always sees the same values. Any other `{{` is literal text.

use std::fmt;

/// The kinds of generated values, and their characters.
const KINDS: [(&str, &[u8]); 6] = [
    ("hex", b"0123456789abcdef"),
    ("digits", b"0123456789"),
    ("upper_alnum", b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"),
    ("lower_alnum", b"0123456789abcdefghijklmnopqrstuvwxyz"),
    (
        "alnum",
        b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz",
    ),
    (
        "word",
        b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz_",
    ),
];

/// The longest generated value: no rule matches more than 256 bytes.
const MAX_LEN: usize = 256;

/// Generated values shorter than this are shown as they are in reports:
/// they are no secret, and a short value would also be found in innocent
/// text.
const MIN_SHOWN_AS_PLACEHOLDER: usize = 8;

/// A `{{...}}` that starts like a generated value but is not one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct GenerateError(String);

impl fmt::Display for GenerateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// One piece of a test text.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece<'a> {
    Literal(&'a str),
    /// The placeholder text (with its braces) and the characters to draw from.
    Generated {
        placeholder: &'a str,
        alphabet: &'static [u8],
        len: usize,
    },
}

/// Splits `text` into literal text and generated values.
fn pieces(text: &str) -> Result<Vec<Piece<'_>>, GenerateError> {
    let mut pieces = Vec::new();
    let mut rest = text;
    while let Some(open) = rest.find("{{") {
        let after = &rest[open + 2..];
        let named = after
            .find(|c: char| !(c.is_ascii_lowercase() || c == '_'))
            .is_some_and(|end| end > 0 && after[end..].starts_with(':'));
        if !named {
            pieces.push(Piece::Literal(&rest[..open + 2]));
            rest = after;
            continue;
        }
        let close = after.find("}}").ok_or_else(|| {
            GenerateError(format!(
                "'{{{{{}' is not closed by '}}}}'",
                after.split(':').next().unwrap_or_default()
            ))
        })?;
        let placeholder = &rest[open..open + 2 + close + 2];
        let (alphabet, len) = parse_generated(&after[..close], placeholder)?;
        pieces.push(Piece::Literal(&rest[..open]));
        pieces.push(Piece::Generated {
            placeholder,
            alphabet,
            len,
        });
        rest = &after[close + 2..];
    }
    pieces.push(Piece::Literal(rest));
    Ok(pieces)
}

/// `KIND:N` or `KIND:N:LABEL`.
fn parse_generated(
    inner: &str,
    placeholder: &str,
) -> Result<(&'static [u8], usize), GenerateError> {
    let mut parts = inner.splitn(3, ':');
    let kind = parts.next().unwrap_or_default();
    let count = parts.next().unwrap_or_default();
    let label = parts.next();
    let bad = |why: String| GenerateError(format!("'{placeholder}': {why}"));
    let alphabet = KINDS
        .iter()
        .find(|(name, _)| *name == kind)
        .map(|(_, alphabet)| *alphabet)
        .ok_or_else(|| {
            let names: Vec<&str> = KINDS.iter().map(|(name, _)| *name).collect();
            bad(format!(
                "unknown kind '{kind}' (one of {}; write {{{{KIND:N}}}})",
                names.join(", ")
            ))
        })?;
    let len = count
        .parse::<usize>()
        .ok()
        .filter(|len| (1..=MAX_LEN).contains(len))
        .ok_or_else(|| bad(format!("the length must be a number from 1 to {MAX_LEN}")))?;
    let label_ok = |label: &str| {
        !label.is_empty()
            && label
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    };
    if label.is_some_and(|label| !label_ok(label)) {
        return Err(bad(
            "a label is letters, digits, '_' and '-' (write {{KIND:N:LABEL}})".into(),
        ));
    }
    Ok((alphabet, len))
}

/// Checks the generated values of `text`.
pub(crate) fn check(text: &str) -> Result<(), GenerateError> {
    pieces(text).map(|_| ())
}

/// The values generated for one test: each placeholder text once.
#[derive(Default)]
pub(crate) struct Generated {
    /// (placeholder text, value), in order of first use.
    values: Vec<(String, String)>,
}

impl fmt::Debug for Generated {
    // The values are credential-shaped: never printed.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Generated({} values)", self.values.len())
    }
}

impl Generated {
    /// `text` with its generated values in, drawn for the test `test`. The
    /// text was checked when the configuration was loaded.
    pub(crate) fn expand(&mut self, test: &str, text: &str) -> String {
        let Ok(pieces) = pieces(text) else {
            return text.to_string();
        };
        let mut out = String::with_capacity(text.len());
        for piece in pieces {
            match piece {
                Piece::Literal(literal) => out.push_str(literal),
                Piece::Generated {
                    placeholder,
                    alphabet,
                    len,
                } => {
                    if let Some((_, value)) = self.values.iter().find(|(p, _)| p == placeholder) {
                        out.push_str(value);
                        continue;
                    }
                    let value = draw(test, placeholder, alphabet, len);
                    out.push_str(&value);
                    self.values.push((placeholder.to_string(), value));
                }
            }
        }
        out
    }

    /// `text` with every generated value (of at least 8 characters) shown as
    /// its placeholder, longest first.
    pub(crate) fn conceal(&self, text: &str) -> String {
        let mut values: Vec<&(String, String)> = self
            .values
            .iter()
            .filter(|(_, value)| value.len() >= MIN_SHOWN_AS_PLACEHOLDER)
            .collect();
        values.sort_by_key(|(_, value)| std::cmp::Reverse(value.len()));
        let mut text = text.to_string();
        for (placeholder, value) in values {
            text = text.replace(value.as_str(), placeholder);
        }
        text
    }
}

/// `len` characters of `alphabet`, derived from the test's name and the
/// placeholder text.
fn draw(test: &str, placeholder: &str, alphabet: &[u8], len: usize) -> String {
    let mut hasher = blake3::Hasher::new_derive_key("logredact rule tests: generated values");
    hasher.update(test.as_bytes());
    hasher.update(&[0]);
    hasher.update(placeholder.as_bytes());
    let mut reader = hasher.finalize_xof();
    // Bytes at or above the largest multiple of the alphabet's size are
    // skipped, so that every character is equally likely.
    let limit = 256 - 256 % alphabet.len();
    let mut out = String::with_capacity(len);
    let mut byte = [0u8];
    while out.len() < len {
        reader.fill(&mut byte);
        if usize::from(byte[0]) < limit {
            out.push(char::from(alphabet[usize::from(byte[0]) % alphabet.len()]));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_placeholder_same_value_in_one_test() {
        let mut generated = Generated::default();
        let input = generated.expand("t", "a={{hex:32}} b={{hex:32:b}} c={{hex:32}}");
        let output = generated.expand("t", "{{hex:32}}|{{hex:32:b}}");
        let values: Vec<&str> = input
            .split(' ')
            .map(|kv| kv.split_once('=').unwrap().1)
            .collect();
        assert_eq!(values[0], values[2]);
        assert_ne!(values[0], values[1]);
        assert_eq!(output, format!("{}|{}", values[0], values[1]));
        assert!(
            values
                .iter()
                .all(|v| v.len() == 32 && v.bytes().all(|b| b.is_ascii_hexdigit()))
        );
        // Another test draws other values; the same test the same again.
        assert_ne!(Generated::default().expand("u", "{{hex:32}}"), values[0]);
        assert_eq!(Generated::default().expand("t", "{{hex:32}}"), values[0]);
        assert_eq!(
            generated.conceal(&input),
            "a={{hex:32}} b={{hex:32:b}} c={{hex:32}}"
        );
    }

    #[test]
    fn kinds_draw_from_their_characters() {
        let mut generated = Generated::default();
        for (kind, alphabet) in KINDS {
            let value = generated.expand("t", &format!("{{{{{kind}:200}}}}"));
            assert_eq!(value.len(), 200);
            assert!(value.bytes().all(|b| alphabet.contains(&b)), "{kind}");
        }
    }

    #[test]
    fn other_braces_are_literal() {
        let mut generated = Generated::default();
        for text in ["{\"a\":{{\"b\":1}}}", "{{ x }}", "{{}}", "{{Hex:3}}", "{{"] {
            assert_eq!(check(text), Ok(()), "{text}");
            assert_eq!(generated.expand("t", text), text);
        }
    }

    #[test]
    fn malformed_generated_values_are_refused() {
        for (text, message) in [
            (
                "{{hx:32}}",
                "'{{hx:32}}': unknown kind 'hx' (one of hex, digits, upper_alnum, lower_alnum, alnum, word; write {{KIND:N}})",
            ),
            (
                "{{hex:0}}",
                "'{{hex:0}}': the length must be a number from 1 to 256",
            ),
            (
                "{{hex:257}}",
                "'{{hex:257}}': the length must be a number from 1 to 256",
            ),
            (
                "{{hex:x}}",
                "'{{hex:x}}': the length must be a number from 1 to 256",
            ),
            (
                "{{hex:3: }}",
                "'{{hex:3: }}': a label is letters, digits, '_' and '-' (write {{KIND:N:LABEL}})",
            ),
            ("x {{hex:32", "'{{hex' is not closed by '}}'"),
        ] {
            assert_eq!(check(text), Err(GenerateError(message.into())), "{text}");
        }
    }
}
