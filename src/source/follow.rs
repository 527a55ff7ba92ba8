//! Following a file like `tail -F`.
//!
//! A reading thread (see `driver`: one for the file, or one shared by the
//! files of a pattern) reads the file to its end, a chunk per turn, then
//! waits for a change — woken by inotify (through `notify`) on the file's
//! directory, or every `POLL_INTERVAL` when inotify is unavailable or the
//! file is one of many — and reads on. Files are
//! known by their content as well as their inode (see `identity`). It
//! notices:
//!
//! - **rename rotation**: the path names another file. The old file is read
//!   to its end once more; then every rotated generation (see `rotation`) not
//!   read yet, oldest first, however many rotations happened meanwhile; then
//!   the file at the path, from its start;
//! - **copy-truncate rotation**, or any replacement of the content in place:
//!   the file is shorter than what was read, or no longer begins with the
//!   bytes read. If a generation begins with the old content and is at least
//!   as long as what was read (the copy), the old content goes on there;
//!   then the new content is read from its start. Without a copy, the rest of
//!   the old content is lost: the stream breaks (`BreakReason::Truncated`);
//! - **a file that does not exist yet**, or is removed: it waits.
//!
//! Bytes are never judged across two files: each switch to another file is a
//! break of the stream, where undecided bytes are dropped (`Scanner::restart`).
//!
//! Each chunk says which file and offset it came from, so delivered stream
//! positions can be turned into checkpoints. Resuming from a checkpoint, the
//! file it applies to (`identity::judge`) is looked for among the file at the
//! path and its generations (preferring the same inode), then in the whole
//! directory; its rest is read, then every newer generation, then the file
//! at the path. If no file has the checkpointed content, it is gone before it
//! was read to its end: that is logged and counted (`rotated_away`; how many
//! bytes it held after the checkpoint is unknown), and the generations
//! written since the checkpoint was saved are read, then the file at the path.
//!
//! Known limits: a generation is read to its end when the follower comes to
//! it, so a writer that goes on writing to it later loses those bytes; a copy
//! still being written when the truncation is seen is read only as far as it
//! got; a file truncated and written again with the same first bytes, past
//! the offset read, between two looks at it, passes for the same file.

use std::collections::VecDeque;
use std::fs::{self, File};
use std::io::{self, Read, Seek, SeekFrom};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use notify::{RecursiveMode, Watcher};
use tokio::sync::mpsc;

use crate::config::RotatedNames;
use crate::progress::StreamProgress;
use crate::scrub::file_stream_id;
use crate::source::OwnFiles;
use crate::source::checkpoint::Checkpoint;
use crate::source::driver::{Control, FollowDriver};
use crate::source::identity::{FileId, Head, IdentityKey, Verdict, begins_with, judge};
use crate::source::pool::BufferPool;
use crate::source::rotation::generations;
use crate::source::{BreakReason, ChunkSource, CutReason, READ_CHUNK, SourceEvent};

/// How often the file is checked when no change notification arrives.
const POLL_INTERVAL: Duration = Duration::from_millis(250);
/// Chunks in flight between the reading thread and the scanner.
const CHANNEL_CHUNKS: usize = 4;
/// How many more times a rotation chain is listed when two listings differ
/// (a rotator renaming files meanwhile).
const CHAIN_RETRIES: usize = 8;
/// Files read to their end, remembered so as not to read them again: the
/// newest this many (a rotation keeps far fewer generations).
const BEHIND_KEPT: usize = 256;

pub(crate) enum FollowEvent {
    Data {
        bytes: Bytes,
        file: FileId,
        file_offset: u64,
    },
    /// What follows does not continue what came before; the next data, if
    /// known, comes from `next` (a file and an offset in it).
    Break {
        reason: BreakReason,
        next: Option<(FileId, u64)>,
    },
    Stopped,
    /// The path was gone for the release time and everything was read: the
    /// stream has ended.
    Released,
    Failed(io::Error),
}

/// How a file is followed.
#[derive(Debug, Clone)]
pub struct FollowOptions {
    /// End the stream once the path has named no file for this long and
    /// every file of its chain is read to its end (a file found by a glob
    /// that went away); `None` waits for the path to name a file again.
    pub release_after: Option<Duration>,
    /// Poll only, without a change notifier of the file's own (many files
    /// followed at once would exhaust the system's notifiers and threads).
    pub poll_only: bool,
    /// How the file's rotated generations are named.
    pub rotated: RotatedNames,
    /// The most bytes read at once, and chunks read ahead of the scanner:
    /// what one followed file can hold in memory.
    pub chunk: usize,
    /// See `chunk`.
    pub read_ahead: usize,
    /// logredact's own files: never read as a generation (a `rotated:`
    /// name that also fits the output file would read it back).
    pub own_files: OwnFiles,
    /// The thread that reads the file, shared with other files; `None`
    /// starts one for this file alone.
    pub driver: Option<FollowDriver>,
}

impl Default for FollowOptions {
    fn default() -> FollowOptions {
        FollowOptions {
            release_after: None,
            poll_only: false,
            rotated: RotatedNames::Builtin,
            chunk: READ_CHUNK,
            read_ahead: CHANNEL_CHUNKS,
            own_files: OwnFiles::default(),
            driver: None,
        }
    }
}

/// The wait between two looks at a file with no change notifier of its own:
/// [`POLL_INTERVAL`], doubling (up to [`POLL_MAX`]) while the file stays
/// quiet, so that many quiet files cost little; back to the start at the
/// first byte read.
struct Poll {
    backs_off: bool,
    /// Looks in a row that found nothing.
    quiet: u32,
}

/// The longest wait between two looks at a quiet file.
const POLL_MAX: Duration = Duration::from_secs(1);

impl Poll {
    fn next(&mut self, read_any: bool) -> Duration {
        if read_any || !self.backs_off {
            self.quiet = 0;
            return POLL_INTERVAL;
        }
        self.quiet = self.quiet.saturating_add(1);
        // Four looks at each step: 250 ms, 500 ms, then 1 s.
        let doublings = (self.quiet / 4).min(2);
        (POLL_INTERVAL * (1 << doublings)).min(POLL_MAX)
    }
}

/// What a follower's turn asks of its driver.
pub(crate) enum Step {
    /// More to do at once.
    Again,
    /// Nothing to do until a change is signalled, or this long.
    Wait(Duration),
    /// The stream has ended, with this last event.
    Ended(FollowEvent),
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
    /// of the file); the stream's offsets begin at `stream_offset`. Files are
    /// recognised by prints made with `key`, which must be the key of the
    /// checkpoints (`CheckpointStore::identity_key`).
    pub fn start(
        path: PathBuf,
        resume: Option<Checkpoint>,
        key: IdentityKey,
        progress: Arc<StreamProgress>,
        stream_offset: u64,
        options: FollowOptions,
    ) -> io::Result<FollowSource> {
        let driver = match &options.driver {
            Some(driver) => driver.clone(),
            None => FollowDriver::spawn()?,
        };
        let (events_tx, events) = mpsc::channel(options.read_ahead.max(1));
        let control = Arc::new(driver.control());
        let follower = Follower {
            path,
            key,
            begin: Some(resume),
            current: None,
            behind: Vec::new(),
            release_after: options.release_after,
            rotated: options.rotated,
            own_files: options.own_files,
            told_not_regular: AtomicBool::new(false),
            chunk: options.chunk.clamp(1, READ_CHUNK) as u64,
            gone_since: None,
            poll: Poll {
                backs_off: options.poll_only,
                quiet: 0,
            },
            read_any: false,
            outbox: VecDeque::new(),
            control: Arc::clone(&control),
            buffers: BufferPool::new(READ_CHUNK),
        };
        let watcher = (!options.poll_only)
            .then(|| follower.watch(control.waker()))
            .flatten();
        driver.add(follower, events_tx, watcher)?;
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
        let event = self.events.recv().await;
        self.control.took_event();
        match event {
            Some(FollowEvent::Data {
                bytes,
                file,
                file_offset,
            }) => {
                self.progress.reading(self.stream_offset, file, file_offset);
                self.stream_offset += bytes.len() as u64;
                Ok(SourceEvent::Chunk(bytes))
            }
            Some(FollowEvent::Break { reason, next }) => {
                if let Some((file, file_offset)) = next {
                    self.progress.reading(self.stream_offset, file, file_offset);
                }
                Ok(SourceEvent::Break(reason))
            }
            Some(FollowEvent::Stopped) => Ok(SourceEvent::Cut(CutReason::Shutdown)),
            Some(FollowEvent::Released) => Ok(SourceEvent::Cut(CutReason::Released)),
            Some(FollowEvent::Failed(e)) => Err(e),
            None => Err(io::Error::other("the follow thread stopped")),
        }
    }

    fn request_stop(&mut self) {
        self.control.request_stop();
    }
}

/// Whether a file is followed after its end or read to its end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    /// The file the path named when it was opened: followed as it grows,
    /// until the path names another file.
    Live,
    /// A rotated generation, or a copy holding the rest of a truncated file:
    /// read to its end, then the stream goes on with the next file.
    Generation,
}

/// The file being read.
struct Current {
    /// Open for as long as it is read: a file renamed or removed meanwhile
    /// can still be read to its end.
    file: File,
    /// `file`'s identity; its print is `head`'s, as of the last read.
    id: FileId,
    /// `file`'s first bytes, as far as they exist (up to `PRINT_LEN`).
    head: Head,
    /// Offset in `file` of the next byte to read: every byte before it has
    /// been sent (or lies before the position the stream resumed at).
    offset: u64,
    /// Whether the file is followed after its end, or read to it and left.
    role: Role,
    /// Length and modification time of the file at the path when it was
    /// last found to begin with the bytes read.
    verified: Option<(u64, Option<SystemTime>)>,
}

impl Current {
    fn identity(&self) -> FileId {
        FileId {
            print: Some(self.head.print()),
            ..self.id
        }
    }
}

/// A file of the rotation chain, opened.
struct Listed {
    /// The name it had when it was opened (it may have been renamed since).
    path: PathBuf,
    file: File,
    /// `file`'s metadata: which file was opened, whatever the name is now.
    metadata: fs::Metadata,
}

pub(crate) struct Follower {
    /// The followed path, as configured.
    path: PathBuf,
    /// Where following begins (a checkpoint, or the file's start), until the
    /// first turn.
    begin: Option<Option<Checkpoint>>,
    /// The key of content prints: the checkpoints' own, so that their
    /// prints compare.
    key: IdentityKey,
    /// The file being read; `None` while there is none to read (the path
    /// names no file yet).
    current: Option<Current>,
    /// Files of the chain (the generations and the file at the path) that
    /// are not to be read: read to their end here, or already there, older
    /// than where following began. Each has a print and is recognised by it,
    /// so that a new file under a reused inode is not taken for one of them.
    /// Files whose inode has left the chain are forgotten at each listing.
    behind: Vec<FileId>,
    /// See [`FollowOptions::release_after`].
    release_after: Option<Duration>,
    /// How the file's rotated generations are named.
    rotated: RotatedNames,
    /// The most bytes read at once from a regular file.
    chunk: u64,
    /// See [`FollowOptions::own_files`].
    own_files: OwnFiles,
    /// Whether it was said that the path names no regular file.
    told_not_regular: AtomicBool,
    /// Since when the path has named no file, while it names none.
    gone_since: Option<Instant>,
    /// How long to wait for a change before looking again.
    poll: Poll,
    /// Whether anything was read since the last wait.
    read_any: bool,
    /// Events for the stream not yet handed on: the driver hands them to
    /// the stream's channel as it has room. A turn adds at most one chunk.
    pub(crate) outbox: VecDeque<FollowEvent>,
    control: Arc<Control>,
    buffers: BufferPool,
}

/// Which file of the chain is opened: what an error opening it means.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Accept {
    /// A generation: one that cannot be read is left out.
    RegularFile,
    /// The followed path: an error opening it fails the stream.
    Anything,
}

/// The next bytes of `file`, at `offset`, up to `limit`; `None` at its end. A regular file is read into a buffer of the size it has left, so
/// that a small append costs a small buffer (with many files followed, a
/// full-sized buffer each would be most of the memory); anything else
/// (a pipe) into a pooled one.
fn read_chunk(
    file: &mut File,
    offset: u64,
    limit: u64,
    pool: &BufferPool,
) -> io::Result<Option<Bytes>> {
    let metadata = file.metadata()?;
    if metadata.is_file() {
        let left = metadata.len().saturating_sub(offset).min(limit);
        if left == 0 {
            return Ok(None);
        }
        let mut buffer = Vec::with_capacity(left as usize);
        (&*file).take(left).read_to_end(&mut buffer)?;
        return Ok((!buffer.is_empty()).then(|| Bytes::from(buffer)));
    }
    loop {
        let mut buffer = pool.take();
        match file.read(&mut buffer) {
            Ok(0) => return Ok(None),
            Ok(n) => return Ok(Some(pool.lend(buffer, n))),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    }
}

/// Opens a regular file; `None` if it is gone or is no regular file.
fn open_file(path: &Path, _accept: Accept) -> io::Result<Option<(File, fs::Metadata)>> {
    // Without blocking: a FIFO put at the path would block the open until a
    // writer came, and hang the stream.
    let file = match fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
    {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    let metadata = file.metadata()?;
    // Only regular files are followed: a device (a link to /dev/zero put at
    // the path), a FIFO or a directory there is as good as no file, and the
    // path is looked at again until it names a regular file.
    Ok(metadata.is_file().then_some((file, metadata)))
}

impl Follower {
    /// Watches the file's directory; `None` means polling only.
    fn watch(&self, wake: impl Fn() + Send + 'static) -> Option<notify::RecommendedWatcher> {
        let mut watcher =
            notify::recommended_watcher(move |_event: notify::Result<notify::Event>| wake())
                .ok()?;
        match watcher.watch(self.dir(), RecursiveMode::NonRecursive) {
            Ok(()) => Some(watcher),
            Err(e) => {
                // A directory that does not exist yet, or a file system
                // without inotify: worth knowing, as changes are seen later.
                tracing::info!(stream = %file_stream_id(&self.path), error = %e, poll_ms = POLL_INTERVAL.as_millis() as u64, "no change notifications; polling");
                None
            }
        }
    }

    fn dir(&self) -> &Path {
        self.path
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .unwrap_or(Path::new("."))
    }

    pub(crate) fn control(&self) -> &Control {
        &self.control
    }

    pub(crate) fn control_handle(&self) -> &Arc<Control> {
        &self.control
    }

    fn stopping(&self) -> bool {
        self.control.stopping()
    }

    fn stream(&self) -> String {
        file_stream_id(&self.path)
    }

    /// One turn: reads at most one chunk, and once at the file's end looks
    /// for what comes next (growth, rotation, truncation, release).
    pub(crate) fn step(&mut self) -> io::Result<Step> {
        match self.begin.take() {
            None => {}
            Some(Some(checkpoint)) => self.resume(&checkpoint)?,
            // What is already rotated is history: following starts with the
            // file at the path.
            Some(None) => {
                let listed = self.list_chain()?;
                self.behind = self.identities(listed.iter().filter(|l| l.path != self.path))?;
            }
        }
        if self.current.is_none() {
            self.open_next()?;
        }
        if !self.read_to_end()? {
            return Ok(Step::Again);
        }
        if self.stopping() {
            return Ok(Step::Ended(FollowEvent::Stopped));
        }
        // One look at the path serves both questions while it names a file
        // (the common case: a thousand quiet files cost a stat each).
        let at_path = fs::metadata(&self.path);
        let names_file = at_path.as_ref().is_ok_and(fs::Metadata::is_file);
        if self.released(names_file)? {
            tracing::info!(stream = %self.stream(), "the file is gone and was read to its end; released");
            return Ok(Step::Ended(FollowEvent::Released));
        }
        let at_path = if names_file {
            at_path
        } else {
            fs::metadata(&self.path)
        };
        if self.check(at_path)? {
            return Ok(Step::Again);
        }
        Ok(Step::Wait(
            self.poll.next(std::mem::take(&mut self.read_any)),
        ))
    }

    /// Whether the stream is done with a path gone for good: it has named no
    /// file for the release time, and the file being read, if any, is the
    /// last of its chain and read to its end (this is called right after
    /// reading to the end). `names_file`: whether the path named a regular
    /// file when looked at just now.
    fn released(&mut self, names_file: bool) -> io::Result<bool> {
        let Some(release_after) = self.release_after else {
            return Ok(false);
        };
        // A link whose file is gone names no file either.
        if names_file {
            self.gone_since = None;
            return Ok(false);
        }
        let since = *self.gone_since.get_or_insert_with(Instant::now);
        if since.elapsed() < release_after {
            return Ok(false);
        }
        if self
            .current
            .as_ref()
            .is_some_and(|c| c.role == Role::Generation)
        {
            return Ok(false);
        }
        // A generation not read yet (renamed away as the path went) is read
        // before letting go.
        for l in self.list_chain()? {
            let is_current = self
                .current
                .as_ref()
                .is_some_and(|c| c.id.same_inode(&l.metadata));
            if !is_current && !self.is_behind(&l)? {
                self.finish_current();
                self.open_next()?;
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// Says once, until the path names a regular file again, that it names
    /// something else (a directory, a FIFO, a device): that is waited out,
    /// but a path set wrong should not look like a quiet file.
    fn tell_not_regular(&self, none_opened: bool) {
        let other = none_opened && fs::metadata(&self.path).is_ok_and(|m| !m.is_file());
        if other && !self.told_not_regular.swap(true, Ordering::Relaxed) {
            tracing::warn!(stream = %self.stream(), "the followed path names no regular file (a directory, a FIFO or a device); waiting for a regular file there");
        }
        if !other {
            self.told_not_regular.store(false, Ordering::Relaxed);
        }
    }

    /// The generations, oldest first, then the file at the path: those that
    /// exist, opened. A rotator may rename files while they are listed and
    /// opened (a generation missed between two names, the path opened after
    /// the next rotation): the chain is listed again until two listings
    /// agree, file for file.
    fn list_chain(&self) -> io::Result<Vec<Listed>> {
        let mut listed = self.list_chain_once()?;
        for _ in 0..CHAIN_RETRIES {
            let again = self.list_chain_once()?;
            let same = |a: &[Listed], b: &[Listed]| {
                a.len() == b.len()
                    && a.iter().zip(b).all(|(x, y)| {
                        x.path == y.path
                            && (x.metadata.dev(), x.metadata.ino())
                                == (y.metadata.dev(), y.metadata.ino())
                    })
            };
            if same(&listed, &again) {
                return Ok(again);
            }
            listed = again;
        }
        Ok(listed)
    }

    fn list_chain_once(&self) -> io::Result<Vec<Listed>> {
        let mut listed = Vec::new();
        let generations = generations(&self.path, &self.rotated)
            .into_iter()
            .filter(|path| !self.own_files.contains(path))
            .map(|path| (path, Accept::RegularFile));
        for (path, accept) in generations.chain([(self.path.clone(), Accept::Anything)]) {
            let opened = match open_file(&path, accept) {
                // A generation that cannot be read must not stop the
                // stream: the file at the path is still to be followed.
                Err(e) if accept == Accept::RegularFile => {
                    tracing::info!(stream = %self.stream(), generation = %file_stream_id(&path), error = %e, "a rotated generation cannot be read; left out");
                    continue;
                }
                opened => opened?,
            };
            if accept == Accept::Anything {
                self.tell_not_regular(opened.is_none());
            }
            if let Some((file, metadata)) = opened {
                listed.push(Listed {
                    path,
                    file,
                    metadata,
                });
            }
        }
        Ok(listed)
    }

    fn identities<'a>(&self, files: impl Iterator<Item = &'a Listed>) -> io::Result<Vec<FileId>> {
        files
            .map(|listed| {
                Ok(FileId {
                    dev: listed.metadata.dev(),
                    ino: listed.metadata.ino(),
                    print: Some(Head::read(&listed.file, &self.key)?.print()),
                })
            })
            .collect()
    }

    /// Whether the position `offset` in `recorded` lies in `listed`; a file
    /// that cannot be read is not it.
    fn applies(&self, recorded: &FileId, offset: u64, listed: &Listed) -> bool {
        judge(recorded, offset, &listed.file, &listed.metadata, &self.key)
            .is_ok_and(|verdict| verdict == Verdict::Same)
    }

    /// Whether `listed` was read to its end, or was history when following
    /// began.
    fn is_behind(&self, listed: &Listed) -> io::Result<bool> {
        for id in &self.behind {
            if !id.same_inode(&listed.metadata) {
                continue;
            }
            let same = match &id.print {
                // An empty print fits any content: only an empty file is
                // surely the same.
                Some(print) if print.len == 0 => listed.metadata.len() == 0,
                Some(print) => begins_with(&listed.file, print, &self.key)?,
                None => true,
            };
            if same {
                return Ok(true);
            }
        }
        Ok(false)
    }

    fn resume(&mut self, checkpoint: &Checkpoint) -> io::Result<()> {
        let recorded = checkpoint.file();
        if recorded.print.is_none() {
            tracing::info!(stream = %self.stream(), "the checkpoint, saved by an earlier version, has no fingerprint of the file's content: it is trusted for the file with the same device and inode, as then");
        }
        let mut listed = self.list_chain()?;
        let found = listed
            .iter()
            .position(|l| {
                recorded.same_inode(&l.metadata) && self.applies(&recorded, checkpoint.offset, l)
            })
            .or_else(|| {
                // Under another inode only the content can tell, and a print
                // of no bytes (a checkpoint saved in an empty file) fits
                // every file: it would resume in the oldest generation and
                // write it again. Such a checkpoint is found by inode or not
                // at all.
                recorded.print.filter(|print| print.len > 0).and_then(|_| {
                    listed
                        .iter()
                        .position(|l| self.applies(&recorded, checkpoint.offset, l))
                })
            });
        let saved_at = checkpoint.saved_at;
        let written_since = |l: &Listed| match (l.metadata.modified(), saved_at) {
            (Ok(modified), Some(saved_at)) => modified >= saved_at,
            _ => false,
        };
        // A position at the very start of a file (a print of no bytes)
        // cannot tell the file from itself truncated by copy-truncate and
        // rotated on: if an older generation was written after the
        // checkpoint was saved, it may hold that file's content (its copy),
        // so every generation written since is read from its start, as
        // when the checkpointed file is gone. Nothing before the position
        // is lost: it is the start of its file.
        let at_start_of_empty = checkpoint.offset == 0
            && recorded.print.is_some_and(|print| print.len == 0)
            && found.is_some_and(|at| listed[..at].iter().any(written_since));
        if let Some(at) = found.filter(|_| !at_start_of_empty) {
            self.behind = self.identities(listed[..at].iter())?;
            let chosen = listed.swap_remove(at);
            if chosen.path != self.path {
                tracing::info!(stream = %self.stream(), rotated_to = %file_stream_id(&chosen.path), "resuming in a rotated generation; the newer ones and the file at the path follow");
            }
            let role = if chosen.path == self.path {
                Role::Live
            } else {
                Role::Generation
            };
            return self.resume_in(chosen, checkpoint.offset, role);
        }
        // Renamed out of the chain (`app.log.old`)? Then it is read first,
        // and the chain as if the file had gone.
        let elsewhere = if at_start_of_empty {
            None
        } else {
            self.find_elsewhere(&recorded, checkpoint.offset)?
        };
        // Generations last written before the checkpoint was saved hold
        // nothing written after it: they are history. The others are read.
        let mut behind = Vec::new();
        for l in listed.iter().filter(|l| l.path != self.path) {
            let before = match (l.metadata.modified(), saved_at) {
                (Ok(modified), Some(saved_at)) => modified < saved_at,
                _ => false,
            };
            if before {
                behind.extend(self.identities(std::iter::once(l))?);
            }
        }
        self.behind = behind;
        if at_start_of_empty {
            tracing::info!(stream = %self.stream(), "the checkpoint is at the start of a file that was empty then, and rotated generations were written since: reading them, then the file at the path, from their start");
            return self.cut(BreakReason::NextFile, None);
        }
        match elsewhere {
            Some(chosen) => {
                tracing::info!(stream = %self.stream(), rotated_to = %file_stream_id(&chosen.path), "resuming in the checkpointed file, renamed out of the rotation chain");
                self.resume_in(chosen, checkpoint.offset, Role::Generation)
            }
            None => {
                tracing::warn!(stream = %self.stream(), checkpoint_offset = checkpoint.offset, unread_bytes = "unknown", "the checkpointed file is gone before it was read to its end (deleted, or rotated out of reach); reading the generations written since, then the file at the path, from their start");
                self.cut(BreakReason::RotatedAway, None)
            }
        }
    }

    /// A file in the followed file's directory, not in the chain, where the
    /// checkpoint's position lies.
    fn find_elsewhere(&self, recorded: &FileId, offset: u64) -> io::Result<Option<Listed>> {
        let chain: Vec<PathBuf> = generations(&self.path, &self.rotated)
            .into_iter()
            .chain([self.path.clone()])
            .collect();
        let Ok(entries) = fs::read_dir(self.dir()) else {
            return Ok(None);
        };
        for entry in entries.filter_map(Result::ok) {
            let path = entry.path();
            if chain.contains(&path) || !entry.metadata().is_ok_and(|m| recorded.same_inode(&m)) {
                continue;
            }
            if let Some((file, metadata)) = open_file(&path, Accept::RegularFile)? {
                let listed = Listed {
                    path,
                    file,
                    metadata,
                };
                if self.applies(recorded, offset, &listed) {
                    return Ok(Some(listed));
                }
            }
        }
        Ok(None)
    }

    fn resume_in(&mut self, chosen: Listed, offset: u64, role: Role) -> io::Result<()> {
        let Listed {
            mut file, metadata, ..
        } = chosen;
        file.seek(SeekFrom::Start(offset))?;
        let head = Head::read(&file, &self.key)?;
        self.current = Some(Current {
            id: FileId {
                dev: metadata.dev(),
                ino: metadata.ino(),
                print: Some(head.print()),
            },
            file,
            head,
            offset,
            role,
            verified: None,
        });
        Ok(())
    }

    /// Opens the oldest file of the chain not read yet, if any; each file
    /// begins a new text.
    fn open_next(&mut self) -> io::Result<()> {
        let listed = self.list_chain()?;
        // A listing races the rotator: a generation being renamed from one
        // name to the next can be missing from it. A file known by a print
        // of some bytes is recognised by its content, so it is kept (the
        // newest few hundred); one known only as empty is kept only while
        // its inode is listed, since a new empty file can reuse the inode.
        self.behind.retain(|id| {
            id.print.is_some_and(|p| p.len > 0) || listed.iter().any(|l| id.same_inode(&l.metadata))
        });
        if self.behind.len() > BEHIND_KEPT {
            let excess = self.behind.len() - BEHIND_KEPT;
            self.behind.drain(..excess);
        }
        for l in listed {
            if self.is_behind(&l)? {
                continue;
            }
            let head = Head::read(&l.file, &self.key)?;
            let id = FileId {
                dev: l.metadata.dev(),
                ino: l.metadata.ino(),
                print: Some(head.print()),
            };
            let role = if l.path == self.path {
                tracing::info!(stream = %self.stream(), "following from the start of the file");
                Role::Live
            } else {
                tracing::info!(stream = %self.stream(), generation = %file_stream_id(&l.path), "reading a rotated generation not read yet, from its start");
                Role::Generation
            };
            // Always a break, even when nothing was read since the last one:
            // it carries the checkpoint onto this file. Without it a
            // checkpoint could stay at the start of an empty generation
            // passed over, and a restart would resume there and read the
            // newer generations again.
            self.cut(BreakReason::NextFile, Some((id, 0)))?;
            self.current = Some(Current {
                file: l.file,
                id,
                head,
                offset: 0,
                role,
                verified: None,
            });
            return Ok(());
        }
        Ok(())
    }

    /// Sends a break: what follows begins a new text.
    fn cut(&mut self, reason: BreakReason, next: Option<(FileId, u64)>) -> io::Result<()> {
        self.outbox.push_back(FollowEvent::Break { reason, next });
        Ok(())
    }

    /// Reads on in the current file: true at its end (or with no file),
    /// false once a chunk waits to be handed on (the rest is for another
    /// turn).
    fn read_to_end(&mut self) -> io::Result<bool> {
        let Some(current) = self.current.as_mut() else {
            return Ok(true);
        };
        loop {
            if self
                .outbox
                .iter()
                .any(|event| matches!(event, FollowEvent::Data { .. }))
            {
                return Ok(false);
            }
            let read = read_chunk(&mut current.file, current.offset, self.chunk, &self.buffers)?;
            let Some(bytes) = read else {
                return Ok(true);
            };
            current.head.extend(&self.key, current.offset, &bytes);
            let n = bytes.len();
            let event = FollowEvent::Data {
                bytes,
                file: current.identity(),
                file_offset: current.offset,
            };
            current.offset += n as u64;
            self.read_any = true;
            self.outbox.push_back(event);
        }
    }

    /// After reading to the end: go on with the next file if this one is
    /// done, or start over if it was truncated. Returns whether there is
    /// something to read at once (no need to wait for a change).
    /// `at_path`: what the path names, looked at just now.
    fn check(&mut self, at_path: io::Result<fs::Metadata>) -> io::Result<bool> {
        let Some(current) = self.current.as_ref() else {
            return Ok(false);
        };
        if current.role == Role::Generation {
            self.finish_current();
            self.open_next()?;
            return Ok(self.current.is_some());
        }
        let Ok(metadata) = at_path else {
            // Removed or renamed, with no new file yet: keep reading the old one.
            return Ok(false);
        };
        if current.id.same_inode(&metadata) {
            let stamp = (metadata.len(), metadata.modified().ok());
            // Unchanged since its first bytes were last compared: nothing
            // to look at again (many quiet files cost one stat each).
            if current.verified == Some(stamp) {
                return Ok(false);
            }
            let shorter = metadata.len() < current.offset;
            if shorter || !begins_with(&current.file, &current.head.print(), &self.key)? {
                self.truncated()?;
                return Ok(true);
            }
            let grown = metadata.len() > current.offset;
            if let Some(current) = self.current.as_mut() {
                current.verified = Some(stamp);
            }
            return Ok(grown);
        }
        // Whatever reached the old file meanwhile is read first, over as
        // many turns as it takes.
        if !self.read_to_end()? {
            return Ok(true);
        }
        tracing::info!(stream = %self.stream(), "file rotated");
        self.finish_current();
        self.open_next()?;
        Ok(self.current.is_some())
    }

    fn finish_current(&mut self) {
        if let Some(current) = self.current.take() {
            self.behind.push(current.identity());
        }
    }

    /// The file at the path was truncated or its content replaced: the old
    /// content goes on in its copy, if there is one; else the stream breaks
    /// and the new content is read from its start.
    fn truncated(&mut self) -> io::Result<()> {
        let Some(current) = self.current.as_mut() else {
            return Ok(());
        };
        let old = current.identity();
        let offset = current.offset;
        let mut copy = None;
        for l in self.list_chain()? {
            let candidate = l.path != self.path
                && !old.same_inode(&l.metadata)
                && self.applies(&old, offset, &l);
            // A generation read before may begin alike (a short print): the
            // copy is one not read yet.
            if candidate && !self.is_behind(&l)? {
                copy = Some(l);
                break;
            }
        }
        if let Some(copy) = copy {
            tracing::info!(stream = %self.stream(), copy = %file_stream_id(&copy.path), "file truncated (copy-truncate): the rest of the old content is read from its copy, then the new content from its start");
            // The old content continues in the copy: no break here.
            return self.resume_in(copy, offset, Role::Generation);
        }
        tracing::info!(stream = %self.stream(), read_bytes = offset, "file truncated or replaced in place, and no copy of the old content found; reading the new content from its start");
        let Some(current) = self.current.as_mut() else {
            return Ok(());
        };
        current.file.seek(SeekFrom::Start(0))?;
        current.offset = 0;
        current.verified = None;
        current.head = Head::read(&current.file, &self.key)?;
        let next = current.identity();
        self.cut(BreakReason::Truncated, Some((next, 0)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_quiet_file_is_looked_at_less_often_until_it_is_written_to() {
        let mut poll = Poll {
            backs_off: true,
            quiet: 0,
        };
        let waits: Vec<u128> = (0..13).map(|_| poll.next(false).as_millis()).collect();
        assert_eq!(
            waits,
            [
                250, 250, 250, 500, 500, 500, 500, 1000, 1000, 1000, 1000, 1000, 1000
            ]
        );
        assert_eq!(poll.next(true), POLL_INTERVAL);
        assert_eq!(poll.next(false), POLL_INTERVAL);
        // A file with a change notifier waits the same each time: the
        // notifier wakes it.
        let mut notified = Poll {
            backs_off: false,
            quiet: 0,
        };
        assert!((0..20).all(|_| notified.next(false) == POLL_INTERVAL));
    }
}
