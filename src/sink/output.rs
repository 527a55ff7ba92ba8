//! The output a run writes to, built from its spec: standard output or a file
//! (written by a [`WriterSink`]) or a TCP upstream, plaintext or TLS (a
//! [`TcpSink`], which reconnects). Streams reach it through the sender it hands out; closing it
//! waits until everything handed over is written.

use std::io;
use std::sync::Arc;

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::config::OutputSpec;
use crate::metrics::Metrics;
use crate::sink::writer::{DIRECT_BATCHES, MERGED_BATCHES};
use crate::sink::{Batch, Endpoint, TcpSink, WriterSink};
use crate::tls::Tls;

/// An opened output.
pub(crate) enum Output {
    /// Standard output or a file.
    Writer(WriterSink),
    /// A TCP upstream, plaintext or TLS.
    Tcp(TcpSink),
}

/// The upstream of a `tcp://` or `tls://` output, with the client side of
/// `tls` for the latter; `None` for other outputs.
pub(crate) fn endpoint(spec: &OutputSpec, tls: &Tls) -> io::Result<Option<Endpoint>> {
    Ok(match spec {
        OutputSpec::Tcp(address) => Some(Endpoint {
            address: address.clone(),
            tls: None,
        }),
        OutputSpec::Tls(address) => Some(Endpoint {
            address: address.clone(),
            // Checked when the settings were resolved; never plaintext.
            tls: Some(tls.client.clone().ok_or_else(|| {
                io::Error::new(io::ErrorKind::InvalidInput, "no TLS client settings")
            })?),
        }),
        OutputSpec::Stdout
        | OutputSpec::File(_)
        | OutputSpec::Forward(_)
        | OutputSpec::ForwardTls(_) => None,
    })
}

/// Opens the output `spec` (a `tls://` one with the client side of `tls`),
/// for one stream or, if `merged`, for many. A TCP upstream is connected in
/// the background (and retried); it gives up on undelivered data once
/// `deadline` (the end of the grace period) is cancelled.
pub(crate) fn open(
    spec: &OutputSpec,
    tls: &Tls,
    merged: bool,
    metrics: &Arc<Metrics>,
    deadline: &CancellationToken,
) -> io::Result<Output> {
    let batches = match merged {
        true => MERGED_BATCHES,
        false => DIRECT_BATCHES,
    };
    Ok(match (spec, endpoint(spec, tls)?) {
        (_, Some(endpoint)) => Output::Tcp(TcpSink::connect(
            endpoint,
            Arc::clone(metrics),
            deadline.clone(),
        )),
        // Each forward connection has a connection of its own to the next
        // hop; there is no shared output (see `crate::forward`).
        (OutputSpec::Forward(_) | OutputSpec::ForwardTls(_), None) => {
            return Err(io::Error::other(
                "a forward:// output is not shared; it takes forward:// inputs only",
            ));
        }
        (OutputSpec::File(path), None) => Output::Writer(WriterSink::file(path, batches)?),
        // Standard output: every other kind has an endpoint.
        (_, None) => Output::Writer(WriterSink::stdout(batches)?),
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
