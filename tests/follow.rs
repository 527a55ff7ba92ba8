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
    let mut files: Vec<PathBuf> = fs::read_dir(&state)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    // The checkpoint, the key of the content fingerprints in it, and the
    // lock that keeps a second logredact out.
    assert_eq!(files.len(), 3, "{files:?}");
    assert!(files[1].ends_with("identity.key"), "{files:?}");
    assert!(files[2].ends_with("lock"), "{files:?}");
    for file in &files {
        let mode =
            std::os::unix::fs::PermissionsExt::mode(&fs::metadata(file).unwrap().permissions());
        assert_eq!(mode & 0o777, 0o600, "{}", file.display());
    }
    let checkpoint: serde_json::Value =
        serde_json::from_slice(&fs::read(&files[0]).unwrap()).unwrap();
    assert_eq!(checkpoint["offset"], 6);
    assert_eq!(checkpoint["stream_offset"], 6);
    assert_eq!(checkpoint["byte_before"], 10);
    assert_eq!(checkpoint["path"], log.display().to_string());
    let ino = std::os::unix::fs::MetadataExt::ino(&fs::metadata(&log).unwrap());
    assert_eq!(checkpoint["ino"], ino);
    assert_eq!(checkpoint["fingerprint_len"], 6);
    assert_eq!(checkpoint["fingerprint"].as_str().map(str::len), Some(32));
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
    // Merged output ends the open line when the stream stops: another
    // stream's line, written while draining, must not run on from it.
    let mut ended = reference_redaction(first.as_bytes());
    ended.push(b'\n');
    assert!(output == ended, "{stderr}");
    assert_eq!(checkpoint_offset(&state), Some(first.len() as u64));
    // A restart repeats nothing.
    append(&log, b"-end\nmore\n");
    let mut run = Running::spawn(&args);
    expect_output(&mut run, b"-end\nmore\n");
    assert_eq!(stop(run), b"-end\nmore\n");
}

// Tracker issue 13: a file is known by its content as well as its inode,
// every rotated generation is read, and a truncation is a cut.

/// Fails if `haystack` holds a run of 8 or more hex digits of any token.
fn assert_no_token_part(what: &str, haystack: &[u8], tokens: &[String]) {
    for token in tokens {
        let hex = &token.as_bytes()[4..];
        for part in hex.windows(8) {
            assert!(
                !haystack.windows(8).any(|w| w == part),
                "{what} holds part of a token"
            );
        }
    }
}

/// Log lines that each carry a fresh token; the tokens are kept for the
/// leak checks.
struct TokenLines {
    tokens: TokenGen,
    used: Vec<String>,
}

impl TokenLines {
    fn new(seed: u64) -> TokenLines {
        TokenLines {
            tokens: TokenGen::new(seed),
            used: Vec::new(),
        }
    }

    /// `label`, a space, a fresh token and a newline.
    fn line(&mut self, label: &str) -> String {
        let token = self.tokens.token();
        let line = format!("{label} {token}\n");
        self.used.push(token);
        line
    }
}

/// The checkpoint files in `state`: none may hold part of a token either.
fn assert_state_clean(state: &Path, tokens: &[String]) {
    for entry in fs::read_dir(state).unwrap() {
        let path = entry.unwrap().path();
        assert_no_token_part(
            &path.display().to_string(),
            &fs::read(&path).unwrap(),
            tokens,
        );
    }
}

/// Like `stop`, also returning what logredact logged.
fn stop_with_log(run: Running) -> (Vec<u8>, String) {
    signal(&run.child, "TERM");
    let (status, output, stderr) = run.finish();
    assert!(status.success(), "{stderr}");
    (output, stderr)
}

/// Stops a run whose output must be exactly `expected`, and checks that no
/// part of `tokens` reached the output, logredact's log or the state
/// directory; returns the log.
fn stop_clean(run: Running, expected: &[u8], state: &Path, tokens: &[String]) -> String {
    let (output, stderr) = stop_with_log(run);
    assert_eq!(
        String::from_utf8_lossy(&output),
        String::from_utf8_lossy(expected)
    );
    assert_no_token_part("stdout", &output, tokens);
    assert_no_token_part("stderr", stderr.as_bytes(), tokens);
    assert_state_clean(state, tokens);
    stderr
}

/// Stops a run that resumed after `before` (the output of the runs before
/// it): all of them together must be the redaction of `written`, exactly,
/// with no part of `tokens` in the output, the log or the state directory.
fn resumed_exactly(
    mut run: Running,
    mut before: Vec<u8>,
    written: &[u8],
    state: &Path,
    tokens: &[String],
) {
    let expected = reference_redaction(written);
    expect_output(&mut run, &expected[before.len()..]);
    let (after, stderr) = stop_with_log(run);
    before.extend(after);
    assert!(before == expected, "{}", String::from_utf8_lossy(&before));
    assert_no_token_part("stdout", &before, tokens);
    assert_no_token_part("stderr", stderr.as_bytes(), tokens);
    assert_state_clean(state, tokens);
}

/// Lines of filler making exactly `len` bytes.
fn filler(len: usize) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(len);
    while bytes.len() < len {
        let line = format!("filler line {:06}\n", bytes.len());
        bytes.extend_from_slice(line.as_bytes());
    }
    bytes.truncate(len);
    bytes
}

/// Issue 13, first failure: logredact stops with its checkpoint at offset
/// 1000 of `app.log`; the file is deleted and a new one created, which gets
/// the same inode number (ext4 hands a freed one out at once). The new file
/// is another file: it is read from its start, and the token at byte 996 is
/// masked, not written from its second byte on.
#[test]
fn a_new_file_with_a_reused_inode_is_read_from_its_start() {
    let dir = scratch("inode-reuse");
    let (log, state) = (dir.join("app.log"), dir.join("state"));
    let mut tokens = TokenGen::new(610);
    let (old_token, new_token) = (tokens.token(), tokens.token());
    let old = [filler(999), b"\n".to_vec()].concat();
    append(&log, &old);
    let mut run = follow(&log, &state);
    expect_output(&mut run, &old);
    wait_for_checkpoint(&state, 1000);
    let (before, _) = stop_with_log(run);
    assert_eq!(before, old);
    let old_ino = std::os::unix::fs::MetadataExt::ino(&fs::metadata(&log).unwrap());

    // Deleted and created again while logredact is down. Should the file
    // system pick another inode, rewriting the file in place gives the
    // same condition: the checkpointed inode holding other content.
    fs::remove_file(&log).unwrap();
    let new = [
        filler(995),
        format!(" {new_token} {old_token}\nend\n").into_bytes(),
    ]
    .concat();
    append(&log, &new);
    let ino = std::os::unix::fs::MetadataExt::ino(&fs::metadata(&log).unwrap());
    if ino != old_ino {
        fs::write(dir.join("other"), b"x").unwrap();
        fs::remove_file(&log).unwrap();
        fs::rename(dir.join("other"), &log).unwrap();
        fs::write(&log, &new).unwrap();
    }
    let mut run = follow(&log, &state);
    let expected = reference_redaction(&new);
    expect_output(&mut run, &expected);
    let (after, stderr) = stop_with_log(run);
    assert!(after == expected, "{}", String::from_utf8_lossy(&after));
    let tokens = [old_token, new_token];
    assert_no_token_part("stdout", &after, &tokens);
    assert_no_token_part("stderr", stderr.as_bytes(), &tokens);
    assert_state_clean(&state, &tokens);
}

/// Issue 13, second failure: two logrotate-style rotations while logredact
/// is down (`app.log` → `app.log.1` → `app.log.2`). The rest of the
/// checkpointed file, then the middle generation, then the live file.
#[test]
fn two_rotations_while_stopped_read_every_generation() {
    let dir = scratch("two-rotations-down");
    let (log, state) = (dir.join("app.log"), dir.join("state"));
    let generation = |n: u32| dir.join(format!("app.log.{n}"));
    let mut lines = TokenLines::new(611);
    let mut written = Vec::new();
    record(&mut written, &log, lines.line("a").as_bytes());
    let mut run = follow(&log, &state);
    expect_output(&mut run, &reference_redaction(&written));
    wait_for_checkpoint(&state, written.len() as u64);
    let outputs = stop(run);
    // Down: the first file gets more, is rotated twice, and the middle
    // generation gets lines of its own.
    record(&mut written, &log, lines.line("b").as_bytes());
    fs::rename(&log, generation(1)).unwrap();
    record(&mut written, &log, lines.line("c").as_bytes());
    fs::rename(generation(1), generation(2)).unwrap();
    fs::rename(&log, generation(1)).unwrap();
    record(&mut written, &log, lines.line("d").as_bytes());
    // Logrotate's compressed generations are not read.
    fs::write(dir.join("app.log.3.gz"), lines.line("never read")).unwrap();
    let run = follow(&log, &state);
    resumed_exactly(run, outputs, &written, &state, &lines.used);
}

/// Issue 13, second failure while running: two rotations between two looks
/// at the directory. The middle generation is read too.
#[test]
fn two_rotations_between_two_checks_read_every_generation() {
    let dir = scratch("two-rotations-running");
    let (log, state) = (dir.join("app.log"), dir.join("state"));
    let generation = |n: u32| dir.join(format!("app.log.{n}"));
    let mut lines = TokenLines::new(612);
    let mut written = Vec::new();
    record(&mut written, &log, lines.line("a").as_bytes());
    let mut run = follow(&log, &state);
    expect_output(&mut run, &reference_redaction(&written));
    // As fast as the test can: the middle file lives for microseconds.
    // `app.log.2` is created first, so that the rotations below are only
    // renames: the directory changes as logrotate changes it.
    fs::rename(&log, generation(1)).unwrap();
    let mut middle = lines.line("b").into_bytes();
    middle.extend_from_slice(lines.line("c").as_bytes());
    fs::write(&log, &middle).unwrap();
    written.extend_from_slice(&middle);
    fs::rename(generation(1), generation(2)).unwrap();
    fs::rename(&log, generation(1)).unwrap();
    record(&mut written, &log, lines.line("d").as_bytes());
    let expected = reference_redaction(&written);
    expect_output(&mut run, &expected);
    let (output, stderr) = stop_with_log(run);
    assert!(output == expected, "{}", String::from_utf8_lossy(&output));
    assert_no_token_part("stdout", &output, &lines.used);
    assert_no_token_part("stderr", stderr.as_bytes(), &lines.used);
}

/// Issue 13, third failure: copy-truncate while a token is half written.
/// The held-back start of the token (undecided: more hex may follow) is
/// not joined to the new content's first bytes and written as "not a
/// token": the truncation is a cut, and the held bytes are dropped.
#[test]
fn copy_truncate_drops_the_held_back_start_of_a_token() {
    let dir = scratch("copy-truncate-cut");
    let (log, state) = (dir.join("app.log"), dir.join("state"));
    let token = TokenGen::new(613).token();
    append(&log, format!("line\nkey {}", &token[..20]).as_bytes());
    let mut run = follow(&log, &state);
    expect_output(&mut run, b"line\nkey ");
    fs::copy(&log, dir.join("app.log.1")).unwrap();
    OpenOptions::new()
        .write(true)
        .open(&log)
        .unwrap()
        .set_len(0)
        .unwrap();
    std::thread::sleep(Duration::from_millis(400));
    append(&log, b"next line\n");
    // The old content's open line is ended at the cut: no output line holds
    // bytes of two contents.
    let expected = b"line\nkey \nnext line\n";
    expect_output(&mut run, expected);
    stop_clean(run, expected, &state, &[token]);
}

fn follow_with_admin(log: &Path, state: &Path, admin: u16) -> Running {
    Running::spawn(&[
        "--input",
        &format!("follow:{}", log.display()),
        "--state-dir",
        state.to_str().unwrap(),
        "--admin",
        &format!("127.0.0.1:{admin}"),
    ])
}

/// A truncation with no copy of the old content: the stream is cut (the
/// held-back start of a token is dropped), logged and counted, and goes on
/// with the new content.
#[test]
fn a_truncation_without_a_copy_is_a_counted_cut() {
    let dir = scratch("truncate-cut");
    let (log, state) = (dir.join("app.log"), dir.join("state"));
    let token = TokenGen::new(614).token();
    append(&log, format!("line\nkey {}", &token[..24]).as_bytes());
    let admin = free_port();
    let mut run = follow_with_admin(&log, &state, admin);
    expect_output(&mut run, b"line\nkey ");
    OpenOptions::new()
        .write(true)
        .open(&log)
        .unwrap()
        .set_len(0)
        .unwrap();
    wait_for_metric(admin, "logredact_errors_total{kind=\"truncated\"} 1");
    append(&log, b"next line\n");
    // The old content's open line is ended at the cut: no output line holds
    // bytes of two contents.
    let expected = b"line\nkey \nnext line\n";
    expect_output(&mut run, expected);
    let stderr = stop_clean(run, expected, &state, &[token]);
    assert!(
        stderr.contains("undecided_bytes_not_written=24"),
        "{stderr}"
    );
}

/// Copy-truncate while logredact is down, with a token half written at the
/// checkpoint: the checkpointed content is found in the copy by its
/// fingerprint, under another inode; its rest (the end of the token) is read
/// there, then the new content from its start.
#[test]
fn copy_truncate_while_stopped_reads_the_rest_from_the_copy() {
    let dir = scratch("copy-truncate-down");
    let (log, state) = (dir.join("app.log"), dir.join("state"));
    let token = TokenGen::new(615).token();
    append(&log, format!("line\nkey {}", &token[..20]).as_bytes());
    let mut run = follow(&log, &state);
    expect_output(&mut run, b"line\nkey ");
    wait_for_checkpoint(&state, 9);
    assert_eq!(stop(run), b"line\nkey ");
    append(&log, format!("{}\nmore\n", &token[20..]).as_bytes());
    fs::copy(&log, dir.join("app.log.1")).unwrap();
    fs::write(&log, b"new content\n").unwrap();
    let mut run = follow(&log, &state);
    let expected = b"dapi****\nmore\nnew content\n";
    expect_output(&mut run, expected);
    stop_clean(run, expected, &state, &[token]);
}

/// The checkpointed file deleted and another written under the same name
/// while logredact is down: logged and counted as gone before it was read
/// to its end, and the new file is read from its start.
#[test]
fn a_checkpointed_file_gone_is_logged_and_counted() {
    let dir = scratch("gone");
    let (log, state) = (dir.join("app.log"), dir.join("state"));
    append(&log, b"old file\n");
    let mut run = follow(&log, &state);
    expect_output(&mut run, b"old file\n");
    wait_for_checkpoint(&state, 9);
    stop(run);
    fs::remove_file(&log).unwrap();
    append(&log, b"a new file, longer than the old one\n");
    let admin = free_port();
    let mut run = follow_with_admin(&log, &state, admin);
    expect_output(&mut run, b"a new file, longer than the old one\n");
    wait_for_metric(admin, "logredact_errors_total{kind=\"rotated_away\"} 1");
    let (_, stderr) = stop_with_log(run);
    assert!(
        stderr.contains("the checkpointed file is gone")
            && stderr.contains("unread_bytes=\"unknown\""),
        "{stderr}"
    );
}

/// A checkpoint saved by an earlier version has no fingerprint: it is still
/// used, trusting the device and inode as then, and says so.
#[test]
fn a_checkpoint_without_a_fingerprint_is_still_used() {
    let dir = scratch("old-checkpoint");
    let (log, state) = (dir.join("app.log"), dir.join("state"));
    append(&log, b"one\ntwo\n");
    let mut run = follow(&log, &state);
    expect_output(&mut run, b"one\ntwo\n");
    wait_for_checkpoint(&state, 8);
    stop(run);
    let file = fs::read_dir(&state)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|x| x == "json"))
        .unwrap();
    let mut checkpoint: serde_json::Value =
        serde_json::from_slice(&fs::read(&file).unwrap()).unwrap();
    let fields = checkpoint.as_object_mut().unwrap();
    assert!(fields.remove("fingerprint").is_some());
    assert!(fields.remove("fingerprint_len").is_some());
    fs::write(&file, serde_json::to_vec(&checkpoint).unwrap()).unwrap();
    append(&log, b"three\n");
    let mut run = follow(&log, &state);
    expect_output(&mut run, b"three\n");
    let (output, stderr) = stop_with_log(run);
    assert_eq!(output, b"three\n");
    assert!(stderr.contains("saved by an earlier version"), "{stderr}");
    // The next checkpoint saved has a fingerprint again.
    let checkpoint: serde_json::Value = serde_json::from_slice(&fs::read(&file).unwrap()).unwrap();
    assert_eq!(checkpoint["fingerprint_len"], 14);
}

/// Generations there before logredact first starts are history: only the
/// file at the path is read.
#[test]
fn generations_there_at_the_first_start_are_not_read() {
    let dir = scratch("history");
    let log = dir.join("app.log");
    fs::write(dir.join("app.log.1"), b"history\n").unwrap();
    fs::write(dir.join("app.log-20261120"), b"older history\n").unwrap();
    append(&log, b"live\n");
    let mut run = follow(&log, &dir.join("state"));
    expect_output(&mut run, b"live\n");
    assert_eq!(stop(run), b"live\n");
}

/// Date-suffixed generations (logrotate's `dateext`), rotated twice while
/// logredact is down: read in date order, after the rest of the checkpointed
/// file, before the live file.
#[test]
fn dated_generations_are_read_in_date_order() {
    let dir = scratch("dated");
    let (log, state) = (dir.join("app.log"), dir.join("state"));
    let mut written = Vec::new();
    record(&mut written, &log, b"a\n");
    let mut run = follow(&log, &state);
    expect_output(&mut run, b"a\n");
    wait_for_checkpoint(&state, 2);
    let mut outputs = stop(run);
    record(&mut written, &log, b"b\n");
    fs::rename(&log, dir.join("app.log-20261121")).unwrap();
    record(&mut written, &log, b"c\n");
    fs::rename(&log, dir.join("app.log-20261122")).unwrap();
    record(&mut written, &log, b"d\n");
    let mut run = follow(&log, &state);
    expect_output(&mut run, b"b\nc\nd\n");
    outputs.extend(stop(run));
    assert_eq!(outputs, written);
}

/// A checkpoint saved in an empty file (here: the file just truncated by
/// copy-truncate) holds a print of no bytes, which fits any content. When
/// that file is gone by the restart, the print must not find the position
/// in an older generation (reading it, and writing it, again): generations
/// last written before the checkpoint was saved are history, and the file
/// now at the path is read from its start.
#[test]
fn a_checkpoint_in_an_empty_file_since_gone_is_not_found_in_an_older_generation() {
    let dir = scratch("empty-gone");
    let (log, state) = (dir.join("app.log"), dir.join("state"));
    let token = TokenGen::new(672).token();
    append(&log, format!("old {token}\n").as_bytes());
    let mut run = follow(&log, &state);
    expect_output(&mut run, b"old dapi****\n");
    wait_for_checkpoint(&state, 41);
    fs::copy(&log, dir.join("app.log.1")).unwrap();
    fs::write(&log, b"").unwrap();
    wait_for_checkpoint(&state, 0);
    assert_eq!(stop(run), b"old dapi****\n");
    let file = fs::read_dir(&state)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|x| x == "json"))
        .unwrap();
    let checkpoint: serde_json::Value = serde_json::from_slice(&fs::read(&file).unwrap()).unwrap();
    assert_eq!(checkpoint["fingerprint_len"], 0, "{checkpoint}");
    // While stopped, the empty file is replaced by a new one: written
    // beside it and renamed over it, so that it cannot reuse its inode.
    let new = dir.join("app.log.new");
    fs::write(&new, b"new content\n").unwrap();
    fs::rename(&new, &log).unwrap();
    let mut run = follow(&log, &state);
    expect_output(&mut run, b"new content\n");
    std::thread::sleep(Duration::from_millis(300));
    let (output, stderr) = stop_with_log(run);
    assert_eq!(String::from_utf8_lossy(&output), "new content\n");
    assert_no_token_part("stderr", stderr.as_bytes(), std::slice::from_ref(&token));
}

/// A checkpoint at the start of an empty file (here: new after a
/// delete-and-recreate), then, while logredact is down, that file written,
/// copy-truncated and rotated on by rename: the same inode, empty again, is
/// no proof that nothing was written there since. The generations written
/// after the checkpoint was saved (the copy among them) are read.
#[test]
fn a_checkpoint_in_an_empty_file_copy_truncated_and_rotated_while_stopped() {
    let dir = scratch("empty-copied");
    let (log, state) = (dir.join("app.log"), dir.join("state"));
    append(&log, b"old\n");
    let mut run = follow(&log, &state);
    expect_output(&mut run, b"old\n");
    wait_for_checkpoint(&state, 4);
    fs::remove_file(&log).unwrap();
    fs::write(&log, b"").unwrap();
    wait_for_checkpoint(&state, 0);
    assert_eq!(stop(run), b"old\n");
    std::thread::sleep(Duration::from_millis(50));
    append(&log, b"written while stopped\n");
    fs::copy(&log, dir.join("app.log.1")).unwrap();
    fs::write(&log, b"").unwrap();
    fs::rename(dir.join("app.log.1"), dir.join("app.log.2")).unwrap();
    fs::rename(&log, dir.join("app.log.1")).unwrap();
    fs::write(&log, b"").unwrap();
    let mut run = follow(&log, &state);
    expect_output(&mut run, b"written while stopped\n");
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(
        String::from_utf8_lossy(&stop(run)),
        "written while stopped\n"
    );
}

/// A rotator with names of its own (`app-DATE.log`): the input says so with
/// `rotated:`, and generations so named are read like the built-in ones,
/// oldest first by what the `*` matched.
#[test]
fn generations_named_by_the_input_are_read_in_order() {
    let dir = scratch("rotated-names");
    let (log, state) = (dir.join("app.log"), dir.join("state"));
    let config = dir.join("rotated.yaml");
    shipped_config_with(
        &config,
        &format!(
            "inputs:\n  - {{ follow: '{}', rotated: 'app-*.log' }}\n",
            log.display()
        ),
    );
    let start = || {
        Running::spawn(&[
            "--config",
            config.to_str().unwrap(),
            "--state-dir",
            state.to_str().unwrap(),
        ])
    };
    let mut lines = TokenLines::new(620);
    let mut written = Vec::new();
    record(&mut written, &log, lines.line("a").as_bytes());
    let mut run = start();
    expect_output(&mut run, &reference_redaction(&written));
    wait_for_checkpoint(&state, written.len() as u64);
    let outputs = stop(run);
    // Down: two rotations by date; the built-in names would find neither.
    record(&mut written, &log, lines.line("b").as_bytes());
    fs::rename(&log, dir.join("app-2026-11-29.log")).unwrap();
    record(&mut written, &log, lines.line("c").as_bytes());
    fs::rename(&log, dir.join("app-2026-11-30.log")).unwrap();
    record(&mut written, &log, lines.line("d").as_bytes());
    fs::write(dir.join("app-2026-11-28.log.gz"), lines.line("never read")).unwrap();
    let run = start();
    resumed_exactly(run, outputs, &written, &state, &lines.used);
}

/// Issue 14, item 9: a state directory every user can write (and not
/// sticky) is refused: anyone could replace a checkpoint there. A sticky one
/// (like /tmp) is used.
#[test]
fn a_state_directory_everyone_can_write_is_refused_unless_sticky() {
    use std::os::unix::fs::PermissionsExt;
    let dir = scratch("state-mode");
    let log = dir.join("app.log");
    append(&log, b"line\n");
    let state = dir.join("state");
    fs::create_dir_all(&state).unwrap();
    fs::set_permissions(&state, fs::Permissions::from_mode(0o777)).unwrap();
    let output = binary()
        .args(["--input", &format!("follow:{}", log.display())])
        .args(["--state-dir", state.to_str().unwrap()])
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&output.stderr),
        format!(
            "logredact: opening the state directory {}: writable by every user (mode 777) and not sticky: checkpoints there could be replaced; use a directory only logredact's user can write\n",
            state.display()
        )
    );
    fs::set_permissions(&state, fs::Permissions::from_mode(0o1777)).unwrap();
    let mut run = follow(&log, &state);
    expect_output(&mut run, b"line\n");
    stop(run);
}

/// Only regular files are followed. The path replaced by a directory, a
/// FIFO (whose open would block) or a link to a device (whose reads never
/// end) is as good as no file: the stream waits, and goes on with the next
/// regular file at the path. Before, a directory failed the stream, a FIFO
/// hung it, and /dev/zero was written out at a gigabyte a second.
#[test]
fn the_path_replaced_by_a_directory_a_fifo_or_a_device_is_waited_out() {
    let dir = scratch("not-regular");
    let (log, state) = (dir.join("app.log"), dir.join("state"));
    append(&log, b"one\n");
    let mut run = follow(&log, &state);
    expect_output(&mut run, b"one\n");
    fs::remove_file(&log).unwrap();
    fs::create_dir(&log).unwrap();
    std::thread::sleep(Duration::from_millis(800));
    fs::remove_dir(&log).unwrap();
    let fifo = std::process::Command::new("mkfifo")
        .arg(&log)
        .status()
        .unwrap();
    assert!(fifo.success());
    std::thread::sleep(Duration::from_millis(800));
    fs::remove_file(&log).unwrap();
    std::os::unix::fs::symlink("/dev/zero", &log).unwrap();
    std::thread::sleep(Duration::from_millis(800));
    fs::remove_file(&log).unwrap();
    append(&log, b"two\n");
    expect_output(&mut run, b"one\ntwo\n");
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(stop(run), b"one\ntwo\n");
}

/// A followed path that is logredact's own output or state file is refused:
/// it would read back what it writes, without end (or write its key out).
/// A generation name that fits the output file is not read either.
#[test]
fn logredacts_own_files_are_never_followed() {
    let dir = scratch("own");
    let state = dir.join("state");
    let out = dir.join("out.log");
    let refused = |args: &[&str], spec: &str| {
        let output = binary()
            .args(args)
            .stdin(std::process::Stdio::null())
            .output()
            .unwrap();
        assert_eq!(output.status.code(), Some(1), "{args:?}");
        assert_eq!(
            String::from_utf8_lossy(&output.stderr),
            format!(
                "logredact: following {spec}: that is logredact's own output, audit or state file: it would read back what it writes\n"
            )
        );
    };
    let spec = format!("follow:{}", out.display());
    let output_spec = format!("file:{}", out.display());
    refused(&["--input", &spec, "--output", &output_spec], &spec);
    fs::create_dir_all(&state).unwrap();
    fs::write(state.join("identity.key"), [0u8; 32]).unwrap();
    let key_spec = format!("follow:{}", state.join("identity.key").display());
    refused(
        &["--input", &key_spec, "--state-dir", state.to_str().unwrap()],
        &key_spec,
    );
    // `rotated: 'app*'` would also name the output `app-redacted.log`.
    let log = dir.join("app.log");
    let redacted = dir.join("app-redacted.log");
    append(&log, b"one\n");
    let config = dir.join("rotated.yaml");
    shipped_config_with(
        &config,
        &format!(
            "inputs:\n  - {{ follow: '{}', rotated: 'app*' }}\n",
            log.display()
        ),
    );
    let args = [
        "--config",
        config.to_str().unwrap(),
        "--state-dir",
        state.to_str().unwrap(),
        "--output",
        &format!("file:{}", redacted.display()),
    ];
    let run = Running::spawn(&args);
    let until = std::time::Instant::now() + Duration::from_secs(10);
    while fs::read(&redacted).unwrap_or_default() != b"one\n" {
        assert!(std::time::Instant::now() < until, "{}", run.errors());
        std::thread::sleep(Duration::from_millis(50));
    }
    stop(run);
    // Rotated while stopped: the restart reads app-1.log, not the output.
    fs::rename(&log, dir.join("app-1.log")).unwrap();
    append(&log, b"two\n");
    let run = Running::spawn(&args);
    let until = std::time::Instant::now() + Duration::from_secs(10);
    while fs::read(&redacted).unwrap_or_default() != b"one\ntwo\n" {
        assert!(
            std::time::Instant::now() < until,
            "{:?}",
            fs::read_to_string(&redacted)
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(1500));
    stop(run);
    assert_eq!(fs::read(&redacted).unwrap(), b"one\ntwo\n");
}

/// Two logredacts on one state directory would each resume from the
/// other's checkpoints and skip lines: the second is refused while the
/// first runs, and starts once it has stopped.
#[test]
fn a_second_logredact_on_the_same_state_directory_is_refused() {
    let dir = scratch("two-instances");
    let (log, state) = (dir.join("app.log"), dir.join("state"));
    append(&log, b"one\n");
    let mut first = follow(&log, &state);
    expect_output(&mut first, b"one\n");
    let output = binary()
        .args(["--input", &format!("follow:{}", log.display())])
        .args(["--state-dir", state.to_str().unwrap()])
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&output.stderr),
        format!(
            "logredact: opening the state directory {}: another logredact uses it (its lock file is held); each instance needs a state directory of its own\n",
            state.display()
        )
    );
    stop(first);
    append(&log, b"two\n");
    let mut second = follow(&log, &state);
    expect_output(&mut second, b"two\n");
    assert_eq!(stop(second), b"two\n");
}
