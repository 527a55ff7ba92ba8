//! A TCP input's accept loop: each accepted connection gets a task of its
//! own (a [`Handler`]), which on a `tls://` input first runs the TLS
//! handshake, then reads the connection as a [`Stream`], written either to
//! the shared output (merged, a whole line at a time) or to an upstream
//! connection of its own (the redacting proxy). A connection's place among
//! `max_connections` is held until its data is delivered.
//!
//! A handshake that fails (a plaintext client, a client without a valid
//! certificate where one is required, a timeout) closes that connection,
//! with a log line naming the peer and a count in
//! `logredact_errors_total{kind="tls_handshake"}`; nothing of it is read
//! and the other connections are not affected.

use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpStream;
use tokio_util::task::TaskTracker;

use crate::metrics::ErrorKind;
use crate::pipeline::context::Context;
use crate::pipeline::error::PipelineError;
use crate::pipeline::stream::{InputRole, OutputRole, Stream};
use crate::sink::{Endpoint, Port, SharedOutput, TcpSink};
use crate::source::{Accepted, Place, TcpInput, TcpSource};
use crate::tls::{Connection, ServerTls};

/// Where the streams of a listener go.
#[derive(Clone)]
pub(crate) enum Upstream {
    /// One shared output.
    Shared(SharedOutput),
    /// A new upstream connection (to this endpoint) per inbound connection.
    PerConnection(Endpoint),
}

/// Why a proxied connection stops waiting for its upstream.
const UPSTREAM_LATE: &str = "the upstream did not take the remaining data within the grace period";

/// A listening TCP input and where its connections go.
pub(crate) struct Listener {
    /// The bound listener.
    pub(crate) input: TcpInput,
    /// Where accepted connections are written.
    pub(crate) upstream: Upstream,
    /// Connections idle this long are cut.
    pub(crate) idle: Option<Duration>,
    /// Tracks each connection's task, so the run waits for them all.
    pub(crate) tracker: TaskTracker,
    /// The run.
    pub(crate) context: Arc<Context>,
}

impl Listener {
    /// Accepts connections until the shutdown starts.
    pub(crate) async fn run(mut self) {
        loop {
            let accepted = tokio::select! {
                accepted = self.input.accept() => accepted,
                () = self.context.shutdown.stopping.cancelled() => return,
            };
            let Accepted {
                stream,
                peer,
                permit,
            } = accepted;
            let handler = Handler {
                id: format!("tcp:{peer}"),
                stream,
                place: permit,
                input: self.input.name().to_string(),
                tls: self.input.tls().cloned(),
                upstream: self.upstream.clone(),
                idle: self.idle,
                context: Arc::clone(&self.context),
            };
            self.tracker.spawn(handler.run());
        }
    }
}

/// One accepted connection, from its handshake to the delivery of its data.
struct Handler {
    /// The stream id, `tcp:<peer>` (for TLS connections too).
    id: String,
    stream: TcpStream,
    /// Its place among `max_connections`, released when the handler ends.
    place: Place,
    /// The input as messages name it.
    input: String,
    /// The server side of TLS, for a connection to a `tls://` input.
    tls: Option<ServerTls>,
    upstream: Upstream,
    idle: Option<Duration>,
    context: Arc<Context>,
}

impl Handler {
    async fn run(self) {
        let Handler {
            id,
            stream,
            place,
            input,
            tls,
            upstream,
            idle,
            context,
        } = self;
        let connection = match tls {
            None => Connection::Plain(stream),
            Some(tls) => match handshake(&tls, stream, &context).await {
                Ok(connection) => connection,
                Err(e) => {
                    context.env.metrics.error(ErrorKind::TlsHandshake);
                    tracing::warn!(input = %input, stream = %id, error = %e, "TLS handshake failed; connection closed");
                    return;
                }
            },
        };
        let source = TcpSource::new(connection, idle);
        let delivery = Delivery { id, context };
        match upstream {
            Upstream::Shared(shared) => delivery.merge(source, Port::merged(&shared), place).await,
            Upstream::PerConnection(endpoint) => delivery.proxy(source, endpoint, place).await,
        }
    }
}

/// The server's handshake on `stream`, given up at the end of the grace
/// period (a connection that has sent no data has none to drain).
async fn handshake(
    tls: &ServerTls,
    stream: TcpStream,
    context: &Context,
) -> std::io::Result<Connection> {
    tokio::select! {
        handshake = tls.accept(stream) => handshake,
        () = context.shutdown.deadline.cancelled() => Err(std::io::Error::new(
            std::io::ErrorKind::Interrupted,
            "shutting down before the TLS handshake completed",
        )),
    }
}

/// A connection's stream and where it delivers.
struct Delivery {
    id: String,
    context: Arc<Context>,
}

impl Delivery {
    fn stream(&self, source: TcpSource, port: Port, output: OutputRole) -> Stream<TcpSource> {
        Stream {
            id: self.id.clone(),
            source,
            input: InputRole::Connection,
            port,
            output,
            scanner: self.context.scanner(None),
            progress: None,
        }
    }

    /// Runs a connection into the shared output.
    async fn merge(self, source: TcpSource, port: Port, place: Place) {
        let stream = self.stream(source, port, OutputRole::Shared);
        stream.run(Arc::clone(&self.context)).await;
        drop(place);
    }

    /// Runs a connection into an upstream connection of its own.
    async fn proxy(self, source: TcpSource, endpoint: Endpoint, mut place: Place) {
        let context = &self.context;
        let output = endpoint.name();
        let sink = tracing::info_span!("stream", stream = %self.id).in_scope(|| {
            TcpSink::connect(
                endpoint,
                Arc::clone(&context.env.metrics),
                context.shutdown.deadline.clone(),
            )
        });
        let Some(sender) = sink.sender() else {
            return;
        };
        let stream = self.stream(source, Port::Direct(sender), OutputRole::Own);
        stream.run(Arc::clone(context)).await;
        // Until its data is delivered, the connection keeps its place (and
        // what it holds in memory).
        place.connection_closed();
        let closed = context.within_allowance(sink.close(), UPSTREAM_LATE).await;
        if let Err(e) = closed {
            context.env.metrics.error(ErrorKind::Write);
            tracing::error!(stream = %self.id, output = %output, error = %e, "upstream lost; this stream's output is incomplete");
            // What was not delivered must not pass for delivered: the run
            // has failed, though the other connections go on.
            context.record(PipelineError::Write { output, source: e });
        }
        drop(place);
    }
}
