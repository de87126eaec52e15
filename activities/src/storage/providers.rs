//! Providers: specialty and zone for scheduling; contact details for messages.

use super::{Db, StorageError, parse_column};
use crate::with_pool;
use chrono::{DateTime, Utc};
use livesessions_domain::{Email, ProviderId, Specialty, TimeZoneName};
use sqlx::FromRow;
use uuid::Uuid;

/// A provider as scheduling knows them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Provider {
    /// Their id in the calling system.
    pub id: ProviderId,
    /// Therapist or psychiatrist.
    pub specialty: Specialty,
    /// Their zone.
    pub time_zone: TimeZoneName,
    /// Where email goes.
    pub email: Email,
    /// What messages call them.
    pub display_name: String,
}

#[derive(FromRow)]
struct ProviderRow {
    id: Uuid,
    specialty: String,
    time_zone: String,
    email: String,
    display_name: String,
}

impl TryFrom<ProviderRow> for Provider {
    type Error = StorageError;
    fn try_from(row: ProviderRow) -> Result<Self, StorageError> {
        Ok(Provider {
            id: ProviderId::from_uuid(row.id),
            specialty: parse_column("providers.specialty", Specialty::parse(&row.specialty))?,
            time_zone: parse_column("providers.time_zone", TimeZoneName::parse(&row.time_zone))?,
            email: parse_column("providers.email", Email::parse(&row.email))?,
            display_name: row.display_name,
        })
    }
}

/// Creates or updates a provider; answers whether they are new.
pub async fn upsert(
    db: &Db,
    provider: &Provider,
    now: DateTime<Utc>,
) -> Result<bool, StorageError> {
    let created = with_pool!(db, |pool| {
        sqlx::query_scalar(
            "INSERT INTO providers (id, specialty, time_zone, email, display_name, created_at, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6, $6)
             ON CONFLICT (id) DO UPDATE SET specialty = excluded.specialty,
                 time_zone = excluded.time_zone, email = excluded.email,
                 display_name = excluded.display_name, updated_at = excluded.updated_at
             RETURNING created_at = updated_at",
        )
        .bind(provider.id.as_uuid())
        .bind(provider.specialty.as_str())
        .bind(provider.time_zone.name())
        .bind(provider.email.as_str())
        .bind(&provider.display_name)
        .bind(now)
        .fetch_one(pool)
        .await
    })?;
    Ok(created)
}

/// The provider with this id.
pub async fn get(db: &Db, id: ProviderId) -> Result<Option<Provider>, StorageError> {
    let row: Option<ProviderRow> = with_pool!(db, |pool| {
        sqlx::query_as(
            "SELECT id, specialty, time_zone, email, display_name FROM providers WHERE id = $1",
        )
        .bind(id.as_uuid())
        .fetch_optional(pool)
        .await
    })?;
    row.map(Provider::try_from).transpose()
}
