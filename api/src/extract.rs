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
/// never depends on the body, then parses it with [`JsonBody::parse`]. It answers
/// `400 malformed_request` for a body that is not JSON, does not fit the type, carries a field
/// the type does not know (at any depth) or holds a control character in any text, and
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

    /// The body as a `T`, which must not carry fields it does not know: a typo is not silently
    /// ignored, even where the type itself tolerates unknown fields (because a workflow reads
    /// it again on replay). An unknown field answers `400 malformed_request` naming it.
    pub fn parse<T: DeserializeOwned>(&self) -> Result<T, ApiError> {
        known_fields_only(self.value()?)
    }
}

/// `bytes` as a JSON `T`, refusing text with control characters and unknown fields as
/// [`JsonBody`] does.
pub fn from_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    known_fields_only(json_value(bytes)?)
}

/// `value` as a `T`; a field `T` does not know, at any depth, is `400 malformed_request`.
fn known_fields_only<T: DeserializeOwned>(value: Value) -> Result<T, ApiError> {
    let mut unknown = Vec::new();
    let parsed = serde_ignored::deserialize(value, |path| unknown.push(path.to_string()))
        .map_err(does_not_parse)?;
    match unknown.first() {
        Some(field) => Err(ApiError::Malformed(format!("unknown field `{field}`"))),
        None => Ok(parsed),
    }
}

fn does_not_parse(error: serde_json::Error) -> ApiError {
    ApiError::Malformed(format!("the body does not parse: {error}"))
}

fn json_value(bytes: &[u8]) -> Result<Value, ApiError> {
    let axum::Json(mut value) = axum::Json::<Value>::from_bytes(bytes)?;
    refuse_control_characters(&value)?;
    integral_numbers_as_integers(&mut value);
    Ok(value)
}

/// Rewrites every number with no fractional part (`30.0`, `1e3`) as the integer it is, at any
/// depth: JSON (and the OpenAPI document's `type: integer`) does not tell them apart, while an
/// integer field of ours would refuse the float.
fn integral_numbers_as_integers(value: &mut Value) {
    match value {
        Value::Number(number) => {
            // Only floats whose integer is exact: below 2^53 in size.
            const EXACT: f64 = 9_007_199_254_740_992.0;
            if let Some(float) = number.as_f64().filter(|_| number.is_f64())
                && float.fract() == 0.0
                && float.abs() < EXACT
            {
                *number = serde_json::Number::from(float as i64);
            }
        }
        Value::Array(items) => items.iter_mut().for_each(integral_numbers_as_integers),
        Value::Object(fields) => fields.values_mut().for_each(integral_numbers_as_integers),
        Value::Null | Value::Bool(_) | Value::String(_) => {}
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    /// A type that, like the booking the workflow reads again on replay, tolerates unknown
    /// fields itself.
    #[derive(Debug, Deserialize)]
    struct Booking {
        minutes: u32,
        terms: Option<Terms>,
    }

    #[derive(Debug, Deserialize)]
    struct Terms {
        accepted: bool,
    }

    fn malformed(result: Result<Booking, ApiError>) -> String {
        match result {
            Err(ApiError::Malformed(message)) => message,
            other => panic!("not malformed: {other:?}"),
        }
    }

    /// `type: integer` in the OpenAPI document admits `30.0`; so does the API (found by
    /// schemathesis, which sent `44089.0`).
    #[test]
    fn integral_numbers_are_integers() {
        let parsed: Booking = from_json(br#"{"minutes": 30.0}"#).unwrap();
        assert_eq!(parsed.minutes, 30);
        let parsed: Booking = from_json(br#"{"minutes": 3e1}"#).unwrap();
        assert_eq!(parsed.minutes, 30);
        for fractional in [&br#"{"minutes": 30.5}"#[..], br#"{"minutes": 9007199254740993.0}"#] {
            assert!(malformed(from_json(fractional)).contains("does not parse"));
        }
    }

    /// No field the type does not know passes, at any depth, whatever the type tolerates.
    #[test]
    fn unknown_fields_are_refused_at_any_depth() {
        let parsed: Booking =
            from_json(br#"{"minutes": 30, "terms": {"accepted": true}}"#).unwrap();
        assert!(parsed.terms.is_some_and(|terms| terms.accepted));
        let nested = br#"{"minutes": 30, "terms": {"accepted": true, "note": 1}}"#;
        let refused = malformed(from_json(nested));
        assert!(
            refused.starts_with("unknown field `terms.") && refused.ends_with("note`"),
            "{refused}"
        );
        assert_eq!(malformed(from_json(br#"{"minutes": 30, "x": 1}"#)), "unknown field `x`");
    }
}
