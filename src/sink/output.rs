//! The output a run writes to, built from its spec: standard output or a file
//! (written by a [`WriterSink`]) or a TCP upstream (a [`TcpSink`], which
//! reconnects). Streams reach it through the sender it hands out; closing it
//! waits until everything handed over is written.

use std::io;
use std::sync::Arc;

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::config::OutputSpec;
use crate::metrics::Metrics;
use crate::sink::{Batch, TcpSink, WriterSink};

/// An opened output.
pub(crate) enum Output {
    /// Standard output or a file.
    Writer(WriterSink),
    /// A TCP upstream.
    Tcp(TcpSink),
}

/// Opens the output `spec`. A TCP upstream is connected in the background
/// (and retried); it gives up on undelivered data once `deadline` (the end
/// of the grace period) is cancelled.
pub(crate) fn open(
    spec: &OutputSpec,
    metrics: &Arc<Metrics>,
    deadline: &CancellationToken,
) -> io::Result<Output> {
    Ok(match spec {
        OutputSpec::Stdout => Output::Writer(WriterSink::stdout()?),
        OutputSpec::File(path) => Output::Writer(WriterSink::file(path)?),
        OutputSpec::Tcp(address) => Output::Tcp(TcpSink::connect(
            address.clone(),
            Arc::clone(metrics),
            deadline.clone(),
        )),
        // Each forward connection has a connection of its own to the next
        // hop; there is no shared output (see `crate::forward`).
        OutputSpec::Forward(_) => {
            return Err(io::Error::other(
                "a forward:// output is not shared; it takes forward:// inputs only",
            ));
        }
    })
}

/// The output's name in messages.
pub(crate) fn name(spec: &OutputSpec) -> String {
    match spec {
        OutputSpec::Stdout => "stdout".into(),
        other => other.to_string(),
    }
}

impl Output {
    /// Where streams hand their batches; `None` once the output has failed.
    pub(crate) fn sender(&self) -> Option<mpsc::Sender<Batch>> {
        match self {
            Output::Writer(sink) => sink.sender(),
            Output::Tcp(sink) => sink.sender(),
        }
    }

    /// Waits until every sender is gone and everything handed over is
    /// written; the error is the output's own.
    pub(crate) async fn close(self) -> io::Result<()> {
        match self {
            Output::Writer(sink) => sink.close().await,
            Output::Tcp(sink) => sink.close().await,
        }
    }
}
