//! Subscription credits each billing period (issue 11, rule 1), against the real Temporal dev
//! server on both databases: the `Subscription` workflow renews a client's credits period after
//! period with the plan's carry-over, the ledger shows each grant and expiry, the credits
//! endpoint shows the period, and a period's grant retried grants nothing more.

use chrono::{SubsecRound, TimeDelta, Utc};
use livesessions_activities::execute;
use livesessions_activities::storage::ledger::{self, EntryKind, LedgerFilter, accounts};
use livesessions_activities::storage::{clients, credits, subscriptions};
use livesessions_domain::{BillingPeriod, CarryOver, ClientId, Plan, Plans, Renewal, Role};
use livesessions_tests::{
    Backend, TestApp, TestDatabase, TestOptions, eventually, on_both_databases,
    release_histories_dir, test_policy,
};
use reqwest::StatusCode;
use serde_json::json;
use std::collections::BTreeMap;
use std::time::Duration;
use temporalio_client::{WorkflowFetchHistoryOptions, WorkflowHistory};

/// The period of the fast plan.
const PERIOD: Duration = Duration::from_secs(3);

/// The default plans, and `subscription-fast`: 2 credits every 3 s, at most 1 carried over.
fn plans() -> Plans {
    let defaults = Plans::default();
    let plan = |id: &str| defaults.get(id).expect("a default plan").clone();
    let fast = Plan {
        credits: 2,
        period: PERIOD,
        carry_over: CarryOver::UpTo(1),
        ..plan("subscription-standard")
    };
    Plans::new(BTreeMap::from([
        ("subscription-fast".to_string(), fast),
        ("subscription-standard".to_string(), plan("subscription-standard")),
        ("eap-standard".to_string(), plan("eap-standard")),
    ]))
    .expect("valid plans")
}

async fn spawn(backend: Backend) -> TestApp {
    let options = TestOptions { plans: Some(plans()), ..TestOptions::default() };
    TestApp::spawn_with(backend, test_policy(), options).await
}

/// `GET /v1/clients/{id}/credits`: available, and the period shown.
async fn credits_and_period(app: &TestApp, client: ClientId) -> (i64, Option<BillingPeriod>) {
    let (status, body) =
        app.get(&format!("/v1/clients/{client}/credits"), &app.token(Role::Client, client)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let period = serde_json::from_value(body["period"].clone()).expect("a period or null");
    (body["available"].as_i64().expect("available"), period)
}

/// The credits the client's ledger transactions of `kind` moved, by key.
async fn moved(app: &TestApp, client: ClientId, kind: EntryKind) -> BTreeMap<String, i64> {
    let filter = LedgerFilter { client_id: Some(client), ..Default::default() };
    let entries = ledger::entries(&app.db, &filter).await.expect("ledger");
    entries
        .into_iter()
        .filter(|entry| entry.kind == kind)
        .map(|entry| {
            let amount = entry.postings.iter().filter(|p| p.amount > 0).map(|p| p.amount).sum();
            (entry.key, amount)
        })
        .collect()
}

async fn periods_renew_with_their_credits_and_carry_over(backend: Backend) {
    let app = spawn(backend).await;
    let client = app.new_client("subscription", "subscription-fast").await;
    let (available, first) = credits_and_period(&app, client).await;
    let first = first.expect("period 1 begins at enrolment");
    assert_eq!(available, 2);
    assert_eq!((first.number, first.granted, first.carried_over, first.expired), (1, 2, 0, 0));
    assert_eq!(first.ends_at - first.starts_at, TimeDelta::from_std(PERIOD).unwrap());

    // Period 2 keeps 1 of the 2 unused credits and grants 2; period 3 keeps 1 of 3 and grants 2.
    let third = eventually("period 3 begins", || async {
        match credits_and_period(&app, client).await {
            (_, Some(period)) if period.number >= 3 => Ok(period),
            other => Err(format!("{other:?}")),
        }
    })
    .await;
    assert_eq!((third.granted, third.carried_over, third.expired), (2, 1, 2));

    // Off the subscription: the workflow ends when the next period would begin.
    leave_subscription(&app, client).await;
    let workflow_id = client.subscription_workflow_id();
    let handle = app
        .temporal
        .get_workflow_handle::<livesessions_workflows::Subscription>(workflow_id.clone());
    let last = tokio::time::timeout(Duration::from_secs(30), handle.get_result(Default::default()))
        .await
        .expect("the subscription ends")
        .expect("it ends well");
    assert!(last >= 3, "ended after period {last}");

    let (available, latest) = credits_and_period(&app, client).await;
    let latest = latest.expect("the last period");
    assert_eq!(available, 3, "1 carried over and 2 granted");
    assert_eq!(
        (latest.number, latest.granted, latest.carried_over, latest.expired),
        (last, 2, 1, 2)
    );
    let since_enrolment = TimeDelta::from_std(PERIOD * (last - 1)).unwrap();
    assert_eq!(
        latest.starts_at,
        first.starts_at + since_enrolment,
        "periods follow from enrolment"
    );

    // The ledger: one grant of 2 per period, the expiries of periods 2 (1) and later (2 each).
    let key = |step: &str, n: u32| format!("{workflow_id}:{step}:p{n}");
    let grants: BTreeMap<_, _> = (1..=last).map(|n| (key("credit_grant", n), 2)).collect();
    assert_eq!(moved(&app, client, EntryKind::CreditGrant).await, grants);
    let expiries: BTreeMap<_, _> =
        (2..=last).map(|n| (key("credit_expire", n), if n == 2 { 1 } else { 2 })).collect();
    assert_eq!(moved(&app, client, EntryKind::CreditExpire).await, expiries);
    let rows = credits::rows_by_status(&app.db, client).await.expect("credit rows");
    assert_eq!((rows.available, rows.reserved), (3, 0), "the rows agree with the ledger");

    // The last run's history replays against the current code.
    let json = handle
        .fetch_history(WorkflowFetchHistoryOptions::default())
        .to_json()
        .await
        .expect("a history");
    let replayer = livesessions_worker::replay::replayer().expect("a replayer");
    let history = WorkflowHistory::from_json(&json).expect("the history reads back");
    replayer.replay_workflow(history).await.expect("the subscription replays");
    if std::env::var_os("LIVESESSIONS_RECORD_HISTORIES").is_some() && backend == Backend::Postgres {
        let fixture = release_histories_dir().join("subscription_ends_off_the_plan-0.json");
        std::fs::write(fixture, &json).expect("a fixture for the replay test");
    }
}

async fn a_retried_grant_grants_nothing_more(backend: Backend) {
    let app = spawn(backend).await;
    let client = app.new_client("subscription", "subscription-standard").await;
    let balance = || async { credits::balance(&app.db, client).await.expect("balance").available };
    let rows = || async { credits::rows_by_status(&app.db, client).await.expect("rows").available };
    assert_eq!((balance().await, rows().await), (4, 4));

    // Period 2 begun by hand (the workflow would in 30 days), twice at once, then once more.
    let renewal = Renewal { client_id: client, period: 2, starts_at: Utc::now() };
    let renewals = app.renewals();
    let (a, b) = tokio::join!(renewals.renew(&renewal), renewals.renew(&renewal));
    let (a, b) = (a.expect("renewed"), b.expect("renewed"));
    assert_eq!(a, b, "both attempts answer the same period");
    let again = renewals.renew(&renewal).await.expect("renewed again");
    assert_eq!(again, a);
    let period = a.expect("a period");
    assert_eq!((period.granted, period.carried_over, period.expired), (4, 4, 0));
    assert_eq!((balance().await, rows().await), (8, 8), "granted once");
    let grants = moved(&app, client, EntryKind::CreditGrant).await;
    assert_eq!(grants.get(&renewal.grant_key()), Some(&4));
    let issued =
        ledger::balance(&app.db, accounts::ISSUED, accounts::CREDIT).await.expect("issued");
    assert_eq!(issued, -8);

    // Off the subscription, a period never begun is not begun; one begun is answered as it was.
    leave_subscription(&app, client).await;
    let third = Renewal { period: 3, ..renewal.clone() };
    assert_eq!(renewals.renew(&third).await.expect("answered"), None);
    assert_eq!(renewals.renew(&renewal).await.expect("answered"), Some(period));
    assert_eq!(balance().await, 8);
}

/// A subscription client enrolled before billing periods existed: the migration makes their
/// enrolment their period 1, ended at once, so their next `PUT` begins period 2 from now
/// instead of granting period 1 again.
async fn a_client_enrolled_before_periods_renews_from_now(backend: Backend) {
    let (_database, db) = TestDatabase::migrated_before(backend, "20261125180000").await;
    let client = ClientId::random();
    let enrolled = (Utc::now() - TimeDelta::days(90)).trunc_subsecs(0);
    execute!(
        &db,
        sqlx::query(
            "INSERT INTO clients (id, coverage, plan, time_zone, email, display_name, created_at, updated_at)
             VALUES ($1, 'subscription', 'subscription-standard', 'America/New_York', 'c@example.com', 'C', $2, $2)",
        )
        .bind(client.as_uuid())
        .bind(enrolled)
    )
    .expect("a client enrolled before");
    db.migrate().await.expect("every migration");
    let first = subscriptions::latest(&db, client).await.expect("a period").expect("period 1");
    assert_eq!(
        (first.number, first.starts_at, first.ends_at, first.granted),
        (1, enrolled, enrolled, 0)
    );

    let record = clients::get(&db, client).await.expect("read").expect("the client");
    let now = Utc::now().trunc_subsecs(0);
    let plan = plans().get("subscription-standard").expect("the plan").clone();
    let enrolment = clients::upsert(&db, &record, &plan, now).await.expect("written");
    let next = Renewal { client_id: client, period: 2, starts_at: now };
    assert_eq!(enrolment.next_renewal, Some(next));
    let balance = credits::balance(&db, client).await.expect("balance");
    assert_eq!(balance.available, 0, "period 1 is not granted again");
    db.close().await;
}

on_both_databases!(
    periods_renew_with_their_credits_and_carry_over,
    a_retried_grant_grants_nothing_more,
    a_client_enrolled_before_periods_renews_from_now
);

/// Moves `client` from their subscription to the EAP plan.
async fn leave_subscription(app: &TestApp, client: ClientId) {
    let body = json!({"coverage": "eap", "plan": "eap-standard", "time_zone": "America/New_York",
                      "email": "client@example.com", "display_name": "A. Client"});
    let (status, answer) = app
        .call(
            reqwest::Method::PUT,
            &format!("/v1/clients/{client}"),
            Some(&app.service_token()),
            Some(body),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
}
