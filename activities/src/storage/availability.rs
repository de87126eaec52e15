//! Providers' availability (weekly hours and dated exceptions) and the windows clients share
//! when they cannot find a time ("availability requests").

use super::{Db, StorageError, parse_column};
use crate::{execute, with_pool};
use chrono::{DateTime, Utc};
use livesessions_domain::availability::TimeWindow;
use livesessions_domain::{Availability, ClientId, ProviderId, TimeZoneName};
use serde::Serialize;
use sqlx::types::Json;
use uuid::Uuid;

/// Replaces a provider's availability.
pub async fn put(
    db: &Db,
    provider: ProviderId,
    availability: &Availability,
    now: DateTime<Utc>,
) -> Result<(), StorageError> {
    execute!(db, sqlx::query(
            "INSERT INTO provider_availability (provider_id, availability, updated_at) VALUES ($1, $2, $3)
             ON CONFLICT (provider_id) DO UPDATE SET availability = excluded.availability, updated_at = excluded.updated_at",
        )
        .bind(provider.as_uuid())
        .bind(Json(availability))
        .bind(now))?;
    Ok(())
}

/// The availability and zone of each provider that has set one (all of them with `None`).
pub async fn with_zones(
    db: &Db,
    provider: Option<ProviderId>,
) -> Result<Vec<(ProviderId, TimeZoneName, Availability)>, StorageError> {
    let rows: Vec<(Uuid, String, Json<Availability>)> = with_pool!(db, |pool| {
        sqlx::query_as(
            "SELECT a.provider_id, p.time_zone, a.availability
             FROM provider_availability a JOIN providers p ON p.id = a.provider_id
             WHERE ($1 IS NULL OR a.provider_id = $1)",
        )
        .bind(provider.map(|p| p.as_uuid()))
        .fetch_all(pool)
        .await
    })?;
    rows.into_iter()
        .map(|(id, zone, Json(availability))| {
            Ok((
                ProviderId::from_uuid(id),
                parse_column("providers.time_zone", TimeZoneName::parse(&zone))?,
                availability,
            ))
        })
        .collect()
}

/// Keeps the windows a client shared with a provider; answers the request's id.
pub async fn request(
    db: &Db,
    client: ClientId,
    provider: ProviderId,
    windows: &[TimeWindow],
    now: DateTime<Utc>,
) -> Result<Uuid, StorageError> {
    let id = Uuid::new_v4();
    execute!(db, sqlx::query("INSERT INTO availability_requests (id, client_id, provider_id, windows, created_at) VALUES ($1, $2, $3, $4, $5)")
            .bind(id)
            .bind(client.as_uuid())
            .bind(provider.as_uuid())
            .bind(Json(windows))
            .bind(now))?;
    Ok(id)
}

/// Forgets a request whose provider could not be told (so the client's retry is the only copy).
pub async fn forget_request(db: &Db, id: Uuid) -> Result<(), StorageError> {
    execute!(db, sqlx::query("DELETE FROM availability_requests WHERE id = $1").bind(id))?;
    Ok(())
}

/// Windows a client shared with a provider.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AvailabilityRequest {
    /// The request.
    pub id: Uuid,
    /// Who shared them.
    pub client_id: ClientId,
    /// With whom.
    pub provider_id: ProviderId,
    /// The windows.
    pub windows: Vec<TimeWindow>,
    /// When.
    pub created_at: DateTime<Utc>,
}

/// The windows clients shared with a provider, newest first (at most 100).
pub async fn requests_for(
    db: &Db,
    provider: ProviderId,
) -> Result<Vec<AvailabilityRequest>, StorageError> {
    type Row = (Uuid, Uuid, Json<Vec<TimeWindow>>, DateTime<Utc>);
    let rows: Vec<Row> = with_pool!(db, |pool| {
        sqlx::query_as(
            "SELECT id, client_id, windows, created_at FROM availability_requests
             WHERE provider_id = $1 ORDER BY created_at DESC, id LIMIT 100",
        )
        .bind(provider.as_uuid())
        .fetch_all(pool)
        .await
    })?;
    Ok(rows
        .into_iter()
        .map(|(id, client, Json(windows), created_at)| AvailabilityRequest {
            id,
            client_id: ClientId::from_uuid(client),
            provider_id: provider,
            windows,
            created_at,
        })
        .collect())
}
