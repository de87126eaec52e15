//! The connection to the Temporal server.

use crate::TemporalSettings;
use temporalio_client::{Client, ClientOptions, Connection, ConnectionOptions, Url};

/// Connects to the server named by `settings`.
pub async fn connect(settings: &TemporalSettings) -> anyhow::Result<Client> {
    let target = Url::parse(&settings.address).map_err(|e| {
        anyhow::anyhow!("temporal.address {:?} is not a URL: {e}", settings.address)
    })?;
    let connection = Connection::connect(
        ConnectionOptions::new(target)
            .identity(format!("livesessions@{}", std::process::id()))
            .build(),
    )
    .await?;
    Ok(Client::new(connection, ClientOptions::new(settings.namespace.clone()).build())?)
}
