//! Throttling and injected faults: the per-(account, mode) token bucket, the deterministic
//! choice of which request fails how, and the bodies that break the connection.
use std::time::Instant;

use axum::body::{Body, Bytes};

use super::Faults;
use super::rng::Rng;

/// A token bucket refilled at `rate` tokens per second, holding at most `max(rate, 1)`.
pub(crate) struct TokenBucket {
    tokens: f64,
    last: Instant,
}

impl TokenBucket {
    pub(crate) fn new(rate: f64) -> TokenBucket {
        TokenBucket {
            tokens: rate.max(1.0),
            last: Instant::now(),
        }
    }

    /// Takes one token if available (refilling by elapsed wall time first).
    pub(crate) fn take(&mut self, rate: f64) -> bool {
        let now = Instant::now();
        let elapsed = now.duration_since(self.last).as_secs_f64();
        self.last = now;
        self.tokens = (self.tokens + elapsed * rate).min(rate.max(1.0));
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// What happens to one request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Fault {
    None,
    /// Close the connection without a response.
    Drop,
    /// Send a 200 whose body stops half way.
    Truncate,
    /// 500 `api_error`.
    ServerError,
    /// 429 `rate_limit`.
    TooMany,
}

/// The fault of request number `counter`: independent pseudo-random draws from the seed, in
/// the order drop, truncate, server error, 429.
pub(crate) fn decide(faults: &Faults, seed: u64, counter: u64) -> Fault {
    let mut rng = Rng::derive(seed, &[counter, 0xFA_17]);
    let order = [
        (faults.drop_rate, Fault::Drop),
        (faults.truncate_rate, Fault::Truncate),
        (faults.server_error_rate, Fault::ServerError),
        (faults.too_many_requests_rate, Fault::TooMany),
    ];
    for (rate, fault) in order {
        let draw = rng.unit();
        if rate > 0.0 && draw < rate {
            return fault;
        }
    }
    Fault::None
}

fn broken() -> std::io::Error {
    std::io::Error::new(
        std::io::ErrorKind::ConnectionAborted,
        "emulator fault: connection dropped",
    )
}

/// A body that fails before sending anything: the connection is closed.
pub(crate) fn dropped_body() -> Body {
    Body::from_stream(futures::stream::iter([Err::<Bytes, _>(broken())]))
}

/// A body that sends the first half of `full` and then fails.
pub(crate) fn truncated_body(full: String) -> Body {
    let mut bytes = Bytes::from(full);
    let head = bytes.split_to(bytes.len() / 2);
    Body::from_stream(futures::stream::iter([Ok(head), Err(broken())]))
}

#[cfg(test)]
mod unit {
    use super::*;

    #[test]
    fn decisions_follow_rates() {
        let mut f = Faults {
            server_error_rate: 1.0,
            ..Faults::default()
        };
        assert!((0..50).all(|c| decide(&f, 1, c) == Fault::ServerError));
        f.server_error_rate = 0.0;
        assert!((0..50).all(|c| decide(&f, 1, c) == Fault::None));
        f.too_many_requests_rate = 0.5;
        let n = (0..1000)
            .filter(|c| decide(&f, 1, *c) == Fault::TooMany)
            .count();
        assert!((400..600).contains(&n), "{n}");
        assert_eq!(decide(&f, 1, 17), decide(&f, 1, 17));
    }

    #[test]
    fn bucket_allows_burst_then_refuses() {
        let mut b = TokenBucket::new(3.0);
        assert!(b.take(3.0) && b.take(3.0) && b.take(3.0));
        assert!(!b.take(3.0));
    }
}
