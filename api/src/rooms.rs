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

/// The client's room: that client, their providers and services may read it.
#[utoipa::path(get, path = "/v1/rooms/{client_id}/messages", tag = "rooms",
    params(("client_id" = ClientId, Path)),
    responses((status = 200, body = RoomMessages), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn room_messages(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(client): ApiPath<ClientId>,
) -> Result<Json<RoomMessages>, ApiError> {
    caller.require(&[Role::Client, Role::Provider, Role::Service])?;
    let allowed = match caller.role {
        Role::Client => caller.is_client(client),
        Role::Provider => match ProviderId::parse(&caller.sub) {
            Ok(provider) => sessions::exists_between(&state.db, client, provider).await?,
            Err(_) => false,
        },
        _ => true,
    };
    if !allowed {
        return Err(ApiError::NotFound);
    }
    let messages = room_messages::list(&state.db, client).await?;
    Ok(Json(RoomMessages { messages }))
}
