//! No secret, whole or in part, appears anywhere logredact writes: the
//! redacted output, the audit stream, the summary, its own logs at the most
//! verbose level, and its error messages — even errors about input that
//! contains tokens.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};

use common::*;

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
    let mut command = binary();
    command
        .args(args)
        .env("LOGREDACT_LOG", "trace")
        .env("RUST_LOG", "trace")
        .env("RUST_BACKTRACE", "1");
    output_with_stdin(command, stdin)
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

/// Starts logredact at the most verbose log level with its standard error
/// in `dir/stderr.log` (read at the end: it must stay clean throughout).
/// Followed files live in `dir/input/`, apart from that log: a directory
/// watcher tracing its own events would otherwise feed on them.
fn spawn_traced(dir: &Path, args: &[&str], stdout: Stdio) -> std::process::Child {
    binary()
        .args(args)
        .env("LOGREDACT_LOG", "trace")
        .env("RUST_BACKTRACE", "1")
        .stdin(Stdio::null())
        .stdout(stdout)
        .stderr(std::fs::File::create(dir.join("stderr.log")).unwrap())
        .spawn()
        .unwrap()
}

/// Waits until `path` holds at least `lines` newlines.
fn wait_for_lines(path: &Path, lines: usize) {
    let until = std::time::Instant::now() + std::time::Duration::from_secs(15);
    loop {
        let text = std::fs::read(path).unwrap_or_default();
        if text.iter().filter(|&&b| b == b'\n').count() >= lines {
            return;
        }
        assert!(
            std::time::Instant::now() < until,
            "{} holds {} bytes",
            path.display(),
            text.len()
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// Every file under `dir`, for the leak check.
fn every_file(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files.extend(every_file(&path));
        } else {
            files.push(path);
        }
    }
    files
}

/// Fails if any file under `dir` other than the `inputs` holds part of a
/// token, or if no checkpoint was saved in `state`.
fn assert_files_clean(dir: &Path, state: &Path, inputs: &[&Path], tokens: &[String]) {
    let files = every_file(dir);
    assert!(
        files.iter().any(|f| f.starts_with(state)),
        "a checkpoint was saved"
    );
    for file in files.iter().filter(|f| !inputs.contains(&f.as_path())) {
        assert_clean(
            &file.display().to_string(),
            &std::fs::read(file).unwrap(),
            tokens,
        );
    }
}

/// A followed file and TCP connections merged into one output file, with a
/// file read to its end beside them, the audit stream, checkpoints, the admin
/// endpoint's pages and JSON logs: nothing anywhere holds part of a token,
/// including a token split across two TCP writes and a partial token that is
/// still undecided when SIGTERM cuts its stream.
#[test]
fn follow_file_merge_audit_admin_and_checkpoints_carry_no_token() {
    let dir = scratch("merge");
    let mut generator = TokenGen::new(72);
    let tokens: Vec<String> = (0..12).map(|_| generator.token()).collect();
    std::fs::create_dir_all(dir.join("input")).unwrap();
    let (followed, whole) = (dir.join("input/app.log"), dir.join("input/old.log"));
    let out = dir.join("out.log");
    let (state, audit) = (dir.join("state"), dir.join("audit.jsonl"));
    append(&followed, format!("f1 bearer {}\n", tokens[0]).as_bytes());
    append(
        &whole,
        format!("w1 token={} {}\n", tokens[1], tokens[2]).as_bytes(),
    );
    let (listen, admin) = (free_port(), free_port());
    let mut child = spawn_traced(
        &dir,
        &[
            "--input",
            &format!("follow:{}", followed.display()),
            "--input",
            &format!("file:{}", whole.display()),
            "--input",
            &format!("tcp://127.0.0.1:{listen}"),
            "--output",
            &format!("file:{}", out.display()),
            "--state-dir",
            state.to_str().unwrap(),
            "--audit",
            audit.to_str().unwrap(),
            "--admin",
            &format!("127.0.0.1:{admin}"),
            "--log-format",
            "json",
        ],
        Stdio::null(),
    );
    wait_for_port(listen);
    let mut connection = std::net::TcpStream::connect(("127.0.0.1", listen)).unwrap();
    use std::io::Write;
    // A token split across two writes, seconds' worth of scheduling apart.
    connection
        .write_all(format!("t1 {}", &tokens[3][..20]).as_bytes())
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(200));
    connection
        .write_all(format!("{} dapi {}\n", &tokens[3][20..], tokens[4]).as_bytes())
        .unwrap();
    append(
        &followed,
        format!("f2 {} {}\n", tokens[5], tokens[6]).as_bytes(),
    );
    wait_for_lines(&out, 4);
    drop(connection);
    // A partial token at the end of the followed file stays undecided.
    append(&followed, format!("f3 {}", &tokens[7][..30]).as_bytes());
    std::thread::sleep(std::time::Duration::from_millis(1300));
    let mut pages = Vec::new();
    for page in ["/metrics", "/healthz", "/readyz", "/nonexistent"] {
        let (_, body) = http_get(admin, page);
        pages.extend_from_slice(body.as_bytes());
    }
    assert!(
        String::from_utf8_lossy(&pages)
            .contains("logredact_detections_total{rule=\"databricks-pat\""),
        "the metrics count the detections"
    );
    signal(&child, "TERM");
    let status = wait_with_deadline(&mut child, std::time::Duration::from_secs(20));
    assert!(status.success());
    assert_clean("the admin pages", &pages, &tokens);
    let audit_lines = std::fs::read_to_string(&audit).unwrap().lines().count();
    assert_eq!(audit_lines, 7, "one audit record per whole token");
    assert_files_clean(&dir, &state, &[&followed, &whole], &tokens);
}

/// Input paths that hold a token (a directory and a file named after one):
/// the stream ids in log lines, audit records, checkpoints and the summary
/// show it masked, in text and in JSON logs.
#[test]
fn input_paths_holding_a_token_are_masked_everywhere() {
    let mut generator = TokenGen::new(75);
    let tokens: Vec<String> = (0..3).map(|_| generator.token()).collect();
    for format in ["text", "json"] {
        let dir = scratch(&format!("paths-{format}"));
        let input = dir.join("input");
        std::fs::create_dir_all(input.join(&tokens[0])).unwrap();
        let followed = input.join(&tokens[0]).join("app.log");
        let whole = input.join(format!("{}.log", tokens[1]));
        append(&followed, format!("f1 bearer {}\n", tokens[2]).as_bytes());
        append(&whole, format!("w1 bearer {}\n", tokens[2]).as_bytes());
        let (out, state, audit) = (
            dir.join("out.log"),
            dir.join("state"),
            dir.join("audit.jsonl"),
        );
        let mut child = spawn_traced(
            &dir,
            &[
                "--input",
                &format!("follow:{}", followed.display()),
                "--input",
                &format!("file:{}", whole.display()),
                "--output",
                &format!("file:{}", out.display()),
                "--state-dir",
                state.to_str().unwrap(),
                "--audit",
                audit.to_str().unwrap(),
                "--log-format",
                format,
            ],
            Stdio::null(),
        );
        wait_for_lines(&out, 2);
        // Past the first checkpoint save.
        std::thread::sleep(std::time::Duration::from_millis(1300));
        signal(&child, "TERM");
        let status = wait_with_deadline(&mut child, std::time::Duration::from_secs(20));
        assert!(status.success());
        let records = std::fs::read_to_string(&audit).unwrap();
        let mut streams: Vec<String> = records
            .lines()
            .map(|line| {
                let record: serde_json::Value = serde_json::from_str(line).unwrap();
                record["stream"].as_str().unwrap().to_string()
            })
            .collect();
        streams.sort();
        let masked = |path: &Path| {
            format!("file:{}", path.display())
                .replace(&tokens[0], "dapi****")
                .replace(&tokens[1], "dapi****")
        };
        let mut expected = vec![masked(&followed), masked(&whole)];
        expected.sort();
        assert_eq!(streams, expected);
        let summary = run(&["audit-summary", audit.to_str().unwrap()], b"");
        assert!(summary.status.success());
        assert_clean("the summary", &summary.stdout, &tokens[..2]);
        assert_files_clean(&dir, &state, &[&followed, &whole], &tokens);
        let log = std::fs::read_to_string(dir.join("stderr.log")).unwrap();
        assert!(log.contains("dapi****"), "the log names the streams: {log}");
    }
}

/// A TCP proxy whose upstream first works, then closes every connection
/// after its first bytes, then is gone, with streams cut at shutdown: the
/// reconnect, backoff and cut paths log at trace level without a token.
#[test]
fn tcp_proxy_with_a_failing_upstream_carries_no_token() {
    use std::io::{Read, Write};
    let dir = scratch("proxy");
    let mut generator = TokenGen::new(73);
    let tokens: Vec<String> = (0..6).map(|_| generator.token()).collect();
    let upstream = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let upstream_port = upstream.local_addr().unwrap().port();
    let received = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let keep = std::sync::Arc::clone(&received);
    // The first connection is read to its end; every later one is closed
    // after its first read.
    std::thread::spawn(move || {
        for (n, stream) in upstream.incoming().enumerate() {
            let Ok(mut stream) = stream else { return };
            let mut buffer = [0u8; 65536];
            loop {
                match stream.read(&mut buffer) {
                    Ok(0) | Err(_) => break,
                    Ok(k) => keep.lock().unwrap().extend_from_slice(&buffer[..k]),
                }
                if n > 0 {
                    break;
                }
            }
        }
    });
    let listen = free_port();
    let mut child = spawn_traced(
        &dir,
        &[
            "--input",
            &format!("tcp://127.0.0.1:{listen}"),
            "--output",
            &format!("tcp://127.0.0.1:{upstream_port}"),
            "--shutdown-grace",
            "1",
        ],
        Stdio::null(),
    );
    wait_for_port(listen);
    let mut first = std::net::TcpStream::connect(("127.0.0.1", listen)).unwrap();
    first
        .write_all(format!("a {} b {}\n", tokens[0], tokens[1]).as_bytes())
        .unwrap();
    drop(first);
    // Each inbound connection has its own upstream connection, made when it
    // is accepted; the first must be the upstream's first, read to its end.
    let until = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !received
        .lock()
        .unwrap()
        .starts_with(b"a dapi**** b dapi****\n")
    {
        assert!(
            std::time::Instant::now() < until,
            "the first stream never arrived"
        );
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    let mut second = std::net::TcpStream::connect(("127.0.0.1", listen)).unwrap();
    for token in &tokens[2..5] {
        let _ = second.write_all(format!("c {token}\n").as_bytes());
        std::thread::sleep(std::time::Duration::from_millis(150));
    }
    // A partial token, undecided when the stream is cut at shutdown.
    let _ = second.write_all(format!("d {}", &tokens[5][..28]).as_bytes());
    std::thread::sleep(std::time::Duration::from_millis(500));
    signal(&child, "TERM");
    let status = wait_with_deadline(&mut child, std::time::Duration::from_secs(20));
    assert!(status.code().is_some(), "exited, not killed by a signal");
    let stderr = std::fs::read(dir.join("stderr.log")).unwrap();
    assert!(
        String::from_utf8_lossy(&stderr).contains("reconnecting"),
        "the failing upstream was seen: {}",
        String::from_utf8_lossy(&stderr)
    );
    assert_clean("stderr", &stderr, &tokens);
    let received = received.lock().unwrap().clone();
    assert!(
        received.starts_with(b"a dapi**** b dapi****\n"),
        "{}",
        String::from_utf8_lossy(&received)
    );
    assert_clean("what the upstream received", &received, &tokens);
}

/// The output errors of the fault tests, at trace level: standard output on
/// a full disk, an audit file on a full disk, an output file deleted while
/// following, and an upstream that never answers.
#[test]
fn output_error_paths_carry_no_token() {
    let dir = scratch("output-errors");
    let mut generator = TokenGen::new(74);
    let tokens: Vec<String> = (0..4).map(|_| generator.token()).collect();
    let input = dir.join("in.log");
    append(
        &input,
        format!("x {} y {}\n", tokens[0], tokens[1]).as_bytes(),
    );
    let input_arg = format!("file:{}", input.display());

    let full = || {
        std::fs::OpenOptions::new()
            .write(true)
            .open("/dev/full")
            .unwrap()
    };
    let mut child = spawn_traced(&dir, &["--input", &input_arg], Stdio::from(full()));
    assert_eq!(
        wait_with_deadline(&mut child, std::time::Duration::from_secs(10)).code(),
        Some(1)
    );
    let stderr = std::fs::read(dir.join("stderr.log")).unwrap();
    assert!(String::from_utf8_lossy(&stderr).contains("No space left on device"));
    assert_clean("stdout on a full disk", &stderr, &tokens);

    let mut child = spawn_traced(
        &dir,
        &["--input", &input_arg, "--audit", "/dev/full"],
        Stdio::null(),
    );
    let status = wait_with_deadline(&mut child, std::time::Duration::from_secs(10));
    let stderr = std::fs::read(dir.join("stderr.log")).unwrap();
    assert_eq!(
        status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&stderr)
    );
    assert_clean("the audit file on a full disk", &stderr, &tokens);

    std::fs::create_dir_all(dir.join("input")).unwrap();
    let (followed, out) = (dir.join("input/app.log"), dir.join("out.log"));
    append(&followed, format!("f {}\n", tokens[2]).as_bytes());
    let mut child = spawn_traced(
        &dir,
        &[
            "--input",
            &format!("follow:{}", followed.display()),
            "--output",
            &format!("file:{}", out.display()),
        ],
        Stdio::null(),
    );
    wait_for_lines(&out, 1);
    std::fs::remove_file(&out).unwrap();
    append(&followed, format!("g {}\n", tokens[3]).as_bytes());
    let status = wait_with_deadline(&mut child, std::time::Duration::from_secs(10));
    let stderr = std::fs::read(dir.join("stderr.log")).unwrap();
    assert_eq!(
        status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&stderr)
    );
    assert_clean("an output file deleted while following", &stderr, &tokens);

    let nobody = free_port();
    let listen = free_port();
    let mut child = spawn_traced(
        &dir,
        &[
            "--input",
            &format!("tcp://127.0.0.1:{listen}"),
            "--output",
            &format!("tcp://127.0.0.1:{nobody}"),
            "--shutdown-grace",
            "1",
        ],
        Stdio::null(),
    );
    wait_for_port(listen);
    let mut connection = std::net::TcpStream::connect(("127.0.0.1", listen)).unwrap();
    let _ = std::io::Write::write_all(
        &mut connection,
        format!("h {} i {}\n", tokens[0], tokens[1]).as_bytes(),
    );
    std::thread::sleep(std::time::Duration::from_millis(800));
    signal(&child, "TERM");
    wait_with_deadline(&mut child, std::time::Duration::from_secs(20));
    let stderr = std::fs::read(dir.join("stderr.log")).unwrap();
    assert!(
        String::from_utf8_lossy(&stderr).contains("cannot connect to upstream"),
        "{}",
        String::from_utf8_lossy(&stderr)
    );
    assert_clean("an upstream that never answers", &stderr, &tokens);
}

/// Issue 14, item 1: clap's usage errors quote the argument they refuse;
/// the argument may be a secret. Each is refused with status 2 and its
/// message masked.
#[test]
fn command_line_errors_carry_no_token() {
    let mut tokens = TokenGen::new(1401);
    for make in [
        |t: &str| vec!["--input".to_string(), format!("bogus:{t}")],
        |t: &str| vec!["--output".to_string(), format!("bogus:{t}")],
        |t: &str| vec!["--admin".to_string(), t.to_string()],
        |t: &str| vec!["--shutdown-grace".to_string(), t.to_string()],
        |t: &str| vec!["--log-format".to_string(), t.to_string()],
        |t: &str| vec![format!("--{t}")],
        |t: &str| vec![t.to_string()],
        |t: &str| vec!["check-config".to_string(), "a".to_string(), t.to_string()],
    ] {
        let token = tokens.token();
        let args = make(&token);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let output = run(&args, b"");
        assert_eq!(output.status.code(), Some(2), "{args:?}");
        assert!(
            String::from_utf8_lossy(&output.stderr).contains("dapi****"),
            "{args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        assert_clean("stderr", &output.stderr, std::slice::from_ref(&token));
        assert_clean("stdout", &output.stdout, std::slice::from_ref(&token));
    }
}

/// Issue 14, item 2: messages quote values with escapes (`\t`, `\n`, `\"`):
/// the escape's last byte is a word byte, so a token right after it used to
/// pass the scrub. Swept over every ASCII control character and the usual
/// quoting characters, in a configuration error, in text and JSON logs.
#[test]
fn a_token_after_an_escape_in_a_message_is_masked() {
    let dir = scratch("escapes");
    let mut tokens = TokenGen::new(1402);
    for (i, before) in prefixes().into_iter().enumerate() {
        let token = tokens.token();
        // A double-quoted YAML string with the character escaped, so that
        // every control character can be written.
        let escaped = yaml_escape(before);
        let config = dir.join(format!("bad-{i}.yaml"));
        std::fs::write(
            &config,
            format!("rules:\n  - id: r\n    pattern: x\n    window: \"{escaped}{token}\"\n"),
        )
        .unwrap();
        for args in [
            vec!["check-config", config.to_str().unwrap()],
            vec!["--config", config.to_str().unwrap()],
            vec!["--log-format", "json", "--config", config.to_str().unwrap()],
        ] {
            let output = run(&args, b"");
            assert_eq!(output.status.code(), Some(2), "{args:?}");
            assert_clean("stderr", &output.stderr, std::slice::from_ref(&token));
            assert_clean("stdout", &output.stdout, std::slice::from_ref(&token));
        }
    }
}

// ---------------------------------------------------------------------------
// Issue 14, item 3: the sweep of every message path. A token is placed after
// each of the characters below, in every value logredact may echo, and no
// run of 8 of its hex digits may appear in anything logredact writes.

/// The characters a token follows in the sweep: every ASCII control
/// character, the quoting and escaping characters, and a non-ASCII letter.
fn prefixes() -> Vec<char> {
    let mut prefixes: Vec<char> = (0u8..0x20).map(char::from).collect();
    prefixes.extend(['\u{7f}', '"', '\\', '%', '=', 'é']);
    prefixes
}

/// Fails if any 8-digit run of any token's hex digits is in `bytes`.
fn assert_no_hex_run(what: &str, bytes: &[u8], tokens: &[String]) {
    for token in tokens {
        let hex = &token.as_bytes()[4..];
        for run in hex.windows(8) {
            assert!(
                !bytes.windows(8).any(|w| w == run),
                "{what} contains 8 hex digits of a token ({}):\n{}",
                String::from_utf8_lossy(run),
                String::from_utf8_lossy(bytes)
            );
        }
    }
}

/// A check that starts logredact and reads what it wrote.
type Job<'a> = Box<dyn FnOnce() + Send + 'a>;

/// Runs `jobs` on four threads (they mostly wait on processes); a failed
/// one fails the test with its message.
fn in_parallel(jobs: Vec<Job<'_>>) {
    let jobs = std::sync::Mutex::new(jobs);
    std::thread::scope(|scope| {
        for _ in 0..4 {
            scope.spawn(|| {
                loop {
                    let Some(job) = jobs.lock().unwrap_or_else(|e| e.into_inner()).pop() else {
                        return;
                    };
                    job();
                }
            });
        }
    });
}

/// `c` as a YAML double-quoted escape.
fn yaml_escape(c: char) -> String {
    format!("\\u{:04x}", c as u32)
}

/// Every command-line flag with a bad value, and every path argument that
/// cannot be opened, holding a token after each prefix (NUL cannot be in an
/// argument): the message is refused or reported without the token.
#[test]
fn sweep_command_line_values_after_every_prefix() {
    let mut generator = TokenGen::new(1431);
    type Make = fn(&str) -> Vec<String>;
    let flags: [Make; 15] = [
        |v| vec!["--input".into(), format!("bogus:{v}")],
        |v| vec!["--input".into(), format!("file:/nonexistent/{v}")],
        |v| vec!["--output".into(), format!("bogus:{v}")],
        |v| vec!["--admin".into(), v.into()],
        |v| vec!["--shutdown-grace".into(), v.into()],
        |v| vec!["--log-format".into(), v.into()],
        |v| vec![format!("--{v}")],
        |v| vec![v.into()],
        |v| vec!["--config".into(), format!("/nonexistent/{v}.yaml")],
        |v| vec!["--audit".into(), format!("/nonexistent/{v}")],
        |v| vec!["--fingerprint-key-file".into(), format!("/nonexistent/{v}")],
        |v| vec!["check-config".into(), format!("/nonexistent/{v}")],
        |v| vec!["check-config".into(), "a".into(), v.into()],
        |v| vec!["audit-summary".into(), format!("/nonexistent/{v}")],
        |v| vec!["export-rules".into(), "--format".into(), v.into()],
    ];
    let mut jobs: Vec<Job<'_>> = Vec::new();
    for prefix in prefixes().into_iter().filter(|&c| c != '\0') {
        for make in flags {
            let token = generator.token();
            let args = make(&format!("{prefix}{token}"));
            // A subcommand takes no --log-format.
            let formats: &[&str] = match args[0].starts_with("--") {
                true => &["text", "json"],
                false => &["text"],
            };
            for &format in formats {
                let (token, mut args) = (token.clone(), args.clone());
                jobs.push(Box::new(move || {
                    if format == "json" {
                        args.splice(0..0, ["--log-format".to_string(), format.into()]);
                    }
                    let args: Vec<&str> = args.iter().map(String::as_str).collect();
                    let output = run(&args, b"");
                    assert_ne!(output.status.code(), Some(0), "{args:?}");
                    let what = format!("{args:?}");
                    let tokens = std::slice::from_ref(&token);
                    assert_no_hex_run(&format!("stdout of {what}"), &output.stdout, tokens);
                    assert_no_hex_run(&format!("stderr of {what}"), &output.stderr, tokens);
                }));
            }
        }
    }
    in_parallel(jobs);
}

/// Every kind of configuration error, with a token after each prefix in the
/// value at fault (written with YAML escapes, so that every control
/// character can be), by check-config and by a run with JSON logs.
#[test]
fn sweep_configuration_errors_after_every_prefix() {
    let dir = scratch("sweep-config");
    let mut generator = TokenGen::new(1432);
    // `{v}` is the escaped prefix and the token, inside double quotes.
    let kinds: [&str; 21] = [
        "\"{v}\": 1\n",
        "rules:\n  - id: r\n    pattern: x\n    \"{v}\": 1\n",
        "rules: \"{v}\"\n",
        "rules:\n  - id: r\n    pattern: x\n    window: \"{v}\"\n",
        "rules:\n  - id: \"{v}\"\n    pattern: \"(\"\n",
        "rules:\n  - id: r\n    pattern: \"({v}\"\n",
        "rules:\n  - id: \"{v}\"\n    pattern: \"a+\"\n",
        "rules:\n  - id: r\n    pattern: x\n    mask: \"{v}{bogus}\"\n",
        "rules:\n  - id: \"{v}\"\n    pattern: x\n    keywords: [\"\"]\n",
        "rules:\n  - id: \"{v}\"\n    pattern: x\n  - id: \"{v}\"\n    pattern: y\n",
        "rules:\n  - id: r\n    pattern: x\n    allow: [\"fingerprint:{v}\"]\n",
        "rules:\n  - id: r\n    pattern: x\n    window: 99999\n    keywords: [\"{v}\"]\n",
        "include: [\"{v}.yaml\"]\n",
        "audit: { fingerprint_key_file: \"/nonexistent/{v}\" }\n",
        "output: \"{v}\"\n",
        "inputs: [\"{v}\"]\n",
        "inputs: [{ follow: /x.log, rotated: \"{v}[\" }]\n",
        "admin: { listen: \"{v}\" }\n",
        "limits: { max_connections: \"{v}\" }\n",
        "state_dir: [\"{v}\"]\n",
        "rules: [\"{v}\n",
    ];
    let mut jobs: Vec<Job<'_>> = Vec::new();
    for (p, prefix) in prefixes().into_iter().enumerate() {
        for (k, kind) in kinds.iter().enumerate() {
            let token = generator.token();
            let config = dir.join(format!("bad-{p}-{k}.yaml"));
            let value = format!("{}{token}", yaml_escape(prefix));
            std::fs::write(&config, kind.replace("{v}", &value)).unwrap();
            jobs.push(Box::new(move || {
                let config = config.to_str().unwrap();
                for args in [
                    vec!["check-config", config],
                    vec!["--log-format", "json", "--config", config],
                ] {
                    let output = run(&args, b"");
                    assert_eq!(
                        output.status.code(),
                        Some(2),
                        "{args:?}: {}",
                        transcript(&output)
                    );
                    let what = format!("kind {k}, prefix {prefix:?}, {args:?}");
                    let tokens = std::slice::from_ref(&token);
                    assert_no_hex_run(&format!("stdout of {what}"), &output.stdout, tokens);
                    assert_no_hex_run(&format!("stderr of {what}"), &output.stderr, tokens);
                }
            }));
        }
    }
    in_parallel(jobs);
}

/// One run of the mode sweep: a scratch directory, a directory path whose
/// components each hold a token after one of the prefixes (NUL cannot be in
/// a name), and input lines holding a token after each prefix.
struct Sweep {
    dir: PathBuf,
    /// `dir/in/<prefix><token>/<prefix><token>/…`, one component per prefix.
    named: PathBuf,
    tokens: Vec<String>,
    /// `a<prefix><token>\n` for each prefix.
    data: Vec<u8>,
}

impl Sweep {
    fn new(name: &str, seed: u64) -> Sweep {
        let dir = scratch(name);
        let mut generator = TokenGen::new(seed);
        let mut tokens = Vec::new();
        let mut named = dir.join("in");
        for prefix in prefixes().into_iter().filter(|&c| c != '\0') {
            let token = generator.token();
            named.push(format!("{prefix}{token}"));
            tokens.push(token);
        }
        std::fs::create_dir_all(&named).unwrap();
        let data = Sweep::lines(&mut generator, &mut tokens);
        Sweep {
            dir,
            named,
            tokens,
            data,
        }
    }

    /// More input lines, with new tokens.
    fn lines(generator: &mut TokenGen, tokens: &mut Vec<String>) -> Vec<u8> {
        let mut data = Vec::new();
        for prefix in prefixes() {
            let token = generator.token();
            data.extend_from_slice(format!("a{prefix}{token}\n").as_bytes());
            tokens.push(token);
        }
        data
    }

    fn path(&self, name: &str) -> PathBuf {
        self.named.join(name)
    }

    /// Starts logredact at trace level with `args` and `--log-format`.
    fn spawn(&self, format: &str, args: &[&str]) -> std::process::Child {
        let mut all = vec!["--log-format", format];
        all.extend_from_slice(args);
        spawn_traced(&self.dir, &all, Stdio::null())
    }

    /// SIGTERM, then a clean exit.
    fn stop(&self, mut child: std::process::Child) {
        signal(&child, "TERM");
        let status = wait_with_deadline(&mut child, std::time::Duration::from_secs(20));
        assert!(
            status.success(),
            "{status}: {}",
            String::from_utf8_lossy(&std::fs::read(self.dir.join("stderr.log")).unwrap())
        );
    }

    /// Every file logredact may have written under the directory (all but
    /// `inputs`), and `extra` (its standard output and error when captured),
    /// holds no 8 hex digits of any token.
    fn assert_clean(&self, what: &str, inputs: &[&Path], extra: &[&[u8]]) {
        for file in every_file(&self.dir) {
            if !inputs.contains(&file.as_path()) {
                let shown = file.strip_prefix(&self.dir).unwrap().display().to_string();
                let shown = format!("{what}: {}", shown.chars().take(60).collect::<String>());
                assert_no_hex_run(&shown, &std::fs::read(&file).unwrap(), &self.tokens);
            }
        }
        for bytes in extra {
            assert_no_hex_run(what, bytes, &self.tokens);
        }
    }
}

fn newlines(bytes: &[u8]) -> usize {
    bytes.iter().filter(|&&b| b == b'\n').count()
}

/// Standard input to standard output, with the audit file in the named
/// directory.
fn sweep_pipe(format: &str, seed: u64) {
    let s = Sweep::new(&format!("sweep-pipe-{format}"), seed);
    let audit = s.path("audit.jsonl");
    let output = run(
        &["--log-format", format, "--audit", audit.to_str().unwrap()],
        &s.data,
    );
    assert!(output.status.success(), "{}", transcript(&output));
    assert_eq!(output.stdout, reference_redaction(&s.data));
    s.assert_clean("pipe", &[], &[&output.stdout, &output.stderr]);
}

/// A file read to its end, named in the named directory.
fn sweep_file(format: &str, seed: u64) {
    let s = Sweep::new(&format!("sweep-file-{format}"), seed);
    let (input, out, audit) = (s.path("app.log"), s.path("out.log"), s.path("audit.jsonl"));
    append(&input, &s.data);
    let mut child = s.spawn(
        format,
        &[
            "--input",
            &format!("file:{}", input.display()),
            "--output",
            &format!("file:{}", out.display()),
            "--audit",
            audit.to_str().unwrap(),
        ],
    );
    let status = wait_with_deadline(&mut child, std::time::Duration::from_secs(20));
    assert!(status.success());
    assert_eq!(std::fs::read(&out).unwrap(), reference_redaction(&s.data));
    s.assert_clean("file", &[&input], &[]);
}

/// A followed file in the named directory, its state directory, output and
/// audit file beside it, rotated once (renamed, and a new file made).
fn sweep_follow(format: &str, seed: u64) {
    let mut s = Sweep::new(&format!("sweep-follow-{format}"), seed);
    let (input, rotated) = (s.path("app.log"), s.path("app.log.1"));
    let (out, audit, state) = (s.path("out.log"), s.path("audit.jsonl"), s.path("state"));
    append(&input, &s.data);
    let child = s.spawn(
        format,
        &[
            "--input",
            &format!("follow:{}", input.display()),
            "--output",
            &format!("file:{}", out.display()),
            "--state-dir",
            state.to_str().unwrap(),
            "--audit",
            audit.to_str().unwrap(),
        ],
    );
    wait_for_lines(&out, newlines(&s.data));
    let mut generator = TokenGen::new(seed + 1);
    let more = Sweep::lines(&mut generator, &mut s.tokens);
    std::fs::rename(&input, &rotated).unwrap();
    append(&input, &more);
    wait_for_lines(&out, newlines(&s.data) + newlines(&more));
    // Past a checkpoint save.
    std::thread::sleep(std::time::Duration::from_millis(1300));
    s.stop(child);
    assert!(checkpoint_file(&state).is_some(), "a checkpoint was saved");
    let log = std::fs::read(s.dir.join("stderr.log")).unwrap();
    assert!(
        String::from_utf8_lossy(&log).contains("dapi****"),
        "the log names the followed file"
    );
    s.assert_clean("follow", &[&input, &rotated], &[]);
}

/// A pattern matching files named with a token after each prefix (the
/// pattern's own directory holds none: `\` is an escape in a pattern).
fn sweep_follow_glob(format: &str, seed: u64) {
    let mut s = Sweep::new(&format!("sweep-glob-{format}"), seed);
    let files = s.dir.join("in/glob");
    std::fs::create_dir_all(&files).unwrap();
    let mut generator = TokenGen::new(seed + 1);
    let mut inputs = Vec::new();
    for prefix in prefixes().into_iter().filter(|&c| c != '\0') {
        let token = generator.token();
        let file = files.join(format!("{prefix}{token}.log"));
        append(&file, &s.data);
        inputs.push(file);
        s.tokens.push(token);
    }
    let (out, audit, state) = (s.path("out.log"), s.path("audit.jsonl"), s.path("state"));
    let child = s.spawn(
        format,
        &[
            "--input",
            &format!("follow:{}/*.log", files.display()),
            "--output",
            &format!("file:{}", out.display()),
            "--state-dir",
            state.to_str().unwrap(),
            "--audit",
            audit.to_str().unwrap(),
        ],
    );
    wait_for_lines(&out, newlines(&s.data) * inputs.len());
    std::thread::sleep(std::time::Duration::from_millis(1300));
    s.stop(child);
    let inputs: Vec<&Path> = inputs.iter().map(PathBuf::as_path).collect();
    s.assert_clean("follow glob", &inputs, &[]);
}

/// A TCP input merged into an output file in the named directory.
fn sweep_tcp(format: &str, seed: u64) {
    let s = Sweep::new(&format!("sweep-tcp-{format}"), seed);
    let (out, audit) = (s.path("out.log"), s.path("audit.jsonl"));
    let listen = free_port();
    let child = s.spawn(
        format,
        &[
            "--input",
            &format!("tcp://127.0.0.1:{listen}"),
            "--output",
            &format!("file:{}", out.display()),
            "--audit",
            audit.to_str().unwrap(),
        ],
    );
    wait_for_port(listen);
    let mut connection = std::net::TcpStream::connect(("127.0.0.1", listen)).unwrap();
    std::io::Write::write_all(&mut connection, &s.data).unwrap();
    drop(connection);
    wait_for_lines(&out, newlines(&s.data));
    s.stop(child);
    s.assert_clean("tcp", &[], &[]);
}

/// A redacting proxy: each TCP connection to its own upstream connection.
fn sweep_proxy(format: &str, seed: u64) {
    let s = Sweep::new(&format!("sweep-proxy-{format}"), seed);
    let audit = s.path("audit.jsonl");
    let upstream = Collector::start(0);
    let listen = free_port();
    let child = s.spawn(
        format,
        &[
            "--input",
            &format!("tcp://127.0.0.1:{listen}"),
            "--output",
            &format!("tcp://127.0.0.1:{}", upstream.port),
            "--audit",
            audit.to_str().unwrap(),
        ],
    );
    wait_for_port(listen);
    let mut connection = std::net::TcpStream::connect(("127.0.0.1", listen)).unwrap();
    std::io::Write::write_all(&mut connection, &s.data).unwrap();
    drop(connection);
    let expected = reference_redaction(&s.data);
    let received = upstream.wait_for_total(expected.len(), std::time::Duration::from_secs(15));
    s.stop(child);
    assert_eq!(received.concat(), expected);
    s.assert_clean("proxy", &[], &[&received.concat()]);
}

/// check-config on a valid file in the named directory whose rule id and
/// mask, which it prints, hold tokens.
fn sweep_check_config(format: &str, seed: u64) {
    let mut s = Sweep::new(&format!("sweep-check-{format}"), seed);
    let config = s.path("logredact.yaml");
    let mut generator = TokenGen::new(seed + 1);
    let mut rules = String::from("rules:\n");
    for (i, prefix) in prefixes().into_iter().enumerate() {
        let (id, mask) = (generator.token(), generator.token());
        let (p, q) = (yaml_escape(prefix), yaml_escape(prefix));
        rules.push_str(&format!(
            "  - id: \"r{p}{id}\"\n    pattern: 'x{i}y'\n    mask: \"m{q}{mask}\"\n"
        ));
        s.tokens.extend([id, mask]);
    }
    std::fs::write(&config, rules).unwrap();
    assert_eq!(format, "text", "a subcommand takes no --log-format");
    let output = run(&["check-config", config.to_str().unwrap()], b"");
    assert!(output.status.success(), "{}", transcript(&output));
    s.assert_clean(
        "check-config",
        &[&config],
        &[&output.stdout, &output.stderr],
    );
}

/// audit-summary on an audit file in the named directory whose stream ids,
/// rule ids, fingerprints and timestamps hold tokens (a file not written by
/// logredact), with a partial last line holding one too.
fn sweep_audit_summary(format: &str, seed: u64) {
    let mut s = Sweep::new(&format!("sweep-summary-{format}"), seed);
    let audit = s.path("audit.jsonl");
    let mut generator = TokenGen::new(seed + 1);
    let mut text = String::new();
    for prefix in prefixes() {
        let t: Vec<String> = (0..4).map(|_| generator.token()).collect();
        // `ts` and `fingerprint` are read without unescaping (a record
        // whose are escaped is refused): the prefix only where JSON leaves
        // it as it is.
        let after = |token: &str| match serde_json::json!(prefix).to_string().contains('\\') {
            true => format!("x{token}"),
            false => format!("{prefix}{token}"),
        };
        let record = serde_json::json!({
            "ts": after(&t[0]),
            "stream": format!("file:/{prefix}{}", t[1]),
            "rule": format!("{prefix}{}", t[2]),
            "confidence": "high",
            "masked": true,
            "fingerprint": after(&t[3]),
        });
        text.push_str(&format!("{record}\n"));
        s.tokens.extend(t);
    }
    let partial = generator.token();
    text.push_str(&format!("{{\"ts\":\"{partial}"));
    s.tokens.push(partial);
    std::fs::write(&audit, text).unwrap();
    for json in [false, true] {
        assert_eq!(format, "text", "a subcommand takes no --log-format");
        let mut args = vec!["audit-summary", audit.to_str().unwrap()];
        if json {
            args.push("--json");
        }
        let output = run(&args, b"");
        assert!(output.status.success(), "{}", transcript(&output));
        s.assert_clean(
            "audit-summary",
            &[&audit],
            &[&output.stdout, &output.stderr],
        );
    }
}

/// Every mode at trace level, in text and JSON logs, with tokens in the
/// data and in every name logredact echoes (paths of inputs, outputs, the
/// audit file, the state directory and the configuration; rule ids; stream
/// ids of an audit file): no 8 hex digits of any of them in standard output,
/// standard error, or any file logredact wrote.
#[test]
fn sweep_every_mode_at_trace_level() {
    type Mode = fn(&str, u64);
    let modes: [Mode; 8] = [
        sweep_pipe,
        sweep_file,
        sweep_follow,
        sweep_follow_glob,
        sweep_tcp,
        sweep_proxy,
        sweep_check_config,
        sweep_audit_summary,
    ];
    let mut jobs: Vec<Job<'_>> = Vec::new();
    for (m, mode) in modes.into_iter().enumerate() {
        // The last two are subcommands, which take no --log-format.
        let formats: &[&str] = if m < 6 { &["text", "json"] } else { &["text"] };
        for (f, &format) in formats.iter().enumerate() {
            let seed = 1433 + 10 * (2 * m + f) as u64;
            jobs.push(Box::new(move || mode(format, seed)));
        }
    }
    in_parallel(jobs);
}
