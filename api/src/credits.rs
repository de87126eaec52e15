//! A client's credits (or, for insurance, authorized sessions), and buying one more.

use crate::auth::Caller;
use crate::error::{ApiError, ErrorBody, StillRunning};
use crate::extract::ApiPath;
use crate::idempotency;
use crate::people::known_client;
use crate::state::AppState;
use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use livesessions_activities::storage::credits::{self, CreditBalance};
use livesessions_activities::storage::subscriptions;
use livesessions_domain::{
    BillingPeriod, ClientId, CreditId, Money, PurchaseId, Refusal, RefusalCode, Role,
};
use livesessions_workflows::activities::{CreditOrder, PurchaseOutcome};
use serde::Serialize;

/// A client's credits, and for a subscription client their current billing period.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ClientCredits {
    /// Free to book with.
    pub available: i64,
    /// Held by requested or confirmed sessions.
    pub reserved: i64,
    /// The latest billing period begun (the current one while the subscription renews);
    /// `null` for a client who never had a subscription.
    pub period: Option<BillingPeriod>,
}

/// The client's available and reserved credits and their billing period: that client,
/// services and finance.
#[utoipa::path(get, path = "/v1/clients/{client_id}/credits", tag = "credits",
    params(("client_id" = ClientId, Path)),
    responses((status = 200, body = ClientCredits), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn client_credits(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(client): ApiPath<ClientId>,
) -> Result<Json<ClientCredits>, ApiError> {
    caller.require(&[Role::Client, Role::Service, Role::Finance])?;
    if caller.role == Role::Client && !caller.is_client(client) {
        return Err(ApiError::NotFound);
    }
    let CreditBalance { available, reserved } = credits::balance(&state.db, client).await?;
    let period = subscriptions::latest(&state.db, client).await?;
    Ok(Json(ClientCredits { available, reserved, period }))
}

/// A credit bought.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Purchase {
    /// The new credit, available to book with.
    pub credit_id: CreditId,
    /// What it cost.
    pub price: Money,
    /// The idempotency key of the charge and of its ledger transaction (the `ledger_key` of a
    /// refund): `credit-purchase-<purchase id>:credit_purchase`.
    pub ledger_key: String,
    /// The client's credits now.
    pub balance: CreditBalance,
}

/// Buys one credit at the plan's credit price, as a durable step (the `CreditPurchase`
/// workflow, whose id derives from the caller and the `Idempotency-Key`, which is required).
/// Repeating the request with the same key, at any later time, charges nothing more and answers
/// the purchase's outcome; past `temporal.request_timeout` it answers `202` and goes on.
#[utoipa::path(post, path = "/v1/clients/{client_id}/credits/purchase", tag = "credits",
    params(("client_id" = ClientId, Path), ("Idempotency-Key" = String, Header, min_length = 1, max_length = 255, description = "required: the same key is the same purchase")),
    responses((status = 201, body = Purchase),
        (status = 202, body = StillRunning, description = "not finished in time; it goes on: repeat the request with the same Idempotency-Key for its outcome"),
        (status = 401, body = ErrorBody), (status = 402, body = ErrorBody, description = "payment_declined"),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 422, body = ErrorBody, description = "idempotency_key_required, credit_purchase_not_offered, unknown_client"),
        (status = 503, body = ErrorBody, description = "Temporal did not take the purchase: nothing was charged")),
    security(("bearer" = [])))]
pub async fn purchase_credit(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    ApiPath(id): ApiPath<ClientId>,
) -> Result<(StatusCode, Json<Purchase>), ApiError> {
    caller.require(&[Role::Client, Role::Service])?;
    if caller.role == Role::Client && !caller.is_client(id) {
        return Err(ApiError::NotFound);
    }
    let key = idempotency::required_key(&headers)?;
    let client = known_client(&state, id).await?;
    let price = state
        .plans
        .get(&client.plan)
        .and_then(|plan| plan.credit_price())
        .filter(|_| client.coverage.uses_credits())
        .ok_or_else(|| {
            Refusal::new(
                RefusalCode::CreditPurchaseNotOffered,
                format!("the client's plan {:?} sells no credits", client.plan),
            )
        })?;
    let purchase_id = PurchaseId::from_uuid(idempotency::derived_id(&caller, &key));
    let order = CreditOrder { purchase_id, client_id: id, price };
    let credit_id = match state.purchases.buy(order).await? {
        PurchaseOutcome::Bought { credit } => credit,
        PurchaseOutcome::Declined(refusal) => return Err(refusal.into()),
    };
    let balance = credits::balance(&state.db, id).await?;
    let ledger_key = purchase_id.charge_key();
    Ok((StatusCode::CREATED, Json(Purchase { credit_id, price, ledger_key, balance })))
}
