//! The rules of one live session as a pure state machine: DOMAIN.md's lifecycle, its late
//! cancellation and no-show rules, and "one change at a time".
//!
//! [`Session`] holds everything the rules look at: the snapshot the API shows, the change in
//! flight, the booking round, the reminders sent. The `LiveSession` workflow only orchestrates:
//! it asks [`Session::next_step`] what to do, carries out the effects of the
//! [`Transition`] the rules decide (activities), and calls [`Session::apply`]. A change someone
//! asks for is claimed at once ([`Session::claim`]): while one is in flight, another is refused
//! with `409 change_in_progress`.
//!
//! **The written rule for deadlines.** A change is judged at the moment the loop takes it up,
//! after every deadline and fact already due then (a confirmation that arrives after the window
//! closed finds the session expired). Once taken up, it is carried out to its end; deadlines are
//! then judged against the state it produced, at the time it finished (a reschedule whose new
//! time is being held when the old window closes moves the session; it does not expire it).
//! Lateness is judged when the change is taken up, not when it was asked for.

use crate::notice::{Invite, InviteMethod, Notice};
use crate::policy::delta;
use crate::{
    BookingRequest, Coverage, CreditId, CreditStatus, CreditUse, Fee, FeeKind, FeeStatus, Joined,
    Modality, Money, NextAuthorization, Outcome, Party, Policy, Refusal, RefusalCode, SessionId,
    SessionSnapshot, SessionState, SessionTerms, StateChange, WaiverId,
};
use chrono::{DateTime, TimeDelta, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::time::Duration;

/// One person's arrival in the room, from their join link or the media service.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Join {
    /// Who joined.
    pub party: Party,
    /// When.
    pub at: DateTime<Utc>,
}

/// The client's request to move the session (the body of `POST /v1/sessions/{id}/reschedule`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Reschedule {
    /// The new start.
    pub starts_at: DateTime<Utc>,
    /// The client agrees to the cancellation policy (needed for every reschedule).
    pub accept_cancellation_policy: bool,
    /// A modality, if the caller sent one: any other than the booked one is refused.
    #[serde(default)]
    pub modality: Option<Modality>,
}

/// Who cancels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cancel {
    /// The client (or a service on their behalf) or the provider (or a service on theirs).
    pub by: Party,
}

/// What an operator decides about the fee a cancellation on the client's behalf would charge.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FeeDecision {
    /// As the policy says: a late cancellation is charged its fee.
    Charge,
    /// Not charged: the fee a late cancellation owes is posted and waived at once under this
    /// waiver, as finance waives an outstanding fee.
    Waive(WaiverId),
}

/// An operator cancels on someone's behalf, with an explicit decision about the fee.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct OperatorCancel {
    /// For whom: the client (then the policy's lateness applies) or the provider (never costs
    /// the client).
    pub on_behalf_of: Party,
    /// Charge or waive the fee a late cancellation for the client owes.
    pub fee: FeeDecision,
}

/// How an operator ends a session that is stuck.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum OperatorEnding {
    /// It took place (the room never said so): the credit is consumed.
    Completed,
    /// It did not take place: the credit comes back and nobody is charged.
    Cancelled,
}

/// A change someone asks for. One at a time per session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// The provider confirms the request.
    Confirm,
    /// The provider declines the request.
    Decline,
    /// The client moves the session.
    Reschedule(Reschedule),
    /// The client or the provider cancels.
    Cancel(Cancel),
    /// The provider cannot attend.
    ProviderUnavailable,
    /// The insurance client authorizes the next session.
    AuthorizeNext,
    /// An operator cancels on someone's behalf.
    OperatorCancel(OperatorCancel),
    /// An operator ends a stuck session.
    OperatorEnd(OperatorEnding),
    /// An operator sends the last notice's email again.
    ResendNotice,
}

impl Change {
    /// Its name, as the API's path says it.
    pub const fn name(&self) -> &'static str {
        match self {
            Change::Confirm => "confirm",
            Change::Decline => "decline",
            Change::Reschedule(_) => "reschedule",
            Change::Cancel(Cancel { by: Party::Client }) => "cancel by the client",
            Change::Cancel(Cancel { by: Party::Provider }) => "cancel by the provider",
            Change::ProviderUnavailable => "provider_unavailable",
            Change::AuthorizeNext => "authorize_next",
            Change::OperatorCancel(OperatorCancel { on_behalf_of: Party::Client, .. }) => {
                "operator cancel for the client"
            }
            Change::OperatorCancel(OperatorCancel { on_behalf_of: Party::Provider, .. }) => {
                "operator cancel for the provider"
            }
            Change::OperatorEnd(OperatorEnding::Completed) => "operator end (completed)",
            Change::OperatorEnd(OperatorEnding::Cancelled) => "operator end (cancelled)",
            Change::ResendNotice => "resend notice",
        }
    }
}

/// The number a claimed change is answered under.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Ticket(u64);

/// Something that moves the session without anyone asking: a deadline passed or the room said
/// something.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Event {
    /// The provider did not answer within the confirmation window.
    ConfirmationWindowClosed,
    /// One or more reminders are due.
    RemindersDue,
    /// Both have joined.
    BothJoined,
    /// The grace period after the start ended before both joined.
    JoinGraceEnded,
    /// The media room ended.
    RoomEnded,
    /// The booked length plus the completion margin passed after both joined.
    CompletionMarginElapsed,
    /// The offer to reschedule after a provider's absence lapsed.
    RescheduleOfferLapsed,
    /// The window to authorize the next insurance session closed.
    AuthorizationWindowClosed,
}

impl Event {
    /// Its name, for timer summaries and the state diagram.
    pub const fn name(&self) -> &'static str {
        match self {
            Event::ConfirmationWindowClosed => "confirmation window closes",
            Event::RemindersDue => "reminder due",
            Event::BothJoined => "both joined",
            Event::JoinGraceEnded => "join grace ends",
            Event::RoomEnded => "room ends",
            Event::CompletionMarginElapsed => "length + margin pass",
            Event::RescheduleOfferLapsed => "reschedule offer lapses",
            Event::AuthorizationWindowClosed => "authorization window closes",
        }
    }
}

/// When the next deadline falls, and what it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Deadline {
    /// When.
    pub at: DateTime<Utc>,
    /// What happens then.
    pub event: Event,
}

/// What the workflow's loop does next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Step 1: hold the booking and a credit.
    Hold,
    /// A deadline passed or a fact arrived: decide it with [`Session::decide_event`].
    Handle(Event),
    /// Carry out the change in flight: decide it with [`Session::decide_change`].
    CarryOut(Ticket, Change),
    /// Nothing to do until the deadline (if any), a change or a fact.
    Wait(Option<Deadline>),
    /// The session's story has ended.
    Finished,
}

/// How a session ends: its final state, why, where the credit goes, the fee if one is due and
/// what the client is told. [`Session::ending`] is the table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ending {
    /// The final state.
    pub state: SessionState,
    /// Why.
    pub outcome: Outcome,
    /// Where the reserved credit goes.
    pub credit: CreditStatus,
    /// The fee charged, if any: the session's full price, or an insurance session's copay.
    pub fee: Option<FeeKind>,
    /// The operator's waiver of that fee: posted and waived at once, never charged.
    pub waiver: Option<WaiverId>,
    /// What the client is told.
    pub notice: Option<Notice>,
}

impl Ending {
    /// This ending with its fee waived under `waiver` (an operator's decision): nothing is
    /// charged, and the client is told so.
    fn fee_waived(self, waiver: WaiverId) -> Self {
        let notice = match self.notice {
            Some(Notice::LateCancelled { fee }) => Some(Notice::LateCancelledFeeWaived { fee }),
            other => other,
        };
        Self { waiver: self.fee.map(|_| waiver), notice, ..self }
    }
}

/// A notice's email sent again by an operator, under a key of its own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resend {
    /// The notice last sent.
    pub notice: Notice,
    /// The calendar invite it carried.
    pub invite: Option<Invite>,
    /// `<workflow id>:<notice>:resend<n>`: each resend is delivered once.
    pub key: String,
}

/// What a step does, as the rules decide it. The workflow carries out [`Transition::effects`],
/// then [`Session::apply`], then posts [`Session::notice_after`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Transition {
    /// The provider confirmed: the room is opened, the session is confirmed.
    Confirm,
    /// The session ends (see [`Ending`]).
    End(Ending),
    /// The session moves to a new time, requested again. Late: the fee is charged, the old
    /// credit forfeited, and `replacement` (held with the new time) takes its place.
    Reschedule {
        /// The new start.
        starts_at: DateTime<Utc>,
        /// Judged when the change was taken up.
        late: bool,
        /// The credit held for the new time by a late reschedule.
        replacement: Option<CreditId>,
    },
    /// The provider is absent (no-show or unavailable): the client keeps the credit and is
    /// offered a reschedule.
    Absence(SessionState),
    /// Both joined: the session is in progress.
    Begin,
    /// The reminders for these offsets go out (one message, for the closest).
    Remind(Vec<Duration>),
    /// The next insurance session is authorized.
    AuthorizeNext,
    /// The next session's authorization lapsed.
    LapseAuthorization,
    /// The last notice's email goes out again; nothing else changes.
    Resend(Resend),
}

/// An effect a transition has before its state is entered; each is an idempotent activity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effect {
    /// Create the media room and its join tokens.
    OpenRoom,
    /// Move the reserved credit; then [`Session::credit_settled`].
    SettleCredit(CreditStatus),
    /// Charge [`Session::fee_amount`] as a fee, under [`Session::fee_key`]; then
    /// [`Session::fee_recorded`].
    ChargeFee(FeeKind),
    /// Post the fee under [`Session::fee_key`] as owed and waive it at once under the waiver
    /// (finance's waiver, `fee_waived`); then [`Session::fee_recorded`] as waived.
    WaiveFee(FeeKind, WaiverId),
    /// Record the next session's authorization, under [`Session::authorization_key`].
    AuthorizeNext,
}

impl Transition {
    /// The effects to carry out, in order, before the state changes.
    pub fn effects(&self) -> Vec<Effect> {
        match self {
            Transition::Confirm => vec![Effect::OpenRoom],
            Transition::End(ending) => {
                let mut effects = vec![Effect::SettleCredit(ending.credit)];
                effects.extend(ending.fee.map(|kind| match ending.waiver {
                    Some(waiver) => Effect::WaiveFee(kind, waiver),
                    None => Effect::ChargeFee(kind),
                }));
                effects
            }
            Transition::Reschedule { late: true, .. } => vec![
                Effect::ChargeFee(FeeKind::LateCancelFee),
                Effect::SettleCredit(CreditStatus::Forfeited),
            ],
            Transition::AuthorizeNext => vec![Effect::AuthorizeNext],
            Transition::Reschedule { late: false, .. }
            | Transition::Absence(_)
            | Transition::Begin
            | Transition::Remind(_)
            | Transition::LapseAuthorization
            | Transition::Resend(_) => Vec::new(),
        }
    }
}

/// The rules and the state of one live session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    snapshot: SessionSnapshot,
    policy: Policy,
    terms: SessionTerms,
    /// Step 1's answer: `Some(Ok)` once held.
    held: Option<Result<(), Refusal>>,
    in_flight: Option<(Ticket, Change)>,
    tickets: u64,
    answers: BTreeMap<Ticket, Result<SessionSnapshot, Refusal>>,
    /// The booking round: 0 at booking, one more with every reschedule. Keys of effects that
    /// happen once per booked time carry it, so moving away and back never repeats a key.
    round: u32,
    /// Offsets reminded of in this round.
    reminded: Vec<Duration>,
    room_ended: bool,
    /// When the offer to reschedule after a provider's absence lapses.
    offer_lapses_at: Option<DateTime<Utc>>,
    /// Whether a calendar invite went out, and its `SEQUENCE`.
    invited: bool,
    invite_sequence: u32,
    /// The last notice told, with its invite, and how often an operator sent it again.
    last_told: Option<(Notice, Option<Invite>)>,
    resends: u32,
}

fn conflict(state: SessionState, what: &str) -> Refusal {
    Refusal::new(
        RefusalCode::SessionStateConflict,
        format!("the session is {state} and cannot be {what}"),
    )
}

impl Session {
    /// A session requested at `requested_at`; the confirmation window starts then.
    pub fn new(
        id: SessionId,
        booking: &BookingRequest,
        coverage: Coverage,
        terms: SessionTerms,
        policy: Policy,
        requested_at: DateTime<Utc>,
    ) -> Self {
        let snapshot = SessionSnapshot {
            id,
            workflow_id: id.workflow_id(),
            state: SessionState::Requested,
            client_id: booking.client_id,
            provider_id: booking.provider_id,
            service: booking.service,
            modality: booking.modality,
            duration_minutes: booking.duration_minutes,
            starts_at: booking.starts_at,
            time_zone: booking.time_zone,
            confirm_by: policy.confirm_by(requested_at, booking.starts_at),
            coverage,
            credit: None,
            joined: Joined::default(),
            outcome: None,
            fees: Vec::new(),
            next_authorization: None,
            history: vec![StateChange { state: SessionState::Requested, at: requested_at }],
            version: 1,
        };
        Self {
            snapshot,
            policy,
            terms,
            held: None,
            in_flight: None,
            tickets: 0,
            answers: BTreeMap::new(),
            round: 0,
            reminded: Vec::new(),
            room_ended: false,
            offer_lapses_at: None,
            invited: false,
            invite_sequence: 0,
            last_told: None,
            resends: 0,
        }
    }

    /// The session as the API shows it.
    pub fn snapshot(&self) -> &SessionSnapshot {
        &self.snapshot
    }

    /// The policy it keeps until it ends.
    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// Its price and insurance estimate.
    pub fn terms(&self) -> &SessionTerms {
        &self.terms
    }

    /// Step 1's answer, once known: held, or why not.
    pub fn booking_answer(&self) -> Option<&Result<(), Refusal>> {
        self.held.as_ref()
    }

    /// The booking round (see the field).
    pub fn round(&self) -> u32 {
        self.round
    }

    /// The change being carried out, if any.
    pub fn in_flight(&self) -> Option<&(Ticket, Change)> {
        self.in_flight.as_ref()
    }

    /// Whether the story has ended: a final state, and nothing more to wait for.
    pub fn is_finished(&self) -> bool {
        matches!(self.next_step(DateTime::<Utc>::MIN_UTC), Step::Finished)
    }

    /// Whether only time can move the session now: no change in flight, no fact waiting to be
    /// acted on (both joined, the room ended), not finished.
    pub fn awaits_only_time(&self) -> bool {
        matches!(self.next_step(DateTime::<Utc>::MIN_UTC), Step::Wait(_))
    }

    /// When the join grace period ends for the current start.
    fn grace_ends(&self) -> DateTime<Utc> {
        self.policy.join_window(self.snapshot.starts_at).1
    }

    fn is_held(&self) -> bool {
        matches!(self.held, Some(Ok(())))
    }

    /// A client's change at `now` is late when the session is confirmed and starts within
    /// `policy.late_cancel_window`. An unconfirmed request, or one the provider left, is never late.
    pub fn is_late(&self, now: DateTime<Utc>) -> bool {
        self.snapshot.state == SessionState::Confirmed
            && self.policy.is_late(now, self.snapshot.starts_at)
    }

    // ----- Step 1 -------------------------------------------------------------------------

    /// The booking and `credit` are held.
    pub fn held(&mut self, credit: CreditId) {
        self.held = Some(Ok(()));
        self.snapshot.credit = Some(CreditUse { id: credit, status: CreditStatus::Reserved });
        self.snapshot.version += 1;
    }

    /// The booking was refused; nothing was held.
    pub fn refused(&mut self, refusal: Refusal) {
        self.held = Some(Err(refusal));
        self.snapshot.outcome = Some(Outcome::BookingRefused);
    }

    // ----- Facts from the room ------------------------------------------------------------

    /// Someone arrived in the room; only the first join of each person, while the session is
    /// confirmed or in progress, counts. Answers whether it changed anything.
    pub fn join(&mut self, join: Join) -> bool {
        let joinable =
            matches!(self.snapshot.state, SessionState::Confirmed | SessionState::InProgress);
        if joinable && self.snapshot.joined.at(join.party).is_none() {
            self.snapshot.joined.record(join.party, join.at);
            self.snapshot.version += 1;
            return true;
        }
        false
    }

    /// The media room ended. Counts once the room exists (confirmed or in progress).
    pub fn room_ended(&mut self) {
        if matches!(self.snapshot.state, SessionState::Confirmed | SessionState::InProgress) {
            self.room_ended = true;
        }
    }

    // ----- Changes: one at a time ---------------------------------------------------------

    /// Whether `change` may be asked for now, judged against the state *and* the change in
    /// flight (the update validators call this).
    pub fn admit(&self, change: &Change) -> Result<(), Refusal> {
        if let Some((_, current)) = &self.in_flight {
            return Err(Refusal::new(
                RefusalCode::ChangeInProgress,
                format!(
                    "another change ({}) is being carried out; ask again once it is done",
                    current.name()
                ),
            ));
        }
        self.allows(change)
    }

    /// Whether the session's state allows `change`, regardless of the change in flight.
    fn allows(&self, change: &Change) -> Result<(), Refusal> {
        let state = self.snapshot.state;
        let open = self.is_held() && self.snapshot.outcome.is_none();
        match change {
            Change::Confirm | Change::Decline => {
                if open && state == SessionState::Requested {
                    Ok(())
                } else {
                    Err(Refusal::new(
                        RefusalCode::NotAwaitingConfirmation,
                        format!("the session is {state}, not awaiting the provider's answer"),
                    ))
                }
            }
            Change::Reschedule(request) => {
                if !(open && state.is_changeable()) {
                    return Err(conflict(state, "rescheduled"));
                }
                match request.modality {
                    Some(modality) if modality != self.snapshot.modality => Err(Refusal::new(
                        RefusalCode::ModalityChangeRequiresRebooking,
                        format!(
                            "a booked {} session cannot change modality: cancel it and book again",
                            self.snapshot.modality
                        ),
                    )),
                    _ => Ok(()),
                }
            }
            Change::Cancel(_) | Change::OperatorCancel(_) if open && state.is_changeable() => {
                Ok(())
            }
            Change::Cancel(_) | Change::OperatorCancel(_) => Err(conflict(state, "cancelled")),
            Change::OperatorEnd(OperatorEnding::Completed)
                if open && matches!(state, SessionState::Confirmed | SessionState::InProgress) =>
            {
                Ok(())
            }
            Change::OperatorEnd(OperatorEnding::Completed) => {
                Err(conflict(state, "ended as completed"))
            }
            Change::OperatorEnd(OperatorEnding::Cancelled)
                if open && (state.is_changeable() || state == SessionState::InProgress) =>
            {
                Ok(())
            }
            Change::OperatorEnd(OperatorEnding::Cancelled) => Err(conflict(state, "ended")),
            Change::ResendNotice if self.is_held() && self.last_told.is_some() => Ok(()),
            Change::ResendNotice => Err(conflict(state, "sent a notice again: none was sent")),
            Change::ProviderUnavailable if open && state.holds_slot() => Ok(()),
            Change::ProviderUnavailable => Err(conflict(state, "marked unavailable")),
            Change::AuthorizeNext => match &self.snapshot.next_authorization {
                Some(next) if next.lapsed => Err(Refusal::new(
                    RefusalCode::AuthorizationWindowClosed,
                    format!(
                        "the next session could be authorized until {}",
                        next.authorize_by.to_rfc3339()
                    ),
                )),
                Some(next) if next.authorized_at.is_some() => {
                    Err(conflict(state, "authorized twice"))
                }
                Some(_) => Ok(()),
                None => Err(Refusal::new(
                    RefusalCode::SessionStateConflict,
                    format!(
                        "the session is {state}: the next session's authorization is offered once an insurance session has used its authorization (completed, client no-show, late cancellation)"
                    ),
                )),
            },
        }
    }

    /// Claims the one slot for a change: admitted against the state and the change in flight,
    /// it becomes the change in flight and gets the ticket its answer comes under.
    pub fn claim(&mut self, change: Change) -> Result<Ticket, Refusal> {
        self.admit(&change)?;
        self.tickets += 1;
        let ticket = Ticket(self.tickets);
        self.in_flight = Some((ticket, change));
        Ok(ticket)
    }

    /// The change in flight is done: its answer is the session as it now is (or the refusal),
    /// and the slot is free for the next one.
    pub fn answer(&mut self, ticket: Ticket, answer: Result<(), Refusal>) {
        if self.in_flight.is_some_and(|(current, _)| current == ticket) {
            self.in_flight = None;
        }
        self.answers.insert(ticket, answer.map(|()| self.snapshot.clone()));
    }

    /// Whether the answer for `ticket` is ready.
    pub fn is_answered(&self, ticket: Ticket) -> bool {
        self.answers.contains_key(&ticket)
    }

    /// Takes the answer for `ticket`, once ready.
    pub fn take_answer(&mut self, ticket: Ticket) -> Option<Result<SessionSnapshot, Refusal>> {
        self.answers.remove(&ticket)
    }

    // ----- What next ----------------------------------------------------------------------

    /// What the loop does next at `now`: step 1, then every deadline or fact already due, then
    /// the change in flight, else a wait.
    pub fn next_step(&self, now: DateTime<Utc>) -> Step {
        match &self.held {
            None => return Step::Hold,
            Some(Err(_)) => return Step::Finished,
            Some(Ok(())) => {}
        }
        match self.due(now) {
            Ok(event) => Step::Handle(event),
            Err(next) => match self.in_flight {
                Some((ticket, change)) => Step::CarryOut(ticket, change),
                None if next.is_none() && self.snapshot.outcome.is_some() => Step::Finished,
                None => Step::Wait(next),
            },
        }
    }

    /// The event due at `now`, or the next deadline.
    fn due(&self, now: DateTime<Utc>) -> Result<Event, Option<Deadline>> {
        let s = &self.snapshot;
        let at = |at: DateTime<Utc>, event| {
            if at <= now { Ok(event) } else { Err(Some(Deadline { at, event })) }
        };
        if s.outcome.is_some() {
            // Ended: only the offer of the next insurance session's authorization is open.
            return match &s.next_authorization {
                Some(next) if next.authorized_at.is_none() && !next.lapsed => {
                    at(next.authorize_by, Event::AuthorizationWindowClosed)
                }
                _ => Err(None),
            };
        }
        match s.state {
            SessionState::Requested => at(s.confirm_by, Event::ConfirmationWindowClosed),
            SessionState::Confirmed => {
                if s.joined.both().is_some() {
                    return Ok(Event::BothJoined);
                }
                let grace = at(self.grace_ends(), Event::JoinGraceEnded);
                match self.next_reminder() {
                    Some(remind_at) if remind_at < self.grace_ends() => {
                        at(remind_at, Event::RemindersDue)
                    }
                    _ => grace,
                }
            }
            SessionState::InProgress if self.room_ended => Ok(Event::RoomEnded),
            SessionState::InProgress => at(self.completes_by(), Event::CompletionMarginElapsed),
            SessionState::ProviderNoShow | SessionState::ProviderUnavailable => {
                at(self.offer_lapses_at.unwrap_or(now), Event::RescheduleOfferLapsed)
            }
            _ => Err(None),
        }
    }

    /// The earliest reminder not yet sent for the current start.
    fn next_reminder(&self) -> Option<DateTime<Utc>> {
        let pending = self.policy.reminder_offsets.iter().filter(|o| !self.reminded.contains(o));
        pending.map(|offset| self.snapshot.starts_at - delta(*offset)).min()
    }

    /// When an in-progress session completes on its own: the booked length plus the margin
    /// after it began (the later of the start and the second join).
    fn completes_by(&self) -> DateTime<Utc> {
        let s = &self.snapshot;
        let began = s.starts_at.max(s.joined.both().unwrap_or(s.starts_at));
        began
            + TimeDelta::minutes(i64::from(s.duration_minutes))
            + delta(self.policy.completion_margin)
    }

    // ----- Decisions ----------------------------------------------------------------------

    /// The ending table: how a session ends for `outcome`.
    pub fn ending(&self, outcome: Outcome) -> Ending {
        use {CreditStatus as C, SessionState as S};
        let fee = self.terms.price;
        let (state, credit, charge, notice) = match outcome {
            Outcome::BookingRefused => (S::Requested, C::Released, None, None),
            Outcome::ProviderDeclined => (S::Declined, C::Released, None, Some(Notice::Declined)),
            Outcome::ConfirmationWindowClosed => {
                (S::Expired, C::Released, None, Some(Notice::Expired))
            }
            Outcome::ClientCancelled | Outcome::ProviderCancelled => {
                (S::Cancelled, C::Released, None, Some(Notice::Cancelled))
            }
            Outcome::ClientCancelledLate => (
                S::LateCancelled,
                C::Forfeited,
                Some(FeeKind::LateCancelFee),
                Some(Notice::LateCancelled { fee }),
            ),
            Outcome::ClientDidNotJoin => (
                S::ClientNoShow,
                C::Forfeited,
                Some(FeeKind::NoShowFee),
                Some(Notice::ClientNoShow { fee }),
            ),
            Outcome::ProviderDidNotJoin => {
                (S::ProviderNoShow, C::Released, None, Some(Notice::RescheduleOfferLapsed))
            }
            Outcome::ProviderWasUnavailable => {
                (S::ProviderUnavailable, C::Released, None, Some(Notice::RescheduleOfferLapsed))
            }
            // The session took place (the room ended, the margin passed, or an operator ended
            // it once begun): an insurance session collects its copay.
            Outcome::RoomEnded
            | Outcome::CompletionMarginElapsed
            | Outcome::CompletedByOperator => (S::Completed, C::Consumed, self.copay_due(), None),
            Outcome::CancelledByOperator => {
                (S::Cancelled, C::Released, None, Some(Notice::Cancelled))
            }
        };
        Ending { state, outcome, credit, fee: charge, waiver: None, notice }
    }

    /// An insurance session that took place collects the client's share, the estimate they
    /// authorized, once (nothing when the plan's copay is zero).
    fn copay_due(&self) -> Option<FeeKind> {
        let copay = self.terms.estimate.filter(|e| e.amount_minor > 0);
        (self.snapshot.coverage == Coverage::Insurance && copay.is_some()).then_some(FeeKind::Copay)
    }

    /// What a fee of `kind` charges: the session's full price for a late cancellation or a
    /// no-show, the estimate for a copay.
    pub fn fee_amount(&self, kind: FeeKind) -> Money {
        match kind {
            FeeKind::LateCancelFee | FeeKind::NoShowFee => self.terms.price,
            FeeKind::Copay => {
                self.terms.estimate.unwrap_or(Money::new(0, self.terms.price.currency))
            }
        }
    }

    /// The claim receivable recorded with an insurance session's authorization when it moves to
    /// `to`: the insurer's part ([`SessionTerms::insurer_part`]) once the session took place
    /// (consumed); nothing otherwise, nor when that part is zero.
    pub fn insurer_claim(&self, to: CreditStatus) -> Option<Money> {
        let took_place = to == CreditStatus::Consumed;
        let insured = self.snapshot.coverage == Coverage::Insurance;
        self.terms.insurer_part().filter(|part| took_place && insured && part.amount_minor > 0)
    }

    /// Decides the change in flight at `now`, judged on the state as it now is. A refusal
    /// here changes nothing.
    pub fn decide_change(
        &self,
        change: &Change,
        now: DateTime<Utc>,
    ) -> Result<Transition, Refusal> {
        self.allows(change)?;
        Ok(match change {
            Change::Confirm => Transition::Confirm,
            Change::Decline => Transition::End(self.ending(Outcome::ProviderDeclined)),
            Change::Reschedule(request) => {
                let late = self.is_late(now);
                if !request.accept_cancellation_policy {
                    return Err(if late {
                        Refusal::new(
                            RefusalCode::LateCancellationNotAccepted,
                            "rescheduling this close to the start is a late cancellation: the credit is lost and the fee charged; accept the cancellation policy to go on",
                        )
                    } else {
                        Refusal::new(
                            RefusalCode::CancellationPolicyNotAccepted,
                            "the client must agree to the cancellation policy (accept_cancellation_policy: true)",
                        )
                    });
                }
                crate::booking::check_start(request.starts_at, &self.policy, now)?;
                Transition::Reschedule { starts_at: request.starts_at, late, replacement: None }
            }
            Change::Cancel(Cancel { by: Party::Provider }) => {
                Transition::End(self.ending(Outcome::ProviderCancelled))
            }
            Change::Cancel(Cancel { by: Party::Client }) if self.is_late(now) => {
                Transition::End(self.ending(Outcome::ClientCancelledLate))
            }
            Change::Cancel(Cancel { by: Party::Client }) => {
                Transition::End(self.ending(Outcome::ClientCancelled))
            }
            Change::ProviderUnavailable => Transition::Absence(SessionState::ProviderUnavailable),
            Change::AuthorizeNext => Transition::AuthorizeNext,
            Change::OperatorCancel(OperatorCancel { on_behalf_of, fee }) => {
                let by = Change::Cancel(Cancel { by: *on_behalf_of });
                match (self.decide_change(&by, now)?, fee) {
                    (Transition::End(ending), FeeDecision::Waive(waiver)) => {
                        Transition::End(ending.fee_waived(*waiver))
                    }
                    (transition, _) => transition,
                }
            }
            Change::OperatorEnd(OperatorEnding::Completed)
                if self.snapshot.state == SessionState::Confirmed
                    && now < self.snapshot.starts_at =>
            {
                return Err(Refusal::new(
                    RefusalCode::SessionStateConflict,
                    format!(
                        "the session starts at {}: it cannot have taken place yet",
                        self.snapshot.starts_at.to_rfc3339()
                    ),
                ));
            }
            Change::OperatorEnd(OperatorEnding::Completed) => {
                Transition::End(self.ending(Outcome::CompletedByOperator))
            }
            Change::OperatorEnd(OperatorEnding::Cancelled) => {
                Transition::End(self.ending(Outcome::CancelledByOperator))
            }
            Change::ResendNotice => {
                let (notice, invite) = self.last_told.ok_or_else(|| {
                    conflict(self.snapshot.state, "sent a notice again: none was sent")
                })?;
                let key = format!(
                    "{}:{}:resend{}",
                    self.snapshot.workflow_id,
                    notice.step(),
                    self.resends + 1
                );
                Transition::Resend(Resend { notice, invite, key })
            }
        })
    }

    /// Decides an event that is due.
    pub fn decide_event(&self, event: Event, now: DateTime<Utc>) -> Transition {
        match event {
            Event::ConfirmationWindowClosed => {
                Transition::End(self.ending(Outcome::ConfirmationWindowClosed))
            }
            Event::RemindersDue => {
                let starts_at = self.snapshot.starts_at;
                let due = self
                    .policy
                    .reminder_offsets
                    .iter()
                    .filter(|o| !self.reminded.contains(o) && starts_at - delta(**o) <= now)
                    .copied()
                    .collect();
                Transition::Remind(due)
            }
            Event::BothJoined => Transition::Begin,
            // The client is never charged for a provider's absence: a provider who did not join
            // makes it the provider's no-show, whoever else came.
            Event::JoinGraceEnded if self.snapshot.joined.provider.is_none() => {
                Transition::Absence(SessionState::ProviderNoShow)
            }
            Event::JoinGraceEnded => Transition::End(self.ending(Outcome::ClientDidNotJoin)),
            Event::RoomEnded => Transition::End(self.ending(Outcome::RoomEnded)),
            Event::CompletionMarginElapsed => {
                Transition::End(self.ending(Outcome::CompletionMarginElapsed))
            }
            Event::RescheduleOfferLapsed => {
                let outcome = match self.snapshot.state {
                    SessionState::ProviderNoShow => Outcome::ProviderDidNotJoin,
                    _ => Outcome::ProviderWasUnavailable,
                };
                Transition::End(self.ending(outcome))
            }
            Event::AuthorizationWindowClosed => Transition::LapseAuthorization,
        }
    }

    // ----- Mutators: each bumps the version when it changes what the API shows -------------

    /// The reserved credit moved to `to`.
    pub fn credit_settled(&mut self, to: CreditStatus) {
        if let Some(credit) =
            self.snapshot.credit.as_mut().filter(|c| c.status == CreditStatus::Reserved)
        {
            credit.status = to;
            self.snapshot.version += 1;
        }
    }

    /// A fee was charged (or left outstanding) under [`Session::fee_key`].
    pub fn fee_recorded(&mut self, kind: FeeKind, status: FeeStatus, at: DateTime<Utc>) {
        let key = self.fee_key(kind);
        let amount = self.fee_amount(kind);
        self.snapshot.fees.push(Fee { kind, amount, key, status, at });
        self.snapshot.version += 1;
    }

    /// Applies a transition whose effects are done: the state it reports is entered at `now`.
    pub fn apply(&mut self, transition: &Transition, now: DateTime<Utc>) {
        match transition {
            Transition::Confirm => self.enter(SessionState::Confirmed, now),
            Transition::End(ending) => {
                self.snapshot.outcome = Some(ending.outcome);
                self.enter(ending.state, now);
                // The client's authorization is used up (the session took place, or was lost
                // to a no-show or a late cancellation): the next one is offered at once. An
                // authorization released by the ending comes back to the client instead.
                let used =
                    matches!(ending.credit, CreditStatus::Consumed | CreditStatus::Forfeited);
                let estimate = self
                    .terms
                    .estimate
                    .filter(|_| used && self.snapshot.coverage == Coverage::Insurance);
                if let Some(estimate) = estimate {
                    let authorize_by = now + delta(self.policy.reauthorization_window);
                    self.snapshot.next_authorization = Some(NextAuthorization {
                        estimate,
                        authorize_by,
                        authorized_at: None,
                        lapsed: false,
                    });
                }
            }
            Transition::Reschedule { starts_at, late, replacement } => {
                if *late {
                    self.snapshot.credit =
                        replacement.map(|id| CreditUse { id, status: CreditStatus::Reserved });
                }
                let s = &mut self.snapshot;
                s.starts_at = *starts_at;
                s.confirm_by = self.policy.confirm_by(now, *starts_at);
                s.joined = Joined::default();
                self.round += 1;
                self.reminded.clear();
                self.room_ended = false;
                self.enter(SessionState::Requested, now);
            }
            Transition::Absence(state) => {
                self.offer_lapses_at = Some(now + delta(self.policy.reschedule_offer_window));
                self.enter(*state, now);
            }
            Transition::Begin => self.enter(SessionState::InProgress, now),
            Transition::Remind(offsets) => self.reminded.extend(offsets),
            Transition::AuthorizeNext => {
                if let Some(next) = self.snapshot.next_authorization.as_mut() {
                    next.authorized_at = Some(now);
                    self.snapshot.version += 1;
                }
            }
            Transition::LapseAuthorization => {
                if let Some(next) = self.snapshot.next_authorization.as_mut() {
                    next.lapsed = true;
                    self.snapshot.version += 1;
                }
            }
            Transition::Resend(_) => self.resends += 1,
        }
    }

    fn enter(&mut self, state: SessionState, at: DateTime<Utc>) {
        self.snapshot.enter(state, at);
    }

    /// What the client is told once `transition` is applied, each with the key it is posted
    /// under: the notice of the step, then, when an ending offers it, the prompt to authorize
    /// the next insurance session.
    pub fn notices_after(&self, transition: &Transition) -> Vec<(Notice, String)> {
        let keyed = |notice: Notice| (notice, self.notice_key(&notice));
        let mut notices: Vec<(Notice, String)> =
            self.notice_after(transition).into_iter().collect();
        if let (Transition::End(_), Some(next)) = (transition, &self.snapshot.next_authorization) {
            notices.push(keyed(Notice::AuthorizationPrompt {
                estimate: next.estimate,
                authorize_by: next.authorize_by,
            }));
        }
        notices
    }

    /// The notice of the step itself, and its key.
    fn notice_after(&self, transition: &Transition) -> Option<(Notice, String)> {
        let notice = match transition {
            Transition::Confirm => Notice::Confirmed,
            Transition::End(ending) => ending.notice?,
            Transition::Reschedule { .. } => Notice::Rescheduled,
            Transition::Absence(SessionState::ProviderNoShow) => Notice::ProviderNoShow,
            Transition::Absence(_) => Notice::ProviderUnavailable,
            Transition::Remind(offsets) => {
                let closest = offsets.iter().min()?;
                let key = format!(
                    "{}:reminder:r{}:{}",
                    self.snapshot.workflow_id,
                    self.round,
                    crate::duration::format(*closest)
                );
                return Some((Notice::Reminder, key));
            }
            Transition::Begin
            | Transition::AuthorizeNext
            | Transition::LapseAuthorization
            | Transition::Resend(_) => return None,
        };
        Some((notice, self.notice_key(&notice)))
    }

    /// The calendar invite a notice carries: the event when confirmed, its new time
    /// (`SEQUENCE` + 1) when rescheduled, its removal (`METHOD:CANCEL`, `SEQUENCE` + 1) when
    /// cancelled; only once an invite went out for the last two.
    pub fn invite_for(&mut self, notice: &Notice) -> Option<Invite> {
        let method = match notice {
            Notice::Confirmed => {
                self.invited = true;
                InviteMethod::Request
            }
            Notice::Rescheduled if self.invited => {
                self.invite_sequence += 1;
                InviteMethod::Request
            }
            Notice::Cancelled
            | Notice::LateCancelled { .. }
            | Notice::LateCancelledFeeWaived { .. }
                if self.invited =>
            {
                self.invite_sequence += 1;
                InviteMethod::Cancel
            }
            _ => return None,
        };
        Some(Invite { method, sequence: self.invite_sequence })
    }

    /// `notice` was told, with `invite`: an operator's resend sends it again.
    pub fn told(&mut self, notice: Notice, invite: Option<Invite>) {
        self.last_told = Some((notice, invite));
    }

    // ----- Idempotency keys: unique per change, never a time that can repeat ----------------

    /// A fee's key: `<workflow id>:<fee kind>:r<round>`. At most one fee per booked time.
    pub fn fee_key(&self, kind: FeeKind) -> String {
        format!("{}:{kind}:r{}", self.snapshot.workflow_id, self.round)
    }

    /// A notice's key: `<workflow id>:<notice>:v<version>`; versions only grow.
    pub fn notice_key(&self, notice: &Notice) -> String {
        format!("{}:{}:v{}", self.snapshot.workflow_id, notice.step(), self.snapshot.version)
    }

    /// The key of the next session's authorization: once per session.
    pub fn authorization_key(&self) -> String {
        format!("{}:next_authorization", self.snapshot.workflow_id)
    }

    /// The key of a state-change event for webhooks: `<workflow id>:v<version>`.
    pub fn event_key(&self) -> String {
        format!("{}:v{}", self.snapshot.workflow_id, self.snapshot.version)
    }
}
