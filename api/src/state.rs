//! What every handler shares.

use crate::auth::JwtKeys;
use livesessions_activities::media::MediaSettings;
use livesessions_activities::payments::PaymentProcessor;
use livesessions_activities::{Billing, Db};
use livesessions_domain::{Plans, Policy};
use livesessions_worker::{CreditAdjustments, FeeCollections, Purchases, Sessions, Subscriptions};
use std::sync::Arc;

/// The API's shared state: the database, the session workflows, keys and configuration.
#[derive(Clone)]
pub struct AppState {
    /// The database (read model, people, credits, rooms).
    pub db: Db,
    /// Starts and steers session workflows.
    pub sessions: Sessions,
    /// Starts credit purchases and waits for them.
    pub purchases: Purchases,
    /// Grants and removes credits for operators.
    pub credit_adjustments: CreditAdjustments,
    /// Keeps subscription clients' renewal workflows running.
    pub subscriptions: Subscriptions,
    /// Waives fees through their collection workflows.
    pub fees: FeeCollections,
    /// Refunds through the payment processor.
    pub billing: Arc<Billing>,
    /// The payment processor, for reconciliation.
    pub processor: Arc<dyn PaymentProcessor>,
    /// Verifies bearer tokens.
    pub keys: JwtKeys,
    /// The policy new sessions start with.
    pub policy: Arc<Policy>,
    /// The plan table.
    pub plans: Arc<Plans>,
    /// The base of join links, without a trailing slash.
    pub public_url: Arc<str>,
    /// Whether backend services get webhook events (new sessions start with it).
    pub webhooks: bool,
    /// The media service's settings, for its signed events.
    pub media: Arc<MediaSettings>,
    /// Request counts and latencies (`GET /metrics`).
    pub metrics: Arc<crate::metrics::HttpMetrics>,
}
