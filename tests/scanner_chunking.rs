//! Property tests of the scanner core: for any input and any way of splitting
//! it into reads, the output is exactly the redaction of the whole input by
//! the `regex` crate (SPEC §2), the detections are exactly its matches, and
//! nothing but a possible match is ever held back (SPEC §3).

mod common;

use std::sync::Arc;

use common::*;
use logredact::{DetectionMode, RuleSet, RuleSpec, Scanner};
use proptest::prelude::*;

/// Input fragments rich in near-tokens: `dapi`, hex runs around 32 digits,
/// word and non-word bytes, multi-byte and invalid UTF-8, newlines.
fn fragment() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        3 => Just(b"dapi".to_vec()),
        3 => (28usize..36).prop_flat_map(|n| proptest::collection::vec(
            proptest::sample::select(b"0123456789abcdef".to_vec()), n)),
        2 => proptest::collection::vec(proptest::sample::select(b"0123456789abcdef".to_vec()), 1..6),
        2 => proptest::sample::select(vec![
            b" ".to_vec(), b"\n".to_vec(), b"-".to_vec(), b"=".to_vec(), b"\0".to_vec(), b"\r\n".to_vec(),
            b"x".to_vec(), b"_".to_vec(), b"D".to_vec(), b"A".to_vec(), b"F".to_vec(), b"da".to_vec(), b"dap".to_vec(),
            "é".as_bytes().to_vec(), "€".as_bytes().to_vec(), "😀".as_bytes().to_vec(),
            b"\xff".to_vec(), b"\x80".to_vec(), b"\xe2\x82".to_vec(),
        ]),
        1 => proptest::collection::vec(any::<u8>(), 1..4),
    ]
}

fn token_rich_input() -> impl Strategy<Value = Vec<u8>> {
    proptest::collection::vec(fragment(), 0..40).prop_map(|parts| parts.concat())
}

fn input_and_cuts() -> impl Strategy<Value = (Vec<u8>, Vec<usize>)> {
    token_rich_input().prop_flat_map(|input| {
        let len = input.len();
        (Just(input), proptest::collection::vec(0..=len, 0..12))
    })
}

/// Starts of the reference matches of the default rule.
fn reference_offsets(input: &[u8]) -> Vec<u64> {
    token_regex()
        .find_iter(input)
        .map(|m| m.start() as u64)
        .collect()
}

fn line_of(input: &[u8], offset: u64) -> u64 {
    1 + input[..offset as usize]
        .iter()
        .filter(|&&b| b == b'\n')
        .count() as u64
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 10_000, ..ProptestConfig::default() })]

    #[test]
    fn any_chunking_equals_the_whole_input_redacted((input, cuts) in input_and_cuts()) {
        let rules = default_rules();
        let expected = reference_redaction(&input);
        let chunked = scan_chunked(&rules, DetectionMode::Classify, &input, &cuts);
        prop_assert_eq!(&chunked.output, &expected);
        let offsets: Vec<u64> = chunked.detections.iter().map(|d| d.offset).collect();
        prop_assert_eq!(&offsets, &reference_offsets(&input));
        for d in &chunked.detections {
            prop_assert_eq!(d.line, line_of(&input, d.offset));
        }
        let masked_only = scan_chunked(&rules, DetectionMode::MaskOnly, &input, &cuts);
        prop_assert_eq!(&masked_only.output, &expected);
    }

    #[test]
    fn one_byte_at_a_time_equals_the_whole_input_redacted(input in token_rich_input()) {
        let rules = default_rules();
        let bytewise = scan_bytewise(&rules, DetectionMode::Classify, &input);
        prop_assert_eq!(&bytewise.output, &reference_redaction(&input));
        // Classification does not depend on the chunking either.
        let whole = scan_whole(&rules, DetectionMode::Classify, &input);
        prop_assert_eq!(&bytewise.detections, &whole.detections);
    }

    #[test]
    fn only_a_possible_match_is_held_back((input, cuts) in input_and_cuts()) {
        let rules = default_rules();
        let expected = reference_redaction(&input);
        let mut cuts = cuts;
        cuts.sort_unstable();
        let mut scanner = Scanner::new(Arc::clone(&rules), DetectionMode::MaskOnly);
        let mut out = Vec::new();
        let mut from = 0;
        for cut in cuts.into_iter().chain([input.len()]) {
            scanner.feed(&input[from..cut], &mut out);
            from = cut;
            // What has been written is final, and only an undecided tail that
            // could still be (part of) a token is held back.
            prop_assert!(expected.starts_with(&out));
            prop_assert!(scanner.held_len() <= rules.max_match_len() + 1);
            let held = &input[cut - scanner.held_len()..cut];
            prop_assert!(could_continue_a_token(&input[..cut - scanner.held_len()], held),
                "held {:?} after {:?}", String::from_utf8_lossy(held), String::from_utf8_lossy(&input[..cut]));
        }
        scanner.finish(&mut out);
        prop_assert_eq!(out, expected);
    }
}

/// Whether `held` (following `before`) could still be the start of a token,
/// or a complete token whose end the next byte decides.
fn could_continue_a_token(before: &[u8], held: &[u8]) -> bool {
    if held.is_empty() {
        return true;
    }
    let word = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
    if before.last().is_some_and(|&b| word(b)) {
        return false;
    }
    let prefix = b"dapi";
    let n = held.len().min(4);
    held[..n] == prefix[..n]
        && held.len() <= 36
        && held[n..]
            .iter()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
}

/// Several rules at once, including two that can match at the same position
/// and variable-length, greedy ones: leftmost-first across rules, the rule
/// listed first winning at the same start.
fn multi_rules() -> Vec<(&'static str, &'static str)> {
    vec![
        ("pat", r"\bdapi[0-9a-f]{32}\b"),
        ("ab", r"ab{1,6}c?"),
        ("bb", r"b{2,4}"),
        ("alt", r"xy|xyz"),
        ("num", r"\b[0-9]{2,5}(?:-[0-9]{1,3})?\b"),
        ("quote", r#""[a-z]{1,8}""#),
    ]
}

fn multi_reference(input: &[u8]) -> Vec<u8> {
    let specs = multi_rules();
    let joined: Vec<String> = specs.iter().map(|(_, p)| format!("({p})")).collect();
    let re = regex::bytes::Regex::new(&format!("(?-u:{})", joined.join("|"))).unwrap();
    re.replace_all(input, |caps: &regex::bytes::Captures<'_>| {
        let rule = (1..=specs.len()).find(|&i| caps.get(i).is_some()).unwrap();
        format!("<{}>", specs[rule - 1].0).into_bytes()
    })
    .into_owned()
}

fn multi_rule_set() -> Arc<RuleSet> {
    rules(
        multi_rules()
            .into_iter()
            .map(|(id, pattern)| RuleSpec {
                mask: format!("<{id}>"),
                ..RuleSpec::new(id, pattern)
            })
            .collect(),
    )
}

fn multi_fragment() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        4 => fragment(),
        4 => proptest::collection::vec(proptest::sample::select(b"abcxyz\"0123456789- \n".to_vec()), 1..10),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 5_000, ..ProptestConfig::default() })]

    #[test]
    fn several_rules_in_one_pass_match_the_regex_crate(
        (input, cuts) in proptest::collection::vec(multi_fragment(), 0..40)
            .prop_map(|p| p.concat())
            .prop_flat_map(|input| { let len = input.len(); (Just(input), proptest::collection::vec(0..=len, 0..12)) })
    ) {
        let rules = multi_rule_set();
        let expected = multi_reference(&input);
        prop_assert_eq!(&scan_chunked(&rules, DetectionMode::Classify, &input, &cuts).output, &expected);
        prop_assert_eq!(&scan_bytewise(&rules, DetectionMode::MaskOnly, &input).output, &expected);
    }
}
