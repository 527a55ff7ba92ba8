//! Sources: where streams come from. Each source yields its stream as a
//! sequence of `Bytes` chunks, exactly as read, and says how the stream ended.

pub mod checkpoint;
mod follow;
mod input;
mod pool;
mod reader;
mod tcp;

use std::io;

use bytes::Bytes;

pub use follow::FollowSource;
pub use input::OpenError;
pub(crate) use input::{Input, OpenContext, OpenedStream, open};
pub use reader::ReaderSource;
pub use tcp::{Accepted, Place, TcpInput, TcpSource};

/// Size of one read. Large enough to amortise the system call, small enough
/// that a chunk stays in the CPU cache while it is scanned and written.
pub const READ_CHUNK: usize = 64 * 1024;

/// Why logredact stopped a stream that had not ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CutReason {
    /// Shutdown: the grace period ran out, or a followed file stops at its end.
    Shutdown,
    /// The connection was idle for `limits.idle_timeout_secs`.
    Idle,
}

/// What a source has next.
#[derive(Debug)]
pub enum SourceEvent {
    /// The next bytes of the stream.
    Chunk(Bytes),
    /// The stream ended (end of file, the peer closed).
    End,
    /// logredact stopped the stream before its end: whatever is undecided
    /// (possibly the start of a secret) is not written.
    Cut(CutReason),
}

/// A stream of input chunks.
pub trait ChunkSource {
    /// The next event. Cancel-safe: dropping the future loses nothing.
    fn next(&mut self) -> impl Future<Output = io::Result<SourceEvent>> + Send;

    /// Asks the source to stop at its next natural point (a followed file at
    /// its current end); sources that can only end or be cut ignore it.
    fn request_stop(&mut self) {}
}
