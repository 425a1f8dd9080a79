//! Extractors whose rejections are [`ApiError`]s (JSON bodies, query strings), so that every
//! bad request is answered in the one error format, in our words: the field and what is wrong
//! with it, never the wording of axum or the name of a Rust type.

use crate::error::ApiError;
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::HeaderMap;
use axum::http::request::Parts;
use minihost_core::Limits;
use serde::de::DeserializeOwned;
use std::error::Error as StdError;

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
                message: format!("the body is not valid JSON: {}", json_syntax(&e)),
            }),
            Err(JsonRejection::JsonDataError(e)) => Err(ApiError::BadRequest {
                code: "invalid_body",
                message: match find::<serde_path_to_error::Error<serde_json::Error>>(&e) {
                    Some(e) => describe(e.path(), &e.inner().to_string(), "field"),
                    None => tidy(&inner_text(&e)),
                },
            }),
            Err(JsonRejection::BytesRejection(e)) => {
                if e.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
                    Err(ApiError::PayloadTooLarge)
                } else {
                    Err(ApiError::BadRequest {
                        code: "unreadable_body",
                        message: format!("the body could not be read: {}", inner_text(&e)),
                    })
                }
            }
            Err(other) => Err(ApiError::BadRequest {
                code: "invalid_body",
                message: inner_text(&other),
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
                message: match find::<serde_path_to_error::Error<serde::de::value::Error>>(&e) {
                    Some(e) => describe(e.path(), &e.inner().to_string(), "query parameter"),
                    None => inner_text(&e),
                },
            })
    }
}

/// The first error of type `E` in `e`'s chain of sources.
fn find<'e, E: StdError + 'static>(e: &'e (dyn StdError + 'static)) -> Option<&'e E> {
    let mut next = Some(e);
    while let Some(e) = next {
        if let Some(found) = e.downcast_ref::<E>() {
            return Some(found);
        }
        next = e.source();
    }
    None
}

/// The text of the deepest cause of `e`: the detail, without the prefixes axum adds.
fn inner_text(e: &(dyn StdError + 'static)) -> String {
    let mut deepest = e;
    while let Some(next) = deepest.source() {
        deepest = next;
    }
    deepest.to_string()
}

/// What is wrong with a body that is not JSON, with its position (`expected value at line 1
/// column 5`).
fn json_syntax(e: &(dyn StdError + 'static)) -> String {
    if let Some(e) = find::<serde_path_to_error::Error<serde_json::Error>>(e) {
        return e.inner().to_string();
    }
    inner_text(e)
}

/// `field `content.text`: missing` from serde's `missing field `text`` at path `content`.
fn describe(path: &serde_path_to_error::Path, message: &str, what: &str) -> String {
    let message = without_position(message);
    let parent = match path.to_string() {
        root if root == "." => String::new(),
        p => p,
    };
    let join = |name: &str| {
        if parent.is_empty() {
            name.to_owned()
        } else {
            format!("{parent}.{name}")
        }
    };
    if let Some(name) = message
        .strip_prefix("missing field `")
        .and_then(|rest| rest.split('`').next())
    {
        return format!("{what} `{}`: missing", join(name));
    }
    if let Some(rest) = message.strip_prefix("unknown field `") {
        let (name, tail) = rest.split_once('`').unwrap_or((rest, ""));
        let tail = tail.trim_start_matches(',').trim();
        // The path of an unknown field already ends with its name.
        let field = if parent == name || parent.ends_with(&format!(".{name}")) {
            parent.clone()
        } else {
            join(name)
        };
        return if tail.is_empty() {
            format!("{what} `{field}`: unknown")
        } else {
            format!("{what} `{field}`: unknown; {tail}")
        };
    }
    // serde reads a struct from an array too, field by field; our bodies are objects.
    let top = parent.is_empty() || parent.starts_with('[');
    let shape = message.starts_with("invalid type: ") || message.starts_with("invalid length ");
    if what == "field" && top && shape {
        return "the body must be a JSON object".to_owned();
    }
    if parent.is_empty() {
        return tidy(message);
    }
    format!("{what} `{parent}`: {}", tidy(message))
}

/// `message` without serde_json's ` at line L column C` (a field's path says more).
fn without_position(message: &str) -> &str {
    if let Some(at) = message.rfind(" at line ") {
        let tail = &message[at + " at line ".len()..];
        let mut words = tail.split(' ');
        let shaped = matches!(
            (words.next(), words.next(), words.next(), words.next()),
            (Some(l), Some("column"), Some(c), None)
                if l.chars().all(|x| x.is_ascii_digit()) && c.chars().all(|x| x.is_ascii_digit())
        );
        if shaped {
            return &message[..at];
        }
    }
    message
}

/// serde's `expected ...` in JSON's words: `struct SignUp` is an object, `i64` an integer.
fn tidy(message: &str) -> String {
    let Some((head, expected)) = message.rsplit_once(", expected ") else {
        return message.to_owned();
    };
    let plain = match expected {
        e if e.starts_with("struct ")
            || e.starts_with("internally tagged enum ")
            || e.starts_with("enum ")
            || e == "a map" =>
        {
            "an object"
        }
        "i8" | "i16" | "i32" | "i64" | "i128" | "isize" => "an integer",
        "u8" | "u16" | "u32" | "u64" | "u128" | "usize" => "a non-negative integer",
        "a sequence" => "an array",
        "a boolean" => "true or false",
        other => other,
    };
    format!("{head}, expected {plain}")
}

/// The `Idempotency-Key` header of a request, validated (1 to
/// [`Limits::MAX_IDEMPOTENCY_KEY_BYTES`] visible ASCII characters), if it has one.
pub(crate) fn idempotency_key(headers: &HeaderMap) -> Result<Option<String>, ApiError> {
    let Some(v) = headers.get("idempotency-key") else {
        return Ok(None);
    };
    let key = v
        .to_str()
        .map_err(|_| ApiError::invalid("Idempotency-Key", "must be visible ASCII"))?;
    if key.is_empty() || key.len() > Limits::MAX_IDEMPOTENCY_KEY_BYTES {
        return Err(ApiError::invalid(
            "Idempotency-Key",
            format!(
                "must be 1 to {} characters",
                Limits::MAX_IDEMPOTENCY_KEY_BYTES
            ),
        ));
    }
    Ok(Some(key.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Body {
        name: String,
        seq: i64,
        inner: Option<Inner>,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Inner {
        text: String,
    }

    fn check(json: &str, expected: &str) {
        let mut de = serde_json::Deserializer::from_str(json);
        let e = serde_path_to_error::deserialize::<_, Body>(&mut de)
            .map(|_| ())
            .err();
        let got = e.map(|e| describe(e.path(), &e.inner().to_string(), "field"));
        assert_eq!(got.as_deref(), Some(expected), "{json}");
    }

    #[test]
    fn data_errors_name_the_field_in_plain_words() {
        check(r#"{"seq": 1}"#, "field `name`: missing");
        check(
            r#"{"name": "a", "seq": 1, "x": 2}"#,
            "field `x`: unknown; expected one of `name`, `seq`, `inner`",
        );
        check(
            r#"{"name": "a", "seq": "1"}"#,
            r#"field `seq`: invalid type: string "1", expected an integer"#,
        );
        check(
            r#"{"name": "a", "seq": 1, "inner": {}}"#,
            "field `inner.text`: missing",
        );
        check(
            r#"{"name": "a", "seq": 1, "inner": 5}"#,
            "field `inner`: invalid type: integer `5`, expected an object",
        );
        check("[1]", "the body must be a JSON object");
    }

    #[test]
    fn only_a_position_is_cut() {
        assert_eq!(without_position("bad at line 1 column 20"), "bad");
        assert_eq!(without_position("bad at line one"), "bad at line one");
    }
}
