//! TCP fan-in benchmark: 100 connections through logredact, against a plain
//! TCP relay (the same path, copying bytes without redaction) in the same
//! run; per-line added latency at 10,000 lines/s; memory per connection.
//!
//! Run with `cargo bench --bench tcp_fanin`. Corpus: benches/gen_corpus.py
//! (mixed profile), split at line boundaries across the connections.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Barrier, Mutex};
use std::time::{Duration, Instant};

const CONNECTIONS: usize = 100;
const CORPUS_MB: usize = 128;
const ROUNDS: usize = 7;
/// Each connection sends its part this many times per round, so that a
/// round lasts long enough (about half a second) to time reliably.
const REPEAT: usize = 4;
const LINES_PER_SECOND: u64 = 10_000;
const LATENCY_SECONDS: u64 = 5;

fn corpus() -> Vec<u8> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let dir = root.join("target").join("bench-corpus");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(format!("mixed-{CORPUS_MB}mb.log"));
    if !path.exists() {
        let output = Command::new("python3")
            .arg(root.join("benches").join("gen_corpus.py"))
            .args(["--size-mb", &CORPUS_MB.to_string(), "--profile", "mixed"])
            .output()
            .expect("python3 benches/gen_corpus.py");
        assert!(output.status.success());
        std::fs::write(&path, output.stdout).unwrap();
    }
    std::fs::read(path).unwrap()
}

/// Splits `corpus` into `n` parts at line boundaries.
fn split(corpus: &[u8], n: usize) -> Vec<Vec<u8>> {
    let mut parts = Vec::with_capacity(n);
    let mut start = 0;
    for i in 1..=n {
        let mut end = corpus.len() * i / n;
        while end < corpus.len() && corpus[end - 1] != b'\n' {
            end += 1;
        }
        parts.push(corpus[start..end].to_vec());
        start = end;
    }
    parts
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn wait_for(port: u16) {
    let until = Instant::now() + Duration::from_secs(10);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < until, "nothing on port {port}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// An upstream that counts what every connection sends.
struct Sink {
    port: u16,
    received: Arc<AtomicU64>,
}

impl Sink {
    fn start() -> Sink {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let received = Arc::new(AtomicU64::new(0));
        let counter = Arc::clone(&received);
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { return };
                let counter = Arc::clone(&counter);
                std::thread::spawn(move || {
                    let mut buffer = vec![0u8; 256 * 1024];
                    while let Ok(n) = stream.read(&mut buffer) {
                        if n == 0 {
                            return;
                        }
                        counter.fetch_add(n as u64, Ordering::Relaxed);
                    }
                });
            }
        });
        Sink { port, received }
    }
}

/// A plain relay: every inbound connection copied byte for byte to its own
/// upstream connection, a thread per direction, 64 KiB reads.
fn start_relay(upstream: u16) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut inbound) = stream else { return };
            std::thread::spawn(move || {
                let mut out = TcpStream::connect(("127.0.0.1", upstream)).unwrap();
                let mut buffer = vec![0u8; 64 * 1024];
                loop {
                    match inbound.read(&mut buffer) {
                        Ok(0) | Err(_) => return,
                        Ok(n) => out.write_all(&buffer[..n]).unwrap(),
                    }
                }
            });
        }
    });
    port
}

fn start_logredact(listen: u16, upstream: u16) -> Child {
    let child = Command::new(env!("CARGO_BIN_EXE_logredact"))
        .args([
            "--input",
            &format!("tcp://127.0.0.1:{listen}"),
            "--output",
            &format!("tcp://127.0.0.1:{upstream}"),
        ])
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_for(listen);
    child
}

/// Sends every part on its own connection at once; returns the seconds until
/// the sink has received `expected` bytes, and the peak RSS of `watch`.
fn fan_in(
    port: u16,
    parts: &[Vec<u8>],
    sink: &Sink,
    expected: u64,
    watch: Option<u32>,
) -> (f64, u64) {
    let before = sink.received.load(Ordering::SeqCst);
    let barrier = Arc::new(Barrier::new(parts.len() + 1));
    let senders: Vec<_> = parts
        .iter()
        .cloned()
        .map(|part| {
            let barrier = Arc::clone(&barrier);
            std::thread::spawn(move || {
                let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
                barrier.wait();
                for _ in 0..REPEAT {
                    stream.write_all(&part).unwrap();
                }
            })
        })
        .collect();
    barrier.wait();
    let started = Instant::now();
    let mut peak = 0;
    while sink.received.load(Ordering::SeqCst) - before < expected {
        if let Some(pid) = watch {
            peak = peak.max(rss_kib(pid));
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    let seconds = started.elapsed().as_secs_f64();
    for sender in senders {
        sender.join().unwrap();
    }
    (seconds, peak)
}

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

/// User plus system CPU seconds of a process so far, from /proc.
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name, which is in parentheses.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    let ticks: u64 = fields
        .get(11..13)
        .map_or(0, |f| f.iter().filter_map(|v| v.parse::<u64>().ok()).sum());
    ticks as f64 / 100.0
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

/// Per-line latency with the sink behind `make_path(sink port)`.
fn latency_through(make_path: impl FnOnce(u16) -> (u16, Option<Child>)) -> (f64, f64, usize) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let sink_port = listener.local_addr().unwrap().port();
    drop(listener);
    let epoch = Instant::now();
    let received = Arc::new(Mutex::new(Vec::new()));
    let collected = Arc::clone(&received);
    let listener = TcpListener::bind(("127.0.0.1", sink_port)).unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { return };
            let collected = Arc::clone(&collected);
            std::thread::spawn(move || {
                for line in BufReader::new(stream).lines() {
                    let Ok(line) = line else { return };
                    let now = epoch.elapsed().as_nanos() as u64;
                    if let Some(sent) = line
                        .split_whitespace()
                        .next()
                        .and_then(|t| t.parse::<u64>().ok())
                    {
                        collected
                            .lock()
                            .unwrap()
                            .push((now.saturating_sub(sent)) as f64 / 1000.0);
                    }
                }
            });
        }
    });
    let (port, child) = make_path(sink_port);
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream.set_nodelay(true).unwrap();
    let interval = Duration::from_nanos(1_000_000_000 / LINES_PER_SECOND);
    let total = LINES_PER_SECOND * LATENCY_SECONDS;
    let start = Instant::now();
    for i in 0..total {
        let due = start + interval * i as u32;
        while Instant::now() < due {
            std::hint::spin_loop();
        }
        let sent = epoch.elapsed().as_nanos() as u64;
        writeln!(
            stream,
            "{sent} request handled Authorization: Bearer dapi0123456789abcdef0123456789abcdef ok"
        )
        .unwrap();
    }
    drop(stream);
    std::thread::sleep(Duration::from_millis(500));
    if let Some(mut child) = child {
        let _ = child.kill();
        let _ = child.wait();
    }
    let mut values = received.lock().unwrap().clone();
    values.sort_by(f64::total_cmp);
    let pick = |q: f64| values[((values.len() as f64 - 1.0) * q) as usize];
    (pick(0.5), pick(0.99), values.len())
}

fn main() {
    if std::env::args().any(|a| a == "--list" || a.starts_with("--test")) {
        return;
    }
    let corpus = corpus();
    let parts = split(&corpus, CONNECTIONS);
    let total = (corpus.len() * REPEAT) as u64;
    let expected = REPEAT as u64 * {
        let re = regex::bytes::Regex::new(r"(?-u:\b)dapi[0-9a-f]{32}(?-u:\b)").unwrap();
        parts
            .iter()
            .map(|p| re.replace_all(p, &b"dapi****"[..]).len() as u64)
            .sum::<u64>()
    };
    let sink = Sink::start();
    let relay = start_relay(sink.port);
    let listen = free_port();
    let mut logredact = start_logredact(listen, sink.port);
    println!(
        "TCP fan-in: {CONNECTIONS} connections, the {CORPUS_MB} MB mixed corpus sent {REPEAT} times ({} MB), {ROUNDS} alternating rounds",
        total / 1_000_000
    );
    let (mut relay_times, mut logredact_times) = (Vec::new(), Vec::new());
    let (mut peak_rss, mut cpu) = (0, Vec::new());
    for _ in 0..ROUNDS {
        relay_times.push(fan_in(relay, &parts, &sink, total, None).0);
        let before = cpu_seconds(logredact.id());
        let (seconds, peak) = fan_in(listen, &parts, &sink, expected, Some(logredact.id()));
        cpu.push(cpu_seconds(logredact.id()) - before);
        logredact_times.push(seconds);
        peak_rss = peak_rss.max(peak);
    }
    let range = |v: &[f64]| {
        let (lo, hi) = v
            .iter()
            .fold((f64::MAX, 0f64), |(l, h), &x| (l.min(x), h.max(x)));
        format!("{lo:.3}-{hi:.3}")
    };
    let (relay_range, logredact_range) = (range(&relay_times), range(&logredact_times));
    let (relay_s, logredact_s) = (median(&mut relay_times), median(&mut logredact_times));
    let mb = total as f64 / 1e6;
    println!(
        "{:<22} {:>10} {:>14} {:>10}",
        "path", "median s", "min-max s", "MB/s"
    );
    println!(
        "{:<22} {:>10.3} {:>14} {:>10.0}",
        "plain relay",
        relay_s,
        relay_range,
        mb / relay_s
    );
    println!(
        "{:<22} {:>10.3} {:>14} {:>10.0}",
        "logredact (proxy)",
        logredact_s,
        logredact_range,
        mb / logredact_s
    );
    println!("logredact CPU per round: median {:.3} s", median(&mut cpu));
    println!(
        "throughput ratio logredact / relay: {:.2}",
        relay_s / logredact_s
    );
    println!(
        "logredact peak RSS during fan-in: {:.1} MiB",
        peak_rss as f64 / 1024.0
    );

    // Memory per connection: RSS with 1,000 open idle connections.
    let idle_before = rss_kib(logredact.id());
    let idle: Vec<TcpStream> = (0..1000)
        .map(|_| {
            let mut s = TcpStream::connect(("127.0.0.1", listen)).unwrap();
            s.write_all(b"x\n").unwrap();
            s
        })
        .collect();
    std::thread::sleep(Duration::from_millis(1000));
    let idle_after = rss_kib(logredact.id());
    println!(
        "RSS with 1000 open connections: {:.1} MiB (+{:.1} KiB per connection)",
        idle_after as f64 / 1024.0,
        (idle_after.saturating_sub(idle_before)) as f64 / 1000.0
    );
    drop(idle);
    let _ = logredact.kill();
    let _ = logredact.wait();

    let (p50, p99, n) = latency_through(|sink| (sink, None));
    println!(
        "\nline latency at {LINES_PER_SECOND} lines/s for {LATENCY_SECONDS} s (µs): direct p50 {p50:.0} p99 {p99:.0} ({n} lines)"
    );
    let (p50r, p99r, n) = latency_through(|sink| (start_relay(sink), None));
    println!("through the plain relay: p50 {p50r:.0} p99 {p99r:.0} ({n} lines)");
    let (p50l, p99l, n) = latency_through(|sink| {
        let listen = free_port();
        let child = start_logredact(listen, sink);
        (listen, Some(child))
    });
    println!("through logredact:       p50 {p50l:.0} p99 {p99l:.0} ({n} lines)");
    println!(
        "added by logredact over direct: p50 {:.0} µs, p99 {:.0} µs",
        p50l - p50,
        p99l - p99
    );
}
