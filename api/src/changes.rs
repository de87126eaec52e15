//! Changing a booked session: reschedule, cancel, provider-unavailable, and the insurance
//! client's next-session authorization. Each goes to the session's workflow as an update; a
//! refused one changes nothing and answers with the workflow's precise reason.

use crate::auth::Caller;
use crate::error::{ApiError, ErrorBody, StillRunning};
use crate::extract::{ApiPath, JsonBody};
use crate::sessions::{steer, visible_session};
use crate::state::AppState;
use axum::Json;
use axum::extract::State;
use axum::http::HeaderMap;
use chrono::Utc;
use livesessions_activities::storage::sessions;
use livesessions_domain::booking::check_start;
use livesessions_domain::lifecycle::{Cancel, Change, Reschedule};
use livesessions_domain::{
    CancelReason, NextAuthorization, Party, Refusal, RefusalCode, Role, SessionId, SessionSnapshot,
};
use serde::Deserialize;

/// Moves the session to a new time; the provider confirms again, the same credit holds it.
/// Closer to a confirmed start than `policy.late_cancel_window` it is late: the credit is lost,
/// the fee charged once, and another credit holds the new time.
#[utoipa::path(post, path = "/v1/sessions/{id}/reschedule", tag = "sessions", request_body = Reschedule,
    params(("id" = SessionId, Path)),
    responses((status = 200, body = SessionSnapshot), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 402, body = ErrorBody, description = "no_credit for a late reschedule"), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody, description = "session_state_conflict"),
        (status = 422, body = ErrorBody, description = "modality_change_requires_rebooking, late_cancellation_not_accepted, booking_notice_too_short, booking_horizon_exceeded")),
    security(("bearer" = [])))]
pub async fn reschedule(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    ApiPath(id): ApiPath<SessionId>,
    body: JsonBody,
) -> Result<Json<SessionSnapshot>, ApiError> {
    let roles = [Role::Client, Role::Service];
    caller.require(&roles)?;
    let body: Reschedule = body.parse()?;
    check_start(body.starts_at, &state.policy, Utc::now())?;
    let change = Change::Reschedule(body);
    steer(&state, &caller, &headers, id, &roles, RefusalCode::SessionStateConflict, change).await
}

/// The body of `POST /v1/sessions/{id}/cancel`.
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CancelBody {
    /// Why, for operators (kept in the database, never in workflow history; 500 characters at
    /// most, no control characters but line breaks).
    pub reason: Option<CancelReason>,
    /// For whom: `client` or `provider`. Required of a `service`; a client may send only
    /// `client`, a provider only `provider`.
    #[schema(example = "client")]
    pub on_behalf_of: Option<Party>,
}

/// Who cancels: a client or a provider for themselves (naming the other side is `403`), a
/// service for the side it names (naming none is `422 on_behalf_of_required`).
fn canceller(caller: &Caller, on_behalf_of: Option<Party>) -> Result<Party, ApiError> {
    let own = match caller.role {
        Role::Client => Party::Client,
        Role::Provider => Party::Provider,
        Role::Service => {
            return on_behalf_of.ok_or_else(|| {
                Refusal::new(
                    RefusalCode::OnBehalfOfRequired,
                    "a service cancels on behalf of someone: send on_behalf_of, client or provider",
                )
                .into()
            });
        }
        Role::Operator | Role::Finance => return Err(ApiError::Forbidden),
    };
    match on_behalf_of {
        Some(other) if other != own => Err(ApiError::Forbidden),
        _ => Ok(own),
    }
}

/// Cancels the session. The client (or a service on their behalf) cancelling closer to a
/// confirmed start than `policy.late_cancel_window` cancels late: the credit is lost and the fee
/// charged once. The provider's cancellation (or a service's on their behalf) never costs the
/// client: the credit comes back. A service must send `on_behalf_of`.
#[utoipa::path(post, path = "/v1/sessions/{id}/cancel", tag = "sessions", request_body = CancelBody,
    params(("id" = SessionId, Path)),
    responses((status = 200, body = SessionSnapshot), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody, description = "the role may not cancel, or a client or provider named the other side in on_behalf_of"),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody, description = "session_state_conflict, change_in_progress"),
        (status = 422, body = ErrorBody, description = "on_behalf_of_required: a service did not say for whom"),
        (status = 202, body = StillRunning, description = "not answered in time; it may still take effect")),
    security(("bearer" = [])))]
pub async fn cancel(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    ApiPath(id): ApiPath<SessionId>,
    body: JsonBody,
) -> Result<Json<SessionSnapshot>, ApiError> {
    let roles = [Role::Client, Role::Provider, Role::Service];
    caller.require(&roles)?;
    let body: CancelBody = body.parse()?;
    let by = canceller(&caller, body.on_behalf_of)?;
    let change = Change::Cancel(Cancel { by });
    let cancelled =
        steer(&state, &caller, &headers, id, &roles, RefusalCode::SessionStateConflict, change)
            .await?;
    // The cancel has taken effect: a reason that cannot be kept (the database down) is logged,
    // never answered as an error for a change that happened.
    if let Some(reason) = &body.reason
        && let Err(error) = sessions::set_cancel_reason(&state.db, id, reason.as_str()).await
    {
        tracing::warn!(session = %id, %error, "the cancel reason could not be kept");
    }
    Ok(cancelled)
}

/// The provider cannot attend: the client keeps the credit and is offered a reschedule; they
/// are never charged.
#[utoipa::path(post, path = "/v1/sessions/{id}/provider-unavailable", tag = "sessions",
    params(("id" = SessionId, Path)),
    responses((status = 200, body = SessionSnapshot), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody, description = "session_state_conflict, change_in_progress"),
        (status = 202, body = StillRunning, description = "not answered in time; it may still take effect")),
    security(("bearer" = [])))]
pub async fn provider_unavailable(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    ApiPath(id): ApiPath<SessionId>,
) -> Result<Json<SessionSnapshot>, ApiError> {
    let roles = [Role::Provider, Role::Service];
    let change = Change::ProviderUnavailable;
    steer(&state, &caller, &headers, id, &roles, RefusalCode::SessionStateConflict, change).await
}

/// The estimate of the next insurance session, offered after this one completed.
#[utoipa::path(get, path = "/v1/sessions/{id}/next-estimate", tag = "sessions",
    params(("id" = SessionId, Path)),
    responses((status = 200, body = NextAuthorization), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody, description = "session_state_conflict, change_in_progress"),
        (status = 202, body = StillRunning, description = "not answered in time; it may still take effect")),
    security(("bearer" = [])))]
pub async fn next_estimate(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<SessionId>,
) -> Result<Json<NextAuthorization>, ApiError> {
    let session = visible_session(&state, &caller, id).await?;
    session.next_authorization.map(Json).ok_or_else(|| {
        Refusal::new(
            RefusalCode::SessionStateConflict,
            format!(
                "the session is {}: only a completed insurance session offers the next estimate",
                session.state
            ),
        )
        .into()
    })
}

/// The insurance client authorizes the next session at the estimate shown, within
/// `policy.reauthorization_window`.
#[utoipa::path(post, path = "/v1/sessions/{id}/authorize-next", tag = "sessions",
    params(("id" = SessionId, Path)),
    responses((status = 200, body = SessionSnapshot), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody, description = "authorization_window_closed, session_state_conflict")),
    security(("bearer" = [])))]
pub async fn authorize_next(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    ApiPath(id): ApiPath<SessionId>,
) -> Result<Json<SessionSnapshot>, ApiError> {
    let roles = [Role::Client, Role::Service];
    let change = Change::AuthorizeNext;
    steer(&state, &caller, &headers, id, &roles, RefusalCode::AuthorizationWindowClosed, change)
        .await
}
