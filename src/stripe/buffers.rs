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

static FREE: Mutex<Vec<Vec<u8>>> = Mutex::new(Vec::new());

/// An empty buffer with room for `capacity` bytes, a kept one where there is one.
pub(super) fn take(capacity: usize) -> Vec<u8> {
    let kept = FREE.lock().ok().and_then(|mut free| free.pop());
    let mut buffer = kept.unwrap_or_default();
    buffer.reserve(capacity);
    buffer
}

/// `buffer` as `Bytes` that give it back for reuse when the last clone is dropped.
pub(super) fn into_bytes(buffer: Vec<u8>) -> bytes::Bytes {
    bytes::Bytes::from_owner(Kept(buffer))
}

struct Kept(Vec<u8>);

impl AsRef<[u8]> for Kept {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

impl Drop for Kept {
    fn drop(&mut self) {
        let mut buffer = std::mem::take(&mut self.0);
        if buffer.capacity() > KEEP_CAPACITY {
            return;
        }
        buffer.clear();
        if let Ok(mut free) = FREE.lock()
            && free.len() < KEEP
        {
            free.push(buffer);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dropped_page_buffer_is_reused_empty() {
        let mut buffer = take(1000);
        buffer.extend_from_slice(b"page");
        let address = buffer.as_ptr();
        let body = into_bytes(buffer);
        assert_eq!(&body[..], b"page");
        let clone = body.clone();
        drop(body);
        assert_eq!(&clone[..], b"page", "a clone keeps the buffer alive");
        drop(clone);
        // Other tests take buffers too: look for this one among a few.
        let taken: Vec<Vec<u8>> = (0..KEEP).map(|_| take(10)).collect();
        let again = taken
            .iter()
            .find(|b| b.as_ptr() == address)
            .expect("reused");
        assert!(again.is_empty() && again.capacity() >= 1000);
    }
}
