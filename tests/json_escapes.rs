//! The JSON-escape rule pack: tokens right after a JSON escape sequence are
//! masked, and every line stays valid JSON with the same keys.

mod common;

use std::path::Path;
use std::sync::Arc;

use common::*;
use logredact::config::{Config, KeyOrigin};
use logredact::{DetectionMode, RuleSet};

fn rules_with_pack() -> Arc<RuleSet> {
    let dir = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/config/rules"));
    let config = Config::parse("include: [json-escaped.yaml]\n", "test config", Some(dir)).unwrap();
    Arc::new(
        config
            .compile(test_key(), &KeyOrigin::File("k".into()))
            .unwrap(),
    )
}

fn json_line(message: &str) -> String {
    let mut line =
        serde_json::to_string(&serde_json::json!({ "log": message, "level": "info" })).unwrap();
    line.push('\n');
    line
}

#[test]
fn the_default_rule_alone_misses_tokens_after_json_escapes() {
    // Why the pack exists: exactly as SPEC §1 defines it, \b does not fire
    // after the escape's letter.
    let token = TokenGen::new(700).token();
    let line = json_line(&format!("key\t{token}"));
    assert!(reference_redaction(line.as_bytes()) == line.as_bytes());
}

#[test]
fn tokens_after_every_json_escape_are_masked_and_the_json_stays_valid() {
    let rules = rules_with_pack();
    let mut tokens = TokenGen::new(701);
    for prefix in [
        "\n", "\t", "\r", "\u{8}", "\u{c}", "é", "\u{1}", "\"", "\\", "/", " ",
    ] {
        let token = tokens.token();
        let message = format!("Authorization: Bearer{prefix}{token} end");
        let line = json_line(&message);
        for output in [
            scan_whole(&rules, DetectionMode::MaskOnly, line.as_bytes()).output,
            scan_bytewise(&rules, DetectionMode::MaskOnly, line.as_bytes()).output,
        ] {
            let text = String::from_utf8(output).unwrap();
            assert!(!text.contains(&token[4..]), "{prefix:?}: {text}");
            let parsed: serde_json::Value =
                serde_json::from_str(&text).unwrap_or_else(|e| panic!("{prefix:?}: {e}: {text}"));
            let keys: Vec<&String> = parsed.as_object().unwrap().keys().collect();
            assert_eq!(keys, ["level", "log"]);
            let expected_prefix = match prefix {
                // serde_json escapes é only if asked; \u0001 is escaped and becomes U+FFFD.
                "\u{1}" => "\u{fffd}",
                other => other,
            };
            assert_eq!(
                parsed["log"],
                format!("Authorization: Bearer{expected_prefix}dapi**** end"),
                "{prefix:?}"
            );
        }
    }
}

#[test]
fn an_escaped_non_ascii_character_becomes_the_replacement_character() {
    let rules = rules_with_pack();
    let token = TokenGen::new(702).token();
    let line = format!("{{\"log\":\"caf\\u00e9{token}\"}}\n");
    let output = scan_whole(&rules, DetectionMode::MaskOnly, line.as_bytes()).output;
    assert_eq!(
        String::from_utf8(output).unwrap(),
        "{\"log\":\"caf\\ufffddapi****\"}\n"
    );
}

#[test]
fn escapes_without_a_token_are_untouched() {
    let rules = rules_with_pack();
    let line = "{\"log\":\"a\\nb\\tdapi0000 \\u00e9 \\ndapi\"}\n";
    assert_eq!(
        scan_whole(&rules, DetectionMode::MaskOnly, line.as_bytes()).output,
        line.as_bytes()
    );
}
