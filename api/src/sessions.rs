//! `/v1/sessions`: request a live session, read and list sessions, and the provider's answer.

use crate::auth::Caller;
use crate::error::{ApiError, ErrorBody, StillRunning};
use crate::extract::{ApiPath, ApiQuery, JsonBody};
use crate::idempotency;
use crate::people::{known_client, known_provider};
use crate::state::AppState;
use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use livesessions_activities::storage::sessions;
use livesessions_activities::storage::sessions::{SessionCursor, SessionFilter};
use livesessions_domain::lifecycle::Change;
use livesessions_domain::{
    BookingRequest, ClientId, ProviderId, ProviderProfile, Refusal, RefusalCode, Role, SessionId,
    SessionSnapshot, SessionState,
};
use livesessions_worker::SessionCallError;
use livesessions_workflows::LiveSessionInput;
use serde::{Deserialize, Serialize};

/// Requests a live session: the rules are checked, then the session's workflow starts and holds
/// the booking and a credit. Answers with the requested session. With an `Idempotency-Key`, the
/// session id derives from it: a retry answers what the first request did, whenever it comes.
#[utoipa::path(post, path = "/v1/sessions", tag = "sessions", request_body = BookingRequest,
    responses((status = 201, body = SessionSnapshot),
        (status = 202, body = StillRunning, description = "the workflow did not answer in time; the booking may still be held: retry with the same Idempotency-Key or poll Location"),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 402, body = ErrorBody, description = "no_credit, authorization_required"), (status = 403, body = ErrorBody),
        (status = 409, body = ErrorBody, description = "slot_taken"),
        (status = 422, body = ErrorBody, description = "psychiatry_requires_video, modality_not_in_plan, …"),
        (status = 503, body = ErrorBody, description = "Temporal did not take the request: nothing was booked")),
    security(("bearer" = [])))]
pub async fn request_session(
    State(state): State<AppState>,
    caller: Caller,
    headers: axum::http::HeaderMap,
    body: JsonBody,
) -> Result<(StatusCode, Json<SessionSnapshot>), ApiError> {
    caller.require(&[Role::Client, Role::Service])?;
    let booking: BookingRequest = body.parse()?;
    if caller.role == Role::Client && !caller.is_client(booking.client_id) {
        return Err(ApiError::Forbidden);
    }
    let session_id = match idempotency::key_of(&headers)? {
        Some(key) => {
            let session_id = SessionId::from_uuid(idempotency::derived_id(&caller, &key));
            if let Some(first) = first_answer(&state, session_id).await? {
                return Ok((StatusCode::CREATED, Json(first)));
            }
            session_id
        }
        None => SessionId::random(),
    };
    let client = known_client(&state, booking.client_id).await?;
    let provider = known_provider(&state, booking.provider_id).await?;
    let plan = state.plans.get(&client.plan).ok_or_else(|| {
        Refusal::new(
            RefusalCode::UnknownPlan,
            format!("the client's plan {:?} is no longer offered", client.plan),
        )
    })?;
    let profile = ProviderProfile { specialty: provider.specialty };
    let terms = booking.check(plan, profile, &state.policy, Utc::now())?;
    let purchase = match booking.purchase_credit {
        false => None,
        true => Some(plan.credit_price().filter(|_| client.coverage.uses_credits()).ok_or_else(
            || {
                Refusal::new(
                    RefusalCode::CreditPurchaseNotOffered,
                    format!("the client's {} plan sells no credits", client.coverage),
                )
            },
        )?),
    };
    let input = LiveSessionInput {
        session_id,
        booking,
        coverage: client.coverage,
        terms,
        purchase,
        policy: (*state.policy).clone(),
        webhooks: state.webhooks,
    };
    let session = state.sessions.request(input).await?;
    Ok((StatusCode::CREATED, Json(session)))
}

/// What an earlier request under the same Idempotency-Key booked: the held session (the read
/// model has it), or the answer of its still-running workflow; `None` when there was none.
async fn first_answer(
    state: &AppState,
    session_id: SessionId,
) -> Result<Option<SessionSnapshot>, ApiError> {
    if let Some(held) = sessions::get(&state.db, session_id).await? {
        return Ok(Some(held));
    }
    match state.sessions.booking_answer(session_id).await {
        Ok(session) => Ok(Some(session)),
        Err(SessionCallError::NotRunning) => Ok(None),
        Err(other) => Err(other.into()),
    }
}

/// The session, if the caller may see it; `404` otherwise.
pub(crate) async fn visible_session(
    state: &AppState,
    caller: &Caller,
    id: SessionId,
) -> Result<SessionSnapshot, ApiError> {
    caller.require(&[Role::Client, Role::Provider, Role::Service, Role::Operator])?;
    let session = sessions::get(&state.db, id).await?.ok_or(ApiError::NotFound)?;
    if caller.may_see(&session) { Ok(session) } else { Err(ApiError::NotFound) }
}

/// One session.
#[utoipa::path(get, path = "/v1/sessions/{id}", tag = "sessions",
    params(("id" = SessionId, Path)),
    responses((status = 200, body = SessionSnapshot), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn get_session(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<SessionId>,
) -> Result<Json<SessionSnapshot>, ApiError> {
    Ok(Json(visible_session(&state, &caller, id).await?))
}

/// Filters and paging of `GET /v1/sessions`.
#[derive(Debug, Clone, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct SessionQuery {
    /// Only this client's sessions.
    pub client_id: Option<ClientId>,
    /// Only this provider's sessions.
    pub provider_id: Option<ProviderId>,
    /// Only sessions in this state.
    pub state: Option<SessionState>,
    /// Starting at or after (RFC 3339, URL-encoded).
    pub from: Option<DateTime<Utc>>,
    /// Starting before (RFC 3339, URL-encoded).
    pub to: Option<DateTime<Utc>>,
    /// Page size, 1 to 200 (default 50).
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<u32>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

/// A page of sessions.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SessionList {
    /// Sessions by start time.
    pub sessions: Vec<SessionSnapshot>,
    /// Pass as `cursor` for the next page; absent on the last.
    pub next_cursor: Option<String>,
}

fn encode_cursor(cursor: SessionCursor) -> String {
    URL_SAFE_NO_PAD.encode(format!("{}|{}", cursor.starts_at.to_rfc3339(), cursor.id))
}

fn decode_cursor(text: &str) -> Result<SessionCursor, ApiError> {
    let invalid = || -> ApiError {
        Refusal::new(RefusalCode::InvalidCursor, "cursor is not one this API handed out").into()
    };
    let bytes = URL_SAFE_NO_PAD.decode(text).map_err(|_| invalid())?;
    let text = String::from_utf8(bytes).map_err(|_| invalid())?;
    let (starts_at, id) = text.split_once('|').ok_or_else(invalid)?;
    Ok(SessionCursor {
        starts_at: DateTime::parse_from_rfc3339(starts_at).map_err(|_| invalid())?.to_utc(),
        id: SessionId::parse(id).map_err(|_| invalid())?,
    })
}

/// Sessions the caller may see, filtered: clients see their own, providers theirs.
#[utoipa::path(get, path = "/v1/sessions", tag = "sessions", params(SessionQuery),
    responses((status = 200, body = SessionList), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 422, body = ErrorBody, description = "invalid_cursor: a cursor this API did not hand out")),
    security(("bearer" = [])))]
pub async fn list_sessions(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(query): ApiQuery<SessionQuery>,
) -> Result<Json<SessionList>, ApiError> {
    let mut filter = SessionFilter {
        client_id: query.client_id,
        provider_id: query.provider_id,
        state: query.state,
        from: query.from,
        to: query.to,
    };
    match caller.role {
        Role::Service | Role::Operator => {}
        Role::Client => {
            let me = ClientId::parse(&caller.sub).map_err(|_| ApiError::Forbidden)?;
            if filter.client_id.is_some_and(|id| id != me) {
                return Err(ApiError::Forbidden);
            }
            filter.client_id = Some(me);
        }
        Role::Provider => {
            let me = ProviderId::parse(&caller.sub).map_err(|_| ApiError::Forbidden)?;
            if filter.provider_id.is_some_and(|id| id != me) {
                return Err(ApiError::Forbidden);
            }
            filter.provider_id = Some(me);
        }
        Role::Finance => return Err(ApiError::Forbidden),
    }
    let limit = query.limit.unwrap_or(50);
    if !(1..=200).contains(&limit) {
        return Err(ApiError::Malformed("limit must be between 1 and 200".into()));
    }
    let after = query.cursor.as_deref().map(decode_cursor).transpose()?;
    let page = sessions::list(&state.db, &filter, after, limit).await?;
    Ok(Json(SessionList { sessions: page.sessions, next_cursor: page.next.map(encode_cursor) }))
}

/// Asks the workflow of a session the caller may see (and may change: one of `roles`) for a
/// change. A workflow that has already ended answers `409 closed_code`, naming the session's
/// state; one that does not answer in time answers `202` with the session as it now is. With an
/// `Idempotency-Key`, the update id derives from it, so a retry is the same change.
pub(crate) async fn steer(
    state: &AppState,
    caller: &Caller,
    headers: &HeaderMap,
    id: SessionId,
    roles: &[Role],
    closed_code: RefusalCode,
    change: Change,
) -> Result<Json<SessionSnapshot>, ApiError> {
    caller.require(roles)?;
    let update_id =
        idempotency::key_of(headers)?.map(|key| idempotency::derived_id(caller, &key).to_string());
    steer_as(state, caller, id, roles, closed_code, change, update_id).await
}

/// As [`steer`], the change's update id given (`None`: a new one).
pub(crate) async fn steer_as(
    state: &AppState,
    caller: &Caller,
    id: SessionId,
    roles: &[Role],
    closed_code: RefusalCode,
    change: Change,
    update_id: Option<String>,
) -> Result<Json<SessionSnapshot>, ApiError> {
    caller.require(roles)?;
    let session = visible_session(state, caller, id).await?;
    match state.sessions.change(id, change, update_id).await {
        Ok(session) => Ok(Json(session)),
        Err(SessionCallError::NotRunning) => Err(Refusal::new(
            closed_code,
            format!("the session is {} and its story has ended", session.state),
        )
        .into()),
        Err(SessionCallError::Pending { session: id, reason }) => {
            let now = sessions::get(&state.db, id).await?;
            Err(ApiError::Pending(Box::new(StillRunning::new(id, reason, now))))
        }
        Err(other) => Err(other.into()),
    }
}

/// The provider confirms a requested session.
#[utoipa::path(post, path = "/v1/sessions/{id}/confirm", tag = "sessions",
    params(("id" = SessionId, Path)),
    responses((status = 200, body = SessionSnapshot), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody, description = "not_awaiting_confirmation, change_in_progress"),
        (status = 202, body = StillRunning, description = "not answered in time; it may still take effect"), (status = 503, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn confirm_session(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    ApiPath(id): ApiPath<SessionId>,
) -> Result<Json<SessionSnapshot>, ApiError> {
    provider_answer(&state, &caller, &headers, id, Change::Confirm).await
}

/// The provider declines a requested session; the client's credit comes back.
#[utoipa::path(post, path = "/v1/sessions/{id}/decline", tag = "sessions",
    params(("id" = SessionId, Path)),
    responses((status = 200, body = SessionSnapshot), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody, description = "not_awaiting_confirmation, change_in_progress"),
        (status = 202, body = StillRunning, description = "not answered in time; it may still take effect"), (status = 503, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn decline_session(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    ApiPath(id): ApiPath<SessionId>,
) -> Result<Json<SessionSnapshot>, ApiError> {
    provider_answer(&state, &caller, &headers, id, Change::Decline).await
}

/// The provider's (or a service's) answer to a request: `Confirm` or `Decline`.
async fn provider_answer(
    state: &AppState,
    caller: &Caller,
    headers: &HeaderMap,
    id: SessionId,
    answer: Change,
) -> Result<Json<SessionSnapshot>, ApiError> {
    let roles = [Role::Provider, Role::Service];
    steer(state, caller, headers, id, &roles, RefusalCode::NotAwaitingConfirmation, answer).await
}
