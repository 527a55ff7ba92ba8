//! A forward input's connection: messages read, redacted and handed to a
//! forward output of the connection's own; each message's sender is
//! acknowledged once the next hop has acknowledged it.
//!
//! The connection is read one whole message at a time (the [`Framer`] finds
//! where each ends, and refuses one longer than the limit before reading it
//! all). A message that is not msgpack, of no known mode, too long, or whose
//! gzipped entries inflate past the limit closes this connection only,
//! logged and counted (`logredact_errors_total{kind="protocol"}`); what it
//! sent before goes on to the next hop and is acknowledged as usual.
//!
//! At shutdown a connection stops reading once what has arrived is read:
//! senders that ask for acknowledgements send the rest again to the next
//! logredact; then the messages read are delivered and acknowledged within
//! the grace period, and those that are not are not acknowledged.

use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use bytes::BytesMut;
use tokio::io::AsyncReadExt;
use tokio::io::AsyncWriteExt;
use tokio::io::{ReadHalf, WriteHalf};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, watch};
use tracing::Instrument;

use crate::audit::{AuditRecord, rfc3339_millis};
use crate::config::forward::{ForwardSecurity, ForwardServerAuth};
use crate::forward::frame::{FrameError, Framer, read_frame};
use crate::forward::handshake::ServerHandshake;
use crate::forward::message::{self, MessageError, MessageLimits, is_ping};
use crate::forward::next_hop::{HopSink, NextHop};
use crate::forward::settings::ForwardLimits;
use crate::metrics::{ErrorKind, Metrics};
use crate::pipeline::{Context, PipelineError, PublishedRules};
use crate::scan::detection::Detection;
use crate::scan::msgpack::{self, RecordRedactor};
use crate::scan::scanner::Scanner;
use crate::source::{Place, READ_CHUNK};
use crate::tls::{self, ServerTls};

/// One accepted connection of a forward input, ready to run.
pub(crate) struct Connection {
    /// The stream id, `forward:<peer>`.
    pub(crate) id: String,
    /// The connection, before TLS.
    pub(crate) stream: TcpStream,
    /// The server side of TLS, for a `forward+tls://` input.
    pub(crate) tls: Option<ServerTls>,
    /// Its place among `limits.max_connections`, held until its messages
    /// are delivered.
    pub(crate) place: Place,
    /// Where its records go.
    pub(crate) next: NextHop,
    /// The handshake settings of both sides.
    pub(crate) security: ForwardSecurity,
    /// Limits on messages and on idle connections.
    pub(crate) limits: ForwardLimits,
    /// The run.
    pub(crate) context: Arc<Context>,
}

/// How reading a connection ended.
enum Ended {
    /// The sender closed it.
    Closed,
    /// Idle for `limits.idle_timeout_secs`.
    Idle,
    /// Shutdown: what had arrived was read.
    Stopped,
    /// The next hop is given up on (end of the grace period).
    OutputGone,
}

/// Why a connection is closed early.
enum Refused {
    Frame(FrameError),
    Message(MessageError),
    Ping,
}

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refused::Frame(FrameError::Invalid) => f.write_str("not msgpack"),
            Refused::Frame(FrameError::TooLong { limit }) => {
                write!(f, "a message longer than {limit} bytes")
            }
            Refused::Message(e) => e.fmt(f),
            Refused::Ping => f.write_str(
                "a handshake PING out of place (this input sends a HELO only with forward.input.shared_key)",
            ),
        }
    }
}

/// Ids for the messages logredact sends on: a prefix of the process, then a
/// count.
fn next_chunk_id() -> String {
    static PREFIX: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    static COUNT: AtomicU64 = AtomicU64::new(0);
    let prefix = PREFIX.get_or_init(|| {
        let mut bytes = [0u8; 8];
        // Without randomness the ids are still unique within the process.
        let _ = getrandom::fill(&mut bytes);
        u64::from_le_bytes(bytes)
    });
    format!("lr{prefix:x}-{}", COUNT.fetch_add(1, Ordering::Relaxed))
}

impl Connection {
    /// Runs the connection to its end, then waits for its messages to be
    /// delivered and acknowledged.
    pub(crate) async fn run(self) {
        let Connection {
            id,
            stream,
            tls,
            mut place,
            next,
            security,
            limits,
            context,
        } = self;
        let span = tracing::info_span!("stream", stream = %id);
        let metrics = Arc::clone(&context.env.metrics);
        let mut stream = match tls {
            None => tls::Connection::Plain(stream),
            Some(tls) => match tls_handshake(&tls, stream, &context).await {
                Ok(connection) => connection,
                Err(e) => {
                    metrics.error(ErrorKind::TlsHandshake);
                    let _entered = span.enter();
                    tracing::warn!(error = %e, "TLS handshake failed; connection closed");
                    return;
                }
            },
        };
        // What the sender sent after its PING: the first events.
        let mut buffer = BytesMut::with_capacity(READ_CHUNK);
        if let Some(auth) = &security.input {
            let shaken = handshake(&mut stream, auth, &mut buffer, limits.idle)
                .instrument(span.clone())
                .await;
            if let Err(why) = shaken {
                metrics.error(ErrorKind::Protocol);
                let _entered = span.enter();
                tracing::warn!(reason = %why, "forward handshake failed; connection closed");
                return;
            }
        }
        metrics.stream_started();
        let (reader, writer) = tokio::io::split(stream);
        // Unbounded, but never longer than the messages delivered and not
        // yet acknowledged, which the next hop's window bounds.
        let (acks, replies) = mpsc::unbounded_channel();
        let mut sink = span.in_scope(|| {
            HopSink::open(
                &next,
                security.output.clone(),
                acks,
                &metrics,
                &context.shutdown.deadline,
                limits.max_decompressed,
            )
        });
        let acknowledger = tokio::spawn(
            acknowledge(writer, replies, Arc::clone(&metrics)).instrument(span.clone()),
        );
        let inbound = Inbound {
            id: &id,
            context: &context,
            limits,
            redactor: RecordRedactor::new(context.scanner(None)),
            sink: &mut sink,
            rules: context.env.rules.clone(),
        };
        let ended = inbound.read(reader, buffer).instrument(span.clone()).await;
        place.connection_closed();
        let outcome = sink.close(&context.give_up).await;
        let _ = acknowledger.await;
        metrics.stream_ended();
        let _entered = span.enter();
        match ended {
            Ok(Ended::Closed) => tracing::debug!("connection closed by the sender"),
            Ok(Ended::Idle) => tracing::info!("connection idle too long; closed"),
            Ok(Ended::Stopped) => tracing::debug!("connection stopped at shutdown"),
            Ok(Ended::OutputGone) => {}
            Err(refused) => {
                metrics.error(ErrorKind::Protocol);
                tracing::warn!(reason = %refused, "forward connection closed: what it sent before was delivered");
            }
        }
        if outcome.undelivered > 0 {
            metrics.error(ErrorKind::Write);
            tracing::error!(
                output = %next.name(),
                messages = outcome.undelivered,
                lost = outcome.lost,
                "messages not delivered to the next hop; not acknowledged to their sender"
            );
            if outcome.lost > 0 {
                // Their sender asked for no acknowledgement and takes them
                // for delivered: the run has failed.
                context.record(PipelineError::Write {
                    output: next.name(),
                    source: io::Error::new(
                        io::ErrorKind::TimedOut,
                        format!(
                            "{} messages sent without acknowledgement were not delivered",
                            outcome.lost
                        ),
                    ),
                });
            }
        }
        drop(place);
    }
}

/// The server's TLS handshake, unless the shutdown's grace period ends first.
async fn tls_handshake(
    tls: &ServerTls,
    stream: TcpStream,
    context: &Context,
) -> io::Result<tls::Connection> {
    tokio::select! {
        handshake = tls.accept(stream) => handshake,
        () = context.shutdown.deadline.cancelled() => Err(io::Error::new(
            io::ErrorKind::Interrupted,
            "shutting down before the TLS handshake completed",
        )),
    }
}

/// The longest handshake message read.
const MAX_HANDSHAKE: usize = 64 * 1024;

/// The server's side of the handshake: HELO, the client's PING checked, and
/// PONG (saying no, with the reason, when the client is refused).
async fn handshake(
    stream: &mut tls::Connection,
    auth: &ForwardServerAuth,
    buffer: &mut BytesMut,
    idle: Option<Duration>,
) -> Result<(), String> {
    let handshake = ServerHandshake::new(auth);
    let wait = idle.unwrap_or(Duration::from_secs(60));
    stream
        .write_all(&handshake.helo())
        .await
        .map_err(|e| e.to_string())?;
    let ping = read_frame(stream, buffer, MAX_HANDSHAKE, wait)
        .await
        .map_err(|e| e.to_string())?;
    let (pong, verdict) = handshake.answer(&ping);
    stream.write_all(&pong).await.map_err(|e| e.to_string())?;
    verdict.map_err(String::from)
}

/// Writes `{"ack": chunk}` for each chunk delivered, until the output ends.
async fn acknowledge(
    mut writer: WriteHalf<tls::Connection>,
    mut replies: mpsc::UnboundedReceiver<Vec<u8>>,
    metrics: Arc<Metrics>,
) {
    while let Some(chunk) = replies.recv().await {
        if let Err(e) = writer.write_all(&message::ack(&chunk)).await {
            tracing::debug!(error = %e, "the sender is gone; its acknowledgements are not sent");
            return;
        }
        metrics.forward_acked();
    }
    let _ = writer.shutdown().await;
}

/// The reading side of a connection.
struct Inbound<'a> {
    id: &'a str,
    context: &'a Context,
    limits: ForwardLimits,
    redactor: RecordRedactor,
    sink: &'a mut HopSink,
    /// The rules in force, as reloads publish them.
    rules: watch::Receiver<PublishedRules>,
}

impl Inbound<'_> {
    async fn read(
        mut self,
        mut reader: ReadHalf<tls::Connection>,
        mut buffer: BytesMut,
    ) -> Result<Ended, Refused> {
        let mut framer = Framer::new(self.limits.max_message);
        let shutdown = &self.context.shutdown;
        let mut stopping = false;
        loop {
            while let Some(len) = framer.frame(&buffer).map_err(Refused::Frame)? {
                let frame = buffer.split_to(len);
                if !self.message(&frame).await? {
                    return Ok(Ended::OutputGone);
                }
            }
            if stopping {
                // What has arrived is read; then the connection is done.
                // A zero timeout polls the read once: what is there, or
                // nothing.
                buffer.reserve(READ_CHUNK);
                match tokio::time::timeout(Duration::ZERO, reader.read_buf(&mut buffer)).await {
                    Ok(Ok(0)) => return Ok(Ended::Closed),
                    Ok(Ok(n)) => {
                        self.context.env.metrics.read(n);
                        continue;
                    }
                    Ok(Err(_)) | Err(_) => return Ok(Ended::Stopped),
                }
            }
            buffer.reserve(READ_CHUNK);
            let idle = self.limits.idle.unwrap_or(Duration::MAX);
            let read = tokio::select! {
                biased;
                () = shutdown.stopping.cancelled() => {
                    stopping = true;
                    continue;
                }
                read = tokio::time::timeout(idle, reader.read_buf(&mut buffer)) => read,
            };
            match read {
                Err(_) => return Ok(Ended::Idle),
                Ok(Ok(0)) => return Ok(Ended::Closed),
                Ok(Ok(n)) => self.context.env.metrics.read(n),
                Ok(Err(e)) => {
                    tracing::debug!(error = %e, "reading the connection failed");
                    return Ok(Ended::Closed);
                }
            }
        }
    }

    /// Redacts one message and hands it to the output; false when the
    /// output has given up.
    async fn message(&mut self, frame: &[u8]) -> Result<bool, Refused> {
        if is_ping(frame) {
            return Err(Refused::Ping);
        }
        self.follow_reload();
        let limits = MessageLimits {
            max_decompressed: self.limits.max_decompressed,
        };
        let chunk = next_chunk_id();
        let buffer = self.sink.spare_buffer();
        let redacted = message::redact_message(frame, &mut self.redactor, limits, &chunk, buffer);
        // Detections complete even when the message is refused (then the
        // stream is named without its tag).
        let detections = self.redactor.take_detections();
        let tag = redacted.as_ref().ok().and_then(|r| tag(&r.message));
        self.record(detections, tag.as_deref());
        let redacted = redacted.map_err(Refused::Message)?;
        let records = redacted.records;
        let sent = self
            .sink
            .send(redacted, chunk)
            .await
            .map_err(Refused::Message)?;
        self.context.env.metrics.forward_records(records);
        if let Some(len) = sent {
            self.context.env.metrics.written(len);
        }
        Ok(sent.is_some())
    }

    /// Goes on with the rules a reload published, between two messages
    /// (where nothing straddles).
    fn follow_reload(&mut self) {
        if !self.rules.has_changed().unwrap_or(false) {
            return;
        }
        let latest = self.rules.borrow_and_update().clone();
        if Arc::ptr_eq(&latest.rules, self.redactor.scanner().latest_rules()) {
            return;
        }
        let mark = self.redactor.scanner().decided();
        tracing::info!(
            offset = mark.offset,
            generation = latest.generation,
            "the reloaded rules take over here"
        );
        self.redactor
            .replace_scanner(Scanner::resume(latest.rules, self.context.env.mode, mark));
    }

    /// Counts detections and writes their audit records, whose stream is
    /// `forward:<peer>/<tag>` (the tag as redacted).
    fn record(&self, detections: Vec<Detection>, tag: Option<&str>) {
        let stream = match tag {
            Some(tag) => format!("{}/{tag}", self.id),
            None => self.id.to_string(),
        };
        for detection in detections {
            self.context.env.metrics.detected(&detection);
            if let Some(audit) = &self.context.env.audit {
                let ts = rfc3339_millis(SystemTime::now());
                audit.record(AuditRecord::new(&detection, &stream, ts).to_line());
            }
        }
    }
}

/// The tag of a (redacted) message: its first element, a `str`.
fn tag(message: &[u8]) -> Option<String> {
    let (_, at) = msgpack::token(message, 0).ok()?;
    match msgpack::token(message, at).ok()? {
        (msgpack::Token::Payload { body, .. }, end) => {
            Some(String::from_utf8_lossy(&message[body..end]).into_owned())
        }
        _ => None,
    }
}
