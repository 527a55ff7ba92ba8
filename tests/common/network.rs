//! Sockets the tests share: ports no other test process takes, the admin
//! endpoint's HTTP, an upstream that records what it receives, and a
//! logredact listening with connection limits.

use std::time::{Duration, Instant};

use super::{Running, Wait, lock_file};

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

/// Waits until something accepts connections on `port`.
pub fn wait_for_port(port: u16) {
    let until = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < until, "nothing listens on port {port}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Waits until some process listens on TCP `port` (any address, IPv4 or
/// IPv6), as the kernel's socket tables say: unlike [`wait_for_port`], this
/// makes no connection, which a server that serves one connection only
/// (`openssl s_server -naccept 1`) would take for its one.
pub fn wait_for_listener(port: u16) {
    let listening = || {
        ["/proc/net/tcp", "/proc/net/tcp6"].iter().any(|table| {
            std::fs::read_to_string(table)
                .unwrap_or_default()
                .lines()
                .skip(1)
                .any(|line| {
                    let fields: Vec<&str> = line.split_whitespace().collect();
                    // local_address is ADDRESS:PORT in hex; state 0A is LISTEN.
                    fields.len() > 3
                        && fields[3] == "0A"
                        && fields[1].rsplit_once(':').map(|(_, p)| p)
                            == Some(format!("{port:04X}").as_str())
                })
        })
    };
    let until = Instant::now() + Duration::from_secs(10);
    while !listening() {
        assert!(Instant::now() < until, "nothing listens on port {port}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A plain `GET` on the admin endpoint: the whole response, head and body.
pub fn http_response(port: u16, path: &str) -> String {
    http_response_with(port, path, "")
}

/// [`http_response`] with more header lines (each ending in `\r\n`).
pub fn http_response_with(port: u16, path: &str, headers: &str) -> String {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: localhost\r\n{headers}Connection: close\r\n\r\n"
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

/// Waits until the admin endpoint's metrics contain `line`.
pub fn wait_for_metric(admin: u16, line: &str) -> String {
    let until = Instant::now() + Duration::from_secs(10);
    loop {
        let (_, metrics) = http_get(admin, "/metrics");
        if metrics.lines().any(|l| l == line) {
            return metrics;
        }
        assert!(
            Instant::now() < until,
            "{line} never appeared in\n{metrics}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The value of the sample `series` (a counter's name with its labels, as
/// the metrics print it) on the admin endpoint `admin`, if it is there.
pub fn metric_value(admin: u16, series: &str) -> Option<u64> {
    let (_, metrics) = http_get(admin, "/metrics");
    metrics.lines().find_map(|line| {
        let value = line.strip_prefix(series)?.strip_prefix(' ')?;
        value.parse().ok()
    })
}

/// Waits until the counter `series` on `admin` is at least `at_least`;
/// returns its value.
pub fn wait_for_counter(admin: u16, series: &str, at_least: u64) -> u64 {
    let until = Instant::now() + Duration::from_secs(20);
    loop {
        let value = metric_value(admin, series).unwrap_or(0);
        if value >= at_least {
            return value;
        }
        assert!(
            Instant::now() < until,
            "{series} is {value}, never {at_least} or more"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
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
    pub fn wait_for_total(&self, total: usize, deadline: Duration) -> Vec<Vec<u8>> {
        let until = Instant::now() + deadline;
        loop {
            let now = self.connections();
            if now.iter().map(Vec::len).sum::<usize>() >= total || Instant::now() > until {
                return now;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
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
