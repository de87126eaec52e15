//! Session credits and insurance authorizations: one row each, the thing a booking holds.
//! `available` rows belong to nobody yet; a reserved, consumed or forfeited one names the
//! session holding it; a `revoked` one (a bought credit whose purchase was refunded, or one an
//! operator removed) and an `expired` one (a plan credit not carried into a new billing period) are gone. Every change of
//! a row posts its ledger transaction in the same database transaction, and balances are read
//! from the ledger.

use super::ledger::{self, EntryKind, NewEntry, Posting, accounts};
use super::{Db, StorageError, WriteTx, parse_column};
use crate::{execute_in, with_pool, with_tx};
use chrono::{DateTime, Utc};
use livesessions_domain::{ClientId, Coverage, CreditId, CreditStatus, Money, SessionId};
use livesessions_workflows::activities::{
    Adjustment, AuthorizationGrant, CreditAdjustmentRequest, CreditMove,
};
use uuid::Uuid;

/// What a row is: a session credit, or an insurance client's authorization of a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CreditKind {
    /// Subscription and EAP.
    Credit,
    /// Insurance.
    Authorization,
}

impl CreditKind {
    /// What a booking under `coverage` holds.
    pub fn for_coverage(coverage: Coverage) -> Self {
        if coverage.uses_credits() { CreditKind::Credit } else { CreditKind::Authorization }
    }

    fn as_str(&self) -> &'static str {
        match self {
            CreditKind::Credit => "credit",
            CreditKind::Authorization => "authorization",
        }
    }

    fn parse(text: &str) -> Result<Self, String> {
        match text {
            "credit" => Ok(CreditKind::Credit),
            "authorization" => Ok(CreditKind::Authorization),
            other => Err(format!("unknown credit kind {other:?}")),
        }
    }

    /// The ledger unit of this kind.
    pub fn unit(&self) -> &'static str {
        match self {
            CreditKind::Credit => accounts::CREDIT,
            CreditKind::Authorization => accounts::AUTH,
        }
    }
}

/// A client's credits (or authorizations), from the ledger.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CreditBalance {
    /// Free to book with.
    pub available: i64,
    /// Held by requested or confirmed sessions.
    pub reserved: i64,
}

/// The source of credits a plan grants (on enrolment, or each billing period).
const PLAN_GRANT: &str = "plan_grant";

/// The source of credits operators grant.
const OPERATOR_GRANT: &str = "operator_grant";

/// A credit (or authorization) row to write.
struct NewCredit<'a> {
    client: ClientId,
    kind: CreditKind,
    source: &'static str,
    /// Reserved for this session at once; otherwise available.
    session: Option<SessionId>,
    estimate: Option<Money>,
    key: Option<&'a str>,
}

/// Writes one credit row inside the caller's transaction.
async fn insert(
    tx: &mut WriteTx,
    credit: &NewCredit<'_>,
    now: DateTime<Utc>,
) -> Result<CreditId, StorageError> {
    let id = Uuid::new_v4();
    let status = if credit.session.is_some() { "reserved" } else { "available" };
    execute_in!(tx, sqlx::query(
            "INSERT INTO credits (id, client_id, kind, source, status, session_id, estimate_minor, currency,
                                  idempotency_key, created_at, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $10)",
        )
        .bind(id)
        .bind(credit.client.as_uuid())
        .bind(credit.kind.as_str())
        .bind(credit.source)
        .bind(status)
        .bind(credit.session.map(|s| s.as_uuid()))
        .bind(credit.estimate.map(|m| m.amount_minor))
        .bind(credit.estimate.map(|m| m.currency.as_str().to_string()))
        .bind(credit.key)
        .bind(now))?;
    Ok(CreditId::from_uuid(id))
}

/// Grants a new client of a non-subscription plan what it gives on enrolment: `count` credits,
/// or for insurance `count` sessions authorized at intake (`client-<id>:enrolment_grant`).
/// Subscription clients are granted their first billing period instead.
pub(crate) async fn grant_on_enrolment(
    tx: &mut WriteTx,
    client: ClientId,
    coverage: Coverage,
    count: u32,
    now: DateTime<Utc>,
) -> Result<(), StorageError> {
    let key = format!("client-{client}:enrolment_grant");
    grant(tx, client, CreditKind::for_coverage(coverage), count, &key, now).await
}

/// Grants `count` plan credits (or intake authorizations) of `kind`, available at once, with
/// their ledger transaction under `key`.
pub(crate) async fn grant(
    tx: &mut WriteTx,
    client: ClientId,
    kind: CreditKind,
    count: u32,
    key: &str,
    now: DateTime<Utc>,
) -> Result<(), StorageError> {
    let source = match kind {
        CreditKind::Credit => PLAN_GRANT,
        CreditKind::Authorization => "intake_authorization",
    };
    let credit = NewCredit { client, kind, source, session: None, estimate: None, key: None };
    for _ in 0..count {
        insert(tx, &credit, now).await?;
    }
    if count > 0 {
        post_issued(tx, (client, kind.unit()), i64::from(count), key, now).await?;
    }
    Ok(())
}

/// Posts `count` of the client's free credits (or authorizations) of `unit` issued to them
/// (`credit_grant`), or taken back when `count` is negative (`credit_revoke`), under `key`.
async fn post_issued(
    tx: &mut WriteTx,
    (client, unit): (ClientId, &str),
    count: i64,
    key: &str,
    now: DateTime<Utc>,
) -> Result<(), StorageError> {
    let kind = if count > 0 { EntryKind::CreditGrant } else { EntryKind::CreditRevoke };
    let postings = Posting::units(accounts::ISSUED, accounts::available(client), unit, count);
    let entry = NewEntry {
        key,
        kind,
        client_id: client,
        session_id: None,
        processor_ref: None,
        postings: postings.into(),
    };
    ledger::post(tx, &entry, now).await?;
    Ok(())
}

/// Grants the client one credit of `kind`, or removes one of their free ones, for an
/// operator's action, with its ledger transaction (`credit_grant`, `credit_revoke`) under
/// `credit-adjustment-<action id>:<step>`. A granted credit is `operator_grant` (it never
/// expires with a billing period); a removed one becomes `revoked`, bought credits last, and a
/// credit a session holds is never taken. Answers the credit; `None` (nothing changed) when none
/// is free to remove. The same action again moves nothing more and answers the same credit.
pub async fn adjust(
    db: &Db,
    request: &CreditAdjustmentRequest,
    kind: CreditKind,
    now: DateTime<Utc>,
) -> Result<Option<CreditId>, StorageError> {
    let (action, client) = (request.action, request.client_id);
    let mut tx = db.begin_write().await?;
    let done: Option<Uuid> = with_tx!(&mut tx, |conn| {
        sqlx::query_scalar("SELECT credit_id FROM credit_adjustments WHERE action_id = $1")
            .bind(action.as_uuid())
            .fetch_optional(&mut *conn)
            .await
    })?;
    if let Some(credit) = done {
        return Ok(Some(CreditId::from_uuid(credit)));
    }
    let workflow = action.credit_adjustment_workflow_id();
    let (credit, adjustment) = match request.adjustment {
        Adjustment::Grant => {
            let key = format!("{workflow}:credit_grant");
            let credit = NewCredit {
                client,
                kind,
                source: OPERATOR_GRANT,
                session: None,
                estimate: None,
                key: Some(&key),
            };
            let id = insert(&mut tx, &credit, now).await?;
            post_issued(&mut tx, (client, kind.unit()), 1, &key, now).await?;
            (id, "grant")
        }
        Adjustment::Remove => {
            let taking = Taking { status: "revoked", session: None, bought_last: true };
            let Some(id) = take_available(&mut tx, client, kind, &taking, now).await? else {
                return Ok(None);
            };
            let key = format!("{workflow}:credit_revoke");
            post_issued(&mut tx, (client, kind.unit()), -1, &key, now).await?;
            (id, "remove")
        }
    };
    execute_in!(
        &mut tx,
        sqlx::query(
            "INSERT INTO credit_adjustments (action_id, client_id, adjustment, credit_id, created_at)
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(action.as_uuid())
        .bind(client.as_uuid())
        .bind(adjustment)
        .bind(credit.as_uuid())
        .bind(now)
    )?;
    tx.commit().await?;
    Ok(Some(credit))
}

/// How many plan credits the client has unused (available; bought ones not counted).
pub(crate) async fn unused_plan_credits(
    tx: &mut WriteTx,
    client: ClientId,
) -> Result<i64, StorageError> {
    with_tx!(tx, |conn| {
        sqlx::query_scalar(
            "SELECT COUNT(*) FROM credits
             WHERE client_id = $1 AND kind = 'credit' AND source = $2 AND status = 'available'",
        )
        .bind(client.as_uuid())
        .bind(PLAN_GRANT)
        .fetch_one(&mut *conn)
        .await
    })
    .map_err(Into::into)
}

/// Expires up to `count` of the client's unused plan credits, oldest first, with their ledger
/// transaction under `key` (to `credits:expired`); answers how many expired.
pub(crate) async fn expire_plan_credits(
    tx: &mut WriteTx,
    client: ClientId,
    count: i64,
    key: &str,
    now: DateTime<Utc>,
) -> Result<i64, StorageError> {
    let expired: Vec<Uuid> = with_tx!(tx, |conn| {
        sqlx::query_scalar(
            "UPDATE credits SET status = 'expired', updated_at = $4
             WHERE id IN (SELECT id FROM credits
                          WHERE client_id = $1 AND kind = 'credit' AND source = $2 AND status = 'available'
                          ORDER BY created_at, id LIMIT $3)
               AND status = 'available'
             RETURNING id",
        )
        .bind(client.as_uuid())
        .bind(PLAN_GRANT)
        .bind(count)
        .bind(now)
        .fetch_all(&mut *conn)
        .await
    })?;
    let expired = i64::try_from(expired.len()).unwrap_or(i64::MAX);
    if expired > 0 {
        let postings = Posting::units(
            accounts::available(client),
            accounts::EXPIRED,
            accounts::CREDIT,
            expired,
        );
        let entry = NewEntry {
            key,
            kind: EntryKind::CreditExpire,
            client_id: client,
            session_id: None,
            processor_ref: None,
            postings: postings.into(),
        };
        ledger::post(tx, &entry, now).await?;
    }
    Ok(expired)
}

/// Posts the reservation of `credit` by `session`.
async fn post_reserve(
    tx: &mut WriteTx,
    client: ClientId,
    kind: CreditKind,
    session: SessionId,
    credit: CreditId,
    now: DateTime<Utc>,
) -> Result<(), StorageError> {
    let key = format!("{}:credit_reserve:{credit}", session.workflow_id());
    let postings =
        Posting::units(accounts::available(client), accounts::reserved(client), kind.unit(), 1);
    let entry = NewEntry {
        key: &key,
        kind: EntryKind::CreditReserve,
        client_id: client,
        session_id: Some(session),
        processor_ref: None,
        postings: postings.into(),
    };
    ledger::post(tx, &entry, now).await?;
    Ok(())
}

/// Where [`take_available`] moves a free row.
struct Taking {
    /// Its new status.
    status: &'static str,
    /// The session that holds it from now on, if any.
    session: Option<SessionId>,
    /// Whether bought rows are taken only when no other is free.
    bought_last: bool,
}

/// Moves the client's oldest free row of `kind` as `taking` says, inside the caller's
/// transaction; answers it, or `None` when none is free.
async fn take_available(
    tx: &mut WriteTx,
    client: ClientId,
    kind: CreditKind,
    taking: &Taking,
    now: DateTime<Utc>,
) -> Result<Option<CreditId>, StorageError> {
    // The inner SELECT may race another transaction on PostgreSQL; the outer status check makes
    // the loser update nothing, and it tries the next row.
    for _ in 0..5 {
        let taken: Option<Uuid> = with_tx!(tx, |conn| {
            sqlx::query_scalar(
                "UPDATE credits SET status = $1, session_id = $2, updated_at = $6
                 WHERE id = (SELECT id FROM credits WHERE client_id = $3 AND kind = $4 AND status = 'available'
                             ORDER BY CASE WHEN $5 AND source = 'purchase' THEN 1 ELSE 0 END, created_at, id
                             LIMIT 1)
                   AND status = 'available'
                 RETURNING id",
            )
            .bind(taking.status)
            .bind(taking.session.map(|s| s.as_uuid()))
            .bind(client.as_uuid())
            .bind(kind.as_str())
            .bind(taking.bought_last)
            .bind(now)
            .fetch_optional(&mut *conn)
            .await
        })?;
        if let Some(id) = taken {
            return Ok(Some(CreditId::from_uuid(id)));
        }
        let available: i64 = with_tx!(tx, |conn| {
            sqlx::query_scalar("SELECT COUNT(*) FROM credits WHERE client_id = $1 AND kind = $2 AND status = 'available'")
                .bind(client.as_uuid())
                .bind(kind.as_str())
                .fetch_one(&mut *conn)
                .await
        })?;
        if available == 0 {
            return Ok(None);
        }
    }
    Ok(None)
}

/// Reserves the client's oldest available row of `kind` for `session`, inside the caller's
/// transaction.
pub(crate) async fn reserve(
    tx: &mut WriteTx,
    client: ClientId,
    kind: CreditKind,
    session: SessionId,
    now: DateTime<Utc>,
) -> Result<Option<CreditId>, StorageError> {
    let taking = Taking { status: "reserved", session: Some(session), bought_last: false };
    let Some(credit) = take_available(tx, client, kind, &taking, now).await? else {
        return Ok(None);
    };
    post_reserve(tx, client, kind, session, credit, now).await?;
    Ok(Some(credit))
}

/// A credit bought through the processor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Purchase<'a> {
    /// The idempotency key the processor charged under; the ledger's key too.
    pub key: &'a str,
    /// Who bought it.
    pub client: ClientId,
    /// The session it is reserved for at once, if any.
    pub session: Option<SessionId>,
    /// What it cost.
    pub price: Money,
    /// The processor's charge id.
    pub charge_id: &'a str,
}

/// Records a credit bought through the processor (the charge already succeeded): the credit,
/// the money, and the reservation when it is bought for a session. A key seen before records
/// nothing and answers the credit it bought.
pub(crate) async fn add_purchased(
    tx: &mut WriteTx,
    purchase: &Purchase<'_>,
    now: DateTime<Utc>,
) -> Result<CreditId, StorageError> {
    if let Some(existing) = by_key(tx, purchase.key).await? {
        return Ok(existing);
    }
    let client = purchase.client;
    let credit = NewCredit {
        client,
        kind: CreditKind::Credit,
        source: "purchase",
        session: purchase.session,
        estimate: None,
        key: Some(purchase.key),
    };
    let id = insert(tx, &credit, now).await?;
    let mut postings: Vec<Posting> =
        Posting::money(accounts::PROCESSOR, accounts::CREDIT_SALES, purchase.price).into();
    postings.extend(Posting::units(
        accounts::ISSUED,
        accounts::available(client),
        accounts::CREDIT,
        1,
    ));
    let entry = NewEntry {
        key: purchase.key,
        kind: EntryKind::CreditPurchase,
        client_id: client,
        session_id: purchase.session,
        processor_ref: Some(purchase.charge_id),
        postings,
    };
    ledger::post(tx, &entry, now).await?;
    if let Some(session) = purchase.session {
        post_reserve(tx, client, CreditKind::Credit, session, id, now).await?;
    }
    Ok(id)
}

/// Records a credit bought outside any session, in a transaction of its own.
pub async fn add_purchased_alone(
    db: &Db,
    purchase: &Purchase<'_>,
    now: DateTime<Utc>,
) -> Result<CreditId, StorageError> {
    let mut tx = db.begin_write().await?;
    let credit = add_purchased(&mut tx, purchase, now).await?;
    tx.commit().await?;
    Ok(credit)
}

async fn by_key(tx: &mut WriteTx, key: &str) -> Result<Option<CreditId>, StorageError> {
    let id: Option<Uuid> = with_tx!(tx, |conn| {
        sqlx::query_scalar("SELECT id FROM credits WHERE idempotency_key = $1")
            .bind(key)
            .fetch_optional(&mut *conn)
            .await
    })?;
    Ok(id.map(CreditId::from_uuid))
}

/// The credits a session holds in reserve, oldest first (inside a write transaction).
pub(crate) async fn reserved_for(
    tx: &mut WriteTx,
    session: SessionId,
) -> Result<Vec<CreditId>, StorageError> {
    let ids: Vec<Uuid> = with_tx!(tx, |conn| {
        sqlx::query_scalar("SELECT id FROM credits WHERE session_id = $1 AND status = 'reserved' ORDER BY created_at, id")
            .bind(session.as_uuid())
            .fetch_all(&mut *conn)
            .await
    })?;
    Ok(ids.into_iter().map(CreditId::from_uuid).collect())
}

/// Records an insurance client's authorization of their next session at its estimate, once
/// per key. Its ledger transaction names the session after which the client authorized.
pub async fn grant_authorization(
    db: &Db,
    grant: &AuthorizationGrant,
    now: DateTime<Utc>,
) -> Result<CreditId, StorageError> {
    let (key, client) = (grant.key.as_str(), grant.client_id);
    let mut tx = db.begin_write().await?;
    if let Some(existing) = by_key(&mut tx, key).await? {
        return Ok(existing);
    }
    let credit = NewCredit {
        client,
        kind: CreditKind::Authorization,
        source: "next_authorization",
        session: None,
        estimate: Some(grant.estimate),
        key: Some(key),
    };
    let id = insert(&mut tx, &credit, now).await?;
    let mut postings: Vec<Posting> =
        Posting::units(accounts::ISSUED, accounts::available(client), accounts::AUTH, 1).into();
    postings.extend(Posting::money(
        accounts::copay_authorized(client),
        accounts::COPAY_ESTIMATES,
        grant.estimate,
    ));
    let entry = NewEntry {
        key,
        kind: EntryKind::InsuranceAuthorization,
        client_id: client,
        session_id: Some(grant.session_id),
        processor_ref: None,
        postings,
    };
    ledger::post(&mut tx, &entry, now).await?;
    tx.commit().await?;
    Ok(id)
}

/// Takes back the credit the purchase `purchase_key` bought, because the purchase is refunded
/// in full: an available credit becomes `revoked` and leaves the client's balance
/// (`<purchase key>:credit_revoke`). Answers false, changing nothing, when a session holds or
/// used the credit; true when it is revoked, now or before.
pub async fn revoke_purchased(
    db: &Db,
    purchase_key: &str,
    now: DateTime<Utc>,
) -> Result<bool, StorageError> {
    let mut tx = db.begin_write().await?;
    let revoked: Option<Uuid> = with_tx!(&mut tx, |conn| {
        sqlx::query_scalar(
            "UPDATE credits SET status = 'revoked', updated_at = $2
             WHERE idempotency_key = $1 AND kind = 'credit' AND status = 'available'
             RETURNING client_id",
        )
        .bind(purchase_key)
        .bind(now)
        .fetch_optional(&mut *conn)
        .await
    })?;
    let Some(client) = revoked.map(ClientId::from_uuid) else {
        let status: Option<String> = with_tx!(&mut tx, |conn| {
            sqlx::query_scalar("SELECT status FROM credits WHERE idempotency_key = $1")
                .bind(purchase_key)
                .fetch_optional(&mut *conn)
                .await
        })?;
        return Ok(status.is_none_or(|status| status == "revoked"));
    };
    let key = format!("{purchase_key}:credit_revoke");
    post_issued(&mut tx, (client, accounts::CREDIT), -1, &key, now).await?;
    tx.commit().await?;
    Ok(true)
}

/// Moves the credit its session holds to where `movement` says: `released` makes it available
/// again. An insurance session that took place posts its claim receivable (the insurer's part)
/// in the same transaction, under `<workflow id>:insurance_claim:<credit>`. Idempotent: a credit
/// already moved (or never held by this session) is left as it is.
pub async fn settle(
    db: &Db,
    movement: &CreditMove,
    now: DateTime<Utc>,
) -> Result<(), StorageError> {
    let CreditMove { session_id: session, credit_id: credit, to, claim } = *movement;
    let (status, holder, step, kind, sink) = match to {
        CreditStatus::Released => {
            ("available", None, "credit_release", EntryKind::CreditRelease, None)
        }
        CreditStatus::Reserved => return Ok(()),
        CreditStatus::Consumed => (
            "consumed",
            Some(session.as_uuid()),
            "credit_consume",
            EntryKind::CreditConsume,
            Some(accounts::CONSUMED),
        ),
        CreditStatus::Forfeited => (
            "forfeited",
            Some(session.as_uuid()),
            "credit_forfeit",
            EntryKind::CreditForfeit,
            Some(accounts::FORFEITED),
        ),
    };
    let mut tx = db.begin_write().await?;
    let moved: Option<(Uuid, String)> = with_tx!(&mut tx, |conn| {
        sqlx::query_as(
            "UPDATE credits SET status = $1, session_id = $2, updated_at = $3
             WHERE id = $4 AND session_id = $5 AND status = 'reserved'
             RETURNING client_id, kind",
        )
        .bind(status)
        .bind(holder)
        .bind(now)
        .bind(credit.as_uuid())
        .bind(session.as_uuid())
        .fetch_optional(&mut *conn)
        .await
    })?;
    if let Some((client, credit_kind)) = moved {
        let client = ClientId::from_uuid(client);
        let unit = parse_column("credits.kind", CreditKind::parse(&credit_kind))?.unit();
        let to_account = sink.map(str::to_string).unwrap_or_else(|| accounts::available(client));
        let key = format!("{}:{step}:{credit}", session.workflow_id());
        let postings = Posting::units(accounts::reserved(client), to_account, unit, 1);
        let entry = NewEntry {
            key: &key,
            kind,
            client_id: client,
            session_id: Some(session),
            processor_ref: None,
            postings: postings.into(),
        };
        ledger::post(&mut tx, &entry, now).await?;
        if let Some(claim) = claim {
            let key = format!("{}:insurance_claim:{credit}", session.workflow_id());
            let postings =
                Posting::money(accounts::CLAIMS_RECEIVABLE, accounts::INSURED_SESSIONS, claim);
            let entry = NewEntry {
                key: &key,
                kind: EntryKind::InsuranceClaim,
                client_id: client,
                session_id: Some(session),
                processor_ref: None,
                postings: postings.into(),
            };
            ledger::post(&mut tx, &entry, now).await?;
        }
    }
    tx.commit().await
}

/// How many credits (or authorizations) the client has available and reserved, summed from
/// the ledger.
pub async fn balance(db: &Db, client: ClientId) -> Result<CreditBalance, StorageError> {
    let mut balance = CreditBalance::default();
    for unit in [accounts::CREDIT, accounts::AUTH] {
        balance.available += ledger::balance(db, &accounts::available(client), unit).await?;
        balance.reserved += ledger::balance(db, &accounts::reserved(client), unit).await?;
    }
    Ok(balance)
}

/// How many credit rows the client has in each status (the per-credit view the ledger must
/// agree with).
pub async fn rows_by_status(db: &Db, client: ClientId) -> Result<CreditBalance, StorageError> {
    let (available, reserved): (i64, i64) = with_pool!(db, |pool| {
        sqlx::query_as(
            "SELECT COALESCE(SUM(CASE WHEN status = 'available' THEN 1 ELSE 0 END), 0),
                    COALESCE(SUM(CASE WHEN status = 'reserved' THEN 1 ELSE 0 END), 0)
             FROM credits WHERE client_id = $1",
        )
        .bind(client.as_uuid())
        .fetch_one(pool)
        .await
    })?;
    Ok(CreditBalance { available, reserved })
}
