//! Money charged to clients: credit purchases and fees, each at most once per idempotency key
//! (`<workflow id>:<business step>`, never an attempt number).

use super::{Db, StorageError, WriteTx, parse_column};
use crate::{with_pool, with_tx};
use chrono::{DateTime, Utc};
use livesessions_domain::{ClientId, Currency, FeeKind, Money, SessionId};
use sqlx::FromRow;
use uuid::Uuid;

/// Why money was charged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChargeKind {
    /// One session credit bought.
    CreditPurchase,
    /// A fee.
    Fee(FeeKind),
}

impl ChargeKind {
    /// The stored name: `credit_purchase`, `late_cancel_fee`, `no_show_fee`.
    pub fn as_str(&self) -> &'static str {
        match self {
            ChargeKind::CreditPurchase => "credit_purchase",
            ChargeKind::Fee(kind) => kind.as_str(),
        }
    }

    fn parse(text: &str) -> Result<Self, String> {
        match text {
            "credit_purchase" => Ok(ChargeKind::CreditPurchase),
            other => FeeKind::parse(other).map(ChargeKind::Fee).map_err(|e| e.0),
        }
    }
}

/// A charge to record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewCharge<'a> {
    /// The idempotency key.
    pub key: &'a str,
    /// Who pays.
    pub client_id: ClientId,
    /// For which session, if any.
    pub session_id: Option<SessionId>,
    /// Why.
    pub kind: ChargeKind,
    /// How much.
    pub amount: Money,
}

/// A recorded charge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Charge {
    /// The idempotency key.
    pub key: String,
    /// Who paid.
    pub client_id: ClientId,
    /// For which session, if any.
    pub session_id: Option<SessionId>,
    /// Why.
    pub kind: ChargeKind,
    /// How much.
    pub amount: Money,
    /// When.
    pub created_at: DateTime<Utc>,
}

#[derive(FromRow)]
struct ChargeRow {
    idempotency_key: String,
    client_id: Uuid,
    session_id: Option<Uuid>,
    kind: String,
    amount_minor: i64,
    currency: String,
    created_at: DateTime<Utc>,
}

impl TryFrom<ChargeRow> for Charge {
    type Error = StorageError;
    fn try_from(row: ChargeRow) -> Result<Self, StorageError> {
        Ok(Charge {
            key: row.idempotency_key,
            client_id: ClientId::from_uuid(row.client_id),
            session_id: row.session_id.map(SessionId::from_uuid),
            kind: parse_column("charges.kind", ChargeKind::parse(&row.kind))?,
            amount: Money::new(
                row.amount_minor,
                parse_column("charges.currency", Currency::parse(&row.currency))?,
            ),
            created_at: row.created_at,
        })
    }
}

/// Records a charge inside the caller's transaction; answers false (and records nothing) when
/// the key was charged before.
pub(crate) async fn record(
    tx: &mut WriteTx,
    charge: &NewCharge<'_>,
    now: DateTime<Utc>,
) -> Result<bool, StorageError> {
    let inserted = with_tx!(tx, |conn| {
        sqlx::query(
            "INSERT INTO charges (id, idempotency_key, client_id, session_id, kind, amount_minor, currency, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
             ON CONFLICT (idempotency_key) DO NOTHING",
        )
        .bind(Uuid::new_v4())
        .bind(charge.key)
        .bind(charge.client_id.as_uuid())
        .bind(charge.session_id.map(|s| s.as_uuid()))
        .bind(charge.kind.as_str())
        .bind(charge.amount.amount_minor)
        .bind(charge.amount.currency.as_str())
        .bind(now)
        .execute(&mut *conn)
        .await
        .map(|done| done.rows_affected())
    })?;
    Ok(inserted == 1)
}

/// Records a charge in a transaction of its own; answers whether it is new.
pub async fn charge(
    db: &Db,
    charge: &NewCharge<'_>,
    now: DateTime<Utc>,
) -> Result<bool, StorageError> {
    let mut tx = db.begin_write().await?;
    let new = record(&mut tx, charge, now).await?;
    tx.commit().await?;
    Ok(new)
}

/// Every charge made for a session, oldest first.
pub async fn for_session(db: &Db, session: SessionId) -> Result<Vec<Charge>, StorageError> {
    let rows: Vec<ChargeRow> = with_pool!(db, |pool| {
        sqlx::query_as(
            "SELECT idempotency_key, client_id, session_id, kind, amount_minor, currency, created_at
             FROM charges WHERE session_id = $1 ORDER BY created_at, id",
        )
        .bind(session.as_uuid())
        .fetch_all(pool)
        .await
    })?;
    rows.into_iter().map(Charge::try_from).collect()
}
