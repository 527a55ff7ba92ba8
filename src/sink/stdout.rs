//! Standard output as a sink.
//!
//! Writes happen on a dedicated thread with vectored, unbuffered writes: each
//! batch is on its way to the reader as soon as it is written, with nothing
//! left in a userspace buffer. A bounded channel in front of the thread
//! carries backpressure from a slow reader back to the source.

use std::fs::File;
use std::io::{self, IoSlice, Write};
use std::os::fd::AsFd;

use tokio::sync::{mpsc, oneshot};

use crate::sink::BatchSink;
use crate::sink::batch::Batch;

/// Batches in flight between the scanner and the writing thread.
const CHANNEL_BATCHES: usize = 4;

/// The process's standard output, written on its own thread.
pub struct StdoutSink {
    batches: mpsc::Sender<Batch>,
    result: oneshot::Receiver<io::Result<()>>,
}

impl StdoutSink {
    /// Starts the writing thread.
    pub fn spawn() -> io::Result<StdoutSink> {
        let output = File::from(io::stdout().as_fd().try_clone_to_owned()?);
        let (batches, receiver) = mpsc::channel(CHANNEL_BATCHES);
        let (done, result) = oneshot::channel();
        std::thread::Builder::new()
            .name("stdout-writer".into())
            .spawn(move || {
                let _ = done.send(write_loop(output, receiver));
            })?;
        Ok(StdoutSink { batches, result })
    }

    /// Writes everything queued and reports the first write error, if any.
    pub async fn close(self) -> io::Result<()> {
        drop(self.batches);
        self.result
            .await
            .unwrap_or_else(|_| Err(io::Error::other("the stdout writer thread died")))
    }

    async fn take_error(&mut self) -> io::Error {
        match (&mut self.result).await {
            Ok(Err(e)) => e,
            _ => io::Error::other("the stdout writer thread stopped"),
        }
    }
}

impl BatchSink for StdoutSink {
    async fn send(&mut self, batch: Batch) -> io::Result<()> {
        if batch.is_empty() {
            return Ok(());
        }
        if self.batches.send(batch).await.is_err() {
            // The writer stopped on an error: report it.
            return Err(self.take_error().await);
        }
        Ok(())
    }
}

fn write_loop(mut output: File, mut batches: mpsc::Receiver<Batch>) -> io::Result<()> {
    while let Some(mut batch) = batches.blocking_recv() {
        // Whatever else is already queued goes out in the same system call.
        while let Ok(more) = batches.try_recv() {
            batch.append(more);
        }
        write_all_vectored(&mut output, &batch)?;
    }
    Ok(())
}

/// Writes every piece of `batch`, in order, however the writes are split.
pub(crate) fn write_all_vectored<W: Write>(output: &mut W, batch: &Batch) -> io::Result<()> {
    let mut slices: Vec<IoSlice<'_>> = batch.pieces().iter().map(|p| IoSlice::new(p)).collect();
    let mut remaining = &mut slices[..];
    while !remaining.is_empty() {
        match output.write_vectored(remaining) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => IoSlice::advance_slices(&mut remaining, n),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}
