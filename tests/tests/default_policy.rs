//! The real default policy (24 h confirmation window, reminders 24 h and 1 h before, 10 min
//! grace, 14 day reschedule offer) end to end, in seconds: the dev server's experimental time
//! skipping jumps over every timer while the workflow only waits.

use chrono::{TimeDelta, Utc};
use livesessions_domain::{CreditStatus, Outcome, Policy, SessionState};
use livesessions_tests::{Backend, TestApp};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_default_policy_runs_end_to_end_with_time_skipping() {
    let app = TestApp::spawn(Backend::Postgres, Policy::default()).await;
    let (client, provider) = app.subscriber_and_therapist().await;
    let (available, _) = app.credits(client).await;

    // Never confirmed: the 24 h window closes, the credit comes back.
    let unanswered = app.book(client, provider, Utc::now() + TimeDelta::days(3)).await;
    app.skip_time(&unanswered.workflow_id).await;
    let expired = app.wait_for_state(unanswered.id, SessionState::Expired).await;
    let (requested, ended) = (expired.history[0].at, expired.history[1].at);
    assert!(ended - requested >= TimeDelta::hours(24), "the window lasted {}", ended - requested);
    assert_eq!(expired.credit.map(|c| c.status), Some(CreditStatus::Released));

    // Confirmed, then nobody comes: reminders at 24 h and 1 h, the grace period passes, the
    // provider's absence leaves a reschedule on offer for 14 days, which lapses.
    let booked = app.book(client, provider, Utc::now() + TimeDelta::days(3)).await;
    let confirmed = app.confirm(&booked).await;
    app.skip_time(&confirmed.workflow_id).await;
    let lapsed =
        app.wait_for(confirmed.id, "the reschedule offer lapsed", |s| s.outcome.is_some()).await;
    assert_eq!(lapsed.state, SessionState::ProviderNoShow);
    assert_eq!(lapsed.outcome, Some(Outcome::ProviderDidNotJoin));
    assert_eq!(lapsed.credit.map(|c| c.status), Some(CreditStatus::Released));
    let absent_at = lapsed.history.last().unwrap().at;
    assert!(
        absent_at - lapsed.starts_at >= TimeDelta::minutes(10),
        "the grace period was {}",
        absent_at - lapsed.starts_at
    );

    assert_eq!(
        app.room_message_kinds(client).await,
        [
            "session_expired",
            "session_confirmed",
            "session_reminder",
            "session_reminder",
            "provider_no_show",
            "reschedule_offer_lapsed"
        ]
    );
    assert_eq!(app.credits(client).await, (available, 0));
    assert!(app.charges(lapsed.id).await.is_empty());
    app.check_histories("the_default_policy_runs_end_to_end_with_time_skipping").await;
}
