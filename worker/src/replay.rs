//! Replaying recorded workflow histories against the current workflow code, so a change that
//! would break running sessions (non-determinism) is caught before it ships.

use livesessions_workflows::{
    CreditAdjustment, CreditPurchase, FeeCollection, LiveSession, MessagingSession, Subscription,
};
use temporalio_sdk::workflow_replayer::{WorkflowReplayer, WorkflowReplayerOptions};

/// A replayer that knows every workflow the worker runs.
pub fn replayer() -> anyhow::Result<WorkflowReplayer> {
    let options = WorkflowReplayerOptions::new()
        .register_workflow::<LiveSession>()?
        .register_workflow::<MessagingSession>()?
        .register_workflow::<CreditPurchase>()?
        .register_workflow::<Subscription>()?
        .register_workflow::<FeeCollection>()?
        .register_workflow::<CreditAdjustment>()?
        .build();
    Ok(WorkflowReplayer::new(options)?)
}
