//! The `LiveSession` workflow: one booked session from request to its end, as DOMAIN.md tells
//! it; the `CreditPurchase` workflow, one credit bought outside a session; the `Subscription`
//! workflow, a subscription client's billing periods; the `FeeCollection` workflow, one fee left
//! outstanding collected, waived or written off; the `CreditAdjustment` workflow, one credit an
//! operator grants or removes; and the contracts of the activities they call.
//!
//! Deterministic code only: time comes from `ctx.workflow_time()`, waiting from `ctx.timer()`,
//! and every effect (database, messages, media) is an activity. The activities themselves live in
//! the `livesessions-activities` crate and are bound to these contracts at compile time.

pub mod activities;
pub mod credit_adjustment;
pub mod credit_purchase;
pub mod fee_collection;
pub mod live_session;
pub mod messaging_session;
pub mod search_attributes;
pub mod subscription;

pub use activities::DeliveryInput;
pub use credit_adjustment::{CreditAdjustment, CreditAdjustmentInput};
pub use credit_purchase::CreditPurchase;
pub use fee_collection::{FeeCollection, FeeCollectionInput};
pub use live_session::{
    Cancel, FeeDecision, Join, LiveSession, LiveSessionInput, OperatorCancel, OperatorEnding,
    Reschedule,
};
pub use messaging_session::{MessagingSession, MessagingSessionInput};
pub use subscription::Subscription;
