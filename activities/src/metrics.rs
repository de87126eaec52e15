//! The worker's own counters, created on the Temporal SDK's meter so that they are served with
//! the SDK's metrics (task latencies, slots, sticky cache) on the worker's `/metrics`
//! (`temporal.metrics_addr`): sessions held, bookings refused by code, fees by kind and status.
//! Labels are codes and kinds only, never an id.

use livesessions_domain::{FeeKind, FeeStatus, RefusalCode};
use std::sync::Arc;
use temporalio_common::telemetry::metrics::{CoreMeter, Counter, MetricKeyValue, MetricParameters};

/// Counters of what the activities did.
#[derive(Clone)]
pub struct WorkerMetrics {
    meter: Arc<dyn CoreMeter>,
    sessions_held: Counter,
    bookings_refused: Counter,
    fees: Counter,
}

impl std::fmt::Debug for WorkerMetrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WorkerMetrics")
    }
}

impl WorkerMetrics {
    /// Creates `livesessions_sessions_held_total`, `livesessions_bookings_refused_total` (by
    /// `code`) and `livesessions_fees_total` (by `kind` and `status`) on `meter`.
    pub fn new(meter: Arc<dyn CoreMeter>) -> Self {
        let counter = |name: &'static str, description: &'static str| {
            meter.counter(MetricParameters::builder().name(name).description(description).build())
        };
        Self {
            sessions_held: counter(
                "livesessions_sessions_held_total",
                "Bookings held (a session started, with its credit or authorization)",
            ),
            bookings_refused: counter(
                "livesessions_bookings_refused_total",
                "Bookings refused at request time, by refusal code",
            ),
            fees: counter("livesessions_fees_total", "Fees posted, by kind and status"),
            meter,
        }
    }

    fn add(&self, counter: &Counter, labels: Vec<MetricKeyValue>) {
        counter.add(1, &self.meter.new_attributes(labels.into()));
    }

    /// A booking was held.
    pub fn session_held(&self) {
        self.add(&self.sessions_held, Vec::new());
    }

    /// A booking was refused with `code`.
    pub fn booking_refused(&self, code: RefusalCode) {
        self.add(&self.bookings_refused, vec![MetricKeyValue::new("code", code.as_str())]);
    }

    /// A fee of `kind` was posted as `status`.
    pub fn fee_posted(&self, kind: FeeKind, status: FeeStatus) {
        let labels = vec![
            MetricKeyValue::new("kind", kind.as_str()),
            MetricKeyValue::new("status", status.as_str()),
        ];
        self.add(&self.fees, labels);
    }
}
