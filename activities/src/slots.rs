//! Slot search over the database: each provider's availability and the sessions that hold a
//! slot, read in two queries however many providers are searched, then the pure
//! [`livesessions_domain::availability::slots`] per provider.

use crate::storage::{Db, StorageError, availability, sessions};
use chrono::{DateTime, Utc};
use livesessions_domain::availability::{self as rules, SlotQuery, Span};
use livesessions_domain::{ProviderId, TimeZoneName};
use std::collections::HashMap;

/// One provider's bookable start times.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProviderSlots {
    /// The provider.
    pub provider_id: ProviderId,
    /// Their zone, in which their hours are written.
    pub time_zone: TimeZoneName,
    /// The start times, sorted.
    pub starts: Vec<DateTime<Utc>>,
}

/// The bookable start times of one provider (or, with `None`, of every provider who has set
/// their availability), in two database round trips.
pub async fn search(
    db: &Db,
    provider: Option<ProviderId>,
    query: &SlotQuery,
) -> Result<Vec<ProviderSlots>, StorageError> {
    let providers = availability::with_zones(db, provider).await?;
    if providers.is_empty() {
        return Ok(Vec::new());
    }
    // A session that starts before `to` may end as late as `to + duration`.
    let mut busy: HashMap<ProviderId, Vec<Span>> = HashMap::new();
    for (owner, starts_at, ends_at) in
        sessions::busy(db, provider, query.from, query.to + query.duration).await?
    {
        busy.entry(owner).or_default().push((starts_at, ends_at));
    }
    Ok(providers
        .into_iter()
        .map(|(provider_id, time_zone, hours)| {
            let taken = busy.get(&provider_id).map(Vec::as_slice).unwrap_or_default();
            let starts = rules::slots(&hours, time_zone.tz(), taken, query);
            ProviderSlots { provider_id, time_zone, starts }
        })
        .collect())
}
