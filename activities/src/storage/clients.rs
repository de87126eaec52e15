//! Clients: coverage, plan and zone for scheduling; contact details for messages.

use super::{Db, StorageError, credits, parse_column, subscriptions};
use crate::{with_pool, with_tx};
use chrono::{DateTime, Utc};
use livesessions_domain::{ClientId, Coverage, Email, Plan, Renewal, TimeZoneName};
use sqlx::FromRow;
use uuid::Uuid;

/// A client as scheduling knows them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Client {
    /// Their id in the calling system.
    pub id: ClientId,
    /// How their sessions are paid for.
    pub coverage: Coverage,
    /// Their plan (an id of the configuration's plan table).
    pub plan: String,
    /// Their zone.
    pub time_zone: TimeZoneName,
    /// Where email goes.
    pub email: Email,
    /// What messages call them.
    pub display_name: String,
}

#[derive(FromRow)]
struct ClientRow {
    id: Uuid,
    coverage: String,
    plan: String,
    time_zone: String,
    email: String,
    display_name: String,
}

impl TryFrom<ClientRow> for Client {
    type Error = StorageError;
    fn try_from(row: ClientRow) -> Result<Self, StorageError> {
        Ok(Client {
            id: ClientId::from_uuid(row.id),
            coverage: parse_column("clients.coverage", Coverage::parse(&row.coverage))?,
            plan: row.plan,
            time_zone: parse_column("clients.time_zone", TimeZoneName::parse(&row.time_zone))?,
            email: parse_column("clients.email", Email::parse(&row.email))?,
            display_name: row.display_name,
        })
    }
}

/// What writing a client came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Enrolment {
    /// The client is new.
    pub created: bool,
    /// For a subscription client, the billing period their subscription workflow begins next
    /// (never earlier than now).
    pub next_renewal: Option<Renewal>,
}

/// Creates or updates a client on `plan`, in one transaction. A new client of a non-subscription
/// plan is granted its credits (or, for insurance, sessions authorized at intake). A
/// subscription client without a billing period yet (new, or coming from another coverage)
/// begins period 1 now, which grants the plan's credits.
pub async fn upsert(
    db: &Db,
    client: &Client,
    plan: &Plan,
    now: DateTime<Utc>,
) -> Result<Enrolment, StorageError> {
    let mut tx = db.begin_write().await?;
    let created: bool = with_tx!(&mut tx, |conn| {
        sqlx::query_scalar(
            "INSERT INTO clients (id, coverage, plan, time_zone, email, display_name, created_at, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $7)
             ON CONFLICT (id) DO UPDATE SET coverage = excluded.coverage, plan = excluded.plan,
                 time_zone = excluded.time_zone, email = excluded.email,
                 display_name = excluded.display_name, updated_at = excluded.updated_at
             RETURNING created_at = updated_at",
        )
        .bind(client.id.as_uuid())
        .bind(client.coverage.as_str())
        .bind(&client.plan)
        .bind(client.time_zone.name())
        .bind(client.email.as_str())
        .bind(&client.display_name)
        .bind(now)
        .fetch_one(&mut *conn)
        .await
    })?;
    let mut next_renewal = None;
    if client.coverage == Coverage::Subscription {
        let latest = match subscriptions::latest_in(&mut tx, client.id).await? {
            Some(period) => period,
            None => {
                let first = Renewal { client_id: client.id, period: 1, starts_at: now };
                subscriptions::begin(&mut tx, &first, &client.plan, plan, now).await?
            }
        };
        let mut next = latest.next(client.id);
        next.starts_at = next.starts_at.max(now);
        next_renewal = Some(next);
    } else if created {
        credits::grant_on_enrolment(&mut tx, client.id, client.coverage, plan.credits, now).await?;
    }
    tx.commit().await?;
    Ok(Enrolment { created, next_renewal })
}

/// The client with this id.
pub async fn get(db: &Db, id: ClientId) -> Result<Option<Client>, StorageError> {
    let row: Option<ClientRow> = with_pool!(db, |pool| {
        sqlx::query_as(
            "SELECT id, coverage, plan, time_zone, email, display_name FROM clients WHERE id = $1",
        )
        .bind(id.as_uuid())
        .fetch_optional(pool)
        .await
    })?;
    row.map(Client::try_from).transpose()
}
