//! A run of logredact, as the binary starts it: the settings are resolved
//! first (command line over file over environment), then the pieces are built
//! (metrics, audit writer, runtime, admin endpoint) and the pipeline runs.
//! Everything here returns typed errors; the binary turns them into the one
//! fatal line and the exit status.

use std::ffi::OsStr;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use crate::admin::Admin;
use crate::audit::{AuditOutcome, AuditWriter};
use crate::config::{
    self, AuditTarget, Config, ConfigError, GivenIn, InputSpec, KeyOrigin, OutputSpec,
};
use crate::metrics::Metrics;
use crate::pipeline::{self, PipelineError, PublishedRules, StreamEnv, Topology};
use crate::reload::{Reloader, SettingsSource};
use crate::scan::fingerprint::FingerprintKey;
use crate::scan::rule::RuleSet;
use crate::scan::scanner::DetectionMode;
use crate::shutdown::Shutdown;

/// What the command line says, each value replacing the file's.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    /// `--input`: replaces the file's inputs unless empty.
    pub inputs: Vec<InputSpec>,
    /// `--output`.
    pub output: Option<OutputSpec>,
    /// `--audit`.
    pub audit: Option<AuditTarget>,
    /// `--admin`.
    pub admin: Option<String>,
    /// `--state-dir`.
    pub state_dir: Option<PathBuf>,
    /// `--fingerprint-key-file`.
    pub fingerprint_key_file: Option<PathBuf>,
    /// `--shutdown-grace`.
    pub shutdown_grace: Duration,
}

/// Everything a run needs, resolved and checked.
pub struct Settings {
    /// The compiled rules.
    pub rules: Arc<RuleSet>,
    /// Inputs, output, limits and state directory.
    pub topology: Topology,
    /// Where the audit stream goes, if anywhere.
    pub audit: Option<AuditTarget>,
    /// The admin endpoint's address, if any.
    pub admin: Option<String>,
    /// Whether detections are classified.
    pub mode: DetectionMode,
    /// Where the fingerprint key came from.
    pub key_origin: KeyOrigin,
    /// How long streams drain after SIGTERM or SIGINT.
    pub shutdown_grace: Duration,
    /// The rule packs the configuration includes.
    pub included: Vec<PathBuf>,
    /// The `tls:` settings, as written (a reload compares them).
    pub tls_settings: crate::config::TlsSettings,
    /// Whether anyone sees fingerprints (an audit stream, a mask with
    /// `{fingerprint}`): then a random key deserves a warning.
    fingerprints_visible: bool,
}

impl std::fmt::Debug for Settings {
    // The rules hold the fingerprint key: never printed.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Settings")
            .field("rules", &self.rules.specs().len())
            .field("topology", &self.topology)
            .field("audit", &self.audit)
            .field("admin", &self.admin)
            .field("mode", &self.mode)
            .field("key_origin", &self.key_origin)
            .field("shutdown_grace", &self.shutdown_grace)
            .finish()
    }
}

/// The configuration file at `path`, or the built-in one.
pub fn load_config(path: Option<&Path>) -> Result<Config, ConfigError> {
    match path {
        Some(path) => Config::load(path),
        None => Ok(Config::builtin()),
    }
}

/// The fingerprint key, in order of precedence: `key_file` (the command
/// line's), `audit.fingerprint_key_file`, the environment variable's value
/// `from_env`, random.
pub fn fingerprint_key(
    key_file: Option<&Path>,
    config: &Config,
    from_env: Option<&OsStr>,
) -> Result<(FingerprintKey, KeyOrigin), ConfigError> {
    let file = key_file.or(config.fingerprint_key_file.as_deref());
    config::resolve_key(file, from_env)
}

/// Loads the configuration file at `path` and resolves a run's settings
/// from it and `overrides` (the command line), as a run would: the rules
/// compiled with the key from the flag, the file or the environment.
pub fn check_config(
    path: &Path,
    overrides: Overrides,
    key_env: Option<&OsStr>,
) -> Result<Settings, ConfigError> {
    Settings::resolve(overrides, Config::load(path)?, key_env)
}

impl Settings {
    /// The settings of a run: `overrides` (the command line) over `config`
    /// (the file), over `key_env` (the value of `LOGREDACT_FINGERPRINT_KEY`)
    /// for the key. Reads nothing but the key file and the TLS files that
    /// the `tls://` inputs and output need.
    pub fn resolve(
        overrides: Overrides,
        config: Config,
        key_env: Option<&OsStr>,
    ) -> Result<Settings, ConfigError> {
        Settings::resolve_keeping(overrides, config, key_env, None)
    }

    /// As [`Settings::resolve`], but where no key is configured the random
    /// key `random` is kept rather than a new one drawn: a reload must not
    /// change the fingerprints a process shows.
    pub(crate) fn resolve_keeping(
        overrides: Overrides,
        mut config: Config,
        key_env: Option<&OsStr>,
        random: Option<&FingerprintKey>,
    ) -> Result<Settings, ConfigError> {
        let given_in = |on_command_line: bool| match on_command_line {
            true => GivenIn::CommandLine,
            false => GivenIn::File,
        };
        let inputs_given_in = given_in(!overrides.inputs.is_empty());
        let output_given_in = given_in(overrides.output.is_some());
        if !overrides.inputs.is_empty() {
            config.inputs = overrides.inputs;
        }
        config.output = overrides.output.unwrap_or(config.output);
        config.audit = overrides.audit.or(config.audit);
        config.admin = overrides.admin.or(config.admin);
        config.state_dir = overrides.state_dir.or(config.state_dir);
        crate::forward::check_topology(&config.inputs, &config.output)
            .map_err(|message| ConfigError::new(config.origin(), message))?;
        let key_file = overrides.fingerprint_key_file.as_deref();
        let (key, key_origin) = match (fingerprint_key(key_file, &config, key_env)?, random) {
            ((_, KeyOrigin::Random), Some(kept)) => (kept.clone(), KeyOrigin::Random),
            (resolved, _) => resolved,
        };
        let rules = Arc::new(config.compile(key, &key_origin)?);
        let tls = config.load_tls(inputs_given_in, output_given_in)?;
        let fingerprints_visible = config.audit.is_some()
            || config
                .rules
                .iter()
                .any(|rule| rule.mask.contains("{fingerprint}"));
        // Detections are classified only when someone reads them.
        let mode = if config.audit.is_some() || config.admin.is_some() {
            DetectionMode::Classify
        } else {
            DetectionMode::MaskOnly
        };
        Ok(Settings {
            rules,
            topology: Topology {
                inputs: config.inputs,
                output: config.output,
                limits: config.limits,
                tls,
                state_dir: config.state_dir,
                audit_file: match &config.audit {
                    Some(crate::config::AuditTarget::File(path)) => Some(path.clone()),
                    _ => None,
                },
                forward: config.forward,
            },
            audit: config.audit,
            admin: config.admin,
            mode,
            key_origin,
            shutdown_grace: overrides.shutdown_grace,
            included: config.included,
            tls_settings: config.tls,
            fingerprints_visible,
        })
    }

    /// Whether fingerprints are shown but only comparable within this
    /// process (no key configured).
    pub fn warns_of_random_key(&self) -> bool {
        self.key_origin == KeyOrigin::Random && self.fingerprints_visible
    }
}

/// Why a run failed.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The configuration or the command line is wrong (exit status 2).
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The audit stream could not be opened.
    #[error("cannot open the audit stream {target}: {source}")]
    Audit {
        /// The audit target, as messages name it.
        target: String,
        /// The error.
        source: io::Error,
    },
    /// The async runtime could not be started.
    #[error("cannot start the runtime: {0}")]
    Runtime(io::Error),
    /// The signal handlers could not be installed.
    #[error("cannot install signal handlers: {0}")]
    Signals(io::Error),
    /// The admin endpoint could not listen.
    #[error("cannot listen on the admin address {address}: {source}")]
    Admin {
        /// The address.
        address: String,
        /// The error.
        source: io::Error,
    },
    /// The pipeline failed.
    #[error(transparent)]
    Pipeline(#[from] PipelineError),
    /// The redacted stream is complete but the audit stream is not.
    #[error(
        "the audit stream {target} is incomplete: {lost} record(s) could not be written, {dropped} dropped because the writer was behind"
    )]
    AuditIncomplete {
        /// The audit target, as messages name it.
        target: String,
        /// Records whose write failed.
        lost: u64,
        /// Records dropped because the writer was behind.
        dropped: u64,
    },
}

impl RunError {
    /// Whether the failure is bad usage or configuration (exit status 2)
    /// rather than a runtime failure (exit status 1).
    pub fn is_usage(&self) -> bool {
        matches!(self, RunError::Config(_))
    }
}

/// The audit target as messages name it.
fn describe_audit(target: &AuditTarget) -> String {
    match target {
        AuditTarget::Stderr => "on standard error".into(),
        AuditTarget::File(path) => path.display().to_string(),
    }
}

/// Runs logredact with `settings`, read from `source`, until its inputs end
/// or it is stopped; SIGHUP reloads from `source`.
pub fn run(settings: Settings, source: SettingsSource) -> Result<(), RunError> {
    if settings.warns_of_random_key() {
        tracing::warn!(
            "no fingerprint key configured (--fingerprint-key-file, audit.fingerprint_key_file or {}): using a random key, so fingerprints are only comparable within this process",
            config::KEY_ENV
        );
    }
    let metrics = Arc::new(Metrics::new());
    let audit = match &settings.audit {
        Some(target) => Some(AuditWriter::start(target, Arc::clone(&metrics)).map_err(
            |source| RunError::Audit {
                target: describe_audit(target),
                source,
            },
        )?),
        None => None,
    };
    let (rules, rules_in_force) = watch::channel(PublishedRules {
        generation: 0,
        rules: Arc::clone(&settings.rules),
    });
    let env = StreamEnv {
        rules: rules_in_force,
        audit: audit.as_ref().map(AuditWriter::handle),
        metrics: Arc::clone(&metrics),
        mode: settings.mode,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(RunError::Runtime)?;
    let run = Run {
        topology: settings.topology.clone(),
        admin: settings.admin.clone(),
        shutdown_grace: settings.shutdown_grace,
    };
    let audit_target = settings.audit.clone();
    let outcome = runtime.block_on(async {
        // First of all: from here on SIGHUP reloads instead of ending the process.
        let reloader = Reloader::install(source, settings, rules, Arc::clone(&metrics))
            .map_err(RunError::Signals)?;
        tokio::spawn(reloader.run());
        serve(&run, env, metrics).await
    });
    // The streams have ended: the audit writer gets its last records.
    let audit = audit.map(finish_audit);
    runtime.shutdown_timeout(Duration::from_millis(100));
    match outcome {
        // The reader has gone: stop quietly, as a filter in a pipeline should.
        Err(RunError::Pipeline(e)) if e.is_output_closed() => {}
        other => other?,
    }
    // The redacted stream was never held up by the audit; but an incomplete
    // audit is a failure the caller must hear of.
    match (audit, &audit_target) {
        (Some(audit), Some(target)) if !audit.is_complete() => Err(RunError::AuditIncomplete {
            target: describe_audit(target),
            lost: audit.lost,
            dropped: audit.dropped,
        }),
        _ => Ok(()),
    }
}

/// What the runtime needs of a run's settings: what a reload cannot change.
struct Run {
    topology: Topology,
    admin: Option<String>,
    shutdown_grace: Duration,
}

/// Inside the runtime: signals, the admin endpoint, then the pipeline.
async fn serve(settings: &Run, env: StreamEnv, metrics: Arc<Metrics>) -> Result<(), RunError> {
    let shutdown = Shutdown::new();
    shutdown
        .listen_for_signals(settings.shutdown_grace)
        .map_err(RunError::Signals)?;
    if let Some(address) = &settings.admin {
        let endpoint = Admin::bind(address)
            .await
            .map_err(|source| RunError::Admin {
                address: address.clone(),
                source,
            })?;
        let bound = endpoint
            .address()
            .map_or_else(|_| address.clone(), |a| a.to_string());
        tracing::info!(admin = %bound, "admin endpoint: /metrics /healthz /readyz");
        endpoint.serve(metrics, shutdown.stopping.clone());
    }
    Ok(pipeline::run(&settings.topology, env, shutdown).await?)
}

/// Closes the audit stream once the streams have ended.
fn finish_audit(writer: AuditWriter) -> AuditOutcome {
    let outcome = writer.finish();
    tracing::debug!(
        written = outcome.written,
        dropped = outcome.dropped,
        lost = outcome.lost,
        "audit stream closed"
    );
    outcome
}

#[cfg(test)]
mod tests {
    use std::ffi::OsString;
    use std::fs;

    use super::*;

    /// A configuration file that sets everything the command line can.
    const FILE: &str = "
inputs: ['file:from-file.log']
output: 'tcp://collector:5170'
audit: { path: file-audit.jsonl }
admin: { listen: '127.0.0.1:9102' }
state_dir: /file/state
rules:
  - id: databricks-pat
    pattern: '\\bdapi[0-9a-f]{32}\\b'
";

    fn file_config() -> Config {
        Config::parse(FILE, "test.yaml", None).unwrap()
    }

    /// A key file of this process, holding `material`.
    fn key_file(name: &str, material: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("logredact-app-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let path = dir.join(name);
        fs::write(&path, material).unwrap();
        path
    }

    fn overrides() -> Overrides {
        Overrides {
            shutdown_grace: Duration::from_secs(10),
            ..Overrides::default()
        }
    }

    #[test]
    fn the_command_line_wins_over_the_file() {
        let cli = Overrides {
            inputs: vec![InputSpec::Stdin, "tcp://0.0.0.0:5170".parse().unwrap()],
            output: Some(OutputSpec::Stdout),
            audit: Some(AuditTarget::Stderr),
            admin: Some("127.0.0.1:9999".into()),
            state_dir: Some(PathBuf::from("/cli/state")),
            ..overrides()
        };
        let settings = Settings::resolve(cli, file_config(), None).unwrap();
        let topology = &settings.topology;
        assert_eq!(
            topology.inputs,
            vec![InputSpec::Stdin, InputSpec::Tcp("0.0.0.0:5170".into())]
        );
        assert_eq!(topology.output, OutputSpec::Stdout);
        assert_eq!(topology.state_dir, Some(PathBuf::from("/cli/state")));
        assert_eq!(settings.audit, Some(AuditTarget::Stderr));
        assert_eq!(settings.admin.as_deref(), Some("127.0.0.1:9999"));
    }

    #[test]
    fn the_file_holds_where_the_command_line_is_silent() {
        let settings = Settings::resolve(overrides(), file_config(), None).unwrap();
        let topology = &settings.topology;
        assert_eq!(
            topology.inputs,
            vec![InputSpec::File(PathBuf::from("from-file.log"))]
        );
        assert_eq!(topology.output, OutputSpec::Tcp("collector:5170".into()));
        assert_eq!(topology.state_dir, Some(PathBuf::from("/file/state")));
        assert_eq!(
            settings.audit,
            Some(AuditTarget::File(PathBuf::from("file-audit.jsonl")))
        );
        assert_eq!(settings.admin.as_deref(), Some("127.0.0.1:9102"));
        assert_eq!(settings.shutdown_grace, Duration::from_secs(10));
    }

    #[test]
    fn without_a_file_the_builtin_defaults_hold() {
        let settings = Settings::resolve(overrides(), load_config(None).unwrap(), None).unwrap();
        assert_eq!(settings.topology.inputs, vec![InputSpec::Stdin]);
        assert_eq!(settings.topology.output, OutputSpec::Stdout);
        assert_eq!(settings.audit, None);
        assert_eq!(
            settings.rules.specs()[0].id,
            crate::defaults::DATABRICKS_PAT
        );
    }

    #[test]
    fn detections_are_classified_only_when_someone_reads_them() {
        let builtin = || Config::builtin();
        let mode = |cli: Overrides| Settings::resolve(cli, builtin(), None).unwrap().mode;
        assert_eq!(mode(overrides()), DetectionMode::MaskOnly);
        let audit = Overrides {
            audit: Some(AuditTarget::Stderr),
            ..overrides()
        };
        assert_eq!(mode(audit), DetectionMode::Classify);
        let admin = Overrides {
            admin: Some("127.0.0.1:0".into()),
            ..overrides()
        };
        assert_eq!(mode(admin), DetectionMode::Classify);
        // From the file too.
        let settings = Settings::resolve(overrides(), file_config(), None).unwrap();
        assert_eq!(settings.mode, DetectionMode::Classify);
    }

    #[test]
    fn the_key_comes_from_the_flag_then_the_file_then_the_environment() {
        let flag_key = key_file("flag.key", "a key of the command line\n");
        let file_key = key_file("file.key", "a key of the configuration file\n");
        let with_file_key = || {
            let text = format!(
                "audit: {{ path: a.jsonl, fingerprint_key_file: '{}' }}\n",
                file_key.display()
            );
            Config::parse(&text, "test.yaml", None).unwrap()
        };
        let env = OsString::from("a key of the environment variable");
        let origin = |cli: Overrides, config: Config, env: Option<&OsStr>| {
            Settings::resolve(cli, config, env).unwrap().key_origin
        };
        let flag = Overrides {
            fingerprint_key_file: Some(flag_key.clone()),
            ..overrides()
        };
        assert_eq!(
            origin(flag, with_file_key(), Some(&env)),
            KeyOrigin::File(flag_key)
        );
        assert_eq!(
            origin(overrides(), with_file_key(), Some(&env)),
            KeyOrigin::File(file_key)
        );
        assert_eq!(
            origin(overrides(), Config::builtin(), Some(&env)),
            KeyOrigin::Environment
        );
        assert_eq!(
            origin(overrides(), Config::builtin(), None),
            KeyOrigin::Random
        );
    }

    #[test]
    fn a_random_key_is_worth_a_warning_only_where_fingerprints_are_seen() {
        let warns = |cli: Overrides, env: Option<&OsStr>| {
            Settings::resolve(cli, Config::builtin(), env)
                .unwrap()
                .warns_of_random_key()
        };
        let audit = || Overrides {
            audit: Some(AuditTarget::Stderr),
            ..overrides()
        };
        assert!(!warns(overrides(), None));
        assert!(warns(audit(), None));
        let env = OsString::from("a key of the environment variable");
        assert!(!warns(audit(), Some(&env)));
    }

    #[test]
    fn a_short_key_is_a_configuration_error() {
        let env = OsString::from("short");
        let error = Settings::resolve(overrides(), Config::builtin(), Some(&env)).unwrap_err();
        assert_eq!(
            error.to_string(),
            "LOGREDACT_FINGERPRINT_KEY: the key is 5 bytes; at least 16 are needed to keep fingerprints unguessable"
        );
        assert!(RunError::from(error).is_usage());
    }
}
