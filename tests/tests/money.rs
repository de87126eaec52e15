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
use livesessions_api::auth::Caller;
use livesessions_api::idempotency::derived_id;
use livesessions_domain::{
    ClientId, Currency, FeeStatus, Money, PurchaseId, Role, SessionId, SessionSnapshot,
    SessionState,
};
use livesessions_tests::{Backend, TestApp, TestDatabase, TestOptions, eventually, test_policy};
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

/// Buys a credit for `client` as that client, under `key`; answers status, Location and body.
async fn purchase(
    app: &TestApp,
    client: ClientId,
    key: &str,
) -> (StatusCode, Option<String>, Value) {
    let path = format!("/v1/clients/{client}/credits/purchase");
    app.post_with_key(&path, &app.token(Role::Client, client), json!({}), key).await
}

/// Refunds as finance under `key`; answers status and body.
async fn refund(app: &TestApp, body: Value, key: &str) -> (StatusCode, Value) {
    let (status, _, body) =
        app.post_with_key("/v1/refunds", &app.token(Role::Finance, "finance"), body, key).await;
    (status, body)
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
    let (status, _, body) = purchase(&app, session.client_id, "buy-declined").await;
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
    let (status, _, bought) = purchase(&app, session.client_id, "buy-1").await;
    assert_eq!(status, StatusCode::CREATED, "{bought}");
    let refund_body = json!({"ledger_key": bought["ledger_key"], "amount_minor": 1_000});
    let (status, refund) = refund(&app, refund_body, "refund-1").await;
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

/// Issue 11, defect 1: the processor took the fee, but every try lost its answer. Before the
/// fee is recorded as unpaid the processor is asked what it did under the key: it charged, so
/// the fee is charged, once, and reconciliation agrees.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fee_the_processor_took_through_every_timeout_is_recorded_as_charged() {
    let options =
        TestOptions { processor_timeout: Duration::from_secs(1), ..TestOptions::default() };
    let app = TestApp::spawn_with(Backend::Postgres, test_policy(), options).await;
    let session = late_cancellable(&app).await;
    let key = format!("{}:late_cancel_fee:r0", session.workflow_id);
    let lost = Fault::TimeoutAfterCharge { delay: Duration::from_secs(2) };
    sandbox::plan_fault(&app.db, &key, lost, 5).await.unwrap();

    let (status, body) = cancel(&app, &session, None).await;
    assert!(status == StatusCode::OK || status == StatusCode::ACCEPTED, "{status} {body}");
    let ended = app.wait_for(session.id, "the fee is recorded", |s| !s.fees.is_empty()).await;
    assert_eq!(ended.state, SessionState::LateCancelled);
    assert_eq!(ended.fees[0].status, FeeStatus::Charged, "the processor took it: {ended:?}");
    assert_eq!(sandbox::calls(&app.db, &key).await.unwrap(), ["timed_out_after_charge"; 5]);
    let charged = payments_under(&app, &key).await;
    assert_eq!(charged.len(), 1, "one charge at the processor");
    let posted = ledger_under(&app, &key).await;
    assert_eq!(posted.len(), 1);
    assert_eq!(posted[0].amount_on(accounts::PROCESSOR), 6_500, "{posted:?}");
    assert_eq!(posted[0].amount_on(&accounts::receivable(session.client_id)), 0);
    assert_eq!(posted[0].processor_ref.as_deref(), Some(charged[0].id.as_str()));
    let report = livesessions_activities::reconciliation::reconcile(
        &app.db,
        &sandbox::SandboxProcessor::new(app.db.clone()),
        Utc::now().date_naive(),
    )
    .await
    .unwrap();
    assert!(report.is_clean() && report.outstanding.is_empty(), "{report:#?}");
}

/// Issue 11, defect 1: a fee the ledger holds as owed while the processor collected it is a
/// discrepancy, not a clean day.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconciliation_flags_a_fee_owed_in_the_ledger_that_the_processor_collected() {
    let app = TestApp::spawn(Backend::Postgres, test_policy()).await;
    let (client, _) = app.subscriber_and_therapist().await;
    let usd = Currency::parse("USD").unwrap();
    let owed = NewEntry {
        key: "owed-but-collected",
        kind: EntryKind::NoShowFee,
        client_id: client,
        session_id: None,
        processor_ref: None,
        postings: Posting::money(
            accounts::receivable(client),
            accounts::NO_SHOW_FEES,
            Money::new(6_500, usd),
        )
        .into(),
    };
    ledger::post_alone(&app.db, &owed, Utc::now()).await.unwrap();
    let collected = Payment {
        id: "sbx_ch_collected".into(),
        idempotency_key: "owed-but-collected".into(),
        kind: PaymentKind::Charge,
        customer: client,
        amount: Money::new(6_500, usd),
        status: PaymentStatus::Succeeded,
        created_at: Utc::now(),
    };
    sandbox::insert_payment(&app.db, &collected, None).await.unwrap();

    let date = Utc::now().date_naive();
    let (status, report) =
        app.get(&format!("/v1/reconciliation?date={date}"), &app.token(Role::Finance, "f")).await;
    assert_eq!(status, StatusCode::OK, "{report}");
    assert_eq!(report["outstanding"][0]["key"], "owed-but-collected", "{report}");
    let flagged = &report["collected_but_outstanding"][0];
    assert_eq!(
        (flagged["ledger"]["key"].as_str(), &flagged["processor_amount_minor"]),
        (Some("owed-but-collected"), &json!(6_500)),
        "{report}"
    );
    let parsed = livesessions_activities::reconciliation::reconcile(
        &app.db,
        &sandbox::SandboxProcessor::new(app.db.clone()),
        date,
    )
    .await
    .unwrap();
    let table = report::render(&parsed, ReportFormat::Table).unwrap();
    assert!(
        table.contains("DISCREPANCIES") && table.contains("collected_but_outstanding"),
        "{table}"
    );
}

/// Issue 11, defect 2: a credit purchase is a durable step under the caller's
/// Idempotency-Key (required). Its first charge is made and its answer lost; the purchase goes
/// on past the request's timeout (`202`) and finishes on its own; the retry under the same key,
/// after that, answers the one credit it bought, charged once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_credit_purchase_whose_charge_answer_is_lost_charges_once_and_grants_one_credit() {
    let options = TestOptions {
        processor_timeout: Duration::from_secs(2),
        request_timeout: Some(Duration::from_secs(1)),
        ..TestOptions::default()
    };
    let app = TestApp::spawn_with(Backend::Postgres, test_policy(), options).await;
    let (client, _) = app.subscriber_and_therapist().await;
    let (available, _) = app.credits(client).await;

    let path = format!("/v1/clients/{client}/credits/purchase");
    let (status, body) = app.post(&path, &app.token(Role::Client, client), json!({})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["error"]["code"], "idempotency_key_required");

    let caller = livesessions_api::auth::Caller { sub: client.to_string(), role: Role::Client };
    let purchase_id =
        PurchaseId::from_uuid(livesessions_api::idempotency::derived_id(&caller, "buy-1"));
    let key = purchase_id.charge_key();
    let lost = Fault::TimeoutAfterCharge { delay: Duration::from_secs(3) };
    sandbox::plan_fault(&app.db, &key, lost, 1).await.unwrap();

    let (status, location, body) = purchase(&app, client, "buy-1").await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    assert_eq!(location.as_deref(), Some(format!("/v1/clients/{client}/credits").as_str()));
    eventually("the purchase finishes without the caller", || async {
        let posted = ledger_under(&app, &key).await;
        if posted.is_empty() { Err("not yet".to_string()) } else { Ok(()) }
    })
    .await;
    let (status, _, bought) = purchase(&app, client, "buy-1").await;
    assert_eq!(status, StatusCode::CREATED, "the retry answers the purchase: {bought}");
    assert_eq!(bought["ledger_key"], key.as_str());
    assert_eq!(bought["balance"]["available"].as_i64(), Some(available + 1));
    let (status, _, again) = purchase(&app, client, "buy-1").await;
    assert_eq!((status, &again), (StatusCode::CREATED, &bought), "the same purchase");

    assert_eq!(
        sandbox::calls(&app.db, &key).await.unwrap(),
        ["timed_out_after_charge", "succeeded"]
    );
    assert_eq!(payments_under(&app, &key).await.len(), 1, "one charge");
    let posted = ledger_under(&app, &key).await;
    assert_eq!(posted.len(), 1);
    assert_eq!(posted[0].amount_on(accounts::PROCESSOR), 8_500);
    assert_eq!(app.credits(client).await, (available + 1, 0), "one credit");
}

/// Issue 11, defect 3: each refund is its own (named by its Idempotency-Key): two partial
/// refunds both happen, a retried one happens once, and together they never exceed the charge.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_partial_refunds_both_happen_and_a_retried_one_happens_once() {
    let app = TestApp::spawn(Backend::Postgres, test_policy()).await;
    let (client, _) = app.subscriber_and_therapist().await;
    let (status, _, bought) = purchase(&app, client, "buy-1").await;
    assert_eq!(status, StatusCode::CREATED, "{bought}");
    let partial = json!({"ledger_key": bought["ledger_key"], "amount_minor": 1_000});

    let (status, body) =
        app.post("/v1/refunds", &app.token(Role::Finance, "finance"), partial.clone()).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["error"]["code"], "idempotency_key_required");

    let (status, first) = refund(&app, partial.clone(), "refund-1").await;
    assert_eq!(status, StatusCode::CREATED, "{first}");
    let (status, second) = refund(&app, partial.clone(), "refund-2").await;
    assert_eq!(status, StatusCode::CREATED, "{second}");
    assert_ne!(first["key"], second["key"], "two refunds");
    let (status, retried) = refund(&app, partial.clone(), "refund-1").await;
    assert_eq!((status, &retried), (StatusCode::CREATED, &first), "the same refund, once");

    let too_much = json!({"ledger_key": bought["ledger_key"], "amount_minor": 6_501});
    let (status, body) = refund(&app, too_much, "refund-3").await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["error"]["code"], "not_refundable");
    let refunds: Vec<_> =
        ledger::entries(&app.db, &LedgerFilter { client_id: Some(client), ..Default::default() })
            .await
            .unwrap()
            .into_iter()
            .filter(|e| e.kind == EntryKind::Refund)
            .collect();
    assert_eq!(refunds.len(), 2, "{refunds:?}");
    for entry in &refunds {
        let at_processor = payments_under(&app, &entry.key).await;
        assert_eq!(at_processor.len(), 1, "refunded at the processor under its own key");
        assert_eq!(at_processor[0].amount.amount_minor, 1_000);
    }
    let (status, rest) =
        refund(&app, json!({"ledger_key": bought["ledger_key"]}), "refund-4").await;
    assert_eq!(status, StatusCode::CREATED, "{rest}");
    assert_eq!(
        rest["postings"].as_array().unwrap().iter().find(|p| p["account"] == "processor").unwrap()
            ["amount"],
        -6_500,
        "the rest of the charge, no more: {rest}"
    );
}

livesessions_tests::on_both_databases!(
    refunding_a_purchase_in_full_takes_its_unused_credit_back,
    an_insurance_authorization_carries_its_session_in_the_ledger,
    migrating_gives_earlier_authorizations_their_session,
);

/// Issue 11, defect 3: a purchase refunded in full takes back the credit it bought; while a
/// session holds that credit the full refund is refused (a partial one is not).
async fn refunding_a_purchase_in_full_takes_its_unused_credit_back(backend: Backend) {
    let app = TestApp::spawn(backend, test_policy()).await;
    let (client, provider) = app.subscriber_and_therapist().await;
    let (available, _) = app.credits(client).await;
    let (status, _, bought) = purchase(&app, client, "buy-1").await;
    assert_eq!(status, StatusCode::CREATED, "{bought}");
    assert_eq!(app.credits(client).await, (available + 1, 0));
    let (status, body) = refund(&app, json!({"ledger_key": bought["ledger_key"]}), "r-1").await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(app.credits(client).await, (available, 0), "the credit is taken back");
    let revoke = format!("{}:credit_revoke", bought["ledger_key"].as_str().unwrap());
    assert_eq!(ledger_under(&app, &revoke).await.len(), 1);

    // A credit bought and held by a booking cannot be refunded in full.
    for hours in 0..available {
        app.book(client, provider, Utc::now() + TimeDelta::hours(5 + hours)).await;
    }
    let body = json!({"client_id": client, "provider_id": provider, "service": "therapy", "modality": "video",
        "duration_minutes": 30, "starts_at": Utc::now() + TimeDelta::hours(20), "time_zone": "UTC",
        "accept_cancellation_policy": true, "purchase_credit": true});
    let (status, held) = app.post("/v1/sessions", &app.token(Role::Client, client), body).await;
    assert_eq!(status, StatusCode::CREATED, "{held}");
    let purchase_key = format!("{}:credit_purchase", held["workflow_id"].as_str().unwrap());
    let (status, body) = refund(&app, json!({"ledger_key": purchase_key}), "r-2").await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(body["error"]["code"], "credit_already_used");
    let (status, body) =
        refund(&app, json!({"ledger_key": purchase_key, "amount_minor": 500}), "r-3").await;
    assert_eq!(status, StatusCode::CREATED, "a partial refund is a discount: {body}");
    assert_eq!(app.credits(client).await, (0, available + 1), "every credit still held");
}

/// A refund whose processor call refunds but loses its answer is not "nothing changed": it
/// answers `202` with where to look (the purchase's credit is already taken back), and the same
/// request with the same key finishes it, refunding once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refund_the_processor_does_not_confirm_answers_202_and_its_retry_refunds_once() {
    let options =
        TestOptions { processor_timeout: Duration::from_secs(1), ..TestOptions::default() };
    let app = TestApp::spawn_with(Backend::Postgres, test_policy(), options).await;
    let (client, _) = app.subscriber_and_therapist().await;
    let (available, _) = app.credits(client).await;
    let (status, _, bought) = purchase(&app, client, "buy-1").await;
    assert_eq!(status, StatusCode::CREATED, "{bought}");
    let ledger_key = bought["ledger_key"].as_str().unwrap().to_string();
    let finance = Caller { sub: "finance".into(), role: Role::Finance };
    let refund_key = format!("{ledger_key}:refund:{}", derived_id(&finance, "r-lost"));
    let lost = Fault::TimeoutAfterCharge { delay: Duration::from_secs(2) };
    sandbox::plan_fault(&app.db, &refund_key, lost, 1).await.unwrap();

    let (status, location, body) = app
        .post_with_key(
            "/v1/refunds",
            &app.token(Role::Finance, "finance"),
            json!({"ledger_key": ledger_key}),
            "r-lost",
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    assert_eq!(location.as_deref(), Some(format!("/v1/ledger?client_id={client}").as_str()));
    assert_eq!(payments_under(&app, &refund_key).await.len(), 1, "the processor refunded");
    assert!(ledger_under(&app, &refund_key).await.is_empty(), "not posted yet");
    assert_eq!(app.credits(client).await, (available, 0), "the credit is taken back");

    let (status, body) = refund(&app, json!({"ledger_key": ledger_key}), "r-lost").await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["key"], refund_key.as_str());
    assert_eq!(payments_under(&app, &refund_key).await.len(), 1, "refunded once");
    assert_eq!(ledger_under(&app, &refund_key).await.len(), 1);
    assert_eq!(app.credits(client).await, (available, 0));
}

/// Issue 11, defect 4: an insurance authorization's ledger transaction names the session after
/// which the client authorized, and so does reconciliation.
async fn an_insurance_authorization_carries_its_session_in_the_ledger(backend: Backend) {
    let app = TestApp::spawn(backend, test_policy()).await;
    let client = app.new_client("insurance", "insurance-standard").await;
    let provider = app.new_provider("therapist").await;
    let session = app.book_confirmed(client, provider, Utc::now() + TimeDelta::minutes(1)).await;
    app.take_place(&session).await;
    app.wait_for_state(session.id, SessionState::Completed).await;
    let (status, body) = app
        .post(
            &format!("/v1/sessions/{}/authorize-next", session.id),
            &app.token(Role::Client, client),
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");

    let finance = app.token(Role::Finance, "finance");
    let (status, page) = app.get(&format!("/v1/ledger?session_id={}", session.id), &finance).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    let authorization = page["entries"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["kind"] == "insurance_authorization")
        .unwrap_or_else(|| panic!("the session's ledger shows its authorization: {page}"))
        .clone();
    assert_eq!(authorization["workflow_id"], session.workflow_id.as_str());
    let date = Utc::now().date_naive();
    let (status, report) = app.get(&format!("/v1/reconciliation?date={date}"), &finance).await;
    assert_eq!(status, StatusCode::OK, "{report}");
    let line = &report["authorizations"][0];
    assert_eq!(
        (line["session_id"].as_str(), &line["amount_minor"]),
        (Some(session.id.to_string().as_str()), &json!(2_000)),
        "{report}"
    );
}

/// Issue 11, defect 4: an authorization posted before the fix (no session id) gets the session
/// its key names when the database is migrated.
async fn migrating_gives_earlier_authorizations_their_session(backend: Backend) {
    let (_database, db) = TestDatabase::migrated_before(backend, "20261125120000").await;

    let (session, client) = (SessionId::random(), ClientId::random());
    let key = format!("{}:next_authorization", session.workflow_id());
    let before = NewEntry {
        key: &key,
        kind: EntryKind::InsuranceAuthorization,
        client_id: client,
        session_id: None,
        processor_ref: None,
        postings: Posting::units(accounts::ISSUED, accounts::available(client), accounts::AUTH, 1)
            .into(),
    };
    ledger::post_alone(&db, &before, Utc::now()).await.unwrap();
    db.migrate().await.expect("every migration");
    let entry = ledger::entry(&db, &key).await.unwrap().expect("the authorization");
    assert_eq!(entry.session_id, Some(session));
    assert_eq!(entry.workflow_id, Some(session.workflow_id()));
    db.close().await;
}
