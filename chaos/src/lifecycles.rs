//! The lifecycles a chaos run drives, each with a client and a therapist of its own, through a
//! careful driver (it retries with the same Idempotency-Key and follows `202`s): the main path,
//! a late cancel, a client no-show, a provider's absence (no-show or unavailable), a reschedule
//! (in time or late), an insurance session (with or without the next authorization), a credit
//! purchase before a main path, and refunds (of a purchase in full, then half of a late
//! cancel's fee). Each records what its answers said was done, for the invariants.
//!
//! Sessions that start within seconds (the no-shows) race the faults: a booking retried past
//! its start is refused, a confirmation that comes after the start finds the request expired,
//! and a join after the grace period is refused. Those answers are the rules applied to a late
//! call, not a fault of the system, and are taken as the session's story; any other answer a
//! step did not want is recorded as a problem.

use chrono::{TimeDelta, Utc};
use livesessions_activities::Db;
use livesessions_activities::payments::sandbox::{Fault, plan_fault};
use livesessions_domain::{ClientId, FeeKind, RefusalCode, Role, SessionId};
use livesessions_system::driver::in_minutes;
use livesessions_system::{Booked, Driver, Pair, Unexpected};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use std::time::Duration;

/// A kind of lifecycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    /// Book an hour ahead, confirm, both join, the room ends.
    MainPath,
    /// Book half an hour ahead, confirm, the client cancels (late). A third of the time the
    /// sandbox declines the fee's first charge (the fee is owed, then collected by a later
    /// attempt); a third of the time it charges, then loses its answer (the retry finds the
    /// charge).
    LateCancel,
    /// The session starts within seconds; only the provider joins.
    ClientNoShow,
    /// Half the time only the client joins a session starting within seconds; else the provider
    /// says they cannot attend.
    ProviderAbsence,
    /// Confirmed, then moved (three days ahead to an hour ahead: in time; or half an hour ahead
    /// to 90 minutes ahead: late, charging the fee), confirmed again, then it takes place.
    Reschedule,
    /// An insurance client's session takes place; half the time they authorize the next one.
    Insurance,
    /// The client buys a credit, then a main path.
    Purchase,
    /// The client buys a credit and finance refunds it in full; then a late cancel, and finance
    /// refunds half its fee.
    Refund,
}

impl Kind {
    /// Every kind.
    pub const ALL: [Kind; 8] = [
        Kind::MainPath,
        Kind::LateCancel,
        Kind::ClientNoShow,
        Kind::ProviderAbsence,
        Kind::Reschedule,
        Kind::Insurance,
        Kind::Purchase,
        Kind::Refund,
    ];

    /// How tables name it.
    pub fn name(self) -> &'static str {
        match self {
            Kind::MainPath => "main path",
            Kind::LateCancel => "late cancel",
            Kind::ClientNoShow => "client no-show",
            Kind::ProviderAbsence => "provider absence",
            Kind::Reschedule => "reschedule",
            Kind::Insurance => "insurance",
            Kind::Purchase => "purchase",
            Kind::Refund => "refunds",
        }
    }

    /// The mix of a run of `n` under `seed`: each kind once first (when `n` allows), then drawn
    /// at random, the main path three times as often as any other and the reschedule twice.
    pub fn mix(seed: u64, n: usize) -> Vec<Kind> {
        let mut rng = StdRng::seed_from_u64(seed);
        let mut kinds = Kind::ALL.to_vec();
        kinds.shuffle(&mut rng);
        kinds.truncate(n);
        let weighted = [
            Kind::MainPath,
            Kind::MainPath,
            Kind::MainPath,
            Kind::LateCancel,
            Kind::ClientNoShow,
            Kind::ProviderAbsence,
            Kind::Reschedule,
            Kind::Reschedule,
            Kind::Insurance,
            Kind::Purchase,
            Kind::Refund,
        ];
        while kinds.len() < n {
            kinds.push(weighted[rng.random_range(0..weighted.len())]);
        }
        kinds
    }
}

/// Money movements a lifecycle asked for, and how many of them were confirmed (`201`).
#[derive(Debug, Clone, Copy, Default)]
pub struct Asked {
    /// Asked for (each with an Idempotency-Key of its own, sent again on a retry).
    pub asked: u32,
    /// Answered `201`.
    pub confirmed: u32,
}

/// What one lifecycle did, as its answers said.
#[derive(Debug, Clone)]
pub struct Driven {
    /// Which kind.
    pub kind: Kind,
    /// Its client, once registered.
    pub client: Option<ClientId>,
    /// Its session, once booked (`201`).
    pub session: Option<SessionId>,
    /// Reschedules answered `200` that were late (each charges the fee of the round left).
    pub late_reschedules: u32,
    /// Credit purchases.
    pub purchases: Asked,
    /// Refunds.
    pub refunds: Asked,
    /// Answers a step did not want (beyond the races of the module's doc).
    pub problems: Vec<String>,
}

/// Drives one lifecycle of `kind`, its choices drawn from `seed`; `sandbox` is the database
/// of the sandbox processor, which is told there which charges to decline or lose.
pub async fn drive(driver: &Driver, sandbox: &Db, kind: Kind, seed: u64) -> Driven {
    let mut driven = Driven {
        kind,
        client: None,
        session: None,
        late_reschedules: 0,
        purchases: Asked::default(),
        refunds: Asked::default(),
        problems: Vec::new(),
    };
    let mut rng = StdRng::seed_from_u64(seed);
    if let Err(problem) = run(driver, sandbox, kind, &mut rng, &mut driven).await {
        driven.problems.push(format!("{} lifecycle: {problem:#}", kind.name()));
    }
    driven
}

async fn run(
    driver: &Driver,
    sandbox: &Db,
    kind: Kind,
    rng: &mut StdRng,
    driven: &mut Driven,
) -> anyhow::Result<()> {
    let pair = match kind {
        Kind::Insurance => driver.pair_on("insurance", "insurance-standard").await?,
        _ => driver.pair().await?,
    };
    driven.client = Some(pair.client);
    match kind {
        Kind::MainPath => main_path(driver, pair, driven).await,
        Kind::LateCancel => {
            let session = booked_and_confirmed(driver, pair, in_minutes(30), driven).await?;
            let fault = match rng.random_range(0..3) {
                0 => Some(Fault::Decline),
                1 => Some(Fault::TimeoutAfterCharge { delay: Duration::from_secs(1) }),
                _ => None,
            };
            if let Some(fault) = fault {
                let fee_key = format!("{}:{}:r0", session.id.workflow_id(), FeeKind::LateCancelFee);
                // Told through the database, which the faults may be restarting: try for a while.
                let mut tries = 0;
                while let Err(error) = plan_fault(sandbox, &fee_key, fault, 1).await {
                    tries += 1;
                    anyhow::ensure!(tries < 60, "the sandbox could not be told: {error}");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
            driver.cancel(&session).await.map(|_| ())
        }
        Kind::ClientNoShow => absence(driver, pair, Role::Provider, driven).await,
        Kind::ProviderAbsence if rng.random_bool(0.5) => {
            absence(driver, pair, Role::Client, driven).await
        }
        Kind::ProviderAbsence => {
            let session = booked_and_confirmed(driver, pair, in_minutes(60), driven).await?;
            driver.changed(&session, "provider-unavailable", Role::Provider).await.map(|_| ())
        }
        Kind::Reschedule => reschedule(driver, pair, rng.random_bool(0.5), driven).await,
        Kind::Insurance => {
            let session = booked_and_confirmed(driver, pair, in_minutes(60), driven).await?;
            driver.take_place(&session).await?;
            if rng.random_bool(0.5) {
                driver.wait_for_state(&session, "completed").await?;
                let answer = driver.change(&session, "authorize-next", Role::Client, json!({}));
                let answer = answer.await?;
                // Past the (short) reauthorization window the offer has lapsed: the rules.
                if answer.status != StatusCode::OK
                    && answer.code() != RefusalCode::AuthorizationWindowClosed.as_str()
                {
                    anyhow::bail!(
                        "authorize-next {}: {} {}",
                        session.id,
                        answer.status,
                        answer.body
                    );
                }
            }
            Ok(())
        }
        Kind::Purchase => {
            purchase(driver, pair, driven).await?;
            main_path(driver, pair, driven).await
        }
        Kind::Refund => {
            let bought = purchase(driver, pair, driven).await?;
            refund(driver, &bought, None, driven).await?;
            let cancelled = late_cancel(driver, pair, driven).await?;
            // Half of the fee, when it was charged (an outstanding one moved no money).
            let fee = &cancelled["fees"][0];
            if fee["status"] == "charged" {
                let key = fee["key"].as_str().unwrap_or_default().to_string();
                let half = fee["amount"]["amount_minor"].as_i64().unwrap_or_default() / 2;
                refund(driver, &key, Some(half), driven).await?;
            }
            Ok(())
        }
    }
}

/// Books (recording the session) and confirms.
async fn booked_and_confirmed(
    driver: &Driver,
    pair: Pair,
    starts_at: chrono::DateTime<Utc>,
    driven: &mut Driven,
) -> anyhow::Result<Booked> {
    let session = driver.book(pair, starts_at).await?;
    driven.session = Some(session.id);
    driver.changed(&session, "confirm", Role::Provider).await?;
    Ok(session)
}

async fn main_path(driver: &Driver, pair: Pair, driven: &mut Driven) -> anyhow::Result<()> {
    let session = booked_and_confirmed(driver, pair, in_minutes(60), driven).await?;
    driver.take_place(&session).await
}

/// Answers the session as the cancel left it.
async fn late_cancel(driver: &Driver, pair: Pair, driven: &mut Driven) -> anyhow::Result<Value> {
    let session = booked_and_confirmed(driver, pair, in_minutes(30), driven).await?;
    driver.cancel(&session).await
}

/// A session starting in ten seconds; only `present` joins.
async fn absence(
    driver: &Driver,
    pair: Pair,
    present: Role,
    driven: &mut Driven,
) -> anyhow::Result<()> {
    let steps = async {
        let session = driver.book(pair, Utc::now() + TimeDelta::seconds(10)).await?;
        driven.session = Some(session.id);
        driver.changed(&session, "confirm", Role::Provider).await?;
        driver.join(&session, present).await
    };
    match steps.await {
        Ok(_) => Ok(()),
        Err(error) if is_late(&error) => Ok(()),
        Err(error) => Err(error),
    }
}

/// Whether a step was refused only because the faults made it late: a booking retried past
/// its start, a confirmation after the request expired, a join after the grace period.
fn is_late(error: &anyhow::Error) -> bool {
    let late = [
        RefusalCode::BookingNoticeTooShort,
        RefusalCode::NotAwaitingConfirmation,
        RefusalCode::JoinNotOpen,
    ];
    error
        .downcast_ref::<Unexpected>()
        .is_some_and(|unexpected| late.iter().any(|code| code.as_str() == unexpected.answer.code()))
}

async fn reschedule(
    driver: &Driver,
    pair: Pair,
    late: bool,
    driven: &mut Driven,
) -> anyhow::Result<()> {
    let (from, to) = if late { (30, 90) } else { (3 * 24 * 60, 60) };
    let session = booked_and_confirmed(driver, pair, in_minutes(from), driven).await?;
    let body = json!({"starts_at": in_minutes(to), "accept_cancellation_policy": true});
    let answer = driver.change(&session, "reschedule", Role::Client, body).await?;
    if answer.status != StatusCode::OK {
        return Err(Unexpected { what: format!("reschedule {}", session.id), answer }.into());
    }
    if late {
        driven.late_reschedules += 1;
    }
    driver.changed(&session, "confirm", Role::Provider).await?;
    driver.take_place(&session).await
}

/// Buys a credit for the pair's client; answers the purchase's ledger key.
async fn purchase(driver: &Driver, pair: Pair, driven: &mut Driven) -> anyhow::Result<String> {
    driven.purchases.asked += 1;
    let path = format!("/v1/clients/{}/credits/purchase", pair.client);
    let token = Some(driver.token(Role::Client, pair.client));
    let bought = driver.expect(StatusCode::CREATED, Method::POST, &path, token, None).await?;
    driven.purchases.confirmed += 1;
    Ok(bought["ledger_key"].as_str().unwrap_or_default().to_string())
}

/// Finance refunds `amount_minor` of the ledger transaction `ledger_key` (what is left, when
/// none).
async fn refund(
    driver: &Driver,
    ledger_key: &str,
    amount_minor: Option<i64>,
    driven: &mut Driven,
) -> anyhow::Result<()> {
    driven.refunds.asked += 1;
    let mut body = json!({"ledger_key": ledger_key});
    if let Some(amount) = amount_minor {
        body["amount_minor"] = json!(amount);
    }
    let token = Some(driver.token(Role::Finance, "chaos-finance"));
    driver.expect(StatusCode::CREATED, Method::POST, "/v1/refunds", token, Some(body)).await?;
    driven.refunds.confirmed += 1;
    Ok(())
}
