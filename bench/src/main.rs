//! `livesessions-bench`: the performance harness behind `./dev bench lifecycles|booking|idle`.
//! It starts the Temporal dev server (file store), `livesessions worker` and `livesessions api`
//! as separate processes on a fresh PostgreSQL database, drives them over HTTP on loopback,
//! bounded in count and time, reads each process's CPU time and memory from `/proc` before and
//! after, and prints one table. It asserts nothing about speed.

mod history;
mod noop;
mod usage;

use anyhow::Context;
use clap::{Parser, Subcommand};
use futures::{StreamExt, TryStreamExt};
use history::{EventCount, FirstTask};
use livesessions_domain::{Role, SessionId};
use livesessions_system::driver::{self, Booked, Driver, Pair};
use livesessions_system::{Process, System, SystemOptions};
use std::path::PathBuf;
use std::time::{Duration, Instant};
use usage::Usage;

/// The performance harness: one mode, one table.
#[derive(Debug, Parser)]
struct Cli {
    /// The `livesessions` binary; by default the one beside this program.
    #[arg(long)]
    livesessions: Option<PathBuf>,
    /// The temporal CLI.
    #[arg(long, env = "LIVESESSIONS_TEMPORAL_CLI", default_value = ".tools/temporal/bin/temporal")]
    temporal_cli: PathBuf,
    /// A PostgreSQL server URL whose user may create databases (one is made and dropped).
    #[arg(
        long,
        env = "LIVESESSIONS_BENCH_DATABASE_URL",
        default_value = "postgres://postgres:postgres@127.0.0.1:5432/postgres"
    )]
    database_url: String,
    #[command(subcommand)]
    mode: Mode,
}

#[derive(Debug, Subcommand)]
enum Mode {
    /// Main paths (book, confirm, both join, the room ends) at a concurrency, and the history
    /// of one session per path kind.
    Lifecycles {
        /// How many main paths.
        #[arg(long, default_value_t = 40)]
        count: usize,
        /// How many at a time.
        #[arg(long, default_value_t = 4)]
        concurrency: usize,
    },
    /// Open-loop bookings at fixed rates, and the dev server's bare start rate as the ceiling.
    Booking {
        /// Bookings per second, one run each.
        #[arg(long, value_delimiter = ',', default_values_t = [5.0, 10.0, 20.0])]
        rates: Vec<f64>,
        /// How long each rate (and the ceiling) runs.
        #[arg(long, default_value_t = 15)]
        seconds: u64,
    },
    /// Confirmed sessions days ahead, then memory and booking latency while they wait.
    Idle {
        /// How many sessions wait.
        #[arg(long, default_value_t = 10_000)]
        sessions: usize,
        /// The probe's bookings per second, before and after they are made.
        #[arg(long, default_value_t = 5.0)]
        rate: f64,
        /// How long each probe runs.
        #[arg(long, default_value_t = 10)]
        seconds: u64,
    },
}

/// The policy of a bench run: no booking notice, join links that work two hours ahead (a main
/// path starts an hour after it is booked), and no-shows settle within seconds.
const POLICY: [(&str, &str); 4] = [
    ("LIVESESSIONS__POLICY__BOOKING_NOTICE", "0s"),
    ("LIVESESSIONS__POLICY__JOIN_OPENS_BEFORE", "2h"),
    ("LIVESESSIONS__POLICY__JOIN_GRACE", "2s"),
    ("LIVESESSIONS__POLICY__RESCHEDULE_OFFER_WINDOW", "1s"),
];

/// Requests in flight while registering people and filling the system.
const SETUP_CONCURRENCY: usize = 8;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    // The HTTP client uses the workspace's TLS setup, which wants its crypto provider chosen.
    livesessions_activities::install_crypto_provider();
    let livesessions = match cli.livesessions {
        Some(path) => path,
        None => std::env::current_exe()?.with_file_name("livesessions"),
    };
    let options = SystemOptions {
        livesessions,
        temporal_cli: cli.temporal_cli,
        admin_database_url: cli.database_url,
        settings: POLICY.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
    };
    let mut table = Table::default();
    table.row("load average at start (1 min)", load_average()?);
    table.row("cores", std::thread::available_parallelism()?.to_string());
    let system = System::start(&options).await?;
    let driver = Driver::new(&system.api_address, system.keys.clone())?;
    let outcome = match cli.mode {
        Mode::Lifecycles { count, concurrency } => {
            lifecycles(&system, &driver, count, concurrency, &mut table).await
        }
        Mode::Booking { rates, seconds } => {
            booking(&system, &driver, &rates, Duration::from_secs(seconds), &mut table).await
        }
        Mode::Idle { sessions, rate, seconds } => {
            idle(&system, &driver, sessions, rate, Duration::from_secs(seconds), &mut table).await
        }
    };
    system.stop().await?;
    outcome?;
    table.print();
    Ok(())
}

async fn lifecycles(
    system: &System,
    driver: &Driver,
    count: usize,
    concurrency: usize,
    table: &mut Table,
) -> anyhow::Result<()> {
    let pairs = driver.pairs(count + 3, SETUP_CONCURRENCY).await?;
    let (main_pairs, others) = pairs.split_at(count);
    let before = Usage::of_system(system)?;
    let started = Instant::now();
    let mains: Vec<Booked> = futures::stream::iter(main_pairs.iter().copied())
        .map(|pair| async move {
            let session = driver.main_path(pair).await?;
            history::wait_closed(&system.temporal, session.id, "completed").await?;
            anyhow::Ok(session)
        })
        .buffer_unordered(concurrency)
        .try_collect()
        .await?;
    let elapsed = started.elapsed();
    let after = Usage::of_system(system)?;
    table.row(
        "main paths",
        format!("{count} at concurrency {concurrency} in {:.1} s", secs(elapsed)),
    );
    table.row("lifecycles/s", format!("{:.2}", count as f64 / secs(elapsed)));
    for process in Process::ALL {
        let per_lifecycle = after.cpu_since(&before, process) / count as u32;
        table.row(&format!("{} CPU per lifecycle", process.name()), millis(per_lifecycle));
    }
    rss_rows(table, "after the run", &after);

    // A path kind: the first main path, or a fresh pair's late cancel (no one present) or
    // no-show (who is present).
    let main = mains[0];
    let kinds = [
        ("main path", "completed", None),
        ("late cancel", "late_cancelled", Some((others[0], None))),
        ("client no-show", "client_no_show", Some((others[1], Some(Role::Provider)))),
        ("provider no-show", "provider_no_show", Some((others[2], Some(Role::Client)))),
    ];
    let counted = kinds.into_iter().map(|(kind, state, path)| async move {
        let session = match path {
            None => main,
            Some((pair, None)) => driver.late_cancel(pair).await?,
            Some((pair, Some(present))) => driver.no_show(pair, present).await?,
        };
        history::wait_closed(&system.temporal, session.id, state).await?;
        let events = EventCount::of(&system.temporal, session.id).await?;
        anyhow::Ok((kind, events))
    });
    for (kind, events) in futures::future::try_join_all(counted).await? {
        table.row(&format!("history events, {kind}"), events.describe());
    }
    Ok(())
}

async fn booking(
    system: &System,
    driver: &Driver,
    rates: &[f64],
    span: Duration,
    table: &mut Table,
) -> anyhow::Result<()> {
    let ceiling = noop::start_rate(&system.temporal, span, 16).await?;
    table.row("bare start rate (Noop workflow, 16 in flight)", format!("{ceiling:.1} /s"));
    for &rate in rates {
        let before = Usage::of_system(system)?;
        let probe = open_loop(driver, rate, span).await?;
        let after = Usage::of_system(system)?;
        table.row(&format!("POST /v1/sessions at {rate}/s"), probe.describe());
        let booked = probe.booked.len().max(1) as u32;
        let cpu: Vec<String> = Process::ALL
            .iter()
            .map(|&p| format!("{} {}", p.name(), millis(after.cpu_since(&before, p) / booked)))
            .collect();
        table.row(&format!("CPU per booking at {rate}/s"), cpu.join(", "));
        table.row(
            &format!("first workflow task at {rate}/s (median)"),
            first_tasks(system, &probe.booked).await?,
        );
    }
    Ok(())
}

/// How many bookings of a run have their first workflow task read back.
const SAMPLED_BOOKINGS: usize = 25;

/// The median time from a booking's start to its first workflow task, and of the task itself,
/// over (at most) [`SAMPLED_BOOKINGS`] of `booked`, spread over the run.
async fn first_tasks(system: &System, booked: &[SessionId]) -> anyhow::Result<String> {
    let step = booked.len().div_ceil(SAMPLED_BOOKINGS).max(1);
    let sampled = booked.iter().step_by(step).map(|id| FirstTask::of(&system.temporal, *id));
    let tasks = futures::future::try_join_all(sampled).await?;
    let median = |mut values: Vec<Duration>| {
        values.sort();
        values.get(values.len() / 2).copied().unwrap_or_default()
    };
    let dispatch = median(tasks.iter().map(|t| t.dispatch).collect());
    let worker = median(tasks.iter().map(|t| t.worker).collect());
    Ok(format!(
        "start to task {} (server), task {} (worker: hold and record); {} sampled",
        millis(dispatch),
        millis(worker),
        tasks.len()
    ))
}

async fn idle(
    system: &System,
    driver: &Driver,
    sessions: usize,
    rate: f64,
    span: Duration,
    table: &mut Table,
) -> anyhow::Result<()> {
    let empty = open_loop(driver, rate, span).await?;
    let empty_usage = Usage::of_system(system)?;
    // Four credits a client: each pair books four sessions, a day apart, from three days ahead.
    let pairs = driver.pairs(sessions.div_ceil(4), SETUP_CONCURRENCY).await?;
    let base = driver::in_minutes(3 * 24 * 60);
    let bookings = (0..sessions).map(|n| (pairs[n / 4], n % 4));
    let started = Instant::now();
    futures::stream::iter(bookings)
        .map(|(pair, day)| driver.book_confirmed(pair, base + chrono::TimeDelta::days(day as i64)))
        .buffer_unordered(SETUP_CONCURRENCY)
        .try_for_each(|_| async { Ok(()) })
        .await?;
    let filled = started.elapsed();
    // Let the confirmations' deliveries and workflow tasks settle before measuring.
    tokio::time::sleep(Duration::from_secs(5)).await;
    let loaded_usage = Usage::of_system(system)?;
    let loaded = open_loop(driver, rate, span).await?;
    table.row(
        "confirmed sessions waiting",
        format!(
            "{sessions}, made in {:.0} s ({:.1} /s)",
            secs(filled),
            sessions as f64 / secs(filled)
        ),
    );
    rss_rows(table, "empty", &empty_usage);
    rss_rows(table, &format!("with {sessions} waiting"), &loaded_usage);
    table.row(&format!("POST /v1/sessions at {rate}/s, empty"), empty.describe());
    table.row(&format!("POST /v1/sessions at {rate}/s, {sessions} waiting"), loaded.describe());
    table.row("booking p99, waiting / empty", format!("{:.2}×", loaded.p(0.99) / empty.p(0.99)));
    Ok(())
}

/// Answers of one open-loop run.
struct Latencies {
    /// Latencies of the bookings that were created, sorted.
    created: Vec<Duration>,
    /// The sessions created, in the order they were sent.
    booked: Vec<SessionId>,
    /// Bookings that failed or were refused.
    failed: usize,
    /// From the first request to the last answer.
    elapsed: Duration,
}

impl Latencies {
    /// The `q` quantile in milliseconds (nearest rank).
    fn p(&self, q: f64) -> f64 {
        let rank = ((q * self.created.len() as f64).ceil() as usize).clamp(1, self.created.len());
        self.created.get(rank - 1).map_or(f64::NAN, |d| secs(*d) * 1000.0)
    }

    fn describe(&self) -> String {
        format!(
            "p50 {:.0} ms, p95 {:.0} ms, p99 {:.0} ms; {} created ({:.1} /s), {} failed",
            self.p(0.5),
            self.p(0.95),
            self.p(0.99),
            self.created.len(),
            self.created.len() as f64 / secs(self.elapsed),
            self.failed
        )
    }
}

/// Books at `rate` per second for `span`, each request sent on its schedule whether or not the
/// earlier ones were answered (people registered beforehand, outside the timing).
async fn open_loop(driver: &Driver, rate: f64, span: Duration) -> anyhow::Result<Latencies> {
    let count = (rate * secs(span)).round() as usize;
    let pairs: Vec<Pair> = driver.pairs(count, SETUP_CONCURRENCY).await?;
    let starts_at = driver::in_minutes(2 * 24 * 60);
    let started = tokio::time::Instant::now();
    let requests = pairs.into_iter().enumerate().map(|(n, pair)| {
        let driver = driver.clone();
        tokio::spawn(async move {
            tokio::time::sleep_until(started + Duration::from_secs_f64(n as f64 / rate)).await;
            let sent = Instant::now();
            driver.book(pair, starts_at).await.map(|booked| (booked.id, sent.elapsed()))
        })
    });
    let answers = futures::future::join_all(requests.collect::<Vec<_>>()).await;
    let elapsed = started.elapsed();
    let mut created = Vec::new();
    let mut booked = Vec::new();
    let mut failed = 0;
    for answer in answers {
        match answer.context("a booking task")? {
            Ok((id, latency)) => {
                booked.push(id);
                created.push(latency);
            }
            Err(_) => failed += 1,
        }
    }
    created.sort();
    Ok(Latencies { created, booked, failed, elapsed })
}

fn rss_rows(table: &mut Table, when: &str, usage: &Usage) {
    for process in [Process::Worker, Process::Server] {
        let mib = usage.of(process).rss as f64 / (1024.0 * 1024.0);
        table.row(&format!("{} RSS, {when}", process.name()), format!("{mib:.0} MiB"));
    }
}

fn secs(duration: Duration) -> f64 {
    duration.as_secs_f64()
}

fn millis(duration: Duration) -> String {
    format!("{:.0} ms", secs(duration) * 1000.0)
}

fn load_average() -> anyhow::Result<String> {
    let text = std::fs::read_to_string("/proc/loadavg")?;
    Ok(text.split_whitespace().next().unwrap_or("?").to_string())
}

/// The one table a run prints: a figure and its value per row, as Markdown.
#[derive(Default)]
struct Table {
    rows: Vec<(String, String)>,
}

impl Table {
    fn row(&mut self, figure: &str, value: String) {
        self.rows.push((figure.to_string(), value));
    }

    fn print(&self) {
        println!("| figure | value |\n| --- | --- |");
        for (figure, value) in &self.rows {
            println!("| {figure} | {value} |");
        }
    }
}
