//! Errors of the Stripe client: Stripe's error body, the status, the request id, and
//! whose problem it is.

use crate::error::FailureType;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// 401: the key is wrong, expired or revoked.
    #[error(
        "Stripe rejected the API key in `client_secret` (401: {message}). Check the key at https://dashboard.stripe.com/apikeys; for test mode use an sk_test_/rk_test_ key, for live mode sk_live_/rk_live_"
    )]
    Unauthorized { message: String },
    /// 403 on a connected account: not connected to this platform, or access revoked.
    #[error(
        "Stripe denied access to account {account} (403: {message}). Check `account_id`: the account must be connected to the key's platform and must not have revoked access"
    )]
    AccountInvalid { account: String, message: String },
    /// 403: a restricted key without permission for this resource.
    #[error(
        "the API key may not read {path} (403: {message}). Give the restricted key read permission for this resource in the Stripe dashboard, or deselect the stream"
    )]
    PermissionDenied { path: String, message: String },
    /// The account does not use the Stripe product behind this endpoint: Issuing not set
    /// up (400 `Your account is not set up to use Issuing…`), or Connect endpoints on an
    /// account that is not a platform (403 `platform_account_required`). Not a
    /// permission problem: the stream is empty on this account.
    #[error("the account does not use the product behind {path} ({status}: {message})")]
    NotEnabled {
        path: String,
        status: u16,
        message: String,
    },
    /// Another 4xx: a request Stripe did not accept.
    #[error("Stripe answered {status} to GET {path}: {message} (request {request_id})")]
    Rejected {
        path: String,
        status: u16,
        message: String,
        request_id: String,
    },
    /// 429 with `Stripe-Should-Retry: false`: Stripe says retrying would not help.
    #[error(
        "Stripe refused GET {path} with 429 and `Stripe-Should-Retry: false` ({message}, request {request_id}); not retried. The saved state lets the next sync resume; if it persists, lower `call_rate_limit` or `num_workers`, or ask Stripe support with the request id"
    )]
    RateLimitedNoRetry {
        path: String,
        message: String,
        request_id: String,
    },
    /// Retries used up on 429s, 5xx or network errors.
    #[error("GET {path} failed after {attempts} attempts; last error: {last}")]
    Exhausted {
        path: String,
        attempts: u32,
        last: String,
    },
    /// A 2xx whose body is not what Stripe sends.
    #[error("Stripe's answer to GET {path} could not be read: {message}")]
    InvalidResponse { path: String, message: String },
    #[error("cannot set up the HTTP client: {0}")]
    Setup(String),
}

impl Error {
    pub fn failure_type(&self) -> FailureType {
        match self {
            Error::Unauthorized { .. }
            | Error::AccountInvalid { .. }
            | Error::PermissionDenied { .. }
            | Error::NotEnabled { .. } => FailureType::ConfigError,
            Error::Exhausted { .. } | Error::RateLimitedNoRetry { .. } => {
                FailureType::TransientError
            }
            Error::Rejected { .. } | Error::InvalidResponse { .. } | Error::Setup(_) => {
                FailureType::SystemError
            }
        }
    }
}

/// Stripe's error body: `{"error": {"message": …, "type": …, "code": …}}`.
#[derive(Debug, Default, serde::Deserialize)]
pub(crate) struct ErrorBody {
    #[serde(default)]
    pub error: ErrorDetail,
}

#[derive(Debug, Default, serde::Deserialize)]
pub(crate) struct ErrorDetail {
    #[serde(default)]
    pub message: Option<String>,
    #[serde(default)]
    pub code: Option<String>,
}
