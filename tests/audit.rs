//! The audit stream and the sprawl summary, on the binary: records checked
//! field by field, across chunk boundaries, fingerprints stable across runs.

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::*;
use logredact::FingerprintKey;
use serde_json::Value;

const KEY_MATERIAL: &str = "a test fingerprint key, long enough";

/// Runs logredact with `args`, writing `parts` with a pause between them.
fn run(args: &[&str], envs: &[(&str, &str)], parts: &[&[u8]]) -> (Vec<u8>, String) {
    let mut command = binary();
    command.args(args).env_remove("LOGREDACT_FINGERPRINT_KEY");
    for (key, value) in envs {
        command.env(key, value);
    }
    let mut child = spawn_piped(&mut command);
    let mut stdin = child.stdin.take().unwrap();
    for part in parts {
        std::io::Write::write_all(&mut stdin, part).unwrap();
        std::io::Write::flush(&mut stdin).unwrap();
        std::thread::sleep(Duration::from_millis(20));
    }
    drop(stdin);
    let output = child.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    (output.stdout, String::from_utf8(output.stderr).unwrap())
}

const FIELDS: [&str; 11] = [
    "ts",
    "stream",
    "rule",
    "offset",
    "line",
    "confidence",
    "keywords",
    "exclusions",
    "placeholder",
    "masked",
    "fingerprint",
];

/// The records of an audit file; each line must have exactly the documented
/// fields, in the documented order.
fn records(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|line| {
            let record: Value = serde_json::from_str(line).unwrap();
            assert_eq!(record.as_object().unwrap().len(), FIELDS.len(), "{line}");
            let positions: Vec<usize> = FIELDS
                .iter()
                .map(|f| line.find(&format!("\"{f}\":")).unwrap())
                .collect();
            assert!(
                positions.windows(2).all(|w| w[0] < w[1]),
                "fields out of order: {line}"
            );
            record
        })
        .collect()
}

fn fingerprint(token: &str) -> String {
    FingerprintKey::derive(KEY_MATERIAL.as_bytes())
        .fingerprint(token.as_bytes())
        .to_string()
}

/// A neutral line long enough to separate contexts.
fn spacer() -> String {
    format!("{}\n", "filler ".repeat(50))
}

struct Fixture {
    input: String,
    tokens: Vec<String>,
}

fn fixture() -> Fixture {
    let mut tokens = TokenGen::new(60);
    let (keyword, excluded, plain) = (tokens.token(), tokens.token(), tokens.token());
    let placeholder = "dapi00000000000000000000000000000000".to_string();
    let input = [
        format!("GET /jobs Authorization: Bearer {keyword}\n"),
        spacer(),
        format!("an example: {excluded} as a Databricks token\n"),
        spacer(),
        format!("value {plain}\n"),
        spacer(),
        format!("{placeholder}\n"),
    ]
    .concat();
    Fixture {
        input,
        tokens: vec![keyword, excluded, plain, placeholder],
    }
}

fn key_file(dir: &Path) -> PathBuf {
    let path = dir.join("key");
    std::fs::write(&path, format!("{KEY_MATERIAL}\n")).unwrap();
    path
}

fn check_records(records: &[Value], fixture: &Fixture) {
    let offset = |token: &str| fixture.input.find(token).unwrap() as u64;
    let expected = [
        (0, 1, "high", vec!["bearer", "authorization"], vec![], false),
        (
            1,
            3,
            "low",
            vec!["databricks", "databricks token"],
            vec!["example"],
            false,
        ),
        (2, 5, "medium", vec![], vec![], false),
        (3, 7, "low", vec![], vec![], true),
    ];
    assert_eq!(records.len(), expected.len());
    for (record, (i, line, confidence, keywords, exclusions, placeholder)) in
        records.iter().zip(expected)
    {
        let token = &fixture.tokens[i];
        let ts = record["ts"].as_str().unwrap();
        assert!(
            ts.len() == 24 && ts.ends_with('Z') && ts.as_bytes()[10] == b'T',
            "{ts}"
        );
        assert_eq!(record["stream"], "stdin");
        assert_eq!(record["rule"], "databricks-pat");
        assert_eq!(record["offset"], offset(token));
        assert_eq!(record["line"], line);
        assert_eq!(record["confidence"], confidence, "token {i}");
        assert_eq!(record["keywords"], serde_json::json!(keywords), "token {i}");
        assert_eq!(
            record["exclusions"],
            serde_json::json!(exclusions),
            "token {i}"
        );
        assert_eq!(record["placeholder"], placeholder);
        assert_eq!(record["masked"], true);
        assert_eq!(record["fingerprint"], fingerprint(token));
    }
}

#[test]
fn records_field_by_field_whole_and_across_chunks() {
    let dir = scratch("fields");
    let key = key_file(&dir);
    let fixture = fixture();
    let audit = dir.join("whole.jsonl");
    let args = [
        "--audit",
        audit.to_str().unwrap(),
        "--fingerprint-key-file",
        key.to_str().unwrap(),
    ];
    let (output, stderr) = run(&args, &[], &[fixture.input.as_bytes()]);
    assert_eq!(output, reference_redaction(fixture.input.as_bytes()));
    assert_eq!(stderr, "");
    check_records(&records(&audit), &fixture);

    // Split into 7-byte writes with pauses: tokens and keywords cross chunk
    // boundaries; the records are the same but for the time.
    let audit = dir.join("chunked.jsonl");
    let args = [
        "--audit",
        audit.to_str().unwrap(),
        "--fingerprint-key-file",
        key.to_str().unwrap(),
    ];
    let parts: Vec<&[u8]> = fixture.input.as_bytes().chunks(97).collect();
    let (output, _) = run(&args, &[], &parts);
    assert_eq!(output, reference_redaction(fixture.input.as_bytes()));
    check_records(&records(&audit), &fixture);
}

#[test]
fn fingerprints_are_stable_across_runs_and_key_sources() {
    let dir = scratch("stable");
    let key = key_file(&dir);
    let token = TokenGen::new(61).token();
    let input = format!("token {token}\n");
    let mut seen = Vec::new();
    for (i, from_env) in [false, false, true].into_iter().enumerate() {
        let audit = dir.join(format!("run{i}.jsonl"));
        let mut args = vec!["--audit", audit.to_str().unwrap()];
        let envs: Vec<(&str, &str)> = if from_env {
            vec![("LOGREDACT_FINGERPRINT_KEY", KEY_MATERIAL)]
        } else {
            args.extend(["--fingerprint-key-file", key.to_str().unwrap()]);
            vec![]
        };
        let (_, stderr) = run(&args, &envs, &[input.as_bytes()]);
        assert_eq!(stderr, "", "a configured key gives no warning");
        seen.push(
            records(&audit)[0]["fingerprint"]
                .as_str()
                .unwrap()
                .to_string(),
        );
    }
    assert_eq!(seen, vec![fingerprint(&token); 3]);

    // Without a key: a random one, different per process, and a warning.
    let mut random = Vec::new();
    for i in 0..2 {
        let audit = dir.join(format!("random{i}.jsonl"));
        let (_, stderr) = run(
            &["--audit", audit.to_str().unwrap()],
            &[],
            &[input.as_bytes()],
        );
        assert!(
            stderr.contains(
                "using a random key, so fingerprints are only comparable within this process"
            ),
            "{stderr}"
        );
        random.push(
            records(&audit)[0]["fingerprint"]
                .as_str()
                .unwrap()
                .to_string(),
        );
    }
    assert_ne!(random[0], random[1]);
    assert!(!random.contains(&fingerprint(&token)));
}

#[test]
fn fingerprint_masks_and_allow_lists() {
    let dir = scratch("masks");
    let key = key_file(&dir);
    let config = dir.join("logredact.yaml");
    std::fs::write(
        &config,
        "rules:\n  - id: databricks-pat\n    pattern: '\\bdapi[0-9a-f]{32}\\b'\n    mask: 'dapi****{fingerprint}'\n    allow: ['dapi0123456789abcdef0123456789abcdef']\n",
    )
    .unwrap();
    let audit = dir.join("audit.jsonl");
    let token = TokenGen::new(62).token();
    let input = format!("a {token} b dapi0123456789abcdef0123456789abcdef c\n");
    let args = [
        "--config",
        config.to_str().unwrap(),
        "--audit",
        audit.to_str().unwrap(),
        "--fingerprint-key-file",
        key.to_str().unwrap(),
    ];
    let (output, _) = run(&args, &[], &[input.as_bytes()]);
    assert_eq!(
        String::from_utf8(output).unwrap(),
        format!(
            "a dapi****{} b dapi0123456789abcdef0123456789abcdef c\n",
            fingerprint(&token)
        )
    );
    let records = records(&audit);
    let masked: Vec<&Value> = records.iter().map(|r| &r["masked"]).collect();
    assert_eq!(masked, [&Value::Bool(true), &Value::Bool(false)]);
}

#[test]
fn audit_to_standard_error() {
    let token = TokenGen::new(63).token();
    let (output, stderr) = run(
        &["--audit", "-"],
        &[("LOGREDACT_FINGERPRINT_KEY", KEY_MATERIAL)],
        &[format!("bearer {token}\n").as_bytes()],
    );
    assert_eq!(output, b"bearer dapi****\n");
    let record: Value = serde_json::from_str(stderr.trim_end()).unwrap();
    assert_eq!(record["keywords"], serde_json::json!(["bearer"]));
    assert_eq!(record["fingerprint"], fingerprint(&token));
}

#[test]
fn the_audit_file_in_the_configuration_and_the_flag_that_wins() {
    let dir = scratch("precedence");
    let from_file = dir.join("from-file.jsonl");
    let from_flag = dir.join("from-flag.jsonl");
    let config = dir.join("logredact.yaml");
    std::fs::write(
        &config,
        format!("audit: {{ path: '{}' }}\n", from_file.display()),
    )
    .unwrap();
    let token = TokenGen::new(64).token();
    let input = format!("{token}\n");
    let envs = [("LOGREDACT_FINGERPRINT_KEY", KEY_MATERIAL)];
    run(
        &["--config", config.to_str().unwrap()],
        &envs,
        &[input.as_bytes()],
    );
    assert_eq!(records(&from_file).len(), 1);
    run(
        &[
            "--config",
            config.to_str().unwrap(),
            "--audit",
            from_flag.to_str().unwrap(),
        ],
        &envs,
        &[input.as_bytes()],
    );
    assert_eq!(records(&from_file).len(), 1, "the flag wins over the file");
    assert_eq!(records(&from_flag).len(), 1);
}

#[test]
fn sprawl_summary_table_and_json() {
    let dir = scratch("summary");
    let key = key_file(&dir);
    let audit = dir.join("audit.jsonl");
    let mut tokens = TokenGen::new(65);
    let (a, b) = (tokens.token(), tokens.token());
    let args = [
        "--audit",
        audit.to_str().unwrap(),
        "--fingerprint-key-file",
        key.to_str().unwrap(),
    ];
    // Two runs append to the same file: `a` is seen three times, `b` once.
    run(
        &args,
        &[],
        &[format!("bearer {a}\n{}{b}\n", spacer()).as_bytes()],
    );
    run(
        &args,
        &[],
        &[format!("{a}\n{}an example {a}\n", spacer()).as_bytes()],
    );

    let output = binary()
        .args(["audit-summary", audit.to_str().unwrap(), "--json"])
        .output()
        .unwrap();
    assert!(output.status.success());
    let rows: Value = serde_json::from_slice(&output.stdout).unwrap();
    let rows = rows.as_array().unwrap();
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0]["fingerprint"], fingerprint(&a));
    assert_eq!(rows[0]["rule"], "databricks-pat");
    assert_eq!(rows[0]["count"], 3);
    assert_eq!(rows[0]["streams"], serde_json::json!(["stdin"]));
    assert_eq!(
        rows[0]["confidence"],
        serde_json::json!({"low": 1, "medium": 1, "high": 1})
    );
    assert!(rows[0]["first_seen"].as_str().unwrap() <= rows[0]["last_seen"].as_str().unwrap());
    assert_eq!(rows[1]["fingerprint"], fingerprint(&b));
    assert_eq!(rows[1]["count"], 1);

    let output = binary()
        .args(["audit-summary", audit.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(output.status.success());
    let table = String::from_utf8(output.stdout).unwrap();
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(lines.len(), 3, "{table}");
    assert!(
        lines[0].starts_with("FINGERPRINT       RULE            COUNT  STREAMS  FIRST SEEN"),
        "{table}"
    );
    assert!(
        lines[1].starts_with(&format!(
            "{}  databricks-pat      3        1  ",
            fingerprint(&a)
        )),
        "{table}"
    );
    assert!(
        lines[1].ends_with("  1       1     1         0  stdin"),
        "{table}"
    );

    let missing = binary()
        .args(["audit-summary", "/nonexistent.jsonl"])
        .output()
        .unwrap();
    assert_eq!(missing.status.code(), Some(1));
    assert_eq!(
        String::from_utf8(missing.stderr).unwrap(),
        "logredact: /nonexistent.jsonl: No such file or directory (os error 2)\n"
    );
}

/// Issue 14, item 10: the audit file is created private whatever the umask
/// (records hold fingerprints and stream names); a symbolic link at its path
/// is followed only with a warning.
#[test]
fn the_audit_file_is_private_and_a_link_there_is_told() {
    use std::os::unix::fs::PermissionsExt;
    let dir = scratch("private");
    let key = key_file(&dir);
    let fixture = fixture();
    let audit = dir.join("audit.jsonl");
    let args = [
        "--audit",
        audit.to_str().unwrap(),
        "--fingerprint-key-file",
        key.to_str().unwrap(),
    ];
    let (_, stderr) = run(&args, &[], &[fixture.input.as_bytes()]);
    assert_eq!(stderr, "");
    let mode = std::fs::metadata(&audit).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "{mode:o}");
    // A link planted at the path: followed, and said.
    let elsewhere = dir.join("elsewhere.jsonl");
    let linked = dir.join("linked.jsonl");
    std::os::unix::fs::symlink(&elsewhere, &linked).unwrap();
    let args = [
        "--audit",
        linked.to_str().unwrap(),
        "--fingerprint-key-file",
        key.to_str().unwrap(),
    ];
    let (_, stderr) = run(&args, &[], &[fixture.input.as_bytes()]);
    assert!(
        stderr.contains("the audit path is a symbolic link; following it"),
        "{stderr}"
    );
    check_records(&records(&elsewhere), &fixture);
}

/// Issue 14, item 7: a line longer than any audit record is an error that
/// names the file and the line (status 1, as for any malformed line), read
/// no further than the limit; and the summary of an ordinary file is, byte
/// for byte, what it was before per-fingerprint state was made compact (the
/// expected text below is what that version printed for this file).
#[test]
fn summary_limits_a_record_and_keeps_its_output() {
    let dir = scratch("summary-limits");
    let record = |ts: &str, stream: &str, rule: &str, confidence: &str, masked: bool, fp: &str| {
        format!(
            "{{\"ts\":\"{ts}\",\"stream\":\"{stream}\",\"rule\":\"{rule}\",\"offset\":1,\"line\":1,\"confidence\":\"{confidence}\",\"keywords\":[],\"exclusions\":[],\"placeholder\":false,\"masked\":{masked},\"fingerprint\":\"{fp}\"}}\n"
        )
    };
    let (app, tcp, pat) = (
        "file:/var/log/app.log",
        "tcp:10.0.0.7:51812",
        "databricks-pat",
    );
    let (a, b) = ("0f0f0f0f0f0f0f0f", "00000000000000ff");
    let text = [
        record("2026-11-22T14:00:02.000Z", "stdin", pat, "high", true, a),
        record("2026-11-22T14:00:01.500Z", tcp, pat, "low", true, a),
        record("2026-11-22T14:00:03.250Z", app, pat, "medium", false, a),
        record("2026-11-22T14:00:04.000Z", "stdin", pat, "high", true, b),
        record(
            "2026-11-22T14:00:05.000Z",
            "stdin",
            "other-rule",
            "high",
            true,
            b,
        ),
        record("2026-11-22T14:00:06.000Z", "stdin", pat, "medium", true, b),
        record("2026-11-22T14:00:00Z", app, pat, "low", true, "not-hex"),
    ]
    .concat();
    let audit = dir.join("audit.jsonl");
    std::fs::write(&audit, &text).unwrap();
    let summary = |args: &[&str]| {
        let output = binary().arg("audit-summary").args(args).output().unwrap();
        assert!(output.status.success(), "{}", transcript(&output));
        String::from_utf8(output.stdout).unwrap()
    };
    let table = summary(&[audit.to_str().unwrap()]);
    assert_eq!(
        table,
        "FINGERPRINT       RULE            COUNT  STREAMS  FIRST SEEN                LAST SEEN                 LOW  MEDIUM  HIGH  UNMASKED  STREAM IDS\n\
         0f0f0f0f0f0f0f0f  databricks-pat      3        3  2026-11-22T14:00:01.500Z  2026-11-22T14:00:03.250Z    1       1     1         1  file:/var/log/app.log,stdin,tcp:10.0.0.7:51812\n\
         00000000000000ff  databricks-pat      2        1  2026-11-22T14:00:04.000Z  2026-11-22T14:00:06.000Z    0       1     1         0  stdin\n\
         00000000000000ff  other-rule          1        1  2026-11-22T14:00:05.000Z  2026-11-22T14:00:05.000Z    0       0     1         0  stdin\n\
         not-hex           databricks-pat      1        1  2026-11-22T14:00:00Z      2026-11-22T14:00:00Z        1       0     0         0  file:/var/log/app.log\n"
    );
    let json = summary(&["--json", audit.to_str().unwrap()]);
    assert_eq!(
        json,
        concat!(
            r#"[{"fingerprint":"0f0f0f0f0f0f0f0f","rule":"databricks-pat","count":3,"unmasked":1,"streams":["file:/var/log/app.log","stdin","tcp:10.0.0.7:51812"],"first_seen":"2026-11-22T14:00:01.500Z","last_seen":"2026-11-22T14:00:03.250Z","confidence":{"low":1,"medium":1,"high":1}},"#,
            r#"{"fingerprint":"00000000000000ff","rule":"databricks-pat","count":2,"unmasked":0,"streams":["stdin"],"first_seen":"2026-11-22T14:00:04.000Z","last_seen":"2026-11-22T14:00:06.000Z","confidence":{"low":0,"medium":1,"high":1}},"#,
            r#"{"fingerprint":"00000000000000ff","rule":"other-rule","count":1,"unmasked":0,"streams":["stdin"],"first_seen":"2026-11-22T14:00:05.000Z","last_seen":"2026-11-22T14:00:05.000Z","confidence":{"low":0,"medium":0,"high":1}},"#,
            r#"{"fingerprint":"not-hex","rule":"databricks-pat","count":1,"unmasked":0,"streams":["file:/var/log/app.log"],"first_seen":"2026-11-22T14:00:00Z","last_seen":"2026-11-22T14:00:00Z","confidence":{"low":1,"medium":0,"high":0}}]"#,
            "\n"
        )
    );

    // A well-formed record of 64 KiB + 1 byte (a long stream id) on line 3,
    // with or without its newline; and from standard input.
    let long = record(
        "2026-11-22T14:00:00.000Z",
        &format!("file:/{}", "a".repeat(65_536)),
        pat,
        "high",
        true,
        a,
    );
    for tail in ["\n", ""] {
        let file = dir.join("long.jsonl");
        let first_two: String = text.lines().take(2).map(|l| format!("{l}\n")).collect();
        std::fs::write(&file, format!("{first_two}{}{tail}", long.trim_end())).unwrap();
        let output = binary()
            .args(["audit-summary", file.to_str().unwrap()])
            .output()
            .unwrap();
        assert_eq!(output.status.code(), Some(1), "{}", transcript(&output));
        assert_eq!(output.stdout, b"");
        assert_eq!(
            String::from_utf8(output.stderr).unwrap(),
            format!(
                "logredact: {}:3: not an audit record: longer than 65536 bytes\n",
                file.display()
            )
        );
    }
    let mut command = binary();
    command.args(["audit-summary", "-"]);
    let output = output_with_stdin(command, format!("{long}{text}").as_bytes());
    assert_eq!(output.status.code(), Some(1), "{}", transcript(&output));
    assert_eq!(
        String::from_utf8(output.stderr).unwrap(),
        "logredact: stdin:1: not an audit record: longer than 65536 bytes\n"
    );
}
