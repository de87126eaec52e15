//! Reconciliation: one UTC day of the ledger against the payment processor's records — what
//! matches, what is missing on either side, amounts that differ, fees left owed (and those
//! the processor did collect), owed fees collected, waived or written off, and the insurance
//! authorizations and claims receivable of the day — with totals by kind and currency. Entries near midnight are looked up a day either side, so a charge the
//! processor dated 23:59:59 and the ledger 00:00:00 still matches; a ledger movement still
//! unmatched, and every fee still owed, is then looked up at the processor by its key.

use crate::billing::BillingError;
use crate::payments::{Payment, PaymentKind, PaymentProcessor, PaymentStatus};
use crate::storage::Db;
use crate::storage::ledger::{self, Entry, EntryKind, LedgerFilter, accounts};
use chrono::{DateTime, NaiveDate, TimeDelta, Utc};
use livesessions_domain::{ClientId, SessionId};
use serde::Serialize;
use std::collections::{BTreeMap, HashSet};

/// One money movement in the report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Line {
    /// The idempotency key (ledger and processor alike).
    pub key: String,
    /// `credit_purchase`, `late_cancel_fee`, `no_show_fee`, `copay`, `insurance_claim`,
    /// `refund`, or `charge` for a processor record the ledger does not know.
    pub kind: String,
    /// Whose money.
    pub client_id: ClientId,
    /// The session, when the ledger knows it.
    pub session_id: Option<SessionId>,
    /// Signed minor units (refunds negative).
    pub amount_minor: i64,
    /// ISO code.
    pub currency: String,
    /// The processor's id, if any.
    pub processor_ref: Option<String>,
    /// When it was recorded (ledger, or the processor for lines only it has).
    pub at: DateTime<Utc>,
}

/// A movement both sides know, with different amounts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Mismatch {
    /// The ledger's line.
    pub ledger: Line,
    /// What the processor recorded, signed minor units.
    pub processor_amount_minor: i64,
    /// Its currency.
    pub processor_currency: String,
}

/// Count and sum of one kind in one currency.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Total {
    /// Ledger entry kind.
    pub kind: String,
    /// ISO code.
    pub currency: String,
    /// How many.
    pub count: i64,
    /// Signed sum, minor units.
    pub amount_minor: i64,
}

/// The reconciliation of one day.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Report {
    /// The UTC day.
    pub date: NaiveDate,
    /// Money the ledger and the processor agree on.
    pub matched: Vec<Line>,
    /// Ledger movements through the processor that the processor has no record of.
    pub missing_at_processor: Vec<Line>,
    /// Processor charges and refunds the ledger has no record of.
    pub missing_in_ledger: Vec<Line>,
    /// Both know it, with different amounts.
    pub amount_mismatches: Vec<Mismatch>,
    /// Fees posted as owed (declined, or the processor unreachable).
    pub outstanding: Vec<Line>,
    /// Fees the ledger holds as owed that the processor did collect under their key.
    pub collected_but_outstanding: Vec<Mismatch>,
    /// Outstanding fees a collection attempt collected that day (`fee_collected`, keyed
    /// `<fee key>:collect:<n>`; they are among the processor's movements too).
    pub collected: Vec<Line>,
    /// Outstanding fees finance waived that day (`fee_waived`).
    pub waived: Vec<Line>,
    /// Outstanding fees written off that day after their last attempt (`fee_written_off`).
    pub written_off: Vec<Line>,
    /// Count and sum per currency of the day's `outstanding`, `collected`, `waived` and
    /// `written_off` fees (the `kind` is the list's name).
    pub fee_collection: Vec<Total>,
    /// Sessions insurance clients authorized that day, at their estimate (`amount_minor`), each
    /// with the session after which they did: the insurer's side, for claims.
    pub authorizations: Vec<Line>,
    /// Claims receivable recorded that day: the insurer's part (price less copay) of each
    /// insurance session that took place, keyed `<workflow id>:insurance_claim:<credit>`.
    pub claims: Vec<Line>,
    /// Ledger money of the day by kind and currency (collected and owed).
    pub totals: Vec<Total>,
}

impl Report {
    /// Whether every movement matched (outstanding fees are not discrepancies).
    pub fn is_clean(&self) -> bool {
        self.missing_at_processor.is_empty()
            && self.missing_in_ledger.is_empty()
            && self.amount_mismatches.is_empty()
            && self.collected_but_outstanding.is_empty()
    }
}

/// The money unit of an entry and its amount on `account`, if it has one.
fn money_on(entry: &Entry, account: impl Fn(&str) -> bool) -> Option<(String, i64)> {
    let is_money = |unit: &str| unit != accounts::CREDIT && unit != accounts::AUTH;
    let postings: Vec<_> =
        entry.postings.iter().filter(|p| account(&p.account) && is_money(&p.unit)).collect();
    let unit = postings.first()?.unit.clone();
    Some((unit, postings.iter().map(|p| p.amount).sum()))
}

fn is_receivable(account: &str) -> bool {
    account.starts_with("client:") && account.ends_with(":receivable")
}

fn ledger_line(entry: &Entry, currency: String, amount_minor: i64) -> Line {
    Line {
        key: entry.key.clone(),
        kind: entry.kind.to_string(),
        client_id: entry.client_id,
        session_id: entry.session_id,
        amount_minor,
        currency,
        processor_ref: entry.processor_ref.clone(),
        at: entry.occurred_at,
    }
}

fn is_copay_authorized(account: &str) -> bool {
    account.starts_with("client:") && account.ends_with(":copay_authorized")
}

/// What the processor did under `key`, when it charged or refunded money.
async fn collected_under(
    processor: &dyn PaymentProcessor,
    key: &str,
) -> Result<Option<Payment>, BillingError> {
    let found = processor.payment_by_key(key).await?;
    Ok(found.filter(|p| p.status == PaymentStatus::Succeeded))
}

fn signed(payment: &Payment) -> i64 {
    match payment.kind {
        PaymentKind::Charge => payment.amount.amount_minor,
        PaymentKind::Refund => -payment.amount.amount_minor,
    }
}

/// Reconciles `date` (UTC): the ledger in `db` against `processor`.
pub async fn reconcile(
    db: &Db,
    processor: &dyn PaymentProcessor,
    date: NaiveDate,
) -> Result<Report, BillingError> {
    let day_start = date.and_hms_opt(0, 0, 0).expect("midnight exists").and_utc();
    let day_end = day_start + TimeDelta::days(1);
    let (window_start, window_end) = (day_start - TimeDelta::days(1), day_end + TimeDelta::days(1));
    let in_day = |at: DateTime<Utc>| day_start <= at && at < day_end;

    let filter =
        LedgerFilter { from: Some(window_start), to: Some(window_end), ..Default::default() };
    let entries = ledger::entries(db, &filter).await?;
    let payments: Vec<Payment> = processor
        .payments_between(window_start, window_end)
        .await?
        .into_iter()
        .filter(|p| p.status == PaymentStatus::Succeeded)
        .collect();

    let mut report = Report {
        date,
        matched: Vec::new(),
        missing_at_processor: Vec::new(),
        missing_in_ledger: Vec::new(),
        amount_mismatches: Vec::new(),
        outstanding: Vec::new(),
        collected_but_outstanding: Vec::new(),
        collected: Vec::new(),
        waived: Vec::new(),
        written_off: Vec::new(),
        fee_collection: Vec::new(),
        authorizations: Vec::new(),
        claims: Vec::new(),
        totals: Vec::new(),
    };
    let mut totals: BTreeMap<(String, String), (i64, i64)> = BTreeMap::new();
    let mut known_to_ledger: HashSet<&str> = HashSet::new();
    for entry in &entries {
        if let Some(reference) = &entry.processor_ref {
            known_to_ledger.insert(reference);
        }
        known_to_ledger.insert(&entry.key);
    }
    for entry in entries.iter().filter(|e| in_day(e.occurred_at)) {
        let through_processor = money_on(entry, |a| a == accounts::PROCESSOR);
        let on_receivable = money_on(entry, is_receivable);
        let claimed = money_on(entry, |a| a == accounts::CLAIMS_RECEIVABLE);
        // Counted once: money through the processor, else what was owed or settled, else what
        // an insurer owes.
        let headline = through_processor
            .clone()
            .or_else(|| on_receivable.clone().map(|(currency, amount)| (currency, amount.abs())))
            .or_else(|| claimed.clone());
        if let Some((currency, amount)) = headline {
            let total = totals.entry((entry.kind.to_string(), currency)).or_default();
            *total = (total.0 + 1, total.1 + amount);
        }
        if let Some((currency, amount)) = through_processor {
            let line = ledger_line(entry, currency, amount);
            let in_window = payments.iter().find(|p| {
                Some(&p.id) == entry.processor_ref.as_ref() || p.idempotency_key == entry.key
            });
            let counterpart = match in_window {
                Some(payment) => Some(payment.clone()),
                None => collected_under(processor, &entry.key).await?,
            };
            match counterpart {
                None => report.missing_at_processor.push(line),
                Some(payment)
                    if signed(&payment) != amount
                        || payment.amount.currency.as_str() != line.currency =>
                {
                    report.amount_mismatches.push(Mismatch {
                        processor_amount_minor: signed(&payment),
                        processor_currency: payment.amount.currency.to_string(),
                        ledger: line,
                    })
                }
                Some(_) => report.matched.push(line),
            }
        }
        if let Some((currency, amount)) = on_receivable {
            let settled = ledger_line(entry, currency.clone(), -amount);
            match entry.kind {
                EntryKind::FeeCollected => report.collected.push(settled),
                EntryKind::FeeWaived => report.waived.push(settled),
                EntryKind::FeeWrittenOff => report.written_off.push(settled),
                _ if amount > 0 => {
                    let line = ledger_line(entry, currency, amount);
                    if let Some(payment) = collected_under(processor, &entry.key).await? {
                        report.collected_but_outstanding.push(Mismatch {
                            processor_amount_minor: signed(&payment),
                            processor_currency: payment.amount.currency.to_string(),
                            ledger: line.clone(),
                        });
                    }
                    report.outstanding.push(line);
                }
                _ => {}
            }
        }
        if let Some((currency, amount)) = money_on(entry, is_copay_authorized) {
            report.authorizations.push(ledger_line(entry, currency, amount));
        }
        if let Some((currency, amount)) = claimed {
            report.claims.push(ledger_line(entry, currency, amount));
        }
    }
    for payment in payments.iter().filter(|p| in_day(p.created_at)) {
        if !known_to_ledger.contains(payment.id.as_str())
            && !known_to_ledger.contains(payment.idempotency_key.as_str())
        {
            report.missing_in_ledger.push(Line {
                key: payment.idempotency_key.clone(),
                kind: match payment.kind {
                    PaymentKind::Charge => "charge".into(),
                    PaymentKind::Refund => "refund".into(),
                },
                client_id: payment.customer,
                session_id: None,
                amount_minor: signed(payment),
                currency: payment.amount.currency.to_string(),
                processor_ref: Some(payment.id.clone()),
                at: payment.created_at,
            });
        }
    }
    report.totals = summed(totals);
    let mut fee_collection: BTreeMap<(String, String), (i64, i64)> = BTreeMap::new();
    let lists = [
        ("outstanding", &report.outstanding),
        ("collected", &report.collected),
        ("waived", &report.waived),
        ("written_off", &report.written_off),
    ];
    for (state, lines) in lists {
        for line in lines {
            let total =
                fee_collection.entry((state.to_string(), line.currency.clone())).or_default();
            *total = (total.0 + 1, total.1 + line.amount_minor);
        }
    }
    report.fee_collection = summed(fee_collection);
    Ok(report)
}

/// Counts and sums keyed by kind and currency, as totals.
fn summed(totals: BTreeMap<(String, String), (i64, i64)>) -> Vec<Total> {
    totals
        .into_iter()
        .map(|((kind, currency), (count, amount_minor))| Total {
            kind,
            currency,
            count,
            amount_minor,
        })
        .collect()
}
