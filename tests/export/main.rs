//! `logredact export-rules`, proven two ways:
//!
//! - every export validates with the vendors' own published definitions,
//!   installed from PyPI (`python`): the Purview rule package against the
//!   schema Microsoft publishes and its article's constraints, the GCP
//!   template by loading it into google-cloud-dlp's `InspectTemplate`, each
//!   Macie request with botocore's validator and the macie2 model
//!   (`validate.py`);
//! - the same verdicts: an evaluator (`evaluate.py`) applies each export, as
//!   the product would, to a few hundred generated lines (`corpus`) and must
//!   get the detections and confidence levels logredact's audit stream gives
//!   on the same lines — or a difference the export's notes announce, and
//!   then every time.
//!
//! For the default rule and for the ten rules of a configuration with the
//! credential pack.

#[path = "../common/mod.rs"]
mod common;

mod corpus;
mod python;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Output;

use common::*;
use corpus::{Kind, Line, RuleCase};
use serde_json::Value;

const FORMATS: [&str; 3] = ["purview", "gcp-dlp", "macie"];

/// `logredact export-rules --format FORMAT [--config CONFIG] --output FILE`
/// in `dir`: the file and the command's output.
fn export(dir: &Path, format: &str, config: Option<&Path>, name: &str) -> (PathBuf, Output) {
    let file = dir.join(format!("{name}.{format}"));
    let mut command = binary();
    command
        .args(["export-rules", "--format", format, "--output"])
        .arg(&file);
    if let Some(config) = config {
        command.arg("--config").arg(config);
    }
    let output = command.output().unwrap();
    assert_eq!(output.status.code(), Some(0), "{}", transcript(&output));
    (file, output)
}

/// A configuration with the built-in rule and the credential pack: ten rules.
fn credential_config(dir: &Path) -> PathBuf {
    let path = dir.join("credentials.yaml");
    let pack = repo_path("config/rules/common-credentials.yaml");
    std::fs::write(&path, format!("include: ['{}']\n", pack.display())).unwrap();
    path
}

/// A note of an export: its rule (none for the whole export) and code.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Note {
    rule: Option<String>,
    code: String,
}

/// The notes an export carries: its `notes` field, or for Purview the
/// lines of its comment.
fn notes(format: &str, file: &Path) -> Vec<Note> {
    let bytes = std::fs::read(file).unwrap();
    if format == "purview" {
        let units: Vec<u16> = bytes[2..]
            .chunks(2)
            .map(|pair| u16::from_le_bytes([pair[0], pair[1]]))
            .collect();
        let text = String::from_utf16(&units).unwrap();
        let comment = &text[..text.find("-->").unwrap()];
        return comment
            .lines()
            .filter_map(|line| line.strip_prefix("  - ["))
            .map(|line| {
                let (code, rest) = line.split_once("] ").unwrap();
                let rule = rest
                    .strip_prefix("rule '")
                    .map(|rest| rest[..rest.find("': ").unwrap()].to_string());
                Note {
                    rule,
                    code: code.to_string(),
                }
            })
            .collect();
    }
    let value: Value = serde_json::from_slice(&bytes).unwrap();
    value["notes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|note| Note {
            rule: note["rule"].as_str().map(str::to_string),
            code: note["code"].as_str().unwrap().to_string(),
        })
        .collect()
}

/// The notes printed on standard error, as (rule, code).
fn stderr_notes(output: &Output) -> Vec<Note> {
    String::from_utf8_lossy(&output.stderr)
        .lines()
        .filter_map(|line| line.split_once(": [").map(|(_, rest)| rest))
        .map(|rest| {
            let (code, rest) = rest.split_once("] ").unwrap();
            Note {
                rule: rest
                    .strip_prefix("rule '")
                    .map(|rest| rest[..rest.find("': ").unwrap()].to_string()),
                code: code.to_string(),
            }
        })
        .collect()
}

fn validate(format: &str, file: &Path) {
    let output = python::run_script("validate.py", &[Path::new(format), file]);
    assert!(
        output.status.success(),
        "{format} export {} does not validate:\n{}",
        file.display(),
        transcript(&output)
    );
    eprint!("{}", String::from_utf8_lossy(&output.stdout));
}

#[test]
fn every_export_validates_with_the_vendors_definitions() {
    let dir = scratch("validate");
    let configs = [
        ("default", None),
        ("credentials", Some(credential_config(&dir))),
        ("json", Some(repo_path("config/logredact-json.yaml"))),
    ];
    for (name, config) in &configs {
        for format in FORMATS {
            let (file, output) = export(&dir, format, config.as_deref(), name);
            assert!(
                String::from_utf8_lossy(&output.stderr).contains(" 0 left out"),
                "{}",
                transcript(&output)
            );
            validate(format, &file);
        }
    }
}

/// Runs the validator on `text` written to a file, expecting it refused
/// with `expected` in its report.
fn expect_refused(dir: &Path, format: &str, bytes: &[u8], expected: &str) {
    let file = dir.join(format!("broken.{format}"));
    std::fs::write(&file, bytes).unwrap();
    let output = python::run_script("validate.py", &[Path::new(format), &file]);
    let report = transcript(&output);
    assert!(!output.status.success(), "accepted:\n{report}");
    assert!(
        report.contains(expected),
        "expected {expected:?} in:\n{report}"
    );
}

fn utf16(text: &str) -> Vec<u8> {
    let mut bytes = vec![0xff, 0xfe];
    text.encode_utf16()
        .for_each(|unit| bytes.extend_from_slice(&unit.to_le_bytes()));
    bytes
}

#[test]
fn the_validators_refuse_what_the_products_would() {
    let dir = scratch("refuse");
    let (file, _) = export(&dir, "purview", None, "default");
    let bytes = std::fs::read(&file).unwrap();
    let units: Vec<u16> = bytes[2..]
        .chunks(2)
        .map(|p| u16::from_le_bytes([p[0], p[1]]))
        .collect();
    let xml = String::from_utf16(&units).unwrap();
    for (broken, expected) in [
        (
            xml.replace("confidenceLevel=\"85\"", "confidenceLevel=\"185\""),
            "schema:",
        ),
        (
            xml.replace(" recommendedConfidence=\"65\"", ""),
            "no recommendedConfidence",
        ),
        (
            xml.replace("{32}\\b</Regex>", "{32}\\b(?:x{0,3})</Regex>"),
            "repeater in a group",
        ),
        (
            xml.replace(
                "<Term>bearer</Term>",
                &format!("<Term>{}</Term>", "b".repeat(51)),
            ),
            "over 50 characters",
        ),
    ] {
        assert_ne!(broken, xml);
        expect_refused(&dir, "purview", &utf16(&broken), expected);
    }
    expect_refused(&dir, "purview", xml.as_bytes(), "not UTF-16");

    let (file, _) = export(&dir, "gcp-dlp", None, "default");
    let json = read(&file);
    for (broken, expected) in [
        (
            json.replacen(
                "\"likelihood\": \"POSSIBLE\"",
                "\"likelihood\": \"QUITE\"",
                1,
            ),
            "Invalid enum value QUITE",
        ),
        (
            json.replacen("\"regex\": {", "\"regexp\": {", 1),
            "has no field named \"regexp\"",
        ),
        (
            json.replacen("\"windowBefore\": 300", "\"windowBefore\": 900", 1),
            "over 1000",
        ),
        (
            json.replacen(
                "\"name\": \"databricks-pat\"",
                "\"name\": \"databricks pat\"",
                1,
            ),
            "does not match",
        ),
        (
            json.replacen("(?:dapi)", "(?<=dapi)", 1),
            "does not compile in RE2",
        ),
    ] {
        assert_ne!(broken, json);
        expect_refused(&dir, "gcp-dlp", broken.as_bytes(), expected);
    }

    let (file, _) = export(&dir, "macie", None, "default");
    let json = read(&file);
    for (broken, expected) in [
        (
            json.replacen("\"regex\":", "\"regexp\": \"x\", \"regex\":", 1),
            "Unknown parameter in input: \"regexp\"",
        ),
        (
            json.replacen(
                "\"maximumMatchDistance\": 300",
                "\"maximumMatchDistance\": 301",
                1,
            ),
            "maximumMatchDistance 301 is not 1-300",
        ),
        (
            json.replacen("\"severity\": \"HIGH\"", "\"severity\": \"SEVERE\"", 1),
            "severity SEVERE is not one of",
        ),
        (
            json.replacen("\"regex\": \"\\\\bdapi", "\"regex\": \"(dapi)\\\\bdapi", 1),
            "a group that is not (?:",
        ),
        (
            json.replacen("\"bearer\"", "\"be\"", 1),
            "is not 3-90 characters",
        ),
        (
            json.replacen(
                "\"maximumMatchDistance\": 300",
                "\"maximumMatchDistance\": \"300\"",
                1,
            ),
            "Invalid type for parameter maximumMatchDistance",
        ),
    ] {
        assert_ne!(broken, json);
        expect_refused(&dir, "macie", broken.as_bytes(), expected);
    }
}

/// One detection: rule, byte offset, and a verdict in the terms compared.
type Verdicts = BTreeSet<(String, u64, String)>;

/// logredact's detections of the corpus, from its audit stream: (rule,
/// offset) to (confidence, placeholder).
fn audit(dir: &Path, config: Option<&Path>, text: &str) -> BTreeMap<(String, u64), (String, bool)> {
    let audit = dir.join("audit.jsonl");
    let key = dir.join("key");
    std::fs::write(&key, "a test fingerprint key, long enough\n").unwrap();
    let _ = std::fs::remove_file(&audit);
    let mut command = binary();
    if let Some(config) = config {
        command.arg("--config").arg(config);
    }
    command
        .arg("--audit")
        .arg(&audit)
        .arg("--fingerprint-key-file")
        .arg(&key)
        .env_remove("LOGREDACT_FINGERPRINT_KEY");
    let output = output_with_stdin(command, text.as_bytes());
    assert!(output.status.success(), "{}", transcript(&output));
    read(&audit)
        .lines()
        .map(|line| {
            let record: Value = serde_json::from_str(line).unwrap();
            (
                (
                    record["rule"].as_str().unwrap().to_string(),
                    record["offset"].as_u64().unwrap(),
                ),
                (
                    record["confidence"].as_str().unwrap().to_string(),
                    record["placeholder"].as_bool().unwrap(),
                ),
            )
        })
        .collect()
}

/// The evaluator's verdicts on the corpus: (rule, offset, product verdict).
fn evaluate(format: &str, file: &Path, corpus: &Path) -> Vec<(String, u64, String)> {
    let output = python::run_script("evaluate.py", &[Path::new(format), file, corpus]);
    assert!(output.status.success(), "{}", transcript(&output));
    String::from_utf8(output.stdout)
        .unwrap()
        .lines()
        .map(|line| {
            let value: Value = serde_json::from_str(line).unwrap();
            (
                value["rule"].as_str().unwrap().to_string(),
                value["offset"].as_u64().unwrap(),
                value["verdict"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

/// logredact's confidence in the terms of `format`'s verdicts: Purview and
/// Cloud DLP rate (high, medium, low), Macie reports or does not.
fn logredact_verdict(format: &str, confidence: &str) -> String {
    match (format, confidence) {
        ("macie", "high") => "reported".into(),
        ("macie", _) => "not reported".into(),
        (_, other) => other.into(),
    }
}

/// A product's verdict in the same terms: Purview's confidence levels 85,
/// 75, 65; Cloud DLP's LIKELY, POSSIBLE, and excluded for what logredact
/// rates low; Macie's reported, or not (no keyword before, an ignore word).
fn product_verdict(format: &str, verdict: &str) -> String {
    match (format, verdict) {
        ("purview", "85") | ("gcp-dlp", "LIKELY") => "high".into(),
        ("purview", "75") | ("gcp-dlp", "POSSIBLE") => "medium".into(),
        ("purview", "65") | ("gcp-dlp", "excluded") => "low".into(),
        ("macie", "reported") => "reported".into(),
        ("macie", "no-keyword" | "ignored") => "not reported".into(),
        (_, other) => format!("unexpected verdict {other}"),
    }
}

/// The notes that explain a difference on a line of `kind`, and whether
/// that difference must then show on every such line.
fn explained_by(format: &str, kind: Kind) -> (&'static [&'static str], bool) {
    match (format, kind) {
        ("purview", Kind::UnicodeBefore | Kind::UnicodeKeyword) => {
            (&["word-boundary-unicode"], true)
        }
        ("purview", Kind::Placeholder) => (&["placeholders"], true),
        ("gcp-dlp", Kind::Placeholder) => (&["placeholders"], true),
        ("macie", Kind::KeywordAfter) => (&["keywords-before-only"], true),
        ("macie", Kind::KeywordFarBefore | Kind::KeywordFarBeforeUnicode) => {
            (&["keyword-distance-to-match-end"], true)
        }
        ("macie", Kind::ExclusionAndKeyword) => (&["context-exclusions"], true),
        ("macie", Kind::SubstringKeyword) => (&["keyword-substring"], true),
        // Which placeholder values Macie's ten ignore words hold depends on
        // the rule: a difference must be noted, but need not show.
        ("macie", Kind::Placeholder) => (&["placeholders", "placeholders-partly"], false),
        _ => (&[], false),
    }
}

/// Checks that no term of a rule other than the line's own stands in a
/// line, even inside a word: the lines must mean what their kind says.
fn check_corpus(text: &str, lines: &[Line], cases: &[RuleCase], config: Option<&Path>) {
    let config = match config {
        Some(path) => logredact::config::Config::load(path).unwrap(),
        None => logredact::config::Config::builtin(),
    };
    for line in lines.iter().filter(|line| line.kind != Kind::NearMiss) {
        let rule = config.rules.iter().find(|r| r.id == line.rule).unwrap();
        let case = cases.iter().find(|c| c.id == line.rule).unwrap();
        let words = text[line.start..line.end]
            .replacen(&line.token, " ", 1)
            .to_lowercase()
            .replacen(case.keyword, " ", 1)
            .replacen(case.exclusion, " ", 1);
        for term in rule.keywords.iter().chain(&rule.exclusions) {
            let term = term.to_lowercase();
            assert!(
                !words.contains(&term),
                "a line of {:?} for {} holds the term {term:?}: {words:?}",
                line.kind,
                line.rule
            );
        }
    }
}

/// Exports `config` in every format and compares the products' verdicts on
/// a generated corpus with logredact's, line by line.
fn compare(name: &str, config: Option<&Path>, cases: &[RuleCase], rounds: usize) {
    let dir = scratch(name);
    let (text, lines) = corpus::corpus(cases, rounds, 17);
    assert!(lines.len() >= 200, "{} lines", lines.len());
    check_corpus(&text, &lines, cases, config);
    let corpus_file = dir.join("corpus.log");
    std::fs::write(&corpus_file, &text).unwrap();
    let logredact = audit(&dir, config, &text);
    // The corpus means what it says: every token line is one detection,
    // placeholders are placeholders, near misses are nothing.
    for line in &lines {
        let found: Vec<_> = logredact
            .iter()
            .filter(|((_, offset), _)| (line.start..line.end).contains(&(*offset as usize)))
            .collect();
        match line.kind {
            Kind::NearMiss => assert!(found.is_empty(), "{line:?}: {found:?}"),
            kind => {
                assert_eq!(found.len(), 1, "{line:?}: {found:?}");
                let ((rule, _), (confidence, placeholder)) = found[0];
                assert_eq!(rule, line.rule, "{line:?}");
                assert_eq!(*placeholder, kind == Kind::Placeholder, "{line:?}");
                let expected = match kind {
                    Kind::KeywordBefore
                    | Kind::KeywordAfter
                    | Kind::KeywordFarBefore
                    | Kind::KeywordFarBeforeUnicode
                    | Kind::UnicodeKeyword => "high",
                    Kind::Plain
                    | Kind::KeywordTooFar
                    | Kind::SubstringKeyword
                    | Kind::UnicodeBefore => "medium",
                    Kind::Exclusion | Kind::ExclusionAndKeyword | Kind::Placeholder => "low",
                    Kind::NearMiss => unreachable!(),
                };
                assert_eq!(confidence, expected, "{line:?}");
            }
        }
    }
    for format in FORMATS {
        let (file, output) = export(&dir, format, config, name);
        let notes = notes(format, &file);
        assert_eq!(
            stderr_notes(&output),
            notes,
            "the notes on standard error are those of the output"
        );
        let product = evaluate(format, &file, &corpus_file);
        let (mut agreed, mut noted) = (0, 0);
        let mut rules_found: BTreeSet<String> = BTreeSet::new();
        for line in &lines {
            let in_line = |offset: u64| (line.start..line.end).contains(&(offset as usize));
            let theirs: Verdicts = product
                .iter()
                .filter(|(_, offset, _)| in_line(*offset))
                .map(|(rule, offset, verdict)| {
                    (rule.clone(), *offset, product_verdict(format, verdict))
                })
                .collect();
            let ours: Verdicts = logredact
                .iter()
                .filter(|((_, offset), _)| in_line(*offset))
                .map(|((rule, offset), (confidence, _))| {
                    (rule.clone(), *offset, logredact_verdict(format, confidence))
                })
                .collect();
            rules_found.extend(theirs.iter().map(|(rule, _, _)| rule.clone()));
            let (codes, must) = explained_by(format, line.kind);
            let noted_here = notes.iter().any(|note| {
                codes.contains(&note.code.as_str())
                    && note.rule.as_deref().is_none_or(|rule| rule == line.rule)
            });
            let line_text = || {
                text[line.start..line.end]
                    .chars()
                    .take(60)
                    .collect::<String>()
            };
            if theirs == ours {
                assert!(
                    !(noted_here && must),
                    "{format}: {:?} line of {} agrees, though a note {codes:?} says it differs: {}",
                    line.kind,
                    line.rule,
                    line_text()
                );
                agreed += 1;
            } else {
                assert!(
                    noted_here,
                    "{format}: a difference no note explains, on a {:?} line of {}:\n  logredact: {ours:?}\n  {format}: {theirs:?}\n  line: {}",
                    line.kind,
                    line.rule,
                    line_text()
                );
                noted += 1;
            }
        }
        // Every rule is found by the product somewhere: none is lost.
        for case in cases {
            assert!(
                rules_found.contains(case.id),
                "{format}: {} never found",
                case.id
            );
        }
        eprintln!(
            "{name}: {format}: {} lines, {agreed} with logredact's verdicts, {noted} differing as the notes say",
            lines.len()
        );
    }
}

#[test]
fn the_default_rule_gets_logredacts_verdicts() {
    compare("default", None, &[corpus::databricks()], 20);
}

#[test]
fn the_ten_rules_of_the_credential_pack_get_logredacts_verdicts() {
    let dir = scratch("credentials-config");
    let config = credential_config(&dir);
    let cases = corpus::credential_pack();
    assert_eq!(cases.len(), 10);
    let loaded = logredact::config::Config::load(&config).unwrap();
    let ids: Vec<&str> = loaded.rules.iter().map(|r| r.id.as_str()).collect();
    let case_ids: Vec<&str> = cases.iter().map(|c| c.id).collect();
    assert_eq!(ids, case_ids);
    compare("credentials", Some(&config), &cases, 2);
}

#[test]
fn the_seed_rules_examples() {
    let dir = scratch("seed");
    let spacer = format!("\n{}\n", "filler ".repeat(50));
    let matches = [
        "dapi00000000000000000000000000000000",
        "dapiaabbccdd11223344556677889900abcd",
        "dapi0123456789abcdef0123456789abcdef",
    ];
    let near_misses = ["dapi0000", "databricks-token=some-other-format"];
    let in_context = [
        "template: dapiaabbccdd11223344556677889900abcd",
        "an example bearer dapiaabbccdd11223344556677889900abcd",
    ];
    let mut text = spacer.clone();
    let mut starts = BTreeMap::new();
    for line in matches.iter().chain(&near_misses).chain(&in_context) {
        starts.insert(*line, text.len() as u64);
        text.push_str(line);
        text.push_str(&spacer);
    }
    let corpus_file = dir.join("seed.log");
    std::fs::write(&corpus_file, &text).unwrap();
    let offset = |line: &str| starts[line];
    let token_offset = |line: &str| starts[line] + line.find("dapi").unwrap() as u64;
    let logredact = audit(&dir, None, &text);
    let confidence = |line: &str| {
        logredact[&("databricks-pat".to_string(), token_offset(line))]
            .0
            .clone()
    };
    assert_eq!(
        matches.map(confidence),
        ["low", "medium", "low"],
        "placeholders are low"
    );
    assert_eq!(in_context.map(confidence), ["low", "low"]);
    assert_eq!(logredact.len(), 5, "no near miss is a detection");
    for format in FORMATS {
        let (file, _) = export(&dir, format, None, "seed");
        let notes = notes(format, &file);
        let found: BTreeMap<u64, String> = evaluate(format, &file, &corpus_file)
            .into_iter()
            .map(|(rule, offset, verdict)| {
                assert_eq!(rule, "databricks-pat");
                (offset, verdict)
            })
            .collect();
        // The exported pattern matches the three examples, and nothing else.
        let expected: BTreeSet<u64> = matches
            .iter()
            .chain(&in_context)
            .map(|line| token_offset(line))
            .collect();
        assert_eq!(
            found.keys().copied().collect::<BTreeSet<_>>(),
            expected,
            "{format}"
        );
        assert!(
            near_misses
                .iter()
                .all(|line| !found.contains_key(&offset(line)))
        );
        let verdict = |line: &str| found[&token_offset(line)].as_str();
        match format {
            "purview" => {
                assert_eq!(matches.map(verdict), ["75", "75", "75"]);
                assert!(notes.iter().any(|n| n.code == "placeholders"));
                assert_eq!(in_context.map(verdict), ["65", "65"]);
            }
            "gcp-dlp" => {
                assert_eq!(matches.map(verdict), ["excluded", "POSSIBLE", "excluded"]);
                assert_eq!(in_context.map(verdict), ["excluded", "excluded"]);
            }
            _ => {
                // No keyword before: not reported; placeholders are ignore words.
                assert_eq!(matches.map(verdict), ["ignored", "no-keyword", "ignored"]);
                assert_eq!(in_context.map(verdict), ["no-keyword", "reported"]);
                assert!(notes.iter().any(|n| n.code == "context-exclusions"));
            }
        }
    }
}

#[test]
fn exports_are_deterministic_and_guids_come_from_rule_ids() {
    let dir = scratch("deterministic");
    let config = credential_config(&dir);
    for format in FORMATS {
        let (first, _) = export(&dir, format, Some(&config), "first");
        let (second, _) = export(&dir, format, Some(&config), "second");
        assert_eq!(
            std::fs::read(&first).unwrap(),
            std::fs::read(&second).unwrap(),
            "{format}"
        );
    }
    // The Purview entity of a rule keeps its GUID whatever other rules the
    // package holds, so that uploading an update changes the same type.
    let entity = "52F4745F-20F3-86CE-B7CB-DEE9416C71CE";
    let (alone, _) = export(&dir, "purview", None, "alone");
    let (with_pack, _) = export(&dir, "purview", Some(&config), "with-pack");
    for file in [alone, with_pack] {
        let bytes = std::fs::read(&file).unwrap();
        let units: Vec<u16> = bytes[2..]
            .chunks(2)
            .map(|p| u16::from_le_bytes([p[0], p[1]]))
            .collect();
        let xml = String::from_utf16(&units).unwrap();
        assert!(
            xml.contains(&format!(
                "<!-- databricks-pat -->\n    <Entity id=\"{entity}\""
            )),
            "{xml}"
        );
        assert!(xml.contains("<RulePack id=\"01991923-F24E-86F4-883E-2B270E0043DF\">"));
    }
}

#[test]
fn a_pattern_a_product_cannot_match_is_left_out_with_the_reason() {
    let dir = scratch("refused");
    let config = dir.join("lines.yaml");
    std::fs::write(
        &config,
        "rules:\n  - id: line-secret\n    pattern: '(?m)^secret-[a-z]{4}'\n  - id: word\n    pattern: '\\bword-[a-z]{4}\\b'\n    keywords: [key]\n",
    )
    .unwrap();
    for (format, refused) in [("purview", true), ("gcp-dlp", false), ("macie", true)] {
        let (file, output) = export(&dir, format, Some(&config), "lines");
        let stderr = String::from_utf8_lossy(&output.stderr);
        let note = notes(format, &file)
            .into_iter()
            .find(|n| n.code == "refused");
        assert_eq!(note.is_some(), refused, "{format}: {stderr}");
        if refused {
            assert!(
                stderr.contains("[refused] rule 'line-secret': not exported to")
                    && stderr.contains("start or end of a line"),
                "{stderr}"
            );
            assert!(stderr.contains("1 rule(s) exported"), "{stderr}");
        }
        validate(format, &file);
    }
    // Nothing left to export: a configuration error.
    let only = dir.join("only.yaml");
    std::fs::write(&only, "rules:\n  - id: raw\n    pattern: '\\xFFsecret'\n").unwrap();
    for format in FORMATS {
        let output = binary()
            .args(["export-rules", "--format", format, "--config"])
            .arg(&only)
            .output()
            .unwrap();
        assert_eq!(output.status.code(), Some(2), "{}", transcript(&output));
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains("no rule can be exported to"), "{stderr}");
        assert!(
            stderr.contains("rule 'raw'") && stderr.contains("above 0x7F"),
            "{stderr}"
        );
        assert!(output.stdout.is_empty());
    }
}

#[test]
fn configuration_and_usage_errors_exit_2() {
    let dir = scratch("errors");
    let bad = dir.join("bad.yaml");
    std::fs::write(&bad, "rules:\n  - id: greedy\n    pattern: 'key=.*'\n").unwrap();
    let run = |args: &[&str]| binary().args(args).output().unwrap();
    let output = run(&[
        "export-rules",
        "--format",
        "macie",
        "--config",
        bad.to_str().unwrap(),
    ]);
    assert_eq!(output.status.code(), Some(2), "{}", transcript(&output));
    assert!(
        String::from_utf8_lossy(&output.stderr)
            .contains("bad.yaml:3:14: rule 'greedy': the pattern can match unboundedly long text"),
        "{}",
        transcript(&output)
    );
    let output = run(&[
        "export-rules",
        "--format",
        "macie",
        "--purview-version",
        "2.0.0.0",
    ]);
    assert_eq!(output.status.code(), Some(2), "{}", transcript(&output));
    let output = run(&["export-rules", "--format", "splunk"]);
    assert_eq!(output.status.code(), Some(2), "{}", transcript(&output));
    let output = run(&[
        "export-rules",
        "--format",
        "purview",
        "--purview-version",
        "1.2",
    ]);
    assert_eq!(output.status.code(), Some(2), "{}", transcript(&output));
    // The version asked for is the package's.
    let output = run(&[
        "export-rules",
        "--format",
        "purview",
        "--purview-version",
        "1.2.3.4",
    ]);
    assert_eq!(output.status.code(), Some(0), "{}", transcript(&output));
    let units: Vec<u16> = output.stdout[2..]
        .chunks(2)
        .map(|p| u16::from_le_bytes([p[0], p[1]]))
        .collect();
    assert!(
        String::from_utf16(&units)
            .unwrap()
            .contains("<Version major=\"1\" minor=\"2\" build=\"3\" revision=\"4\"/>")
    );
}

#[test]
fn committed_export_test_files_hold_no_token_but_the_documentation_placeholders() {
    for entry in std::fs::read_dir(repo_path("tests/export")).unwrap() {
        let path = entry.unwrap().path();
        assert_only_placeholder_tokens(&path, &std::fs::read(&path).unwrap());
    }
}
