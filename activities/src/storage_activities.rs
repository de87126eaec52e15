//! Storage: keeps the `sessions` read model current for the workflow.

use crate::storage::{Db, sessions};
use chrono::Utc;
use livesessions_domain::SessionSnapshot;
use livesessions_workflows::activities::RecordSession;
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
        snapshot: SessionSnapshot,
    ) -> Result<(), ActivityError> {
        sessions::record(&self.db, &snapshot, Utc::now()).await?;
        Ok(())
    }
}
