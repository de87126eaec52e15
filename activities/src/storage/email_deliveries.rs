//! Which emails went out: one row per key and recipient, so a retried delivery sends nobody twice.

use super::{Db, StorageError};
use crate::{execute, with_pool};
use chrono::{DateTime, Utc};
use livesessions_domain::Party;

/// Whether the email of `key` went to `recipient` already.
pub async fn was_sent(db: &Db, key: &str, recipient: Party) -> Result<bool, StorageError> {
    let count: i64 = with_pool!(db, |pool| {
        sqlx::query_scalar(
            "SELECT COUNT(*) FROM email_deliveries WHERE idempotency_key = $1 AND recipient = $2",
        )
        .bind(key)
        .bind(recipient.as_str())
        .fetch_one(pool)
        .await
    })?;
    Ok(count > 0)
}

/// Notes that the email of `key` went to `recipient`.
pub async fn record_sent(
    db: &Db,
    key: &str,
    recipient: Party,
    message_id: &str,
    now: DateTime<Utc>,
) -> Result<(), StorageError> {
    execute!(db, sqlx::query(
            "INSERT INTO email_deliveries (idempotency_key, recipient, message_id, sent_at) VALUES ($1, $2, $3, $4)
             ON CONFLICT (idempotency_key, recipient) DO NOTHING",
        )
        .bind(key)
        .bind(recipient.as_str())
        .bind(message_id)
        .bind(now))?;
    Ok(())
}
