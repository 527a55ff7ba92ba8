//! Processes under test: the built binary, started with its standard
//! streams piped, and waited for with deadlines.

/// Runs `command` with `input` on its standard input and its output and
/// error captured. The input is written from a thread, so a large input
/// cannot deadlock against a full output pipe; a process that stops reading
/// early (a broken pipe) is the caller's to judge by its output.
pub fn output_with_stdin(mut command: std::process::Command, input: &[u8]) -> std::process::Output {
    let mut child = spawn_piped(&mut command);
    let mut stdin = child.stdin.take().unwrap();
    let input = input.to_vec();
    let writer = std::thread::spawn(move || std::io::Write::write_all(&mut stdin, &input));
    let output = child.wait_with_output().unwrap();
    match writer.join().unwrap() {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => panic!("writing stdin: {e}"),
        _ => output,
    }
}

/// The built binary.
pub fn binary() -> std::process::Command {
    std::process::Command::new(env!("CARGO_BIN_EXE_logredact"))
}

/// Starts `command` with all three standard streams piped.
pub fn spawn_piped(command: &mut std::process::Command) -> std::process::Child {
    use std::process::Stdio;
    command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("spawn {:?}: {e}", command.get_program()))
}

/// A running logredact with piped standard streams, whose stdout is read on a
/// thread so that tests can wait for output with a deadline.
pub struct Running {
    pub child: std::process::Child,
    pub stdin: Option<std::process::ChildStdin>,
    output: std::sync::mpsc::Receiver<Vec<u8>>,
    pub received: Vec<u8>,
}

impl Running {
    pub fn spawn(args: &[&str]) -> Running {
        use std::io::Read;
        let mut child = spawn_piped(binary().args(args));
        let stdin = child.stdin.take();
        let mut stdout = child.stdout.take().unwrap();
        let (sender, output) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut buffer = [0u8; 65536];
            loop {
                match stdout.read(&mut buffer) {
                    Ok(0) | Err(_) => return,
                    Ok(n) => {
                        if sender.send(buffer[..n].to_vec()).is_err() {
                            return;
                        }
                    }
                }
            }
        });
        Running {
            child,
            stdin,
            output,
            received: Vec::new(),
        }
    }

    /// Waits until logredact listens on `port`; if it exits first, fails
    /// with what it printed, rather than with a bare timeout.
    pub fn wait_for_port(&mut self, port: u16) {
        use std::io::Read;
        let until = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Some(status) = self.child.try_wait().unwrap() {
                let mut stderr = String::new();
                let _ = self
                    .child
                    .stderr
                    .take()
                    .unwrap()
                    .read_to_string(&mut stderr);
                panic!("logredact exited ({status}) before listening on port {port}:\n{stderr}");
            }
            assert!(
                std::time::Instant::now() < until,
                "nothing listens on port {port}"
            );
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }

    /// Waits until the admin endpoint on `admin` answers `/readyz` with 200:
    /// every input is open. Unlike waiting for a TCP input's port, this
    /// makes no connection to the input, which would take one of the
    /// places `limits.max_connections` counts until logredact accepts it.
    pub fn wait_until_ready(&mut self, admin: u16) {
        self.wait_for_port(admin);
        let until = std::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            let (status, body) = super::http_get(admin, "/readyz");
            if status == 200 {
                return;
            }
            assert!(
                std::time::Instant::now() < until,
                "never ready: {status} {body}"
            );
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }

    pub fn write(&mut self, bytes: &[u8]) {
        use std::io::Write;
        let stdin = self.stdin.as_mut().expect("stdin open");
        stdin.write_all(bytes).unwrap();
        stdin.flush().unwrap();
    }

    /// Reads until `received` holds at least `len` bytes, or the deadline.
    pub fn read_at_least(&mut self, len: usize, deadline: std::time::Duration) -> &[u8] {
        let until = std::time::Instant::now() + deadline;
        while self.received.len() < len {
            let left = until.saturating_duration_since(std::time::Instant::now());
            match self.output.recv_timeout(left) {
                Ok(bytes) => self.received.extend_from_slice(&bytes),
                Err(_) => break,
            }
        }
        &self.received
    }

    /// Collects whatever arrives within `wait`.
    pub fn read_for(&mut self, wait: std::time::Duration) -> &[u8] {
        let until = std::time::Instant::now() + wait;
        loop {
            let left = until.saturating_duration_since(std::time::Instant::now());
            match self.output.recv_timeout(left) {
                Ok(bytes) => self.received.extend_from_slice(&bytes),
                Err(_) => return &self.received,
            }
        }
    }

    /// Closes stdin, reads everything and waits for the exit (at most 30 s).
    pub fn finish(mut self) -> (std::process::ExitStatus, Vec<u8>, String) {
        use std::io::Read;
        drop(self.stdin.take());
        while let Ok(bytes) = self.output.recv_timeout(std::time::Duration::from_secs(30)) {
            self.received.extend_from_slice(&bytes);
        }
        let status = wait_with_deadline(&mut self.child, std::time::Duration::from_secs(30));
        let mut stderr = String::new();
        self.child
            .stderr
            .take()
            .unwrap()
            .read_to_string(&mut stderr)
            .unwrap();
        (status, std::mem::take(&mut self.received), stderr)
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
pub fn wait_with_deadline(
    child: &mut std::process::Child,
    deadline: std::time::Duration,
) -> std::process::ExitStatus {
    let until = std::time::Instant::now() + deadline;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if std::time::Instant::now() > until {
            let _ = child.kill();
            panic!("logredact did not exit within {deadline:?}");
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
}

/// Sends SIGTERM (or another signal) to a child process.
pub fn signal(child: &std::process::Child, name: &str) {
    let status = std::process::Command::new("kill")
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
