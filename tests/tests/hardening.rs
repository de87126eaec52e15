//! Hostile and careless input (issue 12): every answer is in the error format, nothing panics,
//! and a request that answers an error has changed nothing.

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode as AxumStatus;
use chrono::{TimeDelta, Utc};
use livesessions_activities::storage::media_rooms;
use livesessions_domain::Role;
use livesessions_tests::{
    Backend, TestApp, TestOptions, eventually, on_both_databases, test_policy,
};
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::sync::{Arc, Mutex};

on_both_databases!(
    control_characters_are_refused_before_any_effect,
    emails_are_checked_before_anything_is_stored,
);

/// The status and JSON body (`Null` when there is none) of `request`, which must be answered:
/// a dropped connection (a panic in a handler) fails the test.
async fn answer(request: reqwest::RequestBuilder, what: &str) -> (StatusCode, Value) {
    let response = request.send().await.unwrap_or_else(|e| panic!("{what}: no answer: {e}"));
    let status = response.status();
    let text = response.text().await.unwrap_or_else(|e| panic!("{what}: no body: {e}"));
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

/// Asserts an error answer in the API's format with one of `statuses`.
fn assert_error(what: &str, (status, body): &(StatusCode, Value), statuses: &[StatusCode]) {
    assert!(statuses.contains(status), "{what}: {status} {body}");
    assert!(body["error"]["code"].is_string(), "{what}: {status} without the error format: {body}");
    assert!(body["error"]["message"].is_string(), "{what}: {status} {body}");
}

/// Extreme `X-Media-Timestamp` and `X-Media-Signature` values, and odd `/join/{token}` paths:
/// each is answered (`401`, or `400`/`404`), never a dropped connection.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn extreme_headers_and_path_parameters_are_answered() {
    let options =
        TestOptions { media_secret: Some("media-secret".into()), ..TestOptions::default() };
    let app = TestApp::spawn_with(Backend::Postgres, test_policy(), options).await;
    let timestamps = [
        i64::MIN.to_string(),
        i64::MAX.to_string(),
        (i64::MIN + 1).to_string(),
        "-1".into(),
        "0".into(),
        "99999999999999999999".into(),
        "+5".into(),
        "1e9".into(),
        "".into(),
        " ".into(),
        "١٢".into(),
    ];
    let signatures = ["", "v1=", "v1=00", &format!("v1={}", "f".repeat(4096))];
    for timestamp in &timestamps {
        for signature in signatures {
            let what = format!("timestamp {timestamp:?}, signature {:.12}", signature);
            let request = app
                .http
                .post(format!("{}/v1/media/events", app.address))
                .header("content-type", "application/json")
                .header("X-Media-Timestamp", timestamp.as_bytes())
                .header("X-Media-Signature", signature)
                .body("{}");
            let got = answer(request, &what).await;
            assert_error(&what, &got, &[StatusCode::UNAUTHORIZED]);
        }
    }
    let tokens = [
        "x".to_string(),
        "x".repeat(10_000),
        "%FF%FE".into(),
        "..%2F..%2Fetc".into(),
        "%E2%80%AE".into(),
        "-1".into(),
        "9223372036854775808".into(),
    ];
    for token in tokens {
        let what = format!("/join/{:.40}", token);
        let got = answer(app.http.get(format!("{}/join/{token}", app.address)), &what).await;
        assert_error(&what, &got, &[StatusCode::BAD_REQUEST, StatusCode::NOT_FOUND]);
    }
}

/// A stand-in for a hosted media provider that fails its first `PUT` after making the room (an
/// answer lost on the way back); it records every room id it was asked for.
#[derive(Clone, Default)]
struct FlakyHostedProvider {
    rooms: Arc<Mutex<Vec<String>>>,
}

async fn put_flaky_room(
    State(provider): State<FlakyHostedProvider>,
    axum::extract::Path(room): axum::extract::Path<String>,
) -> Result<axum::Json<Value>, AxumStatus> {
    let first = {
        let mut rooms = provider.rooms.lock().unwrap();
        rooms.push(room.clone());
        rooms.len() == 1
    };
    if first {
        return Err(AxumStatus::BAD_GATEWAY);
    }
    let url = |party: &str| format!("https://media.example/{room}/{party}");
    Ok(axum::Json(json!({"join_urls": {"client": url("client"), "provider": url("provider")}})))
}

/// The hosted adapter retried for one session asks the provider for one room, not one per try.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retried_hosted_room_is_the_same_room() {
    let stand_in = FlakyHostedProvider::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base_url = format!("http://{}/v1", listener.local_addr().unwrap());
    let router = Router::new()
        .route("/v1/rooms/{room}", axum::routing::put(put_flaky_room))
        .with_state(stand_in.clone());
    tokio::spawn(async move { axum::serve(listener, router).await });
    let options = TestOptions { hosted_media: Some(base_url), ..TestOptions::default() };
    let app = TestApp::spawn_with(Backend::Postgres, test_policy(), options).await;
    let (client, provider) = app.subscriber_and_therapist().await;
    let session = app.book_confirmed(client, provider, Utc::now() + TimeDelta::minutes(2)).await;
    let room = eventually("the room is opened on a retry", || async {
        media_rooms::room_of(&app.db, session.id)
            .await
            .map_err(|e| e.to_string())?
            .ok_or_else(|| "no room yet".to_string())
    })
    .await;
    let asked = stand_in.rooms.lock().unwrap().clone();
    assert!(asked.len() >= 2, "{asked:?}");
    assert!(asked.iter().all(|r| *r == room.to_string()), "one room, not {asked:?}");
}

/// NUL and other control characters in text fields answer `400` before anything is changed:
/// nothing is stored and the session's workflow is not asked.
async fn control_characters_are_refused_before_any_effect(backend: Backend) {
    let app = TestApp::spawn(backend, test_policy()).await;
    let service = app.service_token();
    let people = [
        (
            "clients",
            json!({"coverage": "subscription", "plan": "subscription-standard",
            "time_zone": "UTC", "email": "a@example.com", "display_name": "A\u{0}B"}),
        ),
        (
            "clients",
            json!({"coverage": "subscription", "plan": "subscription-standard",
            "time_zone": "UTC", "email": "a\u{0}@example.com", "display_name": "A"}),
        ),
        (
            "providers",
            json!({"specialty": "therapist", "time_zone": "UTC",
            "email": "p@example.com", "display_name": "Dr\u{7}"}),
        ),
    ];
    for (kind, body) in people {
        let path = format!("/v1/{kind}/{}", uuid::Uuid::new_v4());
        let got = app.call(reqwest::Method::PUT, &path, Some(&service), Some(body.clone())).await;
        assert_error(&format!("PUT {path} {body}"), &got, &[StatusCode::BAD_REQUEST]);
        let (status, _) = app.call(reqwest::Method::PUT, &path, Some(&service), None).await;
        assert_ne!(status, StatusCode::OK, "nothing was stored for {body}");
    }

    let (client, provider) = app.subscriber_and_therapist().await;
    let session = app.book(client, provider, Utc::now() + TimeDelta::days(2)).await;
    let path = format!("/v1/sessions/{}/cancel", session.id);
    let got =
        app.post(&path, &app.token(Role::Client, client), json!({"reason": "ill\u{0}"})).await;
    assert_error("a cancel reason with NUL", &got, &[StatusCode::BAD_REQUEST]);
    let (status, now) = app.get(&format!("/v1/sessions/{}", session.id), &service).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(now["state"], "requested", "the workflow was not asked: {now}");

    for token in ["%00", "a%00b"] {
        let what = format!("/join/{token}");
        let got = answer(app.http.get(format!("{}{what}", app.address)), &what).await;
        assert_error(&what, &got, &[StatusCode::BAD_REQUEST, StatusCode::NOT_FOUND]);
    }
    let finance = app.token(Role::Finance, "finance");
    let got = app.post("/v1/refunds", &finance, json!({"ledger_key": "k\u{0}"})).await;
    assert_error("a ledger key with NUL", &got, &[StatusCode::BAD_REQUEST, StatusCode::NOT_FOUND]);
}

/// A start beyond `policy.booking_horizon` is refused for a booking and for a reschedule, and
/// nothing is held.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_start_beyond_the_booking_horizon_is_refused() {
    let app = TestApp::spawn(Backend::Postgres, test_policy()).await;
    let (client, provider) = app.subscriber_and_therapist().await;
    let credits = app.credits(client).await;
    let far = Utc::now() + TimeDelta::days(181);
    let forever = "9999-12-31T10:00:00Z".parse().unwrap();
    for starts_at in [far, forever] {
        let got = app.request_session(client, provider, starts_at).await;
        assert_error("a booking too far ahead", &got, &[StatusCode::UNPROCESSABLE_ENTITY]);
        assert_eq!(got.1["error"]["code"], "booking_horizon_exceeded");
    }
    assert_eq!(app.credits(client).await, credits, "no credit is held");
    let session = app.book(client, provider, Utc::now() + TimeDelta::days(2)).await;
    let got = app.reschedule(&session, forever, true).await;
    assert_error("a reschedule too far ahead", &got, &[StatusCode::UNPROCESSABLE_ENTITY]);
    assert_eq!(got.1["error"]["code"], "booking_horizon_exceeded");
}

/// Bearer tokens: a small leeway past `exp`, `nbf` honoured, a maximum lifetime, a subject
/// required, no parser internals in the message, the scheme in any case. Authentication (`401`)
/// comes before the Idempotency-Key check (`400`), and the role check (`403`) before the body.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_are_checked_strictly_and_first() {
    let app = TestApp::spawn(Backend::Postgres, test_policy()).await;
    let client = app.new_client("subscription", "subscription-standard").await;
    let path = format!("/v1/clients/{client}/credits");
    let now = Utc::now().timestamp();
    let claims = |extra: Value| {
        let mut claims = json!({"sub": client, "role": "client", "iat": now, "exp": now + 600});
        claims.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        claims
    };
    let (status, body) = app.get(&path, &app.token_with(claims(json!({})))).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let refused = [
        ("expired 30 s ago", json!({"exp": now - 30})),
        ("not valid for an hour", json!({"nbf": now + 3600})),
        ("living 30 days", json!({"exp": now + 30 * 86_400})),
        (
            "issued in the future, living long",
            json!({"iat": now + 29 * 86_400, "exp": now + 30 * 86_400}),
        ),
        ("an empty subject", json!({"sub": ""})),
    ];
    for (what, extra) in refused {
        let got =
            app.call(reqwest::Method::GET, &path, Some(&app.token_with(claims(extra))), None).await;
        assert_error(what, &got, &[StatusCode::UNAUTHORIZED]);
    }
    let got = app.call(reqwest::Method::GET, &path, Some("not.a.jwt"), None).await;
    assert_error("garbage", &got, &[StatusCode::UNAUTHORIZED]);
    let message = got.1["error"]["message"].as_str().unwrap();
    for internal in ["InvalidToken", "Base64", "Json", "Error", "kind"] {
        assert!(!message.contains(internal), "parser internals in {message:?}");
    }

    let lower = format!("bearer {}", app.token(Role::Client, client));
    let request = app.http.get(format!("{}{path}", app.address)).header("authorization", lower);
    let (status, body) = answer(request, "lower-case bearer").await;
    assert_eq!(status, StatusCode::OK, "{body}");

    let request = app
        .http
        .post(format!("{}/v1/clients/{client}/credits/purchase", app.address))
        .header("idempotency-key", "")
        .json(&json!({}));
    let got = answer(request, "no token and a bad Idempotency-Key").await;
    assert_error("no token and a bad Idempotency-Key", &got, &[StatusCode::UNAUTHORIZED]);

    let finance = app.token(Role::Finance, "finance");
    let session = uuid::Uuid::new_v4();
    for (method, path) in [
        (reqwest::Method::PUT, format!("/v1/clients/{client}")),
        (reqwest::Method::PUT, format!("/v1/providers/{}/availability", uuid::Uuid::new_v4())),
        (reqwest::Method::POST, "/v1/sessions".to_string()),
        (reqwest::Method::POST, format!("/v1/sessions/{session}/cancel")),
        (reqwest::Method::POST, format!("/v1/sessions/{session}/reschedule")),
        (reqwest::Method::POST, "/v1/messaging-sessions".to_string()),
        (reqwest::Method::POST, "/v1/availability-requests".to_string()),
    ] {
        let what = format!("{method} {path} with a bad body as finance");
        let got = app.call(method, &path, Some(&finance), Some(json!({"nonsense": [1]}))).await;
        assert_error(&what, &got, &[StatusCode::FORBIDDEN]);
    }
    let client_token = app.token(Role::Client, client);
    let got =
        app.call(reqwest::Method::POST, "/v1/refunds", Some(&client_token), Some(json!(7))).await;
    assert_error("a client's refund with a bad body", &got, &[StatusCode::FORBIDDEN]);
}

/// A connection that sends half a request line, or nothing, is closed once
/// `http.header_read_timeout` (10 s by default) has passed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn half_open_connections_are_closed() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let app = TestApp::spawn(Backend::Postgres, test_policy()).await;
    let address = app.address.trim_start_matches("http://").to_string();
    let mut connections = Vec::new();
    for start in ["GET /hea", ""] {
        let mut stream = tokio::net::TcpStream::connect(&address).await.unwrap();
        stream.write_all(start.as_bytes()).await.unwrap();
        connections.push((start, stream));
    }
    for (start, mut stream) in connections {
        let mut rest = Vec::new();
        let closed =
            tokio::time::timeout(std::time::Duration::from_secs(15), stream.read_to_end(&mut rest))
                .await;
        assert!(closed.is_ok(), "a connection that sent {start:?} is still open after 15 s");
    }
}

/// An address that is not one answers `422 invalid_email` wherever people are registered, and
/// nothing is stored; a good one is kept with its domain in lower case.
async fn emails_are_checked_before_anything_is_stored(backend: Backend) {
    use livesessions_activities::storage::{clients, providers};
    use livesessions_domain::{ClientId, ProviderId};
    let app = TestApp::spawn(backend, test_policy()).await;
    let service = app.service_token();
    let client = |email: &str| {
        json!({"coverage": "subscription", "plan": "subscription-standard", "time_zone": "UTC",
               "email": email, "display_name": "A"})
    };
    let provider = |email: &str| json!({"specialty": "therapist", "time_zone": "UTC", "email": email, "display_name": "P"});
    for email in ["<script>alert(1)</script>@b.c", "a@b", "a b@example.com", "\"a\"@b.c", "a@b@c.d"]
    {
        let (client_id, provider_id) = (ClientId::random(), ProviderId::random());
        for (path, body) in [
            (format!("/v1/clients/{client_id}"), client(email)),
            (format!("/v1/providers/{provider_id}"), provider(email)),
        ] {
            let got = app.call(reqwest::Method::PUT, &path, Some(&service), Some(body)).await;
            assert_error(&format!("PUT {path} {email}"), &got, &[StatusCode::UNPROCESSABLE_ENTITY]);
            assert_eq!(got.1["error"]["code"], "invalid_email", "{email}");
        }
        assert_eq!(clients::get(&app.db, client_id).await.unwrap(), None, "{email}");
        assert_eq!(providers::get(&app.db, provider_id).await.unwrap(), None, "{email}");
    }
    let id = ClientId::random();
    let path = format!("/v1/clients/{id}");
    let got = app
        .call(reqwest::Method::PUT, &path, Some(&service), Some(client("Ann@Example.COM")))
        .await;
    assert_eq!(got.0, StatusCode::CREATED, "{}", got.1);
    assert_eq!(got.1["email"], "Ann@example.com");
    let stored = clients::get(&app.db, id).await.unwrap().unwrap();
    assert_eq!(stored.email.as_str(), "Ann@example.com");
}

/// Availability is bounded (20,000 identical exceptions are refused with `400`, as any list
/// longer than its `maxItems`), a date named twice or overlapping hours answer
/// `422 overlapping_availability`, and a refused availability leaves the kept one as it was.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn availability_is_bounded_and_refuses_overlaps() {
    let app = TestApp::spawn(Backend::Postgres, test_policy()).await;
    let provider = app.new_provider("therapist").await;
    let path = format!("/v1/providers/{provider}/availability");
    let token = app.token(Role::Provider, provider);
    let put = |body: Value| app.call(reqwest::Method::PUT, &path, Some(&token), Some(body));
    let kept = json!({"weekly": [{"day": "monday", "start": "09:00", "end": "12:00"}],
                      "exceptions": [{"date": "2026-12-24", "off": true, "hours": []}]});
    let (status, kept) = put(kept).await;
    assert_eq!(status, StatusCode::OK, "{kept}");

    let day_off = json!({"date": "2026-12-25", "off": true});
    let identical = json!({"weekly": [], "exceptions": vec![day_off.clone(); 20_000]});
    let got = put(identical).await;
    assert_error("20,000 identical exceptions", &got, &[StatusCode::BAD_REQUEST]);
    let hour = json!({"day": "tuesday", "start": "09:00", "end": "10:00"});
    let got = put(json!({"weekly": vec![hour; 71]})).await;
    assert_error("71 weekly entries", &got, &[StatusCode::BAD_REQUEST]);
    let overlapping = [
        json!({"weekly": [], "exceptions": [day_off.clone(), day_off]}),
        json!({"weekly": [{"day": "monday", "start": "09:00", "end": "12:00"},
                          {"day": "monday", "start": "11:00", "end": "13:00"}]}),
        json!({"weekly": [], "exceptions": [{"date": "2026-12-26",
               "hours": [{"start": "09:00", "end": "12:00"}, {"start": "09:00", "end": "12:00"}]}]}),
    ];
    for body in overlapping {
        let got = put(body.clone()).await;
        assert_error(&format!("{body}"), &got, &[StatusCode::UNPROCESSABLE_ENTITY]);
        assert_eq!(got.1["error"]["code"], "overlapping_availability", "{body}");
    }
    let (status, now) = app.get(&path, &token).await;
    assert_eq!((status, now), (StatusCode::OK, kept), "the refusals changed nothing");
}

/// What axum itself refuses is answered in the error format with its own status: an unknown
/// path `404`, a wrong method `405` (with `Allow`), a body that says it is not JSON `415`, a
/// body over the limit `413`, bad JSON, a bad path or query parameter `400`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn framework_rejections_answer_in_the_error_format() {
    let options =
        TestOptions { media_secret: Some("media-secret".into()), ..TestOptions::default() };
    let app = TestApp::spawn_with(Backend::Postgres, test_policy(), options).await;
    let service = app.service_token();
    let url = |path: &str| format!("{}{path}", app.address);
    // One byte over: the server reads all but that byte before it answers.
    let huge = vec![b' '; livesessions_api::extract::MAX_BODY_BYTES + 1];
    let cases = [
        ("an unknown path", app.http.get(url("/v1/nothing-here")), StatusCode::NOT_FOUND),
        ("an unknown path, no token", app.http.post(url("/nope")), StatusCode::NOT_FOUND),
        (
            "DELETE /v1/sessions",
            app.http.delete(url("/v1/sessions")),
            StatusCode::METHOD_NOT_ALLOWED,
        ),
        ("PATCH /healthz", app.http.patch(url("/healthz")), StatusCode::METHOD_NOT_ALLOWED),
        (
            "a text body",
            app.http.post(url("/v1/sessions")).header("content-type", "text/plain").body("hi"),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
        ),
        (
            "a body over the limit",
            app.http
                .post(url("/v1/sessions"))
                .header("content-type", "application/json")
                .body(huge.clone()),
            StatusCode::PAYLOAD_TOO_LARGE,
        ),
        (
            "a media event over the limit",
            app.http.post(url("/v1/media/events")).body(huge.clone()),
            StatusCode::PAYLOAD_TOO_LARGE,
        ),
        (
            "a body over the limit, with an Idempotency-Key",
            app.http
                .post(url("/v1/sessions"))
                .header("content-type", "application/json")
                .header("idempotency-key", "k")
                .body(huge),
            StatusCode::PAYLOAD_TOO_LARGE,
        ),
        (
            "JSON that does not parse",
            app.http
                .post(url("/v1/sessions"))
                .header("content-type", "application/json")
                .body("{\"a\":"),
            StatusCode::BAD_REQUEST,
        ),
        ("a path parameter", app.http.get(url("/v1/sessions/not-a-uuid")), StatusCode::BAD_REQUEST),
        ("a query parameter", app.http.get(url("/v1/sessions?limit=x")), StatusCode::BAD_REQUEST),
    ];
    for (what, request, status) in cases {
        let request = if what.contains("no token") || what.contains("media event") {
            request
        } else {
            request.bearer_auth(&service)
        };
        let response = request.send().await.unwrap_or_else(|e| panic!("{what}: no answer: {e}"));
        let allow = response.headers().get("allow").cloned();
        let got = (response.status(), response.json().await.unwrap_or(Value::Null));
        assert_error(what, &got, &[status]);
        if status == StatusCode::METHOD_NOT_ALLOWED {
            assert!(allow.is_some(), "{what}: no Allow header");
        }
    }
}
