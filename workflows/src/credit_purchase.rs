//! The `CreditPurchase` workflow (`credit-purchase-<purchase uuid>`): one credit bought outside
//! any session, as a durable step. The API starts it under an id derived from the caller's
//! Idempotency-Key and waits for its outcome; its one activity charges under the purchase's key
//! and grants the credit under the same key, retried until it answers, so money taken always
//! becomes a credit and a retried request never charges twice.

#![allow(unreachable_pub)]

use crate::activities::{BillingActivities, CreditOrder, PurchaseOutcome};
use crate::live_session::backoff_policy;
use std::time::Duration;
use temporalio_macros::{workflow, workflow_methods};
use temporalio_workflow::{ActivityOptions, WorkflowContext, WorkflowContextView, WorkflowResult};

/// The state of one purchase workflow: its order.
#[workflow]
pub struct CreditPurchase {
    order: CreditOrder,
}

#[workflow_methods]
impl CreditPurchase {
    /// The purchase starts with its order.
    #[init]
    pub fn new(_ctx: &WorkflowContextView, order: CreditOrder) -> Self {
        Self { order }
    }

    /// Buys the credit: answers it, or the refusal of a declined card.
    #[run]
    pub async fn run(ctx: &mut WorkflowContext<Self>) -> WorkflowResult<PurchaseOutcome> {
        let order = ctx.state(|s| s.order.clone());
        Ok(ctx.execute_activity(BillingActivities::buy_credit, order, buy_options()).await?)
    }
}

/// The activity heartbeats while the processor answers, so a worker that dies mid-call is
/// noticed in seconds; it is retried with backoff without end (the charge and the grant are
/// idempotent under the purchase's key).
fn buy_options() -> ActivityOptions {
    ActivityOptions::with_start_to_close_timeout(Duration::from_secs(60))
        .heartbeat_timeout(Duration::from_secs(5))
        .retry_policy(backoff_policy())
        .summary("charge and grant the credit".to_string())
        .build()
}
