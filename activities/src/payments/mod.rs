//! Payment processing behind a trait with Stripe-like semantics: a charge or refund carries an
//! idempotency key, and the same key always answers the first result. The built-in
//! [`sandbox::SandboxProcessor`] (the development default) keeps its own records and can be told
//! to decline, to fail before charging, or to time out after charging.

pub mod sandbox;

use crate::storage::Db;
use chrono::{DateTime, Utc};
use livesessions_domain::{ClientId, Money};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::time::Duration;

/// Which processor a deployment uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProcessorName {
    /// The built-in sandbox (its own tables in the service's database).
    Sandbox,
}

/// The `billing.*` configuration keys.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BillingSettings {
    /// The payment processor.
    pub processor: ProcessorName,
    /// How long one call may take before it counts as timed out (and is retried, same key).
    #[serde(with = "livesessions_domain::duration::text")]
    pub processor_timeout: Duration,
}

impl Default for BillingSettings {
    fn default() -> Self {
        Self { processor: ProcessorName::Sandbox, processor_timeout: Duration::from_secs(10) }
    }
}

impl BillingSettings {
    /// The configured processor.
    pub fn processor(&self, db: &Db) -> Arc<dyn PaymentProcessor> {
        match self.processor {
            ProcessorName::Sandbox => Arc::new(sandbox::SandboxProcessor::new(db.clone())),
        }
    }
}

/// A charge to make.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChargeRequest {
    /// The same key never charges twice; a repeat answers the first result.
    pub idempotency_key: String,
    /// Whose card.
    pub customer: ClientId,
    /// How much.
    pub amount: Money,
}

/// A refund to make.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefundRequest {
    /// The same key never refunds twice.
    pub idempotency_key: String,
    /// The processor's id of the charge to refund.
    pub charge_id: String,
    /// Whose card.
    pub customer: ClientId,
    /// How much.
    pub amount: Money,
}

/// Charge or refund.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PaymentKind {
    /// Money taken.
    Charge,
    /// Money given back.
    Refund,
}

/// What the processor did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "status", content = "decline_code")]
pub enum PaymentStatus {
    /// The money moved.
    Succeeded,
    /// The card refused; nothing moved. Retrying does not help.
    Declined(String),
}

/// One record at the processor.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Payment {
    /// The processor's id.
    pub id: String,
    /// The key it was made under.
    pub idempotency_key: String,
    /// Charge or refund.
    pub kind: PaymentKind,
    /// Whose card.
    pub customer: ClientId,
    /// How much.
    pub amount: Money,
    /// What happened.
    #[serde(flatten)]
    pub status: PaymentStatus,
    /// When.
    pub created_at: DateTime<Utc>,
}

/// Why a call got no answer. Both are transient: the caller retries with the same key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProcessorError {
    /// The processor refused the call before doing anything.
    #[error("the payment processor is unavailable: {0}")]
    Unavailable(String),
    /// No answer in time: the charge may or may not have been made.
    #[error("the payment processor did not answer in time")]
    TimedOut,
}

/// A payment processor.
#[async_trait::async_trait]
pub trait PaymentProcessor: Send + Sync {
    /// Charges a customer, once per key.
    async fn charge(&self, request: &ChargeRequest) -> Result<Payment, ProcessorError>;

    /// Refunds (part of) a charge, once per key.
    async fn refund(&self, request: &RefundRequest) -> Result<Payment, ProcessorError>;

    /// What the processor did under `key`: the charge or refund made under it (succeeded or
    /// declined), or `None` when it made none. It moves nothing, so a caller that lost a
    /// charge's answer can learn whether the money was taken.
    async fn payment_by_key(&self, key: &str) -> Result<Option<Payment>, ProcessorError>;

    /// Every charge and refund made in `[from, to)`, for reconciliation.
    async fn payments_between(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<Payment>, ProcessorError>;
}
