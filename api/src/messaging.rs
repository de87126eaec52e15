//! Asynchronous messaging sessions: start one; once started ("Messaging Session in Progress")
//! it cannot be cancelled or switched to a live session.

use crate::auth::Caller;
use crate::error::{ApiError, ErrorBody, StillRunning};
use crate::extract::{ApiPath, JsonBody};
use crate::people::{known_client, known_provider};
use crate::state::AppState;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use livesessions_activities::storage::messaging_sessions;
use livesessions_domain::{
    ClientId, MessagingSnapshot, MessagingState, ProviderId, Refusal, RefusalCode, Role, SessionId,
};
use livesessions_worker::SessionCallError;
use livesessions_workflows::MessagingSessionInput;
use serde::Deserialize;

/// The body of `POST /v1/messaging-sessions`.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewMessagingSession {
    /// The client.
    pub client_id: ClientId,
    /// The provider.
    pub provider_id: ProviderId,
}

/// Starts a messaging session; it is in progress at once, and readable once this answers.
#[utoipa::path(post, path = "/v1/messaging-sessions", tag = "messaging", operation_id = "start_messaging_session", request_body = NewMessagingSession,
    responses((status = 201, body = MessagingSnapshot),
        (status = 202, body = StillRunning, description = "the workflow did not answer in time; the session may still start: poll Location"),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 422, body = ErrorBody, description = "unknown_client, unknown_provider"), (status = 503, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn start(
    State(state): State<AppState>,
    caller: Caller,
    body: JsonBody,
) -> Result<(StatusCode, Json<MessagingSnapshot>), ApiError> {
    caller.require(&[Role::Client, Role::Service])?;
    let body: NewMessagingSession = body.parse()?;
    if caller.role == Role::Client && !caller.is_client(body.client_id) {
        return Err(ApiError::Forbidden);
    }
    let client = known_client(&state, body.client_id).await?;
    known_provider(&state, body.provider_id).await?;
    let session_id = SessionId::random();
    let input = MessagingSessionInput {
        session_id,
        client_id: client.id,
        provider_id: body.provider_id,
        time_zone: client.time_zone,
        length: state.policy.messaging_session_length,
    };
    match state.sessions.start_messaging(input).await {
        Ok(snapshot) => Ok((StatusCode::CREATED, Json(snapshot))),
        Err(SessionCallError::Pending { reason, .. }) => {
            Err(ApiError::Pending(Box::new(StillRunning::messaging(session_id, reason))))
        }
        Err(other) => Err(other.into()),
    }
}

/// The messaging session, if the caller may see it.
async fn visible(
    state: &AppState,
    caller: &Caller,
    id: SessionId,
) -> Result<MessagingSnapshot, ApiError> {
    caller.require(&[Role::Client, Role::Provider, Role::Service, Role::Operator])?;
    let session = messaging_sessions::get(&state.db, id).await?.ok_or(ApiError::NotFound)?;
    let mine = match caller.role {
        Role::Client => caller.is_client(session.client_id),
        Role::Provider => caller.is_provider(session.provider_id),
        _ => true,
    };
    if mine { Ok(session) } else { Err(ApiError::NotFound) }
}

/// One messaging session.
#[utoipa::path(get, path = "/v1/messaging-sessions/{id}", tag = "messaging", operation_id = "get_messaging_session",
    params(("id" = SessionId, Path)),
    responses((status = 200, body = MessagingSnapshot), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn get(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<SessionId>,
) -> Result<Json<MessagingSnapshot>, ApiError> {
    Ok(Json(visible(&state, &caller, id).await?))
}

/// What a started messaging session answers to a change: never.
fn unchangeable(session: &MessagingSnapshot, what: &str) -> ApiError {
    match session.state {
        MessagingState::InProgress => Refusal::new(
            RefusalCode::MessagingSessionInProgress,
            format!("a messaging session in progress cannot be {what}"),
        ),
        MessagingState::Completed => Refusal::new(
            RefusalCode::SessionStateConflict,
            format!("the messaging session has ended and cannot be {what}"),
        ),
    }
    .into()
}

/// Cancelling a messaging session: refused once it has started.
#[utoipa::path(post, path = "/v1/messaging-sessions/{id}/cancel", tag = "messaging", operation_id = "cancel_messaging_session",
    params(("id" = SessionId, Path)),
    responses((status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody, description = "messaging_session_in_progress")),
    security(("bearer" = [])))]
pub async fn cancel(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<SessionId>,
) -> Result<Json<MessagingSnapshot>, ApiError> {
    let session = visible(&state, &caller, id).await?;
    Err(unchangeable(&session, "cancelled"))
}

/// Switching a messaging session to a live session: refused once it has started.
#[utoipa::path(post, path = "/v1/messaging-sessions/{id}/switch-to-live", tag = "messaging", operation_id = "switch_messaging_session_to_live",
    params(("id" = SessionId, Path)),
    responses((status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody, description = "messaging_session_in_progress")),
    security(("bearer" = [])))]
pub async fn switch_to_live(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<SessionId>,
) -> Result<Json<MessagingSnapshot>, ApiError> {
    let session = visible(&state, &caller, id).await?;
    Err(unchangeable(&session, "switched to a live session"))
}
