//! Output and process faults: a full disk, an output file deleted while
//! following, SIGKILL while following and during a TCP proxy session. Nothing
//! unredacted is ever written, nothing is skipped, and a checkpoint never runs
//! ahead of what was written.

mod common;

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use common::*;

/// Waits until `path` holds exactly `expected`.
fn wait_for_file(path: &Path, expected: &[u8]) {
    let until = Instant::now() + Duration::from_secs(10);
    loop {
        let got = fs::read(path).unwrap_or_default();
        if got == expected {
            return;
        }
        assert!(
            Instant::now() < until,
            "{} holds {:?}",
            path.display(),
            String::from_utf8_lossy(&got)
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn assert_no_token_part(what: &str, bytes: &[u8], token: &str) {
    let text = String::from_utf8_lossy(bytes);
    let hex = &token[4..];
    for start in 0..=hex.len() - 12 {
        assert!(
            !text.contains(&hex[start..start + 12]),
            "{what} contains part of the token"
        );
    }
}

#[test]
fn stdout_to_a_full_disk_exits_1_with_one_line() {
    let token = TokenGen::new(900).token();
    let mut child = binary()
        .stdin(Stdio::piped())
        .stdout(OpenOptions::new().write(true).open("/dev/full").unwrap())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(format!("bearer {token}\n").as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert_eq!(
        stderr,
        "logredact: writing stdout: No space left on device (os error 28)\n"
    );
    assert_no_token_part("stderr", stderr.as_bytes(), &token);
}

/// The audit never holds up the redacted stream, but a caller must learn
/// that it is incomplete: the output is whole, the exit status is 1.
#[test]
fn an_audit_file_on_a_full_disk_keeps_the_output_whole_and_exits_1() {
    let mut tokens = TokenGen::new(903);
    let mut input = Vec::new();
    for i in 0..50 {
        input.extend_from_slice(format!("line {i} bearer {}\n", tokens.token()).as_bytes());
    }
    let mut command = binary();
    command.args(["--audit", "/dev/full"]).env(
        "LOGREDACT_FINGERPRINT_KEY",
        "a test key of sufficient length",
    );
    let output = output_with_stdin(command, &input);
    assert!(
        output.stdout == reference_redaction(&input),
        "the redacted output is whole"
    );
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8(output.stderr).unwrap();
    let last = stderr.lines().last().unwrap_or_default();
    assert!(
        last.starts_with("logredact: the audit stream /dev/full is incomplete: ")
            && last.ends_with(
                " record(s) could not be written, 0 dropped because the writer was behind"
            ),
        "{stderr}"
    );
    assert_eq!(
        stderr.matches("cannot write the audit stream").count(),
        1,
        "the failure is logged once: {stderr}"
    );
}

/// logredact following `log` into the file `out`, checkpointed in `state`.
fn follow_into_file(log: &Path, out: &Path, state: &Path) -> Running {
    Running::spawn(&[
        "--input",
        &format!("follow:{}", log.display()),
        "--output",
        &format!("file:{}", out.display()),
        "--state-dir",
        state.to_str().unwrap(),
    ])
}

#[test]
fn an_output_file_deleted_while_following_stops_without_advancing_the_checkpoint() {
    let dir = scratch("deleted-output");
    let (log, out, state) = (dir.join("app.log"), dir.join("out.log"), dir.join("state"));
    let mut tokens = TokenGen::new(901);
    let first = format!("first {}\n", tokens.token());
    append(&log, first.as_bytes());
    let mut run = follow_into_file(&log, &out, &state);
    wait_for_file(&out, &reference_redaction(first.as_bytes()));
    std::thread::sleep(Duration::from_millis(1300));
    assert_eq!(checkpoint_offset(&state), Some(first.len() as u64));
    fs::remove_file(&out).unwrap();
    let second = format!("second {}\n", tokens.token());
    append(&log, second.as_bytes());
    let status = wait_with_deadline(&mut run.child, Duration::from_secs(10));
    let (_, _, stderr) = run.finish();
    assert_eq!(status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!("the output file {} was deleted", out.display())),
        "{stderr}"
    );
    assert_eq!(
        checkpoint_offset(&state),
        Some(first.len() as u64),
        "the checkpoint stays at what was written"
    );
    // A restart writes what the deleted file swallowed.
    let mut run = follow_into_file(&log, &out, &state);
    wait_for_file(&out, &reference_redaction(second.as_bytes()));
    signal(&run.child, "TERM");
    assert!(wait_with_deadline(&mut run.child, Duration::from_secs(10)).success());
}

#[test]
fn a_full_disk_while_following_saves_no_checkpoint() {
    let dir = scratch("full-disk");
    let (log, state) = (dir.join("app.log"), dir.join("state"));
    append(
        &log,
        format!("line {}\n", TokenGen::new(902).token()).as_bytes(),
    );
    let mut run = Running::spawn(&[
        "--input",
        &format!("follow:{}", log.display()),
        "--output",
        "file:/dev/full",
        "--state-dir",
        state.to_str().unwrap(),
    ]);
    let status = wait_with_deadline(&mut run.child, Duration::from_secs(10));
    let (_, _, stderr) = run.finish();
    assert_eq!(status.code(), Some(1));
    assert!(
        stderr.ends_with(
            "logredact: writing file:/dev/full: No space left on device (os error 28)\n"
        ),
        "{stderr}"
    );
    // Nothing was written: no checkpoint, or one at the file's start (the
    // position the stream began at, which a new file's first break carries).
    let offset = checkpoint_offset(&state);
    assert!(matches!(offset, None | Some(0)), "{offset:?}");
}

#[test]
fn a_checkpoint_that_cannot_be_saved_is_logged_counted_and_fails_the_run() {
    let dir = scratch("checkpoint-unsaved");
    let (log, state) = (dir.join("app.log"), dir.join("state"));
    append(&log, b"one line\n");
    // A directory where the checkpoint file goes: every save fails. A first
    // run saves the file, so that the test learns its name from logredact
    // rather than from how logredact names it.
    let follow = format!("follow:{}", log.display());
    let first = Running::spawn(&["--input", &follow, "--state-dir", state.to_str().unwrap()]);
    wait_for_checkpoint(&state, 9);
    signal(&first.child, "TERM");
    let (status, _, stderr) = first.finish();
    assert!(status.success(), "{stderr}");
    let checkpoint = checkpoint_file(&state).unwrap();
    fs::remove_file(&checkpoint).unwrap();
    fs::create_dir(&checkpoint).unwrap();
    let admin = free_port();
    let mut run = Running::spawn(&[
        "--input",
        &follow,
        "--state-dir",
        state.to_str().unwrap(),
        "--admin",
        &format!("127.0.0.1:{admin}"),
    ]);
    assert_eq!(run.read_at_least(9, Duration::from_secs(10)), b"one line\n");
    // One for the unreadable checkpoint at the start, one for the first
    // save, a second later.
    wait_for_metric(admin, "logredact_errors_total{kind=\"checkpoint\"} 2");
    signal(&run.child, "TERM");
    let (status, output, stderr) = run.finish();
    assert_eq!(output, b"one line\n");
    assert_eq!(status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "cannot save the checkpoint stream=file:{} error={}: Is a directory (os error 21)",
            log.display(),
            checkpoint.display()
        )),
        "{stderr}"
    );
    assert!(
        stderr.ends_with(&format!(
            "logredact: the checkpoints in {} could not be saved at the end: a restart writes again what was written since the last one saved\n",
            state.display()
        )),
        "{stderr}"
    );
}

#[test]
fn sigkill_while_following_then_restart_skips_nothing() {
    let dir = scratch("sigkill-follow");
    let (log, state) = (dir.join("app.log"), dir.join("state"));
    let written = Arc::new(std::sync::Mutex::new(Vec::new()));
    let done = Arc::new(AtomicBool::new(false));
    let writer = {
        let (log, written, done) = (log.clone(), Arc::clone(&written), Arc::clone(&done));
        std::thread::spawn(move || {
            let mut tokens = TokenGen::new(903);
            let mut file = File::create(&log).unwrap();
            let started = Instant::now();
            let mut i = 0;
            while started.elapsed() < Duration::from_secs(4) {
                let line = format!("line {i} bearer {} and more text\n", tokens.token());
                file.write_all(line.as_bytes()).unwrap();
                written.lock().unwrap().extend_from_slice(line.as_bytes());
                i += 1;
                std::thread::sleep(Duration::from_micros(300));
            }
            done.store(true, Ordering::SeqCst);
        })
    };
    let args = [
        "--input".to_string(),
        format!("follow:{}", log.display()),
        "--state-dir".into(),
        state.display().to_string(),
    ];
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut run = Running::spawn(&args);
    std::thread::sleep(Duration::from_millis(1700));
    signal(&run.child, "KILL");
    let _ = wait_with_deadline(&mut run.child, Duration::from_secs(5));
    let (_, before, _) = run.finish();
    // The checkpoint the killed process left behind.
    let checkpoint = checkpoint_offset(&state).unwrap_or(0);
    let mut run = Running::spawn(&args);
    writer.join().unwrap();
    assert!(done.load(Ordering::SeqCst));
    let expected = reference_redaction(&written.lock().unwrap());
    // Everything from the checkpoint on comes out of the second run.
    let tail_start = reference_redaction(&written.lock().unwrap()[..checkpoint as usize]).len();
    run.read_at_least(expected.len() - tail_start, Duration::from_secs(20));
    signal(&run.child, "TERM");
    let (status, after, _) = run.finish();
    assert!(status.success());
    assert!(
        expected.starts_with(&before),
        "the first run wrote a prefix of the redaction"
    );
    assert!(
        after == expected[tail_start..],
        "the second run resumed exactly at the checkpoint"
    );
    assert!(tail_start <= before.len(), "nothing skipped");
    let repeated = before.len() - tail_start;
    println!(
        "SIGKILL after {} output bytes; {repeated} bytes written again after the restart",
        before.len()
    );
}

#[test]
fn sigkill_during_a_proxy_session_sends_no_unredacted_byte_upstream() {
    let upstream = TcpListener::bind("127.0.0.1:0").unwrap();
    let upstream_port = upstream.local_addr().unwrap().port();
    let port = free_port();
    let mut run = Running::spawn(&[
        "--input",
        &format!("tcp://127.0.0.1:{port}"),
        "--output",
        &format!("tcp://127.0.0.1:{upstream_port}"),
    ]);
    run.wait_for_port(port);
    let token = TokenGen::new(904).token();
    let mut client = TcpStream::connect(("127.0.0.1", port)).unwrap();
    // Skip the port probe's (empty) upstream connection.
    let mut received = Vec::new();
    let (mut connection, _) = loop {
        let (mut c, addr) = upstream.accept().unwrap();
        c.set_read_timeout(Some(Duration::from_millis(500)))
            .unwrap();
        let mut probe = [0u8; 1];
        match c.read(&mut probe) {
            Ok(0) => continue,
            Ok(_) => {
                received.push(probe[0]);
                break (c, addr);
            }
            Err(_) => {
                // Silent so far: this is the client's connection (or the
                // probe's, closed later); send data and see.
                client.write_all(b"hello\n").unwrap();
                match c.read(&mut probe) {
                    Ok(1) => {
                        received.push(probe[0]);
                        break (c, addr);
                    }
                    _ => continue,
                }
            }
        }
    };
    // Half a token, then the process dies.
    client
        .write_all(format!("Authorization: Bearer {}", &token[..30]).as_bytes())
        .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    signal(&run.child, "KILL");
    let _ = wait_with_deadline(&mut run.child, Duration::from_secs(5));
    connection
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let mut rest = Vec::new();
    let _ = connection.read_to_end(&mut rest);
    received.extend(rest);
    assert!(
        received.ends_with(b"Authorization: Bearer "),
        "{:?}",
        String::from_utf8_lossy(&received)
    );
    assert_no_token_part("the upstream", &received, &token);
    run.finish();
}

/// Lines of plain text (no token), `len` bytes or a little more.
fn plain_lines(len: usize) -> Vec<u8> {
    let mut text = Vec::with_capacity(len + 100);
    let mut i = 0;
    while text.len() < len {
        text.extend_from_slice(format!("line {i} of a log that nobody reads yet\n").as_bytes());
        i += 1;
    }
    text
}

/// logredact writing to a pipe that nobody reads: the output stalls.
fn spawn_with_stalled_stdout(args: &[&str], stdin: Stdio) -> std::process::Child {
    binary()
        .args(args)
        .stdin(stdin)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// What a child wrote to its (stalled) stdout and its stderr, after its exit.
fn drain(child: &mut std::process::Child) -> (Vec<u8>, String) {
    let mut output = Vec::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_end(&mut output)
        .unwrap();
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    (output, stderr)
}

const STALLED: &str =
    "logredact: the output did not take the remaining data within the grace period\n";

#[test]
fn sigterm_with_a_stalled_output_and_a_state_dir_exits_1_after_the_grace_period() {
    let dir = scratch("stalled-follow");
    let (log, state) = (dir.join("big.log"), dir.join("state"));
    let input = plain_lines(6 << 20);
    fs::write(&log, &input).unwrap();
    let mut child = spawn_with_stalled_stdout(
        &[
            "--input",
            &format!("follow:{}", log.display()),
            "--state-dir",
            state.to_str().unwrap(),
            "--shutdown-grace",
            "1",
        ],
        Stdio::null(),
    );
    std::thread::sleep(Duration::from_millis(1500));
    signal(&child, "TERM");
    let status = wait_with_deadline(&mut child, Duration::from_secs(20));
    let (output, stderr) = drain(&mut child);
    assert_eq!(status.code(), Some(1), "{stderr}");
    assert!(stderr.ends_with(STALLED), "{stderr}");
    assert!(
        input.starts_with(&output),
        "the output is a prefix of the input"
    );
    // The checkpoint claims no more than what reached the output.
    let checkpoint = checkpoint_offset(&state).unwrap_or(0);
    assert!(
        checkpoint <= output.len() as u64,
        "checkpoint {checkpoint}, {} bytes written",
        output.len()
    );
}

#[test]
fn sigterm_with_a_stalled_output_reading_stdin_exits_1_after_one_flush_allowance() {
    let dir = scratch("stalled-stdin");
    let state = dir.join("state");
    let input = plain_lines(8 << 20);
    let with_state = ["--state-dir", state.to_str().unwrap()];
    let variants: [&[&str]; 2] = [&with_state, &[]];
    for extra in variants {
        let mut args = vec!["--shutdown-grace", "1"];
        args.extend_from_slice(extra);
        let mut child = spawn_with_stalled_stdout(&args, Stdio::piped());
        let mut stdin = child.stdin.take().unwrap();
        let writer = {
            let input = input.clone();
            // Blocks once the pipes are full; ends with a broken pipe.
            std::thread::spawn(move || {
                let _ = stdin.write_all(&input);
            })
        };
        std::thread::sleep(Duration::from_millis(1500));
        let signalled = Instant::now();
        signal(&child, "TERM");
        let status = wait_with_deadline(&mut child, Duration::from_secs(20));
        let took = signalled.elapsed();
        let (output, stderr) = drain(&mut child);
        writer.join().unwrap();
        assert_eq!(status.code(), Some(1), "{extra:?}: {stderr}");
        assert!(stderr.ends_with(STALLED), "{extra:?}: {stderr}");
        assert!(
            input.starts_with(&output),
            "{extra:?}: a prefix of the input"
        );
        // One grace second and one flush allowance of two: the allowance was
        // once counted twice, which could never exit before five seconds.
        assert!(
            took < Duration::from_secs(5),
            "{extra:?}: exited after {took:?}"
        );
    }
}

#[test]
fn an_input_that_cannot_be_read_exits_1_naming_it_while_the_others_drain() {
    let dir = scratch("unreadable-input");
    let (unreadable, good) = (dir.join("a-directory"), dir.join("good.log"));
    fs::create_dir(&unreadable).unwrap();
    let lines = format!("good line bearer {}\n", TokenGen::new(905).token());
    fs::write(&good, &lines).unwrap();
    // A file read to its end, beside another that is read whole.
    let output = binary()
        .args([
            "--input",
            &format!("file:{}", unreadable.display()),
            "--input",
            &format!("file:{}", good.display()),
        ])
        .output()
        .unwrap();
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        output.stdout == reference_redaction(lines.as_bytes()),
        "{stderr}"
    );
    assert!(
        stderr.ends_with(&format!(
            "logredact: reading file:{}: Is a directory (os error 21)\n",
            unreadable.display()
        )),
        "{stderr}"
    );
    // Standard input.
    let output = binary()
        .stdin(File::open(&unreadable).unwrap())
        .output()
        .unwrap();
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.ends_with("logredact: reading stdin: Is a directory (os error 21)\n"),
        "{stderr}"
    );
    // A followed path that names a directory is waited out (only regular
    // files are followed), and said once; the TCP input beside it goes on.
    let port = free_port();
    let mut run = Running::spawn(&[
        "--input",
        &format!("follow:{}", unreadable.display()),
        "--input",
        &format!("tcp://127.0.0.1:{port}"),
    ]);
    run.wait_for_port(port);
    let mut client = TcpStream::connect(("127.0.0.1", port)).unwrap();
    client.write_all(b"still served\n").unwrap();
    assert_eq!(
        run.read_at_least(13, Duration::from_secs(10)),
        b"still served\n"
    );
    drop(client);
    std::thread::sleep(Duration::from_millis(600));
    signal(&run.child, "TERM");
    let (status, output, stderr) = run.finish();
    assert_eq!(status.code(), Some(0), "{stderr}");
    assert_eq!(output, b"still served\n");
    assert_eq!(
        stderr
            .matches("the followed path names no regular file (a directory, a FIFO or a device); waiting for a regular file there")
            .count(),
        1,
        "{stderr}"
    );
}
