//! The one API error type. Every failure becomes `{"error": {"code", "message"[, "field"]}}` with
//! the right status; internal details are logged, never sent to the client.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use minihost_core::Invalid;
use minihost_store::StoreError;
use serde_json::json;

/// An error answered to a client.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// 400: the request cannot be understood (malformed JSON, bad query string, ...).
    #[error("{message}")]
    BadRequest {
        /// Machine-readable code.
        code: &'static str,
        /// What is wrong.
        message: String,
    },
    /// 422: a field breaks a rule.
    #[error("{0}")]
    Invalid(#[from] Invalid),
    /// 401: no valid credentials.
    #[error("{0}")]
    Unauthorized(&'static str),
    /// 403: authenticated, but not allowed.
    #[error("{0}")]
    Forbidden(String),
    /// 404: no such thing (or not visible to this user).
    #[error("{0} not found")]
    NotFound(&'static str),
    /// 409: it exists already.
    #[error("{0}")]
    Conflict(String),
    /// 413: the body is larger than allowed.
    #[error("request body is too large")]
    PayloadTooLarge,
    /// 415: the body is not JSON.
    #[error("expected a JSON body with Content-Type: application/json")]
    UnsupportedMediaType,
    /// 503: the server is shutting down or a dependency is down.
    #[error("{0}")]
    Unavailable(&'static str),
    /// 422 with its own code: the request is well-formed but cannot be applied as asked.
    #[error("{message}")]
    Unprocessable {
        /// Machine-readable code.
        code: &'static str,
        /// What is wrong.
        message: String,
    },
    /// 500: a bug or an outage; the detail is logged only.
    #[error("internal error")]
    Internal(String),
}

impl ApiError {
    /// 422 for `field`.
    pub fn invalid(field: &str, message: impl Into<String>) -> Self {
        ApiError::Invalid(Invalid::new(field, message))
    }

    fn status_and_code(&self) -> (StatusCode, &'static str) {
        match self {
            ApiError::BadRequest { code, .. } => (StatusCode::BAD_REQUEST, code),
            ApiError::Invalid(_) => (StatusCode::UNPROCESSABLE_ENTITY, "invalid"),
            ApiError::Unprocessable { code, .. } => (StatusCode::UNPROCESSABLE_ENTITY, code),
            ApiError::Unauthorized(_) => (StatusCode::UNAUTHORIZED, "unauthorized"),
            ApiError::Forbidden(_) => (StatusCode::FORBIDDEN, "forbidden"),
            ApiError::NotFound(_) => (StatusCode::NOT_FOUND, "not_found"),
            ApiError::Conflict(_) => (StatusCode::CONFLICT, "conflict"),
            ApiError::PayloadTooLarge => (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large"),
            ApiError::UnsupportedMediaType => {
                (StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type")
            }
            ApiError::Unavailable(_) => (StatusCode::SERVICE_UNAVAILABLE, "unavailable"),
            ApiError::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound => ApiError::NotFound("resource"),
            StoreError::Conflict(what) => ApiError::Conflict(format!("{what} already exists")),
            StoreError::Closed => ApiError::Unavailable("the server is shutting down"),
            StoreError::IdempotencyKeyReused => ApiError::Unprocessable {
                code: "idempotency_key_reused",
                message: "this Idempotency-Key was already used with a different body; \
                          use a new key for a new message"
                    .into(),
            },
            other => ApiError::Internal(other.to_string()),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code) = self.status_and_code();
        if let ApiError::Internal(detail) = &self {
            tracing::error!(%detail, "internal error");
        }
        let mut body = json!({ "code": code, "message": self.to_string() });
        if let ApiError::Invalid(inv) = &self {
            body["field"] = json!(inv.field);
        }
        (status, Json(json!({ "error": body }))).into_response()
    }
}
