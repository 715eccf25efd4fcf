//! Stripe Connect OAuth: linking a merchant's account to a platform, and unlinking it.
//!
//! The only requests the connector ever sends that are not GET live here: the token
//! exchange (`POST /oauth/token`) and deauthorization (`POST /oauth/deauthorize`) on
//! connect.stripe.com. Neither touches a merchant's data. The read client in
//! [`super::Client`] cannot send anything but GET.

use std::time::Duration;

use rand::RngCore;
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;

use crate::secret::{Secret, redact_secrets};

pub const DEFAULT_OAUTH_BASE: &str = "https://connect.stripe.com";

/// OAuth errors. All are the user's to fix, except an unreachable host.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("`{0}` is not a valid URL")]
    Url(String),
    #[error("the OAuth request to {url} failed: {message}")]
    Http { url: String, message: String },
    #[error("Stripe refused the OAuth request ({error}): {description}")]
    Refused { error: String, description: String },
    #[error(
        "the redirect carried state `{got}` but this link was made with another state: the link may be forged or stale; start again"
    )]
    StateMismatch { got: String },
    #[error("the merchant did not connect ({error}): {description}")]
    Denied { error: String, description: String },
    #[error("the redirect listener failed: {0}")]
    Listener(String),
    #[error(
        "`--oauth-base` {0} is plain http to a host that is not this machine: the secret key would travel unencrypted. Use https:// (plain http:// only to a loopback address)"
    )]
    Insecure(String),
    #[error(
        "no redirect from Stripe reached the listener within {0} s; run `connect listen` again (or raise --timeout-secs) and finish linking in the browser sooner"
    )]
    TimedOut(u64),
}

impl Error {
    pub fn failure_type(&self) -> crate::error::FailureType {
        match self {
            Error::Http { .. } | Error::Listener(_) | Error::TimedOut(_) => {
                crate::error::FailureType::TransientError
            }
            _ => crate::error::FailureType::ConfigError,
        }
    }
}

/// What OAuth scope to ask the merchant for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Scope {
    /// Read the merchant's data only (the default; any number of platforms may hold it).
    ReadOnly,
    /// Read and write (only one platform may hold it per merchant).
    ReadWrite,
}

impl Scope {
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::ReadOnly => "read_only",
            Scope::ReadWrite => "read_write",
        }
    }
}

/// A random, URL-safe `state` for one authorization.
pub fn random_state() -> String {
    let mut bytes = [0u8; 16];
    rand::rng().fill_bytes(&mut bytes);
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The page a merchant opens to link their account to the platform.
///
/// # Errors
/// `Url` when `oauth_base` is not a URL.
pub fn authorize_url(
    oauth_base: &str,
    client_id: &str,
    scope: Scope,
    state: &str,
    redirect_uri: Option<&str>,
) -> Result<url::Url, Error> {
    let mut url = url::Url::parse(oauth_base)
        .and_then(|base| base.join("/oauth/authorize"))
        .map_err(|_| Error::Url(oauth_base.to_owned()))?;
    {
        let mut query = url.query_pairs_mut();
        query
            .append_pair("response_type", "code")
            .append_pair("client_id", client_id)
            .append_pair("scope", scope.as_str())
            .append_pair("state", state);
        if let Some(redirect_uri) = redirect_uri {
            query.append_pair("redirect_uri", redirect_uri);
        }
    }
    Ok(url)
}

/// A linked account, as `POST /oauth/token` answers. The tokens are secrets.
#[derive(Debug, Deserialize)]
pub struct Linked {
    pub stripe_user_id: String,
    pub livemode: bool,
    pub scope: String,
    #[serde(default)]
    pub access_token: Option<Secret>,
    #[serde(default)]
    pub refresh_token: Option<Secret>,
}

/// What `connect` prints of a linked account: its id, mode and scope, and the tokens
/// only when asked for.
#[derive(Debug, Serialize)]
pub struct LinkedReport {
    pub stripe_user_id: String,
    pub livemode: bool,
    pub scope: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub access_token: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
}

impl Linked {
    pub fn report(&self, show_tokens: bool) -> LinkedReport {
        let token = |t: &Option<Secret>| {
            t.as_ref()
                .filter(|_| show_tokens)
                .map(|t| t.expose().to_owned())
        };
        LinkedReport {
            stripe_user_id: self.stripe_user_id.clone(),
            livemode: self.livemode,
            scope: self.scope.clone(),
            access_token: token(&self.access_token),
            refresh_token: token(&self.refresh_token),
        }
    }
}

#[derive(Deserialize)]
struct OAuthError {
    error: String,
    #[serde(default)]
    error_description: String,
}

fn http() -> Result<reqwest::Client, Error> {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .map_err(|err| Error::Listener(err.to_string()))
}

async fn post<T: for<'de> Deserialize<'de>>(
    oauth_base: &str,
    path: &str,
    secret_key: &Secret,
    form: &[(&str, &str)],
) -> Result<T, Error> {
    let url = url::Url::parse(oauth_base)
        .and_then(|base| base.join(path))
        .map_err(|_| Error::Url(oauth_base.to_owned()))?;
    if !crate::secret::key_may_travel_to(&url) {
        return Err(Error::Insecure(oauth_base.to_owned()));
    }
    let fail = |message: String| Error::Http {
        url: url.to_string(),
        message: redact_secrets(&message),
    };
    let response = http()?
        .post(url.clone())
        .bearer_auth(secret_key.expose())
        .form(form)
        .send()
        .await
        .map_err(|err| fail(err.to_string()))?;
    let status = response.status();
    let body = response
        .bytes()
        .await
        .map_err(|err| fail(err.to_string()))?;
    if status.is_success() {
        return serde_json::from_slice(&body)
            .map_err(|err| fail(format!("unreadable answer: {err}")));
    }
    match serde_json::from_slice::<OAuthError>(&body) {
        Ok(err) => Err(Error::Refused {
            error: err.error,
            description: redact_secrets(&err.error_description),
        }),
        Err(_) => Err(fail(format!(
            "{status}: {}",
            redact_secrets(&String::from_utf8_lossy(&body))
        ))),
    }
}

/// Exchanges an authorization code for the linked account.
///
/// # Errors
/// `Refused` (e.g. `invalid_grant` for a used or unknown code), `Http`.
pub async fn exchange_code(
    oauth_base: &str,
    secret_key: &Secret,
    code: &str,
) -> Result<Linked, Error> {
    post(
        oauth_base,
        "/oauth/token",
        secret_key,
        &[("grant_type", "authorization_code"), ("code", code)],
    )
    .await
}

/// Unlinks a connected account from the platform.
///
/// # Errors
/// `Refused`, `Http`.
pub async fn deauthorize(
    oauth_base: &str,
    secret_key: &Secret,
    client_id: &str,
    account: &str,
) -> Result<String, Error> {
    #[derive(Deserialize)]
    struct Answer {
        stripe_user_id: String,
    }
    let answer: Answer = post(
        oauth_base,
        "/oauth/deauthorize",
        secret_key,
        &[("client_id", client_id), ("stripe_user_id", account)],
    )
    .await?;
    Ok(answer.stripe_user_id)
}

/// How long one browser connection may take to send its request line: a connection
/// that sends nothing must not keep the real redirect waiting.
const REQUEST_LINE_TIMEOUT: Duration = Duration::from_secs(10);

/// Waits on `listener` for the merchant's browser to come back from Stripe's authorize
/// page, checks `state`, and returns the code. The browser gets a short page saying
/// what happened. Gives up after `timeout`.
///
/// # Errors
/// `StateMismatch` for a foreign state, `Denied` when the merchant declined, `TimedOut`,
/// `Listener`.
pub async fn receive_code(
    listener: &TcpListener,
    state: &str,
    timeout: Duration,
) -> Result<String, Error> {
    tokio::time::timeout(timeout, receive_code_forever(listener, state))
        .await
        .unwrap_or(Err(Error::TimedOut(timeout.as_secs())))
}

async fn receive_code_forever(listener: &TcpListener, state: &str) -> Result<String, Error> {
    loop {
        let (mut socket, _) = listener
            .accept()
            .await
            .map_err(|err| Error::Listener(err.to_string()))?;
        let mut reader = BufReader::new(&mut socket);
        let mut request_line = String::new();
        match tokio::time::timeout(REQUEST_LINE_TIMEOUT, reader.read_line(&mut request_line)).await
        {
            Ok(Ok(_)) => {}
            // A silent or broken connection is not the redirect: wait for the next one.
            Ok(Err(_)) | Err(_) => continue,
        }
        // GET /callback?code=…&state=… HTTP/1.1
        let target = request_line.split_whitespace().nth(1).unwrap_or("/");
        let Ok(url) = url::Url::parse("http://localhost").and_then(|base| base.join(target)) else {
            continue;
        };
        let param = |name: &str| {
            url.query_pairs()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.into_owned())
        };
        if param("code").is_none() && param("error").is_none() {
            // A favicon or a stray request: not the redirect.
            respond(
                &mut socket,
                "404 Not Found",
                "Waiting for Stripe's redirect.",
            )
            .await;
            continue;
        }
        let got_state = param("state").unwrap_or_default();
        let outcome = if got_state != state {
            Err(Error::StateMismatch { got: got_state })
        } else if let Some(error) = param("error") {
            Err(Error::Denied {
                error,
                description: param("error_description").unwrap_or_default(),
            })
        } else {
            param("code").ok_or_else(|| Error::Listener("no code".to_owned()))
        };
        let page = match &outcome {
            Ok(_) => "The account is linked. You can close this window.".to_owned(),
            Err(err) => format!("The account was not linked: {err}"),
        };
        respond(&mut socket, "200 OK", &page).await;
        return outcome;
    }
}

async fn respond(socket: &mut tokio::net::TcpStream, status: &str, text: &str) {
    let response = format!(
        "HTTP/1.1 {status}\r\ncontent-type: text/plain; charset=utf-8\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{text}",
        text.len()
    );
    if socket.write_all(response.as_bytes()).await.is_err() {
        // The browser went away; the outcome stands.
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn authorize_url_asks_for_read_only_by_default() {
        let url = authorize_url(
            DEFAULT_OAUTH_BASE,
            "ca_123",
            Scope::ReadOnly,
            "abc",
            Some("http://127.0.0.1:9/callback"),
        )
        .unwrap();
        assert_eq!(
            url.as_str(),
            "https://connect.stripe.com/oauth/authorize?response_type=code&client_id=ca_123&scope=read_only&state=abc&redirect_uri=http%3A%2F%2F127.0.0.1%3A9%2Fcallback"
        );
    }

    #[test]
    fn states_are_random() {
        assert_ne!(random_state(), random_state());
        assert_eq!(random_state().len(), 32);
    }

    #[test]
    fn report_hides_tokens_unless_asked() {
        let linked = Linked {
            stripe_user_id: "acct_1".into(),
            livemode: false,
            scope: "read_only".into(),
            access_token: Some(Secret::new("sk_test_token123456")),
            refresh_token: Some(Secret::new("rt_refresh123456")),
        };
        let hidden = serde_json::to_string(&linked.report(false)).unwrap();
        assert!(
            !hidden.contains("token123456") && !hidden.contains("refresh123456"),
            "{hidden}"
        );
        let shown = serde_json::to_string(&linked.report(true)).unwrap();
        assert!(shown.contains("sk_test_token123456"), "{shown}");
    }
}
