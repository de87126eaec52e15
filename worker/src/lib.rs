//! Everything that speaks to Temporal: the connection, the worker that runs the `LiveSession`,
//! `CreditPurchase`, `Subscription`, `FeeCollection` and `CreditAdjustment` workflows and their
//! activities, the typed clients the API uses to start and steer sessions, to buy credits, to
//! keep subscriptions renewing, to waive fees and to adjust credits, and the local dev server
//! that the run command and the tests start.

pub mod actions;
pub mod client;
pub mod credit_adjustments;
pub mod dev_server;
pub mod fees;
pub mod purchases;
pub mod replay;
pub mod sessions;
pub mod settings;
pub mod setup;
pub mod subscriptions;
pub mod worker;

pub use actions::ActionCallError;
pub use client::connect;
pub use credit_adjustments::CreditAdjustments;
pub use dev_server::{DevServer, DevServerOptions};
pub use fees::FeeCollections;
pub use purchases::{PurchaseCallError, Purchases};
pub use sessions::{SessionCallError, Sessions};
pub use settings::{TemporalSettings, TemporalTls};
pub use setup::{ClusterError, SetupReport};
pub use subscriptions::{SubscriptionStartError, Subscriptions};
pub use worker::SessionWorker;
