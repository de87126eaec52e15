//! Storage: keeps the `sessions` and `messaging_sessions` read models current for the workflows.

use crate::storage::{Db, messaging_sessions, sessions};
use chrono::Utc;
use livesessions_domain::MessagingSnapshot;
use livesessions_workflows::activities::{RecordMessagingSession, RecordSession, SessionRecord};
use std::sync::Arc;
use temporalio_sdk::activities::{ActivityContext, ActivityError, activities};

/// The storage activities, over the database.
pub struct Storage {
    db: Db,
}

impl Storage {
    /// Storage activities that write to `db`.
    pub fn new(db: Db) -> Self {
        Self { db }
    }
}

#[activities]
impl Storage {
    /// See [`RecordSession`].
    #[activity(definition = RecordSession)]
    pub async fn record_session(
        self: Arc<Self>,
        _ctx: ActivityContext,
        record: SessionRecord,
    ) -> Result<(), ActivityError> {
        sessions::record(&self.db, &record.snapshot, &record.deliveries, Utc::now()).await?;
        Ok(())
    }

    /// See [`RecordMessagingSession`].
    #[activity(definition = RecordMessagingSession)]
    pub async fn record_messaging_session(
        self: Arc<Self>,
        _ctx: ActivityContext,
        snapshot: MessagingSnapshot,
    ) -> Result<(), ActivityError> {
        messaging_sessions::record(&self.db, &snapshot, Utc::now()).await?;
        Ok(())
    }
}
