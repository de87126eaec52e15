//! Notification: what the client's room says about a session. The text is written here, at
//! send time, in the client's zone; the workflow only says which notice.

use crate::storage::{Db, room_messages};
use chrono::Utc;
use livesessions_workflows::activities::{Notice, PostRoomMessage, RoomNotice};
use std::sync::Arc;
use temporalio_sdk::activities::{ActivityContext, ActivityError, activities};

/// The notification activities, over the database.
pub struct Notification {
    db: Db,
}

impl Notification {
    /// Notification activities that post to the rooms in `db`.
    pub fn new(db: Db) -> Self {
        Self { db }
    }
}

#[activities]
impl Notification {
    /// See [`PostRoomMessage`].
    #[activity(definition = PostRoomMessage)]
    pub async fn post_room_message(
        self: Arc<Self>,
        _ctx: ActivityContext,
        notice: RoomNotice,
    ) -> Result<(), ActivityError> {
        let (kind, body) = render(&notice);
        let message = room_messages::NewRoomMessage {
            key: &notice.key,
            client_id: notice.client_id,
            session_id: Some(notice.session_id),
            kind,
            body: &body,
        };
        room_messages::post(&self.db, &message, Utc::now()).await?;
        Ok(())
    }
}

/// The kind and text of a notice, with the start in the client's zone.
pub fn render(notice: &RoomNotice) -> (&'static str, String) {
    let when = notice
        .starts_at
        .with_timezone(&notice.time_zone.tz())
        .format("%A %-d %B %Y at %H:%M %Z");
    match notice.notice {
        Notice::Confirmed => (
            "session_confirmed",
            format!(
                "Your live session on {when} is confirmed. A reminder with the link to join will follow."
            ),
        ),
        Notice::Declined => (
            "session_declined",
            format!(
                "Your provider cannot take the session on {when}. Your credit is back: please pick another time."
            ),
        ),
        Notice::Expired => (
            "session_expired",
            format!(
                "Your provider did not confirm the session on {when} in time. Your credit is back: please pick another time."
            ),
        ),
        Notice::ClientNoShow => (
            "client_no_show",
            format!(
                "You did not join the session on {when}. Under the cancellation policy the session credit is used."
            ),
        ),
        Notice::ProviderNoShow => (
            "provider_no_show",
            format!(
                "Your provider could not join the session on {when}. You keep your credit: reschedule with it at any time."
            ),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use livesessions_domain::{ClientId, SessionId, TimeZoneName};

    #[test]
    fn shows_the_start_in_the_clients_zone() {
        let notice = RoomNotice {
            key: "k".into(),
            client_id: ClientId::random(),
            session_id: SessionId::random(),
            starts_at: "2026-07-01T14:00:00Z".parse().unwrap(),
            time_zone: TimeZoneName::parse("America/New_York").unwrap(),
            notice: Notice::Expired,
        };
        let (kind, body) = render(&notice);
        assert_eq!(kind, "session_expired");
        assert!(
            body.contains("Wednesday 1 July 2026 at 10:00 EDT"),
            "{body}"
        );
    }
}
