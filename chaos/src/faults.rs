//! The faults of a chaos run, on a seeded schedule: every few seconds the worker or the API is
//! killed with SIGKILL and started again after a short pause (the first two kills hit one of
//! each); once, when the share of finished lifecycles the seed picked is reached, the dev server
//! is killed and started again on the same port and store, and once PostgreSQL is stopped
//! immediately and started again. A process that exits on its own is started again too, and
//! reported: nothing but this schedule should stop one.

use crate::postgres::PrivatePostgres;
use livesessions_system::{Process, System};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// What the faults did.
#[derive(Debug, Clone, Default)]
pub struct Inflicted {
    /// SIGKILLs of the worker (each started again).
    pub worker_kills: u32,
    /// SIGKILLs of the API (each started again).
    pub api_kills: u32,
    /// SIGKILLs of the dev server (each started again on the same port and store).
    pub server_restarts: u32,
    /// Immediate stops of PostgreSQL (each started again).
    pub postgres_restarts: u32,
    /// Processes that exited on their own, and how (each started again).
    pub unplanned_exits: Vec<String>,
}

impl Inflicted {
    /// Whether every kind of fault has happened at least once.
    fn every_kind(&self) -> bool {
        self.worker_kills > 0
            && self.api_kills > 0
            && self.server_restarts > 0
            && self.postgres_restarts > 0
    }
}

/// Mixed into the seed, so the faults draw from a stream of their own and the mix of
/// lifecycles does not move them.
const FAULT_STREAM: u64 = 0xFA17_5EED;

/// The seeded plan of the faults.
pub struct Schedule {
    rng: StdRng,
    server_after: usize,
    postgres_after: usize,
    first_kills: Vec<Process>,
}

impl Schedule {
    /// The plan for a run of `lifecycles` lifecycles under `seed`.
    pub fn new(seed: u64, lifecycles: usize) -> Self {
        let mut rng = StdRng::seed_from_u64(seed ^ FAULT_STREAM);
        let server_after = rng.random_range(lifecycles / 5..=lifecycles / 2);
        let postgres_after = rng.random_range(lifecycles / 2..=lifecycles * 4 / 5);
        let mut first_kills = vec![Process::Worker, Process::Api];
        if rng.random_bool(0.5) {
            first_kills.reverse();
        }
        Self { rng, server_after, postgres_after, first_kills }
    }

    /// How long until the next fault: 1.5 to 6 s.
    fn pause(&mut self) -> Duration {
        Duration::from_millis(self.rng.random_range(1_500..6_000))
    }

    /// How long a killed process stays down: up to 1.5 s.
    fn downtime(&mut self) -> Duration {
        Duration::from_millis(self.rng.random_range(0..1_500))
    }

    /// Which process the next kill hits.
    fn next_kill(&mut self) -> Process {
        match self.first_kills.pop() {
            Some(process) => process,
            None if self.rng.random_bool(0.5) => Process::Worker,
            None => Process::Api,
        }
    }
}

/// Where the run is, as the faults see it.
#[derive(Debug, Default)]
pub struct Progress {
    /// Lifecycles driven to their end.
    pub finished: AtomicUsize,
    /// Every lifecycle has been driven.
    pub driving_done: AtomicBool,
}

/// Inflicts the faults of `schedule` until every lifecycle has been driven and every kind of
/// fault has happened; answers what it did.
pub async fn inflict(
    system: &mut System,
    postgres: &mut PrivatePostgres,
    mut schedule: Schedule,
    progress: &Progress,
) -> anyhow::Result<Inflicted> {
    let mut inflicted = Inflicted::default();
    loop {
        let next_fault = Instant::now() + schedule.pause();
        while Instant::now() < next_fault {
            restart_exited(system, postgres, &mut inflicted).await?;
            if progress.driving_done.load(Ordering::SeqCst) && inflicted.every_kind() {
                return Ok(inflicted);
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        let finished = progress.finished.load(Ordering::SeqCst);
        if inflicted.server_restarts == 0 && finished >= schedule.server_after {
            system.crash(Process::Server);
            tokio::time::sleep(schedule.downtime()).await;
            system.restart(Process::Server).await?;
            inflicted.server_restarts += 1;
        } else if inflicted.postgres_restarts == 0 && finished >= schedule.postgres_after {
            postgres.restart().await?;
            inflicted.postgres_restarts += 1;
        } else {
            let process = schedule.next_kill();
            system.crash(process);
            tokio::time::sleep(schedule.downtime()).await;
            system.restart(process).await?;
            match process {
                Process::Worker => inflicted.worker_kills += 1,
                _ => inflicted.api_kills += 1,
            }
        }
    }
}

/// Starts again any process that exited on its own, and records it.
async fn restart_exited(
    system: &mut System,
    postgres: &mut PrivatePostgres,
    inflicted: &mut Inflicted,
) -> anyhow::Result<()> {
    for process in Process::ALL {
        if let Some(status) = system.exited(process) {
            inflicted.unplanned_exits.push(format!("the {} exited ({status})", process.name()));
            system.restart(process).await?;
        }
    }
    if let Some(status) = postgres.exited() {
        inflicted.unplanned_exits.push(format!("PostgreSQL exited ({status})"));
        postgres.start_again().await?;
    }
    Ok(())
}
