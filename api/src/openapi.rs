//! `GET /openapi.json`: the OpenAPI document, generated from the handlers' annotations.

use axum::Json;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

/// The API's OpenAPI document.
#[derive(OpenApi)]
#[openapi(
    info(title = "livesessions", description = "Books and runs live therapy and psychiatry sessions; see shared/API.md."),
    paths(
        crate::health::healthz,
        crate::people::put_client,
        crate::people::put_provider,
        crate::availability::put_availability,
        crate::availability::get_availability,
        crate::availability::slots,
        crate::availability::request_availability,
        crate::availability::availability_requests,
        crate::sessions::request_session,
        crate::sessions::get_session,
        crate::sessions::list_sessions,
        crate::sessions::confirm_session,
        crate::sessions::decline_session,
        crate::changes::reschedule,
        crate::changes::cancel,
        crate::changes::provider_unavailable,
        crate::changes::next_estimate,
        crate::changes::authorize_next,
        crate::messaging::start,
        crate::messaging::get,
        crate::messaging::cancel,
        crate::messaging::switch_to_live,
        crate::media::join_link,
        crate::media::join,
        crate::media::room_page,
        crate::media::end_room,
        crate::media::media_event,
        crate::rooms::room_messages,
        crate::credits::client_credits,
        crate::credits::purchase_credit,
        crate::finance::ledger_entries,
        crate::finance::reconcile,
        crate::finance::refund,
    ),
    modifiers(&BearerAuth)
)]
pub struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new().scheme(HttpAuthScheme::Bearer).bearer_format("JWT").build(),
            ),
        );
    }
}

/// Serves the document.
pub async fn openapi_json() -> Json<utoipa::openapi::OpenApi> {
    Json(ApiDoc::openapi())
}
