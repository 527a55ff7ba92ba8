//! Pipe mode on the built binary: standard input to standard output, exact,
//! prompt, and quiet when the reader goes away.

mod common;

use std::io::Write;
use std::time::Duration;

use common::*;

const PROMPT: Duration = Duration::from_secs(5);

#[test]
fn a_token_split_across_two_writes_with_a_pause() {
    let token = TokenGen::new(30).token();
    let mut run = Running::spawn(&[]);
    run.write(format!("Authorization: Bearer {}", &token[..20]).as_bytes());
    // The decided prefix is written at once; the partial token is held back.
    assert_eq!(run.read_at_least(22, PROMPT), b"Authorization: Bearer ");
    assert_eq!(
        run.read_for(Duration::from_millis(500)),
        b"Authorization: Bearer "
    );
    run.write(format!("{}\n", &token[20..]).as_bytes());
    assert_eq!(
        run.read_at_least(31, PROMPT),
        b"Authorization: Bearer dapi****\n"
    );
    let (status, output, stderr) = run.finish();
    assert!(status.success());
    assert_eq!(output, b"Authorization: Bearer dapi****\n");
    assert_eq!(stderr, "");
}

#[test]
fn each_line_comes_back_before_the_next_is_sent() {
    let mut tokens = TokenGen::new(31);
    let mut run = Running::spawn(&[]);
    let mut expected_total = Vec::new();
    for i in 0..20 {
        let line = if i % 3 == 0 {
            format!("{{\"msg\":\"no secret here\",\"n\":{i}}}\n")
        } else {
            format!(
                "{{\"msg\":\"token {}\",\"auth\":\"Bearer {}\",\"n\":{i}}}\n",
                tokens.token(),
                tokens.token()
            )
        };
        let expected = reference_redaction(line.as_bytes());
        expected_total.extend_from_slice(&expected);
        run.write(line.as_bytes());
        let got = run.read_at_least(expected_total.len(), PROMPT);
        assert_eq!(
            got,
            &expected_total[..],
            "line {i} was not answered promptly"
        );
    }
    let (status, output, _) = run.finish();
    assert!(status.success());
    assert_eq!(output, expected_total);
}

#[test]
fn a_line_ending_in_a_token_is_answered_at_once() {
    let token = TokenGen::new(32).token();
    let mut run = Running::spawn(&[]);
    run.write(format!("token={token}\n").as_bytes());
    assert_eq!(run.read_at_least(15, PROMPT), b"token=dapi****\n");
    run.finish();
}

#[test]
fn bytes_are_passed_through_exactly() {
    let mut tokens = TokenGen::new(33);
    let mut input = Vec::new();
    input.extend_from_slice(b"\0\0binary\xff\xfe\xc3\x28 invalid utf-8\r\n");
    input.extend_from_slice(format!("\u{e9}{}\u{e9}\n", tokens.token()).as_bytes());
    input.extend_from_slice(b"\n\n\r\r");
    input.extend_from_slice(format!("last line without newline {}", tokens.token()).as_bytes());
    let mut run = Running::spawn(&[]);
    run.write(&input);
    let (status, output, stderr) = run.finish();
    assert!(status.success());
    assert_eq!(output, reference_redaction(&input));
    assert!(output.ends_with(b"without newline dapi****"));
    assert_eq!(stderr, "");
}

#[test]
fn a_large_input_streams_through_exactly() {
    let mut tokens = TokenGen::new(34);
    let mut input = Vec::new();
    while input.len() < 8 << 20 {
        let n = tokens.next_u64();
        match n % 7 {
            0 => input.extend_from_slice(format!("bearer {} ", tokens.token()).as_bytes()),
            1 => input.extend_from_slice(format!("near dapi{} ", tokens.hex(31)).as_bytes()),
            2 => input.push(b'\n'),
            3 => input.extend_from_slice(&n.to_le_bytes()),
            _ => input.extend_from_slice(b"ordinary log text with words "),
        }
    }
    let output = output_with_stdin(binary(), &input);
    assert!(output.status.success());
    assert!(
        output.stdout == reference_redaction(&input),
        "output differs from the reference"
    );
}

#[test]
fn a_reader_that_goes_away_stops_logredact_quietly() {
    let mut child = spawn_piped(&mut binary());
    let mut stdin = child.stdin.take().unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let mut first = [0u8; 100];
    let writer = std::thread::spawn(move || {
        let line = b"a line of log text that goes on for a while\n";
        // Writes fail once logredact has gone.
        for _ in 0..1_000_000 {
            if stdin.write_all(line).is_err() {
                return;
            }
        }
    });
    std::io::Read::read_exact(&mut stdout, &mut first).unwrap();
    drop(stdout);
    let status = wait_with_deadline(&mut child, Duration::from_secs(10));
    writer.join().unwrap();
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
    assert!(status.success(), "{status:?}");
    assert_eq!(stderr, "", "no message, and above all no panic");
}

#[test]
fn help_version_and_unknown_flags() {
    let help = binary().arg("--help").output().unwrap();
    assert!(help.status.success());
    let text = String::from_utf8(help.stdout).unwrap();
    assert!(text.contains("Usage: logredact"), "{text}");

    let version = binary().arg("--version").output().unwrap();
    assert!(version.status.success());
    assert_eq!(
        String::from_utf8(version.stdout).unwrap(),
        format!("logredact {}\n", env!("CARGO_PKG_VERSION"))
    );

    let unknown = binary().arg("--no-such-flag").output().unwrap();
    assert_eq!(unknown.status.code(), Some(2));
    let message = String::from_utf8(unknown.stderr).unwrap();
    assert!(
        message.contains("unexpected argument '--no-such-flag'"),
        "{message}"
    );
    assert!(message.contains("Usage: logredact"), "{message}");
    assert!(unknown.stdout.is_empty());
}

#[test]
fn a_reader_gone_while_a_token_is_undecided_stops_logredact_quietly() {
    let mut child = spawn_piped(&mut binary());
    drop(child.stdout.take());
    let mut stdin = child.stdin.take().unwrap();
    // The first line fails to be written; the start of a token is held back
    // when everything stops. Standard input stays open meanwhile.
    let token = TokenGen::new(31).token();
    stdin
        .write_all(format!("a line\nx {}", &token[..20]).as_bytes())
        .unwrap();
    let status = wait_with_deadline(&mut child, Duration::from_secs(10));
    drop(stdin);
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
    assert!(status.success(), "{status:?}");
    assert_eq!(stderr, "");
}

#[test]
fn the_shipped_sample_redacts_to_its_golden_copy() {
    let sample = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/sample.log"
    ))
    .unwrap();
    let golden = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/sample.redacted.log"
    ))
    .unwrap();
    assert_eq!(
        golden,
        reference_redaction(&sample),
        "the golden copy is the reference redaction"
    );
    let mut run = Running::spawn(&[]);
    run.write(&sample);
    let (status, output, stderr) = run.finish();
    assert!(status.success());
    assert_eq!(output, golden);
    assert_eq!(stderr, "");
}

#[test]
fn the_fatal_error_is_a_json_record_with_json_logs() {
    let dir = scratch("fatal-json");
    let missing = dir.join("missing.log");
    let input = format!("file:{}", missing.display());
    let expected =
        format!("logredact: opening input {input}: No such file or directory (os error 2)");
    // Printed whatever the filter says: it is why the process stopped.
    let output = binary()
        .args(["--log-format", "json", "--input", &input])
        .env("LOGREDACT_LOG", "off")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    let record: serde_json::Value = serde_json::from_str(stderr.trim_end()).unwrap();
    assert_eq!(record["level"], "ERROR");
    assert_eq!(record["fields"]["message"], expected.as_str());
    // In text, the same words.
    let output = binary().args(["--input", &input]).output().unwrap();
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(String::from_utf8(output.stderr).unwrap(), expected + "\n");
}
