//! Metrics an operator can scrape: after a few bookings (one held and cancelled late, one
//! refused), the API's `/metrics` counts the requests by route template and status, and the
//! worker's (`temporal.metrics_addr`) serves the Temporal SDK's own metrics with the worker's
//! counters: sessions held, bookings refused by code, fees by kind and status.

use chrono::{TimeDelta, Utc};
use livesessions_domain::Role;
use livesessions_tests::{Backend, TestApp, TestOptions, test_policy};
use livesessions_worker::dev_server::free_port;
use reqwest::StatusCode;
use serde_json::json;

/// The value of the sample of `name` whose labels include every one of `labels`, summed over
/// the samples that match (other labels, such as the SDK's `service_name`, may differ).
fn sample(text: &str, name: &str, labels: &[(&str, &str)]) -> f64 {
    text.lines()
        .filter(|line| !line.starts_with('#'))
        .filter_map(|line| {
            let (series, value) = line.rsplit_once(' ')?;
            let (metric, rest) = series.split_once('{').unwrap_or((series, ""));
            let matches = metric == name
                && labels.iter().all(|(k, v)| rest.contains(&format!("{k}=\"{v}\"")));
            matches.then(|| value.parse::<f64>().ok()).flatten()
        })
        .sum()
}

async fn scrape(url: &str) -> String {
    let response = reqwest::get(url).await.expect("the metrics endpoint answers");
    assert_eq!(response.status(), StatusCode::OK);
    response.text().await.expect("a text body")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_and_worker_metrics_move_with_a_lifecycle() {
    let worker_metrics = format!("127.0.0.1:{}", free_port().unwrap());
    let options =
        TestOptions { worker_metrics_addr: Some(worker_metrics.clone()), ..TestOptions::default() };
    let app = TestApp::spawn_with(Backend::Postgres, test_policy(), options).await;
    let (client, provider) = app.subscriber_and_therapist().await;
    let (other, _) = app.subscriber_and_therapist().await;
    let starts_at = Utc::now() + TimeDelta::hours(3);
    let session = app.book_confirmed(client, provider, starts_at).await;
    let (status, body) = app.request_session(other, provider, starts_at).await;
    assert_eq!(status, StatusCode::CONFLICT, "the provider's time is taken: {body}");
    let cancel = format!("/v1/sessions/{}/cancel", session.id);
    let (status, body) = app.post(&cancel, &app.token(Role::Client, client), json!({})).await;
    assert_eq!(status, StatusCode::OK, "late: the fee is charged: {body}");

    let api = scrape(&format!("{}/metrics", app.address)).await;
    let requests = "livesessions_http_requests_total";
    let booked = [("method", "POST"), ("route", "/v1/sessions"), ("status", "201")];
    assert_eq!(sample(&api, requests, &booked), 1.0, "{api}");
    let refused = [("method", "POST"), ("route", "/v1/sessions"), ("status", "409")];
    assert_eq!(sample(&api, requests, &refused), 1.0, "{api}");
    let cancelled = [("route", "/v1/sessions/{id}/cancel"), ("status", "200")];
    assert_eq!(sample(&api, requests, &cancelled), 1.0, "{api}");
    let timed = "livesessions_http_request_duration_seconds_count";
    assert_eq!(sample(&api, timed, &booked), 1.0, "{api}");
    assert!(!api.contains(&session.id.to_string()), "no id in a label");

    let worker = scrape(&format!("http://{worker_metrics}/metrics")).await;
    assert!(sample(&worker, "livesessions_sessions_held_total", &[]) >= 1.0, "{worker}");
    let code = [("code", "slot_taken")];
    assert_eq!(sample(&worker, "livesessions_bookings_refused_total", &code), 1.0, "{worker}");
    let fee = [("kind", "late_cancel_fee"), ("status", "charged")];
    assert_eq!(sample(&worker, "livesessions_fees_total", &fee), 1.0, "{worker}");
    assert!(
        worker.lines().any(|l| l.starts_with("temporal_workflow_task_execution_latency")),
        "the SDK's own metrics are served too: {worker}"
    );
    assert!(
        worker.lines().any(|l| l.starts_with("temporal_sticky_cache")),
        "the sticky cache: {worker}"
    );
}
