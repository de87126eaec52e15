//! Refusals: a request that is understood but not allowed by the rules or by the session's
//! state. Each has a stable snake_case code (the API's `error.code`) and a message for a person.
//!
//! A refusal made inside the workflow (an update validator) reaches the API as the message of a
//! Temporal failure; [`Refusal::from_failure_message`] reads it back, so the API can answer with
//! the precise error.

use crate::parse::text_enum;
use std::fmt;

/// The kinds of answer a refusal maps to (the HTTP layer turns them into status codes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefusalKind {
    /// The session's state or another booking does not allow it (`409`).
    Conflict,
    /// A credit or an authorization is needed (`402`).
    PaymentRequired,
    /// It breaks a rule of the domain (`422`).
    RuleBroken,
}

/// Stable codes of every refusal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RefusalCode {
    /// No session credit left (402).
    NoCredit,
    /// Psychiatry is held by video only (422).
    PsychiatryRequiresVideo,
    /// The client's plan does not offer this modality (422).
    ModalityNotInPlan,
    /// The client's plan does not offer this length (422).
    DurationNotInPlan,
    /// The provider does not offer this service (422).
    ProviderDoesNotOfferService,
    /// The start is closer than the booking notice allows (422).
    BookingNoticeTooShort,
    /// The start is further away than the booking horizon allows (422).
    BookingHorizonExceeded,
    /// The client did not agree to the cancellation policy (422).
    CancellationPolicyNotAccepted,
    /// The session is not awaiting the provider's answer (409).
    NotAwaitingConfirmation,
    /// The join link does not work yet, or no longer (409).
    JoinNotOpen,
    /// The request names a client this service does not know (422).
    UnknownClient,
    /// The request names a provider this service does not know (422).
    UnknownProvider,
    /// The plan is not in the configuration's plan table (422).
    UnknownPlan,
    /// The plan belongs to another coverage (422).
    PlanCoverageMismatch,
    /// An insurance session needs the client's authorization first (402).
    AuthorizationRequired,
    /// The client's plan sells no credits (422).
    CreditPurchaseNotOffered,
    /// A booked session's modality cannot change: cancel and book again (422).
    ModalityChangeRequiresRebooking,
    /// A messaging session in progress cannot be cancelled or switched to live (422).
    MessagingSessionInProgress,
    /// A late reschedule needs the client to accept the cancellation policy (422).
    LateCancellationNotAccepted,
    /// The session's state does not allow this (409).
    SessionStateConflict,
    /// The window to authorize the next session has closed (409).
    AuthorizationWindowClosed,
    /// The card was declined for a purchase (402).
    PaymentDeclined,
    /// An `Idempotency-Key` was sent again with another request (422).
    IdempotencyKeyReused,
    /// A request with this `Idempotency-Key` is still being answered (409).
    IdempotentRequestInProgress,
    /// This request moves money and needs an `Idempotency-Key`, so a retry cannot move it twice
    /// (422).
    IdempotencyKeyRequired,
    /// Only money taken through the processor can be refunded, at most what was taken (422).
    NotRefundable,
    /// A purchase cannot be refunded in full: the credit it bought is held or used by a session
    /// (409).
    CreditAlreadyUsed,
    /// The provider or the client already has a session at that time (409).
    SlotTaken,
    /// Another change to the session is being carried out; try again once it is done (409).
    ChangeInProgress,
    /// A service acting on a session must say for whom: `client` or `provider` (422).
    OnBehalfOfRequired,
    /// An email address that is not one (422).
    InvalidEmail,
    /// Availability that names a date twice, or hours that overlap on one day (422).
    OverlappingAvailability,
    /// The fee is no longer owed: collected, waived or written off already (409).
    FeeNotOutstanding,
    /// An operator asked to remove a credit the client does not have free (409).
    NoFreeCredit,
    /// A stretch of time that ends at or before it starts, is over already, or is longer than
    /// allowed (422).
    InvalidTimeRange,
    /// A paging cursor this API did not hand out (422).
    InvalidCursor,
}

text_enum!(RefusalCode, "refusal code", {
    NoCredit => "no_credit",
    PsychiatryRequiresVideo => "psychiatry_requires_video",
    ModalityNotInPlan => "modality_not_in_plan",
    DurationNotInPlan => "duration_not_in_plan",
    ProviderDoesNotOfferService => "provider_does_not_offer_service",
    BookingNoticeTooShort => "booking_notice_too_short",
    BookingHorizonExceeded => "booking_horizon_exceeded",
    CancellationPolicyNotAccepted => "cancellation_policy_not_accepted",
    NotAwaitingConfirmation => "not_awaiting_confirmation",
    JoinNotOpen => "join_not_open",
    UnknownClient => "unknown_client",
    UnknownProvider => "unknown_provider",
    UnknownPlan => "unknown_plan",
    PlanCoverageMismatch => "plan_coverage_mismatch",
    AuthorizationRequired => "authorization_required",
    CreditPurchaseNotOffered => "credit_purchase_not_offered",
    ModalityChangeRequiresRebooking => "modality_change_requires_rebooking",
    MessagingSessionInProgress => "messaging_session_in_progress",
    LateCancellationNotAccepted => "late_cancellation_not_accepted",
    SessionStateConflict => "session_state_conflict",
    AuthorizationWindowClosed => "authorization_window_closed",
    PaymentDeclined => "payment_declined",
    IdempotencyKeyReused => "idempotency_key_reused",
    IdempotentRequestInProgress => "idempotent_request_in_progress",
    IdempotencyKeyRequired => "idempotency_key_required",
    NotRefundable => "not_refundable",
    CreditAlreadyUsed => "credit_already_used",
    SlotTaken => "slot_taken",
    ChangeInProgress => "change_in_progress",
    OnBehalfOfRequired => "on_behalf_of_required",
    InvalidEmail => "invalid_email",
    OverlappingAvailability => "overlapping_availability",
    FeeNotOutstanding => "fee_not_outstanding",
    NoFreeCredit => "no_free_credit",
    InvalidTimeRange => "invalid_time_range",
    InvalidCursor => "invalid_cursor",
});

impl RefusalCode {
    /// What kind of answer this refusal is.
    pub const fn kind(&self) -> RefusalKind {
        match self {
            RefusalCode::NoCredit
            | RefusalCode::AuthorizationRequired
            | RefusalCode::PaymentDeclined => RefusalKind::PaymentRequired,
            RefusalCode::NotAwaitingConfirmation
            | RefusalCode::JoinNotOpen
            | RefusalCode::SessionStateConflict
            | RefusalCode::AuthorizationWindowClosed
            | RefusalCode::IdempotentRequestInProgress
            | RefusalCode::CreditAlreadyUsed
            | RefusalCode::SlotTaken
            | RefusalCode::ChangeInProgress
            | RefusalCode::FeeNotOutstanding
            | RefusalCode::NoFreeCredit => RefusalKind::Conflict,
            RefusalCode::PsychiatryRequiresVideo
            | RefusalCode::ModalityNotInPlan
            | RefusalCode::DurationNotInPlan
            | RefusalCode::ProviderDoesNotOfferService
            | RefusalCode::BookingNoticeTooShort
            | RefusalCode::BookingHorizonExceeded
            | RefusalCode::CancellationPolicyNotAccepted
            | RefusalCode::UnknownClient
            | RefusalCode::UnknownProvider
            | RefusalCode::UnknownPlan
            | RefusalCode::PlanCoverageMismatch
            | RefusalCode::CreditPurchaseNotOffered
            | RefusalCode::ModalityChangeRequiresRebooking
            | RefusalCode::MessagingSessionInProgress
            | RefusalCode::LateCancellationNotAccepted
            | RefusalCode::IdempotencyKeyReused
            | RefusalCode::IdempotencyKeyRequired
            | RefusalCode::NotRefundable
            | RefusalCode::OnBehalfOfRequired
            | RefusalCode::InvalidEmail
            | RefusalCode::OverlappingAvailability
            | RefusalCode::InvalidTimeRange
            | RefusalCode::InvalidCursor => RefusalKind::RuleBroken,
        }
    }
}

/// A refused request: its code and a message for a person.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Refusal {
    /// The stable code.
    pub code: RefusalCode,
    /// For a person.
    pub message: String,
}

impl Refusal {
    /// A refusal with this code and message.
    pub fn new(code: RefusalCode, message: impl Into<String>) -> Self {
        Self { code, message: message.into() }
    }

    /// Finds a refusal written by `Display` (`code: message`) inside a failure message, which
    /// Temporal may have prefixed with its own words.
    pub fn from_failure_message(text: &str) -> Option<Self> {
        RefusalCode::ALL.iter().find_map(|code| {
            let marker = format!("{code}: ");
            let start = text.find(&marker)?;
            Some(Self::new(*code, &text[start + marker.len()..]))
        })
    }
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

impl std::error::Error for Refusal {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_itself_back_from_a_wrapped_failure_message() {
        let refusal =
            Refusal::new(RefusalCode::NotAwaitingConfirmation, "the session is confirmed");
        let wrapped = format!("Workflow execution error: {refusal}");
        assert_eq!(Refusal::from_failure_message(&wrapped), Some(refusal));
        assert_eq!(Refusal::from_failure_message("something else broke"), None);
    }
}
