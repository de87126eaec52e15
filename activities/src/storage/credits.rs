//! Session credits: one row each. `available` credits belong to nobody yet; a reserved, consumed
//! or forfeited credit names the session that holds it.

use super::{Db, StorageError, WriteTx};
use crate::{with_pool, with_tx};
use chrono::{DateTime, Utc};
use livesessions_domain::{ClientId, CreditId, CreditStatus, SessionId};
use uuid::Uuid;

/// A client's credits by status.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CreditBalance {
    /// Free to book with.
    pub available: i64,
    /// Held by requested or confirmed sessions.
    pub reserved: i64,
}

/// Grants `count` new available credits to a client.
pub(crate) async fn grant(
    tx: &mut WriteTx,
    client: ClientId,
    count: u32,
    now: DateTime<Utc>,
) -> Result<(), StorageError> {
    with_tx!(tx, |conn| for _ in 0..count {
        sqlx::query(
            "INSERT INTO credits (id, client_id, status, session_id, source, created_at, updated_at)
             VALUES ($1, $2, 'available', NULL, 'plan_grant', $3, $3)",
        )
        .bind(Uuid::new_v4())
        .bind(client.as_uuid())
        .bind(now)
        .execute(&mut *conn)
        .await?;
    });
    Ok(())
}

/// Reserves the client's oldest available credit for `session`, inside the caller's transaction.
pub(crate) async fn reserve(
    tx: &mut WriteTx,
    client: ClientId,
    session: SessionId,
    now: DateTime<Utc>,
) -> Result<Option<CreditId>, StorageError> {
    // The inner SELECT may race another reservation on PostgreSQL; the outer status check makes
    // the loser update nothing, and it tries the next credit.
    with_tx!(tx, |conn| for _ in 0..5 {
        let reserved: Option<Uuid> = sqlx::query_scalar(
            "UPDATE credits SET status = 'reserved', session_id = $1, updated_at = $3
             WHERE id = (SELECT id FROM credits WHERE client_id = $2 AND status = 'available'
                         ORDER BY created_at, id LIMIT 1)
               AND status = 'available'
             RETURNING id",
        )
        .bind(session.as_uuid())
        .bind(client.as_uuid())
        .bind(now)
        .fetch_optional(&mut *conn)
        .await?;
        if let Some(id) = reserved {
            return Ok(Some(CreditId::from_uuid(id)));
        }
        let available: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM credits WHERE client_id = $1 AND status = 'available'",
        )
        .bind(client.as_uuid())
        .fetch_one(&mut *conn)
        .await?;
        if available == 0 {
            return Ok(None);
        }
    });
    Ok(None)
}

/// The credit a session holds (inside a write transaction).
pub(crate) async fn held_by(
    tx: &mut WriteTx,
    session: SessionId,
) -> Result<Option<CreditId>, StorageError> {
    let id: Option<Uuid> = with_tx!(tx, |conn| {
        sqlx::query_scalar("SELECT id FROM credits WHERE session_id = $1")
            .bind(session.as_uuid())
            .fetch_optional(&mut *conn)
            .await
    })?;
    Ok(id.map(CreditId::from_uuid))
}

/// Moves the credit held by `session` to `to`: `released` makes it available again. Idempotent:
/// a credit already moved (or never held by this session) is left as it is.
pub async fn settle(
    db: &Db,
    session: SessionId,
    credit: CreditId,
    to: CreditStatus,
    now: DateTime<Utc>,
) -> Result<(), StorageError> {
    let (status, holder) = match to {
        CreditStatus::Released => ("available", None),
        CreditStatus::Reserved => ("reserved", Some(session.as_uuid())),
        CreditStatus::Consumed => ("consumed", Some(session.as_uuid())),
        CreditStatus::Forfeited => ("forfeited", Some(session.as_uuid())),
    };
    with_pool!(db, |pool| {
        sqlx::query(
            "UPDATE credits SET status = $1, session_id = $2, updated_at = $3
             WHERE id = $4 AND session_id = $5 AND status = 'reserved'",
        )
        .bind(status)
        .bind(holder)
        .bind(now)
        .bind(credit.as_uuid())
        .bind(session.as_uuid())
        .execute(pool)
        .await
        .map(|done| done.rows_affected())
    })?;
    Ok(())
}

/// How many credits the client has available and reserved.
pub async fn balance(db: &Db, client: ClientId) -> Result<CreditBalance, StorageError> {
    let (available, reserved): (i64, i64) = with_pool!(db, |pool| {
        sqlx::query_as(
            "SELECT COALESCE(SUM(CASE WHEN status = 'available' THEN 1 ELSE 0 END), 0),
                    COALESCE(SUM(CASE WHEN status = 'reserved' THEN 1 ELSE 0 END), 0)
             FROM credits WHERE client_id = $1",
        )
        .bind(client.as_uuid())
        .fetch_one(pool)
        .await
    })?;
    Ok(CreditBalance {
        available,
        reserved,
    })
}
