//! The worker: polls the session task queue and runs the `LiveSession`, `MessagingSession`,
//! `CreditPurchase`, `Subscription`, `FeeCollection` and `CreditAdjustment` workflows and every activity they call;
//! beside it, the outbox dispatcher sends the emails and webhook events the workflows wrote.

use crate::TemporalSettings;
use livesessions_activities::{
    ActivitySettings, Adjustments, Billing, Collections, Db, Dispatcher, Media, Notification,
    Renewals, Storage, WorkerMetrics,
};
use livesessions_workflows::{
    CreditAdjustment, CreditPurchase, FeeCollection, LiveSession, MessagingSession, Subscription,
};
use std::sync::Arc;
use std::time::Duration;
use temporalio_client::Client;
use temporalio_common::telemetry::{
    PrometheusExporterOptions, TelemetryOptions, start_prometheus_metric_exporter,
};
use temporalio_sdk::runtime::{PollerBehavior, RuntimeOptions};
use temporalio_sdk::{Runtime, Worker, WorkerOptions};
use tokio::sync::watch;

/// A worker for live sessions, ready to run.
pub struct SessionWorker {
    worker: Worker,
    dispatcher: Dispatcher,
    stop: watch::Sender<bool>,
    // Owns the core runtime the worker was built on; dropped after the worker.
    _runtime: Runtime,
}

impl SessionWorker {
    /// Builds a worker on the task queue of `temporal`, polling as it says, whose activities
    /// use `db` and the services `settings` name, and hand out links under `public_url`. Needs
    /// a Tokio runtime.
    pub fn new(
        client: Client,
        temporal: &TemporalSettings,
        db: Db,
        settings: &ActivitySettings,
        public_url: &str,
    ) -> anyhow::Result<Self> {
        let billing = &settings.billing;
        let (runtime, metrics) = runtime_with_metrics(temporal.metrics_addr.as_deref())?;
        let notification =
            || Notification::new(db.clone(), public_url, &settings.email, &settings.webhooks);
        let words = Arc::new(notification()?);
        let dispatcher = Dispatcher::new(db.clone(), words.clone());
        let processor = billing.processor(&db);
        let new_billing = || {
            let new = Billing::new(db.clone(), processor.clone(), billing.processor_timeout)
                .with_collection_schedule(settings.collection_schedule.clone());
            match &metrics {
                Some(metrics) => new.with_metrics(metrics.clone()),
                None => new,
            }
        };
        anyhow::ensure!(
            temporal.workflow_task_polls >= 2
                && (1..=100).contains(&temporal.new_workflow_poll_percent),
            "temporal.workflow_task_polls must be at least 2 and temporal.new_workflow_poll_percent 1 to 100"
        );
        let options = WorkerOptions::new(&temporal.task_queue)
            .register_workflow::<LiveSession>()?
            .register_workflow::<MessagingSession>()?
            .register_workflow::<CreditPurchase>()?
            .register_workflow::<Subscription>()?
            .register_workflow::<FeeCollection>()?
            .register_workflow::<CreditAdjustment>()?
            .register_activities(Storage::new(db.clone(), words))
            .register_activities(Renewals::new(db.clone(), settings.plans.clone()))
            .register_activities(new_billing())
            .register_activities(Collections::new(new_billing()))
            .register_activities(Adjustments::new(new_billing()))
            .register_activities(notification()?)
            .register_activities(Media::new(settings.media.service(&db)?))
            .graceful_shutdown_period(Duration::from_secs(10))
            .workflow_task_poller_behavior(PollerBehavior::SimpleMaximum(
                temporal.workflow_task_polls,
            ))
            .nonsticky_to_sticky_poll_ratio(f32::from(temporal.new_workflow_poll_percent) / 100.0)
            .build();
        let worker = Worker::new(&runtime, client, options)?;
        let (stop, _) = watch::channel(false);
        Ok(Self { worker, dispatcher, stop, _runtime: runtime })
    }

    /// A function that asks the worker to finish its current tasks and stop, and the dispatcher
    /// to stop after its current round.
    pub fn shutdown_handle(&self) -> impl Fn() + Send + Sync + 'static {
        let worker = self.worker.shutdown_handle();
        let stop = self.stop.clone();
        move || {
            stop.send_replace(true);
            worker();
        }
    }

    /// Runs until shut down. Not `Send`: await it on the task that built it.
    pub async fn run(mut self) -> anyhow::Result<()> {
        let mut stopped = self.stop.subscribe();
        let dispatching = self.dispatcher.run_until(async move {
            let _ = stopped.wait_for(|stop| *stop).await;
        });
        let (worked, ()) = tokio::join!(self.worker.run(), dispatching);
        worked?;
        Ok(())
    }
}

/// The SDK runtime; with `metrics_addr`, a Prometheus endpoint there serving the SDK's metrics
/// and the worker's own counters, created on the same meter.
fn runtime_with_metrics(
    metrics_addr: Option<&str>,
) -> anyhow::Result<(Runtime, Option<WorkerMetrics>)> {
    let Some(addr) = metrics_addr else {
        return Ok((Runtime::from_current_tokio(RuntimeOptions::default())?, None));
    };
    let socket_addr = addr.parse().map_err(|e| {
        anyhow::anyhow!("temporal.metrics_addr {addr:?} is not a socket address: {e}")
    })?;
    let exporter = start_prometheus_metric_exporter(
        PrometheusExporterOptions::builder().socket_addr(socket_addr).build(),
    )
    .map_err(|e| anyhow::anyhow!("cannot serve metrics on {addr}: {e}"))?;
    tracing::info!(addr = %exporter.bound_addr, "worker metrics at /metrics");
    let meter: Arc<dyn temporalio_common::telemetry::metrics::CoreMeter> = exporter.meter;
    let telemetry = TelemetryOptions::builder().metrics(meter.clone()).build();
    let options = RuntimeOptions::builder()
        .telemetry_options(telemetry)
        .build()
        .map_err(anyhow::Error::msg)?;
    Ok((Runtime::from_current_tokio(options)?, Some(WorkerMetrics::new(meter))))
}
