//! Sinks: where redacted streams go, and the batches they are written in.

mod batch;
mod stdout;

use std::io;

pub use batch::{Batch, BatchBuilder};
pub use stdout::StdoutSink;

/// Somewhere redacted batches are written.
pub trait BatchSink {
    /// Queues a batch for writing; waits while the output is behind.
    fn send(&mut self, batch: Batch) -> impl Future<Output = io::Result<()>> + Send;
}
