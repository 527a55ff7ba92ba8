//! TCP inputs and outputs on real sockets on 127.0.0.1: the redacting proxy,
//! merging without interleaved lines, an upstream that is down or drops, a
//! stalled output, connection limits, the admin endpoint and shutdown.

mod common;

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use common::*;

/// Sends `bytes` in pieces of 1 to `max_piece` bytes with a pause between.
fn send_slowly(stream: &mut TcpStream, bytes: &[u8], seed: u64, max_piece: u64, pause: Duration) {
    let mut random = TokenGen::new(seed);
    let mut at = 0;
    while at < bytes.len() {
        let n = (1 + random.next_u64() % max_piece) as usize;
        let end = (at + n).min(bytes.len());
        stream.write_all(&bytes[at..end]).unwrap();
        at = end;
        std::thread::sleep(pause);
    }
}

fn stop(mut run: Running) -> (std::process::ExitStatus, Vec<u8>, String) {
    signal(&run.child, "TERM");
    drop(run.stdin.take());
    run.finish()
}

#[test]
fn fifty_clients_each_proxied_exactly_to_their_own_upstream() {
    let collector = Collector::start(0);
    let port = free_port();
    let mut run = Running::spawn(&[
        "--input",
        &format!("tcp://127.0.0.1:{port}"),
        "--output",
        &format!("tcp://127.0.0.1:{}", collector.port),
    ]);
    run.wait_for_port(port);
    let streams: Vec<Vec<u8>> = (0..50).map(|i| client_stream(i, 20)).collect();
    let clients: Vec<_> = streams
        .iter()
        .cloned()
        .enumerate()
        .map(|(i, bytes)| {
            std::thread::spawn(move || {
                let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
                // Pieces of up to 50 bytes split most tokens across segments.
                send_slowly(&mut stream, &bytes, i as u64, 50, Duration::from_millis(2));
            })
        })
        .collect();
    for client in clients {
        client.join().unwrap();
    }
    let mut expected: Vec<Vec<u8>> = streams.iter().map(|s| reference_redaction(s)).collect();
    let total = expected.iter().map(Vec::len).sum();
    let mut got = collector.wait_for_total(total, Duration::from_secs(20));
    // The port probe was an inbound connection that sent nothing: its
    // upstream connection is empty too.
    expected.push(Vec::new());
    expected.sort();
    got.sort();
    assert_eq!(
        got.len(),
        51,
        "one upstream connection per inbound connection"
    );
    assert!(
        got == expected,
        "an upstream stream differs from the redaction of its inbound stream"
    );
    let (status, _, _) = stop(run);
    assert!(status.success());
}

#[test]
fn merged_slow_clients_never_interleave_inside_a_line() {
    let port = free_port();
    let mut run = Running::spawn(&[
        "--input",
        &format!("tcp://127.0.0.1:{port}"),
        "--output",
        "-",
    ]);
    run.wait_for_port(port);
    let streams: Vec<Vec<u8>> = (0..10).map(|i| client_stream(100 + i, 8)).collect();
    let clients: Vec<_> = streams
        .iter()
        .cloned()
        .enumerate()
        .map(|(i, bytes)| {
            std::thread::spawn(move || {
                let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
                send_slowly(
                    &mut stream,
                    &bytes,
                    50 + i as u64,
                    5,
                    Duration::from_millis(1),
                );
            })
        })
        .collect();
    for client in clients {
        client.join().unwrap();
    }
    let expected: Vec<Vec<u8>> = streams.iter().map(|s| reference_redaction(s)).collect();
    let total: usize = expected.iter().map(Vec::len).sum();
    run.read_at_least(total, Duration::from_secs(20));
    let (status, output, _) = stop(run);
    assert!(status.success());
    let mut got_lines: Vec<&[u8]> = output.split_inclusive(|&b| b == b'\n').collect();
    let mut expected_lines: Vec<&[u8]> = expected
        .iter()
        .flat_map(|s| s.split_inclusive(|&b| b == b'\n'))
        .collect();
    // Each client's lines stay in order...
    for (client, stream) in expected.iter().enumerate() {
        let prefix = format!("client {} ", 100 + client);
        let json = format!("{{\"client\":{},", 100 + client);
        let mine: Vec<&[u8]> = got_lines
            .iter()
            .copied()
            .filter(|line| line.starts_with(prefix.as_bytes()) || line.starts_with(json.as_bytes()))
            .collect();
        let theirs: Vec<&[u8]> = stream.split_inclusive(|&b| b == b'\n').collect();
        assert_eq!(mine, theirs, "client {client}'s lines");
    }
    // ...and the output is exactly the redacted lines, none cut or mixed.
    got_lines.sort();
    expected_lines.sort();
    assert!(
        got_lines == expected_lines,
        "lines were interleaved or changed"
    );
}

/// A connection that closes inside a line: merged output ends that line
/// there, so that the next connection's line does not run on from it.
#[test]
fn merged_a_connection_closed_inside_a_line_has_that_line_ended() {
    let port = free_port();
    let mut run = Running::spawn(&["--input", &format!("tcp://127.0.0.1:{port}")]);
    run.wait_for_port(port);
    let mut first = TcpStream::connect(("127.0.0.1", port)).unwrap();
    first
        .write_all(b"whole line\nno newline at the end")
        .unwrap();
    drop(first);
    run.expect_output(
        b"whole line\nno newline at the end\n",
        Duration::from_secs(10),
        "the first connection's lines, the last one ended",
    );
    let mut second = TcpStream::connect(("127.0.0.1", port)).unwrap();
    second.write_all(b"second connection\n").unwrap();
    drop(second);
    run.expect_output(
        b"whole line\nno newline at the end\nsecond connection\n",
        Duration::from_secs(10),
        "the second connection's line on a line of its own",
    );
    let (status, output, _) = stop(run);
    assert!(status.success());
    assert_eq!(
        output,
        b"whole line\nno newline at the end\nsecond connection\n"
    );
}

/// An upstream the test controls connection by connection.
struct ControlledUpstream {
    listener: TcpListener,
}

impl ControlledUpstream {
    fn bind(port: u16) -> ControlledUpstream {
        ControlledUpstream {
            listener: TcpListener::bind(("127.0.0.1", port)).unwrap(),
        }
    }

    /// Accepts one connection and reads until `len` bytes or end of stream.
    fn read_connection(&self, len: Option<usize>) -> (TcpStream, Vec<u8>) {
        let (mut stream, _) = self.listener.accept().unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(20)))
            .unwrap();
        let mut got = Vec::new();
        let mut buffer = [0u8; 65536];
        while len.is_none_or(|len| got.len() < len) {
            match stream.read(&mut buffer) {
                Ok(0) => break,
                Ok(n) => got.extend_from_slice(&buffer[..n]),
                Err(e) => panic!("upstream read: {e}"),
            }
        }
        (stream, got)
    }
}

#[test]
fn an_upstream_down_at_start_and_dropped_mid_stream_gets_everything_in_order() {
    let upstream_port = free_port();
    let admin = free_port();
    let mut run = Running::spawn(&[
        "--output",
        &format!("tcp://127.0.0.1:{upstream_port}"),
        "--admin",
        &format!("127.0.0.1:{admin}"),
    ]);
    let first = client_stream(200, 30);
    let second = client_stream(201, 30);
    let (first_expected, second_expected) =
        (reference_redaction(&first), reference_redaction(&second));
    run.write(&first);
    // Nothing listens yet: logredact retries, holding the input.
    std::thread::sleep(Duration::from_millis(800));
    wait_for_port(admin);
    let (status, body) = http_get(admin, "/readyz");
    assert_eq!(
        (status, body.as_str()),
        (503, "not ready: an output is not connected\n")
    );
    let upstream = ControlledUpstream::bind(upstream_port);
    let (dropped, got_first) = upstream.read_connection(Some(first_expected.len()));
    assert!(got_first == first_expected, "the first connection's data");
    // The upstream drops the connection; then more input arrives.
    dropped.shutdown(Shutdown::Both).unwrap();
    drop(dropped);
    std::thread::sleep(Duration::from_millis(200));
    run.write(&second);
    let (mut reconnected, got_second) = upstream.read_connection(Some(second_expected.len()));
    assert!(
        got_second == second_expected,
        "the second connection's data"
    );
    let (_, metrics) = http_get(admin, "/metrics");
    let retries: u64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("logredact_output_retries_total "))
        .unwrap()
        .parse()
        .unwrap();
    assert!(retries >= 2, "{metrics}");
    // At the end of the input, the upstream connection is closed cleanly.
    drop(run.stdin.take());
    let mut rest = Vec::new();
    reconnected.read_to_end(&mut rest).unwrap();
    assert!(rest.is_empty());
    let (status, _, stderr) = run.finish();
    assert!(status.success(), "{stderr}");
    assert!(stderr.contains("cannot connect to upstream"), "{stderr}");
    assert!(
        stderr.contains("upstream closed the connection; reconnecting"),
        "{stderr}"
    );
}

#[test]
fn a_stalled_output_pauses_the_input_and_nothing_is_lost() {
    let upstream = ControlledUpstream::bind(0);
    let upstream_port = upstream.listener.local_addr().unwrap().port();
    let mut child = binary()
        .args(["--output", &format!("tcp://127.0.0.1:{upstream_port}")])
        .stdin(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let mut input = Vec::new();
    let mut client = 0;
    while input.len() < 48 << 20 {
        input.extend_from_slice(&client_stream(300 + client, 200));
        client += 1;
    }
    let written = Arc::new(AtomicU64::new(0));
    let writer = {
        let (input, written) = (input.clone(), Arc::clone(&written));
        std::thread::spawn(move || {
            for piece in input.chunks(64 * 1024) {
                stdin.write_all(piece).unwrap();
                written.fetch_add(piece.len() as u64, Ordering::SeqCst);
            }
        })
    };
    // Accept, but do not read: the output stalls.
    let (mut stalled, _) = upstream.listener.accept().unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    let accepted_while_stalled = written.load(Ordering::SeqCst);
    let rss = rss_kib(child.id());
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(
        written.load(Ordering::SeqCst),
        accepted_while_stalled,
        "input reading paused"
    );
    assert!(
        accepted_while_stalled < 24 << 20,
        "{accepted_while_stalled} bytes taken while stalled"
    );
    assert!(rss < 32 * 1024, "peak RSS {rss} KiB while stalled");
    // The output resumes: everything arrives.
    let reader = std::thread::spawn(move || {
        let mut got = Vec::new();
        stalled.read_to_end(&mut got).unwrap();
        got
    });
    writer.join().unwrap();
    let status = wait_with_deadline(&mut child, Duration::from_secs(60));
    assert!(status.success());
    let got = reader.join().unwrap();
    assert!(
        got == reference_redaction(&input),
        "output differs after the stall"
    );
}

/// Whether the server closes `stream` within `wait` (reads end of file).
fn closed_within(stream: &mut TcpStream, wait: Duration) -> bool {
    stream.set_read_timeout(Some(wait)).unwrap();
    let mut buffer = [0u8; 16];
    matches!(stream.read(&mut buffer), Ok(0))
        || matches!(stream.read(&mut buffer), Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset)
}

#[test]
fn connection_limit_and_idle_timeout() {
    let dir = scratch("limits");
    // The idle timeout must outlast the steps up to the third connection
    // even on a loaded machine: an earlier idle close would free a place,
    // and the third connection would be let in.
    let (mut run, port, admin) = listen_with_limits(&dir, 2, 3, &[]);
    let mut first = TcpStream::connect(("127.0.0.1", port)).unwrap();
    let mut second = TcpStream::connect(("127.0.0.1", port)).unwrap();
    first.write_all(b"one\n").unwrap();
    second.write_all(b"two\n").unwrap();
    let mut lines: Vec<&[u8]> = run
        .read_at_least(8, Duration::from_secs(5))
        .split_inclusive(|&b| b == b'\n')
        .collect();
    lines.sort();
    assert_eq!(lines, [&b"one\n"[..], b"two\n"]);
    // A third and a fourth connection are over the limit: closed at once.
    let mut third = TcpStream::connect(("127.0.0.1", port)).unwrap();
    let mut fourth = TcpStream::connect(("127.0.0.1", port)).unwrap();
    let closed = closed_within(&mut third, Duration::from_millis(900))
        && closed_within(&mut fourth, Duration::from_millis(900));
    let (_, metrics) = http_get(admin, "/metrics");
    assert!(
        closed,
        "the third and fourth connections are closed at accept\n{metrics}"
    );
    assert!(
        metrics.contains("logredact_connections_rejected_total 2\n"),
        "{metrics}"
    );
    // The two idle connections are closed after three seconds.
    assert!(
        closed_within(&mut first, Duration::from_secs(5)),
        "idle connection closed"
    );
    assert!(
        closed_within(&mut second, Duration::from_secs(5)),
        "idle connection closed"
    );
    // Their places are free again.
    let mut fifth = TcpStream::connect(("127.0.0.1", port)).unwrap();
    fifth.write_all(b"four\n").unwrap();
    run.read_at_least(13, Duration::from_secs(5));
    drop(fifth);
    let (status, output, stderr) = stop(run);
    assert!(status.success());
    let mut lines: Vec<&[u8]> = output.split_inclusive(|&b| b == b'\n').collect();
    lines.sort();
    assert_eq!(lines, [&b"four\n"[..], b"one\n", b"two\n"]);
    // Both rejections are logged, the second within a second of the first
    // though no further connection came to bring its line about.
    let logged: u64 = stderr
        .lines()
        .filter(|l| l.contains("connection limit reached; closing new connections"))
        .map(|l| {
            l.split_once("rejected=")
                .and_then(|(_, count)| count.split_whitespace().next())
                .and_then(|count| count.parse::<u64>().ok())
                .unwrap_or_else(|| panic!("no count in {l}"))
        })
        .sum();
    assert_eq!(logged, 2, "{stderr}");
    assert_eq!(
        stderr.matches("connection idle too long; closed").count(),
        2,
        "{stderr}"
    );
    for line in stderr.lines().filter(|l| l.contains("idle too long")) {
        assert!(
            line.contains("stream=tcp:127.0.0.1:"),
            "the log line names its stream: {line}"
        );
    }
}

#[test]
fn metrics_count_what_was_sent_and_probes_answer() {
    let (port, admin) = (free_port(), free_port());
    let mut run = Running::spawn(&[
        "--input",
        &format!("tcp://127.0.0.1:{port}"),
        "--admin",
        &format!("127.0.0.1:{admin}"),
    ]);
    run.wait_for_port(port);
    run.wait_for_port(admin);
    assert_eq!(http_get(admin, "/healthz"), (200, "ok\n".to_string()));
    assert_eq!(http_get(admin, "/readyz"), (200, "ready\n".to_string()));
    let mut tokens = TokenGen::new(400);
    let mut input = Vec::new();
    for i in 0..7 {
        input.extend_from_slice(
            format!("bearer {}\n{}\n", tokens.token(), "-".repeat(320)).as_bytes(),
        );
        if i < 3 {
            input.extend_from_slice(
                format!("plain {}\n{}\n", tokens.token(), "-".repeat(320)).as_bytes(),
            );
        }
    }
    let mut client = TcpStream::connect(("127.0.0.1", port)).unwrap();
    client.write_all(&input).unwrap();
    drop(client);
    let expected = reference_redaction(&input);
    run.read_at_least(expected.len(), Duration::from_secs(10));
    std::thread::sleep(Duration::from_millis(100));
    let (status, metrics) = http_get(admin, "/metrics");
    assert_eq!(status, 200);
    // The encoder writes OpenMetrics text; the header must say so, or a
    // Prometheus-format reader takes the counters for untyped samples.
    let head = http_response(admin, "/metrics");
    assert!(
        head.lines().any(|l| l.eq_ignore_ascii_case(
            "content-type: application/openmetrics-text; version=1.0.0; charset=utf-8"
        )),
        "{head}"
    );
    for line in [
        "logredact_detections_total{rule=\"databricks-pat\",confidence=\"high\"} 7".to_string(),
        "logredact_detections_total{rule=\"databricks-pat\",confidence=\"medium\"} 3".to_string(),
        format!("logredact_bytes_in_total {}", input.len()),
        format!("logredact_bytes_out_total {}", expected.len()),
        "logredact_streams_active 0".to_string(),
        "logredact_errors_total{kind=\"read\"} 0".to_string(),
    ] {
        assert!(
            metrics.lines().any(|l| l == line),
            "{line} missing:\n{metrics}"
        );
    }
    let (_, output, _) = stop(run);
    assert!(output == expected);
}

#[test]
fn sigterm_drains_active_streams_and_exits_zero() {
    let port = free_port();
    let mut run = Running::spawn(&[
        "--input",
        &format!("tcp://127.0.0.1:{port}"),
        "--input",
        "-",
        "--shutdown-grace",
        "1",
    ]);
    run.wait_for_port(port);
    let token = TokenGen::new(500).token();
    let mut clients: Vec<TcpStream> = (0..3)
        .map(|_| TcpStream::connect(("127.0.0.1", port)).unwrap())
        .collect();
    let mut expected_lines = Vec::new();
    for (i, client) in clients.iter_mut().enumerate() {
        let line = format!("client {i} bearer {token}\n");
        client.write_all(line.as_bytes()).unwrap();
        expected_lines.push(format!("client {i} bearer dapi****\n"));
    }
    // One connection is in the middle of a token when the signal comes.
    clients[0]
        .write_all(format!("cut {}", &token[..20]).as_bytes())
        .unwrap();
    run.write(b"from stdin\n");
    expected_lines.push("from stdin\n".into());
    let expected_len: usize = expected_lines.iter().map(String::len).sum();
    run.read_at_least(expected_len, Duration::from_secs(5));
    let started = Instant::now();
    signal(&run.child, "TERM");
    let status = wait_with_deadline(&mut run.child, Duration::from_secs(10));
    let took = started.elapsed();
    let (_, output, stderr) = run.finish();
    assert!(status.success(), "{stderr}");
    assert!(took < Duration::from_secs(5), "exited after {took:?}");
    let mut lines: Vec<String> = String::from_utf8(output.clone())
        .unwrap()
        .split_inclusive('\n')
        .map(String::from)
        .collect();
    // The undecided start of a token is not written; the decided "cut " is,
    // and merged output ends its line there.
    assert_eq!(
        lines.iter().filter(|l| l.as_str() == "cut \n").count(),
        1,
        "{output:?}"
    );
    lines.retain(|l| l != "cut \n");
    lines.sort();
    expected_lines.sort();
    assert_eq!(lines, expected_lines);
    assert!(!String::from_utf8_lossy(&output).contains(&token[4..16]));
    // "dapi" and 16 hex digits: held back, never written.
    assert!(
        stderr.contains("undecided_bytes_not_written=20"),
        "{stderr}"
    );
}

#[test]
fn json_logs_name_their_stream() {
    let dir = scratch("json-logs");
    let (run, port, _) = listen_with_limits(&dir, 4, 1, &["--log-format", "json"]);
    let mut idle = TcpStream::connect(("127.0.0.1", port)).unwrap();
    assert!(closed_within(&mut idle, Duration::from_secs(5)));
    let (status, _, stderr) = stop(run);
    assert!(status.success());
    let mut idle_lines = 0;
    for line in stderr.lines() {
        let record: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
        if record["fields"]["message"] == "connection idle too long; closed" {
            idle_lines += 1;
            let stream = record["span"]["stream"].as_str().unwrap();
            assert!(stream.starts_with("tcp:127.0.0.1:"), "{line}");
        }
    }
    assert_eq!(idle_lines, 1, "{stderr}");
}

#[test]
fn a_second_signal_exits_at_once() {
    let port = free_port();
    let mut run = Running::spawn(&[
        "--input",
        &format!("tcp://127.0.0.1:{port}"),
        "--shutdown-grace",
        "60",
    ]);
    run.wait_for_port(port);
    let mut open = TcpStream::connect(("127.0.0.1", port)).unwrap();
    open.write_all(b"a line\n").unwrap();
    assert_eq!(run.read_at_least(7, Duration::from_secs(5)), b"a line\n");
    signal(&run.child, "TERM");
    // Draining: the open connection keeps it alive within the grace period.
    std::thread::sleep(Duration::from_millis(500));
    if let Some(status) = run.child.try_wait().unwrap() {
        let (_, output, stderr) = run.finish();
        panic!(
            "exited ({status}) while it should still be draining; stdout {:?}, stderr:\n{stderr}",
            String::from_utf8_lossy(&output)
        );
    }
    signal(&run.child, "TERM");
    let status = wait_with_deadline(&mut run.child, Duration::from_secs(5));
    assert_eq!(status.code(), Some(143));
    let (_, output, stderr) = run.finish();
    assert_eq!(output, b"a line\n");
    assert!(
        stderr.contains("second signal: exiting at once"),
        "{stderr}"
    );
}

#[test]
fn a_proxied_line_not_delivered_by_the_end_of_the_grace_period_exits_1() {
    let dir = scratch("proxy-undelivered");
    let upstream = format!("127.0.0.1:{}", free_port());
    let output = format!("tcp://{upstream}");
    let (run, port, admin) =
        listen_with_limits(&dir, 4, 0, &["--output", &output, "--shutdown-grace", "1"]);
    let mut client = TcpStream::connect(("127.0.0.1", port)).unwrap();
    client.write_all(b"important line\n").unwrap();
    wait_for_metric(admin, "logredact_bytes_in_total 15");
    drop(client);
    let (status, _, stderr) = stop(run);
    assert_eq!(status.code(), Some(1), "{stderr}");
    assert!(
        stderr.ends_with(&format!(
            "logredact: writing {output}: upstream {upstream} unavailable at shutdown\n"
        )),
        "{stderr}"
    );
}

/// With the upstream down, a connection that has closed still waits to
/// deliver its data, and keeps its place among `limits.max_connections`
/// meanwhile; the rejection log says so, though no stream is being read.
#[test]
fn a_closed_connection_waiting_for_the_upstream_keeps_its_place_and_the_log_says_so() {
    let dir = scratch("proxy-place");
    let output = format!("tcp://127.0.0.1:{}", free_port());
    let (run, port, admin) =
        listen_with_limits(&dir, 1, 0, &["--output", &output, "--shutdown-grace", "1"]);
    let mut first = TcpStream::connect(("127.0.0.1", port)).unwrap();
    first.write_all(b"line\n").unwrap();
    wait_for_metric(admin, "logredact_bytes_in_total 5");
    drop(first);
    wait_for_metric(admin, "logredact_streams_active 0");
    let mut second = TcpStream::connect(("127.0.0.1", port)).unwrap();
    assert!(closed_within(&mut second, Duration::from_secs(5)));
    wait_for_metric(admin, "logredact_connections_rejected_total 1");
    let (status, _, stderr) = stop(run);
    assert_eq!(
        status.code(),
        Some(1),
        "the line was not delivered: {stderr}"
    );
    let rejection = stderr
        .lines()
        .find(|l| l.contains("connection limit reached; closing new connections"))
        .unwrap_or_else(|| panic!("no rejection logged: {stderr}"));
    assert!(
        rejection.contains("max_connections=1") && rejection.contains("closed_awaiting_delivery=1"),
        "{rejection}"
    );
}

/// Issue 14, item 6: idle connections to the admin endpoint cannot take the
/// descriptors the inputs need. At most 16 are held (more are closed at
/// accept, with one log line a second), each closed after 5 s of silence;
/// meanwhile a TCP input's line is delivered, and the probe answers again
/// once the idle ones are gone. The soft limit on open files is raised to
/// the hard one.
#[test]
fn idle_admin_connections_are_bounded_and_timed_out() {
    let (port, admin) = (free_port(), free_port());
    let mut run = Running::spawn(&[
        "--input",
        &format!("tcp://127.0.0.1:{port}"),
        "--admin",
        &format!("127.0.0.1:{admin}"),
    ]);
    run.wait_for_port(port);
    run.wait_for_port(admin);
    let pid = run.child.id();
    let fds = || {
        std::fs::read_dir(format!("/proc/{pid}/fd"))
            .unwrap()
            .count()
    };
    let before = fds();
    let idle: Vec<TcpStream> = (0..200)
        .map(|_| TcpStream::connect(("127.0.0.1", admin)).unwrap())
        .collect();
    std::thread::sleep(Duration::from_millis(500));
    let during = fds();
    assert!(
        during <= before + 16,
        "{during} descriptors with 200 idle admin connections, {before} before"
    );
    let mut client = TcpStream::connect(("127.0.0.1", port)).unwrap();
    client.write_all(b"still delivered\n").unwrap();
    run.expect_output(
        b"still delivered\n",
        Duration::from_secs(5),
        "the input's line",
    );
    // The idle ones are closed after 5 s; then the probe answers.
    std::thread::sleep(Duration::from_millis(5500));
    assert_eq!(http_get(admin, "/healthz"), (200, "ok\n".to_string()));
    drop(idle);
    drop(client);
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).unwrap();
    let open_files: Vec<&str> = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .unwrap()
        .split_whitespace()
        .collect();
    assert_eq!(open_files[3], open_files[4], "soft and hard: {limits}");
    let (status, _, stderr) = stop(run);
    assert!(status.success(), "{stderr}");
    assert!(
        stderr.contains("admin endpoint: connections over the limit closed"),
        "{stderr}"
    );
    assert!(
        stderr
            .matches("admin endpoint: connections over the limit closed")
            .count()
            <= 3,
        "{stderr}"
    );
}

/// Issue 14, item 5: one client in the middle of a line longer than a port
/// buffers (64 KiB) holds the merged output while its line lasts; if it then
/// sends nothing for `limits.line_hold_secs`, its line is ended there and the
/// other streams go on, long before the idle timeout.
#[test]
fn a_client_holding_the_output_mid_line_is_let_go() {
    let dir = scratch("line-hold");
    let config = dir.join("hold.yaml");
    shipped_config_with(&config, "limits: { line_hold_secs: 1 }\n");
    let port = free_port();
    let mut run = Running::spawn(&[
        "--config",
        config.to_str().unwrap(),
        "--input",
        &format!("tcp://127.0.0.1:{port}"),
    ]);
    run.wait_for_port(port);
    let mut holder = TcpStream::connect(("127.0.0.1", port)).unwrap();
    holder.write_all(&vec![b'A'; 70_000]).unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let mut other = TcpStream::connect(("127.0.0.1", port)).unwrap();
    other.write_all(b"other line\n").unwrap();
    let mut expected = vec![b'A'; 70_000];
    expected.extend_from_slice(b"\nother line\n");
    run.expect_output(&expected, Duration::from_secs(5), "the other client's line");
    // The holder's rest comes as a line of its own.
    holder.write_all(b"A rest\n").unwrap();
    drop(holder);
    drop(other);
    expected.extend_from_slice(b"A rest\n");
    run.expect_output(&expected, Duration::from_secs(5), "the holder's rest");
    let (status, output, stderr) = stop(run);
    assert!(status.success(), "{stderr}");
    assert!(output == expected);
}
