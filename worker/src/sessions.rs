//! The typed way to start and steer session workflows (the "starter"): the API and the tests go
//! through here, never through raw workflow names.

use crate::TemporalSettings;
use livesessions_domain::lifecycle::Change;
use livesessions_domain::{MessagingSnapshot, Refusal, SessionId, SessionSnapshot};
use livesessions_workflows::search_attributes as attributes;
use livesessions_workflows::{
    Join, LiveSession, LiveSessionInput, MessagingSession, MessagingSessionInput,
};
use std::future::Future;
use std::time::Duration;
use temporalio_client::errors::{
    WorkflowInteractionError, WorkflowQueryError, WorkflowUpdateError, WorkflowUpdateWithStartError,
};
use temporalio_client::{
    Client, WorkflowIdConflictPolicy, WorkflowQueryOptions, WorkflowSignalOptions,
    WorkflowStartUpdateOptions, WorkflowUpdateWithStartOptions,
};
use temporalio_common::search_attributes::SearchAttributes;
use temporalio_common::{HasWorkflowDefinition, UpdateDefinition};
use tokio::time::Instant;

/// Why a call to a session workflow did not get its answer.
#[derive(Debug, thiserror::Error)]
pub enum SessionCallError {
    /// The workflow refused: the rules or the session's state do not allow it.
    #[error("{0}")]
    Refused(Refusal),
    /// No running workflow has this id (it never existed or has ended).
    #[error("no running workflow for this session")]
    NotRunning,
    /// Temporal did not take the call: nothing was changed.
    #[error("the session service is unavailable: {0}")]
    Unavailable(String),
    /// The call reached the workflow (or may have) but was not answered in time: it may still
    /// take effect. The session itself says what happened.
    #[error("session {session} did not answer in time: {reason}")]
    Pending {
        /// The session asked.
        session: SessionId,
        /// What was not answered.
        reason: String,
    },
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
        let session = input.session_id;
        let workflow_id = session.workflow_id();
        let booking = &input.booking;
        let starts_at: std::time::SystemTime = booking.starts_at.into();
        let options = WorkflowUpdateWithStartOptions::new(
            self.task_queue.clone(),
            workflow_id,
            WorkflowIdConflictPolicy::UseExisting,
        )
        .search_attributes(SearchAttributes::new([
            attributes::SESSION_STATE.value_set("requested".into()),
            attributes::CLIENT_ID.value_set(booking.client_id.to_string()),
            attributes::PROVIDER_ID.value_set(booking.provider_id.to_string()),
            attributes::SESSION_STARTS_AT.value_set(starts_at.into()),
            attributes::MODALITY.value_set(booking.modality.to_string()),
            attributes::COVERAGE.value_set(input.coverage.to_string()),
        ]))
        .static_summary(format!("{} {} session", booking.service, booking.modality))
        .update_id(BOOKING_UPDATE_ID.to_string())
        .build();
        self.update_with_start(session, LiveSession::run, input, LiveSession::request, options)
            .await
    }

    /// Starts a workflow together with an update (Update-with-Start) and waits for the update's
    /// answer; past the timeout it is [`SessionCallError::Pending`].
    async fn update_with_start<W, U>(
        &self,
        session: SessionId,
        workflow: W,
        input: W::Input,
        update: U,
        options: WorkflowUpdateWithStartOptions,
    ) -> Result<U::Output, SessionCallError>
    where
        W: HasWorkflowDefinition,
        W::Input: Send,
        U: UpdateDefinition<Workflow = W::Run, Input = ()>,
        U::Output: temporalio_common::data_converters::TemporalDeserializable + 'static,
    {
        let deadline = Instant::now() + self.timeout;
        let call =
            self.client.start_update_with_start_workflow(workflow, input, update, (), options);
        let started = match self.until(session, deadline, call).await? {
            Ok(started) => started,
            Err(WorkflowUpdateWithStartError::Update(e)) => return Err(update_error(e)),
            Err(e) => return Err(SessionCallError::Unavailable(e.to_string())),
        };
        let answer = self.until(session, deadline, started.get_result(Default::default())).await?;
        answer.map_err(|e| accepted_error(session, e))
    }

    /// The booking's answer for a session whose workflow may already run (a retry under the
    /// same Idempotency-Key): `NotRunning` when no workflow runs for it.
    pub async fn booking_answer(&self, id: SessionId) -> Result<SessionSnapshot, SessionCallError> {
        let update =
            WorkflowStartUpdateOptions::builder().update_id(BOOKING_UPDATE_ID.to_string()).build();
        self.update(id, LiveSession::request, (), update).await
    }

    fn handle(&self, id: SessionId) -> temporalio_client::WorkflowHandle<Client, LiveSession> {
        self.client.get_workflow_handle::<LiveSession>(id.workflow_id())
    }

    /// Sends an update to the session's workflow and waits for its answer: refused by the
    /// validator (nothing changed), or accepted and then answered. Past the timeout it is
    /// [`SessionCallError::Pending`]: an accepted update is carried out all the same.
    async fn update<U>(
        &self,
        id: SessionId,
        update: U,
        input: U::Input,
        options: WorkflowStartUpdateOptions,
    ) -> Result<U::Output, SessionCallError>
    where
        U: UpdateDefinition<Workflow = <LiveSession as HasWorkflowDefinition>::Run>,
        U::Input: Send,
        U::Output: temporalio_common::data_converters::TemporalDeserializable + 'static,
    {
        let deadline = Instant::now() + self.timeout;
        let handle = self.handle(id);
        let start = handle.start_update(update, input, options);
        let accepted = self.until(id, deadline, start).await?.map_err(|e| start_error(id, e))?;
        let answer = self.until(id, deadline, accepted.get_result(Default::default())).await?;
        answer.map_err(|e| accepted_error(id, e))
    }

    /// Asks the session's workflow for a change. With an `update_id` (derived from the caller's
    /// Idempotency-Key) a retry is the same update: it answers what the first one did.
    pub async fn change(
        &self,
        id: SessionId,
        change: Change,
        update_id: Option<String>,
    ) -> Result<SessionSnapshot, SessionCallError> {
        let options = WorkflowStartUpdateOptions::builder().maybe_update_id(update_id).build();
        match change {
            Change::Confirm => self.update(id, LiveSession::confirm, (), options).await,
            Change::Decline => self.update(id, LiveSession::decline, (), options).await,
            Change::Reschedule(request) => {
                self.update(id, LiveSession::reschedule, request, options).await
            }
            Change::Cancel(request) => self.update(id, LiveSession::cancel, request, options).await,
            Change::ProviderUnavailable => {
                self.update(id, LiveSession::provider_unavailable, (), options).await
            }
            Change::AuthorizeNext => {
                self.update(id, LiveSession::authorize_next, (), options).await
            }
            Change::OperatorCancel(request) => {
                self.update(id, LiveSession::operator_cancel, request, options).await
            }
            Change::OperatorEnd(ending) => {
                self.update(id, LiveSession::operator_end, ending, options).await
            }
            Change::ResendNotice => self.update(id, LiveSession::resend_notice, (), options).await,
        }
    }

    /// Starts a messaging session (Update-with-Start) and answers it once its workflow has
    /// recorded it in the read model, so a read right after the answer finds it.
    pub async fn start_messaging(
        &self,
        input: MessagingSessionInput,
    ) -> Result<MessagingSnapshot, SessionCallError> {
        let session = input.session_id;
        let options = WorkflowUpdateWithStartOptions::new(
            self.task_queue.clone(),
            session.messaging_workflow_id(),
            WorkflowIdConflictPolicy::UseExisting,
        )
        .search_attributes(SearchAttributes::new([
            attributes::SESSION_STATE.value_set("in_progress".into()),
            attributes::CLIENT_ID.value_set(input.client_id.to_string()),
            attributes::PROVIDER_ID.value_set(input.provider_id.to_string()),
        ]))
        .static_summary("messaging session".to_string())
        .update_id(MESSAGING_UPDATE_ID.to_string())
        .build();
        self.update_with_start(
            session,
            MessagingSession::run,
            input,
            MessagingSession::started,
            options,
        )
        .await
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

    /// A call that only reads, or only starts something: past the timeout nothing is known to
    /// have happened, and nothing was asked to change.
    async fn in_time<T>(&self, call: impl Future<Output = T>) -> Result<T, SessionCallError> {
        tokio::time::timeout(self.timeout, call).await.map_err(|_| {
            SessionCallError::Unavailable(format!(
                "no answer from the session workflow within {}",
                livesessions_domain::duration::format(self.timeout)
            ))
        })
    }

    /// A call that may change the session: past `deadline` it may still take effect.
    async fn until<T>(
        &self,
        session: SessionId,
        deadline: Instant,
        call: impl Future<Output = T>,
    ) -> Result<T, SessionCallError> {
        tokio::time::timeout_at(deadline, call).await.map_err(|_| SessionCallError::Pending {
            session,
            reason: format!(
                "no answer from the session workflow within {}; the request may still take effect",
                livesessions_domain::duration::format(self.timeout)
            ),
        })
    }
}

/// The update id of the booking's answer (Update-with-Start): one per session.
const BOOKING_UPDATE_ID: &str = "request";

/// The update id of a messaging session's start (Update-with-Start): one per session.
const MESSAGING_UPDATE_ID: &str = "started";

/// An error after the workflow accepted the update: a refusal by the handler is still a
/// refusal; anything else means the answer is not known, though the change goes on.
fn accepted_error(session: SessionId, error: WorkflowUpdateError) -> SessionCallError {
    match update_error(error) {
        SessionCallError::Unavailable(reason) => SessionCallError::Pending { session, reason },
        other => other,
    }
}

/// A refused update carries a [`Refusal`] in its failure message; anything else is the
/// service's own trouble.
/// An error before the update was accepted: a refusal, no such workflow, or a server that could
/// not be reached (nothing changed); any other answer from the server leaves it unknown whether
/// the update was admitted, so it may still take effect.
fn start_error(session: SessionId, error: WorkflowUpdateError) -> SessionCallError {
    match error {
        WorkflowUpdateError::Rpc(status)
            if status.code() != temporalio_client::tonic::Code::Unavailable =>
        {
            SessionCallError::Pending { session, reason: status.to_string() }
        }
        other => update_error(other),
    }
}

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

fn interaction_error(error: WorkflowInteractionError) -> SessionCallError {
    match error {
        WorkflowInteractionError::NotFound(_) => SessionCallError::NotRunning,
        other => SessionCallError::Unavailable(other.to_string()),
    }
}
