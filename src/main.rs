//! The `logredact` command: parses the command line, loads and checks the
//! configuration, runs the pipeline, and maps the outcome to an exit status
//! (0 done, 1 runtime failure, 2 bad usage or configuration). Every message
//! printed here passes through the default rules first, so that not even an
//! error about a malformed file can carry a token.

use std::io::{self, BufReader, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::{Parser, Subcommand};
use logredact::admin::Admin;
use logredact::audit::{AuditWriter, Summary};
use logredact::config::{self, AuditTarget, Config, ConfigError, InputSpec, KeyOrigin, OutputSpec};
use logredact::metrics::Metrics;
use logredact::pipeline::{self, StreamEnv, Topology};
use logredact::scrub::{ScrubbedStderr, scrub};
use logredact::shutdown::Shutdown;
use logredact::{DetectionMode, FingerprintKey};

/// Streaming log redaction: masks Databricks personal access tokens (and other
/// secrets) in a byte stream, writing every other byte through unchanged.
///
/// With no arguments, reads standard input and writes the redacted stream to
/// standard output, using the built-in configuration (config/logredact.yaml).
#[derive(Debug, Parser)]
#[command(
    name = "logredact",
    version,
    about,
    long_about,
    args_conflicts_with_subcommands = true
)]
struct Cli {
    /// Configuration file (YAML); without it, the built-in default.
    #[arg(long, value_name = "PATH")]
    config: Option<PathBuf>,

    /// A stream to read: `-` (stdin, the default), `file:PATH` (read to the
    /// end), `follow:PATH` (like tail -F, checkpointed in --state-dir) or
    /// `tcp://HOST:PORT` (listen; each connection is a stream). Repeatable;
    /// replaces the configuration's inputs.
    #[arg(long, value_name = "SPEC")]
    input: Vec<InputSpec>,

    /// Where the redacted output goes: `-` (stdout, the default), `file:PATH`
    /// (append) or `tcp://HOST:PORT` (connect; with a TCP input, one upstream
    /// connection per inbound connection).
    #[arg(long, value_name = "SPEC")]
    output: Option<OutputSpec>,

    /// Write the audit stream (JSON Lines, one record per detection) to PATH,
    /// appending; `-` writes it to standard error.
    #[arg(long, value_name = "PATH")]
    audit: Option<AuditTarget>,

    /// Key material for fingerprints (at least 16 bytes; a final newline is
    /// ignored). Overrides audit.fingerprint_key_file and the
    /// LOGREDACT_FINGERPRINT_KEY environment variable.
    #[arg(long, value_name = "PATH")]
    fingerprint_key_file: Option<PathBuf>,

    /// Serve /metrics, /healthz and /readyz on ADDR (HOST:PORT). Off unless given.
    // Checked as admin.listen is: a malformed address is bad usage.
    #[arg(long, value_name = "ADDR", value_parser = config::admin_address)]
    admin: Option<String>,

    /// Directory for checkpoints of followed files.
    #[arg(long, value_name = "DIR")]
    state_dir: Option<PathBuf>,

    /// Seconds to drain streams after SIGTERM or SIGINT before cutting them.
    #[arg(long, value_name = "SECS", default_value = "10", value_parser = parse_seconds)]
    shutdown_grace: Duration,

    /// Format of logredact's own log lines on stderr.
    #[arg(long, value_name = "FORMAT", value_enum, default_value = "text")]
    log_format: LogFormat,

    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

fn parse_seconds(text: &str) -> Result<Duration, String> {
    // Refuses what no Duration holds: negative, not a number, or too large.
    text.parse::<f64>()
        .ok()
        .and_then(|secs| Duration::try_from_secs_f64(secs).ok())
        .ok_or_else(|| format!("'{text}' is not a number of seconds"))
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Validate a configuration file and print the rules it would run.
    CheckConfig {
        /// The configuration file.
        path: PathBuf,
    },
    /// Token-sprawl table of an audit file: per fingerprint, how often, where,
    /// first and last seen, and with what confidence.
    AuditSummary {
        /// The audit file (JSON Lines); `-` reads standard input.
        path: PathBuf,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
}

/// Exit status for a runtime failure.
const EXIT_RUNTIME: u8 = 1;
/// Exit status for bad usage or configuration.
const EXIT_USAGE: u8 = 2;

enum Failure {
    Usage(String),
    Runtime(String),
}

impl From<ConfigError> for Failure {
    fn from(error: ConfigError) -> Failure {
        Failure::Usage(error.to_string())
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.log_format);
    let result = match cli.command {
        Some(Command::CheckConfig { ref path }) => check_config(path),
        Some(Command::AuditSummary { ref path, json }) => audit_summary(path, json),
        None => run(&cli),
    };
    let (message, code) = match result {
        Ok(()) => return ExitCode::SUCCESS,
        Err(Failure::Usage(message)) => (message, EXIT_USAGE),
        Err(Failure::Runtime(message)) => (message, EXIT_RUNTIME),
    };
    report_fatal(cli.log_format, &scrub(&message));
    ExitCode::from(code)
}

/// The one line that says why logredact stopped. It is printed whatever
/// `LOGREDACT_LOG` filters, and with `--log-format json` it is a JSON record
/// like every other log line, so that a log collector parsing them keeps it.
fn report_fatal(format: LogFormat, message: &str) {
    match format {
        LogFormat::Text => eprintln!("logredact: {message}"),
        LogFormat::Json => eprintln!(
            "{}",
            serde_json::json!({
                "timestamp": logredact::audit::rfc3339_millis(std::time::SystemTime::now()),
                "level": "ERROR",
                "fields": { "message": format!("logredact: {message}") },
                "target": "logredact",
            })
        ),
    }
}

/// The configuration file, or the built-in one.
fn load_config(path: Option<&PathBuf>) -> Result<Config, ConfigError> {
    match path {
        Some(path) => Config::load(path),
        None => Ok(Config::builtin()),
    }
}

/// The fingerprint key, in order of precedence: `--fingerprint-key-file`,
/// `audit.fingerprint_key_file`, `LOGREDACT_FINGERPRINT_KEY`, random.
fn fingerprint_key(
    flag: Option<&PathBuf>,
    config: &Config,
) -> Result<(FingerprintKey, KeyOrigin), ConfigError> {
    let file = flag.or(config.fingerprint_key_file.as_ref());
    let from_env = std::env::var_os(config::KEY_ENV);
    config::resolve_key(file.map(|p| p.as_path()), from_env.as_deref())
}

fn run(cli: &Cli) -> Result<(), Failure> {
    let mut config = load_config(cli.config.as_ref())?;
    // The command line wins over the file.
    if !cli.input.is_empty() {
        config.inputs = cli.input.clone();
    }
    if let Some(output) = &cli.output {
        config.output = output.clone();
    }
    if let Some(audit) = &cli.audit {
        config.audit = Some(audit.clone());
    }
    if let Some(admin) = &cli.admin {
        config.admin = Some(admin.clone());
    }
    if let Some(state_dir) = &cli.state_dir {
        config.state_dir = Some(state_dir.clone());
    }
    let (key, key_origin) = fingerprint_key(cli.fingerprint_key_file.as_ref(), &config)?;
    let rules = Arc::new(config.compile(key, &key_origin)?);
    let fingerprints_visible = config.audit.is_some()
        || config
            .rules
            .iter()
            .any(|rule| rule.mask.contains("{fingerprint}"));
    if key_origin == KeyOrigin::Random && fingerprints_visible {
        tracing::warn!(
            "no fingerprint key configured (--fingerprint-key-file, audit.fingerprint_key_file or {}): using a random key, so fingerprints are only comparable within this process",
            config::KEY_ENV
        );
    }
    let metrics = Arc::new(Metrics::new());
    let audit = match &config.audit {
        Some(target) => Some(
            AuditWriter::start(target, Arc::clone(&metrics)).map_err(|e| {
                Failure::Runtime(format!(
                    "cannot open the audit stream {}: {e}",
                    describe_audit(target)
                ))
            })?,
        ),
        None => None,
    };
    // Detections are classified only when someone reads them.
    let mode = if audit.is_some() || config.admin.is_some() {
        DetectionMode::Classify
    } else {
        DetectionMode::MaskOnly
    };
    let env = StreamEnv {
        rules,
        audit: audit.as_ref().map(AuditWriter::handle),
        metrics: Arc::clone(&metrics),
        mode,
    };
    let topology = Topology {
        inputs: config.inputs.clone(),
        output: config.output.clone(),
        limits: config.limits,
        state_dir: config.state_dir.clone(),
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure::Runtime(format!("cannot start the runtime: {e}")))?;
    let admin = config.admin.clone();
    let grace = cli.shutdown_grace;
    let outcome = runtime.block_on(async move {
        let shutdown = Shutdown::new();
        shutdown
            .listen_for_signals(grace)
            .map_err(|e| Failure::Runtime(format!("cannot install signal handlers: {e}")))?;
        if let Some(address) = admin {
            let endpoint = Admin::bind(&address).await.map_err(|e| {
                Failure::Runtime(format!("cannot listen on the admin address {address}: {e}"))
            })?;
            let bound = endpoint.address().map_or(address, |a| a.to_string());
            tracing::info!(admin = %bound, "admin endpoint: /metrics /healthz /readyz");
            endpoint.serve(Arc::clone(&metrics), shutdown.stopping.clone());
        }
        Ok::<_, Failure>(pipeline::run(&topology, env, shutdown).await)
    })?;
    // The streams have ended: the audit writer gets its last records.
    let audit = audit.map(|writer| {
        let outcome = writer.finish();
        tracing::debug!(
            written = outcome.written,
            dropped = outcome.dropped,
            lost = outcome.lost,
            "audit stream closed"
        );
        outcome
    });
    runtime.shutdown_timeout(Duration::from_millis(100));
    match outcome {
        Ok(()) => {}
        // The reader has gone: stop quietly, as a filter in a pipeline should.
        Err(e) if e.is_output_closed() => {}
        Err(e) => return Err(Failure::Runtime(e.to_string())),
    }
    // The redacted stream was never held up by the audit; but an incomplete
    // audit is a failure the caller must hear of.
    match (audit, &config.audit) {
        (Some(audit), Some(target)) if !audit.is_complete() => Err(Failure::Runtime(format!(
            "the audit stream {} is incomplete: {} record(s) could not be written, {} dropped because the writer was behind",
            describe_audit(target),
            audit.lost,
            audit.dropped
        ))),
        _ => Ok(()),
    }
}

fn describe_audit(target: &AuditTarget) -> String {
    match target {
        AuditTarget::Stderr => "on standard error".into(),
        AuditTarget::File(path) => path.display().to_string(),
    }
}

fn check_config(path: &Path) -> Result<(), Failure> {
    let config = Config::load(path)?;
    let (key, key_origin) = fingerprint_key(None, &config)?;
    let rules = config.compile(key, &key_origin)?;
    let mut out = io::stdout().lock();
    let specs = rules.specs();
    let id_width = specs.iter().map(|s| s.id.len()).max().unwrap_or(0).max(2);
    let pattern_width = specs
        .iter()
        .map(|s| s.pattern.len())
        .max()
        .unwrap_or(0)
        .max(7);
    let print = |out: &mut io::StdoutLock<'_>, id: &str, pattern: &str, mask: &str| {
        writeln!(out, "{id:<id_width$}  {pattern:<pattern_width$}  {mask}")
    };
    let result = (|| {
        writeln!(out, "{}: OK, {} rule(s)", path.display(), specs.len())?;
        print(&mut out, "ID", "PATTERN", "MASK")?;
        for spec in specs {
            print(&mut out, &spec.id, &spec.pattern, &spec.mask)?;
        }
        out.flush()
    })();
    result.map_err(|e| Failure::Runtime(format!("writing stdout: {e}")))
}

fn audit_summary(path: &Path, json: bool) -> Result<(), Failure> {
    let origin = path.display().to_string();
    let summary = if origin == "-" {
        Summary::read(io::stdin().lock(), "stdin")
    } else {
        let file =
            std::fs::File::open(path).map_err(|e| Failure::Runtime(format!("{origin}: {e}")))?;
        Summary::read(BufReader::with_capacity(64 * 1024, file), &origin)
    }
    .map_err(|e| Failure::Runtime(e.to_string()))?;
    if summary.skipped_partial_line {
        tracing::warn!(file = %origin, "the last line is incomplete (still being written?) and was skipped");
    }
    let mut out = io::stdout().lock();
    let written = if json {
        summary.write_json(&mut out)
    } else {
        summary.write_table(&mut out)
    };
    match written.and_then(|()| out.flush()) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Ok(()),
        Err(e) => Err(Failure::Runtime(format!("writing stdout: {e}"))),
    }
}

/// logredact's own log: stderr, filtered by `LOGREDACT_LOG` (default `info`).
fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("LOGREDACT_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(|| ScrubbedStderr);
    match format {
        LogFormat::Text => builder.with_ansi(io::stderr().is_terminal()).init(),
        LogFormat::Json => builder.json().init(),
    }
}
