//! Classification of detections by their 300-character context (SPEC §4),
//! across chunk boundaries.

mod common;

use std::sync::Arc;

use common::*;
use logredact::{Confidence, Detection, DetectionMode, RuleSpec, Scanner, defaults};

fn names(terms: &[Arc<str>]) -> Vec<&str> {
    terms.iter().map(|t| &**t).collect()
}

/// Scans `parts` as successive chunks and returns the detections.
fn detections(parts: &[&[u8]]) -> Vec<Detection> {
    let rules = default_rules();
    let mut scanner = Scanner::new(rules, DetectionMode::Classify);
    let mut out = Collected::default();
    for part in parts {
        scanner.feed(part, &mut out);
    }
    scanner.finish(&mut out);
    out.detections
}

/// `chars` characters of neutral text that begins and ends with a space, so
/// that it never glues onto a token or a keyword.
fn filler(chars: usize) -> String {
    assert!(chars >= 2);
    format!(" {} ", "x".repeat(chars - 2))
}

#[test]
fn keyword_250_characters_before_in_an_earlier_chunk() {
    let token = TokenGen::new(10).token();
    let before = format!("Bearer{}", filler(244));
    assert_eq!(before.chars().count(), 250);
    let found = detections(&[before.as_bytes(), format!("{token} done\n").as_bytes()]);
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].confidence, Confidence::High);
    assert_eq!(names(&found[0].keywords), ["bearer"]);
    assert_eq!(found[0].offset, 250);
    assert_eq!(found[0].line, 1);
}

#[test]
fn keyword_250_characters_after_in_a_later_chunk() {
    let token = TokenGen::new(11).token();
    let first = format!("x {token}");
    let second = format!("{}workspace", filler(250));
    let found = detections(&[first.as_bytes(), second.as_bytes(), b" end"]);
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].confidence, Confidence::High);
    assert_eq!(names(&found[0].keywords), ["workspace"]);
}

#[test]
fn an_exclusion_wins_over_a_keyword() {
    let token = TokenGen::new(12).token();
    let text = format!("Example config: Authorization: Bearer {token}\n");
    let found = detections(&[text.as_bytes()]);
    assert_eq!(found[0].confidence, Confidence::Low);
    assert_eq!(names(&found[0].keywords), ["bearer", "authorization"]);
    assert_eq!(names(&found[0].exclusions), ["example"]);
}

#[test]
fn pat_does_not_fire_inside_path() {
    let token = TokenGen::new(13).token();
    let found = detections(&[format!("path={token} paths PATH_X\n").as_bytes()]);
    assert_eq!(found[0].confidence, Confidence::Medium);
    assert!(found[0].keywords.is_empty());
    let found = detections(&[format!("PAT={token}\n").as_bytes()]);
    assert_eq!(found[0].confidence, Confidence::High);
    assert_eq!(names(&found[0].keywords), ["pat"]);
}

#[test]
fn no_context_is_medium_and_placeholders_are_low() {
    let token = TokenGen::new(14).token();
    let found = detections(&[token.as_bytes()]);
    assert_eq!(found[0].confidence, Confidence::Medium);
    assert!(!found[0].placeholder);
    for placeholder in [
        "dapi00000000000000000000000000000000",
        "dapi0123456789abcdef0123456789abcdef",
    ] {
        let found = detections(&[format!("bearer {placeholder}").as_bytes()]);
        assert!(found[0].placeholder);
        assert_eq!(found[0].confidence, Confidence::Low);
        assert_eq!(names(&found[0].keywords), ["bearer"]);
    }
}

#[test]
fn context_is_counted_in_unicode_scalars() {
    let token = TokenGen::new(15).token();
    // 'é' is 2 bytes and '€' 3: with 293 of them the keyword begins exactly
    // 300 characters before the token, over 700 bytes away.
    let wide: String = "é€".chars().cycle().take(293).collect();
    let near = format!("bearer {wide}{token}");
    let found = detections(&[near.as_bytes()]);
    assert_eq!(
        names(&found[0].keywords),
        ["bearer"],
        "keyword within 300 characters"
    );
    // One character more and the keyword's first letter falls outside.
    let far = format!("bearer {wide}€{token}");
    let found = detections(&[far.as_bytes()]);
    assert!(
        found[0].keywords.is_empty(),
        "keyword beyond 300 characters"
    );
    // An invalid byte counts as one character.
    let invalid = [&b"bearer "[..], &[0xff; 293], token.as_bytes()].concat();
    assert_eq!(names(&detections(&[&invalid])[0].keywords), ["bearer"]);
    let invalid = [&b"bearer "[..], &[0xff; 294], token.as_bytes()].concat();
    assert!(detections(&[&invalid])[0].keywords.is_empty());
}

#[test]
fn after_context_ends_300_characters_after_the_match() {
    let token = TokenGen::new(16).token();
    // The keyword's last letter is the 300th character after the match.
    let inside = format!("{token}{}bearer", filler(294));
    assert_eq!(
        names(&detections(&[inside.as_bytes()])[0].keywords),
        ["bearer"]
    );
    let outside = format!("{token}{}bearer", filler(295));
    assert!(detections(&[outside.as_bytes()])[0].keywords.is_empty());
}

#[test]
fn a_detection_is_reported_once_its_after_context_is_complete() {
    let token = TokenGen::new(17).token();
    let rules = default_rules();
    let mut scanner = Scanner::new(rules, DetectionMode::Classify);
    let mut out = Collected::default();
    scanner.feed(format!("{token} ").as_bytes(), &mut out);
    // The redacted bytes are out at once; the detection waits for context.
    assert_eq!(out.output, b"dapi**** ");
    assert!(out.detections.is_empty());
    for _ in 0..298 {
        scanner.feed("é".as_bytes(), &mut out);
    }
    assert!(out.detections.is_empty(), "299 characters after the match");
    scanner.feed(b"x", &mut out);
    assert_eq!(out.detections.len(), 1, "300 characters after the match");
    // At the end of the stream a shorter context is complete.
    let mut scanner = Scanner::new(default_rules(), DetectionMode::Classify);
    let mut out = Collected::default();
    scanner.feed(format!("{token} bearer").as_bytes(), &mut out);
    assert!(out.detections.is_empty());
    scanner.finish(&mut out);
    assert_eq!(names(&out.detections[0].keywords), ["bearer"]);
}

#[test]
fn offsets_lines_and_fingerprints_across_chunks() {
    let mut tokens = TokenGen::new(18);
    let (a, b) = (tokens.token(), tokens.token());
    let text = format!("one\ntwo {a}\r\nthree\n\nfive {b} {a}\n");
    let whole = detections(&[text.as_bytes()]);
    let split: Vec<&[u8]> = text.as_bytes().chunks(7).collect();
    assert_eq!(detections(&split), whole);
    let summary: Vec<(u64, u64)> = whole.iter().map(|d| (d.offset, d.line)).collect();
    let first = text.find(&a).unwrap() as u64;
    let second = text.find(&b).unwrap() as u64;
    assert_eq!(summary, [(first, 2), (second, 5), (second + 37, 5)]);
    assert_eq!(whole[0].fingerprint, whole[2].fingerprint);
    assert_ne!(whole[0].fingerprint, whole[1].fingerprint);
    assert_eq!(whole[0].fingerprint, test_key().fingerprint(a.as_bytes()));
    assert!(
        whole
            .iter()
            .all(|d| d.masked && &*d.rule == defaults::DATABRICKS_PAT)
    );
}

#[test]
fn allow_listed_values_pass_unmasked_and_are_reported() {
    let placeholder = "dapi0123456789abcdef0123456789abcdef";
    let token = TokenGen::new(19).token();
    let spec = RuleSpec {
        allow: vec![placeholder.to_string()],
        ..defaults::databricks_pat()
    };
    let rules = rules(vec![spec]);
    let input = format!("{placeholder} {token}");
    let out = scan_bytewise(&rules, DetectionMode::Classify, input.as_bytes());
    assert_eq!(out.output, format!("{placeholder} dapi****").into_bytes());
    let masked: Vec<bool> = out.detections.iter().map(|d| d.masked).collect();
    assert_eq!(masked, [false, true]);
}

#[test]
fn fingerprint_masks() {
    let token = TokenGen::new(20).token();
    let spec = RuleSpec {
        mask: "dapi****{fingerprint}".into(),
        ..defaults::databricks_pat()
    };
    let rules = rules(vec![spec]);
    let out = scan_whole(
        &rules,
        DetectionMode::MaskOnly,
        format!("a {token} b").as_bytes(),
    );
    let fingerprint = test_key().fingerprint(token.as_bytes());
    assert_eq!(
        out.output,
        format!("a dapi****{fingerprint} b").into_bytes()
    );
}
