//! Sources: where streams come from. Each source yields the stream as a
//! sequence of `Bytes` chunks, exactly as read.

mod stdin;

use std::io;

use bytes::Bytes;

pub use stdin::StdinSource;

/// A stream of input chunks.
pub trait ChunkSource {
    /// The next chunk as read, or `None` at the end of the stream.
    fn next_chunk(&mut self) -> impl Future<Output = io::Result<Option<Bytes>>> + Send;
}

/// Size of one read. Large enough to amortise the system call, small enough
/// that a chunk stays in the CPU cache while it is scanned and written.
pub const READ_CHUNK: usize = 64 * 1024;
