//! `GET /metrics`: the API's Prometheus metrics, request counts and latency histograms by route
//! template (never a concrete path, which would carry ids) and status. Unauthenticated, like
//! `/healthz`: it names routes and numbers only.

use crate::AppState;
use axum::body::Body;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderValue, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounterVec, Opts, Registry, TextEncoder,
};
use std::sync::Arc;
use std::time::Instant;

/// The label of requests no route matched (so probing random paths adds no series).
const UNMATCHED: &str = "unmatched";

/// The API's request metrics, in their own registry.
#[derive(Clone)]
pub struct HttpMetrics {
    registry: Registry,
    requests: IntCounterVec,
    latency: HistogramVec,
}

impl HttpMetrics {
    /// Registers `livesessions_http_requests_total` and
    /// `livesessions_http_request_duration_seconds`.
    pub fn new() -> Arc<Self> {
        let registry = Registry::new();
        let requests = IntCounterVec::new(
            Opts::new("livesessions_http_requests_total", "HTTP requests answered"),
            &["method", "route", "status"],
        )
        .expect("a valid counter");
        let latency = HistogramVec::new(
            HistogramOpts::new(
                "livesessions_http_request_duration_seconds",
                "Time to answer an HTTP request",
            )
            .buckets(vec![0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0]),
            &["method", "route", "status"],
        )
        .expect("a valid histogram");
        registry.register(Box::new(requests.clone())).expect("registered once");
        registry.register(Box::new(latency.clone())).expect("registered once");
        Arc::new(Self { registry, requests, latency })
    }

    /// The text exposition of every metric.
    fn render(&self) -> Vec<u8> {
        let mut text = Vec::new();
        TextEncoder::new().encode(&self.registry.gather(), &mut text).expect("text encodes");
        text
    }
}

/// Counts and times every request under its route template.
pub async fn record(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let metrics = &state.metrics;
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or(UNMATCHED.to_string(), |path| path.as_str().to_string());
    let method = request.method().as_str().to_string();
    let started = Instant::now();
    let response = next.run(request).await;
    let status = response.status().as_u16().to_string();
    let labels = [method.as_str(), route.as_str(), status.as_str()];
    metrics.requests.with_label_values(&labels).inc();
    metrics.latency.with_label_values(&labels).observe(started.elapsed().as_secs_f64());
    response
}

/// Prometheus metrics of the API (text exposition format); no auth.
#[utoipa::path(get, path = "/metrics", tag = "health",
    responses((status = 200, content_type = "text/plain", body = String,
        description = "livesessions_http_requests_total and livesessions_http_request_duration_seconds by method, route template and status")))]
pub async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    let content_type = HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8");
    ([(header::CONTENT_TYPE, content_type)], Body::from(state.metrics.render()))
}
