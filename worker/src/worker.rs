//! The worker: polls the session task queue and runs the `LiveSession` workflow and every
//! activity it calls.

use livesessions_activities::{ActivitySettings, Billing, Db, Media, Notification, Storage};
use livesessions_workflows::{Delivery, LiveSession, MessagingSession};
use std::time::Duration;
use temporalio_client::Client;
use temporalio_sdk::{Runtime, Worker, WorkerOptions};

/// A worker for live sessions, ready to run.
pub struct SessionWorker {
    worker: Worker,
    // Owns the core runtime the worker was built on; dropped after the worker.
    _runtime: Runtime,
}

impl SessionWorker {
    /// Builds a worker on `task_queue` whose activities use `db` and the services `settings`
    /// name, and hand out links under `public_url`. Needs a Tokio runtime.
    pub fn new(
        client: Client,
        task_queue: &str,
        db: Db,
        settings: &ActivitySettings,
        public_url: &str,
    ) -> anyhow::Result<Self> {
        let billing = &settings.billing;
        let runtime = Runtime::from_current_tokio(Default::default())?;
        let options = WorkerOptions::new(task_queue)
            .register_workflow::<LiveSession>()?
            .register_workflow::<MessagingSession>()?
            .register_workflow::<Delivery>()?
            .register_activities(Storage::new(db.clone()))
            .register_activities(Billing::new(
                db.clone(),
                billing.processor(&db),
                billing.processor_timeout,
            ))
            .register_activities(Notification::new(
                db.clone(),
                public_url,
                &settings.email,
                &settings.webhooks,
            )?)
            .register_activities(Media::new(settings.media.service(&db)?))
            .graceful_shutdown_period(Duration::from_secs(10))
            .build();
        let worker = Worker::new(&runtime, client, options)?;
        Ok(Self { worker, _runtime: runtime })
    }

    /// A function that asks the worker to finish its current tasks and stop.
    pub fn shutdown_handle(&self) -> impl Fn() + Send + Sync + 'static {
        self.worker.shutdown_handle()
    }

    /// Runs until shut down. Not `Send`: await it on the task that built it.
    pub async fn run(mut self) -> anyhow::Result<()> {
        self.worker.run().await?;
        Ok(())
    }
}
