//! The OpenAPI 3.1 document, generated from the handlers' annotations and served at
//! `/api/v1/openapi.json`. This file owns what the annotations share: the error responses (once,
//! in `components/responses`, grouped by what causes them in [`errors`]), the path parameters
//! with their formats ([`params`]) and the security schemes.

use crate::error::ErrorBody;
use crate::state::AppState;
use crate::{
    accounts, apps, conversations, developer, directory, grants, health, messages, metrics, oauth,
    open, payments, registry, review, sessions, webhooks, ws,
};
use axum::routing::get;
use axum::{Json, Router};
use serde::Serialize;
use std::borrow::Cow;
use utoipa::openapi::schema::{AdditionalProperties, ObjectBuilder, Schema, Type};
use utoipa::openapi::security::{ApiKey, ApiKeyValue, Http, HttpAuthScheme, SecurityScheme};
use utoipa::openapi::{Content, OpenApi as Document, Ref, RefOr};
use utoipa::{Modify, OpenApi, PartialSchema, ToSchema};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Minihost API",
        description = "Client API of the Minihost messenger, the Open API for app backends (`/open/v1`) and OAuth for their servers (`/oauth`).\n\nAuthenticate with `Authorization: Bearer <session token>` (from `POST /api/v1/sessions`). Every error is `{\"error\": {\"code\", \"message\"[, \"field\"]}}` (schema `Error`), except on `/oauth/*`, which answers RFC 6749 errors (schema `OAuthError`). A method a path does not have is answered `405` with code `method_not_allowed` and an `Allow` header (response `MethodNotAllowed`). Live delivery: WebSocket `GET /api/v1/ws`."
    ),
    paths(
        health::healthz,
        health::readyz,
        metrics::metrics,
        accounts::sign_up,
        accounts::sign_in,
        accounts::sign_out,
        accounts::me,
        accounts::set_locale,
        accounts::set_role,
        accounts::set_disabled,
        sessions::list,
        sessions::revoke,
        sessions::change_password,
        conversations::create,
        conversations::list,
        conversations::show,
        conversations::add_members,
        conversations::remove_member,
        conversations::mark_read,
        messages::send,
        messages::history,
        apps::sideload,
        apps::list,
        apps::uninstall,
        apps::open,
        apps::action,
        apps::invocations,
        payments::set_pin,
        payments::history,
        payments::pending,
        payments::confirm,
        payments::decline,
        payments::wallet,
        payments::merchant_ledger,
        payments::app_payments,
        payments::developer_refund,
        webhooks::log,
        webhooks::rotate_secret,
        grants::consent_requests,
        grants::list,
        grants::answer,
        grants::revoke_app,
        grants::revoke_scope,
        grants::privacy,
        apps::install,
        apps::trial,
        apps::app_policy,
        apps::set_app_policy,
        registry::publish,
        registry::versions,
        registry::withdraw,
        registry::release,
        registry::rollback,
        registry::stats,
        registry::testers,
        registry::add_tester,
        registry::remove_tester,
        review::queue,
        review::show,
        review::claim,
        review::decide,
        review::suspend,
        review::unsuspend,
        review::report,
        review::reports,
        review::audit,
        directory::list,
        directory::show,
        directory::panel,
        directory::add,
        directory::open,
        directory::remove,
        developer::register,
        developer::rotate_secret,
        oauth::jwks,
        oauth::token,
        oauth::revoke,
        oauth::introspect,
        open::me,
        open::send,
        open::profile,
        open::request_payment,
        open::payment,
        open::refund,
        ws::upgrade,
        ws::ticket::issue,
        openapi_json,
    ),
    components(
        schemas(ErrorBody, OAuthErrorBody, AnyObject),
        responses(
            errors::BadRequest,
            errors::Unauthorized,
            errors::InvalidToken,
            errors::MethodNotAllowed,
            errors::PayloadTooLarge,
            errors::UnsupportedMediaType,
            errors::Internal,
            errors::Unavailable,
            errors::TooManyRequests,
            errors::RequestTimeout,
            errors::OAuthInvalidRequest,
            errors::OAuthInvalidClient,
            errors::OAuthServerError,
            errors::OAuthUnavailable,
        )
    ),
    modifiers(&Shared)
)]
struct ApiDoc;

/// The document.
pub fn document() -> Document {
    ApiDoc::openapi()
}

/// Routes of this module.
pub fn router() -> Router<AppState> {
    Router::new().route("/api/v1/openapi.json", get(openapi_json))
}

#[utoipa::path(get, path = "/api/v1/openapi.json", operation_id = "openapi_document",
    responses((status = 200, description = "This document (OpenAPI 3.1)", body = AnyObject)))]
async fn openapi_json() -> Json<Document> {
    Json(document())
}

/// A JSON object whose fields the response's description names (`{"type": "object",
/// "additionalProperties": true}`: a bare `object` reads as "no fields" to client generators).
pub(crate) struct AnyObject;

impl PartialSchema for AnyObject {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::Object)
            .additional_properties(Some(AdditionalProperties::FreeForm(true)))
            .description(Some(
                "A JSON object; the response's description names its fields.",
            ))
            .into()
    }
}

impl ToSchema for AnyObject {
    fn name() -> Cow<'static, str> {
        Cow::Borrowed("AnyObject")
    }
}

/// An OAuth endpoint's refusal (RFC 6749 section 5.2).
#[derive(Serialize, ToSchema)]
#[schema(as = OAuthError)]
pub(crate) struct OAuthErrorBody {
    /// `invalid_request`, `invalid_client`, `invalid_grant`, `unauthorized_client`,
    /// `unsupported_grant_type`, `invalid_scope` or `server_error`.
    error: String,
    /// For people: what is wrong.
    error_description: String,
}

/// What every operation shares, filled in once: the security schemes, and the `Error` body of
/// every error response an annotation gives no body (the API answers every error with that
/// body; [`crate::error::json_errors`] makes sure of it).
struct Shared;

impl Modify for Shared {
    fn modify(&self, doc: &mut Document) {
        let components = doc.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "session",
            SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)),
        );
        components.add_security_scheme(
            "session_query",
            SecurityScheme::ApiKey(ApiKey::Query(ApiKeyValue::with_description(
                "token",
                "The session token as `?token=` (for WebSocket clients that cannot set headers)",
            ))),
        );
        components.add_security_scheme(
            "ws_ticket",
            SecurityScheme::ApiKey(ApiKey::Query(ApiKeyValue::with_description(
                "ticket",
                "A one-time ticket from `POST /api/v1/ws/tickets` as `?ticket=` (browsers: keeps the session token out of URLs)",
            ))),
        );
        let mut jwt = Http::new(HttpAuthScheme::Bearer);
        jwt.bearer_format = Some("JWT".into());
        jwt.description =
            Some("An access token from `POST /oauth/token` (RFC 9068, Ed25519)".into());
        components.add_security_scheme("access_token", SecurityScheme::Http(jwt));
        let mut basic = Http::new(HttpAuthScheme::Basic);
        basic.description = Some(
            "The app's `client_id` and `client_secret` (or send them as form fields instead)"
                .into(),
        );
        components.add_security_scheme("client", SecurityScheme::Http(basic));

        for item in doc.paths.paths.values_mut() {
            let operations = [
                &mut item.get,
                &mut item.put,
                &mut item.post,
                &mut item.delete,
                &mut item.patch,
            ];
            for op in operations.into_iter().flatten() {
                for (status, response) in op.responses.responses.iter_mut() {
                    let error = status.starts_with('4') || status.starts_with('5');
                    if let (true, RefOr::T(response)) = (error, response)
                        && response.content.is_empty()
                    {
                        response
                            .content
                            .insert("application/json".into(), error_content());
                    }
                }
            }
        }
    }
}

/// `application/json` with the `Error` schema.
fn error_content() -> Content {
    Content::new(Some(Ref::from_schema_name("Error")))
}

/// The shared error responses (`components/responses`) and the groups of them an operation
/// lists in its annotation, by what causes them: `responses(..., errors::JsonBody,
/// errors::Session, errors::Server)`.
pub(crate) mod errors {
    use super::error_content;
    use std::collections::BTreeMap;
    use utoipa::openapi::header::Header;
    use utoipa::openapi::schema::{ObjectBuilder, Type};
    use utoipa::openapi::{Content, Ref, RefOr, Response};
    use utoipa::{IntoResponses, ToResponse};

    fn response(description: &str, content: Content) -> RefOr<Response> {
        let mut r = Response::new(description);
        r.content.insert("application/json".into(), content);
        RefOr::T(r)
    }

    fn with_header(r: RefOr<Response>, name: &str, description: &str) -> RefOr<Response> {
        match r {
            RefOr::T(mut r) => {
                let mut h = Header::new(ObjectBuilder::new().schema_type(Type::String));
                h.description = Some(description.into());
                r.headers.insert(name.into(), h);
                RefOr::T(r)
            }
            other => other,
        }
    }

    fn oauth_content() -> Content {
        Content::new(Some(Ref::from_schema_name("OAuthError")))
    }

    macro_rules! shared {
        ($(#[$doc:meta])* $name:ident, $body:expr) => {
            $(#[$doc])*
            pub(crate) struct $name;

            impl<'r> ToResponse<'r> for $name {
                fn response() -> (&'r str, RefOr<Response>) {
                    (stringify!($name), $body)
                }
            }
        };
    }

    shared!(
        /// 400 from the extractors.
        BadRequest,
        response(
            "The request cannot be understood: the body is not JSON (`malformed_json`), does not fit the schema (`invalid_body`), or the query string does not fit (`invalid_query`). The message names the field.",
            error_content()
        )
    );
    shared!(
        /// 401 on the client API.
        Unauthorized,
        response(
            "No session token, or it is invalid, expired or revoked (`unauthorized`).",
            error_content()
        )
    );
    shared!(
        /// 401 on the Open API.
        InvalidToken,
        with_header(
            response(
                "No access token, or it is invalid, expired or revoked (`invalid_token`).",
                error_content()
            ),
            "WWW-Authenticate",
            "`Bearer realm=\"minihost\"[, error=\"invalid_token\", error_description=\"...\"]` (RFC 6750)"
        )
    );
    shared!(
        /// 405 from the router.
        MethodNotAllowed,
        with_header(
            response(
                "The path exists, but not with this method (`method_not_allowed`).",
                error_content()
            ),
            "Allow",
            "The methods this path answers"
        )
    );
    shared!(
        /// 413 from the body limit.
        PayloadTooLarge,
        response(
            "The body is larger than allowed (`payload_too_large`): 64 KiB, or 16 MiB for a component.",
            error_content()
        )
    );
    shared!(
        /// 415 from the JSON extractor.
        UnsupportedMediaType,
        response(
            "The body is not sent as `Content-Type: application/json` (`unsupported_media_type`).",
            error_content()
        )
    );
    shared!(
        /// 500.
        Internal,
        response(
            "A bug or an outage (`internal`); the detail is in the server's log only.",
            error_content()
        )
    );
    shared!(
        /// 503.
        Unavailable,
        response(
            "The server is shutting down, the database does not answer, or mini-apps are not enabled on this node (`unavailable`); or it is at a bound it keeps, such as password and PIN checks running at once (`busy`, with a `Retry-After` header in seconds).",
            error_content()
        )
    );
    shared!(
        /// 429 from the throttles.
        TooManyRequests,
        with_header(
            response(
                "Too many attempts from this client address or on this account (`rate_limited`).",
                error_content()
            ),
            "Retry-After",
            "Seconds to wait before trying again"
        )
    );
    shared!(
        /// 408 from the request timeout.
        RequestTimeout,
        response(
            "The request took longer than the server allows, its body included (`request_timeout`).",
            error_content()
        )
    );
    shared!(
        /// 400 on `/oauth/*`.
        OAuthInvalidRequest,
        response(
            "`invalid_request` (including a body that is not `application/x-www-form-urlencoded`), `invalid_grant`, `unauthorized_client`, `unsupported_grant_type` or `invalid_scope`.",
            oauth_content()
        )
    );
    shared!(
        /// 401 on `/oauth/*`.
        OAuthInvalidClient,
        with_header(
            response(
                "`invalid_client`: no client credentials, or wrong ones.",
                oauth_content()
            ),
            "WWW-Authenticate",
            "`Basic realm=\"minihost\"`"
        )
    );
    shared!(
        /// 500 on `/oauth/*`.
        OAuthServerError,
        response(
            "`server_error`; the detail is in the server's log only.",
            oauth_content()
        )
    );
    shared!(
        /// 503 on `/oauth/*`.
        OAuthUnavailable,
        response(
            "`server_error`: the database does not answer; try again later.",
            oauth_content()
        )
    );

    /// References to shared responses, by status.
    fn refs(list: &[(&str, &str)]) -> BTreeMap<String, RefOr<Response>> {
        list.iter()
            .map(|(status, name)| {
                (
                    (*status).to_owned(),
                    RefOr::Ref(Ref::from_response_name(*name)),
                )
            })
            .collect()
    }

    macro_rules! group {
        ($(#[$doc:meta])* $name:ident, [$(($status:literal, $response:ident)),* $(,)?]) => {
            $(#[$doc])*
            pub(crate) struct $name;

            impl IntoResponses for $name {
                fn responses() -> BTreeMap<String, RefOr<Response>> {
                    refs(&[$(($status, stringify!($response))),*])
                }
            }
        };
    }

    group!(
        /// An operation that reads a JSON body.
        JsonBody,
        [
            ("400", BadRequest),
            ("413", PayloadTooLarge),
            ("415", UnsupportedMediaType)
        ]
    );
    group!(
        /// An operation that reads a query string.
        Query,
        [("400", BadRequest)]
    );
    group!(
        /// An operation that needs a session (`security(("session" = []))`).
        Session,
        [("401", Unauthorized)]
    );
    group!(
        /// An operation of the Open API (`security(("access_token" = []))`).
        Token,
        [("401", InvalidToken)]
    );
    group!(
        /// An operation that uses the database or the mini-app platform.
        Server,
        [("408", RequestTimeout), ("500", Internal), ("503", Unavailable)]
    );
    group!(
        /// An operation throttled per client address or account (sign-in, sign-up, PIN).
        Throttled,
        [("429", TooManyRequests)]
    );
    group!(
        /// An OAuth endpoint.
        OAuth,
        [
            ("400", OAuthInvalidRequest),
            ("401", OAuthInvalidClient),
            ("500", OAuthServerError),
            ("503", OAuthUnavailable)
        ]
    );
}

/// The path parameters, one meaning and one format per name. An operation lists its own:
/// `params(params::Conversation, params::App)`. A value of another format names nothing: 404.
pub(crate) mod params {
    use utoipa::IntoParams;
    use utoipa::openapi::path::{Parameter, ParameterBuilder, ParameterIn};
    use utoipa::openapi::schema::{ObjectBuilder, Type};
    use utoipa::openapi::{Object, Required};

    fn path(name: &str, description: &str, schema: ObjectBuilder) -> Vec<Parameter> {
        vec![
            ParameterBuilder::new()
                .name(name)
                .parameter_in(ParameterIn::Path)
                .required(Required::True)
                .description(Some(description))
                .schema(Some(Object::from(schema.schema_type(Type::String))))
                .build(),
        ]
    }

    fn pattern(p: &str) -> ObjectBuilder {
        ObjectBuilder::new().pattern(Some(p))
    }

    macro_rules! param {
        ($(#[$doc:meta])* $name:ident, $param:literal, $description:literal, $schema:expr) => {
            $(#[$doc])*
            pub(crate) struct $name;

            impl IntoParams for $name {
                fn into_params(_: impl Fn() -> Option<ParameterIn>) -> Vec<Parameter> {
                    path($param, $description, $schema)
                }
            }
        };
    }

    param!(
        /// `{id}`: a conversation.
        Conversation,
        "id",
        "A conversation id (`c_` and 24 hex digits).",
        pattern("^c_[0-9a-f]{24}$")
    );
    param!(
        /// `{message}`: a message.
        Message,
        "message",
        "A message id (`m_` and 24 hex digits).",
        pattern("^m_[0-9a-f]{24}$")
    );
    param!(
        /// `{username}`: a user.
        Username,
        "username",
        "A username: 3 to 32 lowercase letters, digits and `_`, starting with a letter.",
        pattern("^[a-z][a-z0-9_]{2,31}$")
    );
    param!(
        /// `{app}`: an app.
        App,
        "app",
        "An app id (the `id` of its `miniapp.toml`): 3 to 40 lowercase letters, digits and `-`, starting with a letter.",
        pattern("^[a-z][a-z0-9-]{2,39}$")
    );
    param!(
        /// `{version}`: a version of an app.
        Version,
        "version",
        "A version of the app (semantic versioning, as in its `miniapp.toml`).",
        pattern(r"^[0-9]+\.[0-9]+\.[0-9]+([-+][0-9A-Za-z.+-]*)?$")
    );
    param!(
        /// `{scope}`: a scope.
        Scope,
        "scope",
        "A scope an app asks for.",
        ObjectBuilder::new().enum_values(Some(
            minihost_core::Scope::ALL.iter().map(|s| s.as_str())
        ))
    );
    param!(
        /// `{payment}`: a payment request (order).
        Payment,
        "payment",
        "A payment request id (`po_` and 20 hex digits).",
        pattern("^po_[0-9a-f]{20}$")
    );
    param!(
        /// `{session}`: one of the user's sessions.
        Session,
        "session",
        "A session id (`ses_` and 24 hex digits), as `GET /api/v1/me/sessions` lists it.",
        pattern("^ses_[0-9a-f]{24}$")
    );
    param!(
        /// `{app_user_id}`: a user as one app sees them.
        AppUserId,
        "app_user_id",
        "An app-scoped user id (`au_` and 32 hex digits), as the app's tokens carry it in `sub`.",
        pattern("^au_[0-9a-f]{32}$")
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_responses_that_name_no_body_get_the_error_body() {
        let doc = serde_json::to_value(document()).unwrap_or_default();
        let forbidden = &doc["paths"]["/api/v1/users/{username}/role"]["put"]["responses"]["403"];
        assert_eq!(
            forbidden["content"]["application/json"]["schema"]["$ref"],
            "#/components/schemas/Error"
        );
        let oauth = &doc["paths"]["/oauth/token"]["post"]["responses"]["400"]["$ref"];
        assert_eq!(oauth, "#/components/responses/OAuthInvalidRequest");
    }
}
