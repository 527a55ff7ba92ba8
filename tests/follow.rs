//! Following files like `tail -F`, on real files: appends, rename and
//! copy-truncate rotation, a file created late, and restarts from the
//! checkpoint — nothing skipped, nothing written twice.

mod common;

use std::fs::{self, OpenOptions};
use std::path::{Path, PathBuf};
use std::time::Duration;

use common::*;

/// Appends to a file and remembers everything written, in order.
fn record(written: &mut Vec<u8>, path: &Path, bytes: &[u8]) {
    append(path, bytes);
    written.extend_from_slice(bytes);
}

fn follow(log: &Path, state: &Path) -> Running {
    Running::spawn(&[
        "--input",
        &format!("follow:{}", log.display()),
        "--state-dir",
        state.to_str().unwrap(),
    ])
}

/// Waits for the output to be exactly `expected`.
fn expect_output(run: &mut Running, expected: &[u8]) {
    let got = run
        .read_at_least(expected.len(), Duration::from_secs(10))
        .to_vec();
    assert_eq!(
        String::from_utf8_lossy(&got),
        String::from_utf8_lossy(expected)
    );
}

fn stop(run: Running) -> Vec<u8> {
    signal(&run.child, "TERM");
    let (status, output, stderr) = run.finish();
    assert!(status.success(), "{stderr}");
    output
}

#[test]
fn a_token_split_across_two_appends() {
    let dir = scratch("split");
    let log = dir.join("app.log");
    let token = TokenGen::new(600).token();
    append(&log, b"first line\n");
    let mut run = follow(&log, &dir.join("state"));
    expect_output(&mut run, b"first line\n");
    append(
        &log,
        format!("Authorization: Bearer {}", &token[..17]).as_bytes(),
    );
    // The decided part is written; the partial token is held back.
    expect_output(&mut run, b"first line\nAuthorization: Bearer ");
    std::thread::sleep(Duration::from_millis(400));
    assert_eq!(
        run.read_for(Duration::from_millis(100)),
        b"first line\nAuthorization: Bearer "
    );
    append(&log, format!("{}\n", &token[17..]).as_bytes());
    expect_output(&mut run, b"first line\nAuthorization: Bearer dapi****\n");
    stop(run);
}

#[test]
fn rename_rotation_and_copy_truncate() {
    let dir = scratch("rotation");
    let log = dir.join("app.log");
    let mut tokens = TokenGen::new(601);
    let mut written = Vec::new();
    record(
        &mut written,
        &log,
        format!("before rotation {}\n", tokens.token()).as_bytes(),
    );
    let mut run = follow(&log, &dir.join("state"));
    expect_output(&mut run, &reference_redaction(&written));
    // Rename rotation: the writer renames, reopens and goes on.
    record(
        &mut written,
        &log,
        format!("last line of the old file {}\n", tokens.token()).as_bytes(),
    );
    fs::rename(&log, dir.join("app.log.1")).unwrap();
    record(
        &mut written,
        &log,
        format!("first line of the new file {}\n", tokens.token()).as_bytes(),
    );
    expect_output(&mut run, &reference_redaction(&written));
    // Copy-truncate rotation: copied away, truncated in place.
    fs::copy(&log, dir.join("app.log.2")).unwrap();
    OpenOptions::new()
        .write(true)
        .open(&log)
        .unwrap()
        .set_len(0)
        .unwrap();
    std::thread::sleep(Duration::from_millis(400));
    record(
        &mut written,
        &log,
        format!("after truncation {}\n", tokens.token()).as_bytes(),
    );
    expect_output(&mut run, &reference_redaction(&written));
    let output = stop(run);
    assert!(output == reference_redaction(&written));
}

#[test]
fn a_file_created_late() {
    let dir = scratch("late");
    let log = dir.join("not-yet.log");
    let mut run = follow(&log, &dir.join("state"));
    std::thread::sleep(Duration::from_millis(500));
    assert!(run.read_for(Duration::from_millis(50)).is_empty());
    let token = TokenGen::new(602).token();
    append(&log, format!("created {token}\n").as_bytes());
    expect_output(&mut run, b"created dapi****\n");
    stop(run);
}

#[test]
fn a_directory_created_late_is_followed_by_polling() {
    // With no directory to watch, there are no change notifications: the
    // follower polls, and must still see the file appear, grow and rotate.
    let dir = scratch("polling");
    let log = dir.join("logs").join("app.log");
    let mut run = follow(&log, &dir.join("state"));
    std::thread::sleep(Duration::from_millis(500));
    fs::create_dir(dir.join("logs")).unwrap();
    let mut tokens = TokenGen::new(606);
    let mut written = Vec::new();
    record(
        &mut written,
        &log,
        format!("first {}\n", tokens.token()).as_bytes(),
    );
    expect_output(&mut run, &reference_redaction(&written));
    record(
        &mut written,
        &log,
        format!("last of the old file {}\n", tokens.token()).as_bytes(),
    );
    fs::rename(&log, dir.join("logs").join("app.log.1")).unwrap();
    record(
        &mut written,
        &log,
        format!("first of the new file {}\n", tokens.token()).as_bytes(),
    );
    expect_output(&mut run, &reference_redaction(&written));
    signal(&run.child, "TERM");
    let (status, output, stderr) = run.finish();
    assert!(status.success(), "{stderr}");
    assert_eq!(output, reference_redaction(&written));
    assert!(
        stderr.contains("no change notifications; polling"),
        "{stderr}"
    );
}

#[test]
fn restart_from_the_checkpoint_skips_nothing_and_repeats_nothing() {
    let dir = scratch("restart");
    let (log, state) = (dir.join("app.log"), dir.join("state"));
    let token = TokenGen::new(603).token();
    let mut written = Vec::new();
    let first = format!("one\ntwo Bearer {}", &token[..21]);
    append(&log, first.as_bytes());
    written.extend_from_slice(first.as_bytes());
    let mut run = follow(&log, &state);
    expect_output(&mut run, b"one\ntwo Bearer ");
    // Give the checkpoint (saved every second) time to catch up, then stop
    // with a token half written.
    std::thread::sleep(Duration::from_millis(1300));
    let before = stop(run);
    assert_eq!(before, b"one\ntwo Bearer ");
    // While logredact is down, the token is completed and more is written.
    let second = format!("{}\nthree\n", &token[21..]);
    append(&log, second.as_bytes());
    written.extend_from_slice(second.as_bytes());
    let mut run = follow(&log, &state);
    let after_expected = b"dapi****\nthree\n";
    expect_output(&mut run, after_expected);
    let after = stop(run);
    assert_eq!(after, after_expected);
    assert!([before, after].concat() == reference_redaction(&written));
}

#[test]
fn a_rotation_while_stopped_reads_the_rest_of_the_old_file_first() {
    let dir = scratch("rotated-while-down");
    let (log, state) = (dir.join("app.log"), dir.join("state"));
    let mut tokens = TokenGen::new(604);
    let mut written = Vec::new();
    record(
        &mut written,
        &log,
        format!("a {}\n", tokens.token()).as_bytes(),
    );
    let mut run = follow(&log, &state);
    expect_output(&mut run, &reference_redaction(&written));
    std::thread::sleep(Duration::from_millis(1300));
    let mut outputs = stop(run);
    // Down: the old file gets more lines, is renamed, and a new one starts.
    record(
        &mut written,
        &log,
        format!("b {}\n", tokens.token()).as_bytes(),
    );
    fs::rename(&log, dir.join("app.log.1")).unwrap();
    record(
        &mut written,
        &log,
        format!("c {}\n", tokens.token()).as_bytes(),
    );
    let mut run = follow(&log, &state);
    let expected = reference_redaction(&written);
    expect_output(&mut run, &expected[outputs.len()..]);
    outputs.extend(stop(run));
    assert!(outputs == expected);
}

#[test]
fn checkpoints_are_saved_atomically_as_json() {
    let dir = scratch("checkpoint-file");
    let (log, state) = (dir.join("app.log"), dir.join("state"));
    append(&log, b"hello\n");
    let mut run = follow(&log, &state);
    expect_output(&mut run, b"hello\n");
    std::thread::sleep(Duration::from_millis(1300));
    stop(run);
    let files: Vec<PathBuf> = fs::read_dir(&state)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(files.len(), 1, "{files:?}");
    let checkpoint: serde_json::Value =
        serde_json::from_slice(&fs::read(&files[0]).unwrap()).unwrap();
    assert_eq!(checkpoint["offset"], 6);
    assert_eq!(checkpoint["stream_offset"], 6);
    assert_eq!(checkpoint["byte_before"], 10);
    assert_eq!(checkpoint["path"], log.display().to_string());
    let ino = std::os::unix::fs::MetadataExt::ino(&fs::metadata(&log).unwrap());
    assert_eq!(checkpoint["ino"], ino);
}

/// Beside a TCP input, a followed file shares a merged output, written a
/// whole line at a time: its checkpoint follows the whole lines written, not
/// waiting for a partial last line, and at shutdown it covers what was
/// written in the end.
#[test]
fn merged_with_a_tcp_input_the_checkpoint_follows_the_lines_written() {
    let dir = scratch("merged-checkpoint");
    let (log, state) = (dir.join("app.log"), dir.join("state"));
    let token = TokenGen::new(605).token();
    let lines = format!("line1 {token}\nline2\n");
    let first = format!("{lines}partial-no-newline");
    append(&log, first.as_bytes());
    let port = free_port();
    let args = [
        "--input".to_string(),
        format!("follow:{}", log.display()),
        "--input".into(),
        format!("tcp://127.0.0.1:{port}"),
        "--state-dir".into(),
        state.display().to_string(),
    ];
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut run = Running::spawn(&args);
    expect_output(&mut run, &reference_redaction(lines.as_bytes()));
    wait_for_checkpoint(&state, lines.len() as u64);
    signal(&run.child, "TERM");
    let (status, output, stderr) = run.finish();
    assert!(status.success(), "{stderr}");
    assert!(output == reference_redaction(first.as_bytes()), "{stderr}");
    assert_eq!(checkpoint_offset(&state), Some(first.len() as u64));
    // A restart repeats nothing.
    append(&log, b"-end\nmore\n");
    let mut run = Running::spawn(&args);
    expect_output(&mut run, b"-end\nmore\n");
    assert_eq!(stop(run), b"-end\nmore\n");
}
