//! The built-in media service's rooms and join tokens: one room per session, one unguessable
//! token per person, working inside the room's join window (and, for someone who has joined,
//! until the session ends: the API decides).

use super::{Db, StorageError, parse_column};
use crate::{execute, with_pool, with_tx};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use livesessions_domain::{Party, RoomId, SessionId};
use livesessions_workflows::activities::RoomRequest;
use sqlx::FromRow;
use uuid::Uuid;

/// A person's way into a session's room.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JoinToken {
    /// The secret in the join link.
    pub token: String,
    /// The room.
    pub room_id: RoomId,
    /// The session.
    pub session_id: SessionId,
    /// Whose token.
    pub party: Party,
    /// The link works from …
    pub opens_at: DateTime<Utc>,
    /// … until the grace period ends (for someone who has never joined).
    pub closes_at: DateTime<Utc>,
    /// When the room ended, if it has.
    pub ended_at: Option<DateTime<Utc>>,
    /// When this person first joined, if they have.
    pub first_joined_at: Option<DateTime<Utc>>,
    /// The hosted media service's room URL for this person (none for the built-in service).
    pub media_url: Option<String>,
}

#[derive(FromRow)]
struct JoinTokenRow {
    token: String,
    room_id: Uuid,
    session_id: Uuid,
    party: String,
    opens_at: DateTime<Utc>,
    closes_at: DateTime<Utc>,
    ended_at: Option<DateTime<Utc>>,
    first_joined_at: Option<DateTime<Utc>>,
    media_url: Option<String>,
}

impl TryFrom<JoinTokenRow> for JoinToken {
    type Error = StorageError;
    fn try_from(row: JoinTokenRow) -> Result<Self, StorageError> {
        Ok(JoinToken {
            token: row.token,
            room_id: RoomId::from_uuid(row.room_id),
            session_id: SessionId::from_uuid(row.session_id),
            party: parse_column("join_tokens.party", Party::parse(&row.party))?,
            opens_at: row.opens_at,
            closes_at: row.closes_at,
            ended_at: row.ended_at,
            first_joined_at: row.first_joined_at,
            media_url: row.media_url,
        })
    }
}

const SELECT_TOKEN: &str =
    "SELECT t.token, t.room_id, t.session_id, t.party, r.opens_at, r.closes_at,
        r.ended_at, t.first_joined_at, t.media_url
   FROM join_tokens t JOIN media_rooms r ON r.id = t.room_id";

/// Whether `token` has the form [`new_token`] gives (43 URL-safe base64 characters): any other
/// text is no token, and is never sent to the database.
fn well_formed(token: &str) -> bool {
    token.len() == 43 && token.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// 256 random bits, URL-safe.
fn new_token() -> String {
    URL_SAFE_NO_PAD.encode(rand::random::<[u8; 32]>())
}

/// Where the hosted media service sends each person (the built-in service has its own page).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaUrls {
    /// The client's room URL.
    pub client: String,
    /// The provider's room URL.
    pub provider: String,
}

/// The room a session has, if any.
pub async fn room_of(db: &Db, session: SessionId) -> Result<Option<RoomId>, StorageError> {
    let room: Option<Uuid> = with_pool!(db, |pool| {
        sqlx::query_scalar("SELECT id FROM media_rooms WHERE session_id = $1")
            .bind(session.as_uuid())
            .fetch_optional(pool)
            .await
    })?;
    Ok(room.map(RoomId::from_uuid))
}

/// The session of a room, if the room exists.
pub async fn session_of(db: &Db, room: RoomId) -> Result<Option<SessionId>, StorageError> {
    let session: Option<Uuid> = with_pool!(db, |pool| {
        sqlx::query_scalar("SELECT session_id FROM media_rooms WHERE id = $1")
            .bind(room.as_uuid())
            .fetch_optional(pool)
            .await
    })?;
    Ok(session.map(SessionId::from_uuid))
}

/// Creates the session's room (as `room`) with a token for each person, or moves the join
/// window (and the hosted URLs) of the room it already has. Answers the session's room.
pub async fn open(
    db: &Db,
    request: &RoomRequest,
    room: RoomId,
    urls: Option<&MediaUrls>,
    now: DateTime<Utc>,
) -> Result<RoomId, StorageError> {
    let mut tx = db.begin_write().await?;
    let session = request.session_id.as_uuid();
    let existing: Option<Uuid> = with_tx!(&mut tx, |conn| {
        sqlx::query_scalar("UPDATE media_rooms SET opens_at = $2, closes_at = $3 WHERE session_id = $1 RETURNING id")
            .bind(session)
            .bind(request.opens_at)
            .bind(request.closes_at)
            .fetch_optional(&mut *conn)
            .await
    })?;
    let people = [
        (Party::Client, request.client_id.as_uuid(), urls.map(|u| u.client.as_str())),
        (Party::Provider, request.provider_id.as_uuid(), urls.map(|u| u.provider.as_str())),
    ];
    let room = match existing {
        Some(existing) => {
            with_tx!(&mut tx, |conn| {
                for (party, _, url) in people {
                    sqlx::query("UPDATE join_tokens SET media_url = $3 WHERE session_id = $1 AND party = $2")
                        .bind(session)
                        .bind(party.as_str())
                        .bind(url)
                        .execute(&mut *conn)
                        .await?;
                }
                Ok::<_, sqlx::Error>(())
            })?;
            RoomId::from_uuid(existing)
        }
        None => {
            with_tx!(&mut tx, |conn| {
                sqlx::query(
                    "INSERT INTO media_rooms (id, session_id, opens_at, closes_at, ended_at, created_at)
                     VALUES ($1, $2, $3, $4, NULL, $5)",
                )
                .bind(room.as_uuid())
                .bind(session)
                .bind(request.opens_at)
                .bind(request.closes_at)
                .bind(now)
                .execute(&mut *conn)
                .await?;
                for (party, person, url) in people {
                    sqlx::query(
                        "INSERT INTO join_tokens (token, room_id, session_id, party, person_id, first_joined_at, media_url)
                         VALUES ($1, $2, $3, $4, $5, NULL, $6)",
                    )
                    .bind(new_token())
                    .bind(room.as_uuid())
                    .bind(session)
                    .bind(party.as_str())
                    .bind(person)
                    .bind(url)
                    .execute(&mut *conn)
                    .await?;
                }
                Ok::<_, sqlx::Error>(())
            })?;
            room
        }
    };
    tx.commit().await?;
    Ok(room)
}

/// The join token of one person of a session, once the session has a room.
pub async fn token_of(
    db: &Db,
    session: SessionId,
    party: Party,
) -> Result<Option<JoinToken>, StorageError> {
    let row: Option<JoinTokenRow> = with_pool!(db, |pool| {
        sqlx::query_as(&format!("{SELECT_TOKEN} WHERE t.session_id = $1 AND t.party = $2"))
            .bind(session.as_uuid())
            .bind(party.as_str())
            .fetch_optional(pool)
            .await
    })?;
    row.map(JoinToken::try_from).transpose()
}

/// The token behind a join link.
pub async fn find(db: &Db, token: &str) -> Result<Option<JoinToken>, StorageError> {
    if !well_formed(token) {
        return Ok(None);
    }
    let row: Option<JoinTokenRow> = with_pool!(db, |pool| {
        sqlx::query_as(&format!("{SELECT_TOKEN} WHERE t.token = $1"))
            .bind(token)
            .fetch_optional(pool)
            .await
    })?;
    row.map(JoinToken::try_from).transpose()
}

/// Records that the token's holder joined at `now` (the first time only); answers when they
/// first joined.
pub async fn record_join(
    db: &Db,
    token: &str,
    now: DateTime<Utc>,
) -> Result<DateTime<Utc>, StorageError> {
    let first: DateTime<Utc> = with_pool!(db, |pool| {
        sqlx::query_scalar(
            "UPDATE join_tokens SET first_joined_at = COALESCE(first_joined_at, $2)
             WHERE token = $1 RETURNING first_joined_at",
        )
        .bind(token)
        .bind(now)
        .fetch_one(pool)
        .await
    })?;
    Ok(first)
}

/// Ends a room (the first time only).
pub async fn end(db: &Db, room: RoomId, now: DateTime<Utc>) -> Result<(), StorageError> {
    execute!(
        db,
        sqlx::query("UPDATE media_rooms SET ended_at = COALESCE(ended_at, $2) WHERE id = $1")
            .bind(room.as_uuid())
            .bind(now)
    )?;
    Ok(())
}
