//! Availability, slots and double booking, end to end on the real Temporal dev server, on
//! PostgreSQL and SQLite: 50 concurrent requests for one slot (and for partly overlapping
//! slots) book exactly one session; rescheduling into a taken time is refused; back-to-back
//! sessions are fine; slot search respects hours, exceptions, sessions and the booking notice,
//! and stays right across the daylight-saving changes of America/New_York and Europe/London;
//! "can't find a time" reaches the provider by email.

use chrono::{
    DateTime, Datelike, Days, FixedOffset, NaiveDate, NaiveTime, Offset, TimeDelta, TimeZone, Utc,
};
use chrono_tz::Tz;
use livesessions_activities::storage::Db;
use livesessions_domain::{ClientId, Policy, ProviderId, Role, SessionState};
use livesessions_tests::mail::MailServer;
use livesessions_tests::{Backend, TestApp, TestOptions, on_both_databases, test_policy};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use std::time::Duration;

on_both_databases!(
    fifty_requests_for_one_slot_book_one_session,
    fifty_requests_for_overlapping_slots_book_one_session,
    taken_times_are_refused_and_freed_times_are_bookable,
    slots_follow_hours_sessions_and_notice,
    slots_across_new_york_daylight_saving_changes,
    slots_across_london_daylight_saving_changes,
);

/// The test policy, offering a slot every hour.
fn hourly() -> Policy {
    Policy { slot_interval: Duration::from_secs(3600), ..test_policy() }
}

fn error_code(body: &Value) -> &str {
    body["error"]["code"].as_str().unwrap_or_default()
}

/// A provider in `zone`.
async fn provider_in(app: &TestApp, zone: &str) -> ProviderId {
    let id = ProviderId::random();
    let body = json!({"specialty": "therapist", "time_zone": zone,
                      "email": "provider@example.com", "display_name": "Dr. Provider"});
    let (status, answer) = app
        .call(Method::PUT, &format!("/v1/providers/{id}"), Some(&app.service_token()), Some(body))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{answer}");
    id
}

/// Sets the provider's availability as the provider; answers status and body.
async fn put_availability(
    app: &TestApp,
    provider: ProviderId,
    availability: Value,
) -> (StatusCode, Value) {
    let token = app.token(Role::Provider, provider);
    app.call(
        Method::PUT,
        &format!("/v1/providers/{provider}/availability"),
        Some(&token),
        Some(availability),
    )
    .await
}

/// Searches the provider's slots as a client; answers status and body.
async fn search(
    app: &TestApp,
    provider: ProviderId,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    minutes: u32,
) -> (StatusCode, Value) {
    let token = app.token(Role::Client, ClientId::random());
    search_as(app, &token, provider, (from, to), minutes).await
}

/// Searches the provider's slots with `token`.
async fn search_as(
    app: &TestApp,
    token: &str,
    provider: ProviderId,
    (from, to): (DateTime<Utc>, DateTime<Utc>),
    minutes: u32,
) -> (StatusCode, Value) {
    let query = format!(
        "from={}&to={}&duration_minutes={minutes}",
        urlencode(&from.to_rfc3339()),
        urlencode(&to.to_rfc3339())
    );
    app.get(&format!("/v1/providers/{provider}/slots?{query}"), token).await
}

fn urlencode(text: &str) -> String {
    text.replace('+', "%2B").replace(':', "%3A")
}

/// The `local_starts_at` of each slot found, as `YYYY-MM-DDTHH:MM±hh:mm`.
fn local_starts(body: &Value) -> Vec<String> {
    body["slots"]
        .as_array()
        .expect("slots")
        .iter()
        .map(|slot| {
            let local: DateTime<FixedOffset> =
                serde_json::from_value(slot["local_starts_at"].clone()).expect("a local start");
            local.format("%Y-%m-%dT%H:%M%:z").to_string()
        })
        .collect()
}

/// Requests a session of `minutes` as the client; answers status and body.
async fn request(
    app: &TestApp,
    client: ClientId,
    provider: ProviderId,
    starts_at: DateTime<Utc>,
    minutes: u32,
) -> (StatusCode, Value) {
    let body = json!({"client_id": client, "provider_id": provider, "service": "therapy", "modality": "video",
                      "duration_minutes": minutes, "starts_at": starts_at, "time_zone": "UTC",
                      "accept_cancellation_policy": true});
    app.post("/v1/sessions", &app.token(Role::Client, client), body).await
}

/// Sessions holding a slot (requested or confirmed) in the database, and the pairs of them
/// whose times overlap for one provider or one client.
async fn holding_and_overlaps(db: &Db) -> (i64, i64) {
    const HOLDING: &str = "SELECT COUNT(*) FROM sessions WHERE state IN ('requested', 'confirmed')";
    const OVERLAPS: &str = "SELECT COUNT(*) FROM sessions a JOIN sessions b
        ON a.id < b.id AND (a.provider_id = b.provider_id OR a.client_id = b.client_id)
        WHERE a.state IN ('requested', 'confirmed') AND b.state IN ('requested', 'confirmed')
          AND a.starts_at < b.ends_at AND b.starts_at < a.ends_at";
    let count = |sql: &'static str| async move {
        let (n,): (i64,) = livesessions_activities::with_pool!(db, |pool| {
            sqlx::query_as(sql).fetch_one(pool).await
        })
        .expect("the count");
        n
    };
    (count(HOLDING).await, count(OVERLAPS).await)
}

/// Fires one booking per `(start, minutes)` at once, each by a new client of its own; answers
/// the statuses with their bodies.
async fn race(
    app: &TestApp,
    provider: ProviderId,
    times: &[(DateTime<Utc>, u32)],
) -> Vec<(StatusCode, Value)> {
    let mut clients = Vec::new();
    for _ in times {
        clients.push(app.new_client("subscription", "subscription-standard").await);
    }
    futures::future::join_all(clients.iter().zip(times).map(|(client, (starts_at, minutes))| {
        request(app, *client, provider, *starts_at, *minutes)
    }))
    .await
}

/// Exactly one booking was created and every other one refused with `409 slot_taken`; the
/// database holds one session and no overlap.
async fn assert_one_winner(app: &TestApp, answers: &[(StatusCode, Value)]) {
    let created = answers.iter().filter(|(status, _)| *status == StatusCode::CREATED).count();
    let taken = answers
        .iter()
        .filter(|(status, body)| {
            *status == StatusCode::CONFLICT && error_code(body) == "slot_taken"
        })
        .count();
    let others: Vec<_> = answers
        .iter()
        .filter(|(s, b)| *s != StatusCode::CREATED && error_code(b) != "slot_taken")
        .collect();
    assert_eq!((created, taken), (1, answers.len() - 1), "unexpected answers: {others:?}");
    assert_eq!(holding_and_overlaps(&app.db).await, (1, 0));
}

/// A time a day or so ahead on a whole hour (10:00 UTC), clear of the late-change window.
fn tomorrow_at_ten() -> DateTime<Utc> {
    let date = (Utc::now() + TimeDelta::days(2)).date_naive();
    Utc.from_utc_datetime(&date.and_hms_opt(10, 0, 0).unwrap())
}

async fn fifty_requests_for_one_slot_book_one_session(backend: Backend) {
    let app = TestApp::spawn(backend, test_policy()).await;
    let provider = app.new_provider("therapist").await;
    let times = vec![(tomorrow_at_ten(), 30); 50];
    let answers = race(&app, provider, &times).await;
    assert_one_winner(&app, &answers).await;
}

async fn fifty_requests_for_overlapping_slots_book_one_session(backend: Backend) {
    let app = TestApp::spawn(backend, test_policy()).await;
    let provider = app.new_provider("therapist").await;
    // 10:00–10:45 against 10:30–11:30: each overlaps the other by a quarter of an hour.
    let ten = tomorrow_at_ten();
    let half_past = ten + TimeDelta::minutes(30);
    let times: Vec<_> =
        (0..50).map(|i| if i % 2 == 0 { (ten, 45) } else { (half_past, 60) }).collect();
    let answers = race(&app, provider, &times).await;
    assert_one_winner(&app, &answers).await;
}

async fn taken_times_are_refused_and_freed_times_are_bookable(backend: Backend) {
    let app = TestApp::spawn(backend, test_policy()).await;
    let (first, provider) = app.subscriber_and_therapist().await;
    let second = app.new_client("subscription", "subscription-standard").await;
    let third = app.new_client("subscription", "subscription-standard").await;
    let ten = tomorrow_at_ten();
    let noon = ten + TimeDelta::hours(2);

    let morning = app.book_confirmed(first, provider, ten).await;
    let midday = app.book(second, provider, noon).await;
    // A confirmed session and a pending request both hold their time, whole or in part.
    for (starts_at, minutes) in [(ten, 30), (ten + TimeDelta::minutes(15), 30), (noon, 60)] {
        let (status, body) = request(&app, third, provider, starts_at, minutes).await;
        assert_eq!((status, error_code(&body)), (StatusCode::CONFLICT, "slot_taken"), "{body}");
    }
    // Back to back is fine: a session ending at 10:30 leaves 10:30 free.
    let after = app.book(third, provider, ten + TimeDelta::minutes(30)).await;
    assert_eq!(after.state, SessionState::Requested);

    // Rescheduling into a taken time is refused, and the session keeps its own.
    let (status, body) = app.reschedule(&morning, noon + TimeDelta::minutes(10), true).await;
    assert_eq!((status, error_code(&body)), (StatusCode::CONFLICT, "slot_taken"), "{body}");
    let kept = app.wait_for_state(morning.id, SessionState::Confirmed).await;
    assert_eq!(kept.starts_at, ten);

    // A client cannot be in two sessions at once, even with two providers.
    let other_provider = app.new_provider("therapist").await;
    let (status, body) =
        request(&app, first, other_provider, ten + TimeDelta::minutes(20), 30).await;
    assert_eq!((status, error_code(&body)), (StatusCode::CONFLICT, "slot_taken"), "{body}");

    // Moving to a free time frees the old one; a cancelled session frees its time.
    let (status, body) = app.reschedule(&morning, noon + TimeDelta::hours(2), true).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let fourth = app.new_client("subscription", "subscription-standard").await;
    app.book(fourth, provider, ten).await;
    let cancel = app
        .post(
            &format!("/v1/sessions/{}/cancel", midday.id),
            &app.token(Role::Client, second),
            json!({}),
        )
        .await;
    assert_eq!(cancel.0, StatusCode::OK, "{}", cancel.1);
    app.wait_for_state(midday.id, SessionState::Cancelled).await;
    let (status, body) = request(&app, third, provider, noon, 30).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(holding_and_overlaps(&app.db).await.1, 0);
}

const EVERY_DAY: [&str; 7] =
    ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"];

/// Weekdays 09:00–12:00 in the provider's zone, with the given exceptions.
fn weekday_mornings(exceptions: Value) -> Value {
    let days = ["monday", "tuesday", "wednesday", "thursday", "friday"];
    json!({
        "weekly": days.iter().map(|day| json!({"day": day, "start": "09:00", "end": "12:00"})).collect::<Vec<_>>(),
        "exceptions": exceptions,
    })
}

/// The next `weekday` at least two days ahead.
fn next(weekday: chrono::Weekday) -> NaiveDate {
    let mut date = Utc::now().date_naive() + Days::new(2);
    while date.weekday() != weekday {
        date = date.succ_opt().unwrap();
    }
    date
}

async fn slots_follow_hours_sessions_and_notice(backend: Backend) {
    let policy = Policy { booking_notice: Duration::from_secs(2 * 3600), ..hourly() };
    let app = TestApp::spawn(backend, policy).await;
    let provider = provider_in(&app, "UTC").await;
    let client = app.new_client("subscription", "subscription-standard").await;
    let monday = next(chrono::Weekday::Mon);
    let tuesday = monday.succ_opt().unwrap();
    let wednesday = tuesday.succ_opt().unwrap();
    // Tuesday off, Wednesday an extra afternoon hour.
    let exceptions = json!([
        {"date": tuesday, "off": true},
        {"date": wednesday, "hours": [{"start": "15:00", "end": "16:00"}]},
    ]);
    let (status, body) = put_availability(&app, provider, weekday_mornings(exceptions)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, stored) = app
        .get(
            &format!("/v1/providers/{provider}/availability"),
            &app.token(Role::Provider, provider),
        )
        .await;
    assert_eq!((status, &stored), (StatusCode::OK, &body));

    let at =
        |date: NaiveDate, hour: u32| Utc.from_utc_datetime(&date.and_hms_opt(hour, 0, 0).unwrap());
    // A pending request holds Monday 10:00; Monday 11:00 is taken by half an hour.
    app.book(client, provider, at(monday, 10)).await;
    let other = app.new_client("subscription", "subscription-standard").await;
    app.book(other, provider, at(monday, 11) + TimeDelta::minutes(30)).await;
    let (status, body) = search(&app, provider, at(monday, 0), at(wednesday, 23), 60).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        local_starts(&body),
        [
            format!("{monday}T09:00+00:00"),
            format!("{wednesday}T09:00+00:00"),
            format!("{wednesday}T10:00+00:00"),
            format!("{wednesday}T11:00+00:00"),
            format!("{wednesday}T15:00+00:00"),
        ]
    );
    assert_eq!(body["slots"][0]["ends_at"], json!(at(monday, 10)));

    // Nothing inside the booking notice: hours all day long, searched from now.
    let all_day: Vec<Value> =
        EVERY_DAY.iter().map(|day| json!({"day": day, "start": "00:00", "end": "23:59"})).collect();
    let all_day = json!({ "weekly": all_day });
    let (status, body) = put_availability(&app, provider, all_day).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let now = Utc::now();
    let (status, body) = search(&app, provider, now, now + TimeDelta::days(1), 30).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let first: DateTime<Utc> =
        serde_json::from_value(body["slots"][0]["starts_at"].clone()).unwrap();
    assert!(first >= now + TimeDelta::hours(2) && first <= now + TimeDelta::hours(3), "{first}");

    // Bad input answers 400 when the OpenAPI document's schema refuses it, 422 when only the
    // rules do (an end before the start, a window too long), and changes nothing.
    let (status, body) = search(&app, provider, now, now + TimeDelta::days(62), 30).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (malformed, invalid_range) = (
        (StatusCode::BAD_REQUEST, "malformed_request"),
        (StatusCode::UNPROCESSABLE_ENTITY, "invalid_time_range"),
    );
    for (from, to, minutes, answer) in [
        (now, now + TimeDelta::days(62) + TimeDelta::minutes(1), 30, invalid_range),
        (now, now - TimeDelta::hours(1), 30, invalid_range),
        (now, now + TimeDelta::days(1), 0, malformed),
    ] {
        let (status, body) = search(&app, provider, from, to, minutes).await;
        assert_eq!((status, error_code(&body)), answer, "{from}–{to}, {minutes} minutes");
    }
    let backwards = json!({"weekly": [{"day": "monday", "start": "12:00", "end": "09:00"}]});
    let unknown_day = json!({"weekly": [{"day": "someday", "start": "09:00", "end": "12:00"}]});
    let single_digit = json!({"weekly": [{"day": "monday", "start": "9:00", "end": "12:00"}]});
    let unknown_field =
        json!({"weekly": [{"day": "monday", "start": "09:00", "end": "12:00", "note": "x"}]});
    for (bad, answer) in [
        (backwards, invalid_range),
        (unknown_day, malformed),
        (single_digit, malformed),
        (unknown_field, malformed),
    ] {
        let (status, body) = put_availability(&app, provider, bad.clone()).await;
        assert_eq!((status, error_code(&body)), answer, "{bad}");
    }
    // Only that provider (or a service) sets it; providers do not search slots.
    let stranger = app.token(Role::Provider, ProviderId::random());
    let path = format!("/v1/providers/{provider}/availability");
    let (status, _) =
        app.call(Method::PUT, &path, Some(&stranger), Some(json!({"weekly": []}))).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let day = (now, now + TimeDelta::days(1));
    let (status, _) = search_as(&app, &stranger, provider, day, 30).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let unknown = ProviderId::random();
    let (status, _) = search(&app, unknown, now, now + TimeDelta::days(1), 30).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

/// The next date in `month` (at least a day ahead) whose UTC offset differs from the day before.
fn next_change(zone: Tz, month: u32) -> NaiveDate {
    let noon_offset = |date: NaiveDate| {
        zone.from_local_datetime(&date.and_hms_opt(12, 0, 0).unwrap()).unwrap().offset().fix()
    };
    let today = Utc::now().with_timezone(&zone).date_naive();
    (1..=400)
        .map(|n| today + Days::new(n))
        .find(|date| {
            date.month() == month && noon_offset(*date) != noon_offset(date.pred_opt().unwrap())
        })
        .expect("a change within a year")
}

/// The slots, in `zone` with 60-minute sessions, of three days around `change`: weekday
/// mornings 09:00–12:00 every day, plus 00:00–04:00 on the day of the change.
async fn slots_around(app: &TestApp, zone: &str, change: NaiveDate) -> Vec<String> {
    let provider = provider_in(app, zone).await;
    let availability = json!({
        "weekly": EVERY_DAY.iter().map(|day| json!({"day": day, "start": "09:00", "end": "12:00"})).collect::<Vec<_>>(),
        "exceptions": [{"date": change, "hours": [{"start": "00:00", "end": "04:00"}]}],
    });
    let (status, body) = put_availability(app, provider, availability).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let tz: Tz = zone.parse().unwrap();
    let midnight = |date: NaiveDate| {
        tz.from_local_datetime(&date.and_time(NaiveTime::MIN)).earliest().unwrap().to_utc()
    };
    let from = midnight(change.pred_opt().unwrap());
    let to = midnight(change + Days::new(2));
    let (status, body) = search(app, provider, from, to, 60).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let starts: Vec<DateTime<Utc>> = body["slots"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| serde_json::from_value(s["starts_at"].clone()).unwrap())
        .collect();
    assert!(starts.windows(2).all(|w| w[1] - w[0] >= TimeDelta::hours(1)), "{starts:?}");
    local_starts(&body)
}

/// One daylight-saving change: its month, the UTC offset before and after, and the slots the
/// 00:00–04:00 interval of that day offers (`HH:MM±hh:mm`).
struct Change {
    month: u32,
    before: &'static str,
    after: &'static str,
    early: &'static [&'static str],
}

/// Checks the slots around the next of each change in `zone`: the morning hours keep their
/// wall-clock times on either side, and the early interval has the hours the change gives it.
async fn check_changes(backend: Backend, zone: &str, changes: [Change; 2]) {
    let app = TestApp::spawn(backend, hourly()).await;
    let tz: Tz = zone.parse().unwrap();
    let on = |date: NaiveDate, times: &[String]| -> Vec<String> {
        times.iter().map(|time| format!("{date}T{time}")).collect()
    };
    let mornings = |date: NaiveDate, offset: &str| {
        on(date, &["09:00", "10:00", "11:00"].map(|t| format!("{t}{offset}")))
    };
    for change in changes {
        let day = next_change(tz, change.month);
        let early: Vec<String> = change.early.iter().map(|t| t.to_string()).collect();
        let expected = [
            mornings(day.pred_opt().unwrap(), change.before),
            on(day, &early),
            mornings(day, change.after),
            mornings(day.succ_opt().unwrap(), change.after),
        ]
        .concat();
        assert_eq!(slots_around(&app, zone, day).await, expected, "{zone} on {day}");
    }
}

async fn slots_across_new_york_daylight_saving_changes(backend: Backend) {
    // Spring: 00:00–04:00 is three real hours, 02:00 does not exist. Autumn: five, 01:00 twice.
    let spring = Change {
        month: 3,
        before: "-05:00",
        after: "-04:00",
        early: &["00:00-05:00", "01:00-05:00", "03:00-04:00"],
    };
    let autumn = Change {
        month: 11,
        before: "-04:00",
        after: "-05:00",
        early: &["00:00-04:00", "01:00-04:00", "01:00-05:00", "02:00-05:00", "03:00-05:00"],
    };
    check_changes(backend, "America/New_York", [spring, autumn]).await;
}

async fn slots_across_london_daylight_saving_changes(backend: Backend) {
    // The clocks jump from 01:00 to 02:00 in March, and go back in late October.
    let spring = Change {
        month: 3,
        before: "+00:00",
        after: "+01:00",
        early: &["00:00+00:00", "02:00+01:00", "03:00+01:00"],
    };
    let autumn = Change {
        month: 10,
        before: "+01:00",
        after: "+00:00",
        early: &["00:00+01:00", "01:00+01:00", "01:00+00:00", "02:00+00:00", "03:00+00:00"],
    };
    check_changes(backend, "Europe/London", [spring, autumn]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_who_cannot_find_a_time_reaches_the_provider() {
    let mut mail = MailServer::new();
    mail.start();
    let options = TestOptions { smtp_port: Some(mail.port), ..TestOptions::default() };
    let app = TestApp::spawn_with(Backend::Postgres, test_policy(), options).await;
    let (client, provider) = app.subscriber_and_therapist().await;
    let starts_at = tomorrow_at_ten();
    let windows = json!([{"starts_at": starts_at, "ends_at": starts_at + TimeDelta::hours(3)}]);
    let body = json!({"client_id": client, "provider_id": provider, "windows": windows});
    let (status, created) =
        app.post("/v1/availability-requests", &app.token(Role::Client, client), body).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");

    // The provider reads the windows in their own zone (Europe/London).
    let email =
        mail.wait_for_subject("provider@example.com", "A. Client could not find a time").await;
    let london = chrono_tz::Europe::London;
    let from = livesessions_activities::notification::local(starts_at, london);
    assert!(email.text.contains(&from), "{}", email.text);
    let (status, listed) = app
        .get(
            &format!("/v1/providers/{provider}/availability-requests"),
            &app.token(Role::Provider, provider),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{listed}");
    assert_eq!(listed["requests"], json!([created]));

    // Windows that are over or backwards are refused (422), none at all is malformed (400);
    // nobody else may ask for a client.
    let past = Utc::now() - TimeDelta::days(1);
    let invalid_range = (StatusCode::UNPROCESSABLE_ENTITY, "invalid_time_range");
    for (windows, refused) in [
        (json!([{"starts_at": past, "ends_at": past + TimeDelta::hours(1)}]), invalid_range),
        (
            json!([{"starts_at": starts_at, "ends_at": starts_at - TimeDelta::hours(1)}]),
            invalid_range,
        ),
        (json!([]), (StatusCode::BAD_REQUEST, "malformed_request")),
    ] {
        let body = json!({"client_id": client, "provider_id": provider, "windows": windows});
        let (status, answer) =
            app.post("/v1/availability-requests", &app.token(Role::Client, client), body).await;
        assert_eq!((status, error_code(&answer)), refused, "{windows}");
    }
    let body = json!({"client_id": client, "provider_id": provider, "windows": windows});
    let stranger = app.token(Role::Client, ClientId::random());
    let (status, _) = app.post("/v1/availability-requests", &stranger, body).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, listed) = app
        .get(&format!("/v1/providers/{provider}/availability-requests"), &app.service_token())
        .await;
    assert_eq!((status, listed["requests"].as_array().map(Vec::len)), (StatusCode::OK, Some(1)));
}
