//! What a session's workflow asked of the server: its end state and its history, counted by
//! event type.

use anyhow::{Context, bail};
use livesessions_domain::SessionId;
use livesessions_workflows::LiveSession;
use std::collections::BTreeMap;
use std::time::Duration;
use temporalio_client::{Client, WorkflowFetchHistoryOptions, WorkflowGetResultOptions};
use temporalio_common::protos::temporal::api::enums::v1::EventType;

/// Waits (60 s at most) for the session's workflow to close; fails unless it ended in `state`.
pub async fn wait_closed(temporal: &Client, id: SessionId, state: &str) -> anyhow::Result<()> {
    let handle = temporal.get_workflow_handle::<LiveSession>(id.workflow_id());
    let result = handle.get_result(WorkflowGetResultOptions::default());
    let end = tokio::time::timeout(Duration::from_secs(60), result)
        .await
        .with_context(|| format!("{id} did not close within 60 s"))??;
    if end.state.as_str() != state {
        bail!("{id} ended {}, not {state}", end.state);
    }
    Ok(())
}

/// Where a booking's time went on the server's clock, from its workflow's first workflow task.
#[derive(Debug, Clone, Copy)]
pub struct FirstTask {
    /// From the workflow's start to its first workflow task being handed to the worker: the
    /// server's persistence and matching.
    pub dispatch: Duration,
    /// From that hand-over to the worker's completion of the task (the hold and the record,
    /// local activities): the worker and its database.
    pub worker: Duration,
}

impl FirstTask {
    /// Reads the first workflow task's timing from the session's history.
    pub async fn of(temporal: &Client, id: SessionId) -> anyhow::Result<Self> {
        let handle = temporal.get_workflow_handle::<LiveSession>(id.workflow_id());
        let events =
            handle.fetch_history(WorkflowFetchHistoryOptions::default()).into_events().await?;
        let time_of = |kind: EventType| -> anyhow::Result<std::time::SystemTime> {
            let event = events
                .iter()
                .find(|e| e.event_type == kind as i32)
                .with_context(|| format!("{id}: no {}", kind.as_str_name()))?;
            let time = event.event_time.context("an event time")?;
            Ok(std::time::SystemTime::try_from(time)?)
        };
        let started = time_of(EventType::WorkflowExecutionStarted)?;
        let task_started = time_of(EventType::WorkflowTaskStarted)?;
        let task_completed = time_of(EventType::WorkflowTaskCompleted)?;
        Ok(Self {
            dispatch: task_started.duration_since(started).unwrap_or_default(),
            worker: task_completed.duration_since(task_started).unwrap_or_default(),
        })
    }
}

/// A history's length and its events by type (`EVENT_TYPE_` left off, lower case).
#[derive(Debug, Clone, Default)]
pub struct EventCount {
    /// Every event.
    pub total: usize,
    /// Events per type.
    pub by_type: BTreeMap<String, usize>,
}

impl EventCount {
    /// Counts the history of the session's workflow.
    pub async fn of(temporal: &Client, id: SessionId) -> anyhow::Result<Self> {
        let handle = temporal.get_workflow_handle::<LiveSession>(id.workflow_id());
        let events =
            handle.fetch_history(WorkflowFetchHistoryOptions::default()).into_events().await?;
        let mut count = Self { total: events.len(), ..Self::default() };
        for event in &events {
            let name = EventType::try_from(event.event_type).map_or("?", |t| t.as_str_name());
            let name = name.trim_start_matches("EVENT_TYPE_").to_lowercase();
            *count.by_type.entry(name).or_default() += 1;
        }
        Ok(count)
    }

    /// `total: n type, n type, …`, most frequent first.
    pub fn describe(&self) -> String {
        let mut types: Vec<(&String, &usize)> = self.by_type.iter().collect();
        types.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
        let parts: Vec<String> = types.iter().map(|(name, n)| format!("{n} {name}")).collect();
        format!("{}: {}", self.total, parts.join(", "))
    }
}
