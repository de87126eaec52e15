//! `GET /openapi.json`: the OpenAPI document, generated from the handlers' annotations.

mod links;

use crate::idempotency;
use axum::Json;
use livesessions_domain::text;
use serde_json::Value;
use utoipa::openapi::path::{Operation, Parameter, ParameterBuilder, ParameterIn};
use utoipa::openapi::schema::{ObjectBuilder, Type};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{ContentBuilder, Ref, Required, ResponseBuilder};
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
        crate::operators::operator_cancel,
        crate::operators::operator_end,
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

/// Documents what every operation of a kind takes and answers, so no handler can forget it:
/// the optional `Idempotency-Key` of an authenticated `POST` (the idempotency layer reads it)
/// with its `409` and `422`, `400` for an operation that takes any input (a parameter, a header or a body that does not
/// parse), `401` for a missing or bad bearer token.
struct CommonAnswers;

impl CommonAnswers {
    /// Adds `status` with the error body to `operation`, unless it documents it already.
    fn add(operation: &mut Operation, status: &str, description: &str) {
        let error = ContentBuilder::new().schema(Some(Ref::from_schema_name("ErrorBody"))).build();
        let response =
            ResponseBuilder::new().description(description).content("application/json", error);
        operation.responses.responses.entry(status.to_string()).or_insert(response.build().into());
    }

    /// States the form of `operation`'s `Idempotency-Key` ([`idempotency::key_of`]), adding
    /// the header as optional where the operation does not name it.
    fn idempotency_key(operation: &mut Operation) {
        let schema = ObjectBuilder::new()
            .schema_type(Type::String)
            .min_length(Some(1))
            .max_length(Some(idempotency::MAX_KEY_CHARS))
            .pattern(Some(idempotency::KEY_PATTERN));
        let parameters = operation.parameters.get_or_insert_with(Vec::new);
        let named = |p: &Parameter| p.name.eq_ignore_ascii_case(idempotency::HEADER);
        match parameters.iter_mut().find(|p| named(p)) {
            Some(parameter) => parameter.schema = Some(schema.into()),
            None => parameters.push(
                ParameterBuilder::new()
                    .name("Idempotency-Key")
                    .parameter_in(ParameterIn::Header)
                    .required(Required::False)
                    .description(Some(
                        "the same key with the same request answers the first response again",
                    ))
                    .schema(Some(schema))
                    .build(),
            ),
        }
    }
}

impl Modify for CommonAnswers {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        for item in openapi.paths.paths.values_mut() {
            if let Some(post) = &mut item.post
                && post.security.is_some()
            {
                Self::idempotency_key(post);
                Self::add(
                    post,
                    "409",
                    "idempotent_request_in_progress: the first request with this Idempotency-Key is still being answered",
                );
                Self::add(
                    post,
                    "422",
                    "idempotency_key_reused: this Idempotency-Key was used with another request",
                );
            }
            let operations =
                [&mut item.get, &mut item.put, &mut item.post, &mut item.delete, &mut item.patch];
            for operation in operations.into_iter().flatten() {
                let takes_input = operation.parameters.as_ref().is_some_and(|ps| !ps.is_empty())
                    || operation.request_body.is_some();
                if takes_input {
                    Self::add(operation, "400", "a parameter, a header or the body does not parse");
                }
                if operation.security.is_some() {
                    Self::add(operation, "401", "no bearer token, or one that does not verify");
                }
            }
        }
    }
}

/// The document as served: [`ApiDoc`], with the rules every request body follows
/// ([`state_body_rules`]) and the links between operations ([`links::add`]).
pub fn document() -> Value {
    let mut document = serde_json::to_value(ApiDoc::openapi()).expect("the document is JSON");
    state_body_rules(&mut document);
    links::add(&mut document);
    document
}

/// Where an operation keeps the schema of its JSON request body.
const BODY_SCHEMA: &str = "/requestBody/content/application~1json/schema";

/// States in the document what [`crate::extract::JsonBody`] enforces on every request body: an
/// object carries no field its schema does not name (`additionalProperties: false`), and free
/// text (a string without its own `enum`, `format` or `pattern`) holds no control character but
/// line breaks and tabs. Applied to every schema a request body reaches.
fn state_body_rules(document: &mut Value) {
    let mut names = Vec::new();
    let mut inline = Vec::new();
    for item in document["paths"].as_object().into_iter().flat_map(|paths| paths.values()) {
        for operation in item.as_object().into_iter().flat_map(|ops| ops.values()) {
            inline.extend(operation.pointer(BODY_SCHEMA).cloned());
        }
    }
    let schemas = document["components"]["schemas"].clone();
    while let Some(schema) = inline.pop() {
        referenced(&schema, &mut |target| {
            let name = target.rsplit('/').next().unwrap_or_default();
            if !names.iter().any(|known| known == name) {
                names.push(name.to_string());
                inline.push(schemas[name].clone());
            }
        });
    }
    for name in names {
        tighten(&mut document["components"]["schemas"][&name]);
    }
    for item in document["paths"].as_object_mut().into_iter().flat_map(|paths| paths.values_mut()) {
        for operation in item.as_object_mut().into_iter().flat_map(|ops| ops.values_mut()) {
            if let Some(body) = operation.pointer_mut(BODY_SCHEMA) {
                tighten(body);
            }
        }
    }
}

/// Calls `found` with every `$ref` in `schema` (`#/components/schemas/<name>`).
fn referenced(schema: &Value, found: &mut impl FnMut(&str)) {
    match schema {
        Value::Object(fields) => {
            if let Some(Value::String(target)) = fields.get("$ref") {
                found(target);
            }
            fields.values().for_each(|v| referenced(v, found));
        }
        Value::Array(items) => items.iter().for_each(|v| referenced(v, found)),
        _ => {}
    }
}

/// Applies [`state_body_rules`] to `schema` and the schemas written inside it.
fn tighten(schema: &mut Value) {
    let Value::Object(fields) = schema else { return };
    let is = |fields: &serde_json::Map<String, Value>, kind: &str| match &fields.get("type") {
        Some(Value::String(one)) => one == kind,
        Some(Value::Array(many)) => many.iter().any(|t| t == kind),
        _ => false,
    };
    if fields.contains_key("properties") {
        fields.entry("additionalProperties").or_insert(Value::Bool(false));
    }
    let constrained = ["enum", "format", "pattern"].iter().any(|key| fields.contains_key(*key));
    if is(fields, "string") && !constrained {
        fields.insert("pattern".into(), Value::String(text::pattern(true)));
    }
    for (key, value) in fields.iter_mut() {
        match key.as_str() {
            "properties" => {
                value.as_object_mut().into_iter().flatten().for_each(|(_, v)| tighten(v))
            }
            "items" => tighten(value),
            "oneOf" | "anyOf" | "allOf" => {
                value.as_array_mut().into_iter().flatten().for_each(tighten)
            }
            _ => {}
        }
    }
}

/// Serves the document.
pub async fn openapi_json() -> Json<Value> {
    Json(document())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_reference_resolves() {
        let document = document();
        let mut found = Vec::new();
        referenced(&document, &mut |target| found.push(target.to_string()));
        assert!(!found.is_empty());
        for target in found {
            let pointer = target.strip_prefix('#').expect("a local reference");
            assert!(document.pointer(pointer).is_some(), "{target} is referenced but missing");
        }
    }

    #[test]
    fn operations_taking_input_document_400_and_secured_operations_401() {
        let document = document();
        let mut missing = Vec::new();
        for (path, item) in document["paths"].as_object().unwrap() {
            for (method, operation) in item.as_object().unwrap() {
                let responses = &operation["responses"];
                let takes_input =
                    operation["parameters"].as_array().is_some_and(|ps| !ps.is_empty())
                        || operation.get("requestBody").is_some();
                if takes_input && responses.get("400").is_none() {
                    missing.push(format!("{method} {path}: 400"));
                }
                if operation.get("security").is_some() && responses.get("401").is_none() {
                    missing.push(format!("{method} {path}: 401"));
                }
            }
        }
        assert!(missing.is_empty(), "undocumented answers: {missing:#?}");
    }

    /// Operation ids name one operation each (links and generated clients rely on it).
    #[test]
    fn operation_ids_are_unique() {
        let document = document();
        let mut ids: Vec<&str> = document["paths"]
            .as_object()
            .unwrap()
            .values()
            .flat_map(|item| item.as_object().unwrap().values())
            .map(|operation| operation["operationId"].as_str().expect("an operationId"))
            .collect();
        let count = ids.len();
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), count, "{ids:?}");
    }

    /// Every link names an operation and fills exactly its path parameters; a booking leads to
    /// the provider's answer, the changes and the reads of the session, and to its people.
    #[test]
    fn links_lead_to_operations_they_can_fill() {
        let document = document();
        let mut by_id = std::collections::BTreeMap::new();
        for item in document["paths"].as_object().unwrap().values() {
            for operation in item.as_object().unwrap().values() {
                by_id.insert(operation["operationId"].as_str().unwrap(), operation);
            }
        }
        let mut count = 0;
        for operation in by_id.values() {
            for answer in operation["responses"].as_object().unwrap().values() {
                for link in answer["links"].as_object().into_iter().flat_map(|l| l.values()) {
                    let target = by_id[link["operationId"].as_str().unwrap()];
                    let mut wanted: Vec<String> = target["parameters"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .filter(|p| p["in"] == "path")
                        .map(|p| format!("path.{}", p["name"].as_str().unwrap()))
                        .collect();
                    let mut given: Vec<String> =
                        link["parameters"].as_object().unwrap().keys().cloned().collect();
                    wanted.sort();
                    given.sort();
                    assert_eq!(given, wanted, "{link}");
                    count += 1;
                }
            }
        }
        let booked = &by_id["request_session"]["responses"]["201"]["links"];
        for id in ["confirm_session", "cancel", "reschedule", "get_session", "join_link"] {
            assert!(booked.get(id).is_some(), "no link from a booking to {id}: {booked}");
        }
        assert_eq!(booked["confirm_session"]["parameters"]["path.id"], "$response.body#/id");
        assert!(booked.get("get_messaging_session").is_none(), "{booked}");
        let registered = &by_id["put_client"]["responses"]["201"]["links"];
        let credits = &registered["client_credits"]["parameters"]["path.client_id"];
        assert_eq!(credits, "$request.path.client_id");
        assert!(count > 50, "{count} links");
    }

    /// Every request body refuses unknown fields and control characters, as the document says.
    #[test]
    fn request_bodies_state_what_the_api_refuses() {
        let document = document();
        let schemas = &document["components"]["schemas"];
        for name in ["BookingRequest", "Reschedule", "WeeklyHours", "Exception", "Hours"] {
            assert_eq!(schemas[name]["additionalProperties"], false, "{name}");
        }
        assert_eq!(
            schemas["RefundBody"]["properties"]["ledger_key"]["pattern"],
            text::pattern(true)
        );
        assert!(schemas["SessionSnapshot"].get("additionalProperties").is_none(), "an answer");
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
        let document = document();
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
        let document = document();
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
