//! Media service events already handled, so a repeated event is recognised.

use super::{Db, StorageError};
use crate::{execute, with_pool};
use chrono::{DateTime, Utc};
use livesessions_domain::RoomId;

/// Whether the event with this id was handled before.
pub async fn seen(db: &Db, id: &str) -> Result<bool, StorageError> {
    let count: i64 = with_pool!(db, |pool| {
        sqlx::query_scalar("SELECT COUNT(*) FROM media_events WHERE id = $1")
            .bind(id)
            .fetch_one(pool)
            .await
    })?;
    Ok(count > 0)
}

/// Notes an event as handled (after it was: a failure midway leaves it to be sent again).
pub async fn record(
    db: &Db,
    id: &str,
    kind: &str,
    room: RoomId,
    now: DateTime<Utc>,
) -> Result<(), StorageError> {
    execute!(db, sqlx::query("INSERT INTO media_events (id, kind, room_id, received_at) VALUES ($1, $2, $3, $4) ON CONFLICT (id) DO NOTHING")
            .bind(id)
            .bind(kind)
            .bind(room.as_uuid())
            .bind(now))?;
    Ok(())
}
