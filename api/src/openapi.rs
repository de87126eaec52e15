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
        crate::metrics::metrics,
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
        crate::fees::get_fee,
        crate::fees::client_fees,
        crate::fees::waive_fee,
        crate::operators::cancel,
        crate::operators::end,
        crate::operators::resend_notice,
        crate::operators::grant_credit,
        crate::operators::remove_credit,
        crate::audit::audit_entries,
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

    /// Strings and arrays a request may carry that are unbounded on purpose: looked up and
    /// never stored, or opaque and decoded.
    const UNBOUNDED: &[&str] = &[
        "ClientRecord.plan: looked up in the configured plan table",
        "RefundBody.ledger_key: looked up in the ledger",
        "GET /v1/fees/{fee_key} fee_key: looked up",
        "POST /v1/fees/{fee_key}/waive fee_key: looked up",
        "MediaEvent.id: signed by the media service",
        "GET /media/rooms/{room_id} token: looked up",
        "POST /media/rooms/{room_id}/end token: looked up",
        "GET /join/{token} token: looked up",
        "GET /v1/sessions cursor: decoded, a cursor this API handed out",
        "POST /v1/media/events X-Media-Signature: verified",
    ];

    /// Where `schema` (at `at`) lets a string or an array through without a bound: a string with
    /// no `maxLength`, `enum` or `format`, an array with no `maxItems`.
    fn unbounded(document: &Value, schema: &Value, at: &str, found: &mut Vec<String>) {
        if let Some(Value::String(target)) = schema.get("$ref") {
            let name = target.rsplit('/').next().unwrap();
            let resolved = document.pointer(target.strip_prefix('#').unwrap()).unwrap();
            return unbounded(document, resolved, name, found);
        }
        for key in ["allOf", "oneOf", "anyOf"] {
            for part in schema[key].as_array().into_iter().flatten() {
                unbounded(document, part, at, found);
            }
        }
        let types: Vec<&str> = match &schema["type"] {
            Value::String(one) => vec![one],
            Value::Array(many) => many.iter().filter_map(Value::as_str).collect(),
            _ => Vec::new(),
        };
        let stated = |key: &str| schema.get(key).is_some();
        if types.contains(&"string") && !(stated("maxLength") || stated("enum") || stated("format"))
        {
            found.push(at.to_string());
        }
        if types.contains(&"array") {
            if !stated("maxItems") {
                found.push(format!("{at}[]"));
            }
            unbounded(document, &schema["items"], &format!("{at}[]"), found);
        }
        for (name, field) in schema["properties"].as_object().into_iter().flatten() {
            unbounded(document, field, &format!("{at}.{name}"), found);
        }
    }

    /// Every text and every list a request carries states its limit in the document, so a new
    /// bounded newtype (or field) without one fails here, unless it is in [`UNBOUNDED`] with
    /// the reason why.
    #[test]
    fn every_string_and_array_a_request_carries_states_its_bound() {
        let document = serde_json::to_value(ApiDoc::openapi()).unwrap();
        let mut found = Vec::new();
        for (path, item) in document["paths"].as_object().unwrap() {
            for (method, operation) in item.as_object().unwrap() {
                let at = format!("{} {path}", method.to_uppercase());
                for parameter in operation["parameters"].as_array().into_iter().flatten() {
                    let name = parameter["name"].as_str().unwrap();
                    unbounded(&document, &parameter["schema"], &format!("{at} {name}"), &mut found);
                }
                let body = &operation["requestBody"]["content"]["application/json"]["schema"];
                unbounded(&document, body, &format!("{at} body"), &mut found);
            }
        }
        found.sort();
        found.dedup();
        let allowed: Vec<&str> = UNBOUNDED.iter().map(|a| a.split(':').next().unwrap()).collect();
        found.retain(|at| !allowed.contains(&at.as_str()));
        assert!(found.is_empty(), "no maxLength / maxItems stated: {found:#?}");
    }

    /// The limits the document states are the ones the code enforces.
    #[test]
    fn stated_limits_are_the_enforced_ones() {
        use livesessions_domain::availability::{
            MAX_EXCEPTION_HOURS, MAX_EXCEPTIONS, MAX_WEEKLY_HOURS, MAX_WINDOWS,
        };
        use livesessions_domain::{CancelReason, DisplayName, Email, OperatorReason, WaiverReason};
        let document = serde_json::to_value(ApiDoc::openapi()).unwrap();
        let schemas = &document["components"]["schemas"];
        let stated = [
            (&schemas["DisplayName"]["maxLength"], DisplayName::MAX_CHARS),
            (&schemas["CancelReason"]["maxLength"], CancelReason::MAX_CHARS),
            (&schemas["WaiverReason"]["maxLength"], WaiverReason::MAX_CHARS),
            (&schemas["OperatorReason"]["maxLength"], OperatorReason::MAX_CHARS),
            (&schemas["Email"]["maxLength"], Email::MAX_CHARS),
            (&schemas["Email"]["minLength"], Email::MIN_CHARS),
            (&schemas["Availability"]["properties"]["weekly"]["maxItems"], MAX_WEEKLY_HOURS),
            (&schemas["Availability"]["properties"]["exceptions"]["maxItems"], MAX_EXCEPTIONS),
            (&schemas["Exception"]["properties"]["hours"]["maxItems"], MAX_EXCEPTION_HOURS),
            (&schemas["NewAvailabilityRequest"]["properties"]["windows"]["maxItems"], MAX_WINDOWS),
        ];
        for (n, (value, limit)) in stated.into_iter().enumerate() {
            assert_eq!(value.as_u64(), Some(limit as u64), "limit {n}");
        }
    }
}
