//! The connection to the Temporal server: plaintext for the dev server, TLS (with the server's
//! CA and name), mTLS (a client certificate) or an API key for a real cluster.

use crate::TemporalSettings;
use crate::settings::TemporalTls;
use anyhow::Context;
use std::path::Path;
use temporalio_client::{
    Client, ClientOptions, ClientTlsOptions, Connection, ConnectionOptions, TlsOptions, Url,
};

/// Connects to the server named by `settings`.
pub async fn connect(settings: &TemporalSettings) -> anyhow::Result<Client> {
    let target = Url::parse(&settings.address).map_err(|e| {
        anyhow::anyhow!("temporal.address {:?} is not a URL: {e}", settings.address)
    })?;
    let wants_tls =
        settings.tls.is_requested() || target.scheme() == "https" || settings.api_key.is_some();
    let tls = if wants_tls {
        livesessions_activities::install_crypto_provider();
        Some(tls_options(&settings.tls)?)
    } else {
        None
    };
    let options = ConnectionOptions::new(target)
        .identity(format!("livesessions@{}", std::process::id()))
        .maybe_tls_options(tls)
        .maybe_api_key(settings.api_key.as_ref().map(|key| key.expose().to_string()))
        .build();
    let connection = Connection::connect(options)
        .await
        .with_context(|| format!("cannot connect to Temporal at {}", settings.address))?;
    Ok(Client::new(connection, ClientOptions::new(settings.namespace.clone()).build())?)
}

/// The TLS options the `temporal.tls.*` keys describe, reading their files.
fn tls_options(tls: &TemporalTls) -> anyhow::Result<TlsOptions> {
    let read = |key: &str, path: &Path| {
        std::fs::read(path)
            .with_context(|| format!("temporal.tls.{key}: cannot read {}", path.display()))
    };
    let client = match (&tls.client_cert_file, &tls.client_key_file) {
        (Some(cert), Some(key)) => Some(
            ClientTlsOptions::builder()
                .client_cert(read("client_cert_file", cert)?)
                .client_private_key(read("client_key_file", key)?)
                .build(),
        ),
        (None, None) => None,
        _ => anyhow::bail!(
            "temporal.tls.client_cert_file and temporal.tls.client_key_file go together (mTLS)"
        ),
    };
    let server_ca = match &tls.server_ca_file {
        Some(path) => Some(read("server_ca_file", path)?),
        None => None,
    };
    Ok(TlsOptions::builder()
        .maybe_server_root_ca_cert(server_ca)
        .maybe_domain(tls.server_name.clone())
        .maybe_client_tls_options(client)
        .build())
}
