//! Rule 3 of the money rules, end to end on the Temporal dev server and both databases: a fee
//! left outstanding is collected on `policy.collection_schedule` (each attempt under its own
//! key), written off after the schedule, or waived by finance meanwhile; every step is a keyed
//! ledger transaction, the client is emailed, and reconciliation shows it.

use chrono::{TimeDelta, Utc};
use livesessions_activities::payments::sandbox::{self, Fault};
use livesessions_activities::reconciliation::{self, Report};
use livesessions_activities::storage::ledger::{self, EntryKind, accounts};
use livesessions_activities::with_pool;
use livesessions_domain::{CollectionState, Policy, Role, SessionSnapshot};
use livesessions_tests::{Backend, TestApp, eventually, test_policy};
use livesessions_workflows::FeeCollection;
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::time::Duration;
use temporalio_client::WorkflowFetchHistoryOptions;

/// The test policy, collecting on `seconds` after a fee is left outstanding.
fn collecting_on(seconds: &[u64]) -> Policy {
    let collection_schedule = seconds.iter().map(|s| Duration::from_secs(*s)).collect();
    Policy { collection_schedule, ..test_policy() }
}

/// A session cancelled late whose fee was declined, and so will be its first `attempts`
/// collection attempts: answers it and the fee's key.
async fn declined_fee(app: &TestApp, attempts: u32) -> (SessionSnapshot, String) {
    let (client, provider) = app.subscriber_and_therapist().await;
    let session = app.book_confirmed(client, provider, Utc::now() + TimeDelta::hours(5)).await;
    let key = format!("{}:late_cancel_fee:r0", session.workflow_id);
    sandbox::plan_fault(&app.db, &key, Fault::Decline, 1).await.unwrap();
    for n in 1..=attempts {
        let attempt = format!("{key}:collect:{n}");
        sandbox::plan_fault(&app.db, &attempt, Fault::Decline, 1).await.unwrap();
    }
    let path = format!("/v1/sessions/{}/cancel", session.id);
    let (status, body) = app.post(&path, &app.token(Role::Client, client), json!({})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["fees"][0]["status"], "outstanding", "{body}");
    (session, key)
}

fn finance(app: &TestApp) -> String {
    app.token(Role::Finance, "finance-1")
}

/// `GET /v1/fees/{key}` as finance, once the fee's collection is in `state`.
async fn fee_when(app: &TestApp, key: &str, state: &str) -> Value {
    eventually(&format!("the fee is {state}"), || async {
        let (status, fee) = app.get(&format!("/v1/fees/{key}"), &finance(app)).await;
        match (status, fee["state"].as_str()) {
            (StatusCode::OK, Some(now)) if now == state => Ok(fee),
            _ => Err(format!("{status} {fee}")),
        }
    })
    .await
}

/// The keys of the outbox rows about the fee, sorted, once all are sent.
async fn fee_emails(app: &TestApp, key: &str) -> Vec<String> {
    eventually("the fee's emails are sent", || async {
        let rows: Vec<(String, bool)> = with_pool!(&app.db, |pool| {
            sqlx::query_as(
                "SELECT key, sent_at IS NOT NULL FROM outbox WHERE key LIKE $1 ORDER BY key",
            )
            .bind(format!("{key}:%"))
            .fetch_all(pool)
            .await
        })
        .map_err(|e| e.to_string())?;
        match rows.iter().all(|(_, sent)| *sent) {
            true => Ok(rows.into_iter().map(|(key, _)| key).collect()),
            false => Err(format!("{rows:?}")),
        }
    })
    .await
}

async fn reconcile_today(app: &TestApp) -> Report {
    let processor = sandbox::SandboxProcessor::new(app.db.clone());
    reconciliation::reconcile(&app.db, &processor, Utc::now().date_naive()).await.unwrap()
}

/// The one ledger transaction under `key`.
async fn posted(app: &TestApp, key: &str) -> ledger::Entry {
    ledger::entry(&app.db, key).await.unwrap().unwrap_or_else(|| panic!("nothing posted as {key}"))
}

/// The collection workflow's result, after its history replays against the current code;
/// answers the result and the history as JSON.
async fn collection_of(app: &TestApp, key: &str) -> (CollectionState, String) {
    let handle = app.temporal.get_workflow_handle::<FeeCollection>(format!("fee-collection-{key}"));
    let ended = handle.get_result(Default::default()).await.expect("the collection ends");
    let json = handle
        .fetch_history(WorkflowFetchHistoryOptions::default())
        .to_json()
        .await
        .expect("its history");
    let history = temporalio_client::WorkflowHistory::from_json(&json).expect("SDK history JSON");
    let replayer = livesessions_worker::replay::replayer().expect("a replayer");
    replayer.replay_workflow(history).await.expect("the collection replays");
    (ended, String::from_utf8_lossy(&json).into_owned())
}

livesessions_tests::on_both_databases!(
    a_declined_fee_is_collected_on_the_second_attempt,
    a_fee_never_collected_is_written_off_after_the_schedule,
    finance_waives_a_fee_during_its_collection,
);

/// A waiver sent while an attempt is in flight waits for it: the attempt collects the fee, so
/// the waiver is refused and nothing is waived.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_waiver_during_an_attempt_that_collects_is_refused() {
    let app = TestApp::spawn(Backend::Postgres, collecting_on(&[1, 60, 120])).await;
    let (_, key) = declined_fee(&app, 0).await;
    let first = format!("{key}:collect:1");
    // The first attempt's processor fails twice before it charges: retried, in flight ~3 s.
    sandbox::plan_fault(&app.db, &first, Fault::FailBeforeCharge, 2).await.unwrap();
    eventually("the first attempt is in flight", || async {
        let calls = sandbox::calls(&app.db, &first).await.map_err(|e| e.to_string())?;
        if calls.is_empty() { Err("no call yet".to_string()) } else { Ok(()) }
    })
    .await;

    let path = format!("/v1/fees/{key}/waive");
    let (status, body) = app.post(&path, &finance(&app), json!({"reason": "goodwill"})).await;
    assert_eq!(
        (status, &body["error"]["code"]),
        (StatusCode::CONFLICT, &json!("fee_not_outstanding")),
        "{body}"
    );
    assert_eq!(
        sandbox::calls(&app.db, &first).await.unwrap(),
        ["failed_before_charge", "failed_before_charge", "succeeded"]
    );
    let fee = fee_when(&app, &key, "collected").await;
    assert_eq!(fee["waiver"], Value::Null);
    assert_eq!(collection_of(&app, &key).await.0, CollectionState::Collected);
    assert!(ledger::entry(&app.db, &format!("{key}:waived")).await.unwrap().is_none());
}

async fn a_declined_fee_is_collected_on_the_second_attempt(backend: Backend) {
    let app = TestApp::spawn(backend, collecting_on(&[1, 2, 30])).await;
    let (session, key) = declined_fee(&app, 1).await;
    let first = format!("{key}:collect:1");

    let fee = fee_when(&app, &key, "collected").await;
    let second = format!("{key}:collect:2");
    assert_eq!((&fee["attempts"], fee["settled_key"].as_str()), (&json!(2), Some(&*second)));
    assert_eq!(collection_of(&app, &key).await.0, CollectionState::Collected);
    assert_eq!(sandbox::calls(&app.db, &first).await.unwrap(), ["declined"]);
    assert_eq!(sandbox::calls(&app.db, &second).await.unwrap(), ["succeeded"]);
    let collected = posted(&app, &second).await;
    assert_eq!(collected.kind, EntryKind::FeeCollected);
    assert_eq!(collected.amount_on(accounts::PROCESSOR), 6_500);
    let owed = accounts::receivable(session.client_id);
    assert_eq!(ledger::balance(&app.db, &owed, "USD").await.unwrap(), 0, "nothing owed now");
    assert_eq!(
        fee_emails(&app, &key).await,
        [format!("{first}:declined"), format!("{key}:outstanding")]
    );

    let report = reconcile_today(&app).await;
    assert!(report.is_clean(), "{report:#?}");
    assert!(report.matched.iter().any(|l| l.key == second), "{report:#?}");
    assert_eq!(report.collected.iter().map(|l| l.key.as_str()).collect::<Vec<_>>(), [&*second]);
    let counted: Vec<_> =
        report.fee_collection.iter().map(|t| (t.kind.as_str(), t.count, t.amount_minor)).collect();
    assert_eq!(counted, [("collected", 1, 6_500), ("outstanding", 1, 6_500)]);

    // The client sees it among their fees; another client does not.
    let path = format!("/v1/clients/{}/fees", session.client_id);
    let (status, fees) = app.get(&path, &app.token(Role::Client, session.client_id)).await;
    assert_eq!(status, StatusCode::OK, "{fees}");
    assert_eq!(
        (fees["fees"][0]["key"].as_str(), &fees["fees"][0]["state"]),
        (Some(&*key), &json!("collected"))
    );
    let stranger = app.token(Role::Client, livesessions_domain::ClientId::random());
    assert_eq!(app.get(&format!("/v1/fees/{key}"), &stranger).await.0, StatusCode::NOT_FOUND);

    // Refunded, the collected fee gives back the fee's revenue: the client owes nothing again.
    let body = json!({"ledger_key": second});
    let (status, _, refund) =
        app.post_with_key("/v1/refunds", &finance(&app), body, "refund-collected").await;
    assert_eq!(status, StatusCode::CREATED, "{refund}");
    let refunded = posted(&app, refund["key"].as_str().unwrap()).await;
    assert_eq!(refunded.amount_on(accounts::LATE_CANCEL_FEES), 6_500, "{refunded:?}");
    assert_eq!(ledger::balance(&app.db, &owed, "USD").await.unwrap(), 0, "still nothing owed");
    assert_eq!(reconcile_today(&app).await.outstanding.len(), 1, "only the fee as first owed");
}

async fn a_fee_never_collected_is_written_off_after_the_schedule(backend: Backend) {
    let app = TestApp::spawn(backend, collecting_on(&[1, 2, 3])).await;
    let (session, key) = declined_fee(&app, 3).await;

    let fee = fee_when(&app, &key, "written_off").await;
    let written_off = format!("{key}:written_off");
    assert_eq!((&fee["attempts"], fee["settled_key"].as_str()), (&json!(3), Some(&*written_off)));
    assert_eq!(collection_of(&app, &key).await.0, CollectionState::WrittenOff);
    for n in 1..=3 {
        let calls = sandbox::calls(&app.db, &format!("{key}:collect:{n}")).await.unwrap();
        assert_eq!(calls, ["declined"], "attempt {n}");
    }
    let entry = posted(&app, &written_off).await;
    assert_eq!(entry.kind, EntryKind::FeeWrittenOff);
    assert_eq!(entry.amount_on(accounts::FEES_WRITTEN_OFF), 6_500);
    let owed = accounts::receivable(session.client_id);
    assert_eq!(ledger::balance(&app.db, &owed, "USD").await.unwrap(), 0, "written off");
    assert_eq!(
        fee_emails(&app, &key).await,
        [
            format!("{key}:collect:1:declined"),
            format!("{key}:collect:2:declined"),
            format!("{key}:outstanding"),
            written_off.clone(),
        ]
    );
    let report = reconcile_today(&app).await;
    assert_eq!(
        report.written_off.iter().map(|l| l.key.as_str()).collect::<Vec<_>>(),
        [&*written_off]
    );
    assert!(report.fee_collection.iter().any(|t| t.kind == "written_off" && t.count == 1));

    // Nothing is left to waive.
    let (status, body) =
        app.post(&format!("/v1/fees/{key}/waive"), &finance(&app), json!({"reason": "late"})).await;
    assert_eq!(
        (status, &body["error"]["code"]),
        (StatusCode::CONFLICT, &json!("fee_not_outstanding"))
    );
}

async fn finance_waives_a_fee_during_its_collection(backend: Backend) {
    let app = TestApp::spawn(backend, collecting_on(&[1, 60, 120])).await;
    let (session, key) = declined_fee(&app, 3).await;
    let path = format!("/v1/fees/{key}/waive");
    eventually("the first attempt is declined", || async {
        let (_, fee) = app.get(&format!("/v1/fees/{key}"), &finance(&app)).await;
        if fee["attempts"] == 1 { Ok(()) } else { Err(fee.to_string()) }
    })
    .await;

    // Refused: another role (operators may waive too: tests/tests/operators.rs), no reason or a
    // blank one, a fee that does not exist.
    let reason = json!({"reason": "hardship: the client was in hospital"});
    for role in [Role::Client, Role::Service, Role::Provider] {
        let token = app.token(role, session.client_id);
        assert_eq!(
            app.post(&path, &token, reason.clone()).await.0,
            StatusCode::FORBIDDEN,
            "{role}"
        );
    }
    for body in [json!({}), json!({"reason": "  "}), json!({"reason": "x".repeat(501)})] {
        let (status, answer) = app.post(&path, &finance(&app), body).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
    }
    let ghost = format!("/v1/fees/{}:no_show_fee:r0/waive", session.workflow_id);
    assert_eq!(app.post(&ghost, &finance(&app), reason.clone()).await.0, StatusCode::NOT_FOUND);

    let (status, fee) = app.post(&path, &finance(&app), reason.clone()).await;
    assert_eq!(status, StatusCode::OK, "{fee}");
    assert_eq!((&fee["state"], &fee["waiver"]["reason"]), (&json!("waived"), &reason["reason"]));
    assert_eq!(fee["waiver"]["requested_by"], "finance-1");
    let (ended, history) = collection_of(&app, &key).await;
    assert_eq!(ended, CollectionState::Waived);
    assert!(!history.contains("hospital"), "the reason stays out of Temporal");
    assert!(sandbox::calls(&app.db, &format!("{key}:collect:2")).await.unwrap().is_empty());
    let entry = posted(&app, &format!("{key}:waived")).await;
    assert_eq!((entry.kind, entry.amount_on(accounts::FEES_WAIVED)), (EntryKind::FeeWaived, 6_500));
    let owed = accounts::receivable(session.client_id);
    assert_eq!(ledger::balance(&app.db, &owed, "USD").await.unwrap(), 0, "waived");
    assert!(reconcile_today(&app).await.waived.iter().any(|l| l.key == format!("{key}:waived")));

    let (status, body) = app.post(&path, &finance(&app), reason).await;
    assert_eq!(
        (status, &body["error"]["code"]),
        (StatusCode::CONFLICT, &json!("fee_not_outstanding"))
    );
}
