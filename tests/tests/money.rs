//! Money finance can trust, against the real Temporal dev server and PostgreSQL: a fee is
//! charged exactly once however the processor or the worker fails, an `Idempotency-Key` makes a
//! repeated request harmless, declines stay on the books as outstanding, and reconciliation finds
//! every discrepancy planted in it.

use chrono::{TimeDelta, Utc};
use livesessions::report::{self, ReportFormat};
use livesessions_activities::payments::sandbox::{self, CardBehaviour, Fault};
use livesessions_activities::payments::{Payment, PaymentKind, PaymentProcessor, PaymentStatus};
use livesessions_activities::storage::ledger::{
    self, EntryKind, LedgerFilter, NewEntry, Posting, accounts,
};
use livesessions_activities::with_pool;
use livesessions_domain::{Currency, FeeStatus, Money, Role, SessionSnapshot, SessionState};
use livesessions_tests::{Backend, TestApp, TestOptions, eventually, test_policy};
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::time::Duration;

async fn payments_under(app: &TestApp, key: &str) -> Vec<Payment> {
    let processor = sandbox::SandboxProcessor::new(app.db.clone());
    let day = TimeDelta::days(1);
    let all = processor
        .payments_between(Utc::now() - day, Utc::now() + day)
        .await
        .expect("sandbox payments");
    all.into_iter().filter(|p| p.idempotency_key == key).collect()
}

async fn ledger_under(app: &TestApp, key: &str) -> Vec<ledger::Entry> {
    ledger::entries(&app.db, &LedgerFilter { key: Some(key.to_string()), ..Default::default() })
        .await
        .expect("ledger")
}

async fn cancel(
    app: &TestApp,
    session: &SessionSnapshot,
    key: Option<&str>,
) -> (StatusCode, Value) {
    let mut request = app
        .http
        .post(format!("{}/v1/sessions/{}/cancel", app.address, session.id))
        .bearer_auth(app.token(Role::Client, session.client_id))
        .json(&json!({}));
    if let Some(key) = key {
        request = request.header("Idempotency-Key", key);
    }
    let response = request.send().await.expect("the API answers");
    (response.status(), response.json().await.unwrap_or(Value::Null))
}

/// A session confirmed to start in 5 hours: cancelling it now is late.
async fn late_cancellable(app: &TestApp) -> SessionSnapshot {
    let (client, provider) = app.subscriber_and_therapist().await;
    app.book_confirmed(client, provider, Utc::now() + TimeDelta::hours(5)).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fee_is_charged_once_when_the_processor_times_out_after_charging() {
    let options =
        TestOptions { processor_timeout: Duration::from_secs(2), ..TestOptions::default() };
    let app = TestApp::spawn_with(Backend::Postgres, test_policy(), options).await;
    let session = late_cancellable(&app).await;
    let key = format!("{}:late_cancel_fee:r0", session.workflow_id);
    // The first call charges, then hangs past the client's timeout: the answer is lost.
    sandbox::plan_fault(
        &app.db,
        &key,
        Fault::TimeoutAfterCharge { delay: Duration::from_secs(3) },
        1,
    )
    .await
    .unwrap();

    let (status, body) = cancel(&app, &session, None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["state"], "late_cancelled");
    assert_eq!(body["fees"][0]["status"], "charged");
    assert_eq!(
        sandbox::calls(&app.db, &key).await.unwrap(),
        ["timed_out_after_charge", "succeeded"]
    );
    assert_eq!(payments_under(&app, &key).await.len(), 1, "one charge at the processor");
    let posted = ledger_under(&app, &key).await;
    assert_eq!(posted.len(), 1);
    assert_eq!(posted[0].amount_on(accounts::PROCESSOR), 6_500);
    app.check_histories("a_fee_is_charged_once_when_the_processor_times_out_after_charging").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_killed_during_the_charge_charges_once() {
    let options = TestOptions {
        worker: false,
        processor_timeout: Duration::from_secs(120),
        ..TestOptions::default()
    };
    let app = TestApp::spawn_with(Backend::Postgres, test_policy(), options).await;
    let program = env!("CARGO_BIN_EXE_test-worker");
    let mut first = app.worker_process(program);
    let session = late_cancellable(&app).await;
    let key = format!("{}:late_cancel_fee:r0", session.workflow_id);
    sandbox::plan_fault(
        &app.db,
        &key,
        Fault::TimeoutAfterCharge { delay: Duration::from_secs(120) },
        1,
    )
    .await
    .unwrap();

    let cancelling = {
        let (address, token, id) =
            (app.address.clone(), app.token(Role::Client, session.client_id), session.id);
        let http = app.http.clone();
        tokio::spawn(async move {
            let response = http
                .post(format!("{address}/v1/sessions/{id}/cancel"))
                .bearer_auth(token)
                .json(&json!({}))
                .send()
                .await;
            response.expect("the API answers").json::<Value>().await.expect("json")
        })
    };
    // The charge is made and the worker hangs in the call: kill it there.
    eventually("the processor is charging", || async {
        let calls = sandbox::calls(&app.db, &key).await.unwrap();
        if calls.is_empty() { Err("no call yet".to_string()) } else { Ok(()) }
    })
    .await;
    first.kill().expect("SIGKILL");
    first.wait().expect("the killed worker is reaped");

    let mut second = app.worker_process(program);
    let body = cancelling.await.expect("the cancel request");
    second.kill().expect("SIGKILL");
    second.wait().expect("reaped");
    assert_eq!(body["state"], "late_cancelled", "{body}");
    assert_eq!(body["fees"][0]["status"], "charged");
    assert_eq!(
        sandbox::calls(&app.db, &key).await.unwrap(),
        ["timed_out_after_charge", "succeeded"]
    );
    assert_eq!(payments_under(&app, &key).await.len(), 1);
    assert_eq!(ledger_under(&app, &key).await.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_idempotency_key_acts_once() {
    let app = TestApp::spawn(Backend::Postgres, test_policy()).await;
    let (client, provider) = app.subscriber_and_therapist().await;
    let (available, _) = app.credits(client).await;
    let booking = json!({"client_id": client, "provider_id": provider, "service": "therapy", "modality": "video",
        "duration_minutes": 30, "starts_at": Utc::now() + TimeDelta::hours(5), "time_zone": "UTC",
        "accept_cancellation_policy": true});
    let book = |body: Value| {
        let request = app
            .http
            .post(format!("{}/v1/sessions", app.address))
            .bearer_auth(app.token(Role::Client, client));
        async move {
            let response =
                request.header("Idempotency-Key", "book-1").json(&body).send().await.unwrap();
            (response.status(), response.json::<Value>().await.unwrap())
        }
    };
    let (first_status, first) = book(booking.clone()).await;
    let (second_status, second) = book(booking.clone()).await;
    assert_eq!(first_status, StatusCode::CREATED, "{first}");
    assert_eq!(
        (second_status, &second),
        (first_status, &first),
        "the repeat answers the first response"
    );
    assert_eq!(app.credits(client).await, (available - 1, 1), "one booking, one credit held");
    let mut other = booking.clone();
    other["duration_minutes"] = json!(60);
    let (status, body) = book(other).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["error"]["code"], "idempotency_key_reused");

    let session: SessionSnapshot = serde_json::from_value(first).unwrap();
    let session = app.confirm(&session).await;
    let (status, first) = cancel(&app, &session, Some("cancel-1")).await;
    assert_eq!(status, StatusCode::OK, "{first}");
    let (status, second) = cancel(&app, &session, Some("cancel-1")).await;
    assert_eq!((status, &second), (StatusCode::OK, &first));
    let key = format!("{}:late_cancel_fee:r0", session.workflow_id);
    assert_eq!(payments_under(&app, &key).await.len(), 1);
    assert_eq!(ledger_under(&app, &key).await.len(), 1);
    let (status, _) = cancel(&app, &session, Some("cancel-2")).await;
    assert_eq!(
        status,
        StatusCode::CONFLICT,
        "a new key is a new request, refused by the session's state"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_declined_card_leaves_the_fee_outstanding() {
    let app = TestApp::spawn(Backend::Postgres, test_policy()).await;
    let session = late_cancellable(&app).await;
    sandbox::set_card(&app.db, session.client_id, CardBehaviour::Decline).await.unwrap();
    let (status, body) = cancel(&app, &session, None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let cancelled: SessionSnapshot = serde_json::from_value(body).unwrap();
    assert_eq!(cancelled.state, SessionState::LateCancelled);
    assert_eq!(cancelled.fees[0].status, FeeStatus::Outstanding);
    let key = format!("{}:late_cancel_fee:r0", session.workflow_id);
    let posted = ledger_under(&app, &key).await;
    assert_eq!(
        posted[0].amount_on(&accounts::receivable(session.client_id)),
        6_500,
        "owed by the client"
    );
    assert_eq!(
        payments_under(&app, &key).await[0].status,
        PaymentStatus::Declined("card_declined".into())
    );

    let (status, report) = app
        .get(
            &format!("/v1/reconciliation?date={}", Utc::now().date_naive()),
            &app.token(Role::Finance, "finance"),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{report}");
    assert_eq!(report["outstanding"][0]["key"], key.as_str());

    // A purchase with a declined card buys nothing.
    let (available, _) = app.credits(session.client_id).await;
    let (status, body) = app
        .post(
            &format!("/v1/clients/{}/credits/purchase", session.client_id),
            &app.service_token(),
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::PAYMENT_REQUIRED, "{body}");
    assert_eq!(body["error"]["code"], "payment_declined");
    assert_eq!(app.credits(session.client_id).await.0, available);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconciliation_finds_each_planted_discrepancy() {
    let app = TestApp::spawn(Backend::Postgres, test_policy()).await;
    let finance = app.token(Role::Finance, "finance");
    let session = late_cancellable(&app).await;
    let (status, _) = cancel(&app, &session, None).await;
    assert_eq!(status, StatusCode::OK);
    let fee_key = format!("{}:late_cancel_fee:r0", session.workflow_id);
    let response = app
        .http
        .post(format!("{}/v1/clients/{}/credits/purchase", app.address, session.client_id))
        .bearer_auth(app.token(Role::Client, session.client_id))
        .header("Idempotency-Key", "buy-1")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    let purchase_key = format!("client-{}:credit_purchase:buy-1", session.client_id);
    let (status, refund) = app
        .post("/v1/refunds", &finance, json!({"ledger_key": purchase_key, "amount_minor": 1_000}))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{refund}");
    assert_eq!(refund["kind"], "refund");

    let date = Utc::now().date_naive();
    let clean = livesessions_activities::reconciliation::reconcile(
        &app.db,
        &sandbox::SandboxProcessor::new(app.db.clone()),
        date,
    )
    .await
    .unwrap();
    assert!(clean.is_clean(), "{clean:#?}");
    assert_eq!(clean.matched.len(), 3, "fee, purchase and refund: {clean:#?}");

    // Planted: a charge the ledger never saw, a ledger charge the processor never made, and an
    // amount the processor changed.
    let usd = Currency::parse("USD").unwrap();
    let stray = Payment {
        id: "sbx_ch_stray".into(),
        idempotency_key: "stray-charge".into(),
        kind: PaymentKind::Charge,
        customer: session.client_id,
        amount: Money::new(1_234, usd),
        status: PaymentStatus::Succeeded,
        created_at: Utc::now(),
    };
    sandbox::insert_payment(&app.db, &stray, None).await.unwrap();
    let ghost = NewEntry {
        key: "ghost-fee",
        kind: EntryKind::NoShowFee,
        client_id: session.client_id,
        session_id: Some(session.id),
        processor_ref: Some("sbx_ch_ghost"),
        postings: Posting::money(accounts::PROCESSOR, accounts::NO_SHOW_FEES, Money::new(999, usd))
            .into(),
    };
    ledger::post_alone(&app.db, &ghost, Utc::now()).await.unwrap();
    with_pool!(&app.db, |pool| {
        sqlx::query("UPDATE sandbox_payments SET amount_minor = amount_minor + 1 WHERE idempotency_key = $1")
            .bind(&fee_key)
            .execute(pool)
            .await
            .map(|done| done.rows_affected())
    })
    .unwrap();

    let (status, report) = app.get(&format!("/v1/reconciliation?date={date}"), &finance).await;
    assert_eq!(status, StatusCode::OK, "{report}");
    let keys = |section: &str| -> Vec<String> {
        report[section]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l["key"].as_str().unwrap_or_default().to_string())
            .collect()
    };
    assert_eq!(keys("missing_in_ledger"), ["stray-charge"]);
    assert_eq!(keys("missing_at_processor"), ["ghost-fee"]);
    let mismatch = &report["amount_mismatches"][0];
    assert_eq!(
        (mismatch["ledger"]["key"].as_str(), &mismatch["processor_amount_minor"]),
        (Some(fee_key.as_str()), &json!(6_501))
    );
    assert_eq!(keys("matched").len(), 2, "the purchase and its refund still match");
    let refund_total = report["totals"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["kind"] == "refund")
        .expect("a refund total")
        .clone();
    assert_eq!(
        (refund_total["count"].as_i64(), refund_total["amount_minor"].as_i64()),
        (Some(1), Some(-1_000))
    );

    let parsed: livesessions_activities::reconciliation::Report = {
        let processor = sandbox::SandboxProcessor::new(app.db.clone());
        livesessions_activities::reconciliation::reconcile(&app.db, &processor, date).await.unwrap()
    };
    let table = report::render(&parsed, ReportFormat::Table).unwrap();
    assert!(
        table.contains("DISCREPANCIES")
            && table.contains("ghost-fee")
            && table.contains("6500≠6501"),
        "{table}"
    );
    let csv = report::render(&parsed, ReportFormat::Csv).unwrap();
    assert!(csv.lines().any(|l| l.starts_with("missing_in_ledger,stray-charge,charge,")), "{csv}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_ledger_refuses_updates_and_deletes() {
    let app = TestApp::spawn(Backend::Postgres, test_policy()).await;
    app.subscriber_and_therapist().await;
    for statement in
        ["UPDATE ledger_postings SET amount = amount + 1", "DELETE FROM ledger_transactions"]
    {
        let refused = with_pool!(&app.db, |pool| sqlx::query(statement)
            .execute(pool)
            .await
            .map(|done| done.rows_affected()));
        let message = refused.expect_err("refused").to_string();
        assert!(message.contains("append-only"), "{message}");
    }
    let (status, body) = app.get("/v1/ledger", &app.token(Role::Finance, "finance")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["entries"][0]["kind"], "credit_grant");
    let (status, _) = app.get("/v1/ledger", &app.token(Role::Client, "someone")).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
}
