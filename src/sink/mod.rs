//! Sinks: where redacted streams go, the batches they are written in, and the
//! ports through which streams reach them.

mod batch;
pub(crate) mod output;
mod port;
mod tcp;
mod writer;

pub use batch::{Batch, BatchBuilder};
pub use port::{Port, SharedOutput};
pub use tcp::{Endpoint, TcpSink};
pub use writer::WriterSink;
