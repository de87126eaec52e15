//! Slot search benchmark on PostgreSQL (`./dev bench`): 1,000 providers in several zones with
//! weekday hours, exceptions, 20 sessions holding a slot in the next fortnight and 20 finished
//! ones each; then `slots::search` for one provider over 62 days and for all 1,000 over 14 days,
//! timed end to end (both database round trips included). Prints p50 / p95 / max; asserts
//! nothing about speed.
//!
//! `LIVESESSIONS_BENCH_DATABASE_URL` names a PostgreSQL database to create the bench's own
//! database from (default `postgres://postgres@127.0.0.1:5432/postgres`); it is dropped after.

use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use livesessions_activities::slots;
use livesessions_activities::storage::Db;
use livesessions_domain::ProviderId;
use livesessions_domain::availability::SlotQuery;
use std::time::{Duration, Instant};
use uuid::Uuid;

const PROVIDERS: i64 = 1_000;
const HOLDING_PER_PROVIDER: i64 = 20;
const FINISHED_PER_PROVIDER: i64 = 20;

/// Weekday hours with a lunch break, two days off and one extra Saturday morning.
fn availability(base: DateTime<Utc>) -> serde_json::Value {
    let day = |n: i64| (base + TimeDelta::days(n)).date_naive();
    let weekdays = ["monday", "tuesday", "wednesday", "thursday", "friday"];
    let weekly: Vec<_> = weekdays
        .iter()
        .flat_map(|d| {
            [
                serde_json::json!({"day": d, "start": "09:00", "end": "12:00"}),
                serde_json::json!({"day": d, "start": "13:00", "end": "17:30"}),
            ]
        })
        .collect();
    serde_json::json!({
        "weekly": weekly,
        "exceptions": [
            {"date": day(3), "off": true},
            {"date": day(9), "off": true},
            {"date": day(12), "hours": [{"start": "08:00", "end": "12:00"}]},
        ],
    })
}

/// Seeds the providers, their availability, clients and sessions in a few statements.
async fn seed(pool: &sqlx::PgPool, base: DateTime<Utc>) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO providers (id, specialty, time_zone, email, display_name, created_at, updated_at)
         SELECT gen_random_uuid(), 'therapist',
                (ARRAY['America/New_York', 'America/Chicago', 'America/Los_Angeles', 'Europe/London',
                       'Europe/Berlin', 'Asia/Kolkata', 'Australia/Sydney'])[1 + n % 7],
                'p' || n || '@example.com', 'Provider ' || n, now(), now()
         FROM generate_series(0, $1 - 1) AS n",
    )
    .bind(PROVIDERS)
    .execute(pool)
    .await?;
    sqlx::query(
        "INSERT INTO provider_availability (provider_id, availability, updated_at)
         SELECT id, $1, now() FROM providers",
    )
    .bind(sqlx::types::Json(availability(base)))
    .execute(pool)
    .await?;
    let per_provider = HOLDING_PER_PROVIDER + FINISHED_PER_PROVIDER;
    sqlx::query(
        "INSERT INTO clients (id, coverage, plan, time_zone, email, display_name, created_at, updated_at)
         SELECT gen_random_uuid(), 'subscription', 'subscription-standard', 'UTC',
                'c' || n || '@example.com', 'Client ' || n, now(), now()
         FROM generate_series(1, $1) AS n",
    )
    .bind(PROVIDERS * per_provider)
    .execute(pool)
    .await?;
    // Session i of a provider: the first 20 hold a slot in the next 14 days (distinct day and
    // hour), the rest finished in the past two months. One client per session.
    sqlx::query(
        "WITH p AS (SELECT id, row_number() OVER (ORDER BY id) - 1 AS n FROM providers),
              c AS (SELECT id, row_number() OVER (ORDER BY id) - 1 AS n FROM clients),
              s AS (SELECT p.id AS provider_id, p.n, i FROM p CROSS JOIN generate_series(0, $2 - 1) AS i),
              t AS (SELECT s.*, c.id AS client_id,
                           CASE WHEN i < $3
                                THEN $1 + (i * 14 / $3) * interval '1 day' + (9 + (i * 3) % 8) * interval '1 hour'
                                ELSE $1 - (i - $3 + 1) * interval '3 days' + interval '10 hours' END AS starts_at
                    FROM s JOIN c ON c.n = s.n * $2 + s.i)
         INSERT INTO sessions (id, workflow_id, client_id, provider_id, state, starts_at, ends_at, version, snapshot, updated_at)
         SELECT gen_random_uuid(), 'bench-' || gen_random_uuid(), client_id, provider_id,
                CASE WHEN i >= $3 THEN 'completed' WHEN i % 3 = 0 THEN 'requested' ELSE 'confirmed' END,
                starts_at, starts_at + interval '50 minutes', 1, '{}', now()
         FROM t",
    )
    .bind(base)
    .bind(per_provider)
    .bind(HOLDING_PER_PROVIDER)
    .execute(pool)
    .await?;
    sqlx::query("ANALYZE").execute(pool).await?;
    Ok(())
}

/// The `q`-quantile of sorted durations.
fn quantile(sorted: &[Duration], q: f64) -> Duration {
    let index = ((sorted.len() as f64 - 1.0) * q).round() as usize;
    sorted[index]
}

/// Runs `search` `runs` times after a few warm-ups; prints the figures.
async fn measure<F, Fut>(name: &str, runs: usize, mut search: F)
where
    F: FnMut(usize) -> Fut,
    Fut: std::future::Future<Output = usize>,
{
    for i in 0..5 {
        search(i).await;
    }
    let mut times = Vec::with_capacity(runs);
    let mut found = 0;
    for i in 0..runs {
        let started = Instant::now();
        found = search(i).await;
        times.push(started.elapsed());
    }
    times.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!(
        "{name}: {runs} searches, {found} slots in the last; p50 {:.2} ms, p95 {:.2} ms, max {:.2} ms",
        ms(quantile(&times, 0.5)),
        ms(quantile(&times, 0.95)),
        ms(times[times.len() - 1]),
    );
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let admin_url = std::env::var("LIVESESSIONS_BENCH_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
    let name = format!("ls_bench_{}", Uuid::new_v4().simple());
    let admin = Db::connect(&admin_url).await?;
    let Db::Postgres(admin_pool) = &admin else { anyhow::bail!("the bench needs PostgreSQL") };
    sqlx::query(&format!("CREATE DATABASE {name}")).execute(admin_pool).await?;
    let (server, _) = admin_url.rsplit_once('/').expect("the URL names a database");
    let result = run(&format!("{server}/{name}")).await;
    sqlx::query(&format!("DROP DATABASE {name} WITH (FORCE)")).execute(admin_pool).await?;
    result
}

async fn run(url: &str) -> anyhow::Result<()> {
    let db = Db::connect(url).await?;
    db.migrate().await?;
    let Db::Postgres(pool) = &db else { unreachable!("a postgres:// URL") };
    let midnight = Utc::now().date_naive().and_hms_opt(0, 0, 0).expect("midnight");
    let base = Utc.from_utc_datetime(&midnight) + TimeDelta::days(1);
    let seeding = Instant::now();
    seed(pool, base).await?;
    let providers: Vec<(Uuid,)> =
        sqlx::query_as("SELECT id FROM providers").fetch_all(pool).await?;
    let sessions: (i64,) = sqlx::query_as("SELECT COUNT(*) FROM sessions").fetch_one(pool).await?;
    println!(
        "seeded {} providers, {} sessions in {:.1} s (PostgreSQL; 2 queries per search)",
        providers.len(),
        sessions.0,
        seeding.elapsed().as_secs_f64()
    );
    let query = |days: i64| SlotQuery {
        from: base,
        to: base + TimeDelta::days(days),
        duration: TimeDelta::minutes(50),
        step: TimeDelta::minutes(15),
        earliest: Utc::now() + TimeDelta::hours(2),
    };

    let one = query(62);
    measure("one provider, 62 days", 500, |i| {
        let provider = ProviderId::from_uuid(providers[i % providers.len()].0);
        let db = db.clone();
        async move {
            let found = slots::search(&db, Some(provider), &one).await.expect("a search");
            found.iter().map(|p| p.starts.len()).sum()
        }
    })
    .await;
    let all = query(14);
    measure("1000 providers, 14 days", 50, |_| {
        let db = db.clone();
        async move {
            let found = slots::search(&db, None, &all).await.expect("a search");
            found.iter().map(|p| p.starts.len()).sum()
        }
    })
    .await;
    db.close().await;
    Ok(())
}
