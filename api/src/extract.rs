//! Extractors whose rejections answer in the API's error format instead of axum's plain text.

use crate::error::ApiError;
use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts};
use axum::http::HeaderMap;
use axum::http::header::CONTENT_TYPE;
use livesessions_domain::text::check_characters;
use serde::de::DeserializeOwned;
use serde_json::Value;

/// Path parameters; one that does not parse answers `400 malformed_request`.
#[derive(Debug, FromRequestParts)]
#[from_request(via(axum::extract::Path), rejection(ApiError))]
pub struct ApiPath<T>(pub T);

/// Query parameters; one that does not parse answers `400 malformed_request`.
#[derive(Debug, FromRequestParts)]
#[from_request(via(axum::extract::Query), rejection(ApiError))]
pub struct ApiQuery<T>(pub T);

/// A JSON body, read but not yet parsed: a handler checks the caller's role first, so a `403`
/// never depends on the body, then parses it with [`JsonBody::parse`] or
/// [`JsonBody::parse_strict`]. Either answers `400 malformed_request` for a body that is not
/// JSON, does not fit the type, or holds a control character in any text, and
/// `415 unsupported_media_type` for one whose `Content-Type` names another media type.
#[derive(Debug)]
pub struct JsonBody {
    declared: Declared,
    bytes: Bytes,
}

/// The most bytes of a request body the API reads (the router's body limit, and the
/// idempotency layer's): a longer body answers `413 payload_too_large`.
pub const MAX_BODY_BYTES: usize = 1 << 20;

/// A body's raw bytes; one longer than [`MAX_BODY_BYTES`] answers `413 payload_too_large`.
#[derive(Debug)]
pub struct ApiBytes(pub Bytes);

impl<S: Send + Sync> FromRequest<S> for ApiBytes {
    type Rejection = ApiError;

    async fn from_request(request: axum::extract::Request, state: &S) -> Result<Self, ApiError> {
        Ok(Self(Bytes::from_request(request, state).await?))
    }
}

/// What the request's `Content-Type` says of its body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Declared {
    /// `application/json`, or `application/*+json`.
    Json,
    /// Another media type.
    Other,
    /// No `Content-Type`.
    Nothing,
}

/// What `headers` say the body is.
fn declared(headers: &HeaderMap) -> Declared {
    let Some(value) = headers.get(CONTENT_TYPE) else {
        return Declared::Nothing;
    };
    let essence = value.to_str().unwrap_or_default().split(';').next().unwrap_or_default();
    let essence = essence.trim().to_ascii_lowercase();
    let json = essence == "application/json"
        || essence.strip_prefix("application/").is_some_and(|sub| sub.ends_with("+json"));
    if json { Declared::Json } else { Declared::Other }
}

impl<S: Send + Sync> FromRequest<S> for JsonBody {
    type Rejection = ApiError;

    async fn from_request(request: axum::extract::Request, state: &S) -> Result<Self, ApiError> {
        let declared = declared(request.headers());
        let ApiBytes(bytes) = ApiBytes::from_request(request, state).await?;
        Ok(Self { declared, bytes })
    }
}

impl JsonBody {
    /// The body as JSON: `415` when it says it is something else, `400` when it says nothing.
    fn value(&self) -> Result<Value, ApiError> {
        let needed = "the body must be JSON, sent with Content-Type: application/json";
        match self.declared {
            Declared::Json => json_value(&self.bytes),
            Declared::Other => Err(ApiError::UnsupportedMediaType(needed.into())),
            Declared::Nothing => Err(ApiError::Malformed(needed.into())),
        }
    }

    /// The body as a `T`.
    pub fn parse<T: DeserializeOwned>(&self) -> Result<T, ApiError> {
        from_value(self.value()?)
    }

    /// The body as a `T` that must not carry fields it does not know (a typo is not silently
    /// ignored), for types that themselves tolerate unknown fields because a workflow reads
    /// them again on replay. An unknown field answers `400 malformed_request` naming it.
    pub fn parse_strict<T: DeserializeOwned>(&self) -> Result<T, ApiError> {
        let mut unknown = Vec::new();
        let parsed =
            serde_ignored::deserialize(self.value()?, |path| unknown.push(path.to_string()))
                .map_err(does_not_parse)?;
        match unknown.first() {
            Some(field) => Err(ApiError::Malformed(format!("unknown field `{field}`"))),
            None => Ok(parsed),
        }
    }
}

/// `bytes` as a JSON `T`, refusing text with control characters as [`JsonBody`] does.
pub fn from_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    from_value(json_value(bytes)?)
}

fn from_value<T: DeserializeOwned>(value: Value) -> Result<T, ApiError> {
    serde_json::from_value(value).map_err(does_not_parse)
}

fn does_not_parse(error: serde_json::Error) -> ApiError {
    ApiError::Malformed(format!("the body does not parse: {error}"))
}

fn json_value(bytes: &[u8]) -> Result<Value, ApiError> {
    let axum::Json(value) = axum::Json::<Value>::from_bytes(bytes)?;
    refuse_control_characters(&value)?;
    Ok(value)
}

/// Refuses JSON holding text (a value or a key, at any depth) with NUL or another control
/// character other than line breaks and tabs: no such text is stored or sent on. Fields with
/// stricter rules check them in their own types.
fn refuse_control_characters(value: &Value) -> Result<(), ApiError> {
    let text = |text: &str| check_characters("a text in the body", text, true);
    match value {
        Value::String(s) => Ok(text(s)?),
        Value::Array(items) => items.iter().try_for_each(refuse_control_characters),
        Value::Object(fields) => fields.iter().try_for_each(|(key, value)| {
            text(key)?;
            refuse_control_characters(value)
        }),
        Value::Null | Value::Bool(_) | Value::Number(_) => Ok(()),
    }
}
