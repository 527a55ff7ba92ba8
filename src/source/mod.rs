//! Sources: where streams come from. Each source yields its stream as a
//! sequence of `Bytes` chunks, exactly as read, and says how the stream ended.

pub mod checkpoint;
mod driver;
mod follow;
pub mod identity;
mod input;
mod pattern;
mod pool;
mod reader;
mod rotation;
mod tcp;
mod walk;

use std::io;

use bytes::Bytes;

use crate::metrics::{ErrorKind, Metrics};

pub use driver::FollowDriver;
pub use follow::{FollowOptions, FollowSource};
pub use input::OpenError;
pub(crate) use input::{Input, OpenContext, OpenedStream, follow_file, open};
pub use pattern::{FilePattern, MatchedFile, OwnFiles, parse_pattern};
pub use reader::ReaderSource;
pub use tcp::{Accepted, Place, TcpInput, TcpSource};
pub use walk::WalkCache;

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
    /// A file found by a `follow:` pattern is gone and was read to its end.
    /// Its undecided last bytes are dropped as at any switch of file: the
    /// writer may go on with the same line in a new file at the path.
    Released,
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
    /// The text under the stream changed: what follows is not the
    /// continuation of what came before. Whatever is undecided is not
    /// written (as at a cut) and never judged together with what follows;
    /// the stream goes on at the same offset, as if at the start of a text
    /// (see `Scanner::restart`).
    Break(BreakReason),
}

/// Why a followed file's stream breaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BreakReason {
    /// The file was truncated, or its content replaced in place, and what
    /// followed the bytes read was not found in a copy: the stream goes on
    /// with the new content. Counted as `truncated`.
    Truncated,
    /// A file the stream was to go on reading was gone before it was read
    /// to its end: the stream goes on with the next file. Counted as
    /// `rotated_away`.
    RotatedAway,
    /// A rotated file was read to its end; the stream goes on with the next
    /// file. Bytes are never judged across two files, so a token whose
    /// writer was cut off by the rotation is not completed by the next
    /// file's first bytes.
    NextFile,
}

impl BreakReason {
    /// Logs and counts a break at which `dropped` undecided bytes were not
    /// written.
    pub fn report(self, dropped: usize, metrics: &Metrics) {
        match self {
            BreakReason::Truncated => {
                metrics.error(ErrorKind::Truncated);
                tracing::warn!(
                    undecided_bytes_not_written = dropped,
                    "file truncated or replaced: the bytes read of the old content end here, the new content is read from its start"
                );
            }
            BreakReason::RotatedAway => {
                metrics.error(ErrorKind::RotatedAway);
                tracing::warn!(
                    undecided_bytes_not_written = dropped,
                    "the stream goes on with the next file after one that was gone before it was read to its end"
                );
            }
            BreakReason::NextFile if dropped > 0 => tracing::info!(
                undecided_bytes_not_written = dropped,
                "the rotated file ended with the bytes of a possible secret still undecided; they were not written"
            ),
            BreakReason::NextFile => {}
        }
    }
}

/// A stream of input chunks.
pub trait ChunkSource {
    /// The next event. Cancel-safe: dropping the future loses nothing.
    fn next(&mut self) -> impl Future<Output = io::Result<SourceEvent>> + Send;

    /// Asks the source to stop at its next natural point (a followed file at
    /// its current end); sources that can only end or be cut ignore it.
    fn request_stop(&mut self) {}
}
