//! Contracts of the activities the workflow calls: names, inputs and outputs. The
//! `livesessions-activities` crate implements each one with `#[activity(definition = …)]`, so
//! a mismatch between the two sides does not compile.
//!
//! Inputs carry ids and times only. Anything a person reads (names, emails, join links) is looked
//! up by the activity when it runs, never written into workflow history.

#![allow(unreachable_pub)]

use chrono::{DateTime, Utc};
use livesessions_domain::{
    ClientId, CreditId, CreditStatus, ProviderId, Refusal, RoomId, SessionId, SessionSnapshot,
    TimeZoneName,
};
use serde::{Deserialize, Serialize};
use temporalio_common::ActivityError;
use temporalio_macros::activity_definitions;

/// Keeps the `sessions` read model current.
pub struct StorageActivities;

#[activity_definitions]
impl StorageActivities {
    /// Upserts the snapshot; an older version never overwrites a newer one.
    #[activity(name = "storage.record_session")]
    pub fn record_session(snapshot: SessionSnapshot) -> Result<(), ActivityError> {
        unimplemented!()
    }
}

pub use storage_activities::RecordSession;

/// What holding a booking answered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum HoldOutcome {
    /// The session row exists and this credit is reserved for it.
    Held {
        /// The reserved credit.
        credit: CreditId,
    },
    /// Nothing was held.
    Refused(Refusal),
}

/// Moves the credit a session holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreditMove {
    /// The session holding the credit.
    pub session_id: SessionId,
    /// The credit.
    pub credit_id: CreditId,
    /// Where it goes: `released`, `consumed` or `forfeited`.
    pub to: CreditStatus,
}

/// Session credits.
pub struct BillingActivities;

#[activity_definitions]
impl BillingActivities {
    /// In one transaction: writes the session's first read-model row and reserves one of the
    /// client's credits for it. Idempotent: a retry returns what the first attempt held.
    #[activity(name = "billing.hold_booking")]
    pub fn hold_booking(session: SessionSnapshot) -> Result<HoldOutcome, ActivityError> {
        unimplemented!()
    }

    /// Releases, consumes or forfeits the session's credit. Idempotent.
    #[activity(name = "billing.settle_credit")]
    pub fn settle_credit(movement: CreditMove) -> Result<(), ActivityError> {
        unimplemented!()
    }
}

pub use billing_activities::{HoldBooking, SettleCredit};

/// What a room message tells the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Notice {
    /// The provider confirmed.
    Confirmed,
    /// The provider declined; pick another time.
    Declined,
    /// The provider did not confirm in time; pick another time.
    Expired,
    /// The client did not join; the credit is lost.
    ClientNoShow,
    /// The provider did not join; the credit comes back, reschedule with it.
    ProviderNoShow,
}

/// A message for the client's room about one session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoomNotice {
    /// Unique per session and step (`<workflow id>:<step>`): a retry posts nothing twice.
    pub key: String,
    /// Whose room.
    pub client_id: ClientId,
    /// About which session.
    pub session_id: SessionId,
    /// The session's start, shown in `time_zone`.
    pub starts_at: DateTime<Utc>,
    /// The client's zone.
    pub time_zone: TimeZoneName,
    /// What to say.
    pub notice: Notice,
}

/// Messages to people.
pub struct NotificationActivities;

#[activity_definitions]
impl NotificationActivities {
    /// Posts a message to the client's room (at most once per key).
    #[activity(name = "notification.post_room_message")]
    pub fn post_room_message(notice: RoomNotice) -> Result<(), ActivityError> {
        unimplemented!()
    }
}

pub use notification_activities::PostRoomMessage;

/// A media room for one session, and when its join links work.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoomRequest {
    /// The session.
    pub session_id: SessionId,
    /// Gets one join link.
    pub client_id: ClientId,
    /// Gets the other.
    pub provider_id: ProviderId,
    /// Links work from here …
    pub opens_at: DateTime<Utc>,
    /// … until here.
    pub closes_at: DateTime<Utc>,
}

/// Video, audio and chat rooms.
pub struct MediaActivities;

#[activity_definitions]
impl MediaActivities {
    /// Creates the session's room and one join token per person; a retry returns the same room.
    #[activity(name = "media.open_room")]
    pub fn open_room(request: RoomRequest) -> Result<RoomId, ActivityError> {
        unimplemented!()
    }
}

pub use media_activities::OpenRoom;
