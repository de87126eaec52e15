//! The activities of the `LiveSession` workflow, and the storage they and the API share.
//!
//! Each activity implements a contract of `livesessions_workflows::activities` and does its
//! work for real against the database: billing moves credits and charges fees, collection
//! collects the fees left outstanding, adjustments carry out operators' repairs of fees and
//! credits, notification posts room messages, media opens rooms and
//! mints join tokens, storage keeps the read model current, subscriptions begin billing periods.
//! Every one is idempotent, because Temporal retries them.

pub mod adjustments;
pub mod billing;
pub mod calendar;
pub mod collection;
pub mod dispatcher;
pub mod email;
pub mod media;
pub mod metrics;
pub mod notification;
pub mod payments;
pub mod reconciliation;
pub mod signature;
pub mod slots;
pub mod storage;
pub mod storage_activities;
pub mod subscriptions;
pub mod webhooks;

pub use adjustments::Adjustments;
pub use billing::Billing;
pub use collection::Collections;
pub use dispatcher::Dispatcher;

/// Installs the process's TLS crypto provider (ring) for HTTP clients, once; every HTTP client
/// is built after calling it.
pub fn install_crypto_provider() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

use email::EmailSettings;
use livesessions_domain::Plans;
use media::MediaSettings;
use payments::BillingSettings;
use webhooks::WebhookSettings;

/// The configuration sections the activities need.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActivitySettings {
    /// `billing.*`.
    pub billing: BillingSettings,
    /// `email.*`.
    pub email: EmailSettings,
    /// `webhooks.*`.
    pub webhooks: WebhookSettings,
    /// `media.*`.
    pub media: MediaSettings,
    /// `plans.*`: what each billing period of a subscription grants.
    pub plans: Plans,
    /// `policy.collection_schedule`: when fees left outstanding are tried again.
    pub collection_schedule: Vec<std::time::Duration>,
}
pub use media::Media;
pub use metrics::WorkerMetrics;
pub use notification::Notification;
pub use storage::Db;
pub use storage_activities::Storage;
pub use subscriptions::Renewals;
