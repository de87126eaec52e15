//! "An error means nothing changed; otherwise say so": with the worker killed, a change and a
//! booking answer `202 Accepted` with the session as it is and a `Location`, never `503`; once a
//! worker is back they take effect, and a retry under the same `Idempotency-Key` answers what
//! the first request did, whenever it comes.

use chrono::{TimeDelta, Utc};
use livesessions_domain::{Policy, Role, SessionState};
use livesessions_tests::{
    Backend, TestApp, TestOptions, eventually, on_both_databases, test_policy,
};
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::time::{Duration, Instant};

on_both_databases!(
    a_change_not_answered_in_time_answers_202_and_still_takes_effect,
    a_booking_not_answered_in_time_answers_202_and_a_retry_answers_what_it_did
);

/// An app with `policy` whose worker runs as a process of its own, and whose API waits 2 s for
/// a workflow.
async fn app_with_worker_process(backend: Backend, policy: Policy) -> TestApp {
    let options = TestOptions {
        worker: false,
        request_timeout: Some(Duration::from_secs(2)),
        ..TestOptions::default()
    };
    TestApp::spawn_with(backend, policy, options).await
}

/// POSTs `body` to `path` as `token` under `key`; answers status, `Location` and body.
async fn post_with_key(
    app: &TestApp,
    path: &str,
    token: &str,
    key: &str,
    body: Value,
) -> (StatusCode, Option<String>, Value) {
    let response = app
        .http
        .post(format!("{}{path}", app.address))
        .bearer_auth(token)
        .header("Idempotency-Key", key)
        .json(&body)
        .send()
        .await
        .expect("the API answers");
    let status = response.status();
    let location =
        response.headers().get("location").and_then(|l| l.to_str().ok()).map(str::to_string);
    (status, location, response.json().await.unwrap_or(Value::Null))
}

async fn a_change_not_answered_in_time_answers_202_and_still_takes_effect(backend: Backend) {
    let app = app_with_worker_process(backend, test_policy()).await;
    let program = env!("CARGO_BIN_EXE_test-worker");
    let mut worker = app.worker_process(program);
    let (client, provider) = app.subscriber_and_therapist().await;
    let session = app.book_confirmed(client, provider, Utc::now() + TimeDelta::hours(3)).await;
    worker.kill().expect("SIGKILL");
    worker.wait().expect("the killed worker is reaped");

    let path = format!("/v1/sessions/{}/cancel", session.id);
    let token = app.token(Role::Client, client);
    let asked = Instant::now();
    let (status, location, body) = post_with_key(&app, &path, &token, "cancel-1", json!({})).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    assert!(asked.elapsed() < Duration::from_secs(5), "answered in {:?}", asked.elapsed());
    assert_eq!(location.as_deref(), Some(format!("/v1/sessions/{}", session.id).as_str()));
    assert_eq!(body["location"], format!("/v1/sessions/{}", session.id));
    assert_eq!(body["session"]["state"], "confirmed", "the session as it is now: {body}");
    // Asked again while the worker is still away: the same answer, not a conflict.
    let (again, _, body) = post_with_key(&app, &path, &token, "cancel-1", json!({})).await;
    assert_eq!(again, StatusCode::ACCEPTED, "{body}");

    let mut worker = app.worker_process(program);
    let cancelled = app.wait_for_state(session.id, SessionState::LateCancelled).await;
    assert_eq!(cancelled.fees.len(), 1, "one fee: {:?}", cancelled.fees);
    let (status, _, body) = post_with_key(&app, &path, &token, "cancel-1", json!({})).await;
    assert_eq!(status, StatusCode::OK, "the retry answers what the first request did: {body}");
    assert_eq!(body["state"], "late_cancelled");
    assert_eq!(app.charges(session.id).await.len(), 1, "charged once");
    worker.kill().expect("SIGKILL");
    worker.wait().expect("reaped");
}

async fn a_booking_not_answered_in_time_answers_202_and_a_retry_answers_what_it_did(
    backend: Backend,
) {
    let policy = Policy { booking_notice: Duration::from_secs(20), ..test_policy() };
    let app = app_with_worker_process(backend, policy).await;
    let program = env!("CARGO_BIN_EXE_test-worker");
    let (client, provider) = app.subscriber_and_therapist().await;
    let body = json!({"client_id": client, "provider_id": provider, "service": "therapy",
                      "modality": "video", "duration_minutes": 30,
                      "starts_at": Utc::now() + TimeDelta::seconds(25),
                      "time_zone": "America/New_York", "accept_cancellation_policy": true});
    let token = app.token(Role::Client, client);
    let (status, location, answer) =
        post_with_key(&app, "/v1/sessions", &token, "book-1", body.clone()).await;
    assert_eq!(status, StatusCode::ACCEPTED, "no worker, no answer in time: {answer}");
    let id = answer["id"].as_str().expect("the session id").to_string();
    assert_eq!(location, Some(format!("/v1/sessions/{id}")));

    // By the time the worker is back the start is closer than the booking notice: the retry
    // must answer the booking the first request started, not judge a new one.
    tokio::time::sleep(Duration::from_secs(8)).await;
    let mut worker = app.worker_process(program);
    let booked = eventually("the retry answers the booking", || async {
        match post_with_key(&app, "/v1/sessions", &token, "book-1", body.clone()).await {
            (StatusCode::CREATED, _, session) => Ok(session),
            (status, _, other) => Err(format!("{status} {other}")),
        }
    })
    .await;
    assert_eq!(booked["id"], id.as_str(), "the same session: {booked}");
    let (available, reserved) = app.credits(client).await;
    assert_eq!((available, reserved), (3, 1), "one credit held, once");
    worker.kill().expect("SIGKILL");
    worker.wait().expect("reaped");
}
