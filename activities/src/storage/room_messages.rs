//! What a client's room shows: reminders, prompts and notices, newest last.

use super::{Db, StorageError, WriteTx};
use crate::{execute_in, with_pool};
use chrono::{DateTime, Utc};
use livesessions_domain::{ClientId, ProviderId, SessionId};
use sqlx::FromRow;
use uuid::Uuid;

/// One message in a client's room.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RoomMessage {
    /// The message.
    pub id: Uuid,
    /// Whose room.
    pub client_id: ClientId,
    /// The session it is about, if any.
    pub session_id: Option<SessionId>,
    /// A stable kind (`session_confirmed`, `session_expired`, …).
    pub kind: String,
    /// The text the room shows.
    pub body: String,
    /// When it was posted.
    pub created_at: DateTime<Utc>,
}

#[derive(FromRow)]
struct RoomMessageRow {
    id: Uuid,
    client_id: Uuid,
    session_id: Option<Uuid>,
    kind: String,
    body: String,
    created_at: DateTime<Utc>,
}

impl From<RoomMessageRow> for RoomMessage {
    fn from(row: RoomMessageRow) -> Self {
        RoomMessage {
            id: row.id,
            client_id: ClientId::from_uuid(row.client_id),
            session_id: row.session_id.map(SessionId::from_uuid),
            kind: row.kind,
            body: row.body,
            created_at: row.created_at,
        }
    }
}

/// A message to post, and the key that makes posting it idempotent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewRoomMessage<'a> {
    /// Unique per message: the same key is never posted twice.
    pub key: &'a str,
    /// Whose room.
    pub client_id: ClientId,
    /// The session it is about, if any.
    pub session_id: Option<SessionId>,
    /// A stable kind.
    pub kind: &'a str,
    /// The text.
    pub body: &'a str,
}

/// Posts a message unless one with the same key was posted before.
pub async fn post(
    db: &Db,
    message: &NewRoomMessage<'_>,
    now: DateTime<Utc>,
) -> Result<(), StorageError> {
    let mut tx = db.begin_write().await?;
    post_in(&mut tx, message, now).await?;
    tx.commit().await
}

/// Posts a message inside `tx` unless one with the same key was posted before.
pub async fn post_in(
    tx: &mut WriteTx,
    message: &NewRoomMessage<'_>,
    now: DateTime<Utc>,
) -> Result<(), StorageError> {
    execute_in!(tx, sqlx::query(
            "INSERT INTO room_messages (id, client_id, session_id, kind, body, idempotency_key, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7)
             ON CONFLICT (idempotency_key) DO NOTHING",
        )
        .bind(Uuid::new_v4())
        .bind(message.client_id.as_uuid())
        .bind(message.session_id.map(|id| id.as_uuid()))
        .bind(message.kind)
        .bind(message.body)
        .bind(message.key)
        .bind(now))?;
    Ok(())
}

/// The messages in a client's room, oldest first: all of them, or with `provider` only those
/// about the client's live and messaging sessions with that provider.
pub async fn list(
    db: &Db,
    client: ClientId,
    provider: Option<ProviderId>,
) -> Result<Vec<RoomMessage>, StorageError> {
    let rows: Vec<RoomMessageRow> = with_pool!(db, |pool| {
        sqlx::query_as(
            "SELECT id, client_id, session_id, kind, body, created_at FROM room_messages
             WHERE client_id = $1
               AND ($2 IS NULL OR session_id IN (
                     SELECT id FROM sessions WHERE client_id = $1 AND provider_id = $2
                     UNION ALL
                     SELECT id FROM messaging_sessions WHERE client_id = $1 AND provider_id = $2))
             ORDER BY created_at, id",
        )
        .bind(client.as_uuid())
        .bind(provider.map(|p| p.as_uuid()))
        .fetch_all(pool)
        .await
    })?;
    Ok(rows.into_iter().map(RoomMessage::from).collect())
}
