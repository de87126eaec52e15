//! The walking skeleton, end to end on both databases: one live session from request to
//! completion, the provider declining, the request expiring, and the API's auth and error rules.

use chrono::{TimeDelta, Utc};
use livesessions_domain::Party;
use livesessions_domain::{
    Coverage, CreditStatus, Joined, Modality, Outcome, Role, Service, SessionId, SessionSnapshot,
    SessionState, StateChange, TimeZoneName,
};
use livesessions_tests::{Backend, TestApp, on_both_databases, test_policy};
use livesessions_workflows::Join;
use livesessions_workflows::activities::{HoldOutcome, HoldRequest};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use std::time::Duration;

on_both_databases!(
    main_path_reaches_completed,
    decline_releases_the_credit,
    expiry_releases_the_credit_and_tells_the_client,
    no_credit_is_refused_with_402,
    requests_without_a_valid_token_get_401,
    another_clients_session_is_404,
    malformed_bodies_get_400_in_the_error_format,
    a_retried_hold_answers_what_the_first_attempt_committed,
    a_room_ending_with_the_joins_still_completes,
);

fn session_id(body: &Value) -> SessionId {
    serde_json::from_value(body["id"].clone()).expect("a session id")
}

fn assert_error(body: &Value, code: &str) {
    assert_eq!(body["error"]["code"], code, "{body}");
    assert!(body["error"]["message"].as_str().is_some_and(|m| !m.is_empty()), "{body}");
}

/// `POST /v1/sessions/{id}/{action}` (`confirm`, `decline`) with an empty body, as `role` `person`.
async fn answer(
    app: &TestApp,
    id: SessionId,
    action: &str,
    role: Role,
    person: impl ToString,
) -> (StatusCode, Value) {
    app.post(&format!("/v1/sessions/{id}/{action}"), &app.token(role, person), json!({})).await
}

async fn main_path_reaches_completed(backend: Backend) {
    let app = TestApp::spawn(backend, test_policy()).await;
    let (client, provider) = app.subscriber_and_therapist().await;
    let (available_before, _) = app.credits(client).await;

    let (status, body) =
        app.request_session(client, provider, Utc::now() + TimeDelta::minutes(1)).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["state"], "requested");
    assert_eq!(body["credit"]["status"], "reserved");
    let id = session_id(&body);
    assert_eq!(body["workflow_id"], format!("live-session-{id}"));
    assert_eq!(app.credits(client).await, (available_before - 1, 1));

    let provider_token = app.token(Role::Provider, provider);
    let (status, body) =
        app.post(&format!("/v1/sessions/{id}/confirm"), &provider_token, json!({})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["state"], "confirmed");

    // Each person fetches their own join link and follows it into the room.
    let mut room_page = String::new();
    for (role, person) in
        [(Role::Client, client.to_string()), (Role::Provider, provider.to_string())]
    {
        let (status, link) =
            app.get(&format!("/v1/sessions/{id}/join"), &app.token(role, &person)).await;
        assert_eq!(status, StatusCode::OK, "{link}");
        let url = link["url"].as_str().expect("a join url");
        let response = app.http.get(url).send().await.expect("the join link answers");
        assert_eq!(response.status(), StatusCode::SEE_OTHER);
        room_page = response.headers()["location"].to_str().unwrap().to_string();
    }
    // The media room ends right away, perhaps before the workflow has acted on the joins: the
    // session still passes through in_progress and completes, and the credit is consumed.
    let (path, query) = room_page.split_once('?').expect("a token in the room page link");
    let (status, _) = app.call(Method::POST, &format!("{path}/end?{query}"), None, None).await;
    assert_eq!(status, StatusCode::OK);
    let session = app.wait_for_state(id, SessionState::Completed).await;
    assert_eq!(session.outcome, Some(Outcome::RoomEnded));
    assert!(session.joined.client.is_some() && session.joined.provider.is_some());
    assert_eq!(session.credit.map(|c| c.status), Some(CreditStatus::Consumed));
    let states: Vec<SessionState> = session.history.iter().map(|change| change.state).collect();
    assert_eq!(
        states,
        [
            SessionState::Requested,
            SessionState::Confirmed,
            SessionState::InProgress,
            SessionState::Completed
        ]
    );
    assert_eq!(app.credits(client).await, (available_before - 1, 0));
    // Booked inside both reminder offsets: one reminder went out at once, with the join link.
    assert_eq!(app.room_message_kinds(client).await, ["session_confirmed", "session_reminder"]);

    // The workflow's own view agrees with the read model, once that has its last version.
    let live = app.sessions.snapshot(id).await.expect("the workflow answers its snapshot query");
    assert_eq!(live.state, SessionState::Completed);
    let read = app.wait_for(id, "the workflow's last version", |s| s.version == live.version).await;
    assert_eq!(read, live);
}

async fn decline_releases_the_credit(backend: Backend) {
    let app = TestApp::spawn(backend, test_policy()).await;
    let (client, provider) = app.subscriber_and_therapist().await;
    let (available_before, _) = app.credits(client).await;
    let (status, body) =
        app.request_session(client, provider, Utc::now() + TimeDelta::hours(3)).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let id = session_id(&body);

    // The client cannot answer for the provider, and another provider cannot see the request.
    let (status, body) = answer(&app, id, "decline", Role::Client, client).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    let stranger = app.new_provider("therapist").await;
    let (status, body) = answer(&app, id, "decline", Role::Provider, stranger).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");

    let (status, body) = answer(&app, id, "decline", Role::Provider, provider).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["state"], "declined");
    assert_eq!(body["outcome"], "provider_declined");
    assert_eq!(body["credit"]["status"], "released");
    let session = app.wait_for_state(id, SessionState::Declined).await;
    assert_eq!(session.outcome, Some(Outcome::ProviderDeclined));
    assert_eq!(app.credits(client).await, (available_before, 0));
    app.check_histories("decline_releases_the_credit").await;
    assert_eq!(app.room_message_kinds(client).await, ["session_declined"]);
    let room = format!("/v1/rooms/{client}/messages");
    let (status, body) = app.get(&room, &app.token(Role::Provider, provider)).await;
    assert_eq!(status, StatusCode::OK, "the client's provider reads their room: {body}");
    let (status, body) = app.get(&room, &app.token(Role::Provider, stranger)).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "another provider does not: {body}");

    // A second answer is refused and changes nothing.
    let (status, body) = answer(&app, id, "confirm", Role::Provider, provider).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_error(&body, "not_awaiting_confirmation");
    assert_eq!(app.wait_for_state(id, SessionState::Declined).await.version, session.version);
}

async fn expiry_releases_the_credit_and_tells_the_client(backend: Backend) {
    let policy =
        livesessions_domain::Policy { confirm_window: Duration::from_secs(2), ..test_policy() };
    let app = TestApp::spawn(backend, policy).await;
    let client = app.new_client("eap", "eap-standard").await;
    let provider = app.new_provider("therapist").await;
    let (available_before, _) = app.credits(client).await;
    let (status, body) =
        app.request_session(client, provider, Utc::now() + TimeDelta::days(2)).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let id = session_id(&body);
    let requested_at: chrono::DateTime<Utc> =
        serde_json::from_value(body["history"][0]["at"].clone()).unwrap();
    let confirm_by: chrono::DateTime<Utc> =
        serde_json::from_value(body["confirm_by"].clone()).unwrap();
    assert_eq!(confirm_by - requested_at, TimeDelta::seconds(2));

    let session = app.wait_for_state(id, SessionState::Expired).await;
    assert_eq!(session.outcome, Some(Outcome::ConfirmationWindowClosed));
    assert_eq!(session.credit.map(|c| c.status), Some(CreditStatus::Released));
    assert_eq!(app.credits(client).await, (available_before, 0));
    let (status, body) =
        app.get(&format!("/v1/rooms/{client}/messages"), &app.token(Role::Client, client)).await;
    assert_eq!(status, StatusCode::OK);
    let messages = body["messages"].as_array().unwrap();
    assert_eq!(messages.len(), 1, "{body}");
    assert_eq!(messages[0]["kind"], "session_expired");
    assert!(messages[0]["body"].as_str().unwrap().contains("pick another time"), "{body}");

    let (status, body) = answer(&app, id, "confirm", Role::Provider, provider).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_error(&body, "not_awaiting_confirmation");
}

async fn no_credit_is_refused_with_402(backend: Backend) {
    let app = TestApp::spawn(backend, test_policy()).await;
    let (client, provider) = app.subscriber_and_therapist().await;
    let (available, _) = app.credits(client).await;
    for hour in 0..available {
        let (status, body) =
            app.request_session(client, provider, Utc::now() + TimeDelta::hours(3 + hour)).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }
    let (status, body) =
        app.request_session(client, provider, Utc::now() + TimeDelta::days(1)).await;
    assert_eq!(status, StatusCode::PAYMENT_REQUIRED, "{body}");
    assert_error(&body, "no_credit");
    assert_eq!(app.credits(client).await, (0, available));
    let (_, list) = app.get("/v1/sessions", &app.token(Role::Client, client)).await;
    assert_eq!(
        list["sessions"].as_array().unwrap().len() as i64,
        available,
        "a refused booking leaves no session"
    );
}

async fn requests_without_a_valid_token_get_401(backend: Backend) {
    let app = TestApp::spawn(backend, test_policy()).await;
    let (status, body) = app.call(Method::GET, "/v1/sessions", None, None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_error(&body, "unauthorized");
    let (status, body) = app.get("/v1/sessions", "not-a-jwt").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_error(&body, "unauthorized");
    let foreign = livesessions_api::JwtKeys::from_secret("someone else's secret")
        .mint("x", Role::Service, Duration::from_secs(60))
        .expect("a secret mints");
    let (status, body) = app.get("/v1/sessions", &foreign).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_error(&body, "unauthorized");
    let (status, _) = app.call(Method::GET, "/healthz", None, None).await;
    assert_eq!(status, StatusCode::OK, "health needs no token");
    let (status, body) = app.call(Method::GET, "/openapi.json", None, None).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        body["paths"]["/v1/sessions"]["post"].is_object(),
        "the OpenAPI document describes the API"
    );
}

async fn another_clients_session_is_404(backend: Backend) {
    let app = TestApp::spawn(backend, test_policy()).await;
    let client = app.new_client("subscription", "subscription-standard").await;
    let other = app.new_client("subscription", "subscription-standard").await;
    let provider = app.new_provider("therapist").await;
    let (status, body) =
        app.request_session(client, provider, Utc::now() + TimeDelta::hours(5)).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let id = session_id(&body);

    let (status, body) =
        app.get(&format!("/v1/sessions/{id}"), &app.token(Role::Client, client)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) =
        app.get(&format!("/v1/sessions/{id}"), &app.token(Role::Client, other)).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_error(&body, "not_found");
    let (status, _) = app
        .get(&format!("/v1/sessions/{}", SessionId::random()), &app.token(Role::Client, other))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "a missing session and a hidden one look the same");
    let (status, body) =
        app.get(&format!("/v1/rooms/{client}/messages"), &app.token(Role::Client, other)).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    let (_, list) = app.get("/v1/sessions", &app.token(Role::Client, other)).await;
    assert_eq!(list["sessions"], json!([]), "a client lists only their own sessions");
    let (status, _) =
        app.get(&format!("/v1/sessions?client_id={client}"), &app.token(Role::Client, other)).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) =
        app.get(&format!("/v1/sessions/{id}"), &app.token(Role::Finance, "finance")).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "finance reads money, not sessions");
    let (status, body) =
        app.request_session(other, provider, Utc::now() + TimeDelta::hours(6)).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (status, _) = app.post("/v1/sessions", &app.token(Role::Client, other), json!({
        "client_id": client, "provider_id": provider, "service": "therapy", "modality": "video", "duration_minutes": 30,
        "starts_at": Utc::now() + TimeDelta::hours(7), "time_zone": "UTC", "accept_cancellation_policy": true})).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "a client books only for themselves");
}

async fn malformed_bodies_get_400_in_the_error_format(backend: Backend) {
    let app = TestApp::spawn(backend, test_policy()).await;
    let client = app.new_client("subscription", "subscription-standard").await;
    let provider = app.new_provider("psychiatrist").await;
    let token = app.token(Role::Client, client);
    let good = json!({"client_id": client, "provider_id": provider, "service": "psychiatry", "modality": "video",
                      "duration_minutes": 30, "starts_at": Utc::now() + TimeDelta::hours(3), "time_zone": "America/New_York",
                      "accept_cancellation_policy": true});
    let with = |key: &str, value: Value| {
        let mut body = good.clone();
        body[key] = value;
        body
    };
    let cases = [
        with("modality", json!("hologram")),
        with("starts_at", json!("next tuesday")),
        with("time_zone", json!("Mars/Olympus")),
        with("client_id", json!("42")),
        with("surprise", json!(true)),
        json!({"client_id": client}),
    ];
    for body in cases {
        let (status, answer) = app.post("/v1/sessions", &token, body.clone()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body} -> {answer}");
        assert_error(&answer, "malformed_request");
    }
    let response = app
        .http
        .post(format!("{}/v1/sessions", app.address))
        .bearer_auth(&token)
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert_error(&response.json().await.unwrap(), "malformed_request");
    let (status, body) = app.get("/v1/sessions/not-a-uuid", &token).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_error(&body, "malformed_request");

    // Well-formed but against the rules: 422 with the rule's code.
    let (status, body) = app.post("/v1/sessions", &token, with("modality", json!("audio"))).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_error(&body, "psychiatry_requires_video");
    let (status, body) =
        app.post("/v1/sessions", &token, with("accept_cancellation_policy", json!(false))).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_error(&body, "cancellation_policy_not_accepted");
    assert_eq!(app.credits(client).await.1, 0, "nothing was held by refused requests");
}

/// The crash between the two steps of a booking: the hold committed but the worker died before
/// reporting it, so Temporal runs the activity again. The retry must hold nothing new.
async fn a_retried_hold_answers_what_the_first_attempt_committed(backend: Backend) {
    let app = TestApp::spawn(backend, test_policy()).await;
    let (client, provider) = app.subscriber_and_therapist().await;
    let (available_before, _) = app.credits(client).await;
    let now = Utc::now();
    let id = SessionId::random();
    let snapshot = SessionSnapshot {
        id,
        workflow_id: id.workflow_id(),
        state: SessionState::Requested,
        client_id: client,
        provider_id: provider,
        service: Service::Therapy,
        modality: Modality::Audio,
        duration_minutes: 45,
        starts_at: now + TimeDelta::days(3),
        time_zone: TimeZoneName::parse("Europe/Paris").unwrap(),
        confirm_by: now + TimeDelta::days(1),
        coverage: Coverage::Subscription,
        credit: None,
        joined: Joined::default(),
        outcome: None,
        fees: Vec::new(),
        next_authorization: None,
        history: vec![StateChange { state: SessionState::Requested, at: now }],
        version: 1,
    };
    let request = HoldRequest { session: snapshot, purchase: None };
    let billing = app.billing();
    let first = billing.hold(None, &request, now).await.unwrap();
    let retry = billing.hold(None, &request, now + TimeDelta::seconds(5)).await.unwrap();
    assert!(matches!(first, HoldOutcome::Held { .. }), "{first:?}");
    assert_eq!(first, retry);
    assert_eq!(app.credits(client).await, (available_before - 1, 1));
    let (status, body) = app.get(&format!("/v1/sessions/{id}"), &app.service_token()).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["modality"], "audio");
}

/// The media service may report the room's end in the same breath as the joins, before the
/// workflow has acted on them: the end must not be lost.
async fn a_room_ending_with_the_joins_still_completes(backend: Backend) {
    let app = TestApp::spawn(backend, test_policy()).await;
    let (client, provider) = app.subscriber_and_therapist().await;
    let (status, body) =
        app.request_session(client, provider, Utc::now() + TimeDelta::minutes(1)).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let id = session_id(&body);
    let (status, body) = answer(&app, id, "confirm", Role::Provider, provider).await;
    assert_eq!(status, StatusCode::OK, "{body}");

    let now = Utc::now();
    let (client_joined, provider_joined, ended) = tokio::join!(
        app.sessions.joined(id, Join { party: Party::Client, at: now }),
        app.sessions.joined(id, Join { party: Party::Provider, at: now }),
        app.sessions.room_ended(id),
    );
    client_joined.unwrap();
    provider_joined.unwrap();
    ended.unwrap();
    let session = app.wait_for_state(id, SessionState::Completed).await;
    assert_eq!(session.outcome, Some(Outcome::RoomEnded));
}
