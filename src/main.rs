//! The `logredact` command: parses the command line, loads and checks the
//! configuration, runs the pipeline, and maps the outcome to an exit status
//! (0 done, 1 runtime failure, 2 bad usage or configuration). Every message
//! printed here passes through the default rules first, so that not even an
//! error about a malformed file can carry a token.

use std::io::{self, BufReader, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use logredact::app::{self, Overrides, RunError, Settings};
use logredact::audit::Summary;
use logredact::config::{self, AuditTarget, ConfigError, InputSpec, OutputSpec};
use logredact::export::{self, PackVersion};
use logredact::reload::SettingsSource;
use logredact::scrub::{ScrubbedStderr, scrub};

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

    #[command(flatten)]
    run: RunFlags,

    /// Reload when the configuration file, a rule pack it includes or the
    /// fingerprint key file changes (checked every second), as SIGHUP does;
    /// for a ConfigMap mounted as a volume. Needs --config.
    #[arg(long, requires = "config")]
    watch_config: bool,

    /// Seconds to drain streams after SIGTERM or SIGINT before cutting them.
    #[arg(long, value_name = "SECS", default_value = "10", value_parser = parse_seconds)]
    shutdown_grace: Duration,

    /// Format of logredact's own log lines on stderr.
    #[arg(long, value_name = "FORMAT", value_enum, default_value = "text")]
    log_format: LogFormat,

    #[command(subcommand)]
    command: Option<Command>,
}

/// Where a run reads, writes and keeps its state: the flags that
/// `check-config` takes too, to check a deployment.
#[derive(Debug, clap::Args)]
struct RunFlags {
    /// A stream to read: `-` (stdin, the default), `file:PATH` (read to the
    /// end), `follow:PATH` (like tail -F, checkpointed in --state-dir),
    /// `tcp://HOST:PORT` (listen; each connection is a stream),
    /// `tls://HOST:PORT` (the same over TLS, with the configuration's
    /// tls.server), `forward://HOST:PORT` (listen for Fluent forward peers)
    /// or `forward+tls://HOST:PORT` (the same over TLS). Repeatable; replaces
    /// the configuration's inputs.
    #[arg(long, value_name = "SPEC")]
    input: Vec<InputSpec>,

    /// Where the redacted output goes: `-` (stdout, the default), `file:PATH`
    /// (append), `tcp://HOST:PORT` (connect; with a TCP input, one upstream
    /// connection per inbound connection), `tls://HOST:PORT` (the same over
    /// TLS, with the configuration's tls.client), `forward://HOST:PORT` (the
    /// next Fluent forward hop, for forward:// inputs) or
    /// `forward+tls://HOST:PORT` (the same over TLS).
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
}

impl RunFlags {
    /// Whether any flag is given.
    fn any(&self) -> bool {
        !self.input.is_empty()
            || self.output.is_some()
            || self.audit.is_some()
            || self.fingerprint_key_file.is_some()
            || self.admin.is_some()
            || self.state_dir.is_some()
    }

    /// The flags as a run's overrides.
    fn overrides(self, shutdown_grace: Duration) -> Overrides {
        Overrides {
            inputs: self.input,
            output: self.output,
            audit: self.audit,
            admin: self.admin,
            state_dir: self.state_dir,
            fingerprint_key_file: self.fingerprint_key_file,
            shutdown_grace,
        }
    }
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
    /// Validate a configuration file and print the rules it would run. With
    /// any of a run's flags (or --deployment), also check what that run would
    /// need at its start: the state directory and audit file can be created
    /// or written, the admin address and TCP inputs can listen, a TCP
    /// output's host resolves. (The TLS files of tls:// inputs and outputs
    /// are read in any case.) Nothing is created.
    CheckConfig {
        /// The configuration file.
        path: PathBuf,

        /// Check the deployment with the file's values alone (implied by
        /// any of the flags below).
        #[arg(long)]
        deployment: bool,

        #[command(flatten)]
        run: RunFlags,
    },
    /// Run the rule tests (`tests:`) of each configuration file or rule
    /// pack, and of the packs it includes, against the rules a run with that
    /// file would have: each input whole and one byte at a time. Prints a
    /// line per file, and a diff per failed test; exits 0 if all pass, 1 if
    /// any fails, 2 if a file is refused. Without a FILE, tests the built-in
    /// configuration.
    Test {
        /// Configuration files or rule packs.
        files: Vec<PathBuf>,
    },
    /// Write the rules a run would have (built-in, file, included packs) for
    /// a data loss prevention product: a Microsoft Purview rule package
    /// (XML, UTF-16), a Google Cloud DLP inspect template or Amazon Macie
    /// custom data identifiers (JSON). What the product cannot express is
    /// listed in the output and on standard error; a rule whose pattern it
    /// cannot match is left out, with the reason. Exits 2 if the
    /// configuration is refused or no rule can be exported.
    ExportRules {
        /// The product.
        #[arg(long, value_enum)]
        format: ExportFormat,
        /// Configuration file (YAML); without it, the built-in default.
        #[arg(long, value_name = "PATH")]
        config: Option<PathBuf>,
        /// Write to FILE (replacing it) instead of standard output.
        #[arg(long, value_name = "FILE")]
        output: Option<PathBuf>,
        /// Version of the Purview rule package, MAJOR.MINOR.BUILD.REVISION
        /// (default 1.0.0.0): Microsoft 365 deploys an update of an uploaded
        /// package only if its version is higher.
        #[arg(long, value_name = "VERSION")]
        purview_version: Option<PackVersion>,
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

/// The products `export-rules` writes for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum ExportFormat {
    /// Microsoft Purview: a sensitive information type rule package.
    Purview,
    /// Google Cloud DLP: an inspect template.
    GcpDlp,
    /// Amazon Macie: custom data identifiers.
    Macie,
}

impl From<ExportFormat> for export::Format {
    fn from(format: ExportFormat) -> export::Format {
        match format {
            ExportFormat::Purview => export::Format::Purview,
            ExportFormat::GcpDlp => export::Format::GcpDlp,
            ExportFormat::Macie => export::Format::Macie,
        }
    }
}

/// Exit status for a runtime failure.
const EXIT_RUNTIME: u8 = 1;
/// Exit status for bad usage or configuration.
const EXIT_USAGE: u8 = 2;

/// Why the command failed, as its exit status tells it.
enum Failure {
    Usage(String),
    Runtime(String),
}

impl From<ConfigError> for Failure {
    fn from(error: ConfigError) -> Failure {
        Failure::Usage(error.to_string())
    }
}

impl From<RunError> for Failure {
    fn from(error: RunError) -> Failure {
        match error.is_usage() {
            true => Failure::Usage(error.to_string()),
            false => Failure::Runtime(error.to_string()),
        }
    }
}

fn main() -> ExitCode {
    let mut cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(error) => return usage_error(&error),
    };
    let log_format = cli.log_format;
    init_logging(log_format);
    raise_open_file_limit();
    let result = match cli.command.take() {
        Some(Command::CheckConfig {
            path,
            deployment,
            run,
        }) => check_config(&path, deployment, run),
        Some(Command::AuditSummary { path, json }) => audit_summary(&path, json),
        Some(Command::Test { files }) => test_rules(&files),
        Some(Command::ExportRules {
            format,
            config,
            output,
            purview_version,
        }) => export_rules(
            format.into(),
            config.as_deref(),
            output.as_deref(),
            purview_version,
        ),
        None => run(cli),
    };
    let (message, code) = match result {
        Ok(()) => return ExitCode::SUCCESS,
        Err(Failure::Usage(message)) => (message, EXIT_USAGE),
        Err(Failure::Runtime(message)) => (message, EXIT_RUNTIME),
    };
    report_fatal(log_format, &scrub(&message));
    ExitCode::from(code)
}

/// Raises the soft limit on open files to the hard one: a thousand TCP
/// connections and followed files need more than the usual soft 1024.
fn raise_open_file_limit() {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit and setrlimit only read and write the struct given.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) == 0 && limit.rlim_cur < limit.rlim_max
        {
            let soft = limit.rlim_cur;
            limit.rlim_cur = limit.rlim_max;
            if libc::setrlimit(libc::RLIMIT_NOFILE, &limit) == 0 {
                tracing::debug!(
                    from = soft,
                    to = limit.rlim_max,
                    "raised the limit on open files"
                );
            }
        }
    }
}

/// Prints clap's message (an error, or the help or version asked for),
/// masked like everything logredact prints: clap quotes the argument it
/// refuses, and the argument may be a secret.
fn usage_error(error: &clap::Error) -> ExitCode {
    // Masked before escape sequences are stripped, as clap strips them from
    // its plain text: an ESC right before a token takes the token's `d` with
    // it, and what is left is no longer a token. Masked again after, for a
    // token whose pieces an escape sequence kept apart.
    let styled = scrub(&error.render().ansi().to_string());
    let text = scrub(&anstream::adapter::strip_str(&styled).to_string());
    if error.use_stderr() {
        eprint!("{text}");
    } else {
        print!("{text}");
    }
    ExitCode::from(u8::try_from(error.exit_code()).unwrap_or(EXIT_USAGE))
}

/// The one line that says why logredact stopped. It is printed whatever
/// `LOGREDACT_LOG` filters, and with `--log-format json` it is a JSON record
/// like every other log line, so that a log collector parsing them keeps it.
/// A message of several lines (every problem `check-config` found) is one
/// such line each.
fn report_fatal(format: LogFormat, message: &str) {
    for line in message.lines() {
        report_fatal_line(format, line);
    }
}

fn report_fatal_line(format: LogFormat, message: &str) {
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

/// A run: the command line over the configuration file.
fn run(cli: Cli) -> Result<(), Failure> {
    // SIGHUP reloads once the runtime is up; until then it is ignored
    // rather than ending the process (its default).
    // SAFETY: setting a signal's disposition to SIG_IGN installs no handler.
    unsafe {
        libc::signal(libc::SIGHUP, libc::SIG_IGN);
    }
    let source = SettingsSource {
        config: cli.config,
        overrides: cli.run.overrides(cli.shutdown_grace),
        key_env: std::env::var_os(config::KEY_ENV),
        watch_config: cli.watch_config,
    };
    let settings = source.resolve()?;
    Ok(app::run(settings, source)?)
}

fn check_config(path: &Path, deployment: bool, flags: RunFlags) -> Result<(), Failure> {
    let key_env = std::env::var_os(config::KEY_ENV);
    let deployment = deployment || flags.any();
    // The grace period plays no part in the checks.
    let overrides = flags.overrides(Duration::ZERO);
    let settings = app::check_config(path, overrides, key_env.as_deref())?;
    let report = deployment.then(|| logredact::deployment::check(&settings));
    if let Some(problems) = report
        .as_ref()
        .map(|r| &r.problems)
        .filter(|p| !p.is_empty())
    {
        return Err(Failure::Usage(problems.join("\n")));
    }
    let mut out = io::stdout().lock();
    // Masked like every message: the path, a rule's id or its mask may hold
    // a token.
    let specs: Vec<[String; 3]> = settings
        .rules
        .specs()
        .iter()
        .map(|s| [scrub(&s.id), scrub(&s.pattern), scrub(&s.mask)])
        .collect();
    let id_width = specs.iter().map(|s| s[0].len()).max().unwrap_or(0).max(2);
    let pattern_width = specs.iter().map(|s| s[1].len()).max().unwrap_or(0).max(7);
    let print = |out: &mut io::StdoutLock<'_>, id: &str, pattern: &str, mask: &str| {
        writeln!(out, "{id:<id_width$}  {pattern:<pattern_width$}  {mask}")
    };
    let result = (|| {
        let shown = scrub(&path.display().to_string());
        writeln!(out, "{shown}: OK, {} rule(s)", specs.len())?;
        print(&mut out, "ID", "PATTERN", "MASK")?;
        for [id, pattern, mask] in &specs {
            print(&mut out, id, pattern, mask)?;
        }
        for checked in report.iter().flat_map(|r| &r.checked) {
            writeln!(out, "deployment: {}: OK", scrub(checked))?;
        }
        out.flush()
    })();
    result.map_err(|e| Failure::Runtime(format!("writing stdout: {e}")))
}

/// `logredact test`: every file's tests, each file loaded as `--config`
/// would load it.
fn test_rules(files: &[PathBuf]) -> Result<(), Failure> {
    let key_env = std::env::var_os(config::KEY_ENV);
    let targets: Vec<Option<&Path>> = match files.is_empty() {
        true => vec![None],
        false => files.iter().map(|file| Some(file.as_path())).collect(),
    };
    let mut refused = Vec::new();
    let (mut failed, mut total) = (0, 0);
    let mut out = io::stdout().lock();
    for target in targets {
        let loaded = app::load_config(target).and_then(|config| {
            let tests = config.tests.clone();
            let settings = Settings::resolve(Overrides::default(), config, key_env.as_deref())?;
            Ok((settings.rules, tests))
        });
        let (rules, tests) = match loaded {
            Ok(loaded) => loaded,
            Err(error) => {
                refused.push(error.to_string());
                continue;
            }
        };
        let outcome = logredact::ruletest::run(&rules, &tests);
        let shown = target.map_or(config::BUILTIN_ORIGIN.to_string(), |path| {
            path.display().to_string()
        });
        outcome
            .write_report(&shown, &mut out)
            .and_then(|()| out.flush())
            .map_err(|e| Failure::Runtime(format!("writing stdout: {e}")))?;
        failed += outcome.failed();
        total += outcome.total;
    }
    if !refused.is_empty() {
        return Err(Failure::Usage(refused.join("\n")));
    }
    if failed > 0 {
        return Err(Failure::Runtime(format!(
            "{failed} of {total} rule test(s) failed"
        )));
    }
    Ok(())
}

/// `logredact export-rules`: the rules for a DLP product, and on standard
/// error what it cannot express.
fn export_rules(
    format: export::Format,
    config: Option<&Path>,
    output: Option<&Path>,
    purview_version: Option<PackVersion>,
) -> Result<(), Failure> {
    if purview_version.is_some() && format != export::Format::Purview {
        return Err(Failure::Usage(format!(
            "--purview-version is for --format purview, not --format {format}"
        )));
    }
    let config = app::load_config(config)?;
    config.check_rules()?;
    let options = export::Options {
        format,
        pack_version: purview_version.unwrap_or_default(),
    };
    let exported = export::export(&config.rules, &options)
        .map_err(|error| Failure::Usage(error.to_string()))?;
    let written = match output {
        Some(path) => std::fs::write(path, &exported.bytes)
            .map_err(|e| format!("writing {}: {e}", path.display())),
        None => {
            let mut out = io::stdout().lock();
            match out.write_all(&exported.bytes).and_then(|()| out.flush()) {
                Err(e) if e.kind() != io::ErrorKind::BrokenPipe => {
                    Err(format!("writing stdout: {e}"))
                }
                _ => Ok(()),
            }
        }
    };
    written.map_err(Failure::Runtime)?;
    // Masked like every message: a term or a rule id may hold a token.
    let product = format.product();
    for note in &exported.notes {
        eprintln!(
            "logredact: export-rules: {product}: {}",
            scrub(&note.to_string())
        );
    }
    eprintln!(
        "logredact: export-rules: {} rule(s) exported to {product}, {} left out",
        exported.exported.len(),
        exported.refused.len()
    );
    Ok(())
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
    // Buffered: standard output flushes every line, and a summary can have
    // a million of them.
    let mut out = io::BufWriter::with_capacity(64 * 1024, io::stdout().lock());
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
        LogFormat::Text => builder
            .with_ansi(colours_logs(
                std::env::var_os("NO_COLOR").as_deref(),
                io::stderr().is_terminal(),
            ))
            .init(),
        LogFormat::Json => builder.json().init(),
    }
}

/// Whether the text log is coloured: only on a terminal, and never when
/// `NO_COLOR` holds any non-empty value (<https://no-color.org>).
fn colours_logs(no_color: Option<&std::ffi::OsStr>, stderr_is_terminal: bool) -> bool {
    stderr_is_terminal && no_color.is_none_or(|value| value.is_empty())
}
