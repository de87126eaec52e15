//! The typed way to buy a credit outside any session: start (or find) the purchase's
//! `CreditPurchase` workflow and wait for its outcome. The API goes through here.

use crate::TemporalSettings;
use livesessions_domain::{ClientId, PurchaseId};
use livesessions_workflows::CreditPurchase;
use livesessions_workflows::activities::{CreditOrder, PurchaseOutcome};
use std::time::Duration;
use temporalio_client::errors::WorkflowStartError;
use temporalio_client::{
    Client, WorkflowIdConflictPolicy, WorkflowIdReusePolicy, WorkflowStartOptions,
};
use tokio::time::Instant;

/// Why a purchase's outcome is not known.
#[derive(Debug, thiserror::Error)]
pub enum PurchaseCallError {
    /// Temporal did not take the purchase, or its workflow was stopped before it finished; a
    /// retry under the same purchase id starts it again, and charges at most once.
    #[error("the purchase service is unavailable: {0}")]
    Unavailable(String),
    /// The purchase was taken (or may have been) but did not finish in time. It goes on: a card
    /// it charges always gets its credit.
    #[error("purchase {purchase} did not finish within {waited}; it goes on")]
    Pending {
        /// The purchase.
        purchase: PurchaseId,
        /// Who buys.
        client: ClientId,
        /// How long the call waited.
        waited: String,
    },
}

/// Starts `CreditPurchase` workflows and waits for their outcome.
#[derive(Clone)]
pub struct Purchases {
    client: Client,
    task_queue: String,
    timeout: Duration,
}

impl Purchases {
    /// Purchase workflows on the server and task queue of `settings`, waited for at most
    /// `temporal.request_timeout`.
    pub fn new(client: Client, settings: &TemporalSettings) -> Self {
        Self { client, task_queue: settings.task_queue.clone(), timeout: settings.request_timeout }
    }

    /// Starts the order's purchase, or finds the one already started under its id (running, or
    /// completed: then its outcome is answered again), and waits for the outcome.
    pub async fn buy(&self, order: CreditOrder) -> Result<PurchaseOutcome, PurchaseCallError> {
        let (purchase, client) = (order.purchase_id, order.client_id);
        let workflow_id = purchase.workflow_id();
        let deadline = Instant::now() + self.timeout;
        let pending = || PurchaseCallError::Pending {
            purchase,
            client,
            waited: livesessions_domain::duration::format(self.timeout),
        };
        let options = WorkflowStartOptions::new(self.task_queue.clone(), workflow_id.clone())
            .id_conflict_policy(WorkflowIdConflictPolicy::UseExisting)
            .id_reuse_policy(WorkflowIdReusePolicy::AllowDuplicateFailedOnly)
            .static_summary("credit purchase".to_string())
            .build();
        let start = self.client.start_workflow(CreditPurchase::run, order, options);
        match tokio::time::timeout_at(deadline, start).await.map_err(|_| pending())? {
            Ok(_) | Err(WorkflowStartError::AlreadyStarted { .. }) => {}
            Err(WorkflowStartError::Rpc(status))
                if status.code() != temporalio_client::tonic::Code::Unavailable =>
            {
                return Err(pending());
            }
            Err(other) => return Err(PurchaseCallError::Unavailable(other.to_string())),
        }
        let handle = self.client.get_workflow_handle::<CreditPurchase>(workflow_id);
        let result = tokio::time::timeout_at(deadline, handle.get_result(Default::default()))
            .await
            .map_err(|_| pending())?;
        result.map_err(|e| PurchaseCallError::Unavailable(e.to_string()))
    }
}
