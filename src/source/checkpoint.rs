//! Checkpoints of followed files: which file (device, inode), how far into it
//! the redacted output has been written, and what the scanner needs to resume
//! there exactly. Saved atomically (write to a temporary file, fsync, rename).

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::progress::{FileId, FilePosition};
use crate::scan::scanner::Mark;

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
