//! An asynchronous messaging session, one workflow (`messaging-session-<uuid>`): it starts at
//! once, shows "Messaging Session in Progress" in the client's room, and completes when its
//! length has passed. It holds no credit and has no provider confirmation.

#![allow(unreachable_pub)]

use crate::activities::{Notice, NotificationActivities, RoomNotice, StorageActivities};
use chrono::{DateTime, Utc};
use livesessions_domain::policy::delta;
use livesessions_domain::{
    ClientId, MessagingSnapshot, MessagingState, ProviderId, SessionId, TimeZoneName,
};
use serde::{Deserialize, Serialize};
use std::error::Error;
use std::time::Duration;
use temporalio_macros::{workflow, workflow_methods};
use temporalio_workflow::{
    ActivityOptions, LocalActivityOptions, TimerOptions, TimerResult, WorkflowContext,
    WorkflowContextView, WorkflowResult, WorkflowTermination,
};

/// What a messaging session starts with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MessagingSessionInput {
    /// The session, minted by the API.
    pub session_id: SessionId,
    /// The client.
    pub client_id: ClientId,
    /// The provider.
    pub provider_id: ProviderId,
    /// The client's zone, for the room message.
    pub time_zone: TimeZoneName,
    /// How long it lasts (`policy.messaging_session_length` when it started).
    #[serde(with = "livesessions_domain::duration::text")]
    pub length: Duration,
}

/// The state of one messaging session workflow.
#[workflow]
pub struct MessagingSession {
    session: MessagingSnapshot,
    time_zone: TimeZoneName,
    /// Whether the read model has the session: the start's answer waits for it.
    recorded: bool,
}

#[workflow_methods]
impl MessagingSession {
    /// The session starts when its workflow does.
    #[init]
    pub fn new(ctx: &WorkflowContextView, input: MessagingSessionInput) -> Self {
        let started_at: DateTime<Utc> =
            ctx.start_time().map(Into::into).expect("Temporal sets every workflow's start time");
        Self {
            session: MessagingSnapshot {
                id: input.session_id,
                workflow_id: input.session_id.messaging_workflow_id(),
                state: MessagingState::InProgress,
                client_id: input.client_id,
                provider_id: input.provider_id,
                started_at,
                ends_at: started_at + delta(input.length),
                version: 1,
            },
            time_zone: input.time_zone,
            recorded: false,
        }
    }

    /// In progress (the room shows it) until its length has passed, then completed.
    #[run]
    pub async fn run(ctx: &mut WorkflowContext<Self>) -> WorkflowResult<MessagingSnapshot> {
        record(ctx).await?;
        let notice = ctx.state(|s| RoomNotice {
            key: format!("{}:{}", s.session.workflow_id, Notice::MessagingSessionStarted.step()),
            client_id: s.session.client_id,
            session_id: s.session.id,
            starts_at: s.session.started_at,
            time_zone: s.time_zone,
            notice: Notice::MessagingSessionStarted,
        });
        ctx.execute_activity(
            NotificationActivities::post_room_message,
            notice,
            ActivityOptions::start_to_close_timeout(Duration::from_secs(30)),
        )
        .await?;
        let (started_at, ends_at) = ctx.state(|s| (s.session.started_at, s.session.ends_at));
        let length = (ends_at - started_at).to_std().unwrap_or_default();
        let timer = ctx.timer(
            TimerOptions::builder(length).summary("messaging session length".to_string()).build(),
        );
        if timer.await == TimerResult::Cancelled {
            return Err(WorkflowTermination::cancelled());
        }
        ctx.state_mut(|s| {
            s.session.state = MessagingState::Completed;
            s.session.version += 1;
        });
        record(ctx).await?;
        Ok(ctx.state(|s| s.session.clone()))
    }

    /// The start's answer, for Update-with-Start: the session, once the read model has it (so
    /// a read right after the answer finds it).
    #[update]
    pub async fn started(
        ctx: &mut WorkflowContext<Self>,
        _: (),
    ) -> Result<MessagingSnapshot, Box<dyn Error + Send + Sync>> {
        ctx.wait_condition(|s| s.recorded).await?;
        Ok(ctx.state(|s| s.session.clone()))
    }

    /// The session as it is now.
    #[query]
    pub fn snapshot(&self, _ctx: &WorkflowContextView) -> MessagingSnapshot {
        self.session.clone()
    }
}

async fn record(ctx: &WorkflowContext<MessagingSession>) -> WorkflowResult<()> {
    let snapshot = ctx.state(|s| s.session.clone());
    ctx.execute_local_activity(
        StorageActivities::record_messaging_session,
        snapshot,
        LocalActivityOptions::builder().start_to_close_timeout(Duration::from_secs(10)).build(),
    )
    .await?;
    ctx.state_mut(|s| s.recorded = true);
    Ok(())
}
