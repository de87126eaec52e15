//! Extractors whose rejections answer in the API's error format instead of axum's plain text.

use crate::error::ApiError;
use axum::extract::{FromRequest, FromRequestParts};

/// A JSON body; a body that does not parse answers `400 malformed_request`.
#[derive(Debug, FromRequest)]
#[from_request(via(axum::Json), rejection(ApiError))]
pub struct ApiJson<T>(pub T);

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
        let ApiJson(value) = ApiJson::<serde_json::Value>::from_request(request, state).await?;
        let mut unknown = Vec::new();
        let parsed = serde_ignored::deserialize(value, |path| unknown.push(path.to_string()))
            .map_err(|e| ApiError::Malformed(format!("the body does not parse: {e}")))?;
        match unknown.first() {
            Some(field) => Err(ApiError::Malformed(format!("unknown field `{field}`"))),
            None => Ok(StrictJson(parsed)),
        }
    }
}
