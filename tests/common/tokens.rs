//! Test tokens and the reference redaction every output is compared with.

use std::sync::Arc;

use logredact::{DetectionMode, FingerprintKey, RuleSet, RuleSpec, ScanSink, Scanner, defaults};

/// A deterministic generator of test tokens, so that no real-looking token is
/// ever committed.
pub struct TokenGen(u64);

impl TokenGen {
    pub fn new(seed: u64) -> TokenGen {
        TokenGen(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1)
    }

    pub fn next_u64(&mut self) -> u64 {
        // xorshift64*
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// `n` random lower-case hex digits.
    pub fn hex(&mut self, n: usize) -> String {
        (0..n)
            .map(|_| char::from(b"0123456789abcdef"[(self.next_u64() % 16) as usize]))
            .collect()
    }

    /// A random Databricks-shaped token.
    pub fn token(&mut self) -> String {
        format!("dapi{}", self.hex(32))
    }
}

/// Log lines with tokens, a client's whole stream.
pub fn client_stream(client: u64, lines: usize) -> Vec<u8> {
    let mut tokens = TokenGen::new(1000 + client);
    let mut out = format!("client {client} starts\n").into_bytes();
    for line in 0..lines {
        let text = match tokens.next_u64() % 3 {
            0 => format!(
                "client {client} line {line} Authorization: Bearer {}\n",
                tokens.token()
            ),
            1 => format!(
                "{{\"client\":{client},\"line\":{line},\"token\":\"{}\",\"near\":\"dapi{}\"}}\n",
                tokens.token(),
                tokens.hex(31)
            ),
            _ => format!("client {client} line {line} nothing secret\n"),
        };
        out.extend_from_slice(text.as_bytes());
    }
    out
}

/// The documentation placeholders that may appear token-shaped in committed
/// files (SPEC §1).
pub const PLACEHOLDER_TOKENS: [&str; 3] = [
    "dapi00000000000000000000000000000000",
    "dapi0123456789abcdef0123456789abcdef",
    "dapiaabbccdd11223344556677889900abcd",
];

/// Fails unless every token-shaped string in `bytes` (the file at `path`)
/// is one of the documentation placeholders.
pub fn assert_only_placeholder_tokens(path: &std::path::Path, bytes: &[u8]) {
    for found in token_regex().find_iter(bytes) {
        let token = String::from_utf8_lossy(found.as_bytes());
        assert!(
            PLACEHOLDER_TOKENS.contains(&token.as_ref()),
            "{}: a token-shaped string that is not a documentation placeholder",
            path.display()
        );
    }
}

/// The default rule set with a fixed key.
pub fn default_rules() -> Arc<RuleSet> {
    Arc::new(RuleSet::new(defaults::default_rules(), test_key()).unwrap())
}

pub fn test_key() -> FingerprintKey {
    FingerprintKey::derive(b"test key")
}

pub fn rules(specs: Vec<RuleSpec>) -> Arc<RuleSet> {
    Arc::new(RuleSet::new(specs, test_key()).unwrap())
}

/// The default rule written for the `regex` crate, independently of the
/// scanner's own compilation of it.
pub fn token_regex() -> regex::bytes::Regex {
    regex::bytes::Regex::new(r"(?-u:\b)dapi[0-9a-f]{32}(?-u:\b)").unwrap()
}

/// The reference: the default rule applied to the whole input at once by the
/// `regex` crate.
pub fn reference_redaction(input: &[u8]) -> Vec<u8> {
    token_regex()
        .replace_all(input, &b"dapi****"[..])
        .into_owned()
}

/// Output and detections of a scanner.
#[derive(Default)]
pub struct Collected {
    pub output: Vec<u8>,
    pub detections: Vec<logredact::Detection>,
}

impl ScanSink for Collected {
    fn write(&mut self, bytes: &[u8]) {
        self.output.extend_from_slice(bytes);
    }
    fn detection(&mut self, detection: logredact::Detection) {
        self.detections.push(detection);
    }
}

/// Scans `input` split at `cuts` (offsets, any order, may repeat).
pub fn scan_chunked(
    rules: &Arc<RuleSet>,
    mode: DetectionMode,
    input: &[u8],
    cuts: &[usize],
) -> Collected {
    let mut cuts: Vec<usize> = cuts.iter().map(|&c| c.min(input.len())).collect();
    cuts.sort_unstable();
    let mut scanner = Scanner::new(Arc::clone(rules), mode);
    let mut out = Collected::default();
    let mut from = 0;
    for cut in cuts.into_iter().chain([input.len()]) {
        scanner.feed(&input[from..cut], &mut out);
        from = cut;
    }
    scanner.finish(&mut out);
    out
}

/// Scans `input` one byte at a time.
pub fn scan_bytewise(rules: &Arc<RuleSet>, mode: DetectionMode, input: &[u8]) -> Collected {
    let cuts: Vec<usize> = (1..input.len()).collect();
    scan_chunked(rules, mode, input, &cuts)
}

/// Scans `input` in one piece.
pub fn scan_whole(rules: &Arc<RuleSet>, mode: DetectionMode, input: &[u8]) -> Collected {
    scan_chunked(rules, mode, input, &[])
}
