//! Why an app's request was refused. Mirrors the WIT `error` variant so the sandbox gets a
//! typed error, and maps to HTTP statuses for the Open API.

use minihost_store::StoreError;

/// A refusal or failure of an app's request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AppError {
    /// The user did not grant this scope (or revoked it).
    #[error("permission denied: scope {0} is not granted")]
    PermissionDenied(String),
    /// A quota (storage, timers) is exhausted.
    #[error("quota exceeded: {0}")]
    QuotaExceeded(String),
    /// A send budget is exhausted for now (it refills).
    #[error("budget exceeded: {0}")]
    BudgetExceeded(String),
    /// An argument was rejected.
    #[error("invalid: {0}")]
    Invalid(String),
    /// The request clashes with an earlier one (an idempotency key reused with other
    /// parameters).
    #[error("conflict: {0}")]
    Conflict(String),
    /// The thing named does not exist for this app.
    #[error("{0} not found")]
    NotFound(&'static str),
    /// The platform cannot serve the request now.
    #[error("unavailable: {0}")]
    Unavailable(String),
}

impl From<StoreError> for AppError {
    fn from(e: StoreError) -> Self {
        tracing::error!(error = %e, "store error serving an app");
        match e {
            StoreError::NotFound => AppError::NotFound("resource"),
            StoreError::Closed => AppError::Unavailable("shutting down".into()),
            _ => AppError::Unavailable("storage error".into()),
        }
    }
}
