//! A forward output: one connection to the next hop (Fluentd's or Fluent
//! Bit's `forward` input), written by a task of its own.
//!
//! Every message goes with a `chunk` id and the next hop acknowledges it
//! (`{"ack": chunk}`); only then is the message delivered, and only then is
//! its sender acknowledged in turn. Up to `WINDOW` messages wait for their
//! acknowledgement at once; meanwhile no more is taken, the channel in front
//! fills and the inbound connection stops being read (backpressure, never
//! loss). When the connection drops, or an acknowledgement is more than
//! `ACK_TIMEOUT` late, the task reconnects with capped exponential backoff
//! and sends every unacknowledged message again, in order: delivery is at
//! least once, and a message the next hop had taken but not yet acknowledged
//! arrives twice. At the end of the shutdown's grace period the task gives
//! up: what is not acknowledged is reported, and its senders are not
//! acknowledged (they send it again to the next logredact).

use std::collections::VecDeque;
use std::io;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use bytes::BytesMut;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::io::{ReadHalf, WriteHalf};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::config::forward::ForwardClientAuth;
use crate::forward::frame::{Framer, read_frame};
use crate::forward::handshake::ClientHandshake;
use crate::forward::message::acknowledged;
use crate::metrics::{ErrorKind, Metrics};
use crate::tls::{self, ClientTls};

/// Messages sent and not yet acknowledged, at most.
const WINDOW: usize = 16;
/// Bytes of messages sent and not yet acknowledged: no more is sent past
/// this (one message is always let through).
const WINDOW_BYTES: usize = 32 * 1024 * 1024;
/// Messages waiting in front of the connection.
const CHANNEL_MESSAGES: usize = 4;
/// How long an acknowledgement (or a write) may take before the connection
/// is taken for lost.
pub(crate) const ACK_TIMEOUT: Duration = Duration::from_secs(60);
/// The first wait after a failure, and the longest.
const BACKOFF_START: Duration = Duration::from_millis(100);
const BACKOFF_CAP: Duration = Duration::from_secs(5);
/// The longest acknowledgement read from the next hop.
const MAX_ACK: usize = 64 * 1024;

/// A redacted message on its way to the next hop.
pub(crate) struct Outgoing {
    /// The message, with `chunk` in its option.
    pub(crate) message: Vec<u8>,
    /// That `chunk`.
    pub(crate) chunk: String,
    /// The sender's `chunk` to acknowledge once delivered, if it asked.
    pub(crate) reply_chunk: Option<Vec<u8>>,
}

/// The buffers of messages delivered, kept for the next messages of the
/// connection to be written into. A new buffer of a message's size costs a
/// page fault per 4 KiB written (the allocator gives large blocks back to
/// the system when they are freed): that was a third of the forward hop's
/// CPU time. At most `KEEP` buffers and `KEEP_BYTES` bytes are kept, and
/// only while the connection lasts.
#[derive(Clone, Default)]
pub(crate) struct Spares(Arc<Mutex<Vec<Vec<u8>>>>);

impl Spares {
    const KEEP: usize = 8;
    const KEEP_BYTES: usize = 8 * 1024 * 1024;

    /// An empty buffer: a kept one if there is one.
    pub(crate) fn take(&self) -> Vec<u8> {
        self.kept().pop().unwrap_or_default()
    }

    /// Keeps `buffer` for a next message, if there is room.
    fn give(&self, mut buffer: Vec<u8>) {
        let mut kept = self.kept();
        let bytes: usize = kept.iter().map(Vec::capacity).sum();
        if kept.len() < Self::KEEP && bytes + buffer.capacity() <= Self::KEEP_BYTES {
            buffer.clear();
            kept.push(buffer);
        }
    }

    fn kept(&self) -> MutexGuard<'_, Vec<Vec<u8>>> {
        // A panic aborts the process: the lock cannot be poisoned by one.
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// How a forward output ended.
#[derive(Debug, Default)]
pub(crate) struct Outcome {
    /// Messages not delivered (the output gave up at the end of the grace
    /// period).
    pub(crate) undelivered: usize,
    /// Of those, messages whose sender asked for no acknowledgement: it
    /// takes them for delivered, so they are lost.
    pub(crate) lost: usize,
}

/// A connection to the next hop, written by its own task.
pub(crate) struct Downstream {
    sender: Option<mpsc::Sender<Outgoing>>,
    task: JoinHandle<Outcome>,
    spares: Spares,
}

impl Downstream {
    /// Starts connecting to `address`; the sender's `chunk` of each message
    /// delivered is sent to `acks`. Retries until `give_up` is cancelled.
    pub(crate) fn connect(
        address: String,
        tls: Option<ClientTls>,
        auth: Option<ForwardClientAuth>,
        acks: mpsc::UnboundedSender<Vec<u8>>,
        metrics: Arc<Metrics>,
        give_up: CancellationToken,
    ) -> Downstream {
        let (sender, receiver) = mpsc::channel(CHANNEL_MESSAGES);
        metrics.output_down();
        let link = Link {
            address,
            tls,
            auth,
            connection: None,
            metrics,
            give_up,
            failures: 0,
        };
        let spares = Spares::default();
        let task = tokio::spawn(
            run(link, receiver, acks, spares.clone()).instrument(tracing::Span::current()),
        );
        Downstream {
            sender: Some(sender),
            task,
            spares,
        }
    }

    /// Where to send messages.
    pub(crate) fn sender(&self) -> Option<mpsc::Sender<Outgoing>> {
        self.sender.clone()
    }

    /// Where the buffers of delivered messages are kept.
    pub(crate) fn spares(&self) -> Spares {
        self.spares.clone()
    }

    /// Waits until everything sent is acknowledged (or given up on), closes
    /// the connection, and says what was not delivered.
    pub(crate) async fn close(mut self) -> Outcome {
        drop(self.sender.take());
        (&mut self.task).await.unwrap_or(Outcome {
            undelivered: 1,
            lost: 1,
        })
    }
}

/// A message sent, waiting for its acknowledgement.
struct InFlight {
    outgoing: Outgoing,
    sent_at: Instant,
}

async fn run(
    mut link: Link,
    mut receiver: mpsc::Receiver<Outgoing>,
    acks: mpsc::UnboundedSender<Vec<u8>>,
    spares: Spares,
) -> Outcome {
    let mut in_flight: VecDeque<InFlight> = VecDeque::new();
    let mut closed = false;
    loop {
        if closed && in_flight.is_empty() {
            link.close().await;
            return Outcome::default();
        }
        if link.connection.is_none() {
            if link.connect().await.is_err() {
                link.release();
                return gave_up(in_flight, receiver);
            }
            if !in_flight.is_empty() {
                link.metrics.forward_resent(in_flight.len());
                tracing::info!(
                    output = %link.name(),
                    messages = in_flight.len(),
                    "sending the unacknowledged messages again"
                );
            }
            for message in in_flight.iter_mut() {
                message.sent_at = Instant::now();
                if let Err(e) = link.send(&message.outgoing.message).await {
                    link.lose(&e);
                    break;
                }
            }
            continue;
        }
        let ack_due = in_flight.front().map(|m| m.sent_at + ACK_TIMEOUT);
        let give_up = link.give_up.clone();
        let Some(connection) = link.connection.as_mut() else {
            continue;
        };
        tokio::select! {
            biased;
            () = give_up.cancelled() => {
                link.close().await;
                return gave_up(in_flight, receiver);
            }
            ack = connection.next_ack() => match ack {
                Ok(chunk) => {
                    let Some(at) = in_flight.iter().position(|m| m.outgoing.chunk.as_bytes() == chunk) else {
                        tracing::debug!(output = %link.name(), "an acknowledgement of no message in flight; ignored");
                        continue;
                    };
                    let Some(InFlight { outgoing, .. }) = in_flight.remove(at) else {
                        continue;
                    };
                    spares.give(outgoing.message);
                    if let Some(reply) = outgoing.reply_chunk {
                        // The inbound side may be gone: then there is no one to tell.
                        let _ = acks.send(reply);
                    }
                }
                Err(e) => link.lose(&e),
            },
            () = sleep_until(ack_due), if ack_due.is_some() => {
                link.lose(&io::Error::new(io::ErrorKind::TimedOut, format!("no acknowledgement within {}s", ACK_TIMEOUT.as_secs())));
            }
            next = receiver.recv(), if !closed && window_open(&in_flight) => match next {
                None => closed = true,
                Some(outgoing) => {
                    let sent = link.send(&outgoing.message).await;
                    in_flight.push_back(InFlight { outgoing, sent_at: Instant::now() });
                    if let Err(e) = sent {
                        link.lose(&e);
                    }
                }
            },
        }
    }
}

/// Whether another message may be sent before acknowledgements come.
fn window_open(in_flight: &VecDeque<InFlight>) -> bool {
    let bytes: usize = in_flight.iter().map(|m| m.outgoing.message.len()).sum();
    in_flight.len() < WINDOW && bytes < WINDOW_BYTES
}

async fn sleep_until(due: Option<Instant>) {
    match due {
        Some(due) => tokio::time::sleep_until(due).await,
        None => std::future::pending().await,
    }
}

/// What was not delivered when the output gave up.
fn gave_up(in_flight: VecDeque<InFlight>, mut receiver: mpsc::Receiver<Outgoing>) -> Outcome {
    receiver.close();
    let mut outcome = Outcome::default();
    let waiting = std::iter::from_fn(|| receiver.try_recv().ok());
    for outgoing in in_flight.into_iter().map(|m| m.outgoing).chain(waiting) {
        outcome.undelivered += 1;
        if outgoing.reply_chunk.is_none() {
            outcome.lost += 1;
        }
    }
    outcome
}

/// The connection to the next hop, made and remade as needed.
struct Link {
    address: String,
    /// The client side of TLS, for a `forward+tls://` output.
    tls: Option<ClientTls>,
    /// The handshake to make on each connection, if the next hop asks.
    auth: Option<ForwardClientAuth>,
    connection: Option<Connection>,
    metrics: Arc<Metrics>,
    give_up: CancellationToken,
    /// Failures since the last successful connection, for the backoff.
    failures: u32,
}

struct Connection {
    reader: ReadHalf<tls::Connection>,
    writer: WriteHalf<tls::Connection>,
    buffer: BytesMut,
    framer: Framer,
}

impl Connection {
    /// The next acknowledgement's `chunk`. Cancel-safe: what was read stays
    /// in the buffer.
    async fn next_ack(&mut self) -> io::Result<Vec<u8>> {
        loop {
            match self.framer.frame(&self.buffer) {
                Ok(Some(len)) => {
                    let reply = self.buffer.split_to(len);
                    match acknowledged(&reply) {
                        Some(chunk) => return Ok(chunk.to_vec()),
                        None => {
                            return Err(io::Error::new(
                                io::ErrorKind::InvalidData,
                                "the next hop sent something that is not an acknowledgement",
                            ));
                        }
                    }
                }
                Ok(None) => {}
                Err(_) => {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        "the next hop sent something that is not msgpack",
                    ));
                }
            }
            self.buffer.reserve(4096);
            if self.reader.read_buf(&mut self.buffer).await? == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "the next hop closed the connection",
                ));
            }
        }
    }
}

impl Link {
    fn name(&self) -> String {
        let scheme = match self.tls {
            Some(_) => "forward+tls",
            None => "forward",
        };
        format!("{scheme}://{}", self.address)
    }

    /// Connects, with backoff after failures; fails only when the output
    /// gives up.
    async fn connect(&mut self) -> io::Result<()> {
        while self.connection.is_none() {
            if self.failures > 0 {
                tokio::select! {
                    () = tokio::time::sleep(backoff(self.failures)) => {}
                    () = self.give_up.cancelled() => {
                        return Err(io::Error::new(io::ErrorKind::NotConnected, "gave up at shutdown"));
                    }
                }
                self.metrics.output_retry();
            }
            let attempt = tokio::select! {
                attempt = TcpStream::connect(&self.address) => attempt,
                () = self.give_up.cancelled() => {
                    return Err(io::Error::new(io::ErrorKind::NotConnected, "gave up at shutdown"));
                }
            };
            match attempt {
                Ok(stream) => {
                    let _ = stream.set_nodelay(true);
                    let mut stream = match &self.tls {
                        None => tls::Connection::Plain(stream),
                        Some(tls) => match tls.connect(stream).await {
                            Ok(connection) => connection,
                            Err(e) => {
                                self.failures += 1;
                                self.metrics.error(ErrorKind::TlsHandshake);
                                tracing::warn!(
                                    output = %self.name(),
                                    error = %e,
                                    retry_in_ms = backoff(self.failures).as_millis() as u64,
                                    "TLS handshake with the next hop failed"
                                );
                                continue;
                            }
                        },
                    };
                    let mut buffer = BytesMut::new();
                    if let Some(auth) = &self.auth {
                        if let Err(why) = handshake(&mut stream, auth, &mut buffer).await {
                            self.failures += 1;
                            self.metrics.error(ErrorKind::Connect);
                            tracing::warn!(
                                output = %self.name(),
                                error = %why,
                                retry_in_ms = backoff(self.failures).as_millis() as u64,
                                "forward handshake with the next hop failed"
                            );
                            continue;
                        }
                    }
                    tracing::info!(output = %self.name(), "connected to the next hop");
                    let (reader, writer) = tokio::io::split(stream);
                    self.connection = Some(Connection {
                        reader,
                        writer,
                        buffer,
                        framer: Framer::new(MAX_ACK),
                    });
                    self.failures = 0;
                    self.metrics.output_up();
                }
                Err(e) => {
                    self.failures += 1;
                    self.metrics.error(ErrorKind::Connect);
                    tracing::warn!(
                        output = %self.name(),
                        error = %e,
                        retry_in_ms = backoff(self.failures).as_millis() as u64,
                        "cannot connect to the next hop"
                    );
                }
            }
        }
        Ok(())
    }

    /// Writes a whole message, within `ACK_TIMEOUT`.
    async fn send(&mut self, message: &[u8]) -> io::Result<()> {
        let Some(connection) = self.connection.as_mut() else {
            return Err(io::Error::from(io::ErrorKind::NotConnected));
        };
        tokio::select! {
            written = tokio::time::timeout(ACK_TIMEOUT, connection.writer.write_all(message)) => {
                written.unwrap_or_else(|_| Err(io::Error::new(io::ErrorKind::TimedOut, "the next hop took nothing")))
            }
            () = self.give_up.cancelled() => Err(io::Error::new(io::ErrorKind::NotConnected, "gave up at shutdown")),
        }
    }

    /// The connection is lost: it is made again before the next message.
    fn lose(&mut self, why: &io::Error) {
        if self.connection.take().is_some() {
            self.metrics.error(ErrorKind::Write);
            self.metrics.output_down();
            self.failures = self.failures.max(1);
            tracing::warn!(output = %self.name(), error = %why, "the connection to the next hop is lost; reconnecting");
        }
    }

    async fn close(&mut self) {
        match self.connection.take() {
            Some(mut connection) => {
                let _ = connection.writer.shutdown().await;
            }
            None => self.release(),
        }
    }

    /// A link given up on while down no longer counts as an output down.
    fn release(&mut self) {
        if self.connection.is_none() {
            self.metrics.output_up();
        }
    }
}

/// The client's side of the handshake: the next hop's HELO, logredact's
/// PING, the next hop's PONG checked.
async fn handshake(
    stream: &mut tls::Connection,
    auth: &ForwardClientAuth,
    buffer: &mut BytesMut,
) -> Result<(), String> {
    let helo = read_frame(stream, buffer, MAX_ACK, ACK_TIMEOUT)
        .await
        .map_err(|e| e.to_string())?;
    let handshake = ClientHandshake::new(auth, &helo)?;
    stream
        .write_all(&handshake.ping())
        .await
        .map_err(|e| e.to_string())?;
    let pong = read_frame(stream, buffer, MAX_ACK, ACK_TIMEOUT)
        .await
        .map_err(|e| e.to_string())?;
    handshake.check_pong(&pong)
}

fn backoff(failures: u32) -> Duration {
    let factor = 1u32 << failures.saturating_sub(1).min(16);
    BACKOFF_START.saturating_mul(factor).min(BACKOFF_CAP)
}
