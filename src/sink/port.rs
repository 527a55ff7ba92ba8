//! How a stream hands its batches to an output.
//!
//! A *direct* port gives a stream an output of its own (pipe mode, or one
//! upstream connection per inbound connection): batches go out as they are
//! scanned. A *merged* port shares one output among many streams without ever
//! interleaving lines: a stream sends only whole lines, under a lock shared by
//! all streams of the output, and keeps its partial last line until the
//! newline arrives. A partial line longer than `LINE_BUFFER` is not buffered
//! further — its stream takes the lock and keeps it until the line ends, so
//! memory stays bounded whatever the line length (other streams wait, their
//! channels fill, and their reading pauses).

use std::io;
use std::sync::Arc;

use bytes::Bytes;
use tokio::sync::{Mutex, OwnedMutexGuard, mpsc};

use crate::sink::batch::Batch;

/// The longest partial line a merged stream buffers.
pub const LINE_BUFFER: usize = 64 * 1024;

/// One output shared by several streams.
#[derive(Clone)]
pub struct SharedOutput {
    sender: mpsc::Sender<Batch>,
    /// Held while a stream writes lines, and for the whole of a long line.
    line_lock: Arc<Mutex<()>>,
}

impl SharedOutput {
    /// Shares the output behind `sender`.
    pub fn new(sender: mpsc::Sender<Batch>) -> SharedOutput {
        SharedOutput {
            sender,
            line_lock: Arc::new(Mutex::new(())),
        }
    }

    /// A sender for a stream that has the output to itself.
    pub fn sender(&self) -> mpsc::Sender<Batch> {
        self.sender.clone()
    }
}

/// A stream's way to its output.
pub enum Port {
    /// The stream's own output.
    Direct(mpsc::Sender<Batch>),
    /// A shared output, written a whole line at a time.
    Merged(MergedPort),
}

/// A stream's share of a [`SharedOutput`].
pub struct MergedPort {
    output: SharedOutput,
    /// The stream's current partial line (and the acknowledgements that wait
    /// for some of it to be written).
    partial: Batch,
    /// Held while the stream is in the middle of a long line.
    exclusive: Option<OwnedMutexGuard<()>>,
}

fn closed() -> io::Error {
    io::Error::new(io::ErrorKind::BrokenPipe, "the output has stopped")
}

impl Port {
    /// A port on a shared output.
    pub fn merged(output: &SharedOutput) -> Port {
        Port::Merged(MergedPort {
            output: output.clone(),
            partial: Batch::default(),
            exclusive: None,
        })
    }

    /// Hands over a batch; waits while the output is behind.
    pub async fn send(&mut self, batch: Batch) -> io::Result<()> {
        match self {
            Port::Direct(sender) => {
                if batch.is_void() {
                    return Ok(());
                }
                sender.send(batch).await.map_err(|_| closed())
            }
            Port::Merged(port) => port.send(batch).await,
        }
    }

    /// Whether the port holds the shared output (in a long line).
    pub fn holds_output(&self) -> bool {
        matches!(self, Port::Merged(port) if port.exclusive.is_some())
    }

    /// Ends the long line the port holds the output for, and lets go.
    pub async fn let_go(&mut self) -> io::Result<()> {
        match self {
            Port::Merged(port) if port.exclusive.is_some() => {
                let newline = Batch::from_pieces(vec![Bytes::from_static(b"\n")]);
                port.output
                    .sender
                    .send(newline)
                    .await
                    .map_err(|_| closed())?;
                port.exclusive = None;
                Ok(())
            }
            _ => Ok(()),
        }
    }

    /// Writes what is left (a final partial line) at the end of the stream.
    pub async fn finish(&mut self) -> io::Result<()> {
        match self {
            Port::Direct(_) => Ok(()),
            Port::Merged(port) => port.finish().await,
        }
    }
}

impl MergedPort {
    async fn send(&mut self, mut batch: Batch) -> io::Result<()> {
        if self.exclusive.is_some() {
            // In a long line: pass everything through up to its end.
            let (line_end, rest) = batch.split_after_first_newline();
            if line_end.is_empty() {
                return self.output.sender.send(rest).await.map_err(|_| closed());
            }
            self.output
                .sender
                .send(line_end)
                .await
                .map_err(|_| closed())?;
            self.exclusive = None;
            batch = rest;
        }
        let mut combined = std::mem::take(&mut self.partial);
        combined.append(batch);
        // The acknowledgements of what ends with the last whole line go out
        // with the lines; the others wait with the partial line.
        let (lines, rest) = combined.split_after_last_newline();
        if !lines.is_void() {
            let _lock = self.output.line_lock.lock().await;
            self.output.sender.send(lines).await.map_err(|_| closed())?;
        }
        if rest.len() > LINE_BUFFER {
            let lock = Arc::clone(&self.output.line_lock).lock_owned().await;
            self.output.sender.send(rest).await.map_err(|_| closed())?;
            self.exclusive = Some(lock);
        } else {
            self.partial = rest;
        }
        Ok(())
    }

    async fn finish(&mut self) -> io::Result<()> {
        let mut rest = std::mem::take(&mut self.partial);
        // A line left open is ended here, so that what another stream
        // writes next is a line of its own (SPEC §7).
        if !rest.is_empty() || self.exclusive.is_some() {
            rest.append(Batch::from_pieces(vec![Bytes::from_static(b"\n")]));
        }
        if !rest.is_void() {
            let _lock = match self.exclusive.take() {
                Some(lock) => lock,
                None => Arc::clone(&self.output.line_lock).lock_owned().await,
            };
            self.output.sender.send(rest).await.map_err(|_| closed())?;
        }
        self.exclusive = None;
        Ok(())
    }
}
