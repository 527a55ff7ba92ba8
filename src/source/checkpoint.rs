//! Checkpoints of followed files: which file (device, inode), how far into it
//! the redacted output has been written, and what the scanner needs to resume
//! there exactly. Saved atomically (write to a temporary file, fsync, rename).
//!
//! [`Checkpoints`] owns the lifecycle over a run: each followed file is
//! resumed from its saved checkpoint when it is opened, checkpoints are saved
//! every [`CHECKPOINT_INTERVAL`] while the streams run, and once more at the
//! very end, after the output has confirmed everything it wrote (a checkpoint
//! taken when the streams end would miss what is still queued).

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::metrics::{ErrorKind, Metrics};
use crate::progress::{FileId, FilePosition, StreamProgress};
use crate::scan::scanner::Mark;
use crate::scrub::file_stream_id;
use crate::source::OpenError;

/// How often checkpoints of followed files are saved.
pub(crate) const CHECKPOINT_INTERVAL: Duration = Duration::from_secs(1);

/// Where a followed file's redacted output has been written up to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {
    /// The followed path, as configured, masked like every name logredact
    /// writes (informational: the checkpoint file is found by a hash).
    pub path: String,
    /// Device of the file the position is in.
    pub dev: u64,
    /// Inode of the file the position is in.
    pub ino: u64,
    /// Byte offset in that file.
    pub offset: u64,
    /// The same position as an offset in the stream (which continues across
    /// rotations), for audit offsets.
    pub stream_offset: u64,
    /// Newlines in the stream before the position.
    pub lines: u64,
    /// The byte before the position, which decides `\b` there.
    pub byte_before: Option<u8>,
}

impl Checkpoint {
    /// The checkpoint of `path` at a delivered `mark` lying at `position`.
    pub fn new(path: &Path, mark: Mark, position: FilePosition) -> Checkpoint {
        Checkpoint {
            path: crate::scrub::scrub(&path.display().to_string()),
            dev: position.file.dev,
            ino: position.file.ino,
            offset: position.offset,
            stream_offset: mark.offset,
            lines: mark.lines,
            byte_before: mark.byte_before,
        }
    }

    /// The file it refers to.
    pub fn file(&self) -> FileId {
        FileId {
            dev: self.dev,
            ino: self.ino,
        }
    }

    /// The scanner position to resume at.
    pub fn mark(&self) -> Mark {
        Mark {
            offset: self.stream_offset,
            lines: self.lines,
            byte_before: self.byte_before,
        }
    }
}

/// The directory of checkpoints (`--state-dir`).
#[derive(Debug, Clone)]
pub struct CheckpointStore {
    dir: PathBuf,
}

impl CheckpointStore {
    /// Uses (and creates) `dir`.
    pub fn open(dir: &Path) -> io::Result<CheckpointStore> {
        fs::create_dir_all(dir)?;
        Ok(CheckpointStore {
            dir: dir.to_path_buf(),
        })
    }

    /// The state directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The checkpoint file of a followed path: named by a hash of the path,
    /// so that any path maps to one safe file name.
    pub fn file_for(&self, followed: &Path) -> PathBuf {
        let hash = blake3::hash(followed.as_os_str().as_encoded_bytes());
        let name = format!("follow-{}.json", &hash.to_hex()[..16]);
        self.dir.join(name)
    }

    /// The saved checkpoint of `followed`, if any. An unreadable or corrupt
    /// checkpoint is reported as an error.
    pub fn load(&self, followed: &Path) -> io::Result<Option<Checkpoint>> {
        let file = self.file_for(followed);
        let text = match fs::read(&file) {
            Ok(text) => text,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e),
        };
        serde_json::from_slice(&text).map(Some).map_err(|e| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("{}: {e}", file.display()),
            )
        })
    }

    /// Saves `checkpoint` atomically. An error names the checkpoint file.
    pub fn save(&self, followed: &Path, checkpoint: &Checkpoint) -> io::Result<()> {
        let file = self.file_for(followed);
        self.save_to(&file, checkpoint)
            .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", file.display())))
    }

    fn save_to(&self, file: &Path, checkpoint: &Checkpoint) -> io::Result<()> {
        let temporary = file.with_extension("json.tmp");
        let mut out = File::create(&temporary)?;
        out.write_all(&serde_json::to_vec(checkpoint).map_err(io::Error::other)?)?;
        out.write_all(b"\n")?;
        out.sync_all()?;
        fs::rename(&temporary, file)?;
        // Make the rename itself durable.
        if let Ok(dir) = File::open(&self.dir) {
            let _ = dir.sync_all();
        }
        Ok(())
    }
}

/// The checkpoints of one run: where each followed file resumes, and the
/// saving of their delivered positions.
pub(crate) struct Checkpoints {
    /// `None` without a state directory: nothing is resumed or saved.
    store: Option<CheckpointStore>,
    /// Every followed file resumed so far, with the progress its stream
    /// reports deliveries to.
    followed: Vec<(PathBuf, Arc<StreamProgress>)>,
}

/// Where a followed file resumes.
pub(crate) struct Resume {
    /// Its saved checkpoint, if there is one to trust.
    pub(crate) checkpoint: Option<Checkpoint>,
    /// The progress its stream reports to, primed with the checkpoint.
    pub(crate) progress: Arc<StreamProgress>,
}

/// The last save of a run failed: a restart writes again what was written
/// since the last save that succeeded.
#[derive(Debug)]
pub(crate) struct LastSaveFailed {
    /// The state directory.
    pub(crate) dir: PathBuf,
}

impl Checkpoints {
    /// Checkpoints kept in `state_dir` (created if missing), or none.
    pub(crate) fn open(state_dir: Option<&Path>) -> Result<Checkpoints, OpenError> {
        let open = |dir: &Path| {
            CheckpointStore::open(dir).map_err(|source| OpenError {
                what: format!("opening the state directory {}", dir.display()),
                source,
            })
        };
        Ok(Checkpoints {
            store: state_dir.map(open).transpose()?,
            followed: Vec::new(),
        })
    }

    /// Where the followed file `path` resumes; from now on its checkpoint is
    /// saved. An unreadable checkpoint is counted and ignored.
    pub(crate) fn resume(&mut self, path: &Path, metrics: &Metrics) -> Resume {
        let checkpoint = match &self.store {
            Some(store) => store.load(path).unwrap_or_else(|e| {
                metrics.error(ErrorKind::Checkpoint);
                tracing::warn!(stream = %file_stream_id(path), error = %e, "ignoring an unreadable checkpoint; reading the file from the start");
                None
            }),
            None => {
                tracing::warn!(stream = %file_stream_id(path), "no --state-dir: after a restart this file is read again from the start");
                None
            }
        };
        let progress = StreamProgress::new();
        if let Some(checkpoint) = &checkpoint {
            progress.reading(
                checkpoint.stream_offset,
                checkpoint.file(),
                checkpoint.offset,
            );
            progress.delivered(checkpoint.mark());
        }
        self.followed
            .push((path.to_path_buf(), Arc::clone(&progress)));
        Resume {
            checkpoint,
            progress,
        }
    }

    /// Saves the checkpoints every [`CHECKPOINT_INTERVAL`], and once more
    /// when `finished` is cancelled; the task's result says whether that last
    /// save succeeded. `None` without a state directory.
    pub(crate) fn spawn_saver(
        self,
        metrics: Arc<Metrics>,
        finished: CancellationToken,
    ) -> Option<JoinHandle<Result<(), LastSaveFailed>>> {
        let store = self.store?;
        let followed = self.followed;
        Some(tokio::spawn(async move {
            let mut saved = vec![None; followed.len()];
            loop {
                let done = tokio::select! {
                    () = tokio::time::sleep(CHECKPOINT_INTERVAL) => false,
                    () = finished.cancelled() => true,
                };
                let all_saved = save_moved(&store, &followed, &mut saved, &metrics).await;
                // A failed save along the way is made good by the next one;
                // the last one has no next.
                if done && all_saved {
                    return Ok(());
                }
                if done {
                    return Err(LastSaveFailed {
                        dir: store.dir().to_path_buf(),
                    });
                }
            }
        }))
    }
}

/// Saves the checkpoint of every followed file whose delivered position
/// moved; false if one could not be saved.
async fn save_moved(
    store: &CheckpointStore,
    followed: &[(PathBuf, Arc<StreamProgress>)],
    saved: &mut [Option<Checkpoint>],
    metrics: &Metrics,
) -> bool {
    let mut all_saved = true;
    for ((path, progress), saved) in followed.iter().zip(saved.iter_mut()) {
        let Some((mark, position)) = progress.delivered_position() else {
            continue;
        };
        let checkpoint = Checkpoint::new(path, mark, position);
        if saved.as_ref() == Some(&checkpoint) {
            continue;
        }
        let (store, path_owned, to_save) = (store.clone(), path.clone(), checkpoint.clone());
        let result = tokio::task::spawn_blocking(move || store.save(&path_owned, &to_save)).await;
        let error = match result {
            Ok(Ok(())) => {
                *saved = Some(checkpoint);
                continue;
            }
            Ok(Err(e)) => e,
            Err(e) => io::Error::other(e),
        };
        all_saved = false;
        metrics.error(ErrorKind::Checkpoint);
        tracing::error!(stream = %file_stream_id(path), error = %error, "cannot save the checkpoint");
    }
    all_saved
}
