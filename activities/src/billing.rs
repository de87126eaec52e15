//! Billing: holding a booking with its credit (buying one through the payment processor if
//! asked), late-reschedule replacements, settling credits, fees charged once (a fee left
//! outstanding starts its collection, see `collection`), credits bought outside a session,
//! refunds, and insurance authorizations. Every movement is posted to the ledger under its
//! idempotency key, and the same key goes to the processor.

use crate::collection;
use crate::metrics::WorkerMetrics;
use crate::payments::{
    ChargeRequest, Payment, PaymentKind, PaymentProcessor, PaymentStatus, ProcessorError,
};
use crate::storage::credits::{self, CreditKind, Purchase};
use crate::storage::ledger::{self, EntryKind, NewEntry, Posting, accounts};
use crate::storage::sessions::{self, Clash, Slot, SlotWrite};
use crate::storage::{Db, StorageError};
use chrono::{DateTime, Utc};
use livesessions_domain::{
    CreditId, FeeKind, FeeStatus, Money, Refusal, RefusalCode, fee_collection, policy,
};
use livesessions_workflows::FeeCollectionInput;
use livesessions_workflows::activities::{
    AuthorizationGrant, AuthorizeNext, BuyCredit, ChargeFee, CreditMove, CreditOrder, FeeCharge,
    HoldBooking, HoldNewTime, HoldOutcome, HoldRequest, NewTimeRequest, PurchaseOutcome,
    RecordUnpaidFee, SettleCredit,
};
use std::sync::Arc;
use std::time::Duration;
use temporalio_sdk::activities::{ActivityContext, ActivityError, activities};
use uuid::Uuid;

/// Why a billing step did not finish; both are transient and retried with the same keys.
#[derive(Debug, thiserror::Error)]
pub enum BillingError {
    /// The database failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// The payment processor did not answer.
    #[error(transparent)]
    Processor(#[from] ProcessorError),
    /// A refund was asked of the processor and is not confirmed (the processor did not answer,
    /// or the ledger could not post it): it may have been made. The same refund asked again
    /// (its key is stable) finishes it.
    #[error("refund {refund_key} is not confirmed: {reason}")]
    RefundUnconfirmed {
        /// Whose money it is.
        client: livesessions_domain::ClientId,
        /// The refund's ledger and processor key.
        refund_key: String,
        /// What went wrong.
        reason: String,
    },
}

/// The billing activities, over the database and a payment processor.
pub struct Billing {
    db: Db,
    processor: Arc<dyn PaymentProcessor>,
    processor_timeout: Duration,
    collection_schedule: Vec<Duration>,
    metrics: Option<WorkerMetrics>,
}

impl Billing {
    /// Billing that keeps credits and the ledger in `db` and charges through `processor`,
    /// waiting at most `processor_timeout` for each answer. A fee it leaves outstanding is
    /// collected on the default `policy.collection_schedule`.
    pub fn new(db: Db, processor: Arc<dyn PaymentProcessor>, processor_timeout: Duration) -> Self {
        let collection_schedule = livesessions_domain::Policy::default().collection_schedule;
        Self { db, processor, processor_timeout, collection_schedule, metrics: None }
    }

    /// The same billing, counting bookings held and refused and fees posted in `metrics`.
    pub fn with_metrics(self, metrics: WorkerMetrics) -> Self {
        Self { metrics: Some(metrics), ..self }
    }

    /// The same billing, collecting the fees it leaves outstanding on `schedule` (offsets from
    /// when each was left outstanding).
    pub fn with_collection_schedule(self, schedule: Vec<Duration>) -> Self {
        Self { collection_schedule: schedule, ..self }
    }

    /// The database.
    pub(crate) fn db(&self) -> &Db {
        &self.db
    }

    /// Charges through the processor, at most `processor_timeout`, heartbeating meanwhile so a
    /// worker that dies mid-call is noticed.
    pub(crate) async fn charge(
        &self,
        ctx: Option<&ActivityContext>,
        request: &ChargeRequest,
    ) -> Result<Payment, ProcessorError> {
        let call = tokio::time::timeout(self.processor_timeout, self.processor.charge(request));
        tokio::pin!(call);
        let mut beat = tokio::time::interval(Duration::from_secs(1));
        loop {
            tokio::select! {
                answer = &mut call => return answer.unwrap_or(Err(ProcessorError::TimedOut)),
                _ = beat.tick() => {
                    if let Some(ctx) = ctx {
                        let _ = ctx.record_heartbeat(()).await;
                    }
                }
            }
        }
    }

    /// In one transaction: the session's first read-model row and a reserved credit (or
    /// insurance authorization); or nothing at all. When none is left and the request says so, a
    /// credit is bought first (`<workflow id>:credit_purchase`), then recorded and reserved. A
    /// retry after the first attempt committed answers what that attempt held.
    pub async fn hold(
        &self,
        ctx: Option<&ActivityContext>,
        request: &HoldRequest,
        now: DateTime<Utc>,
    ) -> Result<HoldOutcome, BillingError> {
        let session = &request.session;
        let mut tx = self.db.begin_write().await?;
        if sessions::exists(&mut tx, session.id).await? {
            let held = credits::reserved_for(&mut tx, session.id).await?;
            let credit = held.first().copied().ok_or_else(|| {
                StorageError::Corrupt(format!("session {} holds no credit", session.id))
            })?;
            return Ok(HoldOutcome::Held { credit });
        }
        if let Some(refusal) = hold_slot(&mut tx, session, now).await? {
            return Ok(HoldOutcome::Refused(refusal));
        }
        let kind = CreditKind::for_coverage(session.coverage);
        if let Some(credit) =
            credits::reserve(&mut tx, session.client_id, kind, session.id, now).await?
        {
            tx.commit().await?;
            return Ok(HoldOutcome::Held { credit });
        }
        drop(tx);
        let refusal = match (kind, request.purchase) {
            (CreditKind::Credit, Some(price)) => {
                let key = format!("{}:credit_purchase", session.workflow_id);
                let charge = ChargeRequest {
                    idempotency_key: key.clone(),
                    customer: session.client_id,
                    amount: price,
                };
                let payment = self.charge(ctx, &charge).await?;
                if payment.status != PaymentStatus::Succeeded {
                    return Ok(HoldOutcome::Refused(Refusal::new(
                        RefusalCode::PaymentDeclined,
                        "the card was declined: no credit was bought",
                    )));
                }
                let mut tx = self.db.begin_write().await?;
                let slot = hold_slot(&mut tx, session, now).await?;
                let reserved_for = if slot.is_none() { Some(session.id) } else { None };
                let purchase = Purchase {
                    key: &key,
                    client: session.client_id,
                    session: reserved_for,
                    price,
                    charge_id: &payment.id,
                };
                // The credit is bought either way; it holds the session when the slot is still free.
                let credit = credits::add_purchased(&mut tx, &purchase, now).await?;
                tx.commit().await?;
                match slot {
                    None => return Ok(HoldOutcome::Held { credit }),
                    Some(refusal) => refusal,
                }
            }
            (CreditKind::Credit, None) => Refusal::new(
                RefusalCode::NoCredit,
                "the client has no session credit left; book with purchase_credit: true to buy one",
            ),
            (CreditKind::Authorization, _) => Refusal::new(
                RefusalCode::AuthorizationRequired,
                "the client has not authorized a session: authorize the estimate of the next session first",
            ),
        };
        Ok(HoldOutcome::Refused(refusal))
    }

    /// Holds a session's new time and, when late, a second credit, in one transaction; or
    /// refuses and changes nothing. A retry after the first attempt committed answers the same.
    pub async fn hold_new_time(
        &self,
        request: &NewTimeRequest,
        now: DateTime<Utc>,
    ) -> Result<HoldOutcome, BillingError> {
        let mut tx = self.db.begin_write().await?;
        let held = credits::reserved_for(&mut tx, request.session_id).await?;
        let slot = Slot {
            session: request.session_id,
            provider: request.provider_id,
            client: request.client_id,
            starts_at: request.starts_at,
            ends_at: request.ends_at,
        };
        if let Some(clash) = sessions::hold(&mut tx, &slot, SlotWrite::Move).await? {
            return Ok(HoldOutcome::Refused(slot_taken(clash)));
        }
        let credit = match (request.late, held.as_slice()) {
            (true, [_, .., newest]) => *newest,
            (true, _) => {
                let kind = CreditKind::for_coverage(request.coverage);
                match credits::reserve(&mut tx, request.client_id, kind, request.session_id, now)
                    .await?
                {
                    Some(credit) => credit,
                    None => {
                        let code = if kind == CreditKind::Credit {
                            RefusalCode::NoCredit
                        } else {
                            RefusalCode::AuthorizationRequired
                        };
                        let refusal = Refusal::new(
                            code,
                            "a late reschedule needs another credit for the new time, and none is left",
                        );
                        return Ok(HoldOutcome::Refused(refusal));
                    }
                }
            }
            (false, [first, ..]) => *first,
            (false, []) => {
                return Err(StorageError::Corrupt(format!(
                    "session {} holds no credit",
                    request.session_id
                ))
                .into());
            }
        };
        tx.commit().await?;
        Ok(HoldOutcome::Held { credit })
    }

    /// Buys one credit outside any session: charges the order's price under the purchase's
    /// key, then grants the credit and posts the purchase in one transaction under the same key.
    /// Answers the credit, or the refusal when the card is declined; a retry charges nothing
    /// more and answers the same.
    pub async fn buy(
        &self,
        ctx: Option<&ActivityContext>,
        order: &CreditOrder,
    ) -> Result<PurchaseOutcome, BillingError> {
        let key = order.purchase_id.charge_key();
        let charge = ChargeRequest {
            idempotency_key: key.clone(),
            customer: order.client_id,
            amount: order.price,
        };
        let payment = self.charge(ctx, &charge).await?;
        if let PaymentStatus::Declined(code) = &payment.status {
            return Ok(PurchaseOutcome::Declined(Refusal::new(
                RefusalCode::PaymentDeclined,
                format!("the card was declined ({code}): no credit was bought"),
            )));
        }
        let purchase = Purchase {
            key: &key,
            client: order.client_id,
            session: None,
            price: order.price,
            charge_id: &payment.id,
        };
        let credit = credits::add_purchased_alone(&self.db, &purchase, Utc::now()).await?;
        Ok(PurchaseOutcome::Bought { credit })
    }
}

impl Billing {
    /// Refunds money the processor took under the ledger transaction `key`: `amount_minor`, or
    /// all that is left of it, under the refund's own key `<key>:refund:<refund id>`. The same
    /// refund id is the same refund: asked again, it refunds nothing more and answers the first
    /// one. The refunds of one transaction never add up to more than it took. A purchase
    /// refunded in full first revokes the credit it bought, and is refused when a session holds
    /// or used that credit. Answers the refund's ledger transaction, or why it cannot be made;
    /// `None` when no transaction has `key`.
    pub async fn refund(
        &self,
        key: &str,
        refund_id: Uuid,
        amount_minor: Option<i64>,
    ) -> Result<Option<Result<ledger::Entry, Refusal>>, BillingError> {
        let Some(original) = ledger::entry(&self.db, key).await? else {
            return Ok(None);
        };
        let refund_key = format!("{key}:refund:{refund_id}");
        if let Some(done) = ledger::entry(&self.db, &refund_key).await? {
            return Ok(Some(Ok(done)));
        }
        let refusal = |code, message: &str| Ok(Some(Err(Refusal::new(code, message))));
        let taken = original.amount_on(accounts::PROCESSOR);
        let (Some(charge_id), true) = (original.processor_ref.clone(), taken > 0) else {
            return refusal(
                RefusalCode::NotRefundable,
                "only money the processor took can be refunded",
            );
        };
        let refunded = refunded_of(&self.db, &original).await?;
        let left = taken - refunded;
        let amount = amount_minor.unwrap_or(left);
        if amount <= 0 || amount > left {
            return refusal(
                RefusalCode::NotRefundable,
                &format!(
                    "{refunded} of the {taken} minor units taken are refunded already: a refund is between 1 and {left}"
                ),
            );
        }
        // A collected fee's money settled the client's receivable; what it earned is the fee's
        // revenue, which its refund gives back (the client does not owe it again).
        let earned_by = match fee_collection::fee_of_attempt(key) {
            Some(fee_key) if original.kind == EntryKind::FeeCollected => {
                ledger::entry(&self.db, fee_key).await?.unwrap_or_else(|| original.clone())
            }
            _ => original.clone(),
        };
        let taken_from = earned_by
            .postings
            .iter()
            .find(|p| p.amount < 0 && p.unit != accounts::CREDIT)
            .map(|p| (p.account.clone(), p.unit.clone()));
        let Some((revenue, unit)) = taken_from else {
            return refusal(RefusalCode::NotRefundable, "the transaction credits no money account");
        };
        let money = Money::new(
            amount,
            livesessions_domain::Currency::parse(&unit).map_err(|e| StorageError::Corrupt(e.0))?,
        );
        if original.kind == EntryKind::CreditPurchase
            && amount == left
            && !credits::revoke_purchased(&self.db, key, Utc::now()).await?
        {
            return refusal(
                RefusalCode::CreditAlreadyUsed,
                "a session holds or used the credit this purchase bought: the purchase cannot be refunded in full (a partial refund can be made)",
            );
        }
        let request = crate::payments::RefundRequest {
            idempotency_key: refund_key.clone(),
            charge_id,
            customer: original.client_id,
            amount: money,
        };
        // From here on the refund may have happened (and a purchase's credit is revoked): a
        // processor that does not answer, or a ledger that cannot take the refund, leaves it
        // unconfirmed, never "nothing changed".
        let unconfirmed = |reason: String| BillingError::RefundUnconfirmed {
            client: original.client_id,
            refund_key: refund_key.clone(),
            reason,
        };
        let payment = tokio::time::timeout(self.processor_timeout, self.processor.refund(&request))
            .await
            .unwrap_or(Err(ProcessorError::TimedOut))
            .map_err(|error| unconfirmed(error.to_string()))?;
        let entry = NewEntry {
            key: &refund_key,
            kind: EntryKind::Refund,
            client_id: original.client_id,
            session_id: original.session_id,
            processor_ref: Some(&payment.id),
            postings: Posting::money(revenue, accounts::PROCESSOR, money).into(),
        };
        ledger::post_alone(&self.db, &entry, Utc::now())
            .await
            .map_err(|error| unconfirmed(error.to_string()))?;
        Ok(ledger::entry(&self.db, &refund_key).await?.map(Ok))
    }
}

/// How much of `original`'s money has been given back: the sum of its refunds, keyed
/// `<key>:refund:<refund id>` (or `<key>:refund`, the one key refunds had before issue 11).
async fn refunded_of(db: &Db, original: &ledger::Entry) -> Result<i64, StorageError> {
    let filter = ledger::LedgerFilter { client_id: Some(original.client_id), ..Default::default() };
    let prefix = format!("{}:refund", original.key);
    let of_original = |key: &str| {
        key.strip_prefix(&prefix).is_some_and(|rest| {
            rest.is_empty() || rest.strip_prefix(':').is_some_and(|id| Uuid::parse_str(id).is_ok())
        })
    };
    Ok(ledger::entries(db, &filter)
        .await?
        .iter()
        .filter(|e| e.kind == EntryKind::Refund && of_original(&e.key))
        .map(|e| -e.amount_on(accounts::PROCESSOR))
        .sum())
}

/// Writes the session's first row, holding its time, or answers the refusal when another
/// session of the provider or the client has that time.
async fn hold_slot(
    tx: &mut crate::storage::WriteTx,
    session: &livesessions_domain::SessionSnapshot,
    now: DateTime<Utc>,
) -> Result<Option<Refusal>, StorageError> {
    let slot = Slot::of(session);
    Ok(sessions::hold(tx, &slot, SlotWrite::First(session, now)).await?.map(slot_taken))
}

/// The refusal of a time someone already has.
fn slot_taken(clash: Clash) -> Refusal {
    let message = match clash {
        Clash::Provider => "the provider already has a session at that time",
        Clash::Client => "the client already has a session at that time",
    };
    Refusal::new(RefusalCode::SlotTaken, message)
}

/// A fee's status once posted: charged when the processor took it, else owed.
fn status_of(charged: bool) -> FeeStatus {
    if charged { FeeStatus::Charged } else { FeeStatus::Outstanding }
}

/// The revenue account of a fee.
fn revenue(kind: FeeKind) -> &'static str {
    match kind {
        FeeKind::LateCancelFee => accounts::LATE_CANCEL_FEES,
        FeeKind::NoShowFee => accounts::NO_SHOW_FEES,
        FeeKind::Copay => accounts::COPAYS,
    }
}

fn entry_kind(kind: FeeKind) -> EntryKind {
    match kind {
        FeeKind::LateCancelFee => EntryKind::LateCancelFee,
        FeeKind::NoShowFee => EntryKind::NoShowFee,
        FeeKind::Copay => EntryKind::Copay,
    }
}

/// The ledger transaction of a fee under its key: charged (the processor's money) when
/// `payment` took it, else owed by the client (their receivable).
pub(crate) fn fee_entry<'a>(fee: &'a FeeCharge, payment: Option<&'a Payment>) -> NewEntry<'a> {
    let debit = match payment {
        Some(payment) if payment.status == PaymentStatus::Succeeded => {
            accounts::PROCESSOR.to_string()
        }
        _ => accounts::receivable(fee.client_id),
    };
    NewEntry {
        key: &fee.key,
        kind: entry_kind(fee.kind),
        client_id: fee.client_id,
        session_id: Some(fee.session_id),
        processor_ref: payment.map(|p| p.id.as_str()),
        postings: Posting::money(debit, revenue(fee.kind), fee.amount).into(),
    }
}

impl Billing {
    /// Posts a fee to the ledger under its key: charged when the processor took it, outstanding
    /// (owed by the client) when it was declined or the processor could not be reached. A fee
    /// left outstanding gets its collection row and the client's email in the same transaction
    /// (its first attempt due at the schedule's first offset). Answers the fee's status, also
    /// when the key was posted before.
    pub async fn post_fee(
        &self,
        fee: &FeeCharge,
        payment: Option<&Payment>,
    ) -> Result<FeeStatus, StorageError> {
        let charged = payment.is_some_and(|p| p.status == PaymentStatus::Succeeded);
        let entry = fee_entry(fee, payment);
        let now = Utc::now();
        let mut tx = self.db.begin_write().await?;
        if ledger::post(&mut tx, &entry, now).await? {
            if !charged {
                let first = self.collection_schedule.first();
                let next_attempt_at = first.map(|offset| now + policy::delta(*offset));
                collection::open(&mut tx, fee, next_attempt_at, now).await?;
            }
            tx.commit().await?;
            // Counted once it is posted, not on each retry that finds it posted.
            if let Some(metrics) = &self.metrics {
                metrics.fee_posted(fee.kind, status_of(charged));
            }
            return Ok(status_of(charged));
        }
        drop(tx);
        Ok(match ledger::entry(&self.db, &fee.key).await? {
            Some(entry) if entry.amount_on(accounts::PROCESSOR) != 0 => FeeStatus::Charged,
            _ => FeeStatus::Outstanding,
        })
    }

    /// Posts the fee and, when it is left outstanding, starts its collection (from here, so a
    /// retry of this activity finds the collection it started).
    async fn post_and_collect(
        &self,
        ctx: &ActivityContext,
        fee: FeeCharge,
        payment: Option<&Payment>,
    ) -> Result<FeeStatus, ActivityError> {
        let status = self.post_fee(&fee, payment).await?;
        if status == FeeStatus::Outstanding {
            let input = FeeCollectionInput { fee, schedule: self.collection_schedule.clone() };
            collection::start(&ctx.client(), &ctx.info().task_queue, input).await?;
        }
        Ok(status)
    }
}

#[activities]
impl Billing {
    /// See [`HoldBooking`].
    #[activity(definition = HoldBooking)]
    pub async fn hold_booking(
        self: Arc<Self>,
        ctx: ActivityContext,
        request: HoldRequest,
    ) -> Result<HoldOutcome, ActivityError> {
        let outcome = self.hold(Some(&ctx), &request, Utc::now()).await?;
        if let Some(metrics) = &self.metrics {
            match &outcome {
                HoldOutcome::Held { .. } => metrics.session_held(),
                HoldOutcome::Refused(refusal) => metrics.booking_refused(refusal.code),
            }
        }
        Ok(outcome)
    }

    /// See [`HoldNewTime`].
    #[activity(definition = HoldNewTime)]
    pub async fn hold_new_time_activity(
        self: Arc<Self>,
        _ctx: ActivityContext,
        request: NewTimeRequest,
    ) -> Result<HoldOutcome, ActivityError> {
        Ok(self.hold_new_time(&request, Utc::now()).await?)
    }

    /// See [`SettleCredit`].
    #[activity(definition = SettleCredit)]
    pub async fn settle_credit(
        self: Arc<Self>,
        _ctx: ActivityContext,
        movement: CreditMove,
    ) -> Result<(), ActivityError> {
        credits::settle(&self.db, &movement, Utc::now()).await?;
        Ok(())
    }

    /// See [`ChargeFee`].
    #[activity(definition = ChargeFee)]
    pub async fn charge_fee(
        self: Arc<Self>,
        ctx: ActivityContext,
        fee: FeeCharge,
    ) -> Result<FeeStatus, ActivityError> {
        let request = ChargeRequest {
            idempotency_key: fee.key.clone(),
            customer: fee.client_id,
            amount: fee.amount,
        };
        let payment = self.charge(Some(&ctx), &request).await?;
        self.post_and_collect(&ctx, fee, Some(&payment)).await
    }

    /// See [`RecordUnpaidFee`]. The processor is asked first what it did under the fee's key:
    /// a charge it made (its answer lost to a timeout, or the ledger unreachable when it came)
    /// is posted as charged. When it cannot say, the fee is posted as outstanding, and
    /// reconciliation shows it if the processor did collect it.
    #[activity(definition = RecordUnpaidFee)]
    pub async fn record_unpaid_fee(
        self: Arc<Self>,
        ctx: ActivityContext,
        fee: FeeCharge,
    ) -> Result<FeeStatus, ActivityError> {
        let lookup = self.processor.payment_by_key(&fee.key);
        let payment = match tokio::time::timeout(self.processor_timeout, lookup).await {
            Ok(Ok(found)) => found.filter(|p| p.kind == PaymentKind::Charge),
            Ok(Err(error)) => {
                tracing::warn!(key = %fee.key, %error, "the processor cannot say whether it charged the fee");
                None
            }
            Err(_) => {
                tracing::warn!(key = %fee.key, "the processor did not say in time whether it charged the fee");
                None
            }
        };
        self.post_and_collect(&ctx, fee, payment.as_ref()).await
    }

    /// See [`BuyCredit`].
    #[activity(definition = BuyCredit)]
    pub async fn buy_credit(
        self: Arc<Self>,
        ctx: ActivityContext,
        order: CreditOrder,
    ) -> Result<PurchaseOutcome, ActivityError> {
        Ok(self.buy(Some(&ctx), &order).await?)
    }

    /// See [`AuthorizeNext`].
    #[activity(definition = AuthorizeNext)]
    pub async fn authorize_next(
        self: Arc<Self>,
        _ctx: ActivityContext,
        grant: AuthorizationGrant,
    ) -> Result<CreditId, ActivityError> {
        Ok(credits::grant_authorization(&self.db, &grant, Utc::now()).await?)
    }
}
