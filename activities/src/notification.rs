//! Notification: what the client's room says about a session, the emails (with calendar
//! invites) that reach each person, and the webhook events for backend services. Words come from
//! the templates, written at send time in each person's zone, with names, addresses and join
//! links looked up now; the workflow only says which notice.

use crate::calendar;
use crate::email::{Context, EmailSettings, Mailer, Outgoing};
use crate::storage::{
    Db, clients, email_deliveries, media_rooms, providers, room_messages, sessions,
};
use crate::webhooks::{WebhookSettings, Webhooks};
use chrono::{DateTime, TimeDelta, Utc};
use chrono_tz::Tz;
use livesessions_domain::{Email, Party, SessionId, SessionSnapshot};
use livesessions_workflows::activities::{
    AvailabilityRequestEmail, DeliveryInput, EmailNotice, FeeEmail, FeeNotice, InviteMethod,
    Notice, PostRoomMessage, RoomNotice,
};
use sha2::{Digest, Sha256};
use std::sync::Arc;
use temporalio_sdk::activities::{ActivityContext, ActivityError, activities};

/// The notification activities.
pub struct Notification {
    db: Db,
    public_url: String,
    app_url: String,
    mailer: Mailer,
    webhooks: Webhooks,
}

/// A time as people read it: `Wednesday 1 July 2026 at 10:00 EDT`.
pub fn local(at: DateTime<Utc>, zone: Tz) -> String {
    at.with_timezone(&zone).format("%A %-d %B %Y at %H:%M %Z").to_string()
}

/// Who reads a notice's words.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Reader {
    /// The client's room, which the client's providers and backend services read too.
    Room,
    /// One person's own email.
    Email(Party),
}

/// The stable kind of a room message.
pub fn room_kind(notice: &Notice) -> &'static str {
    match notice {
        Notice::Requested => "session_requested",
        Notice::Confirmed => "session_confirmed",
        Notice::Declined => "session_declined",
        Notice::Expired => "session_expired",
        Notice::Reminder => "session_reminder",
        Notice::Rescheduled => "session_rescheduled",
        Notice::Cancelled => "session_cancelled",
        Notice::LateCancelled { .. } => "session_late_cancelled",
        Notice::LateCancelledFeeWaived { .. } => "session_late_cancelled_fee_waived",
        Notice::ClientNoShow { .. } => "client_no_show",
        Notice::ProviderNoShow => "provider_no_show",
        Notice::ProviderUnavailable => "provider_unavailable",
        Notice::RescheduleOfferLapsed => "reschedule_offer_lapsed",
        Notice::AuthorizationPrompt { .. } => "book_a_session",
        Notice::MessagingSessionStarted => "messaging_session_started",
    }
}

impl Notification {
    /// Notifications over `db`, with links under `public_url`, email as `email` says and
    /// webhooks as `webhooks` say.
    pub fn new(
        db: Db,
        public_url: &str,
        email: &EmailSettings,
        webhooks: &WebhookSettings,
    ) -> anyhow::Result<Self> {
        let public_url = public_url.trim_end_matches('/').to_string();
        let app_url = email
            .app_url
            .as_deref()
            .map(|u| u.trim_end_matches('/').to_string())
            .unwrap_or_else(|| public_url.clone());
        Ok(Self {
            db,
            public_url,
            app_url,
            mailer: Mailer::new(email)?,
            webhooks: Webhooks::new(webhooks)?,
        })
    }

    /// Where a reminder sends `reader`: one person's email carries their own join link (once the
    /// session has a room); the room, which others read too, never carries a join token, only
    /// the API's `GET /v1/sessions/{id}/join`, which answers each caller their own link.
    async fn join_link(
        &self,
        session: SessionId,
        reader: Reader,
    ) -> anyhow::Result<Option<String>> {
        match reader {
            Reader::Room => Ok(Some(format!("{}/v1/sessions/{session}/join", self.public_url))),
            Reader::Email(party) => {
                let token = media_rooms::token_of(&self.db, session, party).await?;
                Ok(token.map(|t| format!("{}/join/{}", self.public_url, t.token)))
            }
        }
    }

    /// The words' context for `reader`, in `zone`.
    async fn context(
        &self,
        notice: &Notice,
        session: SessionId,
        reader: Reader,
        zone: Tz,
        times: (DateTime<Utc>, DateTime<Utc>),
    ) -> anyhow::Result<Context> {
        let (starts_at, confirm_by) = times;
        let mut context = Context {
            when: local(starts_at, zone),
            confirm_by: local(confirm_by, zone),
            ..Context::default()
        };
        match notice {
            Notice::Reminder => context.join_link = self.join_link(session, reader).await?,
            Notice::ProviderNoShow | Notice::ProviderUnavailable => {
                context.reschedule_link =
                    Some(format!("{}/sessions/{session}/reschedule", self.app_url))
            }
            Notice::LateCancelled { fee }
            | Notice::LateCancelledFeeWaived { fee }
            | Notice::ClientNoShow { fee } => context.fee = Some(fee.to_string()),
            Notice::AuthorizationPrompt { estimate, authorize_by } => {
                context.estimate = Some(estimate.to_string());
                context.authorize_by = Some(local(*authorize_by, zone));
            }
            _ => {}
        }
        Ok(context)
    }

    /// Emails one recipient, unless they already got this key's email.
    async fn email_one(&self, email: &EmailNotice, party: Party) -> anyhow::Result<()> {
        if email_deliveries::was_sent(&self.db, &email.key, party).await? {
            return Ok(());
        }
        let (name, address, zone) = match party {
            Party::Client => {
                let client = clients::get(&self.db, email.client_id)
                    .await?
                    .ok_or_else(|| anyhow::anyhow!("client {} is gone", email.client_id))?;
                (client.display_name, client.email, email.time_zone.tz())
            }
            Party::Provider => {
                let provider = providers::get(&self.db, email.provider_id)
                    .await?
                    .ok_or_else(|| anyhow::anyhow!("provider {} is gone", email.provider_id))?;
                (provider.display_name, provider.email, provider.time_zone.tz())
            }
        };
        let mut context = self
            .context(
                &email.notice,
                email.session_id,
                Reader::Email(party),
                zone,
                (email.starts_at, email.confirm_by),
            )
            .await?;
        context.name = name.clone();
        context.duration = email.duration_minutes;
        context.modality = email.modality.to_string();
        let rendered = self
            .mailer
            .templates
            .email(email.notice.template(), &serde_json::to_value(&context)?)?;
        let organizer = self.mailer.from_address();
        let summary = format!("Live {} session", email.modality);
        let invite = email.invite.map(|invite| {
            let event = calendar::Event {
                session_id: email.session_id,
                starts_at: email.starts_at,
                ends_at: email.starts_at + TimeDelta::minutes(i64::from(email.duration_minutes)),
                zone,
                summary: &summary,
                organizer: &organizer,
                attendee: (&name, address.as_str()),
                stamped_at: Utc::now(),
            };
            let method = match invite.method {
                InviteMethod::Request => "REQUEST",
                InviteMethod::Cancel => "CANCEL",
            };
            (calendar::invite(&invite, &event), method)
        });
        self.send_once(&email.key, party, (name, address), rendered, invite).await
    }

    /// Sends one rendered email and records it as sent for `key` and `party`.
    async fn send_once(
        &self,
        key: &str,
        party: Party,
        to: (String, Email),
        (subject, text, html): (String, String, String),
        invite: Option<(String, &'static str)>,
    ) -> anyhow::Result<()> {
        let digest = hex::encode(Sha256::digest(format!("{key}:{party}")));
        let message_id = format!("<{}@livesessions>", &digest[..32]);
        let outgoing = Outgoing { message_id: message_id.clone(), to, subject, text, html, invite };
        self.mailer.send(&outgoing).await?;
        email_deliveries::record_sent(&self.db, key, party, &message_id, Utc::now()).await?;
        Ok(())
    }

    /// Emails the provider the windows a client shared, unless they already got it.
    async fn email_availability_request(
        &self,
        email: &AvailabilityRequestEmail,
    ) -> anyhow::Result<()> {
        if email_deliveries::was_sent(&self.db, &email.key, Party::Provider).await? {
            return Ok(());
        }
        let provider = providers::get(&self.db, email.provider_id)
            .await?
            .ok_or_else(|| anyhow::anyhow!("provider {} is gone", email.provider_id))?;
        let client = clients::get(&self.db, email.client_id)
            .await?
            .ok_or_else(|| anyhow::anyhow!("client {} is gone", email.client_id))?;
        let zone = provider.time_zone.tz();
        let context = Context {
            name: provider.display_name.clone(),
            client_name: Some(client.display_name),
            windows: email
                .windows
                .iter()
                .map(|w| format!("{} until {}", local(w.starts_at, zone), local(w.ends_at, zone)))
                .collect(),
            ..Context::default()
        };
        let rendered = self
            .mailer
            .templates
            .email("availability_request", &serde_json::to_value(&context)?)?;
        let to = (provider.display_name, provider.email);
        self.send_once(&email.key, Party::Provider, to, rendered, None).await
    }

    /// Emails a client about a fee they owe, unless they already got this key's email.
    async fn email_fee(&self, email: &FeeEmail) -> anyhow::Result<()> {
        if email_deliveries::was_sent(&self.db, &email.key, Party::Client).await? {
            return Ok(());
        }
        let client = clients::get(&self.db, email.client_id)
            .await?
            .ok_or_else(|| anyhow::anyhow!("client {} is gone", email.client_id))?;
        let (template, next_attempt) = match email.notice {
            FeeNotice::Outstanding { next_attempt_at } => {
                ("fee_outstanding", next_attempt_at.map(|at| local(at, client.time_zone.tz())))
            }
            FeeNotice::WrittenOff => ("fee_written_off", None),
        };
        let context = Context {
            name: client.display_name.clone(),
            fee: Some(email.amount.to_string()),
            next_attempt,
            ..Context::default()
        };
        let rendered = self.mailer.templates.email(template, &serde_json::to_value(&context)?)?;
        let to = (client.display_name, client.email);
        self.send_once(&email.key, Party::Client, to, rendered, None).await
    }
}

#[activities]
impl Notification {
    /// See [`PostRoomMessage`] (a messaging session's notices; a live session's come with the
    /// record of its state).
    #[activity(definition = PostRoomMessage)]
    pub async fn post_room_message(
        self: Arc<Self>,
        _ctx: ActivityContext,
        notice: RoomNotice,
    ) -> Result<(), ActivityError> {
        let session = sessions::get(&self.db, notice.session_id).await?;
        let body = self.room_words(&notice, session.as_ref()).await?;
        room_messages::post(&self.db, &room_message(&notice, &body), Utc::now()).await?;
        Ok(())
    }
}

/// The room message of `notice`, with its words.
pub fn room_message<'a>(
    notice: &'a RoomNotice,
    body: &'a str,
) -> room_messages::NewRoomMessage<'a> {
    room_messages::NewRoomMessage {
        key: &notice.key,
        client_id: notice.client_id,
        session_id: Some(notice.session_id),
        kind: room_kind(&notice.notice),
        body,
    }
}

impl Notification {
    /// The words a client's room shows for `notice`; a live `session` gives its length and
    /// modality, as its emails say them (a messaging session's words use neither).
    pub async fn room_words(
        &self,
        notice: &RoomNotice,
        session: Option<&SessionSnapshot>,
    ) -> anyhow::Result<String> {
        let times = (notice.starts_at, notice.starts_at);
        let zone = notice.time_zone.tz();
        let mut context =
            self.context(&notice.notice, notice.session_id, Reader::Room, zone, times).await?;
        if let Some(session) = session {
            context.duration = session.duration_minutes;
            context.modality = session.modality.to_string();
        }
        let words = self
            .mailer
            .templates
            .words(notice.notice.template(), &serde_json::to_value(&context)?)?;
        Ok(words.body)
    }
}

impl Notification {
    /// Delivers one email or webhook event from the outbox; fails while the mail server or a
    /// webhook receiver does not accept it (an email goes to each recipient once per key).
    pub async fn deliver(&self, delivery: &DeliveryInput) -> anyhow::Result<()> {
        match delivery {
            DeliveryInput::Email(email) => {
                for party in email.notice.recipients() {
                    self.email_one(email, *party).await?;
                }
                Ok(())
            }
            DeliveryInput::Webhook(event) => self.webhooks.deliver(event).await,
            DeliveryInput::AvailabilityRequest(email) => {
                self.email_availability_request(email).await
            }
            DeliveryInput::Fee(email) => self.email_fee(email).await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::email::Templates;

    #[test]
    fn every_notice_has_words_and_a_subject() {
        let templates = Templates::load(None).unwrap();
        let context = serde_json::to_value(Context {
            name: "A".into(),
            when: "Monday".into(),
            join_link: Some("https://x/join/t".into()),
            ..Context::default()
        })
        .unwrap();
        for name in [
            "requested",
            "confirmed",
            "declined",
            "expired",
            "reminder",
            "rescheduled",
            "cancelled",
            "late_cancelled",
            "late_cancelled_fee_waived",
            "client_no_show",
            "provider_no_show",
            "provider_unavailable",
            "reschedule_offer_lapsed",
            "authorization_prompt",
            "messaging_session_started",
            "availability_request",
            "fee_outstanding",
            "fee_written_off",
        ] {
            let (subject, text, html) =
                templates.email(name, &context).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert!(
                !subject.is_empty() && text.starts_with("Hello A,") && html.contains("<p>"),
                "{name}"
            );
        }
        let (_, text, html) = templates.email("reminder", &context).unwrap();
        assert!(
            text.contains("Join here: https://x/join/t")
                && html.contains(r#"href="https://x/join/t""#),
            "{html}"
        );
    }
}
