//! Types that hold secret bytes print only what cannot reveal them.

mod common;

use common::*;
use logredact::{DetectionMode, RuleSet, RuleSpec, Scanner, defaults};

/// No 12-character run of the token's hex digits appears in `text`.
fn assert_no_part_of(token: &str, text: &str) {
    let hex = &token[4..];
    for start in 0..=hex.len() - 12 {
        let run = &hex[start..start + 12];
        assert!(!text.contains(run), "{run:?} leaked into {text:?}");
    }
}

#[test]
fn a_scanner_holding_part_of_a_token_does_not_print_it() {
    let token = TokenGen::new(40).token();
    let mut scanner = Scanner::new(default_rules(), DetectionMode::Classify);
    let mut out = Vec::new();
    scanner.feed(format!("bearer {}", &token[..35]).as_bytes(), &mut out);
    assert_eq!(scanner.held_len(), 35);
    let debug = format!("{scanner:?}");
    assert!(debug.contains("held_bytes: 35"), "{debug}");
    assert_no_part_of(&token, &debug);
}

#[test]
fn rules_do_not_print_allow_listed_values() {
    let token = TokenGen::new(41).token();
    let spec = RuleSpec {
        allow: vec![token.clone()],
        ..defaults::databricks_pat()
    };
    assert_no_part_of(&token, &format!("{spec:?}"));
    let rules = RuleSet::new(vec![spec], test_key()).unwrap();
    assert_no_part_of(&token, &format!("{rules:?}"));
}

#[test]
fn detections_and_keys_print_only_fingerprints() {
    let token = TokenGen::new(42).token();
    let out = scan_whole(
        &default_rules(),
        DetectionMode::Classify,
        format!("{token}\n").as_bytes(),
    );
    let debug = format!("{:?}", out.detections);
    assert!(debug.contains(&test_key().fingerprint(token.as_bytes()).to_string()));
    assert_no_part_of(&token, &debug);
    let key = logredact::FingerprintKey::derive(token.as_bytes());
    assert_eq!(format!("{key:?}"), "FingerprintKey(<secret>)");
}
