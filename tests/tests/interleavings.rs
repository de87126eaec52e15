//! Many sessions, random *concurrent* calls: confirm, decline, reschedule, cancel by each
//! party (and by a service on each one's behalf), provider-unavailable, joins and the room's end,
//! fired two or three at a time at each session on the real dev server. Then the dev server's
//! time skipping runs every session to its end, and the invariants are checked from the read
//! model, the ledger and the workflow itself:
//! - every call was answered in under 5 s, never with a 5xx;
//! - every workflow reached a final state and closed, and its result, its `snapshot` query and
//!   the read model agree;
//! - at most one fee per booked time, each charged once under its own key, and never a fee for
//!   an ending in which the client is not at fault;
//! - no credit stays reserved, and the client's credits add up.
//!
//! The run is seeded: `LIVESESSIONS_SEED=<n>` repeats one, and every failure names its seed.
//! `LIVESESSIONS_INTERLEAVING_SESSIONS` sets the number of sessions per database (default 100: 200 per run).

use chrono::{DateTime, TimeDelta, Utc};
use futures::StreamExt;
use livesessions_domain::{Outcome, Role, SessionId, SessionSnapshot, SessionState};
use livesessions_tests::{Backend, TestApp, on_both_databases, test_policy};
use livesessions_workflows::LiveSession;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};
use temporalio_client::WorkflowGetResultOptions;

on_both_databases!(random_concurrent_calls_keep_every_invariant);

/// One call a person (or a service) makes.
#[derive(Debug, Clone, Copy)]
enum Call {
    Confirm,
    Decline,
    Reschedule { minutes_ahead: i64 },
    CancelAsClient,
    CancelAsProvider,
    CancelAsService { for_provider: bool },
    ProviderUnavailable,
    Join(Role),
    EndRoom,
}

impl Call {
    fn random(rng: &mut StdRng) -> Self {
        match rng.random_range(0..12) {
            0 | 1 => Call::Confirm,
            2 => Call::Decline,
            3 => Call::Reschedule {
                minutes_ahead: *[2, 60 * 30, 60 * 80].get(rng.random_range(0..3)).unwrap_or(&2),
            },
            4 => Call::CancelAsClient,
            5 => Call::CancelAsProvider,
            6 => Call::CancelAsService { for_provider: rng.random() },
            7 => Call::ProviderUnavailable,
            8 | 9 => Call::Join(if rng.random() { Role::Client } else { Role::Provider }),
            _ => Call::EndRoom,
        }
    }
}

/// What the calls answered, for the report and the invariants.
#[derive(Debug, Default)]
struct Tally {
    calls: usize,
    statuses: BTreeMap<u16, usize>,
    codes: BTreeMap<String, usize>,
    breaches: Vec<String>,
}

impl Tally {
    fn answered(&mut self, what: &str, status: StatusCode, body: &Value, took: Duration) {
        self.calls += 1;
        *self.statuses.entry(status.as_u16()).or_default() += 1;
        if let Some(code) = body["error"]["code"].as_str() {
            *self.codes.entry(code.to_string()).or_default() += 1;
        }
        if status.is_server_error() {
            self.breaches.push(format!("{what} answered {status}: {body}"));
        }
        if took >= Duration::from_secs(5) {
            self.breaches.push(format!("{what} took {took:?}"));
        }
    }
}

/// Makes one call and tallies its answer.
async fn make(app: &TestApp, session: &SessionSnapshot, call: Call, tally: &Mutex<Tally>) {
    let id = session.id;
    let client = app.token(Role::Client, session.client_id);
    let provider = app.token(Role::Provider, session.provider_id);
    let service = app.service_token();
    let started = Instant::now();
    let path = |action: &str| format!("/v1/sessions/{id}/{action}");
    let (status, body) = match call {
        Call::Confirm => app.post(&path("confirm"), &provider, json!({})).await,
        Call::Decline => app.post(&path("decline"), &provider, json!({})).await,
        Call::Reschedule { minutes_ahead } => {
            let starts_at = Utc::now() + TimeDelta::minutes(minutes_ahead);
            let body = json!({"starts_at": starts_at, "accept_cancellation_policy": true});
            app.post(&path("reschedule"), &client, body).await
        }
        Call::CancelAsClient => app.post(&path("cancel"), &client, json!({})).await,
        Call::CancelAsProvider => app.post(&path("cancel"), &provider, json!({})).await,
        Call::CancelAsService { for_provider } => {
            let party = if for_provider { "provider" } else { "client" };
            app.post(&path("cancel"), &service, json!({"on_behalf_of": party})).await
        }
        Call::ProviderUnavailable => {
            app.post(&path("provider-unavailable"), &provider, json!({})).await
        }
        Call::Join(role) => {
            let token = if role == Role::Client { &client } else { &provider };
            follow_join_link(app, id, token, tally).await
        }
        Call::EndRoom => {
            // The provider ends the room (following their own link, which counts as their join).
            let (status, body) = follow_join_link(app, id, &provider, tally).await;
            match body["room"].as_str() {
                Some(room) => {
                    let (path, query) = room.split_once('?').unwrap_or((room, ""));
                    let end = format!("{path}/end?{query}");
                    app.call(reqwest::Method::POST, &end, None, None).await
                }
                None => (status, body),
            }
        }
    };
    tally.lock().unwrap().answered(&format!("{call:?} on {id}"), status, &body, started.elapsed());
}

/// Asks for a join link and follows it; answers the last status, with the room page in
/// `room` when the link led there.
async fn follow_join_link(
    app: &TestApp,
    id: SessionId,
    token: &str,
    tally: &Mutex<Tally>,
) -> (StatusCode, Value) {
    let started = Instant::now();
    let (status, link) = app.get(&format!("/v1/sessions/{id}/join"), token).await;
    let Some(url) = link["url"].as_str().filter(|_| status == StatusCode::OK) else {
        return (status, link);
    };
    tally.lock().unwrap().answered("join link", status, &link, started.elapsed());
    let response = app.http.get(url).send().await.expect("the join link answers");
    let status = response.status();
    match response.headers().get("location").and_then(|l| l.to_str().ok()) {
        Some(room) => (status, json!({"room": room})),
        None => (status, response.json().await.unwrap_or(Value::Null)),
    }
}

/// Drives one session: booked soon (joins open, confirmed changes late) or days ahead, then
/// four rounds of concurrent calls: the provider's answer (mostly a confirmation) with one or
/// two random calls, random calls, the joins (mostly both, sometimes one) with a random call,
/// the room's end with one.
async fn drive(app: &TestApp, seed: u64, n: usize, tally: &Mutex<Tally>) -> SessionSnapshot {
    let mut rng = StdRng::seed_from_u64(seed.wrapping_add(n as u64));
    let (client, provider) = app.subscriber_and_therapist().await;
    let starts_in = if rng.random_bool(0.7) { TimeDelta::minutes(3) } else { TimeDelta::days(3) };
    let session = app.book(client, provider, Utc::now() + starts_in).await;
    let answer = if rng.random_bool(0.85) { Call::Confirm } else { Call::Decline };
    let joins = match rng.random_range(0..20) {
        0..=13 => vec![Call::Join(Role::Client), Call::Join(Role::Provider)],
        14..=16 => vec![Call::Join(Role::Provider)],
        _ => vec![Call::Join(Role::Client)],
    };
    let rounds = [vec![answer], Vec::new(), joins, vec![Call::EndRoom]];
    for mut calls in rounds {
        let extra = if rng.random_bool(0.5) { 1 } else { rng.random_range(0..=2) };
        calls.extend((0..extra).map(|_| Call::random(&mut rng)));
        calls.retain(|_| rng.random_bool(0.9));
        futures::future::join_all(calls.into_iter().map(|call| make(app, &session, call, tally)))
            .await;
    }
    session
}

/// The round of a fee key (`…:r<n>`).
fn round_of(key: &str) -> Option<usize> {
    key.rsplit_once(":r").and_then(|(_, n)| n.parse().ok())
}

/// Runs the session to its end (time skipping) and checks every invariant; answers what broke.
async fn settle(app: &TestApp, booked: &SessionSnapshot) -> Result<Outcome, String> {
    let id = booked.id;
    app.skip_time(&booked.workflow_id).await;
    let handle = app.temporal.get_workflow_handle::<LiveSession>(booked.workflow_id.clone());
    let result = tokio::time::timeout(
        Duration::from_secs(60),
        handle.get_result(WorkflowGetResultOptions::default()),
    )
    .await
    .map_err(|_| format!("{id}: the workflow did not close within 60 s"))?
    .map_err(|e| format!("{id}: the workflow did not complete: {e}"))?;
    let queried = app.sessions.snapshot(id).await.map_err(|e| format!("{id}: query: {e}"))?;
    let (status, row) = app.get(&format!("/v1/sessions/{id}"), &app.service_token()).await;
    let row: SessionSnapshot =
        serde_json::from_value(row).map_err(|e| format!("{id}: {status} {e}"))?;
    if result != queried || result != row {
        return Err(format!(
            "{id}: the workflow, its query and the read model disagree:\n{result:?}\n{queried:?}\n{row:?}"
        ));
    }
    let outcome = result.outcome.ok_or_else(|| format!("{id}: closed without an outcome"))?;
    let final_states = [
        SessionState::Completed,
        SessionState::Expired,
        SessionState::Declined,
        SessionState::Cancelled,
        SessionState::LateCancelled,
        SessionState::ClientNoShow,
        SessionState::ProviderNoShow,
        SessionState::ProviderUnavailable,
    ];
    if !final_states.contains(&result.state) {
        return Err(format!("{id}: closed in {}", result.state));
    }
    let times: Vec<DateTime<Utc>> = result.history.iter().map(|h| h.at).collect();
    if times.windows(2).any(|w| w[0] > w[1]) || result.version < result.history.len() as u64 {
        return Err(format!("{id}: history or version out of order: {:?}", result.history));
    }
    let last_round =
        result.history.iter().filter(|h| h.state == SessionState::Requested).count() - 1;
    let mut rounds: Vec<usize> = Vec::new();
    for fee in &result.fees {
        let round = round_of(&fee.key).ok_or_else(|| format!("{id}: fee key {}", fee.key))?;
        if rounds.contains(&round) {
            return Err(format!("{id}: two fees for one booked time: {:?}", result.fees));
        }
        rounds.push(round);
    }
    let client_at_fault =
        matches!(outcome, Outcome::ClientCancelledLate | Outcome::ClientDidNotJoin);
    if rounds.contains(&last_round) != client_at_fault {
        return Err(format!("{id}: fees {:?} for the ending {outcome}", result.fees));
    }
    let mut charged: Vec<String> = app.charges(id).await.into_iter().map(|c| c.2).collect();
    let mut fee_keys: Vec<String> = result.fees.iter().map(|f| f.key.clone()).collect();
    charged.sort();
    fee_keys.sort();
    if charged != fee_keys {
        return Err(format!(
            "{id}: the ledger charged {charged:?}, the session lists {fee_keys:?}"
        ));
    }
    let (available, reserved) = app.credits(result.client_id).await;
    let used = result.fees.len() as i64 + i64::from(result.state == SessionState::Completed);
    if reserved != 0 || available != 4 - used {
        return Err(format!(
            "{id}: credits available {available}, reserved {reserved}; expected {} and 0 ({outcome}, fees {:?})",
            4 - used,
            result.fees
        ));
    }
    Ok(outcome)
}

async fn random_concurrent_calls_keep_every_invariant(backend: Backend) {
    let seed: u64 = std::env::var("LIVESESSIONS_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(rand::random);
    let count: usize = std::env::var("LIVESESSIONS_INTERLEAVING_SESSIONS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(100);
    eprintln!(
        "interleavings on {backend:?}: seed {seed}, {count} sessions (LIVESESSIONS_SEED={seed} repeats it)"
    );
    let app = TestApp::spawn(backend, test_policy()).await;
    let tally = Mutex::new(Tally::default());
    let sessions: Vec<SessionSnapshot> = futures::stream::iter(0..count)
        .map(|n| drive(&app, seed, n, &tally))
        .buffer_unordered(6)
        .collect()
        .await;
    let results: Vec<Result<Outcome, String>> = futures::stream::iter(&sessions)
        .map(|s| settle(&app, s))
        .buffer_unordered(6)
        .collect()
        .await;
    let mut outcomes: BTreeMap<String, usize> = BTreeMap::new();
    let mut breaches = std::mem::take(&mut tally.lock().unwrap().breaches);
    for result in results {
        match result {
            Ok(outcome) => *outcomes.entry(outcome.to_string()).or_default() += 1,
            Err(breach) => breaches.push(breach),
        }
    }
    let tally = tally.into_inner().unwrap();
    eprintln!(
        "seed {seed}: {count} sessions, {} calls; statuses {:?}; refusals {:?}; outcomes {outcomes:?}",
        tally.calls, tally.statuses, tally.codes
    );
    assert!(
        breaches.is_empty(),
        "seed {seed} ({backend:?}): {} breaches:\n{}",
        breaches.len(),
        breaches.join("\n")
    );
}
