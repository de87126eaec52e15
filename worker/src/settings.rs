//! The `temporal.*` configuration keys.

use serde::Deserialize;
use std::path::PathBuf;
use std::time::Duration;

/// Where the Temporal server is and which task queue the sessions run on.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TemporalSettings {
    /// The frontend's gRPC address, e.g. `http://127.0.0.1:7233`.
    pub address: String,
    /// The namespace. It must exist; `livesessions setup` registers its search attributes.
    pub namespace: String,
    /// `temporal.tls.*`: TLS (and mTLS) to the frontend.
    pub tls: TemporalTls,
    /// An API key (Temporal Cloud), sent as a bearer token; implies TLS.
    pub api_key: Option<ApiKey>,
    /// Where the worker serves Prometheus metrics (`/metrics`): the Temporal SDK's own and the
    /// worker's counters. None: no endpoint.
    pub metrics_addr: Option<String>,
    /// The task queue of the `LiveSession` workflow and its activities.
    pub task_queue: String,
    /// How long an API request waits for the workflow to answer before it answers `202` with
    /// where to look (the request may still take effect).
    #[serde(with = "livesessions_domain::duration::text")]
    pub request_timeout: Duration,
    /// Workflow-task polls a worker keeps open at once (at least 2).
    pub workflow_task_polls: usize,
    /// The percentage of those polls on the task queue itself, where every new session's first
    /// task (its booking) arrives; the others wait on the worker's sticky queue for the next
    /// task of a session it has cached.
    pub new_workflow_poll_percent: u8,
}

impl Default for TemporalSettings {
    fn default() -> Self {
        Self {
            address: "http://127.0.0.1:7233".into(),
            namespace: "default".into(),
            tls: TemporalTls::default(),
            api_key: None,
            metrics_addr: None,
            task_queue: "live-sessions".into(),
            request_timeout: Duration::from_secs(30),
            workflow_task_polls: 10,
            new_workflow_poll_percent: 50,
        }
    }
}

/// TLS to the Temporal frontend. Used when `enabled`, when the address is `https://`, or when an
/// API key or any file below is configured.
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TemporalTls {
    /// Use TLS even with none of the keys below (the system's roots verify the server).
    pub enabled: bool,
    /// PEM file of the CA that signed the server's certificate (else the system's roots).
    pub server_ca_file: Option<PathBuf>,
    /// The name the server's certificate must carry, when not the address's host.
    pub server_name: Option<String>,
    /// mTLS: the client's PEM certificate (with `client_key_file`).
    pub client_cert_file: Option<PathBuf>,
    /// mTLS: the client's PEM private key (with `client_cert_file`).
    pub client_key_file: Option<PathBuf>,
}

impl TemporalTls {
    /// Whether any TLS key asks for TLS.
    pub fn is_requested(&self) -> bool {
        self.enabled
            || self.server_ca_file.is_some()
            || self.server_name.is_some()
            || self.client_cert_file.is_some()
            || self.client_key_file.is_some()
    }
}

/// A Temporal API key: never printed.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct ApiKey(String);

impl ApiKey {
    /// The key itself, for the connection.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ApiKey(<redacted>)")
    }
}
