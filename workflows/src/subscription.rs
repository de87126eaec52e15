//! The `Subscription` workflow (`subscription-<client uuid>`): a subscription client's billing
//! periods, one run per period. A run sleeps on a durable timer until its period begins, begins
//! it in one activity (expiry of what is not carried over, then the grant, keyed by client and
//! period), and continues as new with the next period, so no run's history grows. It ends when
//! the client is no longer on a subscription plan when a period begins.

#![allow(unreachable_pub)]

use crate::activities::{RenewalOutcome, SubscriptionActivities};
use crate::live_session::backoff_policy;
use chrono::{DateTime, Utc};
use livesessions_domain::Renewal;
use std::time::Duration;
use temporalio_macros::{workflow, workflow_methods};
use temporalio_workflow::{
    ActivityOptions, ContinueAsNewOptions, TimerOptions, TimerResult, WorkflowContext,
    WorkflowContextView, WorkflowResult, WorkflowTermination,
};

/// The state of one run: the period it begins.
#[workflow]
pub struct Subscription {
    renewal: Renewal,
}

#[workflow_methods]
impl Subscription {
    /// A run starts with the period it begins.
    #[init]
    pub fn new(_ctx: &WorkflowContextView, renewal: Renewal) -> Self {
        Self { renewal }
    }

    /// Waits for the period, begins it, and continues as new with the next one; answers the
    /// last period begun when the client has left their subscription.
    #[run]
    pub async fn run(ctx: &mut WorkflowContext<Self>) -> WorkflowResult<u32> {
        let renewal = ctx.state(|s| s.renewal.clone());
        let now: DateTime<Utc> = ctx.workflow_time().map(Into::into).unwrap_or_default();
        let wait = (renewal.starts_at - now).to_std().unwrap_or_default();
        if !wait.is_zero() {
            let options = TimerOptions::builder(whole_millis(wait))
                .summary(format!("billing period {}", renewal.period))
                .build();
            if let TimerResult::Cancelled = ctx.timer(options).await {
                return Err(WorkflowTermination::cancelled());
            }
        }
        let outcome = ctx
            .execute_activity(
                SubscriptionActivities::renew_subscription,
                renewal.clone(),
                renew_options(),
            )
            .await?;
        match outcome {
            RenewalOutcome::Renewed(period) => {
                let next = period.next(renewal.client_id);
                match ctx.continue_as_new(next, ContinueAsNewOptions::default())? {}
            }
            RenewalOutcome::Ended => Ok(renewal.period - 1),
        }
    }
}

/// Rounded up to whole milliseconds, so the timer never fires before the period begins.
fn whole_millis(wait: Duration) -> Duration {
    Duration::from_millis(u64::try_from(wait.as_nanos().div_ceil(1_000_000)).unwrap_or(u64::MAX))
}

/// One database transaction; retried with backoff without end (it is keyed by client and
/// period, so a retry grants nothing twice).
fn renew_options() -> ActivityOptions {
    ActivityOptions::with_start_to_close_timeout(Duration::from_secs(30))
        .retry_policy(backoff_policy())
        .summary("begin the billing period".to_string())
        .build()
}
