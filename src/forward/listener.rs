//! A forward input's accept loop: each accepted connection runs as a
//! [`Connection`] with a connection of its own to the next forward hop (or
//! a share of the run's output), its place
//! among `limits.max_connections` held until its messages are delivered.

use std::sync::Arc;

use tokio_util::task::TaskTracker;

use crate::config::forward::ForwardSecurity;
use crate::forward::next_hop::NextHop;
use crate::forward::server::Connection;
use crate::forward::settings::ForwardLimits;
use crate::pipeline::Context;
use crate::source::{Accepted, TcpInput};

/// A listening forward input and where its connections go.
pub(crate) struct ForwardListener {
    /// The bound listener.
    pub(crate) input: TcpInput,
    /// The handshake settings of both sides.
    pub(crate) security: ForwardSecurity,
    /// Where its connections' records go.
    pub(crate) next: NextHop,
    /// Limits on each connection.
    pub(crate) limits: ForwardLimits,
    /// Tracks each connection's task, so the run waits for them all.
    pub(crate) tracker: TaskTracker,
    /// The run.
    pub(crate) context: Arc<Context>,
}

impl ForwardListener {
    /// The input, as messages name it.
    fn name(&self) -> String {
        let scheme = match self.input.tls() {
            Some(_) => "forward+tls",
            None => "forward",
        };
        format!("{scheme}://{}", self.input.address())
    }

    /// Accepts connections until the shutdown starts.
    pub(crate) async fn run(mut self) {
        tracing::info!(
            input = %self.name(),
            output = %self.next.name(),
            "listening"
        );
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
            let _ = stream.set_nodelay(true);
            let connection = Connection {
                id: format!("forward:{peer}"),
                stream,
                tls: self.input.tls().cloned(),
                place: permit,
                next: self.next.clone(),
                security: self.security.clone(),
                limits: self.limits,
                context: Arc::clone(&self.context),
            };
            self.tracker.spawn(connection.run());
        }
    }
}
