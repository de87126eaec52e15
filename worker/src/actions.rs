//! Update-with-Start for the workflows that carry one action each (a fee's collection and its
//! waiver, an operator's credit adjustment): the workflow starts with its update (or the running
//! one gets it), and the caller waits for the update's answer within `temporal.request_timeout`.

use livesessions_domain::Refusal;
use std::time::Duration;
use temporalio_client::errors::{
    WorkflowStartError, WorkflowUpdateError, WorkflowUpdateWithStartError,
};
use temporalio_client::{Client, WorkflowUpdateWithStartOptions};
use temporalio_common::data_converters::TemporalDeserializable;
use temporalio_common::{HasWorkflowDefinition, UpdateDefinition};
use tokio::time::Instant;

/// Why an action's outcome is not known.
#[derive(Debug, thiserror::Error)]
pub enum ActionCallError {
    /// The workflow refused the action: nothing was changed.
    #[error("{0}")]
    Refused(Refusal),
    /// Temporal did not take the action: nothing was changed.
    #[error("the workflow service is unavailable: {0}")]
    Unavailable(String),
    /// The action was taken (or may have been) but not answered in time; it goes on.
    #[error("no answer within {0}; the action may still take effect")]
    Pending(String),
    /// The workflow under this id has ended and takes no more updates: whatever it did is its
    /// result.
    #[error("the action's workflow has ended")]
    Ended,
}

/// Starts `workflow` with `input` (as `options` say: an id, conflict and reuse policies) together
/// with `update`, and waits at most `timeout` for the update's answer.
pub(crate) async fn start_with_update<W, U>(
    client: &Client,
    timeout: Duration,
    (workflow, input): (W, W::Input),
    (update, update_input): (U, U::Input),
    options: WorkflowUpdateWithStartOptions,
) -> Result<U::Output, ActionCallError>
where
    W: HasWorkflowDefinition,
    W::Input: Send,
    U: UpdateDefinition<Workflow = W::Run>,
    U::Input: Send,
    U::Output: TemporalDeserializable + 'static,
{
    let deadline = Instant::now() + timeout;
    let pending = || ActionCallError::Pending(livesessions_domain::duration::format(timeout));
    let call =
        client.start_update_with_start_workflow(workflow, input, update, update_input, options);
    let started = match tokio::time::timeout_at(deadline, call).await.map_err(|_| pending())? {
        Ok(started) => started,
        Err(WorkflowUpdateWithStartError::Update(error)) => {
            return Err(
                refusal(&error).unwrap_or_else(|| ActionCallError::Unavailable(error.to_string()))
            );
        }
        Err(WorkflowUpdateWithStartError::Start(WorkflowStartError::AlreadyStarted { .. })) => {
            return Err(ActionCallError::Ended);
        }
        Err(other) => return Err(ActionCallError::Unavailable(other.to_string())),
    };
    let answer = tokio::time::timeout_at(deadline, started.get_result(Default::default()))
        .await
        .map_err(|_| pending())?;
    answer.map_err(|error| refusal(&error).unwrap_or_else(pending))
}

/// The refusal a failed update carries, if it is one.
fn refusal(error: &WorkflowUpdateError) -> Option<ActionCallError> {
    match error {
        WorkflowUpdateError::Failed(failure) => {
            Refusal::from_failure_message(&failure.message).map(ActionCallError::Refused)
        }
        _ => None,
    }
}
