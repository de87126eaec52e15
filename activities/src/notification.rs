//! Notification: what the client's room says about a session. The text is written here, at
//! send time, in the client's zone, with the join link looked up now; the workflow only says
//! which notice.

use crate::storage::{Db, StorageError, media_rooms, room_messages};
use chrono::Utc;
use livesessions_domain::Party;
use livesessions_workflows::activities::{Notice, PostRoomMessage, RoomNotice};
use std::sync::Arc;
use temporalio_sdk::activities::{ActivityContext, ActivityError, activities};

/// The notification activities, over the database.
pub struct Notification {
    db: Db,
    public_url: String,
}

impl Notification {
    /// Notification activities that post to the rooms in `db`, with join links under
    /// `public_url` (the API's address as people reach it).
    pub fn new(db: Db, public_url: impl Into<String>) -> Self {
        Self { db, public_url: public_url.into() }
    }

    /// The client's join link for the session, once its room exists.
    async fn join_link(&self, notice: &RoomNotice) -> Result<Option<String>, StorageError> {
        let token = media_rooms::token_of(&self.db, notice.session_id, Party::Client).await?;
        Ok(token.map(|t| format!("{}/join/{}", self.public_url.trim_end_matches('/'), t.token)))
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
        let link = match notice.notice {
            Notice::Reminder => self.join_link(&notice).await?,
            _ => None,
        };
        let (kind, body) = render(&notice, link.as_deref());
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

/// The kind and text of a notice, with times in the client's zone.
pub fn render(notice: &RoomNotice, join_link: Option<&str>) -> (&'static str, String) {
    let local = |at: chrono::DateTime<Utc>| {
        at.with_timezone(&notice.time_zone.tz()).format("%A %-d %B %Y at %H:%M %Z").to_string()
    };
    let when = local(notice.starts_at);
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
        Notice::Reminder => (
            "session_reminder",
            match join_link {
                Some(link) => {
                    format!("Reminder: your live session starts {when}. Join here: {link}")
                }
                None => format!("Reminder: your live session starts {when}."),
            },
        ),
        Notice::Rescheduled => (
            "session_rescheduled",
            format!("Your session is moved to {when}. Your provider will confirm the new time."),
        ),
        Notice::Cancelled => (
            "session_cancelled",
            format!("The session on {when} is cancelled. Your credit is back."),
        ),
        Notice::LateCancelled { fee } => (
            "session_late_cancelled",
            format!(
                "The session on {when} was cancelled less than the policy's notice before its start: the credit is used and {fee} is charged."
            ),
        ),
        Notice::ClientNoShow { fee } => (
            "client_no_show",
            format!(
                "You did not join the session on {when}. Under the cancellation policy the credit is used and {fee} is charged."
            ),
        ),
        Notice::ProviderNoShow => (
            "provider_no_show",
            format!(
                "Your provider could not join the session on {when}. You keep your credit: reschedule with it, or cancel at no cost."
            ),
        ),
        Notice::ProviderUnavailable => (
            "provider_unavailable",
            format!(
                "Your provider is unable to attend the session on {when}. You keep your credit: reschedule with it, or cancel at no cost."
            ),
        ),
        Notice::RescheduleOfferLapsed => (
            "reschedule_offer_lapsed",
            format!(
                "The session on {when} was not rescheduled. Your credit is back for your next booking."
            ),
        ),
        Notice::AuthorizationPrompt { estimate, authorize_by } => (
            "book_a_session",
            format!(
                "Book a session: the estimated charge for your next session is {estimate}. Authorize it by {} to book.",
                local(authorize_by)
            ),
        ),
        Notice::MessagingSessionStarted => (
            "messaging_session_started",
            "Messaging Session in Progress. It cannot be cancelled or switched to a live session."
                .to_string(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use livesessions_domain::{ClientId, SessionId, TimeZoneName};

    fn notice(notice: Notice) -> RoomNotice {
        RoomNotice {
            key: "k".into(),
            client_id: ClientId::random(),
            session_id: SessionId::random(),
            starts_at: "2026-07-01T14:00:00Z".parse().unwrap(),
            time_zone: TimeZoneName::parse("America/New_York").unwrap(),
            notice,
        }
    }

    #[test]
    fn shows_the_start_in_the_clients_zone() {
        let (kind, body) = render(&notice(Notice::Expired), None);
        assert_eq!(kind, "session_expired");
        assert!(body.contains("Wednesday 1 July 2026 at 10:00 EDT"), "{body}");
    }

    #[test]
    fn a_reminder_carries_the_join_link() {
        let (kind, body) = render(&notice(Notice::Reminder), Some("https://x/join/abc"));
        assert_eq!(kind, "session_reminder");
        assert!(body.ends_with("Join here: https://x/join/abc"), "{body}");
    }
}
