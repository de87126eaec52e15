//! Every path of DOMAIN.md's lifecycle, end to end against the real Temporal dev server, on
//! PostgreSQL and on SQLite. Each test asserts the final state, the room messages and what
//! happened to the credit and the money.

use chrono::{TimeDelta, Utc};
use livesessions_domain::{CreditStatus, Outcome, Policy, Role, SessionSnapshot, SessionState};
use livesessions_tests::{Backend, TestApp, on_both_databases, test_policy};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use std::time::Duration;

on_both_databases!(
    insurance_path_with_reauthorization,
    an_unused_reauthorization_lapses,
    in_time_cancel_gives_the_credit_back,
    late_cancel_forfeits_the_credit_and_charges_once,
    reschedule_then_confirm_keeps_the_credit,
    late_reschedule_charges_and_holds_a_new_credit,
    client_no_show_forfeits_and_charges,
    provider_no_show_costs_the_client_nothing,
    provider_unavailable_then_reschedule_with_the_same_credit,
    modality_change_is_refused,
    no_credit_is_refused_and_then_bought,
    messaging_session_cannot_be_cancelled,
    reminder_for_a_session_booked_inside_the_window,
    a_rescheduled_session_sends_no_stale_reminder,
    operators_find_sessions_by_search_attributes,
);

fn policy(change: impl FnOnce(&mut Policy)) -> Policy {
    let mut policy = test_policy();
    change(&mut policy);
    policy
}

fn error_code(body: &Value) -> &str {
    body["error"]["code"].as_str().unwrap_or_default()
}

fn path(session: &SessionSnapshot, action: &str) -> String {
    format!("/v1/sessions/{}/{action}", session.id)
}

async fn insurance_path_with_reauthorization(backend: Backend) {
    let app = TestApp::spawn(backend, test_policy()).await;
    let client = app.new_client("insurance", "insurance-standard").await;
    let provider = app.new_provider("therapist").await;
    assert_eq!(app.credits(client).await, (1, 0), "intake authorizes one session");

    let session = app.book(client, provider, Utc::now() + TimeDelta::minutes(1)).await;
    assert_eq!(session.credit.map(|c| c.status), Some(CreditStatus::Reserved));
    let session = app.confirm(&session).await;
    app.join(&session, Role::Client).await;
    let room = app.join(&session, Role::Provider).await;
    app.wait_for_state(session.id, SessionState::InProgress).await;
    let (status, _) = app
        .call(
            Method::POST,
            &format!("/v1/sessions/{}/cancel", session.id),
            Some(&app.token(Role::Client, client)),
            Some(json!({})),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "a session in progress cannot be cancelled");

    app.end_room(&room).await;

    // After the session: the room prompts "Book a session" with the estimate. The read model
    // says `completed` only with the effects that state reports: the offer and the prompt.
    let done = app.wait_for_state(session.id, SessionState::Completed).await;
    assert!(done.next_authorization.is_some(), "offered with the state: {done:?}");
    assert_eq!(done.credit.map(|c| c.status), Some(CreditStatus::Consumed));
    assert_eq!(
        app.room_message_kinds(client).await,
        ["session_confirmed", "session_reminder", "book_a_session"]
    );
    let (_, room_body) =
        app.get(&format!("/v1/rooms/{client}/messages"), &app.token(Role::Client, client)).await;
    let prompt = room_body["messages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["kind"] == "book_a_session")
        .expect("a prompt")
        .clone();
    assert!(prompt["body"].as_str().unwrap().contains("USD 20.00"), "{prompt}");

    let (status, estimate) =
        app.get(&path(&session, "next-estimate"), &app.token(Role::Client, client)).await;
    assert_eq!(status, StatusCode::OK, "{estimate}");
    assert_eq!(estimate["estimate"], json!({"amount_minor": 2000, "currency": "USD"}));
    assert_eq!(estimate["authorized_at"], Value::Null);

    // Without an authorization the next booking is refused; after authorize-next it is held.
    let (status, body) =
        app.request_session(client, provider, Utc::now() + TimeDelta::days(2)).await;
    assert_eq!(status, StatusCode::PAYMENT_REQUIRED, "{body}");
    assert_eq!(error_code(&body), "authorization_required");
    let (status, body) = app
        .post(&path(&session, "authorize-next"), &app.token(Role::Client, client), json!({}))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body["next_authorization"]["authorized_at"].is_string(), "{body}");
    let (status, body) = app
        .post(&path(&session, "authorize-next"), &app.token(Role::Client, client), json!({}))
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "authorized once only: {body}");
    assert_eq!(app.credits(client).await, (1, 0));
    let next = app.book(client, provider, Utc::now() + TimeDelta::days(2)).await;
    assert_eq!(next.credit.map(|c| c.status), Some(CreditStatus::Reserved));
    assert_eq!(app.credits(client).await, (0, 1));
    // The copay (the estimate) is collected once; the rest of the price is claimed from the
    // insurer (see tests/tests/insurance.rs for the rest of insurance's money).
    let credit = session.credit.expect("the authorization held").id;
    let wf = &session.workflow_id;
    assert_eq!(
        app.charges(session.id).await,
        [
            ("insurance_claim".to_string(), 4_500, format!("{wf}:insurance_claim:{credit}")),
            ("copay".to_string(), 2_000, format!("{wf}:copay:r0")),
        ]
    );
    app.check_histories("insurance_path_with_reauthorization").await;
}

async fn an_unused_reauthorization_lapses(backend: Backend) {
    let app =
        TestApp::spawn(backend, policy(|p| p.reauthorization_window = Duration::from_secs(2)))
            .await;
    let client = app.new_client("insurance", "insurance-standard").await;
    let provider = app.new_provider("therapist").await;
    let session = app.book_confirmed(client, provider, Utc::now() + TimeDelta::minutes(1)).await;
    app.take_place(&session).await;
    let lapsed = app
        .wait_for(session.id, "the authorization lapsed", |s| {
            s.next_authorization.as_ref().is_some_and(|n| n.lapsed)
        })
        .await;
    assert_eq!(lapsed.state, SessionState::Completed);
    let (status, body) = app
        .post(&path(&session, "authorize-next"), &app.token(Role::Client, client), json!({}))
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(error_code(&body), "authorization_window_closed");
    assert_eq!(app.credits(client).await, (0, 0));
    app.check_histories("an_unused_reauthorization_lapses").await;
}

async fn in_time_cancel_gives_the_credit_back(backend: Backend) {
    let app = TestApp::spawn(backend, test_policy()).await;
    let (client, provider) = app.subscriber_and_therapist().await;
    let (available, _) = app.credits(client).await;
    let session = app.book_confirmed(client, provider, Utc::now() + TimeDelta::days(3)).await;
    let (status, body) = app
        .post(
            &path(&session, "cancel"),
            &app.token(Role::Client, client),
            json!({"reason": "travelling"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["state"], "cancelled");
    assert_eq!(body["outcome"], "client_cancelled");
    assert_eq!(body["credit"]["status"], "released");
    assert_eq!(app.credits(client).await, (available, 0));
    assert!(app.charges(session.id).await.is_empty());
    assert_eq!(app.room_message_kinds(client).await, ["session_confirmed", "session_cancelled"]);
    let (status, body) =
        app.post(&path(&session, "cancel"), &app.token(Role::Client, client), json!({})).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(error_code(&body), "session_state_conflict");
    app.check_histories("in_time_cancel_gives_the_credit_back").await;
}

async fn late_cancel_forfeits_the_credit_and_charges_once(backend: Backend) {
    let app = TestApp::spawn(backend, test_policy()).await;
    let (client, provider) = app.subscriber_and_therapist().await;
    let (available, _) = app.credits(client).await;
    let session = app.book_confirmed(client, provider, Utc::now() + TimeDelta::hours(5)).await;
    let (status, body) =
        app.post(&path(&session, "cancel"), &app.token(Role::Client, client), json!({})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let cancelled: SessionSnapshot = serde_json::from_value(body).unwrap();
    assert_eq!(cancelled.state, SessionState::LateCancelled);
    assert_eq!(cancelled.outcome, Some(Outcome::ClientCancelledLate));
    assert_eq!(cancelled.credit.map(|c| c.status), Some(CreditStatus::Forfeited));
    assert_eq!(cancelled.fees.len(), 1);
    assert_eq!(app.credits(client).await, (available - 1, 0));
    let key = format!("{}:late_cancel_fee:r0", session.workflow_id);
    assert_eq!(app.charges(session.id).await, [("late_cancel_fee".to_string(), 6_500, key)]);
    let kinds = app.room_message_kinds(client).await;
    assert_eq!(kinds.last().map(String::as_str), Some("session_late_cancelled"));
    app.check_histories("late_cancel_forfeits_the_credit_and_charges_once").await;
}

async fn reschedule_then_confirm_keeps_the_credit(backend: Backend) {
    let app = TestApp::spawn(backend, test_policy()).await;
    let (client, provider) = app.subscriber_and_therapist().await;
    let session = app.book_confirmed(client, provider, Utc::now() + TimeDelta::days(3)).await;
    let new_start = Utc::now() + TimeDelta::days(4);
    let (status, body) = app.reschedule(&session, new_start, true).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let moved: SessionSnapshot = serde_json::from_value(body).unwrap();
    assert_eq!(moved.state, SessionState::Requested);
    assert_eq!(moved.starts_at.timestamp(), new_start.timestamp());
    assert_eq!(moved.credit, session.credit, "the same credit holds the new time");
    let confirmed = app.confirm(&moved).await;
    assert_eq!(confirmed.state, SessionState::Confirmed);
    let states: Vec<SessionState> = confirmed.history.iter().map(|c| c.state).collect();
    assert_eq!(
        states,
        [
            SessionState::Requested,
            SessionState::Confirmed,
            SessionState::Requested,
            SessionState::Confirmed
        ]
    );
    assert_eq!(
        app.room_message_kinds(client).await,
        ["session_confirmed", "session_rescheduled", "session_confirmed"]
    );
    assert!(app.charges(session.id).await.is_empty());
    let (_, reserved) = app.credits(client).await;
    assert_eq!(reserved, 1);
    app.check_histories("reschedule_then_confirm_keeps_the_credit").await;
}

async fn late_reschedule_charges_and_holds_a_new_credit(backend: Backend) {
    let app = TestApp::spawn(backend, test_policy()).await;
    let (client, provider) = app.subscriber_and_therapist().await;
    let (available, _) = app.credits(client).await;
    let session = app.book_confirmed(client, provider, Utc::now() + TimeDelta::hours(3)).await;
    let new_start = Utc::now() + TimeDelta::days(2);
    let (status, body) = app.reschedule(&session, new_start, false).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(error_code(&body), "late_cancellation_not_accepted");
    assert_eq!(
        app.wait_for_state(session.id, SessionState::Confirmed).await.version,
        session.version,
        "a refusal changes nothing"
    );

    let (status, body) = app.reschedule(&session, new_start, true).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let moved: SessionSnapshot = serde_json::from_value(body).unwrap();
    assert_eq!(moved.state, SessionState::Requested);
    assert_ne!(
        moved.credit.map(|c| c.id),
        session.credit.map(|c| c.id),
        "a new credit holds the new time"
    );
    assert_eq!(moved.credit.map(|c| c.status), Some(CreditStatus::Reserved));
    assert_eq!(moved.fees.len(), 1);
    assert_eq!(app.credits(client).await, (available - 2, 1), "one credit lost, one reserved");
    let charges = app.charges(session.id).await;
    assert_eq!(charges.len(), 1, "{charges:?}");
    assert_eq!((charges[0].0.as_str(), charges[0].1), ("late_cancel_fee", 6_500));
    app.check_histories("late_reschedule_charges_and_holds_a_new_credit").await;
}

async fn client_no_show_forfeits_and_charges(backend: Backend) {
    let app = TestApp::spawn(backend, policy(|p| p.join_grace = Duration::from_secs(1))).await;
    let client = app.new_client("eap", "eap-standard").await;
    let provider = app.new_provider("therapist").await;
    let (available, _) = app.credits(client).await;
    let session = app.book_confirmed(client, provider, Utc::now() + TimeDelta::seconds(3)).await;
    app.join(&session, Role::Provider).await;
    let ended = app.wait_for_state(session.id, SessionState::ClientNoShow).await;
    assert_eq!(ended.outcome, Some(Outcome::ClientDidNotJoin));
    assert_eq!(ended.credit.map(|c| c.status), Some(CreditStatus::Forfeited));
    assert_eq!(app.credits(client).await, (available - 1, 0));
    let key = format!("{}:no_show_fee:r0", session.workflow_id);
    assert_eq!(app.charges(session.id).await, [("no_show_fee".to_string(), 6_500, key)]);
    assert_eq!(
        app.room_message_kinds(client).await.last().map(String::as_str),
        Some("client_no_show")
    );
    app.check_histories("client_no_show_forfeits_and_charges").await;
}

async fn provider_no_show_costs_the_client_nothing(backend: Backend) {
    let app = TestApp::spawn(
        backend,
        policy(|p| {
            p.join_grace = Duration::from_secs(1);
            p.reschedule_offer_window = Duration::from_secs(2);
        }),
    )
    .await;
    let (client, provider) = app.subscriber_and_therapist().await;
    let (available, _) = app.credits(client).await;
    let session = app.book_confirmed(client, provider, Utc::now() + TimeDelta::seconds(3)).await;
    app.join(&session, Role::Client).await;
    let absent = app.wait_for_state(session.id, SessionState::ProviderNoShow).await;
    assert_eq!(
        absent.credit.map(|c| c.status),
        Some(CreditStatus::Reserved),
        "the credit waits for a reschedule"
    );
    assert!(app.room_message_kinds(client).await.contains(&"provider_no_show".to_string()));
    // The client does not reschedule: the offer lapses and the credit comes back.
    let lapsed = app.wait_for(session.id, "the offer lapsed", |s| s.outcome.is_some()).await;
    assert_eq!(lapsed.state, SessionState::ProviderNoShow);
    assert_eq!(lapsed.outcome, Some(Outcome::ProviderDidNotJoin));
    assert_eq!(lapsed.credit.map(|c| c.status), Some(CreditStatus::Released));
    assert_eq!(app.credits(client).await, (available, 0));
    assert!(app.charges(session.id).await.is_empty(), "never charged for the provider's absence");
    assert_eq!(
        app.room_message_kinds(client).await.last().map(String::as_str),
        Some("reschedule_offer_lapsed")
    );
    app.check_histories("provider_no_show_costs_the_client_nothing").await;
}

async fn provider_unavailable_then_reschedule_with_the_same_credit(backend: Backend) {
    let app = TestApp::spawn(backend, test_policy()).await;
    let (client, provider) = app.subscriber_and_therapist().await;
    let session = app.book_confirmed(client, provider, Utc::now() + TimeDelta::hours(4)).await;
    let (status, body) = app
        .post(&path(&session, "provider-unavailable"), &app.token(Role::Client, client), json!({}))
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "only the provider says so: {body}");
    let (status, body) = app
        .post(
            &path(&session, "provider-unavailable"),
            &app.token(Role::Provider, provider),
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["state"], "provider_unavailable");
    assert_eq!(body["credit"]["status"], "reserved");

    // Closer to the start than the late window, yet not late: the provider left.
    let new_start = Utc::now() + TimeDelta::days(2);
    let (status, body) = app.reschedule(&session, new_start, true).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let moved: SessionSnapshot = serde_json::from_value(body).unwrap();
    assert_eq!(moved.state, SessionState::Requested);
    assert_eq!(moved.credit, session.credit, "the same credit");
    let confirmed = app.confirm(&moved).await;
    assert_eq!(confirmed.state, SessionState::Confirmed);
    assert!(app.charges(session.id).await.is_empty());
    assert_eq!(
        app.room_message_kinds(client).await,
        [
            "session_confirmed",
            "session_reminder",
            "provider_unavailable",
            "session_rescheduled",
            "session_confirmed"
        ]
    );
    app.check_histories("provider_unavailable_then_reschedule_with_the_same_credit").await;
}

async fn modality_change_is_refused(backend: Backend) {
    let app = TestApp::spawn(backend, test_policy()).await;
    let (client, provider) = app.subscriber_and_therapist().await;
    let session = app.book(client, provider, Utc::now() + TimeDelta::days(3)).await;
    let (status, body) = app.post(&path(&session, "reschedule"), &app.token(Role::Client, client),
        json!({"starts_at": Utc::now() + TimeDelta::days(4), "accept_cancellation_policy": true, "modality": "chat"})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(error_code(&body), "modality_change_requires_rebooking");
    let unchanged = app.wait_for_state(session.id, SessionState::Requested).await;
    assert_eq!((unchanged.version, unchanged.starts_at), (session.version, session.starts_at));
    app.check_histories("modality_change_is_refused").await;
}

async fn no_credit_is_refused_and_then_bought(backend: Backend) {
    let app = TestApp::spawn(backend, test_policy()).await;
    let (client, provider) = app.subscriber_and_therapist().await;
    let (available, _) = app.credits(client).await;
    for day in 0..available {
        app.book(client, provider, Utc::now() + TimeDelta::days(2 + day)).await;
    }
    let starts_at = Utc::now() + TimeDelta::days(10);
    let (status, body) = app.request_session(client, provider, starts_at).await;
    assert_eq!(status, StatusCode::PAYMENT_REQUIRED, "{body}");
    assert_eq!(error_code(&body), "no_credit");
    let buy = json!({"client_id": client, "provider_id": provider, "service": "therapy", "modality": "video",
        "duration_minutes": 30, "starts_at": starts_at, "time_zone": "America/New_York",
        "accept_cancellation_policy": true, "purchase_credit": true});
    let (status, body) = app.post("/v1/sessions", &app.token(Role::Client, client), buy).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let bought: SessionSnapshot = serde_json::from_value(body).unwrap();
    let key = format!("{}:credit_purchase", bought.workflow_id);
    assert_eq!(app.charges(bought.id).await, [("credit_purchase".to_string(), 8_500, key)]);
    assert_eq!(app.credits(client).await, (0, available + 1));

    // A standalone purchase, repeated with one Idempotency-Key, buys one credit.
    let url = format!("{}/v1/clients/{client}/credits/purchase", app.address);
    for _ in 0..2 {
        let response = app
            .http
            .post(&url)
            .bearer_auth(app.token(Role::Client, client))
            .header("Idempotency-Key", "k-1")
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::CREATED);
    }
    assert_eq!(app.credits(client).await, (1, available + 1));

    // EAP plans sell no credits.
    let eap = app.new_client("eap", "eap-standard").await;
    let buy = json!({"client_id": eap, "provider_id": provider, "service": "therapy", "modality": "video",
        "duration_minutes": 30, "starts_at": starts_at, "time_zone": "UTC",
        "accept_cancellation_policy": true, "purchase_credit": true});
    let (status, body) = app.post("/v1/sessions", &app.token(Role::Client, eap), buy).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(error_code(&body), "credit_purchase_not_offered");
    app.check_histories("no_credit_is_refused_and_then_bought").await;
}

async fn messaging_session_cannot_be_cancelled(backend: Backend) {
    let app = TestApp::spawn(backend, test_policy()).await;
    let (client, provider) = app.subscriber_and_therapist().await;
    let token = app.token(Role::Client, client);
    let (status, body) = app
        .post(
            "/v1/messaging-sessions",
            &token,
            json!({"client_id": client, "provider_id": provider}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["state"], "in_progress");
    let id = body["id"].as_str().unwrap().to_string();
    assert_eq!(app.wait_for_messages(client, 1).await, ["messaging_session_started"]);
    for action in ["cancel", "switch-to-live"] {
        let (status, body) =
            app.post(&format!("/v1/messaging-sessions/{id}/{action}"), &token, json!({})).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{action}: {body}");
        assert_eq!(error_code(&body), "messaging_session_in_progress");
    }
    let (status, body) = app.get(&format!("/v1/messaging-sessions/{id}"), &token).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["state"], "in_progress");
    let other = app.new_client("subscription", "subscription-standard").await;
    let (status, _) =
        app.get(&format!("/v1/messaging-sessions/{id}"), &app.token(Role::Client, other)).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    app.check_histories("messaging_session_cannot_be_cancelled").await;
}

/// A session confirmed 6 s before its start, with reminders 24 h and 3 s before it.
async fn confirmed_with_a_reminder_due_soon(backend: Backend) -> (TestApp, SessionSnapshot) {
    let offsets = vec![Duration::from_secs(24 * 3600), Duration::from_secs(3)];
    let app = TestApp::spawn(backend, policy(|p| p.reminder_offsets = offsets)).await;
    let (client, provider) = app.subscriber_and_therapist().await;
    let session = app.book_confirmed(client, provider, Utc::now() + TimeDelta::seconds(6)).await;
    (app, session)
}

async fn reminder_for_a_session_booked_inside_the_window(backend: Backend) {
    let (app, session) = confirmed_with_a_reminder_due_soon(backend).await;
    let client = session.client_id;
    // The 24 h reminder is overdue: it goes out at once, pointing to the join endpoint.
    let kinds = app.wait_for_messages(client, 2).await;
    assert_eq!(kinds, ["session_confirmed", "session_reminder"]);
    // The 3 s reminder goes out when its time comes.
    let kinds = app.wait_for_messages(client, 3).await;
    assert_eq!(kinds, ["session_confirmed", "session_reminder", "session_reminder"]);
    let (_, room) =
        app.get(&format!("/v1/rooms/{client}/messages"), &app.token(Role::Client, client)).await;
    for reminder in
        room["messages"].as_array().unwrap().iter().filter(|m| m["kind"] == "session_reminder")
    {
        let body = reminder["body"].as_str().unwrap();
        let link = format!("/v1/sessions/{}/join", session.id);
        assert!(body.contains(&link) && !body.contains("/join/"), "{reminder}");
    }
    app.check_histories("reminder_for_a_session_booked_inside_the_window").await;
}

async fn a_rescheduled_session_sends_no_stale_reminder(backend: Backend) {
    let (app, session) = confirmed_with_a_reminder_due_soon(backend).await;
    let client = session.client_id;
    assert_eq!(app.wait_for_messages(client, 2).await, ["session_confirmed", "session_reminder"]);
    let (status, body) = app.reschedule(&session, Utc::now() + TimeDelta::days(3), true).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    // Past the old start's 3 s reminder: nothing more was posted.
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!(
        app.room_message_kinds(client).await,
        ["session_confirmed", "session_reminder", "session_rescheduled"]
    );
    app.check_histories("a_rescheduled_session_sends_no_stale_reminder").await;
}

/// What an operator types in the Web UI or `temporal workflow list --query` finds the right
/// sessions, and the workflow query shows the same session as the API.
async fn operators_find_sessions_by_search_attributes(backend: Backend) {
    use futures::StreamExt;
    use temporalio_client::WorkflowListOptions;
    let app = TestApp::spawn(backend, test_policy()).await;
    let (client, provider) = app.subscriber_and_therapist().await;
    let other = app.new_provider("therapist").await;
    let waiting = app.book(client, provider, Utc::now() + TimeDelta::days(3)).await;
    let confirmed = app.book(client, provider, Utc::now() + TimeDelta::days(4)).await;
    app.confirm(&confirmed).await;
    app.book(client, other, Utc::now() + TimeDelta::days(5)).await;

    let query = format!(
        "SessionState = 'requested' AND ProviderId = '{provider}' AND TaskQueue = '{}'",
        app.task_queue
    );
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let found = loop {
        let mut ids = Vec::new();
        let mut list = app.temporal.list_workflows(query.clone(), WorkflowListOptions::default());
        while let Some(workflow) = list.next().await {
            ids.push(workflow.expect("a listed workflow").id().to_string());
        }
        if ids.len() == 1 || std::time::Instant::now() > deadline {
            break ids;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    assert_eq!(found, std::slice::from_ref(&waiting.workflow_id));

    let live = app.sessions.snapshot(waiting.id).await.expect("the workflow answers its query");
    let (_, read) = app.get(&format!("/v1/sessions/{}", waiting.id), &app.service_token()).await;
    assert_eq!(serde_json::to_value(&live).unwrap(), read);
    app.check_histories("operators_find_sessions_by_search_attributes").await;
}
