//! Standard input as a source.
//!
//! Reads happen on a dedicated thread that blocks in `read(2)` and hands each
//! chunk to the async pipeline through a bounded channel: a full channel stops
//! the reading (backpressure), and a read returns as soon as any bytes are
//! available, so a line written by a client is passed on at once.

use std::fs::File;
use std::io::{self, Read};
use std::os::fd::AsFd;

use bytes::{Bytes, BytesMut};
use tokio::sync::mpsc;

use crate::source::{ChunkSource, READ_CHUNK};

/// Chunks in flight between the reading thread and the scanner.
const CHANNEL_CHUNKS: usize = 4;

/// The process's standard input, read on its own thread.
pub struct StdinSource {
    chunks: mpsc::Receiver<io::Result<Bytes>>,
}

impl StdinSource {
    /// Starts reading standard input.
    pub fn spawn() -> io::Result<StdinSource> {
        // A duplicate of fd 0, so that reads bypass std's locked buffer.
        let input = File::from(io::stdin().as_fd().try_clone_to_owned()?);
        let (sender, chunks) = mpsc::channel(CHANNEL_CHUNKS);
        std::thread::Builder::new()
            .name("stdin-reader".into())
            .spawn(move || read_loop(input, sender))?;
        Ok(StdinSource { chunks })
    }
}

impl ChunkSource for StdinSource {
    async fn next_chunk(&mut self) -> io::Result<Option<Bytes>> {
        self.chunks.recv().await.transpose()
    }
}

fn read_loop(mut input: File, sender: mpsc::Sender<io::Result<Bytes>>) {
    let mut buffer = BytesMut::new();
    loop {
        buffer.resize(READ_CHUNK, 0);
        let result = match input.read(&mut buffer) {
            Ok(0) => return,
            Ok(n) => {
                buffer.truncate(n);
                Ok(buffer.split().freeze())
            }
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
