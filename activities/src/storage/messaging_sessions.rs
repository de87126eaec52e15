//! The `messaging_sessions` read model, written by the messaging session workflow.

use super::{Db, StorageError};
use crate::{execute, with_pool};
use chrono::{DateTime, Utc};
use livesessions_domain::{MessagingSnapshot, SessionId};
use sqlx::types::Json;

/// Writes `snapshot` unless the row already has the same or a newer version.
pub async fn record(
    db: &Db,
    snapshot: &MessagingSnapshot,
    now: DateTime<Utc>,
) -> Result<(), StorageError> {
    let version = i64::try_from(snapshot.version)
        .map_err(|_| StorageError::Corrupt("messaging session version overflows".into()))?;
    execute!(db, sqlx::query(
            "INSERT INTO messaging_sessions (id, workflow_id, client_id, provider_id, state, version, snapshot, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
             ON CONFLICT (id) DO UPDATE SET state = excluded.state, version = excluded.version,
                 snapshot = excluded.snapshot, updated_at = excluded.updated_at
             WHERE messaging_sessions.version < excluded.version",
        )
        .bind(snapshot.id.as_uuid())
        .bind(&snapshot.workflow_id)
        .bind(snapshot.client_id.as_uuid())
        .bind(snapshot.provider_id.as_uuid())
        .bind(snapshot.state.as_str())
        .bind(version)
        .bind(Json(snapshot))
        .bind(now))?;
    Ok(())
}

/// The newest snapshot of one messaging session.
pub async fn get(db: &Db, id: SessionId) -> Result<Option<MessagingSnapshot>, StorageError> {
    let row: Option<Json<MessagingSnapshot>> = with_pool!(db, |pool| {
        sqlx::query_scalar("SELECT snapshot FROM messaging_sessions WHERE id = $1")
            .bind(id.as_uuid())
            .fetch_optional(pool)
            .await
    })?;
    Ok(row.map(|Json(snapshot)| snapshot))
}
