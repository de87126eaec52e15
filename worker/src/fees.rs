//! The typed way to waive an outstanding fee: the `waive` update of the fee's `FeeCollection`
//! workflow, started with it (Update-with-Start) when it is not running yet, so a fee whose
//! collection has not started (one left outstanding before collections existed) can be waived
//! too. The API goes through here, for finance and operators alike.

use crate::TemporalSettings;
use crate::actions::{ActionCallError, start_with_update};
use livesessions_domain::fee_collection::workflow_id;
use livesessions_domain::{CollectionState, WaiverId};
use livesessions_workflows::activities::FeeCharge;
use livesessions_workflows::{FeeCollection, FeeCollectionInput};
use std::time::Duration;
use temporalio_client::{
    Client, WorkflowIdConflictPolicy, WorkflowIdReusePolicy, WorkflowUpdateWithStartOptions,
};

/// Waives fees through their `FeeCollection` workflows.
#[derive(Clone)]
pub struct FeeCollections {
    client: Client,
    task_queue: String,
    timeout: Duration,
    schedule: Vec<Duration>,
}

impl FeeCollections {
    /// Collections on the server and task queue of `settings`, waited for at most
    /// `temporal.request_timeout`; one started here collects on `schedule`.
    pub fn new(client: Client, settings: &TemporalSettings, schedule: Vec<Duration>) -> Self {
        let (task_queue, timeout) = (settings.task_queue.clone(), settings.request_timeout);
        Self { client, task_queue, timeout, schedule }
    }

    /// Waives `fee` under `waiver` (the update's id, so a retry is the same waiver) and waits
    /// until the waiver is posted: answers `waived`, or the refusal. A collection that has
    /// ended takes no waiver ([`ActionCallError::Ended`]).
    pub async fn waive(
        &self,
        fee: FeeCharge,
        waiver: WaiverId,
    ) -> Result<CollectionState, ActionCallError> {
        let options = WorkflowUpdateWithStartOptions::new(
            self.task_queue.clone(),
            workflow_id(&fee.key),
            WorkflowIdConflictPolicy::UseExisting,
        )
        .id_reuse_policy(WorkflowIdReusePolicy::RejectDuplicate)
        .static_summary("fee collection".to_string())
        .update_id(waiver.to_string())
        .build();
        let input = FeeCollectionInput { fee, schedule: self.schedule.clone() };
        start_with_update(
            &self.client,
            self.timeout,
            (FeeCollection::run, input),
            (FeeCollection::waive, waiver),
            options,
        )
        .await
    }
}
