//! The one harness for processes under test: logredact itself, or whatever
//! runs it the way a deployment does (`/bin/sh -c`, `chroot`). Output is read
//! on threads as it comes, so that a test can wait for bytes with a deadline
//! and a full pipe never stalls the child; a child the test lets go of is
//! killed, so that a failed test leaves nothing running.

use std::io::{Read, Write};
use std::process::{Child, ChildStdin, Command, ExitStatus, Output, Stdio};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

/// How long a process may stay silent, or take to exit once its output has
/// ended, before the test gives up on it. For liveness only.
const LIVENESS: Duration = Duration::from_secs(30);

/// The built binary.
pub fn binary() -> Command {
    Command::new(env!("CARGO_BIN_EXE_logredact"))
}

/// Starts `command` with all three standard streams piped.
pub fn spawn_piped(command: &mut Command) -> Child {
    command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("spawn {:?}: {e}", command.get_program()))
}

/// Runs `command` with `input` on its standard input and its output and
/// error captured. The input is written from a thread, so a large input
/// cannot deadlock against a full output pipe; a process that stops reading
/// early (a broken pipe) is the caller's to judge by its output.
pub fn output_with_stdin(mut command: Command, input: &[u8]) -> Output {
    let mut run = Running::start(&mut command, Stdio::piped());
    let mut stdin = run.stdin.take().unwrap();
    let input = input.to_vec();
    let writer = std::thread::spawn(move || stdin.write_all(&input));
    let output = run.output();
    match writer.join().unwrap() {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => panic!("writing stdin: {e}"),
        _ => output,
    }
}

/// Standard output and standard error of a finished process, for messages.
pub fn transcript(output: &Output) -> String {
    format!(
        "status: {}\n--- stdout ---\n{}--- stderr ---\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// One output stream of a child, read to its end by a thread of its own.
/// Clones share the stream, so that another thread of the test can wait on
/// it too.
#[derive(Clone, Default)]
pub struct Capture(Arc<(Mutex<Captured>, Condvar)>);

#[derive(Default)]
struct Captured {
    bytes: Vec<u8>,
    ended: bool,
}

impl Capture {
    fn start(mut pipe: impl Read + Send + 'static) -> Capture {
        let capture = Capture::default();
        let shared = capture.clone();
        std::thread::spawn(move || {
            let mut buffer = [0u8; 65536];
            loop {
                let n = pipe.read(&mut buffer).unwrap_or(0);
                let (state, changed) = &*shared.0;
                let mut state = state.lock().unwrap();
                state.bytes.extend_from_slice(&buffer[..n]);
                state.ended = n == 0;
                changed.notify_all();
                if state.ended {
                    return;
                }
            }
        });
        capture
    }

    /// Everything that has arrived so far.
    pub fn bytes(&self) -> Vec<u8> {
        self.0.0.lock().unwrap().bytes.clone()
    }

    /// Waits until `done` says so of what has arrived, the stream ends, or
    /// `deadline` passes; then (bytes so far, whether it has ended).
    fn wait(&self, deadline: Duration, done: impl Fn(&[u8]) -> bool) -> (usize, bool) {
        let until = Instant::now() + deadline;
        let (state, changed) = &*self.0;
        let mut state = state.lock().unwrap();
        loop {
            let left = until.saturating_duration_since(Instant::now());
            if done(&state.bytes) || state.ended || left.is_zero() {
                return (state.bytes.len(), state.ended);
            }
            state = changed.wait_timeout(state, left).unwrap().0;
        }
    }

    /// Waits until at least `len` bytes have arrived (or the stream ends, or
    /// the deadline); returns what has.
    pub fn wait_for_len(&self, len: usize, deadline: Duration) -> Vec<u8> {
        self.wait(deadline, |bytes| bytes.len() >= len);
        self.bytes()
    }

    /// Waits `wait` (less if the stream ends first); returns what has
    /// arrived.
    pub fn wait_for(&self, wait: Duration) -> Vec<u8> {
        self.wait(wait, |_| false);
        self.bytes()
    }

    /// Reads to the end of the stream, or until it stays silent for `quiet`
    /// (then whoever waits for the process's exit decides).
    fn to_end(&self, quiet: Duration) -> Vec<u8> {
        loop {
            let before = self.0.0.lock().unwrap().bytes.len();
            let (now, ended) = self.wait(quiet, |bytes| bytes.len() > before);
            if ended || now == before {
                return self.bytes();
            }
        }
    }
}

/// A running child with its standard output and error read on threads.
pub struct Running {
    pub child: Child,
    pub stdin: Option<ChildStdin>,
    stdout: Capture,
    stderr: Capture,
    /// Standard output as of the last `read_*` call.
    pub received: Vec<u8>,
}

impl Running {
    /// logredact with `args`, its standard input a pipe.
    pub fn spawn(args: &[&str]) -> Running {
        Running::start(binary().args(args), Stdio::piped())
    }

    /// `command` with `stdin` (a pipe, kept in `stdin`, or anything else).
    pub fn start(command: &mut Command, stdin: Stdio) -> Running {
        let mut child = command
            .stdin(stdin)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {:?}: {e}", command.get_program()));
        Running {
            stdin: child.stdin.take(),
            stdout: Capture::start(child.stdout.take().unwrap()),
            stderr: Capture::start(child.stderr.take().unwrap()),
            child,
            received: Vec::new(),
        }
    }

    /// Standard output, for a thread that waits on it alongside the test.
    pub fn stdout(&self) -> Capture {
        self.stdout.clone()
    }

    /// Standard error so far, for failure messages.
    pub fn errors(&self) -> String {
        String::from_utf8_lossy(&self.stderr.bytes()).into_owned()
    }

    /// Waits until the child listens on `port`; if it exits first, fails
    /// with what it printed, rather than with a bare timeout.
    pub fn wait_for_port(&mut self, port: u16) {
        let until = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Some(status) = self.child.try_wait().unwrap() {
                let stderr = self.stderr.to_end(LIVENESS);
                panic!(
                    "logredact exited ({status}) before listening on port {port}:\n{}",
                    String::from_utf8_lossy(&stderr)
                );
            }
            assert!(Instant::now() < until, "nothing listens on port {port}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits until the admin endpoint on `admin` answers `/readyz` with 200:
    /// every input is open. Unlike waiting for a TCP input's port, this
    /// makes no connection to the input, which would take one of the
    /// places `limits.max_connections` counts until logredact accepts it.
    pub fn wait_until_ready(&mut self, admin: u16) {
        self.wait_for_port(admin);
        self.wait_for_probe(admin, "/readyz");
    }

    /// Waits until the admin endpoint on `admin` answers `path` with 200, as
    /// the kubelet's probes wait.
    pub fn wait_for_probe(&mut self, admin: u16, path: &str) {
        let until = Instant::now() + Duration::from_secs(10);
        loop {
            let (status, body) = super::http_get(admin, path);
            if status == 200 {
                return;
            }
            assert!(Instant::now() < until, "never {path}: {status} {body}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn write(&mut self, bytes: &[u8]) {
        let stdin = self.stdin.as_mut().expect("stdin open");
        stdin.write_all(bytes).unwrap();
        stdin.flush().unwrap();
    }

    /// Reads until `received` holds at least `len` bytes, or the deadline.
    pub fn read_at_least(&mut self, len: usize, deadline: Duration) -> &[u8] {
        self.received = self.stdout.wait_for_len(len, deadline);
        &self.received
    }

    /// Collects whatever arrives within `wait`.
    pub fn read_for(&mut self, wait: Duration) -> &[u8] {
        self.received = self.stdout.wait_for(wait);
        &self.received
    }

    /// Waits until standard output holds as many bytes as `expected` (or the
    /// deadline), then checks that it is exactly `expected`.
    pub fn expect_output(&mut self, expected: &[u8], deadline: Duration, what: &str) {
        let got = self.read_at_least(expected.len(), deadline).to_vec();
        assert!(
            got == expected,
            "{what}\n--- expected ---\n{}\n--- got ---\n{}\n--- stderr ---\n{}",
            String::from_utf8_lossy(expected),
            String::from_utf8_lossy(&got),
            self.errors()
        );
    }

    /// Closes stdin, reads everything and waits for the exit.
    pub fn output(mut self) -> Output {
        drop(self.stdin.take());
        let stdout = self.stdout.to_end(LIVENESS);
        let status = wait_with_deadline(&mut self.child, LIVENESS);
        let stderr = self.stderr.to_end(LIVENESS);
        Output {
            status,
            stdout,
            stderr,
        }
    }

    /// Closes stdin, reads everything and waits for the exit: (status,
    /// stdout, stderr).
    pub fn finish(self) -> (ExitStatus, Vec<u8>, String) {
        let output = self.output();
        let stderr = String::from_utf8(output.stderr).expect("stderr is UTF-8");
        (output.status, output.stdout, stderr)
    }

    /// SIGTERM, as an orchestrator stops a container, then `finish`.
    pub fn terminate(self) -> (ExitStatus, Vec<u8>, String) {
        signal(&self.child, "TERM");
        self.finish()
    }
}

/// A test that fails half-way must not leave logredact running, holding
/// its ports, after the test process has gone.
impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Waits for `child`, killing it and failing the test after `deadline`.
pub fn wait_with_deadline(child: &mut Child, deadline: Duration) -> ExitStatus {
    let until = Instant::now() + deadline;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if Instant::now() > until {
            let _ = child.kill();
            panic!("logredact did not exit within {deadline:?}");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Sends SIGTERM (or another signal) to a child process.
pub fn signal(child: &Child, name: &str) {
    let status = Command::new("kill")
        .args([&format!("-{name}"), &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

/// The resident set size of a process, in KiB, from /proc.
pub fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// Waits (at most `LIVENESS`) until the process catches SIGTERM, as its
/// `SigCgt` mask in /proc says.
pub fn wait_for_sigterm_handler(child: &Child) {
    wait_for_signal_handler(child, libc::SIGTERM);
}

/// Waits (at most `LIVENESS`) until the process catches `signal`, as its
/// `SigCgt` mask in /proc says.
pub fn wait_for_signal_handler(child: &Child, signal: libc::c_int) {
    let until = Instant::now() + LIVENESS;
    let path = format!("/proc/{}/status", child.id());
    while Instant::now() < until {
        let caught = std::fs::read_to_string(&path)
            .ok()
            .and_then(|status| {
                let mask = status.lines().find_map(|l| l.strip_prefix("SigCgt:"))?;
                u64::from_str_radix(mask.trim(), 16).ok()
            })
            .is_some_and(|mask| mask & (1 << (signal - 1)) != 0);
        if caught {
            return;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    panic!("the process never caught signal {signal}");
}
