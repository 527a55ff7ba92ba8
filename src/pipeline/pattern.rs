//! A `follow:` pattern's watch: the pattern is matched again every
//! [`RESCAN_INTERVAL`]; every file it matches becomes a followed stream of its
//! own (`file:<path>`, its own scanner and checkpoint), written to the shared
//! output a whole line at a time. A file that appears is followed from its
//! start (or its checkpoint); a file whose path is gone for
//! [`RELEASE_AFTER`] is read to its end and released, and its checkpoint
//! removed. At most `limits.max_files` files are followed at once; the others
//! wait, and are followed from their start as places free up.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio_util::task::TaskTracker;

use crate::metrics::ErrorKind;
use crate::pipeline::context::Context;
use crate::pipeline::error::PipelineError;
use crate::pipeline::stream::{Finished, InputRole, OutputRole, Stream};
use crate::scrub::file_stream_id;
use crate::sink::{Port, SharedOutput};
use crate::source::checkpoint::{Checkpoints, GroupId};
use crate::source::{
    FilePattern, FollowDriver, FollowOptions, MatchedFile, WalkCache, follow_file,
};

/// How often a pattern is matched again, for files that appeared.
pub(crate) const RESCAN_INTERVAL: Duration = Duration::from_secs(1);

/// How long the path of a file found by a pattern must name no file before
/// its stream ends: long enough for a rotator to create the new file after
/// renaming the old one.
pub(crate) const RELEASE_AFTER: Duration = Duration::from_secs(5);

/// The most bytes read at once from a file a pattern matches: with many
/// files followed, what each holds in flight is bounded small.
const FILE_CHUNK: usize = 16 * 1024;

/// A `follow:` pattern and where its files' streams go.
pub(crate) struct PatternFollower {
    /// The pattern.
    pub(crate) pattern: FilePattern,
    /// The shared output.
    pub(crate) shared: SharedOutput,
    /// Where the files resume and save their checkpoints.
    pub(crate) checkpoints: Checkpoints,
    /// Files followed at once, at most.
    pub(crate) max_files: usize,
    /// Tracks each file's task, so the run waits for them all.
    pub(crate) tracker: TaskTracker,
    /// The run.
    pub(crate) context: Arc<Context>,
}

/// The files of one pattern, as its watch knows them.
#[derive(Default)]
struct Files {
    /// Followed now.
    followed: HashSet<PathBuf>,
    /// Failed: not followed again in this run (the failure is logged and
    /// fails the run).
    failed: HashSet<PathBuf>,
    /// Whether the limit was reached and said so, since it was last free.
    at_limit: bool,
    /// Matched but waiting for a place under the limit.
    waiting: HashSet<PathBuf>,
}

impl PatternFollower {
    /// Matches the pattern and follows what it finds, until the shutdown
    /// starts.
    pub(crate) async fn run(self) {
        let pattern = self.pattern.as_str().to_string();
        tracing::info!(input = %format!("follow:{pattern}"), max_files = self.max_files, "following the files a pattern matches");
        let (ended_tx, mut ended_rx) = mpsc::unbounded_channel();
        let group = self
            .checkpoints
            .open_group(&pattern, &self.context.env.metrics);
        let mut files = Files::default();
        let mut cache = WalkCache::default();
        // One thread reads all the pattern's files, taking turns.
        let driver = match FollowDriver::spawn() {
            Ok(driver) => driver,
            Err(e) => {
                tracing::error!(input = %format!("follow:{pattern}"), error = %e, "cannot start the thread that reads the files a pattern matches");
                self.context.record(PipelineError::Read {
                    input: format!("follow:{pattern}"),
                    source: e,
                });
                return;
            }
        };
        loop {
            while let Ok(ended) = ended_rx.try_recv() {
                self.ended(&mut files, ended);
            }
            let matcher = self.pattern.clone();
            let mut walked = std::mem::take(&mut cache);
            let found = match tokio::task::spawn_blocking(move || {
                let found = matcher.matches_again(&mut walked);
                (found, walked)
            })
            .await
            {
                Ok((found, walked)) => {
                    cache = walked;
                    found
                }
                Err(_) => Vec::new(),
            };
            // Stopping: no new file is started (a stream that ended at the
            // stop frees a place, which must not go to another file now).
            if self.context.shutdown.stopping.is_cancelled() {
                return;
            }
            self.checkpoints.matched(group, &found);
            self.follow_new(&mut files, found, group, &ended_tx, &driver);
            tokio::select! {
                biased;
                () = self.context.shutdown.stopping.cancelled() => return,
                () = tokio::time::sleep(RESCAN_INTERVAL) => {}
                Some(ended) = ended_rx.recv() => self.ended(&mut files, ended),
            }
        }
    }

    fn follow_new(
        &self,
        files: &mut Files,
        found: Vec<MatchedFile>,
        group: GroupId,
        ended: &mpsc::UnboundedSender<(PathBuf, Finished)>,
        driver: &FollowDriver,
    ) {
        // A file that waited for a place and is gone was never read.
        let present: HashSet<&PathBuf> = found.iter().map(|m| &m.path).collect();
        for gone in files.waiting.iter().filter(|path| !present.contains(path)) {
            self.context.env.metrics.error(ErrorKind::RotatedAway);
            tracing::warn!(stream = %file_stream_id(gone), max_files = self.max_files, "a file the pattern matched was gone before a place under limits.max_files freed up; it was not read");
        }
        let mut new: Vec<PathBuf> = found
            .into_iter()
            .map(|m| m.path)
            .filter(|path| !files.followed.contains(path) && !files.failed.contains(path))
            // Named by another input too (or reached by another path): that
            // input follows it.
            .filter(|path| !self.checkpoints.is_followed(path))
            // Renamed from another matched name: its old stream reads it to
            // its end and is released; this name then resumes there.
            .filter(|path| !self.checkpoints.is_being_read(path))
            .collect();
        // Files read before (with a checkpoint) go first: their writers are
        // ahead of them already.
        new.sort_by_key(|path| (!self.checkpoints.has_saved(group, path), path.clone()));
        let free = self.max_files.saturating_sub(files.followed.len());
        files.waiting = new.iter().skip(free).cloned().collect();
        if new.len() > free {
            if !files.at_limit {
                tracing::warn!(
                    input = %format!("follow:{}", self.pattern.as_str()),
                    max_files = self.max_files,
                    waiting = new.len() - free,
                    "limits.max_files reached: files the pattern matches wait until a followed file is released"
                );
            }
            files.at_limit = true;
        } else {
            files.at_limit = false;
        }
        for path in new.into_iter().take(free) {
            let _starting = self.checkpoints.starting();
            // Started by another pattern since the check above.
            if self.checkpoints.is_followed(&path) {
                continue;
            }
            if self.start(&path, group, ended, driver) {
                files.followed.insert(path);
            } else {
                files.failed.insert(path);
            }
        }
    }

    /// Starts following `path`; false if it could not be.
    fn start(
        &self,
        path: &Path,
        group: GroupId,
        ended: &mpsc::UnboundedSender<(PathBuf, Finished)>,
        driver: &FollowDriver,
    ) -> bool {
        let options = FollowOptions {
            release_after: Some(RELEASE_AFTER),
            poll_only: true,
            rotated: self.pattern.rotated().clone(),
            chunk: FILE_CHUNK,
            read_ahead: 1,
            own_files: self.pattern.own_files().clone(),
            driver: Some(driver.clone()),
        };
        let name = format!("follow:{}", self.pattern.as_str());
        let metrics = &self.context.env.metrics;
        let checkpoints = (&self.checkpoints, Some(group));
        let opened = match follow_file(path, name, checkpoints, metrics, options) {
            Ok(opened) => opened,
            Err(e) => {
                tracing::error!(stream = %file_stream_id(path), error = %e, "cannot follow a file the pattern matches");
                return false;
            }
        };
        tracing::info!(stream = %opened.id, "following a file the pattern matches");
        let stream = Stream {
            id: opened.id,
            source: opened.source,
            input: InputRole::Configured(opened.name),
            port: Port::merged(&self.shared),
            output: OutputRole::Shared,
            scanner: self.context.scanner(opened.resume),
            progress: opened.progress,
        };
        let context = Arc::clone(&self.context);
        let ended = ended.clone();
        let path = path.to_path_buf();
        self.tracker.spawn(async move {
            let finished = stream.run(context).await;
            let _ = ended.send((path, finished));
        });
        true
    }

    /// A file's stream ended: released (its path is gone), or failed.
    fn ended(&self, files: &mut Files, (path, finished): (PathBuf, Finished)) {
        files.followed.remove(&path);
        match finished {
            // A stream stopped by the shutdown resumes at the next start.
            Finished::Ended if self.context.shutdown.stopping.is_cancelled() => {}
            Finished::Ended => self.checkpoints.release(&path),
            Finished::Failed => {
                files.failed.insert(path);
            }
        }
    }
}
