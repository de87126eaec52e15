//! `Idempotency-Key` on `POST` requests (API.md): the same key with the same request answers
//! the first response without acting again; with another request, `422 idempotency_key_reused`.
//! Keys belong to the caller (role and subject of the bearer token). A request that fails on our
//! side (`5xx`) changed nothing, so its key is freed for a retry. A `202` (the session's workflow
//! did not answer in time) frees it too: the handlers derive the session id of a booking and the
//! update id of a change from the key, so the retry reaches the same booking or change in the
//! workflow and answers what it did.

use crate::error::ApiError;
use crate::extract::MAX_BODY_BYTES;
use crate::state::AppState;
use axum::body::{Body, to_bytes};
use axum::extract::{Request, State};
use axum::http::header::CONTENT_TYPE;
use axum::http::{HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use chrono::{TimeDelta, Utc};
use livesessions_activities::storage::idempotency::{self, Claim};
use livesessions_domain::{Refusal, RefusalCode};
use sha2::{Digest, Sha256};

/// The header.
pub const HEADER: &str = "idempotency-key";

/// Who is calling, for scoping keys: `role:sub` of a valid bearer token.
async fn caller_of(state: &AppState, headers: &axum::http::HeaderMap) -> Option<String> {
    let caller = crate::auth::Caller::of(state, headers).await.ok()?;
    Some(format!("{}:{}", caller.role, caller.sub))
}

/// A stable id for what a caller's request with `key` does (a session id, an update id): the
/// same caller and key always give the same id.
pub fn derived_id(caller: &crate::auth::Caller, key: &str) -> uuid::Uuid {
    uuid::Uuid::new_v5(
        &uuid::Uuid::NAMESPACE_OID,
        format!("{}:{}:{key}", caller.role, caller.sub).as_bytes(),
    )
}

/// The most characters a key may have.
pub const MAX_KEY_CHARS: usize = 255;

/// A key's form as the OpenAPI document states it: printable ASCII, spaces allowed, with at
/// least one visible character (HTTP drops the spaces around a header's value).
pub const KEY_PATTERN: &str = "^[ -~]*[!-~][ -~]*$";

/// The key of a request, if it has a well-formed one: 1 to [`MAX_KEY_CHARS`] printable ASCII
/// characters.
pub fn key_of(headers: &axum::http::HeaderMap) -> Result<Option<String>, ApiError> {
    let Some(value) = headers.get(HEADER) else {
        return Ok(None);
    };
    let key = value.as_bytes();
    if key.is_empty() || key.len() > MAX_KEY_CHARS || !key.iter().all(|b| (b' '..=b'~').contains(b))
    {
        return Err(ApiError::Malformed(format!(
            "Idempotency-Key must have 1 to {MAX_KEY_CHARS} printable ASCII characters"
        )));
    }
    Ok(Some(String::from_utf8_lossy(key).into_owned()))
}

/// The key of a request that moves money and must not move it twice: refused with
/// `422 idempotency_key_required` when absent.
pub fn required_key(headers: &axum::http::HeaderMap) -> Result<String, ApiError> {
    key_of(headers)?.ok_or_else(|| {
        Refusal::new(
            RefusalCode::IdempotencyKeyRequired,
            "this request moves money: send an Idempotency-Key header, and the same key again to retry it",
        )
        .into()
    })
}

/// The middleware.
pub async fn idempotent(State(state): State<AppState>, request: Request, next: Next) -> Response {
    match run(state, request, next).await {
        Ok(response) => response,
        Err(error) => error.into_response(),
    }
}

async fn run(state: AppState, request: Request, next: Next) -> Result<Response, ApiError> {
    if request.method() != Method::POST {
        return Ok(next.run(request).await);
    }
    // Without a valid token the handler answers 401, before any check of the key.
    let Some(caller) = caller_of(&state, request.headers()).await else {
        return Ok(next.run(request).await);
    };
    let Some(key) = key_of(request.headers())? else {
        return Ok(next.run(request).await);
    };
    let (parts, body) = request.into_parts();
    let body = to_bytes(body, MAX_BODY_BYTES).await.map_err(|_| {
        ApiError::PayloadTooLarge(format!("the body is longer than {MAX_BODY_BYTES} bytes"))
    })?;
    let mut hasher = Sha256::new();
    hasher.update(parts.method.as_str());
    hasher.update(parts.uri.to_string());
    hasher.update(&body);
    let hash = format!("{:x}", hasher.finalize());
    let stale_after = TimeDelta::from_std(state.sessions.timeout() * 2).unwrap_or(TimeDelta::MAX);
    match idempotency::claim(&state.db, &caller, &key, &hash, Utc::now(), stale_after).await? {
        Claim::Replay { status, body } => {
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::OK);
            let mut response = (status, body).into_response();
            response
                .headers_mut()
                .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
            Ok(response)
        }
        Claim::Reused => Err(Refusal::new(
            RefusalCode::IdempotencyKeyReused,
            "this Idempotency-Key was used with another request; use a new key",
        )
        .into()),
        Claim::InProgress => Err(Refusal::new(
            RefusalCode::IdempotentRequestInProgress,
            "the first request with this Idempotency-Key is still being answered; retry shortly",
        )
        .into()),
        Claim::Fresh => {
            let response = next.run(Request::from_parts(parts, Body::from(body))).await;
            let (parts, body) = response.into_parts();
            let body =
                to_bytes(body, MAX_BODY_BYTES).await.map_err(|e| ApiError::Internal(e.into()))?;
            if parts.status.is_server_error() || parts.status == StatusCode::ACCEPTED {
                idempotency::release(&state.db, &caller, &key).await?;
            } else {
                idempotency::complete(&state.db, &caller, &key, parts.status.as_u16(), &body)
                    .await?;
            }
            Ok(Response::from_parts(parts, Body::from(body)))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::{HeaderMap, HeaderValue};

    fn key(value: &[u8]) -> Result<Option<String>, ApiError> {
        let mut headers = HeaderMap::new();
        headers.insert(HEADER, HeaderValue::from_bytes(value).expect("a header value"));
        key_of(&headers)
    }

    /// The key's form stated in the OpenAPI document is the one `key_of` accepts, byte by byte
    /// (HTTP drops the spaces around a value, so a key is never all spaces).
    #[test]
    fn the_stated_form_is_the_enforced_one() {
        let stated = regex::Regex::new(KEY_PATTERN).unwrap();
        for byte in (0u8..=255).filter(|b| HeaderValue::from_bytes(&[b'a', *b]).is_ok()) {
            let value = [b'a', byte, b'z'];
            let text = String::from_utf8_lossy(&value).into_owned();
            assert_eq!(stated.is_match(&text), key(&value).is_ok(), "byte {byte:#04x}");
        }
        assert_eq!(key(b"a b").unwrap().as_deref(), Some("a b"));
        assert!(key(&[b'k'; MAX_KEY_CHARS]).is_ok());
        assert!(key(&[b'k'; MAX_KEY_CHARS + 1]).is_err());
        assert!(key(b"").is_err());
    }
}
