//! The HTTP API of `shared/API.md`: axum handlers over the read model and the session
//! workflows, bearer auth with the roles and ownership rules, and one error format.

pub mod audit;
pub mod auth;
pub mod availability;
pub mod changes;
pub mod credits;
pub mod error;
pub mod extract;
pub mod fees;
pub mod finance;
pub mod health;
pub mod idempotency;
pub mod media;
pub mod messaging;
pub mod metrics;
pub mod openapi;
pub mod operators;
pub mod people;
pub mod public_keys;
pub mod remote_keys;
pub mod rooms;
pub mod sessions;
pub mod settings;
pub mod state;

pub use auth::JwtKeys;
pub use settings::{AuthSettings, HttpSettings, PublicKeyAlgorithm, PublicKeySettings};
pub use state::AppState;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post, put};
use tower_http::trace::TraceLayer;

/// Every route of the API.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/healthz", get(health::healthz))
        .route("/openapi.json", get(openapi::openapi_json))
        .route("/metrics", get(metrics::metrics))
        .route("/v1/clients/{client_id}", put(people::put_client))
        .route("/v1/clients/{client_id}/credits", get(credits::client_credits))
        .route("/v1/clients/{client_id}/credits/purchase", post(credits::purchase_credit))
        .route("/v1/clients/{client_id}/credits/grant", post(operators::grant_credit))
        .route("/v1/clients/{client_id}/credits/remove", post(operators::remove_credit))
        .route("/v1/clients/{client_id}/fees", get(fees::client_fees))
        .route("/v1/providers/{provider_id}", put(people::put_provider))
        .route(
            "/v1/providers/{provider_id}/availability",
            put(availability::put_availability).get(availability::get_availability),
        )
        .route("/v1/providers/{provider_id}/slots", get(availability::slots))
        .route(
            "/v1/providers/{provider_id}/availability-requests",
            get(availability::availability_requests),
        )
        .route("/v1/availability-requests", post(availability::request_availability))
        .route("/v1/sessions", post(sessions::request_session).get(sessions::list_sessions))
        .route("/v1/sessions/{id}", get(sessions::get_session))
        .route("/v1/sessions/{id}/confirm", post(sessions::confirm_session))
        .route("/v1/sessions/{id}/decline", post(sessions::decline_session))
        .route("/v1/sessions/{id}/reschedule", post(changes::reschedule))
        .route("/v1/sessions/{id}/cancel", post(changes::cancel))
        .route("/v1/sessions/{id}/provider-unavailable", post(changes::provider_unavailable))
        .route("/v1/sessions/{id}/next-estimate", get(changes::next_estimate))
        .route("/v1/sessions/{id}/authorize-next", post(changes::authorize_next))
        .route("/v1/sessions/{id}/join", get(media::join_link))
        .route("/v1/sessions/{id}/operator/cancel", post(operators::operator_cancel))
        .route("/v1/sessions/{id}/operator/end", post(operators::operator_end))
        .route("/v1/sessions/{id}/operator/resend-notice", post(operators::resend_notice))
        .route("/v1/messaging-sessions", post(messaging::start))
        .route("/v1/messaging-sessions/{id}", get(messaging::get))
        .route("/v1/messaging-sessions/{id}/cancel", post(messaging::cancel))
        .route("/v1/messaging-sessions/{id}/switch-to-live", post(messaging::switch_to_live))
        .route("/v1/rooms/{client_id}/messages", get(rooms::room_messages))
        .route("/v1/ledger", get(finance::ledger_entries))
        .route("/v1/reconciliation", get(finance::reconcile))
        .route("/v1/refunds", post(finance::refund))
        .route("/v1/fees/{fee_key}", get(fees::get_fee))
        .route("/v1/fees/{fee_key}/waive", post(fees::waive_fee))
        .route("/v1/audit", get(audit::audit_entries))
        .route("/v1/media/events", post(media::media_event))
        .route("/join/{token}", get(media::join))
        .route("/media/rooms/{room_id}", get(media::room_page))
        .route("/media/rooms/{room_id}/end", post(media::end_room))
        .fallback(|| async { error::ApiError::NotFound })
        .method_not_allowed_fallback(|| async { error::ApiError::MethodNotAllowed })
        .layer(axum::middleware::from_fn_with_state(state.clone(), idempotency::idempotent))
        .layer(axum::middleware::from_fn_with_state(state.clone(), audit::record))
        .layer(DefaultBodyLimit::max(extract::MAX_BODY_BYTES))
        .layer(axum::middleware::from_fn_with_state(state.clone(), metrics::record))
        .layer(TraceLayer::new_for_http())
        .with_state(state)
}
