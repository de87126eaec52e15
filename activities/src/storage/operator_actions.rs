//! Why operators acted: the reason of each repair and credit adjustment, which may be health
//! information, kept here under the action's id and never in workflow history (which carries
//! the id only) or in the audit log (which the request id ties it to).

use super::{Db, StorageError};
use crate::execute;
use chrono::{DateTime, Utc};
use livesessions_domain::{ActionId, OperatorReason};

/// One operator action to keep.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OperatorAction<'a> {
    /// The action (its workflow update's id).
    pub id: ActionId,
    /// What it did, e.g. `cancel`, `grant_credit`.
    pub action: &'a str,
    /// What it was about: a session or a client id.
    pub subject_id: String,
    /// Why.
    pub reason: &'a OperatorReason,
    /// Who (the operator's `sub`).
    pub requested_by: &'a str,
    /// When.
    pub requested_at: DateTime<Utc>,
    /// The request it came with (its audit entry's).
    pub request_id: &'a str,
}

/// Keeps `action` (the same id twice keeps the first).
pub async fn record(db: &Db, action: &OperatorAction<'_>) -> Result<(), StorageError> {
    execute!(
        db,
        sqlx::query(
            "INSERT INTO operator_actions (id, action, subject_id, reason, requested_by, requested_at, request_id)
             VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (id) DO NOTHING",
        )
        .bind(action.id.as_uuid())
        .bind(action.action)
        .bind(&action.subject_id)
        .bind(action.reason.as_str())
        .bind(action.requested_by)
        .bind(action.requested_at)
        .bind(action.request_id)
    )?;
    Ok(())
}

/// Drops the reason of action `id`, which was refused (it changed nothing).
pub async fn forget(db: &Db, id: ActionId) -> Result<(), StorageError> {
    execute!(db, sqlx::query("DELETE FROM operator_actions WHERE id = $1").bind(id.as_uuid()))?;
    Ok(())
}
