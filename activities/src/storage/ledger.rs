//! The ledger: every movement of money, session credits and insurance authorizations, as
//! double-entry transactions whose postings sum to zero per unit. Append-only (the database
//! refuses UPDATE and DELETE); a mistake is undone by a correcting transaction. Each transaction
//! has an idempotency key (`<workflow id>:<business step>`), so the same step never moves
//! anything twice. Credit balances are sums of postings.

use super::{Db, StorageError, WriteTx, parse_column};
use crate::{execute_in, with_pool};
use chrono::{DateTime, Utc};
use livesessions_domain::text_enum;
use livesessions_domain::{ClientId, Money, SessionId};
use serde::Serialize;
use sqlx::FromRow;
use std::collections::BTreeMap;
use uuid::Uuid;

/// What a transaction records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EntryKind {
    /// Credits (or intake authorizations) granted on enrolment, a subscription's credits of
    /// one billing period, or a credit an operator granted.
    CreditGrant,
    /// A credit bought: money in, one credit issued.
    CreditPurchase,
    /// A credit (or authorization) held by a session.
    CreditReserve,
    /// A held credit given back.
    CreditRelease,
    /// A held credit used by the session that took place.
    CreditConsume,
    /// A held credit lost to a no-show or a late cancellation.
    CreditForfeit,
    /// An insurance client authorized a session at an estimate.
    InsuranceAuthorization,
    /// A late-cancellation fee, charged or outstanding.
    LateCancelFee,
    /// A no-show fee, charged or outstanding.
    NoShowFee,
    /// An insurance session's copay (the client's share), charged or outstanding.
    Copay,
    /// The insurer's part of an insurance session that took place: a claim receivable.
    InsuranceClaim,
    /// Money given back through the processor.
    Refund,
    /// A bought credit taken back because its purchase was refunded, or a free credit an
    /// operator removed.
    CreditRevoke,
    /// Unused plan credits a new billing period did not carry over.
    CreditExpire,
    /// An outstanding fee collected by a later attempt.
    FeeCollected,
    /// An outstanding fee finance (or an operator) waived, or a session's fee an operator
    /// waived as it ended.
    FeeWaived,
    /// An outstanding fee written off after its last collection attempt.
    FeeWrittenOff,
}

text_enum!(EntryKind, "ledger entry kind", {
    CreditGrant => "credit_grant",
    CreditPurchase => "credit_purchase",
    CreditReserve => "credit_reserve",
    CreditRelease => "credit_release",
    CreditConsume => "credit_consume",
    CreditForfeit => "credit_forfeit",
    InsuranceAuthorization => "insurance_authorization",
    LateCancelFee => "late_cancel_fee",
    NoShowFee => "no_show_fee",
    Copay => "copay",
    InsuranceClaim => "insurance_claim",
    Refund => "refund",
    CreditRevoke => "credit_revoke",
    CreditExpire => "credit_expire",
    FeeCollected => "fee_collected",
    FeeWaived => "fee_waived",
    FeeWrittenOff => "fee_written_off",
});

/// Account names. Money accounts use the currency as unit; credit accounts use [`CREDIT`] or
/// [`AUTH`].
pub mod accounts {
    use livesessions_domain::ClientId;

    /// Unit of session credits.
    pub const CREDIT: &str = "CREDIT";
    /// Unit of insurance authorizations.
    pub const AUTH: &str = "AUTH";
    /// Where issued credits come from (its balance is minus what was ever issued).
    pub const ISSUED: &str = "credits:issued";
    /// Credits used by sessions that took place.
    pub const CONSUMED: &str = "credits:consumed";
    /// Credits lost to no-shows and late cancellations.
    pub const FORFEITED: &str = "credits:forfeited";
    /// Plan credits not carried into a new billing period.
    pub const EXPIRED: &str = "credits:expired";
    /// Money collected through the payment processor.
    pub const PROCESSOR: &str = "processor";
    /// Revenue from credits sold.
    pub const CREDIT_SALES: &str = "revenue:credit_sales";
    /// Revenue from late-cancellation fees.
    pub const LATE_CANCEL_FEES: &str = "revenue:late_cancel_fees";
    /// Revenue from no-show fees.
    pub const NO_SHOW_FEES: &str = "revenue:no_show_fees";
    /// Revenue from insurance clients' copays.
    pub const COPAYS: &str = "revenue:copays";
    /// What insurers owe for sessions that took place: claims not yet paid.
    pub const CLAIMS_RECEIVABLE: &str = "insurance:claims_receivable";
    /// Revenue from the insurer's part of insured sessions.
    pub const INSURED_SESSIONS: &str = "revenue:insured_sessions";
    /// Estimates insurance clients authorized (the insurer's side).
    pub const COPAY_ESTIMATES: &str = "insurance:copay_estimates";
    /// Fees finance waived (given up on purpose; offsets fee revenue).
    pub const FEES_WAIVED: &str = "fees:waived";
    /// Fees written off as not collectable (bad debt).
    pub const FEES_WRITTEN_OFF: &str = "fees:written_off";

    /// A client's free credits (or authorizations).
    pub fn available(client: ClientId) -> String {
        format!("client:{client}:available")
    }

    /// A client's credits held by sessions.
    pub fn reserved(client: ClientId) -> String {
        format!("client:{client}:reserved")
    }

    /// What a client owes: fees the processor did not collect.
    pub fn receivable(client: ClientId) -> String {
        format!("client:{client}:receivable")
    }

    /// Estimates a client authorized.
    pub fn copay_authorized(client: ClientId) -> String {
        format!("client:{client}:copay_authorized")
    }
}

/// One line of a transaction: `amount` of `unit` on `account` (debits positive).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Posting {
    /// The account.
    pub account: String,
    /// A currency code, `CREDIT` or `AUTH`.
    pub unit: String,
    /// Signed amount (minor units for money).
    pub amount: i64,
}

impl Posting {
    /// `amount` of `unit` on `account`.
    pub fn new(account: impl Into<String>, unit: impl Into<String>, amount: i64) -> Self {
        Self { account: account.into(), unit: unit.into(), amount }
    }

    /// Moves `money` from `credit` to `debit` (two postings).
    pub fn money(debit: impl Into<String>, credit: impl Into<String>, money: Money) -> [Self; 2] {
        let unit = money.currency.as_str().to_string();
        [
            Self::new(debit, unit.clone(), money.amount_minor),
            Self::new(credit, unit, -money.amount_minor),
        ]
    }

    /// Moves `count` of `unit` from `from` to `to` (two postings).
    pub fn units(
        from: impl Into<String>,
        to: impl Into<String>,
        unit: &str,
        count: i64,
    ) -> [Self; 2] {
        [Self::new(to, unit, count), Self::new(from, unit, -count)]
    }
}

/// A transaction to post.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewEntry<'a> {
    /// Unique: the same key never posts twice.
    pub key: &'a str,
    /// What it records.
    pub kind: EntryKind,
    /// Whose money or credits.
    pub client_id: ClientId,
    /// The session it belongs to, if any (its workflow id is derived from it).
    pub session_id: Option<SessionId>,
    /// The processor's charge or refund id, if money moved through it.
    pub processor_ref: Option<&'a str>,
    /// The lines; they must sum to zero per unit.
    pub postings: Vec<Posting>,
}

/// A posted transaction.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Entry {
    /// The idempotency key.
    pub key: String,
    /// What it records.
    pub kind: EntryKind,
    /// Whose.
    pub client_id: ClientId,
    /// The session, if any.
    pub session_id: Option<SessionId>,
    /// The session's workflow, if any.
    pub workflow_id: Option<String>,
    /// The processor's charge or refund id, if any.
    pub processor_ref: Option<String>,
    /// When it was posted.
    pub occurred_at: DateTime<Utc>,
    /// Its lines.
    pub postings: Vec<Posting>,
}

impl Entry {
    /// The money amount on `account` in this entry (0 when it has none).
    pub fn amount_on(&self, account: &str) -> i64 {
        self.postings.iter().filter(|p| p.account == account).map(|p| p.amount).sum()
    }
}

/// Checks that a transaction has postings and that they sum to zero per unit.
fn check_balanced(entry: &NewEntry<'_>) -> Result<(), StorageError> {
    if entry.postings.is_empty() {
        return Err(StorageError::Corrupt(format!(
            "ledger transaction {} has no postings",
            entry.key
        )));
    }
    let mut sums: BTreeMap<&str, i64> = BTreeMap::new();
    for posting in &entry.postings {
        *sums.entry(&posting.unit).or_default() += posting.amount;
    }
    match sums.iter().find(|(_, sum)| **sum != 0) {
        Some((unit, sum)) => Err(StorageError::Corrupt(format!(
            "ledger transaction {} does not balance: {unit} sums to {sum}",
            entry.key
        ))),
        None => Ok(()),
    }
}

/// Posts a transaction inside the caller's transaction; answers false (and posts nothing)
/// when its key was posted before.
pub(crate) async fn post(
    tx: &mut WriteTx,
    entry: &NewEntry<'_>,
    now: DateTime<Utc>,
) -> Result<bool, StorageError> {
    check_balanced(entry)?;
    let id = Uuid::new_v4();
    let inserted = execute_in!(tx, sqlx::query(
            "INSERT INTO ledger_transactions (id, idempotency_key, kind, client_id, session_id, workflow_id,
                                              processor_ref, occurred_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
             ON CONFLICT (idempotency_key) DO NOTHING",
        )
        .bind(id)
        .bind(entry.key)
        .bind(entry.kind.as_str())
        .bind(entry.client_id.as_uuid())
        .bind(entry.session_id.map(|s| s.as_uuid()))
        .bind(entry.session_id.map(|s| s.workflow_id()))
        .bind(entry.processor_ref)
        .bind(now))?;
    if inserted == 0 {
        return Ok(false);
    }
    for posting in &entry.postings {
        execute_in!(tx, sqlx::query(
                "INSERT INTO ledger_postings (id, transaction_id, account, unit, amount) VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(Uuid::new_v4())
            .bind(id)
            .bind(&posting.account)
            .bind(&posting.unit)
            .bind(posting.amount))?;
    }
    Ok(true)
}

/// Posts a transaction on its own; answers whether it is new.
pub async fn post_alone(
    db: &Db,
    entry: &NewEntry<'_>,
    now: DateTime<Utc>,
) -> Result<bool, StorageError> {
    let mut tx = db.begin_write().await?;
    let new = post(&mut tx, entry, now).await?;
    tx.commit().await?;
    Ok(new)
}

/// Which entries to list; `None` matches everything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LedgerFilter {
    /// Only this session's.
    pub session_id: Option<SessionId>,
    /// Only this client's.
    pub client_id: Option<ClientId>,
    /// Posted at or after.
    pub from: Option<DateTime<Utc>>,
    /// Posted before.
    pub to: Option<DateTime<Utc>>,
    /// Only the transaction with this idempotency key.
    pub key: Option<String>,
}

#[derive(FromRow)]
struct PostingRow {
    id: Uuid,
    idempotency_key: String,
    kind: String,
    client_id: Uuid,
    session_id: Option<Uuid>,
    workflow_id: Option<String>,
    processor_ref: Option<String>,
    occurred_at: DateTime<Utc>,
    account: String,
    unit: String,
    amount: i64,
}

/// Entries matching `filter`, oldest first, with their postings.
pub async fn entries(db: &Db, filter: &LedgerFilter) -> Result<Vec<Entry>, StorageError> {
    let rows: Vec<PostingRow> = with_pool!(db, |pool| {
        sqlx::query_as(
            "SELECT t.id, t.idempotency_key, t.kind, t.client_id, t.session_id, t.workflow_id, t.processor_ref,
                    t.occurred_at, p.account, p.unit, p.amount
             FROM ledger_transactions t JOIN ledger_postings p ON p.transaction_id = t.id
             WHERE ($1 IS NULL OR t.session_id = $1) AND ($2 IS NULL OR t.client_id = $2)
               AND ($3 IS NULL OR t.occurred_at >= $3) AND ($4 IS NULL OR t.occurred_at < $4)
               AND ($5 IS NULL OR t.idempotency_key = $5)
             ORDER BY t.occurred_at, t.idempotency_key, p.account, p.unit",
        )
        .bind(filter.session_id.map(|s| s.as_uuid()))
        .bind(filter.client_id.map(|c| c.as_uuid()))
        .bind(filter.from)
        .bind(filter.to)
        .bind(filter.key.as_deref())
        .fetch_all(pool)
        .await
    })?;
    let mut entries: Vec<(Uuid, Entry)> = Vec::new();
    for row in rows {
        let posting = Posting { account: row.account, unit: row.unit, amount: row.amount };
        match entries.last_mut() {
            Some((id, entry)) if *id == row.id => entry.postings.push(posting),
            _ => entries.push((
                row.id,
                Entry {
                    kind: parse_column("ledger_transactions.kind", EntryKind::parse(&row.kind))?,
                    key: row.idempotency_key,
                    client_id: ClientId::from_uuid(row.client_id),
                    session_id: row.session_id.map(SessionId::from_uuid),
                    workflow_id: row.workflow_id,
                    processor_ref: row.processor_ref,
                    occurred_at: row.occurred_at,
                    postings: vec![posting],
                },
            )),
        }
    }
    Ok(entries.into_iter().map(|(_, entry)| entry).collect())
}

/// The transaction posted under `key`, if any.
pub async fn entry(db: &Db, key: &str) -> Result<Option<Entry>, StorageError> {
    let filter = LedgerFilter { key: Some(key.to_string()), ..Default::default() };
    Ok(entries(db, &filter).await?.pop())
}

/// The balance of one account in one unit: the sum of its postings.
pub async fn balance(db: &Db, account: &str, unit: &str) -> Result<i64, StorageError> {
    let sum: i64 = with_pool!(db, |pool| {
        sqlx::query_scalar("SELECT CAST(COALESCE(SUM(amount), 0) AS BIGINT) FROM ledger_postings WHERE account = $1 AND unit = $2")
            .bind(account)
            .bind(unit)
            .fetch_one(pool)
            .await
    })?;
    Ok(sum)
}
