//! Following a file like `tail -F`.
//!
//! A dedicated thread reads the file to its end, then waits for a change —
//! woken by inotify (through `notify`) on the file's directory, or every
//! `POLL_INTERVAL` when inotify is unavailable — and reads on. It notices:
//!
//! - **rename rotation**: the path names a new file (another inode). The old
//!   file is read to its end once more, then the new one from its start;
//! - **copy-truncate rotation**: the file is shorter than what was read. It
//!   is read again from the start;
//! - **a file that does not exist yet**, or is removed: it waits.
//!
//! Each chunk says which file and offset it came from, so delivered stream
//! positions can be turned into checkpoints. Resuming from a checkpoint whose
//! file has been rotated away, the directory is searched for that inode and
//! its rest is read before the current file.

use std::fs::{self, File};
use std::io::{self, Read, Seek, SeekFrom};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError, mpsc as std_mpsc};
use std::time::Duration;

use bytes::Bytes;
use notify::{RecursiveMode, Watcher};
use tokio::sync::mpsc;

use crate::progress::{FileId, StreamProgress};
use crate::scrub::file_stream_id;
use crate::source::checkpoint::Checkpoint;
use crate::source::pool::BufferPool;
use crate::source::{ChunkSource, CutReason, READ_CHUNK, SourceEvent};

/// How often the file is checked when no change notification arrives.
const POLL_INTERVAL: Duration = Duration::from_millis(250);
/// Chunks in flight between the reading thread and the scanner.
const CHANNEL_CHUNKS: usize = 4;

enum FollowEvent {
    Data {
        bytes: Bytes,
        file: FileId,
        file_offset: u64,
    },
    Stopped,
    Failed(io::Error),
}

/// Shared between the source and its thread.
struct Control {
    stop: AtomicBool,
    wake: Mutex<std_mpsc::Sender<()>>,
}

impl Control {
    fn wake(&self) {
        let _ = self
            .wake
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .send(());
    }
}

/// A followed file.
pub struct FollowSource {
    events: mpsc::Receiver<FollowEvent>,
    control: Arc<Control>,
    progress: Arc<StreamProgress>,
    /// Stream offset of the next byte.
    stream_offset: u64,
}

impl FollowSource {
    /// Starts following `path`, from `resume` if given (else from the start
    /// of the file); the stream's offsets begin at `stream_offset`.
    pub fn start(
        path: PathBuf,
        resume: Option<Checkpoint>,
        progress: Arc<StreamProgress>,
        stream_offset: u64,
    ) -> io::Result<FollowSource> {
        let (events_tx, events) = mpsc::channel(CHANNEL_CHUNKS);
        let (wake_tx, wake_rx) = std_mpsc::channel();
        let control = Arc::new(Control {
            stop: AtomicBool::new(false),
            wake: Mutex::new(wake_tx.clone()),
        });
        let thread_control = Arc::clone(&control);
        std::thread::Builder::new()
            .name("follow".into())
            .spawn(move || {
                let mut follower = Follower {
                    path,
                    current: None,
                    then_current_path: false,
                    events: events_tx,
                    control: thread_control,
                    buffers: BufferPool::new(READ_CHUNK),
                };
                let watcher = follower.watch(wake_tx);
                let end = follower.run(resume, &wake_rx);
                drop(watcher);
                let _ = follower.events.blocking_send(match end {
                    Ok(()) => FollowEvent::Stopped,
                    Err(e) => FollowEvent::Failed(e),
                });
            })?;
        Ok(FollowSource {
            events,
            control,
            progress,
            stream_offset,
        })
    }
}

impl ChunkSource for FollowSource {
    async fn next(&mut self) -> io::Result<SourceEvent> {
        match self.events.recv().await {
            Some(FollowEvent::Data {
                bytes,
                file,
                file_offset,
            }) => {
                self.progress.reading(self.stream_offset, file, file_offset);
                self.stream_offset += bytes.len() as u64;
                Ok(SourceEvent::Chunk(bytes))
            }
            Some(FollowEvent::Stopped) => Ok(SourceEvent::Cut(CutReason::Shutdown)),
            Some(FollowEvent::Failed(e)) => Err(e),
            None => Err(io::Error::other("the follow thread stopped")),
        }
    }

    fn request_stop(&mut self) {
        self.control.stop.store(true, Ordering::SeqCst);
        self.control.wake();
    }
}

/// The file being read.
struct Current {
    file: File,
    id: FileId,
    offset: u64,
}

struct Follower {
    path: PathBuf,
    current: Option<Current>,
    /// Reading a rotated-away file found from a checkpoint: when it ends,
    /// continue with the file now at `path`.
    then_current_path: bool,
    events: mpsc::Sender<FollowEvent>,
    control: Arc<Control>,
    buffers: BufferPool,
}

fn file_id(metadata: &fs::Metadata) -> FileId {
    FileId {
        dev: metadata.dev(),
        ino: metadata.ino(),
    }
}

/// The stream's receiver is gone: stop quietly.
fn receiver_gone() -> io::Error {
    io::Error::new(io::ErrorKind::BrokenPipe, "stream closed")
}

impl Follower {
    /// Watches the file's directory; `None` means polling only.
    fn watch(&self, wake: std_mpsc::Sender<()>) -> Option<notify::RecommendedWatcher> {
        let dir = self
            .path
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        let mut watcher =
            notify::recommended_watcher(move |_event: notify::Result<notify::Event>| {
                let _ = wake.send(());
            })
            .ok()?;
        match watcher.watch(dir, RecursiveMode::NonRecursive) {
            Ok(()) => Some(watcher),
            Err(e) => {
                // A directory that does not exist yet, or a file system
                // without inotify: worth knowing, as changes are seen later.
                tracing::info!(stream = %file_stream_id(&self.path), error = %e, poll_ms = POLL_INTERVAL.as_millis() as u64, "no change notifications; polling");
                None
            }
        }
    }

    fn stopping(&self) -> bool {
        self.control.stop.load(Ordering::SeqCst)
    }

    fn stream(&self) -> String {
        file_stream_id(&self.path)
    }

    fn run(&mut self, resume: Option<Checkpoint>, wake: &std_mpsc::Receiver<()>) -> io::Result<()> {
        if let Some(checkpoint) = resume {
            self.resume(&checkpoint)?;
        }
        loop {
            if self.current.is_none() {
                self.open_path()?;
            }
            self.read_to_end()?;
            if self.stopping() {
                return Ok(());
            }
            if !self.check_rotation()? {
                // Wait for a change (or poll); drain stale wake-ups.
                let _ = wake.recv_timeout(POLL_INTERVAL);
                while wake.try_recv().is_ok() {}
            }
        }
    }

    fn resume(&mut self, checkpoint: &Checkpoint) -> io::Result<()> {
        let wanted = checkpoint.file();
        let at_path = fs::metadata(&self.path)
            .ok()
            .filter(|m| file_id(m) == wanted);
        let (file, rotated) = if at_path.is_some() {
            (File::open(&self.path)?, false)
        } else if let Some(old) = self.find_rotated(wanted) {
            tracing::info!(stream = %self.stream(), rotated_to = %old.display(), "resuming in the rotated file first");
            (File::open(&old)?, true)
        } else {
            tracing::warn!(stream = %self.stream(), "the checkpointed file is gone; starting the current file from its beginning");
            return Ok(());
        };
        let mut file = file;
        let len = file.metadata()?.len();
        let offset = if len >= checkpoint.offset {
            checkpoint.offset
        } else {
            tracing::info!(stream = %self.stream(), "the file is shorter than its checkpoint (truncated); reading it from the start");
            0
        };
        file.seek(SeekFrom::Start(offset))?;
        self.current = Some(Current {
            file,
            id: wanted,
            offset,
        });
        self.then_current_path = rotated;
        Ok(())
    }

    /// A file in the followed file's directory with identity `wanted`.
    fn find_rotated(&self, wanted: FileId) -> Option<PathBuf> {
        let dir = self
            .path
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        fs::read_dir(dir)
            .ok()?
            .filter_map(Result::ok)
            .find(|entry| entry.metadata().is_ok_and(|m| file_id(&m) == wanted))
            .map(|entry| entry.path())
    }

    fn open_path(&mut self) -> io::Result<()> {
        match File::open(&self.path) {
            Ok(file) => {
                let id = file_id(&file.metadata()?);
                tracing::info!(stream = %self.stream(), "following from the start of the file");
                self.current = Some(Current {
                    file,
                    id,
                    offset: 0,
                });
                Ok(())
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(e),
        }
    }

    fn read_to_end(&mut self) -> io::Result<()> {
        let Some(current) = self.current.as_mut() else {
            return Ok(());
        };
        loop {
            let mut buffer = self.buffers.take();
            let n = match current.file.read(&mut buffer) {
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            if n == 0 {
                return Ok(());
            }
            let event = FollowEvent::Data {
                bytes: self.buffers.lend(buffer, n),
                file: current.id,
                file_offset: current.offset,
            };
            current.offset += n as u64;
            self.events
                .blocking_send(event)
                .map_err(|_| receiver_gone())?;
        }
    }

    /// After reading to the end: switch files or start over if the file was
    /// rotated or truncated. Returns whether there is something to read at
    /// once (no need to wait for a change).
    fn check_rotation(&mut self) -> io::Result<bool> {
        let Some(current) = self.current.as_mut() else {
            return Ok(false);
        };
        if self.then_current_path {
            self.then_current_path = false;
            self.current = None;
            return Ok(true);
        }
        let Ok(metadata) = fs::metadata(&self.path) else {
            // Removed or renamed, with no new file yet: keep reading the old one.
            return Ok(false);
        };
        if file_id(&metadata) != current.id {
            tracing::info!(stream = %self.stream(), "file rotated; reading the new file from its start");
            // Whatever reached the old file meanwhile is read first.
            self.read_to_end()?;
            self.current = None;
            return Ok(true);
        }
        if metadata.len() < current.offset {
            tracing::info!(stream = %file_stream_id(&self.path), "file truncated; reading it again from the start");
            current.file.seek(SeekFrom::Start(0))?;
            current.offset = 0;
            return Ok(true);
        }
        Ok(false)
    }
}
