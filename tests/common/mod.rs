//! Helpers shared by the integration tests: token generation and the
//! reference redaction.
#![allow(dead_code)]

use std::sync::Arc;

use logredact::{DetectionMode, FingerprintKey, RuleSet, RuleSpec, ScanSink, Scanner, defaults};

/// A deterministic generator of test tokens, so that no real-looking token is
/// ever committed.
pub struct TokenGen(u64);

impl TokenGen {
    pub fn new(seed: u64) -> TokenGen {
        TokenGen(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1)
    }

    pub fn next_u64(&mut self) -> u64 {
        // xorshift64*
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// `n` random lower-case hex digits.
    pub fn hex(&mut self, n: usize) -> String {
        (0..n)
            .map(|_| char::from(b"0123456789abcdef"[(self.next_u64() % 16) as usize]))
            .collect()
    }

    /// A random Databricks-shaped token.
    pub fn token(&mut self) -> String {
        format!("dapi{}", self.hex(32))
    }
}

/// The default rule set with a fixed key.
pub fn default_rules() -> Arc<RuleSet> {
    Arc::new(RuleSet::new(defaults::default_rules(), test_key()).unwrap())
}

pub fn test_key() -> FingerprintKey {
    FingerprintKey::derive(b"test key")
}

pub fn rules(specs: Vec<RuleSpec>) -> Arc<RuleSet> {
    Arc::new(RuleSet::new(specs, test_key()).unwrap())
}

/// The reference: the default rule applied to the whole input at once by the
/// `regex` crate.
pub fn reference_redaction(input: &[u8]) -> Vec<u8> {
    let re = regex::bytes::Regex::new(r"(?-u:\b)dapi[0-9a-f]{32}(?-u:\b)").unwrap();
    re.replace_all(input, &b"dapi****"[..]).into_owned()
}

/// Output and detections of a scanner.
#[derive(Default)]
pub struct Collected {
    pub output: Vec<u8>,
    pub detections: Vec<logredact::Detection>,
}

impl ScanSink for Collected {
    fn write(&mut self, bytes: &[u8]) {
        self.output.extend_from_slice(bytes);
    }
    fn detection(&mut self, detection: logredact::Detection) {
        self.detections.push(detection);
    }
}

/// Scans `input` split at `cuts` (offsets, any order, may repeat).
pub fn scan_chunked(
    rules: &Arc<RuleSet>,
    mode: DetectionMode,
    input: &[u8],
    cuts: &[usize],
) -> Collected {
    let mut cuts: Vec<usize> = cuts.iter().map(|&c| c.min(input.len())).collect();
    cuts.sort_unstable();
    let mut scanner = Scanner::new(Arc::clone(rules), mode);
    let mut out = Collected::default();
    let mut from = 0;
    for cut in cuts.into_iter().chain([input.len()]) {
        scanner.feed(&input[from..cut], &mut out);
        from = cut;
    }
    scanner.finish(&mut out);
    out
}

/// Scans `input` one byte at a time.
pub fn scan_bytewise(rules: &Arc<RuleSet>, mode: DetectionMode, input: &[u8]) -> Collected {
    let cuts: Vec<usize> = (1..input.len()).collect();
    scan_chunked(rules, mode, input, &cuts)
}

/// Scans `input` in one piece.
pub fn scan_whole(rules: &Arc<RuleSet>, mode: DetectionMode, input: &[u8]) -> Collected {
    scan_chunked(rules, mode, input, &[])
}

/// A fresh, empty scratch directory for one test, under the target
/// directory: `<tmp>/<test binary>/<process id>/<name>`. The process id keeps
/// two runs of the same test binary (two checkouts' CI, or a rerun while one
/// is going) out of each other's files; the directories of runs that have
/// ended are removed on the first call, and the last run's stay to be read.
pub fn scratch(name: &str) -> std::path::PathBuf {
    static RUN: std::sync::OnceLock<std::path::PathBuf> = std::sync::OnceLock::new();
    let run = RUN.get_or_init(|| {
        let binary = module_path!().split("::").next().unwrap_or("tests");
        let all = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join(binary);
        for entry in std::fs::read_dir(&all).into_iter().flatten().flatten() {
            let alive = entry
                .file_name()
                .to_str()
                .and_then(|pid| pid.parse::<u32>().ok())
                .is_some_and(|pid| std::path::Path::new(&format!("/proc/{pid}")).exists());
            if !alive {
                let _ = std::fs::remove_dir_all(entry.path());
            }
        }
        all.join(std::process::id().to_string())
    });
    let dir = run.join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The offset of the one checkpoint in `state`, if there is one yet.
pub fn checkpoint_offset(state: &std::path::Path) -> Option<u64> {
    let file = std::fs::read_dir(state)
        .ok()?
        .filter_map(Result::ok)
        .find(|e| e.path().extension().is_some_and(|x| x == "json"))?;
    let value: serde_json::Value =
        serde_json::from_slice(&std::fs::read(file.path()).ok()?).ok()?;
    value["offset"].as_u64()
}

/// Appends `bytes` to the file at `path`, creating it if need be.
pub fn append(path: &std::path::Path, bytes: &[u8]) {
    use std::io::Write;
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap()
        .write_all(bytes)
        .unwrap();
}

/// logredact listening on a TCP input with `limits.max_connections` and
/// `limits.idle_timeout_secs` set in a configuration file in `dir`, its admin
/// endpoint on a second port, and `extra` arguments. Returns once it is
/// ready: (the running process, the input port, the admin port).
pub fn listen_with_limits(
    dir: &std::path::Path,
    max_connections: usize,
    idle_secs: u64,
    extra: &[&str],
) -> (Running, u16, u16) {
    let config = dir.join("logredact.yaml");
    std::fs::write(
        &config,
        format!(
            "limits: {{ max_connections: {max_connections}, idle_timeout_secs: {idle_secs} }}\n"
        ),
    )
    .unwrap();
    let (port, admin) = (free_port(), free_port());
    let (input, admin_address) = (
        format!("tcp://127.0.0.1:{port}"),
        format!("127.0.0.1:{admin}"),
    );
    let mut args = vec![
        "--config",
        config.to_str().unwrap(),
        "--input",
        &input,
        "--admin",
        &admin_address,
    ];
    args.extend_from_slice(extra);
    let mut run = Running::spawn(&args);
    run.wait_until_ready(admin);
    (run, port, admin)
}

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
            let (status, body) = http_get(admin, "/readyz");
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

/// A port on 127.0.0.1 that no other test process will hand out while this
/// one runs. Test binaries run in parallel, and a port that is merely free
/// when probed can be taken by another binary's logredact before ours binds
/// it; ours then exits, and the test talks to the other one. So each port is
/// claimed with an exclusive lock on a file named after it, shared by every
/// test process and released by the kernel when the claiming process exits.
/// Ports come from below the kernel's ephemeral range (32768 and up), so that
/// no outgoing connection can take one before the test binds it.
pub fn free_port() -> u16 {
    use std::sync::Mutex;
    static CLAIMED: Mutex<Vec<std::fs::File>> = Mutex::new(Vec::new());
    let locks = std::env::temp_dir().join("logredact-test-ports");
    std::fs::create_dir_all(&locks).unwrap();
    let mut claimed = CLAIMED.lock().unwrap_or_else(|e| e.into_inner());
    // Different test processes start in different places, so that they
    // seldom contend for the same lock.
    let offset = (std::process::id() % 700) as u16 * 16 + claimed.len() as u16;
    for step in 0..12_000u16 {
        let port = 20_000 + (offset + step) % 12_000;
        let Ok(lock) = lock_file(&locks.join(port.to_string()), Wait::No) else {
            continue;
        };
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            claimed.push(lock);
            return port;
        }
    }
    panic!("out of test ports");
}

/// Whether `lock_file` waits for a lock another process holds.
pub enum Wait {
    Yes,
    No,
}

/// An exclusive lock on the file at `path` (created if need be), held while
/// the returned file is open. The kernel releases it when the holder exits,
/// however it exits, so a crashed test never leaves a stale lock behind.
pub fn lock_file(path: &std::path::Path, wait: Wait) -> std::io::Result<std::fs::File> {
    use std::os::fd::AsRawFd;
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)?;
    let operation = match wait {
        Wait::Yes => libc::LOCK_EX,
        Wait::No => libc::LOCK_EX | libc::LOCK_NB,
    };
    // SAFETY: flock takes a descriptor this function owns; no memory is shared.
    if unsafe { libc::flock(file.as_raw_fd(), operation) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(file)
}

/// Waits until something accepts connections on `port`.
pub fn wait_for_port(port: u16) {
    let until = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            std::time::Instant::now() < until,
            "nothing listens on port {port}"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// A plain `GET` on the admin endpoint: the whole response, head and body.
pub fn http_response(port: u16, path: &str) -> String {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    response
}

/// A plain `GET` on the admin endpoint: (status code, body).
pub fn http_get(port: u16, path: &str) -> (u16, String) {
    let response = http_response(port, path);
    let status = response[9..12].parse().unwrap();
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (status, body)
}

/// An upstream that accepts connections on a port and keeps what each sends.
pub struct Collector {
    pub port: u16,
    received: std::sync::Arc<std::sync::Mutex<Vec<Vec<u8>>>>,
}

impl Collector {
    /// Listens on `port` (0: any), reading every connection to its end.
    pub fn start(port: u16) -> Collector {
        let listener = std::net::TcpListener::bind(("127.0.0.1", port)).unwrap();
        let port = listener.local_addr().unwrap().port();
        let received = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let shared = std::sync::Arc::clone(&received);
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { return };
                let shared = std::sync::Arc::clone(&shared);
                std::thread::spawn(move || {
                    let index = {
                        let mut all = shared.lock().unwrap();
                        all.push(Vec::new());
                        all.len() - 1
                    };
                    let mut buffer = [0u8; 65536];
                    loop {
                        match std::io::Read::read(&mut stream, &mut buffer) {
                            Ok(0) | Err(_) => return,
                            Ok(n) => shared.lock().unwrap()[index].extend_from_slice(&buffer[..n]),
                        }
                    }
                });
            }
        });
        Collector { port, received }
    }

    /// What each connection has sent so far, in the order they connected.
    pub fn connections(&self) -> Vec<Vec<u8>> {
        self.received.lock().unwrap().clone()
    }

    /// Waits until the connections have sent `total` bytes in all.
    pub fn wait_for_total(&self, total: usize, deadline: std::time::Duration) -> Vec<Vec<u8>> {
        let until = std::time::Instant::now() + deadline;
        loop {
            let now = self.connections();
            if now.iter().map(Vec::len).sum::<usize>() >= total || std::time::Instant::now() > until
            {
                return now;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
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

/// Waits until the admin endpoint's metrics contain `line`.
pub fn wait_for_metric(admin: u16, line: &str) -> String {
    let until = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let (_, metrics) = http_get(admin, "/metrics");
        if metrics.lines().any(|l| l == line) {
            return metrics;
        }
        assert!(
            std::time::Instant::now() < until,
            "{line} never appeared in\n{metrics}"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}
