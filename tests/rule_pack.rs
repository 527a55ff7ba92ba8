//! The optional rule pack `config/rules/common-credentials.yaml`, loaded
//! through the real configuration loader after the built-in databricks-pat
//! rule.
//!
//! Every rule is checked against credentials built at test time from the
//! issuer's published format (never a literal credential: secret scanners must
//! have nothing to find in this file) and against near misses — wrong prefix,
//! wrong case, too short, too long, wrong character set, a word byte glued on
//! either side — that must pass through unchanged. Every case is scanned whole
//! and one byte at a time, in both detection modes, and must give the same
//! bytes and name the same rules.

mod common;

use std::path::Path;
use std::sync::{Arc, OnceLock};

use common::*;
use logredact::config::{Config, KeyOrigin};
use logredact::{Confidence, DetectionMode, MAX_MATCH_LEN, RuleSet};

const DIGITS: &[u8] = b"0123456789";
const UPPER_ALNUM: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ";
const BASE36: &[u8] = b"0123456789abcdefghijklmnopqrstuvwxyz";
const BASE62: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
/// `[0-9A-Za-z_]`: base64url without '-', i.e. only word bytes.
const WORD: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz_";
const BASE64URL: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz_-";
/// The base64url encoding table, in RFC 4648 order.
const BASE64URL_TABLE: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

const PACK_IDS: [&str; 9] = [
    "aws-access-key-id",
    "github-token",
    "github-fine-grained-pat",
    "gitlab-pat",
    "npm-access-token",
    "slack-token",
    "stripe-secret-key",
    "google-api-key",
    "jwt",
];

fn rules_dir() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/config/rules"))
}

fn pack_config() -> Config {
    Config::parse(
        "include: [common-credentials.yaml]\n",
        "test config",
        Some(rules_dir()),
    )
    .unwrap()
}

fn compile(config: &Config) -> RuleSet {
    config
        .compile(test_key(), &KeyOrigin::File("k".into()))
        .unwrap()
}

/// The built-in rule followed by the pack, compiled once for this file.
fn pack_rules() -> Arc<RuleSet> {
    static RULES: OnceLock<Arc<RuleSet>> = OnceLock::new();
    Arc::clone(RULES.get_or_init(|| Arc::new(compile(&pack_config()))))
}

/// `n` bytes drawn from `alphabet`.
fn pick(rng: &mut TokenGen, alphabet: &[u8], n: usize) -> String {
    (0..n)
        .map(|_| char::from(alphabet[(rng.next_u64() % alphabet.len() as u64) as usize]))
        .collect()
}

/// Unpadded base64url (RFC 4648 section 5), as JWTs use it.
fn base64url(bytes: &[u8]) -> String {
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, &b)| n | (u32::from(b) << (16 - 8 * i)));
        for i in 0..=chunk.len() {
            out.push(char::from(
                BASE64URL_TABLE[((n >> (18 - 6 * i)) & 63) as usize],
            ));
        }
    }
    out
}

/// Scans `input` whole and one byte at a time, in both modes: the output must
/// be `expected`, byte for byte, and the detections must name `ids` in order.
fn check(input: &str, expected: &str, ids: &[&str]) {
    let rules = pack_rules();
    for mode in [DetectionMode::MaskOnly, DetectionMode::Classify] {
        let runs = [
            ("whole", scan_whole(&rules, mode, input.as_bytes())),
            ("bytewise", scan_bytewise(&rules, mode, input.as_bytes())),
        ];
        for (how, got) in runs {
            assert_eq!(
                String::from_utf8(got.output).unwrap(),
                expected,
                "{how}, {mode:?}, input {input:?}"
            );
            if mode == DetectionMode::Classify {
                let found: Vec<&str> = got.detections.iter().map(|d| &*d.rule).collect();
                assert_eq!(found, ids, "{how}, input {input:?}");
            }
        }
    }
}

/// `input` must come out exactly as it went in, with no detection.
fn unchanged(input: &str) {
    check(input, input, &[]);
}

/// `value` is one credential of `id`: masked as `mask` on its own, between
/// delimiters, at the very start and at the very end of the stream.
fn masked(value: &str, mask: &str, id: &str) {
    check(value, mask, &[id]);
    check(
        &format!("key={value} end\n"),
        &format!("key={mask} end\n"),
        &[id],
    );
    check(
        &format!("\"{value}\",'{value}'"),
        &format!("\"{mask}\",'{mask}'"),
        &[id, id],
    );
    check(
        &format!("{value}\nnext line"),
        &format!("{mask}\nnext line"),
        &[id],
    );
    check(&format!("token: {value}"), &format!("token: {mask}"), &[id]);
}

#[test]
fn the_pack_follows_the_default_rule() {
    let config = pack_config();
    let ids: Vec<&str> = config.rules.iter().map(|r| r.id.as_str()).collect();
    let mut expected = vec!["databricks-pat"];
    expected.extend(PACK_IDS);
    assert_eq!(ids, expected);
    for rule in &config.rules[1..] {
        assert_eq!(
            rule.exclusions,
            ["template", "example", "placeholder", "sample"],
            "{}",
            rule.id
        );
        assert!(!rule.keywords.is_empty(), "{}", rule.id);
        assert!(rule.allow.is_empty(), "{}", rule.id);
        assert_eq!(rule.window, 300, "{}", rule.id);
        assert!(rule.mask.ends_with("****"), "{}", rule.id);
        assert!(!rule.mask.contains('{'), "{}", rule.id);
    }
    let rules = pack_rules();
    assert_eq!(rules.ids().collect::<Vec<_>>(), expected);
    assert!(rules.max_match_len() <= MAX_MATCH_LEN);
}

/// Every rule of the pack is in one dense DFA with the default rule. A pattern
/// that let other rules' prefixes start inside a long counted body would make
/// that DFA blow up (the loader refuses it above 64 MB, after many seconds);
/// the pack compiles in a fraction of a second.
#[test]
fn the_pack_compiles_into_one_rule_set() {
    let rules = compile(&pack_config());
    assert_eq!(rules.ids().count(), 10);
}

#[test]
fn the_default_configuration_stays_databricks_only() {
    let path = Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/config/logredact.yaml"
    ));
    let config = Config::load(path).unwrap();
    let ids: Vec<&str> = config.rules.iter().map(|r| r.id.as_str()).collect();
    assert_eq!(ids, ["databricks-pat"]);
    let builtin: Vec<String> = Config::builtin().rules.into_iter().map(|r| r.id).collect();
    assert_eq!(builtin, ["databricks-pat"]);
}

#[test]
fn databricks_tokens_are_still_masked_with_the_pack() {
    let token = TokenGen::new(1).token();
    masked(&token, "dapi****", "databricks-pat");
    unchanged(&format!("x{token}"));
}

#[test]
fn aws_access_key_ids() {
    let mut rng = TokenGen::new(100);
    for prefix in ["AKIA", "ASIA"] {
        for _ in 0..4 {
            let id = format!("{prefix}{}", pick(&mut rng, UPPER_ALNUM, 16));
            masked(&id, "aws-access-key-id****", "aws-access-key-id");
            check(
                &format!("AWS_ACCESS_KEY_ID={id}\n"),
                "AWS_ACCESS_KEY_ID=aws-access-key-id****\n",
                &["aws-access-key-id"],
            );
        }
    }
    let body = pick(&mut rng, UPPER_ALNUM, 16);
    // Other IAM unique-ID prefixes (users, roles) are not keys.
    unchanged(&format!("user AIDA{body} role AROA{body} end"));
    unchanged(&format!("key=AKIB{body} end"));
    unchanged(&format!("key=akia{body} end"));
    unchanged(&format!("key=Akia{body} end"));
    unchanged(&format!("key=AKIA{} end", &body[..15]));
    unchanged(&format!("key=AKIA{body}7 end"));
    unchanged(&format!("key=AKIA{body}x end"));
    unchanged(&format!("key=AKIA{body}_ end"));
    unchanged(&format!("key=xAKIA{body} end"));
    unchanged(&format!("key=_AKIA{body} end"));
    unchanged(&format!("key=9AKIA{body} end"));
    unchanged(&format!("key=AKIA{}a end", &body[..15]));
    unchanged(&format!("key=AKIA{}- end", &body[..15]));
}

#[test]
fn github_classic_tokens() {
    let mut rng = TokenGen::new(200);
    for prefix in ["ghp_", "gho_", "ghu_", "ghs_", "ghr_"] {
        for _ in 0..3 {
            let token = format!("{prefix}{}", pick(&mut rng, BASE62, 36));
            masked(&token, "github-token****", "github-token");
        }
    }
    let body = pick(&mut rng, BASE62, 36);
    unchanged(&format!("t=ghx_{body} end"));
    unchanged(&format!("t=gha_{body} end"));
    unchanged(&format!("t=GHP_{body} end"));
    unchanged(&format!("t=ghp-{body} end"));
    unchanged(&format!("t=ghp{body} end"));
    unchanged(&format!("t=ghp_{} end", &body[..35]));
    unchanged(&format!("t=ghp_{body}Z end"));
    unchanged(&format!("t=ghp_{body}_ end"));
    unchanged(&format!("t=xghp_{body} end"));
    unchanged(&format!("t=_ghp_{body} end"));
    unchanged(&format!("t=ghp_{}_9 end", &body[..34]));
    unchanged(&format!("t=ghp_{}-9 end", &body[..34]));
}

#[test]
fn github_fine_grained_personal_access_tokens() {
    let mut rng = TokenGen::new(300);
    for _ in 0..4 {
        let token = format!(
            "github_pat_{}_{}",
            pick(&mut rng, BASE62, 22),
            pick(&mut rng, BASE62, 59)
        );
        masked(&token, "github_pat_****", "github-fine-grained-pat");
    }
    let (a, b) = (pick(&mut rng, BASE62, 22), pick(&mut rng, BASE62, 59));
    unchanged(&format!("t=github_pat_{}_{b} end", &a[..21]));
    unchanged(&format!("t=github_pat_{a}_{} end", &b[..58]));
    unchanged(&format!("t=github_pat_{a}_{b}Q end"));
    unchanged(&format!("t=github_pat_{a}{b} end"));
    unchanged(&format!("t=github_pat_{a}-{b} end"));
    unchanged(&format!("t=GITHUB_PAT_{a}_{b} end"));
    unchanged(&format!("t=github-pat-{a}_{b} end"));
    unchanged(&format!("t=xgithub_pat_{a}_{b} end"));
    unchanged(&format!("t=github_pat_{}-_{b} end", &a[..21]));
}

#[test]
fn gitlab_personal_access_tokens() {
    let mut rng = TokenGen::new(400);
    for _ in 0..4 {
        // Legacy: 20 characters of [0-9A-Za-z_-], '-' and '_' included.
        let body = format!(
            "{}-{}_{}",
            pick(&mut rng, BASE62, 6),
            pick(&mut rng, BASE62, 6),
            pick(&mut rng, BASE64URL, 6)
        );
        assert_eq!(body.len(), 20);
        masked(&format!("glpat-{body}"), "glpat-****", "gitlab-pat");
        // Routable: a base64url payload, then '.' + 9 base36 characters, or
        // '.' + a 2-character version + '.' + 9.
        let len = 27 + (rng.next_u64() % 20) as usize;
        let payload = pick(&mut rng, BASE64URL, len);
        let crc = pick(&mut rng, BASE36, 9);
        masked(
            &format!("glpat-{payload}.{crc}"),
            "glpat-****",
            "gitlab-pat",
        );
        masked(
            &format!("glpat-{payload}.01.{crc}"),
            "glpat-****",
            "gitlab-pat",
        );
    }
    let body = pick(&mut rng, WORD, 20);
    unchanged(&format!("t=glpat-{} end", &body[..19]));
    unchanged(&format!("t=glpat_{body} end"));
    unchanged(&format!("t=GLPAT-{body} end"));
    unchanged(&format!("t=Glpat-{body} end"));
    unchanged(&format!("t=glpa-{body} end"));
    unchanged(&format!("t=xglpat-{body} end"));
    unchanged(&format!("t=_glpat-{body} end"));
    unchanged(&format!("t=glpat-{}+{} end", &body[..10], &body[10..]));
    // A value too short to be a token whose '-' is followed by a word byte is
    // masked up to that '-' (see the pack's header comment).
    check(
        "t=glpat-abc-def end",
        "t=glpat-****def end",
        &["gitlab-pat"],
    );
}

#[test]
fn npm_access_tokens() {
    let mut rng = TokenGen::new(500);
    for _ in 0..4 {
        let token = format!("npm_{}", pick(&mut rng, BASE62, 36));
        masked(&token, "npm_****", "npm-access-token");
        check(
            &format!("//registry.npmjs.org/:_authToken={token}\n"),
            "//registry.npmjs.org/:_authToken=npm_****\n",
            &["npm-access-token"],
        );
    }
    let body = pick(&mut rng, BASE62, 36);
    unchanged(&format!("t=npm_{} end", &body[..35]));
    unchanged(&format!("t=npm_{body}A end"));
    unchanged(&format!("t=npm_{body}_ end"));
    unchanged(&format!("t=NPM_{body} end"));
    unchanged(&format!("t=npm-{body} end"));
    unchanged(&format!("t=npmx{body} end"));
    unchanged(&format!("t=xnpm_{body} end"));
    unchanged(&format!("t=npm_{}_{} end", &body[..20], &body[20..35]));
}

#[test]
fn slack_tokens() {
    let mut rng = TokenGen::new(600);
    for _ in 0..3 {
        let team = pick(&mut rng, DIGITS, 11);
        let bot = format!(
            "xoxb-{team}-{}-{}",
            pick(&mut rng, DIGITS, 13),
            pick(&mut rng, BASE62, 24)
        );
        masked(&bot, "slack-token****", "slack-token");
        let user = format!(
            "xoxp-{team}-{}-{}-{}",
            pick(&mut rng, DIGITS, 12),
            pick(&mut rng, DIGITS, 13),
            rng.hex(32)
        );
        masked(&user, "slack-token****", "slack-token");
        let app = format!(
            "xapp-1-A{}-{}-{}",
            pick(&mut rng, UPPER_ALNUM, 10),
            pick(&mut rng, DIGITS, 13),
            rng.hex(64)
        );
        masked(&app, "slack-token****", "slack-token");
        for prefix in ["xoxa-2", "xoxe-1", "xoxr-1", "xoxs-1", "xoxc-1"] {
            let token = format!(
                "{prefix}-{}-{}",
                pick(&mut rng, DIGITS, 10),
                pick(&mut rng, BASE62, 40)
            );
            masked(&token, "slack-token****", "slack-token");
        }
        // Configuration tokens: xoxe.xoxp-...; the xoxp- part is the token.
        let config = format!("xoxe.xoxp-1-{}", pick(&mut rng, BASE62, 100));
        check(
            &format!("cfg={config} end"),
            "cfg=xoxe.slack-token**** end",
            &["slack-token"],
        );
    }
    // The longest token (prefix + 201) is masked whole; a longer run is
    // masked on its first 206 bytes.
    let long = format!("xoxb-1{}", pick(&mut rng, BASE62, 200));
    masked(&long, "slack-token****", "slack-token");
    check(
        &format!("{long}Zz end"),
        "slack-token****Zz end",
        &["slack-token"],
    );
    let rest = format!(
        "{}-{}-{}",
        pick(&mut rng, DIGITS, 11),
        pick(&mut rng, DIGITS, 13),
        pick(&mut rng, BASE62, 24)
    );
    unchanged(&format!("t=xoxz-{rest} end"));
    unchanged(&format!("t=xoxo-{rest} end"));
    unchanged(&format!("t=XOXB-{rest} end"));
    unchanged(&format!("t=xoxB-{rest} end"));
    unchanged(&format!("t=xoxb_{rest} end"));
    unchanged(&format!("t=xox-{rest} end"));
    unchanged(&format!("t=xoxb-T{rest} end"));
    unchanged("t=xoxb-your_bot_token end");
    unchanged(&format!("t=axoxb-{rest} end"));
    unchanged(&format!("t=_xoxb-{rest} end"));
    unchanged("t=xoxb-123456789 end");
}

#[test]
fn stripe_secret_and_restricted_keys() {
    let mut rng = TokenGen::new(700);
    for prefix in ["sk_live_", "sk_test_", "rk_live_", "rk_test_"] {
        for len in [10, 24, 99, 128, 247] {
            let key = format!("{prefix}{}", pick(&mut rng, BASE62, len));
            masked(&key, "stripe-secret-key****", "stripe-secret-key");
        }
    }
    // A run longer than 255 bytes is masked on its first 255.
    let key = format!("sk_live_{}", pick(&mut rng, BASE62, 250));
    check(
        &format!("k={key} end"),
        &format!("k=stripe-secret-key****{} end", &key[255..]),
        &["stripe-secret-key"],
    );
    let body = pick(&mut rng, BASE62, 99);
    // Publishable keys are public.
    unchanged(&format!("k=pk_live_{body} end"));
    unchanged(&format!("k=pk_test_{body} end"));
    unchanged(&format!("k=sk_prod_{body} end"));
    unchanged(&format!("k=SK_LIVE_{body} end"));
    unchanged(&format!("k=sk_LIVE_{body} end"));
    unchanged(&format!("k=sk-live-{body} end"));
    unchanged(&format!("k=sk_live{body} end"));
    unchanged(&format!("k=xsk_live_{body} end"));
    unchanged(&format!("k=_rk_test_{body} end"));
    unchanged(&format!("k=sk_live_{} end", &body[..9]));
    unchanged(&format!("k=sk_live_{}-{} end", &body[..9], &body[9..30]));
}

#[test]
fn google_api_keys() {
    let mut rng = TokenGen::new(800);
    for _ in 0..6 {
        // 35 characters of [0-9A-Za-z_-] with a '-' followed by a word byte
        // inside, which the rule's early-match alternative must not cut short.
        let body = format!(
            "{}-{}_{}",
            pick(&mut rng, BASE62, 10),
            pick(&mut rng, BASE64URL, 10),
            pick(&mut rng, WORD, 13)
        );
        assert_eq!(body.len(), 35);
        masked(&format!("AIza{body}"), "AIza****", "google-api-key");
    }
    for last in ["-", "_", "Q", "7"] {
        let key = format!("AIza{}{last}", pick(&mut rng, BASE64URL, 34));
        masked(&key, "AIza****", "google-api-key");
    }
    let body = pick(&mut rng, WORD, 35);
    unchanged(&format!("k=AIza{} end", &body[..34]));
    unchanged(&format!("k=AIza{body}x end"));
    unchanged(&format!("k=AIza{body}_ end"));
    unchanged(&format!("k=AIza{}-x end", &body[..34]));
    unchanged(&format!("k=AIzb{body} end"));
    unchanged(&format!("k=aiza{body} end"));
    unchanged(&format!("k=AIZA{body} end"));
    unchanged(&format!("k=xAIza{body} end"));
    unchanged(&format!("k=_AIza{body} end"));
    // Standard base64 ('+', '/') is not the key alphabet.
    unchanged(&format!("k=AIza{}+{} end", &body[..17], &body[17..34]));
    unchanged(&format!("k=AIza{}/{} end", &body[..17], &body[17..34]));
}

/// A JWT of the given segments, built from JSON at test time.
fn jwt(header: &str, payload: &str, signature: &str) -> String {
    format!(
        "{}.{}.{signature}",
        base64url(header.as_bytes()),
        base64url(payload.as_bytes())
    )
}

#[test]
fn json_web_tokens() {
    let mut rng = TokenGen::new(900);
    // RFC 4648 section 10 test vectors, unpadded.
    assert_eq!(base64url(b"f"), "Zg");
    assert_eq!(base64url(b"fo"), "Zm8");
    assert_eq!(base64url(b"foobar"), "Zm9vYmFy");
    assert_eq!(base64url(&[0xfb, 0xff]), "-_8");
    let hs256 = r#"{"alg":"HS256","typ":"JWT"}"#;
    assert!(base64url(hs256.as_bytes()).starts_with("eyJ"));
    for _ in 0..4 {
        let claims = format!(
            r#"{{"sub":"{}","iat":{},"exp":{}}}"#,
            rng.hex(12),
            1_700_000_000 + rng.next_u64() % 100_000_000,
            1_800_000_000 + rng.next_u64() % 100_000_000
        );
        let token = jwt(hs256, &claims, &pick(&mut rng, BASE64URL, 43));
        masked(&token, "jwt****", "jwt");
        check(
            &format!("Authorization: Bearer {token}\r\n"),
            "Authorization: Bearer jwt****\r\n",
            &["jwt"],
        );
        // Unsecured (alg none): the signature is empty.
        let unsigned = jwt(r#"{"alg":"none"}"#, &claims, "");
        masked(&unsigned, "jwt****", "jwt");
        // Segments with '-' and '_' anywhere.
        let shaped = format!(
            "eyJ{}.eyJ{}.{}",
            pick(&mut rng, BASE64URL, 40),
            pick(&mut rng, BASE64URL, 80),
            pick(&mut rng, BASE64URL, 40)
        );
        masked(&shaped, "jwt****", "jwt");
    }
    // Longer than 256 bytes: masked on its first 256 (header up to 83 bytes,
    // payload up to 123, signature up to 48); the rest is left.
    let header = format!("eyJ{}", pick(&mut rng, BASE64URL, 60));
    let payload = format!("eyJ{}", pick(&mut rng, BASE64URL, 120));
    let signature = pick(&mut rng, BASE64URL, 86);
    let es256 = format!("{header}.{payload}.{signature}");
    check(
        &format!("t={es256} end"),
        &format!("t=jwt****{} end", &signature[48..]),
        &["jwt"],
    );
    let long_payload = format!("eyJ{}", pick(&mut rng, BASE64URL, 300));
    let long = format!("{header}.{long_payload}.{signature}");
    check(
        &format!("t={long} end"),
        &format!("t=jwt****{}.{signature} end", &long_payload[123..]),
        &["jwt"],
    );

    let header = base64url(hs256.as_bytes());
    let payload = base64url(br#"{"sub":"42","name":"x"}"#);
    let signature = pick(&mut rng, WORD, 43);
    // Not two base64url JSON objects joined by '.'.
    unchanged(&format!("t={header} end"));
    unchanged(&format!("t={header}. end"));
    unchanged(&format!("t={header}.YWJjZGVm.{signature} end"));
    unchanged(&format!("t=YWJjZGVm.{payload}.{signature} end"));
    unchanged(&format!("t=eyJhbGci.{payload}.{signature} end"));
    unchanged(&format!("t={header}.eyJhb.{signature} end"));
    // Case matters; a word byte before eyJ is a longer word.
    let lower = format!("eyj{}.{payload}.{signature}", &header[3..]);
    unchanged(&format!("t={lower} end"));
    let upper = format!("EYJ{}.{payload}.{signature}", &header[3..]);
    unchanged(&format!("t={upper} end"));
    unchanged(&format!("t=x{header}.{payload}.{signature} end"));
    unchanged(&format!("t=_{header}.{payload}.{signature} end"));
    // Standard base64 is not base64url.
    unchanged(&format!("t={}+/.{payload}.{signature} end", &header[..20]));
}

/// The early-match alternatives end a failed candidate at a '-' followed by a
/// word byte; scanning resumes there, so a credential glued on after that '-'
/// is still found by its own rule. A credential inside a longer match of
/// another rule is masked with it.
#[test]
fn a_credential_after_a_dash_in_a_failed_candidate_is_still_found() {
    let mut rng = TokenGen::new(1000);
    let aws = format!("AKIA{}", pick(&mut rng, UPPER_ALNUM, 16));
    check(
        &format!("k=AIzaQ-{aws} end"),
        "k=AIza****aws-access-key-id**** end",
        &["google-api-key", "aws-access-key-id"],
    );
    let github = format!("ghp_{}", pick(&mut rng, BASE62, 36));
    check(
        &format!("t=eyJhbGci-{github} end"),
        "t=jwt****github-token**** end",
        &["jwt", "github-token"],
    );
    let token = rng.token();
    check(
        &format!("x xoxb-1-{token} y"),
        "x slack-token**** y",
        &["slack-token"],
    );
    check(
        &format!("x xoxb-1-a-{token} y"),
        "x slack-token**** y",
        &["slack-token"],
    );
}

#[test]
fn every_rule_in_one_stream() {
    let mut rng = TokenGen::new(1100);
    let values = [
        ("databricks-pat", "dapi****", rng.token()),
        (
            "aws-access-key-id",
            "aws-access-key-id****",
            format!("ASIA{}", pick(&mut rng, UPPER_ALNUM, 16)),
        ),
        (
            "github-token",
            "github-token****",
            format!("ghs_{}", pick(&mut rng, BASE62, 36)),
        ),
        (
            "github-fine-grained-pat",
            "github_pat_****",
            format!(
                "github_pat_{}_{}",
                pick(&mut rng, BASE62, 22),
                pick(&mut rng, BASE62, 59)
            ),
        ),
        (
            "gitlab-pat",
            "glpat-****",
            format!("glpat-{}", pick(&mut rng, BASE64URL, 20)),
        ),
        (
            "npm-access-token",
            "npm_****",
            format!("npm_{}", pick(&mut rng, BASE62, 36)),
        ),
        (
            "slack-token",
            "slack-token****",
            format!(
                "xoxb-{}-{}-{}",
                pick(&mut rng, DIGITS, 12),
                pick(&mut rng, DIGITS, 13),
                pick(&mut rng, BASE62, 24)
            ),
        ),
        (
            "stripe-secret-key",
            "stripe-secret-key****",
            format!("rk_live_{}", pick(&mut rng, BASE62, 99)),
        ),
        (
            "google-api-key",
            "AIza****",
            format!("AIza{}", pick(&mut rng, WORD, 35)),
        ),
        (
            "jwt",
            "jwt****",
            jwt(
                r#"{"alg":"HS256","typ":"JWT"}"#,
                r#"{"sub":"svc","scope":"read"}"#,
                &pick(&mut rng, BASE64URL, 43),
            ),
        ),
    ];
    let separators = [" ", "\n", "\t", "=", "\"", ",", "; ", "é", "|", "\r\n"];
    let mut input = String::from("start ");
    let mut expected = String::from("start ");
    let mut offsets = Vec::new();
    for (i, (_, mask, value)) in values.iter().enumerate() {
        offsets.push(input.len() as u64);
        input.push_str(value);
        expected.push_str(mask);
        input.push_str(separators[i]);
        expected.push_str(separators[i]);
    }
    input.push_str("end\n");
    expected.push_str("end\n");
    let ids: Vec<&str> = values.iter().map(|(id, _, _)| *id).collect();
    check(&input, &expected, &ids);

    let rules = pack_rules();
    let found = scan_whole(&rules, DetectionMode::Classify, input.as_bytes()).detections;
    let got: Vec<u64> = found.iter().map(|d| d.offset).collect();
    assert_eq!(got, offsets);
    for seed in 0..20 {
        let mut cutter = TokenGen::new(seed);
        let cuts: Vec<usize> = (0..8)
            .map(|_| (cutter.next_u64() % input.len() as u64) as usize)
            .collect();
        for mode in [DetectionMode::MaskOnly, DetectionMode::Classify] {
            let got = scan_chunked(&rules, mode, input.as_bytes(), &cuts);
            assert_eq!(
                String::from_utf8(got.output).unwrap(),
                expected,
                "cuts {cuts:?}"
            );
        }
    }
}

#[test]
fn keywords_and_exclusions_classify_pack_detections() {
    let mut rng = TokenGen::new(1200);
    let rules = pack_rules();
    let aws = format!("AKIA{}", pick(&mut rng, UPPER_ALNUM, 16));
    let text = format!("export AWS_ACCESS_KEY_ID={aws}\n");
    let found = scan_whole(&rules, DetectionMode::Classify, text.as_bytes()).detections;
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].confidence, Confidence::High);
    assert_eq!(&*found[0].keywords[0], "aws_access_key_id");

    let github = format!("ghp_{}", pick(&mut rng, BASE62, 36));
    let text = format!("Example: GITHUB_TOKEN={github}\n");
    let found = scan_whole(&rules, DetectionMode::Classify, text.as_bytes()).detections;
    assert_eq!(found[0].confidence, Confidence::Low);
    assert_eq!(&*found[0].exclusions[0], "example");

    let stripe = format!("sk_live_{}", pick(&mut rng, BASE62, 24));
    let text = format!("value {stripe} here\n");
    let found = scan_whole(&rules, DetectionMode::Classify, text.as_bytes()).detections;
    assert_eq!(found[0].confidence, Confidence::Medium);
    assert!(found[0].masked);
}
