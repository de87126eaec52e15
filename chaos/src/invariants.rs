//! The invariants a chaos run checks once its sessions have settled, each from the records that
//! can break it: Temporal (each workflow described, queried and, once closed, its result), the
//! read model (through the API), the ledger and the sandbox processor's own records
//! (`sandbox_payments`, what it charged and refunded). Double charges are counted from the
//! processor and the ledger, never from what the driver was answered.

use crate::expectations::expected_fees;
use crate::lifecycles::Driven;
use chrono::{DateTime, TimeDelta, Utc};
use futures::StreamExt;
use livesessions_activities::Db;
use livesessions_activities::payments::sandbox::SandboxProcessor;
use livesessions_activities::payments::{Payment, PaymentKind, PaymentProcessor, PaymentStatus};
use livesessions_activities::reconciliation::reconcile;
use livesessions_activities::storage::ledger::{self, Entry, EntryKind, LedgerFilter};
use livesessions_domain::{ClientId, FeeKind, SessionId, SessionSnapshot};
use livesessions_system::Driver;
use livesessions_worker::{Sessions, TemporalSettings};
use livesessions_workflows::LiveSession;
use reqwest::StatusCode;
use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};
use temporalio_client::errors::WorkflowInteractionError;
use temporalio_client::{
    Client, WorkflowDescribeOptions, WorkflowExecutionStatus, WorkflowGetResultOptions,
};

/// What broke, per invariant: one line per breach.
#[derive(Debug, Clone, Default)]
pub struct Findings {
    /// Sessions booked (`201`) whose workflow or read-model row does not exist.
    pub lost: Vec<String>,
    /// Sessions not final at the end: workflow running, failed or terminated, or no outcome.
    pub stuck: Vec<String>,
    /// Fees a final session should carry that the ledger does not have (charged or owed).
    pub fees_missed: Vec<String>,
    /// A fee, purchase or refund moved more often than asked, at the processor or in the
    /// ledger; or a key used twice.
    pub double_charges: Vec<String>,
    /// Ledger transactions whose postings do not sum to zero per unit (or have none).
    pub ledger_unbalanced: Vec<String>,
    /// Reconciliation's discrepancies for each day of the run.
    pub processor_mismatches: Vec<String>,
    /// The workflow's query, its result and the read model that do not say the same.
    pub disagreements: Vec<String>,
    /// Credits still held once every session has ended.
    pub credits_held: Vec<String>,
    /// Purchases and refunds answered `201` that the processor or the ledger lacks.
    pub money_lost: Vec<String>,
}

impl Findings {
    /// Each invariant's name and its breaches, in the order the summary prints them.
    pub fn rows(&self) -> [(&'static str, &[String]); 9] {
        [
            ("sessions lost", &self.lost),
            ("sessions stuck", &self.stuck),
            ("fees missed", &self.fees_missed),
            ("double charges", &self.double_charges),
            ("ledger unbalanced", &self.ledger_unbalanced),
            ("processor vs ledger mismatches", &self.processor_mismatches),
            ("read model vs workflow disagreements", &self.disagreements),
            ("credits still held", &self.credits_held),
            ("purchases or refunds lost", &self.money_lost),
        ]
    }

    /// How many breaches in all.
    pub fn breaches(&self) -> usize {
        self.rows().iter().map(|(_, lines)| lines.len()).sum()
    }
}

/// Waits, polling every second until `deadline`, for each session's workflow to close and
/// every fee left owed to be collected (or written off).
pub async fn settle(records: &Records<'_>, sessions: &[SessionId], deadline: Instant) {
    let mut open: Vec<SessionId> = sessions.to_vec();
    while Instant::now() < deadline {
        let statuses = futures::stream::iter(open.clone())
            .map(|id| async move { (id, status(records.temporal, id).await) })
            .buffer_unordered(16)
            .collect::<Vec<_>>()
            .await;
        open = statuses
            .into_iter()
            .filter(|(_, status)| matches!(status, Ok(WorkflowExecutionStatus::Running) | Err(_)))
            .map(|(id, _)| id)
            .collect();
        if open.is_empty() && fees_owed(records.db).await.is_ok_and(|owed| owed == 0) {
            return;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// How many fees are owed now (left outstanding, not yet collected, waived or written off).
async fn fees_owed(db: &Db) -> anyhow::Result<i64> {
    let Db::Postgres(pool) = db else { anyhow::bail!("the chaos run uses PostgreSQL") };
    let owed =
        sqlx::query_scalar("SELECT COUNT(*) FROM fee_collections WHERE state = 'outstanding'")
            .fetch_one(pool)
            .await?;
    Ok(owed)
}

/// How many fees were left owed during the run (each then collected, waived or written off).
pub async fn fees_left_owed(db: &Db) -> anyhow::Result<i64> {
    let Db::Postgres(pool) = db else { anyhow::bail!("the chaos run uses PostgreSQL") };
    Ok(sqlx::query_scalar("SELECT COUNT(*) FROM fee_collections").fetch_one(pool).await?)
}

async fn status(
    temporal: &Client,
    id: SessionId,
) -> Result<WorkflowExecutionStatus, WorkflowInteractionError> {
    let handle = temporal.get_workflow_handle::<LiveSession>(id.workflow_id());
    Ok(handle.describe(WorkflowDescribeOptions::default()).await?.status())
}

/// Everything the checks read.
pub struct Records<'a> {
    /// The run's Temporal server.
    pub temporal: &'a Client,
    /// The API, for the read model.
    pub driver: &'a Driver,
    /// The run's database (ledger, sandbox processor, credits).
    pub db: &'a Db,
    /// When the run began (reconciliation covers each UTC day since).
    pub since: DateTime<Utc>,
}

/// Checks every invariant over what the lifecycles did; answers the breaches and how the
/// sessions ended (state → count).
pub async fn check(
    records: &Records<'_>,
    driven: &[Driven],
) -> anyhow::Result<(Findings, BTreeMap<String, usize>)> {
    let mut findings = Findings::default();
    let sessions: Vec<&Driven> = driven.iter().filter(|d| d.session.is_some()).collect();
    let checked = futures::stream::iter(sessions)
        .map(|d| async move { (d, check_session(records, d.session.expect("filtered")).await) })
        .buffer_unordered(8)
        .collect::<Vec<_>>()
        .await;
    let mut finals: Vec<(&Driven, SessionSnapshot)> = Vec::new();
    let mut endings: BTreeMap<String, usize> = BTreeMap::new();
    for (d, outcome) in checked {
        match outcome? {
            Session::Lost(why) => findings.lost.push(why),
            Session::Seen { snapshot, stuck, disagreement } => {
                findings.stuck.extend(stuck);
                findings.disagreements.extend(disagreement);
                *endings.entry(snapshot.state.to_string()).or_default() += 1;
                finals.push((d, *snapshot));
            }
        }
    }
    let processor = SandboxProcessor::new(records.db.clone());
    let (from, to) = (records.since - TimeDelta::days(1), Utc::now() + TimeDelta::days(1));
    let payments: Vec<Payment> = processor
        .payments_between(from, to)
        .await?
        .into_iter()
        .filter(|p| p.status == PaymentStatus::Succeeded)
        .collect();
    let entries = ledger::entries(records.db, &LedgerFilter::default()).await?;
    let mut expected: HashMap<(SessionId, FeeKind), usize> = HashMap::new();
    for (driven, snapshot) in &finals {
        for kind in expected_fees(snapshot, driven.late_reschedules) {
            *expected.entry((snapshot.id, kind)).or_default() += 1;
        }
    }
    check_keys(&payments, &entries, &mut findings);
    check_fees(&expected, &payments, &entries, &mut findings);
    check_purchases_and_refunds(driven, &payments, &entries, &mut findings);
    check_balance(records.db, &mut findings).await?;
    check_reconciliation(records, &processor, &mut findings).await?;
    check_credits(records.db, &mut findings).await?;
    Ok((findings, endings))
}

/// One session as Temporal and the read model show it.
enum Session {
    /// Its workflow or its row is missing.
    Lost(String),
    /// Both exist: the read model's snapshot, and what is wrong with it.
    Seen { snapshot: Box<SessionSnapshot>, stuck: Option<String>, disagreement: Option<String> },
}

async fn check_session(records: &Records<'_>, id: SessionId) -> anyhow::Result<Session> {
    let handle = records.temporal.get_workflow_handle::<LiveSession>(id.workflow_id());
    let status = match handle.describe(WorkflowDescribeOptions::default()).await {
        Ok(description) => description.status(),
        Err(WorkflowInteractionError::NotFound(_)) => {
            return Ok(Session::Lost(format!("{id}: booked, but Temporal has no workflow")));
        }
        Err(other) => return Err(other.into()),
    };
    let row = records.driver.session(id).await?;
    if row.status == StatusCode::NOT_FOUND {
        return Ok(Session::Lost(format!("{id}: booked, but the read model has no row")));
    }
    anyhow::ensure!(row.status == StatusCode::OK, "GET session {id}: {} {}", row.status, row.body);
    let snapshot: SessionSnapshot = serde_json::from_value(row.body)?;
    let sessions = Sessions::new(records.temporal.clone(), &TemporalSettings::default());
    let queried = sessions.snapshot(id).await?;
    let result = match status {
        WorkflowExecutionStatus::Completed => {
            Some(handle.get_result(WorkflowGetResultOptions::default()).await?)
        }
        _ => None,
    };
    let stuck = match (status, &snapshot.outcome) {
        (WorkflowExecutionStatus::Completed, Some(_)) => None,
        (status, _) => Some(format!("{id}: workflow {status:?}, session {}", snapshot.state)),
    };
    let agree = queried == snapshot && result.as_ref().is_none_or(|r| *r == snapshot);
    let disagreement = (!agree).then(|| {
        format!(
            "{id}: read model {} v{}, query {} v{}, result {:?}",
            snapshot.state,
            snapshot.version,
            queried.state,
            queried.version,
            result.as_ref().map(|r| (r.state, r.version))
        )
    });
    Ok(Session::Seen { snapshot: Box::new(snapshot), stuck, disagreement })
}

/// A fee's key, `live-session-<uuid>:<fee kind>:r<round>`, read back: the session and the kind,
/// and whether the key is that of a later collection attempt (`<fee key>:collect:<n>`), with
/// the fee's own key.
fn fee_of(key: &str) -> Option<(SessionId, FeeKind, String, bool)> {
    let (fee_key, collected) = match key.rsplit_once(":collect:") {
        Some((fee_key, attempt)) if attempt.parse::<u32>().is_ok() => (fee_key, true),
        _ => (key, false),
    };
    let mut parts = fee_key.split(':');
    let session = SessionId::from_workflow_id(parts.next()?).ok()?;
    let kind = FeeKind::parse(parts.next()?).ok()?;
    let round = parts.next()?.strip_prefix('r')?;
    if round.parse::<u32>().is_err() || parts.next().is_some() {
        return None;
    }
    Some((session, kind, fee_key.to_string(), collected))
}

/// No key charged twice at the processor, none posted twice in the ledger.
fn check_keys(payments: &[Payment], entries: &[Entry], findings: &mut Findings) {
    let mut at_processor: HashMap<&str, usize> = HashMap::new();
    for payment in payments {
        *at_processor.entry(payment.idempotency_key.as_str()).or_default() += 1;
    }
    let mut in_ledger: HashMap<&str, usize> = HashMap::new();
    for entry in entries {
        *in_ledger.entry(entry.key.as_str()).or_default() += 1;
    }
    for (place, counts) in [("the processor", at_processor), ("the ledger", in_ledger)] {
        for (key, n) in counts.into_iter().filter(|(_, n)| *n > 1) {
            findings.double_charges.push(format!("{key}: {n} times at {place}"));
        }
    }
}

/// Each final session carries the fees `expected` (per session and kind, from
/// `expected_fees`) in the ledger (charged or owed), and no fee is taken more often: per session
/// and kind at the processor and in the ledger, and per fee across its collection attempts.
fn check_fees(
    expected: &HashMap<(SessionId, FeeKind), usize>,
    payments: &[Payment],
    entries: &[Entry],
    findings: &mut Findings,
) {
    // Charges at the processor that settle each fee: under its key or a collection attempt's.
    let mut charged: HashMap<String, (SessionId, FeeKind, usize)> = HashMap::new();
    for payment in payments.iter().filter(|p| p.kind == PaymentKind::Charge) {
        if let Some((session, kind, fee_key, _)) = fee_of(&payment.idempotency_key) {
            charged.entry(fee_key).or_insert((session, kind, 0)).2 += 1;
        }
    }
    let mut fees_charged: HashMap<(SessionId, FeeKind), usize> = HashMap::new();
    for (fee_key, (session, kind, n)) in &charged {
        if *n > 1 {
            findings.double_charges.push(format!("{fee_key}: charged {n} times at the processor"));
        }
        *fees_charged.entry((*session, *kind)).or_default() += 1;
    }
    // Fees posted in the ledger (charged or owed), and collections of owed ones.
    let mut posted: HashMap<(SessionId, FeeKind), usize> = HashMap::new();
    let mut collections: HashMap<String, usize> = HashMap::new();
    for entry in entries {
        match fee_of(&entry.key) {
            Some((_, _, fee_key, true)) if entry.kind == EntryKind::FeeCollected => {
                *collections.entry(fee_key).or_default() += 1;
            }
            Some((session, kind, _, false)) => *posted.entry((session, kind)).or_default() += 1,
            _ => {}
        }
    }
    for (fee_key, n) in collections.into_iter().filter(|(_, n)| *n > 1) {
        findings.double_charges.push(format!("{fee_key}: collected {n} times in the ledger"));
    }
    let mut keys: Vec<&(SessionId, FeeKind)> =
        expected.keys().chain(fees_charged.keys()).chain(posted.keys()).collect();
    keys.sort_by_key(|(session, kind)| (*session, kind.as_str()));
    keys.dedup();
    for key @ (session, kind) in keys {
        let want = expected.get(key).copied().unwrap_or_default();
        let at_processor = fees_charged.get(key).copied().unwrap_or_default();
        let in_ledger = posted.get(key).copied().unwrap_or_default();
        if at_processor > want {
            findings.double_charges.push(format!(
                "{session}: {at_processor} {kind} charged at the processor, {want} due"
            ));
        }
        if in_ledger > want {
            findings
                .double_charges
                .push(format!("{session}: {in_ledger} {kind} in the ledger, {want} due"));
        }
        if in_ledger < want {
            findings
                .fees_missed
                .push(format!("{session}: {in_ledger} {kind} in the ledger, {want} due"));
        }
    }
}

/// Credit purchases (`credit-purchase-…` keys) and refunds per client, at the processor and in
/// the ledger: never more than the driver asked for, never fewer than were answered `201`.
fn check_purchases_and_refunds(
    driven: &[Driven],
    payments: &[Payment],
    entries: &[Entry],
    findings: &mut Findings,
) {
    let is_purchase = |key: &str| key.starts_with("credit-purchase-");
    let mut moved: HashMap<(ClientId, &str, &str), u32> = HashMap::new();
    for payment in payments {
        let what = match payment.kind {
            PaymentKind::Charge if is_purchase(&payment.idempotency_key) => "purchases",
            PaymentKind::Refund => "refunds",
            PaymentKind::Charge => continue,
        };
        *moved.entry((payment.customer, what, "the processor")).or_default() += 1;
    }
    for entry in entries {
        let what = match entry.kind {
            EntryKind::CreditPurchase if is_purchase(&entry.key) => "purchases",
            EntryKind::Refund => "refunds",
            _ => continue,
        };
        *moved.entry((entry.client_id, what, "the ledger")).or_default() += 1;
    }
    for d in driven {
        let Some(client) = d.client else { continue };
        for (what, asked) in [("purchases", d.purchases), ("refunds", d.refunds)] {
            for place in ["the processor", "the ledger"] {
                let n = moved.get(&(client, what, place)).copied().unwrap_or_default();
                if n > asked.asked {
                    findings.double_charges.push(format!(
                        "client {client}: {n} {what} at {place}, {} asked for",
                        asked.asked
                    ));
                }
                if n < asked.confirmed {
                    findings.money_lost.push(format!(
                        "client {client}: {n} {what} at {place}, {} answered 201",
                        asked.confirmed
                    ));
                }
            }
        }
    }
}

/// Every ledger transaction has postings that sum to zero per unit; so does the whole ledger.
async fn check_balance(db: &Db, findings: &mut Findings) -> anyhow::Result<()> {
    let Db::Postgres(pool) = db else { anyhow::bail!("the chaos run uses PostgreSQL") };
    let unbalanced: Vec<(String, String, i64)> = sqlx::query_as(
        "SELECT t.idempotency_key, p.unit, SUM(p.amount)::BIGINT
         FROM ledger_transactions t JOIN ledger_postings p ON p.transaction_id = t.id
         GROUP BY t.idempotency_key, p.unit HAVING SUM(p.amount) <> 0",
    )
    .fetch_all(pool)
    .await?;
    for (key, unit, sum) in unbalanced {
        findings.ledger_unbalanced.push(format!("{key}: {unit} sums to {sum}"));
    }
    let empty: Vec<String> = sqlx::query_scalar(
        "SELECT t.idempotency_key FROM ledger_transactions t
         WHERE NOT EXISTS (SELECT 1 FROM ledger_postings p WHERE p.transaction_id = t.id)",
    )
    .fetch_all(pool)
    .await?;
    findings.ledger_unbalanced.extend(empty.into_iter().map(|key| format!("{key}: no postings")));
    let units: Vec<(String, i64)> = sqlx::query_as(
        "SELECT unit, SUM(amount)::BIGINT FROM ledger_postings GROUP BY unit HAVING SUM(amount) <> 0",
    )
    .fetch_all(pool)
    .await?;
    for (unit, sum) in units {
        findings.ledger_unbalanced.push(format!("the whole ledger: {unit} sums to {sum}"));
    }
    Ok(())
}

/// Reconciliation of each UTC day of the run: nothing missing on either side, no amount that
/// differs, no owed fee the processor did collect.
async fn check_reconciliation(
    records: &Records<'_>,
    processor: &SandboxProcessor,
    findings: &mut Findings,
) -> anyhow::Result<()> {
    let mut date = records.since.date_naive();
    while date <= Utc::now().date_naive() {
        let report = reconcile(records.db, processor, date).await?;
        let lines = report.missing_at_processor.iter().map(|l| ("missing at the processor", l));
        let lines =
            lines.chain(report.missing_in_ledger.iter().map(|l| ("missing in the ledger", l)));
        for (what, line) in lines {
            findings.processor_mismatches.push(format!("{date}: {what}: {}", line.key));
        }
        let mismatches = report.amount_mismatches.iter().map(|m| ("amounts differ", m));
        let mismatches = mismatches
            .chain(report.collected_but_outstanding.iter().map(|m| ("owed, but collected", m)));
        for (what, mismatch) in mismatches {
            findings.processor_mismatches.push(format!(
                "{date}: {what}: {} (ledger {}, processor {})",
                mismatch.ledger.key, mismatch.ledger.amount_minor, mismatch.processor_amount_minor
            ));
        }
        date = date.succ_opt().expect("a day after today exists");
    }
    Ok(())
}

/// No credit (or authorization) is still held once every session has ended.
async fn check_credits(db: &Db, findings: &mut Findings) -> anyhow::Result<()> {
    let Db::Postgres(pool) = db else { anyhow::bail!("the chaos run uses PostgreSQL") };
    let held: Vec<(uuid::Uuid, Option<uuid::Uuid>)> =
        sqlx::query_as("SELECT id, session_id FROM credits WHERE status = 'reserved'")
            .fetch_all(pool)
            .await?;
    for (credit, session) in held {
        findings.credits_held.push(format!("credit {credit} held by session {session:?}"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lifecycles::{Asked, Kind};
    use livesessions_domain::{Currency, Money};

    fn payment(key: &str, kind: PaymentKind, customer: ClientId) -> Payment {
        Payment {
            id: format!("sbx_{}", uuid::Uuid::new_v4().simple()),
            idempotency_key: key.into(),
            kind,
            customer,
            amount: Money::new(8_500, Currency::parse("USD").expect("a currency")),
            status: PaymentStatus::Succeeded,
            created_at: Utc::now(),
        }
    }

    fn entry(key: &str, kind: EntryKind, client: ClientId) -> Entry {
        Entry {
            key: key.into(),
            kind,
            client_id: client,
            session_id: None,
            workflow_id: None,
            processor_ref: None,
            occurred_at: Utc::now(),
            postings: Vec::new(),
        }
    }

    fn driven(client: ClientId, purchases: Asked, refunds: Asked) -> Driven {
        Driven {
            kind: Kind::Refund,
            client: Some(client),
            session: None,
            late_reschedules: 0,
            purchases,
            refunds,
            problems: Vec::new(),
        }
    }

    #[test]
    fn fee_keys_are_read_back_and_nothing_else_is() {
        let session = SessionId::random();
        let fee = format!("{}:late_cancel_fee:r2", session.workflow_id());
        assert_eq!(fee_of(&fee), Some((session, FeeKind::LateCancelFee, fee.clone(), false)));
        let collected = format!("{fee}:collect:3");
        assert_eq!(fee_of(&collected), Some((session, FeeKind::LateCancelFee, fee.clone(), true)));
        for other in [
            format!("{fee}:refund:{}", uuid::Uuid::new_v4()),
            format!("{fee}:waived"),
            format!("{}:credit_purchase", session.workflow_id()),
            format!("{}:no_show_fee:rx", session.workflow_id()),
            format!("credit-purchase-{}:credit_purchase", uuid::Uuid::new_v4()),
        ] {
            assert_eq!(fee_of(&other), None, "{other}");
        }
    }

    #[test]
    fn fees_are_due_once_each() {
        let (client, session) = (ClientId::random(), SessionId::random());
        let fee = format!("{}:no_show_fee:r0", session.workflow_id());
        let expected = HashMap::from([((session, FeeKind::NoShowFee), 1)]);
        let charged = [payment(&fee, PaymentKind::Charge, client)];
        let posted = [entry(&fee, EntryKind::NoShowFee, client)];

        let mut clean = Findings::default();
        check_fees(&expected, &charged, &posted, &mut clean);
        assert_eq!(clean.breaches(), 0, "{clean:?}");

        let mut missed = Findings::default();
        check_fees(&expected, &[], &[], &mut missed);
        assert_eq!(missed.fees_missed.len(), 1, "{missed:?}");

        // Taken again by a collection attempt, and under a second round's key.
        let again = payment(&format!("{fee}:collect:1"), PaymentKind::Charge, client);
        let other_round = format!("{}:no_show_fee:r1", session.workflow_id());
        let mut twice = Findings::default();
        let payments =
            [charged[0].clone(), again, payment(&other_round, PaymentKind::Charge, client)];
        let entries = [posted[0].clone(), entry(&other_round, EntryKind::NoShowFee, client)];
        check_fees(&expected, &payments, &entries, &mut twice);
        assert_eq!(twice.double_charges.len(), 3, "{twice:?}");
    }

    #[test]
    fn purchases_and_refunds_move_as_often_as_asked_and_answered() {
        let client = ClientId::random();
        let asked_once = Asked { asked: 1, confirmed: 1 };
        let key = format!("credit-purchase-{}:credit_purchase", uuid::Uuid::new_v4());
        let refund = format!("{key}:refund:{}", uuid::Uuid::new_v4());
        let payments = [
            payment(&key, PaymentKind::Charge, client),
            payment(&refund, PaymentKind::Refund, client),
        ];
        let entries = [
            entry(&key, EntryKind::CreditPurchase, client),
            entry(&refund, EntryKind::Refund, client),
        ];

        let mut clean = Findings::default();
        let lifecycle = [driven(client, asked_once, asked_once)];
        check_purchases_and_refunds(&lifecycle, &payments, &entries, &mut clean);
        assert_eq!(clean.breaches(), 0, "{clean:?}");

        let mut lost = Findings::default();
        check_purchases_and_refunds(&lifecycle, &payments[..1], &entries[..1], &mut lost);
        assert_eq!(lost.money_lost.len(), 2, "the refund, at the processor and in the ledger");

        let mut twice = Findings::default();
        let second = format!("credit-purchase-{}:credit_purchase", uuid::Uuid::new_v4());
        let payments = [payments[0].clone(), payment(&second, PaymentKind::Charge, client)];
        let no_refund = [driven(client, asked_once, Asked::default())];
        check_purchases_and_refunds(&no_refund, &payments, &entries[..1], &mut twice);
        assert_eq!(twice.double_charges.len(), 1, "{twice:?}");
    }

    #[test]
    fn a_key_twice_is_a_double_charge() {
        let client = ClientId::random();
        let key = "live-session-x:late_cancel_fee:r0";
        let mut findings = Findings::default();
        let payments = vec![payment(key, PaymentKind::Charge, client); 2];
        check_keys(&payments, &[entry(key, EntryKind::LateCancelFee, client)], &mut findings);
        assert_eq!(findings.double_charges.len(), 1, "{findings:?}");
    }
}
