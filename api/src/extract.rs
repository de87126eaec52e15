//! Extractors whose rejections answer in the API's error format instead of axum's plain text.

use crate::error::ApiError;
use axum::extract::{FromRequest, FromRequestParts};
use livesessions_domain::text::check_characters;
use serde_json::Value;

/// A JSON body; a body that does not parse, or holds a control character in any text (see
/// [`refuse_control_characters`]), answers `400 malformed_request`.
#[derive(Debug)]
pub struct ApiJson<T>(pub T);

impl<T, S> FromRequest<S> for ApiJson<T>
where
    T: serde::de::DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(request: axum::extract::Request, state: &S) -> Result<Self, ApiError> {
        let axum::Json(value) = axum::Json::<Value>::from_request(request, state).await?;
        checked(value).map(ApiJson)
    }
}

/// `value` as a `T`, if no text in it holds a control character; `400 malformed_request`
/// otherwise.
pub fn checked<T: serde::de::DeserializeOwned>(value: Value) -> Result<T, ApiError> {
    refuse_control_characters(&value)?;
    serde_json::from_value(value)
        .map_err(|e| ApiError::Malformed(format!("the body does not parse: {e}")))
}

/// Refuses JSON holding text (a value or a key, at any depth) with NUL or another control
/// character other than line breaks and tabs: no such text is stored or sent on. Fields with
/// stricter rules check them in their own types.
pub fn refuse_control_characters(value: &Value) -> Result<(), ApiError> {
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

/// Path parameters; one that does not parse answers `400 malformed_request`.
#[derive(Debug, FromRequestParts)]
#[from_request(via(axum::extract::Path), rejection(ApiError))]
pub struct ApiPath<T>(pub T);

/// Query parameters; one that does not parse answers `400 malformed_request`.
#[derive(Debug, FromRequestParts)]
#[from_request(via(axum::extract::Query), rejection(ApiError))]
pub struct ApiQuery<T>(pub T);

/// A JSON body that must not carry fields its type does not know (a typo is not silently
/// ignored), for types that themselves tolerate unknown fields because a workflow reads them
/// again on replay. Answers `400 malformed_request` naming the field.
#[derive(Debug)]
pub struct StrictJson<T>(pub T);

impl<T, S> FromRequest<S> for StrictJson<T>
where
    T: serde::de::DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(request: axum::extract::Request, state: &S) -> Result<Self, ApiError> {
        let axum::Json(value) = axum::Json::<Value>::from_request(request, state).await?;
        refuse_control_characters(&value)?;
        let mut unknown = Vec::new();
        let parsed = serde_ignored::deserialize(value, |path| unknown.push(path.to_string()))
            .map_err(|e| ApiError::Malformed(format!("the body does not parse: {e}")))?;
        match unknown.first() {
            Some(field) => Err(ApiError::Malformed(format!("unknown field `{field}`"))),
            None => Ok(StrictJson(parsed)),
        }
    }
}
