//! Standard output and files as sinks.
//!
//! Writes happen on a dedicated thread with vectored, unbuffered writes: each
//! batch is on its way to the reader as soon as it is written, with nothing
//! left in a userspace buffer, and its acknowledgements are confirmed only
//! then. A bounded channel in front of the thread carries backpressure from a
//! slow reader back to the sources.

use std::fs::{File, OpenOptions};
use std::io::{self, IoSlice, Write};
use std::os::fd::AsFd;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use tokio::sync::{mpsc, oneshot};

use crate::sink::batch::Batch;

/// Batches in flight between a single stream and the writing thread: each
/// may hold a whole read (pipe mode), so few, to keep memory low.
pub(crate) const DIRECT_BATCHES: usize = 4;

/// Batches in flight between many streams and the writing thread: each is a
/// line or an append of one stream, small, and the more are queued the more
/// go out in one system call (a thousand followed files: 2.8× the CPU of
/// pipe mode with 4, 2.1× with 16).
pub(crate) const MERGED_BATCHES: usize = 16;

/// An output written by a blocking thread.
pub struct WriterSink {
    batches: Option<mpsc::Sender<Batch>>,
    result: oneshot::Receiver<io::Result<()>>,
}

/// What the writing thread writes to.
enum Target {
    Stdout(File),
    /// An appended file, and its path to tell that it was deleted.
    File(File, PathBuf),
}

impl WriterSink {
    /// Standard output, with up to `batches` batches queued.
    pub fn stdout(batches: usize) -> io::Result<WriterSink> {
        // A duplicate of fd 1, so that writes bypass std's line buffering.
        let output = File::from(io::stdout().as_fd().try_clone_to_owned()?);
        WriterSink::spawn("stdout-writer", Target::Stdout(output), batches)
    }

    /// A file, created if needed and appended to, with up to `batches`
    /// batches queued.
    pub fn file(path: &Path, batches: usize) -> io::Result<WriterSink> {
        let file = OpenOptions::new().create(true).append(true).open(path)?;
        WriterSink::spawn(
            "file-writer",
            Target::File(file, path.to_path_buf()),
            batches,
        )
    }

    fn spawn(name: &str, target: Target, queued: usize) -> io::Result<WriterSink> {
        let (batches, receiver) = mpsc::channel(queued);
        let (done, result) = oneshot::channel();
        std::thread::Builder::new()
            .name(name.into())
            .spawn(move || {
                let _ = done.send(write_loop(target, receiver));
            })?;
        Ok(WriterSink {
            batches: Some(batches),
            result,
        })
    }

    /// Writes everything queued and reports the first write error, if any.
    pub async fn close(mut self) -> io::Result<()> {
        drop(self.batches.take());
        (&mut self.result)
            .await
            .unwrap_or_else(|_| Err(io::Error::other("the writer thread died")))
    }

    /// Where to send batches.
    pub fn sender(&self) -> Option<mpsc::Sender<Batch>> {
        self.batches.clone()
    }
}

fn write_loop(mut target: Target, mut batches: mpsc::Receiver<Batch>) -> io::Result<()> {
    while let Some(mut batch) = batches.blocking_recv() {
        // Whatever else is already queued goes out in the same system call.
        while let Ok(more) = batches.try_recv() {
            batch.append(more);
        }
        match &mut target {
            Target::Stdout(output) => write_all_vectored(output, &batch)?,
            Target::File(output, path) => {
                write_all_vectored(output, &batch)?;
                // Writes to a deleted file succeed and go nowhere: stop
                // rather than acknowledge them.
                if output.metadata()?.nlink() == 0 {
                    return Err(io::Error::other(format!(
                        "the output file {} was deleted",
                        path.display()
                    )));
                }
            }
        }
        batch.confirm();
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
