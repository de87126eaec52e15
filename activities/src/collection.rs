//! Collecting fees left outstanding (rule 3 of the money rules). A fee posted as outstanding
//! gets its row and the client's first email in the same database transaction, then its
//! `FeeCollection` workflow (started from the activity that posted it, so the `LiveSession`
//! workflow's history is unchanged). Each attempt charges under its own key and posts what it
//! came to; the fee's end (waived, written off) posts its ledger transaction. Every step moves the
//! fee's row, posts to the ledger and queues the client's email in one database transaction, and
//! is idempotent under its key.

use crate::billing::{Billing, BillingError, fee_entry};
use crate::payments::{ChargeRequest, PaymentStatus};
use crate::storage::fee_collections::{self, Ending};
use crate::storage::ledger::{self, EntryKind, NewEntry, Posting, accounts};
use crate::storage::{WriteTx, outbox};
use chrono::{DateTime, Utc};
use livesessions_domain::fee_collection::{attempt_key, settlement_key, workflow_id};
use livesessions_domain::{CollectionState, FeeStatus};
use livesessions_workflows::activities::{
    CollectFee, CollectionAttempt, DeliveryInput, FeeCharge, FeeEmail, FeeNotice, FeeSettlement,
    FeeWaiver, SettleFee, Settlement,
};
use livesessions_workflows::{FeeCollection, FeeCollectionInput};
use std::sync::Arc;
use temporalio_client::errors::WorkflowStartError;
use temporalio_client::{
    Client, WorkflowIdConflictPolicy, WorkflowIdReusePolicy, WorkflowStartOptions,
};
use temporalio_sdk::activities::{ActivityContext, ActivityError, activities};

/// Starts the `FeeCollection` workflow of `input.fee` on `task_queue`, or finds the one started
/// before (running or ended): however often it is asked, a fee has one collection.
pub async fn start(
    client: &Client,
    task_queue: &str,
    input: FeeCollectionInput,
) -> Result<(), WorkflowStartError> {
    let options = WorkflowStartOptions::new(task_queue.to_string(), workflow_id(&input.fee.key))
        .id_conflict_policy(WorkflowIdConflictPolicy::UseExisting)
        .id_reuse_policy(WorkflowIdReusePolicy::RejectDuplicate)
        .static_summary("fee collection".to_string())
        .build();
    match client.start_workflow(FeeCollection::run, input, options).await {
        Ok(_) | Err(WorkflowStartError::AlreadyStarted { .. }) => Ok(()),
        Err(other) => Err(other),
    }
}

/// Queues the client's email about `fee`, under `key`, inside `tx`.
async fn tell_client(
    tx: &mut WriteTx,
    key: String,
    fee: &FeeCharge,
    notice: FeeNotice,
    now: DateTime<Utc>,
) -> Result<(), crate::storage::StorageError> {
    let email = FeeEmail { key: key.clone(), client_id: fee.client_id, amount: fee.amount, notice };
    outbox::enqueue_in(tx, &key, &DeliveryInput::Fee(email), now).await
}

/// Inside `tx`, after the fee was posted as outstanding: its row, its first attempt due at
/// `next_attempt_at`, and the client's email saying so (once per fee).
pub(crate) async fn open(
    tx: &mut WriteTx,
    fee: &FeeCharge,
    next_attempt_at: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> Result<(), crate::storage::StorageError> {
    if fee_collections::open(tx, fee, next_attempt_at, now).await? {
        let notice = FeeNotice::Outstanding { next_attempt_at };
        tell_client(tx, format!("{}:outstanding", fee.key), fee, notice, now).await?;
    }
    Ok(())
}

impl Billing {
    /// One collection attempt: charges under `<fee key>:collect:<n>`; taken, it is posted
    /// (`fee_collected`: the processor's money settles the client's receivable) and the fee is
    /// collected; declined, the attempt is recorded and the client told when the next one is
    /// due (the last one's news is the write-off). A retry charges nothing more.
    pub async fn collect(
        &self,
        ctx: Option<&ActivityContext>,
        attempt: &CollectionAttempt,
    ) -> Result<CollectionState, BillingError> {
        let fee = &attempt.fee;
        let key = attempt_key(&fee.key, attempt.attempt);
        let request = ChargeRequest {
            idempotency_key: key.clone(),
            customer: fee.client_id,
            amount: fee.amount,
        };
        let payment = self.charge(ctx, &request).await?;
        let now = Utc::now();
        let mut tx = self.db().begin_write().await?;
        let state = if payment.status == PaymentStatus::Succeeded {
            let entry = NewEntry {
                key: &key,
                kind: EntryKind::FeeCollected,
                client_id: fee.client_id,
                session_id: Some(fee.session_id),
                processor_ref: Some(&payment.id),
                postings: Posting::money(
                    accounts::PROCESSOR,
                    accounts::receivable(fee.client_id),
                    fee.amount,
                )
                .into(),
            };
            ledger::post(&mut tx, &entry, now).await?;
            let ending = Ending {
                state: CollectionState::Collected,
                settled_key: &key,
                attempts: attempt.attempt,
                waiver: None,
            };
            fee_collections::settle(&mut tx, &fee.key, &ending, now).await?;
            CollectionState::Collected
        } else {
            let next = attempt.next_attempt_at;
            let recorded =
                fee_collections::attempt_failed(&mut tx, &fee.key, attempt.attempt, next, now)
                    .await?;
            if recorded && next.is_some() {
                let notice = FeeNotice::Outstanding { next_attempt_at: next };
                tell_client(&mut tx, format!("{key}:declined"), fee, notice, now).await?;
            }
            CollectionState::Outstanding
        };
        tx.commit().await?;
        Ok(state)
    }

    /// Ends an outstanding fee without collecting it, in a transaction of its own (see
    /// [`settle_in`]).
    pub async fn settle(
        &self,
        settlement: &FeeSettlement,
    ) -> Result<CollectionState, BillingError> {
        let mut tx = self.db().begin_write().await?;
        let state = settle_in(&mut tx, settlement, Utc::now()).await?;
        tx.commit().await?;
        Ok(state)
    }

    /// An operator's waiver of a session's fee as the session ends: in one transaction the fee
    /// is posted as owed under its key (with its collection row, but no "still owed" email), the
    /// operator's reason kept as the waiver's, and the fee waived at once through [`settle_in`],
    /// the step that ends finance's waiver of an outstanding fee: the same `fee_waived`
    /// transaction, the same row. Idempotent.
    pub async fn waive_at_once(&self, waiver: &FeeWaiver) -> Result<FeeStatus, BillingError> {
        let fee = &waiver.fee;
        let now = Utc::now();
        let mut tx = self.db().begin_write().await?;
        ledger::post(&mut tx, &fee_entry(fee, None), now).await?;
        fee_collections::open(&mut tx, fee, None, now).await?;
        fee_collections::waiver_of_operator_action(&mut tx, waiver.waiver, &fee.key).await?;
        let settlement =
            FeeSettlement { fee: fee.clone(), settlement: Settlement::Waived(waiver.waiver) };
        settle_in(&mut tx, &settlement, now).await?;
        tx.commit().await?;
        Ok(FeeStatus::Waived)
    }
}

/// Ends an outstanding fee without collecting it, inside `tx`: posts `fee_waived` or
/// `fee_written_off` (the receivable moved to `fees:waived` or `fees:written_off`) under
/// `<fee key>:<state>`, and records it; a write-off is emailed to the client. The one way a fee
/// is waived, whoever waives it.
async fn settle_in(
    tx: &mut WriteTx,
    settlement: &FeeSettlement,
    now: DateTime<Utc>,
) -> Result<CollectionState, crate::storage::StorageError> {
    let fee = &settlement.fee;
    let (state, kind, account, waiver) = match settlement.settlement {
        Settlement::Waived(waiver) => {
            (CollectionState::Waived, EntryKind::FeeWaived, accounts::FEES_WAIVED, Some(waiver))
        }
        Settlement::WrittenOff => (
            CollectionState::WrittenOff,
            EntryKind::FeeWrittenOff,
            accounts::FEES_WRITTEN_OFF,
            None,
        ),
    };
    let key = settlement_key(&fee.key, state);
    let entry = NewEntry {
        key: &key,
        kind,
        client_id: fee.client_id,
        session_id: Some(fee.session_id),
        processor_ref: None,
        postings: Posting::money(account, accounts::receivable(fee.client_id), fee.amount).into(),
    };
    ledger::post(tx, &entry, now).await?;
    let ending = Ending { state, settled_key: &key, attempts: 0, waiver };
    fee_collections::settle(tx, &fee.key, &ending, now).await?;
    if state == CollectionState::WrittenOff {
        tell_client(tx, key.clone(), fee, FeeNotice::WrittenOff, now).await?;
    }
    Ok(state)
}

/// The activities of the `FeeCollection` workflow, over billing.
pub struct Collections {
    billing: Arc<Billing>,
}

impl Collections {
    /// Collection activities that charge and post through `billing`.
    pub fn new(billing: Billing) -> Self {
        Self { billing: Arc::new(billing) }
    }
}

#[activities]
impl Collections {
    /// See [`CollectFee`].
    #[activity(definition = CollectFee)]
    pub async fn collect_fee(
        self: Arc<Self>,
        ctx: ActivityContext,
        attempt: CollectionAttempt,
    ) -> Result<CollectionState, ActivityError> {
        Ok(self.billing.collect(Some(&ctx), &attempt).await?)
    }

    /// See [`SettleFee`].
    #[activity(definition = SettleFee)]
    pub async fn settle_fee(
        self: Arc<Self>,
        _ctx: ActivityContext,
        settlement: FeeSettlement,
    ) -> Result<CollectionState, ActivityError> {
        Ok(self.billing.settle(&settlement).await?)
    }
}
