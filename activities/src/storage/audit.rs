//! The audit log: one entry per mutating API call (and so per operator action), append-only
//! (the database refuses UPDATE and DELETE). An entry carries who called (the token's `sub` and
//! role), what (method and route template), about what (subject ids), the request id, the
//! answer's status and the time: never a body, a name, an email or a reason.

use super::{Db, StorageError};
use crate::with_pool;
use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::FromRow;
use std::collections::BTreeMap;

/// One call to record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewEntry<'a> {
    /// When it was answered.
    pub at: DateTime<Utc>,
    /// The request id (the `X-Request-Id` it was answered with).
    pub request_id: &'a str,
    /// The bearer token's `sub`; `None` without a valid token.
    pub actor: Option<&'a str>,
    /// The bearer token's role.
    pub role: Option<&'a str>,
    /// Method and route template, e.g. `POST /v1/sessions/{id}/operator/cancel`.
    pub action: &'a str,
    /// The ids it was about (those in the path, and those its handler named).
    pub subject_ids: &'a [String],
    /// The answer's HTTP status.
    pub outcome: u16,
}

/// One recorded call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Entry {
    /// Grows with every entry: newer entries have larger ids.
    pub id: i64,
    /// When it was answered.
    pub at: DateTime<Utc>,
    /// The request id.
    pub request_id: String,
    /// The caller's `sub`; `null` without a valid token.
    pub actor: Option<String>,
    /// The caller's role.
    pub role: Option<String>,
    /// Method and route template.
    pub action: String,
    /// The ids it was about, sorted.
    pub subject_ids: Vec<String>,
    /// The answer's HTTP status.
    pub outcome: u16,
}

/// Records `entry` with its subjects, in one transaction; answers its id.
pub async fn record(db: &Db, entry: &NewEntry<'_>) -> Result<i64, StorageError> {
    let mut tx = db.begin_write().await?;
    let id: i64 = crate::with_tx!(&mut tx, |conn| {
        sqlx::query_scalar(
            "INSERT INTO audit_log (at, request_id, actor, role, action, outcome)
             VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
        )
        .bind(entry.at)
        .bind(entry.request_id)
        .bind(entry.actor)
        .bind(entry.role)
        .bind(entry.action)
        .bind(i32::from(entry.outcome))
        .fetch_one(&mut *conn)
        .await
    })?;
    let mut subjects: Vec<&String> = entry.subject_ids.iter().collect();
    subjects.sort();
    subjects.dedup();
    for subject in subjects {
        crate::execute_in!(
            &mut tx,
            sqlx::query("INSERT INTO audit_subjects (entry_id, subject_id) VALUES ($1, $2)")
                .bind(id)
                .bind(subject)
        )?;
    }
    tx.commit().await?;
    Ok(id)
}

/// Which entries to list; `None` matches everything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filter {
    /// Only entries about this id.
    pub subject_id: Option<String>,
    /// Only this caller's.
    pub actor: Option<String>,
    /// Answered at or after.
    pub from: Option<DateTime<Utc>>,
    /// Answered before.
    pub to: Option<DateTime<Utc>>,
}

/// A page of entries, newest first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page {
    /// The entries.
    pub entries: Vec<Entry>,
    /// The id to continue below, when there may be more.
    pub next: Option<i64>,
}

#[derive(FromRow)]
struct Row {
    id: i64,
    at: DateTime<Utc>,
    request_id: String,
    actor: Option<String>,
    role: Option<String>,
    action: String,
    outcome: i32,
}

/// Up to `limit` entries matching `filter`, newest first, older than the entry `before` when
/// given.
pub async fn page(
    db: &Db,
    filter: &Filter,
    before: Option<i64>,
    limit: u32,
) -> Result<Page, StorageError> {
    let rows: Vec<Row> = with_pool!(db, |pool| {
        sqlx::query_as(
            "SELECT a.id, a.at, a.request_id, a.actor, a.role, a.action, a.outcome
             FROM audit_log a
             WHERE ($1 IS NULL OR EXISTS (SELECT 1 FROM audit_subjects s
                                         WHERE s.entry_id = a.id AND s.subject_id = $1))
               AND ($2 IS NULL OR a.actor = $2)
               AND ($3 IS NULL OR a.at >= $3)
               AND ($4 IS NULL OR a.at < $4)
               AND ($5 IS NULL OR a.id < $5)
             ORDER BY a.id DESC
             LIMIT $6",
        )
        .bind(filter.subject_id.as_deref())
        .bind(filter.actor.as_deref())
        .bind(filter.from)
        .bind(filter.to)
        .bind(before)
        .bind(i64::from(limit) + 1)
        .fetch_all(pool)
        .await
    })?;
    let more = rows.len() > limit as usize;
    let rows: Vec<Row> = rows.into_iter().take(limit as usize).collect();
    let mut subjects: BTreeMap<i64, Vec<String>> = BTreeMap::new();
    if let (Some(newest), Some(oldest)) = (rows.first(), rows.last()) {
        let found: Vec<(i64, String)> = with_pool!(db, |pool| {
            sqlx::query_as(
                "SELECT entry_id, subject_id FROM audit_subjects
                 WHERE entry_id >= $1 AND entry_id <= $2 ORDER BY entry_id, subject_id",
            )
            .bind(oldest.id)
            .bind(newest.id)
            .fetch_all(pool)
            .await
        })?;
        for (entry, subject) in found {
            subjects.entry(entry).or_default().push(subject);
        }
    }
    let next = if more { rows.last().map(|row| row.id) } else { None };
    let entries = rows
        .into_iter()
        .map(|row| Entry {
            subject_ids: subjects.remove(&row.id).unwrap_or_default(),
            id: row.id,
            at: row.at,
            request_id: row.request_id,
            actor: row.actor,
            role: row.role,
            action: row.action,
            outcome: u16::try_from(row.outcome).unwrap_or_default(),
        })
        .collect();
    Ok(Page { entries, next })
}
