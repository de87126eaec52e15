//! A PostgreSQL server of the run's own, so that it can be stopped the way a crash stops it
//! without touching the machine's shared server: `initdb` into the run's folder, the postmaster
//! on a free port as a child of this process (it dies with it), stopped with
//! `pg_ctl stop -m immediate` and started again, which recovers from its WAL as after a crash.
//! When this process is root it runs them as the `postgres` user (PostgreSQL refuses root).
//! `fsync` is off: an immediate stop kills the server's processes, not the machine, so what
//! they wrote is in the kernel's cache and survives; only a power cut would need fsync.

use anyhow::{Context, bail};
use livesessions_worker::dev_server::{free_port, spawn_tied_to_this_process};
use sqlx::{Connection, PgConnection};
use std::fs::OpenOptions;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// The user the server runs as, when not this process's own.
#[derive(Debug, Clone, Copy)]
struct RunAs {
    uid: libc::uid_t,
    gid: libc::gid_t,
}

impl RunAs {
    /// `postgres` when this process is root, else none.
    fn needed() -> anyhow::Result<Option<Self>> {
        // SAFETY: geteuid(2) reads this process's effective user id.
        if unsafe { libc::geteuid() } != 0 {
            return Ok(None);
        }
        // SAFETY: getpwnam(3) with a NUL-terminated name; the fields are copied out at once,
        // before any other call could reuse its static buffer.
        let entry = unsafe { libc::getpwnam(c"postgres".as_ptr()) };
        if entry.is_null() {
            bail!("running as root, and there is no user postgres to run PostgreSQL as");
        }
        // SAFETY: a non-null answer of getpwnam points to a valid passwd record.
        let (uid, gid) = unsafe { ((*entry).pw_uid, (*entry).pw_gid) };
        Ok(Some(Self { uid, gid }))
    }
}

/// The newest `/usr/lib/postgresql/<version>/bin` that has `initdb` (`./dev chaos` installs the
/// `postgresql` package when there is none).
fn bin_dir() -> anyhow::Result<PathBuf> {
    let mut found: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .context(
            "PostgreSQL's programs are not in /usr/lib/postgresql (apt-get install postgresql)",
        )?
        .filter_map(Result::ok)
        .filter_map(|entry| {
            let version = entry.file_name().to_str()?.parse().ok()?;
            let bin = entry.path().join("bin");
            bin.join("initdb").is_file().then_some((version, bin))
        })
        .collect();
    found.sort();
    found.pop().map(|(_, bin)| bin).context("no /usr/lib/postgresql/<version>/bin/initdb")
}

/// The run's PostgreSQL server.
pub struct PrivatePostgres {
    bin: PathBuf,
    data: PathBuf,
    log: PathBuf,
    port: u16,
    run_as: Option<RunAs>,
    postmaster: Child,
}

impl PrivatePostgres {
    /// Makes a cluster in `<dir>/postgres` and starts it; answers once it takes connections.
    pub async fn start(dir: &Path) -> anyhow::Result<Self> {
        let bin = bin_dir()?;
        let run_as = RunAs::needed()?;
        let data = dir.join("postgres");
        std::fs::create_dir_all(&data)?;
        if let Some(user) = run_as {
            std::os::unix::fs::chown(&data, Some(user.uid), Some(user.gid))?;
        }
        let log = dir.join("postgres.log");
        let mut initdb = command(&bin, "initdb", run_as, &data, &log)?;
        initdb.arg("-D").arg(&data);
        initdb.args(["-U", "postgres", "--auth=trust", "--no-sync", "-E", "UTF8", "--locale=C"]);
        let made = tokio::process::Command::from(initdb).status().await?;
        anyhow::ensure!(made.success(), "initdb failed, see {}", log.display());
        let port = free_port()?;
        let postmaster = postmaster(&bin, run_as, &data, &log, port)?;
        let mut server = Self { bin, data, log, port, run_as, postmaster };
        server.wait_until_ready().await?;
        Ok(server)
    }

    /// A URL of its `postgres` database, as the superuser.
    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    async fn wait_until_ready(&mut self) -> anyhow::Result<()> {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(status) = self.exited() {
                bail!("PostgreSQL exited ({status}), see {}", self.log.display());
            }
            if let Ok(connection) = PgConnection::connect(&self.url()).await {
                connection.close().await?;
                return Ok(());
            }
            anyhow::ensure!(
                Instant::now() < deadline,
                "PostgreSQL takes no connection after 60 s, see {}",
                self.log.display()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Whether the server has exited (and how), without waiting.
    pub fn exited(&mut self) -> Option<ExitStatus> {
        self.postmaster.try_wait().ok().flatten()
    }

    /// Stops the server as a crash would (`pg_ctl stop -m immediate`) and starts it again;
    /// answers once it takes connections (after its crash recovery).
    pub async fn restart(&mut self) -> anyhow::Result<()> {
        self.pg_ctl_stop("immediate").await?;
        self.start_again().await
    }

    /// Starts the server again after it exited.
    pub async fn start_again(&mut self) -> anyhow::Result<()> {
        self.postmaster = postmaster(&self.bin, self.run_as, &self.data, &self.log, self.port)?;
        self.wait_until_ready().await
    }

    async fn pg_ctl_stop(&mut self, mode: &str) -> anyhow::Result<()> {
        let mut stop = command(&self.bin, "pg_ctl", self.run_as, &self.data, &self.log)?;
        stop.args(["stop", "-w", "-m", mode, "-D"]).arg(&self.data);
        let stopped = tokio::process::Command::from(stop).status().await?;
        anyhow::ensure!(stopped.success(), "pg_ctl stop failed, see {}", self.log.display());
        // pg_ctl returns once the server is gone; reap the postmaster.
        let deadline = Instant::now() + Duration::from_secs(30);
        while self.exited().is_none() {
            anyhow::ensure!(Instant::now() < deadline, "the postmaster outlived pg_ctl stop");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Ok(())
    }

    /// Stops the server (`pg_ctl stop -m fast`).
    pub async fn stop(mut self) -> anyhow::Result<()> {
        if self.exited().is_none() {
            self.pg_ctl_stop("fast").await?;
        }
        Ok(())
    }
}

/// One of PostgreSQL's programs, as the user the server runs as, in its data folder, its
/// output appended to the log.
fn command(
    bin: &Path,
    program: &str,
    run_as: Option<RunAs>,
    data: &Path,
    log: &Path,
) -> anyhow::Result<Command> {
    let mut command = Command::new(bin.join(program));
    command.current_dir(data).stdin(Stdio::null());
    let log = OpenOptions::new().create(true).append(true).open(log)?;
    command.stdout(Stdio::from(log.try_clone()?)).stderr(Stdio::from(log));
    if let Some(RunAs { uid, gid }) = run_as {
        use std::os::unix::process::CommandExt;
        // SAFETY: setgroups(2), setgid(2) and setuid(2) are async-signal-safe and touch no
        // memory of the parent.
        unsafe {
            command.pre_exec(move || {
                if libc::setgroups(0, std::ptr::null()) != 0
                    || libc::setgid(gid) != 0
                    || libc::setuid(uid) != 0
                {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
    }
    Ok(command)
}

/// Starts the postmaster on `port`, loopback only, its socket in the data folder.
fn postmaster(
    bin: &Path,
    run_as: Option<RunAs>,
    data: &Path,
    log: &Path,
    port: u16,
) -> anyhow::Result<Child> {
    let mut postgres = command(bin, "postgres", run_as, data, log)?;
    postgres.arg("-D").arg(data).args(["-p", &port.to_string()]);
    for setting in [
        "listen_addresses=127.0.0.1".to_string(),
        format!("unix_socket_directories={}", data.display()),
        "fsync=off".to_string(),
        "max_connections=200".to_string(),
    ] {
        postgres.args(["-c", &setting]);
    }
    Ok(spawn_tied_to_this_process(postgres)?)
}
