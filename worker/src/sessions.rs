//! The typed way to start and steer session workflows (the "starter"): the API and the tests go
//! through here, never through raw workflow names.

use crate::TemporalSettings;
use livesessions_domain::{MessagingSnapshot, Refusal, SessionId, SessionSnapshot};
use livesessions_workflows::search_attributes as attributes;
use livesessions_workflows::{
    Cancel, Delivery, DeliveryInput, Join, LiveSession, LiveSessionInput, MessagingSession,
    MessagingSessionInput, Reschedule,
};
use std::future::Future;
use std::time::Duration;
use temporalio_client::errors::{
    WorkflowInteractionError, WorkflowQueryError, WorkflowUpdateError, WorkflowUpdateWithStartError,
};
use temporalio_client::{
    Client, WorkflowExecuteUpdateOptions, WorkflowIdConflictPolicy, WorkflowQueryOptions,
    WorkflowSignalOptions, WorkflowStartOptions, WorkflowUpdateWithStartOptions,
};
use temporalio_common::search_attributes::SearchAttributes;
use temporalio_common::{HasWorkflowDefinition, UpdateDefinition};

/// Why a call to a session workflow did not get its answer.
#[derive(Debug, thiserror::Error)]
pub enum SessionCallError {
    /// The workflow refused: the rules or the session's state do not allow it.
    #[error("{0}")]
    Refused(Refusal),
    /// No running workflow has this id (it never existed or has ended).
    #[error("no running workflow for this session")]
    NotRunning,
    /// Temporal or the worker did not answer in time, or failed.
    #[error("the session service is unavailable: {0}")]
    Unavailable(String),
}

/// Starts and steers `LiveSession` workflows.
#[derive(Clone)]
pub struct Sessions {
    client: Client,
    task_queue: String,
    timeout: Duration,
}

impl Sessions {
    /// Session workflows on the server and task queue of `settings`.
    pub fn new(client: Client, settings: &TemporalSettings) -> Self {
        Self { client, task_queue: settings.task_queue.clone(), timeout: settings.request_timeout }
    }

    /// How long a call waits for its workflow.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// Starts the session's workflow and waits for the booking's answer (Update-with-Start):
    /// the held session, or the refusal. The workflow writes the read model itself. Asked again
    /// for a session whose workflow runs, it answers that workflow's first answer.
    pub async fn request(
        &self,
        input: LiveSessionInput,
    ) -> Result<SessionSnapshot, SessionCallError> {
        let workflow_id = input.session_id.workflow_id();
        let starts_at: std::time::SystemTime = input.starts_at.into();
        let options = WorkflowUpdateWithStartOptions::new(
            self.task_queue.clone(),
            workflow_id,
            WorkflowIdConflictPolicy::UseExisting,
        )
        .search_attributes(SearchAttributes::new([
            attributes::SESSION_STATE.value_set("requested".into()),
            attributes::CLIENT_ID.value_set(input.client_id.to_string()),
            attributes::PROVIDER_ID.value_set(input.provider_id.to_string()),
            attributes::SESSION_STARTS_AT.value_set(starts_at.into()),
            attributes::MODALITY.value_set(input.modality.to_string()),
            attributes::COVERAGE.value_set(input.coverage.to_string()),
        ]))
        .static_summary(format!("{} {} session", input.service, input.modality))
        .update_id("request".to_string())
        .build();
        let call = self.client.execute_update_with_start_workflow(
            LiveSession::run,
            input,
            LiveSession::request,
            (),
            options,
        );
        match self.in_time(call).await? {
            Ok(snapshot) => Ok(snapshot),
            Err(WorkflowUpdateWithStartError::Update(e)) => Err(update_error(e)),
            Err(e) => Err(SessionCallError::Unavailable(e.to_string())),
        }
    }

    fn handle(&self, id: SessionId) -> temporalio_client::WorkflowHandle<Client, LiveSession> {
        self.client.get_workflow_handle::<LiveSession>(id.workflow_id())
    }

    /// Sends an update to the session's workflow and waits for its answer.
    async fn update<U>(
        &self,
        id: SessionId,
        update: U,
        input: U::Input,
    ) -> Result<U::Output, SessionCallError>
    where
        U: UpdateDefinition<Workflow = <LiveSession as HasWorkflowDefinition>::Run>,
        U::Input: Send,
        U::Output: 'static,
    {
        let handle = self.handle(id);
        let call = handle.execute_update(update, input, WorkflowExecuteUpdateOptions::default());
        self.in_time(call).await?.map_err(update_error)
    }

    /// The provider confirms the request.
    pub async fn confirm(&self, id: SessionId) -> Result<SessionSnapshot, SessionCallError> {
        self.update(id, LiveSession::confirm, ()).await
    }

    /// The provider declines the request.
    pub async fn decline(&self, id: SessionId) -> Result<SessionSnapshot, SessionCallError> {
        self.update(id, LiveSession::decline, ()).await
    }

    /// The client moves the session.
    pub async fn reschedule(
        &self,
        id: SessionId,
        request: Reschedule,
    ) -> Result<SessionSnapshot, SessionCallError> {
        self.update(id, LiveSession::reschedule, request).await
    }

    /// The client or the provider cancels.
    pub async fn cancel(
        &self,
        id: SessionId,
        request: Cancel,
    ) -> Result<SessionSnapshot, SessionCallError> {
        self.update(id, LiveSession::cancel, request).await
    }

    /// The provider cannot attend.
    pub async fn provider_unavailable(
        &self,
        id: SessionId,
    ) -> Result<SessionSnapshot, SessionCallError> {
        self.update(id, LiveSession::provider_unavailable, ()).await
    }

    /// The insurance client authorizes the next session.
    pub async fn authorize_next(&self, id: SessionId) -> Result<SessionSnapshot, SessionCallError> {
        self.update(id, LiveSession::authorize_next, ()).await
    }

    /// Starts a messaging session; answers it once its workflow has started.
    pub async fn start_messaging(
        &self,
        input: MessagingSessionInput,
    ) -> Result<(), SessionCallError> {
        let workflow_id = input.session_id.messaging_workflow_id();
        let options = WorkflowStartOptions::new(self.task_queue.clone(), workflow_id)
            .search_attributes(SearchAttributes::new([
                attributes::SESSION_STATE.value_set("in_progress".into()),
                attributes::CLIENT_ID.value_set(input.client_id.to_string()),
                attributes::PROVIDER_ID.value_set(input.provider_id.to_string()),
            ]))
            .static_summary("messaging session".to_string())
            .build();
        let call = self.client.start_workflow(MessagingSession::run, input, options);
        self.in_time(call)
            .await?
            .map(|_| ())
            .map_err(|e| SessionCallError::Unavailable(e.to_string()))
    }

    /// Starts a delivery (`delivery-<key>`) and leaves it to retry until it is accepted;
    /// answers once its workflow has started.
    pub async fn deliver(&self, key: &str, input: DeliveryInput) -> Result<(), SessionCallError> {
        let options = WorkflowStartOptions::new(self.task_queue.clone(), format!("delivery-{key}"))
            .static_summary(format!("deliver {key}"))
            .build();
        let call = self.client.start_workflow(Delivery::run, input, options);
        self.in_time(call)
            .await?
            .map(|_| ())
            .map_err(|e| SessionCallError::Unavailable(e.to_string()))
    }

    /// A messaging session as its workflow sees it now.
    pub async fn messaging_snapshot(
        &self,
        id: SessionId,
    ) -> Result<MessagingSnapshot, SessionCallError> {
        let handle =
            self.client.get_workflow_handle::<MessagingSession>(id.messaging_workflow_id());
        let call = handle.query(MessagingSession::snapshot, (), WorkflowQueryOptions::default());
        self.in_time(call).await?.map_err(query_error)
    }

    /// Someone joined the session's room.
    pub async fn joined(&self, id: SessionId, join: Join) -> Result<(), SessionCallError> {
        let handle = self.client.get_workflow_handle::<LiveSession>(id.workflow_id());
        let call =
            handle.signal(LiveSession::participant_joined, join, WorkflowSignalOptions::default());
        self.in_time(call).await?.map_err(interaction_error)
    }

    /// The session's media room ended.
    pub async fn room_ended(&self, id: SessionId) -> Result<(), SessionCallError> {
        let handle = self.client.get_workflow_handle::<LiveSession>(id.workflow_id());
        let call = handle.signal(LiveSession::room_ended, (), WorkflowSignalOptions::default());
        self.in_time(call).await?.map_err(interaction_error)
    }

    /// The session as its workflow sees it now.
    pub async fn snapshot(&self, id: SessionId) -> Result<SessionSnapshot, SessionCallError> {
        let handle = self.client.get_workflow_handle::<LiveSession>(id.workflow_id());
        let call = handle.query(LiveSession::snapshot, (), WorkflowQueryOptions::default());
        self.in_time(call).await?.map_err(|e| match e {
            WorkflowQueryError::NotFound(_) => SessionCallError::NotRunning,
            other => SessionCallError::Unavailable(other.to_string()),
        })
    }

    async fn in_time<T>(&self, call: impl Future<Output = T>) -> Result<T, SessionCallError> {
        tokio::time::timeout(self.timeout, call).await.map_err(|_| {
            SessionCallError::Unavailable(format!(
                "no answer from the session workflow within {}",
                livesessions_domain::duration::format(self.timeout)
            ))
        })
    }
}

/// A refused update carries a [`Refusal`] in its failure message; anything else is the
/// service's own trouble.
fn update_error(error: WorkflowUpdateError) -> SessionCallError {
    match error {
        WorkflowUpdateError::Failed(failure) => {
            match Refusal::from_failure_message(&failure.message) {
                Some(refusal) => SessionCallError::Refused(refusal),
                None => SessionCallError::Unavailable(failure.message),
            }
        }
        WorkflowUpdateError::NotFound(_) => SessionCallError::NotRunning,
        other => SessionCallError::Unavailable(other.to_string()),
    }
}

fn query_error(error: WorkflowQueryError) -> SessionCallError {
    match error {
        WorkflowQueryError::NotFound(_) => SessionCallError::NotRunning,
        other => SessionCallError::Unavailable(other.to_string()),
    }
}

fn interaction_error(error: WorkflowInteractionError) -> SessionCallError {
    match error {
        WorkflowInteractionError::NotFound(_) => SessionCallError::NotRunning,
        other => SessionCallError::Unavailable(other.to_string()),
    }
}
