//! Throttling and injected faults: the per-(account, mode) and per-endpoint token
//! buckets, the deterministic choice of which request fails how, and the bodies that
//! break the connection.
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

use axum::body::{Body, Bytes};
use futures::StreamExt;

use super::rng::Rng;
use super::{Faults, Scope};

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
        if !self.has(rate) {
            return false;
        }
        self.tokens -= 1.0;
        true
    }

    /// Refills by elapsed wall time and says whether a token is there, taking none.
    fn has(&mut self, rate: f64) -> bool {
        let now = Instant::now();
        let elapsed = now.duration_since(self.last).as_secs_f64();
        self.last = now;
        self.tokens = (self.tokens + elapsed * rate).min(rate.max(1.0));
        self.tokens >= 1.0
    }
}

/// The endpoint of a path, as Stripe's per-endpoint limit counts it: the path with ids
/// replaced by `*` ([`stripe_limits::endpoint_of`], the rule the connector paces by).
pub(crate) fn endpoint(path: &str) -> String {
    stripe_limits::endpoint_of(path)
}

/// Takes a token from the account's bucket and the endpoint's, if both have one (a
/// refused request takes none).
pub(crate) fn within_limits(
    buckets: &Mutex<HashMap<(Scope, String), TokenBucket>>,
    scope: &Scope,
    path: &str,
    faults: &Faults,
) -> bool {
    let account = faults.rate_limit_per_sec.filter(|r| *r > 0.0);
    let endpoint_rate = faults.endpoint_rate_limit_per_sec.filter(|r| *r > 0.0);
    if account.is_none() && endpoint_rate.is_none() {
        return true;
    }
    let name = endpoint(path);
    // Files get Stripe's 20/25 of the endpoint limit (the fact lives in `stripe_limits`,
    // which the connector's client paces itself by too).
    let endpoint_rate = endpoint_rate.map(|rate| stripe_limits::endpoint_limit(&name, rate));
    let mut buckets = super::lock(buckets);
    let mut keys = Vec::new();
    if let Some(rate) = account {
        keys.push(((scope.clone(), String::new()), rate));
    }
    if let Some(rate) = endpoint_rate {
        keys.push(((scope.clone(), name), rate));
    }
    for (key, rate) in &keys {
        let bucket = buckets
            .entry(key.clone())
            .or_insert_with(|| TokenBucket::new(*rate));
        if !bucket.has(*rate) {
            return false;
        }
    }
    for (key, rate) in keys {
        if let Some(bucket) = buckets.get_mut(&key) {
            bucket.take(rate);
        }
    }
    true
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
    /// 429 with `Stripe-Should-Retry: false`.
    NoRetry429,
    /// 502 with a proxy's HTML page.
    ProxyHtml,
    /// A 200 whose JSON is cut half way, with framing that matches the cut.
    CutJson,
    /// A 200 sent slowly, in parts.
    Trickle,
    /// Nothing is sent for a while, then the connection closes.
    Stall,
    /// A list page with no objects and `has_more: true`.
    EmptyWithMore,
    /// A 200 far larger than any Stripe page.
    Oversized,
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
        // Drawn after the four above, so their choices stay what they were.
        (faults.no_retry_429_rate, Fault::NoRetry429),
        (faults.proxy_html_502_rate, Fault::ProxyHtml),
        (faults.cut_json_rate, Fault::CutJson),
        (faults.trickle_rate, Fault::Trickle),
        (faults.stall_rate, Fault::Stall),
        (faults.empty_page_with_more_rate, Fault::EmptyWithMore),
        (faults.oversized_rate, Fault::Oversized),
    ];
    for (index, (rate, fault)) in order.into_iter().enumerate() {
        let draw = rng.unit();
        let applies = index < 4 || counter >= faults.from_request;
        if applies && rate > 0.0 && draw < rate {
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

/// Whether the outage is on for this request; starts it when its request comes.
pub(crate) fn in_outage(
    faults: &Faults,
    started: &std::sync::Mutex<Option<Instant>>,
    counter: u64,
) -> bool {
    let Some(outage) = faults.outage else {
        return false;
    };
    if counter < outage.after_requests {
        return false;
    }
    let mut started = super::lock(started);
    let start = *started.get_or_insert_with(Instant::now);
    start.elapsed() < outage.duration
}

/// A body sent in 8 parts with `delay` between them.
pub(crate) fn trickled_body(full: String, delay: std::time::Duration) -> Body {
    let bytes = Bytes::from(full);
    let part = bytes.len().div_ceil(8).max(1);
    let parts: Vec<Bytes> = (0..bytes.len())
        .step_by(part)
        .map(|i| bytes.slice(i..(i + part).min(bytes.len())))
        .collect();
    let stream =
        futures::stream::iter(parts.into_iter().enumerate()).then(move |(i, p)| async move {
            if i > 0 {
                tokio::time::sleep(delay).await;
            }
            Ok::<Bytes, std::io::Error>(p)
        });
    Body::from_stream(stream)
}

/// A well-formed-looking list answer of `size` bytes, streamed in 64 KiB parts without
/// ever holding it whole.
pub(crate) fn oversized_body(size: usize) -> Body {
    const PART: usize = 64 * 1024;
    let head = Bytes::from_static(br#"{"object":"list","data":[{"id":"pad","padding":""#);
    let tail = Bytes::from_static(br#""}],"has_more":false,"url":"/v1/pad"}"#);
    let pad = Bytes::from(vec![b'a'; PART]);
    let parts = size.saturating_sub(head.len() + tail.len()).div_ceil(PART);
    let stream = futures::stream::iter(
        std::iter::once(head)
            .chain(std::iter::repeat_n(pad, parts))
            .chain(std::iter::once(tail))
            .map(Ok::<Bytes, std::io::Error>),
    );
    Body::from_stream(stream)
}

/// A proxy's 502 page.
pub(crate) const PROXY_502_PAGE: &str = "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n";

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
    fn endpoint_and_account_limits_both_refuse() {
        let buckets = Mutex::new(HashMap::new());
        let scope = Scope::platform_test();
        let faults = Faults {
            rate_limit_per_sec: Some(5.0),
            endpoint_rate_limit_per_sec: Some(3.0),
            ..Faults::default()
        };
        let take = |path: &str| within_limits(&buckets, &scope, path, &faults);
        // Three for charges, then its endpoint is empty; two more for customers, then
        // the account is.
        assert!(take("/v1/charges") && take("/v1/charges") && take("/v1/charges"));
        assert!(!take("/v1/charges"));
        assert!(take("/v1/customers") && take("/v1/customers/cus_Ab12"));
        assert!(!take("/v1/refunds"));
        assert_eq!(
            endpoint("/v1/invoices/in_1Mt9/lines"),
            "/v1/invoices/*/lines"
        );
        assert_eq!(endpoint("/v1/payment_intents"), "/v1/payment_intents");
    }

    #[test]
    fn bucket_allows_burst_then_refuses() {
        let mut b = TokenBucket::new(3.0);
        assert!(b.take(3.0) && b.take(3.0) && b.take(3.0));
        assert!(!b.take(3.0));
    }
}
