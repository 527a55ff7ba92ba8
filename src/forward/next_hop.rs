//! Where a forward connection's redacted messages go: to a forward hop of
//! its own, or as lines to the run's shared output. Either way a sender's
//! chunk is acknowledged only once its records are delivered: acknowledged
//! by the next forward hop, or written by the output.

use std::sync::Arc;

use bytes::Bytes;
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;

use crate::config::forward::ForwardClientAuth;
use crate::forward::client::{Downstream, Outcome, Outgoing};
use crate::forward::lines::message_lines;
use crate::forward::message::{MessageError, Redacted};
use crate::metrics::Metrics;
use crate::progress::Ack;
use crate::sink::{Batch, Port, SharedOutput};
use crate::tls::ClientTls;

/// Where the connections of a forward input send their records.
#[derive(Clone)]
pub(crate) enum NextHop {
    /// A forward output: a connection to it per inbound connection, with
    /// its acknowledgements.
    Forward {
        /// `HOST:PORT`.
        address: String,
        /// The client side of TLS, for a `forward+tls://` output.
        tls: Option<ClientTls>,
    },
    /// Any other output, shared by every stream: a line of JSON per record
    /// (see [`crate::forward::lines`]).
    Lines {
        /// The output.
        shared: SharedOutput,
        /// Its name in messages (`file:…`, `-`, `tcp://…`).
        name: String,
    },
}

impl NextHop {
    /// The output, as messages name it.
    pub(crate) fn name(&self) -> String {
        match self {
            NextHop::Forward { address, tls: None } => format!("forward://{address}"),
            NextHop::Forward { address, .. } => format!("forward+tls://{address}"),
            NextHop::Lines { name, .. } => name.clone(),
        }
    }
}

/// A connection's way to its next hop.
pub(crate) enum HopSink {
    /// Messages handed to the task of a forward output.
    Forward {
        downstream: Downstream,
        sender: Option<mpsc::Sender<Outgoing>>,
    },
    /// Lines handed to the shared output.
    Lines(LineSink),
}

/// What became of the messages written as lines.
#[derive(Debug, Default, Clone, Copy)]
struct Tally {
    /// Messages handed to the output.
    sent: usize,
    /// Of those, messages whose sender asked for no acknowledgement.
    sent_unasked: usize,
    /// Messages written or dropped unwritten.
    settled: usize,
    /// Messages written.
    written: usize,
    /// Of those, messages whose sender asked for no acknowledgement.
    written_unasked: usize,
}

/// A forward connection's lines on the shared output.
pub(crate) struct LineSink {
    port: Port,
    acks: mpsc::UnboundedSender<Vec<u8>>,
    tally: Arc<watch::Sender<Tally>>,
    max_decompressed: usize,
}

/// One message's lines on their way: the sender is acknowledged when they
/// are written; dropped unwritten, the message is only counted as settled.
struct LinesInFlight {
    reply_chunk: Option<Vec<u8>>,
    acks: mpsc::UnboundedSender<Vec<u8>>,
    tally: Arc<watch::Sender<Tally>>,
}

impl LinesInFlight {
    fn written(&self) {
        if let Some(chunk) = &self.reply_chunk {
            // The sender may be gone: then there is no one to tell.
            let _ = self.acks.send(chunk.clone());
        }
        let unasked = self.reply_chunk.is_none();
        self.tally.send_modify(|t| {
            t.written += 1;
            t.written_unasked += usize::from(unasked);
        });
    }
}

impl Drop for LinesInFlight {
    fn drop(&mut self) {
        self.tally.send_modify(|t| t.settled += 1);
    }
}

impl HopSink {
    /// The sink for `next`; delivered messages' chunks go to `acks`.
    pub(crate) fn open(
        next: &NextHop,
        auth: Option<ForwardClientAuth>,
        acks: mpsc::UnboundedSender<Vec<u8>>,
        metrics: &Arc<Metrics>,
        give_up: &CancellationToken,
        max_decompressed: usize,
    ) -> HopSink {
        match next {
            NextHop::Forward { address, tls } => {
                let downstream = Downstream::connect(
                    address.clone(),
                    tls.clone(),
                    auth,
                    acks,
                    Arc::clone(metrics),
                    give_up.clone(),
                );
                let sender = downstream.sender();
                HopSink::Forward { downstream, sender }
            }
            NextHop::Lines { shared, .. } => HopSink::Lines(LineSink {
                port: Port::merged(shared),
                acks,
                tally: Arc::new(watch::Sender::new(Tally::default())),
                max_decompressed,
            }),
        }
    }

    /// A buffer to write the next message into: one of a delivered
    /// message's, where there is one.
    pub(crate) fn spare_buffer(&self) -> Vec<u8> {
        match self {
            HopSink::Forward { downstream, .. } => downstream.spares().take(),
            HopSink::Lines(_) => Vec::new(),
        }
    }

    /// Hands a redacted message on: `Ok(Some(bytes))` once taken, `Ok(None)`
    /// when the output has given up, an error if it cannot be written as
    /// lines.
    pub(crate) async fn send(
        &mut self,
        redacted: Redacted,
        chunk: String,
    ) -> Result<Option<usize>, MessageError> {
        match self {
            HopSink::Forward { sender, .. } => {
                let outgoing = Outgoing {
                    message: redacted.message,
                    chunk,
                    reply_chunk: redacted.reply_chunk,
                };
                let len = outgoing.message.len();
                let Some(sender) = sender else {
                    return Ok(None);
                };
                Ok(sender.send(outgoing).await.is_ok().then_some(len))
            }
            HopSink::Lines(sink) => sink.send(redacted).await,
        }
    }

    /// Waits until every message is delivered or given up on (at the end of
    /// the grace period, or when `give_up` is cancelled), and says what was
    /// not delivered.
    pub(crate) async fn close(self, give_up: &CancellationToken) -> Outcome {
        match self {
            HopSink::Forward { downstream, sender } => {
                drop(sender);
                downstream.close().await
            }
            HopSink::Lines(sink) => sink.close(give_up).await,
        }
    }
}

impl LineSink {
    async fn send(&mut self, redacted: Redacted) -> Result<Option<usize>, MessageError> {
        let mut lines = Vec::with_capacity(redacted.message.len() + 64);
        message_lines(&redacted.message, self.max_decompressed, &mut lines)?;
        let len = lines.len();
        let unasked = redacted.reply_chunk.is_none();
        let in_flight = LinesInFlight {
            reply_chunk: redacted.reply_chunk,
            acks: self.acks.clone(),
            tally: Arc::clone(&self.tally),
        };
        self.tally.send_modify(|t| {
            t.sent += 1;
            t.sent_unasked += usize::from(unasked);
        });
        let mut batch = Batch::from_pieces(vec![Bytes::from(lines)]);
        batch.acknowledge(Ack::Written(Arc::new(move || in_flight.written())));
        Ok(self.port.send(batch).await.is_ok().then_some(len))
    }

    async fn close(self, give_up: &CancellationToken) -> Outcome {
        let LineSink {
            port, acks, tally, ..
        } = self;
        drop(port);
        drop(acks);
        let mut settled = tally.subscribe();
        tokio::select! {
            biased;
            _ = settled.wait_for(|t| t.settled == t.sent) => {}
            () = give_up.cancelled() => {}
        }
        let t = *tally.borrow();
        Outcome {
            undelivered: t.sent - t.written,
            lost: t.sent_unasked - t.written_unasked,
        }
    }
}
