//! One live session, one workflow (`live-session-<session uuid>`). `run` follows the lifecycle
//! of DOMAIN.md step by step; the handlers below it are how the outside world speaks to it:
//! `request`, `confirm` and `decline` are updates (a refused one changes nothing and its caller
//! gets the precise reason), joins and the end of the media room are signals, `snapshot` is the
//! live truth of one session.

#![allow(unreachable_pub)]

use crate::activities::{
    BillingActivities, CreditMove, HoldOutcome, MediaActivities, Notice, NotificationActivities,
    RoomNotice, RoomRequest, StorageActivities,
};
use crate::search_attributes as attributes;
use chrono::{DateTime, Utc};
use livesessions_domain::policy::delta;
use livesessions_domain::{
    ClientId, Coverage, CreditStatus, CreditUse, Joined, Modality, Outcome, Party, Policy,
    ProviderId, Refusal, RefusalCode, Service, SessionId, SessionSnapshot, SessionState,
    StateChange, TimeZoneName,
};
use serde::{Deserialize, Serialize};
use std::error::Error;
use std::pin::pin;
use std::time::Duration;
use temporalio_macros::{workflow, workflow_methods};
use temporalio_workflow::{
    ActivityOptions, CancellableFuture, LocalActivityOptions, RetryPolicy, SyncWorkflowContext,
    TimerOptions, TimerResult, WorkflowContext, WorkflowContextView, WorkflowResult,
    WorkflowTermination, select,
};

/// What the workflow starts with: the request, checked by the API, and the policy in force
/// when it was made. Ids and times only.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LiveSessionInput {
    /// The session, minted by the API.
    pub session_id: SessionId,
    /// Who booked.
    pub client_id: ClientId,
    /// With whom.
    pub provider_id: ProviderId,
    /// Therapy or psychiatry.
    pub service: Service,
    /// Video, audio or chat.
    pub modality: Modality,
    /// Length in minutes.
    pub duration_minutes: u32,
    /// Start.
    pub starts_at: DateTime<Utc>,
    /// The client's zone.
    pub time_zone: TimeZoneName,
    /// How it is paid for.
    pub coverage: Coverage,
    /// The policy this session keeps until it ends.
    pub policy: Policy,
}

/// One person's first arrival in the room, from their join link or the media service.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Join {
    /// Who joined.
    pub party: Party,
    /// When.
    pub at: DateTime<Utc>,
}

/// The provider's answer to a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ProviderAnswer {
    Confirm,
    Decline,
}

/// The state of one live session workflow.
#[workflow]
pub struct LiveSession {
    policy: Policy,
    session: SessionSnapshot,
    /// Step 1's answer, for the `request` update: `Some(Ok)` once held.
    held: Option<Result<(), Refusal>>,
    answer: Option<ProviderAnswer>,
    room_ended: bool,
    /// The highest snapshot version the read model has.
    recorded_version: u64,
}

#[workflow_methods]
impl LiveSession {
    /// Builds the requested session from the input; the confirmation window starts now.
    #[init]
    pub fn new(ctx: &WorkflowContextView, input: LiveSessionInput) -> Self {
        let requested_at: DateTime<Utc> = ctx
            .start_time()
            .map(Into::into)
            .expect("Temporal sets every workflow's start time");
        let session = SessionSnapshot {
            id: input.session_id,
            workflow_id: input.session_id.workflow_id(),
            state: SessionState::Requested,
            client_id: input.client_id,
            provider_id: input.provider_id,
            service: input.service,
            modality: input.modality,
            duration_minutes: input.duration_minutes,
            starts_at: input.starts_at,
            time_zone: input.time_zone,
            confirm_by: input.policy.confirm_by(requested_at, input.starts_at),
            coverage: input.coverage,
            credit: None,
            joined: Joined::default(),
            outcome: None,
            history: vec![StateChange {
                state: SessionState::Requested,
                at: requested_at,
            }],
            version: 1,
        };
        Self {
            policy: input.policy,
            session,
            held: None,
            answer: None,
            room_ended: false,
            recorded_version: 0,
        }
    }

    /// The lifecycle of DOMAIN.md, top to bottom; then waits for the update handlers still
    /// answering their callers, so none is cut off by the workflow's end.
    #[run]
    pub async fn run(ctx: &mut WorkflowContext<Self>) -> WorkflowResult<SessionSnapshot> {
        let result = lifecycle(ctx).await;
        let handlers = ctx.clone();
        ctx.wait_condition(move |_| handlers.all_handlers_finished())
            .await?;
        result
    }

    /// The booking's answer, for Update-with-Start: the held session, or why it was refused.
    #[update]
    pub async fn request(
        ctx: &mut WorkflowContext<Self>,
        _: (),
    ) -> Result<SessionSnapshot, Box<dyn Error + Send + Sync>> {
        ctx.wait_condition(|s| match &s.held {
            None => false,
            Some(Err(_)) => true,
            Some(Ok(())) => s.recorded_version >= s.session.version,
        })
        .await?;
        ctx.state(|s| match &s.held {
            Some(Err(refusal)) => Err(refusal.clone().into()),
            _ => Ok(s.session.clone()),
        })
    }

    /// Refuses `confirm` unless the session awaits the provider's answer.
    #[update_validator(confirm)]
    fn validate_confirm(
        &self,
        _ctx: &WorkflowContextView,
        _: &(),
    ) -> Result<(), Box<dyn Error + Send + Sync>> {
        self.awaiting_answer()
    }

    /// The provider confirms; answers with the confirmed session.
    #[update]
    pub async fn confirm(
        ctx: &mut WorkflowContext<Self>,
        _: (),
    ) -> Result<SessionSnapshot, Box<dyn Error + Send + Sync>> {
        answer(ctx, ProviderAnswer::Confirm, SessionState::Confirmed).await
    }

    /// Refuses `decline` unless the session awaits the provider's answer.
    #[update_validator(decline)]
    fn validate_decline(
        &self,
        _ctx: &WorkflowContextView,
        _: &(),
    ) -> Result<(), Box<dyn Error + Send + Sync>> {
        self.awaiting_answer()
    }

    /// The provider declines; answers with the declined session.
    #[update]
    pub async fn decline(
        ctx: &mut WorkflowContext<Self>,
        _: (),
    ) -> Result<SessionSnapshot, Box<dyn Error + Send + Sync>> {
        answer(ctx, ProviderAnswer::Decline, SessionState::Declined).await
    }

    /// Someone arrived in the room. Only the first join of each person counts.
    #[signal]
    pub fn participant_joined(&mut self, _ctx: &mut SyncWorkflowContext<Self>, join: Join) {
        let joinable = matches!(
            self.session.state,
            SessionState::Confirmed | SessionState::InProgress
        );
        if joinable && self.session.joined.at(join.party).is_none() {
            self.session.joined.record(join.party, join.at);
            self.session.version += 1;
        }
    }

    /// The media room ended. Counts once the room exists (the session is confirmed); the joins
    /// that came before it may not have been acted on yet.
    #[signal]
    pub fn room_ended(&mut self, _ctx: &mut SyncWorkflowContext<Self>, _: ()) {
        if matches!(
            self.session.state,
            SessionState::Confirmed | SessionState::InProgress
        ) {
            self.room_ended = true;
        }
    }

    /// The session as it is now (the shape of `GET /v1/sessions/{id}`).
    #[query]
    pub fn snapshot(&self, _ctx: &WorkflowContextView) -> SessionSnapshot {
        self.session.clone()
    }
}

impl LiveSession {
    fn awaiting_answer(&self) -> Result<(), Box<dyn Error + Send + Sync>> {
        let held = matches!(self.held, Some(Ok(())));
        if held && self.session.state == SessionState::Requested && self.answer.is_none() {
            Ok(())
        } else {
            Err(Refusal::new(
                RefusalCode::NotAwaitingConfirmation,
                format!(
                    "the session is {}, not awaiting the provider's answer",
                    self.session.state
                ),
            )
            .into())
        }
    }

    fn has_unrecorded_changes(&self) -> bool {
        self.session.version > self.recorded_version
    }
}

/// One live session, as DOMAIN.md tells it. Every step does its effects first (credits, room,
/// messages) and then records the state that reports them, so a state seen in the read model
/// means its effects are done.
async fn lifecycle(ctx: &Ctx) -> WorkflowResult<SessionSnapshot> {
    let policy = ctx.state(|s| s.policy.clone());
    let starts_at = ctx.state(|s| s.session.starts_at);

    // 1. Requested: the booking and a credit are held, or the booking is refused.
    if !hold_booking(ctx).await? {
        return Ok(snapshot(ctx));
    }

    // 2. Awaiting confirmation: the provider answers before the window closes, or the request
    //    expires. Either unhappy end gives the credit back and invites the client to pick
    //    another time.
    let confirm_by = ctx.state(|s| s.session.confirm_by);
    wait_until(ctx, confirm_by, "confirmation window", |s| {
        s.answer.is_some()
    })
    .await?;
    let (opens_at, grace_ends) = policy.join_window(starts_at);
    match ctx.state(|s| s.answer) {
        Some(ProviderAnswer::Confirm) => {
            // 3. Confirmed, waiting: the media room and one join link per person, working
            //    from shortly before the start until the grace period ends.
            open_room(ctx, opens_at, grace_ends).await?;
            notify(ctx, Notice::Confirmed).await?;
            enter(ctx, SessionState::Confirmed, None).await?;
        }
        Some(ProviderAnswer::Decline) => {
            let end = End::new(
                SessionState::Declined,
                Outcome::ProviderDeclined,
                CreditStatus::Released,
            );
            return finish(ctx, end.telling(Notice::Declined)).await;
        }
        None => {
            let end = End::new(
                SessionState::Expired,
                Outcome::ConfirmationWindowClosed,
                CreditStatus::Released,
            );
            return finish(ctx, end.telling(Notice::Expired)).await;
        }
    }

    // 4. Join detection: the session begins when both have joined. A provider who never joins
    //    costs the client nothing; a client who never joins loses the credit.
    wait_until(ctx, grace_ends, "join grace period", |s| {
        s.session.joined.both().is_some()
    })
    .await?;
    let joined = ctx.state(|s| s.session.joined);
    let Some(both_joined_at) = joined.both() else {
        let end = if joined.provider.is_none() {
            End::new(
                SessionState::ProviderNoShow,
                Outcome::ProviderDidNotJoin,
                CreditStatus::Released,
            )
            .telling(Notice::ProviderNoShow)
        } else {
            End::new(
                SessionState::ClientNoShow,
                Outcome::ClientDidNotJoin,
                CreditStatus::Forfeited,
            )
            .telling(Notice::ClientNoShow)
        };
        return finish(ctx, end).await;
    };
    enter(ctx, SessionState::InProgress, None).await?;

    // 5. In progress → completed: when the media room ends, or when the booked length plus the
    //    margin has passed since the session began.
    let length = Duration::from_secs(60 * u64::from(ctx.state(|s| s.session.duration_minutes)));
    let ends_by = starts_at.max(both_joined_at) + delta(length) + delta(policy.completion_margin);
    let outcome = if wait_until(ctx, ends_by, "booked length + completion margin", |s| {
        s.room_ended
    })
    .await?
    {
        Outcome::RoomEnded
    } else {
        Outcome::CompletionMarginElapsed
    };

    // 6. After: the credit is consumed for good.
    finish(
        ctx,
        End::new(SessionState::Completed, outcome, CreditStatus::Consumed),
    )
    .await
}

/// How a session ends: its final state, why, what the client is told and where the credit goes.
struct End {
    state: SessionState,
    outcome: Outcome,
    notice: Option<Notice>,
    credit: CreditStatus,
}

impl End {
    fn new(state: SessionState, outcome: Outcome, credit: CreditStatus) -> Self {
        Self {
            state,
            outcome,
            notice: None,
            credit,
        }
    }

    fn telling(self, notice: Notice) -> Self {
        Self {
            notice: Some(notice),
            ..self
        }
    }
}

type Ctx = WorkflowContext<LiveSession>;

fn now(ctx: &Ctx) -> DateTime<Utc> {
    ctx.workflow_time().map(Into::into).unwrap_or_default()
}

fn snapshot(ctx: &Ctx) -> SessionSnapshot {
    ctx.state(|s| s.session.clone())
}

/// Options for an activity that talks to the database or another service: retried with
/// backoff until it succeeds, because every activity here is idempotent.
fn step_options(summary: &str) -> ActivityOptions {
    ActivityOptions::with_start_to_close_timeout(Duration::from_secs(30))
        .retry_policy(
            RetryPolicy::builder()
                .initial_interval(Duration::from_secs(1))
                .backoff_coefficient(2.0)
                .maximum_interval(Duration::from_secs(60))
                .build(),
        )
        .summary(summary.to_string())
        .build()
}

/// Step 1: hold the session and a credit in one transaction.
async fn hold_booking(ctx: &Ctx) -> WorkflowResult<bool> {
    let outcome = ctx
        .execute_activity(
            BillingActivities::hold_booking,
            snapshot(ctx),
            step_options("hold the booking and a credit"),
        )
        .await?;
    match outcome {
        HoldOutcome::Held { credit } => {
            ctx.state_mut(|s| {
                s.held = Some(Ok(()));
                s.recorded_version = s.session.version;
                s.session.credit = Some(CreditUse {
                    id: credit,
                    status: CreditStatus::Reserved,
                });
                s.session.version += 1;
            });
            record_changes(ctx).await?;
            Ok(true)
        }
        HoldOutcome::Refused(refusal) => {
            ctx.upsert_search_attributes([
                attributes::SESSION_STATE.value_set(attributes::REFUSED.into())
            ]);
            ctx.state_mut(|s| {
                s.session.outcome = Some(Outcome::BookingRefused);
                s.held = Some(Err(refusal));
            });
            Ok(false)
        }
    }
}

/// Records the provider's answer and waits until the run has acted on it.
async fn answer(
    ctx: &Ctx,
    answer: ProviderAnswer,
    expected: SessionState,
) -> Result<SessionSnapshot, Box<dyn Error + Send + Sync>> {
    ctx.state_mut(|s| s.answer = Some(answer));
    ctx.wait_condition(|s| {
        s.session.state != SessionState::Requested && !s.has_unrecorded_changes()
    })
    .await?;
    ctx.state(|s| {
        if s.session.state == expected {
            Ok(s.session.clone())
        } else {
            Err(Refusal::new(
                RefusalCode::NotAwaitingConfirmation,
                format!("the session became {} first", s.session.state),
            )
            .into())
        }
    })
}

/// Moves to `state`, tells operators (search attribute) and the read model.
async fn enter(ctx: &Ctx, state: SessionState, outcome: Option<Outcome>) -> WorkflowResult<()> {
    let at = now(ctx);
    ctx.state_mut(|s| {
        s.session.enter(state, at);
        if outcome.is_some() {
            s.session.outcome = outcome;
        }
    });
    ctx.upsert_search_attributes([attributes::SESSION_STATE.value_set(state.to_string())]);
    record_changes(ctx).await
}

/// Writes the snapshot to the read model until it has the newest version.
async fn record_changes(ctx: &Ctx) -> WorkflowResult<()> {
    while ctx.state(LiveSession::has_unrecorded_changes) {
        let snapshot = snapshot(ctx);
        let version = snapshot.version;
        ctx.execute_local_activity(
            StorageActivities::record_session,
            snapshot,
            LocalActivityOptions::builder()
                .start_to_close_timeout(Duration::from_secs(10))
                .build(),
        )
        .await?;
        ctx.state_mut(|s| s.recorded_version = s.recorded_version.max(version));
    }
    Ok(())
}

/// Waits until `done` holds (true) or `deadline` passes (false), recording every change that
/// signals make meanwhile. The timer is cancelled, not dropped, when `done` wins.
async fn wait_until(
    ctx: &Ctx,
    deadline: DateTime<Utc>,
    summary: &str,
    done: impl Fn(&LiveSession) -> bool + Copy,
) -> WorkflowResult<bool> {
    let remaining = (deadline - now(ctx)).to_std().unwrap_or_default();
    if remaining.is_zero() {
        record_changes(ctx).await?;
        return Ok(ctx.state(done));
    }
    let mut timer = pin!(
        ctx.timer(
            TimerOptions::builder(remaining)
                .summary(summary.to_string())
                .build()
        )
    );
    loop {
        select! {
            woken = ctx.wait_condition(|s| done(s) || s.has_unrecorded_changes()) => woken?,
            fired = timer => {
                return match fired {
                    TimerResult::Fired => {
                        record_changes(ctx).await?;
                        Ok(ctx.state(done))
                    }
                    TimerResult::Cancelled => Err(WorkflowTermination::cancelled()),
                };
            }
        }
        record_changes(ctx).await?;
        if ctx.state(done) {
            timer.cancel();
            return Ok(true);
        }
    }
}

/// Posts a notice about this session to the client's room, once.
async fn notify(ctx: &Ctx, notice: Notice) -> WorkflowResult<()> {
    let room_notice = ctx.state(|s| RoomNotice {
        key: format!(
            "{}:{}:{}",
            s.session.workflow_id,
            notice_step(notice),
            s.session.version
        ),
        client_id: s.session.client_id,
        session_id: s.session.id,
        starts_at: s.session.starts_at,
        time_zone: s.session.time_zone,
        notice,
    });
    ctx.execute_activity(
        NotificationActivities::post_room_message,
        room_notice,
        step_options("post a room message"),
    )
    .await?;
    Ok(())
}

fn notice_step(notice: Notice) -> &'static str {
    match notice {
        Notice::Confirmed => "confirmed_notice",
        Notice::Declined => "declined_notice",
        Notice::Expired => "expired_notice",
        Notice::ClientNoShow => "client_no_show_notice",
        Notice::ProviderNoShow => "provider_no_show_notice",
    }
}

/// Step 3: the room and its join links.
async fn open_room(
    ctx: &Ctx,
    opens_at: DateTime<Utc>,
    closes_at: DateTime<Utc>,
) -> WorkflowResult<()> {
    let request = ctx.state(|s| RoomRequest {
        session_id: s.session.id,
        client_id: s.session.client_id,
        provider_id: s.session.provider_id,
        opens_at,
        closes_at,
    });
    ctx.execute_activity(
        MediaActivities::open_room,
        request,
        step_options("open the media room"),
    )
    .await?;
    Ok(())
}

/// The last step of every path: the credit goes where the end says, the client is told, and
/// the final state is entered.
async fn finish(ctx: &Ctx, end: End) -> WorkflowResult<SessionSnapshot> {
    let credit = end.credit;
    let (session_id, held_credit) = ctx.state(|s| (s.session.id, s.session.credit));
    if let Some(held) = held_credit {
        ctx.execute_activity(
            BillingActivities::settle_credit,
            CreditMove {
                session_id,
                credit_id: held.id,
                to: credit,
            },
            step_options("settle the credit"),
        )
        .await?;
        ctx.state_mut(|s| {
            s.session.credit = Some(CreditUse {
                id: held.id,
                status: credit,
            })
        });
    }
    if let Some(notice) = end.notice {
        notify(ctx, notice).await?;
    }
    enter(ctx, end.state, Some(end.outcome)).await?;
    Ok(snapshot(ctx))
}
