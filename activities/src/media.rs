//! Media: the built-in media service, which creates a room per session and mints one join token
//! per person.

use crate::storage::{Db, media_rooms};
use chrono::Utc;
use livesessions_domain::RoomId;
use livesessions_workflows::activities::{OpenRoom, RoomRequest};
use std::sync::Arc;
use temporalio_sdk::activities::{ActivityContext, ActivityError, activities};

/// The media activities, over the built-in media service's tables.
pub struct Media {
    db: Db,
}

impl Media {
    /// Media activities that keep rooms in `db`.
    pub fn new(db: Db) -> Self {
        Self { db }
    }
}

#[activities]
impl Media {
    /// See [`OpenRoom`].
    #[activity(definition = OpenRoom)]
    pub async fn open_room(
        self: Arc<Self>,
        _ctx: ActivityContext,
        request: RoomRequest,
    ) -> Result<RoomId, ActivityError> {
        Ok(media_rooms::open(&self.db, &request, Utc::now()).await?)
    }
}
