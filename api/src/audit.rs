//! The audit log, from the API's side: a middleware that records every mutating call (`POST`,
//! `PUT`, `PATCH`, `DELETE` on a route the API serves), operator actions included, and
//! `GET /v1/audit`, where operators and finance read it.
//!
//! An entry holds the caller's `sub` and role (none without a valid token), the method and route
//! template as the action, the path's ids and those the handler names as subjects, the request
//! id, the answer's status as the outcome, and the time. Never a body, a name, an email or a
//! reason: those may be health information. It is written after the answer is made and before
//! it is sent, so a caller who has the answer finds the entry; when the database cannot take it,
//! the call keeps its answer (what it did is done) and the entry goes to the error log.

use crate::auth::Caller;
use crate::error::{ApiError, ErrorBody};
use crate::extract::ApiQuery;
use crate::state::AppState;
use axum::Json;
use axum::extract::{FromRequestParts, MatchedPath, RawPathParams, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method};
use axum::middleware::Next;
use axum::response::Response;
use chrono::{DateTime, Utc};
use livesessions_activities::storage::audit::{self, Entry, Filter, NewEntry};
use livesessions_domain::Role;
use serde::{Deserialize, Serialize};

/// The header that carries a request's id, in (optional) and out (always).
pub const REQUEST_ID: &str = "x-request-id";

/// A request's id: the caller's `X-Request-Id` when it is a plausible one (1 to 64 letters,
/// digits, `-`, `_` or `.`), else a new UUID. Handlers find it in the request's extensions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestId(pub String);

impl RequestId {
    /// The id of a request with `headers`.
    fn of(headers: &HeaderMap) -> Self {
        let given = headers.get(REQUEST_ID).and_then(|value| value.to_str().ok()).filter(|id| {
            (1..=64).contains(&id.len())
                && id.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
        });
        Self(given.map_or_else(|| uuid::Uuid::new_v4().to_string(), str::to_string))
    }
}

/// Ids a handler names for the audit entry of its call beyond those in the path (the credit an
/// operator moved, the fee one waived), in the response's extensions.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Subjects(pub Vec<String>);

/// The middleware: gives the request its id (and the answer its `X-Request-Id`), and records a
/// mutating call once answered.
pub async fn record(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let request_id = RequestId::of(request.headers());
    let mutating =
        matches!(*request.method(), Method::POST | Method::PUT | Method::PATCH | Method::DELETE);
    let template = request.extensions().get::<MatchedPath>().map(|path| path.as_str().to_string());
    let (mut parts, body) = request.into_parts();
    let mut subjects: Vec<String> = match RawPathParams::from_request_parts(&mut parts, &()).await {
        Ok(params) => params.iter().map(|(_, value)| value.to_string()).collect(),
        Err(_) => Vec::new(),
    };
    let caller = match (mutating, &template) {
        (true, Some(_)) => Caller::of(&state, &parts.headers).await.ok(),
        _ => None,
    };
    let action = format!("{} {}", parts.method, template.as_deref().unwrap_or_default());
    parts.extensions.insert(request_id.clone());
    let mut response = next.run(Request::from_parts(parts, body)).await;
    if let Ok(value) = HeaderValue::from_str(&request_id.0) {
        response.headers_mut().insert(REQUEST_ID, value);
    }
    if !mutating || template.is_none() {
        return response;
    }
    if let Some(Subjects(named)) = response.extensions().get::<Subjects>() {
        subjects.extend(named.iter().cloned());
    }
    let role = caller.as_ref().map(|caller| caller.role.to_string());
    let entry = NewEntry {
        at: Utc::now(),
        request_id: &request_id.0,
        actor: caller.as_ref().map(|caller| caller.sub.as_str()),
        role: role.as_deref(),
        action: &action,
        subject_ids: &subjects,
        outcome: response.status().as_u16(),
    };
    if let Err(error) = audit::record(&state.db, &entry).await {
        tracing::error!(?entry, %error, "the audit log could not take this entry");
    }
    response
}

/// Filters and paging of `GET /v1/audit`.
#[derive(Debug, Clone, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct AuditQuery {
    /// Only entries about this id (a session, client, provider, room or fee key).
    #[param(max_length = 255)]
    pub subject_id: Option<String>,
    /// Only this caller's entries (their token's `sub`).
    #[param(max_length = 255)]
    pub actor: Option<String>,
    /// Answered at or after (RFC 3339, URL-encoded).
    pub from: Option<DateTime<Utc>>,
    /// Answered before (RFC 3339, URL-encoded).
    pub to: Option<DateTime<Utc>>,
    /// Page size, 1 to 200 (default 50).
    pub limit: Option<u32>,
    /// `next_cursor` of the previous page.
    #[param(max_length = 20)]
    pub cursor: Option<String>,
}

/// A page of the audit log.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct AuditPage {
    /// Newest first.
    pub entries: Vec<Entry>,
    /// Pass as `cursor` for the next (older) page; absent on the last.
    pub next_cursor: Option<String>,
}

/// The audit log, newest first: every mutating call and every operator action, with who made
/// it, what it was about and how it was answered (operators and finance).
#[utoipa::path(get, path = "/v1/audit", tag = "operators", params(AuditQuery),
    responses((status = 200, body = AuditPage), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn audit_entries(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(query): ApiQuery<AuditQuery>,
) -> Result<Json<AuditPage>, ApiError> {
    caller.require(&[Role::Operator, Role::Finance])?;
    let limit = query.limit.unwrap_or(50);
    if !(1..=200).contains(&limit) {
        return Err(ApiError::Malformed("limit must be between 1 and 200".into()));
    }
    for (name, text) in [("subject_id", &query.subject_id), ("actor", &query.actor)] {
        if text.as_ref().is_some_and(|text| text.is_empty() || text.len() > 255) {
            return Err(ApiError::Malformed(format!("{name} must have 1 to 255 characters")));
        }
    }
    let before = match query.cursor.as_deref() {
        Some(cursor) => {
            Some(cursor.parse::<i64>().ok().filter(|id| *id > 0).ok_or_else(|| {
                ApiError::Malformed("cursor is not one this API handed out".into())
            })?)
        }
        None => None,
    };
    let filter =
        Filter { subject_id: query.subject_id, actor: query.actor, from: query.from, to: query.to };
    let page = audit::page(&state.db, &filter, before, limit).await?;
    let next_cursor = page.next.map(|id| id.to_string());
    Ok(Json(AuditPage { entries: page.entries, next_cursor }))
}
