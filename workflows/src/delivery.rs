//! Deliveries to the outside world that must not hold up a session: an email, a webhook event,
//! or a provider's email about a client's shared windows. Each is a workflow of its own
//! (`delivery-<key>`), started by the session workflow (or the API) and left to run (parent
//! close policy: abandon), retrying with backoff until the mail server or the
//! webhook receiver accepts it — so a mail server down for an hour delays the email, not the
//! session.

#![allow(unreachable_pub)]

use crate::activities::{
    AvailabilityRequestEmail, EmailNotice, NotificationActivities, WebhookEvent,
};
use serde::{Deserialize, Serialize};
use std::time::Duration;
use temporalio_macros::{workflow, workflow_methods};
use temporalio_workflow::{
    ActivityCloseTimeouts, ActivityOptions, RetryPolicy, WorkflowContext, WorkflowResult,
};

/// What to deliver.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryInput {
    /// An email (with its calendar invite).
    Email(EmailNotice),
    /// A webhook event.
    Webhook(WebhookEvent),
    /// A provider's email about a client's shared windows.
    AvailabilityRequest(AvailabilityRequestEmail),
}

/// One delivery.
#[workflow]
#[derive(Default)]
pub struct Delivery;

/// Retried with backoff (1 s doubling to 5 min) for up to 3 days, then given up (visible as a
/// failed delivery workflow to operators).
fn delivery_options(summary: &str) -> ActivityOptions {
    ActivityOptions::with_close_timeouts(ActivityCloseTimeouts::ScheduleAndStartToClose {
        schedule_to_close: Duration::from_secs(3 * 24 * 3600),
        start_to_close: Duration::from_secs(30),
    })
    .retry_policy(
        RetryPolicy::builder()
            .initial_interval(Duration::from_secs(1))
            .backoff_coefficient(2.0)
            .maximum_interval(Duration::from_secs(300))
            .build(),
    )
    .summary(summary.to_string())
    .build()
}

#[workflow_methods]
impl Delivery {
    /// Delivers, retrying until accepted.
    #[run]
    pub async fn run(ctx: &mut WorkflowContext<Self>, input: DeliveryInput) -> WorkflowResult<()> {
        match input {
            DeliveryInput::Email(email) => {
                ctx.execute_activity(
                    NotificationActivities::send_email,
                    email,
                    delivery_options("send the email"),
                )
                .await?
            }
            DeliveryInput::Webhook(event) => {
                ctx.execute_activity(
                    NotificationActivities::send_webhook,
                    event,
                    delivery_options("post the webhook event"),
                )
                .await?
            }
            DeliveryInput::AvailabilityRequest(email) => {
                ctx.execute_activity(
                    NotificationActivities::send_availability_request,
                    email,
                    delivery_options("email the provider the client's windows"),
                )
                .await?
            }
        }
        Ok(())
    }
}
