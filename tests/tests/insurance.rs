//! Insurance, whole (DOMAIN.md "Money rules" and "Coverage decides access"), end to end against
//! the real Temporal dev server on PostgreSQL and on SQLite: the copay shown as the estimate is
//! collected once when the session took place, the insurer's part becomes a claim receivable
//! for finance, and every ending that used the client's authorization offers the next one, so
//! no insured client is left unable to book.

use chrono::{TimeDelta, Utc};
use livesessions_activities::payments::{PaymentProcessor, sandbox};
use livesessions_activities::reconciliation;
use livesessions_domain::{
    ClientId, CreditStatus, FeeKind, FeeStatus, Outcome, Policy, Role, SessionSnapshot,
    SessionState,
};
use livesessions_tests::{Backend, TestApp, on_both_databases, test_policy};
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::time::Duration;

on_both_databases!(
    a_session_that_took_place_collects_the_copay_once_and_claims_the_rest,
    a_client_no_show_offers_the_next_authorization,
    a_late_cancellation_offers_the_next_authorization,
    an_expired_request_gives_the_authorization_back,
);

/// The 30-minute session the tests book: price 65.00, copay (estimate) 20.00.
const PRICE: i64 = 6_500;
const COPAY: i64 = 2_000;

async fn insured_app(backend: Backend, policy: Policy) -> (TestApp, ClientId) {
    let app = TestApp::spawn(backend, policy).await;
    let client = app.new_client("insurance", "insurance-standard").await;
    assert_eq!(app.credits(client).await, (1, 0), "intake authorizes one session");
    (app, client)
}

fn error_code(body: &Value) -> &str {
    body["error"]["code"].as_str().unwrap_or_default()
}

/// The ending offered the next authorization with the state, and the room prompts for it; a
/// booking is refused until the client authorizes, then held with the new authorization.
async fn next_authorization_lets_the_client_book_again(app: &TestApp, ended: &SessionSnapshot) {
    let client = ended.client_id;
    let offer = ended.next_authorization.as_ref().expect("the next authorization is offered");
    assert_eq!(offer.estimate.amount_minor, COPAY);
    assert!(app.room_message_kinds(client).await.contains(&"book_a_session".to_string()));
    assert_eq!(app.credits(client).await, (0, 0), "the authorization was used");
    let later = Utc::now() + TimeDelta::days(2);
    let (status, body) = app.request_session(client, ended.provider_id, later).await;
    assert_eq!(status, StatusCode::PAYMENT_REQUIRED, "{body}");
    assert_eq!(error_code(&body), "authorization_required");
    let path = format!("/v1/sessions/{}/authorize-next", ended.id);
    let (status, body) = app.post(&path, &app.token(Role::Client, client), json!({})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let next = app.book(client, ended.provider_id, later).await;
    assert_eq!(next.credit.map(|c| c.status), Some(CreditStatus::Reserved));
}

async fn a_session_that_took_place_collects_the_copay_once_and_claims_the_rest(backend: Backend) {
    let (app, client) = insured_app(backend, test_policy()).await;
    let provider = app.new_provider("therapist").await;
    let session = app.book_confirmed(client, provider, Utc::now() + TimeDelta::minutes(1)).await;
    app.take_place(&session).await;
    let done = app.wait_for_state(session.id, SessionState::Completed).await;

    let key = format!("{}:copay:r0", session.workflow_id);
    let [fee] = done.fees.as_slice() else { panic!("one fee: {:?}", done.fees) };
    assert_eq!(
        (fee.kind, fee.amount.amount_minor, fee.status, fee.key.as_str()),
        (FeeKind::Copay, COPAY, FeeStatus::Charged, key.as_str())
    );
    let processor = sandbox::SandboxProcessor::new(app.db.clone());
    let charged = processor.payment_by_key(&key).await.unwrap().expect("the processor charged");
    assert_eq!(charged.amount.amount_minor, COPAY);

    // Finance's day: the copay matched at the processor, the insurer's part claimed.
    let report =
        reconciliation::reconcile(&app.db, &processor, Utc::now().date_naive()).await.unwrap();
    assert!(report.is_clean(), "{report:?}");
    assert!(report.matched.iter().any(|l| l.key == key && l.amount_minor == COPAY), "{report:?}");
    let [claim] = report.claims.as_slice() else { panic!("one claim: {:?}", report.claims) };
    assert_eq!((claim.amount_minor, claim.session_id), (PRICE - COPAY, Some(session.id)));
    let (status, body) = app
        .get(
            &format!("/v1/reconciliation?date={}", Utc::now().date_naive()),
            &app.token(Role::Finance, "finance-1"),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["claims"][0]["amount_minor"], PRICE - COPAY, "{body}");

    next_authorization_lets_the_client_book_again(&app, &done).await;
    app.check_histories("a_session_that_took_place_collects_the_copay_once_and_claims_the_rest")
        .await;
}

async fn a_client_no_show_offers_the_next_authorization(backend: Backend) {
    let policy = Policy { join_grace: Duration::from_secs(1), ..test_policy() };
    let (app, client) = insured_app(backend, policy).await;
    let provider = app.new_provider("therapist").await;
    let session = app.book_confirmed(client, provider, Utc::now() + TimeDelta::seconds(3)).await;
    app.join(&session, Role::Provider).await;
    let ended = app
        .wait_for(session.id, "the client's no-show offers the next authorization", |s| {
            s.state == SessionState::ClientNoShow && s.next_authorization.is_some()
        })
        .await;
    assert_eq!(ended.outcome, Some(Outcome::ClientDidNotJoin));
    let key = format!("{}:no_show_fee:r0", session.workflow_id);
    assert_eq!(
        app.charges(session.id).await,
        [("no_show_fee".to_string(), PRICE, key)],
        "the full price, no copay and no claim for a session that did not take place"
    );
    next_authorization_lets_the_client_book_again(&app, &ended).await;
    app.check_histories("a_client_no_show_offers_the_next_authorization").await;
}

async fn a_late_cancellation_offers_the_next_authorization(backend: Backend) {
    let (app, client) = insured_app(backend, test_policy()).await;
    let provider = app.new_provider("therapist").await;
    let session = app.book_confirmed(client, provider, Utc::now() + TimeDelta::hours(2)).await;
    let path = format!("/v1/sessions/{}/cancel", session.id);
    let (status, body) = app.post(&path, &app.token(Role::Client, client), json!({})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let ended: SessionSnapshot = serde_json::from_value(body).expect("a session");
    assert_eq!(ended.state, SessionState::LateCancelled);
    let key = format!("{}:late_cancel_fee:r0", session.workflow_id);
    assert_eq!(app.charges(session.id).await, [("late_cancel_fee".to_string(), PRICE, key)]);
    next_authorization_lets_the_client_book_again(&app, &ended).await;
    app.check_histories("a_late_cancellation_offers_the_next_authorization").await;
}

async fn an_expired_request_gives_the_authorization_back(backend: Backend) {
    let (app, client) = insured_app(backend, test_policy()).await;
    let provider = app.new_provider("therapist").await;
    // Never confirmed: the window closes at the start.
    let session = app.book(client, provider, Utc::now() + TimeDelta::seconds(2)).await;
    let ended = app.wait_for_state(session.id, SessionState::Expired).await;
    assert_eq!(ended.credit.map(|c| c.status), Some(CreditStatus::Released));
    assert!(ended.next_authorization.is_none(), "the authorization itself came back");
    assert!(app.charges(session.id).await.is_empty());
    assert_eq!(app.credits(client).await, (1, 0));
    let again = app.book(client, provider, Utc::now() + TimeDelta::days(1)).await;
    assert_eq!(again.credit.map(|c| c.status), Some(CreditStatus::Reserved));
    app.check_histories("an_expired_request_gives_the_authorization_back").await;
}
