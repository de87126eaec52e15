//! Fees left outstanding (a declined card, or a processor that could not be reached) and their
//! collection: a fee and a client's fees as their collection stands, and the waiver by finance
//! or an operator, delivered to the fee's `FeeCollection` workflow as an update.

use crate::auth::Caller;
use crate::error::{ApiError, ErrorBody, StillRunning};
use crate::extract::{ApiPath, JsonBody};
use crate::idempotency;
use crate::state::AppState;
use axum::Json;
use axum::extract::State;
use axum::http::HeaderMap;
use chrono::Utc;
use livesessions_activities::storage::fee_collections::{self, FeeRecord, Waiver};
use livesessions_domain::{ClientId, Refusal, RefusalCode, Role, WaiverId, WaiverReason};
use livesessions_workflows::activities::FeeCharge;
use serde::{Deserialize, Serialize};

/// The roles that may read fees (a client only their own).
const READERS: [Role; 4] = [Role::Client, Role::Service, Role::Operator, Role::Finance];

/// A client's fees left outstanding.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct FeePage {
    /// Oldest first, whatever became of them.
    pub fees: Vec<FeeRecord>,
}

/// The fee keyed `fee_key` as `caller` may see it: `404` when it is unknown or someone else's
/// and the caller is a client.
async fn visible_fee(
    state: &AppState,
    caller: &Caller,
    fee_key: &str,
) -> Result<FeeRecord, ApiError> {
    let fee = fee_collections::get(&state.db, fee_key).await?.ok_or(ApiError::NotFound)?;
    if caller.role == Role::Client && !caller.is_client(fee.client_id) {
        return Err(ApiError::NotFound);
    }
    Ok(fee)
}

/// A fee left outstanding and where its collection stands (attempts, the next one, how it
/// ended): the client it is owed by, services, operators and finance.
#[utoipa::path(get, path = "/v1/fees/{fee_key}", tag = "finance",
    params(("fee_key" = String, Path, description = "the fee's ledger key, `<workflow id>:<fee kind>:r<round>`")),
    responses((status = 200, body = FeeRecord), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn get_fee(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(fee_key): ApiPath<String>,
) -> Result<Json<FeeRecord>, ApiError> {
    caller.require(&READERS)?;
    Ok(Json(visible_fee(&state, &caller, &fee_key).await?))
}

/// A client's fees left outstanding, whatever became of them: that client, services, operators
/// and finance.
#[utoipa::path(get, path = "/v1/clients/{client_id}/fees", tag = "finance",
    params(("client_id" = ClientId, Path)),
    responses((status = 200, body = FeePage), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn client_fees(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(client): ApiPath<ClientId>,
) -> Result<Json<FeePage>, ApiError> {
    caller.require(&READERS)?;
    if caller.role == Role::Client && !caller.is_client(client) {
        return Err(ApiError::NotFound);
    }
    Ok(Json(FeePage { fees: fee_collections::of_client(&state.db, client).await? }))
}

/// The body of `POST /v1/fees/{fee_key}/waive`.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WaiveBody {
    /// Why, for the books (kept in the database, never in workflow history; 500 characters at
    /// most, no control characters but line breaks). Required.
    pub reason: WaiverReason,
}

/// Finance (or an operator) waives an outstanding fee: no further attempt charges it, and the
/// ledger posts `fee_waived` (`<fee key>:waived`). The waiver is an update of the fee's
/// collection, carried out after an attempt in flight (refused if that attempt collected it).
/// With an `Idempotency-Key` the waiver's id derives from it, so a retry is the same waiver.
#[utoipa::path(post, path = "/v1/fees/{fee_key}/waive", tag = "finance", request_body = WaiveBody,
    params(("fee_key" = String, Path, description = "the fee's ledger key")),
    responses((status = 200, body = FeeRecord, description = "waived"),
        (status = 202, body = StillRunning, description = "not answered in time; the waiver may still take effect"),
        (status = 400, body = ErrorBody, description = "malformed_request: no reason, or one that is blank or too long"),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody, description = "fee_not_outstanding: collected, waived or written off already; change_in_progress"),
        (status = 503, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn waive_fee(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    ApiPath(fee_key): ApiPath<String>,
    body: JsonBody,
) -> Result<Json<FeeRecord>, ApiError> {
    caller.require(&[Role::Finance, Role::Operator])?;
    let body: WaiveBody = body.parse()?;
    let fee = visible_fee(&state, &caller, &fee_key).await?;
    if fee.state.is_final() {
        let message = format!("the fee is {} already", fee.state);
        return Err(Refusal::new(RefusalCode::FeeNotOutstanding, message).into());
    }
    let id = match idempotency::key_of(&headers)? {
        Some(key) => WaiverId::from_uuid(idempotency::derived_id(&caller, &key)),
        None => WaiverId::random(),
    };
    let waiver = Waiver {
        id,
        reason: body.reason,
        requested_by: caller.sub.clone(),
        requested_at: Utc::now(),
    };
    fee_collections::request_waiver(&state.db, &fee.key, &waiver).await?;
    let charge = FeeCharge {
        key: fee.key.clone(),
        client_id: fee.client_id,
        session_id: fee.session_id,
        kind: fee.kind,
        amount: fee.amount,
    };
    state.fees.waive(charge, id).await.map_err(|error| ApiError::waiver(error, id, &fee.key))?;
    Ok(Json(visible_fee(&state, &caller, &fee_key).await?))
}
