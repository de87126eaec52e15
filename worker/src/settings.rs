//! The `temporal.*` configuration keys.

use serde::Deserialize;
use std::time::Duration;

/// Where the Temporal server is and which task queue the sessions run on.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TemporalSettings {
    /// The frontend's gRPC address, e.g. `http://127.0.0.1:7233`.
    pub address: String,
    /// The namespace.
    pub namespace: String,
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
            task_queue: "live-sessions".into(),
            request_timeout: Duration::from_secs(30),
            workflow_task_polls: 10,
            new_workflow_poll_percent: 50,
        }
    }
}
