//! `Idempotency-Key` of API requests: the first response to a key is kept, and repeats of the
//! same request get it back instead of acting again.

use super::{Db, StorageError};
use crate::{execute, with_pool};
use chrono::{DateTime, TimeDelta, Utc};

/// What a request with a key may do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// First time (or a stale claim taken over): run the request, then [`complete`] it.
    Fresh,
    /// Answered before: send this back.
    Replay {
        /// The first response's status.
        status: u16,
        /// Its body.
        body: Vec<u8>,
    },
    /// The key came with another request before.
    Reused,
    /// The first request with this key is still running.
    InProgress,
}

/// Claims `key` of `caller` for a request whose hash is `request_hash`. A claim left unanswered
/// longer than `stale_after` (its process died) is taken over.
pub async fn claim(
    db: &Db,
    caller: &str,
    key: &str,
    request_hash: &str,
    now: DateTime<Utc>,
    stale_after: TimeDelta,
) -> Result<Claim, StorageError> {
    let inserted = execute!(db, sqlx::query(
            "INSERT INTO idempotency (caller, idempotency_key, request_hash, status_code, response_body, created_at)
             VALUES ($1, $2, $3, NULL, NULL, $4) ON CONFLICT (caller, idempotency_key) DO NOTHING",
        )
        .bind(caller)
        .bind(key)
        .bind(request_hash)
        .bind(now))?;
    if inserted == 1 {
        return Ok(Claim::Fresh);
    }
    let (hash, status, body, created_at): (String, Option<i32>, Option<Vec<u8>>, DateTime<Utc>) =
        with_pool!(db, |pool| {
            sqlx::query_as(
                "SELECT request_hash, status_code, response_body, created_at FROM idempotency
             WHERE caller = $1 AND idempotency_key = $2",
            )
            .bind(caller)
            .bind(key)
            .fetch_one(pool)
            .await
        })?;
    if hash != request_hash {
        return Ok(Claim::Reused);
    }
    match (status, body) {
        (Some(status), Some(body)) => {
            Ok(Claim::Replay { status: u16::try_from(status).unwrap_or(500), body })
        }
        _ if created_at < now - stale_after => {
            let taken = execute!(db, sqlx::query(
                    "UPDATE idempotency SET created_at = $3
                     WHERE caller = $1 AND idempotency_key = $2 AND status_code IS NULL AND created_at = $4",
                )
                .bind(caller)
                .bind(key)
                .bind(now)
                .bind(created_at))?;
            Ok(if taken == 1 { Claim::Fresh } else { Claim::InProgress })
        }
        _ => Ok(Claim::InProgress),
    }
}

/// Keeps the response to a claimed key.
pub async fn complete(
    db: &Db,
    caller: &str,
    key: &str,
    status: u16,
    body: &[u8],
) -> Result<(), StorageError> {
    execute!(db, sqlx::query("UPDATE idempotency SET status_code = $3, response_body = $4 WHERE caller = $1 AND idempotency_key = $2")
            .bind(caller)
            .bind(key)
            .bind(i32::from(status))
            .bind(body))?;
    Ok(())
}

/// Gives a claim up (the request failed on our side and changed nothing): the key may be used
/// again.
pub async fn release(db: &Db, caller: &str, key: &str) -> Result<(), StorageError> {
    execute!(db, sqlx::query("DELETE FROM idempotency WHERE caller = $1 AND idempotency_key = $2 AND status_code IS NULL")
            .bind(caller)
            .bind(key))?;
    Ok(())
}
