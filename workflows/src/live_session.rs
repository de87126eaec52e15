//! One live session, one workflow (`live-session-<session uuid>`). [`lifecycle`] follows
//! DOMAIN.md step by step; the handlers are how the outside world speaks to it: the provider's
//! answer, reschedule, cancel, provider-unavailable and authorize-next are updates with
//! validators (a refused one changes nothing and its caller gets the precise reason), joins and
//! the end of the media room are signals, `snapshot` is the live truth of one session.

#![allow(unreachable_pub)]

use crate::activities::{
    AuthorizationGrant, BillingActivities, CreditMove, EmailNotice, FeeCharge, HoldOutcome,
    HoldRequest, Invite, InviteMethod, MediaActivities, NewTimeRequest, Notice,
    NotificationActivities, RoomNotice, RoomRequest, StorageActivities, WebhookEvent,
};
use crate::delivery::{Delivery, DeliveryInput};
use crate::search_attributes as attributes;
use chrono::{DateTime, TimeDelta, Utc};
use livesessions_domain::booking::check_notice;
use livesessions_domain::policy::delta;
use livesessions_domain::{
    ClientId, Coverage, CreditId, CreditStatus, CreditUse, Fee, FeeKind, Joined, Modality,
    NextAuthorization, Outcome, Party, Policy, ProviderId, Refusal, RefusalCode, Service,
    SessionId, SessionSnapshot, SessionState, SessionTerms, StateChange, TimeZoneName,
};
use serde::{Deserialize, Serialize};
use std::error::Error;
use std::pin::pin;
use std::time::Duration;
use temporalio_macros::{workflow, workflow_methods};
use temporalio_workflow::{
    ActivityExecutionError, ActivityOptions, CancellableFuture, ChildWorkflowOptions,
    LocalActivityOptions, ParentClosePolicy, RetryPolicy, SyncWorkflowContext, TimerOptions,
    TimerResult, WorkflowContext, WorkflowContextView, WorkflowResult, WorkflowTermination, select,
};

/// What the workflow starts with: the request, checked by the API, the terms and the policy in
/// force when it was made. Ids, times and amounts only.
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
    /// Price (the fee) and insurance estimate, fixed at booking.
    pub terms: SessionTerms,
    /// Buy a credit at this price if none is left.
    pub purchase: Option<livesessions_domain::Money>,
    /// The policy this session keeps until it ends.
    pub policy: Policy,
    /// Whether backend services want an event per state change (webhooks configured).
    pub webhooks: bool,
}

/// One person's first arrival in the room, from their join link or the media service.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Join {
    /// Who joined.
    pub party: Party,
    /// When.
    pub at: DateTime<Utc>,
}

/// The client's request to move the session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reschedule {
    /// The new start.
    pub starts_at: DateTime<Utc>,
    /// The client agrees to the cancellation policy (needed for every reschedule).
    pub accept_cancellation_policy: bool,
    /// A modality, if the caller sent one: any other than the booked one is refused.
    pub modality: Option<Modality>,
}

/// Who cancels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cancel {
    /// The client (or a service for them) or the provider.
    pub by: Party,
}

/// The provider's answer to a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ProviderAnswer {
    Confirm,
    Decline,
}

/// A change the client or the provider asked for, waiting for the run to carry it out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Change {
    Reschedule { starts_at: DateTime<Utc>, late: bool, replacement: Option<CreditId> },
    Cancel { by: Party, late: bool },
    ProviderUnavailable,
}

/// Where the lifecycle goes after a step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Flow {
    /// On to the next step.
    Next,
    /// Rescheduled: back to awaiting confirmation, at the new time.
    Rescheduled,
    /// The session's story has ended.
    Ended,
}

/// The state of one live session workflow.
#[workflow]
pub struct LiveSession {
    policy: Policy,
    terms: SessionTerms,
    purchase: Option<livesessions_domain::Money>,
    session: SessionSnapshot,
    /// Step 1's answer, for the `request` update: `Some(Ok)` once held.
    held: Option<Result<(), Refusal>>,
    answer: Option<ProviderAnswer>,
    change: Option<Change>,
    /// A change handler is working (running an activity) before it sets `change`.
    changing: bool,
    /// Changes asked for so far, and how many of them have taken effect: a handler waits for
    /// its own to take effect before it answers.
    changes_asked: u64,
    changes_effected: u64,
    room_ended: bool,
    /// Offsets whose reminder went out for the current start.
    reminded: Vec<Duration>,
    webhooks: bool,
    /// The calendar invite's `SEQUENCE`, and whether one was sent.
    invite_sequence: u32,
    invited: bool,
    /// The highest snapshot version the read model has.
    recorded_version: u64,
}

#[workflow_methods]
impl LiveSession {
    /// Builds the requested session from the input; the confirmation window starts now.
    #[init]
    pub fn new(ctx: &WorkflowContextView, input: LiveSessionInput) -> Self {
        let requested_at: DateTime<Utc> =
            ctx.start_time().map(Into::into).expect("Temporal sets every workflow's start time");
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
            fees: Vec::new(),
            next_authorization: None,
            history: vec![StateChange { state: SessionState::Requested, at: requested_at }],
            version: 1,
        };
        Self {
            policy: input.policy,
            terms: input.terms,
            purchase: input.purchase,
            session,
            held: None,
            answer: None,
            change: None,
            changing: false,
            changes_asked: 0,
            changes_effected: 0,
            room_ended: false,
            reminded: Vec::new(),
            webhooks: input.webhooks,
            invite_sequence: 0,
            invited: false,
            recorded_version: 0,
        }
    }

    /// The lifecycle, then a wait for the update handlers still answering their callers, so
    /// none is cut off by the workflow's end.
    #[run]
    pub async fn run(ctx: &mut WorkflowContext<Self>) -> WorkflowResult<SessionSnapshot> {
        let result = lifecycle(ctx).await;
        let handlers = ctx.clone();
        ctx.wait_condition(move |_| handlers.all_handlers_finished()).await?;
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
            Some(Ok(())) => !s.has_unrecorded_changes(),
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

    /// Refuses a reschedule the session's state or the booking's terms do not allow.
    #[update_validator(reschedule)]
    fn validate_reschedule(
        &self,
        _ctx: &WorkflowContextView,
        request: &Reschedule,
    ) -> Result<(), Box<dyn Error + Send + Sync>> {
        self.changeable("rescheduled")?;
        if request.modality.is_some_and(|m| m != self.session.modality) {
            return Err(Refusal::new(
                RefusalCode::ModalityChangeRequiresRebooking,
                format!(
                    "a booked {} session cannot change modality: cancel it and book again",
                    self.session.modality
                ),
            )
            .into());
        }
        Ok(())
    }

    /// The client moves the session; the provider confirms again. Late (closer to a confirmed
    /// start than `policy.late_cancel_window`): the credit is lost, the fee charged, and another
    /// credit holds the new time. Answers with the session, requested at its new time.
    #[update]
    pub async fn reschedule(
        ctx: &mut WorkflowContext<Self>,
        request: Reschedule,
    ) -> Result<SessionSnapshot, Box<dyn Error + Send + Sync>> {
        ctx.state_mut(|s| s.changing = true);
        let prepared = prepare_reschedule(ctx, request).await;
        ctx.state_mut(|s| s.changing = false);
        ask_for(ctx, prepared?).await
    }

    /// Refuses a cancellation once the session has begun or ended.
    #[update_validator(cancel)]
    fn validate_cancel(
        &self,
        _ctx: &WorkflowContextView,
        _: &Cancel,
    ) -> Result<(), Box<dyn Error + Send + Sync>> {
        self.changeable("cancelled")
    }

    /// Cancels the session. By the client closer to a confirmed start than
    /// `policy.late_cancel_window`: late (credit lost, fee charged once); otherwise the credit
    /// comes back. A provider's cancellation never costs the client.
    #[update]
    pub async fn cancel(
        ctx: &mut WorkflowContext<Self>,
        request: Cancel,
    ) -> Result<SessionSnapshot, Box<dyn Error + Send + Sync>> {
        let at = now(ctx);
        let late = ctx.state(|s| request.by == Party::Client && s.is_late(at));
        let by = request.by;
        ask_for(ctx, Change::Cancel { by, late }).await
    }

    /// Refuses provider-unavailable unless the session is requested or confirmed.
    #[update_validator(provider_unavailable)]
    fn validate_provider_unavailable(
        &self,
        _ctx: &WorkflowContextView,
        _: &(),
    ) -> Result<(), Box<dyn Error + Send + Sync>> {
        self.changeable("marked unavailable")?;
        if !self.session.state.holds_slot() {
            return Err(state_conflict(self.session.state, "marked unavailable again"));
        }
        Ok(())
    }

    /// The provider cannot attend: the client keeps the credit and is offered a reschedule.
    #[update]
    pub async fn provider_unavailable(
        ctx: &mut WorkflowContext<Self>,
        _: (),
    ) -> Result<SessionSnapshot, Box<dyn Error + Send + Sync>> {
        ask_for(ctx, Change::ProviderUnavailable).await
    }

    /// Refuses authorize-next unless an authorization is on offer.
    #[update_validator(authorize_next)]
    fn validate_authorize_next(
        &self,
        _ctx: &WorkflowContextView,
        _: &(),
    ) -> Result<(), Box<dyn Error + Send + Sync>> {
        match &self.session.next_authorization {
            Some(next) if next.authorized_at.is_none() && !next.lapsed && !self.changing => Ok(()),
            Some(next) if next.lapsed => Err(Refusal::new(
                RefusalCode::AuthorizationWindowClosed,
                format!(
                    "the next session could be authorized until {}",
                    next.authorize_by.to_rfc3339()
                ),
            )
            .into()),
            Some(_) => Err(state_conflict(self.session.state, "authorized twice")),
            None => Err(Refusal::new(
                RefusalCode::SessionStateConflict,
                "only a completed insurance session offers the next session's authorization",
            )
            .into()),
        }
    }

    /// The insurance client authorizes the next session at the estimate shown.
    #[update]
    pub async fn authorize_next(
        ctx: &mut WorkflowContext<Self>,
        _: (),
    ) -> Result<SessionSnapshot, Box<dyn Error + Send + Sync>> {
        let grant = ctx.state_mut(|s| {
            s.changing = true;
            let next = s.session.next_authorization.as_ref()?;
            Some(AuthorizationGrant {
                key: format!("{}:next_authorization", s.session.workflow_id),
                client_id: s.session.client_id,
                session_id: s.session.id,
                estimate: next.estimate,
            })
        });
        let Some(grant) = grant else {
            ctx.state_mut(|s| s.changing = false);
            return Err(state_conflict(ctx.state(|s| s.session.state), "authorized now"));
        };
        let granted = ctx
            .execute_activity(
                BillingActivities::authorize_next,
                grant,
                step_options("record the next session's authorization"),
            )
            .await;
        let at = now(ctx);
        ctx.state_mut(|s| {
            s.changing = false;
            if let (Ok(_), Some(next)) = (&granted, s.session.next_authorization.as_mut()) {
                next.authorized_at = Some(at);
                s.session.version += 1;
            }
        });
        granted?;
        ctx.wait_condition(|s| !s.has_unrecorded_changes()).await?;
        Ok(ctx.state(|s| s.session.clone()))
    }

    /// Someone arrived in the room. Only the first join of each person counts.
    #[signal]
    pub fn participant_joined(&mut self, _ctx: &mut SyncWorkflowContext<Self>, join: Join) {
        let joinable =
            matches!(self.session.state, SessionState::Confirmed | SessionState::InProgress);
        if joinable && self.session.joined.at(join.party).is_none() {
            self.session.joined.record(join.party, join.at);
            self.session.version += 1;
        }
    }

    /// The media room ended. Counts once the room exists (the session is confirmed); the joins
    /// that came before it may not have been acted on yet.
    #[signal]
    pub fn room_ended(&mut self, _ctx: &mut SyncWorkflowContext<Self>, _: ()) {
        if matches!(self.session.state, SessionState::Confirmed | SessionState::InProgress) {
            self.room_ended = true;
        }
    }

    /// The session as it is now (the shape of `GET /v1/sessions/{id}`).
    #[query]
    pub fn snapshot(&self, _ctx: &WorkflowContextView) -> SessionSnapshot {
        self.session.clone()
    }
}

fn state_conflict(state: SessionState, what: &str) -> Box<dyn Error + Send + Sync> {
    Refusal::new(
        RefusalCode::SessionStateConflict,
        format!("the session is {state} and cannot be {what}"),
    )
    .into()
}

impl LiveSession {
    fn held(&self) -> bool {
        matches!(self.held, Some(Ok(())))
    }

    fn awaiting_answer(&self) -> Result<(), Box<dyn Error + Send + Sync>> {
        if self.held()
            && self.session.state == SessionState::Requested
            && self.answer.is_none()
            && self.change.is_none()
            && !self.changing
        {
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

    /// Reschedule and cancel are allowed before the session begins, and while a provider's
    /// absence leaves a reschedule on offer; one change at a time.
    fn changeable(&self, what: &str) -> Result<(), Box<dyn Error + Send + Sync>> {
        if self.held()
            && self.session.state.is_changeable()
            && self.change.is_none()
            && !self.changing
        {
            Ok(())
        } else {
            Err(state_conflict(self.session.state, what))
        }
    }

    /// A client's change at `now` is late when the session is confirmed and starts within
    /// `policy.late_cancel_window`. An unconfirmed request, or one the provider left, is never late.
    fn is_late(&self, now: DateTime<Utc>) -> bool {
        self.session.state == SessionState::Confirmed
            && self.policy.is_late(now, self.session.starts_at)
    }

    fn has_unrecorded_changes(&self) -> bool {
        self.session.version > self.recorded_version
    }

    fn wants_attention(&self) -> bool {
        self.change.is_some() || self.has_unrecorded_changes()
    }
}

type Ctx = WorkflowContext<LiveSession>;

/// Goes on with the lifecycle after a step, or back to step 2, or out.
macro_rules! proceed {
    ($step:expr) => {
        match $step {
            Flow::Next => {}
            Flow::Rescheduled => continue,
            Flow::Ended => break,
        }
    };
}

/// One live session, as DOMAIN.md tells it. Every step does its effects first (credits, fees,
/// room, messages) and then records the state that reports them, so a state seen in the read
/// model means its effects are done.
async fn lifecycle(ctx: &Ctx) -> WorkflowResult<SessionSnapshot> {
    // 1. Requested: the booking and a credit (or an insurance authorization) are held, or the
    //    booking is refused.
    if hold_booking(ctx).await? {
        loop {
            // 2. Awaiting confirmation: the provider answers before the window closes.
            proceed!(awaiting_confirmation(ctx).await?);
            // 3. Confirmed, waiting: reminders with the join link before the start.
            // 4. Join detection: the session begins when both have joined in time.
            proceed!(until_both_join(ctx).await?);
            // 5. In progress → completed: the room ends, or the length plus the margin passes.
            in_progress(ctx).await?;
            // 6. After: the credit is consumed; an insurance client is offered the next
            //    session's authorization.
            after_completion(ctx).await?;
            break;
        }
    }
    Ok(snapshot(ctx))
}

/// Step 1: hold the session and a credit in one transaction, buying one if asked to.
async fn hold_booking(ctx: &Ctx) -> WorkflowResult<bool> {
    let request = ctx.state(|s| HoldRequest { session: s.session.clone(), purchase: s.purchase });
    let outcome = ctx
        .execute_activity(
            BillingActivities::hold_booking,
            request,
            step_options("hold the booking and a credit"),
        )
        .await?;
    match outcome {
        HoldOutcome::Held { credit } => {
            ctx.state_mut(|s| {
                s.held = Some(Ok(()));
                s.recorded_version = s.session.version;
                s.session.credit = Some(CreditUse { id: credit, status: CreditStatus::Reserved });
                s.session.version += 1;
            });
            record_changes(ctx).await?;
            publish_state(ctx).await?;
            notify(ctx, Notice::Requested).await?;
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

/// Step 2: the provider confirms (the room and join links are made) or declines, or the window
/// closes and the request expires. The client may reschedule or cancel meanwhile.
async fn awaiting_confirmation(ctx: &Ctx) -> WorkflowResult<Flow> {
    let confirm_by = ctx.state(|s| s.session.confirm_by);
    wait_until(ctx, confirm_by, "confirmation window", |s| s.answer.is_some()).await?;
    if let Some(change) = take_change(ctx) {
        return carry_out(ctx, change).await;
    }
    match ctx.state(|s| s.answer) {
        Some(ProviderAnswer::Confirm) => {
            open_room(ctx).await?;
            notify(ctx, Notice::Confirmed).await?;
            enter(ctx, SessionState::Confirmed, None).await?;
            Ok(Flow::Next)
        }
        Some(ProviderAnswer::Decline) => {
            let end =
                End::new(SessionState::Declined, Outcome::ProviderDeclined, CreditStatus::Released);
            finish(ctx, end.telling(Notice::Declined)).await
        }
        None => {
            let end = End::new(
                SessionState::Expired,
                Outcome::ConfirmationWindowClosed,
                CreditStatus::Released,
            );
            finish(ctx, end.telling(Notice::Expired)).await
        }
    }
}

/// Steps 3 and 4: a reminder at each offset before the start (one at once for offsets already
/// passed, never skipped), until both have joined or the grace period ends. A provider who
/// never joins costs the client nothing; a client who never joins loses the credit and pays
/// the fee.
async fn until_both_join(ctx: &Ctx) -> WorkflowResult<Flow> {
    let starts_at = ctx.state(|s| s.session.starts_at);
    let (_, grace_ends) = ctx.state(|s| s.policy.join_window(starts_at));
    loop {
        send_due_reminders(ctx).await?;
        let next_reminder = ctx.state(|s| {
            let pending = s.policy.reminder_offsets.iter().filter(|o| !s.reminded.contains(o));
            pending.map(|offset| starts_at - delta(*offset)).min()
        });
        let (deadline, summary) = match next_reminder {
            Some(at) if at < grace_ends => (at, "next reminder"),
            _ => (grace_ends, "join grace period"),
        };
        let both_joined =
            wait_until(ctx, deadline, summary, |s| s.session.joined.both().is_some()).await?;
        if let Some(change) = take_change(ctx) {
            return carry_out(ctx, change).await;
        }
        if both_joined {
            enter(ctx, SessionState::InProgress, None).await?;
            return Ok(Flow::Next);
        }
        if now(ctx) >= grace_ends {
            let joined = ctx.state(|s| s.session.joined);
            if joined.provider.is_none() {
                return offer_reschedule(ctx, SessionState::ProviderNoShow, Notice::ProviderNoShow)
                    .await;
            }
            let fee = ctx.state(|s| s.terms.price);
            let end = End::new(
                SessionState::ClientNoShow,
                Outcome::ClientDidNotJoin,
                CreditStatus::Forfeited,
            )
            .charging(FeeKind::NoShowFee)
            .telling(Notice::ClientNoShow { fee });
            return finish(ctx, end).await;
        }
    }
}

/// Posts one reminder for every offset whose time has come and that has not been reminded of
/// for the current start.
async fn send_due_reminders(ctx: &Ctx) -> WorkflowResult<()> {
    let at = now(ctx);
    let due: Vec<Duration> = ctx.state(|s| {
        let starts_at = s.session.starts_at;
        let due =
            |offset: &&Duration| !s.reminded.contains(offset) && starts_at - delta(**offset) <= at;
        s.policy.reminder_offsets.iter().filter(due).copied().collect()
    });
    let Some(closest) = due.iter().min() else {
        return Ok(());
    };
    let starts_at = ctx.state(|s| s.session.starts_at.timestamp());
    let step = format!(
        "{}:{starts_at}:{}",
        Notice::Reminder.step(),
        livesessions_domain::duration::format(*closest)
    );
    post_notice(ctx, Notice::Reminder, &step).await?;
    ctx.state_mut(|s| s.reminded.extend(due));
    Ok(())
}

/// A provider's absence (no-show or unavailable): the client keeps the credit and may
/// reschedule with it (or cancel, at no cost) until `policy.reschedule_offer_window` passes;
/// then the credit is released to them.
async fn offer_reschedule(ctx: &Ctx, state: SessionState, notice: Notice) -> WorkflowResult<Flow> {
    announce_absence(ctx, state, notice).await?;
    await_reschedule(ctx, state).await
}

/// Tells the client the provider is absent and that the credit waits for a reschedule.
async fn announce_absence(ctx: &Ctx, state: SessionState, notice: Notice) -> WorkflowResult<()> {
    notify(ctx, notice).await?;
    enter(ctx, state, None).await
}

/// Waits for the client to reschedule or cancel; when the offer lapses, the credit goes back.
async fn await_reschedule(ctx: &Ctx, state: SessionState) -> WorkflowResult<Flow> {
    let lapses_at = now(ctx) + delta(ctx.state(|s| s.policy.reschedule_offer_window));
    wait_until(ctx, lapses_at, "reschedule offer", |_| false).await?;
    if let Some(change) = take_change(ctx) {
        return carry_out(ctx, change).await;
    }
    let outcome = match state {
        SessionState::ProviderNoShow => Outcome::ProviderDidNotJoin,
        _ => Outcome::ProviderWasUnavailable,
    };
    finish(
        ctx,
        End::new(state, outcome, CreditStatus::Released).telling(Notice::RescheduleOfferLapsed),
    )
    .await
}

/// Step 5: in progress until the media room ends, or until the booked length plus the margin
/// has passed since the session began.
async fn in_progress(ctx: &Ctx) -> WorkflowResult<()> {
    let (starts_at, joined, minutes, margin) = ctx.state(|s| {
        (
            s.session.starts_at,
            s.session.joined.both(),
            s.session.duration_minutes,
            s.policy.completion_margin,
        )
    });
    let began = starts_at.max(joined.unwrap_or(starts_at));
    let ends_by = began + delta(Duration::from_secs(60 * u64::from(minutes))) + delta(margin);
    let outcome =
        if wait_until(ctx, ends_by, "booked length + completion margin", |s| s.room_ended).await? {
            Outcome::RoomEnded
        } else {
            Outcome::CompletionMarginElapsed
        };
    ctx.state_mut(|s| s.session.outcome = Some(outcome));
    Ok(())
}

/// Step 6: the credit is consumed; an insurance client then sees the "Book a session" prompt
/// with the next session's estimate and may authorize it within `policy.reauthorization_window`.
async fn after_completion(ctx: &Ctx) -> WorkflowResult<()> {
    let outcome = ctx.state(|s| s.session.outcome).unwrap_or(Outcome::RoomEnded);
    finish(ctx, End::new(SessionState::Completed, outcome, CreditStatus::Consumed)).await?;
    let Some(estimate) = ctx.state(|s| {
        (s.session.coverage == Coverage::Insurance).then_some(s.terms.estimate).flatten()
    }) else {
        return Ok(());
    };
    let authorize_by = now(ctx) + delta(ctx.state(|s| s.policy.reauthorization_window));
    notify(ctx, Notice::AuthorizationPrompt { estimate, authorize_by }).await?;
    ctx.state_mut(|s| {
        s.session.next_authorization =
            Some(NextAuthorization { estimate, authorize_by, authorized_at: None, lapsed: false });
        s.session.version += 1;
    });
    record_changes(ctx).await?;
    let authorized = |s: &LiveSession| {
        s.session.next_authorization.as_ref().is_some_and(|n| n.authorized_at.is_some())
    };
    wait_until(ctx, authorize_by, "reauthorization window", authorized).await?;
    // An authorization already under way when the window closes is honoured.
    ctx.wait_condition(|s| !s.changing).await?;
    if !ctx.state(authorized) {
        ctx.state_mut(|s| {
            if let Some(next) = s.session.next_authorization.as_mut() {
                next.lapsed = true;
            }
            s.session.version += 1;
        });
    }
    record_changes(ctx).await
}

/// Checks a reschedule against the workflow's clock and, when it is late, holds the credit the
/// new time will use. A refusal here changes nothing.
async fn prepare_reschedule(
    ctx: &Ctx,
    request: Reschedule,
) -> Result<Change, Box<dyn Error + Send + Sync>> {
    let at = now(ctx);
    let (late, policy, new_time) = ctx.state(|s| {
        let late = s.is_late(at);
        let length = TimeDelta::minutes(i64::from(s.session.duration_minutes));
        let new_time = NewTimeRequest {
            session_id: s.session.id,
            client_id: s.session.client_id,
            provider_id: s.session.provider_id,
            coverage: s.session.coverage,
            starts_at: request.starts_at,
            ends_at: request.starts_at + length,
            late,
        };
        (late, s.policy.clone(), new_time)
    });
    if !request.accept_cancellation_policy {
        let (code, message) = if late {
            (
                RefusalCode::LateCancellationNotAccepted,
                "rescheduling this close to the start is a late cancellation: the credit is lost and the fee charged; accept the cancellation policy to go on",
            )
        } else {
            (
                RefusalCode::CancellationPolicyNotAccepted,
                "the client must agree to the cancellation policy (accept_cancellation_policy: true)",
            )
        };
        return Err(Refusal::new(code, message).into());
    }
    check_notice(request.starts_at, &policy, at)?;
    let held = ctx
        .execute_activity(
            BillingActivities::hold_new_time,
            new_time,
            step_options("hold the new time (and a credit, when late)"),
        )
        .await?;
    let replacement = match held {
        HoldOutcome::Refused(refusal) => return Err(refusal.into()),
        HoldOutcome::Held { credit } => late.then_some(credit),
    };
    Ok(Change::Reschedule { starts_at: request.starts_at, late, replacement })
}

/// Carries out a change the client or the provider asked for; the asker's answer is due once
/// it has taken effect.
async fn carry_out(ctx: &Ctx, change: Change) -> WorkflowResult<Flow> {
    let effected = || ctx.state_mut(|s| s.changes_effected += 1);
    match change {
        Change::Reschedule { starts_at, late, replacement } => {
            if late {
                forfeit_for_late_change(ctx, replacement).await?;
            }
            move_to(ctx, starts_at).await?;
            effected();
            Ok(Flow::Rescheduled)
        }
        Change::Cancel { by, late } => {
            let end = match (by, late) {
                (Party::Provider, _) => End::new(
                    SessionState::Cancelled,
                    Outcome::ProviderCancelled,
                    CreditStatus::Released,
                )
                .telling(Notice::Cancelled),
                (Party::Client, false) => End::new(
                    SessionState::Cancelled,
                    Outcome::ClientCancelled,
                    CreditStatus::Released,
                )
                .telling(Notice::Cancelled),
                (Party::Client, true) => {
                    let fee = ctx.state(|s| s.terms.price);
                    End::new(
                        SessionState::LateCancelled,
                        Outcome::ClientCancelledLate,
                        CreditStatus::Forfeited,
                    )
                    .charging(FeeKind::LateCancelFee)
                    .telling(Notice::LateCancelled { fee })
                }
            };
            let flow = finish(ctx, end).await?;
            effected();
            Ok(flow)
        }
        Change::ProviderUnavailable => {
            announce_absence(ctx, SessionState::ProviderUnavailable, Notice::ProviderUnavailable)
                .await?;
            effected();
            // Boxed: the client's answer to the offer is a change, which brings us back here.
            let offer: std::pin::Pin<
                Box<dyn std::future::Future<Output = WorkflowResult<Flow>> + '_>,
            > = Box::pin(await_reschedule(ctx, SessionState::ProviderUnavailable));
            offer.await
        }
    }
}

/// A late reschedule: the fee is charged once, the credit of the old time is lost, and the
/// replacement held by the update now holds the session.
async fn forfeit_for_late_change(ctx: &Ctx, replacement: Option<CreditId>) -> WorkflowResult<()> {
    let old_start = ctx.state(|s| s.session.starts_at.timestamp());
    charge_fee(ctx, FeeKind::LateCancelFee, &format!("{}:{old_start}", FeeKind::LateCancelFee))
        .await?;
    settle_credit(ctx, CreditStatus::Forfeited).await?;
    ctx.state_mut(|s| {
        s.session.credit = replacement.map(|id| CreditUse { id, status: CreditStatus::Reserved });
    });
    Ok(())
}

/// Moves the session to `starts_at`: it is requested again, with a fresh confirmation window,
/// no joins and no reminders yet, and the client is told.
async fn move_to(ctx: &Ctx, starts_at: DateTime<Utc>) -> WorkflowResult<()> {
    let at = now(ctx);
    ctx.state_mut(|s| {
        s.session.starts_at = starts_at;
        s.session.confirm_by = s.policy.confirm_by(at, starts_at);
        s.session.joined = Joined::default();
        s.answer = None;
        s.room_ended = false;
        s.reminded.clear();
    });
    let start: std::time::SystemTime = starts_at.into();
    ctx.upsert_search_attributes([attributes::SESSION_STARTS_AT.value_set(start.into())]);
    notify(ctx, Notice::Rescheduled).await?;
    enter(ctx, SessionState::Requested, None).await
}

/// How a session ends: its final state, why, where the credit goes, the fee if one is due and
/// what the client is told.
struct End {
    state: SessionState,
    outcome: Outcome,
    credit: CreditStatus,
    fee: Option<FeeKind>,
    notice: Option<Notice>,
}

impl End {
    fn new(state: SessionState, outcome: Outcome, credit: CreditStatus) -> Self {
        Self { state, outcome, credit, fee: None, notice: None }
    }

    fn charging(self, fee: FeeKind) -> Self {
        Self { fee: Some(fee), ..self }
    }

    fn telling(self, notice: Notice) -> Self {
        Self { notice: Some(notice), ..self }
    }
}

/// The last step of every path: the credit goes where the end says, a fee is charged if due,
/// the client is told, and the final state is entered.
async fn finish(ctx: &Ctx, end: End) -> WorkflowResult<Flow> {
    settle_credit(ctx, end.credit).await?;
    if let Some(kind) = end.fee {
        charge_fee(ctx, kind, kind.as_str()).await?;
    }
    if let Some(notice) = end.notice {
        notify(ctx, notice).await?;
    }
    enter(ctx, end.state, Some(end.outcome)).await?;
    Ok(Flow::Ended)
}

/// Moves the session's credit to `to`.
async fn settle_credit(ctx: &Ctx, to: CreditStatus) -> WorkflowResult<()> {
    let (session_id, held) = ctx.state(|s| (s.session.id, s.session.credit));
    let Some(held) = held.filter(|c| c.status == CreditStatus::Reserved) else {
        return Ok(());
    };
    let movement = CreditMove { session_id, credit_id: held.id, to };
    ctx.execute_activity(
        BillingActivities::settle_credit,
        movement,
        step_options("settle the credit"),
    )
    .await?;
    ctx.state_mut(|s| {
        s.session.credit = Some(CreditUse { id: held.id, status: to });
        s.session.version += 1;
    });
    Ok(())
}

/// Charges a fee of the session's full cost, once: the key is `<workflow id>:<step>`, for the
/// processor and the ledger alike. A declined card leaves it outstanding; a processor that stays
/// unreachable through the bounded retries leaves it outstanding too, never lost.
async fn charge_fee(ctx: &Ctx, kind: FeeKind, step: &str) -> WorkflowResult<()> {
    let charge = ctx.state(|s| FeeCharge {
        key: format!("{}:{step}", s.session.workflow_id),
        client_id: s.session.client_id,
        session_id: s.session.id,
        kind,
        amount: s.terms.price,
    });
    let (key, amount) = (charge.key.clone(), charge.amount);
    let status = match ctx
        .execute_activity(BillingActivities::charge_fee, charge.clone(), fee_options())
        .await
    {
        Ok(status) => status,
        Err(ActivityExecutionError::Failed(_)) => {
            ctx.execute_activity(
                BillingActivities::record_unpaid_fee,
                charge,
                step_options("record the fee as outstanding"),
            )
            .await?
        }
        Err(other) => return Err(other.into()),
    };
    let at = now(ctx);
    ctx.state_mut(|s| {
        s.session.fees.push(Fee { kind, amount, key, status, at });
        s.session.version += 1;
    });
    Ok(())
}

/// Options for a charge: the activity heartbeats while the processor answers, so a worker that
/// dies mid-call is noticed in seconds; retries are bounded, then the fee is left outstanding.
fn fee_options() -> ActivityOptions {
    ActivityOptions::with_start_to_close_timeout(Duration::from_secs(60))
        .heartbeat_timeout(Duration::from_secs(5))
        .retry_policy(
            RetryPolicy::builder()
                .initial_interval(Duration::from_secs(1))
                .backoff_coefficient(2.0)
                .maximum_interval(Duration::from_secs(10))
                .maximum_attempts(5)
                .build(),
        )
        .summary("charge the fee".to_string())
        .build()
}

fn now(ctx: &Ctx) -> DateTime<Utc> {
    ctx.workflow_time().map(Into::into).unwrap_or_default()
}

fn snapshot(ctx: &Ctx) -> SessionSnapshot {
    ctx.state(|s| s.session.clone())
}

fn take_change(ctx: &Ctx) -> Option<Change> {
    ctx.state_mut(|s| s.change.take())
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

/// Hands a change to the run and waits until it has taken effect and the read model has it;
/// answers the session as it then is.
async fn ask_for(
    ctx: &Ctx,
    change: Change,
) -> Result<SessionSnapshot, Box<dyn Error + Send + Sync>> {
    let ticket = ctx.state_mut(|s| {
        s.change = Some(change);
        s.changes_asked += 1;
        s.changes_asked
    });
    ctx.wait_condition(|s| s.changes_effected >= ticket && !s.has_unrecorded_changes()).await?;
    Ok(snapshot(ctx))
}

/// Moves to `state` (or, when already there, only sets the outcome), tells operators (search
/// attribute) and the read model.
async fn enter(ctx: &Ctx, state: SessionState, outcome: Option<Outcome>) -> WorkflowResult<()> {
    let at = now(ctx);
    ctx.state_mut(|s| {
        if s.session.state == state {
            s.session.version += 1;
        } else {
            s.session.enter(state, at);
        }
        if outcome.is_some() {
            s.session.outcome = outcome;
        }
    });
    ctx.upsert_search_attributes([attributes::SESSION_STATE.value_set(state.to_string())]);
    record_changes(ctx).await?;
    publish_state(ctx).await
}

/// Sends backend services the session as it now is (one event per state change), when they
/// asked for events.
async fn publish_state(ctx: &Ctx) -> WorkflowResult<()> {
    if !ctx.state(|s| s.webhooks) {
        return Ok(());
    }
    let at = now(ctx);
    let event = ctx.state(|s| WebhookEvent {
        id: format!("{}:v{}", s.session.workflow_id, s.session.version),
        kind: "session.state_changed".into(),
        occurred_at: at,
        session: s.session.clone(),
    });
    let key = event.id.clone();
    deliver(ctx, &key, DeliveryInput::Webhook(event)).await
}

/// Starts a delivery workflow for `input` and leaves it to run: the session goes on at once,
/// whatever the mail server or the webhook receiver is doing.
async fn deliver(ctx: &Ctx, key: &str, input: DeliveryInput) -> WorkflowResult<()> {
    let options = ChildWorkflowOptions::builder()
        .workflow_id(format!("delivery-{key}"))
        .parent_close_policy(ParentClosePolicy::Abandon)
        .build();
    ctx.start_child_workflow(Delivery::run, input, options).await?;
    Ok(())
}

/// Writes the snapshot to the read model until it has the newest version.
async fn record_changes(ctx: &Ctx) -> WorkflowResult<()> {
    while ctx.state(LiveSession::has_unrecorded_changes) {
        let snapshot = snapshot(ctx);
        let version = snapshot.version;
        ctx.execute_local_activity(
            StorageActivities::record_session,
            snapshot,
            LocalActivityOptions::builder().start_to_close_timeout(Duration::from_secs(10)).build(),
        )
        .await?;
        ctx.state_mut(|s| s.recorded_version = s.recorded_version.max(version));
    }
    Ok(())
}

/// Waits until `done` holds (true) or `deadline` passes (false), waking early for a change
/// request and recording every change that signals make meanwhile. The timer is cancelled, not
/// dropped, when the wait ends early.
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
    let mut timer =
        pin!(ctx.timer(TimerOptions::builder(remaining).summary(summary.to_string()).build()));
    loop {
        select! {
            woken = ctx.wait_condition(|s| done(s) || s.wants_attention()) => woken?,
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
        let (finished, interrupted) = ctx.state(|s| (done(s), s.change.is_some()));
        if finished || interrupted {
            timer.cancel();
            return Ok(finished);
        }
    }
}

/// Posts a notice about this session to the client's room, once per snapshot version.
async fn notify(ctx: &Ctx, notice: Notice) -> WorkflowResult<()> {
    let step = format!("{}:{}", notice.step(), ctx.state(|s| s.session.version));
    post_notice(ctx, notice, &step).await
}

/// Posts a notice under `<workflow id>:<step>` to the client's room (when it shows there) and
/// emails it, with the calendar invite it changes.
async fn post_notice(ctx: &Ctx, notice: Notice, step: &str) -> WorkflowResult<()> {
    if notice.shows_in_room() {
        post_room_message(ctx, notice, step).await?;
    }
    let invite = ctx.state_mut(|s| invite_for(s, notice));
    let email = ctx.state(|s| EmailNotice {
        key: format!("{}:{step}", s.session.workflow_id),
        session_id: s.session.id,
        client_id: s.session.client_id,
        provider_id: s.session.provider_id,
        starts_at: s.session.starts_at,
        duration_minutes: s.session.duration_minutes,
        modality: s.session.modality,
        confirm_by: s.session.confirm_by,
        time_zone: s.session.time_zone,
        notice,
        invite,
    });
    let key = format!("{}:email", email.key);
    deliver(ctx, &key, DeliveryInput::Email(email)).await
}

/// The invite a notice carries: the event when confirmed, its new time (`SEQUENCE` + 1) when
/// rescheduled, its removal (`METHOD:CANCEL`, `SEQUENCE` + 1) when cancelled; only once an
/// invite went out for the last two.
fn invite_for(session: &mut LiveSession, notice: Notice) -> Option<Invite> {
    let method = match notice {
        Notice::Confirmed => {
            session.invited = true;
            InviteMethod::Request
        }
        Notice::Rescheduled if session.invited => {
            session.invite_sequence += 1;
            InviteMethod::Request
        }
        Notice::Cancelled | Notice::LateCancelled { .. } if session.invited => {
            session.invite_sequence += 1;
            InviteMethod::Cancel
        }
        _ => return None,
    };
    Some(Invite { method, sequence: session.invite_sequence })
}

/// Posts a notice to the client's room, once per key.
async fn post_room_message(ctx: &Ctx, notice: Notice, step: &str) -> WorkflowResult<()> {
    let room_notice = ctx.state(|s| RoomNotice {
        key: format!("{}:{step}", s.session.workflow_id),
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

/// The room and one join link per person, working from shortly before the start until the
/// grace period ends (moved when the session is rescheduled and confirmed again).
async fn open_room(ctx: &Ctx) -> WorkflowResult<()> {
    let request = ctx.state(|s| {
        let (opens_at, closes_at) = s.policy.join_window(s.session.starts_at);
        RoomRequest {
            session_id: s.session.id,
            client_id: s.session.client_id,
            provider_id: s.session.provider_id,
            opens_at,
            closes_at,
        }
    });
    ctx.execute_activity(MediaActivities::open_room, request, step_options("open the media room"))
        .await?;
    Ok(())
}
