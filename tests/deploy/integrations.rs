//! The integrations under `deploy/`, played locally: logredact is started
//! exactly as each configuration starts it (its command line is read from the
//! file, container paths are mapped to temporary directories) and is spoken
//! to the way the other side speaks:
//!
//! - Fluentd's `exec_filter`: JSON records one per line on stdin, each
//!   redacted line read back before the next record is sent, the way Fluentd
//!   reads it with the configured parser (line by line, then JSON);
//! - Fluent Bit's TCP hop: the `tcp` output's `json_lines` records, split
//!   across TCP segments with pauses, redacted on to a listener standing in
//!   for Fluent Bit's `tcp` input;
//! - Fluent Bit's `exec` input (Oneshot): the configured command run by
//!   `/bin/sh -c` with no standard input, following a file: every appended
//!   line comes out on stdout at once, one record per line;
//! - the Kubernetes shared-volume sidecar: the Deployment's arguments, the
//!   ConfigMap and Secret as projected into the container, an application
//!   that appends and rotates its log (rename, then copy-truncate), the
//!   kubelet's probes, and SIGTERM at the end.
//!
//! `/etc/logredact` is what the Dockerfile's final stage copies there (its
//! COPY lines, laid out from the repository), or for Kubernetes what the
//! manifests project there. Every expected output is computed independently
//! with the `regex` crate. Deadlines are for liveness only.

use std::collections::BTreeSet;
use std::fs::{self, OpenOptions};
use std::io::Write;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use regex::bytes::{Captures, Regex};
use serde_json::{Value, json};

use crate::IMAGE_BINARY;
use crate::common::{
    Collector, Running, TokenGen, append, binary, free_port, reference_redaction, scratch,
};
use crate::dockerfile::lay_out_final_stage;
use crate::fluent::{
    Fluentd, classic_sections, fluent_bit_dir, fluent_bit_size, header_command, plugin, property,
};
use crate::invocation::{args_in_shell, cli_options, includes, option, remap, set_option};
use crate::kubernetes::{base64_decode, file_mode, kubernetes_dir, named, volume};
use crate::yaml;

/// How long to wait for output that should come at once.
const DEADLINE: Duration = Duration::from_secs(15);

/// A root directory holding what the image (or an installation of
/// `config/`) puts under /etc/logredact: the Dockerfile's final stage laid
/// out, without the binary.
fn installed_root(name: &str) -> PathBuf {
    let root = scratch(name).join("root");
    lay_out_final_stage(&root, &|_, _| None);
    assert!(root.join("etc/logredact").is_dir());
    root
}

/// The expected output of a configuration with the JSON-escape pack
/// (`config/rules/json-escaped.yaml`) after the built-in rule: a token right
/// after `\n`, `\t`, `\r`, `\b` or `\f` keeps its escape in front of the
/// mask; after `\uXXXX`, or after a surrogate pair `\uD8xx\uDCxx`, the
/// escape becomes one `\ufffd`.
fn reference_json_redaction(input: &[u8]) -> Vec<u8> {
    let re = Regex::new(concat!(
        r"(?-u)\bdapi[0-9a-f]{32}\b",
        r"|\\([ntrbf])dapi[0-9a-f]{32}\b",
        r"|(?:\\u[dD][89abAB][0-9a-fA-F]{2}\\u[dD][c-fC-F][0-9a-fA-F]{2}|\\u[0-9a-fA-F]{4})",
        r"dapi[0-9a-f]{32}\b",
    ))
    .unwrap();
    re.replace_all(input, |caps: &Captures| -> Vec<u8> {
        if let Some(letter) = caps.get(1) {
            [b"\\".as_slice(), letter.as_bytes(), b"dapi****"].concat()
        } else if caps[0].starts_with(b"\\u") {
            b"\\ufffddapi****".to_vec()
        } else {
            b"dapi****".to_vec()
        }
    })
    .into_owned()
}

/// The same tree with every string emptied: what "the same keys" compares.
fn shape(value: &Value) -> Value {
    match value {
        Value::String(_) => Value::String(String::new()),
        Value::Array(items) => Value::Array(items.iter().map(shape).collect()),
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(key, value)| (key.clone(), shape(value)))
                .collect(),
        ),
        other => other.clone(),
    }
}

/// Every string in a JSON tree.
fn strings(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::String(s) => out.push(s.clone()),
        Value::Array(items) => items.iter().for_each(|v| strings(v, out)),
        Value::Object(map) => map.values().for_each(|v| strings(v, out)),
        _ => {}
    }
}

// ---------------------------------------------------------------------------
// Fluentd: exec_filter

#[test]
fn fluentd_exec_filter_gets_each_json_record_back_redacted_before_the_next() {
    let config = Fluentd::shipped();
    let filter = config.exec_filter();
    // Records go in as JSON lines; the output is read line by line (a parser
    // without parse_io) and then parsed as JSON by a parser filter on the tag.
    assert_eq!(config.value(&format!("{filter}/format"), "@type"), "json");
    assert_eq!(
        config.value(&format!("{filter}/parse"), "@type"),
        "none",
        "the child's output must be read line by line (see the comment in fluent.conf)"
    );
    let message_key = config
        .get(&format!("{filter}/parse"), "message_key")
        .unwrap_or("message");
    let tag = config.value(&filter, "tag");
    let json_step = format!("filter {tag}");
    assert_eq!(config.value(&json_step, "@type"), "parser");
    assert_eq!(config.value(&json_step, "key_name"), message_key);
    assert_eq!(config.value(&format!("{json_step}/parse"), "@type"), "json");

    // The command, as Fluentd runs it (no shell syntax, so no shell).
    let command = config.value(&filter, "command");
    assert!(
        !command.contains(['|', '<', '>', ';', '&', '$', '`', '\'', '"', '*']),
        "a plain command line: {command}"
    );
    let words: Vec<&str> = command.split_whitespace().collect();
    assert_eq!(words[0], IMAGE_BINARY, "{command}");
    let root = installed_root("fluentd");
    let map = [("/etc/logredact/".to_string(), root.join("etc/logredact/"))];
    let args: Vec<String> = words[1..].iter().map(|w| remap(w, &map)).collect();
    let config_file = PathBuf::from(option(&cli_options(&args), "--config"));
    assert!(
        includes(&config_file, "rules/json-escaped.yaml"),
        "JSON in and out: the configuration includes the JSON-escape pack"
    );
    let mut run = Running::spawn(&args.iter().map(String::as_str).collect::<Vec<_>>());

    let mut tokens = TokenGen::new(0xF1E17D);
    let t: Vec<String> = (0..9).map(|_| tokens.token()).collect();
    let near_miss = format!("x{}", tokens.token());
    let records = [
        json!({ "message": format!("GET /api/2.0/jobs/list Authorization: Bearer {}", t[0]) }),
        json!({ "message": format!("key\t{}", t[1]) }),
        json!({ "message": format!("first line\n{}\nlast line", t[2]) }),
        json!({ "message": format!("caf\u{e9} {} caf\u{e9}{}", t[3], t[4]) }),
        json!({ "message": format!("quoted \"{}\" and \\{}", t[5], t[6]) }),
        json!({ "message": format!("return\r{} form feed\u{c}{}", t[7], t[8]) }),
        json!({ "message": format!("near misses stay: {near_miss} dapi0000") }),
        json!({
            "message": format!("nested {}", t[0]),
            "level": "info",
            "kubernetes": { "pod": "app-0", "labels": { "token": t[1], "n": 3 } },
            "list": [t[2], 1, true, null],
        }),
    ];
    let mut expected = Vec::new();
    for record in &records {
        // Fluentd's JSON formatter: one compact object and a newline.
        let line = format!("{record}\n");
        run.write(line.as_bytes());
        let redacted = reference_json_redaction(line.as_bytes());
        expected.extend_from_slice(&redacted);
        // The answer comes before the next record is sent.
        let got = run.read_at_least(expected.len(), DEADLINE).to_vec();
        assert_eq!(
            String::from_utf8_lossy(&got),
            String::from_utf8_lossy(&expected),
            "after {line}"
        );

        // What Fluentd makes of the line: the none parser wraps the chomped
        // line as {message_key: line}, the parser filter parses that field
        // as JSON and the result replaces the record.
        let text = std::str::from_utf8(&redacted)
            .unwrap()
            .trim_end_matches('\n');
        let parsed: Value =
            serde_json::from_str(text).unwrap_or_else(|e| panic!("not valid JSON: {text}: {e}"));
        assert_eq!(shape(&parsed), shape(record), "the same keys: {text}");
        // Every string reads as the raw text redacted: the JSON escapes do
        // not let a token through.
        let (mut before, mut after) = (Vec::new(), Vec::new());
        strings(record, &mut before);
        strings(&parsed, &mut after);
        for (raw, redacted) in before.iter().zip(&after) {
            assert_eq!(
                redacted.as_bytes(),
                reference_redaction(raw.as_bytes()).as_slice(),
                "{raw:?}"
            );
        }
        for token in &t {
            assert!(!after.iter().any(|s| s.contains(token.as_str())), "{text}");
        }
    }
    assert!(String::from_utf8_lossy(&expected).contains(&near_miss));

    // A buffer chunk: Fluentd writes many records at once, and reads the
    // answers as they come.
    let mut chunk = String::new();
    for i in 0..300 {
        let token = tokens.token();
        let message = match i % 3 {
            0 => format!("record {i}: Bearer {token}"),
            1 => format!("record {i}:\t{token}"),
            _ => format!("record {i}: nothing secret"),
        };
        chunk.push_str(&format!("{}\n", json!({ "message": message, "seq": i })));
    }
    run.write(chunk.as_bytes());
    expected.extend_from_slice(&reference_json_redaction(chunk.as_bytes()));
    let got = run.read_at_least(expected.len(), DEADLINE).to_vec();
    assert!(got == expected, "the chunk's answers");
    let lines: Vec<&[u8]> = got.split(|&b| b == b'\n').collect();
    for (i, line) in lines[records.len()..lines.len() - 1].iter().enumerate() {
        let parsed: Value = serde_json::from_slice(line).unwrap();
        assert_eq!(parsed["seq"], i, "in order");
    }

    // Fluentd closes the child's stdin at shutdown.
    let (status, rest, stderr) = run.finish();
    assert!(status.success(), "{stderr}");
    assert!(rest == expected, "nothing after the last answer");
}

// ---------------------------------------------------------------------------
// Fluent Bit: the TCP hop

/// A string as Fluent Bit's JSON encoder writes it: `"` and `\` escaped,
/// control characters as `\n`, `\t`, `\r`, `\b`, `\f` or `\u00XX`, and every
/// non-ASCII character as `\uXXXX` (UTF-16).
fn fluent_bit_json_string(text: &str) -> String {
    let mut out = String::new();
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            c if (c as u32) < 0x20 || !c.is_ascii() => {
                let mut units = [0u16; 2];
                for unit in c.encode_utf16(&mut units) {
                    out.push_str(&format!("\\u{unit:04x}"));
                }
            }
            c => out.push(c),
        }
    }
    out
}

#[test]
fn fluent_bit_json_lines_split_across_tcp_segments_arrive_redacted_in_order() {
    let sections = classic_sections(&fluent_bit_dir().join("tcp-hop.conf"));
    let to_logredact = plugin(&sections, "output", "tcp");
    assert_eq!(property(to_logredact, "format"), "json_lines");
    let date_key = property(to_logredact, "json_date_key");
    let from_logredact = plugin(&sections, "input", "tcp");
    assert_eq!(property(from_logredact, "format"), "json");

    let mut args = args_in_shell(&header_command("tcp-hop.conf"));
    let options = cli_options(&args);
    assert_eq!(
        option(&options, "--input"),
        format!(
            "tcp://{}:{}",
            property(to_logredact, "host"),
            property(to_logredact, "port")
        )
    );
    assert_eq!(
        option(&options, "--output"),
        format!("tcp://127.0.0.1:{}", property(from_logredact, "port"))
    );
    let root = installed_root("fluent-bit-tcp");
    let map = [("/etc/logredact/".to_string(), root.join("etc/logredact/"))];
    let config_file = PathBuf::from(remap(option(&options, "--config"), &map));
    assert!(
        includes(&config_file, "rules/json-escaped.yaml"),
        "json_lines: the configuration includes the JSON-escape pack"
    );
    set_option(&mut args, "--config", config_file.display().to_string());
    // Local ports instead of 5170 and 5171; the listener stands in for
    // Fluent Bit's tcp input.
    let collector = Collector::start(0);
    let port = free_port();
    set_option(&mut args, "--input", format!("tcp://127.0.0.1:{port}"));
    set_option(
        &mut args,
        "--output",
        format!("tcp://127.0.0.1:{}", collector.port),
    );
    let run = Running::spawn(&args.iter().map(String::as_str).collect::<Vec<_>>());

    let mut tokens = TokenGen::new(0xF1B17);
    let t: Vec<String> = (0..12).map(|_| tokens.token()).collect();
    let long: String = (0..200)
        .map(|i| format!("chunk {i} {} ", if i % 20 == 0 { &t[11] } else { "x" }))
        .collect();
    let logs = [
        format!("GET /api/2.0/jobs/list Authorization: Bearer {}", t[0]),
        format!("tab\t{}", t[1]),
        format!("two lines\n{}", t[2]),
        format!("caf\u{e9}{} and \u{1f510}{}", t[3], t[4]),
        format!("escape\u{1b}{}", t[5]),
        format!("quoted \"{}\" backslash \\{}", t[6], t[7]),
        format!("return\r{}\u{8}{}", t[8], t[9]),
        format!("json inside a log: {{\"token\":\"{}\"}}", t[10]),
        long,
    ];
    // One connection, as the tcp output with Workers 1 keeps (retried until
    // logredact listens; a probe connection would be a stream of its own).
    let until = Instant::now() + DEADLINE;
    let mut stream = loop {
        match TcpStream::connect(("127.0.0.1", port)) {
            Ok(stream) => break stream,
            Err(e) => {
                assert!(Instant::now() < until, "logredact does not listen: {e}");
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    };
    stream.set_nodelay(true).unwrap();
    let mut sent = Vec::new();
    for (i, log) in logs.iter().enumerate() {
        let record = format!(
            "{{\"{date_key}\":\"2026-11-23T10:00:{i:02}.000000Z\",\"log\":\"{}\"}}\n",
            fluent_bit_json_string(log)
        );
        let bytes = record.as_bytes();
        // Segments cut inside the first token, right after a backslash, and
        // in the middle, with pauses between them.
        let mut cuts: Vec<usize> = Vec::new();
        if let Some(at) = record.find("dapi") {
            cuts.push(at + 13);
        }
        if let Some(at) = record.find('\\') {
            cuts.push(at + 1);
        }
        cuts.push(bytes.len() / 2);
        cuts.sort_unstable();
        cuts.dedup();
        let mut from = 0;
        for cut in cuts.into_iter().chain([bytes.len()]) {
            stream.write_all(&bytes[from..cut]).unwrap();
            stream.flush().unwrap();
            std::thread::sleep(Duration::from_millis(40));
            from = cut;
        }
        sent.extend_from_slice(bytes);
        // Each record arrives, exactly redacted, before the next one is sent.
        let expected = reference_json_redaction(&sent);
        let got = collector.wait_for_total(expected.len(), DEADLINE).concat();
        assert_eq!(
            String::from_utf8_lossy(&got),
            String::from_utf8_lossy(&expected),
            "after record {i}"
        );
    }
    drop(stream);

    let expected = reference_json_redaction(&sent);
    let connections = collector.wait_for_total(expected.len(), DEADLINE);
    assert_eq!(connections.len(), 1, "one upstream connection per inbound");
    assert!(connections[0] == expected);
    let text = String::from_utf8(connections[0].clone()).unwrap();
    for (i, line) in text.lines().enumerate() {
        // What Fluent Bit's tcp input (format json) reads: one JSON map.
        let parsed: Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON: {line}: {e}"));
        let keys: Vec<&String> = parsed.as_object().unwrap().keys().collect();
        assert_eq!(keys, [date_key, "log"], "{line}");
        assert_eq!(
            parsed[date_key],
            format!("2026-11-23T10:00:{i:02}.000000Z"),
            "in order"
        );
        let log = parsed["log"].as_str().unwrap();
        for token in &t {
            assert!(!log.contains(token.as_str()), "{line}");
        }
    }
    assert_eq!(text.lines().count(), logs.len());

    let (status, _, stderr) = run.terminate();
    assert!(status.success(), "{stderr}");
}

// ---------------------------------------------------------------------------
// Fluent Bit: the exec input, Oneshot

#[test]
fn fluent_bit_exec_oneshot_command_prints_each_appended_line_at_once() {
    let sections = classic_sections(&fluent_bit_dir().join("exec-oneshot.conf"));
    let exec = plugin(&sections, "input", "exec");
    let (command, buf_size) = (property(exec, "command"), property(exec, "buf_size"));
    assert_eq!(property(exec, "oneshot"), "true");
    let prefix = format!("exec {IMAGE_BINARY} ");
    assert!(command.starts_with(&prefix), "{command}");
    assert!(
        !command.contains("--config"),
        "the exec route reads raw lines with the built-in rule: {command}"
    );

    // The container paths of the command, under a temporary directory.
    let dir = scratch("fluent-bit-exec");
    let map: Vec<(String, PathBuf)> = ["/var/log/app", "/var/lib/logredact"]
        .iter()
        .map(|p| (p.to_string(), dir.join(p.trim_start_matches('/'))))
        .collect();
    fs::create_dir_all(dir.join("var/log/app")).unwrap();
    let logredact = env!("CARGO_BIN_EXE_logredact");
    let local = format!(
        "exec '{logredact}' {}",
        remap(&command[prefix.len()..], &map)
    );
    assert!(
        !local.contains(" /var/") && !local.contains(":/var/"),
        "every container path is mapped: {local}"
    );
    let log = dir.join("var/log/app/app.log");
    assert!(
        local.contains(&format!("follow:{}", log.display())),
        "{local}"
    );

    // As the exec input runs it: popen(3), that is /bin/sh -c.
    let mut shell = Command::new("/bin/sh");
    shell.arg("-c").arg(&local);
    let mut run = Running::start(&mut shell, Stdio::null());
    // `exec` replaced the shell: Fluent Bit's child is logredact itself.
    let exe = Path::new("/proc")
        .join(run.child.id().to_string())
        .join("exe");
    let until = Instant::now() + DEADLINE;
    let wanted = fs::canonicalize(logredact).unwrap();
    while fs::read_link(&exe).ok().as_ref() != Some(&wanted) && Instant::now() < until {
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(
        fs::read_link(&exe).ok(),
        Some(wanted),
        "exec replaces the shell"
    );

    let mut tokens = TokenGen::new(0xE7EC);
    let mut written = Vec::new();
    let mut lines = 0;
    // Plain text, JSON, nothing to mask, a near miss.
    let kinds = [
        "GET /jobs Authorization: Bearer TOKEN",
        "{\"level\":\"info\",\"token\":\"TOKEN\"}",
        "nothing secret here",
        "near miss xTOKEN kept",
    ];
    for i in 0..12 {
        let line = format!("{i}: {}\n", kinds[i % 4].replace("TOKEN", &tokens.token()));
        append(&log, line.as_bytes());
        written.extend_from_slice(line.as_bytes());
        lines += 1;
        // Out before the next line is written.
        run.expect_output(
            &reference_redaction(&written),
            DEADLINE,
            &format!("line {i}"),
        );
    }
    // A line written in two pieces, the token split between them.
    let token = tokens.token();
    let first = format!("split: Bearer {}", &token[..20]);
    append(&log, first.as_bytes());
    std::thread::sleep(Duration::from_millis(300));
    let second = format!("{}\n", &token[20..]);
    append(&log, second.as_bytes());
    written.extend_from_slice(first.as_bytes());
    written.extend_from_slice(second.as_bytes());
    lines += 1;
    run.expect_output(&reference_redaction(&written), DEADLINE, "the split line");
    // A long line comes out as one line (one record while it fits in the
    // configured Buf_Size).
    let long: String = (0..4000)
        .map(|i| {
            if i % 500 == 0 {
                format!("{} ", tokens.token())
            } else {
                format!("word{i} ")
            }
        })
        .collect::<String>()
        + "\n";
    assert!(
        (long.len() as u64) < fluent_bit_size(buf_size),
        "the test's long line fits in Buf_Size {buf_size}"
    );
    append(&log, long.as_bytes());
    written.extend_from_slice(long.as_bytes());
    lines += 1;
    run.expect_output(&reference_redaction(&written), DEADLINE, "the long line");

    let (status, output, stderr) = run.terminate();
    assert!(status.success(), "{stderr}");
    assert!(output == reference_redaction(&written));
    // One record per line: as many lines out as in, each the redaction of
    // its input line.
    let out_lines: Vec<&[u8]> = output.split_inclusive(|&b| b == b'\n').collect();
    let in_lines: Vec<&[u8]> = written.split_inclusive(|&b| b == b'\n').collect();
    assert_eq!(out_lines.len(), lines);
    for (out, input) in out_lines.iter().zip(&in_lines) {
        assert_eq!(*out, reference_redaction(input).as_slice());
    }
}

// ---------------------------------------------------------------------------
// Kubernetes: the shared-volume sidecar

fn manifest_documents(file: &str) -> Vec<Value> {
    yaml::file_documents(&kubernetes_dir().join(file))
}

/// Fills `local` as Kubernetes fills the volume `volume` (an emptyDir, or a
/// projection of the manifests' ConfigMaps and Secrets).
fn fill_volume(local: &Path, volume: &Value) {
    use std::os::unix::fs::PermissionsExt;
    fs::create_dir_all(local).unwrap();
    if volume["emptyDir"].is_object() {
        return;
    }
    let projected = &volume["projected"];
    assert!(projected.is_object(), "unsupported volume {volume}");
    let mode = file_mode(&projected["defaultMode"]).unwrap_or(0o644);
    let resources: Vec<Value> = ["configmap.yaml", "secret.yaml"]
        .iter()
        .flat_map(|f| manifest_documents(f))
        .collect();
    for source in projected["sources"].as_array().unwrap() {
        let (kind, reference) = if source["configMap"].is_object() {
            ("ConfigMap", &source["configMap"])
        } else {
            ("Secret", &source["secret"])
        };
        let resource = resources
            .iter()
            .find(|r| r["kind"] == kind && r["metadata"]["name"] == reference["name"])
            .unwrap_or_else(|| panic!("no {kind} {}", reference["name"]));
        for item in reference["items"].as_array().unwrap() {
            let data = resource["data"][item["key"].as_str().unwrap()]
                .as_str()
                .unwrap_or_else(|| panic!("{kind} has no key {}", item["key"]));
            let bytes = if kind == "Secret" {
                base64_decode(data)
            } else {
                data.as_bytes().to_vec()
            };
            let path = local.join(item["path"].as_str().unwrap());
            fs::create_dir_all(path.parent().unwrap()).unwrap();
            fs::write(&path, bytes).unwrap();
            fs::set_permissions(&path, fs::Permissions::from_mode(mode)).unwrap();
        }
    }
}

#[test]
fn kubernetes_shared_volume_sidecar_redacts_an_appended_and_rotated_log_exactly() {
    let deployment = manifest_documents("sidecar-shared-volume.yaml")
        .into_iter()
        .find(|d| d["kind"] == "Deployment")
        .expect("a Deployment");
    let pod = &deployment["spec"]["template"]["spec"];
    let sidecar = named(pod, "initContainers", "logredact");
    let app = named(pod, "containers", "app");

    // The sidecar's volumes, as the kubelet mounts them, under a temporary
    // directory.
    let dir = scratch("kubernetes-shared-volume");
    let mut map: Vec<(String, PathBuf)> = Vec::new();
    for mount in sidecar["volumeMounts"].as_array().unwrap() {
        let path = mount["mountPath"].as_str().unwrap();
        let volume = volume(pod, mount["name"].as_str().unwrap());
        let local = dir.join(path.trim_start_matches('/'));
        fill_volume(&local, volume);
        map.push((path.to_string(), local));
    }
    // The application writes to the same volume.
    let app_log_dir = app["volumeMounts"][0]["mountPath"].as_str().unwrap();
    assert!(map.iter().any(|(p, _)| p == app_log_dir), "a shared volume");

    let mut args: Vec<String> = sidecar["args"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| remap(a.as_str().unwrap(), &map))
        .collect();
    for arg in &args {
        assert!(
            !arg.contains('/') || arg.contains(&*dir.to_string_lossy()),
            "a container path left: {arg}"
        );
    }
    let options = cli_options(&args);
    let config = PathBuf::from(option(&options, "--config"));
    assert!(
        includes(&config, "rules/json-escaped.yaml"),
        "the ConfigMap's configuration includes the JSON-escape pack (applications log JSON)"
    );
    assert!(config.with_file_name("rules/json-escaped.yaml").is_file());
    let log = PathBuf::from(
        option(&options, "--input")
            .strip_prefix("follow:")
            .expect("follows a file"),
    );
    let state = PathBuf::from(option(&options, "--state-dir"));
    // The ConfigMap's admin address is the pod's 0.0.0.0:9102; here a free
    // loopback port (the command line wins over the file).
    let admin = free_port();
    args.extend(["--admin".to_string(), format!("127.0.0.1:{admin}")]);

    let mut command = binary();
    command.args(&args);
    for variable in sidecar["env"].as_array().into_iter().flatten() {
        command.env(
            variable["name"].as_str().unwrap(),
            variable["value"].as_str().unwrap(),
        );
    }
    let mut run = Running::start(&mut command, Stdio::null());

    // The kubelet's probes: started, then ready.
    run.wait_for_port(admin);
    for probe in ["startupProbe", "readinessProbe"] {
        run.wait_for_probe(admin, sidecar[probe]["httpGet"]["path"].as_str().unwrap());
    }

    // The application: appends lines (plain text and JSON), rotates by
    // rename, then by copy and truncate, and keeps writing.
    let output = run.stdout();
    let writer_log = log.clone();
    let writer = std::thread::spawn(move || {
        let mut tokens = TokenGen::new(0x6865);
        let mut written: Vec<u8> = Vec::new();
        let mut line = |n: usize, written: &mut Vec<u8>| {
            let text = match n % 4 {
                0 => format!("request {n}: Authorization: Bearer {}\n", tokens.token()),
                1 => format!(
                    "{{\"n\":{n},\"msg\":\"retrying with\\t{}\",\"ok\":false}}\n",
                    tokens.token()
                ),
                2 => format!("request {n} ok\n"),
                _ => format!(
                    "{{\"n\":{n},\"trace\":\"line one\\n{}\\nline two\"}}\n",
                    tokens.token()
                ),
            };
            append(&writer_log, text.as_bytes());
            written.extend_from_slice(text.as_bytes());
            std::thread::sleep(Duration::from_millis(5));
        };
        for n in 0..40 {
            line(n, &mut written);
        }
        // Rename rotation, as logrotate's default does.
        fs::rename(&writer_log, writer_log.with_extension("log.1")).unwrap();
        for n in 40..60 {
            line(n, &mut written);
        }
        // Copy-truncate loses whatever the reader has not read when the file
        // is truncated, in any follower: wait until all is out first.
        output.wait_for_len(reference_json_redaction(&written).len(), DEADLINE);
        fs::copy(&writer_log, writer_log.with_extension("log.2")).unwrap();
        OpenOptions::new()
            .write(true)
            .open(&writer_log)
            .unwrap()
            .set_len(0)
            .unwrap();
        // A first short line, shorter than what was read, shows the
        // truncation; then more.
        line(60, &mut written);
        output.wait_for_len(reference_json_redaction(&written).len(), DEADLINE);
        for n in 61..80 {
            line(n, &mut written);
        }
        written
    });
    let written = writer.join().unwrap();
    let expected = reference_json_redaction(&written);
    run.expect_output(&expected, DEADLINE, "the sidecar's stdout");

    // Kubernetes stops the sidecar with SIGTERM after the application.
    let (status, stdout, stderr) = run.terminate();
    assert!(status.success(), "exit status {status}\n{stderr}");
    assert!(stdout == expected, "nothing more after SIGTERM");
    let text = String::from_utf8_lossy(&stdout);
    assert_eq!(text.lines().count(), 80);
    for line in text.lines().filter(|l| l.starts_with('{')) {
        serde_json::from_str::<Value>(line).unwrap_or_else(|e| panic!("{line}: {e}"));
    }
    // The checkpoint lives on the shared volume, next to the log.
    let checkpoints: BTreeSet<String> = fs::read_dir(&state)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        checkpoints.iter().any(|f| f.starts_with("follow-")),
        "{checkpoints:?}"
    );
    assert!(state.starts_with(log.parent().unwrap()));
}
