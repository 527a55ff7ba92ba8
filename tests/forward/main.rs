//! The Fluent forward hop on real sockets: logredact between senders and a
//! receiver that are not logredact's code (`peers`: the PyPI `msgpack`
//! library and Fluentd's `fluent-logger` client). Every mode, times and
//! nesting, bad input on one connection while another goes on,
//! acknowledgements only after delivery, and restarts of each of the three
//! with nothing lost.

#[path = "../common/mod.rs"]
mod common;
mod peers;

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use common::*;
use peers::*;

/// logredact between a forward input on a port of its own and the receiver
/// on `next_hop`, its admin endpoint on a third port: (process, input port,
/// admin port). `ports` gives the two ports to reuse them after a restart.
fn hop(next_hop: u16, ports: Option<(u16, u16)>) -> (Running, u16, u16) {
    hop_with(next_hop, ports, &[])
}

/// [`hop`] with more arguments.
fn hop_with(next_hop: u16, ports: Option<(u16, u16)>, extra: &[&str]) -> (Running, u16, u16) {
    let (port, admin) = ports.unwrap_or_else(|| (free_port(), free_port()));
    let (input, output, admin_address) = (
        format!("forward://127.0.0.1:{port}"),
        format!("forward://127.0.0.1:{next_hop}"),
        format!("127.0.0.1:{admin}"),
    );
    let mut args = vec![
        "--input",
        &input,
        "--output",
        &output,
        "--admin",
        &admin_address,
    ];
    args.extend_from_slice(extra);
    // The most verbose log: the tests look for raw tokens in it.
    let mut run = Running::start(
        binary().args(&args).env("LOGREDACT_LOG", "trace"),
        std::process::Stdio::piped(),
    );
    run.wait_until_ready(admin);
    (run, port, admin)
}

/// Every string in `value` (map keys, and `bin` payloads too) redacted by
/// the reference.
fn redacted(value: &Value) -> Value {
    let text = |s: &str| String::from_utf8(reference_redaction(s.as_bytes())).unwrap();
    match value {
        Value::String(s) => Value::String(text(s)),
        Value::Array(items) => Value::Array(items.iter().map(redacted).collect()),
        Value::Object(map) if map.len() == 1 && map.contains_key("bin") => {
            let bytes = hex_decode(map["bin"].as_str().unwrap());
            json!({"bin": hex_encode(&reference_redaction(&bytes))})
        }
        Value::Object(map) if map.contains_key("ext") => value.clone(),
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(key, item)| {
                    let key = match key.strip_prefix("bin:") {
                        Some(hex) => {
                            format!("bin:{}", hex_encode(&reference_redaction(&hex_decode(hex))))
                        }
                        None => text(key),
                    };
                    (key, redacted(item))
                })
                .collect(),
        ),
        other => other.clone(),
    }
}

fn hex_encode(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn hex_decode(hex: &str) -> Vec<u8> {
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
        .collect()
}

/// An `EventTime` (ext type 0): seconds and nanoseconds.
fn event_time(secs: u32, nanos: u32) -> Value {
    let mut data = secs.to_be_bytes().to_vec();
    data.extend_from_slice(&nanos.to_be_bytes());
    json!({"ext": 0, "data": hex_encode(&data)})
}

/// Entries with tokens everywhere a record can hold a string: values, map
/// keys, nested arrays and maps, binary payloads, Fluent Bit's metadata;
/// with EventTime and integer times.
fn entries(tokens: &mut TokenGen) -> Vec<Value> {
    let near_miss = format!("dapi{}", tokens.hex(31));
    vec![
        json!([event_time(1_700_000_000, 123_456_789), {
            "log": format!("Authorization: Bearer {}", tokens.token()),
            "nested": {
                tokens.token(): [1, format!("x {}", tokens.token()), {"bin": hex_encode(format!("token={}", tokens.token()).as_bytes())}],
                "deep": [[{"k": tokens.token()}]],
            },
            "near": near_miss,
        }]),
        json!([1_700_000_001u64, {"msg": "nothing secret", "n": -5, "f": 1.5, "ok": true, "none": null}]),
        json!([[event_time(1_700_000_002, 7), {"meta": tokens.token()}], {"log": tokens.token()}]),
    ]
}

fn write_json(dir: &Path, name: &str, value: &Value) -> String {
    let path = dir.join(name);
    std::fs::write(&path, serde_json::to_vec(value).unwrap()).unwrap();
    path.to_str().unwrap().to_string()
}

/// Fails if any of the test's tokens is in `bytes`.
fn assert_no_raw_token(bytes: &[u8], what: &str) {
    assert!(
        !token_regex().is_match(bytes),
        "{what}: a raw token went through"
    );
}

#[test]
fn every_mode_arrives_redacted_with_times_and_structure_unchanged() {
    let dir = scratch("every_mode");
    let out = dir.join("received.jsonl");
    let next_hop = free_port();
    let _receiver = receiver(next_hop, &out, &[]);
    let (run, port, _) = hop(next_hop, None);
    let mut tokens = TokenGen::new(1);
    let mut expected = Vec::new();
    for mode in ["message", "forward", "packed", "compressed"] {
        let mut entries = entries(&mut tokens);
        if mode == "message" {
            // [tag, [time, metadata], record] would be Forward mode: Fluent
            // Bit sends metadata in Forward mode only.
            entries.pop();
        }
        let tag = format!("app.{}", tokens.token());
        // Message mode carries one entry per message.
        let messages: Vec<Value> = match mode {
            "message" => entries
                .iter()
                .enumerate()
                .map(|(i, e)| json!({"tag": tag, "entries": [e], "chunk": format!("{mode}-{i}")}))
                .collect(),
            _ => vec![json!({"tag": tag, "entries": entries, "chunk": format!("{mode}-0")})],
        };
        let file = write_json(&dir, &format!("{mode}.json"), &json!(messages));
        let acks = send(&[
            "send",
            "--port",
            &port.to_string(),
            "--mode",
            mode,
            "--messages",
            &file,
        ]);
        let chunks: Vec<Value> = messages
            .iter()
            .map(|m| json!({"ack": m["chunk"]}))
            .collect();
        assert_eq!(acks, chunks, "{mode}: each chunk acknowledged once");
        for entry in &entries {
            expected.push(
                json!({"tag": redacted(&json!(tag)), "mode": mode, "entry": redacted(entry)}),
            );
        }
    }
    let got = wait_for_entries(&out, expected.len(), Duration::from_secs(20));
    assert_eq!(got, expected);
    assert_no_raw_token(&std::fs::read(&out).unwrap(), "the receiver");
    let (status, _, stderr) = run.terminate();
    assert!(status.success(), "{stderr}");
    assert_no_raw_token(stderr.as_bytes(), "logredact's log");
}

#[test]
fn fluent_logger_records_arrive_redacted_with_their_event_time() {
    let dir = scratch("fluent_logger");
    let out = dir.join("received.jsonl");
    let next_hop = free_port();
    let _receiver = receiver(next_hop, &out, &[]);
    let (run, port, admin) = hop(next_hop, None);
    let mut tokens = TokenGen::new(2);
    let records: Vec<Value> = (0..20)
        .map(|i| json!({"i": i, "message": format!("databricks token {} used", tokens.token()), tokens.token(): "as a key"}))
        .collect();
    let file = write_json(&dir, "records.json", &json!(records));
    let sent = send(&[
        "logger",
        "--port",
        &port.to_string(),
        "--tag",
        "app.logger",
        "--messages",
        &file,
    ]);
    assert_eq!(sent, [json!({"sent": true})]);
    let got = wait_for_entries(&out, records.len(), Duration::from_secs(20));
    assert_eq!(got.len(), records.len());
    for (line, record) in got.iter().zip(&records) {
        assert_eq!(line["tag"], "app.logger.log");
        assert_eq!(line["mode"], "message", "fluent-logger sends Message mode");
        assert_eq!(
            line["entry"][0]["ext"], 0,
            "nanosecond_precision sends EventTime"
        );
        assert_eq!(line["entry"][1], redacted(record));
    }
    assert_no_raw_token(&std::fs::read(&out).unwrap(), "the receiver");
    // Detections are counted: two per record.
    wait_for_metric(
        admin,
        "logredact_detections_total{rule=\"databricks-pat\",confidence=\"high\"} 40",
    );
    let (status, _, stderr) = run.terminate();
    assert!(status.success(), "{stderr}");
}

/// Malformed msgpack, an unknown mode, an oversize message and a gzip bomb
/// each close only their own connection, logged and counted, while a
/// sender on another connection goes on to the end.
#[test]
fn bad_input_closes_only_its_connection() {
    let dir = scratch("bad_input");
    let out = dir.join("received.jsonl");
    let next_hop = free_port();
    let _receiver = receiver(next_hop, &out, &[]);
    let (run, port, admin) = hop(next_hop, None);
    let port_arg = port.to_string();
    let mut tokens = TokenGen::new(3);
    let token_list: Vec<String> = (0..10).map(|_| tokens.token()).collect();
    let token_file = write_json(&dir, "tokens.json", &json!(token_list));
    let state = dir.join("sender.state");
    let mut good = Running::start(
        &mut peer(&[
            "reliable",
            "--port",
            &port_arg,
            "--messages",
            &token_file,
            "--state",
            state.to_str().unwrap(),
            "--count",
            "60",
            "--entries",
            "2",
            "--pace",
            "0.03",
        ]),
        std::process::Stdio::null(),
    );
    let cases: [(&str, &[&str], &str); 4] = [
        ("malformed", &["--raw", "92a3617070c1"], "not msgpack"),
        (
            "unknown mode",
            &["--raw", "92a361707080"],
            "unknown forward mode",
        ),
        (
            "oversize",
            &["--oversize", "17"],
            "a message longer than 16777216 bytes",
        ),
        (
            "gzip bomb",
            &["--bomb", "100"],
            "the compressed entries decompress to more than 67108864 bytes",
        ),
    ];
    for (case, args, reason) in cases {
        let mut command = vec!["send", "--port", &port_arg, "--linger"];
        command.extend_from_slice(args);
        let replies = send(&command);
        assert_eq!(
            replies.last().map(|r| &r["closed"]),
            Some(&json!(true)),
            "{case}: the connection is closed: {replies:?}"
        );
        assert!(
            !replies.iter().any(|r| r.get("ack").is_some()),
            "{case}: nothing acknowledged"
        );
        let until = Instant::now() + Duration::from_secs(10);
        while !run.errors().contains(reason) {
            assert!(
                Instant::now() < until,
                "{case}: no log line saying '{reason}':\n{}",
                run.errors()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    wait_for_metric(admin, "logredact_errors_total{kind=\"protocol\"} 4");
    // The good sender's 60 messages of 2 records, each acknowledged.
    wait_for_metric(admin, "logredact_forward_records_total 120");
    wait_for_metric(admin, "logredact_forward_acks_total 60");
    let done = good.read_for(Duration::from_secs(60));
    assert_eq!(
        String::from_utf8_lossy(done),
        "pending 60\ndone\n",
        "the good sender went on to the end"
    );
    let got = wait_for_entries(&out, 120, Duration::from_secs(10));
    let ids: std::collections::BTreeSet<&str> = got
        .iter()
        .map(|line| line["entry"][1]["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids.len(), 120, "every entry of the good sender arrived");
    assert_no_raw_token(&std::fs::read(&out).unwrap(), "the receiver");
    let (status, _, stderr) = run.terminate();
    assert!(status.success(), "{stderr}");
    assert_no_raw_token(stderr.as_bytes(), "logredact's log");
}

/// A chunk is acknowledged to its sender only once the next hop has
/// acknowledged it: while the receiver holds its acknowledgement back, the
/// sender hears nothing, though the record has arrived.
#[test]
fn a_chunk_is_acknowledged_only_after_the_next_hop_acknowledged_it() {
    let dir = scratch("ack_after_delivery");
    let out = dir.join("received.jsonl");
    let release = dir.join("release-acks");
    let next_hop = free_port();
    let _receiver = receiver(next_hop, &out, &["--hold-acks", release.to_str().unwrap()]);
    let (run, port, _) = hop(next_hop, None);
    let mut tokens = TokenGen::new(4);
    let messages = json!([{"tag": "app", "entries": [[1_700_000_000u64, {"log": tokens.token()}]], "chunk": "held"}]);
    let file = write_json(&dir, "held.json", &messages);
    let mut sender = Running::start(
        &mut peer(&["send", "--port", &port.to_string(), "--messages", &file]),
        std::process::Stdio::null(),
    );
    assert_eq!(wait_for_entries(&out, 1, Duration::from_secs(10)).len(), 1);
    let early = sender.read_for(Duration::from_millis(1500)).to_vec();
    assert!(
        early.is_empty(),
        "acknowledged before the next hop did: {}",
        String::from_utf8_lossy(&early)
    );
    std::fs::write(&release, b"").unwrap();
    let ack = sender.read_at_least(b"{\"ack\": \"held\"}\n".len(), Duration::from_secs(10));
    assert_eq!(String::from_utf8_lossy(ack), "{\"ack\": \"held\"}\n");
    let (status, _, stderr) = run.terminate();
    assert!(status.success(), "{stderr}");
}

/// Who restarts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Peer {
    Sender,
    Logredact,
    Receiver,
}

/// A restart: once the receiver holds `after` entries, `who` is stopped
/// (SIGKILL, or SIGTERM when `gently`: logredact only) and started again.
#[derive(Debug, Clone, Copy)]
struct Restart {
    after: usize,
    who: Peer,
    gently: bool,
}

/// What a run with restarts delivered.
#[derive(Debug)]
struct Delivery {
    sent: usize,
    received: usize,
    lost: usize,
    duplicates: usize,
}

/// An at-least-once sender sends `count` messages of 4 entries through
/// logredact to the receiver while `restarts` happen; then every entry is
/// looked for, and no raw token may have arrived.
fn run_with_restarts(name: &str, count: usize, restarts: &[Restart]) -> Delivery {
    let dir = scratch(name);
    let out = dir.join("received.jsonl");
    let next_hop = free_port();
    let mut receiver_run = receiver(next_hop, &out, &[]);
    let (mut hop_run, port, admin) = hop(next_hop, None);
    let mut tokens = TokenGen::new(5);
    let token_list: Vec<String> = (0..50).map(|_| tokens.token()).collect();
    let token_file = write_json(&dir, "tokens.json", &json!(token_list));
    let state = dir.join("sender.state");
    let per_message = 4usize;
    let total = count * per_message;
    let port_arg = port.to_string();
    let (count_arg, entries_arg) = (count.to_string(), per_message.to_string());
    let sender_args = [
        "reliable",
        "--port",
        &port_arg,
        "--messages",
        &token_file,
        "--state",
        state.to_str().unwrap(),
        "--count",
        &count_arg,
        "--entries",
        &entries_arg,
        "--pace",
        "0.005",
    ];
    let start_sender = || Running::start(&mut peer(&sender_args), std::process::Stdio::null());
    let stop = |run: &mut Running, gently: bool| {
        if gently {
            signal(&run.child, "TERM");
            wait_with_deadline(&mut run.child, Duration::from_secs(30));
        } else {
            run.child.kill().unwrap();
            run.child.wait().unwrap();
        }
    };
    let mut sender = start_sender();
    let mut logs = String::new();
    for restart in restarts {
        wait_for_entries(&out, restart.after, Duration::from_secs(60));
        match restart.who {
            Peer::Sender => {
                stop(&mut sender, false);
                sender = start_sender();
            }
            Peer::Logredact => {
                stop(&mut hop_run, restart.gently);
                logs.push_str(&hop_run.errors());
                hop_run = hop(next_hop, Some((port, admin))).0;
            }
            Peer::Receiver => {
                stop(&mut receiver_run, false);
                receiver_run = receiver(next_hop, &out, &[]);
            }
        }
    }
    // The sender exits once every chunk is acknowledged.
    let done = sender.read_for(Duration::from_secs(120));
    assert!(
        String::from_utf8_lossy(done).ends_with("done\n"),
        "the sender did not finish: {}\nthe receiver's errors: {}\nlogredact's log: {}",
        String::from_utf8_lossy(done),
        receiver_run.errors(),
        hop_run.errors()
    );
    let lines = received(&out);
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    for line in &lines {
        let record = &line["entry"][1];
        *seen
            .entry(record["id"].as_str().unwrap().to_string())
            .or_default() += 1;
        assert!(record["log"].as_str().unwrap().ends_with("Bearer dapi****"));
    }
    let lost = (0..count)
        .flat_map(|n| (0..per_message).map(move |e| format!("{n:05}-{e:03}")))
        .filter(|id| !seen.contains_key(id))
        .count();
    assert_no_raw_token(&std::fs::read(&out).unwrap(), "the receiver");
    let (status, _, stderr) = hop_run.terminate();
    assert!(status.success(), "{stderr}");
    logs.push_str(&stderr);
    assert_no_raw_token(logs.as_bytes(), "logredact's log");
    drop(receiver_run);
    let delivery = Delivery {
        sent: total,
        received: lines.len(),
        lost,
        duplicates: lines.len() - seen.len(),
    };
    // What is sent again after a restart is what was in flight: the
    // sender's 8 messages and, per connection, logredact's window of 16.
    let in_flight = (8 + 16) * per_message;
    assert!(
        delivery.duplicates <= restarts.len() * in_flight,
        "more duplicates than restarts can explain: {delivery:?}"
    );
    assert_eq!(
        delivery.received,
        delivery.sent - delivery.lost + delivery.duplicates
    );
    delivery
}

/// The sender, logredact and the receiver each restart (SIGKILL) while an
/// at-least-once sender sends: every entry arrives, no raw token does, and
/// the duplicates that at-least-once delivery brings are counted.
#[test]
fn restarts_of_sender_logredact_and_receiver_lose_nothing() {
    let total = 300 * 4;
    let restarts = [
        (total / 5, Peer::Sender),
        (2 * total / 5, Peer::Logredact),
        (3 * total / 5, Peer::Receiver),
    ]
    .map(|(after, who)| Restart {
        after,
        who,
        gently: false,
    });
    let delivery = run_with_restarts("restarts", 300, &restarts);
    eprintln!("restarts: sender, logredact, receiver (SIGKILL); {delivery:?}");
    assert_eq!(delivery.lost, 0, "entries lost");
}

/// A randomised model of the same: restarts of random peers (logredact by
/// SIGKILL or SIGTERM) at random points, against one oracle (every entry
/// arrives, no raw token). The seed is printed; `FORWARD_MODEL_SEED` replays
/// one.
#[test]
fn random_restarts_lose_nothing() {
    let seed = std::env::var("FORWARD_MODEL_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
        });
    for round in 0..2u64 {
        let mut random = TokenGen::new(seed.wrapping_add(round));
        let count = 200usize;
        let total = count * 4;
        let mut points: Vec<usize> = (0..5)
            .map(|_| total / 10 + (random.next_u64() % (total as u64 * 7 / 10)) as usize)
            .collect();
        points.sort_unstable();
        let restarts: Vec<Restart> = points
            .into_iter()
            .map(|after| {
                let who = [Peer::Sender, Peer::Logredact, Peer::Receiver]
                    [(random.next_u64() % 3) as usize];
                // The peers are always killed; logredact also stopped by SIGTERM.
                let gently = who == Peer::Logredact && random.next_u64() % 2 == 0;
                Restart { after, who, gently }
            })
            .collect();
        eprintln!("FORWARD_MODEL_SEED={seed} round {round}: {restarts:?}");
        let delivery = run_with_restarts(&format!("random_restarts_{round}"), count, &restarts);
        eprintln!("round {round}: {delivery:?}");
        assert_eq!(
            delivery.lost, 0,
            "entries lost (FORWARD_MODEL_SEED={seed}, round {round})"
        );
    }
}

/// A forward input without a forward output, or the other way round, is
/// refused before anything is read.
#[test]
fn a_forward_output_takes_forward_inputs_only() {
    let output = binary()
        .args(["--input", "-", "--output", "forward://127.0.0.1:1"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2), "{}", transcript(&output));
    assert_eq!(
        String::from_utf8_lossy(&output.stderr),
        "logredact: built-in default configuration: a forward:// output takes records from forward:// inputs only: every input must be forward://HOST:PORT or forward+tls://HOST:PORT\n",
        "{}",
        transcript(&output)
    );
}

/// The JSON text of a value as the peers describe it (an `EventTime` as
/// seconds with nine decimals; `bin` and map keys as strings), the way
/// logredact writes records as lines.
fn line_json(value: &Value) -> String {
    let string = |bytes: &[u8]| serde_json::to_string(&String::from_utf8_lossy(bytes)).unwrap();
    match value {
        Value::Object(map) if map.len() == 1 && map.contains_key("bin") => {
            string(&hex_decode(map["bin"].as_str().unwrap()))
        }
        Value::Object(map) if map.contains_key("ext") => {
            let data = hex_decode(map["data"].as_str().unwrap());
            let secs = u32::from_be_bytes(data[..4].try_into().unwrap());
            let nanos = u32::from_be_bytes(data[4..].try_into().unwrap());
            format!("{secs}.{nanos:09}")
        }
        Value::Object(map) => {
            let fields: Vec<String> = map
                .iter()
                .map(|(key, item)| {
                    let key = match key.strip_prefix("bin:") {
                        Some(hex) => string(&hex_decode(hex)),
                        None => serde_json::to_string(key).unwrap(),
                    };
                    format!("{key}:{}", line_json(item))
                })
                .collect();
            format!("{{{}}}", fields.join(","))
        }
        Value::Array(items) => {
            let items: Vec<String> = items.iter().map(line_json).collect();
            format!("[{}]", items.join(","))
        }
        other => other.to_string(),
    }
}

/// With an output that is not a forward hop, each record of every mode is
/// a line of JSON, `[tag, time, record]`, redacted; a chunk is acknowledged
/// once its lines are written.
#[test]
fn records_become_json_lines_on_another_output() {
    let dir = scratch("lines");
    let out = dir.join("out.log");
    let audit = dir.join("audit.jsonl");
    let (port, admin) = (free_port(), free_port());
    let mut run = Running::start(
        binary()
            .args(["--input", &format!("forward://127.0.0.1:{port}")])
            .args(["--output", &format!("file:{}", out.display())])
            .args(["--audit", audit.to_str().unwrap()])
            .args(["--admin", &format!("127.0.0.1:{admin}")])
            .env("LOGREDACT_LOG", "trace"),
        std::process::Stdio::piped(),
    );
    run.wait_until_ready(admin);
    let mut tokens = TokenGen::new(7);
    let mut expected = String::new();
    let mut detections = 0;
    for mode in ["message", "forward", "packed", "compressed"] {
        let mut entries = entries(&mut tokens);
        if mode == "message" {
            entries.pop();
        }
        let tag = format!("app.{}", tokens.token());
        let messages: Vec<Value> = match mode {
            "message" => entries
                .iter()
                .enumerate()
                .map(|(i, e)| json!({"tag": tag, "entries": [e], "chunk": format!("{mode}-{i}")}))
                .collect(),
            _ => vec![json!({"tag": tag, "entries": entries, "chunk": format!("{mode}-0")})],
        };
        let file = write_json(&dir, &format!("{mode}.json"), &json!(messages));
        let acks = send(&[
            "send",
            "--port",
            &port.to_string(),
            "--mode",
            mode,
            "--messages",
            &file,
        ]);
        let chunks: Vec<Value> = messages
            .iter()
            .map(|m| json!({"ack": m["chunk"]}))
            .collect();
        assert_eq!(acks, chunks, "{mode}: each chunk acknowledged once");
        detections += count_tokens(&json!(messages));
        for entry in &entries {
            let mut line = vec![redacted(&json!(tag))];
            line.extend(redacted(entry).as_array().unwrap().iter().cloned());
            expected.push_str(&line_json(&Value::Array(line)));
            expected.push('\n');
        }
    }
    // Acknowledged, so written: no wait.
    let written = std::fs::read_to_string(&out).unwrap();
    assert_eq!(written, expected);
    assert!(written.contains("1700000000.123456789"));
    for line in written.lines() {
        serde_json::from_str::<Value>(line).unwrap_or_else(|e| panic!("{e}: not JSON"));
    }
    let (status, _, stderr) = run.terminate();
    assert!(status.success(), "{stderr}");
    assert_no_raw_token(stderr.as_bytes(), "logredact's log");
    // One audit record per token, its stream the peer and the tag as
    // redacted.
    let records = std::fs::read_to_string(&audit).unwrap();
    assert_eq!(records.lines().count(), detections);
    for record in records.lines() {
        let record: Value = serde_json::from_str(record).unwrap();
        let stream = record["stream"].as_str().unwrap();
        let (peer, tag) = stream.rsplit_once('/').unwrap();
        assert!(peer.starts_with("forward:127.0.0.1:"), "{stream}");
        assert_eq!(tag, "app.dapi****");
    }
}

/// The tokens in every string of `value` (map keys, and `bin` payloads
/// decoded), as the peers describe messages.
fn count_tokens(value: &Value) -> usize {
    let in_bytes = |bytes: &[u8]| token_regex().find_iter(bytes).count();
    match value {
        Value::String(s) => in_bytes(s.as_bytes()),
        Value::Array(items) => items.iter().map(count_tokens).sum(),
        Value::Object(map) if map.len() == 1 && map.contains_key("bin") => {
            in_bytes(&hex_decode(map["bin"].as_str().unwrap()))
        }
        Value::Object(map) if map.contains_key("ext") => 0,
        Value::Object(map) => map
            .iter()
            .map(|(key, item)| {
                let key = match key.strip_prefix("bin:") {
                    Some(hex) => in_bytes(&hex_decode(hex)),
                    None => in_bytes(key.as_bytes()),
                };
                key + count_tokens(item)
            })
            .sum(),
        _ => 0,
    }
}

/// A chunk whose lines cannot be written yet (the TCP collector is down) is
/// not acknowledged; once the collector is up the lines arrive, and the next
/// chunk is acknowledged.
#[test]
fn lines_not_yet_written_are_not_acknowledged() {
    let dir = scratch("lines_unwritten");
    let (port, admin, collector_port) = (free_port(), free_port(), free_port());
    let mut run = Running::start(
        binary()
            .args(["--input", &format!("forward://127.0.0.1:{port}")])
            .args(["--output", &format!("tcp://127.0.0.1:{collector_port}")])
            .args(["--admin", &format!("127.0.0.1:{admin}")]),
        std::process::Stdio::piped(),
    );
    run.wait_for_port(port);
    let mut tokens = TokenGen::new(8);
    let message = |tokens: &mut TokenGen, chunk: &str| json!([{"tag": "app", "entries": [[1_700_000_000u64, {"log": tokens.token()}]], "chunk": chunk}]);
    let first = write_json(&dir, "first.json", &message(&mut tokens, "first"));
    let acks = send(&[
        "send",
        "--port",
        &port.to_string(),
        "--messages",
        &first,
        "--ack-timeout",
        "2",
    ]);
    assert_eq!(
        acks,
        vec![json!({"timeout": true})],
        "no acknowledgement while undelivered"
    );
    let collector = Collector::start(collector_port);
    let second = write_json(&dir, "second.json", &message(&mut tokens, "second"));
    let acks = send(&["send", "--port", &port.to_string(), "--messages", &second]);
    assert_eq!(acks, vec![json!({"ack": "second"})]);
    let lines = collector.wait_for_total(
        2 * "[\"app\",1700000000,{\"log\":\"dapi****\"}]\n".len(),
        Duration::from_secs(10),
    );
    let all = lines.concat();
    assert_eq!(
        String::from_utf8(all).unwrap(),
        "[\"app\",1700000000,{\"log\":\"dapi****\"}]\n".repeat(2)
    );
    let (status, _, stderr) = run.terminate();
    assert!(status.success(), "{stderr}");
}

/// With `forward.input`, a sender must prove the shared key and its user
/// (HELO, PING, PONG); with `forward.output`, logredact proves its own to the
/// next hop. A sender that fails, or skips the handshake, is refused,
/// closed and counted; no key or password is ever logged.
#[test]
fn the_handshake_checks_senders_and_proves_logredact_to_the_next_hop() {
    let dir = scratch("handshake");
    let out = dir.join("received.jsonl");
    let next_hop = free_port();
    let _receiver = receiver(
        next_hop,
        &out,
        &[
            "--shared-key",
            "next hop key",
            "--users",
            "logredact:hop pw",
        ],
    );
    let config = dir.join("logredact.yaml");
    std::fs::write(
        &config,
        "forward:\n  input: { shared_key: 'sender key', self_hostname: logredact, users: [{ username: fluent, password: 'fluent pw' }] }\n  output: { shared_key: 'next hop key', username: logredact, password: 'hop pw' }\n",
    )
    .unwrap();
    let (run, port, admin) = hop_with(next_hop, None, &["--config", config.to_str().unwrap()]);
    let port_arg = port.to_string();
    let mut tokens = TokenGen::new(6);
    let record = json!({"log": format!("bearer {}", tokens.token())});
    let messages =
        json!([{"tag": "app", "entries": [[1_700_000_000u64, record]], "chunk": "shaken"}]);
    let file = write_json(&dir, "messages.json", &messages);
    let send_with = |key: &str, user: &str| {
        send(&[
            "send",
            "--port",
            &port_arg,
            "--messages",
            &file,
            "--shared-key",
            key,
            "--user",
            user,
        ])
    };
    assert_eq!(
        send_with("sender key", "fluent:fluent pw"),
        [
            json!({"pong": true, "reason": ""}),
            json!({"ack": "shaken"})
        ]
    );
    let got = wait_for_entries(&out, 1, Duration::from_secs(10));
    assert_eq!(got[0]["entry"][1], redacted(&record));
    for (key, user, reason) in [
        ("wrong key", "fluent:fluent pw", "shared key mismatch"),
        ("sender key", "fluent:wrong", "username/password mismatch"),
    ] {
        assert_eq!(
            send_with(key, user),
            [
                json!({"pong": false, "reason": reason}),
                json!({"closed": true})
            ],
            "{reason}"
        );
    }
    // A sender that sends events without the handshake.
    // ["app", 1, {}] in Message mode.
    let replies = send(&[
        "send",
        "--port",
        &port_arg,
        "--raw",
        "93a3617070cd000180",
        "--linger",
    ]);
    assert_eq!(
        replies.last(),
        Some(&json!({"closed": true})),
        "{replies:?}"
    );
    wait_for_metric(admin, "logredact_errors_total{kind=\"protocol\"} 3");
    assert_eq!(received(&out).len(), 1, "nothing else went through");
    let (status, _, stderr) = run.terminate();
    assert!(status.success(), "{stderr}");
    for secret in ["sender key", "fluent pw", "next hop key", "hop pw"] {
        assert!(!stderr.contains(secret), "the log shows a secret: {stderr}");
    }
    assert!(stderr.contains("shared key mismatch"), "{stderr}");
}

/// A next hop whose shared key logredact does not have gets nothing, and
/// logredact says why.
#[test]
fn a_next_hop_with_another_key_gets_nothing() {
    let dir = scratch("handshake_out");
    let out = dir.join("received.jsonl");
    let next_hop = free_port();
    let _receiver = receiver(next_hop, &out, &["--shared-key", "the right key"]);
    let config = dir.join("logredact.yaml");
    std::fs::write(
        &config,
        "forward: { output: { shared_key: 'a wrong key' } }\n",
    )
    .unwrap();
    let (mut run, port, _) = hop_with(next_hop, None, &["--config", config.to_str().unwrap()]);
    let messages =
        json!([{"tag": "app", "entries": [[1_700_000_000u64, {"log": "x"}]], "chunk": "c"}]);
    let file = write_json(&dir, "messages.json", &messages);
    let replies = send(&[
        "send",
        "--port",
        &port.to_string(),
        "--messages",
        &file,
        "--ack-timeout",
        "2",
    ]);
    assert_eq!(replies, [json!({"timeout": true})], "not acknowledged");
    assert!(received(&out).is_empty());
    let until = Instant::now() + Duration::from_secs(10);
    while !run
        .errors()
        .contains("the next hop refused the handshake: shared key mismatch")
    {
        assert!(Instant::now() < until, "{}", run.errors());
        std::thread::sleep(Duration::from_millis(20));
    }
    run.read_for(Duration::from_millis(10));
}

/// At SIGTERM, a chunk the next hop has not acknowledged by the end of the
/// grace period is not acknowledged to its sender (it sends it again to the
/// next logredact), and logredact exits 0: nothing its sender takes for
/// delivered was lost.
#[test]
fn unacknowledged_chunks_at_shutdown_are_not_acknowledged() {
    let dir = scratch("shutdown");
    let out = dir.join("received.jsonl");
    let never = dir.join("never");
    let next_hop = free_port();
    let _receiver = receiver(next_hop, &out, &["--hold-acks", never.to_str().unwrap()]);
    let (mut run, port, _) = hop_with(next_hop, None, &["--shutdown-grace", "1"]);
    let messages =
        json!([{"tag": "app", "entries": [[1_700_000_000u64, {"log": "x"}]], "chunk": "late"}]);
    let file = write_json(&dir, "late.json", &messages);
    let mut sender = Running::start(
        &mut peer(&["send", "--port", &port.to_string(), "--messages", &file]),
        std::process::Stdio::null(),
    );
    assert_eq!(wait_for_entries(&out, 1, Duration::from_secs(10)).len(), 1);
    let started = Instant::now();
    signal(&run.child, "TERM");
    let status = wait_with_deadline(&mut run.child, Duration::from_secs(15));
    assert!(status.success(), "{}", run.errors());
    assert!(started.elapsed() < Duration::from_secs(10));
    let replies = sender.read_for(Duration::from_secs(10)).to_vec();
    assert_eq!(
        String::from_utf8_lossy(&replies),
        "{\"closed\": true}\n",
        "closed without an acknowledgement"
    );
    assert!(
        run.errors()
            .contains("messages not delivered to the next hop; not acknowledged to their sender"),
        "{}",
        run.errors()
    );
}

/// Fluentd's `fluent-logger` for Node.js, with `requireAckResponse`, in each
/// of its event modes and once through the shared-key handshake: every emit
/// is acknowledged, and every record arrives redacted under its tag with its
/// `EventTime`.
#[test]
fn the_npm_fluent_logger_requiring_acks_is_acknowledged_and_redacted() {
    let npm = npm_peers();
    let dir = scratch("npm_logger");
    let out = dir.join("received.jsonl");
    let next_hop = free_port();
    let _receiver = receiver(next_hop, &out, &[]);
    let config = dir.join("logredact.yaml");
    std::fs::write(
        &config,
        "forward:\n  input: { shared_key: 'npm key', self_hostname: logredact }\n",
    )
    .unwrap();
    let (plain, plain_port, _) = hop(next_hop, None);
    let (shaken, shaken_port, _) =
        hop_with(next_hop, None, &["--config", config.to_str().unwrap()]);
    let mut tokens = TokenGen::new(9);
    let mut expected = Vec::new();
    let runs = [
        ("Message", plain_port, None),
        ("PackedForward", plain_port, None),
        ("CompressedPackedForward", plain_port, None),
        ("PackedForward", shaken_port, Some("npm key")),
    ];
    for (run, (mode, port, key)) in runs.into_iter().enumerate() {
        let records: Vec<Value> = (0..20)
            .map(|i| {
                json!({"label": format!("r{run}"), "data": {
                    "log": format!("Authorization: Bearer {} #{i}", tokens.token()),
                    "nested": {"k": [tokens.token()]},
                }})
            })
            .collect();
        let mut plan = json!({"port": port, "mode": mode, "tag_prefix": "npm", "records": records});
        if let Some(key) = key {
            plan["shared_key"] = json!(key);
        }
        let file = write_json(&dir, &format!("plan{run}.json"), &plan);
        let output = std::process::Command::new("node")
            .arg(repo_path("tests/forward/npm/sender.js"))
            .arg(&file)
            .env("NODE_PATH", npm.join("node_modules"))
            .output()
            .expect("run node");
        assert!(output.status.success(), "{}", transcript(&output));
        let result: Value = serde_json::from_slice(&output.stdout).expect("a JSON line");
        assert_eq!(
            result,
            json!({"acked": 20, "errors": []}),
            "{mode}: {}",
            transcript(&output)
        );
        for record in &records {
            expected.push((format!("npm.r{run}"), redacted(&record["data"])));
        }
    }
    let got = wait_for_entries(&out, expected.len(), Duration::from_secs(20));
    let got: Vec<(String, Value)> = got
        .iter()
        .map(|e| {
            let time = &e["entry"][0];
            assert_eq!(time["ext"], 0, "an EventTime: {time}");
            (
                e["tag"].as_str().unwrap().to_string(),
                e["entry"][1].clone(),
            )
        })
        .collect();
    assert_eq!(got, expected);
    assert_no_raw_token(&std::fs::read(&out).unwrap(), "the receiver");
    for run in [plain, shaken] {
        let (status, _, stderr) = run.terminate();
        assert!(status.success(), "{stderr}");
        assert_no_raw_token(stderr.as_bytes(), "logredact's log");
    }
}

/// `forward+tls://` on both sides, with the protocol's handshake inside TLS:
/// a sender over TLS is read, redacted and acknowledged, and the records go
/// on over TLS to a next hop whose certificate the CA signs; a plaintext
/// sender on the TLS port gets nothing and is counted.
#[test]
fn the_forward_hop_over_tls_on_both_sides() {
    let pki = Pki::get();
    let dir = scratch("forward_tls");
    let out = dir.join("received.jsonl");
    let next_hop = free_port();
    let _receiver = receiver(
        next_hop,
        &out,
        &[
            "--tls-cert",
            &pki.path("server.crt"),
            "--tls-key",
            &pki.path("server.key"),
        ],
    );
    let config = dir.join("logredact.yaml");
    std::fs::write(
        &config,
        format!(
            "tls:\n  server: {{ cert: '{}', key: '{}' }}\n  client: {{ ca: '{}' }}\nforward:\n  input: {{ shared_key: 'tls key', self_hostname: logredact }}\n",
            pki.path("server.crt"),
            pki.path("server.key"),
            pki.path("ca.crt")
        ),
    )
    .unwrap();
    let (port, admin) = (free_port(), free_port());
    let mut run = Running::start(
        binary()
            .args(["--config", config.to_str().unwrap()])
            .args(["--input", &format!("forward+tls://127.0.0.1:{port}")])
            .args(["--output", &format!("forward+tls://localhost:{next_hop}")])
            .args(["--admin", &format!("127.0.0.1:{admin}")])
            .env("LOGREDACT_LOG", "trace"),
        std::process::Stdio::piped(),
    );
    run.wait_until_ready(admin);
    let mut tokens = TokenGen::new(10);
    let entries = entries(&mut tokens);
    let messages = json!([{"tag": "app", "entries": entries, "chunk": "over-tls"}]);
    let file = write_json(&dir, "messages.json", &messages);
    let port_arg = port.to_string();
    let acks = send(&[
        "send",
        "--port",
        &port_arg,
        "--messages",
        &file,
        "--tls-ca",
        &pki.path("ca.crt"),
        "--shared-key",
        "tls key",
    ]);
    assert_eq!(
        acks,
        [
            json!({"pong": true, "reason": ""}),
            json!({"ack": "over-tls"})
        ]
    );
    let got = wait_for_entries(&out, entries.len(), Duration::from_secs(20));
    let got: Vec<Value> = got.iter().map(|e| e["entry"].clone()).collect();
    let expected: Vec<Value> = entries.iter().map(redacted).collect();
    assert_eq!(got, expected);
    // A plaintext sender on the TLS port: its bytes are no TLS handshake.
    let plain = send(&[
        "send",
        "--port",
        &port_arg,
        "--messages",
        &file,
        "--ack-timeout",
        "5",
    ]);
    assert!(
        plain.iter().all(|line| line.get("ack").is_none()),
        "{plain:?}"
    );
    wait_for_counter(admin, "logredact_errors_total{kind=\"tls_handshake\"}", 1);
    assert_eq!(received(&out).len(), entries.len(), "nothing more arrived");
    let (status, _, stderr) = run.terminate();
    assert!(status.success(), "{stderr}");
    assert!(
        stderr.contains(&format!("listening input=forward+tls://127.0.0.1:{port}"))
            && stderr.contains(&format!("output=forward+tls://localhost:{next_hop}")),
        "{stderr}"
    );
    assert_no_raw_token(stderr.as_bytes(), "logredact's log");
    assert_no_raw_token(&std::fs::read(&out).unwrap(), "the receiver");
}

/// A plaintext forward end where TLS settings are set is refused, naming the
/// TLS form to write; a `forward+tls://` end without its settings too.
#[test]
fn forward_tls_settings_go_with_forward_tls_ends() {
    let pki = Pki::get();
    let dir = scratch("forward_tls_settings");
    let config = dir.join("logredact.yaml");
    std::fs::write(
        &config,
        format!("tls:\n  client: {{ ca: '{}' }}\n", pki.path("ca.crt")),
    )
    .unwrap();
    let output = binary()
        .args(["--config", config.to_str().unwrap()])
        .args([
            "--input",
            "forward://127.0.0.1:1",
            "--output",
            "forward://h:2",
        ])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2), "{}", transcript(&output));
    assert_eq!(
        String::from_utf8_lossy(&output.stderr),
        "logredact: --output forward://h:2: is plaintext, but tls.client is set in the configuration file (--config): write forward+tls://h:2 to use TLS, or remove tls.client\n"
    );
    let output = binary()
        .args(["--input", "forward+tls://127.0.0.1:1", "--output", "-"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2), "{}", transcript(&output));
    assert_eq!(
        String::from_utf8_lossy(&output.stderr),
        "logredact: --input forward+tls://127.0.0.1:1: needs tls.server.cert and tls.server.key in the configuration file (--config)\n"
    );
}
