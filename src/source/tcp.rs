//! TCP inputs, plaintext (`tcp://`) or TLS (`tls://`): a listener whose
//! every connection is a stream of its own. The listener only accepts; a TLS
//! connection's handshake is the connection's own task's first step (see
//! `pipeline::listener`), and what it yields is read as a plaintext
//! connection is, by [`TcpSource`].
//!
//! Connections beyond `limits.max_connections` are closed at accept, counted
//! and logged: at most one line a second, each with the number closed since
//! the line before, so that a burst is neither flooded nor lost. A connection
//! keeps its place until its data is delivered: with an upstream per
//! connection, a connection that has closed while its data still waits for
//! the upstream holds its place (and its memory), and the log line says how
//! many do. A connection that
//! sends nothing for `limits.idle_timeout_secs` is closed and logged.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use bytes::BytesMut;
use tokio::io::AsyncReadExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::config::Limits;
use crate::metrics::{ErrorKind, Metrics};
use crate::source::{ChunkSource, CutReason, READ_CHUNK, SourceEvent};
use crate::tls::{Connection, ServerTls};

/// Rejections are logged at most this often, with a count.
const REJECTION_LOG_INTERVAL: Duration = Duration::from_secs(1);
/// The first wait after a failed accept.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);

/// A listening TCP input.
pub struct TcpInput {
    listener: TcpListener,
    /// The address bound (`HOST:PORT`).
    address: String,
    /// The input as messages name it (`tcp://…` or `tls://…`, the address
    /// bound).
    name: String,
    /// The server side of TLS, for a `tls://` input.
    tls: Option<ServerTls>,
    permits: Arc<Semaphore>,
    /// Places held by connections that have closed, their data not yet delivered.
    closed_holding: Arc<AtomicUsize>,
    limits: Limits,
    metrics: Arc<Metrics>,
    rejected_since_log: u64,
    last_rejection_log: Option<Instant>,
    /// Accepts that failed since the last log line about them.
    failed_accepts: u64,
    last_accept_log: Option<std::time::Instant>,
    /// The wait after a failed accept, doubling while they fail.
    accept_backoff: Duration,
}

/// An accepted connection and its place among `max_connections`.
pub struct Accepted {
    /// The connection.
    pub stream: TcpStream,
    /// The peer's address.
    pub peer: SocketAddr,
    /// Released when the connection's data is delivered (or given up on).
    pub permit: Place,
}

/// A connection's place among `limits.max_connections`, released when dropped.
pub struct Place {
    _permit: OwnedSemaphorePermit,
    closed_holding: Arc<AtomicUsize>,
    closed: bool,
}

impl Place {
    /// The connection has closed, but its place stays taken until its data is
    /// delivered: counted, so that a rejection can say why places are full.
    pub fn connection_closed(&mut self) {
        if !self.closed {
            self.closed = true;
            self.closed_holding.fetch_add(1, Ordering::Relaxed);
        }
    }
}

impl Drop for Place {
    fn drop(&mut self) {
        if self.closed {
            self.closed_holding.fetch_sub(1, Ordering::Relaxed);
        }
    }
}

impl TcpInput {
    /// Binds `address` (`HOST:PORT`); its connections speak TLS if `tls`
    /// is given.
    pub async fn bind(
        address: &str,
        tls: Option<ServerTls>,
        limits: Limits,
        metrics: Arc<Metrics>,
    ) -> io::Result<TcpInput> {
        let listener = TcpListener::bind(address).await?;
        let address = listener
            .local_addr()
            .map_or_else(|_| address.to_string(), |a| a.to_string());
        let scheme = if tls.is_some() { "tls" } else { "tcp" };
        Ok(TcpInput {
            listener,
            name: format!("{scheme}://{address}"),
            address,
            tls,
            permits: Arc::new(Semaphore::new(limits.max_connections)),
            closed_holding: Arc::new(AtomicUsize::new(0)),
            limits,
            metrics,
            rejected_since_log: 0,
            last_rejection_log: None,
            failed_accepts: 0,
            last_accept_log: None,
            accept_backoff: ACCEPT_BACKOFF,
        })
    }

    /// The input as messages name it: `tcp://` or `tls://` and the bound
    /// address.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The address bound (`HOST:PORT`).
    pub fn address(&self) -> &str {
        &self.address
    }

    /// The server side of TLS, for a `tls://` input.
    pub fn tls(&self) -> Option<&ServerTls> {
        self.tls.as_ref()
    }

    /// The next connection within the limit; those over it are closed here.
    pub async fn accept(&mut self) -> Accepted {
        loop {
            // Rejections not yet logged are logged when the interval is up,
            // even if no further connection comes.
            let log_due = self
                .last_rejection_log
                .filter(|_| self.rejected_since_log > 0)
                .map(|at| at + REJECTION_LOG_INTERVAL);
            let accepted = tokio::select! {
                accepted = self.listener.accept() => accepted,
                () = async {
                    match log_due {
                        Some(at) => tokio::time::sleep_until(at.into()).await,
                        None => std::future::pending().await,
                    }
                } => {
                    self.log_rejections(None);
                    continue;
                }
            };
            let (stream, peer) = match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of file descriptors and the like: back off (up to a
                    // second), do not spin; say so at most once a second.
                    self.metrics.error(ErrorKind::Accept);
                    self.failed_accepts += 1;
                    if self
                        .last_accept_log
                        .is_none_or(|at| at.elapsed() >= REJECTION_LOG_INTERVAL)
                    {
                        tracing::warn!(input = %self.name, error = %e, failures = self.failed_accepts, "accept failed");
                        self.last_accept_log = Some(std::time::Instant::now());
                        self.failed_accepts = 0;
                    }
                    tokio::time::sleep(self.accept_backoff).await;
                    self.accept_backoff = (self.accept_backoff * 2).min(Duration::from_secs(1));
                    continue;
                }
            };
            self.accept_backoff = ACCEPT_BACKOFF;
            match Arc::clone(&self.permits).try_acquire_owned() {
                Ok(permit) => {
                    return Accepted {
                        stream,
                        peer,
                        permit: Place {
                            _permit: permit,
                            closed_holding: Arc::clone(&self.closed_holding),
                            closed: false,
                        },
                    };
                }
                Err(_) => {
                    drop(stream);
                    self.rejected(peer);
                }
            }
        }
    }

    fn rejected(&mut self, peer: SocketAddr) {
        self.metrics.connection_rejected();
        self.rejected_since_log += 1;
        let due = self
            .last_rejection_log
            .is_none_or(|at| at.elapsed() >= REJECTION_LOG_INTERVAL);
        if due {
            self.log_rejections(Some(peer));
        }
    }

    /// Logs the rejections since the last such line: `peer` is the one that
    /// brought the line about, if any.
    fn log_rejections(&mut self, peer: Option<SocketAddr>) {
        let input = &self.name;
        let (max_connections, rejected) = (self.limits.max_connections, self.rejected_since_log);
        let closed_awaiting_delivery = self.closed_holding.load(Ordering::Relaxed);
        match peer {
            Some(peer) => tracing::warn!(
                input = %input,
                stream = %format!("tcp:{peer}"),
                max_connections,
                rejected,
                closed_awaiting_delivery,
                "connection limit reached; closing new connections"
            ),
            None => tracing::warn!(
                input = %input,
                max_connections,
                rejected,
                closed_awaiting_delivery,
                "connection limit reached; closing new connections"
            ),
        }
        self.rejected_since_log = 0;
        self.last_rejection_log = Some(Instant::now());
    }
}

/// One accepted connection, read as a stream: plaintext, or TLS after its
/// handshake.
pub struct TcpSource {
    stream: Connection,
    buffer: BytesMut,
    idle_timeout: Option<Duration>,
}

impl TcpSource {
    /// Reads `stream`, cutting it after `idle_timeout` without data.
    pub(crate) fn new(stream: Connection, idle_timeout: Option<Duration>) -> TcpSource {
        TcpSource {
            stream,
            buffer: BytesMut::new(),
            idle_timeout,
        }
    }
}

impl ChunkSource for TcpSource {
    async fn next(&mut self) -> io::Result<SourceEvent> {
        self.buffer.reserve(READ_CHUNK);
        let read = self.stream.read_buf(&mut self.buffer);
        let read = match self.idle_timeout {
            Some(idle) => match tokio::time::timeout(idle, read).await {
                Ok(result) => result,
                Err(_) => return Ok(SourceEvent::Cut(CutReason::Idle)),
            },
            None => read.await,
        };
        let n = match read {
            Ok(n) => n,
            // A TLS peer that closes its TCP side without TLS's close_notify
            // (many do): its stream ends there, as a plaintext peer's does
            // when it closes.
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => 0,
            Err(e) => return Err(e),
        };
        if n == 0 {
            return Ok(SourceEvent::End);
        }
        Ok(SourceEvent::Chunk(self.buffer.split().freeze()))
    }
}
