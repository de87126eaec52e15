//! `livesessions setup` against a fresh Temporal dev server started without
//! `--search-attribute` flags (as a real cluster starts): the worker refuses to start, saying
//! what is missing; `setup` registers the session search attributes, and run again registers
//! nothing; then the worker starts. A namespace that does not exist is refused by name.

use livesessions_worker::{DevServer, DevServerOptions};
use std::path::PathBuf;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

fn temporal_cli() -> PathBuf {
    match std::env::var_os("LIVESESSIONS_TEMPORAL_CLI") {
        Some(path) => PathBuf::from(path),
        None => {
            let dir =
                std::env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR");
            PathBuf::from(dir).join("../.tools/temporal/bin/temporal")
        }
    }
}

/// The `livesessions` command against `address` and `namespace`, on a SQLite file of its own.
fn livesessions(address: &str, namespace: &str, database: &str, args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_livesessions"));
    command
        .args(args)
        .env("LIVESESSIONS__TEMPORAL__ADDRESS", address)
        .env("LIVESESSIONS__TEMPORAL__NAMESPACE", namespace)
        .env("LIVESESSIONS__DATABASE__URL", database)
        .env("LIVESESSIONS__AUTH__JWT_SECRET", "setup-test-secret")
        .env("RUST_LOG", "warn");
    command
}

fn text(output: &Output) -> String {
    format!(
        "status {}\nstdout: {}\nstderr: {}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// Runs the worker until it has been up for `up_for` (then kills it: it started, and this is
/// what it wrote to stderr) or exits.
fn worker_outcome(mut command: Command, up_for: Duration) -> Result<String, String> {
    let mut child = command
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("the worker starts");
    let started = Instant::now();
    while started.elapsed() < up_for {
        if child.try_wait().expect("the worker's status").is_some() {
            return Err(text(&child.wait_with_output().expect("its output")));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    child.kill().expect("the worker stops");
    let output = child.wait_with_output().expect("its output");
    Ok(String::from_utf8_lossy(&output.stderr).to_string())
}

#[test]
fn setup_registers_the_search_attributes_a_fresh_cluster_lacks() {
    let options = DevServerOptions {
        cli: temporal_cli(),
        port: None,
        ui_port: None,
        db_file: None,
        time_skipping: false,
        log_file: None,
    };
    let server = DevServer::start_bare(&options).expect("a bare dev server");
    let address = server.address();
    let dir = std::env::temp_dir().join(format!("ls-setup-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    let database = format!("sqlite://{}/livesessions.db", dir.display());

    let refused = worker_outcome(
        livesessions(&address, "default", &database, &["worker"]),
        Duration::from_secs(20),
    )
    .expect_err("the worker refuses a namespace without the search attributes");
    assert!(refused.contains("livesessions setup"), "{refused}");
    assert!(refused.contains("SessionState (Keyword)"), "{refused}");
    assert!(refused.contains("SessionStartsAt (Datetime)"), "{refused}");

    let first = livesessions(&address, "default", &database, &["setup"]).output().unwrap();
    assert!(first.status.success(), "{}", text(&first));
    let first = String::from_utf8_lossy(&first.stdout).to_string();
    for name in
        ["SessionState", "ClientId", "ProviderId", "SessionStartsAt", "Modality", "Coverage"]
    {
        assert!(first.contains(name), "{name} registered: {first}");
    }
    assert!(first.contains("already there: []"), "{first}");

    let again = livesessions(&address, "default", &database, &["setup"]).output().unwrap();
    assert!(again.status.success(), "{}", text(&again));
    let again = String::from_utf8_lossy(&again.stdout).to_string();
    assert!(again.contains("registered now: []"), "idempotent: {again}");

    let mut worker = livesessions(&address, "default", &database, &["worker"]);
    worker.env("LIVESESSIONS__LOG__FORMAT", "json").env("RUST_LOG", "warn,livesessions=info");
    let logs = worker_outcome(worker, Duration::from_secs(5))
        .expect("the worker starts once the attributes exist");
    // log.format = json: every line an object; the start is logged with its task queue.
    let lines: Vec<serde_json::Value> = logs
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}")))
        .collect();
    assert!(
        lines.iter().any(|l| l["fields"]["message"] == "worker started"
            && l["fields"]["task_queue"] == "live-sessions"),
        "{logs}"
    );

    let missing =
        livesessions(&address, "no-such-namespace", &database, &["setup"]).output().unwrap();
    assert!(!missing.status.success());
    let missing = text(&missing);
    assert!(missing.contains("namespace \"no-such-namespace\" does not exist"), "{missing}");
    let _ = std::fs::remove_dir_all(&dir);
}
