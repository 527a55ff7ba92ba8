//! Graceful shutdown, as one small type every task listens to.
//!
//! The first SIGTERM or SIGINT starts the shutdown: listeners stop accepting,
//! followed files are read to their current end, and every stream drains.
//! When the grace period runs out, the streams still open are cut: what is
//! decided is written, the undecided bytes (possibly the start of a secret)
//! are not. A second signal exits at once.
//!
//! All shutdown timing lives here: the grace period (from the command line),
//! and after it the one flush allowance in which streams and outputs hand
//! over and write what is decided before the pipeline gives up on an output
//! that does not move.

use std::io;
use std::time::Duration;

use tokio::signal::unix::{SignalKind, signal};
use tokio_util::sync::CancellationToken;

/// After the grace period, how long streams and outputs get, in all, to hand
/// over and write what is decided before the pipeline gives up on an output
/// that does not move.
pub(crate) const FLUSH_AFTER_DEADLINE: Duration = Duration::from_secs(2);

/// Shutdown state shared by every task.
#[derive(Clone, Default)]
pub struct Shutdown {
    /// Cancelled when the shutdown starts: stop accepting, drain.
    pub stopping: CancellationToken,
    /// Cancelled when the grace period is over: cut what is still open.
    pub deadline: CancellationToken,
    /// Cancelled when everything stops at once because nothing more can be
    /// written: the failure (or a reader that went away) says why, so the
    /// streams cut by it need not.
    pub aborted: CancellationToken,
}

impl Shutdown {
    /// A shutdown that has not started.
    pub fn new() -> Shutdown {
        Shutdown::default()
    }

    /// Starts the shutdown now, with `grace` to drain.
    pub fn begin(&self, grace: Duration) {
        if self.stopping.is_cancelled() {
            return;
        }
        self.stopping.cancel();
        let deadline = self.deadline.clone();
        tokio::spawn(async move {
            tokio::time::sleep(grace).await;
            deadline.cancel();
        });
    }

    /// Stops everything at once (a fatal error: nothing more can be written).
    pub fn abort(&self) {
        self.aborted.cancel();
        self.stopping.cancel();
        self.deadline.cancel();
    }

    /// A token cancelled [`FLUSH_AFTER_DEADLINE`] after the grace period ends
    /// (or after a fatal error): the one allowance, shared by the streams and
    /// the output, to hand over and write what is decided. Then the pipeline
    /// stops waiting. Must be called inside the runtime.
    pub(crate) fn flush_allowance(&self) -> CancellationToken {
        let give_up = CancellationToken::new();
        let (deadline, token) = (self.deadline.clone(), give_up.clone());
        tokio::spawn(async move {
            deadline.cancelled().await;
            tokio::time::sleep(FLUSH_AFTER_DEADLINE).await;
            token.cancel();
        });
        give_up
    }

    /// Installs the SIGTERM and SIGINT handlers.
    pub fn listen_for_signals(&self, grace: Duration) -> io::Result<()> {
        let mut terminate = signal(SignalKind::terminate())?;
        let mut interrupt = signal(SignalKind::interrupt())?;
        let shutdown = self.clone();
        tokio::spawn(async move {
            let mut seen = 0;
            loop {
                let name = tokio::select! {
                    _ = terminate.recv() => "SIGTERM",
                    _ = interrupt.recv() => "SIGINT",
                };
                seen += 1;
                if seen == 1 {
                    tracing::info!(
                        signal = name,
                        grace_secs = grace.as_secs_f64(),
                        "shutting down: no new connections; draining every stream"
                    );
                    shutdown.begin(grace);
                } else {
                    tracing::warn!(
                        signal = name,
                        "second signal: exiting at once; undecided bytes are not written"
                    );
                    let code = if name == "SIGINT" { 130 } else { 143 };
                    std::process::exit(code);
                }
            }
        });
        Ok(())
    }
}
