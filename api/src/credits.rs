//! A client's credits (or, for insurance, authorized sessions), and buying one more.

use crate::auth::Caller;
use crate::error::{ApiError, ErrorBody};
use crate::extract::ApiPath;
use crate::people::known_client;
use crate::state::AppState;
use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use livesessions_activities::storage::credits::{self, CreditBalance};
use livesessions_domain::{ClientId, CreditId, Money, Refusal, RefusalCode, Role};
use serde::Serialize;

/// The client's available and reserved credits: that client, services and finance.
#[utoipa::path(get, path = "/v1/clients/{client_id}/credits", tag = "credits",
    params(("client_id" = ClientId, Path)),
    responses((status = 200, body = CreditBalance), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn client_credits(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(client): ApiPath<ClientId>,
) -> Result<Json<CreditBalance>, ApiError> {
    caller.require(&[Role::Client, Role::Service, Role::Finance])?;
    if caller.role == Role::Client && !caller.is_client(client) {
        return Err(ApiError::NotFound);
    }
    Ok(Json(credits::balance(&state.db, client).await?))
}

/// A credit bought.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Purchase {
    /// The new credit, available to book with.
    pub credit_id: CreditId,
    /// What it cost.
    pub price: Money,
    /// The client's credits now.
    pub balance: CreditBalance,
}

/// Buys one credit at the plan's credit price. With an `Idempotency-Key` header, repeating the
/// request buys nothing more.
#[utoipa::path(post, path = "/v1/clients/{client_id}/credits/purchase", tag = "credits",
    params(("client_id" = ClientId, Path), ("Idempotency-Key" = Option<String>, Header, min_length = 1, max_length = 255, description = "repeat-safe key")),
    responses((status = 201, body = Purchase), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 422, body = ErrorBody, description = "credit_purchase_not_offered, unknown_client")),
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
    let key = match headers.get("idempotency-key") {
        Some(value) => {
            let value = value
                .to_str()
                .map_err(|_| ApiError::Malformed("Idempotency-Key must be text".into()))?;
            format!("client-{id}:credit_purchase:{value}")
        }
        None => format!("client-{id}:credit_purchase:{}", uuid::Uuid::new_v4()),
    };
    let credit_id = state.billing.purchase(&key, id, price).await??;
    let balance = credits::balance(&state.db, id).await?;
    Ok((StatusCode::CREATED, Json(Purchase { credit_id, price, balance })))
}
