//! Who may read, join and act, end to end on both databases: a provider reads only the room
//! messages about sessions with them and no message carries a join token; a service cancels on
//! someone's behalf and says whose; someone who has joined may rejoin after the grace period.

use chrono::{TimeDelta, Utc};
use livesessions_activities::storage::media_rooms;
use livesessions_domain::{
    ClientId, CreditStatus, Outcome, Party, Policy, Role, SessionId, SessionSnapshot, SessionState,
};
use livesessions_tests::{Backend, TestApp, on_both_databases, test_policy};
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::time::Duration;

on_both_databases!(
    a_provider_reads_only_their_sessions_and_no_message_holds_a_join_token,
    a_service_cancels_on_behalf_of_the_client_or_the_provider,
    someone_who_joined_may_rejoin_after_the_grace_period,
);

/// A client's room as `token` reads it: status and messages.
async fn room(app: &TestApp, client: ClientId, token: &str) -> (StatusCode, Vec<Value>) {
    let (status, body) = app.get(&format!("/v1/rooms/{client}/messages"), token).await;
    (status, body["messages"].as_array().cloned().unwrap_or_default())
}

/// Each message's session and kind.
fn about(messages: &[Value]) -> Vec<(SessionId, String)> {
    messages
        .iter()
        .map(|m| {
            let session = serde_json::from_value(m["session_id"].clone()).expect("a session id");
            (session, m["kind"].as_str().expect("a kind").to_string())
        })
        .collect()
}

async fn a_provider_reads_only_their_sessions_and_no_message_holds_a_join_token(backend: Backend) {
    let app = TestApp::spawn(backend, test_policy()).await;
    let (client, first) = app.subscriber_and_therapist().await;
    let second = app.new_provider("therapist").await;
    // With the first provider: confirmed inside both reminder offsets, so a reminder goes out at
    // once. With the second: declined.
    let with_first = app.book_confirmed(client, first, Utc::now() + TimeDelta::minutes(1)).await;
    let with_second = app.book(client, second, Utc::now() + TimeDelta::days(2)).await;
    let (status, body) = app
        .post(
            &format!("/v1/sessions/{}/decline", with_second.id),
            &app.token(Role::Provider, second),
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    app.wait_for_messages(client, 3).await;

    let (status, messages) = room(&app, client, &app.token(Role::Provider, first)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        about(&messages),
        [
            (with_first.id, "session_confirmed".to_string()),
            (with_first.id, "session_reminder".to_string())
        ]
    );
    let (status, messages) = room(&app, client, &app.token(Role::Provider, second)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(about(&messages), [(with_second.id, "session_declined".to_string())]);
    let stranger = app.new_provider("therapist").await;
    let (status, _) = room(&app, client, &app.token(Role::Provider, stranger)).await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // The client reads everything; no text holds a join token or a link made of one.
    let client_token = app.token(Role::Client, client);
    let (status, messages) = room(&app, client, &client_token).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(messages.len(), 3, "{messages:?}");
    let bodies: Vec<&str> = messages.iter().map(|m| m["body"].as_str().unwrap()).collect();
    for party in [Party::Client, Party::Provider] {
        let token = media_rooms::token_of(&app.db, with_first.id, party).await.unwrap().unwrap();
        assert!(
            bodies.iter().all(|b| !b.contains(&token.token) && !b.contains("/join/")),
            "{bodies:?}"
        );
    }
    // The confirmation says the length and modality, as the email does.
    assert!(bodies.iter().any(|b| b.contains("Your 30-minute video session on")), "{bodies:?}");
    // The reminder points to the API's join endpoint: it answers the client their own link, and
    // the other provider nothing.
    let link = format!("{}/v1/sessions/{}/join", app.address, with_first.id);
    let reminder = messages.iter().find(|m| m["kind"] == "session_reminder").unwrap();
    assert!(reminder["body"].as_str().unwrap().contains(&link), "{reminder}");
    let (status, own) = app.get(&link, &client_token).await;
    assert_eq!(status, StatusCode::OK, "{own}");
    assert!(own["url"].as_str().unwrap().contains("/join/"), "{own}");
    let (status, _) = app.get(&link, &app.token(Role::Provider, second)).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

async fn a_service_cancels_on_behalf_of_the_client_or_the_provider(backend: Backend) {
    let app = TestApp::spawn(backend, test_policy()).await;
    let (client, provider) = app.subscriber_and_therapist().await;
    let (available, _) = app.credits(client).await;
    let service = app.service_token();
    let cancel = |id: SessionId, token: String, body: Value| {
        let app = &app;
        async move { app.post(&format!("/v1/sessions/{id}/cancel"), &token, body).await }
    };
    // Both inside the late window.
    let for_provider = app.book_confirmed(client, provider, Utc::now() + TimeDelta::hours(5)).await;
    let for_client = app.book_confirmed(client, provider, Utc::now() + TimeDelta::hours(6)).await;

    // A service must say for whom; a client or a provider speaks only for themselves.
    let (status, body) = cancel(for_provider.id, service.clone(), json!({"reason": "?"})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["error"]["code"], "on_behalf_of_required", "{body}");
    let client_for_provider = json!({"on_behalf_of": "provider"});
    let (status, body) =
        cancel(for_provider.id, app.token(Role::Client, client), client_for_provider).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    let provider_for_client = json!({"on_behalf_of": "client"});
    let (status, body) =
        cancel(for_provider.id, app.token(Role::Provider, provider), provider_for_client).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    let unchanged = app.wait_for_state(for_provider.id, SessionState::Confirmed).await;
    assert_eq!(unchanged.version, for_provider.version, "the refusals changed nothing");
    assert_eq!(app.credits(client).await, (available - 2, 2));

    // On behalf of the provider, late: no fee, the credit comes back.
    let (status, body) =
        cancel(for_provider.id, service.clone(), json!({"on_behalf_of": "provider"})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["state"], "cancelled");
    assert_eq!(body["outcome"], "provider_cancelled");
    assert_eq!(body["credit"]["status"], "released");
    assert!(app.charges(for_provider.id).await.is_empty());
    assert_eq!(app.credits(client).await, (available - 1, 1));

    // On behalf of the client, late: the credit is lost and the fee charged.
    let (status, body) = cancel(for_client.id, service, json!({"on_behalf_of": "client"})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let cancelled: SessionSnapshot = serde_json::from_value(body).unwrap();
    assert_eq!(cancelled.state, SessionState::LateCancelled);
    assert_eq!(cancelled.outcome, Some(Outcome::ClientCancelledLate));
    assert_eq!(cancelled.credit.map(|c| c.status), Some(CreditStatus::Forfeited));
    let key = format!("{}:late_cancel_fee:r0", for_client.workflow_id);
    assert_eq!(app.charges(for_client.id).await, [("late_cancel_fee".to_string(), 6_500, key)]);
    assert_eq!(app.credits(client).await, (available - 1, 0));
}

async fn someone_who_joined_may_rejoin_after_the_grace_period(backend: Backend) {
    let grace = Duration::from_secs(3);
    let app = TestApp::spawn(backend, Policy { join_grace: grace, ..test_policy() }).await;
    let starts_at = Utc::now() + TimeDelta::seconds(6);
    let (client, provider) = app.subscriber_and_therapist().await;
    let session = app.book_confirmed(client, provider, starts_at).await;
    // Another session, whose client fetches their link but never joins.
    let (absent, other_provider) = app.subscriber_and_therapist().await;
    let missed = app.book_confirmed(absent, other_provider, starts_at).await;
    let missed_link = format!("/v1/sessions/{}/join", missed.id);
    let (status, link) = app.get(&missed_link, &app.token(Role::Client, absent)).await;
    assert_eq!(status, StatusCode::OK, "{link}");
    app.join(&missed, Role::Provider).await;
    app.join(&session, Role::Client).await;
    app.join(&session, Role::Provider).await;
    app.wait_for_state(session.id, SessionState::InProgress).await;

    // Past the grace period both connections drop, and both come back the same way.
    let after_grace = starts_at + TimeDelta::from_std(grace).unwrap() + TimeDelta::seconds(1);
    tokio::time::sleep((after_grace - Utc::now()).to_std().unwrap_or_default()).await;
    for role in [Role::Client, Role::Provider] {
        let room = app.join(&session, role).await;
        assert!(room.starts_with("/media/rooms/"), "{room}");
    }
    let rejoined = app.wait_for_state(session.id, SessionState::InProgress).await;
    assert_eq!(rejoined.history.len(), 3, "rejoining changes nothing: {rejoined:?}");

    // The client who never joined is refused, through the API and through the link alike.
    let (status, body) = app.get(&missed_link, &app.token(Role::Client, absent)).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(body["error"]["code"], "join_not_open", "{body}");
    let response = app.http.get(link["url"].as_str().unwrap()).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::CONFLICT);
    let missed = app.wait_for_state(missed.id, SessionState::ClientNoShow).await;
    assert_eq!(missed.joined.client, None);
}
