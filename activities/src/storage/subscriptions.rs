//! Subscription billing periods: one row per client and period number, written in the
//! transaction that grants the period's credits and expires what it does not carry over. The row
//! is the period's idempotency: a period is begun once, however often its grant is retried.

use super::credits::{self, CreditKind};
use super::{Db, StorageError, WriteTx};
use crate::{execute_in, with_pool, with_tx};
use chrono::{DateTime, Utc};
use livesessions_domain::{BillingPeriod, ClientId, Plan, Renewal};
use sqlx::FromRow;

#[derive(FromRow)]
struct PeriodRow {
    number: i64,
    plan: String,
    starts_at: DateTime<Utc>,
    ends_at: DateTime<Utc>,
    granted: i64,
    carried_over: i64,
    expired: i64,
}

impl TryFrom<PeriodRow> for BillingPeriod {
    type Error = StorageError;
    fn try_from(row: PeriodRow) -> Result<Self, StorageError> {
        Ok(BillingPeriod {
            number: u32::try_from(row.number).map_err(|_| {
                StorageError::Corrupt(format!("subscription_periods.number: {}", row.number))
            })?,
            plan: row.plan,
            starts_at: row.starts_at,
            ends_at: row.ends_at,
            granted: row.granted,
            carried_over: row.carried_over,
            expired: row.expired,
        })
    }
}

const COLUMNS: &str = "number, plan, starts_at, ends_at, granted, carried_over, expired";

fn latest_query() -> String {
    format!(
        "SELECT {COLUMNS} FROM subscription_periods WHERE client_id = $1 ORDER BY number DESC LIMIT 1"
    )
}

/// Begins `renewal`'s period under `plan` (named `plan_id`) inside the caller's transaction:
/// from the second period on, the unused plan credits beyond the plan's carry-over expire
/// (`…:credit_expire:p<n>`); then the plan's credits are granted (`…:credit_grant:p<n>`). A
/// period begun before is answered as it was, and nothing moves.
pub(crate) async fn begin(
    tx: &mut WriteTx,
    renewal: &Renewal,
    plan_id: &str,
    plan: &Plan,
    now: DateTime<Utc>,
) -> Result<BillingPeriod, StorageError> {
    let client = renewal.client_id;
    let ends_at = renewal.starts_at + plan.period;
    // The row comes first: a second attempt at the same period waits for it here (PostgreSQL)
    // or behind the write lock (SQLite), then finds it and moves nothing.
    let inserted = execute_in!(tx, sqlx::query(
            "INSERT INTO subscription_periods (client_id, number, plan, starts_at, ends_at, granted,
                                               carried_over, expired, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, 0, 0, $7)
             ON CONFLICT (client_id, number) DO NOTHING",
        )
        .bind(client.as_uuid())
        .bind(i64::from(renewal.period))
        .bind(plan_id)
        .bind(renewal.starts_at)
        .bind(ends_at)
        .bind(i64::from(plan.credits))
        .bind(now))?;
    if inserted == 0 {
        return period_in(tx, client, renewal.period).await;
    }
    let (mut carried_over, mut expired) = (0, 0);
    if renewal.period > 1 {
        let unused = credits::unused_plan_credits(tx, client).await?;
        let beyond = unused - plan.carry_over.kept(unused);
        expired =
            credits::expire_plan_credits(tx, client, beyond, &renewal.expire_key(), now).await?;
        carried_over = unused - expired;
    }
    credits::grant(tx, client, CreditKind::Credit, plan.credits, &renewal.grant_key(), now).await?;
    execute_in!(
        tx,
        sqlx::query(
            "UPDATE subscription_periods SET carried_over = $3, expired = $4
             WHERE client_id = $1 AND number = $2",
        )
        .bind(client.as_uuid())
        .bind(i64::from(renewal.period))
        .bind(carried_over)
        .bind(expired)
    )?;
    // Read back as stored (PostgreSQL keeps microseconds), so every attempt answers the same.
    period_in(tx, client, renewal.period).await
}

/// Begins `renewal`'s period in a transaction of its own, under the client's plan as it is now
/// (`plan`, absent when the client is no longer on a subscription plan). Answers the period,
/// also when an earlier attempt began it (then nothing moves); `None` when there is no plan to
/// renew and the period was never begun.
pub async fn renew(
    db: &Db,
    renewal: &Renewal,
    plan: Option<(&str, &Plan)>,
    now: DateTime<Utc>,
) -> Result<Option<BillingPeriod>, StorageError> {
    let mut tx = db.begin_write().await?;
    let period = match plan {
        Some((plan_id, plan)) => Some(begin(&mut tx, renewal, plan_id, plan, now).await?),
        None => period_if_any(&mut tx, renewal.client_id, renewal.period).await?,
    };
    tx.commit().await?;
    Ok(period)
}

/// The period `number` of `client`, which must exist.
async fn period_in(
    tx: &mut WriteTx,
    client: ClientId,
    number: u32,
) -> Result<BillingPeriod, StorageError> {
    period_if_any(tx, client, number).await?.ok_or_else(|| {
        StorageError::Corrupt(format!("period {number} of client {client} vanished"))
    })
}

async fn period_if_any(
    tx: &mut WriteTx,
    client: ClientId,
    number: u32,
) -> Result<Option<BillingPeriod>, StorageError> {
    let row: Option<PeriodRow> = with_tx!(tx, |conn| {
        sqlx::query_as(&format!(
            "SELECT {COLUMNS} FROM subscription_periods WHERE client_id = $1 AND number = $2"
        ))
        .bind(client.as_uuid())
        .bind(i64::from(number))
        .fetch_optional(&mut *conn)
        .await
    })?;
    row.map(BillingPeriod::try_from).transpose()
}

/// The client's latest period inside a write transaction.
pub(crate) async fn latest_in(
    tx: &mut WriteTx,
    client: ClientId,
) -> Result<Option<BillingPeriod>, StorageError> {
    let row: Option<PeriodRow> = with_tx!(tx, |conn| {
        sqlx::query_as(&latest_query()).bind(client.as_uuid()).fetch_optional(&mut *conn).await
    })?;
    row.map(BillingPeriod::try_from).transpose()
}

/// The client's latest period (the current one while the subscription runs).
pub async fn latest(db: &Db, client: ClientId) -> Result<Option<BillingPeriod>, StorageError> {
    let row: Option<PeriodRow> = with_pool!(db, |pool| {
        sqlx::query_as(&latest_query()).bind(client.as_uuid()).fetch_optional(pool).await
    })?;
    row.map(BillingPeriod::try_from).transpose()
}
