//! The authorization matrix (issue 12): every operation of the router × every caller (no token
//! and each role) × an object of the caller's own and someone else's, against the real API.
//! The operations come from the OpenAPI document and from the router's source, so a route
//! added without a row here fails the test. Hidden objects answer `404`, forbidden actions
//! `403`, and nothing leaks: every refusal is the very answer (status, code and message) that
//! an object that does not exist gets.

use chrono::{TimeDelta, Utc};
use livesessions_domain::{ClientId, Party, ProviderId, Role, RoomId, SessionId};
use livesessions_tests::{Backend, TestApp, TestOptions, test_policy};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::sync::atomic::{AtomicI64, Ordering};

/// The callers, in the order of a row's columns.
const CALLERS: [Option<Role>; 6] = [
    None,
    Some(Role::Client),
    Some(Role::Provider),
    Some(Role::Service),
    Some(Role::Operator),
    Some(Role::Finance),
];

/// What each caller gets, in the order of [`CALLERS`]: two letters, for the caller's own object
/// and for someone else's. `A` admitted (an answer about the object: `2xx`, `3xx`, `402`, `409`
/// or `422`), `F` forbidden (`403`), `H` hidden (`404`), `U` unauthenticated (`401`). The
/// client and the provider are those of world A; for the other roles and for the public
/// operations, "own" is world A's object and "foreign" world B's. Rows run in this order:
/// reads first, then the room's end, then changes.
const MATRIX: &[(&str, [&str; 6])] = &[
    ("GET /healthz", ["AA", "AA", "AA", "AA", "AA", "AA"]),
    ("GET /openapi.json", ["AA", "AA", "AA", "AA", "AA", "AA"]),
    // Route templates and counts only, for the scraper (README "Operating").
    ("GET /metrics", ["AA", "AA", "AA", "AA", "AA", "AA"]),
    // The link itself is the capability: whoever holds one reaches its session.
    ("GET /join/{token}", ["AA", "AA", "AA", "AA", "AA", "AA"]),
    // World A's join token: it opens A's room only.
    ("GET /media/rooms/{room_id}", ["AH", "AH", "AH", "AH", "AH", "AH"]),
    // Signed by the media service, which speaks for every room.
    ("POST /v1/media/events", ["AA", "AA", "AA", "AA", "AA", "AA"]),
    ("GET /v1/sessions", ["UU", "AF", "AF", "AA", "AA", "FF"]),
    ("GET /v1/sessions/{id}", ["UU", "AH", "AH", "AA", "AA", "FF"]),
    ("GET /v1/sessions/{id}/next-estimate", ["UU", "AH", "AH", "AA", "AA", "FF"]),
    ("GET /v1/sessions/{id}/join", ["UU", "AH", "AH", "FF", "FF", "FF"]),
    ("GET /v1/messaging-sessions/{id}", ["UU", "AH", "AH", "AA", "AA", "FF"]),
    ("GET /v1/rooms/{client_id}/messages", ["UU", "AH", "AH", "AA", "FF", "FF"]),
    ("GET /v1/clients/{client_id}/credits", ["UU", "AH", "FF", "AA", "FF", "AA"]),
    ("GET /v1/clients/{client_id}/fees", ["UU", "AH", "FF", "AA", "AA", "AA"]),
    ("GET /v1/fees/{fee_key}", ["UU", "AH", "FF", "AA", "AA", "AA"]),
    ("GET /v1/providers/{provider_id}/availability", ["UU", "FF", "AF", "AA", "AA", "FF"]),
    ("GET /v1/providers/{provider_id}/slots", ["UU", "AA", "FF", "AA", "FF", "FF"]),
    ("GET /v1/providers/{provider_id}/availability-requests", ["UU", "FF", "AF", "AA", "AA", "FF"]),
    ("GET /v1/ledger", ["UU", "FF", "FF", "FF", "AA", "AA"]),
    ("GET /v1/reconciliation", ["UU", "FF", "FF", "FF", "FF", "AA"]),
    ("GET /v1/audit", ["UU", "FF", "FF", "FF", "AA", "AA"]),
    // Before the changes, while the join token of world A's session still stands.
    ("POST /media/rooms/{room_id}/end", ["AH", "AH", "AH", "AH", "AH", "AH"]),
    ("PUT /v1/clients/{client_id}", ["UU", "FF", "FF", "AA", "AA", "FF"]),
    ("PUT /v1/providers/{provider_id}", ["UU", "FF", "FF", "AA", "AA", "FF"]),
    ("PUT /v1/providers/{provider_id}/availability", ["UU", "FF", "AF", "AA", "FF", "FF"]),
    ("POST /v1/availability-requests", ["UU", "AF", "FF", "AA", "FF", "FF"]),
    ("POST /v1/clients/{client_id}/credits/purchase", ["UU", "AH", "FF", "AA", "FF", "FF"]),
    ("POST /v1/clients/{client_id}/credits/grant", ["UU", "FF", "FF", "FF", "AA", "FF"]),
    ("POST /v1/clients/{client_id}/credits/remove", ["UU", "FF", "FF", "FF", "AA", "FF"]),
    ("POST /v1/refunds", ["UU", "FF", "FF", "FF", "AA", "AA"]),
    ("POST /v1/fees/{fee_key}/waive", ["UU", "FF", "FF", "FF", "AA", "AA"]),
    ("POST /v1/sessions", ["UU", "AF", "FF", "AA", "FF", "FF"]),
    ("POST /v1/messaging-sessions", ["UU", "AF", "FF", "AA", "FF", "FF"]),
    ("POST /v1/messaging-sessions/{id}/cancel", ["UU", "AH", "AH", "AA", "AA", "FF"]),
    ("POST /v1/messaging-sessions/{id}/switch-to-live", ["UU", "AH", "AH", "AA", "AA", "FF"]),
    ("POST /v1/sessions/{id}/confirm", ["UU", "FF", "AH", "AA", "FF", "FF"]),
    ("POST /v1/sessions/{id}/decline", ["UU", "FF", "AH", "AA", "FF", "FF"]),
    ("POST /v1/sessions/{id}/authorize-next", ["UU", "AH", "FF", "AA", "FF", "FF"]),
    ("POST /v1/sessions/{id}/reschedule", ["UU", "AH", "FF", "AA", "FF", "FF"]),
    ("POST /v1/sessions/{id}/provider-unavailable", ["UU", "FF", "AH", "AA", "FF", "FF"]),
    ("POST /v1/sessions/{id}/cancel", ["UU", "AH", "AH", "AA", "FF", "FF"]),
    // Operators' repairs, last: they end the sessions.
    ("POST /v1/sessions/{id}/operator/resend-notice", ["UU", "FF", "FF", "FF", "AA", "FF"]),
    ("POST /v1/sessions/{id}/operator/end", ["UU", "FF", "FF", "FF", "AA", "FF"]),
    ("POST /v1/sessions/{id}/operator/cancel", ["UU", "FF", "FF", "FF", "AA", "FF"]),
];

/// The operations the router serves, read from its source (`api/src/lib.rs`): each
/// `.route("<path>", …)` with the methods named in it.
fn router_operations() -> BTreeSet<String> {
    let source = std::fs::read_to_string(livesessions_tests::crate_dir().join("../api/src/lib.rs"))
        .expect("the router's source");
    let mut operations = BTreeSet::new();
    for route in source.split(".route(").skip(1) {
        let path = route.split('"').nth(1).expect("a route's path");
        let handlers = route.split(".fallback(").next().unwrap_or(route);
        let handlers = &handlers[path.len() + 2..];
        for method in ["get", "put", "post", "delete", "patch"] {
            let named = handlers.match_indices(&format!("{method}(")).any(|(at, _)| {
                at == 0 || matches!(handlers.as_bytes()[at - 1], b' ' | b'.' | b'(' | b'\n' | b',')
            });
            if named {
                operations.insert(format!("{} {path}", method.to_uppercase()));
            }
        }
    }
    operations
}

/// The operations of the OpenAPI document the API serves, and whether each needs a bearer token.
async fn documented_operations(app: &TestApp) -> Vec<(String, bool)> {
    let (status, document) = app.call(Method::GET, "/openapi.json", None, None).await;
    assert_eq!(status, StatusCode::OK);
    let mut operations = Vec::new();
    for (path, item) in document["paths"].as_object().expect("paths") {
        for (method, operation) in item.as_object().expect("operations") {
            let secured = operation.get("security").is_some();
            operations.push((format!("{} {path}", method.to_uppercase()), secured));
        }
    }
    operations
}

/// The objects of one person's world: a client and their provider, a confirmed session between
/// them with its room and the client's join token, a messaging session, a credit purchase, and
/// a fee the client owes (recorded as outstanding; its collection starts when it is waived).
#[derive(Debug, Clone)]
struct World {
    client: ClientId,
    provider: ProviderId,
    session: SessionId,
    messaging: SessionId,
    room: RoomId,
    join_token: String,
    ledger_key: String,
    fee_key: String,
}

impl World {
    async fn new(app: &TestApp) -> Self {
        let service = app.service_token();
        let (client, provider) = app.subscriber_and_therapist().await;
        let session = app.book_confirmed(client, provider, Utc::now() + TimeDelta::days(3)).await;
        let (status, messaging) = app
            .post(
                "/v1/messaging-sessions",
                &service,
                json!({"client_id": client, "provider_id": provider}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{messaging}");
        let path = format!("/v1/clients/{client}/credits/purchase");
        let key = uuid::Uuid::new_v4().to_string();
        let (status, _, body) = app.post_with_key(&path, &service, json!({}), &key).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        let finance = app.token(Role::Finance, "finance");
        let (status, ledger) = app.get(&format!("/v1/ledger?client_id={client}"), &finance).await;
        assert_eq!(status, StatusCode::OK, "{ledger}");
        let ledger_key = ledger["entries"]
            .as_array()
            .expect("entries")
            .iter()
            .find(|entry| entry["kind"] == "credit_purchase")
            .and_then(|entry| entry["key"].as_str())
            .expect("the purchase's ledger key")
            .to_string();
        let (room, join_token) = app.room_and_join_token(session.id, Party::Client).await;
        let fee_key = app.owe_fee(&session).await;
        Self {
            client,
            provider,
            session: session.id,
            messaging: serde_json::from_value(messaging["id"].clone()).expect("an id"),
            room,
            join_token,
            ledger_key,
            fee_key,
        }
    }

    /// Objects that do not exist.
    fn ghost() -> Self {
        Self {
            client: ClientId::random(),
            provider: ProviderId::random(),
            session: SessionId::random(),
            messaging: SessionId::random(),
            room: RoomId::of_session(SessionId::random()),
            join_token: uuid::Uuid::new_v4().simple().to_string(),
            ledger_key: format!("client-{}:credit_purchase", uuid::Uuid::new_v4()),
            fee_key: format!("live-session-{}:no_show_fee:r0", uuid::Uuid::new_v4()),
        }
    }
}

/// A later time each call, so bookings and reschedules do not collide with each other.
fn next_start() -> chrono::DateTime<Utc> {
    static HOURS: AtomicI64 = AtomicI64::new(0);
    Utc::now() + TimeDelta::days(10) + TimeDelta::hours(HOURS.fetch_add(1, Ordering::Relaxed))
}

/// The media service's secret in this test.
const MEDIA_SECRET: &str = "media-secret";

/// One request of `operation` about `world`'s object, as `role` would send it (`own` is world A,
/// whose token the public room operations present): its status and body.
async fn send(
    app: &TestApp,
    operation: &str,
    role: Option<Role>,
    world: &World,
    own: &World,
) -> (StatusCode, Value) {
    let (method, template) = operation.split_once(' ').expect("METHOD /path");
    let method: Method = method.parse().expect("a method");
    let path = template
        .replace("{client_id}", &world.client.to_string())
        .replace("{provider_id}", &world.provider.to_string())
        .replace("{token}", &world.join_token)
        .replace("{room_id}", &world.room.to_string())
        .replace("{fee_key}", &world.fee_key)
        .replace(
            "{id}",
            &if template.starts_with("/v1/messaging-sessions/") {
                world.messaging
            } else {
                world.session
            }
            .to_string(),
        );
    let (client, provider) = (world.client, world.provider);
    let now = Utc::now();
    let (query, body) = match operation {
        "GET /v1/sessions" => (format!("?client_id={client}&provider_id={provider}"), None),
        "GET /v1/providers/{provider_id}/slots" => {
            let (from, to) = (now.format("%FT%TZ"), (now + TimeDelta::days(1)).format("%FT%TZ"));
            (format!("?from={from}&to={to}&duration_minutes=30"), None)
        }
        "GET /v1/ledger" => (format!("?client_id={client}"), None),
        "GET /v1/reconciliation" => (format!("?date={}", now.date_naive()), None),
        "GET /media/rooms/{room_id}" | "POST /media/rooms/{room_id}/end" => {
            (format!("?token={}", own.join_token), None)
        }
        "PUT /v1/clients/{client_id}" => (
            String::new(),
            Some(json!({"coverage": "subscription", "plan": "subscription-standard",
                        "time_zone": "America/New_York", "email": "client@example.com",
                        "display_name": "A. Client"})),
        ),
        "PUT /v1/providers/{provider_id}" => (
            String::new(),
            Some(json!({"specialty": "therapist", "time_zone": "Europe/London",
                        "email": "provider@example.com", "display_name": "Dr. Provider"})),
        ),
        "PUT /v1/providers/{provider_id}/availability" => {
            (String::new(), Some(json!({"weekly": []})))
        }
        "POST /v1/availability-requests" => (
            String::new(),
            Some(json!({"client_id": client, "provider_id": provider, "windows":
                        [{"starts_at": now + TimeDelta::days(1), "ends_at": now + TimeDelta::days(2)}]})),
        ),
        "POST /v1/refunds" => (String::new(), Some(json!({"ledger_key": world.ledger_key}))),
        "POST /v1/fees/{fee_key}/waive"
        | "POST /v1/clients/{client_id}/credits/grant"
        | "POST /v1/clients/{client_id}/credits/remove" => {
            (String::new(), Some(json!({"reason": "goodwill"})))
        }
        "POST /v1/sessions/{id}/operator/end" => {
            (String::new(), Some(json!({"outcome": "cancelled", "reason": "stuck"})))
        }
        "POST /v1/sessions/{id}/operator/cancel" => (
            String::new(),
            Some(json!({"on_behalf_of": "client", "reason": "asked by phone", "fee": "waive"})),
        ),
        "POST /v1/sessions" => (
            String::new(),
            Some(json!({"client_id": client, "provider_id": provider, "service": "therapy",
                        "modality": "video", "duration_minutes": 30, "starts_at": next_start(),
                        "time_zone": "America/New_York", "accept_cancellation_policy": true})),
        ),
        "POST /v1/messaging-sessions" => {
            (String::new(), Some(json!({"client_id": client, "provider_id": provider})))
        }
        "POST /v1/sessions/{id}/reschedule" => (
            String::new(),
            Some(json!({"starts_at": next_start(), "accept_cancellation_policy": true})),
        ),
        "POST /v1/sessions/{id}/cancel" if role == Some(Role::Service) => {
            (String::new(), Some(json!({"on_behalf_of": "client"})))
        }
        "POST /v1/sessions/{id}/cancel" | "POST /v1/clients/{client_id}/credits/purchase" => {
            (String::new(), Some(json!({})))
        }
        "POST /v1/media/events" => return media_event(app, role, world).await,
        _ => (String::new(), None),
    };
    let token = role.map(|role| match role {
        Role::Client => app.token(role, own.client),
        Role::Provider => app.token(role, own.provider),
        other => app.token(other, format!("{other}-caller")),
    });
    app.call(method, &format!("{path}{query}"), token.as_deref(), body).await
}

/// A signed `participant_left` event about `world`'s room (which changes nothing), sent with
/// `role`'s bearer token, which the media service's endpoint ignores.
async fn media_event(app: &TestApp, role: Option<Role>, world: &World) -> (StatusCode, Value) {
    let body =
        json!({"id": uuid::Uuid::new_v4(), "type": "participant_left", "room_id": world.room,
                      "party": "client", "occurred_at": Utc::now()})
        .to_string();
    let timestamp = Utc::now().timestamp();
    let signature =
        livesessions_activities::signature::sign(MEDIA_SECRET, timestamp, body.as_bytes());
    let mut request = app
        .http
        .post(format!("{}/v1/media/events", app.address))
        .header("content-type", "application/json")
        .header("X-Media-Timestamp", timestamp.to_string())
        .header("X-Media-Signature", signature)
        .body(body);
    if let Some(role) = role {
        request = request.bearer_auth(app.token(role, "someone"));
    }
    let response = request.send().await.expect("the API answers");
    (response.status(), response.json().await.unwrap_or(Value::Null))
}

/// Whether `status` is an answer about the object rather than a refusal to say.
fn admitted(status: StatusCode) -> bool {
    status.is_success()
        || status.is_redirection()
        || [StatusCode::PAYMENT_REQUIRED, StatusCode::CONFLICT, StatusCode::UNPROCESSABLE_ENTITY]
            .contains(&status)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_every_role_own_and_foreign_objects() {
    let options = TestOptions { media_secret: Some(MEDIA_SECRET.into()), ..TestOptions::default() };
    let app = TestApp::spawn_with(Backend::Postgres, test_policy(), options).await;

    // The matrix covers exactly what the router serves and the document describes.
    let rows: BTreeSet<String> =
        MATRIX.iter().map(|(operation, _)| operation.to_string()).collect();
    assert_eq!(rows.len(), MATRIX.len(), "an operation has two rows");
    assert_eq!(router_operations(), rows, "the router's operations and the matrix's rows differ");
    let documented = documented_operations(&app).await;
    let in_document: BTreeSet<String> = documented.iter().map(|(op, _)| op.clone()).collect();
    let undocumented: Vec<&String> = rows.difference(&in_document).collect();
    assert_eq!(undocumented, ["GET /openapi.json"], "operations missing from the document");
    for (operation, secured) in &documented {
        let (_, row) = MATRIX.iter().find(|(op, _)| op == operation).unwrap();
        assert_eq!(row[0] == "UU", *secured, "{operation}: a bearer token is needed, or not");
    }

    let (own, foreign, ghost) = (World::new(&app).await, World::new(&app).await, World::ghost());
    let mut failures = Vec::new();
    let mut cells = 0;
    for (operation, row) in MATRIX {
        for (role, expected) in CALLERS.iter().zip(row) {
            for (world, letter) in [&own, &foreign].into_iter().zip(expected.chars()) {
                cells += 1;
                let who = role.map_or("no token".to_string(), |r| r.to_string());
                let whose = if std::ptr::eq(world, &own) { "own" } else { "foreign" };
                let cell = format!("{operation} as {who}, {whose} object");
                let (status, body) = send(&app, operation, *role, world, &own).await;
                let refused = match letter {
                    'A' => None,
                    'F' => Some(StatusCode::FORBIDDEN),
                    'H' => Some(StatusCode::NOT_FOUND),
                    'U' => Some(StatusCode::UNAUTHORIZED),
                    other => panic!("{cell}: no letter {other}"),
                };
                let Some(refused) = refused else {
                    if !admitted(status) {
                        failures.push(format!("{cell}: expected an answer, got {status} {body}"));
                    }
                    continue;
                };
                // A refusal never depends on the object existing: it is the answer of a ghost.
                let (ghost_status, ghost_body) = send(&app, operation, *role, &ghost, &own).await;
                if status != refused || !body["error"]["code"].is_string() {
                    failures.push(format!("{cell}: expected {refused}, got {status} {body}"));
                } else if (status, &body) != (ghost_status, &ghost_body) {
                    failures.push(format!(
                        "{cell}: {status} {body} differs from the answer about nothing, \
                         {ghost_status} {ghost_body}"
                    ));
                }
            }
        }
    }
    println!("authorization matrix: {cells} cells");
    assert_eq!(cells, MATRIX.len() * CALLERS.len() * 2);
    assert!(
        failures.is_empty(),
        "{} of {cells} cells fail:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
