//! The typed way to keep a subscription client's `Subscription` workflow running: start it, or
//! find the one that runs. The API goes through here when it writes a subscription client.

use crate::TemporalSettings;
use livesessions_domain::Renewal;
use livesessions_workflows::Subscription;
use std::time::Duration;
use temporalio_client::errors::WorkflowStartError;
use temporalio_client::{Client, WorkflowIdConflictPolicy, WorkflowStartOptions};

/// Temporal did not take the subscription's workflow, or did not say so in time.
#[derive(Debug, thiserror::Error)]
#[error("the subscription's renewals could not be scheduled: {0}")]
pub struct SubscriptionStartError(String);

/// Starts `Subscription` workflows.
#[derive(Clone)]
pub struct Subscriptions {
    client: Client,
    task_queue: String,
    timeout: Duration,
}

impl Subscriptions {
    /// Subscription workflows on the server and task queue of `settings`, each start waited for
    /// at most `temporal.request_timeout`.
    pub fn new(client: Client, settings: &TemporalSettings) -> Self {
        Self { client, task_queue: settings.task_queue.clone(), timeout: settings.request_timeout }
    }

    /// Makes sure the client's subscription workflow runs: a running one is kept as it is
    /// (`UseExisting`); otherwise one starts that begins `next` when its time comes (an ended
    /// one, whose client left their subscription, may start again).
    pub async fn ensure(&self, next: Renewal) -> Result<(), SubscriptionStartError> {
        let workflow_id = next.client_id.subscription_workflow_id();
        let options = WorkflowStartOptions::new(self.task_queue.clone(), workflow_id)
            .id_conflict_policy(WorkflowIdConflictPolicy::UseExisting)
            .static_summary("subscription renewals".to_string())
            .build();
        let start = self.client.start_workflow(Subscription::run, next, options);
        match tokio::time::timeout(self.timeout, start).await {
            Ok(Ok(_) | Err(WorkflowStartError::AlreadyStarted { .. })) => Ok(()),
            Ok(Err(error)) => Err(SubscriptionStartError(error.to_string())),
            Err(_) => Err(SubscriptionStartError("Temporal did not answer in time".into())),
        }
    }
}
