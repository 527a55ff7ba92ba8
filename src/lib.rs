//! logredact: a streaming log-redaction sidecar.
//!
//! The library is the scanner core ([`Scanner`], [`RuleSet`], [`Detection`])
//! plus the thin layers the binary is made of: sources, sinks and the
//! pipeline that connects them. Data flows one way: source → scanner → sink.

pub mod admin;
pub mod audit;
pub mod config;
pub mod defaults;
pub mod metrics;
pub mod pipeline;
pub mod progress;
pub mod scan;
pub mod scrub;
pub mod shutdown;
pub mod sink;
pub mod source;

pub use scan::classify::TermError;
pub use scan::detection::{Confidence, Detection};
pub use scan::fingerprint::{Fingerprint, FingerprintKey, ParseFingerprintError};
pub use scan::mask::{Mask, MaskError};
pub use scan::rule::{DEFAULT_WINDOW, MAX_MATCH_LEN, MAX_WINDOW, RuleError, RuleSet, RuleSpec};
pub use scan::scanner::{DetectionMode, Mark, ScanSink, ScanStats, Scanner, redact};
