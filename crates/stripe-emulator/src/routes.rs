//! The HTTP surface: the axum router, authentication, `Stripe-Account` resolution, list and
//! retrieve handlers with Stripe's parameters, expansions and error bodies, fault injection
//! on `/v1`, the request log, and the `/_emulator` helper endpoints.
use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::{RawQuery, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post};
use serde_json::{Value, json};

use super::connect::{self, AccountEntry, mask_key, request_key};
use super::faults::{self, Fault};
use super::rng::Rng;
use super::store::{Collection, Cursor, Obj, PageQuery, ScopeData, Stream};
use super::{
    API_VERSION, Advance, EVENT_RETENTION_SECS, Emulator, Inner, LoggedRequest, Scope, lock, read,
};

const PAGINATION: [&str; 5] = [
    "created",
    "ending_before",
    "expand",
    "limit",
    "starting_after",
];

/// What a `/v1` GET route serves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Stream(Stream),
    Accounts,
    Account,
    /// `/v1/balance`: computed from the scope's balance transactions.
    Balance,
}

struct Route {
    path: &'static str,
    kind: Kind,
    /// Filters on top of [`PAGINATION`].
    filters: &'static [&'static str],
}

const ROUTES: &[Route] = &[
    Route {
        path: "/v1/account",
        kind: Kind::Account,
        filters: &[],
    },
    Route {
        path: "/v1/accounts",
        kind: Kind::Accounts,
        filters: &[],
    },
    Route {
        path: "/v1/balance",
        kind: Kind::Balance,
        filters: &[],
    },
    Route {
        path: "/v1/balance_transactions",
        kind: Kind::Stream(Stream::BalanceTransactions),
        filters: &["currency", "payout", "source", "type"],
    },
    Route {
        path: "/v1/charges",
        kind: Kind::Stream(Stream::Charges),
        filters: &["customer", "payment_intent", "transfer_group"],
    },
    Route {
        path: "/v1/customers",
        kind: Kind::Stream(Stream::Customers),
        filters: &["email"],
    },
    Route {
        path: "/v1/disputes",
        kind: Kind::Stream(Stream::Disputes),
        filters: &["charge", "payment_intent"],
    },
    Route {
        path: "/v1/events",
        kind: Kind::Stream(Stream::Events),
        filters: &["type", "types"],
    },
    Route {
        path: "/v1/invoices",
        kind: Kind::Stream(Stream::Invoices),
        filters: &["collection_method", "customer", "status", "subscription"],
    },
    Route {
        path: "/v1/payment_intents",
        kind: Kind::Stream(Stream::PaymentIntents),
        filters: &["customer"],
    },
    Route {
        path: "/v1/payouts",
        kind: Kind::Stream(Stream::Payouts),
        filters: &["destination", "status"],
    },
    Route {
        path: "/v1/prices",
        kind: Kind::Stream(Stream::Prices),
        filters: &["active", "currency", "lookup_keys", "product", "type"],
    },
    Route {
        path: "/v1/products",
        kind: Kind::Stream(Stream::Products),
        filters: &["active", "ids", "shippable", "url"],
    },
    Route {
        path: "/v1/refunds",
        kind: Kind::Stream(Stream::Refunds),
        filters: &["charge", "payment_intent"],
    },
    Route {
        path: "/v1/subscriptions",
        kind: Kind::Stream(Stream::Subscriptions),
        filters: &["collection_method", "customer", "price", "status"],
    },
];

/// Every GET route under `/v1` with the query parameters it accepts (base names: `created`
/// stands for `created[gte]` etc., `expand` for `expand[]`, `types` for `types[]`).
pub fn list_routes() -> Vec<(&'static str, Vec<&'static str>)> {
    ROUTES
        .iter()
        .map(|r| {
            let mut params: Vec<&'static str> = match r.kind {
                Kind::Account | Kind::Balance => vec!["expand"],
                _ => PAGINATION.to_vec(),
            };
            params.extend_from_slice(r.filters);
            params.sort_unstable();
            (r.path, params)
        })
        .chain(super::resources::routes())
        .chain(super::children::routes())
        .collect()
}

/// Fields that `expand[]` may replace, per object type, with the expanded object's type
/// (`""` when it can be of several types or is already embedded).
fn expandable(object: &str) -> &'static [(&'static str, &'static str)] {
    match object {
        "charge" => &[
            ("customer", "customer"),
            ("balance_transaction", "balance_transaction"),
            ("payment_intent", "payment_intent"),
            ("invoice", "invoice"),
            ("refunds", ""),
        ],
        "payment_intent" => &[("customer", "customer"), ("invoice", "invoice")],
        "refund" => &[
            ("charge", "charge"),
            ("balance_transaction", "balance_transaction"),
            ("payment_intent", "payment_intent"),
        ],
        "dispute" => &[("charge", "charge"), ("payment_intent", "payment_intent")],
        "price" => &[("product", "product")],
        "balance_transaction" => &[("source", "")],
        "invoice" => &[
            ("customer", "customer"),
            ("subscription", "subscription"),
            ("charge", "charge"),
            ("payment_intent", "payment_intent"),
        ],
        "subscription" => &[("customer", "customer"), ("latest_invoice", "invoice")],
        "payout" => &[("balance_transaction", "balance_transaction")],
        _ => &[],
    }
}

/// A Stripe error response.
#[derive(Debug)]
pub(crate) struct ApiError {
    status: StatusCode,
    error: serde_json::Map<String, Value>,
    retry: bool,
}

impl ApiError {
    fn new(status: StatusCode, kind: &str, message: impl Into<String>) -> ApiError {
        let mut error = serde_json::Map::new();
        error.insert("message".into(), Value::String(message.into()));
        error.insert("type".into(), Value::String(kind.into()));
        ApiError {
            status,
            error,
            retry: false,
        }
    }

    pub(super) fn invalid(status: StatusCode, message: impl Into<String>) -> ApiError {
        ApiError::new(status, "invalid_request_error", message)
    }

    pub(super) fn bad(message: impl Into<String>) -> ApiError {
        ApiError::invalid(StatusCode::BAD_REQUEST, message)
    }

    pub(super) fn param(mut self, param: &str) -> ApiError {
        self.error
            .insert("param".into(), Value::String(param.into()));
        self
    }

    fn code(mut self, code: &str) -> ApiError {
        self.error.insert("code".into(), Value::String(code.into()));
        self.error.insert(
            "doc_url".into(),
            Value::String(format!(
                "https://stripe.com/docs/error-codes/{}",
                code.replace('_', "-")
            )),
        );
        self
    }

    fn body(&self) -> String {
        json!({ "error": self.error }).to_string()
    }

    pub(super) fn missing(object: &str, id: &str, param: &str) -> ApiError {
        ApiError::invalid(StatusCode::NOT_FOUND, format!("No such {object}: '{id}'"))
            .param(param)
            .code("resource_missing")
    }

    fn rate_limited() -> ApiError {
        let mut e = ApiError::invalid(
            StatusCode::TOO_MANY_REQUESTS,
            "Request rate limit exceeded. You can learn more about rate limits here https://stripe.com/docs/rate-limits.",
        )
        .code("rate_limit");
        e.retry = true;
        e
    }

    fn unavailable() -> ApiError {
        let mut e = ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "api_error",
            "Stripe is temporarily unavailable. Please try again shortly.",
        );
        e.retry = true;
        e
    }

    fn server_error() -> ApiError {
        let mut e = ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "api_error",
            "Sorry, something went wrong. We've already been notified of the problem, but if you need any help, you can reach us at https://support.stripe.com/contact.",
        );
        e.retry = true;
        e
    }

    fn unrecognized(method: &Method, path: &str) -> ApiError {
        ApiError::invalid(
            StatusCode::NOT_FOUND,
            format!(
                "Unrecognized request URL ({method}: {path}). Please see https://stripe.com/docs or we can help at https://support.stripe.com/."
            ),
        )
    }
}

pub(crate) fn router(inner: Arc<Inner>) -> Router {
    Router::new()
        .route("/v1", any(v1))
        .route("/v1/{*rest}", any(v1))
        .route("/oauth/authorize", get(connect::authorize))
        .route("/oauth/token", post(connect::token))
        .route("/oauth/deauthorize", post(connect::deauthorize))
        .route("/_emulator/advance", post(emu_advance))
        .route("/_emulator/ids", get(emu_ids))
        .route("/_emulator/requests", get(emu_requests))
        .fallback(not_found)
        .layer(middleware::from_fn_with_state(inner.clone(), log_requests))
        .with_state(inner)
}

/// Marks a response whose connection is dropped (logged with status 0).
#[derive(Clone, Copy)]
struct Dropped;

async fn log_requests(State(inner): State<Arc<Inner>>, req: Request, next: Next) -> Response {
    let method = req.method().to_string();
    let path = req.uri().path().to_string();
    let query = req.uri().query().unwrap_or_default().to_string();
    let account = req
        .headers()
        .get("stripe-account")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let received_ms = super::monotonic_ms();
    let resp = next.run(req).await;
    let status = if resp.extensions().get::<Dropped>().is_some() {
        0
    } else {
        resp.status().as_u16()
    };
    lock(&inner.log).push(LoggedRequest {
        method,
        path,
        query,
        account,
        status,
        received_ms,
    });
    resp
}

async fn not_found(method: Method, uri: axum::http::Uri) -> Response {
    let e = ApiError::unrecognized(&method, uri.path());
    (
        e.status,
        [(header::CONTENT_TYPE, "application/json")],
        e.body(),
    )
        .into_response()
}

/// Who is asking and for which data.
struct Auth {
    key: String,
    scope: Scope,
    denied: Vec<String>,
    /// An OAuth access token acting as a connected account.
    as_account: bool,
    /// The request's `Stripe-Version` (the emulator's default without one).
    version: String,
}

fn authenticate(inner: &Inner, headers: &HeaderMap) -> Result<Auth, ApiError> {
    let Some(key) = request_key(headers) else {
        return Err(ApiError::invalid(
            StatusCode::UNAUTHORIZED,
            "You did not provide an API key. You need to provide your API key in the Authorization header, using Bearer auth (e.g. 'Authorization: Bearer YOUR_SECRET_KEY'). See https://stripe.com/docs/api#authentication for details, or we can help at https://support.stripe.com/.",
        ));
    };
    let reg = lock(&inner.registry);
    let Some(entry) = reg.keys.get(&key) else {
        return Err(ApiError::invalid(
            StatusCode::UNAUTHORIZED,
            format!("Invalid API Key provided: {}", mask_key(&key)),
        ));
    };
    if entry.revoked {
        return Err(ApiError::invalid(
            StatusCode::UNAUTHORIZED,
            format!(
                "Expired API Key provided: {}. Application access may have been revoked.",
                mask_key(&key)
            ),
        ));
    }
    let header_account = headers
        .get("stripe-account")
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|s| !s.is_empty());
    let no_access = |id: &str| {
        ApiError::invalid(
            StatusCode::FORBIDDEN,
            format!(
                "The provided key '{}' does not have access to account '{id}' (or that account does not exist). Application access may have been revoked.",
                mask_key(&key)
            ),
        )
        .code("account_invalid")
    };
    let account = match (&entry.account, header_account) {
        (Some(own), Some(h)) if h != own => return Err(no_access(h)),
        (Some(own), _) => Some(own.clone()),
        (None, None) => None,
        (None, Some(h)) if h == reg.platform.id => None,
        (None, Some(h)) => match reg.account(h) {
            Some(a) if a.linked(entry.livemode) => Some(a.id.clone()),
            _ => return Err(no_access(h)),
        },
    };
    Ok(Auth {
        scope: Scope {
            account,
            livemode: entry.livemode,
        },
        denied: entry.denied.clone(),
        as_account: entry.account.is_some(),
        version: headers
            .get("stripe-version")
            .and_then(|v| v.to_str().ok())
            .unwrap_or(API_VERSION)
            .to_string(),
        key,
    })
}

/// The answer to a `/v1` request before headers are added.
enum Reply {
    Ok(String),
    Err(ApiError),
    /// An error sent with `Stripe-Should-Retry: false`.
    NoRetry(ApiError),
    /// A proxy's HTML 502 page.
    ProxyHtml,
    /// Nothing for [`super::Faults::stall`], then the connection closes.
    Stall,
    Drop,
}

async fn v1(State(inner): State<Arc<Inner>>, req: Request) -> Response {
    let counter = inner.next_counter();
    let faults = read(&inner.faults).clone();
    let version = req
        .headers()
        .get("stripe-version")
        .and_then(|v| v.to_str().ok())
        .unwrap_or(API_VERSION)
        .to_string();
    let (reply, fault) = handle(&inner, &req, counter, &faults);
    if !faults.latency.is_zero() {
        tokio::time::sleep(faults.latency).await;
    }
    let request_id = format!(
        "req_{}",
        Rng::derive(inner.config.seed, &[counter, 3]).alnum(14)
    );
    let dropped = || {
        let mut resp = Response::new(faults::dropped_body());
        resp.extensions_mut().insert(Dropped);
        resp
    };
    let (status, body, retry) = match (reply, fault) {
        (Reply::Ok(body), Fault::Truncate) => {
            let len = body.len();
            let mut resp = Response::new(faults::truncated_body(body));
            if let Ok(v) = HeaderValue::from_str(&len.to_string()) {
                resp.headers_mut().insert(header::CONTENT_LENGTH, v);
            }
            return finish(&inner, resp, &request_id, &version, None, &faults);
        }
        (Reply::Ok(mut body), Fault::CutJson) => {
            body.truncate(body.len() / 2);
            (StatusCode::OK, body, None)
        }
        (Reply::Ok(body), Fault::Trickle) => {
            let resp = Response::new(faults::trickled_body(body, faults.trickle_delay));
            return finish(&inner, resp, &request_id, &version, None, &faults);
        }
        (Reply::Ok(body), Fault::EmptyWithMore)
            if body.starts_with(r#"{"object":"list""#) || body.contains(r#""object":"list""#) =>
        {
            let url = req.uri().path().to_string();
            let page =
                serde_json::json!({"object": "list", "data": [], "has_more": true, "url": url});
            (StatusCode::OK, page.to_string(), None)
        }
        (Reply::Ok(_), Fault::Oversized) => {
            let resp = Response::new(faults::oversized_body(faults.oversized_bytes));
            return finish(&inner, resp, &request_id, &version, None, &faults);
        }
        (Reply::Ok(body), _) if inner.config.compact_json => (StatusCode::OK, body, None),
        (Reply::Ok(body), _) => (StatusCode::OK, super::pretty::pretty(&body), None),
        (Reply::Err(e), _) => {
            let retry = e.retry.then_some("true");
            (e.status, e.body(), retry)
        }
        (Reply::NoRetry(e), _) => (e.status, e.body(), Some("false")),
        (Reply::ProxyHtml, _) => {
            let mut resp = Response::new(Body::from(faults::PROXY_502_PAGE));
            *resp.status_mut() = StatusCode::BAD_GATEWAY;
            resp.headers_mut()
                .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/html"));
            return resp;
        }
        (Reply::Stall, _) => {
            tokio::time::sleep(faults.stall).await;
            return dropped();
        }
        (Reply::Drop, _) => return dropped(),
    };
    let mut resp = Response::new(Body::from(body));
    *resp.status_mut() = status;
    finish(&inner, resp, &request_id, &version, retry, &faults)
}

fn finish(
    inner: &Inner,
    mut resp: Response,
    request_id: &str,
    version: &str,
    should_retry: Option<&'static str>,
    faults: &super::Faults,
) -> Response {
    let too_many = resp.status() == StatusCode::TOO_MANY_REQUESTS;
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("no-cache, no-store"),
    );
    let pairs = [
        ("request-id", request_id.to_string()),
        ("stripe-version", version.to_string()),
        ("date", inner.clock.http_date()),
    ];
    for (name, value) in pairs {
        if let Ok(v) = HeaderValue::from_str(&value) {
            h.insert(name, v);
        }
    }
    if let Some(value) = should_retry {
        h.insert("stripe-should-retry", HeaderValue::from_static(value));
    }
    if let Some(secs) = faults.retry_after_secs.filter(|_| too_many)
        && let Ok(v) = HeaderValue::from_str(&secs.to_string())
    {
        h.insert(header::RETRY_AFTER, v);
    }
    resp
}

/// Everything about a `/v1` request except the headers, and the fault chosen for it
/// (applied by the caller to a successful answer).
fn handle(inner: &Inner, req: &Request, counter: u64, faults: &super::Faults) -> (Reply, Fault) {
    let auth = match authenticate(inner, req.headers()) {
        Ok(a) => a,
        Err(e) => return (Reply::Err(e), Fault::None),
    };
    let injected = || {
        inner
            .injected
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    };
    if faults::in_outage(faults, &inner.outage_started, counter) {
        injected();
        return (Reply::Err(ApiError::unavailable()), Fault::None);
    }
    if !faults::within_limits(&inner.buckets, &auth.scope, req.uri().path(), faults) {
        injected();
        return (Reply::Err(ApiError::rate_limited()), Fault::None);
    }
    let fault = faults::decide(faults, inner.config.seed, counter);
    if fault != Fault::None {
        injected();
    }
    match fault {
        Fault::Drop => return (Reply::Drop, fault),
        Fault::ServerError => return (Reply::Err(ApiError::server_error()), fault),
        Fault::TooMany => return (Reply::Err(ApiError::rate_limited()), fault),
        Fault::NoRetry429 => return (Reply::NoRetry(ApiError::rate_limited()), fault),
        Fault::ProxyHtml => return (Reply::ProxyHtml, fault),
        Fault::Stall => return (Reply::Stall, fault),
        _ => {}
    }
    let path = req.uri().path();
    if req.method() != Method::GET {
        return (
            Reply::Err(ApiError::unrecognized(req.method(), path)),
            Fault::None,
        );
    }
    let query = req.uri().query().unwrap_or_default();
    match serve_get(inner, &auth, path, query) {
        Ok(body) => (Reply::Ok(body), fault),
        Err(e) => (Reply::Err(e), Fault::None),
    }
}

fn permission(kind: Kind) -> (&'static str, &'static str) {
    match kind {
        Kind::Account => ("account", "rak_account_read"),
        Kind::Accounts => ("accounts", "rak_connected_account_read"),
        Kind::Balance => ("balance", "rak_balance_read"),
        Kind::Stream(s) => (
            s.name(),
            match s {
                Stream::Customers => "rak_customer_read",
                Stream::Charges => "rak_charge_read",
                Stream::PaymentIntents => "rak_payment_intent_read",
                Stream::Refunds => "rak_refund_read",
                Stream::Disputes => "rak_dispute_read",
                Stream::Products => "rak_product_read",
                Stream::Prices => "rak_plan_read",
                Stream::BalanceTransactions => "rak_balance_transaction_source_read",
                Stream::Events => "rak_event_read",
                Stream::Invoices => "rak_invoice_read",
                Stream::Subscriptions => "rak_subscription_read",
                Stream::Payouts => "rak_payout_read",
            },
        ),
    }
}

fn serve_get(inner: &Inner, auth: &Auth, path: &str, query: &str) -> Result<String, ApiError> {
    let unrecognized = || ApiError::unrecognized(&Method::GET, path);
    let trimmed = path.trim_end_matches('/');
    if let Some(answer) = serve_child(inner, auth, trimmed, query) {
        return answer;
    }
    let (route, id) = match ROUTES.iter().find(|r| r.path == trimmed) {
        Some(r) => (r, None),
        None if super::resources::RESOURCES
            .iter()
            .any(|r| trimmed.starts_with(r.path)) =>
        {
            return serve_resource(inner, auth, trimmed, query);
        }
        None => {
            let (base, id) = trimmed.rsplit_once('/').ok_or_else(unrecognized)?;
            let r = ROUTES
                .iter()
                .find(|r| r.path == base && !matches!(r.kind, Kind::Account | Kind::Balance))
                .ok_or_else(unrecognized)?;
            (r, Some(id))
        }
    };
    let (stream_name, perm) = permission(route.kind);
    if auth.denied.iter().any(|d| d == stream_name) {
        let account = auth
            .scope
            .account
            .clone()
            .unwrap_or_else(|| lock(&inner.registry).platform.id.clone());
        return Err(ApiError::invalid(
            StatusCode::FORBIDDEN,
            format!(
                "The provided key '{}' does not have the required permissions for this endpoint on account '{account}'. Having the '{perm}' permission would allow this request to continue.",
                mask_key(&auth.key)
            ),
        ));
    }
    let params = parse_query(query);
    match (route.kind, id) {
        (Kind::Account, _) => {
            check_params(&params, &["expand"])?;
            check_expand(&params, "account", false)?;
            let reg = lock(&inner.registry);
            let entry = match &auth.scope.account {
                None => &reg.platform,
                Some(id) => reg.account(id).ok_or_else(unrecognized)?,
            };
            Ok(entry.to_value(&inner.fixtures).to_string())
        }
        (Kind::Balance, _) => {
            check_params(&params, &["expand"])?;
            check_expand(&params, "balance", false)?;
            let cell = inner.scope_cell(&auth.scope).ok_or_else(unrecognized)?;
            let data_lock = cell.get().ok_or_else(unrecognized)?;
            let data = read(data_lock);
            Ok(super::balance::render(&data, inner.clock.now()).to_string())
        }
        (Kind::Accounts, None) => {
            let lp = ListParams::parse(&params, route)?;
            check_expand(&params, "account", true)?;
            if auth.scope.account.is_some() || auth.as_account {
                return Err(ApiError::invalid(
                    StatusCode::FORBIDDEN,
                    "Only Stripe Connect platforms can work with other accounts. If you specified a client_id parameter, make sure it's correct. If you need to setup a Stripe Connect platform, you can do so at https://dashboard.stripe.com/account/applications/settings.",
                )
                .code("platform_account_required"));
            }
            let mut col = Collection::default();
            {
                let reg = lock(&inner.registry);
                let mut linked: Vec<&AccountEntry> = reg.linked_sorted(auth.scope.livemode);
                linked.reverse();
                for a in linked {
                    let v = a.to_value(&inner.fixtures);
                    col.put(Obj::new(Stream::Customers, &v));
                }
            }
            let all = |_: &Obj| true;
            let page = col
                .page(&PageQuery {
                    limit: lp.limit,
                    cursor: lp.cursor.clone(),
                    min_created: lp.min_created,
                    max_created: lp.max_created,
                    filter: &all,
                })
                .map_err(|id| ApiError::missing("account", &id, lp.cursor_param()))?;
            Ok(render_page(
                route.path,
                page.items.iter().map(|o| o.json.to_string()),
                page.has_more,
            ))
        }
        (Kind::Accounts, Some(id)) => {
            check_params(&params, &["expand"])?;
            check_expand(&params, "account", false)?;
            let reg = lock(&inner.registry);
            if auth.scope.account.is_some() || auth.as_account {
                return Err(ApiError::missing("account", id, "account"));
            }
            let entry = reg
                .account(id)
                .filter(|a| a.linked(auth.scope.livemode))
                .ok_or_else(|| ApiError::missing("account", id, "account"))?;
            Ok(entry.to_value(&inner.fixtures).to_string())
        }
        (Kind::Stream(stream), None) => {
            let lp = ListParams::parse(&params, route)?;
            let expand = check_expand(&params, stream.object(), true)?;
            let cell = inner.scope_cell(&auth.scope).ok_or_else(unrecognized)?;
            let data_lock = cell.get().ok_or_else(unrecognized)?;
            let data = read(data_lock);
            list(inner, &data, stream, route.path, &lp, &expand)
        }
        (Kind::Stream(stream), Some(id)) => {
            check_params(&params, &["expand"])?;
            let expand = check_expand(&params, stream.object(), false)?;
            let cell = inner.scope_cell(&auth.scope).ok_or_else(unrecognized)?;
            let data_lock = cell.get().ok_or_else(unrecognized)?;
            let data = read(data_lock);
            let obj = data
                .col(stream)
                .get(id)
                .filter(|o| {
                    stream != Stream::Events || o.created > inner.clock.now() - EVENT_RETENTION_SECS
                })
                .ok_or_else(|| ApiError::missing(stream.object(), id, "id"))?;
            if expand.is_empty() {
                Ok(obj.json.to_string())
            } else {
                let mut v = obj.value();
                for path in &expand {
                    expand_value(&data, &mut v, path);
                }
                Ok(v.to_string())
            }
        }
    }
}

/// A child list endpoint (`children.rs`); `None` when `path` is not one.
fn serve_child(
    inner: &Inner,
    auth: &Auth,
    path: &str,
    query: &str,
) -> Option<Result<String, ApiError>> {
    let unrecognized = || ApiError::unrecognized(&Method::GET, path);
    if !super::children::serves(path) {
        return None;
    }
    let Some(cell) = inner.scope_cell(&auth.scope) else {
        return Some(Err(unrecognized()));
    };
    let Some(data) = cell.get() else {
        return Some(Err(unrecognized()));
    };
    super::children::serve(&read(data), &auth.version, path, query)
}

/// A table-driven resource's endpoint (`resources.rs`), behind the same permission
/// check as the others.
fn serve_resource(inner: &Inner, auth: &Auth, path: &str, query: &str) -> Result<String, ApiError> {
    let unrecognized = || ApiError::unrecognized(&Method::GET, path);
    let stream = super::resources::RESOURCES
        .iter()
        .find(|r| path.starts_with(r.path))
        .map_or("", |r| r.stream);
    if auth.denied.iter().any(|d| d == stream) {
        return Err(ApiError::invalid(
            StatusCode::FORBIDDEN,
            format!(
                "The provided key '{}' does not have the required permissions for this endpoint. Having the 'rak_{stream}_read' permission would allow this request to continue.",
                mask_key(&auth.key)
            ),
        ));
    }
    let cell = inner.scope_cell(&auth.scope).ok_or_else(unrecognized)?;
    let data = read(cell.get().ok_or_else(unrecognized)?);
    super::resources::serve(&data, &auth.version, path, query)
        .unwrap_or_else(|| Err(unrecognized()))
}

/// Query pairs in order, as sent.
pub(super) fn parse_query(query: &str) -> Vec<(String, String)> {
    url::form_urlencoded::parse(query.as_bytes())
        .into_owned()
        .collect()
}

pub(super) fn base_name(key: &str) -> &str {
    key.split('[').next().unwrap_or(key)
}

fn check_params(params: &[(String, String)], allowed: &[&str]) -> Result<(), ApiError> {
    for (k, _) in params {
        let base = base_name(k);
        if !allowed.contains(&base) {
            return Err(unknown_param(base));
        }
    }
    Ok(())
}

/// A list's cursor from `starting_after` and `ending_before`: at most one of them, as Stripe.
pub(super) fn list_cursor(
    after: Option<String>,
    before: Option<String>,
) -> Result<Cursor, ApiError> {
    match (after, before) {
        (Some(_), Some(_)) => Err(ApiError::bad(
            "You may only specify one of these parameters: starting_after, ending_before.",
        )
        .param("ending_before")),
        (Some(a), None) => Ok(Cursor::After(a)),
        (None, Some(b)) => Ok(Cursor::Before(b)),
        (None, None) => Ok(Cursor::None),
    }
}

pub(super) fn unknown_param(name: &str) -> ApiError {
    ApiError::bad(format!("Received unknown parameter: {name}"))
        .param(name)
        .code("parameter_unknown")
}

/// Validates `expand[]` values (`data.`-prefixed for lists) and returns the paths to expand
/// on each object.
fn check_expand(
    params: &[(String, String)],
    object: &str,
    list: bool,
) -> Result<Vec<Vec<String>>, ApiError> {
    let mut out = Vec::new();
    for (i, (k, v)) in params
        .iter()
        .filter(|(k, _)| base_name(k) == "expand")
        .enumerate()
    {
        let indexed = k
            .strip_prefix("expand[")
            .is_some_and(|r| r.trim_end_matches(']').parse::<usize>().is_ok());
        if k != "expand[]" && !indexed {
            return Err(unknown_param(k));
        }
        let param = format!("expand[{i}]");
        let path = if list {
            match v.strip_prefix("data.") {
                Some(p) => p,
                None => {
                    return Err(ApiError::bad(format!(
                        "This property cannot be expanded ({v}). You may want to try expanding 'data.{v}' instead."
                    ))
                    .param(&param));
                }
            }
        } else {
            v.as_str()
        };
        let segments: Vec<String> = path.split('.').map(str::to_string).collect();
        let mut kind = object;
        for seg in &segments {
            if kind.is_empty() {
                break; // polymorphic field: deeper levels are checked when expanding
            }
            match expandable(kind).iter().find(|(f, _)| f == seg) {
                Some((_, next)) => kind = next,
                None => {
                    return Err(
                        ApiError::bad(format!("This property cannot be expanded ({v})."))
                            .param(&param),
                    );
                }
            }
        }
        out.push(segments);
    }
    Ok(out)
}

/// Replaces id fields along `path` with the referenced objects (deleted ones as their
/// `deleted` stub).
fn expand_value(data: &ScopeData, v: &mut Value, path: &[String]) {
    let Some((field, rest)) = path.split_first() else {
        return;
    };
    let object = v
        .get("object")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    if !expandable(&object).iter().any(|(f, _)| f == field) {
        return;
    }
    let Some(slot) = v.get_mut(field.as_str()) else {
        return;
    };
    if let Value::String(id) = slot {
        let found = data.find(id).map(|o| o.value()).or_else(|| {
            data.deleted
                .get(id.as_str())
                .and_then(|s| serde_json::from_str(s).ok())
        });
        if let Some(obj) = found {
            *slot = obj;
        }
    }
    if slot.is_object() {
        expand_value(data, slot, rest);
    }
}

/// Parsed list parameters.
struct ListParams {
    limit: usize,
    cursor: Cursor,
    min_created: Option<i64>,
    max_created: Option<i64>,
    /// Equality filters: (field, value).
    equals: Vec<(String, String)>,
    /// `types[]`, `ids[]`, `lookup_keys[]`: (field, any of these values).
    any_of: Vec<(&'static str, Vec<String>)>,
    /// `type` on events (may end with `.*`).
    event_type: Option<String>,
    /// `status` on subscriptions (`None` = not canceled).
    sub_status: Option<String>,
}

impl ListParams {
    fn cursor_param(&self) -> &'static str {
        match self.cursor {
            Cursor::Before(_) => "ending_before",
            _ => "starting_after",
        }
    }

    fn parse(params: &[(String, String)], route: &Route) -> Result<ListParams, ApiError> {
        let mut lp = ListParams {
            limit: 10,
            cursor: Cursor::None,
            min_created: None,
            max_created: None,
            equals: Vec::new(),
            any_of: Vec::new(),
            event_type: None,
            sub_status: None,
        };
        let mut after = None;
        let mut before = None;
        let mut types = Vec::new();
        let mut ids = Vec::new();
        let mut lookup_keys = Vec::new();
        let is_subs = route.kind == Kind::Stream(Stream::Subscriptions);
        for (k, v) in params {
            let base = base_name(k);
            if !PAGINATION.contains(&base) && !route.filters.contains(&base) {
                return Err(unknown_param(base));
            }
            let int = |v: &str| {
                v.trim()
                    .parse::<i64>()
                    .map_err(|_| ApiError::bad(format!("Invalid integer: {v}")).param(k))
            };
            match base {
                "limit" => {
                    let n = int(v)?;
                    if n < 1 {
                        return Err(ApiError::bad(
                            "This value must be greater than or equal to 1.",
                        )
                        .param("limit"));
                    }
                    if n > 100 {
                        return Err(
                            ApiError::bad("This value must be less than or equal to 100.")
                                .param("limit"),
                        );
                    }
                    lp.limit = n as usize;
                }
                "starting_after" if !v.is_empty() => after = Some(v.clone()),
                "ending_before" if !v.is_empty() => before = Some(v.clone()),
                "starting_after" | "ending_before" | "expand" => {}
                "created" => {
                    let n = int(v)?;
                    let (lo, hi) = match k.as_str() {
                        "created" => (Some(n), Some(n)),
                        "created[gt]" => (Some(n.saturating_add(1)), None),
                        "created[gte]" => (Some(n), None),
                        "created[lt]" => (None, Some(n.saturating_sub(1))),
                        "created[lte]" => (None, Some(n)),
                        _ => return Err(unknown_param(k)),
                    };
                    if let Some(lo) = lo {
                        lp.min_created = Some(lp.min_created.map_or(lo, |m| m.max(lo)));
                    }
                    if let Some(hi) = hi {
                        lp.max_created = Some(lp.max_created.map_or(hi, |m| m.min(hi)));
                    }
                }
                "types" | "ids" | "lookup_keys" => {
                    if k != base && !k.starts_with(&format!("{base}[")) {
                        return Err(unknown_param(k));
                    }
                    match base {
                        "types" => types.push(v.clone()),
                        "ids" => ids.push(v.clone()),
                        _ => lookup_keys.push(v.clone()),
                    }
                }
                "type" if route.kind == Kind::Stream(Stream::Events) => {
                    lp.event_type = Some(v.clone())
                }
                "status" if is_subs => {
                    const ALLOWED: &[&str] = &[
                        "active",
                        "all",
                        "canceled",
                        "ended",
                        "incomplete",
                        "incomplete_expired",
                        "past_due",
                        "trialing",
                        "unpaid",
                    ];
                    if !ALLOWED.contains(&v.as_str()) {
                        return Err(ApiError::bad(format!(
                            "Invalid status: must be one of {}",
                            ALLOWED.join(", ")
                        ))
                        .param("status"));
                    }
                    lp.sub_status = Some(v.clone());
                }
                "active" | "shippable" => {
                    if v != "true" && v != "false" {
                        return Err(ApiError::bad(format!("Invalid boolean: {v}")).param(base));
                    }
                    lp.equals.push((base.to_string(), v.clone()));
                }
                "price" => lp.equals.push(("price".into(), v.clone())),
                "lookup_key" => {}
                _ => {
                    if k != base {
                        return Err(unknown_param(k));
                    }
                    lp.equals.push((base.to_string(), v.clone()));
                }
            }
        }
        lp.cursor = list_cursor(after, before)?;
        if !types.is_empty() {
            if lp.event_type.is_some() {
                return Err(ApiError::bad(
                    "You may only specify one of these parameters: type, types.",
                )
                .param("types"));
            }
            if types.len() > 20 {
                return Err(ApiError::bad(format!(
                    "You passed {} values for `types`, but at most 20 are allowed.",
                    types.len()
                ))
                .param("types"));
            }
            lp.any_of.push(("type", types));
        }
        if !ids.is_empty() {
            lp.any_of.push(("id", ids));
        }
        if !lookup_keys.is_empty() {
            lp.any_of.push(("lookup_key", lookup_keys));
        }
        Ok(lp)
    }
}

fn type_matches(pattern: &str, kind: &str) -> bool {
    match pattern.strip_suffix('*') {
        Some(prefix) => kind.starts_with(prefix),
        None => pattern == kind,
    }
}

fn list(
    inner: &Inner,
    data: &ScopeData,
    stream: Stream,
    url: &str,
    lp: &ListParams,
    expand: &[Vec<String>],
) -> Result<String, ApiError> {
    let mut min_created = lp.min_created;
    if stream == Stream::Events {
        let window = inner.clock.now() - EVENT_RETENTION_SECS + 1;
        min_created = Some(min_created.map_or(window, |m| m.max(window)));
        // A cursor on an expired event no longer exists.
        if let Cursor::After(id) | Cursor::Before(id) = &lp.cursor
            && data.col(stream).get(id).is_some_and(|o| o.created < window)
        {
            return Err(ApiError::missing("event", id, lp.cursor_param()));
        }
    }
    let sub_status = lp.sub_status.as_deref();
    // Stripe's events list is eventually consistent: a new event shows up late.
    let visible_until = inner.clock.now() - read(&inner.faults).event_visibility_delay_secs;
    let filter = |o: &Obj| -> bool {
        lp.equals.iter().all(|(f, v)| o.has(f, v))
            && lp.any_of.iter().all(|(f, vs)| {
                if *f == "id" {
                    vs.contains(&o.id)
                } else if *f == "type" {
                    o.field("type")
                        .is_some_and(|t| vs.iter().any(|p| type_matches(p, t)))
                } else {
                    vs.iter().any(|v| o.has(f, v))
                }
            })
            && lp
                .event_type
                .as_deref()
                .is_none_or(|p| o.field("type").is_some_and(|t| type_matches(p, t)))
            && (stream != Stream::Events || o.created <= visible_until)
            && (stream != Stream::Subscriptions
                || match sub_status {
                    None => !o.has("status", "canceled"),
                    Some("all") => true,
                    Some("ended") => {
                        o.has("status", "canceled") || o.has("status", "incomplete_expired")
                    }
                    Some(s) => o.has("status", s),
                })
    };
    let page = data
        .col(stream)
        .page(&PageQuery {
            limit: lp.limit,
            cursor: lp.cursor.clone(),
            min_created,
            max_created: lp.max_created,
            filter: &filter,
        })
        .map_err(|id| ApiError::missing(stream.object(), &id, lp.cursor_param()))?;
    if expand.is_empty() {
        return Ok(render_page(
            url,
            page.items.iter().map(|o| o.json.clone()),
            page.has_more,
        ));
    }
    let rendered = page.items.iter().map(|o| {
        let mut v = o.value();
        for path in expand {
            expand_value(data, &mut v, path);
        }
        v.to_string()
    });
    Ok(render_page(url, rendered, page.has_more))
}

/// `{"object":"list","data":[...],"has_more":..,"url":".."}` by concatenation.
pub(super) fn render_page<S: AsRef<str>>(
    url: &str,
    items: impl Iterator<Item = S>,
    has_more: bool,
) -> String {
    let items: Vec<S> = items.collect();
    let size: usize = items.iter().map(|s| s.as_ref().len() + 1).sum();
    let mut out = String::with_capacity(size + url.len() + 64);
    out.push_str("{\"object\":\"list\",\"data\":[");
    for (i, s) in items.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(s.as_ref());
    }
    out.push_str("],\"has_more\":");
    out.push_str(if has_more { "true" } else { "false" });
    out.push_str(",\"url\":\"");
    out.push_str(url);
    out.push_str("\"}");
    out
}

fn json_response(status: StatusCode, body: String) -> Response {
    (status, [(header::CONTENT_TYPE, "application/json")], body).into_response()
}

async fn emu_advance(State(inner): State<Arc<Inner>>, body: axum::body::Bytes) -> Response {
    let adv: Advance = match serde_json::from_slice(&body) {
        Ok(a) => a,
        Err(e) => {
            return json_response(
                StatusCode::BAD_REQUEST,
                json!({"error": e.to_string()}).to_string(),
            );
        }
    };
    if let Some(a) = &adv.account
        && lock(&inner.registry).account(a).is_none()
    {
        return json_response(
            StatusCode::NOT_FOUND,
            json!({"error": format!("unknown account {a}")}).to_string(),
        );
    }
    let emu = Emulator {
        inner: inner.clone(),
    };
    // Advances build data sets and rewrite objects: keep them off the async workers.
    let report = tokio::task::spawn_blocking(move || emu.advance(&adv)).await;
    match report.map(|r| serde_json::to_string(&r)) {
        Ok(Ok(s)) => json_response(StatusCode::OK, s),
        _ => json_response(
            StatusCode::INTERNAL_SERVER_ERROR,
            json!({"error": "advance failed"}).to_string(),
        ),
    }
}

async fn emu_ids(State(inner): State<Arc<Inner>>, RawQuery(q): RawQuery) -> Response {
    let params = parse_query(&q.unwrap_or_default());
    let get = |k: &str| params.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
    let Some(stream) = get("stream") else {
        return json_response(
            StatusCode::BAD_REQUEST,
            json!({"error": "stream is required"}).to_string(),
        );
    };
    if stream != "accounts"
        && Stream::from_name(&stream).is_none()
        && super::resources::find(&stream).is_none()
        && !super::children::is_child_stream(&stream)
    {
        return json_response(
            StatusCode::BAD_REQUEST,
            json!({"error": format!("unknown stream {stream}")}).to_string(),
        );
    }
    let scope = Scope {
        account: get("account").filter(|a| !a.is_empty()),
        livemode: get("livemode").is_some_and(|v| v == "true"),
    };
    let emu = Emulator { inner };
    let ids = tokio::task::spawn_blocking(move || emu.ids(&scope, &stream))
        .await
        .unwrap_or_default();
    json_response(StatusCode::OK, json!(ids).to_string())
}

async fn emu_requests(State(inner): State<Arc<Inner>>) -> Response {
    let log = lock(&inner.log).clone();
    let mut counts: BTreeMap<(String, String, Option<String>), u64> = BTreeMap::new();
    let mut statuses: BTreeMap<u16, u64> = BTreeMap::new();
    for r in &log {
        *counts
            .entry((r.method.clone(), r.path.clone(), r.account.clone()))
            .or_default() += 1;
        *statuses.entry(r.status).or_default() += 1;
    }
    let by_route: Vec<Value> = counts
        .into_iter()
        .map(|((method, path, account), count)| json!({"method": method, "path": path, "account": account, "count": count}))
        .collect();
    let accounts: HashSet<Option<String>> = log.iter().map(|r| r.account.clone()).collect();
    let body = json!({
        "total": log.len(),
        "accounts": accounts.len(),
        "by_status": statuses.iter().map(|(s, c)| (s.to_string(), json!(c))).collect::<serde_json::Map<_, _>>(),
        "by_route": by_route,
    });
    json_response(StatusCode::OK, body.to_string())
}

#[cfg(test)]
mod unit {
    use super::*;

    #[test]
    fn renders_pages_by_concatenation() {
        let s = render_page("/v1/x", ["{\"a\":1}", "{\"b\":2}"].into_iter(), true);
        let v: Value = serde_json::from_str(&s).unwrap();
        assert_eq!(v["data"].as_array().unwrap().len(), 2);
        assert_eq!(v["has_more"], true);
        assert_eq!(v["url"], "/v1/x");
    }

    #[test]
    fn wildcard_types() {
        assert!(type_matches("charge.*", "charge.dispute.created"));
        assert!(!type_matches("charge.*", "customer.created"));
        assert!(type_matches("customer.created", "customer.created"));
    }
}
