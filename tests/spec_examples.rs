//! Every example of SPEC §1 and §2, through the scanner core, whole and one
//! byte at a time.

mod common;

use common::*;
use logredact::DetectionMode;

/// Redacts `input` whole and byte by byte; both must agree.
fn redact(input: &[u8]) -> Vec<u8> {
    let rules = default_rules();
    let whole = scan_whole(&rules, DetectionMode::MaskOnly, input).output;
    let bytewise = scan_bytewise(&rules, DetectionMode::MaskOnly, input).output;
    assert_eq!(whole, bytewise, "chunking changed the output for {input:?}");
    whole
}

#[test]
fn the_documented_tokens_match() {
    for token in [
        "dapi00000000000000000000000000000000",
        "dapiaabbccdd11223344556677889900abcd",
        "dapi0123456789abcdef0123456789abcdef",
    ] {
        assert_eq!(redact(token.as_bytes()), b"dapi****");
        assert_eq!(
            redact(format!("token={token}\n").as_bytes()),
            b"token=dapi****\n"
        );
    }
}

#[test]
fn too_short_or_other_formats_do_not_match() {
    for text in ["dapi0000", "databricks-token=some-other-format", "dapi"] {
        assert_eq!(redact(text.as_bytes()), text.as_bytes());
    }
}

#[test]
fn a_suffix_after_a_non_word_byte_stays() {
    let mut tokens = TokenGen::new(1);
    let token = tokens.token();
    assert_eq!(redact(format!("{token}-2").as_bytes()), b"dapi****-2");
}

#[test]
fn thirty_three_hex_digits_or_a_word_byte_before_is_no_match() {
    let mut tokens = TokenGen::new(2);
    let token = tokens.token();
    for text in [
        format!("{token}a"),
        format!("{token}0"),
        format!("x{token}"),
        format!("_{token}"),
        format!("9{token} "),
        format!("{token}_"),
        format!("{token}G"),
    ] {
        assert_eq!(redact(text.as_bytes()), text.as_bytes(), "{text}");
    }
}

#[test]
fn matching_is_case_sensitive() {
    let mut tokens = TokenGen::new(3);
    // At least one hex letter, so that upper-casing changes the digits.
    let hex = format!("a{}", tokens.hex(31));
    for text in [
        format!("DAPI{hex}"),
        format!("Dapi{hex}"),
        format!("dapi{}", hex.to_uppercase()),
    ] {
        assert_eq!(redact(text.as_bytes()), text.as_bytes(), "{text}");
    }
    assert_eq!(redact(format!("dapi{hex}").as_bytes()), b"dapi****");
}

#[test]
fn any_byte_outside_ascii_word_bytes_is_a_boundary() {
    let mut tokens = TokenGen::new(4);
    let token = tokens.token();
    let mut input = Vec::new();
    let mut expected = Vec::new();
    for boundary in [
        &b"\xc3\xa9"[..],
        b"\xff",
        b"\0",
        b"\r",
        b"\x80",
        b"-",
        b"=",
        b"\"",
        b"\t",
    ] {
        for part in [boundary, token.as_bytes(), boundary] {
            input.extend_from_slice(part);
        }
        for part in [boundary, &b"dapi****"[..], boundary] {
            expected.extend_from_slice(part);
        }
    }
    assert_eq!(redact(&input), expected);
}

#[test]
fn adjacent_and_repeated_tokens_are_each_masked() {
    let mut tokens = TokenGen::new(5);
    let (a, b) = (tokens.token(), tokens.token());
    assert_eq!(redact(format!("{a} {b}").as_bytes()), b"dapi**** dapi****");
    // No boundary between them: 68 word bytes are not a token.
    let glued = format!("{a}{b}");
    assert_eq!(redact(glued.as_bytes()), glued.as_bytes());
    assert_eq!(
        redact(format!("{a}\n{a}\n").as_bytes()),
        b"dapi****\ndapi****\n"
    );
}

#[test]
fn every_other_byte_is_written_unchanged() {
    let mut tokens = TokenGen::new(6);
    let token = tokens.token();
    let input = format!("\r\n\n  line one\r\nbearer {token}\r\n\n\u{0}tail without newline");
    let expected = "\r\n\n  line one\r\nbearer dapi****\r\n\n\u{0}tail without newline";
    assert_eq!(redact(input.as_bytes()), expected.as_bytes());
    assert_eq!(redact(b""), b"");
    assert_eq!(redact(b"\n"), b"\n");
}

#[test]
fn a_stream_ending_inside_a_partial_token_is_written_as_is() {
    let mut tokens = TokenGen::new(7);
    let token = tokens.token();
    for len in [1, 3, 4, 20, 35] {
        let input = format!("x {}", &token[..len]);
        assert_eq!(redact(input.as_bytes()), input.as_bytes());
    }
    // A complete token at the very end is decided by the end of the stream.
    assert_eq!(redact(format!("x {token}").as_bytes()), b"x dapi****");
}
