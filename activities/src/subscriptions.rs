//! Subscriptions: begins a subscription client's billing period under the plan they are on
//! when it begins (the worker's plan table), or reports that they are on none any more.

use crate::storage::{Db, StorageError, clients, subscriptions};
use chrono::Utc;
use livesessions_domain::{BillingPeriod, Coverage, Plans, Renewal};
use livesessions_workflows::activities::{RenewSubscription, RenewalOutcome};
use std::sync::Arc;
use temporalio_sdk::activities::{ActivityContext, ActivityError, activities};

/// The subscription activities, over the database and the plan table.
pub struct Renewals {
    db: Db,
    plans: Plans,
}

impl Renewals {
    /// Renewals that grant in `db` under the plans of `plans`.
    pub fn new(db: Db, plans: Plans) -> Self {
        Self { db, plans }
    }

    /// Begins `renewal`'s period under the client's current plan; `None` when the client is no
    /// longer on a subscription plan (and the period was never begun).
    pub async fn renew(&self, renewal: &Renewal) -> Result<Option<BillingPeriod>, StorageError> {
        let client = clients::get(&self.db, renewal.client_id).await?;
        let plan = client.as_ref().filter(|c| c.coverage == Coverage::Subscription).and_then(|c| {
            let plan = self.plans.get(&c.plan).filter(|p| p.coverage == Coverage::Subscription)?;
            Some((c.plan.as_str(), plan))
        });
        subscriptions::renew(&self.db, renewal, plan, Utc::now()).await
    }
}

#[activities]
impl Renewals {
    /// See [`RenewSubscription`].
    #[activity(definition = RenewSubscription)]
    pub async fn renew_subscription(
        self: Arc<Self>,
        _ctx: ActivityContext,
        renewal: Renewal,
    ) -> Result<RenewalOutcome, ActivityError> {
        Ok(match self.renew(&renewal).await? {
            Some(period) => RenewalOutcome::Renewed(period),
            None => RenewalOutcome::Ended,
        })
    }
}
