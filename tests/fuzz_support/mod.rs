//! The checks behind the fuzz targets, shared with the regression test that
//! replays the committed fuzz corpus on the stable toolchain. Each takes raw
//! bytes, so a corpus file is just an input.
#![allow(dead_code)]

use std::sync::{Arc, OnceLock};

use logredact::audit::Summary;
use logredact::config::{Config, KeyOrigin};
use logredact::{DetectionMode, FingerprintKey, RuleSet, RuleSpec, ScanSink, Scanner};

/// The rules the chunking check runs: the default rule and rules that can
/// match at the same position, greedily, and with variable length.
const RULES: [(&str, &str); 6] = [
    ("pat", r"\bdapi[0-9a-f]{32}\b"),
    ("ab", r"ab{1,6}c?"),
    ("bb", r"b{2,4}"),
    ("alt", r"xy|xyz"),
    ("num", r"\b[0-9]{2,5}(?:-[0-9]{1,3})?\b"),
    ("quote", r#""[a-z]{1,8}""#),
];

fn rule_set() -> &'static (Arc<RuleSet>, regex::bytes::Regex) {
    static RULES_AND_REFERENCE: OnceLock<(Arc<RuleSet>, regex::bytes::Regex)> = OnceLock::new();
    RULES_AND_REFERENCE.get_or_init(|| {
        let specs = RULES
            .iter()
            .map(|(id, pattern)| RuleSpec {
                mask: format!("<{id}>"),
                ..RuleSpec::new(*id, *pattern)
            })
            .collect();
        let rules =
            Arc::new(RuleSet::new(specs, FingerprintKey::derive(b"fuzz key material")).unwrap());
        let joined: Vec<String> = RULES.iter().map(|(_, p)| format!("({p})")).collect();
        let reference = regex::bytes::Regex::new(&format!("(?-u:{})", joined.join("|"))).unwrap();
        (rules, reference)
    })
}

/// The whole-input result: one regex over the joined rules, as SPEC §3 defines it.
pub fn reference(input: &[u8]) -> Vec<u8> {
    let (_, re) = rule_set();
    re.replace_all(input, |caps: &regex::bytes::Captures<'_>| {
        let rule = (1..=RULES.len()).find(|&i| caps.get(i).is_some()).unwrap();
        format!("<{}>", RULES[rule - 1].0).into_bytes()
    })
    .into_owned()
}

#[derive(Default)]
struct Collect {
    output: Vec<u8>,
    offsets: Vec<u64>,
}

impl ScanSink for Collect {
    fn write(&mut self, bytes: &[u8]) {
        self.output.extend_from_slice(bytes);
    }
    fn detection(&mut self, detection: logredact::Detection) {
        self.offsets.push(detection.offset);
    }
}

/// Input: 8 bytes of seed for the chunking, then the stream. Checks that
/// the chunked output (and the detections) equal the whole-input reference.
pub fn check_chunking(data: &[u8]) {
    if data.len() < 8 {
        return;
    }
    let (seed, input) = data.split_at(8);
    let mut state = u64::from_le_bytes(seed.try_into().unwrap()) | 1;
    let mut next = || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let bytewise = next() % 4 == 0;
    let (rules, re) = rule_set();
    for mode in [DetectionMode::MaskOnly, DetectionMode::Classify] {
        let mut scanner = Scanner::new(Arc::clone(rules), mode);
        let mut out = Collect::default();
        let mut at = 0;
        while at < input.len() {
            let len = if bytewise {
                1
            } else {
                1 + (next() % 64) as usize
            };
            let end = (at + len).min(input.len());
            scanner.feed(&input[at..end], &mut out);
            at = end;
        }
        scanner.finish(&mut out);
        assert!(
            out.output == reference(input),
            "chunked output differs from the whole-input reference"
        );
        if mode == DetectionMode::Classify {
            let expected: Vec<u64> = re.find_iter(input).map(|m| m.start() as u64).collect();
            assert_eq!(out.offsets, expected);
        }
    }
}

/// Any text as a configuration: a typed error or a configuration, never a panic.
pub fn check_config(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(config) = Config::parse(text, "fuzz.yaml", None) {
        let _ = config.compile(
            FingerprintKey::derive(b"fuzz key material"),
            &KeyOrigin::Environment,
        );
    }
}

/// Any bytes as an audit file: a summary or a typed error, never a panic.
pub fn check_audit_summary(data: &[u8]) {
    if let Ok(summary) = Summary::read(data, "fuzz.jsonl") {
        let mut sink = Vec::new();
        summary.write_table(&mut sink).unwrap();
        summary.write_json(&mut sink).unwrap();
    }
}

/// Any bytes as a msgpack record: an error, or a copy in which every `str`
/// and `bin` payload is the whole-input reference of that payload alone and
/// every other token is unchanged (the record read again has the same
/// structure), in both detection modes. Never a panic.
pub fn check_msgpack(data: &[u8]) {
    use logredact::scan::msgpack::{RecordRedactor, Token, token, walk};
    let (rules, _) = rule_set();
    for mode in [DetectionMode::MaskOnly, DetectionMode::Classify] {
        let mut redactor = RecordRedactor::new(Scanner::new(Arc::clone(rules), mode));
        let mut out = Vec::new();
        let Ok(len) = redactor.redact(data, 1, &mut out) else {
            assert!(out.is_empty(), "nothing is written for a value refused");
            continue;
        };
        assert_eq!(
            walk(&out, 1, |_, _, _, _| {}),
            Ok(out.len()),
            "one whole value"
        );
        // Token by token: payloads redacted alone, everything else equal.
        let (mut at_in, mut at_out) = (0, 0);
        while at_in < len {
            let (token_in, end_in) = token(data, at_in).unwrap();
            let (token_out, end_out) = token(&out, at_out).unwrap();
            match (token_in, token_out) {
                (
                    Token::Payload {
                        kind,
                        body: body_in,
                    },
                    Token::Payload {
                        kind: kind_out,
                        body: body_out,
                    },
                ) => {
                    assert_eq!(kind, kind_out);
                    assert!(
                        out[body_out..end_out] == reference(&data[body_in..end_in]),
                        "a payload differs from its reference"
                    );
                }
                (token_in, token_out) => {
                    assert_eq!(token_in, token_out);
                    assert_eq!(data[at_in..end_in], out[at_out..end_out]);
                }
            }
            at_in = end_in;
            at_out = end_out;
        }
        assert_eq!(at_out, out.len());
    }
}
