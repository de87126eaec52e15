//! `livesessions dev`: the whole system on one machine, on the embedded defaults — a Temporal
//! dev server (Web UI included, store in `.data/`), the worker and the API on SQLite.

use crate::configuration::Settings;
use crate::startup::{Application, shutdown_signal};
use livesessions_domain::Role;
use livesessions_worker::{DevServer, DevServerOptions};
use std::path::PathBuf;
use std::time::Duration;
use temporalio_client::Url;
use tokio_util::sync::CancellationToken;

/// Where the dev server's files go and which Web UI port it uses.
#[derive(Debug, Clone)]
pub struct DevOptions {
    /// The `temporal` CLI (installed by `./dev up` under `.tools/`).
    pub temporal_cli: PathBuf,
    /// Folder for the Temporal store and its log.
    pub data_dir: PathBuf,
    /// Port of the Temporal Web UI.
    pub ui_port: u16,
}

/// Starts everything, prints where it is, and stops everything on Ctrl-C.
pub async fn run(settings: Settings, options: DevOptions) -> anyhow::Result<()> {
    let address = Url::parse(&settings.temporal.address)?;
    let port = address
        .port_or_known_default()
        .ok_or_else(|| anyhow::anyhow!("temporal.address {address} names no port"))?;
    std::fs::create_dir_all(&options.data_dir)?;
    let server_options = DevServerOptions {
        cli: options.temporal_cli.clone(),
        port: Some(port),
        ui_port: Some(options.ui_port),
        db_file: Some(options.data_dir.join("temporal.db")),
        time_skipping: false,
        log_file: Some(options.data_dir.join("temporal.log")),
    };
    tracing::info!(port, "starting the Temporal dev server");
    let server = tokio::task::spawn_blocking(move || DevServer::start(&server_options)).await??;

    let app = Application::build(settings).await?;
    let api = app.bind_api().await?;
    let token = app.keys().mint("dev-service", Role::Service, Duration::from_secs(24 * 3600));
    println!("livesessions is up.");
    println!("  API:             http://{}", api.local_addr());
    println!("  OpenAPI:         http://{}/openapi.json", api.local_addr());
    if let Some(ui) = server.ui_address() {
        println!(
            "  Temporal Web UI: {ui}/namespaces/{}/workflows",
            app.settings().temporal.namespace
        );
    }
    println!("  Temporal:        {}", server.address());
    println!("  Database:        {}", app.settings().database.url);
    match token {
        Some(token) => {
            println!("  Service token (24 h):\n    {token}");
            println!("  More tokens:     cargo run -- token --role client --sub <client uuid>");
        }
        None => println!("  Service token:   none (public keys and no auth.jwt_secret: no HS256)"),
    }
    println!("Ctrl-C stops everything.");

    let stop = CancellationToken::new();
    let on_signal = stop.clone();
    tokio::spawn(async move {
        shutdown_signal().await;
        on_signal.cancel();
    });
    let result = app.run(api, stop).await;
    drop(server);
    result
}
