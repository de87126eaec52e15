//! Operators' repairs that move money or credits: a session's fee waived as the session ends
//! (through the waiver step finance's waivers take, see `collection`), and a credit granted or
//! removed. Each is idempotent under its action's key, because Temporal retries them.

use crate::billing::{Billing, BillingError};
use crate::storage::clients;
use crate::storage::credits::{self, CreditKind};
use chrono::Utc;
use livesessions_domain::{FeeStatus, Refusal, RefusalCode};
use livesessions_workflows::activities::{
    AdjustCredit, Adjustment, AdjustmentOutcome, CreditAdjustmentRequest, FeeWaiver, WaiveFee,
};
use std::sync::Arc;
use temporalio_sdk::activities::{ActivityContext, ActivityError, activities};

/// The activities of operators' repairs, over billing.
pub struct Adjustments {
    billing: Arc<Billing>,
}

impl Adjustments {
    /// Repairs that post through `billing`.
    pub fn new(billing: Billing) -> Self {
        Self { billing: Arc::new(billing) }
    }
}

impl Billing {
    /// Grants or removes one of the client's credits (an insurance client's: authorizations)
    /// for an operator's action; a removal with no free credit changes nothing and is refused.
    pub async fn adjust_credit(
        &self,
        request: &CreditAdjustmentRequest,
    ) -> Result<AdjustmentOutcome, BillingError> {
        let client = clients::get(self.db(), request.client_id).await?.ok_or_else(|| {
            crate::storage::StorageError::Corrupt(format!("client {} is gone", request.client_id))
        })?;
        let kind = CreditKind::for_coverage(client.coverage);
        Ok(match credits::adjust(self.db(), request, kind, Utc::now()).await? {
            Some(credit) => AdjustmentOutcome::Adjusted { credit },
            None => {
                debug_assert_eq!(request.adjustment, Adjustment::Remove);
                AdjustmentOutcome::Refused(Refusal::new(
                    RefusalCode::NoFreeCredit,
                    "the client has no free credit to remove (a credit a session holds stays with it)",
                ))
            }
        })
    }
}

#[activities]
impl Adjustments {
    /// See [`WaiveFee`].
    #[activity(definition = WaiveFee)]
    pub async fn waive_fee(
        self: Arc<Self>,
        _ctx: ActivityContext,
        waiver: FeeWaiver,
    ) -> Result<FeeStatus, ActivityError> {
        Ok(self.billing.waive_at_once(&waiver).await?)
    }

    /// See [`AdjustCredit`].
    #[activity(definition = AdjustCredit)]
    pub async fn adjust_credit(
        self: Arc<Self>,
        _ctx: ActivityContext,
        request: CreditAdjustmentRequest,
    ) -> Result<AdjustmentOutcome, ActivityError> {
        Ok(self.billing.adjust_credit(&request).await?)
    }
}
