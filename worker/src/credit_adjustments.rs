//! The typed way to grant or remove a client's credit for an operator: the `grant_credit` or
//! `remove_credit` update of the action's own `CreditAdjustment` workflow, started with it
//! (Update-with-Start). The API goes through here.

use crate::TemporalSettings;
use crate::actions::{ActionCallError, start_with_update};
use livesessions_domain::{ActionId, ClientId, CreditId};
use livesessions_workflows::activities::{Adjustment, AdjustmentOutcome};
use livesessions_workflows::{CreditAdjustment, CreditAdjustmentInput};
use std::time::Duration;
use temporalio_client::{
    Client, WorkflowIdConflictPolicy, WorkflowIdReusePolicy, WorkflowUpdateWithStartOptions,
};

/// Grants and removes credits through `CreditAdjustment` workflows.
#[derive(Clone)]
pub struct CreditAdjustments {
    client: Client,
    task_queue: String,
    timeout: Duration,
}

impl CreditAdjustments {
    /// Adjustments on the server and task queue of `settings`, waited for at most
    /// `temporal.request_timeout`.
    pub fn new(client: Client, settings: &TemporalSettings) -> Self {
        Self { client, task_queue: settings.task_queue.clone(), timeout: settings.request_timeout }
    }

    /// Grants or removes one of `client`'s credits as the operator's `action`, and waits for
    /// the credit it moved. The same action again reaches the same workflow and answers what it
    /// did, also once it has ended.
    pub async fn adjust(
        &self,
        action: ActionId,
        client: ClientId,
        adjustment: Adjustment,
    ) -> Result<CreditId, ActionCallError> {
        let workflow_id = action.credit_adjustment_workflow_id();
        let options = WorkflowUpdateWithStartOptions::new(
            self.task_queue.clone(),
            workflow_id.clone(),
            WorkflowIdConflictPolicy::UseExisting,
        )
        .id_reuse_policy(WorkflowIdReusePolicy::RejectDuplicate)
        .static_summary("credit adjustment".to_string())
        .update_id(action.to_string())
        .build();
        let workflow = (CreditAdjustment::run, CreditAdjustmentInput { action, client_id: client });
        let started = match adjustment {
            Adjustment::Grant => {
                let update = (CreditAdjustment::grant_credit, ());
                start_with_update(&self.client, self.timeout, workflow, update, options).await
            }
            Adjustment::Remove => {
                let update = (CreditAdjustment::remove_credit, ());
                start_with_update(&self.client, self.timeout, workflow, update, options).await
            }
        };
        match started {
            Err(ActionCallError::Ended) => self.outcome_of(&workflow_id).await,
            other => other,
        }
    }

    /// What the ended adjustment `workflow_id` did.
    async fn outcome_of(&self, workflow_id: &str) -> Result<CreditId, ActionCallError> {
        let handle = self.client.get_workflow_handle::<CreditAdjustment>(workflow_id);
        let result = tokio::time::timeout(self.timeout, handle.get_result(Default::default()))
            .await
            .map_err(|_| {
                ActionCallError::Pending(livesessions_domain::duration::format(self.timeout))
            })?;
        match result.map_err(|error| ActionCallError::Unavailable(error.to_string()))? {
            AdjustmentOutcome::Adjusted { credit } => Ok(credit),
            AdjustmentOutcome::Refused(refusal) => Err(ActionCallError::Refused(refusal)),
        }
    }
}
