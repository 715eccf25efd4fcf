//! The Stripe HTTP client: auth, `Stripe-Version` and `Stripe-Account` headers, a
//! client-side rate limit, a cap on requests in flight, retries with capped exponential
//! backoff, and Stripe's error bodies.
//!
//! It can only send GET requests: the connector never changes a merchant's data. It
//! knows nothing of streams, state or output.

mod buffers;
pub mod connect;
mod error;
#[cfg(test)]
mod fuzz;
pub mod limits;
pub mod scan;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::Duration;

use backon::BackoffBuilder;
use serde_json::value::RawValue;
use tokio::sync::Semaphore;

pub use error::Error;
use error::ErrorBody;

use crate::secret::{Secret, redact_secrets};

/// Attempts per request before giving up on 5xx, network errors and broken bodies (the
/// first try included): with backoff from 0.25 s doubling to 20 s, the last one comes
/// at least 31.75 s after the first, so a half-minute outage is ridden out.
const MAX_ATTEMPTS: u32 = 8;
/// Retries of one request on 429 (with `Retry-After`, or backoff up to 5 s): being
/// throttled is Stripe saying "slower", not "broken", so it has a budget of its own.
const MAX_THROTTLED_ATTEMPTS: u32 = 40;
/// How a throttled attempt's reason starts.
const THROTTLED: &str = "429 rate limited";
/// The longest one request may take by default (headers and body).
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(60);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// The largest answer the client reads. A Stripe page holds at most 100 objects, a few
/// hundred KiB even with expansions; an answer past this is not a Stripe page (a proxy
/// gone wrong, a misrouted download), and reading on would only grow memory.
pub const MAX_BODY_BYTES: usize = 32 * 1024 * 1024;

/// What the client needs to know.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    pub api_base: url::Url,
    pub key: Secret,
    pub stripe_version: String,
    /// Sent as `Stripe-Account` on every request when set.
    pub account: Option<String>,
    /// Requests per second for the account.
    pub rate_limit: f64,
    /// Requests per second for each endpoint (Files get 20/25 of it), within `rate_limit`.
    pub endpoint_rate_limit: f64,
    /// Requests in flight at once.
    pub max_in_flight: usize,
    /// The longest one request may take, headers and body: a stalled connection is
    /// abandoned after it and the request retried.
    pub request_timeout: Duration,
}

/// Counters a benchmark or a log line reads.
#[derive(Debug, Default)]
pub struct Stats {
    pub requests: AtomicU64,
    pub rate_limited: AtomicU64,
    pub retries: AtomicU64,
    /// The same per endpoint ([`limits::endpoint_of`]), for the progress display.
    endpoints: std::sync::Mutex<HashMap<String, EndpointStats>>,
}

/// Requests, 429s and retries of one endpoint.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct EndpointStats {
    pub requests: u64,
    pub rate_limited: u64,
    pub retries: u64,
}

impl Stats {
    /// The counters of `path`'s endpoint so far.
    pub fn endpoint(&self, path: &str) -> EndpointStats {
        let map = self.endpoints.lock().unwrap_or_else(|p| p.into_inner());
        map.get(&limits::endpoint_of(path))
            .copied()
            .unwrap_or_default()
    }

    /// Counts on `endpoint` ([`limits::endpoint_of`] of the request's path).
    fn count(&self, endpoint: &str, what: impl FnOnce(&mut EndpointStats)) {
        let mut map = self.endpoints.lock().unwrap_or_else(|p| p.into_inner());
        match map.get_mut(endpoint) {
            Some(stats) => what(stats),
            None => what(map.entry(endpoint.to_owned()).or_default()),
        }
    }
}

/// One page of a list endpoint: the body as Stripe sent it, with where its objects lie
/// in it and their heads (found by the one pass that also checked the body is a
/// complete list: [`scan`]), so the page is read once.
#[derive(Debug)]
pub struct Page {
    path: String,
    body: bytes::Bytes,
    /// The objects of `data`, in order.
    items: Vec<scan::Item>,
    has_more: bool,
}

/// A page's objects, as JSON text borrowed from the body, with their heads.
#[derive(Debug)]
pub struct PageRef<'a> {
    pub data: Vec<&'a str>,
    /// `data`'s heads, in the same order.
    pub heads: Vec<&'a scan::Head>,
    pub has_more: bool,
}

impl Page {
    /// Reads a list page's body once: `InvalidResponse` when it is not a Stripe list.
    ///
    /// # Errors
    /// `InvalidResponse` when the body is not a Stripe list.
    pub fn try_new(path: &str, body: bytes::Bytes) -> Result<Page, Error> {
        index_list(path, body).map_err(|attempt| match attempt {
            Attempt::Fail(err) => err,
            Attempt::Retry { why, .. } => Error::InvalidResponse {
                path: path.to_owned(),
                message: why,
            },
            Attempt::Done(_) => Error::InvalidResponse {
                path: path.to_owned(),
                message: "not a list".to_owned(),
            },
        })
    }

    /// The page's objects, without reading them again.
    ///
    /// # Errors
    /// `InvalidResponse` when the body is not UTF-8 (it was checked when the page was
    /// made, so this does not happen).
    pub fn parse(&self) -> Result<PageRef<'_>, Error> {
        let text = std::str::from_utf8(&self.body).map_err(|err| Error::InvalidResponse {
            path: self.path.clone(),
            message: err.to_string(),
        })?;
        let mut data = Vec::with_capacity(self.items.len());
        for item in &self.items {
            data.push(
                text.get(item.range.clone())
                    .ok_or_else(|| Error::InvalidResponse {
                        path: self.path.clone(),
                        message: "an object does not lie on character boundaries".to_owned(),
                    })?,
            );
        }
        Ok(PageRef {
            data,
            heads: self.items.iter().map(|item| &item.head).collect(),
            has_more: self.has_more,
        })
    }
}

/// A list body read once ([`scan::list`]): where its objects lie, their heads, and its
/// `has_more`; the pass is also the check that the body is complete JSON. A
/// pretty-printed body is kept compacted, so its records are on one line.
fn index_list(path: &str, body: bytes::Bytes) -> Result<Page, Attempt> {
    let text = std::str::from_utf8(&body).map_err(|err| {
        Attempt::Fail(Error::InvalidResponse {
            path: path.to_owned(),
            message: format!("the answer is not UTF-8: {err}"),
        })
    })?;
    let list = scan::list(text).map_err(|refusal| match refusal {
        // Broken JSON (a body cut short with framing that hid it) is worth another
        // try; a well-formed answer that is not what Stripe sends is not.
        scan::Refusal::Syntax(why) => Attempt::Retry {
            after: None,
            why: format!("the answer is not complete JSON ({why})"),
        },
        scan::Refusal::Shape(why) => Attempt::Fail(Error::InvalidResponse {
            path: path.to_owned(),
            message: why,
        }),
    })?;
    check_page(path, list.has_more, list.items.len()).map_err(Attempt::Fail)?;
    Ok(Page {
        path: path.to_owned(),
        body: list
            .compacted
            .map_or(body, |text| buffers::into_bytes(text.into_bytes())),
        items: list.items,
        has_more: list.has_more,
    })
}

/// Broken JSON (a body cut short with framing that hid it) is worth another try; a
/// well-formed answer that is not what Stripe sends is not.
fn json_failure(path: &str, err: &serde_json::Error) -> Attempt {
    if err.is_eof() || err.is_syntax() {
        Attempt::Retry {
            after: None,
            why: format!("the answer is not complete JSON ({err})"),
        }
    } else {
        Attempt::Fail(Error::InvalidResponse {
            path: path.to_owned(),
            message: err.to_string(),
        })
    }
}

/// A list page that says more follow but holds nothing has no cursor to go on from:
/// following it would ask the same page forever, stopping would silently lose the rest.
fn check_page(path: &str, has_more: bool, objects: usize) -> Result<(), Error> {
    if has_more && objects == 0 {
        return Err(Error::InvalidResponse {
            path: path.to_owned(),
            message: "the page says `has_more: true` but holds no objects, so there is no \
                      `starting_after` to continue from; the stream stops here instead of \
                      looping (is a proxy rewriting Stripe's answers?)"
                .to_owned(),
        });
    }
    Ok(())
}

/// A 2xx answer, checked: an object's body, or a list page indexed.
#[derive(Debug)]
enum Done {
    Body(bytes::Bytes),
    Page(Page),
}

impl Done {
    fn into_body(self) -> bytes::Bytes {
        match self {
            Done::Body(body) => body,
            Done::Page(page) => page.body,
        }
    }
}

/// What a 2xx body must be.
#[derive(Clone, Copy)]
enum Shape {
    /// One JSON object.
    Object,
    /// A list page: `data` and `has_more`.
    List,
}

/// Checks a 2xx object body before it is handed on (a list's is checked as it is
/// indexed, [`index_list`]).
fn check_body(path: &str, body: &[u8]) -> Option<Attempt> {
    serde_json::from_slice::<serde::de::IgnoredAny>(body)
        .err()
        .map(|err| json_failure(path, &err))
}

/// How a non-2xx answer ends: retried, or an error. `account` is the `Stripe-Account`
/// sent. Pure, so every status and body can be tried in tests.
fn classify_error(
    path: &str,
    account: Option<&str>,
    status: u16,
    should_retry: Option<&str>,
    retry_after: Option<Duration>,
    request_id: String,
    body: &[u8],
) -> Attempt {
    let detail = serde_json::from_slice::<ErrorBody>(body)
        .unwrap_or_default()
        .error;
    let message = redact_secrets(&detail.message.unwrap_or_else(|| {
        let text: String = String::from_utf8_lossy(body).chars().take(300).collect();
        if text.trim_start().starts_with('<') {
            format!("an HTML page, not Stripe's JSON (a proxy or load balancer answered): {text}")
        } else {
            text
        }
    }));
    let retry_allowed = should_retry != Some("false");
    match status {
        429 if retry_allowed => Attempt::Retry {
            after: retry_after,
            why: format!("{THROTTLED}: {message}"),
        },
        // Stripe says a retry would not help: one clear error, not a blind retry loop.
        429 => Attempt::Fail(Error::RateLimitedNoRetry {
            path: path.to_owned(),
            message,
            request_id,
        }),
        401 => Attempt::Fail(Error::Unauthorized { message }),
        403 if detail.code.as_deref() == Some("account_invalid") => {
            Attempt::Fail(Error::AccountInvalid {
                account: account.unwrap_or_default().to_owned(),
                message,
            })
        }
        400 | 403 if product_not_enabled(status, detail.code.as_deref(), &message) => {
            Attempt::Fail(Error::NotEnabled {
                path: path.to_owned(),
                status,
                message,
            })
        }
        403 => Attempt::Fail(Error::PermissionDenied {
            path: path.to_owned(),
            message,
        }),
        409 | 500..=599 if retry_allowed => Attempt::Retry {
            after: retry_after,
            why: format!("{status}: {message}"),
        },
        code if should_retry == Some("true") => Attempt::Retry {
            after: retry_after,
            why: format!("{code}: {message}"),
        },
        code => Attempt::Fail(Error::Rejected {
            path: path.to_owned(),
            status: code,
            message,
            request_id,
        }),
    }
}

/// Reads a body up to [`MAX_BODY_BYTES`]. `Ok(None)` when it is larger.
async fn read_capped(
    response: &mut reqwest::Response,
) -> Result<Option<bytes::Bytes>, reqwest::Error> {
    let length = response.content_length().unwrap_or(0);
    if length > MAX_BODY_BYTES as u64 {
        return Ok(None);
    }
    // The whole body in one allocation where its length is known: grown by doubling, a
    // page of 300 KB was copied nine times, each into fresh pages from the kernel.
    let mut body = buffers::take(length as usize);
    while let Some(chunk) = response.chunk().await? {
        if body.len() + chunk.len() > MAX_BODY_BYTES {
            return Ok(None);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(Some(buffers::into_bytes(body)))
}

/// A GET-only Stripe client. Cheap to clone; clones share the rate limit, the
/// in-flight cap and the counters.
#[derive(Clone)]
pub struct Client {
    http: reqwest::Client,
    config: Arc<ClientConfig>,
    /// The account's and each endpoint's rate limit.
    pacer: Arc<limits::Pacer>,
    in_flight: Arc<Semaphore>,
    /// Until when (ms since the epoch) every request waits after a 429.
    paused_until_ms: Arc<AtomicI64>,
    /// The server's clock (unix seconds) from the last response's `Date` header.
    server_time: Arc<AtomicI64>,
    /// Moving average of a request's round trip (send to body read), microseconds; 0
    /// before the first. The read planner sizes its ranges in flight by it.
    latency_us: Arc<AtomicU64>,
    stats: Arc<Stats>,
}

/// One request every `1 / rate` seconds per limit, no bursts: Stripe's own limiter is a
/// token bucket, and an even pace never empties it.
fn pacer(config: &ClientConfig) -> Result<Arc<limits::Pacer>, Error> {
    if !(config.rate_limit > 0.0 && config.endpoint_rate_limit > 0.0) {
        return Err(Error::Setup("the rate limits must be positive".to_owned()));
    }
    Ok(Arc::new(limits::Pacer::new(
        config.rate_limit,
        config.endpoint_rate_limit,
        config.max_in_flight,
    )))
}

/// How one attempt ended.
enum Attempt {
    Done(Done),
    Retry {
        after: Option<Duration>,
        why: String,
    },
    Fail(Error),
}

impl Client {
    /// # Errors
    /// `Setup` when the TLS stack cannot be initialised.
    pub fn try_new(config: ClientConfig) -> Result<Client, Error> {
        let http = reqwest::Client::builder()
            .timeout(config.request_timeout)
            .connect_timeout(CONNECT_TIMEOUT)
            .user_agent(concat!("source-stripe/", env!("CARGO_PKG_VERSION")))
            .pool_max_idle_per_host(config.max_in_flight.max(1))
            .build()
            .map_err(|err| Error::Setup(err.to_string()))?;
        Ok(Client {
            http,
            pacer: pacer(&config)?,
            in_flight: Arc::new(Semaphore::new(config.max_in_flight.max(1))),
            paused_until_ms: Arc::new(AtomicI64::new(0)),
            server_time: Arc::new(AtomicI64::new(0)),
            latency_us: Arc::new(AtomicU64::new(0)),
            stats: Arc::new(Stats::default()),
            config: Arc::new(config),
        })
    }

    /// A client for another account of the same platform (`Stripe-Account`), with a
    /// rate limit of its own (Stripe limits each account separately) and the same cap on
    /// requests in flight and the same counters.
    ///
    /// # Errors
    /// `Setup` when the rate limit is not positive.
    pub fn for_account(&self, account: Option<String>) -> Result<Client, Error> {
        let config = ClientConfig {
            account,
            ..(*self.config).clone()
        };
        Ok(Client {
            http: self.http.clone(),
            pacer: pacer(&config)?,
            in_flight: self.in_flight.clone(),
            paused_until_ms: Arc::new(AtomicI64::new(0)),
            server_time: Arc::new(AtomicI64::new(0)),
            latency_us: self.latency_us.clone(),
            stats: self.stats.clone(),
            config: Arc::new(config),
        })
    }

    /// A client that sends `version` as `Stripe-Version` (for an endpoint that only
    /// exists from that version on), sharing everything else with this one: the rate
    /// limit, the in-flight cap, the pause after a 429, the clock and the counters.
    pub fn with_stripe_version(&self, version: &str) -> Client {
        Client {
            config: Arc::new(ClientConfig {
                stripe_version: version.to_owned(),
                ..(*self.config).clone()
            }),
            ..self.clone()
        }
    }

    /// The `Stripe-Account` this client sends, if any.
    pub fn account(&self) -> Option<&str> {
        self.config.account.as_deref()
    }

    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// Requests per second this client allows itself for the account.
    pub fn rate_limit(&self) -> f64 {
        self.config.rate_limit
    }

    /// Requests per second this client allows itself on `path`'s endpoint.
    pub fn endpoint_rate(&self, path: &str) -> f64 {
        self.pacer.endpoint_rate(&limits::endpoint_of(path))
    }

    /// Says how many seconds of reads `path`'s endpoint has left: when the account's
    /// rate is short, the endpoint with the most goes first ([`limits::Pacer`]).
    pub fn set_priority(&self, path: &str, secs_left: f64) {
        self.pacer
            .set_priority(&limits::endpoint_of(path), secs_left);
    }

    /// The cap on requests in flight.
    pub fn max_in_flight(&self) -> usize {
        self.config.max_in_flight.max(1)
    }

    /// The moving average of a request's round trip, `None` before the first answer.
    pub fn latency(&self) -> Option<Duration> {
        match self.latency_us.load(Ordering::Relaxed) {
            0 => None,
            us => Some(Duration::from_micros(us)),
        }
    }

    fn record_latency(&self, took: Duration) {
        let sample = (took.as_micros() as u64).max(1);
        // A lock-free moving average (weight 1/8): the planner needs a rough figure. The
        // closure always returns `Some`, so the update cannot fail.
        self.latency_us
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |old| {
                Some(if old == 0 {
                    sample
                } else {
                    old - old / 8 + sample / 8
                })
            })
            .ok();
    }

    /// The server's clock from the latest response, if any answered with a `Date`.
    pub fn server_time(&self) -> Option<i64> {
        match self.server_time.load(Ordering::Relaxed) {
            0 => None,
            t => Some(t),
        }
    }

    /// GET a single object (e.g. `/v1/account`) as JSON.
    ///
    /// # Errors
    /// See [`Client::get`].
    pub async fn get_object(&self, path: &str) -> Result<Box<RawValue>, Error> {
        let body = self.get_shaped(path, &[], Shape::Object).await?.into_body();
        serde_json::from_slice(&body).map_err(|err| Error::InvalidResponse {
            path: path.to_owned(),
            message: err.to_string(),
        })
    }

    /// GET one page of a list endpoint.
    ///
    /// # Errors
    /// See [`Client::get`].
    pub async fn list(&self, path: &str, query: &[(&str, String)]) -> Result<Page, Error> {
        match self.get_shaped(path, query, Shape::List).await? {
            Done::Page(page) => Ok(page),
            // `Shape::List` answers are indexed pages; a body would be indexed here.
            Done::Body(body) => Page::try_new(path, body),
        }
    }

    /// GET `path` with `query`, under the rate limit and the in-flight cap, retrying
    /// 429s (unless `Stripe-Should-Retry: false`), 5xx and network errors up to
    /// [`MAX_ATTEMPTS`] times with capped exponential backoff (or `Retry-After`).
    ///
    /// Cancel-safe: dropping the future abandons the request.
    ///
    /// # Errors
    /// `Unauthorized` (401), `AccountInvalid` / `PermissionDenied` (403), `Rejected`
    /// (other 4xx), `Exhausted` when retries ran out.
    pub async fn get(&self, path: &str, query: &[(&str, String)]) -> Result<bytes::Bytes, Error> {
        Ok(self
            .get_shaped(path, query, Shape::Object)
            .await?
            .into_body())
    }

    async fn get_shaped(
        &self,
        path: &str,
        query: &[(&str, String)],
        shape: Shape,
    ) -> Result<Done, Error> {
        let mut url = self.config.api_base.clone();
        url.set_path(path);
        if !query.is_empty() {
            let mut pairs = url.query_pairs_mut();
            for (name, value) in query {
                pairs.append_pair(name, value);
            }
        }
        let backoff = |times: u32, max: Duration| {
            backon::ExponentialBuilder::default()
                .with_min_delay(Duration::from_millis(250))
                .with_max_delay(max)
                .with_jitter()
                .with_max_times(times as usize)
                .build()
        };
        // Failures (5xx, network, broken bodies) and throttling (429) have budgets of
        // their own: a 429 storm only says "slower", and must not use up the attempts
        // an outage needs, nor the other way round.
        let mut failed = backoff(MAX_ATTEMPTS - 1, Duration::from_secs(20));
        let mut throttled = backoff(MAX_THROTTLED_ATTEMPTS, Duration::from_secs(5));
        let mut attempts = 0;
        loop {
            attempts += 1;
            let outcome = self.attempt(path, url.clone(), shape).await;
            let (after, why) = match outcome {
                Attempt::Done(body) => return Ok(body),
                Attempt::Fail(err) => return Err(err),
                Attempt::Retry { after, why } => (after, why),
            };
            let next = if why.starts_with(THROTTLED) {
                throttled.next()
            } else {
                failed.next()
            };
            // Retry-After wins over the backoff, but never extends the budget.
            let delay = next.map(|next| after.unwrap_or(next));
            let Some(delay) = delay else {
                return Err(Error::Exhausted {
                    path: path.to_owned(),
                    attempts,
                    last: why,
                });
            };
            self.stats.retries.fetch_add(1, Ordering::Relaxed);
            self.stats
                .count(&limits::endpoint_of(path), |s| s.retries += 1);
            tracing::debug!(path, attempts, ?delay, why, "retrying");
            tokio::time::sleep(delay).await;
        }
    }

    async fn attempt(&self, path: &str, url: url::Url, shape: Shape) -> Attempt {
        let pause = self.paused_until_ms.load(Ordering::Relaxed) - crate::protocol::now_ms();
        if pause > 0 {
            tokio::time::sleep(Duration::from_millis(pause as u64)).await;
        }
        // The endpoint's share of the in-flight slots first, so requests waiting for
        // their endpoint's pace never hold the slots other endpoints could use.
        let endpoint = limits::endpoint_of(path);
        let endpoint_slots = self.pacer.endpoint_slots(&endpoint);
        let (Ok(_endpoint_permit), Ok(_permit)) = (
            endpoint_slots.acquire().await,
            self.in_flight.acquire().await,
        ) else {
            return Attempt::Fail(Error::Setup("the request limiter was closed".to_owned()));
        };
        self.pacer.ready(&endpoint).await;
        self.stats.requests.fetch_add(1, Ordering::Relaxed);
        self.stats.count(&endpoint, |s| s.requests += 1);
        let mut request = self
            .http
            .get(url)
            .bearer_auth(self.config.key.expose())
            .header("Stripe-Version", &self.config.stripe_version);
        if let Some(account) = &self.config.account {
            request = request.header("Stripe-Account", account);
        }
        let sent = tokio::time::Instant::now();
        tracing::trace!(endpoint, "sent");
        let mut response = match request.send().await {
            Ok(response) => response,
            Err(err) => {
                return Attempt::Retry {
                    after: None,
                    why: redact_secrets(&format!("network error: {err}")),
                };
            }
        };
        if let Some(date) = response
            .headers()
            .get(reqwest::header::DATE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| httpdate::parse_http_date(v).ok())
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        {
            self.server_time
                .store(date.as_secs() as i64, Ordering::Relaxed);
        }
        let status = response.status();
        let header = |name: &str| {
            response
                .headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        let should_retry = header("stripe-should-retry");
        let retry_after = header("retry-after")
            .and_then(|v| v.trim().parse::<f64>().ok())
            .filter(|secs| secs.is_finite())
            .map(|secs| Duration::from_secs_f64(secs.clamp(0.0, 60.0)));
        let request_id = header("request-id").unwrap_or_default();
        let body = match read_capped(&mut response).await {
            Ok(Some(body)) => {
                self.record_latency(sent.elapsed());
                body
            }
            Ok(None) => {
                return Attempt::Fail(Error::InvalidResponse {
                    path: path.to_owned(),
                    message: format!(
                        "the answer is larger than {} MiB, far more than any Stripe page; \
                         stopped reading it (is api_base pointing at Stripe or a proxy of it?)",
                        MAX_BODY_BYTES / (1024 * 1024)
                    ),
                });
            }
            Err(err) => {
                return Attempt::Retry {
                    after: None,
                    why: redact_secrets(&format!("reading the body failed: {err}")),
                };
            }
        };
        if status.is_success() {
            return match shape {
                Shape::Object => check_body(path, &body).unwrap_or(Attempt::Done(Done::Body(body))),
                Shape::List => match index_list(path, body) {
                    Ok(page) => Attempt::Done(Done::Page(page)),
                    Err(attempt) => attempt,
                },
            };
        }
        let outcome = classify_error(
            path,
            self.config.account.as_deref(),
            status.as_u16(),
            should_retry.as_deref(),
            retry_after,
            request_id,
            &body,
        );
        if status.as_u16() == 429 && matches!(outcome, Attempt::Retry { .. }) {
            self.stats.rate_limited.fetch_add(1, Ordering::Relaxed);
            self.stats
                .count(&limits::endpoint_of(path), |s| s.rate_limited += 1);
            // Everyone slows down, not just this request: Stripe counts the account.
            let wait = retry_after.unwrap_or(Duration::from_millis(500));
            let until = crate::protocol::now_ms() + wait.as_millis() as i64;
            self.paused_until_ms.fetch_max(until, Ordering::Relaxed);
        }
        outcome
    }
}

/// Whether an error answer says the account does not use the product behind the
/// endpoint, rather than that the key lacks a permission. Stripe's two shapes: Issuing
/// (and Treasury) endpoints on an account without it answer 400 `invalid_request_error`
/// "Your account is not set up to use Issuing. Please visit …"; Connect endpoints on an
/// account that is not a platform answer 403 with code `platform_account_required`
/// ("Only Stripe Connect platforms can work with other accounts."). A permission
/// error (403 "does not have the required permissions") is neither.
fn product_not_enabled(status: u16, code: Option<&str>, message: &str) -> bool {
    match status {
        400 => message.contains("is not set up to use"),
        403 => code == Some("platform_account_required"),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn product_not_enabled_is_told_from_a_permission_error() {
        let detail = |code: Option<&'static str>| code;
        let issuing = "Your account is not set up to use Issuing. Please visit https://dashboard.stripe.com/issuing/overview to get started.";
        assert!(product_not_enabled(400, detail(None), issuing));
        assert!(product_not_enabled(
            403,
            detail(Some("platform_account_required")),
            "Only Stripe Connect platforms can work with other accounts."
        ));
        let permission = "The provided key 'rk_test_***1234' does not have the required permissions for this endpoint on account 'acct_1'.";
        assert!(!product_not_enabled(403, detail(None), permission));
        assert!(!product_not_enabled(
            403,
            detail(Some("account_invalid")),
            permission
        ));
        assert!(!product_not_enabled(
            400,
            detail(Some("parameter_unknown")),
            "Received unknown parameter: x"
        ));
        assert!(!product_not_enabled(404, detail(None), issuing));
    }
}
