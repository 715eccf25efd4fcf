//! Connect: the platform and connected accounts, which accounts are linked in which mode,
//! API keys (including OAuth access tokens), and the OAuth endpoints
//! (`/oauth/authorize`, `/oauth/token`, `/oauth/deauthorize`).
use std::collections::HashMap;
use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::data::{Fixtures, account_currency};
use super::rng::Rng;
use super::{Config, Inner, OAUTH_CLIENT_ID_LIVE, OAUTH_CLIENT_ID_TEST, lock};

const DAY: i64 = 86_400;

/// An account (the platform or a connected one).
#[derive(Clone, Debug)]
pub(crate) struct AccountEntry {
    pub(crate) id: String,
    /// Seeds the account's data set; 0 is the platform.
    pub(crate) index: u64,
    pub(crate) created: i64,
    pub(crate) name: String,
    pub(crate) email: String,
    pub(crate) linked_test: bool,
    pub(crate) linked_live: bool,
    /// When an advance last changed the account (its `account.updated`): shown as
    /// `metadata.emulator_change`, as other advances mark an update.
    pub(crate) changed_at: Option<i64>,
}

impl AccountEntry {
    pub(crate) fn linked(&self, livemode: bool) -> bool {
        if livemode {
            self.linked_live
        } else {
            self.linked_test
        }
    }

    /// The `account` object.
    pub(crate) fn to_value(&self, fx: &Fixtures) -> Value {
        let mut v = fx.get("account");
        let currency = account_currency(self.index);
        let country = match currency {
            "eur" => "FR",
            "gbp" => "GB",
            _ => "US",
        };
        v["id"] = json!(self.id);
        v["created"] = json!(self.created);
        v["email"] = json!(self.email);
        v["country"] = json!(country);
        v["default_currency"] = json!(currency);
        v["business_profile"]["name"] = json!(self.name);
        v["business_profile"]["url"] = json!(format!(
            "https://{}.example.com",
            self.name.to_lowercase().replace(' ', "-")
        ));
        v["business_profile"]["mcc"] = json!("5734");
        v["business_profile"]["product_description"] = json!("Goods sold online");
        v["settings"]["dashboard"]["display_name"] = json!(self.name);
        v["charges_enabled"] = json!(true);
        v["payouts_enabled"] = json!(true);
        v["details_submitted"] = json!(true);
        v["business_type"] = json!("company");
        v["requirements"]["currently_due"] = json!([]);
        v["requirements"]["eventually_due"] = json!([]);
        v["requirements"]["disabled_reason"] = Value::Null;
        v["external_accounts"]["url"] =
            json!(format!("/v1/accounts/{}/external_accounts", self.id));
        if let Some(t) = self.changed_at {
            v["metadata"]["emulator_change"] = json!(t.to_string());
        }
        v
    }
}

/// What an API key gives access to.
#[derive(Clone, Debug)]
pub(crate) struct KeyEntry {
    pub(crate) livemode: bool,
    /// Set for OAuth access tokens: the connected account they act as.
    pub(crate) account: Option<String>,
    pub(crate) denied: Vec<String>,
    /// Access token of a deauthorized connection.
    pub(crate) revoked: bool,
}

struct AuthCode {
    account: String,
    livemode: bool,
    scope: String,
    used: bool,
}

/// Accounts, links, keys and OAuth grants.
pub(crate) struct Registry {
    pub(crate) platform: AccountEntry,
    pub(crate) accounts: Vec<AccountEntry>,
    pub(crate) keys: HashMap<String, KeyEntry>,
    codes: HashMap<String, AuthCode>,
    refresh: HashMap<String, String>,
    rng: Rng,
    seed: u64,
}

fn connected_id(seed: u64, index: u64) -> String {
    format!("acct_1{}", Rng::derive(seed, &[index, 99]).alnum(15))
}

/// The key's mode from its prefix (`None` if not a Stripe secret/restricted key).
pub(crate) fn key_mode(key: &str) -> Option<bool> {
    if key.starts_with("sk_test_") || key.starts_with("rk_test_") {
        Some(false)
    } else if key.starts_with("sk_live_") || key.starts_with("rk_live_") {
        Some(true)
    } else {
        None
    }
}

impl Registry {
    pub(crate) fn new(config: &Config, start: i64) -> Registry {
        let history = config.history_days.max(1) * DAY;
        let platform = AccountEntry {
            id: format!("acct_1Emu{}", Rng::derive(config.seed, &[0, 99]).alnum(12)),
            index: 0,
            created: start - history - 30 * DAY,
            name: "Emulator Platform".into(),
            email: "platform@example.com".into(),
            linked_test: true,
            linked_live: true,
            changed_at: None,
        };
        let mut reg = Registry {
            platform,
            accounts: Vec::new(),
            keys: HashMap::new(),
            codes: HashMap::new(),
            refresh: HashMap::new(),
            rng: Rng::derive(config.seed, &[0, 77]),
            seed: config.seed,
        };
        for k in &config.keys {
            if let Some(livemode) = key_mode(&k.key) {
                reg.keys.insert(
                    k.key.clone(),
                    KeyEntry {
                        livemode,
                        account: None,
                        denied: k.denied.clone(),
                        revoked: false,
                    },
                );
            }
        }
        for i in 0..config.connected_accounts {
            let index = i as u64 + 1;
            let mut r = Rng::derive(config.seed, &[index, 98]);
            let created = start - history + r.range(0, history / 2);
            reg.accounts.push(AccountEntry {
                id: connected_id(config.seed, index),
                index,
                created,
                name: format!("Connected Shop {index}"),
                email: format!("owner{index}@example.com"),
                linked_test: true,
                linked_live: true,
                changed_at: None,
            });
        }
        reg
    }

    /// A connected account (linked or not) by id.
    pub(crate) fn account(&self, id: &str) -> Option<&AccountEntry> {
        self.accounts.iter().find(|a| a.id == id)
    }

    /// Accounts linked in a mode, newest first.
    pub(crate) fn linked_sorted(&self, livemode: bool) -> Vec<&AccountEntry> {
        let mut v: Vec<&AccountEntry> = self
            .accounts
            .iter()
            .filter(|a| a.linked(livemode))
            .collect();
        v.sort_by_key(|a| std::cmp::Reverse((a.created, a.index)));
        v
    }

    /// Links an account in a mode: the named one (created if unknown) or a new one.
    fn link(&mut self, livemode: bool, wanted: Option<&str>, now: i64) -> String {
        if let Some(id) = wanted
            && let Some(a) = self.accounts.iter_mut().find(|a| a.id == id)
        {
            if livemode {
                a.linked_live = true;
            } else {
                a.linked_test = true;
            }
            return a.id.clone();
        }
        let index = self.accounts.len() as u64 + 1;
        let id = wanted.map_or_else(|| connected_id(self.seed, index), str::to_string);
        self.accounts.push(AccountEntry {
            id: id.clone(),
            index,
            created: now,
            name: format!("Connected Shop {index}"),
            email: format!("owner{index}@example.com"),
            linked_test: !livemode,
            linked_live: livemode,
            changed_at: None,
        });
        id
    }

    fn unlink(&mut self, livemode: bool, id: &str) -> bool {
        let Some(a) = self.accounts.iter_mut().find(|a| a.id == id) else {
            return false;
        };
        if !a.linked(livemode) {
            return false;
        }
        if livemode {
            a.linked_live = false;
        } else {
            a.linked_test = false;
        }
        for k in self.keys.values_mut() {
            if k.account.as_deref() == Some(id) && k.livemode == livemode {
                k.revoked = true;
            }
        }
        true
    }
}

/// The API key of a request: `Authorization: Bearer <key>` or HTTP basic with the key as
/// user name. `None` when absent or empty.
pub(crate) fn request_key(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?.trim();
    let (scheme, rest) = value.split_once(' ')?;
    let key = if scheme.eq_ignore_ascii_case("bearer") {
        rest.trim().to_string()
    } else if scheme.eq_ignore_ascii_case("basic") {
        let decoded = base64_decode(rest.trim())?;
        let text = String::from_utf8(decoded).ok()?;
        text.split_once(':')
            .map_or(text.clone(), |(u, _)| u.to_string())
    } else {
        return None;
    };
    (!key.is_empty()).then_some(key)
}

/// Stripe's masked form of a key: the `sk_test_`-style prefix, asterisks, the last 4.
pub(crate) fn mask_key(key: &str) -> String {
    let prefix_len = [
        "sk_test_", "sk_live_", "rk_test_", "rk_live_", "pk_test_", "pk_live_",
    ]
    .iter()
    .find(|p| key.starts_with(**p))
    .map_or(0, |p| p.len());
    let chars: Vec<char> = key.chars().collect();
    let visible = if chars.len() >= prefix_len + 8 { 4 } else { 0 };
    let tail: String = chars[chars.len() - visible..].iter().collect();
    format!("{}****{}", &key[..prefix_len], tail)
}

fn base64_decode(s: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(s.len() * 3 / 4);
    let mut acc: u32 = 0;
    let mut bits = 0;
    for c in s.bytes() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' | b'-' => 62,
            b'/' | b'_' => 63,
            b'=' => break,
            _ => return None,
        };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    Some(out)
}

fn form(bytes: &[u8]) -> HashMap<String, String> {
    url::form_urlencoded::parse(bytes).into_owned().collect()
}

fn oauth_error(status: StatusCode, error: &str, description: &str) -> Response {
    let body = json!({"error": error, "error_description": description});
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

fn client_mode(client_id: &str) -> Option<bool> {
    match client_id {
        OAUTH_CLIENT_ID_TEST => Some(false),
        OAUTH_CLIENT_ID_LIVE => Some(true),
        _ => None,
    }
}

/// `GET /oauth/authorize`: the merchant approves at once.
pub(crate) async fn authorize(State(inner): State<Arc<Inner>>, RawQuery(q): RawQuery) -> Response {
    let params = form(q.unwrap_or_default().as_bytes());
    let get = |k: &str| params.get(k).map(String::as_str);
    let redirect = get("redirect_uri").and_then(|u| url::Url::parse(u).ok());
    let state = get("state");
    let fail = |description: &str| match &redirect {
        Some(u) => {
            let mut u = u.clone();
            {
                let mut pairs = u.query_pairs_mut();
                pairs.append_pair("error", "invalid_request");
                pairs.append_pair("error_description", description);
                if let Some(s) = state {
                    pairs.append_pair("state", s);
                }
            }
            found(u.as_str())
        }
        None => oauth_error(StatusCode::BAD_REQUEST, "invalid_request", description),
    };
    if get("redirect_uri").is_some() && redirect.is_none() {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "Invalid redirect_uri: it must be an absolute URL.",
        );
    }
    let Some(client_id) = get("client_id") else {
        return fail("No client_id provided.");
    };
    let Some(livemode) = client_mode(client_id) else {
        return fail(&format!("No such application: '{client_id}'"));
    };
    if get("response_type").unwrap_or("code") != "code" {
        return fail("Invalid response_type: only 'code' is supported.");
    }
    let scope = get("scope").unwrap_or("read_only");
    if scope != "read_only" && scope != "read_write" {
        return fail(&format!(
            "Invalid scope: {scope}. Expected one of read_only, read_write."
        ));
    }
    let wanted = get("stripe_user_id").filter(|s| s.starts_with("acct_"));
    let now = inner.clock.now();
    let code = {
        let mut reg = lock(&inner.registry);
        let account = reg.link(livemode, wanted, now);
        let code = format!("ac_{}", reg.rng.alnum(24));
        reg.codes.insert(
            code.clone(),
            AuthCode {
                account,
                livemode,
                scope: scope.to_string(),
                used: false,
            },
        );
        code
    };
    match redirect {
        Some(mut u) => {
            {
                let mut pairs = u.query_pairs_mut();
                pairs.append_pair("code", &code);
                pairs.append_pair("scope", scope);
                if let Some(s) = state {
                    pairs.append_pair("state", s);
                }
            }
            found(u.as_str())
        }
        None => {
            let body = json!({"code": code, "scope": scope, "state": state});
            (
                [(header::CONTENT_TYPE, "application/json")],
                body.to_string(),
            )
                .into_response()
        }
    }
}

fn found(location: &str) -> Response {
    Response::builder()
        .status(StatusCode::FOUND)
        .header(header::LOCATION, location)
        .body(Body::empty())
        .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
}

/// The platform secret key of an OAuth request (header or `client_secret`), or the error.
fn platform_key(
    reg: &Registry,
    headers: &HeaderMap,
    params: &HashMap<String, String>,
) -> Result<bool, Box<Response>> {
    let key = request_key(headers).or_else(|| params.get("client_secret").cloned());
    let Some(key) = key else {
        return Err(Box::new(oauth_error(
            StatusCode::UNAUTHORIZED,
            "invalid_request",
            "No authentication was provided. Send your secret API key using the Authorization header, or as a client_secret POST parameter.",
        )));
    };
    match reg.keys.get(&key) {
        Some(k) if k.account.is_none() && key.starts_with("sk_") => Ok(k.livemode),
        _ => Err(Box::new(oauth_error(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            &format!("Invalid API Key provided: {}", mask_key(&key)),
        ))),
    }
}

/// `POST /oauth/token`: exchanges an authorization code (or refresh token) for an access token.
pub(crate) async fn token(
    State(inner): State<Arc<Inner>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let params = form(&body);
    let mut reg = lock(&inner.registry);
    let key_live = match platform_key(&reg, &headers, &params) {
        Ok(m) => m,
        Err(r) => return *r,
    };
    let grant = params.get("grant_type").map(String::as_str).unwrap_or("");
    let (account, livemode, scope) = match grant {
        "authorization_code" => {
            let code = params.get("code").cloned().unwrap_or_default();
            let missing = || {
                oauth_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_grant",
                    &format!("Authorization code does not exist: {code}"),
                )
            };
            let Some(c) = reg.codes.get_mut(&code) else {
                return missing();
            };
            if c.used || c.livemode != key_live {
                return missing();
            }
            c.used = true;
            (c.account.clone(), c.livemode, c.scope.clone())
        }
        "refresh_token" => {
            let rt = params.get("refresh_token").cloned().unwrap_or_default();
            let Some(access) = reg.refresh.get(&rt).cloned() else {
                return oauth_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_grant",
                    &format!("Refresh token does not exist: {rt}"),
                );
            };
            let Some(k) = reg.keys.get(&access).filter(|k| !k.revoked) else {
                return oauth_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_grant",
                    "The refresh token has been revoked.",
                );
            };
            (
                k.account.clone().unwrap_or_default(),
                k.livemode,
                "read_only".to_string(),
            )
        }
        other => {
            return oauth_error(
                StatusCode::BAD_REQUEST,
                "unsupported_grant_type",
                &format!("Unsupported grant type: {other}"),
            );
        }
    };
    if !reg.account(&account).is_some_and(|a| a.linked(livemode)) {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_grant",
            &format!("The account {account} is no longer connected to this application."),
        );
    }
    let mode = if livemode { "live" } else { "test" };
    let access = format!("sk_{mode}_{}", reg.rng.alnum(32));
    let refresh = format!("rt_{}", reg.rng.alnum(40));
    let publishable = format!("pk_{mode}_{}", reg.rng.alnum(32));
    reg.keys.insert(
        access.clone(),
        KeyEntry {
            livemode,
            account: Some(account.clone()),
            denied: Vec::new(),
            revoked: false,
        },
    );
    reg.refresh.insert(refresh.clone(), access.clone());
    let body = json!({
        "access_token": access, "livemode": livemode, "refresh_token": refresh,
        "scope": scope, "stripe_publishable_key": publishable, "stripe_user_id": account,
        "token_type": "bearer",
    });
    (
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

/// `POST /oauth/deauthorize`: disconnects an account from the platform.
pub(crate) async fn deauthorize(
    State(inner): State<Arc<Inner>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let params = form(&body);
    let mut reg = lock(&inner.registry);
    if let Err(r) = platform_key(&reg, &headers, &params) {
        return *r;
    }
    let client_id = params.get("client_id").cloned().unwrap_or_default();
    let Some(livemode) = client_mode(&client_id) else {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_client",
            &format!("No such application: '{client_id}'"),
        );
    };
    let user = params.get("stripe_user_id").cloned().unwrap_or_default();
    if !reg.unlink(livemode, &user) {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_client",
            &format!(
                "This application is not connected to stripe account {user}, or that account does not exist."
            ),
        );
    }
    let body = json!({ "stripe_user_id": user });
    (
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

#[cfg(test)]
mod unit {
    use super::*;

    #[test]
    fn masks_keys_like_stripe() {
        assert_eq!(mask_key("sk_test_abcdefgh1234"), "sk_test_****1234");
        assert_eq!(mask_key("rk_live_0123456789abcd"), "rk_live_****abcd");
        assert_eq!(mask_key("short"), "****");
        assert!(!mask_key("sk_test_secretsecret").contains("secret"));
    }

    #[test]
    fn reads_bearer_and_basic() {
        let mut h = HeaderMap::new();
        h.insert(header::AUTHORIZATION, "Bearer sk_test_x".parse().unwrap());
        assert_eq!(request_key(&h).as_deref(), Some("sk_test_x"));
        // base64("sk_test_x:")
        h.insert(
            header::AUTHORIZATION,
            "Basic c2tfdGVzdF94Og==".parse().unwrap(),
        );
        assert_eq!(request_key(&h).as_deref(), Some("sk_test_x"));
        h.insert(header::AUTHORIZATION, "Bearer ".parse().unwrap());
        assert_eq!(request_key(&h), None);
    }
}
