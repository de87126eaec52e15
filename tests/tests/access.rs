//! Who may act, end to end on both databases: a service cancels on someone's behalf and says
//! whose.

use chrono::{TimeDelta, Utc};
use livesessions_domain::{CreditStatus, Outcome, Role, SessionId, SessionSnapshot, SessionState};
use livesessions_tests::{Backend, TestApp, on_both_databases, test_policy};
use reqwest::StatusCode;
use serde_json::{Value, json};

on_both_databases!(a_service_cancels_on_behalf_of_the_client_or_the_provider);

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
    let key = format!("{}:late_cancel_fee", for_client.workflow_id);
    assert_eq!(app.charges(for_client.id).await, [("late_cancel_fee".to_string(), 6_500, key)]);
    assert_eq!(app.credits(client).await, (available - 1, 0));
}
