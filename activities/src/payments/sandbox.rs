//! The built-in sandbox processor: it keeps its records in its own tables (`sandbox_payments`),
//! approves or declines by the customer's card (`sandbox_cards`), and plays faults planned for
//! the next calls of a key (`sandbox_faults`): decline, fail before charging, or time out after
//! charging. Every call is logged (`sandbox_calls`).

use super::{
    ChargeRequest, Payment, PaymentKind, PaymentProcessor, PaymentStatus, ProcessorError,
    RefundRequest,
};
use crate::storage::{Db, StorageError, parse_column};
use crate::{execute, with_pool};
use chrono::{DateTime, Utc};
use livesessions_domain::{ClientId, Currency, Money, text_enum};
use sqlx::FromRow;
use std::time::Duration;
use uuid::Uuid;

/// How a customer's card answers charges.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CardBehaviour {
    /// Every charge succeeds (the default for a card never set).
    Approve,
    /// Every charge is declined.
    Decline,
}

text_enum!(CardBehaviour, "card behaviour", {
    Approve => "approve",
    Decline => "decline",
});

/// A fault for the next call of one key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// The charge is declined.
    Decline,
    /// The call fails before anything is charged.
    FailBeforeCharge,
    /// The charge is made, then the answer is lost: the call hangs for `delay` and times out.
    TimeoutAfterCharge {
        /// How long the call hangs first.
        delay: Duration,
    },
}

impl Fault {
    fn name(&self) -> &'static str {
        match self {
            Fault::Decline => "decline",
            Fault::FailBeforeCharge => "fail_before_charge",
            Fault::TimeoutAfterCharge { .. } => "timeout_after_charge",
        }
    }

    fn from_row(name: &str, delay_ms: i64) -> Result<Self, String> {
        match name {
            "decline" => Ok(Fault::Decline),
            "fail_before_charge" => Ok(Fault::FailBeforeCharge),
            "timeout_after_charge" => Ok(Fault::TimeoutAfterCharge {
                delay: Duration::from_millis(u64::try_from(delay_ms).unwrap_or_default()),
            }),
            other => Err(format!("unknown fault {other:?}")),
        }
    }
}

/// The sandbox processor, over the database.
#[derive(Debug, Clone)]
pub struct SandboxProcessor {
    db: Db,
}

impl SandboxProcessor {
    /// A sandbox keeping its records in `db`.
    pub fn new(db: Db) -> Self {
        Self { db }
    }
}

/// Sets how a customer's card answers.
pub async fn set_card(
    db: &Db,
    customer: ClientId,
    behaviour: CardBehaviour,
) -> Result<(), StorageError> {
    execute!(
        db,
        sqlx::query(
            "INSERT INTO sandbox_cards (customer_id, behaviour) VALUES ($1, $2)
             ON CONFLICT (customer_id) DO UPDATE SET behaviour = excluded.behaviour",
        )
        .bind(customer.as_uuid())
        .bind(behaviour.as_str())
    )?;
    Ok(())
}

/// Plans `fault` for the next `times` calls made under `key`.
pub async fn plan_fault(db: &Db, key: &str, fault: Fault, times: u32) -> Result<(), StorageError> {
    let delay_ms = match fault {
        Fault::TimeoutAfterCharge { delay } => i64::try_from(delay.as_millis()).unwrap_or(i64::MAX),
        _ => 0,
    };
    execute!(db, sqlx::query(
            "INSERT INTO sandbox_faults (id, idempotency_key, fault, delay_ms, remaining, created_at)
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(Uuid::new_v4())
        .bind(key)
        .bind(fault.name())
        .bind(delay_ms)
        .bind(i64::from(times))
        .bind(Utc::now()))?;
    Ok(())
}

/// What each call made under `key` came to, in order (`succeeded`, `declined`,
/// `failed_before_charge`, `timed_out_after_charge`).
pub async fn calls(db: &Db, key: &str) -> Result<Vec<String>, StorageError> {
    let outcomes = with_pool!(db, |pool| {
        sqlx::query_scalar(
            "SELECT outcome FROM sandbox_calls WHERE idempotency_key = $1 ORDER BY called_at, id",
        )
        .bind(key)
        .fetch_all(pool)
        .await
    })?;
    Ok(outcomes)
}

/// Records a payment the sandbox made (`charge_id`: the charge a refund gives back to). Tests
/// call it to plant a payment the ledger never saw. A key seen before records nothing.
pub async fn insert_payment(
    db: &Db,
    payment: &Payment,
    charge_id: Option<&str>,
) -> Result<(), StorageError> {
    let (status, decline_code) = match &payment.status {
        PaymentStatus::Succeeded => ("succeeded", None),
        PaymentStatus::Declined(code) => ("declined", Some(code.as_str())),
    };
    let kind = match payment.kind {
        PaymentKind::Charge => "charge",
        PaymentKind::Refund => "refund",
    };
    execute!(db, sqlx::query(
            "INSERT INTO sandbox_payments (id, idempotency_key, kind, customer_id, amount_minor, currency, status,
                                           decline_code, charge_id, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
             ON CONFLICT (idempotency_key) DO NOTHING",
        )
        .bind(&payment.id)
        .bind(&payment.idempotency_key)
        .bind(kind)
        .bind(payment.customer.as_uuid())
        .bind(payment.amount.amount_minor)
        .bind(payment.amount.currency.as_str())
        .bind(status)
        .bind(decline_code)
        .bind(charge_id)
        .bind(payment.created_at))?;
    Ok(())
}

#[derive(FromRow)]
struct PaymentRow {
    id: String,
    idempotency_key: String,
    kind: String,
    customer_id: Uuid,
    amount_minor: i64,
    currency: String,
    status: String,
    decline_code: Option<String>,
    created_at: DateTime<Utc>,
}

impl TryFrom<PaymentRow> for Payment {
    type Error = StorageError;
    fn try_from(row: PaymentRow) -> Result<Self, StorageError> {
        Ok(Payment {
            id: row.id,
            idempotency_key: row.idempotency_key,
            kind: if row.kind == "refund" { PaymentKind::Refund } else { PaymentKind::Charge },
            customer: ClientId::from_uuid(row.customer_id),
            amount: Money::new(
                row.amount_minor,
                parse_column("sandbox_payments.currency", Currency::parse(&row.currency))?,
            ),
            status: match row.status.as_str() {
                "succeeded" => PaymentStatus::Succeeded,
                _ => PaymentStatus::Declined(row.decline_code.unwrap_or_else(|| "declined".into())),
            },
            created_at: row.created_at,
        })
    }
}

const SELECT_PAYMENT: &str = "SELECT id, idempotency_key, kind, customer_id, amount_minor, currency, status, decline_code, created_at
                              FROM sandbox_payments";

fn unavailable(error: StorageError) -> ProcessorError {
    ProcessorError::Unavailable(error.to_string())
}

impl SandboxProcessor {
    async fn by_key(&self, key: &str) -> Result<Option<Payment>, StorageError> {
        let row: Option<PaymentRow> = with_pool!(&self.db, |pool| {
            sqlx::query_as(&format!("{SELECT_PAYMENT} WHERE idempotency_key = $1"))
                .bind(key)
                .fetch_optional(pool)
                .await
        })?;
        row.map(Payment::try_from).transpose()
    }

    async fn next_fault(&self, key: &str) -> Result<Option<Fault>, StorageError> {
        let row: Option<(String, i64)> = with_pool!(&self.db, |pool| {
            sqlx::query_as(
                "UPDATE sandbox_faults SET remaining = remaining - 1
                 WHERE id = (SELECT id FROM sandbox_faults WHERE idempotency_key = $1 AND remaining > 0
                             ORDER BY created_at, id LIMIT 1)
                   AND remaining > 0
                 RETURNING fault, delay_ms",
            )
            .bind(key)
            .fetch_optional(pool)
            .await
        })?;
        row.map(|(name, delay)| Fault::from_row(&name, delay).map_err(StorageError::Corrupt))
            .transpose()
    }

    async fn card(&self, customer: ClientId) -> Result<CardBehaviour, StorageError> {
        let behaviour: Option<String> = with_pool!(&self.db, |pool| {
            sqlx::query_scalar("SELECT behaviour FROM sandbox_cards WHERE customer_id = $1")
                .bind(customer.as_uuid())
                .fetch_optional(pool)
                .await
        })?;
        match behaviour {
            Some(text) => parse_column("sandbox_cards.behaviour", CardBehaviour::parse(&text)),
            None => Ok(CardBehaviour::Approve),
        }
    }

    async fn log(&self, key: &str, outcome: &str) -> Result<(), StorageError> {
        execute!(&self.db, sqlx::query("INSERT INTO sandbox_calls (id, idempotency_key, outcome, called_at) VALUES ($1, $2, $3, $4)")
                .bind(Uuid::new_v4())
                .bind(key)
                .bind(outcome)
                .bind(Utc::now()))?;
        Ok(())
    }

    /// Makes (or finds) the payment for `key` and plays the fault planned for this call.
    async fn pay(
        &self,
        kind: PaymentKind,
        key: &str,
        customer: ClientId,
        amount: Money,
        charge_id: Option<&str>,
    ) -> Result<Payment, ProcessorError> {
        let fault = self.next_fault(key).await.map_err(unavailable)?;
        if fault == Some(Fault::FailBeforeCharge) {
            self.log(key, "failed_before_charge").await.map_err(unavailable)?;
            return Err(ProcessorError::Unavailable(
                "the sandbox was told to fail before charging".into(),
            ));
        }
        if self.by_key(key).await.map_err(unavailable)?.is_none() {
            let declined = kind == PaymentKind::Charge
                && (fault == Some(Fault::Decline)
                    || self.card(customer).await.map_err(unavailable)? == CardBehaviour::Decline);
            let prefix = if kind == PaymentKind::Charge { "ch" } else { "re" };
            let payment = Payment {
                id: format!("sbx_{prefix}_{}", Uuid::new_v4().simple()),
                idempotency_key: key.to_string(),
                kind,
                customer,
                amount,
                status: if declined {
                    PaymentStatus::Declined("card_declined".into())
                } else {
                    PaymentStatus::Succeeded
                },
                created_at: Utc::now(),
            };
            insert_payment(&self.db, &payment, charge_id).await.map_err(unavailable)?;
        }
        let payment = self
            .by_key(key)
            .await
            .map_err(unavailable)?
            .ok_or_else(|| ProcessorError::Unavailable("the payment vanished".into()))?;
        if let Some(Fault::TimeoutAfterCharge { delay }) = fault {
            self.log(key, "timed_out_after_charge").await.map_err(unavailable)?;
            tokio::time::sleep(delay).await;
            return Err(ProcessorError::TimedOut);
        }
        let outcome = match payment.status {
            PaymentStatus::Succeeded => "succeeded",
            PaymentStatus::Declined(_) => "declined",
        };
        self.log(key, outcome).await.map_err(unavailable)?;
        Ok(payment)
    }
}

#[async_trait::async_trait]
impl PaymentProcessor for SandboxProcessor {
    async fn charge(&self, request: &ChargeRequest) -> Result<Payment, ProcessorError> {
        self.pay(
            PaymentKind::Charge,
            &request.idempotency_key,
            request.customer,
            request.amount,
            None,
        )
        .await
    }

    async fn refund(&self, request: &RefundRequest) -> Result<Payment, ProcessorError> {
        self.pay(
            PaymentKind::Refund,
            &request.idempotency_key,
            request.customer,
            request.amount,
            Some(&request.charge_id),
        )
        .await
    }

    async fn payment_by_key(&self, key: &str) -> Result<Option<Payment>, ProcessorError> {
        self.by_key(key).await.map_err(unavailable)
    }

    async fn payments_between(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<Payment>, ProcessorError> {
        let rows: Vec<PaymentRow> = with_pool!(&self.db, |pool| {
            sqlx::query_as(&format!("{SELECT_PAYMENT} WHERE created_at >= $1 AND created_at < $2 ORDER BY created_at, id"))
                .bind(from)
                .bind(to)
                .fetch_all(pool)
                .await
        })
        .map_err(|e| unavailable(e.into()))?;
        rows.into_iter().map(Payment::try_from).collect::<Result<_, _>>().map_err(unavailable)
    }
}
