//! Bad input on the binary: random binary, NUL and invalid UTF-8 everywhere,
//! a 256 MiB line without a newline (peak RSS read from /proc), CRLF, a stream
//! ending inside a partial token, and TCP clients that send nothing, send one
//! byte a second, or come 10,000 times against a limit of 64.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Stdio;
use std::time::{Duration, Instant};

use common::*;

/// Runs pipe mode over `input` (written from a thread) and returns stdout.
fn pipe(input: Vec<u8>) -> Vec<u8> {
    let output = output_with_stdin(binary(), &input);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        output.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    output.stdout
}

#[test]
fn random_binary_with_tokens_nul_and_invalid_utf8_everywhere() {
    let mut tokens = TokenGen::new(800);
    let mut input = Vec::new();
    while input.len() < 4 << 20 {
        let n = tokens.next_u64();
        match n % 6 {
            0 => input.extend_from_slice(tokens.token().as_bytes()),
            1 => input.extend_from_slice(&[0, 0xff, 0xfe, 0xc3, 0x28, 0xe2, 0x82, 0, b'\r', b'\n']),
            2 => input.extend_from_slice(format!("\0{}\0", tokens.token()).as_bytes()),
            3 => input.extend_from_slice(
                format!("\u{fffd}\u{10ffff}{}\u{e9}", tokens.token()).as_bytes(),
            ),
            _ => input.extend_from_slice(&n.to_le_bytes()),
        }
    }
    assert!(pipe(input.clone()) == reference_redaction(&input));
}

#[test]
fn crlf_and_a_stream_ending_inside_a_partial_token() {
    let token = TokenGen::new(801).token();
    for cut in [1, 4, 5, 20, 35, 36] {
        let input = format!("a\r\nb {token}\r\n\r\nlast {}", &token[..cut]).into_bytes();
        let expected = format!(
            "a\r\nb dapi****\r\n\r\nlast {}",
            if cut == 36 { "dapi****" } else { &token[..cut] }
        );
        assert_eq!(String::from_utf8(pipe(input)).unwrap(), expected);
    }
}

#[test]
fn a_256_mib_line_without_a_newline_streams_through_in_bounded_memory() {
    let token = TokenGen::new(802).token();
    let mut child = binary()
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let mut stdin = child.stdin.take().unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        let (mut total, mut tail) = (0u64, Vec::new());
        let mut buffer = vec![0u8; 1 << 20];
        loop {
            let n = stdout.read(&mut buffer).unwrap();
            if n == 0 {
                return (total, tail);
            }
            total += n as u64;
            tail.extend_from_slice(&buffer[..n]);
            if tail.len() > 128 {
                tail.drain(..tail.len() - 128);
            }
        }
    });
    let block = vec![b'x'; 1 << 20];
    let mut peak_kib = 0;
    for i in 0..256 {
        // A token in the middle of the line, too.
        if i == 128 {
            stdin.write_all(format!(" {token} ").as_bytes()).unwrap();
        }
        stdin.write_all(&block).unwrap();
        if i % 8 == 0 {
            peak_kib = peak_kib.max(vm_hwm_kib(pid));
        }
    }
    stdin.write_all(format!(" {token}").as_bytes()).unwrap();
    peak_kib = peak_kib.max(vm_hwm_kib(pid));
    drop(stdin);
    let (total, tail) = reader.join().unwrap();
    assert!(child.wait().unwrap().success());
    assert_eq!(total, (256u64 << 20) + 2 * 9 + 1);
    assert!(tail.ends_with(b"x dapi****"));
    println!("peak RSS for a 256 MiB line: {peak_kib} KiB");
    assert!(peak_kib < 16 * 1024, "peak RSS {peak_kib} KiB");
}

fn vm_hwm_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

#[test]
fn silent_and_trickling_tcp_clients() {
    let dir = scratch("trickle");
    let (mut run, port, _) = listen_with_limits(&dir, 8, 2, &[]);
    let silent = TcpStream::connect(("127.0.0.1", port)).unwrap();
    // One byte a second (within the 2 s idle limit): a token arrives whole.
    let token = TokenGen::new(803).token();
    let line = format!("slow {}\n", &token);
    let mut trickle = TcpStream::connect(("127.0.0.1", port)).unwrap();
    let started = Instant::now();
    for (i, byte) in line.bytes().enumerate() {
        trickle.write_all(&[byte]).unwrap();
        // Keep the test short: one byte a second for the first few bytes,
        // then faster, still never pausing long enough to be idle.
        std::thread::sleep(if i < 4 {
            Duration::from_secs(1)
        } else {
            Duration::from_millis(20)
        });
    }
    assert_eq!(
        run.read_at_least(14, Duration::from_secs(5)),
        b"slow dapi****\n"
    );
    assert!(started.elapsed() > Duration::from_secs(4));
    // The silent client is closed after 2 s idle.
    let mut silent = silent;
    silent
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let mut buffer = [0u8; 1];
    assert_eq!(
        silent.read(&mut buffer).unwrap(),
        0,
        "the silent connection is closed"
    );
    drop(trickle);
    signal(&run.child, "TERM");
    let (status, output, stderr) = run.finish();
    assert!(status.success());
    assert_eq!(output, b"slow dapi****\n");
    assert!(
        stderr.contains("connection idle too long; closed"),
        "{stderr}"
    );
}

#[test]
fn ten_thousand_connection_attempts_against_a_limit_of_64() {
    let dir = scratch("flood");
    // No idle timeout to speak of: on a loaded machine the flood can take
    // tens of seconds (a full accept queue drops SYNs, retried after 1 s),
    // and the held connections must outlive it.
    let (run, port, admin) = listen_with_limits(&dir, 64, 3600, &[]);
    // 64 connections stay open and take every place.
    let held: Vec<TcpStream> = (0..64)
        .map(|i| {
            let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
            s.write_all(format!("held {i}\n").as_bytes()).unwrap();
            s
        })
        .collect();
    wait_for_metric(admin, "logredact_streams_active 64");
    let mut refused = 0;
    let address = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    for _ in 0..10_000 {
        match TcpStream::connect_timeout(&address, Duration::from_millis(500)) {
            Ok(stream) => drop(stream),
            Err(_) => refused += 1,
        }
    }
    let metrics = wait_for_metric(admin, "logredact_streams_active 64");
    let rejected: u64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("logredact_connections_rejected_total "))
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        rejected + refused >= 9_000,
        "rejected {rejected}, refused by the kernel {refused}"
    );
    // The held connections still work.
    let mut first = &held[0];
    first.write_all(b"still here\n").unwrap();
    drop(held);
    wait_for_metric(admin, "logredact_streams_active 0");
    signal(&run.child, "TERM");
    let (status, output, stderr) = run.finish();
    assert!(status.success());
    let text = String::from_utf8(output).unwrap();
    assert_eq!(text.lines().count(), 65);
    assert!(text.contains("still here\n"));
    // Rejections are logged, but not once per connection.
    let logged = stderr.matches("connection limit reached").count();
    assert!(
        (1..100).contains(&logged),
        "{logged} log lines for {rejected} rejections"
    );
}
