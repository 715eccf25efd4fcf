//! Checkpoints of a read over a stream's `created` range: which windows are complete, and
//! the state that lets a resumed sync read only the rest.
//!
//! Windows are read concurrently and finish in any order. A [`Checkpoint`] keeps the
//! complete `[gte, lt)` ranges, merged; its state is the low-water mark (everything below
//! it is read) plus the complete ranges above it (`created_done`), so a sync killed at any
//! moment resumes by reading only the windows that were in flight. It owns no I/O: the
//! read engine tells it when a range is done and sends the state it returns.
//!
//! The state shapes, per plan (see `state.rs` for how they are read back):
//! - full refresh: `{"created_done": [[gte, lt], …]}` while it runs, and Airbyte's
//!   resumable full refresh marker `{"__ab_full_refresh_sync_complete": true}` when done;
//! - incremental by `created`: `{"created": LOW, "created_done": […]}`, `{"created": TO}`
//!   when done;
//! - first read of an event-driven stream: `{"updated": EVENTS_FROM,
//!   "backfill_from_created": LOW, "created_done": […]}`, `{"updated": EVENTS_FROM}` when
//!   done.

use serde_json::{Value, json};

use super::state::{FULL_REFRESH_COMPLETE, ranges_json};

/// What the read is, for the shape of its state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// A full refresh: no cursor.
    Full,
    /// Incremental by `created`.
    Created,
    /// The first full read of an event-driven stream; events from `events_from` follow.
    Backfill { events_from: i64 },
}

/// The progress of one read over `[from, to)`.
#[derive(Debug, Clone)]
pub(crate) struct Checkpoint {
    kind: Kind,
    from: i64,
    to: i64,
    /// Complete ranges within `[from, to)`: sorted, disjoint, not touching.
    done: Vec<(i64, i64)>,
}

impl Checkpoint {
    /// A read of `[from, to)` of which the ranges `done` (from a saved state) are complete.
    pub(crate) fn new(kind: Kind, from: i64, to: i64, done: Vec<(i64, i64)>) -> Checkpoint {
        let mut checkpoint = Checkpoint {
            kind,
            from,
            to,
            done: Vec::new(),
        };
        for (gte, lt) in done {
            checkpoint.done(gte, lt);
        }
        checkpoint
    }

    /// The ranges still to read, oldest first.
    pub(crate) fn todo(&self) -> Vec<(i64, i64)> {
        let mut out = Vec::new();
        let mut at = self.from;
        for &(gte, lt) in &self.done {
            if gte > at {
                out.push((at, gte));
            }
            at = at.max(lt);
        }
        if at < self.to {
            out.push((at, self.to));
        }
        out
    }

    /// Records that every object created in `[gte, lt)` has been read (clipped to the
    /// read's range).
    pub(crate) fn done(&mut self, gte: i64, lt: i64) {
        let (gte, lt) = (gte.max(self.from), lt.min(self.to));
        if gte >= lt {
            return;
        }
        self.done.push((gte, lt));
        self.done = merge(std::mem::take(&mut self.done));
    }

    pub(crate) fn kind(&self) -> Kind {
        self.kind
    }

    /// Whether the whole range is read.
    pub(crate) fn is_complete(&self) -> bool {
        self.todo().is_empty()
    }

    /// Everything below this is read.
    fn low_water(&self) -> i64 {
        match self.done.first() {
            Some(&(gte, lt)) if gte <= self.from => lt,
            _ => self.from,
        }
    }

    /// The complete ranges above the low-water mark.
    fn above(&self) -> &[(i64, i64)] {
        match self.done.first() {
            Some(&(gte, _)) if gte <= self.from => &self.done[1..],
            _ => &self.done,
        }
    }

    /// The stream state that says what is read so far.
    pub(crate) fn state(&self) -> Value {
        let complete = self.is_complete();
        let mut state = match self.kind {
            Kind::Full if complete => return json!({ FULL_REFRESH_COMPLETE: true }),
            Kind::Full => return json!({ "created_done": ranges_json(&self.done) }),
            Kind::Created if complete => return json!({ "created": self.to.max(self.from) }),
            Kind::Created => json!({ "created": self.low_water() }),
            Kind::Backfill { events_from } if complete => {
                return json!({ "updated": events_from });
            }
            Kind::Backfill { events_from } => {
                json!({ "updated": events_from, "backfill_from_created": self.low_water() })
            }
        };
        if !self.above().is_empty() {
            state["created_done"] = ranges_json(self.above());
        }
        state
    }
}

/// Sorts ranges and merges those that overlap or touch.
pub(crate) fn merge(mut ranges: Vec<(i64, i64)>) -> Vec<(i64, i64)> {
    ranges.sort_unstable();
    let mut out: Vec<(i64, i64)> = Vec::with_capacity(ranges.len());
    for (gte, lt) in ranges {
        match out.last_mut() {
            Some(last) if gte <= last.1 => last.1 = last.1.max(lt),
            _ => out.push((gte, lt)),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn out_of_order_windows_keep_a_precise_state() {
        let mut cp = Checkpoint::new(Kind::Backfill { events_from: 100 }, 0, 100, Vec::new());
        assert_eq!(cp.todo(), vec![(0, 100)]);
        cp.done(40, 60);
        cp.done(80, 100);
        assert_eq!(
            cp.state(),
            json!({"updated": 100, "backfill_from_created": 0, "created_done": [[40, 60], [80, 100]]})
        );
        assert_eq!(cp.todo(), vec![(0, 40), (60, 80)]);
        cp.done(0, 40);
        assert_eq!(
            cp.state(),
            json!({"updated": 100, "backfill_from_created": 60, "created_done": [[80, 100]]})
        );
        cp.done(60, 80);
        assert!(cp.is_complete());
        assert_eq!(cp.state(), json!({"updated": 100}));
    }

    #[test]
    fn a_saved_state_resumes_with_only_the_gaps() {
        let cp = Checkpoint::new(Kind::Created, 10, 200, vec![(50, 70), (150, 250)]);
        assert_eq!(cp.todo(), vec![(10, 50), (70, 150)]);
        assert_eq!(
            cp.state(),
            json!({"created": 10, "created_done": [[50, 70], [150, 200]]})
        );
        let mut full = Checkpoint::new(Kind::Full, 0, 100, vec![(0, 30)]);
        assert_eq!(full.state(), json!({"created_done": [[0, 30]]}));
        full.done(-5, 500);
        assert_eq!(full.state(), json!({FULL_REFRESH_COMPLETE: true}));
    }

    #[test]
    fn merge_joins_touching_and_overlapping_ranges() {
        assert_eq!(
            merge(vec![(5, 7), (0, 2), (2, 3), (6, 9), (20, 21)]),
            vec![(0, 3), (5, 9), (20, 21)]
        );
        assert!(merge(Vec::new()).is_empty());
    }

    #[test]
    fn an_empty_range_is_complete_from_the_start() {
        let cp = Checkpoint::new(Kind::Created, 500, 400, Vec::new());
        assert!(cp.is_complete());
        assert_eq!(cp.state(), json!({"created": 500}));
    }
}
