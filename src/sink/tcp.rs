//! A TCP upstream as a sink, plaintext or TLS.
//!
//! One task owns the connection. When the upstream refuses or drops, or its
//! TLS handshake fails, it reconnects with capped exponential backoff,
//! logging each failure once per step, and meanwhile takes no new batch: the
//! channel in front of it fills and the sources stop reading (backpressure,
//! never loss). A batch is acknowledged only once all of it has been written
//! to the socket (over TLS, flushed out of the TLS layer: a write that fails
//! there is written again, whole, on the next connection). Before each
//! write it checks whether the upstream has closed its side, so that a batch
//! is not written into a connection that is already gone.
//!
//! TCP carries no acknowledgements: bytes the kernel accepted just before
//! the upstream vanished can be lost, as with any TCP log forwarder.

use std::io::{self, IoSlice};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::metrics::{ErrorKind, Metrics};
use crate::sink::batch::Batch;
use crate::tls::{ClientTls, Connection};

/// Batches in flight in front of the connection.
const CHANNEL_BATCHES: usize = 4;
/// First wait after a failure.
const BACKOFF_START: Duration = Duration::from_millis(100);
/// Pieces per vectored write.
const MAX_SLICES: usize = 64;
/// Longest wait between attempts.
const BACKOFF_CAP: Duration = Duration::from_secs(5);

/// Where a TCP sink connects: `HOST:PORT`, with TLS for a `tls://` output.
#[derive(Debug, Clone)]
pub struct Endpoint {
    /// `HOST:PORT`.
    pub address: String,
    /// The client side of TLS; `None` for plain TCP.
    pub tls: Option<ClientTls>,
}

impl Endpoint {
    /// The output as messages name it: `tcp://HOST:PORT` or
    /// `tls://HOST:PORT`.
    pub fn name(&self) -> String {
        match self.tls {
            None => format!("tcp://{}", self.address),
            Some(_) => format!("tls://{}", self.address),
        }
    }
}

/// A connection to an upstream, written by its own task.
pub struct TcpSink {
    batches: Option<mpsc::Sender<Batch>>,
    task: JoinHandle<io::Result<()>>,
}

impl TcpSink {
    /// Starts connecting to `endpoint`; retries until `give_up` is
    /// cancelled.
    pub fn connect(
        endpoint: Endpoint,
        metrics: Arc<Metrics>,
        give_up: CancellationToken,
    ) -> TcpSink {
        let (batches, receiver) = mpsc::channel(CHANNEL_BATCHES);
        metrics.output_down();
        // Log lines of the connection belong to whatever stream asked for it.
        let task = tokio::spawn(
            run(endpoint, receiver, metrics, give_up).instrument(tracing::Span::current()),
        );
        TcpSink {
            batches: Some(batches),
            task,
        }
    }

    /// Where to send batches.
    pub fn sender(&self) -> Option<mpsc::Sender<Batch>> {
        self.batches.clone()
    }

    /// Writes everything queued, closes the connection and reports the error
    /// that stopped the sink, if any.
    pub async fn close(mut self) -> io::Result<()> {
        drop(self.batches.take());
        (&mut self.task).await.unwrap_or_else(|e| {
            Err(io::Error::other(format!(
                "the upstream writer task failed: {e}"
            )))
        })
    }
}

async fn run(
    endpoint: Endpoint,
    mut batches: mpsc::Receiver<Batch>,
    metrics: Arc<Metrics>,
    give_up: CancellationToken,
) -> io::Result<()> {
    let mut upstream = Upstream {
        name: endpoint.name(),
        endpoint,
        connection: None,
        metrics,
        give_up,
        failures: 0,
    };
    // Connect at once, so that readiness reflects the upstream before data flows.
    upstream.connected().await?;
    while let Some(mut batch) = batches.recv().await {
        while let Ok(more) = batches.try_recv() {
            batch.append(more);
        }
        upstream.write(&batch).await?;
        batch.confirm();
    }
    if let Some(mut connection) = upstream.connection.take() {
        let _ = connection.shutdown().await;
    }
    Ok(())
}

struct Upstream {
    endpoint: Endpoint,
    /// The output as messages name it.
    name: String,
    connection: Option<Connection>,
    metrics: Arc<Metrics>,
    give_up: CancellationToken,
    /// Failures since the last successful connection, for the backoff.
    failures: u32,
}

impl Upstream {
    /// The open connection, connecting (with backoff) as needed.
    async fn connected(&mut self) -> io::Result<&mut Connection> {
        if self
            .connection
            .as_mut()
            .is_some_and(Connection::peer_closed)
        {
            tracing::warn!(output = %self.name, "upstream closed the connection; reconnecting");
            self.lost();
        }
        while self.connection.is_none() {
            let unavailable = || {
                io::Error::new(
                    io::ErrorKind::NotConnected,
                    format!("upstream {} unavailable at shutdown", self.endpoint.address),
                )
            };
            if self.failures > 0 {
                let wait = backoff(self.failures);
                tokio::select! {
                    () = tokio::time::sleep(wait) => {}
                    () = self.give_up.cancelled() => return Err(unavailable()),
                }
                self.metrics.output_retry();
            }
            let opened = tokio::select! {
                opened = self.open() => opened,
                () = self.give_up.cancelled() => return Err(unavailable()),
            };
            match opened {
                Ok(connection) => {
                    tracing::info!(output = %self.name, "connected to upstream");
                    self.connection = Some(connection);
                    self.failures = 0;
                    self.metrics.output_up();
                }
                Err((kind, e)) => {
                    self.failures += 1;
                    self.metrics.error(kind);
                    let retry_in_ms = backoff(self.failures).as_millis() as u64;
                    match kind {
                        ErrorKind::TlsHandshake => tracing::warn!(
                            output = %self.name,
                            error = %e,
                            retry_in_ms,
                            "TLS handshake with upstream failed"
                        ),
                        _ => tracing::warn!(
                            output = %self.name,
                            error = %e,
                            retry_in_ms,
                            "cannot connect to upstream"
                        ),
                    }
                }
            }
        }
        self.connection
            .as_mut()
            .ok_or_else(|| io::Error::other("no upstream connection"))
    }

    /// A new connection to the upstream, after its TLS handshake if it has
    /// TLS; or what failed (connecting, or the handshake) and why.
    async fn open(&self) -> Result<Connection, (ErrorKind, io::Error)> {
        let stream = TcpStream::connect(&self.endpoint.address)
            .await
            .map_err(|e| (ErrorKind::Connect, e))?;
        let _ = stream.set_nodelay(true);
        match &self.endpoint.tls {
            None => Ok(Connection::Plain(stream)),
            Some(tls) => tls
                .connect(stream)
                .await
                .map_err(|e| (ErrorKind::TlsHandshake, e)),
        }
    }

    fn lost(&mut self) {
        if self.connection.take().is_some() {
            self.metrics.output_down();
            self.failures = self.failures.max(1);
        }
    }

    /// Writes all of `batch`, reconnecting and continuing where the failed
    /// write stopped. Each write is flushed (a no-op for plain TCP; over
    /// TLS, out of the TLS layer to the socket) before the next: if the
    /// flush fails, that write's bytes are written again on the next
    /// connection, as it is unknown how many of them left.
    async fn write(&mut self, batch: &Batch) -> io::Result<()> {
        let pieces = batch.pieces();
        let (mut piece, mut within) = (0, 0);
        while piece < pieces.len() {
            let before = (piece, within);
            let connection = self.connected().await?;
            let slices: Vec<IoSlice<'_>> = std::iter::once(&pieces[piece][within..])
                .chain(pieces[piece + 1..].iter().map(|p| &p[..]))
                .take(MAX_SLICES)
                .map(IoSlice::new)
                .collect();
            match connection.write_vectored(&slices).await {
                Ok(0) if !slices.iter().all(|s| s.is_empty()) => {
                    self.lose("upstream accepted no bytes")
                }
                Ok(mut written) => {
                    // Advance past what was written, and past empty pieces.
                    while piece < pieces.len() && written >= pieces[piece].len() - within {
                        written -= pieces[piece].len() - within;
                        piece += 1;
                        within = 0;
                    }
                    within += written;
                    if let Err(e) = connection.flush().await {
                        (piece, within) = before;
                        self.metrics.error(ErrorKind::Write);
                        self.lose(&e.to_string());
                    }
                }
                Err(e) => {
                    self.metrics.error(ErrorKind::Write);
                    self.lose(&e.to_string());
                }
            }
        }
        Ok(())
    }

    fn lose(&mut self, why: &str) {
        tracing::warn!(output = %self.name, error = why, "writing to upstream failed; reconnecting");
        self.lost();
    }
}

fn backoff(failures: u32) -> Duration {
    let factor = 1u32 << failures.saturating_sub(1).min(16);
    BACKOFF_START.saturating_mul(factor).min(BACKOFF_CAP)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let waits: Vec<u64> = (1..=8).map(|f| backoff(f).as_millis() as u64).collect();
        assert_eq!(waits, [100, 200, 400, 800, 1600, 3200, 5000, 5000]);
    }
}
