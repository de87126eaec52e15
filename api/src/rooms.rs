//! What a client's room shows.

use crate::auth::Caller;
use crate::error::{ApiError, ErrorBody};
use crate::extract::ApiPath;
use crate::state::AppState;
use axum::Json;
use axum::extract::State;
use livesessions_activities::storage::room_messages::{self, RoomMessage};
use livesessions_activities::storage::sessions;
use livesessions_domain::{ClientId, ProviderId, Role};
use serde::Serialize;

/// The messages of one client's room.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct RoomMessages {
    /// Oldest first.
    pub messages: Vec<RoomMessage>,
}

/// The client's room. The client and services read all of it; a provider who has had a
/// session with the client reads only the messages about sessions with them. No message carries
/// a join token: a reminder points to `GET /v1/sessions/{id}/join`, which answers the caller's
/// own link.
#[utoipa::path(get, path = "/v1/rooms/{client_id}/messages", tag = "rooms",
    params(("client_id" = ClientId, Path)),
    responses((status = 200, body = RoomMessages, description = "for a provider, only the messages about sessions with them"),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody, description = "another client's room, or one of a client the provider never had a session with")),
    security(("bearer" = [])))]
pub async fn room_messages(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(client): ApiPath<ClientId>,
) -> Result<Json<RoomMessages>, ApiError> {
    caller.require(&[Role::Client, Role::Provider, Role::Service])?;
    let provider = match caller.role {
        Role::Client if caller.is_client(client) => None,
        Role::Provider => match ProviderId::parse(&caller.sub) {
            Ok(provider) if sessions::exists_between(&state.db, client, provider).await? => {
                Some(provider)
            }
            _ => return Err(ApiError::NotFound),
        },
        Role::Service => None,
        _ => return Err(ApiError::NotFound),
    };
    let messages = room_messages::list(&state.db, client, provider).await?;
    Ok(Json(RoomMessages { messages }))
}
