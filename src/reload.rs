//! Reloading the configuration of a running process: on SIGHUP, and with
//! `--watch-config` when the configuration file, a rule pack it includes or
//! the fingerprint key file changes.
//!
//! A reload reads everything again as a start would. What it may change is
//! the rules (patterns, masks, keywords, exclusions, windows, packs) and the
//! fingerprint key: they are published to every stream, which switches at a
//! point of its own, logged (see [`crate::Scanner::switch_rules`]). What it
//! may not change — inputs, output, audit stream, admin address, state
//! directory, limits, TLS settings, the forward handshake — is refused as a whole: a configuration is either in
//! force entirely or not at all, never half. A configuration that does not
//! load is refused the same way. Either refusal is logged with its reason and
//! counted (`logredact_reload_failures_total`); the process goes on with what
//! it had.

use std::ffi::OsString;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio::signal::unix::{Signal, SignalKind, signal};
use tokio::sync::watch;

use crate::app::{self, Overrides, Settings};
use crate::config::{ConfigError, KeyOrigin};
use crate::metrics::Metrics;
use crate::pipeline::PublishedRules;
use crate::scan::fingerprint::FingerprintKey;
use crate::scrub::scrub;

/// How often `--watch-config` looks at the watched files.
pub const WATCH_INTERVAL: Duration = Duration::from_secs(1);

/// Where a run's settings come from, kept so that a reload reads them again.
#[derive(Debug, Clone, Default)]
pub struct SettingsSource {
    /// `--config`, if given (else the built-in configuration).
    pub config: Option<PathBuf>,
    /// The command line's settings, which win over the file's.
    pub overrides: Overrides,
    /// The fingerprint key from the environment, as it was at start.
    pub key_env: Option<OsString>,
    /// `--watch-config`: reload when a watched file changes.
    pub watch_config: bool,
}

impl SettingsSource {
    /// Reads and resolves the settings, as a start does.
    pub fn resolve(&self) -> Result<Settings, ConfigError> {
        self.resolve_keeping(None)
    }

    /// Reads and resolves the settings; with no key configured, the random
    /// key `random` (a running process's) stays.
    fn resolve_keeping(&self, random: Option<&FingerprintKey>) -> Result<Settings, ConfigError> {
        let config = app::load_config(self.config.as_deref())?;
        let overrides = self.overrides.clone();
        Settings::resolve_keeping(overrides, config, self.key_env.as_deref(), random)
    }
}

/// What started a reload, as the log names it.
#[derive(Debug, Clone, Copy)]
enum Trigger {
    Hangup,
    FileChanged,
}

impl Trigger {
    fn name(self) -> &'static str {
        match self {
            Trigger::Hangup => "SIGHUP",
            Trigger::FileChanged => "a watched file changed",
        }
    }
}

/// Reloads the configuration when asked, for the whole life of the process.
pub(crate) struct Reloader {
    source: SettingsSource,
    running: Settings,
    rules: watch::Sender<PublishedRules>,
    metrics: Arc<Metrics>,
    hangup: Signal,
    generation: u64,
    watched: Vec<Watched>,
}

impl Reloader {
    /// Installs the SIGHUP handler (from now on SIGHUP never ends the
    /// process) for a run started with `running`, publishing new rules to
    /// `rules`. Must be called inside the runtime.
    pub(crate) fn install(
        source: SettingsSource,
        running: Settings,
        rules: watch::Sender<PublishedRules>,
        metrics: Arc<Metrics>,
    ) -> std::io::Result<Reloader> {
        let hangup = signal(SignalKind::hangup())?;
        let watched = match source.watch_config {
            true => watched_files(&source, &running),
            false => Vec::new(),
        };
        Ok(Reloader {
            source,
            running,
            rules,
            metrics,
            hangup,
            watched,
            generation: 0,
        })
    }

    /// Waits for SIGHUP (and watched files' changes) and reloads, until the
    /// process ends.
    pub(crate) async fn run(mut self) {
        let mut poll = tokio::time::interval(WATCH_INTERVAL);
        poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let trigger = tokio::select! {
                Some(()) = self.hangup.recv() => Trigger::Hangup,
                _ = poll.tick(), if self.source.watch_config => {
                    // Every stamp is brought up to date, not just the first changed.
                    let changed = self.watched.iter_mut().fold(false, |any, w| w.changed() | any);
                    if !changed {
                        continue;
                    }
                    Trigger::FileChanged
                }
            };
            self.reload(trigger).await;
        }
    }

    async fn reload(&mut self, trigger: Trigger) {
        let source = self.source.clone();
        let key = self.running.rules.key.clone();
        let loaded = tokio::task::spawn_blocking(move || source.resolve_keeping(Some(&key))).await;
        let next = match loaded {
            Ok(Ok(next)) => next,
            Ok(Err(error)) => {
                return self.refuse(trigger, &format!("the configuration is invalid: {error}"));
            }
            Err(join) => return self.refuse(trigger, &format!("loading failed: {join}")),
        };
        if self.source.watch_config {
            // Includes and the key file may have changed with the file.
            self.watched = watched_files(&self.source, &next);
        }
        let changed = fixed_changes(&self.running, &next);
        if !changed.is_empty() {
            return self.refuse(
                trigger,
                &format!("{} changed, which takes a restart", changed.join(", ")),
            );
        }
        let rules = Arc::clone(&next.rules);
        let count = rules.specs().len();
        self.running = next;
        self.generation += 1;
        self.rules.send_replace(PublishedRules {
            generation: self.generation,
            rules,
        });
        self.metrics.reloaded();
        tracing::info!(
            trigger = trigger.name(),
            rules = count,
            generation = self.generation,
            "configuration reloaded; each stream takes the new rules over at the first point where no match is in progress, and logs it"
        );
    }

    fn refuse(&self, trigger: Trigger, why: &str) {
        self.metrics.reload_failed();
        tracing::error!(
            trigger = trigger.name(),
            "reload refused; the running configuration stays in force: {}",
            scrub(why)
        );
    }
}

/// The settings a reload may not change that `next` changes, named as in
/// the configuration file.
fn fixed_changes(running: &Settings, next: &Settings) -> Vec<&'static str> {
    let (a, b) = (&running.topology, &next.topology);
    [
        ("inputs", a.inputs != b.inputs),
        ("output", a.output != b.output),
        ("audit", running.audit != next.audit),
        ("admin", running.admin != next.admin),
        ("state_dir", a.state_dir != b.state_dir),
        ("limits", a.limits != b.limits),
        ("tls", running.tls_settings != next.tls_settings),
        ("forward", a.forward != b.forward),
    ]
    .into_iter()
    .filter_map(|(name, differs)| differs.then_some(name))
    .collect()
}

/// The files a reload reads: the configuration, its rule packs, the key file.
fn watched_files(source: &SettingsSource, settings: &Settings) -> Vec<Watched> {
    let key = match &settings.key_origin {
        KeyOrigin::File(path) => Some(path.clone()),
        _ => None,
    };
    source
        .config
        .iter()
        .cloned()
        .chain(settings.included.iter().cloned())
        .chain(key)
        .map(Watched::new)
        .collect()
}

/// A watched file and what it looked like when last seen.
struct Watched {
    path: PathBuf,
    stamp: Option<Stamp>,
}

/// What tells one version of a file from another: a ConfigMap update swaps
/// a symbolic link (another inode); an editor or `cp` changes the times and
/// usually the size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stamp {
    dev: u64,
    ino: u64,
    len: u64,
    mtime: (i64, i64),
    ctime: (i64, i64),
}

fn stamp(path: &Path) -> Option<Stamp> {
    // Follows symbolic links, as reading the file does.
    let meta = std::fs::metadata(path).ok()?;
    Some(Stamp {
        dev: meta.dev(),
        ino: meta.ino(),
        len: meta.len(),
        mtime: (meta.mtime(), meta.mtime_nsec()),
        ctime: (meta.ctime(), meta.ctime_nsec()),
    })
}

impl Watched {
    fn new(path: PathBuf) -> Watched {
        let stamp = stamp(&path);
        Watched { path, stamp }
    }

    /// Whether the file changed since it was last seen (appeared and
    /// disappeared count).
    fn changed(&mut self) -> bool {
        let now = stamp(&self.path);
        let changed = now != self.stamp;
        self.stamp = now;
        changed
    }
}
