//! Large buffers reused from one use to the next: page bodies, and the gzip bodies of objects.
//!
//! A page body is a few MB and an object's gzip body a few hundred KB, both above the allocator's
//! mapping threshold (src/memory.rs): freed, each would go back to the kernel, and the next one of
//! its kind would be a fresh mapping faulted in page by page as it is written. Instead, a buffer on
//! loan ([`Pooled`]) comes back here when its last view drops. A drain of a million activities
//! reads ~200 bodies and writes ~800 objects into a handful of buffers already mapped.

use std::sync::{Arc, Mutex, Weak};

/// Buffers waiting for their next use.
#[derive(Debug)]
pub struct BufferPool {
    spare: Mutex<Vec<Vec<u8>>>,
    /// At most this many are kept (the others are freed).
    keep: usize,
    /// A buffer larger than this (a page of very large activities) is freed, not kept.
    largest: usize,
}

impl BufferPool {
    pub fn new(keep: usize, largest: usize) -> Arc<BufferPool> {
        Arc::new(BufferPool { spare: Mutex::new(Vec::new()), keep, largest })
    }

    /// An empty buffer, with the capacity of an earlier one when one is spare.
    pub fn take(&self) -> Vec<u8> {
        let mut buffer = self.pop().unwrap_or_default();
        buffer.clear();
        buffer
    }

    /// A buffer of at least `len` initialised bytes, for a writer that needs a slice (a
    /// compressor's output). Its contents are unspecified: what an earlier use left, or zeros.
    /// Only what the new use writes is touched: a spare buffer keeps the length it had, and one
    /// too short is replaced by a fresh one, whose zeros are the kernel's (never cleared byte by
    /// byte, so the pages nobody writes stay unmapped).
    pub fn take_len(&self, len: usize) -> Vec<u8> {
        match self.pop() {
            Some(buffer) if buffer.len() >= len => buffer,
            _ => vec![0; len],
        }
    }

    /// Wraps a filled buffer: it comes back to this pool when the last view of it drops.
    pub fn share(self: &Arc<Self>, buffer: Vec<u8>) -> Pooled {
        let len = buffer.len();
        self.share_prefix(buffer, len)
    }

    /// Wraps the first `len` bytes of `buffer` (all of it if `len` is longer): the rest stays
    /// initialised for the buffer's next use, not written or handed back to the allocator.
    pub fn share_prefix(self: &Arc<Self>, buffer: Vec<u8>, len: usize) -> Pooled {
        let len = len.min(buffer.len());
        Pooled { buffer, len, pool: Arc::downgrade(self) }
    }

    fn pop(&self) -> Option<Vec<u8>> {
        self.spare.lock().ok().and_then(|mut spare| spare.pop())
    }

    fn give_back(&self, buffer: Vec<u8>) {
        if buffer.capacity() > self.largest {
            return;
        }
        if let Ok(mut spare) = self.spare.lock()
            && spare.len() < self.keep
        {
            spare.push(buffer);
        }
    }

    #[cfg(test)]
    fn spare(&self) -> usize {
        self.spare.lock().map(|s| s.len()).unwrap_or(0)
    }
}

/// A buffer on loan from a [`BufferPool`]; `bytes::Bytes::from_owner` turns it into shared views.
#[derive(Debug)]
pub struct Pooled {
    buffer: Vec<u8>,
    /// The bytes shared: the buffer's first `len`.
    len: usize,
    pool: Weak<BufferPool>,
}

impl AsRef<[u8]> for Pooled {
    fn as_ref(&self) -> &[u8] {
        &self.buffer[..self.len]
    }
}

impl AsMut<[u8]> for Pooled {
    fn as_mut(&mut self) -> &mut [u8] {
        &mut self.buffer[..self.len]
    }
}

impl Drop for Pooled {
    fn drop(&mut self) {
        if let Some(pool) = self.pool.upgrade() {
            pool.give_back(std::mem::take(&mut self.buffer));
        }
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;

    #[test]
    fn a_buffer_returns_when_its_last_view_drops() {
        let pool = BufferPool::new(2, 1 << 20);
        let mut body = pool.take();
        body.extend_from_slice(b"{\"data\":[]}");
        let whole = Bytes::from_owner(pool.share(body));
        let part = whole.slice(1..7);
        drop(whole);
        assert_eq!(pool.spare(), 0, "a view is still alive");
        assert_eq!(&part[..], b"\"data\"");
        drop(part);
        assert_eq!(pool.spare(), 1);
        let again = pool.take();
        assert!(again.is_empty() && again.capacity() >= 11, "the buffer comes back cleared");
    }

    #[test]
    fn a_prefix_is_shared_and_the_whole_buffer_comes_back() {
        let pool = BufferPool::new(2, 1 << 20);
        let mut out = pool.take_len(16);
        assert_eq!(out, vec![0; 16], "a fresh buffer is zeros");
        out[..3].copy_from_slice(b"abc");
        let shared = Bytes::from_owner(pool.share_prefix(out, 3));
        assert_eq!(&shared[..], b"abc");
        drop(shared);
        let again = pool.take_len(8);
        assert_eq!(again.len(), 16, "a spare buffer keeps its length");
        assert_eq!(&again[..3], b"abc", "and is not cleared first");
        drop(again);
        assert_eq!(pool.spare(), 0, "taken and dropped unshared: freed, not returned");
        drop(pool.share(vec![7; 4]));
        let longer = pool.take_len(32);
        assert_eq!(longer, vec![0; 32], "a spare too short is replaced by a fresh buffer");
        assert_eq!(&Bytes::from_owner(pool.share_prefix(longer, 99))[..], &[0; 32][..]);
    }

    #[test]
    fn keeps_only_so_many_and_never_the_largest() {
        let pool = BufferPool::new(1, 64);
        drop(pool.share(vec![0; 10]));
        drop(pool.share(vec![0; 10]));
        assert_eq!(pool.spare(), 1);
        let pool = BufferPool::new(4, 64);
        drop(pool.share(vec![0; 65]));
        assert_eq!(pool.spare(), 0);
    }

    #[test]
    fn a_buffer_outliving_its_pool_is_simply_freed() {
        let pool = BufferPool::new(1, 64);
        let body = Bytes::from_owner(pool.share(vec![1, 2, 3]));
        drop(pool);
        assert_eq!(&body[..], &[1, 2, 3]);
    }
}
