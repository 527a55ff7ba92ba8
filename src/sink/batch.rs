//! Batches of redacted output.
//!
//! The scanner writes borrowed slices; most of them are slices of the chunk
//! just read, so a batch keeps them as `Bytes` slices of that chunk (a
//! reference count, not a copy). Masks, bytes held back from an earlier chunk,
//! and short slices between matches are copied into one contiguous buffer:
//! below `COPY_BELOW` bytes a copy costs less than a piece of its own (a
//! reference count, an allocation in the piece list, an entry in the vectored
//! write), which matters when matches are dense.

use bytes::{Bytes, BytesMut};

use crate::progress::Ack;

/// In-chunk slices shorter than this are copied rather than shared.
const COPY_BELOW: usize = 512;
use crate::scan::detection::Detection;
use crate::scan::scanner::ScanSink;

/// Redacted bytes ready to be written, in order, with the acknowledgements
/// the output confirms once they are written.
#[derive(Default)]
pub struct Batch {
    pieces: Vec<Bytes>,
    len: usize,
    /// Each acknowledgement with the length of the batch's bytes it covers
    /// (always at most `len`, in ascending order): it may be confirmed once
    /// those bytes are written, whatever becomes of the rest.
    acks: Vec<(usize, Ack)>,
}

impl std::fmt::Debug for Batch {
    // The pieces are redacted output, but a batch is never worth printing.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Batch")
            .field("pieces", &self.pieces.len())
            .field("len", &self.len)
            .field("acks", &self.acks.len())
            .finish()
    }
}

impl Batch {
    /// The pieces, to be written in order (e.g. with one vectored write).
    pub fn pieces(&self) -> &[Bytes] {
        &self.pieces
    }

    /// Total bytes.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether there is nothing to write.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Appends another batch.
    pub fn append(&mut self, other: Batch) {
        let before = self.len;
        self.len += other.len;
        self.pieces.extend(other.pieces);
        self.acks
            .extend(other.acks.into_iter().map(|(at, ack)| (before + at, ack)));
    }

    /// A batch of whole pieces.
    pub fn from_pieces(pieces: Vec<Bytes>) -> Batch {
        let len = pieces.iter().map(Bytes::len).sum();
        Batch {
            pieces,
            len,
            acks: Vec::new(),
        }
    }

    /// Adds an acknowledgement to confirm once the bytes so far are written.
    pub fn acknowledge(&mut self, ack: Ack) {
        self.acks.push((self.len, ack));
    }

    /// Whether there is nothing to write and nothing to confirm.
    pub fn is_void(&self) -> bool {
        self.len == 0 && self.acks.is_empty()
    }

    /// Confirms every acknowledgement: call after the bytes are written.
    pub fn confirm(&self) {
        for (_, ack) in &self.acks {
            ack.confirm();
        }
    }

    /// Splits after the last newline: whole lines, and the rest (a partial
    /// line). Each acknowledgement goes with the part that holds the end of
    /// the bytes it covers.
    pub fn split_after_last_newline(self) -> (Batch, Batch) {
        let newline = self
            .pieces
            .iter()
            .enumerate()
            .rev()
            .find_map(|(i, piece)| memchr::memrchr(b'\n', piece).map(|at| (i, at)));
        self.split_after(newline)
    }

    /// Splits after the first newline: the end of the current line, and the
    /// rest. Each acknowledgement goes with the part that holds the end of
    /// the bytes it covers.
    pub fn split_after_first_newline(self) -> (Batch, Batch) {
        let newline = self
            .pieces
            .iter()
            .enumerate()
            .find_map(|(i, piece)| memchr::memchr(b'\n', piece).map(|at| (i, at)));
        self.split_after(newline)
    }

    /// Splits after the newline at `(piece, byte)`; with none, everything is
    /// the rest. An acknowledgement covering no more than the first part goes
    /// with it, the others with the rest (all of them, when there is no
    /// newline).
    fn split_after(self, newline: Option<(usize, usize)>) -> (Batch, Batch) {
        let (mut head, mut rest) = (Vec::new(), Vec::new());
        match newline {
            None => rest = self.pieces,
            Some((index, at)) => {
                head.reserve(index + 1);
                for (i, piece) in self.pieces.into_iter().enumerate() {
                    if i < index {
                        head.push(piece);
                    } else if i == index {
                        head.push(piece.slice(..=at));
                        if at + 1 < piece.len() {
                            rest.push(piece.slice(at + 1..));
                        }
                    } else {
                        rest.push(piece);
                    }
                }
            }
        }
        let mut head = Batch::from_pieces(head);
        let mut rest = Batch::from_pieces(rest);
        for (covers, ack) in self.acks {
            if newline.is_some() && covers <= head.len {
                head.acks.push((covers, ack));
            } else {
                rest.acks.push((covers - head.len, ack));
            }
        }
        (head, rest)
    }
}

/// Collects the scanner's output for one chunk into a [`Batch`], and its
/// detections.
pub struct BatchBuilder<'a> {
    chunk: Option<&'a Bytes>,
    batch: Batch,
    /// Where copied bytes go; its spare capacity is reused by the next batch
    /// once the output has let go of the previous one.
    copied: &'a mut BytesMut,
    detections: Vec<Detection>,
}

impl<'a> BatchBuilder<'a> {
    /// A builder for the output of scanning `chunk`, copying into `buffer`.
    pub fn new(chunk: &'a Bytes, buffer: &'a mut BytesMut) -> BatchBuilder<'a> {
        buffer.clear();
        BatchBuilder {
            chunk: Some(chunk),
            batch: Batch::default(),
            copied: buffer,
            detections: Vec::new(),
        }
    }

    /// A builder for output that is not backed by a chunk (the end of a stream).
    pub fn detached(buffer: &'a mut BytesMut) -> BatchBuilder<'a> {
        buffer.clear();
        BatchBuilder {
            chunk: None,
            batch: Batch::default(),
            copied: buffer,
            detections: Vec::new(),
        }
    }

    /// Adds an acknowledgement to confirm once the bytes written so far are.
    pub fn acknowledge(&mut self, ack: Ack) {
        let covers = self.batch.len + self.copied.len();
        self.batch.acks.push((covers, ack));
    }

    /// The batch and the detections.
    pub fn finish(mut self) -> (Batch, Vec<Detection>) {
        self.flush_copied();
        (self.batch, self.detections)
    }

    fn flush_copied(&mut self) {
        if !self.copied.is_empty() {
            let piece = self.copied.split().freeze();
            self.batch.len += piece.len();
            self.batch.pieces.push(piece);
        }
    }
}

impl ScanSink for BatchBuilder<'_> {
    fn write(&mut self, bytes: &[u8]) {
        if bytes.is_empty() {
            return;
        }
        match self
            .chunk
            .filter(|chunk| bytes.len() >= COPY_BELOW && contains(chunk, bytes))
        {
            Some(chunk) => {
                self.flush_copied();
                self.batch.len += bytes.len();
                self.batch.pieces.push(chunk.slice_ref(bytes));
            }
            None => {
                if self.copied.capacity() - self.copied.len() < bytes.len() {
                    self.copied.reserve(bytes.len().max(16 * 1024));
                }
                self.copied.extend_from_slice(bytes);
            }
        }
    }

    fn detection(&mut self, detection: Detection) {
        self.detections.push(detection);
    }
}

/// Whether `part` lies inside `whole`'s memory.
fn contains(whole: &[u8], part: &[u8]) -> bool {
    let whole = whole.as_ptr_range();
    let part = part.as_ptr_range();
    whole.start <= part.start && part.end <= whole.end
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(batch: &Batch) -> Vec<&[u8]> {
        batch.pieces().iter().map(|p| &p[..]).collect()
    }

    #[test]
    fn splits_at_newlines() {
        let batch = Batch::from_pieces(vec![
            Bytes::from_static(b"a\nb"),
            Bytes::from_static(b"c\nd"),
            Bytes::from_static(b"e"),
        ]);
        let (lines, rest) = batch.split_after_last_newline();
        assert_eq!(texts(&lines), [&b"a\nb"[..], b"c\n"]);
        assert_eq!(texts(&rest), [&b"d"[..], b"e"]);
        let (line, rest) =
            Batch::from_pieces(vec![Bytes::from_static(b"x\ny\nz")]).split_after_first_newline();
        assert_eq!(texts(&line), [&b"x\n"[..]]);
        assert_eq!(texts(&rest), [&b"y\nz"[..]]);
        let (none, all) =
            Batch::from_pieces(vec![Bytes::from_static(b"xyz")]).split_after_last_newline();
        assert!(none.is_empty());
        assert_eq!(all.len(), 3);
    }

    #[test]
    fn acknowledgements_go_with_the_bytes_they_cover() {
        let progress = crate::progress::StreamProgress::new();
        let ack = |offset| Ack::Progress {
            progress: std::sync::Arc::clone(&progress),
            mark: crate::scan::scanner::Mark {
                offset,
                lines: 0,
                byte_before: None,
            },
        };
        let mut batch = Batch::from_pieces(vec![Bytes::from_static(b"a\nb\n")]);
        batch.acknowledge(ack(4));
        let mut more = Batch::from_pieces(vec![Bytes::from_static(b"partial")]);
        more.acknowledge(ack(11));
        batch.append(more);
        let (lines, rest) = batch.split_after_last_newline();
        lines.confirm();
        assert_eq!(progress.delivered_mark().map(|m| m.offset), Some(4));
        let (none, rest) = rest.split_after_first_newline();
        none.confirm();
        assert_eq!(progress.delivered_mark().map(|m| m.offset), Some(4));
        rest.confirm();
        assert_eq!(progress.delivered_mark().map(|m| m.offset), Some(11));
    }

    #[test]
    fn long_chunk_slices_are_shared_and_other_bytes_copied() {
        let chunk = Bytes::from(vec![b'x'; 2000]);
        let mut buffer = BytesMut::new();
        let mut builder = BatchBuilder::new(&chunk, &mut buffer);
        builder.write(&chunk[..600]);
        builder.write(b"***");
        builder.write(&chunk[600..610]);
        builder.write(&chunk[610..]);
        let (batch, _) = builder.finish();
        assert_eq!(batch.len(), 2003);
        let lens: Vec<usize> = batch.pieces().iter().map(Bytes::len).collect();
        assert_eq!(lens, [600, 13, 1390]);
        assert_eq!(batch.pieces()[0].as_ptr(), chunk.as_ptr());
        assert_eq!(&batch.pieces()[1][..], b"***xxxxxxxxxx");
        assert_eq!(batch.pieces()[2].as_ptr(), chunk[610..].as_ptr());
    }
}
