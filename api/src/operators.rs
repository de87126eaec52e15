//! Operators' repairs, each an update on a workflow so it shows in that workflow's history by
//! name: cancel a session on someone's behalf with an explicit fee decision
//! (`operator_cancel`), end a stuck one (`operator_end`), send its last notice again
//! (`resend_notice`), and grant or remove a client's credit (`grant_credit`, `remove_credit` on
//! the action's own `CreditAdjustment` workflow). A fee is waived the one way fees are waived
//! (see `fees`). Operators only.
//!
//! Each action has an id, derived from the caller's `Idempotency-Key` when there is one (so a
//! retry is the same update), else new. Its reason, which may be health information, is kept in
//! the database under that id before the action is asked for, and dropped again when the action
//! is refused: it never goes to Temporal or to the audit log, whose entry for the call the
//! request id ties it to.

use crate::audit::{RequestId, Subjects};
use crate::auth::Caller;
use crate::error::{ApiError, ErrorBody, StillRunning};
use crate::extract::{ApiPath, JsonBody};
use crate::idempotency;
use crate::sessions::steer_as;
use crate::state::AppState;
use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use chrono::Utc;
use livesessions_activities::storage::clients;
use livesessions_activities::storage::credits::{self, CreditBalance};
use livesessions_activities::storage::operator_actions::{self, OperatorAction};
use livesessions_domain::lifecycle::{Change, FeeDecision, OperatorCancel, OperatorEnding};
use livesessions_domain::{
    ActionId, ClientId, CreditId, FeeStatus, OperatorReason, Party, RefusalCode, Role, SessionId,
    SessionSnapshot,
};
use livesessions_workflows::activities::Adjustment;
use serde::{Deserialize, Serialize};
use std::future::Future;

/// Who may repair: operators.
const OPERATORS: [Role; 1] = [Role::Operator];

/// What an operator decides about a late cancellation's fee.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum FeeChoice {
    /// As the policy says: a late cancellation for the client is charged its fee.
    Charge,
    /// Not charged: posted and waived at once (ledger `fee_waived`), as finance waives a fee.
    Waive,
}

/// The body of `POST /v1/sessions/{id}/operator/cancel`.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OperatorCancelBody {
    /// For whom: `client` (the policy's lateness applies) or `provider` (never costs the
    /// client).
    pub on_behalf_of: Party,
    /// Why (kept in the database, never in workflow history or the audit log).
    pub reason: OperatorReason,
    /// `charge` or `waive` the fee a late cancellation for the client owes (no fee is due
    /// otherwise, whichever is chosen).
    pub fee: FeeChoice,
}

/// The body of `POST /v1/sessions/{id}/operator/end`.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OperatorEndBody {
    /// `completed` (it took place: the credit is consumed) or `cancelled` (it did not: the
    /// credit comes back, nobody is charged).
    pub outcome: OperatorEnding,
    /// Why (kept in the database, never in workflow history or the audit log).
    pub reason: OperatorReason,
}

/// The body of an operator's credit grant or removal.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreditAdjustmentBody {
    /// Why (kept in the database, never in workflow history or the audit log).
    pub reason: OperatorReason,
}

/// A credit an operator granted or removed.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct AdjustedCredit {
    /// The action (its workflow is `credit-adjustment-<action id>`).
    pub action_id: ActionId,
    /// The credit granted, or removed.
    pub credit_id: CreditId,
    /// The client's credits now.
    pub balance: CreditBalance,
}

/// An operator's action as its request asks for it: the operator (any other role is `403`,
/// before anything else is read), the action's id (derived from the caller and the
/// `Idempotency-Key`, else new) and the request's id.
pub struct Acting {
    caller: Caller,
    action: ActionId,
    request: RequestId,
}

impl FromRequestParts<AppState> for Acting {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let caller = Caller::from_request_parts(parts, state).await?;
        caller.require(&OPERATORS)?;
        let action = match idempotency::key_of(&parts.headers)? {
            Some(key) => ActionId::from_uuid(idempotency::derived_id(&caller, &key)),
            None => ActionId::random(),
        };
        let request = parts.extensions.get::<RequestId>().cloned().ok_or_else(|| {
            ApiError::Internal(anyhow::anyhow!("the audit layer gave the request no id"))
        })?;
        Ok(Self { caller, action, request })
    }
}

impl Acting {
    /// The record of this action (`what`, about `subject`) for `reason`.
    fn record<'a>(
        &'a self,
        what: &'a str,
        subject: String,
        reason: &'a OperatorReason,
    ) -> OperatorAction<'a> {
        OperatorAction {
            id: self.action,
            action: what,
            subject_id: subject,
            reason,
            requested_by: &self.caller.sub,
            requested_at: Utc::now(),
            request_id: &self.request.0,
        }
    }

    /// Asks the session's workflow for `change` under the action's update id.
    async fn repair(
        &self,
        state: &AppState,
        id: SessionId,
        change: Change,
    ) -> Result<Json<SessionSnapshot>, ApiError> {
        let (closed, update_id) = (RefusalCode::SessionStateConflict, self.action.to_string());
        steer_as(state, &self.caller, id, &OPERATORS, closed, change, Some(update_id)).await
    }
}

/// Keeps `record`'s reason, then does `act`; a refusal (anything but an answer or a `202`)
/// drops the reason again, so a refused action leaves nothing.
async fn on_the_record<T>(
    state: &AppState,
    record: OperatorAction<'_>,
    act: impl Future<Output = Result<T, ApiError>>,
) -> Result<T, ApiError> {
    operator_actions::record(&state.db, &record).await?;
    let answer = act.await;
    if let Err(error) = &answer
        && !matches!(error, ApiError::Pending(_))
        && let Err(forgotten) = operator_actions::forget(&state.db, record.id).await
    {
        tracing::warn!(action = %record.id, %forgotten, "a refused action's reason stays");
    }
    answer
}

/// An operator cancels a session on the client's or the provider's behalf, with an explicit
/// decision about the fee: as that person's cancellation would (late for the client: the credit
/// lost), but a late one's fee is charged or waived, the waiver posted as finance's are
/// (`fee_waived` under `<fee key>:waived`, the fee then `waived` at `GET /v1/fees/{fee_key}`).
#[utoipa::path(post, path = "/v1/sessions/{id}/operator/cancel", tag = "operators", request_body = OperatorCancelBody,
    params(("id" = SessionId, Path)),
    responses((status = 200, body = SessionSnapshot), (status = 202, body = StillRunning, description = "not answered in time; it may still take effect"),
        (status = 400, body = ErrorBody, description = "malformed_request: no reason, on_behalf_of or fee"),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody, description = "session_state_conflict (begun or ended), change_in_progress"),
        (status = 503, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn operator_cancel(
    State(state): State<AppState>,
    acting: Acting,
    ApiPath(id): ApiPath<SessionId>,
    body: JsonBody,
) -> Result<Response, ApiError> {
    let body: OperatorCancelBody = body.parse()?;
    let fee = match body.fee {
        FeeChoice::Charge => FeeDecision::Charge,
        FeeChoice::Waive => FeeDecision::Waive(acting.action.waiver()),
    };
    let change = Change::OperatorCancel(OperatorCancel { on_behalf_of: body.on_behalf_of, fee });
    let record = acting.record("cancel", id.to_string(), &body.reason);
    let Json(session) = on_the_record(&state, record, acting.repair(&state, id, change)).await?;
    let waived = session.fees.iter().filter(|fee| fee.status == FeeStatus::Waived);
    let subjects = Subjects(waived.map(|fee| fee.key.clone()).collect());
    Ok((Extension(subjects), Json(session)).into_response())
}

/// An operator ends a stuck session: `completed` (confirmed or in progress: it took place, the
/// room never said so; the credit is consumed) or `cancelled` (not yet ended: the credit comes
/// back and nobody is charged, also after a provider's absence, ending the reschedule offer).
#[utoipa::path(post, path = "/v1/sessions/{id}/operator/end", tag = "operators", request_body = OperatorEndBody,
    params(("id" = SessionId, Path)),
    responses((status = 200, body = SessionSnapshot), (status = 202, body = StillRunning, description = "not answered in time; it may still take effect"),
        (status = 400, body = ErrorBody, description = "malformed_request: no reason, or an outcome other than completed or cancelled"),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody, description = "session_state_conflict (ended, or never began for completed), change_in_progress"),
        (status = 503, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn operator_end(
    State(state): State<AppState>,
    acting: Acting,
    ApiPath(id): ApiPath<SessionId>,
    body: JsonBody,
) -> Result<Json<SessionSnapshot>, ApiError> {
    let body: OperatorEndBody = body.parse()?;
    let change = Change::OperatorEnd(body.outcome);
    let record = acting.record("end", id.to_string(), &body.reason);
    on_the_record(&state, record, acting.repair(&state, id, change)).await
}

/// An operator sends the session's last notice by email again (to whom it went: the client, and
/// the provider when it concerned them), under a key of its own; the room's message stays as it
/// is. The session's workflow must still run (an ended session answers `409`).
#[utoipa::path(post, path = "/v1/sessions/{id}/operator/resend-notice", tag = "operators",
    params(("id" = SessionId, Path)),
    responses((status = 200, body = SessionSnapshot), (status = 202, body = StillRunning, description = "not answered in time; it may still take effect"),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody, description = "session_state_conflict (its story has ended), change_in_progress"),
        (status = 503, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn resend_notice(
    State(state): State<AppState>,
    acting: Acting,
    ApiPath(id): ApiPath<SessionId>,
) -> Result<Json<SessionSnapshot>, ApiError> {
    acting.repair(&state, id, Change::ResendNotice).await
}

/// An operator grants a client one credit (an insurance client: one authorized session), as
/// the `grant_credit` update of the action's `CreditAdjustment` workflow. It never expires with a
/// billing period; ledger `credit_grant` under `credit-adjustment-<action id>:credit_grant`.
#[utoipa::path(post, path = "/v1/clients/{client_id}/credits/grant", tag = "operators", request_body = CreditAdjustmentBody,
    params(("client_id" = ClientId, Path)),
    responses((status = 200, body = AdjustedCredit), (status = 202, body = StillRunning, description = "not finished in time; it goes on: repeat the request with the same Idempotency-Key for its outcome"),
        (status = 400, body = ErrorBody, description = "malformed_request: no reason"),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 503, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn grant_credit(
    State(state): State<AppState>,
    acting: Acting,
    ApiPath(client): ApiPath<ClientId>,
    body: JsonBody,
) -> Result<Response, ApiError> {
    acting.adjust(&state, client, body, Adjustment::Grant).await
}

/// An operator removes one of a client's free credits (bought ones last; one a session holds
/// is never taken), as the `remove_credit` update of the action's `CreditAdjustment` workflow;
/// ledger `credit_revoke` under `credit-adjustment-<action id>:credit_revoke`.
#[utoipa::path(post, path = "/v1/clients/{client_id}/credits/remove", tag = "operators", request_body = CreditAdjustmentBody,
    params(("client_id" = ClientId, Path)),
    responses((status = 200, body = AdjustedCredit), (status = 202, body = StillRunning, description = "not finished in time; it goes on: repeat the request with the same Idempotency-Key for its outcome"),
        (status = 400, body = ErrorBody, description = "malformed_request: no reason"),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody, description = "no_free_credit: none is free to remove"),
        (status = 503, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn remove_credit(
    State(state): State<AppState>,
    acting: Acting,
    ApiPath(client): ApiPath<ClientId>,
    body: JsonBody,
) -> Result<Response, ApiError> {
    acting.adjust(&state, client, body, Adjustment::Remove).await
}

impl Acting {
    /// Grants or removes one of `client`'s credits; the audit entry names the credit.
    async fn adjust(
        &self,
        state: &AppState,
        client: ClientId,
        body: JsonBody,
        adjustment: Adjustment,
    ) -> Result<Response, ApiError> {
        let body: CreditAdjustmentBody = body.parse()?;
        clients::get(&state.db, client).await?.ok_or(ApiError::NotFound)?;
        let what = match adjustment {
            Adjustment::Grant => "grant_credit",
            Adjustment::Remove => "remove_credit",
        };
        let action = self.action;
        let moved = async {
            let adjusted = state.credit_adjustments.adjust(action, client, adjustment).await;
            adjusted.map_err(|error| ApiError::adjustment(error, action, client))
        };
        let record = self.record(what, client.to_string(), &body.reason);
        let credit_id = on_the_record(state, record, moved).await?;
        let balance = credits::balance(&state.db, client).await?;
        let subjects = Subjects(vec![credit_id.to_string()]);
        let answer = AdjustedCredit { action_id: action, credit_id, balance };
        Ok((Extension(subjects), Json(answer)).into_response())
    }
}
