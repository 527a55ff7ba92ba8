//! Batches of redacted output.
//!
//! The scanner writes borrowed slices; most of them are slices of the chunk
//! just read, so a batch keeps them as `Bytes` slices of that chunk (a
//! reference count, not a copy). Only masks and bytes held back from an
//! earlier chunk are copied.

use bytes::{Bytes, BytesMut};

use crate::scan::detection::Detection;
use crate::scan::scanner::ScanSink;

/// Redacted bytes ready to be written, in order.
#[derive(Debug, Default)]
pub struct Batch {
    pieces: Vec<Bytes>,
    len: usize,
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
        self.len += other.len;
        self.pieces.extend(other.pieces);
    }
}

/// Collects the scanner's output for one chunk into a [`Batch`], and its
/// detections.
pub struct BatchBuilder<'a> {
    chunk: Option<&'a Bytes>,
    batch: Batch,
    copied: BytesMut,
    detections: Vec<Detection>,
}

impl<'a> BatchBuilder<'a> {
    /// A builder for the output of scanning `chunk`.
    pub fn new(chunk: &'a Bytes) -> BatchBuilder<'a> {
        BatchBuilder {
            chunk: Some(chunk),
            batch: Batch::default(),
            copied: BytesMut::new(),
            detections: Vec::new(),
        }
    }

    /// A builder for output that is not backed by a chunk (the end of a stream).
    pub fn detached() -> BatchBuilder<'static> {
        BatchBuilder {
            chunk: None,
            batch: Batch::default(),
            copied: BytesMut::new(),
            detections: Vec::new(),
        }
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
        match self.chunk.filter(|chunk| contains(chunk, bytes)) {
            Some(chunk) => {
                self.flush_copied();
                self.batch.len += bytes.len();
                self.batch.pieces.push(chunk.slice_ref(bytes));
            }
            None => self.copied.extend_from_slice(bytes),
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

    #[test]
    fn chunk_slices_are_shared_and_other_bytes_copied() {
        let chunk = Bytes::from_static(b"hello world");
        let mut builder = BatchBuilder::new(&chunk);
        builder.write(&chunk[..6]);
        builder.write(b"***");
        builder.write(b"!");
        builder.write(&chunk[6..]);
        let (batch, _) = builder.finish();
        assert_eq!(batch.len(), 15);
        let pieces: Vec<&[u8]> = batch.pieces().iter().map(|p| &p[..]).collect();
        assert_eq!(pieces, [&b"hello "[..], b"***!", b"world"]);
        assert_eq!(batch.pieces()[0].as_ptr(), chunk.as_ptr());
    }
}
