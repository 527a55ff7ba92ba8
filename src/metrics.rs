//! Counters of the whole process, exposed in Prometheus text format by the
//! admin endpoint, and the readiness state behind `/readyz`.
//!
//! Labels are rule ids, confidence levels, fixed error kinds and the
//! version: never anything taken from the input.

mod process;

use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use crate::scan::detection::Detection;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DetectionLabels {
    rule: String,
    confidence: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ErrorLabels {
    kind: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct BuildLabels {
    version: &'static str,
}

/// The text formats [`Metrics::render`] writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// OpenMetrics 1.0: counter families typed without their `_total`, and
    /// a final `# EOF`. What Prometheus asks for first, and the default.
    OpenMetrics,
    /// The Prometheus text format 0.0.4: counter families typed under their
    /// `_total` name, no `# EOF`. For readers of that format only, such as
    /// `promtool check metrics`, which ask for `text/plain`.
    Prometheus,
}

impl Format {
    /// The format an HTTP `Accept` header asks for: the Prometheus text
    /// format when it accepts `text/plain` and not OpenMetrics, OpenMetrics
    /// otherwise (no header, `*/*`, or OpenMetrics named).
    pub fn negotiate(accept: Option<&str>) -> Format {
        let accepted = |wanted: &str| {
            accept.into_iter().flat_map(|a| a.split(',')).any(|range| {
                let mut parts = range.split(';').map(str::trim);
                let media = parts.next().unwrap_or_default();
                let refused = parts.any(|p| {
                    p.strip_prefix("q=")
                        .and_then(|q| q.parse::<f32>().ok())
                        .is_some_and(|q| q <= 0.0)
                });
                media.eq_ignore_ascii_case(wanted) && !refused
            })
        };
        if accepted("text/plain") && !accepted("application/openmetrics-text") {
            Format::Prometheus
        } else {
            Format::OpenMetrics
        }
    }

    /// The HTTP content type of this format.
    pub fn content_type(self) -> &'static str {
        match self {
            Format::OpenMetrics => CONTENT_TYPE,
            Format::Prometheus => "text/plain; version=0.0.4; charset=utf-8",
        }
    }
}

/// The content type of [`Metrics::render`]'s OpenMetrics text, which
/// Prometheus reads when it is told so.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Kinds of errors counted in `logredact_errors_total{kind}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// Reading a stream failed.
    Read,
    /// Writing an output failed.
    Write,
    /// Connecting to an upstream failed.
    Connect,
    /// Accepting a connection failed.
    Accept,
    /// A checkpoint could not be saved.
    Checkpoint,
    /// Audit records were dropped or could not be written.
    Audit,
    /// A followed file was truncated or replaced in place: its stream was cut.
    Truncated,
    /// A followed file was gone before it was read to its end.
    RotatedAway,
    /// A TLS handshake failed: a client of a `tls://` input (plaintext,
    /// without a valid certificate where one is required), or the upstream
    /// of a `tls://` output (a certificate the CA bundle does not sign, or
    /// for another name).
    TlsHandshake,
    /// A forward connection sent what the protocol does not allow (not
    /// msgpack, an unknown mode, a message too long): it was closed.
    Protocol,
}

impl ErrorKind {
    /// Every kind: each is shown from the start, at 0, so that an alert on
    /// its rate has a series to work on before the first error.
    const ALL: [ErrorKind; 10] = [
        ErrorKind::Read,
        ErrorKind::Write,
        ErrorKind::Connect,
        ErrorKind::Accept,
        ErrorKind::Checkpoint,
        ErrorKind::Audit,
        ErrorKind::Truncated,
        ErrorKind::RotatedAway,
        ErrorKind::TlsHandshake,
        ErrorKind::Protocol,
    ];

    fn label(self) -> &'static str {
        match self {
            ErrorKind::Read => "read",
            ErrorKind::Write => "write",
            ErrorKind::Connect => "connect",
            ErrorKind::Accept => "accept",
            ErrorKind::Checkpoint => "checkpoint",
            ErrorKind::Audit => "audit",
            ErrorKind::Truncated => "truncated",
            ErrorKind::RotatedAway => "rotated_away",
            ErrorKind::TlsHandshake => "tls_handshake",
            ErrorKind::Protocol => "protocol",
        }
    }
}

/// The process's counters.
pub struct Metrics {
    registry: Registry,
    bytes_in: Counter,
    bytes_out: Counter,
    detections: Family<DetectionLabels, Counter>,
    streams_active: Gauge,
    connections_rejected: Counter,
    output_retries: Counter,
    errors: Family<ErrorLabels, Counter>,
    reloads: Counter,
    reload_failures: Counter,
    forward_records: Counter,
    forward_acks: Counter,
    forward_resent: Counter,
    /// 1 while `/readyz` answers 200, set at each scrape.
    ready: Gauge,
    /// Whether every input is open. False from the start, so that the admin
    /// endpoint, which starts before the inputs, never reports ready early.
    inputs_open: AtomicBool,
    /// Outputs not connected.
    outputs_down: AtomicI64,
}

impl Default for Metrics {
    fn default() -> Metrics {
        Metrics::new()
    }
}

impl Metrics {
    /// Fresh counters, registered under their `logredact_` names.
    pub fn new() -> Metrics {
        let mut registry = Registry::default();
        let bytes_in = Counter::default();
        let bytes_out = Counter::default();
        let detections = Family::<DetectionLabels, Counter>::default();
        let streams_active = Gauge::default();
        let connections_rejected = Counter::default();
        let output_retries = Counter::default();
        let errors = Family::<ErrorLabels, Counter>::default();
        registry.register(
            "logredact_bytes_in",
            "Bytes read from all streams",
            bytes_in.clone(),
        );
        registry.register(
            "logredact_bytes_out",
            "Redacted bytes handed to outputs",
            bytes_out.clone(),
        );
        registry.register(
            "logredact_detections",
            "Matches detected, by rule and confidence",
            detections.clone(),
        );
        registry.register(
            "logredact_streams_active",
            "Streams being read now",
            streams_active.clone(),
        );
        registry.register(
            "logredact_connections_rejected",
            "Connections closed at accept because of limits.max_connections",
            connections_rejected.clone(),
        );
        registry.register(
            "logredact_output_retries",
            "Reconnections and connection attempts to upstream outputs",
            output_retries.clone(),
        );
        registry.register("logredact_errors", "Errors, by kind", errors.clone());
        let reloads = Counter::default();
        registry.register(
            "logredact_reloads",
            "Reloads of the configuration that took effect",
            reloads.clone(),
        );
        let reload_failures = Counter::default();
        registry.register(
            "logredact_reload_failures",
            "Reloads refused (invalid configuration, or a change that takes a restart); the running configuration stayed",
            reload_failures.clone(),
        );
        let forward_records = Counter::default();
        registry.register(
            "logredact_forward_records",
            "Records (entries) read from forward inputs",
            forward_records.clone(),
        );
        let forward_acks = Counter::default();
        registry.register(
            "logredact_forward_acks",
            "Chunks acknowledged to forward senders, each once the next hop had acknowledged it",
            forward_acks.clone(),
        );
        let forward_resent = Counter::default();
        registry.register(
            "logredact_forward_resent",
            "Messages sent again to the next hop after a reconnection; each may arrive twice",
            forward_resent.clone(),
        );
        for kind in ErrorKind::ALL {
            drop(errors.get_or_create(&ErrorLabels { kind: kind.label() }));
        }
        let build_info = Family::<BuildLabels, Gauge>::default();
        build_info
            .get_or_create(&BuildLabels {
                version: env!("CARGO_PKG_VERSION"),
            })
            .set(1);
        registry.register(
            "logredact_build_info",
            "Always 1; the labels say which logredact this is",
            build_info,
        );
        let ready = Gauge::default();
        registry.register(
            "logredact_ready",
            "1 while /readyz answers 200 (inputs open, outputs connected, not stopping), else 0",
            ready.clone(),
        );
        registry.register_collector(Box::new(process::ProcessCollector));
        Metrics {
            registry,
            bytes_in,
            bytes_out,
            detections,
            streams_active,
            connections_rejected,
            output_retries,
            errors,
            reloads,
            reload_failures,
            forward_records,
            forward_acks,
            forward_resent,
            ready,
            inputs_open: AtomicBool::new(false),
            outputs_down: AtomicI64::new(0),
        }
    }

    /// The metrics as text in `format`.
    pub fn render(&self, format: Format) -> String {
        let mut text = String::new();
        // Encoding into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut text, &self.registry);
        match format {
            Format::OpenMetrics => text,
            Format::Prometheus => prometheus_text(&text),
        }
    }

    /// Records whether the process is ready, for `logredact_ready`.
    pub fn set_ready(&self, ready: bool) {
        self.ready.set(i64::from(ready));
    }

    /// Bytes read.
    pub fn read(&self, bytes: usize) {
        self.bytes_in.inc_by(bytes as u64);
    }

    /// Bytes handed to an output.
    pub fn written(&self, bytes: usize) {
        self.bytes_out.inc_by(bytes as u64);
    }

    /// One detection.
    pub fn detected(&self, detection: &Detection) {
        self.detections
            .get_or_create(&DetectionLabels {
                rule: detection.rule.to_string(),
                confidence: detection.confidence.as_str(),
            })
            .inc();
    }

    /// A stream started (`+1`) or ended (`-1`).
    pub fn stream_started(&self) {
        self.streams_active.inc();
    }

    /// A stream ended.
    pub fn stream_ended(&self) {
        self.streams_active.dec();
    }

    /// A connection was closed at accept.
    pub fn connection_rejected(&self) {
        self.connections_rejected.inc();
    }

    /// An upstream (re)connection attempt after a failure.
    pub fn output_retry(&self) {
        self.output_retries.inc();
    }

    /// An error of `kind`.
    pub fn error(&self, kind: ErrorKind) {
        self.errors
            .get_or_create(&ErrorLabels { kind: kind.label() })
            .inc();
    }

    /// A reload took effect.
    pub fn reloaded(&self) {
        self.reloads.inc();
    }

    /// A reload was refused.
    pub fn reload_failed(&self) {
        self.reload_failures.inc();
    }

    /// Records read from a forward input.
    pub fn forward_records(&self, records: u64) {
        self.forward_records.inc_by(records);
    }

    /// A chunk acknowledged to its forward sender.
    pub fn forward_acked(&self) {
        self.forward_acks.inc();
    }

    /// Messages sent again to the next hop after a reconnection.
    pub fn forward_resent(&self, messages: usize) {
        self.forward_resent.inc_by(messages as u64);
    }

    /// Every input is open (listening, or its file opened or awaited).
    pub fn inputs_opened(&self) {
        self.inputs_open.store(true, Ordering::Relaxed);
    }

    /// An output lost (or has not yet made) its connection.
    pub fn output_down(&self) {
        self.outputs_down.fetch_add(1, Ordering::Relaxed);
    }

    /// An output is connected again.
    pub fn output_up(&self) {
        self.outputs_down.fetch_sub(1, Ordering::Relaxed);
    }

    /// Why the process is not ready, if it is not.
    pub fn not_ready(&self) -> Option<&'static str> {
        if !self.inputs_open.load(Ordering::Relaxed) {
            Some("inputs not open yet")
        } else if self.outputs_down.load(Ordering::Relaxed) > 0 {
            Some("an output is not connected")
        } else {
            None
        }
    }
}

/// The Prometheus text format 0.0.4 of `openmetrics`, the encoder's text of
/// this registry: a counter family's `# HELP` and `# TYPE` name its samples'
/// `_total` name, `# UNIT` lines, counters' `_created` samples and `# EOF` go.
/// Label values and help texts are escaped alike in both formats for what
/// this registry holds (no `"` or backslash in a help text).
fn prometheus_text(openmetrics: &str) -> String {
    let counters: Vec<&str> = openmetrics
        .lines()
        .filter_map(|line| line.strip_prefix("# TYPE ")?.strip_suffix(" counter"))
        .collect();
    let mut text = String::with_capacity(openmetrics.len());
    for line in openmetrics.lines() {
        let sample_name = line.split(['{', ' ']).next().unwrap_or_default();
        let created_of_counter = sample_name
            .strip_suffix("_created")
            .is_some_and(|family| counters.contains(&family));
        if line == "# EOF" || line.starts_with("# UNIT ") || created_of_counter {
            continue;
        }
        let descriptor = ["# HELP ", "# TYPE "]
            .into_iter()
            .find_map(|kind| Some((kind, line.strip_prefix(kind)?)));
        match descriptor {
            Some((kind, rest)) => {
                let (family, tail) = rest.split_once(' ').unwrap_or((rest, ""));
                let suffix = if counters.contains(&family) {
                    "_total"
                } else {
                    ""
                };
                text.push_str(&format!("{kind}{family}{suffix} {tail}\n"));
            }
            None => {
                text.push_str(line);
                text.push('\n');
            }
        }
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_the_documented_names() {
        let metrics = Metrics::new();
        metrics.read(10);
        metrics.error(ErrorKind::Read);
        let text = metrics.render(Format::OpenMetrics);
        for name in [
            "logredact_bytes_in_total 10",
            "logredact_bytes_out_total 0",
            "logredact_streams_active 0",
            "logredact_connections_rejected_total 0",
            "logredact_output_retries_total 0",
            "logredact_errors_total{kind=\"read\"} 1",
            "logredact_errors_total{kind=\"write\"} 0",
            "logredact_errors_total{kind=\"connect\"} 0",
            "logredact_errors_total{kind=\"accept\"} 0",
            "logredact_errors_total{kind=\"checkpoint\"} 0",
            "logredact_errors_total{kind=\"audit\"} 0",
            "logredact_errors_total{kind=\"truncated\"} 0",
            "logredact_errors_total{kind=\"rotated_away\"} 0",
            "logredact_errors_total{kind=\"tls_handshake\"} 0",
            "# TYPE logredact_bytes_in counter",
            "# EOF",
        ] {
            assert!(text.contains(name), "{name} missing from\n{text}");
        }
    }

    #[test]
    fn build_info_and_ready_are_gauges() {
        let metrics = Metrics::new();
        let text = metrics.render(Format::OpenMetrics);
        let build = format!(
            "logredact_build_info{{version=\"{}\"}} 1",
            env!("CARGO_PKG_VERSION")
        );
        assert!(text.lines().any(|l| l == build), "{build} missing:\n{text}");
        assert!(
            text.contains("# TYPE logredact_build_info gauge\n"),
            "{text}"
        );
        assert!(text.contains("\nlogredact_ready 0\n"), "{text}");
        metrics.set_ready(true);
        let text = metrics.render(Format::OpenMetrics);
        assert!(text.contains("\nlogredact_ready 1\n"), "{text}");
    }

    #[test]
    fn the_prometheus_format_types_counters_under_their_total_name() {
        let metrics = Metrics::new();
        metrics.read(3);
        let openmetrics = metrics.render(Format::OpenMetrics);
        let text = metrics.render(Format::Prometheus);
        for line in [
            "# HELP logredact_bytes_in_total Bytes read from all streams.",
            "# TYPE logredact_bytes_in_total counter",
            "logredact_bytes_in_total 3",
            "# TYPE logredact_streams_active gauge",
            "logredact_streams_active 0",
        ] {
            assert!(text.lines().any(|l| l == line), "{line} missing:\n{text}");
        }
        assert!(!text.contains("# EOF"), "{text}");
        assert!(
            !text.contains("# TYPE logredact_bytes_in counter"),
            "{text}"
        );
        // Only descriptors and the end marker differ.
        let samples = |t: &str| -> Vec<String> {
            t.lines()
                .filter(|l| !l.starts_with('#'))
                .map(|l| {
                    // The process metrics move between two renderings.
                    let name = l.split(' ').next().unwrap_or_default();
                    if name.starts_with("process_") {
                        name
                    } else {
                        l
                    }
                    .to_string()
                })
                .collect()
        };
        assert_eq!(samples(&text), samples(&openmetrics));
    }

    #[test]
    fn the_accept_header_chooses_the_format() {
        for (accept, format) in [
            (None, Format::OpenMetrics),
            (Some("*/*"), Format::OpenMetrics),
            (Some("text/plain"), Format::Prometheus),
            (Some("text/plain;version=0.0.4"), Format::Prometheus),
            (
                // What Prometheus sends.
                Some(
                    "application/openmetrics-text;version=1.0.0,application/openmetrics-text;\
                     version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1",
                ),
                Format::OpenMetrics,
            ),
            (
                Some("application/openmetrics-text; q=0, text/plain"),
                Format::Prometheus,
            ),
        ] {
            assert_eq!(Format::negotiate(accept), format, "{accept:?}");
        }
        assert_eq!(Format::OpenMetrics.content_type(), CONTENT_TYPE);
    }

    #[test]
    fn ready_only_once_the_inputs_are_open_and_the_outputs_connected() {
        let metrics = Metrics::new();
        assert_eq!(metrics.not_ready(), Some("inputs not open yet"));
        metrics.output_down();
        metrics.inputs_opened();
        assert_eq!(metrics.not_ready(), Some("an output is not connected"));
        metrics.output_up();
        assert_eq!(metrics.not_ready(), None);
    }
}
