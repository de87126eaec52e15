//! The outbox: deliveries (emails, webhook events) written in the transaction of the state that
//! reports them, and sent by the worker's dispatcher. A row is leased while it is being sent, so
//! dispatchers in several workers never send one row at the same time; a delivery that fails is
//! tried again later, with backoff, until the receiver accepts it.

use super::{Db, StorageError, WriteTx};
use crate::{execute, execute_in, with_pool};
use chrono::{DateTime, Utc};
use livesessions_workflows::DeliveryInput;
use sqlx::types::Json;

/// One delivery waiting in the outbox, leased to the dispatcher that claimed it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pending {
    /// The delivery's idempotency key.
    pub key: String,
    /// What to deliver.
    pub delivery: DeliveryInput,
    /// How many times it has been claimed, this time included.
    pub attempts: i32,
}

/// Adds a delivery inside `tx`; a key already there keeps its row.
pub async fn enqueue_in(
    tx: &mut WriteTx,
    key: &str,
    delivery: &DeliveryInput,
    now: DateTime<Utc>,
) -> Result<(), StorageError> {
    execute_in!(
        tx,
        sqlx::query(
            "INSERT INTO outbox (key, payload, next_attempt_at, created_at) VALUES ($1, $2, $3, $3)
             ON CONFLICT (key) DO NOTHING",
        )
        .bind(key)
        .bind(Json(delivery))
        .bind(now)
    )?;
    Ok(())
}

/// Adds a delivery in a transaction of its own.
pub async fn enqueue(
    db: &Db,
    key: &str,
    delivery: &DeliveryInput,
    now: DateTime<Utc>,
) -> Result<(), StorageError> {
    let mut tx = db.begin_write().await?;
    enqueue_in(&mut tx, key, delivery, now).await?;
    tx.commit().await
}

/// Leases up to `limit` deliveries that are due at `now` until `lease_until`, oldest first.
pub async fn claim_due(
    db: &Db,
    now: DateTime<Utc>,
    lease_until: DateTime<Utc>,
    limit: i64,
) -> Result<Vec<Pending>, StorageError> {
    // The lease condition stands outside the subquery too, so that PostgreSQL re-checks it on a
    // row another dispatcher leased meanwhile and skips that row.
    let rows: Vec<(String, Json<DeliveryInput>, i32)> = with_pool!(db, |pool| {
        sqlx::query_as(
            "UPDATE outbox SET lease_until = $2, attempts = attempts + 1
             WHERE key IN (SELECT key FROM outbox
                           WHERE sent_at IS NULL AND next_attempt_at <= $1
                             AND (lease_until IS NULL OR lease_until <= $1)
                           ORDER BY next_attempt_at LIMIT $3)
               AND sent_at IS NULL AND (lease_until IS NULL OR lease_until <= $1)
             RETURNING key, payload, attempts",
        )
        .bind(now)
        .bind(lease_until)
        .bind(limit)
        .fetch_all(pool)
        .await
    })?;
    Ok(rows
        .into_iter()
        .map(|(key, Json(delivery), attempts)| Pending { key, delivery, attempts })
        .collect())
}

/// The receiver accepted the delivery of `key`.
pub async fn sent(db: &Db, key: &str, now: DateTime<Utc>) -> Result<(), StorageError> {
    execute!(
        db,
        sqlx::query(
            "UPDATE outbox SET sent_at = $2, lease_until = NULL, last_error = NULL WHERE key = $1"
        )
        .bind(key)
        .bind(now)
    )?;
    Ok(())
}

/// The delivery of `key` failed with `error`; it is tried again at `retry_at`.
pub async fn failed(
    db: &Db,
    key: &str,
    error: &str,
    retry_at: DateTime<Utc>,
) -> Result<(), StorageError> {
    execute!(
        db,
        sqlx::query(
            "UPDATE outbox SET next_attempt_at = $2, lease_until = NULL, last_error = $3 WHERE key = $1"
        )
        .bind(key)
        .bind(retry_at)
        .bind(error)
    )?;
    Ok(())
}
