//! Contracts of the activities the workflow calls: names, inputs and outputs. The
//! `livesessions-activities` crate implements each one with `#[activity(definition = …)]`, so
//! a mismatch between the two sides does not compile.
//!
//! Inputs carry ids and times only. Anything a person reads (names, emails, join links) is looked
//! up by the activity when it runs, never written into workflow history.

#![allow(unreachable_pub)]

use chrono::{DateTime, Utc};
use livesessions_domain::availability::TimeWindow;
pub use livesessions_domain::notice::{Invite, InviteMethod, Notice};
use livesessions_domain::{
    ActionId, BillingPeriod, ClientId, CollectionState, Coverage, CreditId, CreditStatus, FeeKind,
    FeeStatus, MessagingSnapshot, Modality, Money, ProviderId, PurchaseId, Refusal, Renewal,
    RoomId, SessionId, SessionSnapshot, TimeZoneName, WaiverId,
};
use serde::{Deserialize, Serialize};
use temporalio_common::ActivityError;
use temporalio_macros::activity_definitions;

/// Something to deliver to the outside world, sent from the outbox until it is accepted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryInput {
    /// An email (with its calendar invite).
    Email(EmailNotice),
    /// A webhook event.
    Webhook(WebhookEvent),
    /// A provider's email about a client's shared windows.
    AvailabilityRequest(AvailabilityRequestEmail),
    /// A client's email about a fee they owe.
    Fee(FeeEmail),
}

/// A delivery under its idempotency key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyedDelivery {
    /// Unique per delivery: written twice, it is sent once.
    pub key: String,
    /// What to deliver.
    pub delivery: DeliveryInput,
}

/// A session's state to record, with the room messages and deliveries that tell the world about
/// it: written in one transaction, so a state in the read model means its room shows it and its
/// emails and events are on their way.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionRecord {
    /// The session as it now is.
    pub snapshot: SessionSnapshot,
    /// Messages for the client's room, posted with the state.
    #[serde(default)]
    pub room_messages: Vec<RoomNotice>,
    /// Emails and webhook events to send (from the outbox, by the worker's dispatcher).
    #[serde(default)]
    pub deliveries: Vec<KeyedDelivery>,
}

/// Keeps the `sessions` read model current.
pub struct StorageActivities;

#[activity_definitions]
impl StorageActivities {
    /// Upserts the snapshot (an older version never overwrites a newer one), posts the room
    /// messages and adds the deliveries to the outbox, in one transaction.
    #[activity(name = "storage.record_session")]
    pub fn record_session(record: SessionRecord) -> Result<(), ActivityError> {
        unimplemented!()
    }

    /// Upserts a messaging session's snapshot; an older version never overwrites a newer one.
    #[activity(name = "storage.record_messaging_session")]
    pub fn record_messaging_session(snapshot: MessagingSnapshot) -> Result<(), ActivityError> {
        unimplemented!()
    }
}

pub use storage_activities::{RecordMessagingSession, RecordSession};

/// A booking to hold: the session's first snapshot, and the price of a credit to buy when the
/// client has none and asked to buy one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HoldRequest {
    /// The requested session.
    pub session: SessionSnapshot,
    /// Buy a credit at this price if none is left (`purchase_credit: true`).
    pub purchase: Option<Money>,
}

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
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreditMove {
    /// The session holding the credit.
    pub session_id: SessionId,
    /// The credit.
    pub credit_id: CreditId,
    /// Where it goes: `released`, `consumed` or `forfeited`.
    pub to: CreditStatus,
    /// For an insurance session that took place: the insurer's part, recorded as a claim
    /// receivable with the consumption.
    #[serde(default)]
    pub claim: Option<Money>,
}

/// A new time for a session: its slot is held (or refused) and, for a late change, a second
/// credit reserved, in one transaction.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewTimeRequest {
    /// The session.
    pub session_id: SessionId,
    /// Whose session (and credit).
    pub client_id: ClientId,
    /// With whom.
    pub provider_id: ProviderId,
    /// Credits or insurance authorizations.
    pub coverage: Coverage,
    /// The new start.
    pub starts_at: DateTime<Utc>,
    /// The new end.
    pub ends_at: DateTime<Utc>,
    /// Late: the current credit is lost, so another one must hold the new time.
    pub late: bool,
}

/// A fee to charge once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FeeCharge {
    /// `<workflow id>:<step>`: the same key never charges twice.
    pub key: String,
    /// Who pays.
    pub client_id: ClientId,
    /// For which session.
    pub session_id: SessionId,
    /// Why.
    pub kind: FeeKind,
    /// How much.
    pub amount: Money,
}

/// A session's fee an operator waived as the session ended: posted as owed, then waived at once
/// as finance waives an outstanding fee (its reason is in the database under the waiver's id).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FeeWaiver {
    /// The fee, under the session's key for it.
    pub fee: FeeCharge,
    /// The waiver.
    pub waiver: WaiverId,
}

/// Which way an operator moves a client's credits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Adjustment {
    /// One more credit (an insurance authorization for an insurance client).
    Grant,
    /// One available credit less.
    Remove,
}

/// An operator's grant or removal of one of a client's credits.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreditAdjustmentRequest {
    /// The operator's action: the ledger key derives from it
    /// (`credit-adjustment-<action id>:credit_grant` or `…:credit_revoke`).
    pub action: ActionId,
    /// Whose credits.
    pub client_id: ClientId,
    /// Grant or remove.
    pub adjustment: Adjustment,
}

/// What a credit adjustment came to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum AdjustmentOutcome {
    /// This credit was granted, or removed.
    Adjusted {
        /// The credit.
        credit: CreditId,
    },
    /// Nothing moved: no credit is free to remove.
    Refused(Refusal),
}

/// An insurance client's authorization of the next session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuthorizationGrant {
    /// `<workflow id>:next_authorization`: granted at most once.
    pub key: String,
    /// Who authorized.
    pub client_id: ClientId,
    /// The session after which they did.
    pub session_id: SessionId,
    /// The estimate they authorized.
    pub estimate: Money,
}

/// A credit to buy outside any session (the `CreditPurchase` workflow's input).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreditOrder {
    /// The purchase: its workflow id and charge key derive from it.
    pub purchase_id: PurchaseId,
    /// Who buys, and whose card is charged.
    pub client_id: ClientId,
    /// The plan's credit price when the purchase was asked for.
    pub price: Money,
}

/// What buying a credit came to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum PurchaseOutcome {
    /// The card was charged and this credit granted, available to book with.
    Bought {
        /// The new credit.
        credit: CreditId,
    },
    /// The card was declined: nothing was charged or granted.
    Declined(Refusal),
}

/// Session credits, insurance authorizations and fees.
pub struct BillingActivities;

#[activity_definitions]
impl BillingActivities {
    /// In one transaction: writes the session's first read-model row and reserves one of the
    /// client's credits for it. Idempotent: a retry returns what the first attempt held.
    #[activity(name = "billing.hold_booking")]
    pub fn hold_booking(request: HoldRequest) -> Result<HoldOutcome, ActivityError> {
        unimplemented!()
    }

    /// Holds the session's new time (no overlap with the provider's or the client's other
    /// sessions) and, when late, reserves another credit for it; or refuses and changes nothing.
    /// Idempotent.
    #[activity(name = "billing.hold_new_time")]
    pub fn hold_new_time(request: NewTimeRequest) -> Result<HoldOutcome, ActivityError> {
        unimplemented!()
    }

    /// Charges a fee through the payment processor, once per key, and posts it to the ledger:
    /// charged, or outstanding when the card is declined. A processor that does not answer is
    /// retried (same key) by the activity's retry policy.
    #[activity(name = "billing.charge_fee")]
    pub fn charge_fee(charge: FeeCharge) -> Result<FeeStatus, ActivityError> {
        unimplemented!()
    }

    /// Posts a fee the processor could not be reached for as outstanding (once per key; nothing
    /// when the fee was already posted).
    #[activity(name = "billing.record_unpaid_fee")]
    pub fn record_unpaid_fee(charge: FeeCharge) -> Result<FeeStatus, ActivityError> {
        unimplemented!()
    }

    /// Posts a session's fee as owed and waives it at once (ledger `fee_waived`, as finance's
    /// waiver of an outstanding fee posts it), in one transaction. Answers `waived`.
    /// Idempotent.
    #[activity(name = "billing.waive_fee")]
    pub fn waive_fee(waiver: FeeWaiver) -> Result<FeeStatus, ActivityError> {
        unimplemented!()
    }

    /// Grants one credit, or removes one free credit (never one a session holds), with its
    /// ledger transaction under the action's key. Idempotent: a retry answers the same credit.
    #[activity(name = "billing.adjust_credit")]
    pub fn adjust_credit(
        request: CreditAdjustmentRequest,
    ) -> Result<AdjustmentOutcome, ActivityError> {
        unimplemented!()
    }

    /// Records the client's authorization of their next insurance session, once per key.
    #[activity(name = "billing.authorize_next")]
    pub fn authorize_next(grant: AuthorizationGrant) -> Result<CreditId, ActivityError> {
        unimplemented!()
    }

    /// Releases, consumes or forfeits the session's credit. Idempotent.
    #[activity(name = "billing.settle_credit")]
    pub fn settle_credit(movement: CreditMove) -> Result<(), ActivityError> {
        unimplemented!()
    }

    /// Charges the order's price under the purchase's key, then grants the credit and posts the
    /// purchase in one database transaction under the same key. Idempotent: a retry (after a
    /// lost answer or a crash between the two) charges nothing more and answers the same credit.
    #[activity(name = "billing.buy_credit")]
    pub fn buy_credit(order: CreditOrder) -> Result<PurchaseOutcome, ActivityError> {
        unimplemented!()
    }
}

pub use billing_activities::{
    AdjustCredit, AuthorizeNext, BuyCredit, ChargeFee, HoldBooking, HoldNewTime, RecordUnpaidFee,
    SettleCredit, WaiveFee,
};

/// What beginning a subscription's billing period came to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum RenewalOutcome {
    /// The period is granted (now, or by an earlier attempt): it ends at its `ends_at`.
    Renewed(BillingPeriod),
    /// The client is no longer on a subscription plan: nothing was granted, renewals end.
    Ended,
}

/// A subscription client's billing periods.
pub struct SubscriptionActivities;

#[activity_definitions]
impl SubscriptionActivities {
    /// Begins the period under the client's plan as it is now, in one transaction keyed by
    /// client and period: expires the unused plan credits beyond the plan's carry-over and grants
    /// the period's credits, each with its ledger transaction. Idempotent: a retry answers the
    /// period the first attempt granted and grants nothing more.
    #[activity(name = "subscription.renew")]
    pub fn renew_subscription(renewal: Renewal) -> Result<RenewalOutcome, ActivityError> {
        unimplemented!()
    }
}

pub use subscription_activities::RenewSubscription;

/// An email about one session, sent from the outbox: the addresses and names are looked up when
/// it is sent, never carried here.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EmailNotice {
    /// `<workflow id>:<step>`: one email per recipient and key, however often it is retried.
    pub key: String,
    /// The session.
    pub session_id: SessionId,
    /// The client.
    pub client_id: ClientId,
    /// The provider.
    pub provider_id: ProviderId,
    /// Start.
    pub starts_at: DateTime<Utc>,
    /// Length in minutes.
    pub duration_minutes: u32,
    /// Video, audio or chat.
    pub modality: Modality,
    /// Until when the provider may confirm.
    pub confirm_by: DateTime<Utc>,
    /// The client's zone (the provider sees their own).
    pub time_zone: TimeZoneName,
    /// What to say.
    pub notice: Notice,
    /// The calendar invite to attach, if any.
    pub invite: Option<Invite>,
}

/// One event for the backend services' webhooks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebhookEvent {
    /// Unique per event: `<workflow id>:v<version>`.
    pub id: String,
    /// `session.state_changed`.
    #[serde(rename = "type")]
    pub kind: String,
    /// When (workflow time).
    pub occurred_at: DateTime<Utc>,
    /// The session as it is after the change (ids only).
    pub session: SessionSnapshot,
}

/// One attempt to collect an outstanding fee.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CollectionAttempt {
    /// The fee, under its original key.
    pub fee: FeeCharge,
    /// Which attempt, from 1: its charge is keyed `<fee key>:collect:<attempt>`.
    pub attempt: u32,
    /// When the next one is due, for the client's email (`None`: this is the last).
    pub next_attempt_at: Option<DateTime<Utc>>,
}

/// How an outstanding fee ends without being collected.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Settlement {
    /// Finance waived it; the waiver's reason is in the database under its id.
    Waived(WaiverId),
    /// The schedule ran out.
    WrittenOff,
}

/// The end of an outstanding fee to record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FeeSettlement {
    /// The fee, under its original key.
    pub fee: FeeCharge,
    /// Waived or written off.
    pub settlement: Settlement,
}

/// Collecting fees left outstanding (the `FeeCollection` workflow's steps).
pub struct CollectionActivities;

#[activity_definitions]
impl CollectionActivities {
    /// Charges the fee under the attempt's key; a success is posted as collected (ledger
    /// `fee_collected`, same key), a decline recorded with the client's email. Answers
    /// `collected` or `outstanding`. Idempotent; a processor that does not answer is retried.
    #[activity(name = "collection.collect_fee")]
    pub fn collect_fee(attempt: CollectionAttempt) -> Result<CollectionState, ActivityError> {
        unimplemented!()
    }

    /// Posts the fee's end (ledger `fee_waived` or `fee_written_off`, keyed
    /// `<fee key>:<state>`) and records it; a write-off emails the client. Idempotent.
    #[activity(name = "collection.settle_fee")]
    pub fn settle_fee(settlement: FeeSettlement) -> Result<CollectionState, ActivityError> {
        unimplemented!()
    }
}

pub use collection_activities::{CollectFee, SettleFee};

/// A message for the client's room about one session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoomNotice {
    /// Unique per session and step (`<workflow id>:<step>:…`): a retry posts nothing twice.
    pub key: String,
    /// Whose room.
    pub client_id: ClientId,
    /// About which session (live or messaging).
    pub session_id: SessionId,
    /// The session's start, shown in `time_zone`.
    pub starts_at: DateTime<Utc>,
    /// The client's zone.
    pub time_zone: TimeZoneName,
    /// What to say.
    pub notice: Notice,
}

/// A provider's email about a client who could not find a time and shared the windows that
/// suit them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AvailabilityRequestEmail {
    /// `availability-request-<id>`: one email per request, however often it is retried.
    pub key: String,
    /// Who shared the windows.
    pub client_id: ClientId,
    /// Whom they asked.
    pub provider_id: ProviderId,
    /// The windows, written in the provider's zone.
    pub windows: Vec<TimeWindow>,
}

/// What a fee email tells the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FeeNotice {
    /// The fee could not be collected; it is tried again then (or written off after the last
    /// attempt when `None`).
    Outstanding {
        /// The next attempt.
        next_attempt_at: Option<DateTime<Utc>>,
    },
    /// Every attempt failed: the fee is written off.
    WrittenOff,
}

/// A client's email about a fee they owe, sent from the outbox (address and name looked up when
/// it is sent).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FeeEmail {
    /// `<fee key>:…`: one email per key.
    pub key: String,
    /// Who owes it.
    pub client_id: ClientId,
    /// How much.
    pub amount: Money,
    /// What to say.
    pub notice: FeeNotice,
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
