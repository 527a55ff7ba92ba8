//! A TCP upstream as a sink.
//!
//! One task owns the connection. When the upstream refuses or drops, it
//! reconnects with capped exponential backoff, logging each failure once per
//! step, and meanwhile takes no new batch: the channel in front of it fills
//! and the sources stop reading (backpressure, never loss). A batch is
//! acknowledged only once all of it has been written to the socket. Before
//! each write it checks whether the upstream has closed its side, so that a
//! batch is not written into a connection that is already gone.
//!
//! Plain TCP carries no acknowledgements: bytes the kernel accepted just
//! before the upstream vanished can be lost, as with any TCP log forwarder.

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

/// Batches in flight in front of the connection.
const CHANNEL_BATCHES: usize = 4;
/// First wait after a failure.
const BACKOFF_START: Duration = Duration::from_millis(100);
/// Pieces per vectored write.
const MAX_SLICES: usize = 64;
/// Longest wait between attempts.
const BACKOFF_CAP: Duration = Duration::from_secs(5);

/// A connection to an upstream, written by its own task.
pub struct TcpSink {
    batches: Option<mpsc::Sender<Batch>>,
    task: JoinHandle<io::Result<()>>,
}

impl TcpSink {
    /// Starts connecting to `address` (`HOST:PORT`); retries until `give_up`
    /// is cancelled.
    pub fn connect(address: String, metrics: Arc<Metrics>, give_up: CancellationToken) -> TcpSink {
        let (batches, receiver) = mpsc::channel(CHANNEL_BATCHES);
        metrics.output_down();
        // Log lines of the connection belong to whatever stream asked for it.
        let task = tokio::spawn(
            run(address, receiver, metrics, give_up).instrument(tracing::Span::current()),
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
    address: String,
    mut batches: mpsc::Receiver<Batch>,
    metrics: Arc<Metrics>,
    give_up: CancellationToken,
) -> io::Result<()> {
    let mut upstream = Upstream {
        address,
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
    address: String,
    connection: Option<TcpStream>,
    metrics: Arc<Metrics>,
    give_up: CancellationToken,
    /// Failures since the last successful connection, for the backoff.
    failures: u32,
}

impl Upstream {
    /// The open connection, connecting (with backoff) as needed.
    async fn connected(&mut self) -> io::Result<&mut TcpStream> {
        if self.connection.as_ref().is_some_and(peer_closed) {
            tracing::warn!(output = %format!("tcp://{}", self.address), "upstream closed the connection; reconnecting");
            self.lost();
        }
        while self.connection.is_none() {
            if self.failures > 0 {
                let wait = backoff(self.failures);
                tokio::select! {
                    () = tokio::time::sleep(wait) => {}
                    () = self.give_up.cancelled() => {
                        return Err(io::Error::new(io::ErrorKind::NotConnected, format!("upstream {} unavailable at shutdown", self.address)));
                    }
                }
                self.metrics.output_retry();
            }
            match TcpStream::connect(&self.address).await {
                Ok(stream) => {
                    let _ = stream.set_nodelay(true);
                    tracing::info!(output = %format!("tcp://{}", self.address), "connected to upstream");
                    self.connection = Some(stream);
                    self.failures = 0;
                    self.metrics.output_up();
                }
                Err(e) => {
                    self.failures += 1;
                    self.metrics.error(ErrorKind::Connect);
                    tracing::warn!(
                        output = %format!("tcp://{}", self.address),
                        error = %e,
                        retry_in_ms = backoff(self.failures).as_millis() as u64,
                        "cannot connect to upstream"
                    );
                }
            }
        }
        self.connection
            .as_mut()
            .ok_or_else(|| io::Error::other("no upstream connection"))
    }

    fn lost(&mut self) {
        if self.connection.take().is_some() {
            self.metrics.output_down();
            self.failures = self.failures.max(1);
        }
    }

    /// Writes all of `batch`, reconnecting and continuing where the failed
    /// write stopped.
    async fn write(&mut self, batch: &Batch) -> io::Result<()> {
        let pieces = batch.pieces();
        let (mut piece, mut within) = (0, 0);
        while piece < pieces.len() {
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
        tracing::warn!(output = %format!("tcp://{}", self.address), error = why, "writing to upstream failed; reconnecting");
        self.lost();
    }
}

/// Whether the peer has closed its side: a read would return end of file.
/// Any bytes the upstream sends are not ours to interpret and are discarded.
fn peer_closed(stream: &TcpStream) -> bool {
    let mut scratch = [0u8; 1024];
    loop {
        match stream.try_read(&mut scratch) {
            Ok(0) => return true,
            Ok(_) => continue,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return false,
            Err(_) => return true,
        }
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
