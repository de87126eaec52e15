//! `/v1/sessions`: request a live session, read and list sessions, and the provider's answer.

use crate::auth::Caller;
use crate::error::{ApiError, ErrorBody};
use crate::extract::{ApiJson, ApiPath, ApiQuery};
use crate::idempotency;
use crate::people::{known_client, known_provider};
use crate::state::AppState;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use livesessions_activities::storage::sessions;
use livesessions_activities::storage::sessions::{SessionCursor, SessionFilter};
use livesessions_domain::{
    BookingRequest, ClientId, Modality, ProviderId, ProviderProfile, Refusal, RefusalCode, Role,
    Service, SessionId, SessionSnapshot, SessionState, TimeZoneName,
};
use livesessions_worker::SessionCallError;
use livesessions_workflows::LiveSessionInput;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// The body of `POST /v1/sessions`.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewSession {
    /// Who books.
    pub client_id: ClientId,
    /// With whom.
    pub provider_id: ProviderId,
    /// `therapy` or `psychiatry`.
    pub service: Service,
    /// `video`, `audio` or `chat`.
    pub modality: Modality,
    /// A length the client's plan offers.
    pub duration_minutes: u32,
    /// RFC 3339 with an offset.
    pub starts_at: DateTime<Utc>,
    /// IANA zone for messages and invites.
    pub time_zone: TimeZoneName,
    /// Must be `true`.
    pub accept_cancellation_policy: bool,
    /// `true` to buy a credit when none is left (plans that sell credits).
    #[serde(default)]
    pub purchase_credit: bool,
}

/// Requests a live session: the rules are checked, then the session's workflow starts and holds
/// the booking and a credit. Answers with the requested session.
#[utoipa::path(post, path = "/v1/sessions", tag = "sessions", request_body = NewSession,
    responses((status = 201, body = SessionSnapshot), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 402, body = ErrorBody, description = "no_credit, authorization_required"), (status = 403, body = ErrorBody),
        (status = 422, body = ErrorBody, description = "psychiatry_requires_video, modality_not_in_plan, …"),
        (status = 503, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn request_session(
    State(state): State<AppState>,
    caller: Caller,
    headers: axum::http::HeaderMap,
    ApiJson(body): ApiJson<NewSession>,
) -> Result<(StatusCode, Json<SessionSnapshot>), ApiError> {
    caller.require(&[Role::Client, Role::Service])?;
    if caller.role == Role::Client && !caller.is_client(body.client_id) {
        return Err(ApiError::Forbidden);
    }
    let client = known_client(&state, body.client_id).await?;
    let provider = known_provider(&state, body.provider_id).await?;
    let plan = state.plans.get(&client.plan).ok_or_else(|| {
        Refusal::new(
            RefusalCode::UnknownPlan,
            format!("the client's plan {:?} is no longer offered", client.plan),
        )
    })?;
    let request = BookingRequest {
        client_id: body.client_id,
        provider_id: body.provider_id,
        service: body.service,
        modality: body.modality,
        duration_minutes: body.duration_minutes,
        starts_at: body.starts_at,
        time_zone: body.time_zone,
        accept_cancellation_policy: body.accept_cancellation_policy,
    };
    let profile = ProviderProfile { specialty: provider.specialty };
    let terms = request.check(plan, profile, &state.policy, Utc::now())?;
    let purchase = match body.purchase_credit {
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
    // With an Idempotency-Key the session id is the key's own, so a retry after a lost answer
    // reaches the same workflow instead of booking twice.
    let session_id = match idempotency::key_of(&headers)? {
        Some(key) => SessionId::from_uuid(Uuid::new_v5(
            &Uuid::NAMESPACE_OID,
            format!("{}:{}:{key}", caller.role, caller.sub).as_bytes(),
        )),
        None => SessionId::random(),
    };
    let input = LiveSessionInput {
        session_id,
        client_id: request.client_id,
        provider_id: request.provider_id,
        service: request.service,
        modality: request.modality,
        duration_minutes: request.duration_minutes,
        starts_at: request.starts_at,
        time_zone: request.time_zone,
        coverage: client.coverage,
        terms,
        purchase,
        policy: (*state.policy).clone(),
        webhooks: state.webhooks,
    };
    let session = state.sessions.request(input).await?;
    Ok((StatusCode::CREATED, Json(session)))
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
    #[param(value_type = Option<String>)]
    pub client_id: Option<ClientId>,
    /// Only this provider's sessions.
    #[param(value_type = Option<String>)]
    pub provider_id: Option<ProviderId>,
    /// Only sessions in this state.
    #[param(value_type = Option<String>)]
    pub state: Option<SessionState>,
    /// Starting at or after (RFC 3339, URL-encoded).
    pub from: Option<DateTime<Utc>>,
    /// Starting before (RFC 3339, URL-encoded).
    pub to: Option<DateTime<Utc>>,
    /// Page size, 1 to 200 (default 50).
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
    let invalid = || ApiError::Malformed("cursor is not one this API handed out".into());
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
    responses((status = 200, body = SessionList), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)),
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

/// Asks the workflow of a session the caller may see (and may change: one of `roles`). A
/// workflow that has already ended answers `409 closed_code`, naming the session's state.
pub(crate) async fn steer<Call, Answer>(
    state: &AppState,
    caller: &Caller,
    id: SessionId,
    roles: &[Role],
    closed_code: RefusalCode,
    call: Call,
) -> Result<Json<SessionSnapshot>, ApiError>
where
    Call: FnOnce() -> Answer,
    Answer: std::future::Future<Output = Result<SessionSnapshot, SessionCallError>>,
{
    caller.require(roles)?;
    let session = visible_session(state, caller, id).await?;
    match call().await {
        Ok(session) => Ok(Json(session)),
        Err(SessionCallError::NotRunning) => Err(Refusal::new(
            closed_code,
            format!("the session is {} and its story has ended", session.state),
        )
        .into()),
        Err(other) => Err(other.into()),
    }
}

/// The provider confirms a requested session.
#[utoipa::path(post, path = "/v1/sessions/{id}/confirm", tag = "sessions",
    params(("id" = SessionId, Path)),
    responses((status = 200, body = SessionSnapshot), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody, description = "not_awaiting_confirmation"), (status = 503, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn confirm_session(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<SessionId>,
) -> Result<Json<SessionSnapshot>, ApiError> {
    let roles = [Role::Provider, Role::Service];
    steer(&state, &caller, id, &roles, RefusalCode::NotAwaitingConfirmation, || {
        state.sessions.confirm(id)
    })
    .await
}

/// The provider declines a requested session; the client's credit comes back.
#[utoipa::path(post, path = "/v1/sessions/{id}/decline", tag = "sessions",
    params(("id" = SessionId, Path)),
    responses((status = 200, body = SessionSnapshot), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody, description = "not_awaiting_confirmation"), (status = 503, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn decline_session(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<SessionId>,
) -> Result<Json<SessionSnapshot>, ApiError> {
    let roles = [Role::Provider, Role::Service];
    steer(&state, &caller, id, &roles, RefusalCode::NotAwaitingConfirmation, || {
        state.sessions.decline(id)
    })
    .await
}
