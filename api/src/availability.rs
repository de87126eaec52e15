//! Providers' availability and slots: `PUT`/`GET /v1/providers/{id}/availability`,
//! `GET /v1/providers/{id}/slots`, and "can't find a time": `POST /v1/availability-requests`
//! (and the provider's list of them).

use crate::auth::Caller;
use crate::error::{ApiError, ErrorBody};
use crate::extract::{ApiPath, ApiQuery, JsonBody};
use crate::people::{known_client, known_provider};
use crate::state::AppState;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use chrono::{DateTime, FixedOffset, SubsecRound, TimeDelta, Utc};
use livesessions_activities::slots;
use livesessions_activities::storage::availability::{self, AvailabilityRequest};
use livesessions_activities::storage::{outbox, providers};
use livesessions_domain::availability::{SlotQuery, TimeWindow, check_window_count, check_windows};
use livesessions_domain::policy::delta;
use livesessions_domain::{
    Availability, ClientId, ProviderId, Refusal, RefusalCode, Role, TimeZoneName,
};
use livesessions_workflows::DeliveryInput;
use livesessions_workflows::activities::AvailabilityRequestEmail;
use serde::{Deserialize, Serialize};

/// The longest window one slot search may cover.
pub const MAX_SEARCH_DAYS: i64 = 62;

/// The provider a path names (404 when there is none), for that provider or `others`.
async fn provider_for(
    state: &AppState,
    caller: &Caller,
    id: ProviderId,
    others: &[Role],
) -> Result<providers::Provider, ApiError> {
    if !caller.is_provider(id) {
        caller.require(others)?;
    }
    providers::get(&state.db, id).await?.ok_or(ApiError::NotFound)
}

/// Replaces the provider's weekly hours and dated exceptions (wall-clock times in their zone).
#[utoipa::path(put, path = "/v1/providers/{provider_id}/availability", tag = "availability",
    params(("provider_id" = ProviderId, Path)),
    request_body = Availability,
    responses((status = 200, body = Availability), (status = 400, body = ErrorBody, description = "more entries than the schema allows"),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 422, body = ErrorBody, description = "overlapping_availability: a date with two exceptions, or overlapping hours on one day; invalid_time_range: hours that end before they start")),
    security(("bearer" = [])))]
pub async fn put_availability(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<ProviderId>,
    body: JsonBody,
) -> Result<Json<Availability>, ApiError> {
    provider_for(&state, &caller, id, &[Role::Service]).await?;
    let hours: Availability = body.parse()?;
    hours.check()?;
    hours.check_meaning()?;
    availability::put(&state.db, id, &hours, Utc::now()).await?;
    Ok(Json(hours))
}

/// The provider's weekly hours and exceptions (empty until they set them).
#[utoipa::path(get, path = "/v1/providers/{provider_id}/availability", tag = "availability",
    params(("provider_id" = ProviderId, Path)),
    responses((status = 200, body = Availability), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn get_availability(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<ProviderId>,
) -> Result<Json<Availability>, ApiError> {
    provider_for(&state, &caller, id, &[Role::Service, Role::Operator]).await?;
    let set = availability::with_zones(&state.db, Some(id)).await?;
    Ok(Json(set.into_iter().next().map(|(_, _, hours)| hours).unwrap_or_default()))
}

/// What a slot search asks.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct SlotSearch {
    /// Slots starting at or after (RFC 3339, URL-encoded).
    pub from: DateTime<Utc>,
    /// Slots starting before; at most 62 days after `from`.
    pub to: DateTime<Utc>,
    /// The session's length, 1 to 720 minutes.
    #[param(minimum = 1, maximum = 720)]
    pub duration_minutes: u32,
}

/// One bookable start time.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Slot {
    /// The start (UTC).
    pub starts_at: DateTime<Utc>,
    /// The end (UTC).
    pub ends_at: DateTime<Utc>,
    /// The start on the provider's wall clock, with its offset.
    #[schema(value_type = String)]
    pub local_starts_at: DateTime<FixedOffset>,
}

/// A provider's bookable slots.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Slots {
    /// The provider.
    pub provider_id: ProviderId,
    /// Their zone.
    pub time_zone: TimeZoneName,
    /// The length searched for.
    pub duration_minutes: u32,
    /// Earliest first.
    pub slots: Vec<Slot>,
}

/// The start times a client can book: inside the provider's hours, clear of their requested and
/// confirmed sessions and of the booking notice.
#[utoipa::path(get, path = "/v1/providers/{provider_id}/slots", tag = "availability",
    params(("provider_id" = ProviderId, Path), SlotSearch),
    responses((status = 200, body = Slots), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 422, body = ErrorBody, description = "invalid_time_range: to not after from, or a window over 62 days")),
    security(("bearer" = [])))]
pub async fn slots(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<ProviderId>,
    ApiQuery(search): ApiQuery<SlotSearch>,
) -> Result<Json<Slots>, ApiError> {
    caller.require(&[Role::Client, Role::Service])?;
    let invalid = |message: String| Refusal::new(RefusalCode::InvalidTimeRange, message);
    if search.to <= search.from {
        return Err(invalid("to must come after from".into()).into());
    }
    if search.to - search.from > TimeDelta::days(MAX_SEARCH_DAYS) {
        return Err(invalid(format!("a slot search covers at most {MAX_SEARCH_DAYS} days")).into());
    }
    if !(1..=720).contains(&search.duration_minutes) {
        return Err(ApiError::Malformed("duration_minutes must be 1 to 720".into()));
    }
    let provider = providers::get(&state.db, id).await?.ok_or(ApiError::NotFound)?;
    let duration = TimeDelta::minutes(i64::from(search.duration_minutes));
    let query = SlotQuery {
        from: search.from,
        to: search.to,
        duration,
        step: delta(state.policy.slot_interval),
        earliest: Utc::now() + delta(state.policy.booking_notice),
    };
    let found = slots::search(&state.db, Some(id), &query).await?;
    let zone = provider.time_zone.tz();
    let slots = found
        .into_iter()
        .flat_map(|p| p.starts)
        .map(|starts_at| Slot {
            starts_at,
            ends_at: starts_at + duration,
            local_starts_at: starts_at.with_timezone(&zone).fixed_offset(),
        })
        .collect();
    Ok(Json(Slots {
        provider_id: id,
        time_zone: provider.time_zone,
        duration_minutes: search.duration_minutes,
        slots,
    }))
}

/// "Can't find a time": the windows that suit a client.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewAvailabilityRequest {
    /// The client.
    pub client_id: ClientId,
    /// The provider to tell.
    pub provider_id: ProviderId,
    /// 1 to 50 windows, not yet over.
    #[schema(min_items = 1, max_items = 50)]
    pub windows: Vec<TimeWindow>,
}

/// Keeps the client's windows and emails the provider, who can offer a slot.
#[utoipa::path(post, path = "/v1/availability-requests", tag = "availability",
    request_body = NewAvailabilityRequest,
    responses((status = 201, body = AvailabilityRequest), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 422, body = ErrorBody, description = "unknown_client, unknown_provider; invalid_time_range: a window that ends before it starts, or is over"),
        (status = 503, body = ErrorBody, description = "the provider could not be told; nothing was kept")),
    security(("bearer" = [])))]
pub async fn request_availability(
    State(state): State<AppState>,
    caller: Caller,
    body: JsonBody,
) -> Result<(StatusCode, Json<AvailabilityRequest>), ApiError> {
    caller.require(&[Role::Client, Role::Service])?;
    let request: NewAvailabilityRequest = body.parse()?;
    if caller.role == Role::Client && !caller.is_client(request.client_id) {
        return Err(ApiError::Forbidden);
    }
    // As precise as the database keeps it, so the answer equals what is listed later.
    let now = Utc::now().trunc_subsecs(6);
    check_window_count(&request.windows)?;
    check_windows(&request.windows, now)?;
    known_client(&state, request.client_id).await?;
    known_provider(&state, request.provider_id).await?;
    let (client_id, provider_id) = (request.client_id, request.provider_id);
    let id =
        availability::request(&state.db, client_id, provider_id, &request.windows, now).await?;
    let key = format!("availability-request-{id}");
    let email = AvailabilityRequestEmail {
        key: key.clone(),
        client_id,
        provider_id,
        windows: request.windows.clone(),
    };
    let delivery = DeliveryInput::AvailabilityRequest(email);
    if let Err(error) = outbox::enqueue(&state.db, &key, &delivery, now).await {
        availability::forget_request(&state.db, id).await?;
        return Err(error.into());
    }
    let kept = AvailabilityRequest {
        id,
        client_id,
        provider_id,
        windows: request.windows,
        created_at: now,
    };
    Ok((StatusCode::CREATED, Json(kept)))
}

/// The windows clients shared with the provider, newest first.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct AvailabilityRequests {
    /// At most 100.
    pub requests: Vec<AvailabilityRequest>,
}

/// What clients who could not find a time asked the provider for.
#[utoipa::path(get, path = "/v1/providers/{provider_id}/availability-requests", tag = "availability",
    params(("provider_id" = ProviderId, Path)),
    responses((status = 200, body = AvailabilityRequests), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn availability_requests(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<ProviderId>,
) -> Result<Json<AvailabilityRequests>, ApiError> {
    provider_for(&state, &caller, id, &[Role::Service, Role::Operator]).await?;
    Ok(Json(AvailabilityRequests { requests: availability::requests_for(&state.db, id).await? }))
}
