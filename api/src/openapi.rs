//! `GET /openapi.json`: the OpenAPI document, generated from the handlers' annotations.

use axum::Json;
use utoipa::openapi::path::{Operation, ParameterIn};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{ContentBuilder, Ref, ResponseBuilder};
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
    components(schemas(livesessions_domain::RoomId)),
    modifiers(&BearerAuth, &CommonAnswers)
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

/// Documents the answers every operation of a kind gives, so no handler can forget them: `400`
/// for a path parameter that does not parse, `401` for a missing or bad bearer token.
struct CommonAnswers;

impl CommonAnswers {
    /// Adds `status` with the error body to `operation`, unless it documents it already.
    fn add(operation: &mut Operation, status: &str, description: &str) {
        let error = ContentBuilder::new().schema(Some(Ref::from_schema_name("ErrorBody"))).build();
        let response =
            ResponseBuilder::new().description(description).content("application/json", error);
        operation.responses.responses.entry(status.to_string()).or_insert(response.build().into());
    }
}

impl Modify for CommonAnswers {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        for item in openapi.paths.paths.values_mut() {
            let operations =
                [&mut item.get, &mut item.put, &mut item.post, &mut item.delete, &mut item.patch];
            for operation in operations.into_iter().flatten() {
                let in_path = operation
                    .parameters
                    .iter()
                    .flatten()
                    .any(|parameter| matches!(parameter.parameter_in, ParameterIn::Path));
                if in_path {
                    Self::add(operation, "400", "a path parameter does not parse");
                }
                if operation.security.is_some() {
                    Self::add(operation, "401", "no bearer token, or one that does not verify");
                }
            }
        }
    }
}

/// Serves the document.
pub async fn openapi_json() -> Json<utoipa::openapi::OpenApi> {
    Json(ApiDoc::openapi())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    /// Every `$ref` in `value`.
    fn refs<'a>(value: &'a Value, found: &mut Vec<&'a str>) {
        match value {
            Value::Object(fields) => {
                if let Some(Value::String(target)) = fields.get("$ref") {
                    found.push(target);
                }
                fields.values().for_each(|v| refs(v, found));
            }
            Value::Array(items) => items.iter().for_each(|v| refs(v, found)),
            _ => {}
        }
    }

    #[test]
    fn every_reference_resolves() {
        let document = serde_json::to_value(ApiDoc::openapi()).unwrap();
        let mut found = Vec::new();
        refs(&document, &mut found);
        assert!(!found.is_empty());
        for target in found {
            let pointer = target.strip_prefix('#').expect("a local reference");
            assert!(document.pointer(pointer).is_some(), "{target} is referenced but missing");
        }
    }

    #[test]
    fn path_parameters_document_400_and_secured_operations_401() {
        let document = serde_json::to_value(ApiDoc::openapi()).unwrap();
        let mut missing = Vec::new();
        for (path, item) in document["paths"].as_object().unwrap() {
            for (method, operation) in item.as_object().unwrap() {
                let responses = &operation["responses"];
                let in_path = operation["parameters"]
                    .as_array()
                    .is_some_and(|ps| ps.iter().any(|p| p["in"] == "path"));
                if in_path && responses.get("400").is_none() {
                    missing.push(format!("{method} {path}: 400"));
                }
                if operation.get("security").is_some() && responses.get("401").is_none() {
                    missing.push(format!("{method} {path}: 401"));
                }
            }
        }
        assert!(missing.is_empty(), "undocumented answers: {missing:#?}");
    }
}
