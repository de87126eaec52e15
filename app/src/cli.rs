//! The `livesessions` command line: `dev`, `worker`, `api`, `setup`, `migrate`, `reconcile`,
//! `token`.
//! `main.rs` runs it; so does the tests' `test-livesessions`, which a test starts as separate
//! processes.

use crate::dev::{self, DevOptions};
use crate::report::{self, ReportFormat};
use crate::startup::{run_worker, shutdown_signal};
use crate::{Application, Settings, telemetry};
use clap::{Parser, Subcommand};
use livesessions_activities::{Db, reconciliation};
use livesessions_api::JwtKeys;
use livesessions_domain::Role;
use std::path::PathBuf;

/// Books and runs live therapy and psychiatry sessions on Temporal.
#[derive(Debug, Parser)]
#[command(version)]
struct Cli {
    /// A TOML configuration file (environment variables LIVESESSIONS__SECTION__KEY win over it).
    #[arg(long, global = true, env = "LIVESESSIONS_CONFIG")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Everything on this machine: Temporal dev server with Web UI, worker and API.
    Dev {
        /// The temporal CLI.
        #[arg(
            long,
            env = "LIVESESSIONS_TEMPORAL_CLI",
            default_value = ".tools/temporal/bin/temporal"
        )]
        temporal_cli: PathBuf,
        /// Where the Temporal store and log go.
        #[arg(long, default_value = ".data")]
        data_dir: PathBuf,
        /// Port of the Temporal Web UI.
        #[arg(long, default_value_t = 8233)]
        ui_port: u16,
    },
    /// The worker only (workflow and activities).
    Worker,
    /// The HTTP API only.
    Api,
    /// Checks the Temporal namespace and registers the session search attributes it lacks
    /// (idempotent; run it once per cluster and namespace before the worker and the API).
    Setup,
    /// Applies the database migrations and exits.
    Migrate,
    /// Reconciles one UTC day of the ledger against the payment processor.
    Reconcile {
        /// The day, YYYY-MM-DD.
        #[arg(long)]
        date: chrono::NaiveDate,
        /// table, csv or json.
        #[arg(long, value_enum, default_value = "table")]
        format: ReportFormat,
    },
    /// Prints an HS256 bearer token signed with the configured secret.
    Token {
        /// client, provider, service, operator or finance.
        #[arg(long, value_parser = Role::parse)]
        role: Role,
        /// The person's or service's id (a UUID for clients and providers).
        #[arg(long)]
        sub: String,
        /// How long it is valid, e.g. 24h.
        #[arg(long, default_value = "24h", value_parser = livesessions_domain::duration::parse)]
        ttl: std::time::Duration,
    },
}

/// Runs the command its arguments name.
pub async fn run() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let settings = Settings::load(cli.config.as_deref())?;
    telemetry::init(settings.log.format);
    match cli.command {
        Command::Dev { temporal_cli, data_dir, ui_port } => {
            dev::run(settings, DevOptions { temporal_cli, data_dir, ui_port }).await
        }
        Command::Worker => run_worker(settings).await,
        Command::Api => {
            let app = Application::build(settings).await?;
            let api = app.bind_api().await?;
            tracing::info!(addr = %api.local_addr(), "API listening");
            api.serve(shutdown_signal()).await
        }
        Command::Setup => {
            let namespace = &settings.temporal.namespace;
            let client = livesessions_worker::connect(&settings.temporal).await?;
            let report = livesessions_worker::setup::setup(&client, namespace).await?;
            println!(
                "namespace {namespace:?} at {}: search attributes registered now: [{}]; already there: [{}]",
                settings.temporal.address,
                report.registered.join(", "),
                report.present.join(", ")
            );
            Ok(())
        }
        Command::Migrate => {
            let db = Db::connect(&settings.database.url).await?;
            db.migrate().await?;
            println!("migrations applied to {}", settings.database.url);
            Ok(())
        }
        Command::Reconcile { date, format } => {
            let db = Db::connect(&settings.database.url).await?;
            db.migrate().await?;
            let processor = settings.billing.processor(&db);
            let report = reconciliation::reconcile(&db, processor.as_ref(), date).await?;
            print!("{}", report::render(&report, format)?);
            Ok(())
        }
        Command::Token { role, sub, ttl } => {
            let token = JwtKeys::from_settings(&settings.auth)?.mint(&sub, role, ttl);
            let token = token.ok_or_else(|| {
                anyhow::anyhow!("HS256 tokens are off (public keys and no auth.jwt_secret)")
            })?;
            println!("{token}");
            Ok(())
        }
    }
}
