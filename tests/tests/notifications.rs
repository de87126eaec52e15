//! Notices that reach people, against a real SMTP server (aiosmtpd on loopback), the real
//! Temporal dev server and PostgreSQL: each lifecycle email with its subject, join link and
//! calendar invite (local times across a daylight-saving change, `SEQUENCE` + 1 on reschedule,
//! `METHOD:CANCEL` on cancellation); email that waits out a mail server that is down; signed
//! media events; and signed webhooks delivered at least once through failures.

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode as AxumStatus};
use axum::routing::post;
use chrono::{DateTime, TimeDelta, Utc};
use livesessions_activities::signature;
use livesessions_domain::{Policy, Role, SessionSnapshot, SessionState};
use livesessions_tests::mail::{MailServer, Received};
use livesessions_tests::{Backend, TestApp, TestOptions, WEBHOOK_SECRET, eventually, test_policy};
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

fn short_policy() -> Policy {
    Policy {
        confirm_window: Duration::from_secs(3),
        join_grace: Duration::from_secs(1),
        ..test_policy()
    }
}

async fn app_with_mail(policy: Policy) -> (TestApp, MailServer) {
    let mut mail = MailServer::new();
    mail.start();
    let options = TestOptions { smtp_port: Some(mail.port), ..TestOptions::default() };
    (TestApp::spawn_with(Backend::Postgres, policy, options).await, mail)
}

fn with_subject<'a>(mails: &'a [Received], subject: &str) -> &'a Received {
    mails.iter().find(|m| m.subject.starts_with(subject)).unwrap_or_else(|| {
        panic!(
            "no email {subject:?} among {:?}",
            mails.iter().map(|m| &m.subject).collect::<Vec<_>>()
        )
    })
}

fn invite_line<'a>(invite: &'a str, name: &str) -> &'a str {
    invite.lines().find(|l| l.starts_with(name)).unwrap_or_else(|| panic!("no {name} in {invite}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invites_follow_the_session_across_a_daylight_saving_change() {
    let (app, mail) = app_with_mail(short_policy()).await;
    let (client, provider) = app.subscriber_and_therapist().await;
    // 2027-03-14 is the day New York springs forward: 15:00 UTC is 11:00 EDT that day, and
    // 10:00 EST the day before.
    let after_change: DateTime<Utc> = "2027-03-14T15:00:00Z".parse().unwrap();
    let before_change: DateTime<Utc> = "2027-03-13T15:00:00Z".parse().unwrap();
    let session = app.book_confirmed(client, provider, after_change).await;

    let to_provider = mail.wait_for("provider@example.com", 2).await;
    with_subject(&to_provider, "New session request for");
    let to_client = mail.wait_for("client@example.com", 1).await;
    let confirmed =
        with_subject(&to_client, "Your session on Sunday 14 March 2027 at 11:00 EDT is confirmed");
    let invite = confirmed.invite.as_deref().expect("an invite");
    assert_eq!(invite_line(invite, "METHOD:"), "METHOD:REQUEST");
    assert_eq!(invite_line(invite, "DTSTART;"), "DTSTART;TZID=America/New_York:20270314T110000");
    assert_eq!(invite_line(invite, "SEQUENCE:"), "SEQUENCE:0");
    let uid = invite_line(invite, "UID:").to_string();
    assert_eq!(uid, format!("UID:{}@livesessions", session.id));
    assert!(
        confirmed.html.contains("<p>") && confirmed.text.starts_with("Hello A. Client,"),
        "{}",
        confirmed.text
    );

    let (status, body) = app.reschedule(&session, before_change, true).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let to_client = mail.wait_for("client@example.com", 2).await;
    let moved =
        with_subject(&to_client, "Your session moved to Saturday 13 March 2027 at 10:00 EST");
    let invite = moved.invite.as_deref().expect("an updated invite");
    assert_eq!(invite_line(invite, "DTSTART;"), "DTSTART;TZID=America/New_York:20270313T100000");
    assert_eq!(invite_line(invite, "SEQUENCE:"), "SEQUENCE:1");
    assert_eq!(invite_line(invite, "UID:"), uid);

    let (status, body) = app
        .post(
            &format!("/v1/sessions/{}/cancel", session.id),
            &app.token(Role::Client, client),
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let to_client = mail.wait_for("client@example.com", 3).await;
    let cancelled =
        with_subject(&to_client, "Session on Saturday 13 March 2027 at 10:00 EST cancelled");
    let invite = cancelled.invite.as_deref().expect("a cancellation");
    assert_eq!(invite_line(invite, "METHOD:"), "METHOD:CANCEL");
    assert_eq!(invite_line(invite, "SEQUENCE:"), "SEQUENCE:2");
    assert_eq!(invite_line(invite, "UID:"), uid);
    // The provider's copy is in the provider's own zone (Europe/London).
    let to_provider = mail.wait_for("provider@example.com", 4).await;
    let provider_invite =
        with_subject(&to_provider, "Session on Saturday 13 March 2027 at 15:00 GMT cancelled")
            .invite
            .as_deref()
            .unwrap();
    assert_eq!(
        invite_line(provider_invite, "DTSTART;"),
        "DTSTART;TZID=Europe/London:20270313T150000"
    );
    let ids: std::collections::BTreeSet<_> =
        mail.received().iter().map(|m| m.message_id.clone()).collect();
    assert_eq!(ids.len(), mail.received().len(), "no email was sent twice");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_lifecycle_notice_arrives_by_email() {
    let (app, mail) = app_with_mail(short_policy()).await;
    let (client, provider) = app.subscriber_and_therapist().await;
    let to_client = "client@example.com";
    // Reminder (with the join link), then a late cancellation (with the fee).
    let soon = app.book_confirmed(client, provider, Utc::now() + TimeDelta::hours(2)).await;
    let reminder = mail.wait_for_subject(to_client, "Reminder: your session starts").await;
    assert!(
        reminder.text.contains("/join/") && reminder.html.contains("Join the session"),
        "{}",
        reminder.text
    );
    let (status, _) = app
        .post(
            &format!("/v1/sessions/{}/cancel", soon.id),
            &app.token(Role::Client, client),
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let late = mail.wait_for_subject(to_client, "Session on").await;
    assert!(
        late.subject.ends_with("cancelled late") && late.text.contains("USD 65.00 is charged"),
        "{}",
        late.text
    );
    // Declined, and expired.
    let declined = app.book(client, provider, Utc::now() + TimeDelta::days(2)).await;
    app.post(
        &format!("/v1/sessions/{}/decline", declined.id),
        &app.token(Role::Provider, provider),
        json!({}),
    )
    .await;
    mail.wait_for_subject(to_client, "Your provider cannot take the session on").await;
    app.book(client, provider, Utc::now() + TimeDelta::days(3)).await;
    mail.wait_for_subject(to_client, "Your session request for").await;
    // Provider unavailable: the email carries the reschedule link.
    let left = app.book_confirmed(client, provider, Utc::now() + TimeDelta::days(4)).await;
    app.post(
        &format!("/v1/sessions/{}/provider-unavailable", left.id),
        &app.token(Role::Provider, provider),
        json!({}),
    )
    .await;
    let unavailable = mail.wait_for_subject(to_client, "Your provider cannot attend on").await;
    assert!(
        unavailable.text.contains(&format!("/sessions/{}/reschedule", left.id)),
        "{}",
        unavailable.text
    );

    // No-shows: the client who did not join pays; the provider who did not join costs nothing.
    for (present, subject, says) in [
        (livesessions_domain::Party::Provider, "You missed the session on", "USD 65.00"),
        (livesessions_domain::Party::Client, "Your provider could not join on", "/reschedule"),
    ] {
        let session =
            app.book_confirmed(client, provider, Utc::now() + TimeDelta::seconds(3)).await;
        app.sessions
            .joined(session.id, livesessions_workflows::Join { party: present, at: Utc::now() })
            .await
            .unwrap();
        let absent = mail.wait_for_subject(to_client, subject).await;
        assert!(absent.text.contains(says), "{}", absent.text);
    }

    // Insurance: after the session, the next one's estimate to authorize.
    let insured = app.new_client("insurance", "insurance-standard").await;
    let session = app.book_confirmed(insured, provider, Utc::now() + TimeDelta::minutes(1)).await;
    for party in [livesessions_domain::Party::Client, livesessions_domain::Party::Provider] {
        app.sessions
            .joined(session.id, livesessions_workflows::Join { party, at: Utc::now() })
            .await
            .unwrap();
    }
    app.sessions.room_ended(session.id).await.unwrap();
    let prompt = eventually("the authorization prompt", || async {
        let mails = mail.received();
        mails
            .into_iter()
            .find(|m| m.subject == "Book your next session")
            .ok_or_else(|| "not yet".to_string())
    })
    .await;
    assert!(prompt.text.contains("USD 20.00"), "{}", prompt.text);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn email_waits_out_a_mail_server_that_is_down() {
    let mut mail = MailServer::new();
    let options = TestOptions { smtp_port: Some(mail.port), ..TestOptions::default() };
    let app = TestApp::spawn_with(Backend::Postgres, test_policy(), options).await;
    let (client, provider) = app.subscriber_and_therapist().await;
    // The mail server is down: the session goes on regardless.
    let session = app.book_confirmed(client, provider, Utc::now() + TimeDelta::days(2)).await;
    assert_eq!(session.state, SessionState::Confirmed);
    assert_eq!(app.room_message_kinds(client).await, ["session_confirmed"]);
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(mail.received().is_empty());
    mail.start();
    let to_client = mail.wait_for("client@example.com", 1).await;
    with_subject(&to_client, "Your session on");
    let to_provider = mail.wait_for("provider@example.com", 2).await;
    assert_eq!(to_provider.len(), 2, "request and confirmation, once each");
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(mail.received().len(), 3, "nothing arrived twice");
}

/// A webhook receiver that fails the first `failures` requests (keeping their event ids) and
/// keeps every valid event.
#[derive(Clone, Default)]
struct Receiver {
    failures: Arc<Mutex<u32>>,
    failed: Arc<Mutex<Vec<String>>>,
    events: Arc<Mutex<BTreeMap<String, Value>>>,
    bad_signatures: Arc<Mutex<u32>>,
}

async fn receive(State(receiver): State<Receiver>, headers: HeaderMap, body: Bytes) -> AxumStatus {
    let header = |name: &str| {
        headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or_default().to_string()
    };
    {
        let mut failures = receiver.failures.lock().unwrap();
        if *failures > 0 {
            *failures -= 1;
            receiver.failed.lock().unwrap().push(header("x-livesessions-event-id"));
            return AxumStatus::INTERNAL_SERVER_ERROR;
        }
    }
    let timestamp: i64 = header("x-livesessions-timestamp").parse().unwrap_or_default();
    let signed = signature::verify(
        WEBHOOK_SECRET,
        timestamp,
        &body,
        &header("x-livesessions-signature"),
        Utc::now().timestamp(),
        300,
    );
    if signed.is_err() {
        *receiver.bad_signatures.lock().unwrap() += 1;
        return AxumStatus::UNAUTHORIZED;
    }
    let event: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(event["id"].as_str(), Some(header("x-livesessions-event-id").as_str()));
    receiver.events.lock().unwrap().insert(header("x-livesessions-event-id"), event);
    AxumStatus::OK
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhooks_deliver_every_event_through_failures() {
    let receiver = Receiver { failures: Arc::new(Mutex::new(3)), ..Receiver::default() };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/events", listener.local_addr().unwrap());
    let router = Router::new().route("/events", post(receive)).with_state(receiver.clone());
    tokio::spawn(async move { axum::serve(listener, router).await });
    let options = TestOptions { webhook_urls: vec![url], ..TestOptions::default() };
    let app = TestApp::spawn_with(Backend::Postgres, test_policy(), options).await;
    let (client, provider) = app.subscriber_and_therapist().await;
    let session = app.book_confirmed(client, provider, Utc::now() + TimeDelta::days(2)).await;
    let (status, _) = app
        .post(
            &format!("/v1/sessions/{}/cancel", session.id),
            &app.token(Role::Client, client),
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let states = eventually("three events", || async {
        let events = receiver.events.lock().unwrap().clone();
        let states: Vec<String> = events
            .values()
            .map(|e| e["session"]["state"].as_str().unwrap_or_default().to_string())
            .collect();
        if states.len() >= 3 { Ok(states) } else { Err(format!("{states:?}")) }
    })
    .await;
    let mut states = states;
    states.sort();
    assert_eq!(states, ["cancelled", "confirmed", "requested"]);
    // Each event the receiver refused was delivered again later.
    let failed = receiver.failed.lock().unwrap().clone();
    let events = receiver.events.lock().unwrap().clone();
    assert!(failed.iter().all(|id| events.contains_key(id)), "{failed:?} not all in {events:?}");
    assert_eq!(*receiver.bad_signatures.lock().unwrap(), 0);
    for event in receiver.events.lock().unwrap().values() {
        assert_eq!(event["type"], "session.state_changed");
        assert_eq!(event["session"]["id"], json!(session.id));
    }
}

fn signed(body: &Value, secret: &str, timestamp: i64) -> (Vec<u8>, String) {
    let bytes = serde_json::to_vec(body).unwrap();
    let signature = signature::sign(secret, timestamp, &bytes);
    (bytes, signature)
}

async fn send_event(
    app: &TestApp,
    bytes: Vec<u8>,
    timestamp: i64,
    signature: &str,
) -> (StatusCode, Value) {
    let response = app
        .http
        .post(format!("{}/v1/media/events", app.address))
        .header("content-type", "application/json")
        .header("X-Media-Timestamp", timestamp.to_string())
        .header("X-Media-Signature", signature)
        .body(bytes)
        .send()
        .await
        .unwrap();
    (response.status(), response.json().await.unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signed_media_events_count_joins_and_end_the_room() {
    let secret = "media-secret";
    let options = TestOptions { media_secret: Some(secret.into()), ..TestOptions::default() };
    let app = TestApp::spawn_with(Backend::Postgres, test_policy(), options).await;
    let (client, provider) = app.subscriber_and_therapist().await;
    let session: SessionSnapshot =
        app.book_confirmed(client, provider, Utc::now() + TimeDelta::minutes(2)).await;
    let room = livesessions_activities::storage::media_rooms::room_of(&app.db, session.id)
        .await
        .unwrap()
        .expect("a room");
    let now = Utc::now();
    let joined = json!({"id": "evt-1", "type": "participant_joined", "room_id": room, "party": "client", "occurred_at": now});

    let (bytes, good) = signed(&joined, secret, now.timestamp());
    let (status, body) = send_event(
        &app,
        bytes.clone(),
        now.timestamp(),
        &signature::sign("wrong", now.timestamp(), &bytes),
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "a bad signature: {body}");
    let stale = now.timestamp() - 3_600;
    let (stale_bytes, stale_signature) = signed(&joined, secret, stale);
    let (status, body) = send_event(&app, stale_bytes, stale, &stale_signature).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "a stale timestamp (replay): {body}");
    let (status, body) = send_event(&app, bytes.clone(), now.timestamp(), &good).await;
    assert_eq!((status, body["status"].as_str()), (StatusCode::OK, Some("accepted")));
    let (status, body) = send_event(&app, bytes, now.timestamp(), &good).await;
    assert_eq!((status, body["status"].as_str()), (StatusCode::OK, Some("duplicate")));
    let joined =
        app.wait_for(session.id, "the client's join counted", |s| s.joined.client.is_some()).await;
    assert_eq!(joined.state, SessionState::Confirmed);

    // The provider joins through their link: both count, and the session begins.
    app.join(&session, Role::Provider).await;
    app.wait_for_state(session.id, SessionState::InProgress).await;
    let ended =
        json!({"id": "evt-2", "type": "room_ended", "room_id": room, "occurred_at": Utc::now()});
    let timestamp = Utc::now().timestamp();
    let (bytes, good) = signed(&ended, secret, timestamp);
    let (status, _) = send_event(&app, bytes, timestamp, &good).await;
    assert_eq!(status, StatusCode::OK);
    let done = app.wait_for_state(session.id, SessionState::Completed).await;
    assert_eq!(done.outcome, Some(livesessions_domain::Outcome::RoomEnded));
}

/// What the stand-in for a hosted media provider was asked.
#[derive(Clone, Default)]
struct HostedProvider {
    rooms: Arc<Mutex<Vec<(String, Value, String)>>>,
}

async fn put_room(
    State(provider): State<HostedProvider>,
    axum::extract::Path(room): axum::extract::Path<String>,
    headers: HeaderMap,
    axum::Json(body): axum::Json<Value>,
) -> axum::Json<Value> {
    let auth =
        headers.get("authorization").and_then(|v| v.to_str().ok()).unwrap_or_default().to_string();
    provider.rooms.lock().unwrap().push((room.clone(), body, auth));
    axum::Json(
        json!({"join_urls": {"client": format!("https://media.example/{room}/client"), "provider": format!("https://media.example/{room}/provider")}}),
    )
}

/// The hosted adapter against a stand-in that speaks its protocol (`PUT <base>/rooms/<id>`): the
/// room is made there under this service's room id, and the join link leads to the provider's URL.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_hosted_media_adapter_opens_rooms_at_the_provider() {
    let provider_stand_in = HostedProvider::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base_url = format!("http://{}/v1", listener.local_addr().unwrap());
    let router = Router::new()
        .route("/v1/rooms/{room}", axum::routing::put(put_room))
        .with_state(provider_stand_in.clone());
    tokio::spawn(async move { axum::serve(listener, router).await });
    let options = TestOptions { hosted_media: Some(base_url), ..TestOptions::default() };
    let app = TestApp::spawn_with(Backend::Postgres, test_policy(), options).await;
    let (client, provider) = app.subscriber_and_therapist().await;
    let session = app.book_confirmed(client, provider, Utc::now() + TimeDelta::minutes(2)).await;
    let room = livesessions_activities::storage::media_rooms::room_of(&app.db, session.id)
        .await
        .unwrap()
        .expect("a room");
    let rooms = provider_stand_in.rooms.lock().unwrap().clone();
    assert_eq!(rooms.len(), 1);
    assert_eq!(rooms[0].0, room.to_string());
    assert_eq!(rooms[0].2, "Bearer hosted-key");
    assert_eq!(rooms[0].1["participants"], json!(["client", "provider"]));
    let destination = app.join(&session, Role::Client).await;
    assert_eq!(destination, format!("https://media.example/{room}/client"));
    app.wait_for(session.id, "the client's join", |s| s.joined.client.is_some()).await;
}
