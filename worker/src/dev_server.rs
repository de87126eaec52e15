//! `temporal server start-dev`, started as a child process with the session search attributes
//! registered (or bare, as a real cluster starts, for `livesessions setup` to register them). The
//! run command keeps its store in a file; the tests keep it in memory and use a free port each.

use livesessions_workflows::search_attributes;
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How to start a dev server.
#[derive(Debug, Clone)]
pub struct DevServerOptions {
    /// The `temporal` CLI.
    pub cli: PathBuf,
    /// The frontend's gRPC port; `None` picks a free one.
    pub port: Option<u16>,
    /// The Web UI's port; `None` runs headless.
    pub ui_port: Option<u16>,
    /// A file for the store; `None` keeps it in memory.
    pub db_file: Option<PathBuf>,
    /// Allows the experimental time skipping (TEMPORAL_RUST.md, section 5).
    pub time_skipping: bool,
    /// Where the server's own log goes; `None` discards it.
    pub log_file: Option<PathBuf>,
}

/// A running dev server; stopped when dropped.
#[derive(Debug)]
pub struct DevServer {
    child: Child,
    port: u16,
    ui_port: Option<u16>,
}

/// A free TCP port on the loopback interface.
pub fn free_port() -> std::io::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

impl DevServer {
    /// Starts the server with the session search attributes and waits until its frontend
    /// accepts connections.
    pub fn start(options: &DevServerOptions) -> anyhow::Result<Self> {
        Self::launch(options, true)
    }

    /// Starts the server without the session search attributes (a fresh cluster, on which the
    /// worker and the API refuse to start until `livesessions setup` registers them).
    pub fn start_bare(options: &DevServerOptions) -> anyhow::Result<Self> {
        Self::launch(options, false)
    }

    fn launch(options: &DevServerOptions, with_search_attributes: bool) -> anyhow::Result<Self> {
        if !options.cli.is_file() {
            anyhow::bail!(
                "the temporal CLI is not at {} (the run and test commands install it there)",
                options.cli.display()
            );
        }
        let port = match options.port {
            Some(port) => port,
            None => free_port()?,
        };
        let mut command = Command::new(&options.cli);
        command.args(["server", "start-dev", "--ip", "127.0.0.1", "--port", &port.to_string()]);
        command.args(["--log-level", "warn", "--ui-disable-news-fetch"]);
        match options.ui_port {
            Some(ui) => command.args(["--ui-port", &ui.to_string()]),
            None => command.arg("--headless"),
        };
        if let Some(file) = &options.db_file {
            command.arg("--db-filename").arg(file);
        }
        if with_search_attributes {
            for attribute in search_attributes::ALL {
                command.args(["--search-attribute", attribute]);
            }
        }
        if options.time_skipping {
            command.args(["--dynamic-config-value", "frontend.WorkflowTimeSkippingEnabled=true"]);
        }
        let log = match &options.log_file {
            Some(path) => Stdio::from(std::fs::File::create(path)?),
            None => Stdio::null(),
        };
        command.stdin(Stdio::null()).stdout(Stdio::null()).stderr(log);
        let child = spawn_tied_to_this_process(command)?;
        let mut server = Self { child, port, ui_port: options.ui_port };
        server.wait_until_listening(Duration::from_secs(90))?;
        Ok(server)
    }

    /// The frontend's address, for `temporal.address`.
    pub fn address(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The server's process id, for figures read from `/proc`.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The frontend's gRPC port, for starting the server again where it was.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Whether the server has exited (and how), without waiting.
    pub fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    /// Kills the server with SIGKILL, as a crash would, and reaps it.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// The Web UI's address, unless headless.
    pub fn ui_address(&self) -> Option<String> {
        self.ui_port.map(|port| format!("http://127.0.0.1:{port}"))
    }

    fn wait_until_listening(&mut self, limit: Duration) -> anyhow::Result<()> {
        let started = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait()? {
                anyhow::bail!("temporal server start-dev exited early ({status})");
            }
            if TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return Ok(());
            }
            if started.elapsed() > limit {
                anyhow::bail!(
                    "temporal server start-dev did not listen on port {} in {limit:?}",
                    self.port
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Stops the server: SIGTERM, then SIGKILL if it lingers.
    pub fn stop(&mut self) {
        if self.child.try_wait().ok().flatten().is_some() {
            return;
        }
        // SAFETY: kill(2) with a pid we own; no memory is touched.
        unsafe {
            libc::kill(self.child.id() as libc::pid_t, libc::SIGTERM);
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if self.child.try_wait().ok().flatten().is_some() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for DevServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Spawns `command` so that it dies with this process, however this process ends: the child
/// asks the kernel for SIGKILL when the thread that forked it exits, and that thread is one that
/// never exits before the process does.
pub fn spawn_tied_to_this_process(mut command: Command) -> std::io::Result<Child> {
    use std::os::unix::process::CommandExt;
    // SAFETY: prctl(2) is async-signal-safe and touches no memory of the parent.
    unsafe {
        command.pre_exec(|| {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) == -1 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let (sender, receiver) = std::sync::mpsc::channel();
    std::thread::Builder::new().name("dev-server-parent".into()).spawn(move || {
        let _ = sender.send(command.spawn());
        loop {
            std::thread::park();
        }
    })?;
    receiver
        .recv()
        .map_err(|_| std::io::Error::other("the dev server's parent thread ended early"))?
}
