//! The system under test as separate processes: a Temporal dev server with a file store, the
//! worker (`livesessions worker`) and the API (`livesessions api`), on a fresh PostgreSQL
//! database that is dropped afterwards. Each process can be crashed (SIGKILL) and started again
//! as it was: the worker and the API with the same settings and address, the server on the same
//! port and store.

use anyhow::Context;
use livesessions_api::JwtKeys;
use livesessions_worker::dev_server::{free_port, spawn_tied_to_this_process};
use livesessions_worker::{DevServer, DevServerOptions, TemporalSettings};
use sqlx::{Connection, Executor, PgConnection};
use std::fs::OpenOptions;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// Where the programs and the PostgreSQL server are, and how the run is configured.
#[derive(Debug, Clone)]
pub struct SystemOptions {
    /// The `livesessions` program (its `migrate`, `worker` and `api` commands).
    pub livesessions: PathBuf,
    /// The `temporal` CLI.
    pub temporal_cli: PathBuf,
    /// A PostgreSQL URL whose user may create and drop databases.
    pub admin_database_url: String,
    /// The run's settings for the worker and the API, as `LIVESESSIONS__…` environment
    /// variables (short policy windows, timeouts).
    pub settings: Vec<(String, String)>,
}

/// The three processes of the system.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Process {
    /// `livesessions worker`.
    Worker,
    /// `livesessions api`.
    Api,
    /// `temporal server start-dev`.
    Server,
}

impl Process {
    /// All three, in the order tables show them.
    pub const ALL: [Process; 3] = [Process::Worker, Process::Api, Process::Server];

    /// How tables name it.
    pub fn name(self) -> &'static str {
        match self {
            Process::Worker => "worker",
            Process::Api => "API",
            Process::Server => "server",
        }
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
        let name = format!("ls_run_{}", uuid::Uuid::new_v4().simple());
        let mut admin = PgConnection::connect(admin_url)
            .await
            .with_context(|| format!("PostgreSQL at {admin_url}"))?;
        admin.execute(format!("CREATE DATABASE {name}").as_str()).await?;
        admin.close().await?;
        let (base, _) = admin_url.rsplit_once('/').context("the URL names a database")?;
        Ok(Self { admin_url: admin_url.into(), url: format!("{base}/{name}"), name })
    }

    async fn drop_it(&self) -> anyhow::Result<()> {
        let mut admin = PgConnection::connect(&self.admin_url).await?;
        admin
            .execute(format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name).as_str())
            .await?;
        admin.close().await?;
        Ok(())
    }
}

/// How the `livesessions` commands of the run are started: the program, its environment, and
/// the folder their logs are appended to (`<command>.log`, across restarts).
struct Launcher {
    program: PathBuf,
    env: Vec<(String, String)>,
    dir: PathBuf,
}

impl Launcher {
    fn command(&self, command: &str) -> anyhow::Result<Command> {
        let mut process = Command::new(&self.program);
        process.arg(command).envs(self.env.iter().map(|(k, v)| (k, v)));
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join(format!("{command}.log")))?;
        process.stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::from(log));
        Ok(process)
    }

    fn spawn(&self, command: &str) -> anyhow::Result<Child> {
        Ok(spawn_tied_to_this_process(self.command(command)?)?)
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
    /// The run's database.
    pub database_url: String,
    server: DevServer,
    server_options: DevServerOptions,
    server_starts: u32,
    worker: Child,
    api: Child,
    launcher: Launcher,
    database: Database,
    dir: PathBuf,
}

impl System {
    /// Starts the dev server, migrates a fresh database, then starts the worker and the API and
    /// waits until the API is healthy.
    pub async fn start(options: &SystemOptions) -> anyhow::Result<Self> {
        let dir = std::env::temp_dir().join(format!("ls-run-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir)?;
        let mut server_options = DevServerOptions {
            cli: options.temporal_cli.clone(),
            port: None,
            ui_port: None,
            db_file: Some(dir.join("temporal.db")),
            time_skipping: false,
            log_file: Some(dir.join("temporal.log")),
        };
        let server = DevServer::start(&server_options)?;
        server_options.port = Some(server.port());
        let database = Database::create(&options.admin_database_url).await?;
        let secret = uuid::Uuid::new_v4().to_string();
        let http_addr = format!("127.0.0.1:{}", free_port()?);
        let api_address = format!("http://{http_addr}");
        let mut env: Vec<(String, String)> = [
            ("LIVESESSIONS__DATABASE__URL", database.url.clone()),
            ("LIVESESSIONS__TEMPORAL__ADDRESS", server.address()),
            ("LIVESESSIONS__AUTH__JWT_SECRET", secret.clone()),
            ("LIVESESSIONS__HTTP__ADDR", http_addr),
            ("LIVESESSIONS__HTTP__PUBLIC_URL", api_address.clone()),
            ("LIVESESSIONS__EMAIL__OUTBOX_DIR", dir.join("outbox").display().to_string()),
            ("RUST_LOG", "warn".into()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        env.extend(options.settings.iter().cloned());
        let launcher = Launcher { program: options.livesessions.clone(), env, dir: dir.clone() };
        let migrated = launcher.command("migrate")?.status()?;
        anyhow::ensure!(migrated.success(), "livesessions migrate failed, see {}", dir.display());
        let worker = launcher.spawn("worker")?;
        let api = launcher.spawn("api")?;
        let settings =
            TemporalSettings { address: server.address(), ..TemporalSettings::default() };
        let temporal = livesessions_worker::connect(&settings).await?;
        let system = Self {
            api_address,
            keys: JwtKeys::from_secret(&secret),
            temporal,
            database_url: database.url.clone(),
            server,
            server_options,
            server_starts: 1,
            worker,
            api,
            launcher,
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

    /// The last lines of one of the processes' logs (`worker.log`, `api.log`, `temporal.log`).
    pub fn log_tail(&self, name: &str) -> String {
        let log = std::fs::read_to_string(self.dir.join(name)).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }

    /// The process id of `process`, for figures read from `/proc`.
    pub fn pid(&self, process: Process) -> u32 {
        match process {
            Process::Worker => self.worker.id(),
            Process::Api => self.api.id(),
            Process::Server => self.server.pid(),
        }
    }

    /// Whether `process` has exited (and how), without waiting.
    pub fn exited(&mut self, process: Process) -> Option<ExitStatus> {
        match process {
            Process::Worker => self.worker.try_wait().ok().flatten(),
            Process::Api => self.api.try_wait().ok().flatten(),
            Process::Server => self.server.exited(),
        }
    }

    /// Kills `process` with SIGKILL, as a crash would, and reaps it.
    pub fn crash(&mut self, process: Process) {
        match process {
            Process::Worker => kill(&mut self.worker),
            Process::Api => kill(&mut self.api),
            Process::Server => self.server.kill(),
        }
    }

    /// Starts `process` again as it was (after [`System::crash`], or after it exited): the
    /// worker and the API with the same settings (the API on the same address, waiting until it
    /// is healthy), the server on the same port and store.
    pub async fn restart(&mut self, process: Process) -> anyhow::Result<()> {
        match process {
            Process::Worker => self.worker = self.launcher.spawn("worker")?,
            Process::Api => {
                self.api = self.launcher.spawn("api")?;
                self.wait_until_healthy().await?;
            }
            Process::Server => {
                self.server_starts += 1;
                let log = self.dir.join(format!("temporal-{}.log", self.server_starts));
                let options =
                    DevServerOptions { log_file: Some(log), ..self.server_options.clone() };
                self.server =
                    tokio::task::spawn_blocking(move || DevServer::start(&options)).await??;
            }
        }
        Ok(())
    }

    /// Stops the API, the worker and the server, drops the database and removes the files.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        self.shut_down().await?;
        remove_dir(&self.dir);
        Ok(())
    }

    /// Stops as [`System::stop`] does but keeps the processes' logs; answers their folder.
    pub async fn stop_keeping_logs(mut self) -> anyhow::Result<PathBuf> {
        self.shut_down().await?;
        Ok(self.dir.clone())
    }

    async fn shut_down(&mut self) -> anyhow::Result<()> {
        for child in [&mut self.api, &mut self.worker] {
            terminate(child);
        }
        self.server.stop();
        self.database.drop_it().await
    }
}

/// SIGKILL, then reaps it.
fn kill(child: &mut Child) {
    let _ = child.kill();
    let _ = child.wait();
}

/// SIGTERM, then SIGKILL after 15 s.
fn terminate(child: &mut Child) {
    if child.try_wait().ok().flatten().is_some() {
        return;
    }
    // SAFETY: kill(2) with the pid of a child we own and have not reaped; no memory is touched.
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
    kill(child);
}

/// Removes a folder, saying so when it cannot.
pub fn remove_dir(dir: &Path) {
    if let Err(e) = std::fs::remove_dir_all(dir) {
        eprintln!("could not remove {}: {e}", dir.display());
    }
}
