//! Joining: a person's join link (`GET /v1/sessions/{id}/join`), the link itself
//! (`GET /join/{token}`, which records the join, tells the workflow and sends the person on to
//! the room), the built-in media service's room page with its "End session" action, and the
//! media service's signed events (`POST /v1/media/events`). A join through a link and a join
//! reported by the media service count the same way, once.

use crate::auth::Caller;
use crate::error::{ApiError, ErrorBody};
use crate::extract::{ApiBytes, ApiPath, ApiQuery};
use crate::sessions::visible_session;
use crate::state::AppState;
use axum::Json;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{Html, Redirect};
use chrono::{DateTime, Utc};
use livesessions_activities::signature;
use livesessions_activities::storage::media_events;
use livesessions_activities::storage::media_rooms::{self, JoinToken};
use livesessions_activities::storage::sessions;
use livesessions_domain::{
    Party, Refusal, RefusalCode, Role, RoomId, SessionId, SessionSnapshot, SessionState,
};
use livesessions_worker::SessionCallError;
use livesessions_workflows::Join;
use serde::{Deserialize, Serialize};

/// A person's own join link.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct JoinLink {
    /// Open it to join; it works for this one person and session only.
    pub url: String,
    /// It works from …
    pub opens_at: DateTime<Utc>,
    /// … until the grace period ends; someone who has joined may rejoin after that, until the
    /// session ends.
    pub closes_at: DateTime<Utc>,
}

/// Lets the holder of `token` (none: the session has no room yet) into `session` at `now`, or
/// says why not. The session must be confirmed or in progress and its room not ended; the link
/// works from `opens_at` until the grace period ends, and after that for someone who has joined,
/// while the session is in progress (a dropped connection can come back; the grace only decides
/// who never came).
fn admit<'a>(
    session: &SessionSnapshot,
    token: Option<&'a JoinToken>,
    now: DateTime<Utc>,
) -> Result<&'a JoinToken, ApiError> {
    if !matches!(session.state, SessionState::Confirmed | SessionState::InProgress) {
        let message =
            format!("the session is {}: only a confirmed session can be joined", session.state);
        return Err(Refusal::new(RefusalCode::JoinNotOpen, message).into());
    }
    let token = token.ok_or_else(|| {
        Refusal::new(
            RefusalCode::JoinNotOpen,
            format!("the session is {}: its room opens once the provider confirms", session.state),
        )
    })?;
    let rejoin =
        session.state == SessionState::InProgress && session.joined.at(token.party).is_some();
    let message = if token.ended_at.is_some() {
        "the session's room has ended".to_string()
    } else if now < token.opens_at {
        format!("the join link works from {}", token.opens_at.to_rfc3339())
    } else if now >= token.closes_at && !rejoin {
        format!(
            "the join link stopped working at {}: the grace period is over",
            token.closes_at.to_rfc3339()
        )
    } else {
        return Ok(token);
    };
    Err(Refusal::new(RefusalCode::JoinNotOpen, message).into())
}

/// The caller's join link, once the join window is open.
#[utoipa::path(get, path = "/v1/sessions/{id}/join", tag = "joining",
    params(("id" = SessionId, Path)),
    responses((status = 200, body = JoinLink, description = "the caller's own link: from shortly before the start until the grace period ends, and for someone who has joined until the session ends"),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody, description = "join_not_open")),
    security(("bearer" = [])))]
pub async fn join_link(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<SessionId>,
) -> Result<Json<JoinLink>, ApiError> {
    caller.require(&[Role::Client, Role::Provider])?;
    let session = visible_session(&state, &caller, id).await?;
    let party = if caller.role == Role::Client { Party::Client } else { Party::Provider };
    let token = media_rooms::token_of(&state.db, id, party).await?;
    let token = admit(&session, token.as_ref(), Utc::now())?;
    Ok(Json(JoinLink {
        url: format!("{}/join/{}", state.public_url, token.token),
        opens_at: token.opens_at,
        closes_at: token.closes_at,
    }))
}

/// Records the join of the link's holder, tells the session, and sends them on to the room.
/// Someone who has joined may come back through it until the session ends.
#[utoipa::path(get, path = "/join/{token}", tag = "joining",
    params(("token" = String, Path, description = "the secret of a join link")),
    responses((status = 303, description = "on to the media room"), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody, description = "join_not_open"), (status = 503, body = ErrorBody)))]
pub async fn join(
    State(state): State<AppState>,
    ApiPath(token): ApiPath<String>,
) -> Result<Redirect, ApiError> {
    let found = media_rooms::find(&state.db, &token).await?.ok_or(ApiError::NotFound)?;
    let session = sessions::get(&state.db, found.session_id).await?.ok_or(ApiError::NotFound)?;
    let now = Utc::now();
    admit(&session, Some(&found), now)?;
    let first_joined_at = media_rooms::record_join(&state.db, &token, now).await?;
    let join = Join { party: found.party, at: first_joined_at };
    state.sessions.joined(found.session_id, join).await?;
    let room = found.media_url.clone().unwrap_or_else(|| room_path(found.room_id, &token));
    Ok(Redirect::to(&room))
}

fn room_path(room: RoomId, token: &str) -> String {
    format!("/media/rooms/{room}?token={token}")
}

/// The join token that proves a visitor belongs to a room.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct RoomAccess {
    /// The visitor's join token.
    pub token: String,
}

async fn room_token(state: &AppState, room: RoomId, token: &str) -> Result<JoinToken, ApiError> {
    match media_rooms::find(&state.db, token).await? {
        Some(found) if found.room_id == room => Ok(found),
        _ => Err(ApiError::NotFound),
    }
}

/// The built-in media service's room page.
#[utoipa::path(get, path = "/media/rooms/{room_id}", tag = "joining",
    params(("room_id" = RoomId, Path), RoomAccess),
    responses((status = 200, description = "the room page", content_type = "text/html"), (status = 404, body = ErrorBody)))]
pub async fn room_page(
    State(state): State<AppState>,
    ApiPath(room): ApiPath<RoomId>,
    ApiQuery(access): ApiQuery<RoomAccess>,
) -> Result<Html<String>, ApiError> {
    let token = room_token(&state, room, &access.token).await?;
    let body = if token.ended_at.is_some() {
        "<p>This session has ended.</p>".to_string()
    } else {
        format!(
            "<p>You are in the room as the {party}.</p>\
             <form method=\"post\" action=\"/media/rooms/{room}/end?token={secret}\"><button>End session</button></form>",
            party = token.party,
            secret = access.token,
        )
    };
    Ok(Html(format!(
        "<!doctype html><html><head><title>Live session</title></head><body><h1>Live session</h1>{body}</body></html>"
    )))
}

/// Ends the room (either person may), which completes a session in progress.
#[utoipa::path(post, path = "/media/rooms/{room_id}/end", tag = "joining",
    params(("room_id" = RoomId, Path), RoomAccess),
    responses((status = 200, description = "the room has ended", content_type = "text/html"), (status = 404, body = ErrorBody), (status = 503, body = ErrorBody)))]
pub async fn end_room(
    State(state): State<AppState>,
    ApiPath(room): ApiPath<RoomId>,
    ApiQuery(access): ApiQuery<RoomAccess>,
) -> Result<Html<&'static str>, ApiError> {
    let token = room_token(&state, room, &access.token).await?;
    media_rooms::end(&state.db, room, Utc::now()).await?;
    match state.sessions.room_ended(token.session_id).await {
        Ok(()) | Err(SessionCallError::NotRunning) => {}
        Err(other) => return Err(other.into()),
    }
    Ok(Html("<!doctype html><html><body><p>This session has ended.</p></body></html>"))
}

/// A signed event from the media service.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MediaEvent {
    /// Unique per event; a repeat is acknowledged and ignored.
    pub id: String,
    /// `participant_joined`, `participant_left` or `room_ended`.
    #[serde(rename = "type")]
    pub kind: MediaEventKind,
    /// The room (this service's room id).
    pub room_id: RoomId,
    /// Who joined or left (for participant events).
    pub party: Option<Party>,
    /// When it happened.
    pub occurred_at: DateTime<Utc>,
}

/// What happened in a room.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum MediaEventKind {
    /// Someone arrived.
    ParticipantJoined,
    /// Someone left.
    ParticipantLeft,
    /// The room closed.
    RoomEnded,
}

/// The answer to a media event.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct MediaEventReceipt {
    /// `accepted`, or `duplicate` for an event seen before.
    pub status: &'static str,
}

/// Checks the signature (`X-Media-Signature: v1=<hex HMAC-SHA256 of "<timestamp>.<body>">`,
/// `X-Media-Timestamp: <unix seconds>`) and the timestamp's age.
fn verify_media_signature(
    state: &AppState,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<(), ApiError> {
    let secret = state.media.webhook_secret.as_deref().ok_or_else(|| {
        ApiError::Unauthorized("media events are not configured (media.webhook_secret)".into())
    })?;
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| ApiError::Unauthorized(format!("the {name} header is required")))
    };
    let timestamp: i64 = header("x-media-timestamp")?
        .parse()
        .map_err(|_| ApiError::Unauthorized("X-Media-Timestamp must be unix seconds".into()))?;
    let signature = header("x-media-signature")?;
    let tolerance = state.media.webhook_tolerance.as_secs();
    signature::verify(secret, timestamp, body, signature, Utc::now().timestamp(), tolerance)
        .map_err(|e| ApiError::Unauthorized(format!("the media event is refused: {e}")))
}

/// A signed event from the media service: joins and the room's end reach the session's
/// workflow; a repeated event changes nothing.
#[utoipa::path(post, path = "/v1/media/events", tag = "joining", request_body = MediaEvent,
    params(("X-Media-Timestamp" = i64, Header, description = "unix seconds"), ("X-Media-Signature" = String, Header, description = "v1=<hex HMAC-SHA256 of \"<timestamp>.<body>\">")),
    responses((status = 200, body = MediaEventReceipt), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody, description = "bad signature or stale timestamp"),
        (status = 404, body = ErrorBody), (status = 503, body = ErrorBody)))]
pub async fn media_event(
    State(state): State<AppState>,
    headers: HeaderMap,
    ApiBytes(body): ApiBytes,
) -> Result<Json<MediaEventReceipt>, ApiError> {
    verify_media_signature(&state, &headers, &body)?;
    let event: MediaEvent = crate::extract::from_json(&body)?;
    if media_events::seen(&state.db, &event.id).await? {
        return Ok(Json(MediaEventReceipt { status: "duplicate" }));
    }
    let session =
        media_rooms::session_of(&state.db, event.room_id).await?.ok_or(ApiError::NotFound)?;
    match event.kind {
        MediaEventKind::ParticipantJoined => {
            let party = event
                .party
                .ok_or_else(|| ApiError::Malformed("participant_joined needs a party".into()))?;
            let token = media_rooms::token_of(&state.db, session, party)
                .await?
                .ok_or(ApiError::NotFound)?;
            let first_joined_at =
                media_rooms::record_join(&state.db, &token.token, event.occurred_at).await?;
            state.sessions.joined(session, Join { party, at: first_joined_at }).await?;
        }
        MediaEventKind::ParticipantLeft => {}
        MediaEventKind::RoomEnded => {
            media_rooms::end(&state.db, event.room_id, event.occurred_at).await?;
            match state.sessions.room_ended(session).await {
                Ok(()) | Err(SessionCallError::NotRunning) => {}
                Err(other) => return Err(other.into()),
            }
        }
    }
    media_events::record(
        &state.db,
        &event.id,
        media_event_name(event.kind),
        event.room_id,
        Utc::now(),
    )
    .await?;
    Ok(Json(MediaEventReceipt { status: "accepted" }))
}

fn media_event_name(kind: MediaEventKind) -> &'static str {
    match kind {
        MediaEventKind::ParticipantJoined => "participant_joined",
        MediaEventKind::ParticipantLeft => "participant_left",
        MediaEventKind::RoomEnded => "room_ended",
    }
}
