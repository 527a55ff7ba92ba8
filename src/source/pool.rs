//! Reusable read buffers for the blocking readers.
//!
//! A reading thread reads into a buffer from the pool and hands it on as
//! `Bytes` (no copy). When the last slice of it is dropped — the output has
//! written it — the buffer goes back to the pool, so steady-state reading
//! neither allocates nor zeroes memory. The pool keeps at most `KEEP`
//! buffers; more in flight (a slow output) are simply freed when done.

use std::sync::{Arc, Mutex, PoisonError};

use bytes::Bytes;

/// Buffers kept for reuse.
const KEEP: usize = 16;

/// A pool of equally sized buffers.
#[derive(Clone)]
pub(crate) struct BufferPool {
    free: Arc<Mutex<Vec<Vec<u8>>>>,
    size: usize,
}

/// A filled buffer lent out as `Bytes`; returns to the pool when dropped.
struct Lent {
    data: Vec<u8>,
    len: usize,
    pool: BufferPool,
}

impl AsRef<[u8]> for Lent {
    fn as_ref(&self) -> &[u8] {
        &self.data[..self.len]
    }
}

impl Drop for Lent {
    fn drop(&mut self) {
        self.pool.put(std::mem::take(&mut self.data));
    }
}

impl BufferPool {
    /// A pool of buffers of `size` bytes.
    pub(crate) fn new(size: usize) -> BufferPool {
        BufferPool {
            free: Arc::new(Mutex::new(Vec::new())),
            size,
        }
    }

    /// A buffer of `size` initialized bytes (old contents, or zeros when new).
    pub(crate) fn take(&self) -> Vec<u8> {
        let reused = self
            .free
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pop();
        reused.unwrap_or_else(|| vec![0; self.size])
    }

    /// The first `len` bytes of `buffer` as `Bytes`, lent from the pool.
    pub(crate) fn lend(&self, buffer: Vec<u8>, len: usize) -> Bytes {
        Bytes::from_owner(Lent {
            data: buffer,
            len,
            pool: self.clone(),
        })
    }

    fn put(&self, buffer: Vec<u8>) {
        if buffer.len() != self.size {
            return;
        }
        let mut free = self.free.lock().unwrap_or_else(PoisonError::into_inner);
        if free.len() < KEEP {
            free.push(buffer);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buffers_come_back_when_the_last_slice_is_dropped() {
        let pool = BufferPool::new(8);
        let mut buffer = pool.take();
        buffer[..3].copy_from_slice(b"abc");
        let bytes = pool.lend(buffer, 3);
        let slice = bytes.slice(1..);
        drop(bytes);
        assert_eq!(pool.free.lock().unwrap().len(), 0, "a slice is still alive");
        assert_eq!(&slice[..], b"bc");
        drop(slice);
        assert_eq!(pool.free.lock().unwrap().len(), 1);
        assert_eq!(&pool.take()[..3], b"abc", "reused, not zeroed");
    }
}
