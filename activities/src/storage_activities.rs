//! Storage: keeps the `sessions` and `messaging_sessions` read models current for the workflows.

use crate::Notification;
use crate::notification::room_message;
use crate::storage::{Db, messaging_sessions, sessions};
use chrono::Utc;
use livesessions_domain::MessagingSnapshot;
use livesessions_workflows::activities::{RecordMessagingSession, RecordSession, SessionRecord};
use std::sync::Arc;
use temporalio_sdk::activities::{ActivityContext, ActivityError, activities};

/// The storage activities, over the database; room messages are worded by `words`.
pub struct Storage {
    db: Db,
    words: Arc<Notification>,
}

impl Storage {
    /// Storage activities that write to `db`, wording room messages with `words`.
    pub fn new(db: Db, words: Arc<Notification>) -> Self {
        Self { db, words }
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
        let mut bodies = Vec::with_capacity(record.room_messages.len());
        for notice in &record.room_messages {
            bodies.push(self.words.room_words(notice, Some(&record.snapshot)).await?);
        }
        let messages: Vec<_> =
            record.room_messages.iter().zip(&bodies).map(|(n, b)| room_message(n, b)).collect();
        let (snapshot, deliveries) = (&record.snapshot, &record.deliveries);
        sessions::record(&self.db, snapshot, &messages, deliveries, Utc::now()).await?;
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
