//! Finance: the ledger, refunds, and the daily reconciliation against the payment processor.

use crate::auth::Caller;
use crate::error::{ApiError, ErrorBody};
use crate::extract::{ApiQuery, JsonBody};
use crate::idempotency;
use crate::state::AppState;
use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use chrono::{DateTime, NaiveDate, Utc};
use livesessions_activities::reconciliation::{self, Report};
use livesessions_activities::storage::ledger::{self, Entry, LedgerFilter};
use livesessions_domain::{ClientId, Role, SessionId};
use serde::{Deserialize, Serialize};

/// Filters of `GET /v1/ledger`.
#[derive(Debug, Clone, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct LedgerQuery {
    /// Only this session's.
    pub session_id: Option<SessionId>,
    /// Only this client's.
    pub client_id: Option<ClientId>,
    /// Posted at or after (RFC 3339, URL-encoded).
    pub from: Option<DateTime<Utc>>,
    /// Posted before (RFC 3339, URL-encoded).
    pub to: Option<DateTime<Utc>>,
}

/// Ledger transactions.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct LedgerPage {
    /// Oldest first, each with its postings (they sum to zero per unit).
    pub entries: Vec<Entry>,
}

/// Ledger transactions for finance and operators.
#[utoipa::path(get, path = "/v1/ledger", tag = "finance", params(LedgerQuery),
    responses((status = 200, body = LedgerPage), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn ledger_entries(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(query): ApiQuery<LedgerQuery>,
) -> Result<Json<LedgerPage>, ApiError> {
    caller.require(&[Role::Finance, Role::Operator])?;
    let filter = LedgerFilter {
        session_id: query.session_id,
        client_id: query.client_id,
        from: query.from,
        to: query.to,
        key: None,
    };
    Ok(Json(LedgerPage { entries: ledger::entries(&state.db, &filter).await? }))
}

/// The day of `GET /v1/reconciliation`.
#[derive(Debug, Clone, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ReconciliationQuery {
    /// The UTC day, `YYYY-MM-DD`.
    pub date: NaiveDate,
}

/// One day of the ledger against the payment processor.
#[utoipa::path(get, path = "/v1/reconciliation", tag = "finance", params(ReconciliationQuery),
    responses((status = 200, body = Report), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 503, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn reconcile(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(query): ApiQuery<ReconciliationQuery>,
) -> Result<Json<Report>, ApiError> {
    caller.require(&[Role::Finance])?;
    Ok(Json(reconciliation::reconcile(&state.db, state.processor.as_ref(), query.date).await?))
}

/// The body of `POST /v1/refunds`.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RefundBody {
    /// The idempotency key of the ledger transaction whose money to give back.
    pub ledger_key: String,
    /// Less than all of it, in minor units.
    pub amount_minor: Option<i64>,
}

/// Refunds money the processor took (a credit purchase or a fee). The `Idempotency-Key`
/// (required) names the refund: another key is another refund of the same transaction, the
/// same key the same refund, made once. Refunds of one transaction never exceed what it took. A
/// purchase refunded in full takes its credit back, and is refused while a session holds or used
/// that credit. A refund not confirmed (by the processor, or by the ledger after it) may have
/// been made: it answers `202`, and the same request with the same key finishes it.
#[utoipa::path(post, path = "/v1/refunds", tag = "finance", request_body = RefundBody,
    params(("Idempotency-Key" = String, Header, min_length = 1, max_length = 255, description = "required: one key, one refund")),
    responses((status = 201, body = Entry),
        (status = 202, body = crate::error::StillRunning, description = "the refund is not confirmed (the processor did not answer, or the ledger could not post it); it may have been made: repeat the request with the same Idempotency-Key for its outcome"),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody, description = "credit_already_used"),
        (status = 422, body = ErrorBody, description = "not_refundable, idempotency_key_required"),
        (status = 503, body = ErrorBody, description = "the ledger could not be read or written before the processor was asked: nothing was refunded")),
    security(("bearer" = [])))]
pub async fn refund(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    body: JsonBody,
) -> Result<(StatusCode, Json<Entry>), ApiError> {
    caller.require(&[Role::Finance, Role::Operator])?;
    let body: RefundBody = body.parse()?;
    let refund_id = idempotency::derived_id(&caller, &idempotency::required_key(&headers)?);
    let refunded = state
        .billing
        .refund(&body.ledger_key, refund_id, body.amount_minor)
        .await?
        .ok_or(ApiError::NotFound)??;
    Ok((StatusCode::CREATED, Json(refunded)))
}
