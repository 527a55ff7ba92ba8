//! What every task of a run shares: the rules and where detections go, the
//! shutdown it listens to, and the record of the first failure.

use std::io;
use std::sync::Arc;

use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::audit::AuditHandle;
use crate::metrics::Metrics;
use crate::pipeline::error::{FirstFailure, PipelineError};
use crate::scan::rule::RuleSet;
use crate::scan::scanner::{DetectionMode, Mark, Scanner};
use crate::shutdown::Shutdown;

/// What every stream needs to redact and to report detections.
#[derive(Clone)]
pub struct StreamEnv {
    /// The compiled rules in force: a reload publishes new ones, and every
    /// stream switches to them at a point of its own.
    pub rules: watch::Receiver<PublishedRules>,
    /// The audit stream, if enabled.
    pub audit: Option<AuditHandle>,
    /// Process counters.
    pub metrics: Arc<Metrics>,
    /// Whether detections are classified (someone reads them: the audit
    /// stream or the metrics endpoint).
    pub mode: DetectionMode,
}

/// A rule set as reloads publish it.
#[derive(Clone)]
pub struct PublishedRules {
    /// 0 for the rules a run starts with, n for the n-th reload's.
    pub generation: u64,
    /// The rules.
    pub rules: Arc<RuleSet>,
}

/// Shared by every task of one run.
pub(crate) struct Context {
    /// What streams need to redact.
    pub(crate) env: StreamEnv,
    /// The run's shutdown.
    pub(crate) shutdown: Shutdown,
    /// Cancelled when the flush allowance after the deadline is over: a task
    /// still waiting for its output stops waiting.
    pub(crate) give_up: CancellationToken,
    /// The shared output's name in messages.
    pub(crate) output_name: String,
    /// How long a stream in the middle of a long line may hold the shared
    /// output with nothing to add (`limits.line_hold_secs`).
    pub(crate) line_hold: std::time::Duration,
    failure: FirstFailure,
}

impl Context {
    /// The context of a run writing to the output named `output_name`, where
    /// a stream may hold the output mid-line for `line_hold`. Must be called
    /// inside the runtime (it starts the flush allowance).
    pub(crate) fn new(
        env: StreamEnv,
        shutdown: Shutdown,
        output_name: String,
        line_hold: std::time::Duration,
    ) -> Arc<Context> {
        Arc::new(Context {
            env,
            give_up: shutdown.flush_allowance(),
            shutdown,
            output_name,
            line_hold,
            failure: FirstFailure::default(),
        })
    }

    /// A scanner for a new stream, or one resuming at `resume`, with the
    /// rules in force.
    pub(crate) fn scanner(&self, resume: Option<Mark>) -> Scanner {
        let rules = Arc::clone(&self.env.rules.borrow().rules);
        match resume {
            Some(mark) => Scanner::resume(rules, self.env.mode, mark),
            None => Scanner::new(rules, self.env.mode),
        }
    }

    /// Records a fatal error and stops everything.
    pub(crate) fn fail(&self, error: PipelineError) {
        self.record(error);
        self.shutdown.abort();
    }

    /// Records an error that makes the run a failure while the other streams
    /// go on; the first error recorded is the one reported.
    pub(crate) fn record(&self, error: PipelineError) {
        self.failure.record(error);
    }

    /// The run's outcome so far: the first error recorded, if any.
    pub(crate) fn outcome(&self) -> Result<(), PipelineError> {
        self.failure.outcome()
    }

    /// Waits for an output to take something, unless the flush allowance
    /// after the deadline runs out first; then the error says `late`.
    pub(crate) async fn within_allowance(
        &self,
        handover: impl Future<Output = io::Result<()>>,
        late: &'static str,
    ) -> io::Result<()> {
        tokio::select! {
            result = handover => result,
            () = self.give_up.cancelled() => Err(io::Error::new(io::ErrorKind::TimedOut, late)),
        }
    }
}
