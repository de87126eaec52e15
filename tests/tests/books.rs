//! A randomized run (its seed is printed; set `LIVESESSIONS_TEST_SEED` to repeat one): many
//! sessions of several clients, some with declining cards, some clashing with the same client's
//! other session, take random paths through the lifecycle on the real Temporal dev server and PostgreSQL. Then the books must hold:
//! every transaction balances, balances equal a replay of the ledger (and the credit rows),
//! every no-show and late cancellation has exactly one fee (charged or outstanding), and nobody
//! pays for a provider's absence.

use chrono::{TimeDelta, Utc};
use livesessions_activities::payments::sandbox::{self, CardBehaviour};
use livesessions_activities::storage::credits;
use livesessions_activities::storage::ledger::{self, EntryKind, LedgerFilter, accounts};
use livesessions_domain::{
    ClientId, Party, Policy, ProviderId, Role, SessionId, SessionSnapshot, SessionState,
};
use livesessions_tests::{Backend, TestApp, test_policy};
use livesessions_workflows::Join;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use reqwest::StatusCode;
use serde_json::json;
use std::collections::BTreeMap;
use std::time::Duration;

/// The paths a session may take.
#[derive(Debug, Clone, Copy)]
enum Path {
    LeftUnanswered,
    Declined,
    CancelledWhileRequested,
    CancelledLate,
    Completed,
    ClientAbsent,
    ProviderAbsent,
    ProviderUnavailable,
    RescheduledLateThenExpired,
}

const PATHS: [Path; 9] = [
    Path::LeftUnanswered,
    Path::Declined,
    Path::CancelledWhileRequested,
    Path::CancelledLate,
    Path::Completed,
    Path::ClientAbsent,
    Path::ProviderAbsent,
    Path::ProviderUnavailable,
    Path::RescheduledLateThenExpired,
];

fn fast_policy() -> Policy {
    Policy {
        confirm_window: Duration::from_secs(10),
        join_grace: Duration::from_secs(1),
        reschedule_offer_window: Duration::from_secs(1),
        ..test_policy()
    }
}

async fn post(
    app: &TestApp,
    session: &SessionSnapshot,
    action: &str,
    role: Role,
    body: serde_json::Value,
) -> StatusCode {
    let person = if role == Role::Provider {
        session.provider_id.to_string()
    } else {
        session.client_id.to_string()
    };
    app.post(&format!("/v1/sessions/{}/{action}", session.id), &app.token(role, person), body)
        .await
        .0
}

/// Drives session number `index` down `path`; answers its id, or `None` when the booking was
/// refused (no credit, or the client already has a session then).
async fn drive(
    app: &TestApp,
    index: i32,
    client: ClientId,
    provider: ProviderId,
    path: Path,
) -> Option<SessionId> {
    let soon = matches!(path, Path::Completed | Path::ClientAbsent | Path::ProviderAbsent);
    // Sessions that must start now may clash with the same client's; the others have times of
    // their own (31 minutes apart, all inside the late-change window).
    let spread = TimeDelta::minutes(31) * index;
    let starts_at =
        Utc::now() + if soon { TimeDelta::seconds(10) } else { TimeDelta::hours(5) + spread };
    let body = json!({"client_id": client, "provider_id": provider, "service": "therapy", "modality": "video",
        "duration_minutes": 30, "starts_at": starts_at, "time_zone": "UTC", "accept_cancellation_policy": true,
        "purchase_credit": true});
    let (status, booked) = app.post("/v1/sessions", &app.token(Role::Client, client), body).await;
    if status != StatusCode::CREATED {
        let slot_taken = status == StatusCode::CONFLICT && booked["error"]["code"] == "slot_taken";
        assert!(status == StatusCode::PAYMENT_REQUIRED || slot_taken, "{status} {booked}");
        return None;
    }
    let session: SessionSnapshot = serde_json::from_value(booked).unwrap();
    let confirm = async {
        assert_eq!(post(app, &session, "confirm", Role::Provider, json!({})).await, StatusCode::OK)
    };
    match path {
        Path::LeftUnanswered => {}
        Path::Declined => assert_eq!(
            post(app, &session, "decline", Role::Provider, json!({})).await,
            StatusCode::OK
        ),
        Path::CancelledWhileRequested => {
            assert_eq!(post(app, &session, "cancel", Role::Client, json!({})).await, StatusCode::OK)
        }
        Path::CancelledLate => {
            confirm.await;
            assert_eq!(
                post(app, &session, "cancel", Role::Client, json!({})).await,
                StatusCode::OK
            );
        }
        Path::ProviderUnavailable => {
            confirm.await;
            assert_eq!(
                post(app, &session, "provider-unavailable", Role::Provider, json!({})).await,
                StatusCode::OK
            );
        }
        Path::RescheduledLateThenExpired => {
            confirm.await;
            let later = json!({"starts_at": Utc::now() + TimeDelta::days(2) + spread, "accept_cancellation_policy": true});
            match post(app, &session, "reschedule", Role::Client, later).await {
                StatusCode::OK => {}
                // No credit for the new time: nothing changed; the client cancels instead.
                StatusCode::PAYMENT_REQUIRED => {
                    assert_eq!(
                        post(app, &session, "cancel", Role::Client, json!({})).await,
                        StatusCode::OK
                    )
                }
                other => panic!("reschedule answered {other}"),
            }
        }
        Path::Completed | Path::ClientAbsent | Path::ProviderAbsent => {
            confirm.await;
            let now = Utc::now();
            let joining: &[Party] = match path {
                Path::Completed => &[Party::Client, Party::Provider],
                Path::ClientAbsent => &[Party::Provider],
                _ => &[Party::Client],
            };
            for party in joining {
                app.sessions.joined(session.id, Join { party: *party, at: now }).await.unwrap();
            }
            if matches!(path, Path::Completed) {
                app.sessions.room_ended(session.id).await.unwrap();
            }
        }
    }
    Some(session.id)
}

/// Whether the session's story has ended (and its credit and fees are settled).
fn settled(session: &SessionSnapshot) -> bool {
    session.outcome.is_some()
        && !matches!(
            session.state,
            SessionState::Requested | SessionState::Confirmed | SessionState::InProgress
        )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn random_sessions_keep_the_books() {
    let seed: u64 = std::env::var("LIVESESSIONS_TEST_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(rand::random);
    println!("LIVESESSIONS_TEST_SEED={seed}");
    let mut rng = StdRng::seed_from_u64(seed);
    let app = TestApp::spawn(Backend::Postgres, fast_policy()).await;
    let mut clients = Vec::new();
    for _ in 0..4 {
        let client = app.new_client("subscription", "subscription-standard").await;
        if rng.random_bool(0.3) {
            sandbox::set_card(&app.db, client, CardBehaviour::Decline).await.unwrap();
        }
        clients.push(client);
    }
    let plan: Vec<(ClientId, Path)> = (0..24)
        .map(|_| {
            (clients[rng.random_range(0..clients.len())], PATHS[rng.random_range(0..PATHS.len())])
        })
        .collect();
    println!("paths: {plan:?}");
    // A provider per session: the clashes left are a client's own.
    let providers =
        futures::future::join_all(plan.iter().map(|_| app.new_provider("therapist"))).await;
    let driven = futures::future::join_all((0..).zip(&plan).map(|(index, (client, path))| {
        drive(&app, index, *client, providers[index as usize], *path)
    }))
    .await;
    let sessions: Vec<SessionId> = driven.into_iter().flatten().collect();
    assert!(!sessions.is_empty(), "every booking was refused");
    let mut finals = BTreeMap::new();
    for id in &sessions {
        finals.insert(*id, app.wait_for(*id, "a settled end", settled).await);
    }

    let entries = ledger::entries(&app.db, &LedgerFilter::default()).await.unwrap();
    // Every transaction balances, per unit.
    for entry in &entries {
        let mut sums: BTreeMap<&str, i64> = BTreeMap::new();
        for posting in &entry.postings {
            *sums.entry(&posting.unit).or_default() += posting.amount;
        }
        assert!(sums.values().all(|sum| *sum == 0), "{} does not balance: {sums:?}", entry.key);
    }
    // Balances equal a replay of the ledger, and the credit rows.
    let mut replayed: BTreeMap<(String, String), i64> = BTreeMap::new();
    for posting in entries.iter().flat_map(|e| &e.postings) {
        *replayed.entry((posting.account.clone(), posting.unit.clone())).or_default() +=
            posting.amount;
    }
    for ((account, unit), amount) in &replayed {
        assert_eq!(
            ledger::balance(&app.db, account, unit).await.unwrap(),
            *amount,
            "{account} {unit}"
        );
    }
    for client in &clients {
        let from_ledger = credits::balance(&app.db, *client).await.unwrap();
        let available = replayed
            .get(&(accounts::available(*client), accounts::CREDIT.into()))
            .copied()
            .unwrap_or(0);
        assert_eq!(from_ledger.available, available);
        assert_eq!(
            from_ledger,
            credits::rows_by_status(&app.db, *client).await.unwrap(),
            "ledger and credit rows of {client}"
        );
    }
    // Fees: one per no-show and late change, none for a provider's absence.
    for (id, session) in &finals {
        let fees: Vec<_> = entries
            .iter()
            .filter(|e| {
                e.session_id == Some(*id)
                    && matches!(e.kind, EntryKind::LateCancelFee | EntryKind::NoShowFee)
            })
            .collect();
        assert_eq!(fees.len(), session.fees.len(), "{id}: ledger fees against the session's");
        let late_reschedules = session
            .history
            .windows(2)
            .filter(|w| {
                w[0].state == SessionState::Confirmed && w[1].state == SessionState::Requested
            })
            .count();
        let expected = late_reschedules
            + usize::from(matches!(
                session.state,
                SessionState::ClientNoShow | SessionState::LateCancelled
            ));
        assert_eq!(fees.len(), expected, "{id} ended {} with {} fees", session.state, fees.len());
        if matches!(session.state, SessionState::ProviderNoShow | SessionState::ProviderUnavailable)
        {
            assert!(
                fees.iter().all(|fee| fee.kind == EntryKind::LateCancelFee),
                "{id}: charged for the provider's absence: {fees:?}"
            );
        }
        for fee in fees {
            let charged = fee.amount_on(accounts::PROCESSOR);
            let owed = fee.amount_on(&accounts::receivable(fee.client_id));
            let due = session.fees.iter().find(|f| f.key == fee.key).map(|f| f.amount.amount_minor);
            assert_eq!(Some(charged + owed), due, "{id}: {fee:?}");
            assert!(charged == 0 || owed == 0, "{id}: charged and owed at once: {fee:?}");
        }
    }
}
