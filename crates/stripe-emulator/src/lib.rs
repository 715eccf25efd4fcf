//! A faithful local Stripe API emulator: the public API (configuration, the [`Emulator`]
//! handle, scopes, clock advances and the request log) and the glue between the submodules.
//!
//! The emulator serves, over HTTP/1.1, the read-only list endpoints a Stripe source
//! connector uses (`GET /v1/customers`, `/v1/charges`, ... `/v1/events`, `/v1/account`,
//! `/v1/accounts`), with Stripe's cursor pagination, `created` filters, `expand[]`, API-key
//! authentication (test, live and restricted keys), Stripe's error bodies, rate limiting,
//! injected faults, Connect (`Stripe-Account` header, OAuth authorize/token/deauthorize)
//! and an event log that grows when the clock is advanced.
//!
//! # Data set sizes
//! Every scope (platform or connected account, test or live mode) has its own deterministic
//! data set, built on first access from Stripe's example objects. For `size` = n charges:
//!
//! | stream | count |
//! |---|---|
//! | customers | max(n/2, 3) |
//! | charges | n (about 5% failed) |
//! | payment_intents | one per charge, plus n/50 + 2 still awaiting a payment method |
//! | refunds | max(n/10, 2), each on its own succeeded charge |
//! | disputes | max(n/50, 2), each on its own succeeded charge |
//! | products | max(n/50, 5) |
//! | prices | 2 per product (one one-time, one recurring) |
//! | subscriptions | max(n/10, 2) |
//! | invoices | max(n/5, 3): one per subscription plus one-off invoices |
//! | payouts | max(n/100, 3) |
//! | balance_transactions | one per succeeded charge, refund and payout, plus dispute withdrawals/reinstatements |
//! | events | `*.created`-style events for everything created in the 30 days before the clock start |
//! | each table-driven resource (`resources.rs`) | max(n/25, 3); none of the Issuing ones on connected accounts |
//! | application fee refunds, transfer reversals, setup attempts, customer balance transactions (`kids.rs`) | one on every third parent |
//! | checkout session line items (`kids.rs`) | one or two per session |
//! | bank accounts (`kids.rs`) | one on every fourth customer |
//! | persons (`kids.rs`) | one per connected account, in the platform's data (their events in the account's own) |
//! | payment methods (`kids.rs`) | one on every third customer |
//! | usage record summaries (`kids.rs`) | one per subscription item |
//! | external accounts (`kids.rs`) | a bank account and a card per connected account, in the platform's data (their events in the account's own) |
//!
//! Live mode uses the same size as test mode; each connected account uses
//! `max(size / 4, 10)`.
mod advance;
mod balance;
mod children;
mod cli;
mod clock;
mod connect;
mod data;
mod faults;
mod golden;
mod kid_rows;
mod kids;
mod pretty;
mod resources;
mod rng;
mod routes;
mod store;
#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, RwLock};

pub use cli::{Args, run};
pub use resources::version_for;
pub use routes::list_routes;

use store::{ScopeData, Stream};

/// The platform's test-mode secret key.
pub const DEFAULT_TEST_KEY: &str = "sk_test_emulator_platform";
/// The platform's live-mode secret key.
pub const DEFAULT_LIVE_KEY: &str = "sk_live_emulator_platform";
/// A test-mode restricted key that may not read disputes.
pub const DEFAULT_RESTRICTED_KEY: &str = "rk_test_emulator_restricted";
/// The Connect platform's OAuth client id in test mode.
pub const OAUTH_CLIENT_ID_TEST: &str = "ca_emulator_test";
/// The Connect platform's OAuth client id in live mode.
pub const OAUTH_CLIENT_ID_LIVE: &str = "ca_emulator_live";
/// The API version the emulator renders objects in.
pub const API_VERSION: &str = "2020-08-27";
/// Events older than this many seconds are no longer served (Stripe keeps 30 days).
pub const EVENT_RETENTION_SECS: i64 = 30 * 86_400;

/// The keys [`Config::default`] accepts: [`DEFAULT_TEST_KEY`], [`DEFAULT_LIVE_KEY`] and
/// [`DEFAULT_RESTRICTED_KEY`] (denied `disputes`).
pub fn default_keys() -> Vec<ApiKey> {
    vec![
        ApiKey::new(DEFAULT_TEST_KEY),
        ApiKey::new(DEFAULT_LIVE_KEY),
        ApiKey {
            key: DEFAULT_RESTRICTED_KEY.to_string(),
            denied: vec!["disputes".to_string()],
        },
    ]
}

/// How the emulator is set up. See the module documentation for the data set sizes.
#[derive(Clone, Debug)]
pub struct Config {
    /// Seed of every pseudo-random choice (default 42).
    pub seed: u64,
    /// Number of charges in the platform's data set (default 1000).
    pub size: usize,
    /// Objects' `created` is spread over this many days before the clock start (default 730).
    pub history_days: i64,
    /// Share of objects created in the last 30 days, the rest spread evenly over the
    /// history (default 0: all spread evenly). 0.9 is a young, fast-growing account.
    pub recent_share: f64,
    /// Build the core objects from Stripe's 2026 examples, about twice the size of the
    /// 2022 ones (a charge is about 3.4 KB of JSON). Default `false`.
    pub large_objects: bool,
    /// Answer with compact JSON instead of Stripe's pretty-printed layout (two-space
    /// indents, a field a line). Default `false`: laid out as Stripe lays it out.
    pub compact_json: bool,
    /// Connected accounts linked to the platform at start (default 3).
    pub connected_accounts: usize,
    /// API keys of the platform (default [`default_keys`]).
    pub keys: Vec<ApiKey>,
    /// Clock start in unix seconds; `None` = the wall clock when the emulator is created.
    pub now: Option<i64>,
    /// `true`: the clock only moves by [`Emulator::advance`]; `false`: it also ticks with wall time.
    pub frozen_clock: bool,
    /// Injected faults and throttling (all off by default).
    pub faults: Faults,
    /// Adds the fixed objects of golden tests to the platform's test-mode data (see
    /// `golden.rs`: a JPY and a BHD charge, a refunded and a disputed charge, a product
    /// with three prices, a payout). Off by default.
    pub golden: bool,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            seed: 42,
            size: 1000,
            history_days: 730,
            recent_share: 0.0,
            large_objects: false,
            compact_json: false,
            connected_accounts: 3,
            keys: default_keys(),
            now: None,
            frozen_clock: false,
            faults: Faults::default(),
            golden: false,
        }
    }
}

/// An API key of the platform. The mode follows the prefix: `sk_test_`/`rk_test_` see test
/// data, `sk_live_`/`rk_live_` live data.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApiKey {
    /// The secret or restricted key.
    pub key: String,
    /// Stream names (e.g. `"disputes"`) this restricted key may not read: 403.
    pub denied: Vec<String>,
}

impl ApiKey {
    /// A key with full read access.
    pub fn new(key: &str) -> ApiKey {
        ApiKey {
            key: key.to_string(),
            denied: Vec::new(),
        }
    }
}

/// Throttling and injected faults; every rate is a fraction in 0..=1 of `/v1` requests.
#[derive(Clone, Debug, Default)]
pub struct Faults {
    /// Token bucket per (account, mode): this many requests per second, burst = the rate.
    pub rate_limit_per_sec: Option<f64>,
    /// Token bucket per (account, mode, endpoint), an endpoint being the path without ids
    /// (`/v1/charges`, `/v1/invoices/*/lines`): this many requests per second, burst = the
    /// rate; Files (`/v1/files`) get 20/25 of it, as at Stripe (25/s, Files 20/s). A
    /// request needs a token of both buckets; one refused by either is answered 429.
    pub endpoint_rate_limit_per_sec: Option<f64>,
    /// Added to every `/v1` response.
    pub latency: std::time::Duration,
    /// Fraction answered 429 `rate_limit` regardless of the rate.
    pub too_many_requests_rate: f64,
    /// Fraction answered 500 with an `api_error` body.
    pub server_error_rate: f64,
    /// Fraction where the connection is closed without a complete response.
    pub drop_rate: f64,
    /// Fraction whose 200 body stream ends with an error half way.
    pub truncate_rate: f64,

    // Reliability faults (issue 15): what networks, proxies and Stripe itself do wrong.
    /// The rates of this block apply only to requests numbered from here on (counted
    /// from the emulator's start), so a test can break a sync half way.
    pub from_request: u64,
    /// Seconds sent as `Retry-After` on every 429 (none when `None`).
    pub retry_after_secs: Option<u64>,
    /// Fraction answered 429 with `Stripe-Should-Retry: false`.
    pub no_retry_429_rate: f64,
    /// Fraction answered 502 with a proxy's HTML error page (no Stripe headers).
    pub proxy_html_502_rate: f64,
    /// Fraction whose 200 body is cut half way with matching framing (`Content-Length`
    /// of the cut): the HTTP exchange looks complete, the JSON is not.
    pub cut_json_rate: f64,
    /// Fraction whose body is sent in 8 parts with [`Faults::trickle_delay`] between.
    pub trickle_rate: f64,
    /// Pause between the parts of a trickled body.
    pub trickle_delay: std::time::Duration,
    /// Fraction where the connection is accepted and nothing is sent for
    /// [`Faults::stall`], then closed.
    pub stall_rate: f64,
    /// How long a stalled request sends nothing.
    pub stall: std::time::Duration,
    /// Fraction of list answers replaced by `{"data": [], "has_more": true}`.
    pub empty_page_with_more_rate: f64,
    /// Fraction of answers replaced by a 200 body of [`Faults::oversized_bytes`] bytes
    /// (sent chunked, without `Content-Length`).
    pub oversized_rate: f64,
    /// Size of an oversized body.
    pub oversized_bytes: usize,
    /// Every `/v1` request fails with 503 for a while, then the emulator recovers.
    pub outage: Option<Outage>,
    /// An event is listable on `/v1/events` only this many seconds (emulator clock)
    /// after its `created`: Stripe's events list is eventually consistent.
    pub event_visibility_delay_secs: i64,
}

/// A stretch of wall time in which every `/v1` request fails with 503.
#[derive(Clone, Copy, Debug, Default)]
pub struct Outage {
    /// It starts at the request with this number (counted from the emulator's start).
    pub after_requests: u64,
    /// It lasts this long (wall time) from its first failed request.
    pub duration: std::time::Duration,
}

/// Whose data: the platform (`account: None`) or a connected account, in test or live mode.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Scope {
    /// `None` = the platform itself, else a connected account id.
    pub account: Option<String>,
    /// Live-mode (`true`) or test-mode data.
    pub livemode: bool,
}

impl Scope {
    /// The platform's test-mode data.
    pub fn platform_test() -> Scope {
        Scope {
            account: None,
            livemode: false,
        }
    }
}

/// A clock advance with changes to one scope's data, see [`Emulator::advance`].
#[derive(Clone, Debug, Default, serde::Deserialize)]
#[serde(default)]
pub struct Advance {
    /// The clock moves forward this much (raised to 2 when anything changes).
    pub seconds: i64,
    /// New customers, each with a charge (and its payment intent and balance transaction).
    pub creates: usize,
    /// Updates, rotating over customers, refunds of charges, disputes, products, prices and
    /// payment intents.
    pub updates: usize,
    /// Deletions, rotating over customers, products and prices.
    pub deletes: usize,
    /// For every table-driven resource (coupons, plans, Issuing, …, see `resources.rs`):
    /// this many creates, updates (where the resource changes after creation) and
    /// deletes (where it is deletable), each with its event. On the platform also the
    /// connected accounts' children with events of their own (persons, external
    /// accounts) and this many connected accounts (`account.updated`): their events are
    /// the connected account's own, listed under `Stripe-Account`, not the platform's.
    pub resources: usize,
    /// The connected account whose data changes (`None` = the platform).
    pub account: Option<String>,
    /// Change live-mode data instead of test-mode data.
    pub livemode: bool,
}

/// What an advance did.
#[derive(Clone, Debug, serde::Serialize)]
pub struct AdvanceReport {
    /// The clock after the advance.
    pub now: i64,
    /// Every object created, updated or deleted, in time order.
    pub changes: Vec<Change>,
}

/// One object changed by an advance.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Change {
    /// Stream name, e.g. `"charges"`.
    pub stream: String,
    /// The object's id.
    pub id: String,
    /// Created, updated or deleted.
    pub kind: ChangeKind,
    /// The event emitted for the change (e.g. `"charge.succeeded"`), or `""` when Stripe emits
    /// none for this object (balance transactions).
    pub event_type: String,
    /// When it happened (the event's `created`).
    pub at: i64,
}

/// Kind of [`Change`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub enum ChangeKind {
    /// A new object.
    Created,
    /// An existing object changed.
    Updated,
    /// The object was deleted.
    Deleted,
}

/// One request the emulator answered.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct LoggedRequest {
    /// HTTP method.
    pub method: String,
    /// Path without the query.
    pub path: String,
    /// Raw query string (may be empty).
    pub query: String,
    /// The `Stripe-Account` header, if any.
    pub account: Option<String>,
    /// Status sent; 0 when the connection was dropped without a response.
    pub status: u16,
    /// When the request arrived: milliseconds on a monotonic clock shared by every
    /// emulator in the process (for rate measurements, not the emulated clock).
    pub received_ms: u64,
}

/// Milliseconds since the first emulator request of this process, monotonic.
pub(crate) fn monotonic_ms() -> u64 {
    static EPOCH: OnceLock<std::time::Instant> = OnceLock::new();
    EPOCH
        .get_or_init(std::time::Instant::now)
        .elapsed()
        .as_millis() as u64
}

type ScopeCell = Arc<OnceLock<RwLock<ScopeData>>>;

pub(crate) struct Inner {
    pub(crate) config: Config,
    pub(crate) clock: clock::Clock,
    pub(crate) faults: RwLock<Faults>,
    pub(crate) fixtures: data::Fixtures,
    pub(crate) registry: Mutex<connect::Registry>,
    scopes: Mutex<HashMap<Scope, ScopeCell>>,
    pub(crate) log: Mutex<Vec<LoggedRequest>>,
    pub(crate) counter: AtomicU64,
    /// Token buckets by scope and endpoint (`""` for the account's own).
    pub(crate) buckets: Mutex<HashMap<(Scope, String), faults::TokenBucket>>,
    /// Requests answered with an injected fault (any kind) so far.
    pub(crate) injected: AtomicU64,
    /// When the current [`Faults::outage`] began (wall clock).
    pub(crate) outage_started: Mutex<Option<std::time::Instant>>,
}

/// Locks a mutex, recovering the data if a panicking thread poisoned it (the emulator's
/// state stays usable: every critical section leaves it consistent).
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

pub(crate) fn read<T>(m: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    m.read().unwrap_or_else(|e| e.into_inner())
}

pub(crate) fn write<T>(m: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    m.write().unwrap_or_else(|e| e.into_inner())
}

impl Inner {
    /// Builds (once) and returns the data cell of a scope; `None` for an unknown account.
    pub(crate) fn scope_cell(&self, scope: &Scope) -> Option<ScopeCell> {
        let (index, account_id, linked) = {
            let reg = lock(&self.registry);
            let linked: Vec<String> = reg.accounts.iter().map(|a| a.id.clone()).collect();
            match &scope.account {
                None => (0, reg.platform.id.clone(), linked),
                Some(id) => {
                    let entry = reg.account(id)?;
                    (entry.index, entry.id.clone(), Vec::new())
                }
            }
        };
        let cell = lock(&self.scopes)
            .entry(scope.clone())
            .or_insert_with(|| Arc::new(OnceLock::new()))
            .clone();
        cell.get_or_init(|| {
            let size = if scope.account.is_none() {
                self.config.size
            } else {
                (self.config.size / 4).max(10)
            };
            let params = data::BuildParams {
                seed: self.config.seed,
                index,
                account: account_id.clone(),
                connected: scope.account.is_some(),
                livemode: scope.livemode,
                size,
                history_days: self.config.history_days.max(1),
                recent_share: self.config.recent_share.clamp(0.0, 1.0),
                start: self.clock.start(),
            };
            let mut data = data::build(&self.fixtures, &params);
            resources::build(&self.fixtures, &params, &linked, &mut data);
            {
                let account = data.account.clone();
                let g = data::Gen {
                    fx: &self.fixtures,
                    account: &account,
                    connected: data.connected,
                    livemode: data.livemode,
                    currency: data.currency,
                };
                kids::build(&g, &mut data, &params, &linked);
            }
            if self.config.golden && scope.account.is_none() && !scope.livemode {
                let g = data::Gen {
                    fx: &self.fixtures,
                    account: &account_id,
                    connected: false,
                    livemode: false,
                    currency: data.currency,
                };
                golden::add(&mut data, &g, self.clock.start());
            }
            RwLock::new(data)
        });
        Some(cell)
    }

    pub(crate) fn next_counter(&self) -> u64 {
        self.counter.fetch_add(1, Ordering::Relaxed)
    }
}

/// A running or runnable emulator; cheap to clone (shared state).
#[derive(Clone)]
pub struct Emulator {
    pub(crate) inner: Arc<Inner>,
}

impl Emulator {
    /// Creates the emulator; data sets are built lazily on first access.
    pub fn new(config: Config) -> Emulator {
        let start = config.now.unwrap_or_else(clock::wall_now);
        let registry = connect::Registry::new(&config, start);
        Emulator {
            inner: Arc::new(Inner {
                clock: clock::Clock::new(start, config.frozen_clock),
                faults: RwLock::new(config.faults.clone()),
                fixtures: if config.large_objects {
                    data::Fixtures::load_2026()
                } else {
                    data::Fixtures::load()
                },
                registry: Mutex::new(registry),
                scopes: Mutex::new(HashMap::new()),
                log: Mutex::new(Vec::new()),
                counter: AtomicU64::new(0),
                buckets: Mutex::new(HashMap::new()),
                outage_started: Mutex::new(None),
                injected: AtomicU64::new(0),
                config,
            }),
        }
    }

    /// The axum router of the whole emulator (`/v1`, `/oauth`, `/_emulator`).
    pub fn router(&self) -> axum::Router {
        routes::router(self.inner.clone())
    }

    /// Serves on `listener` until the task is dropped or aborted.
    pub async fn serve(self, listener: tokio::net::TcpListener) -> std::io::Result<()> {
        axum::serve(listener, self.router()).await
    }

    /// Binds 127.0.0.1 on a free port and serves in a background task.
    pub async fn start(config: Config) -> std::io::Result<Running> {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await?;
        Running::spawn(Emulator::new(config), listener)
    }

    /// The emulator clock (unix seconds).
    pub fn now(&self) -> i64 {
        self.inner.clock.now()
    }

    /// Replaces the fault settings (takes effect on the next request).
    pub fn set_faults(&self, faults: Faults) {
        *write(&self.inner.faults) = faults;
        lock(&self.inner.buckets).clear();
        *lock(&self.inner.outage_started) = None;
    }

    /// Requests answered with an injected fault (a drop, an error, a broken or slow
    /// body, an outage) so far: a fault test checks its faults really happened.
    pub fn injected_faults(&self) -> u64 {
        self.inner.injected.load(Ordering::Relaxed)
    }

    /// The current fault settings.
    pub fn faults(&self) -> Faults {
        read(&self.inner.faults).clone()
    }

    /// The platform's account id (deterministic from the seed).
    pub fn platform_account_id(&self) -> String {
        lock(&self.inner.registry).platform.id.clone()
    }

    /// Connected accounts currently linked (in either mode), oldest first.
    pub fn connected_account_ids(&self) -> Vec<String> {
        lock(&self.inner.registry)
            .accounts
            .iter()
            .filter(|a| a.linked_test || a.linked_live)
            .map(|a| a.id.clone())
            .collect()
    }

    /// Ids of the live objects of a stream, newest first: exactly what a full list walk
    /// returns. For `"events"` only those within the 30-day window; for `"accounts"` the
    /// connected accounts linked in the scope's mode (platform scope only).
    pub fn ids(&self, scope: &Scope, stream: &str) -> Vec<String> {
        if stream == "accounts" {
            if scope.account.is_some() {
                return Vec::new();
            }
            return lock(&self.inner.registry)
                .linked_sorted(scope.livemode)
                .iter()
                .map(|a| a.id.clone())
                .collect();
        }
        let Some(cell) = self.inner.scope_cell(scope) else {
            return Vec::new();
        };
        let Some(lock_) = cell.get() else {
            return Vec::new();
        };
        if kids::parent_is_account(stream) {
            // Children of the connected accounts linked in the scope's mode.
            let accounts = self.ids(scope, "accounts");
            let data = read(lock_);
            return accounts
                .iter()
                .flat_map(|a| kids::ids_of(&data, stream, a).unwrap_or_default())
                .collect();
        }
        let data = read(lock_);
        if let Some(ids) = resources::ids(&data, stream) {
            return ids;
        }
        if let Some(ids) = children::ids(&data, stream) {
            return ids;
        }
        let Some(stream) = Stream::from_name(stream) else {
            return Vec::new();
        };
        let lo = if stream == Stream::Events {
            Some(self.now() - EVENT_RETENTION_SECS + 1)
        } else {
            None
        };
        data.col(stream)
            .iter_desc()
            .filter(|o| lo.is_none_or(|lo| o.created >= lo))
            .map(|o| o.id.clone())
            .collect()
    }

    /// Ids of the children of one parent object for a child stream (`invoice_line_items`,
    /// `subscription_items`), in list order; `None` when the parent does not exist.
    pub fn child_ids(&self, scope: &Scope, stream: &str, parent_id: &str) -> Option<Vec<String>> {
        let cell = self.inner.scope_cell(scope)?;
        let data = read(cell.get()?);
        children::ids_of(&data, stream, parent_id)
    }

    /// The current version of an object (`None` if it does not exist or was deleted).
    pub fn object(&self, scope: &Scope, stream: &str, id: &str) -> Option<serde_json::Value> {
        if stream == "accounts" || stream == "account" {
            let reg = lock(&self.inner.registry);
            let entry = if reg.platform.id == id {
                &reg.platform
            } else {
                reg.account(id)?
            };
            return Some(entry.to_value(&self.inner.fixtures));
        }
        let cell = self.inner.scope_cell(scope)?;
        let data = read(cell.get()?);
        if resources::find(stream).is_some() {
            return resources::object(&data, stream, id);
        }
        let stream = Stream::from_name(stream)?;
        data.col(stream).get(id).map(|o| o.value())
    }

    /// Moves the clock forward and changes one scope's data; see [`Advance`].
    pub fn advance(&self, advance: &Advance) -> AdvanceReport {
        advance::run(&self.inner, advance)
    }

    /// Every request answered so far, in order.
    pub fn request_log(&self) -> Vec<LoggedRequest> {
        lock(&self.inner.log).clone()
    }

    /// Number of requests with this method and path (any account).
    pub fn request_count(&self, method: &str, path: &str) -> u64 {
        lock(&self.inner.log)
            .iter()
            .filter(|r| r.method.eq_ignore_ascii_case(method) && r.path == path)
            .count() as u64
    }

    /// Number of requests with this method and path made with this `Stripe-Account` header
    /// (`None` = without the header).
    pub fn request_count_for(&self, method: &str, path: &str, account: Option<&str>) -> u64 {
        lock(&self.inner.log)
            .iter()
            .filter(|r| {
                r.method.eq_ignore_ascii_case(method)
                    && r.path == path
                    && r.account.as_deref() == account
            })
            .count() as u64
    }

    /// Number of requests whose method is not GET on `/v1` paths (a read-only connector
    /// must leave this at 0).
    pub fn write_request_count(&self) -> u64 {
        lock(&self.inner.log)
            .iter()
            .filter(|r| r.method != "GET" && r.path.starts_with("/v1"))
            .count() as u64
    }
}

/// A served emulator; aborts the server when dropped.
pub struct Running {
    addr: SocketAddr,
    emulator: Emulator,
    handle: tokio::task::JoinHandle<()>,
}

impl Running {
    /// Serves `emulator` on `listener` in a background task.
    pub fn spawn(
        emulator: Emulator,
        listener: tokio::net::TcpListener,
    ) -> std::io::Result<Running> {
        let addr = listener.local_addr()?;
        let served = emulator.clone();
        let handle = tokio::spawn(async move {
            if let Err(e) = served.serve(listener).await {
                tracing::error!("emulator server stopped: {e}");
            }
        });
        Ok(Running {
            addr,
            emulator,
            handle,
        })
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT`.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The served emulator.
    pub fn emulator(&self) -> &Emulator {
        &self.emulator
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.handle.abort();
    }
}
