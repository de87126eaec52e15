//! The typed way to waive an outstanding fee: the `waive` update of the fee's `FeeCollection`
//! workflow, started with it (Update-with-Start) when it is not running yet, so a fee whose
//! collection has not started (one left outstanding before collections existed) can be waived
//! too. The API goes through here.

use crate::TemporalSettings;
use livesessions_domain::fee_collection::workflow_id;
use livesessions_domain::{CollectionState, Refusal, WaiverId};
use livesessions_workflows::activities::FeeCharge;
use livesessions_workflows::{FeeCollection, FeeCollectionInput};
use std::time::Duration;
use temporalio_client::errors::{WorkflowUpdateError, WorkflowUpdateWithStartError};
use temporalio_client::{
    Client, WorkflowIdConflictPolicy, WorkflowIdReusePolicy, WorkflowUpdateWithStartOptions,
};
use tokio::time::Instant;

/// Why a waiver's outcome is not known.
#[derive(Debug, thiserror::Error)]
pub enum FeeCallError {
    /// The collection refused the waiver: the fee is no longer owed, or another waiver is
    /// being recorded.
    #[error("{0}")]
    Refused(Refusal),
    /// Temporal did not take the waiver: nothing was changed.
    #[error("the fee collection service is unavailable: {0}")]
    Unavailable(String),
    /// The waiver was taken (or may have been) but not answered in time; it goes on.
    #[error("the fee's collection did not answer within {0}; the waiver may still take effect")]
    Pending(String),
}

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
    /// until the waiver is posted: answers `waived`, or the refusal.
    pub async fn waive(
        &self,
        fee: FeeCharge,
        waiver: WaiverId,
    ) -> Result<CollectionState, FeeCallError> {
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
        let deadline = Instant::now() + self.timeout;
        let pending = || FeeCallError::Pending(livesessions_domain::duration::format(self.timeout));
        let call = self.client.start_update_with_start_workflow(
            FeeCollection::run,
            input,
            FeeCollection::waive,
            waiver,
            options,
        );
        let started = match tokio::time::timeout_at(deadline, call).await.map_err(|_| pending())? {
            Ok(started) => started,
            Err(WorkflowUpdateWithStartError::Update(error)) => {
                return Err(
                    refusal(&error).unwrap_or_else(|| FeeCallError::Unavailable(error.to_string()))
                );
            }
            Err(other) => return Err(FeeCallError::Unavailable(other.to_string())),
        };
        let answer = tokio::time::timeout_at(deadline, started.get_result(Default::default()))
            .await
            .map_err(|_| pending())?;
        answer.map_err(|error| refusal(&error).unwrap_or_else(pending))
    }
}

/// The refusal a failed update carries, if it is one.
fn refusal(error: &WorkflowUpdateError) -> Option<FeeCallError> {
    match error {
        WorkflowUpdateError::Failed(failure) => {
            Refusal::from_failure_message(&failure.message).map(FeeCallError::Refused)
        }
        _ => None,
    }
}
