//! Checkpoint bookkeeping of one stream's read: which windows of its `created` range are
//! complete, and the point a STATE may claim.
//!
//! A window is complete once every range read in it is (the planner splits ranges, so a
//! window can hold several). A STATE may only claim the end of a window when it and every
//! window below it are complete: everything created before that point has been read.
//! This is the one place that decides it; it knows nothing of requests or output.

/// The windows of one stream, oldest first.
#[derive(Debug)]
pub(crate) struct Checkpoints {
    /// End of each window (unix seconds, exclusive): what a STATE claims once it and the
    /// windows below are done.
    ends: Vec<i64>,
    /// Ranges still being read in each window.
    outstanding: Vec<usize>,
    /// Windows below this one are complete and claimed.
    next: usize,
}

impl Checkpoints {
    /// Windows ending at `ends` (ascending), each with one range to read.
    pub(crate) fn new(ends: Vec<i64>) -> Checkpoints {
        let outstanding = vec![1; ends.len()];
        Checkpoints {
            ends,
            outstanding,
            next: 0,
        }
    }

    /// A range of `window` was split in two: one more to wait for.
    pub(crate) fn split(&mut self, window: usize) {
        if let Some(count) = self.outstanding.get_mut(window) {
            *count += 1;
        }
    }

    /// A range of `window` is complete. Returns the point a STATE may now claim, when
    /// that moved.
    pub(crate) fn done(&mut self, window: usize) -> Option<i64> {
        if let Some(count) = self.outstanding.get_mut(window) {
            *count = count.saturating_sub(1);
        }
        let before = self.next;
        while self.next < self.ends.len() && self.outstanding[self.next] == 0 {
            self.next += 1;
        }
        (self.next > before).then(|| self.ends[self.next - 1])
    }

    /// Every window is complete.
    pub(crate) fn finished(&self) -> bool {
        self.next == self.ends.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_state_waits_for_every_window_below() {
        let mut c = Checkpoints::new(vec![10, 20, 30]);
        c.split(1);
        assert_eq!(c.done(2), None, "windows 0 and 1 are not done");
        assert_eq!(c.done(1), None, "window 1 has a second range");
        assert_eq!(c.done(0), Some(10));
        assert_eq!(c.done(1), Some(30), "1 and 2 were both waiting on it");
        assert!(c.finished());
    }
}
