//! Billing: holding a booking with its credit, and settling the credit when the session ends.

use crate::storage::{Db, StorageError, credits, sessions};
use chrono::{DateTime, Utc};
use livesessions_domain::{Refusal, RefusalCode, SessionSnapshot};
use livesessions_workflows::activities::{CreditMove, HoldBooking, HoldOutcome, SettleCredit};
use std::sync::Arc;
use temporalio_sdk::activities::{ActivityContext, ActivityError, activities};

/// The billing activities, over the database.
pub struct Billing {
    db: Db,
}

impl Billing {
    /// Billing activities that keep credits in `db`.
    pub fn new(db: Db) -> Self {
        Self { db }
    }
}

#[activities]
impl Billing {
    /// See [`HoldBooking`].
    #[activity(definition = HoldBooking)]
    pub async fn hold_booking(
        self: Arc<Self>,
        _ctx: ActivityContext,
        session: SessionSnapshot,
    ) -> Result<HoldOutcome, ActivityError> {
        Ok(hold(&self.db, &session, Utc::now()).await?)
    }

    /// See [`SettleCredit`].
    #[activity(definition = SettleCredit)]
    pub async fn settle_credit(
        self: Arc<Self>,
        _ctx: ActivityContext,
        movement: CreditMove,
    ) -> Result<(), ActivityError> {
        credits::settle(
            &self.db,
            movement.session_id,
            movement.credit_id,
            movement.to,
            Utc::now(),
        )
        .await?;
        Ok(())
    }
}

/// In one transaction: the session's first read-model row and a reserved credit, or nothing at
/// all. A retry after the first attempt committed answers what that attempt held.
pub async fn hold(
    db: &Db,
    session: &SessionSnapshot,
    now: DateTime<Utc>,
) -> Result<HoldOutcome, StorageError> {
    let mut tx = db.begin_write().await?;
    if sessions::exists(&mut tx, session.id).await? {
        let credit = credits::held_by(&mut tx, session.id)
            .await?
            .ok_or_else(|| {
                StorageError::Corrupt(format!("session {} holds no credit", session.id))
            })?;
        return Ok(HoldOutcome::Held { credit });
    }
    sessions::upsert(&mut tx, session, now).await?;
    match credits::reserve(&mut tx, session.client_id, session.id, now).await? {
        Some(credit) => {
            tx.commit().await?;
            Ok(HoldOutcome::Held { credit })
        }
        None => Ok(HoldOutcome::Refused(Refusal::new(
            RefusalCode::NoCredit,
            "the client has no session credit left",
        ))),
    }
}
