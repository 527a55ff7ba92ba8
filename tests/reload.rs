//! Reloading the configuration while streams run (SIGHUP, `--watch-config`):
//! every stream switches at the offset it logs, and its output is exactly the
//! old rules' redaction before that offset and the new rules' after it.

mod common;

use std::collections::BTreeMap;
use std::io::Write;
use std::net::{Shutdown, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use logredact::app::{self, Overrides};
use logredact::{DetectionMode, Mark, RuleSet, Scanner};
use serde_json::Value;

use common::{
    Collector, Running, TokenGen, binary, free_port, http_response, read, scratch, signal,
    wait_for_metric, wait_for_signal_handler,
};

/// The default rule only.
const RULES_A: &str = r"
rules:
  - id: databricks-pat
    pattern: '\bdapi[0-9a-f]{32}\b'
    mask: 'dapi****'
";

/// The default rule and one that masks user names.
const RULES_B: &str = r"
rules:
  - id: databricks-pat
    pattern: '\bdapi[0-9a-f]{32}\b'
    mask: 'dapi****'
  - id: user-name
    pattern: '\buser=[g-z]{3,12}\b'
    mask: 'user=****'
";

const WAIT: Duration = Duration::from_secs(30);

/// Writes `text` to `path` as an editor or a deployment tool does: whole,
/// by renaming a complete file over it.
fn replace_file(path: &Path, text: &str) {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

/// The rules of `text` compiled as a run compiles them, for the reference.
fn compiled(dir: &Path, name: &str, text: &str) -> Arc<RuleSet> {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    let overrides = Overrides {
        shutdown_grace: Duration::from_secs(10),
        ..Overrides::default()
    };
    app::check_config(&path, overrides, None).unwrap().rules
}

/// logredact's JSON log lines.
fn log_records(stderr: &str) -> Vec<Value> {
    stderr
        .lines()
        .filter_map(|line| serde_json::from_str(line).ok())
        .collect()
}

fn message(record: &Value) -> &str {
    record["fields"]["message"].as_str().unwrap_or_default()
}

/// How many reloads took effect, and how many were refused, so far.
fn reload_outcomes(stderr: &str) -> (usize, usize) {
    let records = log_records(stderr);
    let count = |prefix: &str| {
        records
            .iter()
            .filter(|r| message(r).starts_with(prefix))
            .count()
    };
    (count("configuration reloaded"), count("reload refused"))
}

/// Waits until `run` has logged `reloaded` reloads and `refused` refusals.
fn wait_for_reloads(run: &Running, reloaded: usize, refused: usize) {
    let until = Instant::now() + WAIT;
    loop {
        let errors = run.errors();
        let (done, no) = reload_outcomes(&errors);
        if (done, no) == (reloaded, refused) {
            return;
        }
        assert!(
            done <= reloaded && no <= refused && Instant::now() < until,
            "expected {reloaded} reloads and {refused} refusals, saw {done} and {no}:\n{errors}"
        );
        thread::sleep(Duration::from_millis(5));
    }
}

/// Each stream's switches, as logged: stream id → (offset, generation).
fn switches(stderr: &str) -> BTreeMap<String, Vec<(u64, u64)>> {
    let mut all: BTreeMap<String, Vec<(u64, u64)>> = BTreeMap::new();
    for record in log_records(stderr) {
        if message(&record) != "the reloaded rules take over here" {
            continue;
        }
        let stream = record["span"]["stream"]
            .as_str()
            .expect("stream")
            .to_string();
        let offset = record["fields"]["offset"].as_u64().expect("offset");
        let generation = record["fields"]["generation"].as_u64().expect("generation");
        all.entry(stream).or_default().push((offset, generation));
    }
    all
}

/// What a stream's output must be: `input` redacted by the rules of
/// generation 0 up to the first switch, then by each switch's rules from its
/// offset on, as a stream resumed there.
fn reference(
    input: &[u8],
    switches: &[(u64, u64)],
    rules_of: &dyn Fn(u64) -> Arc<RuleSet>,
) -> Vec<u8> {
    let mut out = Vec::new();
    let mut from = 0usize;
    let mut generation = 0;
    let ends = switches
        .iter()
        .map(|&(offset, next)| (offset as usize, Some(next)))
        .chain([(input.len(), None)]);
    for (to, next) in ends {
        assert!(
            to >= from && to <= input.len(),
            "switch at {to} after {from}"
        );
        let mark = Mark {
            offset: from as u64,
            lines: 0,
            byte_before: from.checked_sub(1).map(|i| input[i]),
        };
        let mut scanner = Scanner::resume(rules_of(generation), DetectionMode::MaskOnly, mark);
        scanner.feed(&input[from..to], &mut out);
        // Nothing is in progress at a switch: ending the stream here decides
        // nothing that going on would not.
        scanner.finish(&mut out);
        from = to;
        if let Some(next) = next {
            generation = next;
        }
    }
    out
}

/// A line of a stream: its tag, a sequence number, and text with tokens,
/// user names (which only rule set B masks) and plain words; never a run of
/// eight hex digits other than in a token.
fn line(tag: &str, seq: usize, random: &mut TokenGen, tokens: &mut Vec<String>) -> String {
    const NAMES: [&str; 4] = ["ghost", "mira", "otto", "wynn"];
    const WORDS: [&str; 6] = ["request", "served", "in", "ms", "path", "ok"];
    let mut text = format!("{tag} {seq:06}");
    for _ in 0..(random.next_u64() % 6) {
        match random.next_u64() % 5 {
            0 => {
                let token = random.token();
                text.push_str(&format!(" token={token}"));
                tokens.push(token);
            }
            1 => text.push_str(&format!(
                " user={}",
                NAMES[(random.next_u64() % 4) as usize]
            )),
            _ => text.push_str(&format!(" {}", WORDS[(random.next_u64() % 6) as usize])),
        }
    }
    text.push('\n');
    text
}

#[test]
fn sighup_switches_a_pipe_at_the_offset_it_logs_and_never_ends_the_process() {
    let dir = scratch("pipe");
    let config = dir.join("logredact.yaml");
    std::fs::write(&config, RULES_A).unwrap();
    let rules = [
        compiled(&dir, "a.yaml", RULES_A),
        compiled(&dir, "b.yaml", RULES_B),
    ];
    let mut run = Running::spawn(&["--config", config.to_str().unwrap(), "--log-format", "json"]);
    wait_for_signal_handler(&run.child, libc::SIGHUP);
    let mut random = TokenGen::new(41);
    let mut tokens = Vec::new();
    let mut input = Vec::new();
    let mut send = |run: &mut Running, from: usize, to: usize, input: &mut Vec<u8>| {
        for seq in from..to {
            let text = line("S", seq, &mut random, &mut tokens);
            run.write(text.as_bytes());
            input.extend_from_slice(text.as_bytes());
        }
    };
    send(&mut run, 0, 50, &mut input);
    for reload in 1..=4 {
        let next = if reload % 2 == 1 { RULES_B } else { RULES_A };
        replace_file(&config, next);
        signal(&run.child, "HUP");
        wait_for_reloads(&run, reload, 0);
        send(&mut run, 50 * reload, 50 * (reload + 1), &mut input);
    }
    let (status, output, stderr) = run.finish();
    assert!(status.success(), "{status}\n{stderr}");
    let switched = switches(&stderr);
    let stdin = switched.get("stdin").cloned().unwrap_or_default();
    assert_eq!(
        stdin.iter().map(|s| s.1).collect::<Vec<_>>(),
        vec![1, 2, 3, 4],
        "{stderr}"
    );
    let expected = reference(&input, &stdin, &|g| Arc::clone(&rules[(g % 2) as usize]));
    assert_eq!(
        String::from_utf8_lossy(&output),
        String::from_utf8_lossy(&expected)
    );
    // Both rule sets were in force in turn.
    let text = String::from_utf8_lossy(&output);
    assert!(text.contains("user=****"));
    assert!(
        ["ghost", "mira", "otto", "wynn"]
            .iter()
            .any(|name| text.contains(&format!("user={name}")))
    );
    for token in &tokens {
        assert!(!text.contains(token.as_str()));
    }
}

#[test]
fn an_invalid_configuration_is_refused_counted_and_the_old_rules_stay() {
    let dir = scratch("invalid");
    let config = dir.join("logredact.yaml");
    std::fs::write(&config, RULES_B).unwrap();
    let admin = free_port();
    let admin_address = format!("127.0.0.1:{admin}");
    let mut run = Running::spawn(&[
        "--config",
        config.to_str().unwrap(),
        "--admin",
        &admin_address,
        "--log-format",
        "json",
    ]);
    run.wait_until_ready(admin);
    wait_for_signal_handler(&run.child, libc::SIGHUP);

    // A pattern without a bound, and a variable that is not set.
    let unbounded = "rules:\n  - id: databricks-pat\n    pattern: 'dapi[0-9a-f]+'\n";
    let unset = "rules:\n  - id: databricks-pat\n    pattern: '\\bdapi[0-9a-f]{32}\\b'\n    mask: '${LOGREDACT_TEST_UNSET_MASK}'\n";
    for (refused, text) in [unbounded, unset].into_iter().enumerate() {
        replace_file(&config, text);
        let checked = binary()
            .args(["check-config", config.to_str().unwrap()])
            .env_remove("LOGREDACT_TEST_UNSET_MASK")
            .output()
            .unwrap();
        assert_eq!(checked.status.code(), Some(2));
        let why = String::from_utf8(checked.stderr).unwrap();
        let why = why.trim_end().strip_prefix("logredact: ").unwrap();
        signal(&run.child, "HUP");
        wait_for_reloads(&run, 0, refused + 1);
        let errors = run.errors();
        let record = log_records(&errors)
            .into_iter()
            .filter(|r| message(r).starts_with("reload refused"))
            .nth(refused)
            .unwrap();
        assert_eq!(record["level"], "ERROR");
        assert_eq!(record["fields"]["trigger"], "SIGHUP");
        assert_eq!(
            message(&record),
            format!(
                "reload refused; the running configuration stays in force: the configuration is invalid: {why}"
            )
        );
    }
    wait_for_metric(admin, "logredact_reload_failures_total 2");
    let metrics = http_response(admin, "/metrics");
    assert!(metrics.contains("logredact_reloads_total 0"), "{metrics}");

    // The old rules (B) are still in force.
    run.write(b"login user=ghost\n");
    run.expect_output(b"login user=****\n", WAIT, "the old rules still mask");

    // A valid configuration afterwards takes effect.
    replace_file(&config, RULES_A);
    signal(&run.child, "HUP");
    wait_for_reloads(&run, 1, 2);
    wait_for_metric(admin, "logredact_reloads_total 1");
    let (status, _, stderr) = run.terminate();
    assert!(status.success(), "{status}\n{stderr}");
}

#[test]
fn a_change_that_takes_a_restart_is_refused_whole() {
    let dir = scratch("restart");
    let config = dir.join("logredact.yaml");
    std::fs::write(&config, RULES_A).unwrap();
    let mut run = Running::spawn(&["--config", config.to_str().unwrap(), "--log-format", "json"]);
    wait_for_signal_handler(&run.child, libc::SIGHUP);
    // New rules together with new limits and an admin address: none of it
    // is applied, not even the rules.
    let changed = format!(
        "{RULES_B}limits:\n  max_connections: 7\nadmin:\n  listen: '127.0.0.1:{}'\n",
        free_port()
    );
    replace_file(&config, &changed);
    signal(&run.child, "HUP");
    wait_for_reloads(&run, 0, 1);
    let errors = run.errors();
    let refused = log_records(&errors)
        .into_iter()
        .find(|r| message(r).starts_with("reload refused"))
        .unwrap();
    assert_eq!(
        message(&refused),
        "reload refused; the running configuration stays in force: admin, limits changed, which takes a restart"
    );
    run.write(b"login user=ghost\n");
    let (status, output, stderr) = run.finish();
    assert!(status.success(), "{status}\n{stderr}");
    assert_eq!(output, b"login user=ghost\n");
    assert!(switches(&stderr).is_empty(), "{stderr}");
}

/// A ConfigMap mounted as a volume: the file is a symbolic link through
/// `..data`, which the kubelet swaps to a new directory on each update.
#[test]
fn watch_config_reloads_when_a_configmap_style_link_is_swapped() {
    let dir = scratch("configmap");
    let first = dir.join("..2026_01_01_00_00_00.1");
    let second = dir.join("..2026_01_01_00_01_00.2");
    std::fs::create_dir(&first).unwrap();
    std::fs::write(first.join("logredact.yaml"), RULES_A).unwrap();
    std::os::unix::fs::symlink(first.file_name().unwrap(), dir.join("..data")).unwrap();
    std::os::unix::fs::symlink("..data/logredact.yaml", dir.join("logredact.yaml")).unwrap();
    let config = dir.join("logredact.yaml");
    let mut run = Running::spawn(&[
        "--config",
        config.to_str().unwrap(),
        "--watch-config",
        "--log-format",
        "json",
    ]);
    wait_for_signal_handler(&run.child, libc::SIGHUP);
    run.write(b"before user=ghost\n");
    run.expect_output(b"before user=ghost\n", WAIT, "rules A at start");

    std::fs::create_dir(&second).unwrap();
    std::fs::write(second.join("logredact.yaml"), RULES_B).unwrap();
    let swap = dir.join("..data_tmp");
    std::os::unix::fs::symlink(second.file_name().unwrap(), &swap).unwrap();
    std::fs::rename(&swap, dir.join("..data")).unwrap();
    wait_for_reloads(&run, 1, 0);
    let errors = run.errors();
    let reloaded = log_records(&errors)
        .into_iter()
        .find(|r| message(r).starts_with("configuration reloaded"))
        .unwrap();
    assert_eq!(reloaded["fields"]["trigger"], "a watched file changed");

    run.write(b"a line longer than the longest match of the new rules\nafter user=ghost\n");
    let (status, output, stderr) = run.finish();
    assert!(status.success(), "{status}\n{stderr}");
    assert_eq!(
        String::from_utf8_lossy(&output),
        "before user=ghost\na line longer than the longest match of the new rules\nafter user=****\n"
    );
}

#[test]
fn watch_config_needs_a_configuration_file() {
    let output = binary().arg("--watch-config").output().unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("the following required arguments were not provided:")
            && stderr.contains("--config <PATH>"),
        "{stderr}"
    );
}

/// What one writer sent: its tag and bytes, in order.
struct Sent {
    tag: String,
    bytes: Vec<u8>,
    lines: usize,
}

/// Writes lines of `tag` with `write` until `stop`, in pieces of random
/// size so that lines and tokens are cut across reads; returns what it sent.
fn writer(
    tag: &str,
    seed: u64,
    stop: Arc<AtomicBool>,
    tokens: Arc<Mutex<Vec<String>>>,
    mut write: impl FnMut(&[u8]) + Send + 'static,
) -> thread::JoinHandle<Sent> {
    let tag = tag.to_string();
    thread::spawn(move || {
        let mut random = TokenGen::new(seed);
        let mut sent = Sent {
            tag: tag.clone(),
            bytes: Vec::new(),
            lines: 0,
        };
        let mut mine = Vec::new();
        while !stop.load(Ordering::Relaxed) {
            let text = line(&tag, sent.lines, &mut random, &mut mine);
            let bytes = text.as_bytes();
            let cut = (random.next_u64() as usize) % (bytes.len() + 1);
            write(&bytes[..cut]);
            if random.next_u64() % 4 == 0 {
                thread::sleep(Duration::from_micros(300));
            }
            write(&bytes[cut..]);
            sent.bytes.extend_from_slice(bytes);
            sent.lines += 1;
            if sent.lines % 2 == 0 {
                thread::sleep(Duration::from_millis(1));
            }
        }
        tokens.lock().unwrap().extend(mine);
        sent
    })
}

/// A connection that writes without delay, so that every piece is a read of
/// its own on the other side.
fn connect(port: u16) -> TcpStream {
    let stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream.set_nodelay(true).unwrap();
    stream
}

/// The lines of `output` that start with `tag`, in order.
fn lines_of(output: &[u8], tag: &str) -> Vec<u8> {
    let prefix = format!("{tag} ");
    output
        .split_inclusive(|&b| b == b'\n')
        .filter(|line| line.starts_with(prefix.as_bytes()))
        .flatten()
        .copied()
        .collect()
}

/// Sequence numbers missing from `output` and seen more than once.
fn lost_and_repeated(output: &[u8], lines: usize) -> (usize, usize) {
    let mut seen = vec![0usize; lines];
    for line in output.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
        let text = String::from_utf8_lossy(line);
        let seq: usize = text.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap();
        seen[seq] += 1;
    }
    (
        seen.iter().filter(|&&n| n == 0).count(),
        seen.iter().filter(|&&n| n > 1).count(),
    )
}

/// Fifty reloads, alternating two rule sets, while a followed file and two
/// TCP connections (merged into one output file) and two proxied TCP
/// connections (each to its own upstream connection) carry lines: every
/// stream's output is the reference computed from the offsets it logged.
#[test]
fn fifty_reloads_under_load_lose_nothing_repeat_nothing_and_let_no_token_through() {
    const RELOADS: usize = 50;
    const BAD_AT: usize = 25;
    let dir = scratch("load");
    let rules = [
        compiled(&dir, "a.yaml", RULES_A),
        compiled(&dir, "b.yaml", RULES_B),
    ];
    let followed = dir.join("app.log");
    std::fs::write(&followed, b"").unwrap();
    let merged_out = dir.join("merged.out");
    let (merge_port, proxy_port) = (free_port(), free_port());
    let upstream = Collector::start(0);
    let merge_config = dir.join("merge.yaml");
    let proxy_config = dir.join("proxy.yaml");
    let merge_io = format!(
        "inputs: ['follow:{}', 'tcp://127.0.0.1:{merge_port}']\noutput: 'file:{}'\nstate_dir: '{}'\n",
        followed.display(),
        merged_out.display(),
        dir.join("state").display()
    );
    let proxy_io = format!(
        "inputs: ['tcp://127.0.0.1:{proxy_port}']\noutput: 'tcp://127.0.0.1:{}'\n",
        upstream.port
    );
    let write_configs = |rules: &str| {
        replace_file(&merge_config, &format!("{merge_io}{rules}"));
        replace_file(&proxy_config, &format!("{proxy_io}{rules}"));
    };
    write_configs(RULES_A);
    let start = |config: &PathBuf| {
        Running::spawn(&["--config", config.to_str().unwrap(), "--log-format", "json"])
    };
    let mut merge = start(&merge_config);
    let mut proxy = start(&proxy_config);
    merge.wait_for_port(merge_port);
    proxy.wait_for_port(proxy_port);
    wait_for_signal_handler(&merge.child, libc::SIGHUP);
    wait_for_signal_handler(&proxy.child, libc::SIGHUP);

    let stop = Arc::new(AtomicBool::new(false));
    let tokens = Arc::new(Mutex::new(Vec::new()));
    let mut streams = Vec::new(); // (tag, stream id, writer)
    {
        let path = followed.clone();
        let mut file = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap();
        let write = move |bytes: &[u8]| file.write_all(bytes).unwrap();
        let id = format!("file:{}", followed.display());
        streams.push((
            "F0",
            id,
            writer("F0", 1, stop.clone(), tokens.clone(), write),
        ));
    }
    let mut connections = Vec::new();
    for (tag, port, seed) in [
        ("M1", merge_port, 2),
        ("M2", merge_port, 3),
        ("P1", proxy_port, 4),
        ("P2", proxy_port, 5),
    ] {
        let stream = connect(port);
        let id = format!("tcp:{}", stream.local_addr().unwrap());
        let mut writing = stream.try_clone().unwrap();
        connections.push(stream);
        let write = move |bytes: &[u8]| writing.write_all(bytes).unwrap();
        streams.push((
            tag,
            id,
            writer(tag, seed, stop.clone(), tokens.clone(), write),
        ));
    }
    // Every stream has started on the first rules before the first reload.
    let until = Instant::now() + WAIT;
    loop {
        let merged = std::fs::read(&merged_out).unwrap_or_default();
        let proxied = upstream.connections();
        if ["F0", "M1", "M2"]
            .iter()
            .all(|tag| !lines_of(&merged, tag).is_empty())
            && proxied.iter().filter(|c| c.contains(&b'\n')).count() == 2
        {
            break;
        }
        assert!(
            Instant::now() < until,
            "the streams never started: {} lines merged, {} proxied connections\n--- merge ---\n{}\n--- proxy ---\n{}",
            merged.iter().filter(|&&b| b == b'\n').count(),
            proxied.len(),
            merge.errors(),
            proxy.errors()
        );
        thread::sleep(Duration::from_millis(10));
    }

    let mut generations = vec![RULES_A];
    let mut refused = 0;
    for reload in 1..=RELOADS {
        if reload == BAD_AT {
            // A bad configuration mid-run: refused, the rules stay.
            write_configs("rules:\n  - id: databricks-pat\n    pattern: 'dapi[0-9a-f]+'\n");
            signal(&merge.child, "HUP");
            signal(&proxy.child, "HUP");
            refused += 1;
            wait_for_reloads(&merge, reload - 1, refused);
            wait_for_reloads(&proxy, reload - 1, refused);
        }
        let next = if reload % 2 == 1 { RULES_B } else { RULES_A };
        write_configs(next);
        generations.push(next);
        signal(&merge.child, "HUP");
        signal(&proxy.child, "HUP");
        wait_for_reloads(&merge, reload, refused);
        wait_for_reloads(&proxy, reload, refused);
        thread::sleep(Duration::from_millis(40));
    }
    stop.store(true, Ordering::Relaxed);
    let sent: Vec<(String, Sent)> = streams
        .into_iter()
        .map(|(_, id, writer)| (id, writer.join().unwrap()))
        .collect();
    for connection in &connections {
        connection.shutdown(Shutdown::Write).unwrap();
    }

    // Everything sent arrives.
    let merged_total: usize = sent
        .iter()
        .filter(|(_, s)| !s.tag.starts_with('P'))
        .map(|(_, s)| s.lines)
        .sum();
    let until = Instant::now() + WAIT;
    while std::fs::read(&merged_out)
        .unwrap_or_default()
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        < merged_total
        && Instant::now() < until
    {
        thread::sleep(Duration::from_millis(20));
    }
    let proxied_lines: usize = sent
        .iter()
        .filter(|(_, s)| s.tag.starts_with('P'))
        .map(|(_, s)| s.lines)
        .sum();
    while upstream
        .connections()
        .iter()
        .map(|c| c.iter().filter(|&&b| b == b'\n').count())
        .sum::<usize>()
        < proxied_lines
        && Instant::now() < until
    {
        thread::sleep(Duration::from_millis(20));
    }
    let (merge_status, _, merge_log) = merge.terminate();
    let (proxy_status, _, proxy_log) = proxy.terminate();
    assert!(merge_status.success(), "{merge_status}\n{merge_log}");
    assert!(proxy_status.success(), "{proxy_status}\n{proxy_log}");

    let rules_of = |generation: u64| {
        let text = generations[generation as usize];
        Arc::clone(&rules[usize::from(text == RULES_B)])
    };
    let merged = std::fs::read(&merged_out).unwrap();
    let proxied = upstream.connections();
    let mut logged = switches(&merge_log);
    logged.extend(switches(&proxy_log));
    let (mut bytes_compared, mut switches_seen, mut lost, mut repeated) = (0, 0, 0, 0);
    for (id, sent) in &sent {
        let output = if sent.tag.starts_with('P') {
            let prefix = format!("{} ", sent.tag);
            proxied
                .iter()
                .find(|c| c.starts_with(prefix.as_bytes()))
                .cloned()
                .unwrap_or_default()
        } else {
            lines_of(&merged, &sent.tag)
        };
        let stream_switches = logged.get(id).cloned().unwrap_or_default();
        let (l, r) = lost_and_repeated(&output, sent.lines);
        lost += l;
        repeated += r;
        switches_seen += stream_switches.len();
        let expected = reference(&sent.bytes, &stream_switches, &rules_of);
        assert!(
            output == expected,
            "stream {} ({id}): {} switches {:?}, {l} lines lost, {r} repeated\n--- expected ---\n{}\n--- got ---\n{}",
            sent.tag,
            stream_switches.len(),
            stream_switches,
            String::from_utf8_lossy(&expected),
            String::from_utf8_lossy(&output),
        );
        assert!(
            stream_switches.len() >= RELOADS / 2,
            "stream {} switched only {} times",
            sent.tag,
            stream_switches.len()
        );
        bytes_compared += output.len();
    }
    let tokens = tokens.lock().unwrap();
    let everything = [merged.clone(), proxied.concat()].concat();
    let hex_run = regex::bytes::Regex::new("[0-9a-f]{8,}").unwrap();
    assert!(
        !hex_run.is_match(&everything),
        "a run of 8 hex digits was written"
    );
    for log in [&merge_log, &proxy_log] {
        for token in tokens.iter() {
            assert!(!log.contains(&token[4..]), "a token reached the log");
        }
    }
    eprintln!(
        "reload under load: {RELOADS} reloads and {refused} refused per process, {} streams, {switches_seen} switches logged, {} tokens, {bytes_compared} bytes compared, {lost} lines lost, {repeated} repeated",
        sent.len(),
        tokens.len()
    );
    assert_eq!((lost, repeated), (0, 0));
}

/// Without a configured key, fingerprints come from a random key drawn at
/// start: a reload keeps it, so that the same token keeps its fingerprint.
#[test]
fn a_reload_keeps_the_random_fingerprint_key() {
    let dir = scratch("random-key");
    let config = dir.join("logredact.yaml");
    std::fs::write(&config, RULES_A).unwrap();
    let audit = dir.join("audit.jsonl");
    let mut run = Running::start(
        binary()
            .args(["--config", config.to_str().unwrap(), "--log-format", "json"])
            .args(["--audit", audit.to_str().unwrap()])
            .env_remove("LOGREDACT_FINGERPRINT_KEY"),
        std::process::Stdio::piped(),
    );
    wait_for_signal_handler(&run.child, libc::SIGHUP);
    let token = TokenGen::new(7).token();
    let line = format!("token={token}\n");
    run.write(line.as_bytes());
    run.expect_output(b"token=dapi****\n", WAIT, "masked before the reload");
    replace_file(&config, RULES_B);
    signal(&run.child, "HUP");
    wait_for_reloads(&run, 1, 0);
    run.write(b"a line longer than the longest match of the new rules\n");
    run.write(line.as_bytes());
    let (status, _, stderr) = run.finish();
    assert!(status.success(), "{status}\n{stderr}");
    assert_eq!(switches(&stderr)["stdin"].len(), 1, "{stderr}");
    let fingerprints: Vec<String> = read(&audit)
        .lines()
        .map(|line| {
            let record: Value = serde_json::from_str(line).unwrap();
            record["fingerprint"].as_str().unwrap().to_string()
        })
        .collect();
    assert_eq!(fingerprints.len(), 2, "{fingerprints:?}");
    assert_eq!(fingerprints[0], fingerprints[1]);
}
