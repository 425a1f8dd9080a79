//! The one API error type. Every failure becomes `{"error": {"code", "message"[, "field"]}}`
//! ([`ErrorBody`]) with the right status; internal details are logged, never sent to the client.
//! [`json_errors`] holds the same promise for the few answers axum makes by itself.

use axum::Json;
use axum::body::Body;
use axum::extract::Request;
use axum::http::header::CONTENT_TYPE;
use axum::http::{HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use minihost_core::Invalid;
use minihost_store::StoreError;
use serde::Serialize;
use utoipa::ToSchema;

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
    /// A refusal with its own status and code (e.g. 409 `insufficient_funds`, 423
    /// `payments_locked`).
    #[error("{message}")]
    Refused {
        /// The HTTP status.
        status: StatusCode,
        /// Machine-readable code.
        code: &'static str,
        /// What is wrong.
        message: String,
    },
    /// 429 `rate_limited`: too many attempts; `Retry-After` says when to try again.
    #[error("{message}")]
    TooManyRequests {
        /// Seconds to wait (the `Retry-After` header).
        retry_after: u64,
        /// What is limited.
        message: &'static str,
    },
    /// 503 `busy`: the server is at a bound it keeps (e.g. password hashes running at once);
    /// `Retry-After` says when to try again.
    #[error("{message}")]
    Busy {
        /// Seconds to wait (the `Retry-After` header).
        retry_after: u64,
        /// What is busy.
        message: &'static str,
    },
    /// 408 `request_timeout`: the request took longer than the server allows.
    #[error("the request took too long (body too slow, or the work too long)")]
    RequestTimeout,
    /// 500: a bug or an outage; the detail is logged only.
    #[error("internal error")]
    Internal(String),
    /// 405: the path exists, but not with this method (the `Allow` header lists those it has).
    #[error("{0} is not allowed here; the Allow header lists the methods this path answers")]
    MethodNotAllowed(Method),
}

/// The body of every error answer: `{"error": {"code", "message"[, "field"]}}`.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Error)]
pub struct ErrorBody {
    /// What went wrong.
    pub error: ErrorDetail,
}

/// What went wrong.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorDetail {
    /// Machine-readable, stable: `malformed_json`, `invalid_body`, `invalid_query`, `invalid`,
    /// `unauthorized`, `invalid_token`, `forbidden`, `insufficient_scope`, `not_found`,
    /// `method_not_allowed`, `conflict`, `payload_too_large`, `unsupported_media_type`,
    /// `rate_limited` (429, with `Retry-After`), `busy` (503, with `Retry-After`),
    /// `request_timeout` (408), ...
    pub code: String,
    /// For people: what is wrong and, where it helps, how to fix it.
    pub message: String,
    /// The offending field (422 only), as a dotted path such as `content.text`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
}

impl ErrorBody {
    /// An error body.
    pub fn new(code: impl Into<String>, message: impl Into<String>) -> Self {
        ErrorBody {
            error: ErrorDetail {
                code: code.into(),
                message: message.into(),
                field: None,
            },
        }
    }

    /// The answer: `status` with this body.
    pub fn into_response(self, status: StatusCode) -> Response {
        (status, Json(self)).into_response()
    }
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
            ApiError::Refused { status, code, .. } => (*status, code),
            ApiError::Unauthorized(_) => (StatusCode::UNAUTHORIZED, "unauthorized"),
            ApiError::Forbidden(_) => (StatusCode::FORBIDDEN, "forbidden"),
            ApiError::NotFound(_) => (StatusCode::NOT_FOUND, "not_found"),
            ApiError::Conflict(_) => (StatusCode::CONFLICT, "conflict"),
            ApiError::PayloadTooLarge => (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large"),
            ApiError::UnsupportedMediaType => {
                (StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type")
            }
            ApiError::Unavailable(_) => (StatusCode::SERVICE_UNAVAILABLE, "unavailable"),
            ApiError::TooManyRequests { .. } => (StatusCode::TOO_MANY_REQUESTS, "rate_limited"),
            ApiError::Busy { .. } => (StatusCode::SERVICE_UNAVAILABLE, "busy"),
            ApiError::RequestTimeout => (StatusCode::REQUEST_TIMEOUT, "request_timeout"),
            ApiError::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
            ApiError::MethodNotAllowed(_) => (StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed"),
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
        let mut body = ErrorBody::new(code, self.to_string());
        if let ApiError::Invalid(inv) = &self {
            body.error.field = Some(inv.field.clone());
        }
        let mut response = body.into_response(status);
        if let ApiError::TooManyRequests { retry_after, .. } | ApiError::Busy { retry_after, .. } =
            &self
        {
            response.headers_mut().insert(
                axum::http::header::RETRY_AFTER,
                HeaderValue::from(*retry_after),
            );
        }
        response
    }
}

/// The router's answer to a method a path does not have (axum keeps the `Allow` header).
pub async fn method_not_allowed(method: Method) -> ApiError {
    ApiError::MethodNotAllowed(method)
}

/// Answers `408 request_timeout` when the request (its body read included) is not answered
/// within `limit`. A WebSocket's session runs after its upgrade answer, outside this bound.
pub async fn request_timeout(
    axum::extract::State(limit): axum::extract::State<std::time::Duration>,
    request: Request,
    next: Next,
) -> Response {
    match tokio::time::timeout(limit, next.run(request)).await {
        Ok(response) => response,
        Err(_) => ApiError::RequestTimeout.into_response(),
    }
}

/// Largest body of an axum-made error answer that is read to reuse its text.
const MAX_REJECTION_TEXT: usize = 4 * 1024;

/// Makes every error answer a JSON [`ErrorBody`]: the answers the API makes already are, and the
/// few that axum makes by itself (a path segment that is not UTF-8, a WebSocket request without
/// its upgrade headers) are plain text; those are rewritten, keeping their status and text.
/// (Answers to `HEAD` have no body and are left alone.)
pub async fn json_errors(request: Request, next: Next) -> Response {
    let head = request.method() == Method::HEAD;
    let response = next.run(request).await;
    let status = response.status();
    let is_json = response
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if head || !(status.is_client_error() || status.is_server_error()) || is_json {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let text = axum::body::to_bytes(body, MAX_REJECTION_TEXT)
        .await
        .ok()
        .and_then(|b| String::from_utf8(b.to_vec()).ok())
        .map(|t| t.trim().to_owned())
        .filter(|t| !t.is_empty())
        .unwrap_or_else(|| status.canonical_reason().unwrap_or("error").to_lowercase());
    let code = status
        .canonical_reason()
        .unwrap_or("error")
        .to_ascii_lowercase()
        .replace([' ', '-'], "_");
    let json = serde_json::to_vec(&ErrorBody::new(code, text)).unwrap_or_default();
    parts
        .headers
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    parts.headers.remove(axum::http::header::CONTENT_LENGTH);
    Response::from_parts(parts, Body::from(json))
}
