//! The `CreditAdjustment` workflow (`credit-adjustment-<action uuid>`): an operator grants a
//! client one credit, or removes one, as an update (`grant_credit`, `remove_credit`) that shows
//! in this workflow's history by name.
//!
//! A workflow of its own per action, not an update on a workflow of the client's: a client's
//! sessions may all have ended, and only subscription clients have a running workflow (their
//! renewals). The API starts it together with its one update (Update-with-Start) under an id
//! derived from the caller's Idempotency-Key, so a retry reaches the same action and answers what
//! it did. Its one activity moves the credit with its ledger transaction under the action's key.

#![allow(unreachable_pub)]

use crate::activities::{
    Adjustment, AdjustmentOutcome, BillingActivities, CreditAdjustmentRequest,
};
use crate::live_session::step_options;
use livesessions_domain::{ActionId, ClientId, CreditId, Refusal, RefusalCode};
use serde::{Deserialize, Serialize};
use std::error::Error;
use temporalio_macros::{workflow, workflow_methods};
use temporalio_workflow::{WorkflowContext, WorkflowContextView, WorkflowResult};

/// What a credit adjustment starts with: the operator's action and the client. Ids only.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreditAdjustmentInput {
    /// The operator's action.
    pub action: ActionId,
    /// Whose credits.
    pub client_id: ClientId,
}

/// The state of one adjustment: which way it was asked, and what it came to.
#[workflow]
pub struct CreditAdjustment {
    input: CreditAdjustmentInput,
    asked: Option<Adjustment>,
    outcome: Option<AdjustmentOutcome>,
}

type HandlerResult = Result<CreditId, Box<dyn Error + Send + Sync>>;

#[workflow_methods]
impl CreditAdjustment {
    /// The adjustment of `input.client_id`'s credits, waiting for its update.
    #[init]
    pub fn new(_ctx: &WorkflowContextView, input: CreditAdjustmentInput) -> Self {
        Self { input, asked: None, outcome: None }
    }

    /// Moves the credit the update asks for; answers what it came to, once the update has
    /// its answer.
    #[run]
    pub async fn run(ctx: &mut WorkflowContext<Self>) -> WorkflowResult<AdjustmentOutcome> {
        ctx.wait_condition(|s| s.asked.is_some()).await?;
        let request = ctx.state(|s| CreditAdjustmentRequest {
            action: s.input.action,
            client_id: s.input.client_id,
            adjustment: s.asked.expect("the wait ends once asked"),
        });
        let summary = match request.adjustment {
            Adjustment::Grant => "grant the credit",
            Adjustment::Remove => "remove a credit",
        };
        let outcome = ctx
            .execute_activity(BillingActivities::adjust_credit, request, step_options(summary))
            .await?;
        ctx.state_mut(|s| s.outcome = Some(outcome.clone()));
        let handlers = ctx.clone();
        ctx.wait_condition(move |_| handlers.all_handlers_finished()).await?;
        Ok(outcome)
    }

    /// An operator grants the client one credit; answers it.
    #[update]
    pub async fn grant_credit(
        ctx: &mut WorkflowContext<Self>,
        _: (),
    ) -> Result<CreditId, Box<dyn Error + Send + Sync>> {
        adjust(ctx, Adjustment::Grant).await
    }

    /// An operator removes one of the client's free credits; answers which.
    #[update]
    pub async fn remove_credit(
        ctx: &mut WorkflowContext<Self>,
        _: (),
    ) -> Result<CreditId, Box<dyn Error + Send + Sync>> {
        adjust(ctx, Adjustment::Remove).await
    }
}

/// Claims the workflow's one adjustment (before the first `.await`: a second update is
/// refused) and waits for the run's answer.
async fn adjust(ctx: &WorkflowContext<CreditAdjustment>, adjustment: Adjustment) -> HandlerResult {
    ctx.state_mut(|s| match s.asked {
        Some(_) => Err(Refusal::new(
            RefusalCode::ChangeInProgress,
            "this action has its adjustment already; use a new Idempotency-Key for another",
        )),
        None => {
            s.asked = Some(adjustment);
            Ok(())
        }
    })?;
    ctx.wait_condition(|s| s.outcome.is_some()).await?;
    match ctx.state(|s| s.outcome.clone()).expect("the wait ends once answered") {
        AdjustmentOutcome::Adjusted { credit } => Ok(credit),
        AdjustmentOutcome::Refused(refusal) => Err(refusal.into()),
    }
}
