//! Page body buffers, reused from page to page.
//!
//! A page body is a few MB. Its activities are views into it (no copy per activity), so the buffer
//! lives until the last of them is written; then, instead of being freed, it comes back here for
//! the next page. A drain of a million activities reads ~200 bodies into a handful of buffers
//! already mapped, rather than faulting fresh memory in page by page for each.

use std::sync::{Arc, Mutex, Weak};

/// Buffers waiting for the next pages.
#[derive(Debug)]
pub struct BodyPool {
    spare: Mutex<Vec<Vec<u8>>>,
    /// At most this many are kept (the others are freed).
    keep: usize,
    /// A buffer larger than this (a page of very large activities) is freed, not kept.
    largest: usize,
}

impl BodyPool {
    pub fn new(keep: usize, largest: usize) -> Arc<BodyPool> {
        Arc::new(BodyPool { spare: Mutex::new(Vec::new()), keep, largest })
    }

    /// An empty buffer, with the capacity of an earlier body when one is spare.
    pub fn take(&self) -> Vec<u8> {
        self.spare.lock().ok().and_then(|mut spare| spare.pop()).unwrap_or_default()
    }

    /// Wraps a filled buffer: the buffer comes back to this pool when the last view of it drops.
    pub fn share(self: &Arc<Self>, body: Vec<u8>) -> PooledBody {
        PooledBody { body, pool: Arc::downgrade(self) }
    }

    fn give_back(&self, mut body: Vec<u8>) {
        if body.capacity() > self.largest {
            return;
        }
        body.clear();
        if let Ok(mut spare) = self.spare.lock()
            && spare.len() < self.keep
        {
            spare.push(body);
        }
    }

    #[cfg(test)]
    fn spare(&self) -> usize {
        self.spare.lock().map(|s| s.len()).unwrap_or(0)
    }
}

/// A body on loan from a [`BodyPool`]; `bytes::Bytes::from_owner` turns it into shared views.
#[derive(Debug)]
pub struct PooledBody {
    body: Vec<u8>,
    pool: Weak<BodyPool>,
}

impl AsRef<[u8]> for PooledBody {
    fn as_ref(&self) -> &[u8] {
        &self.body
    }
}

impl AsMut<[u8]> for PooledBody {
    fn as_mut(&mut self) -> &mut [u8] {
        &mut self.body
    }
}

impl Drop for PooledBody {
    fn drop(&mut self) {
        if let Some(pool) = self.pool.upgrade() {
            pool.give_back(std::mem::take(&mut self.body));
        }
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;

    #[test]
    fn a_buffer_returns_when_its_last_view_drops() {
        let pool = BodyPool::new(2, 1 << 20);
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
    fn keeps_only_so_many_and_never_the_largest() {
        let pool = BodyPool::new(1, 64);
        drop(pool.share(vec![0; 10]));
        drop(pool.share(vec![0; 10]));
        assert_eq!(pool.spare(), 1);
        let pool = BodyPool::new(4, 64);
        drop(pool.share(vec![0; 65]));
        assert_eq!(pool.spare(), 0);
    }

    #[test]
    fn a_body_outliving_its_pool_is_simply_freed() {
        let pool = BodyPool::new(1, 64);
        let body = Bytes::from_owner(pool.share(vec![1, 2, 3]));
        drop(pool);
        assert_eq!(&body[..], &[1, 2, 3]);
    }
}
