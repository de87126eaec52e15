//! `./dev chaos`: a chaos run anyone can repeat. It starts the system as separate processes (the
//! Temporal dev server with a file store, the worker, the API) on a PostgreSQL server of its own,
//! drives `N` mixed lifecycles through a careful driver while SIGKILLing the worker and the API
//! at random moments and restarting the dev server and PostgreSQL once each (all on a schedule
//! drawn from the seed), waits for every session to settle, then checks the invariants and
//! prints them with the seed. The seed fixes the mix of lifecycles and the schedule of faults;
//! where in a request a kill lands is up to the machine.

pub mod expectations;
pub mod faults;
pub mod invariants;
pub mod lifecycles;
pub mod postgres;

use faults::{Inflicted, Progress, Schedule};
use futures::StreamExt;
use invariants::{Findings, Records};
use lifecycles::{Driven, Kind};
use livesessions_activities::Db;
use livesessions_domain::SessionId;
use livesessions_system::processes::remove_dir;
use livesessions_system::{Driver, System, SystemOptions};
use postgres::PrivatePostgres;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

/// What to run.
#[derive(Debug, Clone)]
pub struct ChaosOptions {
    /// How many lifecycles (each books one session).
    pub sessions: usize,
    /// The seed of the mix and of the faults.
    pub seed: u64,
    /// Lifecycles driven at once.
    pub concurrency: usize,
    /// The `livesessions` program.
    pub livesessions: PathBuf,
    /// The `temporal` CLI.
    pub temporal_cli: PathBuf,
}

/// The run's settings for the worker and the API: no booking notice, join links that work two
/// hours ahead, a grace of 3 s, an offer to reschedule of 1 s and a reauthorization window of
/// 10 s, so every session ends within seconds of its last call; owed fees tried again after 2
/// and 4 s; and a request timeout of 5 s, so a stuck call answers `202` soon.
const SETTINGS: [(&str, &str); 7] = [
    ("LIVESESSIONS__POLICY__BOOKING_NOTICE", "0s"),
    ("LIVESESSIONS__POLICY__JOIN_OPENS_BEFORE", "2h"),
    ("LIVESESSIONS__POLICY__JOIN_GRACE", "3s"),
    ("LIVESESSIONS__POLICY__RESCHEDULE_OFFER_WINDOW", "1s"),
    ("LIVESESSIONS__POLICY__REAUTHORIZATION_WINDOW", "10s"),
    ("LIVESESSIONS__POLICY__COLLECTION_SCHEDULE", "2s,4s"),
    ("LIVESESSIONS__TEMPORAL__REQUEST_TIMEOUT", "5s"),
];

/// How long the driver keeps sending one request before it reports it unanswered.
const PATIENCE: Duration = Duration::from_secs(180);

/// How long, after the last lifecycle, the sessions have to settle.
const SETTLE: Duration = Duration::from_secs(120);

/// What a run did and found.
#[derive(Debug)]
pub struct Summary {
    /// The seed.
    pub seed: u64,
    /// Lifecycles driven, per kind.
    pub kinds: BTreeMap<Kind, usize>,
    /// Sessions booked (answered `201`).
    pub booked: usize,
    /// How the sessions ended (state → count).
    pub endings: BTreeMap<String, usize>,
    /// The faults.
    pub inflicted: Inflicted,
    /// Why the driver sent requests again, and how often.
    pub retries: BTreeMap<String, usize>,
    /// Fees left owed during the run (then collected).
    pub fees_left_owed: i64,
    /// Answers the lifecycles did not want.
    pub problems: Vec<String>,
    /// The invariants' breaches.
    pub findings: Findings,
    /// How long the lifecycles took to drive, the sessions to settle after, and the checks.
    pub driving: Duration,
    /// See `driving`.
    pub settling: Duration,
    /// See `driving`.
    pub checking: Duration,
    /// Where the logs were kept (a run with a breach keeps them).
    pub logs: Vec<PathBuf>,
}

impl Summary {
    /// Breaches in all: the invariants', answers the lifecycles did not want, and processes
    /// that exited on their own.
    pub fn breaches(&self) -> usize {
        self.findings.breaches() + self.problems.len() + self.inflicted.unplanned_exits.len()
    }

    /// Every kill of each kind and the two restarts.
    pub fn fault_rows(&self) -> [(&'static str, u32); 4] {
        let i = &self.inflicted;
        [
            ("worker kills (SIGKILL)", i.worker_kills),
            ("API kills (SIGKILL)", i.api_kills),
            ("dev server restarts (SIGKILL)", i.server_restarts),
            ("PostgreSQL restarts (immediate stop)", i.postgres_restarts),
        ]
    }

    /// The summary as a Markdown table, then the breaches one per line.
    pub fn render(&self) -> String {
        let mut rows: Vec<(String, String)> = Vec::new();
        let mut row = |figure: &str, value: String| rows.push((figure.to_string(), value));
        row("seed", self.seed.to_string());
        let driven: usize = self.kinds.values().sum();
        row("lifecycles driven", format!("{driven}: {}", counts(&self.kinds, |k| k.name())));
        row("sessions booked", self.booked.to_string());
        row("endings", counts(&self.endings, String::as_str));
        for (figure, n) in self.fault_rows() {
            row(figure, n.to_string());
        }
        row("requests sent again", counts(&self.retries, String::as_str));
        row("fees left owed, then collected", self.fees_left_owed.to_string());
        row(
            "time",
            format!(
                "driving {:.0} s, settling {:.0} s, checking {:.0} s",
                self.driving.as_secs_f64(),
                self.settling.as_secs_f64(),
                self.checking.as_secs_f64()
            ),
        );
        for (invariant, breaches) in self.findings.rows() {
            row(invariant, breaches.len().to_string());
        }
        row("unexpected answers", self.problems.len().to_string());
        row("processes that exited on their own", self.inflicted.unplanned_exits.len().to_string());
        let mut text = String::from("| figure | value |\n| --- | --- |\n");
        for (figure, value) in rows {
            text.push_str(&format!("| {figure} | {value} |\n"));
        }
        let details = self.findings.rows().into_iter().chain([
            ("unexpected answers", self.problems.as_slice()),
            ("processes that exited on their own", self.inflicted.unplanned_exits.as_slice()),
        ]);
        for (invariant, breaches) in details {
            for breach in breaches {
                text.push_str(&format!("{invariant}: {breach}\n"));
            }
        }
        for dir in &self.logs {
            text.push_str(&format!("logs kept in {}\n", dir.display()));
        }
        text.push_str(&format!(
            "seed {}: {} breaches{}\n",
            self.seed,
            self.breaches(),
            if self.breaches() == 0 { "" } else { " (the same seed runs the same plan again)" }
        ));
        text
    }
}

/// `name n, name n, …`.
fn counts<K>(counts: &BTreeMap<K, usize>, name: impl Fn(&K) -> &str) -> String {
    let parts: Vec<String> = counts.iter().map(|(k, n)| format!("{} {n}", name(k))).collect();
    if parts.is_empty() { "none".into() } else { parts.join(", ") }
}

/// Runs the chaos of `options` and answers what it found; prints the seed first.
pub async fn run(options: &ChaosOptions) -> anyhow::Result<Summary> {
    let ChaosOptions { sessions: n, seed, .. } = *options;
    println!("chaos: seed {seed}, {n} lifecycles, {} at a time", options.concurrency);
    // The HTTP client uses the workspace's TLS setup, which wants its crypto provider chosen.
    livesessions_activities::install_crypto_provider();
    let dir = std::env::temp_dir().join(format!("ls-chaos-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir)?;
    let postgres = PrivatePostgres::start(&dir).await?;
    let system = System::start(&SystemOptions {
        livesessions: options.livesessions.clone(),
        temporal_cli: options.temporal_cli.clone(),
        admin_database_url: postgres.url(),
        settings: SETTINGS.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
    })
    .await?;
    let since = chrono::Utc::now();
    let driver = Driver::careful(&system.api_address, system.keys.clone(), PATIENCE)?;
    let sandbox = Db::connect(&system.database_url).await?;
    let progress = Arc::new(Progress::default());
    let faults = tokio::spawn({
        let (mut system, mut postgres) = (system, postgres);
        let (schedule, progress) = (Schedule::new(seed, n), progress.clone());
        async move {
            let inflicted = faults::inflict(&mut system, &mut postgres, schedule, &progress).await;
            (system, postgres, inflicted)
        }
    });
    println!("chaos: the system is up; driving");
    let started = Instant::now();
    let driven: Vec<Driven> = futures::stream::iter(Kind::mix(seed, n).into_iter().enumerate())
        .map(|(i, kind)| {
            let (driver, sandbox, progress) = (&driver, &sandbox, &progress);
            async move {
                let lifecycle_seed = seed ^ (i as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15);
                let driven = lifecycles::drive(driver, sandbox, kind, lifecycle_seed).await;
                progress.finished.fetch_add(1, Ordering::SeqCst);
                driven
            }
        })
        .buffer_unordered(options.concurrency)
        .collect()
        .await;
    progress.driving_done.store(true, Ordering::SeqCst);
    let driving = started.elapsed();
    sandbox.close().await;
    let (system, postgres, inflicted) = faults.await?;
    let checked = async {
        let inflicted = inflicted?;
        let db = Db::connect(&system.database_url).await?;
        let records = Records { temporal: &system.temporal, driver: &driver, db: &db, since };
        let ids: Vec<SessionId> = driven.iter().filter_map(|d| d.session).collect();
        println!("chaos: driven in {:.0} s; settling, then checking", driving.as_secs_f64());
        let settling = Instant::now();
        invariants::settle(&records, &ids, Instant::now() + SETTLE).await;
        let settling = settling.elapsed();
        let checking = Instant::now();
        let (findings, endings) = invariants::check(&records, &driven).await?;
        let fees_left_owed = invariants::fees_left_owed(&db).await?;
        db.close().await;
        let mut kinds = BTreeMap::new();
        for d in &driven {
            *kinds.entry(d.kind).or_default() += 1;
        }
        anyhow::Ok(Summary {
            seed,
            kinds,
            booked: ids.len(),
            endings,
            inflicted,
            retries: driver.retries(),
            fees_left_owed,
            problems: driven.iter().flat_map(|d| d.problems.clone()).collect(),
            findings,
            driving,
            settling,
            checking: checking.elapsed(),
            logs: Vec::new(),
        })
    };
    let mut summary = checked.await;
    let clean = summary.as_ref().is_ok_and(|s| s.breaches() == 0);
    if clean {
        system.stop().await?;
        postgres.stop().await?;
        remove_dir(&dir);
    } else {
        let logs = system.stop_keeping_logs().await?;
        postgres.stop().await?;
        if let Ok(summary) = &mut summary {
            summary.logs = vec![logs, dir];
        }
    }
    summary
}
