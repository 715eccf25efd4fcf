//! The connector's configuration: the fields Airbyte's Stripe source takes, with the
//! same names and meaning, plus `api_base` and `stripe_version`.
//!
//! [`RawConfig`] only parses (its `///` docs become `spec.json` through schemars);
//! [`Config::try_from_raw`] validates once and every error names the field and the fix.
//! Nothing downstream validates again.

use std::path::Path;

use schemars::JsonSchema;
use serde::Deserialize;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::secret::Secret;

/// The API version the connector pins unless told otherwise: the version of the
/// OpenAPI spec the stream schemas are derived from.
pub const DEFAULT_STRIPE_VERSION: &str = "2020-08-27";
pub const DEFAULT_API_BASE: &str = "https://api.stripe.com";
pub const DEFAULT_START_DATE: &str = "2017-01-25T00:00:00Z";
/// The page latency the default `num_workers` plans for, in seconds.
const IN_FLIGHT_LATENCY_SECS: f64 = 0.8;
/// The share of Stripe's account limit the connector takes by default: the merchant's own
/// integration spends the same account's budget.
const ACCOUNT_PACE: f64 = 0.95;
/// The share of Stripe's per-endpoint limit: an endpoint a sync lists is rarely one the
/// merchant's integration lists too, and the pacer keeps any second within 25 at this
/// share (`stripe::limits`).
const ENDPOINT_PACE: f64 = 0.98;

/// A user-input error in the config file. Always a `config_error`.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot read the config file {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("the config file is not valid: {message}")]
    Parse { message: String },
    #[error("config field `{field}`: {message}")]
    Field {
        field: &'static str,
        message: String,
    },
}

fn field(field: &'static str, message: impl Into<String>) -> Error {
    Error::Field {
        field,
        message: message.into(),
    }
}

/// Stripe source configuration.
///
/// Existing configs of Airbyte's Stripe source (6.x) work unchanged: every field it takes is
/// taken here with the same type and meaning, and a field this connector does not know is
/// ignored with a warning rather than refused.
#[derive(Debug, Deserialize, JsonSchema)]
#[schemars(title = "Stripe Source Spec")]
pub struct RawConfig {
    /// Your Stripe account ID (`acct_…`, see https://dashboard.stripe.com/settings/account).
    /// When it names an account connected to the key's platform, every request carries it as
    /// `Stripe-Account`. Leave it out to read the key's own account.
    #[serde(default)]
    #[schemars(title = "Account ID", extend("order" = 0))]
    pub account_id: Option<String>,
    /// Stripe secret key (`sk_live_…`/`sk_test_…`) or restricted key (`rk_live_…`/`rk_test_…`)
    /// from https://dashboard.stripe.com/apikeys. The prefix decides test or live mode.
    /// Publishable keys (`pk_…`) cannot read data.
    #[schemars(title = "Secret Key", extend("order" = 1))]
    pub client_secret: Secret,
    /// UTC date and time (RFC 3339, e.g. `2017-01-25T00:00:00Z`). Objects created before
    /// it are not read.
    #[serde(default = "default_start_date")]
    #[schemars(
        title = "Replication start date",
        example = "2017-01-25T00:00:00Z",
        extend("order" = 2)
    )]
    pub start_date: String,
    /// Days to re-read before the saved cursor on every incremental sync, to pick up
    /// events Stripe recorded late. 0 re-reads nothing.
    #[serde(default)]
    #[schemars(
        title = "Lookback Window in days",
        range(min = 0),
        extend("order" = 3)
    )]
    pub lookback_window_days: i64,
    /// Days per slice of the `created` range. Smaller slices checkpoint state more often;
    /// slices are read concurrently and split further when they hold many objects.
    #[serde(default = "default_slice_range")]
    #[schemars(
        title = "Data request time increment in days",
        range(min = 1),
        extend("order" = 4)
    )]
    pub slice_range: i64,
    /// Requests in flight at once, across all streams and accounts. By default enough to
    /// keep the rate limit busy at Stripe's usual page latency: the rate limit × 0.8 s
    /// (76 in live mode, 19 in test mode).
    #[serde(default)]
    #[schemars(
        title = "Number of concurrent requests",
        range(min = 1, max = 200),
        extend("order" = 5)
    )]
    pub num_workers: Option<i64>,
    /// Requests per second the connector allows itself (at least 1). Defaults to Stripe's
    /// limit for the key's mode: 100 in live mode, 25 in test mode (less 5% headroom).
    // No `minimum` in the schema: Airbyte's spec has none, and a spec that narrows it would
    // refuse saved configs at upgrade; a value below 1 is a config_error naming the field.
    #[serde(default)]
    #[schemars(title = "Max number of API calls per second", extend("order" = 6))]
    pub call_rate_limit: Option<i64>,
    /// Accepted for configs of Airbyte's Stripe source, and not needed: whatever it lists,
    /// a stream whose saved cursor is older than the 30 days Stripe keeps events is always
    /// read again in full from `start_date`, so no change is lost.
    #[serde(default)]
    #[schemars(
        title = "Streams with API Data Retention Validation (not needed)",
        extend("order" = 7, "uniqueItems" = true, "default" = [])
    )]
    pub api_retention_streams: Option<Vec<String>>,
    /// Stripe Connect: read the platform's connected accounts in one sync with its key,
    /// either every account the platform can list (`/v1/accounts`) or a list of `acct_…`
    /// ids. Each record then carries its account in `stripe_account`, and state is kept
    /// per account. Not together with `account_id`.
    #[serde(default)]
    #[schemars(
        title = "Connected accounts",
        schema_with = "connected_accounts_schema",
        extend("order" = 8)
    )]
    pub connected_accounts: Option<ConnectedAccounts>,
    /// The mode the key must be in: `test` or `live`. A key of the other mode is refused
    /// before any data is read. Leave it out to accept either.
    #[serde(default)]
    #[schemars(title = "Key mode", extend("order" = 9))]
    pub mode: Option<Mode>,
    /// Requests per second the connector allows itself on each API endpoint (one stream's
    /// list, or the events pass), within `call_rate_limit`. Defaults to Stripe's
    /// per-endpoint limit, 25 (Files 20), less 5% headroom; or a quarter of
    /// `call_rate_limit` when that is higher (a server that is not Stripe).
    #[serde(default)]
    #[schemars(title = "Max number of API calls per second per endpoint", extend("order" = 14))]
    pub endpoint_rate_limit: Option<i64>,
    /// Base URL of the Stripe API. Change it only for a proxy or the built-in emulator.
    #[serde(default = "default_api_base")]
    #[schemars(title = "API base URL", extend("order" = 10))]
    pub api_base: String,
    /// Seconds one request may take, headers and body, before it is abandoned and
    /// retried (a stalled connection that sends nothing). Stripe answers in well under a
    /// second; the default leaves room for slow proxies.
    #[serde(default = "default_request_timeout_secs")]
    #[schemars(title = "Request timeout (seconds)", range(min = 1, max = 600), extend("order" = 12))]
    pub request_timeout_secs: i64,
    /// Seconds the events pass stays behind Stripe's clock. Stripe's events list is
    /// eventually consistent: an event can become listable a little after its `created`
    /// time, and a sync that read up to "now" would skip it for good. Others who poll
    /// events read 5 s (Sequin) to 60 s (Estuary) behind; 60 errs on the side of not
    /// losing a change, at the price of changes of the last minute waiting for the next
    /// sync. 0 reads up to Stripe's clock.
    #[serde(default = "default_event_settle_secs")]
    #[schemars(title = "Events settle margin (seconds)", range(min = 0, max = 3600), extend("order" = 13))]
    pub event_settle_secs: i64,
    /// Stripe API version sent as `Stripe-Version`. Records keep fields a newer version
    /// adds; the stream schemas describe this default version.
    #[serde(default = "default_stripe_version")]
    #[schemars(title = "Stripe API version", extend("order" = 11))]
    pub stripe_version: String,
    /// Fields this connector does not know: ignored, and named in a warning.
    #[serde(flatten)]
    #[schemars(skip)]
    pub unknown: std::collections::BTreeMap<String, serde_json::Value>,
}

fn default_start_date() -> String {
    DEFAULT_START_DATE.to_owned()
}
const fn default_slice_range() -> i64 {
    365
}
fn default_api_base() -> String {
    DEFAULT_API_BASE.to_owned()
}
const fn default_event_settle_secs() -> i64 {
    60
}
const fn default_request_timeout_secs() -> i64 {
    60
}
fn default_stripe_version() -> String {
    DEFAULT_STRIPE_VERSION.to_owned()
}

/// Connected accounts to read. The spec shows only the object form (a `oneOf` the Airbyte
/// UI draws, with `accounts` as its discriminator); the earlier shapes, `"all"` and a list of
/// ids, are still accepted.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum ConnectedAccounts {
    /// `{"accounts": "this_account" | "all" | "list", "account_ids": [...]}`.
    Object(ConnectedAccountsObject),
    /// `"all"`: every account connected to the platform, listed at the start of the sync.
    All(String),
    /// These accounts (`acct_…`).
    List(Vec<String>),
}

/// The object form of `connected_accounts`.
#[derive(Debug, Clone, Deserialize)]
pub struct ConnectedAccountsObject {
    pub accounts: String,
    #[serde(default)]
    pub account_ids: Option<Vec<String>>,
}

/// `connected_accounts` in the form Airbyte's UI draws: a `oneOf` of objects, each told
/// apart by a `const` discriminator.
fn connected_accounts_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({
        "type": "object",
        "oneOf": [
            {
                "title": "Only the key's account (or account_id)",
                "description": "No Stripe Connect: read the key's own account, or the one account_id names.",
                "type": "object",
                "required": ["accounts"],
                "properties": {
                    "accounts": {
                        "title": "Accounts",
                        "description": "Read one account.",
                        "type": "string",
                        "const": "this_account",
                        "order": 0
                    }
                }
            },
            {
                "title": "Every connected account",
                "description": "Every account connected to the platform, listed (/v1/accounts) at the start of each sync.",
                "type": "object",
                "required": ["accounts"],
                "properties": {
                    "accounts": {
                        "title": "Accounts",
                        "description": "Read every connected account.",
                        "type": "string",
                        "const": "all",
                        "order": 0
                    }
                }
            },
            {
                "title": "These connected accounts",
                "description": "The connected accounts listed here.",
                "type": "object",
                "required": ["accounts", "account_ids"],
                "properties": {
                    "accounts": {
                        "title": "Accounts",
                        "description": "Read the listed accounts.",
                        "type": "string",
                        "const": "list",
                        "order": 0
                    },
                    "account_ids": {
                        "title": "Account IDs",
                        "description": "The connected accounts to read (acct_…).",
                        "type": "array",
                        "items": { "type": "string" },
                        "minItems": 1,
                        "order": 1
                    }
                }
            }
        ]
    })
}

/// Which accounts a sync reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Accounts {
    /// The key's own account, or the one `account_id` names (no account field on records).
    One(Option<String>),
    /// These connected accounts.
    List(Vec<String>),
    /// Every connected account the platform lists.
    All,
}

impl Accounts {
    /// Whether records carry `stripe_account` and state is kept per account.
    pub fn is_multi(&self) -> bool {
        !matches!(self, Accounts::One(_))
    }
}

/// Test or live mode, as the key's prefix says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    Test,
    Live,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Test => "test",
            Mode::Live => "live",
        }
    }

    /// Stripe's read-request rate limit per account for this mode.
    pub fn stripe_rate_limit(self) -> u32 {
        match self {
            Mode::Test => 25,
            Mode::Live => 100,
        }
    }
}

/// A validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub client_secret: Secret,
    pub mode: Mode,
    pub accounts: Accounts,
    /// Unix seconds.
    pub start_date: i64,
    pub lookback_secs: i64,
    pub slice_secs: i64,
    pub num_workers: usize,
    /// Requests per second the client allows itself.
    pub rate_limit: f64,
    /// Requests per second the client allows itself per endpoint.
    pub endpoint_rate_limit: f64,
    pub api_base: url::Url,
    pub stripe_version: String,
    pub request_timeout: std::time::Duration,
    /// Seconds the events pass stays behind the server's clock.
    pub event_settle_secs: i64,
    /// Fields of the config file this connector does not know, ignored.
    pub ignored_fields: Vec<String>,
}

impl Config {
    /// What to tell the user about the config: the fields it ignored.
    pub fn warnings(&self) -> Vec<String> {
        if self.ignored_fields.is_empty() {
            return Vec::new();
        }
        vec![format!(
            "config fields ignored (this connector does not know them): {}",
            self.ignored_fields
                .iter()
                .map(|f| format!("`{f}`"))
                .collect::<Vec<_>>()
                .join(", ")
        )]
    }
}

impl Config {
    /// Reads and validates a config file.
    ///
    /// # Errors
    /// A `config_error` naming the file or the field that is wrong.
    pub fn from_file(path: &Path) -> Result<Config, Error> {
        let text = std::fs::read_to_string(path).map_err(|source| Error::Read {
            path: path.display().to_string(),
            source,
        })?;
        Config::from_json(&text)
    }

    /// Parses and validates a config from JSON text.
    ///
    /// # Errors
    /// A `config_error` naming the field that is wrong.
    pub fn from_json(text: &str) -> Result<Config, Error> {
        let de = &mut serde_json::Deserializer::from_str(text);
        let raw: RawConfig = serde_path_to_error::deserialize(de).map_err(|err| {
            let path = err.path().to_string();
            let inner = crate::secret::redact_secrets(&err.into_inner().to_string());
            let message = if path.is_empty() || path == "." {
                inner
            } else {
                format!("field `{path}`: {inner}")
            };
            Error::Parse { message }
        })?;
        Config::try_from_raw(raw)
    }

    /// Validates a parsed config.
    ///
    /// # Errors
    /// A `config_error` naming the field that is wrong and what to do.
    pub fn try_from_raw(raw: RawConfig) -> Result<Config, Error> {
        let key = raw.client_secret.expose();
        let mode = if key.starts_with("sk_test_") || key.starts_with("rk_test_") {
            Mode::Test
        } else if key.starts_with("sk_live_") || key.starts_with("rk_live_") {
            Mode::Live
        } else if key.starts_with("pk_") {
            return Err(field(
                "client_secret",
                "this is a publishable key (pk_…), which cannot read data; use a secret key \
                 (sk_…) or a restricted key (rk_…) from https://dashboard.stripe.com/apikeys",
            ));
        } else if key.trim().is_empty() {
            return Err(field(
                "client_secret",
                "is empty; set it to a Stripe secret key (sk_…) or restricted key (rk_…)",
            ));
        } else {
            return Err(field(
                "client_secret",
                "is not a Stripe secret key: it must start with sk_test_, sk_live_, rk_test_ \
                 or rk_live_ (see https://dashboard.stripe.com/apikeys)",
            ));
        };
        if key.trim() != key {
            return Err(field(
                "client_secret",
                "has leading or trailing white space; paste the key alone",
            ));
        }
        if let Some(expected) = raw.mode
            && expected != mode
        {
            return Err(field(
                "mode",
                format!(
                    "is `{}` but client_secret is a {}-mode key; use a {} key ({}) or set mode to `{}`",
                    expected.as_str(),
                    mode.as_str(),
                    expected.as_str(),
                    match expected {
                        Mode::Test => "sk_test_… or rk_test_…",
                        Mode::Live => "sk_live_… or rk_live_…",
                    },
                    mode.as_str()
                ),
            ));
        }
        let account_id = match raw.account_id {
            Some(id) if id.trim().is_empty() => None,
            Some(id) => Some(account_id_of("account_id", id)?),
            None => None,
        };
        // The object form and the earlier shapes, as one choice.
        let connected = match raw.connected_accounts {
            None => None,
            Some(ConnectedAccounts::Object(object)) => match object.accounts.as_str() {
                "this_account" => None,
                "all" => Some(ConnectedAccounts::All("all".to_owned())),
                "list" => Some(ConnectedAccounts::List(
                    object.account_ids.unwrap_or_default(),
                )),
                other => {
                    return Err(field(
                        "connected_accounts",
                        format!(
                            "`accounts` is `{other}`; use \"this_account\", \"all\" or \"list\" (with account_ids)"
                        ),
                    ));
                }
            },
            Some(other) => Some(other),
        };
        let accounts = match (connected, account_id) {
            (None, one) => Accounts::One(one),
            (Some(_), Some(_)) => {
                return Err(field(
                    "connected_accounts",
                    "cannot be used together with account_id; list the account in connected_accounts instead",
                ));
            }
            (Some(ConnectedAccounts::All(all)), None) if all == "all" => Accounts::All,
            (Some(ConnectedAccounts::All(other)), None) => {
                return Err(field(
                    "connected_accounts",
                    format!("`{other}` is neither \"all\" nor a list of acct_… ids"),
                ));
            }
            (Some(ConnectedAccounts::Object(_)), None) => Accounts::One(None),
            (Some(ConnectedAccounts::List(ids)), None) => {
                if ids.is_empty() {
                    return Err(field(
                        "connected_accounts",
                        "is an empty list; name at least one acct_… id, or \"all\"",
                    ));
                }
                let mut seen = std::collections::BTreeSet::new();
                let mut list = Vec::with_capacity(ids.len());
                for id in ids {
                    let id = account_id_of("connected_accounts", id)?;
                    if seen.insert(id.clone()) {
                        list.push(id);
                    }
                }
                Accounts::List(list)
            }
        };
        let start_date = OffsetDateTime::parse(&raw.start_date, &Rfc3339)
            .map_err(|err| {
                field(
                    "start_date",
                    format!(
                        "`{}` is not an RFC 3339 date-time ({err}); write it like 2017-01-25T00:00:00Z",
                        raw.start_date
                    ),
                )
            })?
            .unix_timestamp();
        // Upper bounds: Stripe has existed since 2011, and days × 86,400 must not overflow.
        if !(0..=36_500).contains(&raw.lookback_window_days) {
            return Err(field(
                "lookback_window_days",
                format!("must be 0 to 36500 days; got {}", raw.lookback_window_days),
            ));
        }
        if !(1..=36_500).contains(&raw.slice_range) {
            return Err(field(
                "slice_range",
                format!("must be 1 to 36500 days; got {}", raw.slice_range),
            ));
        }

        let rate_limit = match raw.call_rate_limit {
            Some(limit) if limit < 1 => {
                return Err(field(
                    "call_rate_limit",
                    format!("must be at least 1 request per second; got {limit}"),
                ));
            }
            Some(limit) => limit as f64,
            None => f64::from(mode.stripe_rate_limit()) * ACCOUNT_PACE,
        };
        let endpoint_rate_limit = match raw.endpoint_rate_limit {
            Some(limit) if limit < 1 => {
                return Err(field(
                    "endpoint_rate_limit",
                    format!("must be at least 1 request per second; got {limit}"),
                ));
            }
            Some(limit) => limit as f64,
            None => {
                (crate::stripe::limits::STRIPE_ENDPOINT_LIMIT * ENDPOINT_PACE).max(rate_limit / 4.0)
            }
        };
        let num_workers = match raw.num_workers {
            Some(n) if !(1..=200).contains(&n) => {
                return Err(field(
                    "num_workers",
                    format!("must be between 1 and 200; got {n}"),
                ));
            }
            Some(n) => n as usize,
            // Little's law: in flight = rate × latency; Stripe pages take 0.2–0.8 s.
            None => ((rate_limit * IN_FLIGHT_LATENCY_SECS).ceil() as usize).clamp(4, 200),
        };
        let api_base = url::Url::parse(&raw.api_base)
            .ok()
            .filter(|url| matches!(url.scheme(), "http" | "https") && url.has_host())
            .ok_or_else(|| {
                field(
                    "api_base",
                    format!(
                        "`{}` is not an http(s) URL; leave it out to use {DEFAULT_API_BASE}",
                        raw.api_base
                    ),
                )
            })?;
        if !crate::secret::key_may_travel_to(&api_base) {
            return Err(field(
                "api_base",
                format!(
                    "`{}` is plain http to a host that is not this machine: the API key would travel unencrypted. Use https:// (plain http:// is only for a loopback address such as the emulator on 127.0.0.1)",
                    raw.api_base
                ),
            ));
        }
        if raw.stripe_version.trim().is_empty() {
            return Err(field(
                "stripe_version",
                format!("is empty; leave it out to use {DEFAULT_STRIPE_VERSION}"),
            ));
        }
        if !(1..=600).contains(&raw.request_timeout_secs) {
            return Err(field(
                "request_timeout_secs",
                format!(
                    "must be between 1 and 600 seconds; got {}",
                    raw.request_timeout_secs
                ),
            ));
        }
        if !(0..=3600).contains(&raw.event_settle_secs) {
            return Err(field(
                "event_settle_secs",
                format!(
                    "must be between 0 and 3600 seconds; got {}",
                    raw.event_settle_secs
                ),
            ));
        }
        Ok(Config {
            event_settle_secs: raw.event_settle_secs,
            request_timeout: std::time::Duration::from_secs(raw.request_timeout_secs as u64),
            client_secret: raw.client_secret,
            mode,
            accounts,
            start_date,
            lookback_secs: raw.lookback_window_days * 86_400,
            slice_secs: raw.slice_range * 86_400,
            num_workers,
            rate_limit,
            endpoint_rate_limit,
            api_base,
            stripe_version: raw.stripe_version,
            ignored_fields: raw.unknown.into_keys().collect(),
        })
    }
}

fn account_id_of(name: &'static str, id: String) -> Result<String, Error> {
    let id = id.trim().to_owned();
    if id.starts_with("acct_")
        && id.len() > 5
        && id.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
    {
        Ok(id)
    } else {
        Err(field(
            name,
            format!("`{id}` is not a Stripe account id: it must look like acct_1AbC…"),
        ))
    }
}

/// The JSON schema of the config, as `spec` prints it and `spec.json` stores it.
pub fn connection_specification() -> serde_json::Value {
    // Inline sub-schemas: Airbyte's form renderer does not follow `$ref`s.
    let generator = schemars::generate::SchemaSettings::draft07()
        .with(|settings| settings.inline_subschemas = true)
        .into_generator();
    let schema = generator.into_root_schema_for::<RawConfig>();
    let mut value = serde_json::to_value(schema).unwrap_or_default();
    unwrap_descriptions(&mut value);
    airbyte_form(&mut value);
    value
}

/// The conventions of Airbyte's config form: unknown fields allowed (a config of another
/// version must not be refused), an optional field is one that is not `required` (not a
/// `null` type or default), and no `format` the form does not know.
fn airbyte_form(root: &mut serde_json::Value) {
    use serde_json::Value;
    root["additionalProperties"] = Value::Bool(true);
    let Some(properties) = root["properties"].as_object_mut() else {
        return;
    };
    for property in properties.values_mut() {
        let Some(property) = property.as_object_mut() else {
            continue;
        };
        if let Some(Value::Array(types)) = property.get("type") {
            let types: Vec<Value> = types.iter().filter(|t| *t != "null").cloned().collect();
            if let [single] = types.as_slice() {
                property.insert("type".to_owned(), single.clone());
            }
        }
        if let Some(Value::Array(values)) = property.get_mut("enum") {
            values.retain(|v| !v.is_null());
        }
        if property.get("default") == Some(&Value::Null) {
            property.remove("default");
        }
        if property.get("format").and_then(Value::as_str) == Some("int64") {
            property.remove("format");
        }
    }
}

/// Doc comments wrap at 100 columns; a description reads as one paragraph per blank
/// line, so single line breaks become spaces.
fn unwrap_descriptions(value: &mut serde_json::Value) {
    match value {
        serde_json::Value::Object(map) => {
            for (key, value) in map.iter_mut() {
                if let (true, serde_json::Value::String(text)) = (key == "description", &mut *value)
                {
                    *text = text
                        .split("\n\n")
                        .map(|p| p.replace('\n', " "))
                        .collect::<Vec<_>>()
                        .join("\n\n");
                } else {
                    unwrap_descriptions(value);
                }
            }
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(unwrap_descriptions),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(json: serde_json::Value) -> Result<Config, Error> {
        Config::from_json(&json.to_string())
    }

    #[test]
    fn airbyte_config_parses_with_defaults() {
        let config = parse(serde_json::json!({
            "client_secret": "sk_live_abcdefgh12345678",
            "account_id": "acct_123",
            "start_date": "2020-01-01T00:00:00Z",
        }))
        .unwrap();
        assert_eq!(config.mode, Mode::Live);
        assert_eq!(config.start_date, 1_577_836_800);
        assert_eq!(config.slice_secs, 365 * 86_400);
        assert_eq!(config.num_workers, 76);
        assert_eq!(config.rate_limit, 95.0);
        assert_eq!(config.endpoint_rate_limit, 24.5);
        assert_eq!(config.api_base.as_str(), "https://api.stripe.com/");
        assert_eq!(config.stripe_version, DEFAULT_STRIPE_VERSION);
    }

    #[test]
    fn bad_fields_are_named_and_secret_free() {
        let key = "sk_test_abcdefgh12345678";
        let cases = [
            (serde_json::json!({}), "client_secret"),
            (
                serde_json::json!({"client_secret": "pk_test_abcdefgh"}),
                "publishable",
            ),
            (
                serde_json::json!({"client_secret": "hello"}),
                "client_secret",
            ),
            (
                serde_json::json!({"client_secret": key, "start_date": "2020-13-01"}),
                "start_date",
            ),
            (
                serde_json::json!({"client_secret": key, "slice_range": 0}),
                "slice_range",
            ),
            (
                serde_json::json!({"client_secret": key, "lookback_window_days": -1}),
                "lookback_window_days",
            ),
            (
                serde_json::json!({"client_secret": key, "num_workers": -2}),
                "num_workers",
            ),
            (
                serde_json::json!({"client_secret": key, "call_rate_limit": 0}),
                "call_rate_limit",
            ),
            (
                serde_json::json!({"client_secret": key, "num_workers": "many"}),
                "num_workers",
            ),
            (
                serde_json::json!({"client_secret": key, "api_base": "ftp://x"}),
                "api_base",
            ),
            (
                serde_json::json!({"client_secret": key, "account_id": "123"}),
                "account_id",
            ),
            (
                serde_json::json!({"client_secret": key, "api_retention_streams": "customers"}),
                "api_retention_streams",
            ),
            (
                serde_json::json!({"client_secret": key, "connected_accounts": {"accounts": "some"}}),
                "this_account",
            ),
            (
                serde_json::json!({"client_secret": key, "connected_accounts": {"accounts": "list"}}),
                "empty list",
            ),
            (
                serde_json::json!({"client_secret": key, "mode": "live"}),
                "test-mode key",
            ),
            (
                serde_json::json!({"client_secret": key, "mode": "sandbox"}),
                "mode",
            ),
            (
                serde_json::json!({"client_secret": key, "connected_accounts": []}),
                "connected_accounts",
            ),
            (
                serde_json::json!({"client_secret": key, "connected_accounts": "some"}),
                "connected_accounts",
            ),
            (
                serde_json::json!({"client_secret": key, "connected_accounts": ["x"]}),
                "connected_accounts",
            ),
            (
                serde_json::json!({"client_secret": key, "connected_accounts": "all", "account_id": "acct_1"}),
                "together",
            ),
        ];
        for (json, needle) in cases {
            let err = parse(json.clone()).unwrap_err().to_string();
            assert!(err.contains(needle), "{json} → {err}");
            assert!(!err.contains("abcdefgh12345678"), "{err}");
        }
    }

    #[test]
    fn plain_http_only_to_loopback() {
        let key = "sk_test_abcdefgh12345678";
        for base in [
            "http://127.0.0.1:12111",
            "http://127.8.9.10",
            "http://localhost:8080",
            "http://[::1]:9000",
            "https://api.stripe.com",
            "https://10.0.0.5:8443",
        ] {
            let config = parse(serde_json::json!({"client_secret": key, "api_base": base}));
            assert!(config.is_ok(), "{base}: {:?}", config.err());
        }
        for base in [
            "http://api.stripe.com",
            "http://10.0.0.5:8080",
            "http://[2001:db8::1]",
            "http://0.0.0.0:12111",
            "http://localhost.example.com",
            "http://127.0.0.1.nip.io",
        ] {
            let err = parse(serde_json::json!({"client_secret": key, "api_base": base}))
                .unwrap_err()
                .to_string();
            assert!(
                err.contains("`api_base`") && err.contains("https"),
                "{base}: {err}"
            );
            assert!(!err.contains("abcdefgh12345678"), "{err}");
        }
    }

    #[test]
    fn connected_accounts_are_a_list_or_all() {
        let key = "sk_test_abcdefgh12345678";
        let all =
            parse(serde_json::json!({"client_secret": key, "connected_accounts": "all"})).unwrap();
        assert_eq!(all.accounts, Accounts::All);
        let list = parse(serde_json::json!({"client_secret": key, "connected_accounts": ["acct_1", "acct_2", "acct_1"], "mode": "test"})).unwrap();
        assert_eq!(
            list.accounts,
            Accounts::List(vec!["acct_1".into(), "acct_2".into()])
        );
        let one = parse(serde_json::json!({"client_secret": key, "account_id": "acct_9"})).unwrap();
        assert_eq!(one.accounts, Accounts::One(Some("acct_9".into())));
    }

    /// A config of Airbyte's Stripe source 6.x with every field it has set.
    #[test]
    fn an_airbyte_6_config_is_taken_as_it_is() {
        let config = parse(serde_json::json!({
            "client_secret": "sk_live_abcdefgh12345678",
            "account_id": "acct_1AbC",
            "start_date": "2023-01-01T00:00:00Z",
            "lookback_window_days": 7,
            "slice_range": 30,
            "num_workers": 10,
            "call_rate_limit": 25,
            "api_retention_streams": ["customers", "invoices"],
        }))
        .unwrap();
        assert_eq!(config.accounts, Accounts::One(Some("acct_1AbC".into())));
        assert_eq!(config.start_date, 1_672_531_200);
        assert_eq!(config.lookback_secs, 7 * 86_400);
        assert_eq!(config.slice_secs, 30 * 86_400);
        assert_eq!(config.num_workers, 10);
        assert_eq!(config.rate_limit, 25.0);
        assert!(config.ignored_fields.is_empty());
        assert!(config.warnings().is_empty());
    }

    #[test]
    fn unknown_fields_are_ignored_and_named() {
        let config = parse(serde_json::json!({
            "client_secret": "sk_test_abcdefgh12345678",
            "colour": "red",
            "is_sandbox": false,
        }))
        .unwrap();
        assert_eq!(config.ignored_fields, vec!["colour", "is_sandbox"]);
        let warnings = config.warnings();
        assert_eq!(warnings.len(), 1);
        assert!(
            warnings[0].contains("`colour`") && warnings[0].contains("`is_sandbox`"),
            "{warnings:?}"
        );
    }

    #[test]
    fn connected_accounts_object_form() {
        let key = "sk_test_abcdefgh12345678";
        let cases = [
            (
                serde_json::json!({"accounts": "this_account"}),
                Accounts::One(None),
            ),
            (serde_json::json!({"accounts": "all"}), Accounts::All),
            (
                serde_json::json!({"accounts": "list", "account_ids": ["acct_1", "acct_2"]}),
                Accounts::List(vec!["acct_1".into(), "acct_2".into()]),
            ),
        ];
        for (value, expected) in cases {
            let config =
                parse(serde_json::json!({"client_secret": key, "connected_accounts": value}))
                    .unwrap();
            assert_eq!(config.accounts, expected, "{value}");
        }
    }

    /// Airbyte's form: every field titled, described and ordered; optional fields not
    /// nullable; no `anyOf`; a `oneOf` only of objects with a `const` discriminator.
    #[test]
    fn the_spec_follows_airbytes_form_conventions() {
        let spec = connection_specification();
        assert_eq!(spec["additionalProperties"], true);
        let text = spec.to_string();
        assert!(!text.contains("anyOf"), "{text}");
        assert!(!text.contains("\"null\""), "{text}");
        let properties = spec["properties"].as_object().unwrap();
        let mut orders = std::collections::BTreeSet::new();
        for (name, property) in properties {
            assert!(property["title"].is_string(), "{name} has a title");
            assert!(
                property["description"].is_string(),
                "{name} has a description"
            );
            let order = property["order"].as_i64().unwrap_or(-1);
            assert!(order >= 0 && orders.insert(order), "{name}: order {order}");
            if let Some(branches) = property.get("oneOf") {
                assert_eq!(property["type"], "object", "{name}");
                for branch in branches.as_array().unwrap() {
                    assert_eq!(branch["type"], "object", "{name}");
                    assert!(branch["title"].is_string(), "{name}");
                    assert!(
                        branch["properties"]["accounts"]["const"].is_string(),
                        "{name}"
                    );
                    assert!(
                        !branch.to_string().contains("oneOf"),
                        "{name}: nested oneOf"
                    );
                }
            }
        }
        for field in [
            "client_secret",
            "account_id",
            "start_date",
            "lookback_window_days",
            "slice_range",
            "num_workers",
            "call_rate_limit",
            "api_retention_streams",
        ] {
            assert!(properties.contains_key(field), "{field}");
        }
        assert_eq!(properties["client_secret"]["airbyte_secret"], true);
        assert_eq!(spec["required"], serde_json::json!(["client_secret"]));
    }

    #[test]
    fn debug_output_hides_the_key() {
        let config =
            parse(serde_json::json!({"client_secret": "sk_test_abcdefgh12345678"})).unwrap();
        assert!(!format!("{config:?}").contains("abcdefgh12345678"));
    }
}
