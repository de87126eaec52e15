//! Asynchronous messaging sessions: a different kind from live sessions. Once started
//! ("Messaging Session in Progress") one cannot be cancelled or switched to a live session.

use crate::parse::text_enum;
use crate::{ClientId, ProviderId, SessionId};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// Prefix of every messaging session workflow id.
pub const MESSAGING_WORKFLOW_ID_PREFIX: &str = "messaging-session-";

/// Where a messaging session is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MessagingState {
    /// Started; the banner shows "Messaging Session in Progress".
    InProgress,
    /// Its time is over.
    Completed,
}

text_enum!(MessagingState, "messaging session state", {
    InProgress => "in_progress",
    Completed => "completed",
});

/// One messaging session, as `GET /v1/messaging-sessions/{id}` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct MessagingSnapshot {
    /// The session.
    pub id: SessionId,
    /// Its workflow: `messaging-session-<id>`.
    pub workflow_id: String,
    /// In progress or completed.
    pub state: MessagingState,
    /// The client.
    pub client_id: ClientId,
    /// The provider.
    pub provider_id: ProviderId,
    /// When it started.
    pub started_at: DateTime<Utc>,
    /// When it ends (`policy.messaging_session_length` after the start).
    pub ends_at: DateTime<Utc>,
    /// Increases with every change.
    pub version: u64,
}

impl SessionId {
    /// The id of this messaging session's workflow: `messaging-session-<uuid>`.
    pub fn messaging_workflow_id(&self) -> String {
        format!("{MESSAGING_WORKFLOW_ID_PREFIX}{}", self.as_uuid())
    }
}
