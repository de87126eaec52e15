//! Issue 12, item 4: operators repair sessions, on the record. Every operator action, end to end
//! on the Temporal dev server and a real database: its effect on the session, the fees and the
//! credits, its entry in the audit log (and nothing of its reason there), its reason kept in
//! the database, and its update by name in the workflow's history. The audit log refuses
//! updates and deletes on both databases.

use chrono::{TimeDelta, Utc};
use livesessions_activities::payments::sandbox::{self, Fault};
use livesessions_activities::storage::ledger::{self, EntryKind, accounts};
use livesessions_activities::with_pool;
use livesessions_domain::{ActionId, ClientId, CreditId, Role, SessionSnapshot};
use livesessions_tests::{Backend, TestApp, eventually, test_policy};
use livesessions_worker::{CreditAdjustments, TemporalSettings};
use livesessions_workflows::activities::Adjustment;
use livesessions_workflows::{CreditAdjustment, FeeCollection, LiveSession};
use reqwest::StatusCode;
use serde_json::{Value, json};
use temporalio_client::WorkflowFetchHistoryOptions;

/// The operator of these tests.
const OPERATOR: &str = "operator-ada";

fn operator(app: &TestApp) -> String {
    app.token(Role::Operator, OPERATOR)
}

/// What a call answered: status, body and the request id it was answered under.
struct Answer {
    status: StatusCode,
    body: Value,
    request_id: String,
}

/// `POST path` as `token` with `body`, a request id of our own and, if given, an
/// `Idempotency-Key`.
async fn post(app: &TestApp, path: &str, token: &str, body: Value, key: Option<&str>) -> Answer {
    let request_id = format!("req-{}", uuid::Uuid::new_v4().simple());
    let mut request = app
        .http
        .post(format!("{}{path}", app.address))
        .bearer_auth(token)
        .header("X-Request-Id", &request_id)
        .json(&body);
    if let Some(key) = key {
        request = request.header("Idempotency-Key", key);
    }
    let response = request.send().await.expect("the API answers");
    let status = response.status();
    let echoed = response.headers()["x-request-id"].to_str().expect("text").to_string();
    assert_eq!(echoed, request_id, "the answer carries the request's id");
    let body = response.json().await.unwrap_or(Value::Null);
    Answer { status, body, request_id }
}

/// The audit log's entries about `subject`, newest first, as finance reads them.
async fn audit_about(app: &TestApp, subject: &str) -> Vec<Value> {
    let finance = app.token(Role::Finance, "finance-1");
    let (status, page) =
        app.get(&format!("/v1/audit?subject_id={}", urlencode(subject)), &finance).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    page["entries"].as_array().expect("entries").clone()
}

fn urlencode(text: &str) -> String {
    text.replace(':', "%3A")
}

/// The one audit entry of the call answered under `answer.request_id`, which must be about
/// `subject`: it names the operator, the route, and the status, and nothing of the body.
async fn audited(app: &TestApp, subject: &str, action: &str, answer: &Answer) -> Value {
    let entries = audit_about(app, subject).await;
    let mine: Vec<&Value> =
        entries.iter().filter(|entry| entry["request_id"] == answer.request_id).collect();
    assert_eq!(mine.len(), 1, "one entry for the call: {entries:#?}");
    let entry = mine[0].clone();
    assert_eq!(entry["action"], action, "{entry}");
    assert_eq!(entry["actor"], OPERATOR, "{entry}");
    assert_eq!(entry["role"], "operator", "{entry}");
    assert_eq!(entry["outcome"], answer.status.as_u16(), "{entry}");
    assert!(entry["subject_ids"].as_array().unwrap().contains(&json!(subject)), "{entry}");
    entry
}

/// The names of the updates a workflow's history accepted, oldest first, with whether each
/// completed.
async fn updates_in_history<W: temporalio_common::HasWorkflowDefinition>(
    app: &TestApp,
    workflow_id: &str,
) -> Vec<(String, bool)> {
    let handle = app.temporal.get_workflow_handle::<W>(workflow_id.to_string());
    let json = handle
        .fetch_history(WorkflowFetchHistoryOptions::default())
        .to_json()
        .await
        .expect("a history");
    let history: Value = serde_json::from_slice(&json).expect("history JSON");
    let events = history["events"].as_array().expect("events");
    let completed: Vec<&Value> = events
        .iter()
        .filter_map(|e| e["attributes"].get("WorkflowExecutionUpdateCompletedEventAttributes"))
        .map(|a| &a["accepted_event_id"])
        .collect();
    events
        .iter()
        .filter_map(|e| {
            let accepted = e["attributes"].get("WorkflowExecutionUpdateAcceptedEventAttributes")?;
            let name = accepted["accepted_request"]["input"]["name"].as_str()?.to_string();
            Some((name, completed.contains(&&e["event_id"])))
        })
        .collect()
}

/// Whether the history of `workflow_id` accepted and completed an update named `name`.
async fn has_update<W: temporalio_common::HasWorkflowDefinition>(
    app: &TestApp,
    workflow_id: &str,
    name: &str,
) -> bool {
    updates_in_history::<W>(app, workflow_id).await.contains(&(name.to_string(), true))
}

/// The reason and request id kept for the action whose reason is `reason`, if any.
async fn kept_reason(app: &TestApp, reason: &str) -> Option<(String, String, String)> {
    with_pool!(&app.db, |pool| {
        sqlx::query_as(
            "SELECT action, requested_by, request_id FROM operator_actions WHERE reason = $1",
        )
        .bind(reason)
        .fetch_optional(pool)
        .await
    })
    .expect("operator actions")
}

fn snapshot(body: &Value) -> SessionSnapshot {
    serde_json::from_value(body.clone()).expect("a session")
}

livesessions_tests::on_both_databases!(
    an_operator_grants_and_removes_credits,
    the_audit_log_is_append_only_and_read_by_operators_and_finance,
);

/// A late cancellation on the client's behalf with the fee waived: late_cancelled, the credit
/// lost, nothing charged, the fee posted and waived (`fee_waived`, the ledger kind finance's
/// waiver posts) with the operator's reason as the waiver's; in the audit log (with the fee's
/// key, without the reason) and in the history as `operator_cancel`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_cancels_late_for_the_client_and_waives_the_fee() {
    let app = TestApp::spawn(Backend::Postgres, test_policy()).await;
    let (client, provider) = app.subscriber_and_therapist().await;
    let session = app.book_confirmed(client, provider, Utc::now() + TimeDelta::hours(5)).await;
    let fee_key = format!("{}:late_cancel_fee:r0", session.workflow_id);
    let reason = "client admitted to hospital";

    let path = format!("/v1/sessions/{}/operator/cancel", session.id);
    let body = json!({"on_behalf_of": "client", "reason": reason, "fee": "waive"});
    let answer = post(&app, &path, &operator(&app), body, None).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    let cancelled = snapshot(&answer.body);
    assert_eq!(cancelled.state.as_str(), "late_cancelled");
    assert_eq!(answer.body["outcome"], "client_cancelled_late");
    assert_eq!(answer.body["credit"]["status"], "forfeited");
    assert_eq!(answer.body["fees"][0]["status"], "waived", "{}", answer.body);
    assert_eq!(answer.body["fees"][0]["key"], fee_key.as_str());

    // Nothing charged; the fee posted as owed and waived at once, as finance waives.
    assert!(sandbox::calls(&app.db, &fee_key).await.unwrap().is_empty(), "no charge was tried");
    let owed = ledger::entry(&app.db, &fee_key).await.unwrap().expect("the fee posted");
    assert_eq!(owed.kind, EntryKind::LateCancelFee);
    assert_eq!(owed.amount_on(accounts::PROCESSOR), 0);
    let waived = ledger::entry(&app.db, &format!("{fee_key}:waived")).await.unwrap();
    assert_eq!(waived.expect("the waiver posted").kind, EntryKind::FeeWaived);
    let finance = app.token(Role::Finance, "finance-1");
    let (status, fee) = app.get(&format!("/v1/fees/{fee_key}"), &finance).await;
    assert_eq!(status, StatusCode::OK, "{fee}");
    assert_eq!(fee["state"], "waived", "{fee}");
    assert_eq!(fee["settled_key"], format!("{fee_key}:waived"));
    assert_eq!(
        (&fee["waiver"]["reason"], &fee["waiver"]["requested_by"]),
        (&json!(reason), &json!(OPERATOR))
    );
    let kinds = app.wait_for_messages(client, 3).await;
    assert_eq!(kinds.last().map(String::as_str), Some("session_late_cancelled_fee_waived"));

    // On the record: the audit entry (about the session and the fee, no reason), the reason
    // kept under the same request id, the update in the session's history.
    let entry =
        audited(&app, &session.id.to_string(), "POST /v1/sessions/{id}/operator/cancel", &answer)
            .await;
    assert!(entry["subject_ids"].as_array().unwrap().contains(&json!(fee_key)), "{entry}");
    assert!(!entry.to_string().contains("hospital"), "no reason in the audit log: {entry}");
    assert_eq!(audit_about(&app, &fee_key).await[0]["request_id"], answer.request_id.as_str());
    let kept = kept_reason(&app, reason).await.expect("the reason is kept");
    assert_eq!(kept, ("cancel".into(), OPERATOR.into(), answer.request_id.clone()));
    assert!(has_update::<LiveSession>(&app, &session.workflow_id, "operator_cancel").await);
    app.check_histories("operator_cancel_waives").await;
}

/// On the provider's behalf an operator's cancellation costs the client nothing and the fee
/// decision changes nothing; a second one finds the session ended (`409`, its reason not
/// kept), and another role is `403`: each answer in the audit log.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_cancels_for_the_provider_and_refusals_are_on_the_record() {
    let app = TestApp::spawn(Backend::Postgres, test_policy()).await;
    let (client, provider) = app.subscriber_and_therapist().await;
    let session = app.book_confirmed(client, provider, Utc::now() + TimeDelta::hours(5)).await;
    let path = format!("/v1/sessions/{}/operator/cancel", session.id);
    let body =
        |reason: &str| json!({"on_behalf_of": "provider", "reason": reason, "fee": "charge"});

    let service = app.service_token();
    let forbidden = post(&app, &path, &service, body("not mine to do"), None).await;
    assert_eq!(forbidden.status, StatusCode::FORBIDDEN, "{}", forbidden.body);
    let answer = post(&app, &path, &operator(&app), body("provider left the practice"), None).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    assert_eq!(answer.body["state"], "cancelled");
    assert_eq!(answer.body["outcome"], "provider_cancelled");
    assert_eq!(answer.body["credit"]["status"], "released");
    assert_eq!(answer.body["fees"], json!([]));
    assert_eq!(app.credits(client).await, (4, 0), "the client has their credit back");
    let again = post(&app, &path, &operator(&app), body("twice"), None).await;
    assert_eq!(again.status, StatusCode::CONFLICT, "{}", again.body);
    assert_eq!(again.body["error"]["code"], "session_state_conflict");

    let subject = session.id.to_string();
    audited(&app, &subject, "POST /v1/sessions/{id}/operator/cancel", &answer).await;
    audited(&app, &subject, "POST /v1/sessions/{id}/operator/cancel", &again).await;
    let entries = audit_about(&app, &subject).await;
    let refused = entries.iter().find(|e| e["request_id"] == forbidden.request_id).expect("403");
    assert_eq!((&refused["role"], &refused["outcome"]), (&json!("service"), &json!(403)));
    assert!(kept_reason(&app, "provider left the practice").await.is_some());
    assert!(kept_reason(&app, "twice").await.is_none(), "a refused action leaves no reason");
    assert!(kept_reason(&app, "not mine to do").await.is_none());
    assert!(has_update::<LiveSession>(&app, &session.workflow_id, "operator_cancel").await);
}

/// One change at a time holds for operators: while the client's late cancellation is being
/// carried out (its charge retried), an operator's end is refused with `change_in_progress`,
/// and changes nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_action_during_another_change_is_refused() {
    let app = TestApp::spawn(Backend::Postgres, test_policy()).await;
    let (client, provider) = app.subscriber_and_therapist().await;
    let session = app.book_confirmed(client, provider, Utc::now() + TimeDelta::hours(5)).await;
    let fee_key = format!("{}:late_cancel_fee:r0", session.workflow_id);
    // The charge fails twice before it goes through: in flight about three seconds.
    sandbox::plan_fault(&app.db, &fee_key, Fault::FailBeforeCharge, 2).await.unwrap();
    let (cancel_path, client_token) =
        (format!("/v1/sessions/{}/cancel", session.id), app.token(Role::Client, client));
    let cancel = app.post(&cancel_path, &client_token, json!({}));
    let end = async {
        eventually("the client's cancellation is being charged", || async {
            let calls = sandbox::calls(&app.db, &fee_key).await.map_err(|e| e.to_string())?;
            if calls.is_empty() { Err("no call yet".to_string()) } else { Ok(()) }
        })
        .await;
        let path = format!("/v1/sessions/{}/operator/end", session.id);
        let body = json!({"outcome": "cancelled", "reason": "duplicate booking"});
        post(&app, &path, &operator(&app), body, None).await
    };
    let ((status, cancelled), refused) = tokio::join!(cancel, end);
    assert_eq!(refused.status, StatusCode::CONFLICT, "{}", refused.body);
    assert_eq!(refused.body["error"]["code"], "change_in_progress", "{}", refused.body);
    assert_eq!(status, StatusCode::OK, "{cancelled}");
    assert_eq!(cancelled["state"], "late_cancelled");
    assert_eq!(cancelled["fees"][0]["status"], "charged");
    assert!(kept_reason(&app, "duplicate booking").await.is_none());
    audited(&app, &session.id.to_string(), "POST /v1/sessions/{id}/operator/end", &refused).await;
    let updates = updates_in_history::<LiveSession>(&app, &session.workflow_id).await;
    assert!(!updates.iter().any(|(name, _)| name == "operator_end"), "refused: {updates:?}");
}

/// Stuck sessions end as the operator says: in progress (the room never ended) as completed,
/// the credit consumed; after the provider's absence as cancelled, the credit back and the
/// workflow done at once instead of at the reschedule offer's end. A session that has not
/// started cannot be ended as completed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_ends_stuck_sessions() {
    let app = TestApp::spawn(Backend::Postgres, test_policy()).await;
    let (client, provider) = app.subscriber_and_therapist().await;
    let running = app.book_confirmed(client, provider, Utc::now() + TimeDelta::minutes(5)).await;
    for party in [livesessions_domain::Party::Client, livesessions_domain::Party::Provider] {
        let join = livesessions_workflows::Join { party, at: Utc::now() };
        app.sessions.joined(running.id, join).await.expect("the join is told");
    }
    app.wait_for_state(running.id, livesessions_domain::SessionState::InProgress).await;
    let path = format!("/v1/sessions/{}/operator/end", running.id);
    let body = json!({"outcome": "completed", "reason": "the room never reported its end"});
    let answer = post(&app, &path, &operator(&app), body, None).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    assert_eq!(answer.body["state"], "completed");
    assert_eq!(answer.body["outcome"], "completed_by_operator");
    assert_eq!(answer.body["credit"]["status"], "consumed");
    audited(&app, &running.id.to_string(), "POST /v1/sessions/{id}/operator/end", &answer).await;
    assert!(has_update::<LiveSession>(&app, &running.workflow_id, "operator_end").await);

    let absent = app.book_confirmed(client, provider, Utc::now() + TimeDelta::days(2)).await;
    let early = post(
        &app,
        &format!("/v1/sessions/{}/operator/end", absent.id),
        &operator(&app),
        json!({"outcome": "completed", "reason": "too early"}),
        None,
    )
    .await;
    assert_eq!(early.status, StatusCode::CONFLICT, "{}", early.body);
    assert_eq!(early.body["error"]["code"], "session_state_conflict");
    let unavailable = format!("/v1/sessions/{}/provider-unavailable", absent.id);
    let (status, body) =
        app.post(&unavailable, &app.token(Role::Provider, provider), json!({})).await;
    assert_eq!(
        (status, &body["state"]),
        (StatusCode::OK, &json!("provider_unavailable")),
        "{body}"
    );
    assert_eq!(app.credits(client).await, (2, 1), "the absent provider's session keeps its credit");
    let path = format!("/v1/sessions/{}/operator/end", absent.id);
    let body = json!({"outcome": "cancelled", "reason": "client does not want another time"});
    let answer = post(&app, &path, &operator(&app), body, None).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    assert_eq!(answer.body["state"], "cancelled");
    assert_eq!(answer.body["outcome"], "cancelled_by_operator");
    assert_eq!(answer.body["credit"]["status"], "released");
    assert_eq!(app.credits(client).await, (3, 0));
    let handle = app.temporal.get_workflow_handle::<LiveSession>(absent.workflow_id.clone());
    let ended = handle.get_result(Default::default()).await.expect("the workflow has ended");
    assert_eq!(ended.state.as_str(), "cancelled");
    audited(&app, &absent.id.to_string(), "POST /v1/sessions/{id}/operator/end", &answer).await;
    assert!(has_update::<LiveSession>(&app, &absent.workflow_id, "operator_end").await);
    app.check_histories("operator_end").await;
}

/// A resend sends the last notice's email again under a key of its own (twice, two keys), and
/// changes nothing the session shows; an ended session has nothing to resend (`409`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_resends_the_last_notice() {
    let app = TestApp::spawn(Backend::Postgres, test_policy()).await;
    let (client, provider) = app.subscriber_and_therapist().await;
    let session = app.book_confirmed(client, provider, Utc::now() + TimeDelta::days(3)).await;
    let path = format!("/v1/sessions/{}/operator/resend-notice", session.id);
    for n in 1..=2 {
        let answer = post(&app, &path, &operator(&app), json!({}), None).await;
        assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
        assert_eq!(snapshot(&answer.body), session, "nothing the session shows changed");
        audited(
            &app,
            &session.id.to_string(),
            "POST /v1/sessions/{id}/operator/resend-notice",
            &answer,
        )
        .await;
        let key = format!("{}:confirmed_notice:resend{n}:email", session.workflow_id);
        eventually(&format!("{key} is sent"), || async {
            let sent: Option<bool> = with_pool!(&app.db, |pool| {
                sqlx::query_scalar("SELECT sent_at IS NOT NULL FROM outbox WHERE key = $1")
                    .bind(&key)
                    .fetch_optional(pool)
                    .await
            })
            .map_err(|e| e.to_string())?;
            if sent == Some(true) { Ok(()) } else { Err(format!("{sent:?}")) }
        })
        .await;
    }
    let updates = updates_in_history::<LiveSession>(&app, &session.workflow_id).await;
    let resends = updates.iter().filter(|(name, done)| name == "resend_notice" && *done).count();
    assert_eq!(resends, 2, "{updates:?}");

    let cancel = format!("/v1/sessions/{}/cancel", session.id);
    let (status, _) = app.post(&cancel, &app.token(Role::Client, client), json!({})).await;
    assert_eq!(status, StatusCode::OK);
    let ended = post(&app, &path, &operator(&app), json!({}), None).await;
    assert_eq!(ended.status, StatusCode::CONFLICT, "{}", ended.body);
    assert_eq!(ended.body["error"]["code"], "session_state_conflict");
}

/// An operator waives an outstanding fee through finance's waiver: the `waive` update of its
/// collection, `fee_waived` posted; on the record.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_waives_an_outstanding_fee_as_finance_does() {
    let app = TestApp::spawn(Backend::Postgres, test_policy()).await;
    let (client, provider) = app.subscriber_and_therapist().await;
    let session = app.book_confirmed(client, provider, Utc::now() + TimeDelta::hours(5)).await;
    let fee_key = format!("{}:late_cancel_fee:r0", session.workflow_id);
    sandbox::plan_fault(&app.db, &fee_key, Fault::Decline, 1).await.unwrap();
    let cancel = format!("/v1/sessions/{}/cancel", session.id);
    let (status, body) = app.post(&cancel, &app.token(Role::Client, client), json!({})).await;
    assert_eq!((status, &body["fees"][0]["status"]), (StatusCode::OK, &json!("outstanding")));

    let path = format!("/v1/fees/{fee_key}/waive");
    let answer =
        post(&app, &path, &operator(&app), json!({"reason": "card stolen, goodwill"}), None).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    assert_eq!(answer.body["state"], "waived");
    assert_eq!(answer.body["waiver"]["requested_by"], OPERATOR);
    let waived = ledger::entry(&app.db, &format!("{fee_key}:waived")).await.unwrap();
    assert_eq!(waived.expect("posted").kind, EntryKind::FeeWaived);
    audited(&app, &fee_key, "POST /v1/fees/{fee_key}/waive", &answer).await;
    let collection = format!("fee-collection-{fee_key}");
    assert!(has_update::<FeeCollection>(&app, &collection, "waive").await);
}

/// Credits granted and removed by an operator: each its own `CreditAdjustment` workflow with
/// the update by name, a keyed ledger transaction, the balance moved; a removal with nothing
/// free is refused and changes nothing; asked again (the same action), the answer is the same
/// credit, moved once.
async fn an_operator_grants_and_removes_credits(backend: Backend) {
    let app = TestApp::spawn(backend, test_policy()).await;
    let client = app.new_client("insurance", "insurance-standard").await;
    assert_eq!(app.credits(client).await, (1, 0), "one authorization from intake");
    let grant = format!("/v1/clients/{client}/credits/grant");
    let remove = format!("/v1/clients/{client}/credits/remove");
    let key = uuid::Uuid::new_v4().to_string();
    let reason = |what: &str| json!({"reason": format!("{what} {}", uuid::Uuid::new_v4())});

    let granted = post(&app, &grant, &operator(&app), reason("goodwill"), Some(&key)).await;
    assert_eq!(granted.status, StatusCode::OK, "{}", granted.body);
    assert_eq!(granted.body["balance"], json!({"available": 2, "reserved": 0}));
    let credit: CreditId = serde_json::from_value(granted.body["credit_id"].clone()).unwrap();
    let action: ActionId = serde_json::from_value(granted.body["action_id"].clone()).unwrap();
    let workflow = action.credit_adjustment_workflow_id();
    let entry = ledger::entry(&app.db, &format!("{workflow}:credit_grant")).await.unwrap();
    assert_eq!(entry.expect("the grant posted").kind, EntryKind::CreditGrant);
    assert!(has_update::<CreditAdjustment>(&app, &workflow, "grant_credit").await);
    let audit =
        audited(&app, &client.to_string(), "POST /v1/clients/{client_id}/credits/grant", &granted)
            .await;
    assert!(audit["subject_ids"].as_array().unwrap().contains(&json!(credit.to_string())));
    // The same action again, past the HTTP layer: the ended workflow answers the same credit.
    let adjustments = CreditAdjustments::new(
        app.temporal.clone(),
        &TemporalSettings { task_queue: app.task_queue.clone(), ..TemporalSettings::default() },
    );
    let again = adjustments.adjust(action, client, Adjustment::Grant).await.expect("answered");
    assert_eq!(again, credit);
    assert_eq!(app.credits(client).await, (2, 0), "granted once");

    for expected in [1, 0] {
        let removed = post(&app, &remove, &operator(&app), reason("duplicate grant"), None).await;
        assert_eq!(removed.status, StatusCode::OK, "{}", removed.body);
        assert_eq!(removed.body["balance"]["available"], expected);
        let action: ActionId = serde_json::from_value(removed.body["action_id"].clone()).unwrap();
        let workflow = action.credit_adjustment_workflow_id();
        let entry = ledger::entry(&app.db, &format!("{workflow}:credit_revoke")).await.unwrap();
        assert_eq!(entry.expect("the removal posted").kind, EntryKind::CreditRevoke);
        assert!(has_update::<CreditAdjustment>(&app, &workflow, "remove_credit").await);
        audited(&app, &client.to_string(), "POST /v1/clients/{client_id}/credits/remove", &removed)
            .await;
    }
    let nothing = post(&app, &remove, &operator(&app), json!({"reason": "one more"}), None).await;
    assert_eq!(nothing.status, StatusCode::CONFLICT, "{}", nothing.body);
    assert_eq!(nothing.body["error"]["code"], "no_free_credit");
    assert!(kept_reason(&app, "one more").await.is_none());
    assert_eq!(app.credits(client).await, (0, 0));

    let ghost = ClientId::random();
    let unknown = post(
        &app,
        &format!("/v1/clients/{ghost}/credits/grant"),
        &operator(&app),
        reason("x"),
        None,
    )
    .await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND, "{}", unknown.body);
    let service = post(&app, &grant, &app.service_token(), reason("x"), None).await;
    assert_eq!(service.status, StatusCode::FORBIDDEN);
}

/// The database refuses to change or remove audit entries; operators and finance read them,
/// filtered by subject, actor and time and paged newest first; a call without a valid token is
/// recorded without an actor; others may not read them.
async fn the_audit_log_is_append_only_and_read_by_operators_and_finance(backend: Backend) {
    let app = TestApp::spawn(backend, test_policy()).await;
    let started = Utc::now();
    let (client, provider) = app.subscriber_and_therapist().await;
    let anonymous = app.call(reqwest::Method::POST, "/v1/sessions", None, Some(json!({}))).await;
    assert_eq!(anonymous.0, StatusCode::UNAUTHORIZED);

    for statement in [
        "UPDATE audit_log SET outcome = 200",
        "DELETE FROM audit_log",
        "UPDATE audit_subjects SET subject_id = 'x'",
        "DELETE FROM audit_subjects",
    ] {
        let refused = with_pool!(&app.db, |pool| sqlx::query(statement)
            .execute(pool)
            .await
            .map(|done| done.rows_affected()));
        let message = refused.expect_err(statement).to_string();
        assert!(message.contains("append-only"), "{statement}: {message}");
    }

    let read = |token: String, query: String| {
        let app = &app;
        async move { app.get(&format!("/v1/audit{query}"), &token).await }
    };
    for role in [Role::Client, Role::Provider, Role::Service] {
        let (status, _) = read(app.token(role, client), String::new()).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{role}");
    }
    let (status, page) = read(app.token(Role::Operator, OPERATOR), String::new()).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    let entries = page["entries"].as_array().unwrap();
    assert_eq!(entries.len(), 3, "{page:#}");
    let newest = &entries[0];
    assert_eq!(newest["action"], "POST /v1/sessions");
    assert_eq!(
        (&newest["actor"], &newest["role"], &newest["outcome"]),
        (&Value::Null, &Value::Null, &json!(401))
    );
    assert_eq!(entries[1]["action"], "PUT /v1/providers/{provider_id}");
    assert_eq!(entries[1]["subject_ids"], json!([provider.to_string()]));
    assert_eq!(entries[2]["actor"], "test-service");
    assert_eq!(entries[2]["role"], "service");
    assert_eq!(entries[2]["outcome"], 201);

    let finance = app.token(Role::Finance, "finance-1");
    let (_, first) = read(finance.clone(), "?limit=2".into()).await;
    let cursor = first["next_cursor"].as_str().expect("a next page").to_string();
    let (_, second) = read(finance.clone(), format!("?limit=2&cursor={cursor}")).await;
    assert_eq!(second["entries"].as_array().unwrap().len(), 1, "{second}");
    assert_eq!(second["entries"][0]["id"], entries[2]["id"]);
    assert_eq!(second["next_cursor"], Value::Null);
    let (_, about) = read(finance.clone(), format!("?subject_id={client}")).await;
    assert_eq!(about["entries"].as_array().unwrap().len(), 1, "{about}");
    let (_, by) = read(finance.clone(), "?actor=test-service".into()).await;
    assert_eq!(by["entries"].as_array().unwrap().len(), 2, "{by}");
    let from = urlencode(&started.to_rfc3339_opts(chrono::SecondsFormat::Micros, true));
    let (_, since) =
        read(finance.clone(), format!("?from={from}&to=2999-01-01T00%3A00%3A00Z")).await;
    assert_eq!(since["entries"].as_array().unwrap().len(), 3, "{since}");
    let (_, before) = read(finance.clone(), format!("?to={from}")).await;
    assert_eq!(before["entries"], json!([]));
    for bad in ["?limit=0", "?cursor=abc", "?bogus=1"] {
        let (status, body) = read(finance.clone(), bad.into()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}: {body}");
    }
}
