//! The emulator clock: a start time plus the seconds added by advances, optionally ticking
//! with wall time; and the HTTP `Date` rendering of it.
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Wall-clock unix seconds.
pub(crate) fn wall_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

pub(crate) struct Clock {
    start: i64,
    frozen: bool,
    started: Instant,
    offset: AtomicI64,
}

impl Clock {
    pub(crate) fn new(start: i64, frozen: bool) -> Clock {
        Clock {
            start,
            frozen,
            started: Instant::now(),
            offset: AtomicI64::new(0),
        }
    }

    /// The clock start (data sets end just before it).
    pub(crate) fn start(&self) -> i64 {
        self.start
    }

    pub(crate) fn now(&self) -> i64 {
        let ticked = if self.frozen {
            0
        } else {
            self.started.elapsed().as_secs() as i64
        };
        self.start + self.offset.load(Ordering::SeqCst) + ticked
    }

    pub(crate) fn advance(&self, seconds: i64) {
        self.offset.fetch_add(seconds.max(0), Ordering::SeqCst);
    }

    /// `now` as an HTTP-date (RFC 9110 IMF-fixdate).
    pub(crate) fn http_date(&self) -> String {
        http_date(self.now())
    }
}

pub(crate) fn http_date(unix: i64) -> String {
    let t = UNIX_EPOCH + Duration::from_secs(unix.max(0) as u64);
    httpdate::fmt_http_date(t)
}

#[cfg(test)]
mod unit {
    use super::*;

    #[test]
    fn frozen_clock_moves_only_by_advance() {
        let c = Clock::new(1_700_000_000, true);
        assert_eq!(c.now(), 1_700_000_000);
        c.advance(10);
        assert_eq!(c.now(), 1_700_000_010);
        assert_eq!(c.http_date(), "Tue, 14 Nov 2023 22:13:30 GMT");
    }
}
