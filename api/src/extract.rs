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
