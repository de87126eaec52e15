//! Session credits and insurance authorizations: one row each, the thing a booking holds.
//! `available` rows belong to nobody yet; a reserved, consumed or forfeited one names the
//! session holding it.

use super::charges::{self, NewCharge};
use super::{Db, StorageError, WriteTx};
use crate::{with_pool, with_tx};
use chrono::{DateTime, Utc};
use livesessions_domain::{ClientId, Coverage, CreditId, CreditStatus, Money, SessionId};
use uuid::Uuid;

/// What a row is: a session credit, or an insurance client's authorization of a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CreditKind {
    /// Subscription and EAP.
    Credit,
    /// Insurance.
    Authorization,
}

impl CreditKind {
    /// What a booking under `coverage` holds.
    pub fn for_coverage(coverage: Coverage) -> Self {
        if coverage.uses_credits() { CreditKind::Credit } else { CreditKind::Authorization }
    }

    fn as_str(&self) -> &'static str {
        match self {
            CreditKind::Credit => "credit",
            CreditKind::Authorization => "authorization",
        }
    }
}

/// A client's credits (or authorizations) by status.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CreditBalance {
    /// Free to book with.
    pub available: i64,
    /// Held by requested or confirmed sessions.
    pub reserved: i64,
}

/// A credit (or authorization) row to write.
struct NewCredit<'a> {
    client: ClientId,
    kind: CreditKind,
    source: &'static str,
    /// Reserved for this session at once; otherwise available.
    session: Option<SessionId>,
    estimate: Option<Money>,
    key: Option<&'a str>,
}

/// Writes one credit row inside the caller's transaction.
async fn insert(
    tx: &mut WriteTx,
    credit: &NewCredit<'_>,
    now: DateTime<Utc>,
) -> Result<CreditId, StorageError> {
    let id = Uuid::new_v4();
    let status = if credit.session.is_some() { "reserved" } else { "available" };
    with_tx!(tx, |conn| {
        sqlx::query(
            "INSERT INTO credits (id, client_id, kind, source, status, session_id, estimate_minor, currency,
                                  idempotency_key, created_at, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $10)",
        )
        .bind(id)
        .bind(credit.client.as_uuid())
        .bind(credit.kind.as_str())
        .bind(credit.source)
        .bind(status)
        .bind(credit.session.map(|s| s.as_uuid()))
        .bind(credit.estimate.map(|m| m.amount_minor))
        .bind(credit.estimate.map(|m| m.currency.as_str().to_string()))
        .bind(credit.key)
        .bind(now)
        .execute(&mut *conn)
        .await
        .map(|done| done.rows_affected())
    })?;
    Ok(CreditId::from_uuid(id))
}

/// Grants a new client what their plan gives on enrolment: `count` credits, or for insurance
/// `count` sessions authorized at intake.
pub(crate) async fn grant_on_enrolment(
    tx: &mut WriteTx,
    client: ClientId,
    coverage: Coverage,
    count: u32,
    now: DateTime<Utc>,
) -> Result<(), StorageError> {
    let kind = CreditKind::for_coverage(coverage);
    let source = match kind {
        CreditKind::Credit => "plan_grant",
        CreditKind::Authorization => "intake_authorization",
    };
    let credit = NewCredit { client, kind, source, session: None, estimate: None, key: None };
    for _ in 0..count {
        insert(tx, &credit, now).await?;
    }
    Ok(())
}

/// Reserves the client's oldest available row of `kind` for `session`, inside the caller's
/// transaction.
pub(crate) async fn reserve(
    tx: &mut WriteTx,
    client: ClientId,
    kind: CreditKind,
    session: SessionId,
    now: DateTime<Utc>,
) -> Result<Option<CreditId>, StorageError> {
    // The inner SELECT may race another reservation on PostgreSQL; the outer status check makes
    // the loser update nothing, and it tries the next row.
    with_tx!(tx, |conn| for _ in 0..5 {
        let reserved: Option<Uuid> = sqlx::query_scalar(
            "UPDATE credits SET status = 'reserved', session_id = $1, updated_at = $4
             WHERE id = (SELECT id FROM credits WHERE client_id = $2 AND kind = $3 AND status = 'available'
                         ORDER BY created_at, id LIMIT 1)
               AND status = 'available'
             RETURNING id",
        )
        .bind(session.as_uuid())
        .bind(client.as_uuid())
        .bind(kind.as_str())
        .bind(now)
        .fetch_optional(&mut *conn)
        .await?;
        if let Some(id) = reserved {
            return Ok(Some(CreditId::from_uuid(id)));
        }
        let available: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM credits WHERE client_id = $1 AND kind = $2 AND status = 'available'",
        )
        .bind(client.as_uuid())
        .bind(kind.as_str())
        .fetch_one(&mut *conn)
        .await?;
        if available == 0 {
            return Ok(None);
        }
    });
    Ok(None)
}

/// Buys one credit at `price` under `key`: the charge and the credit in the caller's
/// transaction, the credit reserved for `session` when one is given. A key seen before buys
/// nothing and answers the credit it bought.
pub(crate) async fn purchase(
    tx: &mut WriteTx,
    key: &str,
    client: ClientId,
    session: Option<SessionId>,
    price: Money,
    now: DateTime<Utc>,
) -> Result<CreditId, StorageError> {
    let charge = NewCharge {
        key,
        client_id: client,
        session_id: session,
        kind: charges::ChargeKind::CreditPurchase,
        amount: price,
    };
    if !charges::record(tx, &charge, now).await? {
        return by_key(tx, key)
            .await?
            .ok_or_else(|| StorageError::Corrupt(format!("purchase {key} has no credit")));
    }
    let credit = NewCredit {
        client,
        kind: CreditKind::Credit,
        source: "purchase",
        session,
        estimate: None,
        key: Some(key),
    };
    insert(tx, &credit, now).await
}

/// Buys one available credit at `price`, once per key.
pub async fn purchase_available(
    db: &Db,
    key: &str,
    client: ClientId,
    price: Money,
    now: DateTime<Utc>,
) -> Result<CreditId, StorageError> {
    let mut tx = db.begin_write().await?;
    let credit = purchase(&mut tx, key, client, None, price, now).await?;
    tx.commit().await?;
    Ok(credit)
}

async fn by_key(tx: &mut WriteTx, key: &str) -> Result<Option<CreditId>, StorageError> {
    let id: Option<Uuid> = with_tx!(tx, |conn| {
        sqlx::query_scalar("SELECT id FROM credits WHERE idempotency_key = $1")
            .bind(key)
            .fetch_optional(&mut *conn)
            .await
    })?;
    Ok(id.map(CreditId::from_uuid))
}

/// The credits a session holds in reserve, oldest first (inside a write transaction).
pub(crate) async fn reserved_for(
    tx: &mut WriteTx,
    session: SessionId,
) -> Result<Vec<CreditId>, StorageError> {
    let ids: Vec<Uuid> = with_tx!(tx, |conn| {
        sqlx::query_scalar("SELECT id FROM credits WHERE session_id = $1 AND status = 'reserved' ORDER BY created_at, id")
            .bind(session.as_uuid())
            .fetch_all(&mut *conn)
            .await
    })?;
    Ok(ids.into_iter().map(CreditId::from_uuid).collect())
}

/// Reserves a second credit for a session whose first is about to be forfeited (a late
/// reschedule). Idempotent: when the session already holds two, answers the newer.
pub async fn reserve_replacement(
    db: &Db,
    session: SessionId,
    client: ClientId,
    kind: CreditKind,
    now: DateTime<Utc>,
) -> Result<Option<CreditId>, StorageError> {
    let mut tx = db.begin_write().await?;
    let held = reserved_for(&mut tx, session).await?;
    if held.len() >= 2 {
        return Ok(held.last().copied());
    }
    let replacement = reserve(&mut tx, client, kind, session, now).await?;
    tx.commit().await?;
    Ok(replacement)
}

/// Records an insurance client's authorization of their next session, once per key.
pub async fn grant_authorization(
    db: &Db,
    key: &str,
    client: ClientId,
    estimate: Money,
    now: DateTime<Utc>,
) -> Result<CreditId, StorageError> {
    let mut tx = db.begin_write().await?;
    if let Some(existing) = by_key(&mut tx, key).await? {
        return Ok(existing);
    }
    let credit = NewCredit {
        client,
        kind: CreditKind::Authorization,
        source: "next_authorization",
        session: None,
        estimate: Some(estimate),
        key: Some(key),
    };
    let id = insert(&mut tx, &credit, now).await?;
    tx.commit().await?;
    Ok(id)
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

/// How many credits (or authorizations) the client has available and reserved.
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
    Ok(CreditBalance { available, reserved })
}
