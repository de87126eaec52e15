//! `PUT /v1/clients/{client_id}` and `PUT /v1/providers/{provider_id}`: what scheduling needs to
//! know about people. Contact details are kept here and never enter workflow history.

use crate::auth::Caller;
use crate::error::{ApiError, ErrorBody};
use crate::extract::{ApiPath, JsonBody};
use crate::state::AppState;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use chrono::Utc;
use livesessions_activities::storage::{clients, providers};
use livesessions_domain::{
    ClientId, Coverage, DisplayName, Email, ProviderId, Refusal, RefusalCode, Role, Specialty,
    TimeZoneName,
};
use serde::{Deserialize, Serialize};

/// A client's scheduling record.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ClientRecord {
    /// How their sessions are paid for.
    pub coverage: Coverage,
    /// A plan id of the configuration's plan table, of the same coverage.
    pub plan: String,
    /// Their IANA zone.
    pub time_zone: TimeZoneName,
    /// Where their email goes (the domain is answered in lower case).
    #[schema(value_type = Email)]
    pub email: String,
    /// What messages call them.
    pub display_name: DisplayName,
}

/// A provider's scheduling record.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProviderRecord {
    /// Therapist or psychiatrist.
    pub specialty: Specialty,
    /// Their IANA zone.
    pub time_zone: TimeZoneName,
    /// Where their email goes (the domain is answered in lower case).
    #[schema(value_type = Email)]
    pub email: String,
    /// What messages call them.
    pub display_name: DisplayName,
}

/// The client a request names, or `422 unknown_client`.
pub(crate) async fn known_client(
    state: &AppState,
    id: ClientId,
) -> Result<clients::Client, ApiError> {
    clients::get(&state.db, id).await?.ok_or_else(|| {
        Refusal::new(RefusalCode::UnknownClient, format!("client {id} is not known here")).into()
    })
}

/// The provider a request names, or `422 unknown_provider`.
pub(crate) async fn known_provider(
    state: &AppState,
    id: ProviderId,
) -> Result<providers::Provider, ApiError> {
    providers::get(&state.db, id).await?.ok_or_else(|| {
        Refusal::new(RefusalCode::UnknownProvider, format!("provider {id} is not known here"))
            .into()
    })
}

/// The address a record names, or `422 invalid_email` (the field stays text in the body so that
/// a bad address gets its own code rather than `400`).
fn checked_email(text: &str) -> Result<Email, ApiError> {
    Email::parse(text).map_err(|e| Refusal::new(RefusalCode::InvalidEmail, e.0).into())
}

/// `201` for a new record, `200` for an updated one.
fn created_or_ok(created: bool) -> StatusCode {
    if created { StatusCode::CREATED } else { StatusCode::OK }
}

/// Creates or updates a client. A new client is granted their plan's credits; a subscription
/// client begins their first billing period (when they have none yet) and their `Subscription`
/// workflow, which renews the credits each period, is started unless it runs.
#[utoipa::path(put, path = "/v1/clients/{client_id}", tag = "people",
    params(("client_id" = ClientId, Path, description = "the client's id in the calling system")),
    request_body = ClientRecord,
    responses((status = 201, body = ClientRecord, description = "created"), (status = 200, body = ClientRecord, description = "updated"),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 422, body = ErrorBody, description = "invalid_email, unknown_plan, plan_coverage_mismatch"),
        (status = 503, body = ErrorBody, description = "the client is saved but Temporal did not take their subscription's workflow: repeat the PUT")),
    security(("bearer" = [])))]
pub async fn put_client(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<ClientId>,
    body: JsonBody,
) -> Result<(StatusCode, Json<ClientRecord>), ApiError> {
    caller.require(&[Role::Service, Role::Operator])?;
    let record: ClientRecord = body.parse()?;
    let email = checked_email(&record.email)?;
    let plan = state.plans.get(&record.plan).ok_or_else(|| {
        Refusal::new(RefusalCode::UnknownPlan, format!("there is no plan {:?}", record.plan))
    })?;
    if plan.coverage != record.coverage {
        return Err(Refusal::new(
            RefusalCode::PlanCoverageMismatch,
            format!(
                "plan {:?} is for {} coverage, not {}",
                record.plan, plan.coverage, record.coverage
            ),
        )
        .into());
    }
    let client = clients::Client {
        id,
        coverage: record.coverage,
        plan: record.plan.clone(),
        time_zone: record.time_zone,
        email: email.clone(),
        display_name: record.display_name.to_string(),
    };
    let enrolment = clients::upsert(&state.db, &client, plan, Utc::now()).await?;
    if let Some(next) = enrolment.next_renewal {
        state.subscriptions.ensure(next).await?;
    }
    Ok((
        created_or_ok(enrolment.created),
        Json(ClientRecord { email: email.to_string(), ..record }),
    ))
}

/// Creates or updates a provider.
#[utoipa::path(put, path = "/v1/providers/{provider_id}", tag = "people",
    params(("provider_id" = ProviderId, Path, description = "the provider's id in the calling system")),
    request_body = ProviderRecord,
    responses((status = 201, body = ProviderRecord, description = "created"), (status = 200, body = ProviderRecord, description = "updated"),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 422, body = ErrorBody, description = "invalid_email")),
    security(("bearer" = [])))]
pub async fn put_provider(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<ProviderId>,
    body: JsonBody,
) -> Result<(StatusCode, Json<ProviderRecord>), ApiError> {
    caller.require(&[Role::Service, Role::Operator])?;
    let record: ProviderRecord = body.parse()?;
    let email = checked_email(&record.email)?;
    let provider = providers::Provider {
        id,
        specialty: record.specialty,
        time_zone: record.time_zone,
        email: email.clone(),
        display_name: record.display_name.to_string(),
    };
    let created = providers::upsert(&state.db, &provider, Utc::now()).await?;
    Ok((created_or_ok(created), Json(ProviderRecord { email: email.to_string(), ..record })))
}
