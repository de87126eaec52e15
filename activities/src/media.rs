//! Media: the video, audio and chat rooms, behind the [`MediaService`] trait. The built-in
//! service (the development default) is this service's own room page; the hosted adapter asks a
//! hosted provider for a room over HTTP. Either way each person gets one unguessable join token,
//! valid inside the join window, and the provider reports joins and the room's end as signed
//! events (`POST /v1/media/events`).

use crate::storage::Db;
use crate::storage::media_rooms::{self, MediaUrls};
use chrono::Utc;
use livesessions_domain::RoomId;
use livesessions_workflows::activities::{OpenRoom, RoomRequest};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::time::Duration;
use temporalio_sdk::activities::{ActivityContext, ActivityError, activities};

/// Which media service rooms come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MediaServiceName {
    /// This service's own room page.
    BuiltIn,
    /// A hosted provider, over HTTP.
    Hosted,
}

/// The `media.hosted.*` keys.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HostedSettings {
    /// The provider's API base, e.g. `https://media.example.com/v1`.
    pub base_url: String,
    /// Its API key (sent as a bearer token).
    pub api_key: Option<String>,
}

/// The `media.*` keys.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MediaSettings {
    /// Built-in (default) or hosted.
    pub service: MediaServiceName,
    /// The hosted provider, for `service = "hosted"`.
    pub hosted: HostedSettings,
    /// The secret media events are signed with; without it `POST /v1/media/events` refuses all.
    pub webhook_secret: Option<String>,
    /// How far an event's timestamp may be from now (older ones are replays).
    #[serde(with = "livesessions_domain::duration::text")]
    pub webhook_tolerance: Duration,
}

impl Default for MediaSettings {
    fn default() -> Self {
        Self {
            service: MediaServiceName::BuiltIn,
            hosted: HostedSettings::default(),
            webhook_secret: None,
            webhook_tolerance: Duration::from_secs(300),
        }
    }
}

impl MediaSettings {
    /// The configured service.
    pub fn service(&self, db: &Db) -> anyhow::Result<Arc<dyn MediaService>> {
        Ok(match self.service {
            MediaServiceName::BuiltIn => Arc::new(BuiltInMedia { db: db.clone() }),
            MediaServiceName::Hosted => {
                crate::install_crypto_provider();
                let http = reqwest::Client::builder().timeout(Duration::from_secs(10)).build()?;
                Arc::new(HostedMedia { db: db.clone(), http, settings: self.hosted.clone() })
            }
        })
    }
}

/// A media service.
#[async_trait::async_trait]
pub trait MediaService: Send + Sync {
    /// Creates the session's room with a join token per person, or moves its join window;
    /// answers the room. Idempotent.
    async fn open_room(&self, request: &RoomRequest) -> anyhow::Result<RoomId>;
}

/// The session's room: the one it has, or the one derived from it (so a retry after a failure
/// half-way asks for the same room again).
async fn room_for(db: &Db, request: &RoomRequest) -> anyhow::Result<RoomId> {
    let kept = media_rooms::room_of(db, request.session_id).await?;
    Ok(kept.unwrap_or_else(|| RoomId::of_session(request.session_id)))
}

/// The built-in service: rooms live in this service's database and its own room page.
pub struct BuiltInMedia {
    db: Db,
}

#[async_trait::async_trait]
impl MediaService for BuiltInMedia {
    async fn open_room(&self, request: &RoomRequest) -> anyhow::Result<RoomId> {
        let room = room_for(&self.db, request).await?;
        Ok(media_rooms::open(&self.db, request, room, None, Utc::now()).await?)
    }
}

/// What the hosted adapter sends: `PUT <base_url>/rooms/<room_id>`.
#[derive(Debug, Clone, Serialize)]
struct HostedRoom<'a> {
    opens_at: chrono::DateTime<Utc>,
    closes_at: chrono::DateTime<Utc>,
    participants: [&'a str; 2],
}

/// What the hosted provider answers: a URL per participant.
#[derive(Debug, Clone, Deserialize)]
struct HostedJoinUrls {
    client: String,
    provider: String,
}

/// The hosted provider's answer.
#[derive(Debug, Clone, Deserialize)]
struct HostedRoomAnswer {
    join_urls: HostedJoinUrls,
}

/// The hosted adapter: the room is created (or moved) at the provider under this service's room
/// id, and each person's join link sends them to the provider's URL for them.
pub struct HostedMedia {
    db: Db,
    http: reqwest::Client,
    settings: HostedSettings,
}

#[async_trait::async_trait]
impl MediaService for HostedMedia {
    async fn open_room(&self, request: &RoomRequest) -> anyhow::Result<RoomId> {
        let room = room_for(&self.db, request).await?;
        let url = format!("{}/rooms/{room}", self.settings.base_url.trim_end_matches('/'));
        let body = HostedRoom {
            opens_at: request.opens_at,
            closes_at: request.closes_at,
            participants: ["client", "provider"],
        };
        let mut call = self.http.put(&url).json(&body);
        if let Some(key) = &self.settings.api_key {
            call = call.bearer_auth(key);
        }
        let response = call.send().await?;
        if !response.status().is_success() {
            anyhow::bail!("the hosted media service answered {} for {url}", response.status());
        }
        let answer: HostedRoomAnswer = response.json().await?;
        let urls =
            MediaUrls { client: answer.join_urls.client, provider: answer.join_urls.provider };
        Ok(media_rooms::open(&self.db, request, room, Some(&urls), Utc::now()).await?)
    }
}

/// The media activities, over a media service.
pub struct Media {
    service: Arc<dyn MediaService>,
}

impl Media {
    /// Media activities opening rooms at `service`.
    pub fn new(service: Arc<dyn MediaService>) -> Self {
        Self { service }
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
        Ok(self.service.open_room(&request).await?)
    }
}
