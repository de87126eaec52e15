//! The rulebook of `shared/DOMAIN.md` as types.
//!
//! Everything here is pure: no I/O, no clocks. Values are built by `parse` (or by serde, which
//! goes through the same checks), so an invalid id, zone, length or duration never gets past the
//! edge of the system. The workflow crate, the activities and the HTTP API all speak these types.

pub mod availability;
pub mod booking;
pub mod coverage;
pub mod duration;
pub mod email;
pub mod fee_collection;
pub mod ids;
pub mod lifecycle;
pub mod messaging;
pub mod money;
pub mod notice;
pub mod parse;
pub mod plan;
pub mod policy;
pub mod refusal;
pub mod role;
pub mod session;
pub mod subscription;
pub mod text;
pub mod time_zone;

pub use availability::Availability;
pub use booking::{BookingRequest, ProviderProfile};
pub use coverage::{Coverage, Specialty};
pub use email::Email;
pub use fee_collection::CollectionState;
pub use ids::{ActionId, ClientId, CreditId, ProviderId, PurchaseId, RoomId, SessionId, WaiverId};
pub use messaging::{MessagingSnapshot, MessagingState};
pub use money::{Currency, Money};
pub use parse::ParseError;
pub use plan::{Plan, PlanLength, Plans, SessionTerms};
pub use policy::Policy;
pub use refusal::{Refusal, RefusalCode};
pub use role::Role;
pub use session::{
    CreditStatus, CreditUse, Fee, FeeKind, FeeStatus, Joined, Modality, NextAuthorization, Outcome,
    Party, Service, SessionSnapshot, SessionState, StateChange,
};
pub use subscription::{BillingPeriod, CarryOver, Renewal};
pub use text::{CancelReason, DisplayName, OperatorReason, WaiverReason};
pub use time_zone::TimeZoneName;
