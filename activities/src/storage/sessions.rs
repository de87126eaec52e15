//! The `sessions` read model: the newest snapshot of every session, plus the columns that list
//! and filter endpoints search by. Only the workflow's activities write it.

use super::room_messages::{self, NewRoomMessage};
use super::{Db, StorageError, WriteTx, outbox};
use crate::{execute, execute_in, with_pool, with_tx};
use chrono::{DateTime, Utc};
use livesessions_domain::{ClientId, ProviderId, SessionId, SessionSnapshot, SessionState};
use livesessions_workflows::activities::KeyedDelivery;
use sqlx::types::Json;
use uuid::Uuid;

/// Writes `snapshot` unless the row already has a newer version. An equal version replaces the
/// row: a workflow task that failed after its local activity wrote is run again, possibly at
/// another workflow time, and the snapshot of the run that history keeps is the later write.
pub(crate) async fn upsert(
    tx: &mut WriteTx,
    snapshot: &SessionSnapshot,
    now: DateTime<Utc>,
) -> Result<(), StorageError> {
    let version = i64::try_from(snapshot.version)
        .map_err(|_| StorageError::Corrupt("session version overflows".into()))?;
    execute_in!(tx, sqlx::query(
            "INSERT INTO sessions (id, workflow_id, client_id, provider_id, state, starts_at, ends_at,
                                   version, snapshot, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
             ON CONFLICT (id) DO UPDATE SET state = excluded.state, starts_at = excluded.starts_at,
                 ends_at = excluded.ends_at, version = excluded.version,
                 snapshot = excluded.snapshot, updated_at = excluded.updated_at
             WHERE sessions.version <= excluded.version",
        )
        .bind(snapshot.id.as_uuid())
        .bind(&snapshot.workflow_id)
        .bind(snapshot.client_id.as_uuid())
        .bind(snapshot.provider_id.as_uuid())
        .bind(snapshot.state.as_str())
        .bind(snapshot.starts_at)
        .bind(snapshot.ends_at())
        .bind(version)
        .bind(Json(snapshot))
        .bind(now))?;
    Ok(())
}

/// Why a time cannot be held.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Clash {
    /// The provider has another session then.
    Provider,
    /// The client has another session then.
    Client,
}

/// The names of the PostgreSQL exclusion constraints, for [`clash_of`].
const PROVIDER_NO_OVERLAP: &str = "sessions_provider_no_overlap";
const CLIENT_NO_OVERLAP: &str = "sessions_client_no_overlap";

/// Whether a write failed on one of the no-overlap constraints (PostgreSQL), and whose.
fn clash_of(error: &StorageError) -> Option<Clash> {
    match error.constraint() {
        Some(PROVIDER_NO_OVERLAP) => Some(Clash::Provider),
        Some(CLIENT_NO_OVERLAP) => Some(Clash::Client),
        _ => None,
    }
}

/// The time a session wants to hold, `[starts_at, ends_at)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Slot {
    /// The session.
    pub session: SessionId,
    /// Its provider.
    pub provider: ProviderId,
    /// Its client.
    pub client: ClientId,
    /// Start.
    pub starts_at: DateTime<Utc>,
    /// End.
    pub ends_at: DateTime<Utc>,
}

impl Slot {
    /// The time `snapshot` has.
    pub(crate) fn of(snapshot: &SessionSnapshot) -> Self {
        Self {
            session: snapshot.id,
            provider: snapshot.provider_id,
            client: snapshot.client_id,
            starts_at: snapshot.starts_at,
            ends_at: snapshot.ends_at(),
        }
    }
}

/// How [`hold`] writes a free slot.
pub(crate) enum SlotWrite<'a> {
    /// The session's first row, at `now`.
    First(&'a SessionSnapshot, DateTime<Utc>),
    /// The session's row, moved to the slot's time and holding it again (state `requested`;
    /// the workflow's next snapshot agrees).
    Move,
}

/// Holds `slot` inside the caller's write transaction, unless another session (requested or
/// confirmed) of the provider or the client overlaps it: answers whose, and writes nothing.
/// On SQLite, where writers go one at a time, the check here is the guard; on PostgreSQL the
/// exclusion constraints are (a concurrent winner makes the write fail on them), and the check
/// only answers the common case early.
pub(crate) async fn hold(
    tx: &mut WriteTx,
    slot: &Slot,
    write: SlotWrite<'_>,
) -> Result<Option<Clash>, StorageError> {
    if let Some(clash) = clash(tx, slot).await? {
        return Ok(Some(clash));
    }
    let written = match write {
        SlotWrite::First(snapshot, now) => upsert(tx, snapshot, now).await,
        SlotWrite::Move => execute_in!(
            tx,
            sqlx::query(
                "UPDATE sessions SET starts_at = $2, ends_at = $3, state = 'requested' WHERE id = $1",
            )
            .bind(slot.session.as_uuid())
            .bind(slot.starts_at)
            .bind(slot.ends_at)
        )
        .map(|_| ())
        .map_err(StorageError::from),
    };
    match written {
        Ok(()) => Ok(None),
        Err(error) => clash_of(&error).map(Some).ok_or(error),
    }
}

/// Which other session holding its slot overlaps `slot`, the provider's first.
async fn clash(tx: &mut WriteTx, slot: &Slot) -> Result<Option<Clash>, StorageError> {
    let owners: Vec<(Uuid,)> = with_tx!(tx, |conn| {
        sqlx::query_as(
            "SELECT provider_id FROM sessions
             WHERE state IN ('requested', 'confirmed') AND id <> $1
               AND (provider_id = $2 OR client_id = $3)
               AND starts_at < $5 AND ends_at > $4",
        )
        .bind(slot.session.as_uuid())
        .bind(slot.provider.as_uuid())
        .bind(slot.client.as_uuid())
        .bind(slot.starts_at)
        .bind(slot.ends_at)
        .fetch_all(&mut *conn)
        .await
    })?;
    Ok(match owners.first() {
        None => None,
        Some(_) if owners.iter().any(|(p,)| *p == slot.provider.as_uuid()) => Some(Clash::Provider),
        Some(_) => Some(Clash::Client),
    })
}

/// The provider's (or, with `None`, every provider's) sessions holding a slot that overlaps
/// `[from, to)`, by provider and start.
pub async fn busy(
    db: &Db,
    provider: Option<ProviderId>,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Result<Vec<(ProviderId, DateTime<Utc>, DateTime<Utc>)>, StorageError> {
    let rows: Vec<(Uuid, DateTime<Utc>, DateTime<Utc>)> = with_pool!(db, |pool| {
        match provider {
            Some(provider) => sqlx::query_as(
                "SELECT provider_id, starts_at, ends_at FROM sessions
                 WHERE provider_id = $1 AND state IN ('requested', 'confirmed') AND starts_at < $3 AND ends_at > $2
                 ORDER BY starts_at",
            )
            .bind(provider.as_uuid()),
            None => sqlx::query_as(
                "SELECT provider_id, starts_at, ends_at FROM sessions
                 WHERE state IN ('requested', 'confirmed') AND starts_at < $2 AND ends_at > $1
                 ORDER BY provider_id, starts_at",
            ),
        }
        .bind(from)
        .bind(to)
        .fetch_all(pool)
        .await
    })?;
    Ok(rows.into_iter().map(|(p, s, e)| (ProviderId::from_uuid(p), s, e)).collect())
}

/// Writes `snapshot`, posts the room messages and adds the deliveries that report it to the
/// outbox, in one transaction.
pub async fn record(
    db: &Db,
    snapshot: &SessionSnapshot,
    messages: &[NewRoomMessage<'_>],
    deliveries: &[KeyedDelivery],
    now: DateTime<Utc>,
) -> Result<(), StorageError> {
    let mut tx = db.begin_write().await?;
    upsert(&mut tx, snapshot, now).await?;
    // One microsecond apart, so the room lists them in the order they were told.
    for (n, message) in (0..).zip(messages) {
        room_messages::post_in(&mut tx, message, now + chrono::TimeDelta::microseconds(n)).await?;
    }
    for keyed in deliveries {
        outbox::enqueue_in(&mut tx, &keyed.key, &keyed.delivery, now).await?;
    }
    tx.commit().await
}

/// Whether a row exists for this session (inside a write transaction).
pub(crate) async fn exists(tx: &mut WriteTx, id: SessionId) -> Result<bool, StorageError> {
    let found: i64 = with_tx!(tx, |conn| {
        sqlx::query_scalar("SELECT COUNT(*) FROM sessions WHERE id = $1")
            .bind(id.as_uuid())
            .fetch_one(&mut *conn)
            .await
    })?;
    Ok(found > 0)
}

/// Keeps why a session was cancelled, for operators (outside the snapshot and workflow history).
pub async fn set_cancel_reason(db: &Db, id: SessionId, reason: &str) -> Result<(), StorageError> {
    execute!(
        db,
        sqlx::query("UPDATE sessions SET cancel_reason = $2 WHERE id = $1")
            .bind(id.as_uuid())
            .bind(reason)
    )?;
    Ok(())
}

/// The newest snapshot of one session.
pub async fn get(db: &Db, id: SessionId) -> Result<Option<SessionSnapshot>, StorageError> {
    let row: Option<Json<SessionSnapshot>> = with_pool!(db, |pool| {
        sqlx::query_scalar("SELECT snapshot FROM sessions WHERE id = $1")
            .bind(id.as_uuid())
            .fetch_optional(pool)
            .await
    })?;
    Ok(row.map(|Json(snapshot)| snapshot))
}

/// Whether this client has ever had a session with this provider.
pub async fn exists_between(
    db: &Db,
    client: ClientId,
    provider: ProviderId,
) -> Result<bool, StorageError> {
    let found: i64 = with_pool!(db, |pool| {
        sqlx::query_scalar(
            "SELECT COUNT(*) FROM (SELECT 1 FROM sessions WHERE client_id = $1 AND provider_id = $2 LIMIT 1) AS found",
        )
        .bind(client.as_uuid())
        .bind(provider.as_uuid())
        .fetch_one(pool)
        .await
    })?;
    Ok(found > 0)
}

/// Which sessions to list; `None` matches everything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SessionFilter {
    /// Only this client's.
    pub client_id: Option<ClientId>,
    /// Only this provider's.
    pub provider_id: Option<ProviderId>,
    /// Only in this state.
    pub state: Option<SessionState>,
    /// Starting at or after.
    pub from: Option<DateTime<Utc>>,
    /// Starting before.
    pub to: Option<DateTime<Utc>>,
}

/// Where a page starts: after this start time and id (sessions are ordered by both).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionCursor {
    /// Start of the last session of the previous page.
    pub starts_at: DateTime<Utc>,
    /// Its id.
    pub id: SessionId,
}

/// One page of sessions and where the next one starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionPage {
    /// The sessions, by start time.
    pub sessions: Vec<SessionSnapshot>,
    /// Set when more sessions follow.
    pub next: Option<SessionCursor>,
}

/// Lists sessions matching `filter`, ordered by start time, `limit` at a time.
pub async fn list(
    db: &Db,
    filter: &SessionFilter,
    after: Option<SessionCursor>,
    limit: u32,
) -> Result<SessionPage, StorageError> {
    let rows: Vec<(Json<SessionSnapshot>,)> = with_pool!(db, |pool| {
        sqlx::query_as(
            "SELECT snapshot FROM sessions
             WHERE ($1 IS NULL OR client_id = $1)
               AND ($2 IS NULL OR provider_id = $2)
               AND ($3 IS NULL OR state = $3)
               AND ($4 IS NULL OR starts_at >= $4)
               AND ($5 IS NULL OR starts_at < $5)
               AND ($6 IS NULL OR starts_at > $6 OR (starts_at = $6 AND id > $7))
             ORDER BY starts_at, id
             LIMIT $8",
        )
        .bind(filter.client_id.map(|id| id.as_uuid()))
        .bind(filter.provider_id.map(|id| id.as_uuid()))
        .bind(filter.state.map(|state| state.as_str()))
        .bind(filter.from)
        .bind(filter.to)
        .bind(after.map(|c| c.starts_at))
        .bind(after.map(|c| c.id.as_uuid()).unwrap_or(Uuid::nil()))
        .bind(i64::from(limit) + 1)
        .fetch_all(pool)
        .await
    })?;
    let mut sessions: Vec<SessionSnapshot> = rows.into_iter().map(|(Json(s),)| s).collect();
    let next = if sessions.len() > limit as usize {
        sessions.truncate(limit as usize);
        sessions.last().map(|last| SessionCursor { starts_at: last.starts_at, id: last.id })
    } else {
        None
    };
    Ok(SessionPage { sessions, next })
}
