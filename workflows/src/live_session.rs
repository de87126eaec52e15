//! One live session, one workflow (`live-session-<session uuid>`). The rules live in the pure
//! [`Session`] type of the domain; this workflow only orchestrates: it asks the rules what to do
//! next, waits, runs the activities of each step, and records the state that reports them.
//!
//! The handlers are how the outside world speaks to it. The provider's answer, reschedule,
//! cancel, provider-unavailable and authorize-next are updates, and so are the operators'
//! repairs (cancel on someone's behalf, end a stuck session, resend a notice), so each shows in
//! the session's history by name: each claims the session's one change slot before its first
//! `.await` (a second change meanwhile gets `409 change_in_progress`, from the validator or from
//! the claim) and waits for the run loop to answer it with the state the change produced, or with
//! the refusal. Joins and the end of the media room are signals; `snapshot` is the live truth of
//! one session.

#![allow(unreachable_pub)]

use crate::activities::{
    AuthorizationGrant, BillingActivities, CreditMove, DeliveryInput, EmailNotice, FeeCharge,
    FeeWaiver, HoldOutcome, HoldRequest, Invite, KeyedDelivery, MediaActivities, NewTimeRequest,
    Notice, RoomNotice, RoomRequest, SessionRecord, StorageActivities, WebhookEvent,
};
use crate::search_attributes as attributes;
use chrono::{DateTime, TimeDelta, Utc};
use livesessions_domain::lifecycle::{Change, Deadline, Effect, Session, Step, Ticket, Transition};
use livesessions_domain::{
    BookingRequest, Coverage, CreditStatus, Money, Policy, Refusal, SessionId, SessionSnapshot,
    SessionTerms,
};
use serde::{Deserialize, Serialize};
use std::error::Error;
use std::pin::Pin;
use std::time::Duration;
use temporalio_macros::{workflow, workflow_methods};
use temporalio_workflow::{
    ActivityExecutionError, ActivityOptions, CancellableFuture, LocalActivityOptions, RetryPolicy,
    SyncWorkflowContext, TimerOptions, TimerResult, WorkflowContext, WorkflowContextView,
    WorkflowResult, WorkflowTermination, select,
};

pub use livesessions_domain::lifecycle::{
    Cancel, FeeDecision, Join, OperatorCancel, OperatorEnding, Reschedule,
};

/// What the workflow starts with: the booking, checked by the API, the terms and the policy in
/// force when it was made. Ids, times and amounts only.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LiveSessionInput {
    /// The session, minted by the API.
    pub session_id: SessionId,
    /// What was booked.
    pub booking: BookingRequest,
    /// How it is paid for.
    pub coverage: Coverage,
    /// Price (the fee) and insurance estimate, fixed at booking.
    pub terms: SessionTerms,
    /// Buy a credit at this price if none is left.
    #[serde(default)]
    pub purchase: Option<Money>,
    /// The policy this session keeps until it ends.
    pub policy: Policy,
    /// Whether backend services want an event per state change (webhooks configured).
    #[serde(default)]
    pub webhooks: bool,
}

/// The state of one live session workflow.
#[workflow]
pub struct LiveSession {
    session: Session,
    purchase: Option<Money>,
    webhooks: bool,
    /// The highest snapshot version the read model has.
    recorded_version: u64,
    /// Room messages to post, and emails and events to hand to the outbox, with the next record.
    room_messages: Vec<RoomNotice>,
    deliveries: Vec<KeyedDelivery>,
}

type HandlerResult = Result<SessionSnapshot, Box<dyn Error + Send + Sync>>;
type Validation = Result<(), Box<dyn Error + Send + Sync>>;

#[workflow_methods]
impl LiveSession {
    /// Builds the requested session from the input; the confirmation window starts now.
    #[init]
    pub fn new(ctx: &WorkflowContextView, input: LiveSessionInput) -> Self {
        let requested_at: DateTime<Utc> =
            ctx.start_time().map(Into::into).expect("Temporal sets every workflow's start time");
        let session = Session::new(
            input.session_id,
            &input.booking,
            input.coverage,
            input.terms,
            input.policy,
            requested_at,
        );
        Self {
            session,
            purchase: input.purchase,
            webhooks: input.webhooks,
            recorded_version: 0,
            room_messages: Vec::new(),
            deliveries: Vec::new(),
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
        ctx.wait_condition(|s| match s.session.booking_answer() {
            None => false,
            Some(Err(_)) => true,
            Some(Ok(())) => !s.has_unrecorded_changes(),
        })
        .await?;
        ctx.state(|s| match s.session.booking_answer() {
            Some(Err(refusal)) => Err(refusal.clone().into()),
            _ => Ok(s.session.snapshot().clone()),
        })
    }

    /// Refuses `confirm` unless the session awaits the provider's answer and no other change
    /// is in flight.
    #[update_validator(confirm)]
    fn validate_confirm(&self, _ctx: &WorkflowContextView, _: &()) -> Validation {
        self.admit(Change::Confirm)
    }

    /// The provider confirms; answers with the confirmed session.
    #[update]
    pub async fn confirm(
        ctx: &mut WorkflowContext<Self>,
        _: (),
    ) -> Result<SessionSnapshot, Box<dyn Error + Send + Sync>> {
        ask(ctx, Change::Confirm).await
    }

    /// Refuses `decline` unless the session awaits the provider's answer and no other change
    /// is in flight.
    #[update_validator(decline)]
    fn validate_decline(&self, _ctx: &WorkflowContextView, _: &()) -> Validation {
        self.admit(Change::Decline)
    }

    /// The provider declines; answers with the declined session.
    #[update]
    pub async fn decline(
        ctx: &mut WorkflowContext<Self>,
        _: (),
    ) -> Result<SessionSnapshot, Box<dyn Error + Send + Sync>> {
        ask(ctx, Change::Decline).await
    }

    /// Refuses a reschedule the session's state or the booking's terms do not allow.
    #[update_validator(reschedule)]
    fn validate_reschedule(&self, _ctx: &WorkflowContextView, request: &Reschedule) -> Validation {
        self.admit(Change::Reschedule(*request))
    }

    /// The client moves the session; the provider confirms again. Late (closer to a confirmed
    /// start than `policy.late_cancel_window` when the move is carried out): the credit is
    /// lost, the fee charged, and another credit holds the new time. Answers with the session,
    /// requested at its new time.
    #[update]
    pub async fn reschedule(
        ctx: &mut WorkflowContext<Self>,
        request: Reschedule,
    ) -> Result<SessionSnapshot, Box<dyn Error + Send + Sync>> {
        ask(ctx, Change::Reschedule(request)).await
    }

    /// Refuses a cancellation once the session has begun or ended.
    #[update_validator(cancel)]
    fn validate_cancel(&self, _ctx: &WorkflowContextView, request: &Cancel) -> Validation {
        self.admit(Change::Cancel(*request))
    }

    /// Cancels the session. By the client closer to a confirmed start than
    /// `policy.late_cancel_window`: late (credit lost, fee charged once); otherwise the credit
    /// comes back. A provider's cancellation never costs the client.
    #[update]
    pub async fn cancel(
        ctx: &mut WorkflowContext<Self>,
        request: Cancel,
    ) -> Result<SessionSnapshot, Box<dyn Error + Send + Sync>> {
        ask(ctx, Change::Cancel(request)).await
    }

    /// Refuses provider-unavailable unless the session is requested or confirmed.
    #[update_validator(provider_unavailable)]
    fn validate_provider_unavailable(&self, _ctx: &WorkflowContextView, _: &()) -> Validation {
        self.admit(Change::ProviderUnavailable)
    }

    /// The provider cannot attend: the client keeps the credit and is offered a reschedule.
    #[update]
    pub async fn provider_unavailable(
        ctx: &mut WorkflowContext<Self>,
        _: (),
    ) -> Result<SessionSnapshot, Box<dyn Error + Send + Sync>> {
        ask(ctx, Change::ProviderUnavailable).await
    }

    /// Refuses authorize-next unless an authorization is on offer.
    #[update_validator(authorize_next)]
    fn validate_authorize_next(&self, _ctx: &WorkflowContextView, _: &()) -> Validation {
        self.admit(Change::AuthorizeNext)
    }

    /// The insurance client authorizes the next session at the estimate shown.
    #[update]
    pub async fn authorize_next(
        ctx: &mut WorkflowContext<Self>,
        _: (),
    ) -> Result<SessionSnapshot, Box<dyn Error + Send + Sync>> {
        ask(ctx, Change::AuthorizeNext).await
    }

    /// Refuses an operator's cancellation once the session has begun or ended.
    #[update_validator(operator_cancel)]
    fn validate_operator_cancel(
        &self,
        _ctx: &WorkflowContextView,
        request: &OperatorCancel,
    ) -> Validation {
        self.admit(Change::OperatorCancel(*request))
    }

    /// An operator cancels on someone's behalf: as that person's cancellation would, but a late
    /// one's fee is charged or waived (posted and waived at once) as the operator decided.
    #[update]
    pub async fn operator_cancel(
        ctx: &mut WorkflowContext<Self>,
        request: OperatorCancel,
    ) -> Result<SessionSnapshot, Box<dyn Error + Send + Sync>> {
        ask(ctx, Change::OperatorCancel(request)).await
    }

    /// Refuses an operator's end of a session that has ended, or (completed) never began.
    #[update_validator(operator_end)]
    fn validate_operator_end(
        &self,
        _ctx: &WorkflowContextView,
        ending: &OperatorEnding,
    ) -> Validation {
        self.admit(Change::OperatorEnd(*ending))
    }

    /// An operator ends a stuck session: completed (the credit consumed) or cancelled (the
    /// credit back, nobody charged).
    #[update]
    pub async fn operator_end(
        ctx: &mut WorkflowContext<Self>,
        ending: OperatorEnding,
    ) -> Result<SessionSnapshot, Box<dyn Error + Send + Sync>> {
        ask(ctx, Change::OperatorEnd(ending)).await
    }

    /// Refuses a resend while another change is in flight.
    #[update_validator(resend_notice)]
    fn validate_resend_notice(&self, _ctx: &WorkflowContextView, _: &()) -> Validation {
        self.admit(Change::ResendNotice)
    }

    /// An operator sends the last notice's email again (the room keeps showing the message).
    #[update]
    pub async fn resend_notice(
        ctx: &mut WorkflowContext<Self>,
        _: (),
    ) -> Result<SessionSnapshot, Box<dyn Error + Send + Sync>> {
        ask(ctx, Change::ResendNotice).await
    }

    /// Someone arrived in the room. Only the first join of each person counts.
    #[signal]
    pub fn participant_joined(&mut self, _ctx: &mut SyncWorkflowContext<Self>, join: Join) {
        self.session.join(join);
    }

    /// The media room ended. Counts once the room exists (the session is confirmed).
    #[signal]
    pub fn room_ended(&mut self, _ctx: &mut SyncWorkflowContext<Self>, _: ()) {
        self.session.room_ended();
    }

    /// The session as it is now (the shape of `GET /v1/sessions/{id}`).
    #[query]
    pub fn snapshot(&self, _ctx: &WorkflowContextView) -> SessionSnapshot {
        self.session.snapshot().clone()
    }
}

impl LiveSession {
    /// A change is judged once the booking has its answer. Before that it is let through, and
    /// its handler waits for the answer (see [`ask`]): a change can come with the task that
    /// holds the booking when a worker was killed after the hold committed (the session is
    /// visible then) and another runs that task again from the start.
    fn admit(&self, change: Change) -> Validation {
        if self.session.booking_answer().is_none() {
            return Ok(());
        }
        Ok(self.session.admit(&change)?)
    }

    fn has_unrecorded_changes(&self) -> bool {
        self.session.snapshot().version > self.recorded_version
            || !self.room_messages.is_empty()
            || !self.deliveries.is_empty()
    }

    /// Tells of a notice under `key`: in the client's room (when it shows there) and by email,
    /// with the calendar invite it changes; both go with the next record of the state.
    fn tell(&mut self, notice: Notice, key: String) {
        let invite = self.session.invite_for(&notice);
        self.session.told(notice, invite);
        let session = self.session.snapshot();
        if notice.shows_in_room() {
            self.room_messages.push(RoomNotice {
                key: key.clone(),
                client_id: session.client_id,
                session_id: session.id,
                starts_at: session.starts_at,
                time_zone: session.time_zone,
                notice,
            });
        }
        self.email(notice, invite, key);
    }

    /// Emails a notice under `key` with the calendar invite it carries, with the next record.
    fn email(&mut self, notice: Notice, invite: Option<Invite>, key: String) {
        let session = self.session.snapshot();
        let email = EmailNotice {
            key: key.clone(),
            session_id: session.id,
            client_id: session.client_id,
            provider_id: session.provider_id,
            starts_at: session.starts_at,
            duration_minutes: session.duration_minutes,
            modality: session.modality,
            confirm_by: session.confirm_by,
            time_zone: session.time_zone,
            notice,
            invite,
        };
        self.deliver(format!("{key}:email"), DeliveryInput::Email(email));
    }

    /// Hands `delivery` to the outbox with the next record.
    fn deliver(&mut self, key: String, delivery: DeliveryInput) {
        self.deliveries.push(KeyedDelivery { key, delivery });
    }
}

type Ctx = WorkflowContext<LiveSession>;

/// Claims the change slot (synchronously, before the first `.await`, so two handlers of one
/// activation cannot both pass) and waits for the run loop's answer. A change let through
/// before the booking was answered (see `LiveSession::admit`) first waits for that answer,
/// then claims the same way.
async fn ask(ctx: &Ctx, change: Change) -> HandlerResult {
    if ctx.state(|s| s.session.booking_answer().is_none()) {
        ctx.wait_condition(|s| s.session.booking_answer().is_some()).await?;
    }
    let ticket: Ticket = ctx.state_mut(|s| s.session.claim(change))?;
    ctx.wait_condition(move |s| s.session.is_answered(ticket)).await?;
    let answer = ctx.state_mut(|s| s.session.take_answer(ticket));
    Ok(answer.expect("an answered ticket has its answer")?)
}

/// One live session, as DOMAIN.md tells it: the rules say what comes next (step 1, a deadline
/// or fact that is due, the change in flight, or a wait), and the loop does it. Every step does
/// its effects first (credits, fees, room, messages) and then records the state that reports
/// them, so a state seen in the read model means its effects are done.
async fn lifecycle(ctx: &Ctx) -> WorkflowResult<SessionSnapshot> {
    let mut alarm = Alarm::default();
    loop {
        let at = now(ctx);
        match ctx.state(|s| s.session.next_step(at)) {
            // 1. Requested: the booking and a credit (or an insurance authorization) are held,
            //    or the booking is refused.
            Step::Hold => hold_booking(ctx).await?,
            // 2.–6. A deadline passed (confirmation window, reminders, join grace, completion,
            //    reschedule offer, reauthorization window) or the room told us something.
            Step::Handle(event) => {
                let transition = ctx.state(|s| s.session.decide_event(event, at));
                carry_out(ctx, transition).await?;
            }
            // A change someone asked for, judged on the state as it now is.
            Step::CarryOut(ticket, change) => {
                let answer = change_session(ctx, change, at).await?;
                record_changes(ctx).await?;
                ctx.state_mut(|s| s.session.answer(ticket, answer));
            }
            Step::Wait(deadline) => wait(ctx, deadline, &mut alarm).await?,
            Step::Finished => return Ok(snapshot(ctx)),
        }
    }
}

/// Step 1: hold the session and a credit in one transaction, buying one if asked to.
async fn hold_booking(ctx: &Ctx) -> WorkflowResult<()> {
    let request =
        ctx.state(|s| HoldRequest { session: s.session.snapshot().clone(), purchase: s.purchase });
    // A local activity: the hold runs inside the workflow task that starts the session, so the
    // booking is answered in one task. No change can be waiting meanwhile (the session is not
    // visible before it is held), so the workflow being busy delays nobody.
    let options = LocalActivityOptions::builder()
        .start_to_close_timeout(Duration::from_secs(30))
        .retry_policy(backoff_policy())
        .summary("hold the booking and a credit".to_string())
        .build();
    let outcome =
        ctx.execute_local_activity(BillingActivities::hold_booking, request, options).await?;
    match outcome {
        HoldOutcome::Held { credit } => {
            ctx.state_mut(|s| {
                // The hold wrote the first version of the row in its transaction.
                s.recorded_version = s.session.snapshot().version;
                s.session.held(credit);
            });
            publish_state(ctx);
            ctx.state_mut(|s| s.tell(Notice::Requested, s.session.notice_key(&Notice::Requested)));
            record_changes(ctx).await
        }
        HoldOutcome::Refused(refusal) => {
            ctx.upsert_search_attributes([
                attributes::SESSION_STATE.value_set(attributes::REFUSED.into())
            ]);
            ctx.state_mut(|s| s.session.refused(refusal));
            Ok(())
        }
    }
}

/// Decides and carries out a change; a refusal (by the rules, or a new time that cannot be
/// held) has changed nothing.
async fn change_session(
    ctx: &Ctx,
    change: Change,
    at: DateTime<Utc>,
) -> WorkflowResult<Result<(), Refusal>> {
    let transition = match ctx.state(|s| s.session.decide_change(&change, at)) {
        Ok(transition) => transition,
        Err(refusal) => return Ok(Err(refusal)),
    };
    let transition = match transition {
        Transition::Reschedule { starts_at, late, .. } => {
            match hold_new_time(ctx, starts_at, late).await? {
                HoldOutcome::Held { credit } => {
                    Transition::Reschedule { starts_at, late, replacement: late.then_some(credit) }
                }
                HoldOutcome::Refused(refusal) => return Ok(Err(refusal)),
            }
        }
        other => other,
    };
    carry_out(ctx, transition).await?;
    Ok(Ok(()))
}

/// Holds the session's new time (and, when late, another credit for it).
async fn hold_new_time(
    ctx: &Ctx,
    starts_at: DateTime<Utc>,
    late: bool,
) -> WorkflowResult<HoldOutcome> {
    let request = ctx.state(|s| {
        let session = s.session.snapshot();
        NewTimeRequest {
            session_id: session.id,
            client_id: session.client_id,
            provider_id: session.provider_id,
            coverage: session.coverage,
            starts_at,
            ends_at: starts_at + TimeDelta::minutes(i64::from(session.duration_minutes)),
            late,
        }
    });
    Ok(ctx
        .execute_activity(
            BillingActivities::hold_new_time,
            request,
            step_options("hold the new time (and a credit, when late)"),
        )
        .await?)
}

/// Carries out a transition: its effects, then the state it reports, then what the client is
/// told; then operators (search attributes) hear of it, and the read model with the outbox
/// (emails, backend services' events) records it in one transaction.
async fn carry_out(ctx: &Ctx, transition: Transition) -> WorkflowResult<()> {
    for effect in transition.effects() {
        perform(ctx, effect).await?;
    }
    if let Transition::Resend(resend) = &transition {
        let resend = resend.clone();
        ctx.state_mut(|s| s.email(resend.notice, resend.invite, resend.key));
    }
    let at = now(ctx);
    let (before, starts_before) =
        ctx.state(|s| (s.session.snapshot().state, s.session.snapshot().starts_at));
    ctx.state_mut(|s| s.session.apply(&transition, at));
    for (notice, key) in ctx.state(|s| s.session.notices_after(&transition)) {
        ctx.state_mut(|s| s.tell(notice, key));
    }
    let (state, starts_at) =
        ctx.state(|s| (s.session.snapshot().state, s.session.snapshot().starts_at));
    if starts_at != starts_before {
        let start: std::time::SystemTime = starts_at.into();
        ctx.upsert_search_attributes([attributes::SESSION_STARTS_AT.value_set(start.into())]);
    }
    let entered = state != before || matches!(transition, Transition::End(_));
    if entered {
        ctx.upsert_search_attributes([attributes::SESSION_STATE.value_set(state.to_string())]);
        publish_state(ctx);
    }
    record_changes(ctx).await
}

/// One effect of a transition, as an activity; the rules then hear what it did.
async fn perform(ctx: &Ctx, effect: Effect) -> WorkflowResult<()> {
    match effect {
        Effect::OpenRoom => open_room(ctx).await,
        Effect::SettleCredit(to) => settle_credit(ctx, to).await,
        Effect::ChargeFee(kind) => {
            let charge = ctx.state(|s| fee_charge(&s.session, kind));
            let status = charge_fee(ctx, charge).await?;
            let at = now(ctx);
            ctx.state_mut(|s| s.session.fee_recorded(kind, status, at));
            Ok(())
        }
        Effect::WaiveFee(kind, waiver) => {
            let fee = ctx.state(|s| fee_charge(&s.session, kind));
            let status = ctx
                .execute_activity(
                    BillingActivities::waive_fee,
                    FeeWaiver { fee, waiver },
                    step_options("post the fee and waive it"),
                )
                .await?;
            let at = now(ctx);
            ctx.state_mut(|s| s.session.fee_recorded(kind, status, at));
            Ok(())
        }
        Effect::AuthorizeNext => {
            let grant = ctx.state(|s| {
                let session = s.session.snapshot();
                session.next_authorization.as_ref().map(|next| AuthorizationGrant {
                    key: s.session.authorization_key(),
                    client_id: session.client_id,
                    session_id: session.id,
                    estimate: next.estimate,
                })
            });
            if let Some(grant) = grant {
                ctx.execute_activity(
                    BillingActivities::authorize_next,
                    grant,
                    step_options("record the next session's authorization"),
                )
                .await?;
            }
            Ok(())
        }
    }
}

/// The session's fee of `kind` ([`Session::fee_amount`]), under its key.
fn fee_charge(session: &Session, kind: livesessions_domain::FeeKind) -> FeeCharge {
    let snapshot = session.snapshot();
    FeeCharge {
        key: session.fee_key(kind),
        client_id: snapshot.client_id,
        session_id: snapshot.id,
        kind,
        amount: session.fee_amount(kind),
    }
}

/// Moves the session's reserved credit to `to`; an insurance session that took place records
/// the insurer's part as a claim receivable in the same step.
async fn settle_credit(ctx: &Ctx, to: CreditStatus) -> WorkflowResult<()> {
    let (session_id, held, claim) = ctx.state(|s| {
        (s.session.snapshot().id, s.session.snapshot().credit, s.session.insurer_claim(to))
    });
    let Some(held) = held.filter(|c| c.status == CreditStatus::Reserved) else {
        return Ok(());
    };
    let movement = CreditMove { session_id, credit_id: held.id, to, claim };
    ctx.execute_activity(
        BillingActivities::settle_credit,
        movement,
        step_options("settle the credit"),
    )
    .await?;
    ctx.state_mut(|s| s.session.credit_settled(to));
    Ok(())
}

/// Charges a fee (the session's full cost, or an insurance session's copay), once per key, for the processor and the ledger
/// alike. A declined card leaves it outstanding; a processor that stays unreachable through the
/// bounded retries leaves it outstanding too, never lost.
async fn charge_fee(
    ctx: &Ctx,
    charge: FeeCharge,
) -> WorkflowResult<livesessions_domain::FeeStatus> {
    match ctx.execute_activity(BillingActivities::charge_fee, charge.clone(), fee_options()).await {
        Ok(status) => Ok(status),
        Err(ActivityExecutionError::Failed(_)) => Ok(ctx
            .execute_activity(
                BillingActivities::record_unpaid_fee,
                charge,
                step_options("record the fee as outstanding"),
            )
            .await?),
        Err(other) => Err(other.into()),
    }
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

/// Options for an activity that talks to the database or another service: retried with
/// backoff until it succeeds, because every activity here is idempotent.
pub(crate) fn step_options(summary: &str) -> ActivityOptions {
    ActivityOptions::with_start_to_close_timeout(Duration::from_secs(30))
        .retry_policy(backoff_policy())
        .summary(summary.to_string())
        .build()
}

/// Retried from 1 s, doubling to a minute, without end: every step here is idempotent. (A step
/// that may run while a change arrives stays a regular activity: a workflow running a local
/// activity hears no update until it ends, so a second change would wait instead of being
/// refused at once.)
pub(crate) fn backoff_policy() -> RetryPolicy {
    RetryPolicy::builder()
        .initial_interval(Duration::from_secs(1))
        .backoff_coefficient(2.0)
        .maximum_interval(Duration::from_secs(60))
        .build()
}

fn now(ctx: &Ctx) -> DateTime<Utc> {
    ctx.workflow_time().map(Into::into).unwrap_or_default()
}

fn snapshot(ctx: &Ctx) -> SessionSnapshot {
    ctx.state(|s| s.session.snapshot().clone())
}

/// The timer the loop sleeps on, kept across its steps: a wait for the same deadline (after a
/// join or a refused change woke the loop) goes on with the same timer instead of cancelling it
/// and starting another, which would cost two history events each time.
#[derive(Default)]
struct Alarm<'a> {
    set: Option<(Deadline, Timer<'a>)>,
}

/// A running workflow timer.
type Timer<'a> = Pin<Box<dyn CancellableFuture<Output = TimerResult> + 'a>>;

impl<'a> Alarm<'a> {
    /// The timer for `deadline`: the one already set for it, or a new one (cancelling, not
    /// dropping, one set for another deadline).
    fn for_deadline(&mut self, ctx: &'a Ctx, deadline: Deadline) -> &mut Timer<'a> {
        if self.set.as_ref().is_some_and(|(set_for, _)| *set_for != deadline) {
            self.clear();
        }
        let (_, timer) = self.set.get_or_insert_with(|| {
            // Whole milliseconds, rounded up: the timer never fires before the deadline.
            let remaining = (deadline.at - now(ctx)).num_microseconds().unwrap_or(i64::MAX);
            let millis = u64::try_from(remaining.max(1)).unwrap_or(1).div_ceil(1000);
            let options = TimerOptions::builder(Duration::from_millis(millis))
                .summary(deadline.event.name().to_string())
                .build();
            (deadline, Box::pin(ctx.timer(options)))
        });
        timer
    }

    /// Cancels the timer, if one is set and has not fired.
    fn clear(&mut self) {
        if let Some((_, timer)) = self.set.take() {
            timer.cancel();
        }
    }
}

/// Waits until `deadline`, or until something other than time asks for the loop (a change, a
/// join, the room's end); records the changes signals made meanwhile. A timer still running when
/// the wait ends early stays set for the next wait (see [`Alarm`]).
async fn wait<'a>(
    ctx: &'a Ctx,
    deadline: Option<Deadline>,
    alarm: &mut Alarm<'a>,
) -> WorkflowResult<()> {
    let wake = |s: &LiveSession| !s.session.awaits_only_time() || s.has_unrecorded_changes();
    match deadline {
        None => {
            alarm.clear();
            ctx.wait_condition(wake).await?;
        }
        Some(deadline) => {
            let mut timer = alarm.for_deadline(ctx, deadline);
            let fired = select! {
                woken = ctx.wait_condition(wake) => {
                    woken?;
                    None
                }
                fired = timer => Some(fired),
            };
            if let Some(fired) = fired {
                alarm.set = None;
                if let TimerResult::Cancelled = fired {
                    return Err(WorkflowTermination::cancelled());
                }
            }
        }
    }
    record_changes(ctx).await
}

/// Writes the snapshot to the read model, with the deliveries that report it, until it has the
/// newest version and the outbox has every delivery.
async fn record_changes(ctx: &Ctx) -> WorkflowResult<()> {
    while ctx.state(LiveSession::has_unrecorded_changes) {
        let record = ctx.state_mut(|s| SessionRecord {
            snapshot: s.session.snapshot().clone(),
            room_messages: std::mem::take(&mut s.room_messages),
            deliveries: std::mem::take(&mut s.deliveries),
        });
        let version = record.snapshot.version;
        ctx.execute_local_activity(
            StorageActivities::record_session,
            record,
            LocalActivityOptions::builder().start_to_close_timeout(Duration::from_secs(10)).build(),
        )
        .await?;
        ctx.state_mut(|s| s.recorded_version = s.recorded_version.max(version));
    }
    Ok(())
}

/// Tells backend services of the session as it now is (one event per state change), when they
/// asked for events: the event goes to the outbox with the record of the state.
fn publish_state(ctx: &Ctx) {
    let at = now(ctx);
    ctx.state_mut(|s| {
        if s.webhooks {
            let event = WebhookEvent {
                id: s.session.event_key(),
                kind: "session.state_changed".into(),
                occurred_at: at,
                session: s.session.snapshot().clone(),
            };
            s.deliver(event.id.clone(), DeliveryInput::Webhook(event));
        }
    });
}

/// The room and one join link per person, working from shortly before the start until the
/// grace period ends (moved when the session is rescheduled and confirmed again).
async fn open_room(ctx: &Ctx) -> WorkflowResult<()> {
    let request = ctx.state(|s| {
        let session = s.session.snapshot();
        let (opens_at, closes_at) = s.session.policy().join_window(session.starts_at);
        RoomRequest {
            session_id: session.id,
            client_id: session.client_id,
            provider_id: session.provider_id,
            opens_at,
            closes_at,
        }
    });
    ctx.execute_activity(MediaActivities::open_room, request, step_options("open the media room"))
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A running session's input is read back by later releases: a policy key added since
    /// (unknown to this code) is ignored, and one this code has that the input lacks takes its
    /// default.
    #[test]
    fn an_input_from_another_release_reads_back() {
        let input = LiveSessionInput {
            session_id: SessionId::random(),
            booking: serde_json::from_value(serde_json::json!({
                "client_id": livesessions_domain::ClientId::random(),
                "provider_id": livesessions_domain::ProviderId::random(),
                "service": "therapy", "modality": "video", "duration_minutes": 45,
                "starts_at": "2026-12-01T10:00:00Z", "time_zone": "Europe/London",
                "accept_cancellation_policy": true,
            }))
            .expect("a booking"),
            coverage: Coverage::Subscription,
            terms: SessionTerms {
                price: Money::new(8_500, livesessions_domain::Currency::parse("USD").unwrap()),
                estimate: None,
            },
            purchase: None,
            policy: Policy::default(),
            webhooks: false,
        };
        let mut json = serde_json::to_value(&input).unwrap();
        let policy = json["policy"].as_object_mut().unwrap();
        policy.insert("a_key_added_later".into(), serde_json::json!("3d"));
        policy.remove("join_grace");
        let read: LiveSessionInput = serde_json::from_value(json).expect("it reads back");
        assert_eq!(read, input);
    }
}
