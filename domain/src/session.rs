//! One live session: what it is (service, modality, length), where it is in its lifecycle, and
//! the snapshot that the workflow query, the read model and `GET /v1/sessions/{id}` all share.

use crate::parse::text_enum;
use crate::{ClientId, Coverage, CreditId, Money, ProviderId, SessionId, TimeZoneName};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// What kind of care the session is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Service {
    /// Talk therapy with a therapist.
    Therapy,
    /// Psychiatry with a psychiatrist; video only.
    Psychiatry,
}

text_enum!(Service, "service", {
    Therapy => "therapy",
    Psychiatry => "psychiatry",
});

/// How a live session is held.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Modality {
    /// Live video.
    Video,
    /// Live audio.
    Audio,
    /// Real-time chat.
    Chat,
}

text_enum!(Modality, "modality", {
    Video => "video",
    Audio => "audio",
    Chat => "chat",
});

/// Where a session is in its lifecycle (API.md, "States"). `rescheduled` is a transition, not a
/// state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SessionState {
    /// Booked; the provider has not answered yet.
    Requested,
    /// The provider confirmed; waiting for the start.
    Confirmed,
    /// Both parties joined.
    InProgress,
    /// The session took place.
    Completed,
    /// The provider never confirmed within the confirmation window.
    Expired,
    /// The provider declined.
    Declined,
    /// Cancelled in time: the credit came back.
    Cancelled,
    /// Cancelled too close to the start: the credit is lost and the fee charged.
    LateCancelled,
    /// The client never joined.
    ClientNoShow,
    /// The provider never joined; the client keeps the credit and may reschedule with it.
    ProviderNoShow,
    /// The provider said they cannot attend; the client keeps the credit and may reschedule
    /// with it.
    ProviderUnavailable,
}

text_enum!(SessionState, "state", {
    Requested => "requested",
    Confirmed => "confirmed",
    InProgress => "in_progress",
    Completed => "completed",
    Expired => "expired",
    Declined => "declined",
    Cancelled => "cancelled",
    LateCancelled => "late_cancelled",
    ClientNoShow => "client_no_show",
    ProviderNoShow => "provider_no_show",
    ProviderUnavailable => "provider_unavailable",
});

impl SessionState {
    /// Whether the session holds its slot: requested (a pending request holds it) or confirmed.
    pub const fn holds_slot(&self) -> bool {
        matches!(self, SessionState::Requested | SessionState::Confirmed)
    }

    /// Whether the client may still reschedule or cancel: before the session begins, and while
    /// a provider's absence leaves a reschedule on offer.
    pub const fn is_changeable(&self) -> bool {
        matches!(
            self,
            SessionState::Requested
                | SessionState::Confirmed
                | SessionState::ProviderNoShow
                | SessionState::ProviderUnavailable
        )
    }
}

/// One side of a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Party {
    /// The client.
    Client,
    /// The provider.
    Provider,
}

text_enum!(Party, "party", {
    Client => "client",
    Provider => "provider",
});

/// Why a session ended where it did; a stable code for operators and backend services.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Outcome {
    /// Refused at request time; nothing was held (the refusal is the booking's answer).
    BookingRefused,
    /// The provider declined the request.
    ProviderDeclined,
    /// The confirmation window closed without an answer.
    ConfirmationWindowClosed,
    /// The client cancelled in time.
    ClientCancelled,
    /// The client cancelled too close to the start.
    ClientCancelledLate,
    /// The provider cancelled.
    ProviderCancelled,
    /// The client did not join within the grace period.
    ClientDidNotJoin,
    /// The provider did not join within the grace period, and the client did not reschedule.
    ProviderDidNotJoin,
    /// The provider could not attend, and the client did not reschedule.
    ProviderWasUnavailable,
    /// The media room ended after both joined.
    RoomEnded,
    /// The booked length plus the completion margin passed after both joined.
    CompletionMarginElapsed,
    /// An operator ended the session as having taken place (the room never said so).
    CompletedByOperator,
    /// An operator ended the session as not taking place: nobody is charged, the credit is back.
    CancelledByOperator,
}

text_enum!(Outcome, "outcome", {
    BookingRefused => "booking_refused",
    ProviderDeclined => "provider_declined",
    ConfirmationWindowClosed => "confirmation_window_closed",
    ClientCancelled => "client_cancelled",
    ClientCancelledLate => "client_cancelled_late",
    ProviderCancelled => "provider_cancelled",
    ClientDidNotJoin => "client_did_not_join",
    ProviderDidNotJoin => "provider_did_not_join",
    ProviderWasUnavailable => "provider_was_unavailable",
    RoomEnded => "room_ended",
    CompletionMarginElapsed => "completion_margin_elapsed",
    CompletedByOperator => "completed_by_operator",
    CancelledByOperator => "cancelled_by_operator",
});

/// What happened to the credit a session holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CreditStatus {
    /// Held for this session.
    Reserved,
    /// Given back to the client.
    Released,
    /// Used by the session that took place.
    Consumed,
    /// Lost to a no-show.
    Forfeited,
}

text_enum!(CreditStatus, "credit status", {
    Reserved => "reserved",
    Released => "released",
    Consumed => "consumed",
    Forfeited => "forfeited",
});

/// Why a fee is charged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FeeKind {
    /// Cancelled or rescheduled too close to the start.
    LateCancelFee,
    /// The client did not join.
    NoShowFee,
    /// An insurance session took place: the client's share (the estimate they authorized).
    Copay,
}

text_enum!(FeeKind, "fee kind", {
    LateCancelFee => "late_cancel_fee",
    NoShowFee => "no_show_fee",
    Copay => "copay",
});

/// Whether a fee was collected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FeeStatus {
    /// The payment processor took it.
    Charged,
    /// Declined or not collectable now: recorded as owed, in finance's reports.
    Outstanding,
    /// Not charged: an operator waived it (posted as owed and waived at once, as finance waives
    /// an outstanding fee).
    Waived,
}

text_enum!(FeeStatus, "fee status", {
    Charged => "charged",
    Outstanding => "outstanding",
    Waived => "waived",
});

/// A fee a session charged, once, under its idempotency key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Fee {
    /// Why.
    pub kind: FeeKind,
    /// How much: the full session cost, or for a copay the estimate the client authorized.
    pub amount: Money,
    /// `<workflow id>:<step>`: the same key never moves money twice.
    pub key: String,
    /// Collected, owed, or waived by an operator.
    pub status: FeeStatus,
    /// When (workflow time).
    pub at: DateTime<Utc>,
}

/// The next insurance session's authorization, offered after an ending that used the session's
/// authorization (completed, client no-show, late cancellation).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct NextAuthorization {
    /// The estimated charge of the next session (copay / cost share).
    pub estimate: Money,
    /// The client may authorize until then (`policy.reauthorization_window` after the end).
    pub authorize_by: DateTime<Utc>,
    /// When the client authorized it, if they did.
    pub authorized_at: Option<DateTime<Utc>>,
    /// Set once the window closed without an authorization.
    pub lapsed: bool,
}

/// The credit a session holds and what became of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CreditUse {
    /// The credit.
    pub id: CreditId,
    /// Its status as far as this session is concerned.
    pub status: CreditStatus,
}

/// Who has joined the session's room, and when.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Joined {
    /// When the client joined, if they have.
    pub client: Option<DateTime<Utc>>,
    /// When the provider joined, if they have.
    pub provider: Option<DateTime<Utc>>,
}

impl Joined {
    /// When `party` joined.
    pub fn at(&self, party: Party) -> Option<DateTime<Utc>> {
        match party {
            Party::Client => self.client,
            Party::Provider => self.provider,
        }
    }

    /// Records the first join of `party`; a later join of the same party changes nothing.
    pub fn record(&mut self, party: Party, at: DateTime<Utc>) {
        let slot = match party {
            Party::Client => &mut self.client,
            Party::Provider => &mut self.provider,
        };
        slot.get_or_insert(at);
    }

    /// When the second of the two joined, once both have.
    pub fn both(&self) -> Option<DateTime<Utc>> {
        Some(self.client?.max(self.provider?))
    }
}

/// A state change in a session's history.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct StateChange {
    /// The state entered.
    pub state: SessionState,
    /// When (workflow time).
    pub at: DateTime<Utc>,
}

/// The whole current state of one session, as `GET /v1/sessions/{id}` shows it. Ids only: no
/// names, emails or notes, because it travels through workflow history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SessionSnapshot {
    /// The session.
    pub id: SessionId,
    /// Its workflow: `live-session-<id>`.
    pub workflow_id: String,
    /// Where it is in its lifecycle.
    pub state: SessionState,
    /// Who booked it.
    pub client_id: ClientId,
    /// With whom.
    pub provider_id: ProviderId,
    /// Therapy or psychiatry.
    pub service: Service,
    /// Video, audio or chat.
    pub modality: Modality,
    /// Booked length.
    pub duration_minutes: u32,
    /// Start (UTC).
    pub starts_at: DateTime<Utc>,
    /// The client's IANA time zone, for messages and invites.
    pub time_zone: TimeZoneName,
    /// When the confirmation window closes: 24 h after the request at most, never past the start.
    pub confirm_by: DateTime<Utc>,
    /// How it is paid for.
    pub coverage: Coverage,
    /// The credit it holds, for credit-based coverage.
    pub credit: Option<CreditUse>,
    /// Who has joined.
    pub joined: Joined,
    /// Why it ended where it did, once final.
    pub outcome: Option<Outcome>,
    /// Fees charged (late cancellation, no-show); never for a provider's absence.
    pub fees: Vec<Fee>,
    /// For insurance, after an ending that used the authorization: the next session's estimate
    /// and authorization.
    pub next_authorization: Option<NextAuthorization>,
    /// Every state change, oldest first.
    pub history: Vec<StateChange>,
    /// Increases with every change; the read model keeps the highest version it has seen.
    pub version: u64,
}

impl SessionSnapshot {
    /// When the booked time ends.
    pub fn ends_at(&self) -> DateTime<Utc> {
        self.starts_at + chrono::TimeDelta::minutes(i64::from(self.duration_minutes))
    }

    /// Moves to `state` at `at`, recording it in the history.
    pub fn enter(&mut self, state: SessionState, at: DateTime<Utc>) {
        self.state = state;
        self.history.push(StateChange { state, at });
        self.version += 1;
    }
}
