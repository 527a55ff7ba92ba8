//! logredact: a streaming log-redaction sidecar.
//!
//! The library is the scanner core ([`Scanner`], [`RuleSet`], [`Detection`])
//! plus the thin layers the binary is made of. Data flows one way:
//!
//! ```text
//! source ──Bytes──▶ scanner ──Batch──▶ port ──▶ sink
//!                      └──Detection──▶ audit, metrics
//! ```
//!
//! Where each decision lives:
//!
//! | module     | owns |
//! |------------|------|
//! | `scan`     | the core, no I/O: rules, the streaming matcher, held-back bytes, the context window, classification, masks, fingerprints |
//! | `config`   | YAML → typed configuration, validated with file, line and column |
//! | `app`      | a run's settings (command line over file over environment) and its start-up: metrics, audit, runtime, admin, pipeline |
//! | `deployment` | `check-config`'s checks of a run's files, addresses and hosts, made without starting it |
//! | `pipeline` | the plan (direct, merged, proxied), one task per stream, the TCP accept loop, the first failure |
//! | `source`   | stdin, files, followed files and their checkpoints, TCP listeners: each opens itself from its spec |
//! | `sink`     | batches, ports (direct or merged a line at a time), stdout/file and TCP outputs |
//! | `tls`      | TLS for `tls://` inputs and outputs: the settings, loaded into rustls, and the connection both sides read and write |
//! | `forward`  | the Fluent forward protocol: records in, redacted records out, acknowledged once the next hop has them |
//! | `progress` | what has been delivered, for checkpoints |
//! | `shutdown` | signals, the grace period and the last flush allowance |
//! | `reload`   | SIGHUP and `--watch-config`: the configuration read again, new rules published to every stream, other changes refused |
//! | `audit`    | audit records, their writer, the token-sprawl summary |
//! | `metrics`, `admin` | counters, and the HTTP endpoint that serves them |
//! | `ruletest` | the `tests:` of rule packs, run whole and one byte at a time by `logredact test` |
//! | `export`   | the rules written out for DLP products (Purview, Google Cloud DLP, Macie) by `logredact export-rules` |
//! | `scrub`    | masking of logredact's own messages |
//!
//! The scanner core is public and documented; the layers around it are
//! internal to the binary (`pub(crate)`), except what the binary and the
//! tests drive: [`app`], [`config`], [`audit`], [`deployment`], [`export`],
//! [`reload`], [`ruletest`], [`scrub`] and [`tls`]'s settings.
#![deny(missing_docs)]

pub(crate) mod admin;
pub mod app;
pub mod audit;
pub mod config;
pub mod defaults;
pub mod deployment;
pub mod export;
pub(crate) mod forward;
pub(crate) mod metrics;
pub(crate) mod pipeline;
pub(crate) mod progress;
pub mod reload;
pub mod ruletest;
pub mod scan;
pub mod scrub;
pub(crate) mod shutdown;
pub(crate) mod sink;
pub(crate) mod source;
pub mod tls;

pub use scan::classify::TermError;
pub use scan::detection::{Confidence, Detection};
pub use scan::fingerprint::{Fingerprint, FingerprintKey, ParseFingerprintError};
pub use scan::mask::{Mask, MaskError};
pub use scan::rule::{DEFAULT_WINDOW, MAX_MATCH_LEN, MAX_WINDOW, RuleError, RuleSet, RuleSpec};
pub use scan::scanner::{DetectionMode, Mark, ScanSink, ScanStats, Scanner, redact};
