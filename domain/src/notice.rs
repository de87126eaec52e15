//! What the client and the provider are told about a session (room messages and emails), and
//! the calendar invite an email carries.

use crate::{Money, Party};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// What a room message tells the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Notice {
    /// A new request for the provider to answer (email only).
    Requested,
    /// The provider confirmed.
    Confirmed,
    /// The provider declined; pick another time.
    Declined,
    /// The provider did not confirm in time; pick another time.
    Expired,
    /// The session starts soon; here is the link to join.
    Reminder,
    /// The session moved; the provider confirms the new time.
    Rescheduled,
    /// Cancelled in time (or by the provider): the credit is back.
    Cancelled,
    /// Cancelled late: the credit is lost and the fee charged.
    LateCancelled {
        /// The fee.
        fee: Money,
    },
    /// Cancelled late by an operator who waived the fee: the credit is lost, nothing charged.
    LateCancelledFeeWaived {
        /// The fee waived.
        fee: Money,
    },
    /// The client did not join: the credit is lost and the fee charged.
    ClientNoShow {
        /// The fee.
        fee: Money,
    },
    /// The provider did not join; reschedule with the same credit.
    ProviderNoShow,
    /// The provider cannot attend; reschedule with the same credit.
    ProviderUnavailable,
    /// The offer to reschedule lapsed; the credit is back.
    RescheduleOfferLapsed,
    /// "Book a session": the next insurance session's estimate, to authorize.
    AuthorizationPrompt {
        /// The estimated charge.
        estimate: Money,
        /// Authorize until then.
        authorize_by: DateTime<Utc>,
    },
    /// An asynchronous messaging session started.
    MessagingSessionStarted,
}

impl Notice {
    /// The stable step name of this notice, for idempotency keys.
    pub const fn step(&self) -> &'static str {
        match self {
            Notice::Requested => "requested_notice",
            Notice::Confirmed => "confirmed_notice",
            Notice::Declined => "declined_notice",
            Notice::Expired => "expired_notice",
            Notice::Reminder => "reminder",
            Notice::Rescheduled => "rescheduled_notice",
            Notice::Cancelled => "cancelled_notice",
            Notice::LateCancelled { .. } => "late_cancelled_notice",
            Notice::LateCancelledFeeWaived { .. } => "late_cancelled_fee_waived_notice",
            Notice::ClientNoShow { .. } => "client_no_show_notice",
            Notice::ProviderNoShow => "provider_no_show_notice",
            Notice::ProviderUnavailable => "provider_unavailable_notice",
            Notice::RescheduleOfferLapsed => "reschedule_offer_lapsed_notice",
            Notice::AuthorizationPrompt { .. } => "authorization_prompt",
            Notice::MessagingSessionStarted => "messaging_session_started_notice",
        }
    }
}

impl Notice {
    /// The email template of this notice (`templates/email/<name>.txt.hbs`).
    pub const fn template(&self) -> &'static str {
        match self {
            Notice::Requested => "requested",
            Notice::Confirmed => "confirmed",
            Notice::Declined => "declined",
            Notice::Expired => "expired",
            Notice::Reminder => "reminder",
            Notice::Rescheduled => "rescheduled",
            Notice::Cancelled => "cancelled",
            Notice::LateCancelled { .. } => "late_cancelled",
            Notice::LateCancelledFeeWaived { .. } => "late_cancelled_fee_waived",
            Notice::ClientNoShow { .. } => "client_no_show",
            Notice::ProviderNoShow => "provider_no_show",
            Notice::ProviderUnavailable => "provider_unavailable",
            Notice::RescheduleOfferLapsed => "reschedule_offer_lapsed",
            Notice::AuthorizationPrompt { .. } => "authorization_prompt",
            Notice::MessagingSessionStarted => "messaging_session_started",
        }
    }

    /// Whether the client's room shows it (a request is for the provider only).
    pub const fn shows_in_room(&self) -> bool {
        !matches!(self, Notice::Requested)
    }

    /// Who is emailed: the client, and the provider when the notice asks something of them or
    /// changes their calendar.
    pub fn recipients(&self) -> &'static [Party] {
        match self {
            Notice::Requested => &[Party::Provider],
            Notice::Confirmed
            | Notice::Rescheduled
            | Notice::Cancelled
            | Notice::LateCancelled { .. }
            | Notice::LateCancelledFeeWaived { .. } => &[Party::Client, Party::Provider],
            _ => &[Party::Client],
        }
    }
}

/// What a calendar invite does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InviteMethod {
    /// Add or update the event (`METHOD:REQUEST`).
    Request,
    /// Remove it (`METHOD:CANCEL`).
    Cancel,
}

/// A calendar invite to attach: one `UID` per session, `SEQUENCE` growing with each change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Invite {
    /// Request or cancel.
    pub method: InviteMethod,
    /// Grows by one with every change of the event.
    pub sequence: u32,
}
