//! The forward-protocol hop (`deploy/fluent-bit/forward-hop.*`,
//! `deploy/fluentd/forward-hop.conf`): the raw records go only to logredact,
//! with acknowledgements asked for; the redacted records come back under
//! another tag on a loopback forward input; and the logredact command line in
//! each file's header connects the two and is accepted by logredact.

use crate::fluent::{Fluentd, fluent_bit_config, header_command, plugin, property};
use crate::invocation::{args_in_shell, cli_options, installed_config, option};

/// The command line of a header comment, as (input, output), checked to be
/// accepted by logredact with the configuration it names: the settings a
/// run would resolve (without the deployment checks of `check-config`,
/// which would bind the ports on this machine).
fn forward_command(file: &str, text: &str) -> (String, String) {
    let args = cli_options(&args_in_shell(text));
    let (input, output) = (option(&args, "--input"), option(&args, "--output"));
    let config = logredact::config::Config::load(&installed_config(option(&args, "--config")))
        .unwrap_or_else(|e| panic!("{file}: {e}"));
    let overrides = logredact::app::Overrides {
        inputs: vec![input.parse().unwrap()],
        output: Some(output.parse().unwrap()),
        ..Default::default()
    };
    if let Err(e) = logredact::app::Settings::resolve(overrides, config, None) {
        panic!("{file}: logredact refuses its command line: {e}");
    }
    (input.to_string(), output.to_string())
}

#[test]
fn fluent_bit_forward_hop_asks_for_acknowledgements_and_routes_without_a_loop() {
    let sections = fluent_bit_config("forward-hop");
    let tail = plugin(&sections, "input", "tail");
    let to_logredact = plugin(&sections, "output", "forward");
    let from_logredact = plugin(&sections, "input", "forward");
    // Lossless: a chunk is done only once acknowledged, retried for ever,
    // and kept on disk meanwhile.
    assert_eq!(property(to_logredact, "require_ack_response"), "true");
    assert_eq!(property(to_logredact, "retry_limit"), "no_limits");
    assert_eq!(property(tail, "storage.type"), "filesystem");
    // Fluent Bit pauses the forward input below at SIGTERM, so a chunk in
    // flight then is never acknowledged: without an I/O timeout the output
    // waits for it, and Fluent Bit does not stop, until SIGKILL.
    assert_eq!(property(to_logredact, "net.io_timeout"), "10s");
    assert_eq!(property(from_logredact, "listen"), "127.0.0.1");
    // The raw records go only to logredact; the redacted ones come back
    // under a prefix the output to logredact does not match.
    let raw = property(tail, "tag");
    assert_eq!(property(to_logredact, "match"), raw);
    let prefix = property(from_logredact, "tag_prefix");
    let back = format!("{prefix}{raw}");
    assert_ne!(back, raw);
    let stdout = property(plugin(&sections, "output", "stdout"), "match");
    assert!(
        stdout == back || back.starts_with(stdout.trim_end_matches('*')),
        "the redacted records ({back}) reach the stdout output ({stdout})"
    );
    for file in ["forward-hop.conf", "forward-hop.yaml"] {
        let (input, output) = forward_command(file, &header_command(file));
        assert_eq!(
            input,
            format!(
                "forward://{}:{}",
                property(to_logredact, "host"),
                property(to_logredact, "port")
            ),
            "{file}"
        );
        assert_eq!(
            output,
            format!("forward://127.0.0.1:{}", property(from_logredact, "port")),
            "{file}"
        );
    }
}

#[test]
fn fluentd_forward_hop_asks_for_acknowledgements_and_routes_without_a_loop() {
    let fluentd = Fluentd::file("forward-hop.conf");
    let to_logredact = "match app.raw";
    assert_eq!(fluentd.value(to_logredact, "@type"), "forward");
    assert_eq!(fluentd.value(to_logredact, "require_ack_response"), "true");
    let buffer = format!("{to_logredact}/buffer");
    assert_eq!(fluentd.value(&buffer, "@type"), "file");
    assert_eq!(fluentd.value(&buffer, "retry_forever"), "true");
    // A chunk is one message: it must fit logredact's default limit.
    let chunk = fluentd.value(&buffer, "chunk_limit_size");
    let megabytes: u64 = chunk.trim_end_matches('m').parse().unwrap();
    assert!(
        chunk.ends_with('m') && megabytes * 1024 * 1024 < 16 * 1024 * 1024,
        "chunk_limit_size {chunk} must stay below forward.max_message_bytes"
    );
    let server = format!("{to_logredact}/server");
    let text = crate::common::read(&crate::common::repo_path("deploy/fluentd/forward-hop.conf"));
    let (input, output) = forward_command(
        "forward-hop.conf",
        &text
            .lines()
            .map_while(|l| l.strip_prefix('#'))
            .map(|l| l.trim().trim_end_matches('\\'))
            .skip_while(|l| !l.starts_with("logredact --"))
            .take_while(|l| !l.is_empty())
            .collect::<Vec<_>>()
            .join(" "),
    );
    assert_eq!(
        input,
        format!(
            "forward://{}:{}",
            fluentd.value(&server, "host"),
            fluentd.value(&server, "port")
        )
    );
    // The <source> of type forward takes the redacted records back.
    let forward_port = text
        .split("<source>")
        .find(|section| section.contains("@type forward"))
        .and_then(|section| {
            section
                .lines()
                .find_map(|l| l.trim().strip_prefix("port "))
                .map(str::trim)
        })
        .expect("a forward <source> with a port");
    assert_eq!(output, format!("forward://127.0.0.1:{forward_port}"));
    assert!(
        text.contains("add_tag_prefix redacted")
            && fluentd.get("match redacted.app.raw", "@type").is_some(),
        "the redacted records come back under another tag and are routed on"
    );
}
