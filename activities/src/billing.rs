//! Billing: holding a booking with its credit (buying one if asked), late-reschedule
//! replacements, settling credits, charging fees once, and insurance authorizations.

use crate::storage::charges::{self, ChargeKind, NewCharge};
use crate::storage::credits::{self, CreditKind};
use crate::storage::{Db, StorageError, sessions};
use chrono::{DateTime, Utc};
use livesessions_domain::{CreditId, Refusal, RefusalCode};
use livesessions_workflows::activities::{
    AuthorizationGrant, AuthorizeNext, ChargeFee, CreditMove, FeeCharge, HoldBooking, HoldOutcome,
    HoldReplacement, HoldRequest, ReplacementRequest, SettleCredit,
};
use std::sync::Arc;
use temporalio_sdk::activities::{ActivityContext, ActivityError, activities};

/// The billing activities, over the database.
pub struct Billing {
    db: Db,
}

impl Billing {
    /// Billing activities that keep credits and charges in `db`.
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
        request: HoldRequest,
    ) -> Result<HoldOutcome, ActivityError> {
        Ok(hold(&self.db, &request, Utc::now()).await?)
    }

    /// See [`HoldReplacement`].
    #[activity(definition = HoldReplacement)]
    pub async fn hold_replacement(
        self: Arc<Self>,
        _ctx: ActivityContext,
        request: ReplacementRequest,
    ) -> Result<Option<CreditId>, ActivityError> {
        let kind = CreditKind::for_coverage(request.coverage);
        Ok(credits::reserve_replacement(
            &self.db,
            request.session_id,
            request.client_id,
            kind,
            Utc::now(),
        )
        .await?)
    }

    /// See [`SettleCredit`].
    #[activity(definition = SettleCredit)]
    pub async fn settle_credit(
        self: Arc<Self>,
        _ctx: ActivityContext,
        movement: CreditMove,
    ) -> Result<(), ActivityError> {
        credits::settle(&self.db, movement.session_id, movement.credit_id, movement.to, Utc::now())
            .await?;
        Ok(())
    }

    /// See [`ChargeFee`].
    #[activity(definition = ChargeFee)]
    pub async fn charge_fee(
        self: Arc<Self>,
        _ctx: ActivityContext,
        fee: FeeCharge,
    ) -> Result<(), ActivityError> {
        let charge = NewCharge {
            key: &fee.key,
            client_id: fee.client_id,
            session_id: Some(fee.session_id),
            kind: ChargeKind::Fee(fee.kind),
            amount: fee.amount,
        };
        charges::charge(&self.db, &charge, Utc::now()).await?;
        Ok(())
    }

    /// See [`AuthorizeNext`].
    #[activity(definition = AuthorizeNext)]
    pub async fn authorize_next(
        self: Arc<Self>,
        _ctx: ActivityContext,
        grant: AuthorizationGrant,
    ) -> Result<CreditId, ActivityError> {
        Ok(credits::grant_authorization(
            &self.db,
            &grant.key,
            grant.client_id,
            grant.estimate,
            Utc::now(),
        )
        .await?)
    }
}

/// In one transaction: the session's first read-model row and a reserved credit (or insurance
/// authorization), bought on the spot if none is left and the request says so; or nothing at
/// all. A retry after the first attempt committed answers what that attempt held.
pub async fn hold(
    db: &Db,
    request: &HoldRequest,
    now: DateTime<Utc>,
) -> Result<HoldOutcome, StorageError> {
    let session = &request.session;
    let mut tx = db.begin_write().await?;
    if sessions::exists(&mut tx, session.id).await? {
        let held = credits::reserved_for(&mut tx, session.id).await?;
        let credit = held.first().copied().ok_or_else(|| {
            StorageError::Corrupt(format!("session {} holds no credit", session.id))
        })?;
        return Ok(HoldOutcome::Held { credit });
    }
    sessions::upsert(&mut tx, session, now).await?;
    let kind = CreditKind::for_coverage(session.coverage);
    let mut credit = credits::reserve(&mut tx, session.client_id, kind, session.id, now).await?;
    if let (None, Some(price), CreditKind::Credit) = (credit, request.purchase, kind) {
        let key = format!("{}:credit_purchase", session.workflow_id);
        credit = Some(
            credits::purchase(&mut tx, &key, session.client_id, Some(session.id), price, now)
                .await?,
        );
    }
    match credit {
        Some(credit) => {
            tx.commit().await?;
            Ok(HoldOutcome::Held { credit })
        }
        None => Ok(HoldOutcome::Refused(match kind {
            CreditKind::Credit => Refusal::new(
                RefusalCode::NoCredit,
                "the client has no session credit left; book with purchase_credit: true to buy one",
            ),
            CreditKind::Authorization => Refusal::new(
                RefusalCode::AuthorizationRequired,
                "the client has not authorized a session: authorize the estimate of the next session first",
            ),
        })),
    }
}
