//! What has been delivered: each stream's position up to which its redacted
//! output has been written, as reported by the output after the write.
//!
//! A batch carries an [`Ack`] — the scanner's decided [`Mark`] after the
//! batch — and the output records it once every byte of the batch is written.
//! Checkpoints of followed files are taken from these marks only, so a
//! checkpoint never runs ahead of what the output accepted.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, PoisonError};

use crate::scan::scanner::Mark;

pub use crate::source::identity::FileId;

/// Where in which file a stream offset lies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FilePosition {
    /// The file.
    pub file: FileId,
    /// Byte offset in the file.
    pub offset: u64,
}

/// Where a run of stream bytes came from: from `stream_offset` on, the
/// stream continues `file` at `file_offset`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct FileSegment {
    stream_offset: u64,
    file: FileId,
    file_offset: u64,
}

#[derive(Default)]
struct ProgressState {
    delivered: Option<Mark>,
    segments: VecDeque<FileSegment>,
    /// Files the stream went on from, where it left each, and the stream
    /// offset there (newest last).
    left: VecDeque<(FilePosition, u64)>,
}

/// Files left remembered per stream: a rotation chain's worth.
const LEFT_KEPT: usize = 16;

/// The delivery progress of one stream.
#[derive(Default)]
pub struct StreamProgress {
    state: Mutex<ProgressState>,
}

impl StreamProgress {
    /// A shareable progress record.
    pub fn new() -> Arc<StreamProgress> {
        Arc::new(StreamProgress::default())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, ProgressState> {
        // The state is plain data; a panic elsewhere cannot leave it torn.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Records that the stream's output up to `mark` has been written.
    pub fn delivered(&self, mark: Mark) {
        let mut state = self.lock();
        if state.delivered.is_none_or(|old| old.offset <= mark.offset) {
            state.delivered = Some(mark);
        }
    }

    /// The last delivered mark.
    #[cfg(test)]
    pub fn delivered_mark(&self) -> Option<Mark> {
        self.lock().delivered
    }

    /// Records that stream bytes from `stream_offset` on are read from `file`
    /// at `file_offset` (a followed file's data, or a new file after rotation).
    /// The file's print may have grown since the last call (it covers more
    /// of a file that was short): the newest is kept.
    pub fn reading(&self, stream_offset: u64, file: FileId, file_offset: u64) {
        let mut state = self.lock();
        if let Some(last) = state.segments.back_mut() {
            let continues = (last.file.dev, last.file.ino) == (file.dev, file.ino)
                && last.file_offset + (stream_offset - last.stream_offset) == file_offset;
            if continues {
                last.file.print = file.print;
                return;
            }
        }
        if let Some(last) = state.segments.back().copied() {
            let end = last.file_offset + stream_offset.saturating_sub(last.stream_offset);
            if state.left.len() == LEFT_KEPT {
                state.left.pop_front();
            }
            state.left.push_back((
                FilePosition {
                    file: last.file,
                    offset: end,
                },
                stream_offset,
            ));
        }
        state.segments.push_back(FileSegment {
            stream_offset,
            file,
            file_offset,
        });
    }

    /// Where the stream left the file with device and inode `file`, if it
    /// went on from it to another (the newest such place).
    pub fn left_at(&self, file: (u64, u64)) -> Option<FilePosition> {
        self.lock()
            .left
            .iter()
            .rev()
            .map(|(left, _)| *left)
            .find(|left| (left.file.dev, left.file.ino) == file)
    }

    /// The files the stream went on from whose every byte it read has been
    /// delivered, and where it left each: positions a checkpoint may hold.
    pub fn left_delivered(&self) -> Vec<FilePosition> {
        let state = self.lock();
        let Some(delivered) = state.delivered else {
            return Vec::new();
        };
        state
            .left
            .iter()
            .filter(|(_, at)| *at <= delivered.offset)
            .map(|(left, _)| *left)
            .collect()
    }

    /// Device and inode of the file the stream reads now (its last bytes,
    /// or the file it went on with).
    pub fn reading_file(&self) -> Option<(u64, u64)> {
        self.lock()
            .segments
            .back()
            .map(|s| (s.file.dev, s.file.ino))
    }

    /// The file position of the last delivered mark, with the mark; forgets
    /// file segments that lie wholly before it.
    pub fn delivered_position(&self) -> Option<(Mark, FilePosition)> {
        let mut state = self.lock();
        let mark = state.delivered?;
        while state.segments.len() > 1 && state.segments[1].stream_offset <= mark.offset {
            state.segments.pop_front();
        }
        let segment = state
            .segments
            .front()
            .filter(|s| s.stream_offset <= mark.offset)?;
        Some((
            mark,
            FilePosition {
                file: segment.file,
                offset: segment.file_offset + (mark.offset - segment.stream_offset),
            },
        ))
    }
}

/// What an output confirms once it has written the bytes a batch holds so
/// far: carried by the batch.
#[derive(Clone)]
pub enum Ack {
    /// "The stream's output is written up to `mark`" (for checkpoints).
    Progress {
        /// Whose progress.
        progress: Arc<StreamProgress>,
        /// Decided position after the batch.
        mark: Mark,
    },
    /// Someone waits for these bytes to be written (a forward sender's
    /// acknowledgement): called once they are. If the batch is dropped
    /// unwritten, it is dropped uncalled.
    Written(Arc<dyn Fn() + Send + Sync>),
}

impl Ack {
    /// Confirms delivery.
    pub fn confirm(&self) {
        match self {
            Ack::Progress { progress, mark } => progress.delivered(*mark),
            Ack::Written(written) => written(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mark(offset: u64) -> Mark {
        Mark {
            offset,
            lines: 0,
            byte_before: None,
        }
    }

    #[test]
    fn maps_delivered_marks_to_files_across_rotation() {
        let progress = StreamProgress::new();
        let file = |ino| FileId {
            dev: 1,
            ino,
            print: None,
        };
        let (a, b) = (file(10), file(11));
        progress.reading(0, a, 100);
        progress.reading(50, a, 150);
        progress.reading(80, b, 0);
        assert_eq!(progress.delivered_position(), None);
        progress.delivered(mark(60));
        assert_eq!(
            progress.delivered_position().unwrap().1,
            FilePosition {
                file: a,
                offset: 160
            }
        );
        progress.delivered(mark(90));
        assert_eq!(
            progress.delivered_position().unwrap().1,
            FilePosition {
                file: b,
                offset: 10
            }
        );
        // A short file's print grows as it is read: the newest is kept.
        let printed = |len| FileId {
            print: Some(crate::source::identity::ContentPrint {
                len,
                hash: crate::source::identity::PrintHash([len as u8; 16]),
            }),
            ..b
        };
        progress.reading(100, printed(20), 20);
        progress.reading(120, printed(40), 40);
        progress.delivered(mark(130));
        assert_eq!(
            progress.delivered_position().unwrap().1,
            FilePosition {
                file: printed(40),
                offset: 50
            }
        );
        // Marks never go backwards.
        progress.delivered(mark(85));
        assert_eq!(progress.delivered_mark(), Some(mark(130)));
    }
}
