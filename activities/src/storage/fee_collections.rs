//! Fees left outstanding and their collection: one row per fee (keyed by the fee's ledger key)
//! saying where its collection stands, moved in the database transaction that posts the ledger
//! transaction behind the move; and the waivers finance asked for, with their reason.

use super::{Db, StorageError, WriteTx, parse_column};
use crate::{execute, execute_in, with_pool};
use chrono::{DateTime, Utc};
use livesessions_domain::{
    ClientId, CollectionState, Currency, FeeKind, Money, SessionId, WaiverId, WaiverReason,
};
use livesessions_workflows::activities::FeeCharge;
use serde::Serialize;
use sqlx::FromRow;
use uuid::Uuid;

/// A fee left outstanding, and where its collection stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct FeeRecord {
    /// The fee's ledger key, `<workflow id>:<fee kind>:r<round>` (the `{fee_key}` of its routes).
    pub key: String,
    /// Why it was charged.
    pub kind: FeeKind,
    /// Who owes it.
    pub client_id: ClientId,
    /// The session it was charged for.
    pub session_id: SessionId,
    /// How much.
    pub amount: Money,
    /// Outstanding, collected, waived or written off.
    pub state: CollectionState,
    /// Collection attempts made so far.
    pub attempts: i32,
    /// When the next attempt is due, while it is outstanding.
    pub next_attempt_at: Option<DateTime<Utc>>,
    /// The ledger transaction that ended it (`…:collect:<n>`, `…:waived`, `…:written_off`).
    pub settled_key: Option<String>,
    /// Finance's waiver, when it was waived.
    pub waiver: Option<Waiver>,
    /// When it was left outstanding.
    pub created_at: DateTime<Utc>,
    /// When its collection last moved.
    pub updated_at: DateTime<Utc>,
}

/// A waiver finance asked for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Waiver {
    /// Its id (derived from the caller's Idempotency-Key when there was one).
    pub id: WaiverId,
    /// Why.
    pub reason: WaiverReason,
    /// Who asked (the caller's `sub`).
    pub requested_by: String,
    /// When.
    pub requested_at: DateTime<Utc>,
}

/// Adds `fee` as outstanding inside `tx`, its first attempt due at `next_attempt_at`; answers
/// false (and changes nothing) when it is there already.
pub async fn open(
    tx: &mut WriteTx,
    fee: &FeeCharge,
    next_attempt_at: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> Result<bool, StorageError> {
    let inserted = execute_in!(
        tx,
        sqlx::query(
            "INSERT INTO fee_collections (fee_key, kind, client_id, session_id, amount_minor, currency,
                                          state, attempts, next_attempt_at, created_at, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6, 'outstanding', 0, $7, $8, $8)
             ON CONFLICT (fee_key) DO NOTHING",
        )
        .bind(&fee.key)
        .bind(fee.kind.as_str())
        .bind(fee.client_id.as_uuid())
        .bind(fee.session_id.as_uuid())
        .bind(fee.amount.amount_minor)
        .bind(fee.amount.currency.as_str())
        .bind(next_attempt_at)
        .bind(now)
    )?;
    Ok(inserted > 0)
}

/// Records that attempt `attempt` of an outstanding fee failed, the next due at
/// `next_attempt_at`; answers false when the fee is not outstanding or the attempt was recorded.
pub async fn attempt_failed(
    tx: &mut WriteTx,
    fee_key: &str,
    attempt: u32,
    next_attempt_at: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> Result<bool, StorageError> {
    let updated = execute_in!(
        tx,
        sqlx::query(
            "UPDATE fee_collections SET attempts = $2, next_attempt_at = $3, updated_at = $4
             WHERE fee_key = $1 AND state = 'outstanding' AND attempts < $2",
        )
        .bind(fee_key)
        .bind(i32::try_from(attempt).unwrap_or(i32::MAX))
        .bind(next_attempt_at)
        .bind(now)
    )?;
    Ok(updated > 0)
}

/// How an outstanding fee's collection ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ending<'a> {
    /// Collected, waived or written off.
    pub state: CollectionState,
    /// The ledger transaction that ended it.
    pub settled_key: &'a str,
    /// Attempts made by then.
    pub attempts: u32,
    /// The waiver, when waived.
    pub waiver: Option<WaiverId>,
}

/// Ends an outstanding fee's collection inside `tx`; answers false when it was not outstanding.
pub async fn settle(
    tx: &mut WriteTx,
    fee_key: &str,
    ending: &Ending<'_>,
    now: DateTime<Utc>,
) -> Result<bool, StorageError> {
    let updated = execute_in!(
        tx,
        sqlx::query(
            "UPDATE fee_collections
             SET state = $2, settled_key = $3, attempts = CASE WHEN attempts > $4 THEN attempts ELSE $4 END,
                 waiver_id = $5, next_attempt_at = NULL, updated_at = $6
             WHERE fee_key = $1 AND state = 'outstanding'",
        )
        .bind(fee_key)
        .bind(ending.state.as_str())
        .bind(ending.settled_key)
        .bind(i32::try_from(ending.attempts).unwrap_or(i32::MAX))
        .bind(ending.waiver.map(|w| w.as_uuid()))
        .bind(now)
    )?;
    Ok(updated > 0)
}

/// Keeps a waiver finance asked for (the same id twice keeps the first).
pub async fn request_waiver(db: &Db, fee_key: &str, waiver: &Waiver) -> Result<(), StorageError> {
    execute!(
        db,
        sqlx::query(
            "INSERT INTO fee_waivers (id, fee_key, reason, requested_by, requested_at)
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT (id) DO NOTHING",
        )
        .bind(waiver.id.as_uuid())
        .bind(fee_key)
        .bind(waiver.reason.as_str())
        .bind(&waiver.requested_by)
        .bind(waiver.requested_at)
    )?;
    Ok(())
}

/// Inside `tx`, keeps as the waiver `waiver` of the fee keyed `fee_key` the reason, operator and
/// time of the operator's action with the same id (an operator's cancellation that waived the
/// fee); nothing when that action was not kept, or the waiver is there already.
pub async fn waiver_of_operator_action(
    tx: &mut WriteTx,
    waiver: WaiverId,
    fee_key: &str,
) -> Result<(), StorageError> {
    execute_in!(
        tx,
        sqlx::query(
            "INSERT INTO fee_waivers (id, fee_key, reason, requested_by, requested_at)
             SELECT id, $2, reason, requested_by, requested_at FROM operator_actions WHERE id = $1
             ON CONFLICT (id) DO NOTHING",
        )
        .bind(waiver.as_uuid())
        .bind(fee_key)
    )?;
    Ok(())
}

#[derive(FromRow)]
struct FeeRow {
    fee_key: String,
    kind: String,
    client_id: Uuid,
    session_id: Uuid,
    amount_minor: i64,
    currency: String,
    state: String,
    attempts: i32,
    next_attempt_at: Option<DateTime<Utc>>,
    settled_key: Option<String>,
    waiver_id: Option<Uuid>,
    reason: Option<String>,
    requested_by: Option<String>,
    requested_at: Option<DateTime<Utc>>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl TryFrom<FeeRow> for FeeRecord {
    type Error = StorageError;
    fn try_from(row: FeeRow) -> Result<Self, StorageError> {
        let currency = parse_column("fee_collections.currency", Currency::parse(&row.currency))?;
        let waiver = match (row.waiver_id, row.reason, row.requested_by, row.requested_at) {
            (Some(id), Some(reason), Some(requested_by), Some(requested_at)) => Some(Waiver {
                id: WaiverId::from_uuid(id),
                reason: parse_column("fee_waivers.reason", WaiverReason::parse(&reason))?,
                requested_by,
                requested_at,
            }),
            _ => None,
        };
        Ok(FeeRecord {
            key: row.fee_key,
            kind: parse_column("fee_collections.kind", FeeKind::parse(&row.kind))?,
            client_id: ClientId::from_uuid(row.client_id),
            session_id: SessionId::from_uuid(row.session_id),
            amount: Money::new(row.amount_minor, currency),
            state: parse_column("fee_collections.state", CollectionState::parse(&row.state))?,
            attempts: row.attempts,
            next_attempt_at: row.next_attempt_at,
            settled_key: row.settled_key,
            waiver,
            created_at: row.created_at,
            updated_at: row.updated_at,
        })
    }
}

const SELECT: &str =
    "SELECT f.fee_key, f.kind, f.client_id, f.session_id, f.amount_minor, f.currency,
                             f.state, f.attempts, f.next_attempt_at, f.settled_key, f.waiver_id,
                             w.reason, w.requested_by, w.requested_at, f.created_at, f.updated_at
                      FROM fee_collections f LEFT JOIN fee_waivers w ON w.id = f.waiver_id";

/// The fee keyed `fee_key`, if it was ever left outstanding.
pub async fn get(db: &Db, fee_key: &str) -> Result<Option<FeeRecord>, StorageError> {
    let query = format!("{SELECT} WHERE f.fee_key = $1");
    let row: Option<FeeRow> =
        with_pool!(db, |pool| { sqlx::query_as(&query).bind(fee_key).fetch_optional(pool).await })?;
    row.map(FeeRecord::try_from).transpose()
}

/// A client's fees left outstanding, whatever became of them, oldest first.
pub async fn of_client(db: &Db, client: ClientId) -> Result<Vec<FeeRecord>, StorageError> {
    let query = format!("{SELECT} WHERE f.client_id = $1 ORDER BY f.created_at, f.fee_key");
    let rows: Vec<FeeRow> = with_pool!(db, |pool| {
        sqlx::query_as(&query).bind(client.as_uuid()).fetch_all(pool).await
    })?;
    rows.into_iter().map(FeeRecord::try_from).collect()
}
