//! Standard input and files read to the end, as sources.
//!
//! Reads happen on a dedicated thread that blocks in `read(2)` and hands each
//! chunk to the async pipeline through a bounded channel: a full channel stops
//! the reading (backpressure), and a read returns as soon as any bytes are
//! available, so a line written by a client is passed on at once.

use std::fs::File;
use std::io::{self, Read};
use std::os::fd::AsFd;
use std::path::Path;

use bytes::Bytes;
use tokio::sync::mpsc;

use crate::source::pool::BufferPool;
use crate::source::{ChunkSource, READ_CHUNK, SourceEvent};

/// Bytes per read from standard input or a file: larger than a socket's
/// chunks, since one pipeline reads them and a widened pipe fills them.
const STDIN_READ_CHUNK: usize = 4 * READ_CHUNK;

/// Chunks in flight between the reading thread and the scanner.
const CHANNEL_CHUNKS: usize = 4;

/// A blocking reader on its own thread.
pub struct ReaderSource {
    chunks: mpsc::Receiver<io::Result<Bytes>>,
}

impl ReaderSource {
    /// Standard input.
    pub fn stdin() -> io::Result<ReaderSource> {
        // A duplicate of fd 0, so that reads bypass std's locked buffer.
        let input = File::from(io::stdin().as_fd().try_clone_to_owned()?);
        widen_pipe(&input);
        ReaderSource::spawn("stdin-reader", input)
    }

    /// A file, read from its start to its end.
    pub fn file(path: &Path) -> io::Result<ReaderSource> {
        ReaderSource::spawn("file-reader", File::open(path)?)
    }

    fn spawn(name: &str, input: File) -> io::Result<ReaderSource> {
        let (sender, chunks) = mpsc::channel(CHANNEL_CHUNKS);
        std::thread::Builder::new()
            .name(name.into())
            .spawn(move || read_loop(input, sender))?;
        Ok(ReaderSource { chunks })
    }
}

impl ChunkSource for ReaderSource {
    async fn next(&mut self) -> io::Result<SourceEvent> {
        match self.chunks.recv().await {
            Some(Ok(chunk)) => Ok(SourceEvent::Chunk(chunk)),
            Some(Err(e)) => Err(e),
            None => Ok(SourceEvent::End),
        }
    }
}

/// Pipe capacity asked for when standard input is a pipe.
#[cfg(target_os = "linux")]
const PIPE_CAPACITY: libc::c_int = 1024 * 1024;

/// Widens the pipe behind `input`, if it is one, so that the writer on the
/// other side can run ahead by more than the default 64 KiB and each read
/// takes a whole `STDIN_READ_CHUNK`: fewer reads and far fewer wake-ups of
/// both processes. Failing (not a pipe, a capacity limit) changes nothing.
#[cfg(target_os = "linux")]
fn widen_pipe(input: &File) {
    use std::os::fd::AsRawFd;
    // SAFETY: F_SETPIPE_SZ takes an int argument and only resizes the pipe's
    // buffer; on anything that is not a pipe it fails with EBADF or EINVAL.
    unsafe {
        libc::fcntl(input.as_raw_fd(), libc::F_SETPIPE_SZ, PIPE_CAPACITY);
    }
}

#[cfg(not(target_os = "linux"))]
fn widen_pipe(_input: &File) {}

fn read_loop(mut input: File, sender: mpsc::Sender<io::Result<Bytes>>) {
    let pool = BufferPool::new(STDIN_READ_CHUNK);
    loop {
        let mut buffer = pool.take();
        let result = match input.read(&mut buffer) {
            Ok(0) => return,
            Ok(n) => Ok(pool.lend(buffer, n)),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => Err(e),
        };
        let failed = result.is_err();
        if sender.blocking_send(result).is_err() || failed {
            // The pipeline has stopped, or the error has been reported.
            return;
        }
    }
}
