//! Extractors whose rejections are [`ApiError`]s (JSON bodies, query strings), so that every
//! bad request is answered in the one error format.

use crate::error::ApiError;
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

/// A JSON body; see [`axum::Json`].
pub struct ApiJson<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(v)) => Ok(ApiJson(v)),
            Err(JsonRejection::MissingJsonContentType(_)) => Err(ApiError::UnsupportedMediaType),
            Err(JsonRejection::JsonSyntaxError(e)) => Err(ApiError::BadRequest {
                code: "malformed_json",
                message: format!("the body is not valid JSON: {}", e.body_text()),
            }),
            Err(JsonRejection::JsonDataError(e)) => Err(ApiError::BadRequest {
                code: "invalid_body",
                message: e.body_text(),
            }),
            Err(JsonRejection::BytesRejection(e)) => {
                if e.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
                    Err(ApiError::PayloadTooLarge)
                } else {
                    Err(ApiError::BadRequest {
                        code: "unreadable_body",
                        message: e.body_text(),
                    })
                }
            }
            Err(other) => Err(ApiError::BadRequest {
                code: "invalid_body",
                message: other.body_text(),
            }),
        }
    }
}

/// A query string; see [`axum::extract::Query`].
pub struct ApiQuery<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map(|q| ApiQuery(q.0))
            .map_err(|e: QueryRejection| ApiError::BadRequest {
                code: "invalid_query",
                message: e.body_text(),
            })
    }
}
