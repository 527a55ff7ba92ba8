//! Checkpoints of followed files: which file (device, inode and a print of
//! its first bytes: see `identity`), how far into it the redacted output has
//! been written, and what the scanner needs to resume there exactly. Saved
//! atomically (write to a temporary file, fsync, rename), private (0600), and
//! never through a symbolic link planted in the state directory.
//!
//! A checkpoint saved by an older version has no print. It is still read,
//! and can only be trusted as those versions trusted it: same device and
//! inode, and a file at least as long as the offset. That is logged once,
//! when it is used; the next checkpoint saved has a print.
//!
//! [`Checkpoints`] owns the lifecycle over a run: each followed file is
//! resumed from its saved checkpoint when it is opened, checkpoints are saved
//! every [`CHECKPOINT_INTERVAL`] while the streams run, and once more at the
//! very end, after the output has confirmed everything it wrote (a checkpoint
//! taken when the streams end would miss what is still queued).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::metrics::{ErrorKind, Metrics};
use crate::progress::{FileId, FilePosition, StreamProgress};
use crate::scan::scanner::Mark;
use crate::scrub::file_stream_id;
use crate::source::identity::{ContentPrint, IdentityKey, PrintHash, Verdict, judge};
use crate::source::{MatchedFile, OpenError};

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
    /// Keyed hash of the file's first `fingerprint_len` bytes; absent in
    /// checkpoints of older versions (and then `fingerprint_len` too).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fingerprint: Option<PrintHash>,
    /// How many first bytes of the file `fingerprint` covers (at most 1024).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fingerprint_len: Option<u64>,
    /// Byte offset in that file.
    pub offset: u64,
    /// The same position as an offset in the stream (which continues across
    /// rotations), for audit offsets.
    pub stream_offset: u64,
    /// Newlines in the stream before the position.
    pub lines: u64,
    /// The byte before the position, which decides `\b` there.
    pub byte_before: Option<u8>,
    /// When it was saved (the checkpoint file's modification time), if it
    /// was loaded from one: rotated generations last written before then
    /// were not written after it.
    #[serde(skip)]
    pub saved_at: Option<SystemTime>,
}

impl Checkpoint {
    /// The checkpoint of `path` at a delivered `mark` lying at `position`.
    pub fn new(path: &Path, mark: Mark, position: FilePosition) -> Checkpoint {
        Checkpoint {
            path: crate::scrub::scrub(&path.display().to_string()),
            dev: position.file.dev,
            ino: position.file.ino,
            fingerprint: position.file.print.map(|p| p.hash),
            fingerprint_len: position.file.print.map(|p| p.len),
            offset: position.offset,
            stream_offset: mark.offset,
            lines: mark.lines,
            byte_before: mark.byte_before,
            saved_at: None,
        }
    }

    /// The file it refers to.
    pub fn file(&self) -> FileId {
        FileId {
            dev: self.dev,
            ino: self.ino,
            print: match (self.fingerprint, self.fingerprint_len) {
                (Some(hash), Some(len)) => Some(ContentPrint { len, hash }),
                _ => None,
            },
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

/// A file of the state directory and when it was last written; `None` if
/// there is none. Never read through a symbolic link planted there.
fn read_state_file(file: &Path) -> io::Result<Option<(Vec<u8>, Option<SystemTime>)>> {
    let opened = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(file);
    let mut opened = match opened {
        Ok(opened) => opened,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    let mut text = Vec::new();
    io::Read::read_to_end(&mut opened, &mut text)?;
    let saved_at = opened.metadata().and_then(|m| m.modified()).ok();
    Ok(Some((text, saved_at)))
}

/// Locks the state directory for this process: two processes saving
/// checkpoints there would each resume from the other's, and skip lines.
fn lock_dir(dir: &Path) -> io::Result<File> {
    let lock = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW)
        .open(dir.join("lock"))?;
    take_lock(lock)
}

/// `lock`, locked for this process, or why not.
fn take_lock(lock: File) -> io::Result<File> {
    // SAFETY: flock only takes a descriptor this function owns.
    if unsafe {
        libc::flock(
            std::os::fd::AsRawFd::as_raw_fd(&lock),
            libc::LOCK_EX | libc::LOCK_NB,
        )
    } != 0
    {
        let e = io::Error::last_os_error();
        if e.raw_os_error() == Some(libc::EWOULDBLOCK) {
            return Err(io::Error::new(
                io::ErrorKind::WouldBlock,
                "another logredact uses it (its lock file is held); each instance needs a state directory of its own",
            ));
        }
        return Err(e);
    }
    Ok(lock)
}

/// Refuses a state directory that every user can write and that is not
/// sticky. Anyone who can write the directory can swap a checkpoint (and make
/// a restart skip or repeat a file) or plant links beside it; a sticky
/// directory (/tmp) lets each user replace only their own.
fn check_mode(dir: &Path) -> io::Result<()> {
    let mode = fs::metadata(dir)?.permissions().mode();
    if mode & 0o002 != 0 && mode & 0o1000 == 0 {
        return Err(io::Error::new(
            io::ErrorKind::PermissionDenied,
            format!(
                "writable by every user (mode {:o}) and not sticky: checkpoints there could be replaced; use a directory only logredact's user can write",
                mode & 0o7777
            ),
        ));
    }
    Ok(())
}

/// The checkpoint file of a `follow:` pattern's files.
#[derive(Serialize, Deserialize)]
struct GroupFile {
    /// The pattern, masked (informational).
    pattern: String,
    /// Each file's checkpoint, by the hash of its path.
    files: BTreeMap<String, Checkpoint>,
}

/// The directory of checkpoints (`--state-dir`).
#[derive(Debug, Clone)]
pub struct CheckpointStore {
    dir: PathBuf,
    /// The key of the content prints in the checkpoints, kept in `dir`.
    key: IdentityKey,
    /// `dir/lock`, locked for as long as the store lives.
    _lock: Arc<File>,
}

impl CheckpointStore {
    /// Uses (and creates) `dir`, and the key of the content prints kept there.
    pub fn open(dir: &Path) -> io::Result<CheckpointStore> {
        fs::create_dir_all(dir)?;
        check_mode(dir)?;
        let lock = lock_dir(dir)?;
        Ok(CheckpointStore {
            dir: dir.to_path_buf(),
            key: IdentityKey::load_or_create(dir)?,
            _lock: Arc::new(lock),
        })
    }

    /// Why [`CheckpointStore::open`] would fail on `dir`, found without
    /// creating anything: a directory that is missing must be creatable; one
    /// that is there must be a directory this user can write, not writable
    /// by every user, and not locked by another logredact (its lock file,
    /// if there is one, is locked and released at once).
    pub fn check(dir: &Path) -> io::Result<()> {
        match fs::metadata(dir) {
            Ok(metadata) if !metadata.is_dir() => Err(io::Error::new(
                io::ErrorKind::NotADirectory,
                "it is not a directory",
            )),
            Ok(_) => {
                check_mode(dir)?;
                crate::deployment::writable_dir(dir)?;
                let lock = OpenOptions::new()
                    .read(true)
                    .write(true)
                    .custom_flags(libc::O_NOFOLLOW)
                    .open(dir.join("lock"));
                match lock {
                    Ok(lock) => take_lock(lock).map(drop),
                    Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
                    Err(e) => Err(e),
                }
            }
            Err(_) => crate::deployment::creatable_dir(dir),
        }
    }

    /// The key of the content prints in these checkpoints: a followed file
    /// must be printed with it for its checkpoints to be recognised.
    pub fn identity_key(&self) -> IdentityKey {
        self.key.clone()
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
        let Some((text, saved_at)) = read_state_file(&file)? else {
            return Ok(None);
        };
        let invalid = |message: String| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("{}: {message}", file.display()),
            )
        };
        let mut checkpoint: Checkpoint =
            serde_json::from_slice(&text).map_err(|e| invalid(e.to_string()))?;
        if checkpoint.fingerprint.is_some() != checkpoint.fingerprint_len.is_some() {
            return Err(invalid(
                "fingerprint and fingerprint_len go together".into(),
            ));
        }
        checkpoint.saved_at = saved_at;
        Ok(Some(checkpoint))
    }

    /// Saves `checkpoint` atomically. An error names the checkpoint file.
    pub fn save(&self, followed: &Path, checkpoint: &Checkpoint) -> io::Result<()> {
        let file = self.file_for(followed);
        self.save_to(&file, checkpoint)
            .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", file.display())))
    }

    fn save_to(&self, file: &Path, checkpoint: &Checkpoint) -> io::Result<()> {
        self.write_atomically(
            file,
            &serde_json::to_vec(checkpoint).map_err(io::Error::other)?,
        )
    }

    /// The key of a followed path in a pattern's checkpoint file: the hash
    /// that names a single file's checkpoint file.
    fn path_key(followed: &Path) -> String {
        let hash = blake3::hash(followed.as_os_str().as_encoded_bytes());
        hash.to_hex()[..16].to_string()
    }

    /// The checkpoint file of the files a `follow:` pattern matches: one
    /// file for all of them, written once per save (a file each would cost
    /// a thousand synced writes a second for a thousand busy files).
    fn group_file(&self, pattern: &str) -> PathBuf {
        let hash = blake3::hash(pattern.as_bytes());
        self.dir
            .join(format!("pattern-{}.json", &hash.to_hex()[..16]))
    }

    /// The saved checkpoints of the files `pattern` matches, by path key.
    fn load_group(&self, pattern: &str) -> io::Result<BTreeMap<String, Checkpoint>> {
        let file = self.group_file(pattern);
        let Some((text, saved_at)) = read_state_file(&file)? else {
            return Ok(BTreeMap::new());
        };
        let group: GroupFile = serde_json::from_slice(&text).map_err(|e| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("{}: {e}", file.display()),
            )
        })?;
        Ok(group
            .files
            .into_iter()
            .filter(|(_, c)| c.fingerprint.is_some() == c.fingerprint_len.is_some())
            .map(|(key, checkpoint)| {
                (
                    key,
                    Checkpoint {
                        saved_at,
                        ..checkpoint
                    },
                )
            })
            .collect())
    }

    /// Saves the checkpoints of the files `pattern` matches, atomically.
    fn save_group(&self, pattern: &str, files: BTreeMap<String, Checkpoint>) -> io::Result<()> {
        let file = self.group_file(pattern);
        let group = GroupFile {
            pattern: crate::scrub::scrub(pattern),
            files,
        };
        self.write_atomically(
            &file,
            &serde_json::to_vec(&group).map_err(io::Error::other)?,
        )
        .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", file.display())))
    }

    fn write_atomically(&self, file: &Path, bytes: &[u8]) -> io::Result<()> {
        let temporary = file.with_extension("json.tmp");
        // A stale temporary file, or a link planted in its place, is removed
        // (not followed); should one be planted again at once, creating the
        // file fails rather than writing through it.
        match fs::remove_file(&temporary) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        let mut out = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&temporary)?;
        out.write_all(bytes)?;
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
/// saving of their delivered positions. A cheap handle: files found by a
/// glob are resumed, and released, while the run goes on.
#[derive(Clone)]
pub(crate) struct Checkpoints {
    /// `None` without a state directory: nothing is resumed or saved.
    store: Option<CheckpointStore>,
    followed: Arc<Mutex<Followed>>,
    /// Held while a pattern decides to follow a file and starts it: two
    /// patterns that reach one file (through a link) must not both find it
    /// not followed yet.
    starting: Arc<Mutex<()>>,
}

/// The followed files of a run, as the saver sees them.
#[derive(Default)]
struct Followed {
    /// Every followed file resumed and not released: the progress its
    /// stream reports deliveries to, and the pattern it was found by.
    files: BTreeMap<PathBuf, (Arc<StreamProgress>, Option<GroupId>)>,
    /// The same files by their path with links and `..` resolved: a file
    /// reached by two paths (a link, two patterns) is followed once.
    resolved: HashMap<PathBuf, PathBuf>,
    /// Files named by a path and released since the saver last looked:
    /// their checkpoint files are removed (a file that comes back is new).
    released: Vec<PathBuf>,
    /// The checkpoints of each pattern's files, saved in one file each.
    groups: Vec<Group>,
}

/// A `follow:` pattern whose files' checkpoints are saved together.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct GroupId(usize);

struct Group {
    pattern: String,
    /// Checkpoints loaded at the start and not yet taken by a file: kept
    /// while the pattern still matches their file (it may be waiting for a
    /// place under `limits.max_files`).
    unclaimed: BTreeMap<String, Checkpoint>,
    /// Files released (their path gone), by path key: their last position
    /// is kept while the file may still be matched under another name (a
    /// rename from one matched name to another), so that the new name
    /// resumes there instead of reading the file again.
    let_go: BTreeMap<String, (PathBuf, Arc<StreamProgress>)>,
    /// Path keys, and devices and inodes, of what the pattern last matched;
    /// `None` before it did.
    matched: Option<Matched>,
}

/// What a pattern last matched: path keys, and devices and inodes.
type Matched = (HashSet<String>, HashSet<(u64, u64)>);

impl Group {
    /// The checkpoints of files not followed now that may be again: loaded
    /// and not taken, or let go; those of files the pattern no longer
    /// matches, under any name, are dropped.
    fn kept(&self) -> BTreeMap<String, Checkpoint> {
        let wanted = |key: &String, checkpoint: &Checkpoint| {
            self.matched.as_ref().is_none_or(|(keys, files)| {
                keys.contains(key) || files.contains(&(checkpoint.dev, checkpoint.ino))
            })
        };
        let let_go = self.let_go.iter().filter_map(|(key, (path, progress))| {
            let (mark, position) = progress.delivered_position()?;
            Some((key.clone(), Checkpoint::new(path, mark, position)))
        });
        self.unclaimed
            .iter()
            .map(|(key, checkpoint)| (key.clone(), checkpoint.clone()))
            .chain(let_go)
            .filter(|(key, checkpoint)| wanted(key, checkpoint))
            .collect()
    }

    /// The checkpoint `path` resumes at: its own, or, if it has none, that
    /// of the same file (device and inode) under a name it had before. The
    /// follower still checks the content before trusting it.
    fn take(&mut self, path: &Path, key: &IdentityKey) -> Option<Checkpoint> {
        let own = CheckpointStore::path_key(path);
        // Its own saved checkpoint (a restart); one let go at its path is a
        // file gone, and what is there now is another. But a file renamed
        // meanwhile to another name the pattern matches (and another file
        // made at this one) goes on under its new name: the checkpoint is
        // left for that name to find by device, inode and content.
        if let Some(checkpoint) = self.unclaimed.remove(&own) {
            let file = (checkpoint.dev, checkpoint.ino);
            let moved = self
                .matched
                .as_ref()
                .is_some_and(|(_, files)| files.contains(&file))
                && !fs::metadata(path).is_ok_and(|m| (m.dev(), m.ino()) == file);
            if !moved {
                return Some(checkpoint);
            }
            self.unclaimed.insert(format!("{own}-moved"), checkpoint);
        }
        // The same file under a name it had before: same device and inode,
        // and it begins with the bytes read (an inode is reused at once).
        let file = fs::File::open(path).ok()?;
        let metadata = file.metadata().ok()?;
        // Several may hold a place in it (where a stream left it, where
        // another name stopped): each was saved once delivered, so the
        // furthest is where it goes on.
        let (taken, checkpoint) = self
            .kept()
            .into_iter()
            .filter(|(taken, c)| {
                *taken != own
                    && (c.dev, c.ino) == (metadata.dev(), metadata.ino())
                    && judge(&c.file(), c.offset, &file, &metadata, key)
                        .is_ok_and(|verdict| verdict == Verdict::Same)
            })
            .max_by_key(|(_, c)| c.offset)?;
        self.unclaimed.remove(&taken);
        self.let_go.remove(&taken);
        Some(checkpoint)
    }
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
            followed: Arc::default(),
            starting: Arc::default(),
        })
    }

    fn followed(&self) -> MutexGuard<'_, Followed> {
        self.followed.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The key of the file prints: the state directory's, or (with nothing
    /// saved) one for this process.
    pub(crate) fn identity_key(&self) -> IdentityKey {
        self.store
            .as_ref()
            .map_or_else(IdentityKey::in_memory, CheckpointStore::identity_key)
    }

    /// Held while a file is checked (`is_followed`) and started, so that no
    /// other pattern starts it in between.
    pub(crate) fn starting(&self) -> MutexGuard<'_, ()> {
        self.starting.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Whether `path`, or the file it leads to, is followed already (by
    /// another input, or under another path).
    pub(crate) fn is_followed(&self, path: &Path) -> bool {
        let followed = self.followed();
        followed.files.contains_key(path)
            || fs::canonicalize(path).is_ok_and(|real| followed.resolved.contains_key(&real))
    }

    /// Whether the pattern of `group` has a saved checkpoint for `path`.
    pub(crate) fn has_saved(&self, group: GroupId, path: &Path) -> bool {
        self.followed().groups[group.0]
            .unclaimed
            .contains_key(&CheckpointStore::path_key(path))
    }

    /// Loads the checkpoints of the files `pattern` matches; from now on
    /// they are saved together. An unreadable file is counted and ignored.
    pub(crate) fn open_group(&self, pattern: &str, metrics: &Metrics) -> GroupId {
        let unclaimed = match &self.store {
            Some(store) => store.load_group(pattern).unwrap_or_else(|e| {
                metrics.error(ErrorKind::Checkpoint);
                tracing::warn!(input = %format!("follow:{pattern}"), error = %e, "ignoring unreadable checkpoints; the files the pattern matches are read from their start");
                BTreeMap::new()
            }),
            None => BTreeMap::new(),
        };
        let mut followed = self.followed();
        followed.groups.push(Group {
            pattern: pattern.to_string(),
            unclaimed,
            let_go: BTreeMap::new(),
            matched: None,
        });
        GroupId(followed.groups.len() - 1)
    }

    /// What the pattern of `group` matches now: saved checkpoints of files
    /// it no longer matches are dropped.
    pub(crate) fn matched(&self, group: GroupId, found: &[MatchedFile]) {
        let keys = found
            .iter()
            .map(|m| CheckpointStore::path_key(&m.path))
            .collect();
        let files = found.iter().map(|m| m.file).collect();
        self.followed().groups[group.0].matched = Some((keys, files));
    }

    /// Whether the file at `path` is being read by a followed stream (under
    /// another name: renamed from one matched name to another, its old
    /// stream reads it to its end first).
    pub(crate) fn is_being_read(&self, path: &Path) -> bool {
        let Ok(metadata) = fs::metadata(path) else {
            return false;
        };
        let file = (metadata.dev(), metadata.ino());
        self.followed()
            .files
            .values()
            .any(|(progress, _)| progress.reading_file() == Some(file))
    }

    /// Where the followed file `path` resumes; from now on its checkpoint is
    /// saved (with its pattern's, if `group` is given). An unreadable
    /// checkpoint is counted and ignored.
    pub(crate) fn resume(&self, path: &Path, group: Option<GroupId>, metrics: &Metrics) -> Resume {
        let checkpoint = match (&self.store, group) {
            (Some(_), Some(group)) => {
                let key = self.identity_key();
                self.followed().groups[group.0].take(path, &key)
            }
            (Some(store), None) => store.load(path).unwrap_or_else(|e| {
                metrics.error(ErrorKind::Checkpoint);
                tracing::warn!(stream = %file_stream_id(path), error = %e, "ignoring an unreadable checkpoint; reading the file from the start");
                None
            }),
            (None, _) => {
                tracing::warn!(stream = %file_stream_id(path), "no --state-dir: after a restart this file is read again from the start");
                None
            }
        };
        let checkpoint = checkpoint.or_else(|| group.and_then(|_| self.left_by_another(path)));
        let progress = StreamProgress::new();
        if let Some(checkpoint) = &checkpoint {
            progress.reading(
                checkpoint.stream_offset,
                checkpoint.file(),
                checkpoint.offset,
            );
            progress.delivered(checkpoint.mark());
        }
        let mut followed = self.followed();
        followed
            .files
            .insert(path.to_path_buf(), (Arc::clone(&progress), group));
        if let Ok(real) = fs::canonicalize(path) {
            followed.resolved.insert(real, path.to_path_buf());
        }
        Resume {
            checkpoint,
            progress,
        }
    }

    /// Where another followed stream left the file at `path` (renamed to
    /// this matched name from that stream's path, which then named a new
    /// file: the stream read it to its end and went on): it goes on there,
    /// not from its start again.
    fn left_by_another(&self, path: &Path) -> Option<Checkpoint> {
        let file = fs::File::open(path).ok()?;
        let metadata = file.metadata().ok()?;
        let key = self.identity_key();
        // Left by more than one stream (renamed from name to name): the
        // furthest place.
        let position = self
            .followed()
            .files
            .values()
            .filter_map(|(progress, _)| progress.left_at((metadata.dev(), metadata.ino())))
            .filter(|left| {
                judge(&left.file, left.offset, &file, &metadata, &key)
                    .is_ok_and(|verdict| verdict == Verdict::Same)
            })
            .max_by_key(|left| left.offset)?;
        tracing::info!(stream = %file_stream_id(path), offset = position.offset, "renamed from another followed name whose stream read it and went on: going on where that stream left it");
        // A new text: the stream that left it ended it with a break.
        Some(Checkpoint::new(path, Mark::START, position))
    }

    /// `path` is gone and its stream has ended: its checkpoint is no longer
    /// saved, and is removed.
    pub(crate) fn release(&self, path: &Path) {
        let mut followed = self.followed();
        followed.resolved.retain(|_, given| given != path);
        match followed.files.remove(path) {
            Some((_, None)) => followed.released.push(path.to_path_buf()),
            Some((progress, Some(group))) => {
                let key = CheckpointStore::path_key(path);
                followed.groups[group.0]
                    .let_go
                    .insert(key, (path.to_path_buf(), progress));
            }
            None => {}
        }
    }

    /// Saves the checkpoints every [`CHECKPOINT_INTERVAL`], and once more
    /// when `finished` is cancelled; the task's result says whether that last
    /// save succeeded. `None` without a state directory.
    pub(crate) fn spawn_saver(
        &self,
        metrics: Arc<Metrics>,
        finished: CancellationToken,
    ) -> Option<JoinHandle<Result<(), LastSaveFailed>>> {
        let store = self.store.clone()?;
        let followed = Arc::clone(&self.followed);
        Some(tokio::spawn(async move {
            let mut saved = HashMap::new();
            let mut groups_saved: HashMap<usize, BTreeMap<String, Checkpoint>> = HashMap::new();
            loop {
                let done = tokio::select! {
                    () = tokio::time::sleep(CHECKPOINT_INTERVAL) => false,
                    () = finished.cancelled() => true,
                };
                let Snapshot {
                    single: files,
                    released,
                    groups,
                } = snapshot(&followed);
                remove_released(&store, released, &mut saved).await;
                let mut all_saved = save_moved(&store, &files, &mut saved, &metrics).await;
                for (index, pattern, checkpoints) in groups {
                    if groups_saved.get(&index) == Some(&checkpoints) {
                        continue;
                    }
                    let (store, to_save) = (store.clone(), checkpoints.clone());
                    let result =
                        tokio::task::spawn_blocking(move || store.save_group(&pattern, to_save))
                            .await;
                    match result.map_err(io::Error::other).and_then(|r| r) {
                        Ok(()) => {
                            groups_saved.insert(index, checkpoints);
                        }
                        Err(error) => {
                            all_saved = false;
                            metrics.error(ErrorKind::Checkpoint);
                            tracing::error!(error = %error, "cannot save the checkpoints of a pattern's files");
                        }
                    }
                }
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

/// A pattern's checkpoints as they are now: (group index, pattern, by key).
type GroupSnapshot = (usize, String, BTreeMap<String, Checkpoint>);

/// What the saver saves in one round.
struct Snapshot {
    /// Files named by a path, each with its progress.
    single: Vec<(PathBuf, Arc<StreamProgress>)>,
    /// Files named by a path and released.
    released: Vec<PathBuf>,
    /// Each pattern's checkpoints.
    groups: Vec<GroupSnapshot>,
}

/// What the saver saves this time: files named by a path, released ones,
/// and each pattern's checkpoints.
fn snapshot(followed: &Mutex<Followed>) -> Snapshot {
    let mut followed = followed.lock().unwrap_or_else(PoisonError::into_inner);
    let single = followed
        .files
        .iter()
        .filter(|(_, (_, group))| group.is_none())
        .map(|(path, (progress, _))| (path.clone(), Arc::clone(progress)))
        .collect();
    let released = std::mem::take(&mut followed.released);
    let mut groups: Vec<GroupSnapshot> = followed
        .groups
        .iter()
        .enumerate()
        .map(|(index, group)| (index, group.pattern.clone(), group.kept()))
        .collect();
    for (path, (progress, group)) in &followed.files {
        // Files a stream read and went on from (its path named another):
        // kept, so that one renamed to another matched name, found after a
        // restart, goes on there rather than from its start.
        if let Some(group) = group {
            for left in progress.left_delivered() {
                let key = format!(
                    "{}-left-{}-{}",
                    CheckpointStore::path_key(path),
                    left.file.dev,
                    left.file.ino
                );
                groups[group.0]
                    .2
                    .entry(key)
                    .or_insert_with(|| Checkpoint::new(path, Mark::START, left));
            }
        }
        let (Some(group), Some((mark, position))) = (group, progress.delivered_position()) else {
            continue;
        };
        let checkpoint = Checkpoint::new(path, mark, position);
        groups[group.0]
            .2
            .insert(CheckpointStore::path_key(path), checkpoint);
    }
    Snapshot {
        single,
        released,
        groups,
    }
}

/// Removes the checkpoints of released files.
async fn remove_released(
    store: &CheckpointStore,
    released: Vec<PathBuf>,
    saved: &mut HashMap<PathBuf, Checkpoint>,
) {
    for path in released {
        saved.remove(&path);
        let file = store.file_for(&path);
        let removed = tokio::task::spawn_blocking(move || fs::remove_file(&file)).await;
        if let Ok(Err(e)) = removed
            && e.kind() != io::ErrorKind::NotFound
        {
            tracing::warn!(stream = %file_stream_id(&path), error = %e, "cannot remove the checkpoint of a released file");
        }
    }
}

/// Saves the checkpoint of every followed file whose delivered position
/// moved; false if one could not be saved.
async fn save_moved(
    store: &CheckpointStore,
    followed: &[(PathBuf, Arc<StreamProgress>)],
    saved: &mut HashMap<PathBuf, Checkpoint>,
    metrics: &Metrics,
) -> bool {
    let mut all_saved = true;
    for (path, progress) in followed {
        let Some((mark, position)) = progress.delivered_position() else {
            continue;
        };
        let checkpoint = Checkpoint::new(path, mark, position);
        if saved.get(path) == Some(&checkpoint) {
            continue;
        }
        let (store, path_owned, to_save) = (store.clone(), path.clone(), checkpoint.clone());
        let result = tokio::task::spawn_blocking(move || store.save(&path_owned, &to_save)).await;
        let error = match result {
            Ok(Ok(())) => {
                saved.insert(path.clone(), checkpoint);
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
