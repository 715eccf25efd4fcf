//! The Stripe HTTP client: auth, `Stripe-Version` and `Stripe-Account` headers, a
//! client-side rate limit, a cap on requests in flight, retries with capped exponential
//! backoff, and Stripe's error bodies.
//!
//! It can only send GET requests: the connector never changes a merchant's data. It
//! knows nothing of streams, state or output.

pub mod connect;
mod error;

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::Duration;

use backon::BackoffBuilder;
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use serde::Deserialize;
use serde_json::value::RawValue;
use tokio::sync::Semaphore;

pub use error::Error;
use error::ErrorBody;

use crate::secret::{Secret, redact_secrets};

/// Attempts per request before giving up (the first try included).
const MAX_ATTEMPTS: u32 = 8;
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// What the client needs to know.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    pub api_base: url::Url,
    pub key: Secret,
    pub stripe_version: String,
    /// Sent as `Stripe-Account` on every request when set.
    pub account: Option<String>,
    /// Requests per second.
    pub rate_limit: f64,
    /// Requests in flight at once.
    pub max_in_flight: usize,
}

/// Counters a benchmark or a log line reads.
#[derive(Debug, Default)]
pub struct Stats {
    pub requests: AtomicU64,
    pub rate_limited: AtomicU64,
    pub retries: AtomicU64,
}

/// One page of a list endpoint: the body as Stripe sent it. [`Page::parse`] reads it
/// without copying the objects.
#[derive(Debug)]
pub struct Page {
    path: String,
    body: bytes::Bytes,
}

/// A parsed page; its objects borrow the body's JSON text.
#[derive(Debug, Deserialize)]
pub struct PageRef<'a> {
    #[serde(borrow)]
    pub data: Vec<&'a RawValue>,
    pub has_more: bool,
}

impl Page {
    /// # Errors
    /// `InvalidResponse` when the body is not a Stripe list.
    pub fn parse(&self) -> Result<PageRef<'_>, Error> {
        serde_json::from_slice(&self.body).map_err(|err| Error::InvalidResponse {
            path: self.path.clone(),
            message: err.to_string(),
        })
    }
}

/// A GET-only Stripe client. Cheap to clone; clones share the rate limit, the
/// in-flight cap and the counters.
#[derive(Clone)]
pub struct Client {
    http: reqwest::Client,
    config: Arc<ClientConfig>,
    limiter: Arc<DefaultDirectRateLimiter>,
    in_flight: Arc<Semaphore>,
    /// Until when (ms since the epoch) every request waits after a 429.
    paused_until_ms: Arc<AtomicI64>,
    /// The server's clock (unix seconds) from the last response's `Date` header.
    server_time: Arc<AtomicI64>,
    stats: Arc<Stats>,
}

/// One request every `1 / rate` seconds, no bursts: Stripe's own limiter is a token
/// bucket, and an even pace never empties it.
fn quota(rate: f64) -> Result<Quota, Error> {
    Quota::with_period(Duration::from_secs_f64(1.0 / rate.max(0.01)))
        .ok_or_else(|| Error::Setup("the rate limit must be positive".to_owned()))
}

/// How one attempt ended.
enum Attempt {
    Done(bytes::Bytes),
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
            .timeout(REQUEST_TIMEOUT)
            .connect_timeout(CONNECT_TIMEOUT)
            .user_agent(concat!("source-stripe/", env!("CARGO_PKG_VERSION")))
            .pool_max_idle_per_host(config.max_in_flight.max(1))
            .build()
            .map_err(|err| Error::Setup(err.to_string()))?;
        Ok(Client {
            http,
            limiter: Arc::new(RateLimiter::direct(quota(config.rate_limit)?)),
            in_flight: Arc::new(Semaphore::new(config.max_in_flight.max(1))),
            paused_until_ms: Arc::new(AtomicI64::new(0)),
            server_time: Arc::new(AtomicI64::new(0)),
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
            limiter: Arc::new(RateLimiter::direct(quota(config.rate_limit)?)),
            in_flight: self.in_flight.clone(),
            paused_until_ms: Arc::new(AtomicI64::new(0)),
            server_time: Arc::new(AtomicI64::new(0)),
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
        let body = self.get(path, &[]).await?;
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
        let body = self.get(path, query).await?;
        Ok(Page {
            path: path.to_owned(),
            body,
        })
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
        let mut url = self.config.api_base.clone();
        url.set_path(path);
        if !query.is_empty() {
            let mut pairs = url.query_pairs_mut();
            for (name, value) in query {
                pairs.append_pair(name, value);
            }
        }
        let mut backoff = backon::ExponentialBuilder::default()
            .with_min_delay(Duration::from_millis(250))
            .with_max_delay(Duration::from_secs(20))
            .with_jitter()
            .with_max_times(MAX_ATTEMPTS as usize)
            .build();
        let mut attempts = 0;
        loop {
            attempts += 1;
            let outcome = self.attempt(path, url.clone()).await;
            let (after, why) = match outcome {
                Attempt::Done(body) => return Ok(body),
                Attempt::Fail(err) => return Err(err),
                Attempt::Retry { after, why } => (after, why),
            };
            let delay = match (after, backoff.next()) {
                _ if attempts >= MAX_ATTEMPTS => None,
                (Some(after), Some(_)) => Some(after),
                (None, next) => next,
                (Some(_), None) => None,
            };
            let Some(delay) = delay else {
                return Err(Error::Exhausted {
                    path: path.to_owned(),
                    attempts,
                    last: why,
                });
            };
            self.stats.retries.fetch_add(1, Ordering::Relaxed);
            tracing::debug!(path, attempts, ?delay, why, "retrying");
            tokio::time::sleep(delay).await;
        }
    }

    async fn attempt(&self, path: &str, url: url::Url) -> Attempt {
        let pause = self.paused_until_ms.load(Ordering::Relaxed) - crate::protocol::now_ms();
        if pause > 0 {
            tokio::time::sleep(Duration::from_millis(pause as u64)).await;
        }
        let Ok(_permit) = self.in_flight.acquire().await else {
            return Attempt::Fail(Error::Setup("the request limiter was closed".to_owned()));
        };
        self.limiter.until_ready().await;
        self.stats.requests.fetch_add(1, Ordering::Relaxed);
        let mut request = self
            .http
            .get(url)
            .bearer_auth(self.config.key.expose())
            .header("Stripe-Version", &self.config.stripe_version);
        if let Some(account) = &self.config.account {
            request = request.header("Stripe-Account", account);
        }
        let response = match request.send().await {
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
            .and_then(|v| v.parse::<f64>().ok())
            .map(|secs| Duration::from_secs_f64(secs.clamp(0.0, 60.0)));
        let request_id = header("request-id").unwrap_or_default();
        let body = match response.bytes().await {
            Ok(body) => body,
            Err(err) => {
                return Attempt::Retry {
                    after: None,
                    why: format!("reading the body failed: {err}"),
                };
            }
        };
        if status.is_success() {
            return Attempt::Done(body);
        }
        let detail = serde_json::from_slice::<ErrorBody>(&body)
            .unwrap_or_default()
            .error;
        let message = redact_secrets(
            &detail
                .message
                .unwrap_or_else(|| String::from_utf8_lossy(&body).chars().take(300).collect()),
        );
        let retry_allowed = should_retry.as_deref() != Some("false");
        match status.as_u16() {
            429 if retry_allowed => {
                self.stats.rate_limited.fetch_add(1, Ordering::Relaxed);
                // Everyone slows down, not just this request: Stripe counts the account.
                let wait = retry_after.unwrap_or(Duration::from_millis(500));
                let until = crate::protocol::now_ms() + wait.as_millis() as i64;
                self.paused_until_ms.fetch_max(until, Ordering::Relaxed);
                Attempt::Retry {
                    after: retry_after,
                    why: format!("429 rate limited: {message}"),
                }
            }
            401 => Attempt::Fail(Error::Unauthorized { message }),
            403 if detail.code.as_deref() == Some("account_invalid") => {
                Attempt::Fail(Error::AccountInvalid {
                    account: self.config.account.clone().unwrap_or_default(),
                    message,
                })
            }
            400 | 403 if product_not_enabled(status.as_u16(), detail.code.as_deref(), &message) => {
                Attempt::Fail(Error::NotEnabled {
                    path: path.to_owned(),
                    status: status.as_u16(),
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
            code if should_retry.as_deref() == Some("true") => Attempt::Retry {
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
