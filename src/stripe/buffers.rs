//! Page buffers, reused: a list page's body and its compacted copy are half a megabyte
//! each in Stripe's pretty-printed layout, allocated for every page. A few freed ones
//! are kept for the next pages, so that they are not fresh memory from the kernel each
//! time (page faults, zeroing) and the heap does not fragment around them
//! (`process::pin_mmap_threshold`): at most [`KEEP`] buffers of at most
//! [`KEEP_CAPACITY`] bytes, so memory stays flat.

use std::sync::Mutex;

/// Buffers kept for reuse: about the pages a sync has in hand at a time.
const KEEP: usize = 16;

/// A larger buffer (a rare huge answer) goes back to the allocator.
const KEEP_CAPACITY: usize = 2 * 1024 * 1024;

/// Freed buffers, kept for the next takers.
struct Pool(Mutex<Vec<Vec<u8>>>);

static POOL: Pool = Pool(Mutex::new(Vec::new()));

/// An empty buffer with room for `capacity` bytes, a kept one where there is one.
pub(super) fn take(capacity: usize) -> Vec<u8> {
    POOL.take(capacity)
}

/// `buffer` as `Bytes` that give it back for reuse when the last clone is dropped.
pub(super) fn into_bytes(buffer: Vec<u8>) -> bytes::Bytes {
    POOL.wrap(buffer)
}

impl Pool {
    fn take(&self, capacity: usize) -> Vec<u8> {
        let kept = self.0.lock().ok().and_then(|mut free| free.pop());
        let mut buffer = kept.unwrap_or_default();
        buffer.reserve(capacity);
        buffer
    }

    fn wrap(&'static self, buffer: Vec<u8>) -> bytes::Bytes {
        bytes::Bytes::from_owner(Kept { buffer, pool: self })
    }

    fn give_back(&self, mut buffer: Vec<u8>) {
        if buffer.capacity() > KEEP_CAPACITY {
            return;
        }
        buffer.clear();
        if let Ok(mut free) = self.0.lock()
            && free.len() < KEEP
        {
            free.push(buffer);
        }
    }
}

struct Kept {
    buffer: Vec<u8>,
    pool: &'static Pool,
}

impl AsRef<[u8]> for Kept {
    fn as_ref(&self) -> &[u8] {
        &self.buffer
    }
}

impl Drop for Kept {
    fn drop(&mut self) {
        self.pool.give_back(std::mem::take(&mut self.buffer));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A pool of the test's own: the shared one is used by the other tests at once.
    fn pool() -> &'static Pool {
        Box::leak(Box::new(Pool(Mutex::new(Vec::new()))))
    }

    #[test]
    fn a_dropped_page_buffer_is_reused_empty() {
        let pool = pool();
        let mut buffer = pool.take(1000);
        buffer.extend_from_slice(b"page");
        let address = buffer.as_ptr();
        let body = pool.wrap(buffer);
        assert_eq!(&body[..], b"page");
        let clone = body.clone();
        drop(body);
        assert_eq!(&clone[..], b"page", "a clone keeps the buffer alive");
        assert!(pool.0.lock().unwrap().is_empty());
        drop(clone);
        let again = pool.take(10);
        assert_eq!(again.as_ptr(), address, "the same buffer, reused");
        assert!(again.is_empty() && again.capacity() >= 1000);
    }

    #[test]
    fn the_pool_keeps_a_bounded_number_of_small_buffers() {
        let pool = pool();
        let bodies: Vec<_> = (0..KEEP + 3).map(|_| pool.wrap(pool.take(100))).collect();
        drop(bodies);
        assert_eq!(pool.0.lock().unwrap().len(), KEEP);
        drop(pool.wrap(Vec::with_capacity(KEEP_CAPACITY + 1)));
        let mut free = pool.0.lock().unwrap();
        assert_eq!(free.len(), KEEP);
        assert!(free.drain(..).all(|b| b.capacity() <= KEEP_CAPACITY));
    }
}
