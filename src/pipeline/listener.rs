//! A TCP input's accept loop: each accepted connection becomes a [`Stream`],
//! written either to the shared output (merged, a whole line at a time) or to
//! an upstream connection of its own (the redacting proxy). A connection's
//! place among `max_connections` is held until its data is delivered.

use std::sync::Arc;
use std::time::Duration;

use tokio_util::task::TaskTracker;

use crate::metrics::ErrorKind;
use crate::pipeline::context::Context;
use crate::pipeline::error::PipelineError;
use crate::pipeline::stream::{InputRole, OutputRole, Stream};
use crate::sink::{Port, SharedOutput, TcpSink};
use crate::source::{Accepted, Place, TcpInput, TcpSource};

/// Where the streams of a listener go.
pub(crate) enum Upstream {
    /// One shared output.
    Shared(SharedOutput),
    /// A new upstream connection (to this `HOST:PORT`) per inbound connection.
    PerConnection(String),
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
            let id = format!("tcp:{peer}");
            let source = TcpSource::new(stream, self.idle);
            match &self.upstream {
                Upstream::Shared(shared) => self.merge(id, source, Port::merged(shared), permit),
                Upstream::PerConnection(address) => self.proxy(id, source, address, permit),
            }
        }
    }

    fn connection(
        &self,
        id: String,
        source: TcpSource,
        port: Port,
        output: OutputRole,
    ) -> Stream<TcpSource> {
        Stream {
            id,
            source,
            input: InputRole::Connection,
            port,
            output,
            scanner: self.context.scanner(None),
            progress: None,
        }
    }

    /// Runs a connection into the shared output.
    fn merge(&self, id: String, source: TcpSource, port: Port, permit: Place) {
        let stream = self.connection(id, source, port, OutputRole::Shared);
        let context = Arc::clone(&self.context);
        self.tracker.spawn(async move {
            stream.run(context).await;
            drop(permit);
        });
    }

    /// Runs a connection into an upstream connection of its own.
    fn proxy(&self, id: String, source: TcpSource, address: &str, mut permit: Place) {
        let context = &self.context;
        let sink = tracing::info_span!("stream", stream = %id).in_scope(|| {
            TcpSink::connect(
                address.to_string(),
                Arc::clone(&context.env.metrics),
                context.shutdown.deadline.clone(),
            )
        });
        let Some(sender) = sink.sender() else {
            return;
        };
        let stream = self.connection(id.clone(), source, Port::Direct(sender), OutputRole::Own);
        let output = format!("tcp://{address}");
        let context = Arc::clone(context);
        self.tracker.spawn(async move {
            stream.run(Arc::clone(&context)).await;
            // Until its data is delivered, the connection keeps its place
            // (and what it holds in memory).
            permit.connection_closed();
            let closed = context.within_allowance(sink.close(), UPSTREAM_LATE).await;
            if let Err(e) = closed {
                context.env.metrics.error(ErrorKind::Write);
                tracing::error!(stream = %id, output = %output, error = %e, "upstream lost; this stream's output is incomplete");
                // What was not delivered must not pass for delivered: the
                // run has failed, though the other connections go on.
                context.record(PipelineError::Write { output, source: e });
            }
            drop(permit);
        });
    }
}
