//! OAuth for app backends (RFC 6749, 7009, 7662) and the public keys: `POST /oauth/token`,
//! `POST /oauth/revoke`, `POST /oauth/introspect`, `GET /.well-known/jwks.json`. Bodies are
//! `application/x-www-form-urlencoded`; clients authenticate with HTTP Basic or with
//! `client_id`/`client_secret` fields; refusals are RFC 6749 JSON errors
//! (`{"error","error_description"}`) and nothing is cacheable. The broker does the work.

use crate::state::AppState;
use axum::body::Bytes;
use axum::extract::{FromRequest, Request, State};
use axum::http::header::{AUTHORIZATION, CACHE_CONTROL, CONTENT_TYPE, PRAGMA, WWW_AUTHENTICATE};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::Engine as _;
use minihost_broker::service::{Client, OAuthError, now};
use minihost_broker::{Introspection, Jwks, TokenResponse};
use serde_json::json;
use std::collections::BTreeMap;

/// Routes of this module.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/.well-known/jwks.json", get(jwks))
        .route("/oauth/token", post(token))
        .route("/oauth/revoke", post(revoke))
        .route("/oauth/introspect", post(introspect))
}

/// An OAuth endpoint's refusal, answered as RFC 6749 section 5.2 JSON.
pub(crate) struct OAuthReply(OAuthError);

impl From<OAuthError> for OAuthReply {
    fn from(e: OAuthError) -> Self {
        OAuthReply(e)
    }
}

fn invalid_request(message: impl Into<String>) -> OAuthReply {
    OAuthReply(OAuthError::InvalidRequest(message.into()))
}

fn no_store(headers: &mut HeaderMap) {
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(PRAGMA, HeaderValue::from_static("no-cache"));
}

impl IntoResponse for OAuthReply {
    fn into_response(self) -> Response {
        let e = self.0;
        let status =
            StatusCode::from_u16(e.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let description = match &e {
            OAuthError::Server(inner) => {
                tracing::error!(error = %inner, "oauth endpoint failed");
                "the authorization server failed".to_owned()
            }
            other => other.to_string(),
        };
        let body = json!({ "error": e.error_code(), "error_description": description });
        let mut response = (status, Json(body)).into_response();
        let headers = response.headers_mut();
        no_store(headers);
        if matches!(e, OAuthError::InvalidClient) {
            headers.insert(
                WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"minihost\""),
            );
        }
        response
    }
}

/// A form body (RFC 6749 section 3.2): parameters sent without a value count as omitted, a
/// parameter sent twice is an `invalid_request`, unknown parameters are ignored.
pub(crate) struct OAuthForm {
    fields: BTreeMap<String, String>,
    headers: HeaderMap,
}

impl<S: Send + Sync> FromRequest<S> for OAuthForm {
    type Rejection = OAuthReply;

    async fn from_request(req: Request, state: &S) -> Result<Self, OAuthReply> {
        let headers = req.headers().clone();
        let form_type = headers
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .is_some_and(|t| {
                t.trim()
                    .eq_ignore_ascii_case("application/x-www-form-urlencoded")
            });
        if !form_type {
            return Err(invalid_request(
                "the body must be application/x-www-form-urlencoded",
            ));
        }
        let body = Bytes::from_request(req, state)
            .await
            .map_err(|e| invalid_request(format!("unreadable body: {}", e.body_text())))?;
        let mut fields = BTreeMap::new();
        for (name, value) in url::form_urlencoded::parse(&body) {
            if value.is_empty() {
                continue;
            }
            if fields
                .insert(name.clone().into_owned(), value.into_owned())
                .is_some()
            {
                return Err(invalid_request(format!("parameter `{name}` is repeated")));
            }
        }
        Ok(OAuthForm { fields, headers })
    }
}

impl OAuthForm {
    fn get(&self, name: &str) -> Option<&str> {
        self.fields.get(name).map(String::as_str)
    }

    fn require(&self, name: &str) -> Result<&str, OAuthReply> {
        self.get(name)
            .ok_or_else(|| invalid_request(format!("parameter `{name}` is missing")))
    }

    /// The client's id and secret, from HTTP Basic (RFC 6749 section 2.3.1, each part
    /// form-urlencoded) or from the body; using both is an `invalid_request`.
    fn credentials(&self) -> Result<(String, String), OAuthReply> {
        let basic = match self.headers.get(AUTHORIZATION) {
            None => None,
            Some(value) => Some(parse_basic(value).ok_or(OAuthReply(OAuthError::InvalidClient))?),
        };
        match (basic, self.get("client_id"), self.get("client_secret")) {
            (Some(_), _, Some(_)) => Err(invalid_request(
                "authenticate with HTTP Basic or with client_secret, not both",
            )),
            (Some((id, _)), Some(form_id), None) if form_id != id => Err(invalid_request(
                "client_id differs from the HTTP Basic client",
            )),
            (Some(pair), _, None) => Ok(pair),
            (None, Some(id), Some(secret)) => Ok((id.to_owned(), secret.to_owned())),
            (None, _, _) => Err(OAuthReply(OAuthError::InvalidClient)),
        }
    }

    async fn client(&self, state: &AppState) -> Result<Client, OAuthReply> {
        let (id, secret) = self.credentials()?;
        Ok(state.broker.authenticate_client(&id, &secret).await?)
    }
}

/// `Basic base64(urlencode(id) ":" urlencode(secret))`.
fn parse_basic(value: &HeaderValue) -> Option<(String, String)> {
    let (scheme, encoded) = value.to_str().ok()?.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (id, secret) = text.split_once(':')?;
    Some((form_decode(id)?, form_decode(secret)?))
}

/// Decodes one form-urlencoded value (`+` is a space, `%XX` a byte).
fn form_decode(part: &str) -> Option<String> {
    if part.contains(['&', '=']) {
        return None;
    }
    let mut pairs = url::form_urlencoded::parse(part.as_bytes());
    match (pairs.next(), pairs.next()) {
        (Some((k, _)), None) => Some(k.into_owned()),
        (None, None) => Some(String::new()),
        _ => None,
    }
}

fn tokens_reply(tokens: TokenResponse) -> Response {
    let mut response = Json(tokens).into_response();
    no_store(response.headers_mut());
    response
}

#[utoipa::path(get, path = "/.well-known/jwks.json", operation_id = "jwks",
    responses((status = 200, description = "The Ed25519 public keys (RFC 7517/8037) that verify access tokens; `kid` matches the token header", body = crate::openapi::AnyObject)))]
pub(crate) async fn jwks(State(state): State<AppState>) -> Response {
    let jwks: Jwks = state.broker.jwks().await;
    let mut response = Json(jwks).into_response();
    response.headers_mut().insert(
        CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=60"),
    );
    response
}

#[utoipa::path(post, path = "/oauth/token", operation_id = "oauth_token",
    security(("client" = []), ()),
    request_body(content = String, content_type = "application/x-www-form-urlencoded",
        description = "`grant_type=authorization_code&code=..&code_verifier=..`, `grant_type=refresh_token&refresh_token=..`, or `grant_type=client_credentials`; client authentication by HTTP Basic or `client_id` + `client_secret`"),
    responses((status = 200, description = "`{access_token, token_type: \"Bearer\", expires_in, refresh_token?, scope}`", body = crate::openapi::AnyObject),
              crate::openapi::errors::OAuth))]
pub(crate) async fn token(
    State(state): State<AppState>,
    form: OAuthForm,
) -> Result<Response, OAuthReply> {
    let client = form.client(&state).await?;
    let at = now();
    let tokens = match form.require("grant_type")? {
        "authorization_code" => {
            let code = form.require("code")?;
            state
                .broker
                .exchange_code(&client, code, form.get("code_verifier"), at)
                .await?
        }
        "refresh_token" => {
            let refresh = form.require("refresh_token")?;
            if form.get("scope").is_some() {
                return Err(OAuthReply(OAuthError::InvalidScope(
                    "a refreshed token always carries the user's current grant; omit scope".into(),
                )));
            }
            state.broker.refresh(&client, refresh, at).await?
        }
        "client_credentials" => {
            state
                .broker
                .client_credentials(&client, form.get("scope"), at)
                .await?
        }
        _ => return Err(OAuthReply(OAuthError::UnsupportedGrantType)),
    };
    Ok(tokens_reply(tokens))
}

#[utoipa::path(post, path = "/oauth/revoke", operation_id = "oauth_revoke",
    security(("client" = []), ()),
    request_body(content = String, content_type = "application/x-www-form-urlencoded",
        description = "`token=..` (an access token or a refresh token), optional `token_type_hint`; client authentication as for /oauth/token"),
    responses((status = 200, description = "Revoked, or nothing to revoke (RFC 7009 answers the same either way)"),
              crate::openapi::errors::OAuth))]
pub(crate) async fn revoke(
    State(state): State<AppState>,
    form: OAuthForm,
) -> Result<Response, OAuthReply> {
    let client = form.client(&state).await?;
    let token = form.require("token")?;
    state
        .broker
        .revoke(&client, token, now())
        .await
        .map_err(|e| OAuthReply(OAuthError::Server(e)))?;
    let mut response = StatusCode::OK.into_response();
    no_store(response.headers_mut());
    Ok(response)
}

#[utoipa::path(post, path = "/oauth/introspect", operation_id = "oauth_introspect",
    security(("client" = []), ()),
    request_body(content = String, content_type = "application/x-www-form-urlencoded",
        description = "`token=..`; client authentication as for /oauth/token"),
    responses((status = 200, description = "RFC 7662: `{\"active\": false}` unless the token is a valid access token of the calling app", body = crate::openapi::AnyObject),
              crate::openapi::errors::OAuth))]
pub(crate) async fn introspect(
    State(state): State<AppState>,
    form: OAuthForm,
) -> Result<Response, OAuthReply> {
    let client = form.client(&state).await?;
    let token = form.require("token")?;
    let answer: Introspection = state
        .broker
        .introspect(&client, token, now())
        .await
        .map_err(|e| OAuthReply(OAuthError::Server(e)))?;
    let mut response = Json(answer).into_response();
    no_store(response.headers_mut());
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_credentials_are_form_decoded() {
        let header = |s: &str| {
            HeaderValue::from_str(&format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(s)
            ))
            .ok()
        };
        let parse = |s: &str| header(s).as_ref().and_then(parse_basic);
        assert_eq!(
            parse("mhc_1:mhcs_a%2Bb+c"),
            Some(("mhc_1".to_owned(), "mhcs_a+b c".to_owned()))
        );
        assert_eq!(parse("no-colon"), None);
        assert_eq!(parse("a=b:c"), None);
        assert_eq!(parse_basic(&HeaderValue::from_static("Bearer x")), None);
    }
}
