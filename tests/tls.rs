//! TLS on TCP inputs and outputs (`tls://HOST:PORT`), against peers nobody
//! here wrote: OpenSSL's `s_client` sends to a TLS input, `s_server`
//! receives from a TLS output, and what they exchange with logredact is
//! compared byte for byte with the reference redaction. The certificates
//! (two CAs, a server for localhost and 127.0.0.1, a client) are made at test
//! time with the `openssl` command-line tool (Debian's `openssl` package).
//!
//! Also: mutual TLS (a client without a certificate is refused, one with a
//! certificate is served), a plaintext client refused and counted while a TLS
//! client goes on, an output whose server is signed by another CA or is for
//! another name (refused, counted, retried with backoff; the data waits and
//! goes to the right server once it is there), and the configuration errors.

mod common;

use std::io::Write;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use common::*;

/// Generous: the machine may be loaded.
const DEADLINE: Duration = Duration::from_secs(30);

/// The errors counter of failed TLS handshakes.
const HANDSHAKE_ERRORS: &str = "logredact_errors_total{kind=\"tls_handshake\"}";

/// Writes a configuration file `logredact.yaml` in `dir`.
fn write_config(dir: &Path, text: &str) -> PathBuf {
    let path = dir.join("logredact.yaml");
    std::fs::write(&path, text).unwrap();
    path
}

/// `tls.server` with the PKI's server certificate, and `extra` keys in it.
fn server_settings(extra: &str) -> String {
    let pki = Pki::get();
    format!(
        "  server:\n    cert: '{}'\n    key: '{}'\n{extra}",
        pki.path("server.crt"),
        pki.path("server.key")
    )
}

/// logredact with `config` and `args`, its admin endpoint on a free port;
/// returns once it is ready (no connection is made to its inputs).
fn logredact(config: &Path, args: &[&str]) -> (Running, u16) {
    let admin = free_port();
    let admin_address = format!("127.0.0.1:{admin}");
    let mut all = vec![
        "--config",
        config.to_str().unwrap(),
        "--admin",
        &admin_address,
    ];
    all.extend_from_slice(args);
    let mut run = Running::spawn(&all);
    run.wait_until_ready(admin);
    (run, admin)
}

/// `openssl s_client` connected to 127.0.0.1:`port`, verifying the server
/// against the PKI's CA for the name `localhost` (and failing if it does
/// not verify); it sends its standard input and, at its end, closes the
/// connection with a TLS close_notify.
fn s_client(port: u16, extra: &[&str]) -> Running {
    let ca = Pki::get().path("ca.crt");
    let mut command = Command::new("openssl");
    command
        .args(["s_client", "-connect", &format!("127.0.0.1:{port}")])
        .args(["-servername", "localhost", "-verify_hostname", "localhost"])
        .args(["-verify_return_error", "-CAfile", &ca])
        // No session output; end at the end of stdin; no command letters.
        .args(["-quiet", "-no_ign_eof", "-nocommands"])
        .args(extra);
    Running::start(&mut command, Stdio::piped())
}

/// Writes `bytes` to `client`'s standard input in pieces of 1 to 40 bytes,
/// so that tokens are split across TLS records.
fn send_in_pieces(client: &mut Running, bytes: &[u8], seed: u64) {
    let mut random = TokenGen::new(seed);
    let mut at = 0;
    while at < bytes.len() {
        let end = (at + 1 + (random.next_u64() % 40) as usize).min(bytes.len());
        client.write(&bytes[at..end]);
        at = end;
        if random.next_u64() % 8 == 0 {
            std::thread::sleep(Duration::from_millis(2));
        }
    }
}

/// SIGTERM; the run must end with status 0. Its stdout and stderr.
fn stop(mut run: Running) -> (Vec<u8>, String) {
    signal(&run.child, "TERM");
    drop(run.stdin.take());
    let (status, stdout, stderr) = run.finish();
    assert!(status.success(), "{status}\n{stderr}");
    (stdout, stderr)
}

fn assert_absent(token: &str, what: &str, text: &[u8]) {
    let text = String::from_utf8_lossy(text);
    assert!(!text.contains(token), "a token reached {what}");
    assert!(
        !text.contains(&token[4..20]),
        "part of a token reached {what}"
    );
}

/// Two `s_client`s send at once to a TLS input: each connection is its own
/// stream and the merged output is exactly the redacted lines, none cut or
/// mixed, each client's in order: the TCP input's semantics, over TLS.
#[test]
fn tls_input_from_openssl_s_client_is_redacted_byte_for_byte() {
    let dir = scratch("input");
    let config = write_config(&dir, &format!("tls:\n{}", server_settings("")));
    let port = free_port();
    let (mut run, admin) = logredact(&config, &["--input", &format!("tls://127.0.0.1:{port}")]);
    let streams: Vec<Vec<u8>> = (0..2).map(|i| client_stream(700 + i, 30)).collect();
    let clients: Vec<_> = streams
        .iter()
        .cloned()
        .enumerate()
        .map(|(i, bytes)| {
            std::thread::spawn(move || {
                let mut client = s_client(port, &[]);
                send_in_pieces(&mut client, &bytes, i as u64);
                let output = client.output();
                assert!(output.status.success(), "{}", transcript(&output));
            })
        })
        .collect();
    for client in clients {
        client.join().unwrap();
    }
    let expected: Vec<Vec<u8>> = streams.iter().map(|s| reference_redaction(s)).collect();
    let total = expected.iter().map(Vec::len).sum();
    let got = run.read_at_least(total, DEADLINE).to_vec();
    wait_for_metric(admin, "logredact_streams_active 0");
    let (output, stderr) = stop(run);
    assert_eq!(output, got, "nothing after the two streams");
    let mut got_lines: Vec<&[u8]> = got.split_inclusive(|&b| b == b'\n').collect();
    for (client, stream) in expected.iter().enumerate() {
        let (prefix, json) = (
            format!("client {} ", 700 + client),
            format!("{{\"client\":{},", 700 + client),
        );
        let mine: Vec<&[u8]> = got_lines
            .iter()
            .copied()
            .filter(|l| l.starts_with(prefix.as_bytes()) || l.starts_with(json.as_bytes()))
            .collect();
        let theirs: Vec<&[u8]> = stream.split_inclusive(|&b| b == b'\n').collect();
        assert!(mine == theirs, "client {client}'s lines differ\n{stderr}");
    }
    let mut expected_lines: Vec<&[u8]> = expected
        .iter()
        .flat_map(|s| s.split_inclusive(|&b| b == b'\n'))
        .collect();
    got_lines.sort();
    expected_lines.sort();
    assert!(got_lines == expected_lines, "lines interleaved or changed");
    assert!(!stderr.contains("TLS handshake failed"), "{stderr}");
}

/// The redacting proxy over TLS on both sides: `s_client` → logredact →
/// `s_server`, which requires a client certificate (mutual TLS on the
/// output); s_server receives exactly the redaction of what s_client sent.
#[test]
fn tls_proxy_from_s_client_to_s_server_with_a_client_certificate() {
    let pki = Pki::get();
    let dir = scratch("proxy");
    let config = write_config(
        &dir,
        &format!(
            "tls:\n{}  client:\n    ca: '{}'\n    cert: '{}'\n    key: '{}'\n",
            server_settings(""),
            pki.path("ca.crt"),
            pki.path("client.crt"),
            pki.path("client.key")
        ),
    );
    let (port, upstream_port) = (free_port(), free_port());
    let ca = pki.path("ca.crt");
    // One connection; a client certificate signed by the CA is required.
    let mut upstream = s_server(
        upstream_port,
        "server",
        &["-naccept", "1", "-Verify", "1", "-CAfile", &ca],
    );
    let (run, _) = logredact(
        &config,
        &[
            "--input",
            &format!("tls://127.0.0.1:{port}"),
            "--output",
            &format!("tls://localhost:{upstream_port}"),
        ],
    );
    let mut tokens = TokenGen::new(710);
    let mut input = client_stream(711, 40);
    // A line longer than a TLS record (16 KiB), with a token at its end.
    input.extend_from_slice(
        format!("{} bearer {}\n", "x".repeat(40_000), tokens.token()).as_bytes(),
    );
    let mut client = s_client(port, &[]);
    send_in_pieces(&mut client, &input[..2000], 1);
    client.write(&input[2000..]);
    let client_output = client.output();
    assert!(
        client_output.status.success(),
        "{}",
        transcript(&client_output)
    );
    let expected = reference_redaction(&input);
    let received = upstream.read_at_least(expected.len(), DEADLINE).to_vec();
    // One connection: s_server exits once logredact has closed it.
    let status = wait_with_deadline(&mut upstream.child, DEADLINE);
    let (_, stderr) = stop(run);
    assert!(
        received == expected,
        "s_server received {} bytes, not the {} of the redaction\n{stderr}\n{}",
        received.len(),
        expected.len(),
        upstream.errors()
    );
    assert!(
        status.success(),
        "s_server: {status}\n{}",
        upstream.errors()
    );
    assert!(
        stderr.contains("connected to upstream output=tls://localhost:"),
        "{stderr}"
    );
}

/// With `tls.server.client_ca`, a client must present a certificate signed
/// by that CA: without one its handshake fails (logged with its address and
/// counted) and nothing it sent is read; with one it is served.
#[test]
fn mutual_tls_refuses_a_client_without_a_certificate_and_serves_one_with() {
    let pki = Pki::get();
    let dir = scratch("mtls");
    let config = write_config(
        &dir,
        &format!(
            "tls:\n{}",
            server_settings(&format!("    client_ca: '{}'\n", pki.path("ca.crt")))
        ),
    );
    let port = free_port();
    let (mut run, admin) = logredact(&config, &["--input", &format!("tls://127.0.0.1:{port}")]);
    let token = TokenGen::new(720).token();
    let mut anonymous = s_client(port, &[]);
    anonymous.write(format!("without a certificate: bearer {token}\n").as_bytes());
    wait_for_metric(admin, &format!("{HANDSHAKE_ERRORS} 1"));
    drop(anonymous.output());
    let (cert, key) = (pki.path("client.crt"), pki.path("client.key"));
    let mut authenticated = s_client(port, &["-cert", &cert, "-key", &key]);
    authenticated.write(format!("with a certificate: bearer {token}\n").as_bytes());
    let output = authenticated.output();
    assert!(output.status.success(), "{}", transcript(&output));
    run.expect_output(
        b"with a certificate: bearer dapi****\n",
        DEADLINE,
        "only the authenticated client's line",
    );
    wait_for_metric(admin, "logredact_streams_active 0");
    let (output, stderr) = stop(run);
    assert_eq!(output, b"with a certificate: bearer dapi****\n");
    let refused: Vec<&str> = stderr
        .lines()
        .filter(|l| l.contains("TLS handshake failed; connection closed"))
        .collect();
    assert_eq!(refused.len(), 1, "{stderr}");
    assert!(
        refused[0].contains("stream=tcp:127.0.0.1:")
            && refused[0].contains(&format!("input=tls://127.0.0.1:{port}")),
        "{}",
        refused[0]
    );
    assert_absent(&token, "the log", stderr.as_bytes());
}

/// A plaintext client of a TLS input is refused (its handshake fails:
/// closed, logged with its address, counted) and nothing it sent is ever
/// written, while a TLS client connected beside it delivers its line.
#[test]
fn a_plaintext_client_is_refused_and_counted_while_a_tls_client_delivers() {
    let dir = scratch("plaintext");
    let config = write_config(&dir, &format!("tls:\n{}", server_settings("")));
    let port = free_port();
    let (mut run, admin) = logredact(&config, &["--input", &format!("tls://127.0.0.1:{port}")]);
    let token = TokenGen::new(730).token();
    // The TLS client is in the middle of its line when the plaintext one
    // comes.
    let mut good = s_client(port, &[]);
    good.write(b"the TLS client's line, ");
    let mut plain = TcpStream::connect(("127.0.0.1", port)).unwrap();
    let plain_peer = plain.local_addr().unwrap();
    plain
        .write_all(format!("a plaintext line: bearer {token}\n").as_bytes())
        .unwrap();
    wait_for_metric(admin, &format!("{HANDSHAKE_ERRORS} 1"));
    // logredact closed it (after a TLS alert, if anything).
    plain.set_read_timeout(Some(DEADLINE)).unwrap();
    let mut answer = Vec::new();
    let closed = std::io::Read::read_to_end(&mut plain, &mut answer);
    assert!(
        closed.is_ok()
            || closed
                .as_ref()
                .is_err_and(|e| e.kind() == std::io::ErrorKind::ConnectionReset),
        "{closed:?}"
    );
    assert_absent(&token, "the plaintext client", &answer);
    good.write(b"finished\n");
    let output = good.output();
    assert!(output.status.success(), "{}", transcript(&output));
    run.expect_output(
        b"the TLS client's line, finished\n",
        DEADLINE,
        "the TLS client's line",
    );
    wait_for_metric(admin, "logredact_streams_active 0");
    let (output, stderr) = stop(run);
    assert_eq!(output, b"the TLS client's line, finished\n");
    assert!(
        stderr
            .lines()
            .any(|l| l.contains("TLS handshake failed; connection closed")
                && l.contains(&format!("stream=tcp:{plain_peer}"))),
        "{stderr}"
    );
    assert_absent(&token, "the log", stderr.as_bytes());
}

/// An output whose server's certificate is signed by a CA it does not trust
/// fails its handshake: logged, counted, retried with backoff, not ready;
/// nothing is sent to that server, in the clear or otherwise, and the data
/// waits. Once a server with a certificate of the trusted CA listens there,
/// everything arrives, byte for byte.
#[test]
fn an_output_retries_a_server_of_another_ca_until_the_right_one_is_there() {
    let pki = Pki::get();
    let dir = scratch("wrong-ca");
    let config = write_config(
        &dir,
        &format!("tls:\n  client:\n    ca: '{}'\n", pki.path("ca.crt")),
    );
    let upstream_port = free_port();
    let impostor = s_server(upstream_port, "other-server", &[]);
    let admin = free_port();
    let mut run = Running::spawn(&[
        "--config",
        config.to_str().unwrap(),
        "--output",
        &format!("tls://localhost:{upstream_port}"),
        "--admin",
        &format!("127.0.0.1:{admin}"),
    ]);
    let input = client_stream(740, 50);
    run.write(&input[..input.len() / 2]);
    wait_for_port(admin);
    wait_for_counter(admin, HANDSHAKE_ERRORS, 2);
    assert!(wait_for_counter(admin, "logredact_output_retries_total", 1) >= 1);
    let (status, body) = http_get(admin, "/readyz");
    assert_eq!(
        (status, body.as_str()),
        (503, "not ready: an output is not connected\n")
    );
    let impostor_errors = impostor.errors();
    let (_, impostor_received, _) = impostor.terminate();
    assert!(
        impostor_received.is_empty(),
        "the impostor received data\n{impostor_errors}"
    );
    run.write(&input[input.len() / 2..]);
    let mut upstream = s_server(upstream_port, "server", &["-naccept", "1"]);
    let expected = reference_redaction(&input);
    drop(run.stdin.take());
    let received = upstream.read_at_least(expected.len(), DEADLINE).to_vec();
    let status = wait_with_deadline(&mut upstream.child, DEADLINE);
    let (exit, _, stderr) = run.finish();
    assert!(exit.success(), "{stderr}");
    assert!(
        received == expected,
        "the upstream's bytes differ\n{stderr}"
    );
    assert!(status.success(), "s_server: {status}");
    assert!(
        stderr.contains("TLS handshake with upstream failed"),
        "{stderr}"
    );
    assert!(stderr.contains("UnknownIssuer"), "{stderr}");
    assert!(stderr.contains("connected to upstream"), "{stderr}");
}

/// A server whose certificate is valid but for another name than
/// `tls.client.server_name` is refused too, and gets nothing.
#[test]
fn an_output_refuses_a_server_certificate_for_another_name() {
    let pki = Pki::get();
    let dir = scratch("wrong-name");
    let config = write_config(
        &dir,
        &format!(
            "tls:\n  client:\n    ca: '{}'\n    server_name: collector.example.com\n",
            pki.path("ca.crt")
        ),
    );
    let upstream_port = free_port();
    let upstream = s_server(upstream_port, "server", &[]);
    let admin = free_port();
    let mut run = Running::spawn(&[
        "--config",
        config.to_str().unwrap(),
        "--output",
        &format!("tls://127.0.0.1:{upstream_port}"),
        "--admin",
        &format!("127.0.0.1:{admin}"),
        "--shutdown-grace",
        "1",
    ]);
    run.write(b"a line that must not reach this server\n");
    wait_for_port(admin);
    wait_for_counter(admin, HANDSHAKE_ERRORS, 1);
    signal(&run.child, "TERM");
    let (status, _, stderr) = run.finish();
    // Undelivered at the end of the grace period: a failed run.
    assert_eq!(status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("TLS handshake with upstream failed"),
        "{stderr}"
    );
    assert!(stderr.contains("collector.example.com"), "{stderr}");
    let (_, received, _) = upstream.terminate();
    assert!(received.is_empty(), "the server received data");
}

/// Runs logredact with `args` (stdin left open: a refusal must come before
/// any input is read); it must exit with status 2 and print nothing on
/// stdout. Its stderr.
fn refused(args: &[&str]) -> String {
    let mut child = binary()
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let _stdin = child.stdin.take();
    let status = wait_with_deadline(&mut child, DEADLINE);
    let output = child.wait_with_output().unwrap();
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert_eq!(status.code(), Some(2), "{args:?}: {stderr}");
    assert!(output.stdout.is_empty(), "{args:?}");
    stderr
}

/// A configuration file refused by a run and by `check-config` alike, with
/// exactly `expected` (`{file}` is its path).
fn assert_file_refused(dir: &Path, text: &str, expected: &str) {
    let config = write_config(dir, text);
    let path = config.to_str().unwrap();
    let expected = format!("logredact: {}\n", expected.replace("{file}", path));
    assert_eq!(refused(&["--config", path]), expected, "{text}");
    let check = binary().args(["check-config", path]).output().unwrap();
    assert_eq!(check.status.code(), Some(2), "check-config {text}");
    assert_eq!(String::from_utf8(check.stderr).unwrap(), expected);
}

#[test]
fn a_tls_end_without_its_settings_or_a_plaintext_one_beside_them_is_refused() {
    let pki = Pki::get();
    let dir = scratch("refused-ends");
    let port = free_port();
    assert_eq!(
        refused(&["--input", &format!("tls://127.0.0.1:{port}")]),
        format!(
            "logredact: --input tls://127.0.0.1:{port}: needs tls.server.cert and tls.server.key in the configuration file (--config)\n"
        )
    );
    assert_eq!(
        refused(&["--output", "tls://collector:6514"]),
        "logredact: --output tls://collector:6514: needs tls.client.ca in the configuration file (--config)\n"
    );
    assert_file_refused(
        &dir,
        "output: tls://collector:6514\n",
        "{file}:1:9: output: tls://collector:6514 needs tls.client.ca",
    );
    assert_file_refused(
        &dir,
        &format!("inputs: ['-', 'tls://127.0.0.1:{port}']\n"),
        &format!(
            "{{file}}:1:15: inputs: tls://127.0.0.1:{port} needs tls.server.cert and tls.server.key"
        ),
    );
    // A tcp:// written where TLS is configured would send in the clear.
    let client = format!("tls:\n  client:\n    ca: '{}'\n", pki.path("ca.crt"));
    assert_file_refused(
        &dir,
        &format!("output: tcp://collector:5170\n{client}"),
        "{file}:1:9: output: tcp://collector:5170 is plaintext, but tls.client is set: write tls://collector:5170 to use TLS, or remove tls.client",
    );
    let config = write_config(&dir, &client);
    assert_eq!(
        refused(&[
            "--config",
            config.to_str().unwrap(),
            "--output",
            "tcp://collector:5170"
        ]),
        "logredact: --output tcp://collector:5170: is plaintext, but tls.client is set in the configuration file (--config): write tls://collector:5170 to use TLS, or remove tls.client\n"
    );
    assert_file_refused(
        &dir,
        &format!(
            "inputs: ['tcp://127.0.0.1:{port}']\ntls:\n{}",
            server_settings("")
        ),
        &format!(
            "{{file}}:1:10: inputs: tcp://127.0.0.1:{port} is plaintext, but tls.server is set: write tls://127.0.0.1:{port} to use TLS, or remove tls.server"
        ),
    );
    // Settings that no end uses are not read: the files may be missing.
    let config = write_config(
        &dir,
        "tls:\n  client:\n    ca: /nonexistent/ca.crt\n  server: { cert: /nonexistent/a, key: /nonexistent/b }\n",
    );
    let check = binary().arg("check-config").arg(&config).output().unwrap();
    assert_eq!(check.status.code(), Some(0), "{}", transcript(&check));
}

/// Files that cannot be read or used are refused at start-up (and by
/// `check-config`), located at the setting, naming the file, and never
/// quoting what is in it.
#[test]
fn unusable_certificate_and_key_files_are_configuration_errors() {
    let pki = Pki::get();
    let dir = scratch("refused-files");
    let port = free_port();
    let input = format!("inputs: ['tls://127.0.0.1:{port}']\n");
    let server = |cert: &str, key: &str, extra: &str| {
        format!("{input}tls:\n  server:\n    cert: '{cert}'\n    key: '{key}'\n{extra}")
    };
    let (cert, key) = (pki.path("server.crt"), pki.path("server.key"));
    let missing = dir.join("missing.crt");
    let missing = missing.to_str().unwrap();
    assert_file_refused(
        &dir,
        &server(missing, &key, ""),
        &format!(
            "{{file}}:4:11: tls.server.cert: cannot read {missing}: No such file or directory (os error 2)"
        ),
    );
    assert_file_refused(
        &dir,
        &server(&key, &cert, ""),
        &format!(
            "{{file}}:4:11: tls.server.cert: {key}: no certificate in it (expected PEM CERTIFICATE sections)"
        ),
    );
    assert_file_refused(
        &dir,
        &server(&cert, &cert, ""),
        &format!(
            "{{file}}:5:10: tls.server.key: {cert}: no private key in it (expected a PEM PRIVATE KEY, RSA PRIVATE KEY or EC PRIVATE KEY section)"
        ),
    );
    let client_key = pki.path("client.key");
    assert_file_refused(
        &dir,
        &server(&cert, &client_key, ""),
        &format!(
            "{{file}}:5:10: tls.server.key: {client_key} is not the key of the certificate in {cert}"
        ),
    );
    assert_file_refused(
        &dir,
        &server(&cert, &key, &format!("    client_ca: '{key}'\n")),
        &format!(
            "{{file}}:6:16: tls.server.client_ca: {key}: no certificate in it (expected PEM CERTIFICATE sections)"
        ),
    );
    // Broken key files: what they hold is never shown.
    let marker = "KEYMATERIALxyzKEYMATERIAL";
    for (content, why) in [
        (
            format!("-----BEGIN PRIVATE KEY-----\n{marker}!!\n-----END PRIVATE KEY-----\n"),
            "a PEM section is not valid base64",
        ),
        (
            format!("-----BEGIN PRIVATE KEY-----\n{marker}\n"),
            "a PEM section has no END line",
        ),
        (
            format!("-----BEGIN {marker}\n"),
            "a PEM BEGIN line is malformed",
        ),
    ] {
        let broken = dir.join("broken.key");
        std::fs::write(&broken, &content).unwrap();
        let broken = broken.to_str().unwrap();
        assert_file_refused(
            &dir,
            &server(&cert, broken, ""),
            &format!("{{file}}:5:10: tls.server.key: {broken}: {why}"),
        );
    }
    let output = "output: tls://localhost:6514\n";
    assert_file_refused(
        &dir,
        &format!(
            "{output}tls:\n  client:\n    ca: '{}'\n",
            pki.path("client.key")
        ),
        &format!(
            "{{file}}:4:9: tls.client.ca: {}: no certificate in it (expected PEM CERTIFICATE sections)",
            pki.path("client.key")
        ),
    );
    assert_file_refused(
        &dir,
        &format!(
            "{output}tls:\n  client:\n    ca: '{}'\n    cert: '{}'\n",
            pki.path("ca.crt"),
            pki.path("client.crt")
        ),
        "{file}:5:11: tls.client.cert needs tls.client.key: a client certificate goes with its key",
    );
    assert_file_refused(
        &dir,
        &format!(
            "{output}tls:\n  client:\n    ca: '{}'\n    server_name: 'a b'\n",
            pki.path("ca.crt")
        ),
        "{file}:5:18: tls.client.server_name: 'a b' is not a valid DNS name or IP address",
    );
    assert_file_refused(
        &dir,
        &format!(
            "{output}tls:\n  client:\n    ca: '{}'\n    sni: x\n",
            pki.path("ca.crt")
        ),
        "{file}:5:5: tls.client: unknown field `sni`, expected one of `ca`, `server_name`, `cert`, `key`",
    );
}

/// `check-config` with a run's flags checks a TLS deployment: the files
/// are loaded, the input can listen, the output's host resolves.
#[test]
fn check_config_loads_the_tls_files_of_a_deployment() {
    let pki = Pki::get();
    let dir = scratch("check");
    let config = write_config(
        &dir,
        &format!(
            "tls:\n{}  client:\n    ca: '{}'\n",
            server_settings(""),
            pki.path("ca.crt")
        ),
    );
    let port = free_port();
    let output = binary()
        .arg("check-config")
        .arg(&config)
        .args(["--input", &format!("tls://127.0.0.1:{port}")])
        .args(["--output", "tls://localhost:6514"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(0), "{}", transcript(&output));
    let stdout = String::from_utf8(output.stdout).unwrap();
    assert!(
        stdout.ends_with(&format!(
            "deployment: input tls://127.0.0.1:{port}: OK\ndeployment: output tls://localhost:6514: OK\n"
        )),
        "{stdout}"
    );
}
