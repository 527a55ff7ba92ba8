//! No secret, whole or in part, appears anywhere logredact writes: the
//! redacted output, the audit stream, the summary, its own logs at the most
//! verbose level, and its error messages — even errors about input that
//! contains tokens.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};

use common::*;

fn scratch(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("no-leak")
        .join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Fails if any 12-character run of any token's hex digits is in `bytes`.
fn assert_clean(what: &str, bytes: &[u8], tokens: &[String]) {
    let text = String::from_utf8_lossy(bytes);
    for token in tokens {
        let hex = &token[4..];
        for start in 0..=hex.len() - 12 {
            let run = &hex[start..start + 12];
            assert!(
                !text.contains(run),
                "{what} contains part of a token ({run})"
            );
        }
    }
}

fn run(args: &[&str], stdin: &[u8]) -> Output {
    let mut child = binary()
        .args(args)
        .env("LOGREDACT_LOG", "trace")
        .env("RUST_LOG", "trace")
        .env("RUST_BACKTRACE", "1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    let stdin = stdin.to_vec();
    let writer = std::thread::spawn(move || std::io::Write::write_all(&mut input, &stdin));
    let output = child.wait_with_output().unwrap();
    let _ = writer.join();
    output
}

#[test]
fn pipe_audit_summary_and_trace_logs_carry_no_token() {
    let dir = scratch("pipe");
    let mut generator = TokenGen::new(70);
    let tokens: Vec<String> = (0..20).map(|_| generator.token()).collect();
    let mut input = Vec::new();
    for (i, token) in tokens.iter().enumerate() {
        input.extend_from_slice(format!("line {i} bearer {token} and {token}-2\n").as_bytes());
        // A token cut off by the end of the stream must not leak either.
        if i == 19 {
            input.extend_from_slice(format!("tail {}", &token[..30]).as_bytes());
        }
    }
    let audit = dir.join("audit.jsonl");
    let output = run(&["--audit", audit.to_str().unwrap()], &input);
    assert!(output.status.success());
    assert_clean("stdout", &output.stdout, &tokens[..19]);
    assert_clean("stderr", &output.stderr, &tokens);
    assert_clean("the audit file", &std::fs::read(&audit).unwrap(), &tokens);
    assert_eq!(std::fs::read_to_string(&audit).unwrap().lines().count(), 40);

    let output = run(&["--audit", "-"], &input);
    assert_clean("stderr with the audit stream", &output.stderr, &tokens);

    for args in [vec!["audit-summary"], vec!["audit-summary", "--json"]] {
        let mut args = args;
        args.push(audit.to_str().unwrap());
        let output = run(&args, b"");
        assert!(output.status.success());
        assert_clean("the summary", &output.stdout, &tokens);
        assert_clean("the summary's stderr", &output.stderr, &tokens);
    }
}

#[test]
fn error_messages_about_input_carry_no_token() {
    let dir = scratch("errors");
    let mut generator = TokenGen::new(71);
    let tokens: Vec<String> = (0..4).map(|_| generator.token()).collect();

    // A configuration with a token where an output should be.
    let config = dir.join("bad.yaml");
    std::fs::write(&config, format!("output: '{}'\n", tokens[0])).unwrap();
    let output = run(&["--config", config.to_str().unwrap()], b"");
    assert_eq!(output.status.code(), Some(2));
    let message = String::from_utf8_lossy(&output.stderr);
    assert!(message.contains("unknown output 'dapi****'"), "{message}");
    assert_clean("a configuration error", &output.stderr, &tokens);
    let output = run(&["check-config", config.to_str().unwrap()], b"");
    assert_clean("check-config", &output.stderr, &tokens);

    // A token in a mistyped YAML value.
    std::fs::write(&config, format!("rules: '{}'\n", tokens[1])).unwrap();
    let output = run(&["--config", config.to_str().unwrap()], b"");
    assert_eq!(output.status.code(), Some(2));
    assert_clean("a YAML type error", &output.stderr, &tokens);

    // A log file given to audit-summary by mistake.
    let log = dir.join("app.log");
    std::fs::write(
        &log,
        format!(
            "{{\"ts\":\"{}\",\"stream\":7,\"token\":\"{}\"}}\n",
            tokens[2], tokens[3]
        ),
    )
    .unwrap();
    let output = run(&["audit-summary", log.to_str().unwrap()], b"");
    assert_eq!(output.status.code(), Some(1));
    assert_clean("an audit-summary error", &output.stderr, &tokens);
    let message = String::from_utf8_lossy(&output.stderr);
    assert!(
        message.contains("app.log:1: not an audit record"),
        "{message}"
    );

    // A command-line value.
    let output = run(&["--audit", &format!("/nonexistent/{}", tokens[0])], b"");
    assert_eq!(output.status.code(), Some(1));
    assert_clean("an audit open error", &output.stderr, &tokens);
}
