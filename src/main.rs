//! The `logredact` command: parses the command line, builds the pipeline and
//! maps the outcome to an exit status (0 done, 1 runtime failure, 2 bad usage
//! or configuration).

use std::process::ExitCode;
use std::sync::Arc;

use clap::Parser;
use logredact::pipeline;
use logredact::{FingerprintKey, RuleSet, defaults};

/// Streaming log redaction: masks Databricks personal access tokens (and other
/// secrets) in a byte stream, writing every other byte through unchanged.
///
/// With no arguments, reads standard input and writes the redacted stream to
/// standard output.
#[derive(Debug, Parser)]
#[command(name = "logredact", version, about, long_about)]
struct Cli {}

/// Exit status for a runtime failure.
const EXIT_RUNTIME: u8 = 1;
/// Exit status for bad usage or configuration.
const EXIT_USAGE: u8 = 2;

fn main() -> ExitCode {
    let _cli = Cli::parse();
    init_logging();
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure::Usage(message)) => {
            eprintln!("logredact: {message}");
            ExitCode::from(EXIT_USAGE)
        }
        Err(Failure::Runtime(message)) => {
            eprintln!("logredact: {message}");
            ExitCode::from(EXIT_RUNTIME)
        }
    }
}

enum Failure {
    Usage(String),
    Runtime(String),
}

fn run() -> Result<(), Failure> {
    let key = FingerprintKey::random()
        .map_err(|e| Failure::Runtime(format!("cannot get a random fingerprint key: {e}")))?;
    let rules =
        RuleSet::new(defaults::default_rules(), key).map_err(|e| Failure::Usage(e.to_string()))?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure::Runtime(format!("cannot start the runtime: {e}")))?;
    match runtime.block_on(pipeline::run_pipe(Arc::new(rules))) {
        Ok(stats) => {
            tracing::debug!(
                stream = "stdin",
                bytes_in = stats.bytes_in,
                bytes_out = stats.bytes_out,
                masked = stats.masked,
                "stream ended"
            );
            Ok(())
        }
        // The reader has gone: stop quietly, as a filter in a pipeline should.
        Err(e) if e.is_output_closed() => Ok(()),
        Err(e) => Err(Failure::Runtime(e.to_string())),
    }
}

fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("LOGREDACT_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}
