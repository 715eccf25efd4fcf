//! The crate's error type: every module's error, each with the Airbyte `failure_type`
//! that tells an orchestrator whose problem it is.

use serde::Serialize;

/// Whose problem an error is, in the Airbyte protocol's terms.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FailureType {
    /// The user's input (config, catalog, state, key permissions) is wrong.
    ConfigError,
    /// A bug or an answer the connector does not understand.
    SystemError,
    /// Worth retrying later: the network, Stripe's availability, rate limits.
    TransientError,
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Config(#[from] crate::config::Error),
    #[error(transparent)]
    Catalog(#[from] crate::streams::catalog::Error),
    #[error(transparent)]
    SingerCatalog(#[from] crate::streams::singer::Error),
    #[error(transparent)]
    State(#[from] crate::sync::state::Error),
    #[error(transparent)]
    Stripe(#[from] crate::stripe::Error),
    #[error(transparent)]
    Connect(#[from] crate::stripe::connect::Error),
    #[error("cannot write the output: {0}")]
    Output(#[from] std::io::Error),
    #[error("{message}")]
    StreamsFailed {
        message: String,
        failure_type: FailureType,
    },
    #[error("{0}")]
    Usage(String),
}

impl Error {
    pub fn failure_type(&self) -> FailureType {
        match self {
            Error::Config(_)
            | Error::Catalog(_)
            | Error::SingerCatalog(_)
            | Error::State(_)
            | Error::Usage(_) => FailureType::ConfigError,
            Error::Stripe(err) => err.failure_type(),
            Error::Connect(err) => err.failure_type(),
            Error::Output(_) => FailureType::SystemError,
            Error::StreamsFailed { failure_type, .. } => *failure_type,
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
