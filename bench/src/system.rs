//! The system under test as separate processes: a Temporal dev server with a file store, the
//! worker (`livesessions worker`) and the API (`livesessions api`), on a fresh PostgreSQL
//! database that is dropped afterwards; and what each process has used, read from `/proc`.

use anyhow::Context;
use livesessions_api::JwtKeys;
use livesessions_worker::dev_server::{free_port, spawn_tied_to_this_process};
use livesessions_worker::{DevServer, DevServerOptions, TemporalSettings};
use sqlx::{Connection, Executor, PgConnection};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Where the programs and the PostgreSQL server are.
#[derive(Debug, Clone)]
pub struct SystemOptions {
    /// The `livesessions` binary (release build).
    pub livesessions: PathBuf,
    /// The `temporal` CLI.
    pub temporal_cli: PathBuf,
    /// A PostgreSQL URL whose user may create and drop databases.
    pub admin_database_url: String,
}

/// The three processes the figures are read for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Process {
    /// `livesessions worker`.
    Worker,
    /// `livesessions api`.
    Api,
    /// `temporal server start-dev`.
    Server,
}

impl Process {
    /// All three, in the order the table shows them.
    pub const ALL: [Process; 3] = [Process::Worker, Process::Api, Process::Server];

    /// How the table names it.
    pub fn name(self) -> &'static str {
        match self {
            Process::Worker => "worker",
            Process::Api => "API",
            Process::Server => "server",
        }
    }
}

/// CPU time and resident memory of one process at one moment.
#[derive(Debug, Clone, Copy, Default)]
pub struct ProcessUsage {
    /// User plus system CPU time so far.
    pub cpu: Duration,
    /// Resident set size (`VmRSS`), in bytes.
    pub rss: u64,
}

impl ProcessUsage {
    /// Reads `/proc/<pid>/stat` (utime + stime) and `/proc/<pid>/status` (VmRSS).
    pub fn read(pid: u32) -> anyhow::Result<Self> {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
        // The fields after the command name, which is in parentheses and may hold spaces:
        // state is field 3, utime 14 and stime 15.
        let after_name = stat.rsplit_once(')').context("a /proc stat line")?.1;
        let fields: Vec<&str> = after_name.split_whitespace().collect();
        let ticks: u64 = fields[11].parse::<u64>()? + fields[12].parse::<u64>()?;
        // SAFETY: sysconf(3) reads a constant of the system.
        let per_second = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as u64;
        let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
        let rss_kib: u64 = status
            .lines()
            .find_map(|line| line.strip_prefix("VmRSS:"))
            .and_then(|value| value.split_whitespace().next())
            .context("VmRSS in /proc status")?
            .parse()?;
        Ok(Self {
            cpu: Duration::from_secs_f64(ticks as f64 / per_second as f64),
            rss: rss_kib * 1024,
        })
    }
}

/// Every process's usage at one moment, in [`Process::ALL`] order.
#[derive(Debug, Clone, Copy, Default)]
pub struct Usage([ProcessUsage; 3]);

impl Usage {
    /// The usage of `process`.
    pub fn of(&self, process: Process) -> ProcessUsage {
        self.0[Process::ALL.iter().position(|p| *p == process).expect("one of ALL")]
    }

    /// CPU time `process` used between `earlier` and this sample.
    pub fn cpu_since(&self, earlier: &Usage, process: Process) -> Duration {
        self.of(process).cpu.saturating_sub(earlier.of(process).cpu)
    }
}

/// A PostgreSQL database made for one run and dropped after it.
struct Database {
    admin_url: String,
    name: String,
    url: String,
}

impl Database {
    async fn create(admin_url: &str) -> anyhow::Result<Self> {
        let name = format!("ls_bench_{}", uuid::Uuid::new_v4().simple());
        let mut admin = PgConnection::connect(admin_url)
            .await
            .with_context(|| format!("PostgreSQL at {admin_url}"))?;
        admin.execute(format!("CREATE DATABASE {name}").as_str()).await?;
        admin.close().await?;
        let (base, _) = admin_url.rsplit_once('/').context("the URL names a database")?;
        Ok(Self { admin_url: admin_url.into(), url: format!("{base}/{name}"), name })
    }

    async fn drop_it(self) -> anyhow::Result<()> {
        let mut admin = PgConnection::connect(&self.admin_url).await?;
        admin
            .execute(format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name).as_str())
            .await?;
        admin.close().await?;
        Ok(())
    }
}

/// The running system.
pub struct System {
    /// The API's base address, `http://127.0.0.1:<port>`.
    pub api_address: String,
    /// Signs the bearer tokens the API accepts.
    pub keys: JwtKeys,
    /// A Temporal client of the same server.
    pub temporal: temporalio_client::Client,
    server: DevServer,
    worker: Child,
    api: Child,
    database: Database,
    dir: PathBuf,
}

/// The policy of a bench run: no booking notice, join links that work two hours ahead (a main
/// path starts an hour after it is booked), and no-shows settle within seconds.
const POLICY: [(&str, &str); 4] = [
    ("LIVESESSIONS__POLICY__BOOKING_NOTICE", "0s"),
    ("LIVESESSIONS__POLICY__JOIN_OPENS_BEFORE", "2h"),
    ("LIVESESSIONS__POLICY__JOIN_GRACE", "2s"),
    ("LIVESESSIONS__POLICY__RESCHEDULE_OFFER_WINDOW", "1s"),
];

impl System {
    /// Starts the dev server, migrates a fresh database, then starts the worker and the API and
    /// waits until the API is healthy.
    pub async fn start(options: &SystemOptions) -> anyhow::Result<Self> {
        let dir = std::env::temp_dir().join(format!("ls-bench-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir)?;
        let server = DevServer::start(&DevServerOptions {
            cli: options.temporal_cli.clone(),
            port: None,
            ui_port: None,
            db_file: Some(dir.join("temporal.db")),
            time_skipping: false,
            log_file: Some(dir.join("temporal.log")),
        })?;
        let database = Database::create(&options.admin_database_url).await?;
        let secret = uuid::Uuid::new_v4().to_string();
        let http_addr = format!("127.0.0.1:{}", free_port()?);
        let api_address = format!("http://{http_addr}");
        let env: Vec<(&str, String)> = vec![
            ("LIVESESSIONS__DATABASE__URL", database.url.clone()),
            ("LIVESESSIONS__TEMPORAL__ADDRESS", server.address()),
            ("LIVESESSIONS__AUTH__JWT_SECRET", secret.clone()),
            ("LIVESESSIONS__HTTP__ADDR", http_addr),
            ("LIVESESSIONS__HTTP__PUBLIC_URL", api_address.clone()),
            ("LIVESESSIONS__EMAIL__OUTBOX_DIR", dir.join("outbox").display().to_string()),
            ("RUST_LOG", "warn".into()),
        ];
        let run = |command: &str, log: &str| -> anyhow::Result<Command> {
            let mut process = Command::new(&options.livesessions);
            process.arg(command).envs(env.iter().map(|(k, v)| (*k, v.as_str()))).envs(POLICY);
            process.stdin(Stdio::null()).stdout(Stdio::null());
            process.stderr(Stdio::from(std::fs::File::create(dir.join(log))?));
            Ok(process)
        };
        let migrated = run("migrate", "migrate.log")?.status()?;
        anyhow::ensure!(migrated.success(), "livesessions migrate failed, see {}", dir.display());
        let worker = spawn_tied_to_this_process(run("worker", "worker.log")?)?;
        let api = spawn_tied_to_this_process(run("api", "api.log")?)?;
        let settings =
            TemporalSettings { address: server.address(), ..TemporalSettings::default() };
        let temporal = livesessions_worker::connect(&settings).await?;
        let system = Self {
            api_address,
            keys: JwtKeys::from_secret(&secret),
            temporal,
            server,
            worker,
            api,
            database,
            dir,
        };
        if let Err(unhealthy) = system.wait_until_healthy().await {
            system.stop().await?;
            return Err(unhealthy);
        }
        Ok(system)
    }

    async fn wait_until_healthy(&self) -> anyhow::Result<()> {
        let http = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let answer = http.get(format!("{}/healthz", self.api_address)).send().await;
            if answer.is_ok_and(|a| a.status().is_success()) {
                return Ok(());
            }
            anyhow::ensure!(
                Instant::now() < deadline,
                "the API is not healthy after 60 s; its log ends:\n{}",
                self.log_tail("api.log")
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// The last lines of one of the processes' logs.
    fn log_tail(&self, name: &str) -> String {
        let log = std::fs::read_to_string(self.dir.join(name)).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }

    /// Every process's CPU time and memory now.
    pub fn usage(&self) -> anyhow::Result<Usage> {
        let pids = [self.worker.id(), self.api.id(), self.server.pid()];
        let mut usage = Usage::default();
        for (slot, pid) in usage.0.iter_mut().zip(pids) {
            *slot = ProcessUsage::read(pid)?;
        }
        Ok(usage)
    }

    /// Stops the API, the worker and the server, drops the database and removes the files.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        for child in [&mut self.api, &mut self.worker] {
            terminate(child);
        }
        self.server.stop();
        self.database.drop_it().await?;
        remove_dir(&self.dir);
        Ok(())
    }
}

/// SIGTERM, then SIGKILL after 15 s.
fn terminate(child: &mut Child) {
    // SAFETY: kill(2) with the pid of a child we own; no memory is touched.
    unsafe {
        libc::kill(child.id() as libc::pid_t, libc::SIGTERM);
    }
    let deadline = Instant::now() + Duration::from_secs(15);
    while Instant::now() < deadline {
        if child.try_wait().ok().flatten().is_some() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
}

fn remove_dir(dir: &Path) {
    if let Err(e) = std::fs::remove_dir_all(dir) {
        eprintln!("could not remove {}: {e}", dir.display());
    }
}
