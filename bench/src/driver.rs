//! The load: people and sessions driven through the HTTP API on loopback, as the tests'
//! harness drives them, and the session paths whose histories the table counts.

use anyhow::{Context, bail};
use chrono::{DateTime, TimeDelta, Utc};
use livesessions_api::JwtKeys;
use livesessions_domain::{ClientId, ProviderId, Role, SessionId};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use std::time::{Duration, Instant};

/// A client on the standard subscription plan (four credits) and a therapist of their own, so
/// bookings never compete for a slot or a credit.
#[derive(Debug, Clone, Copy)]
pub struct Pair {
    /// The client.
    pub client: ClientId,
    /// The provider.
    pub provider: ProviderId,
}

/// A booked session.
#[derive(Debug, Clone, Copy)]
pub struct Booked {
    /// Its id.
    pub id: SessionId,
    /// Who booked it, with whom.
    pub pair: Pair,
}

/// The API as its callers see it.
#[derive(Clone)]
pub struct Driver {
    base: String,
    http: reqwest::Client,
    keys: JwtKeys,
}

impl Driver {
    /// A driver of the API at `base`, signing tokens with `keys`.
    pub fn new(base: &str, keys: JwtKeys) -> anyhow::Result<Self> {
        let http =
            reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build()?;
        Ok(Self { base: base.into(), http, keys })
    }

    fn token(&self, role: Role, sub: impl ToString) -> String {
        let token = self.keys.mint(&sub.to_string(), role, Duration::from_secs(24 * 3600));
        token.expect("the bench's keys hold a secret")
    }

    /// Sends a request to `path` (under the API's base unless it is a full URL); answers the
    /// status and the JSON body (`Value::Null` when there is none).
    async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<String>,
        body: Option<Value>,
    ) -> anyhow::Result<(StatusCode, Value)> {
        let url =
            if path.starts_with("http") { path.to_string() } else { self.base.clone() + path };
        let mut request = self.http.request(method, url);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await?;
        let status = response.status();
        let text = response.text().await?;
        Ok((status, serde_json::from_str(&text).unwrap_or(Value::Null)))
    }

    /// Like `call`, failing unless the answer has status `want`.
    async fn expect(
        &self,
        want: StatusCode,
        method: Method,
        path: &str,
        token: Option<String>,
        body: Option<Value>,
    ) -> anyhow::Result<Value> {
        let (status, answer) = self.call(method.clone(), path, token, body).await?;
        if status != want {
            bail!("{method} {path}: {status} {answer}");
        }
        Ok(answer)
    }

    /// Registers a new client and a new provider.
    pub async fn pair(&self) -> anyhow::Result<Pair> {
        let pair = Pair { client: ClientId::random(), provider: ProviderId::random() };
        let service = || Some(self.token(Role::Service, "bench"));
        let client = json!({"coverage": "subscription", "plan": "subscription-standard",
                            "time_zone": "America/New_York", "email": "client@example.com",
                            "display_name": "A. Client"});
        let path = format!("/v1/clients/{}", pair.client);
        self.expect(StatusCode::CREATED, Method::PUT, &path, service(), Some(client)).await?;
        let provider = json!({"specialty": "therapist", "time_zone": "Europe/London",
                              "email": "provider@example.com", "display_name": "Dr. Provider"});
        let path = format!("/v1/providers/{}", pair.provider);
        self.expect(StatusCode::CREATED, Method::PUT, &path, service(), Some(provider)).await?;
        Ok(pair)
    }

    /// `n` pairs, registered `concurrency` at a time.
    pub async fn pairs(&self, n: usize, concurrency: usize) -> anyhow::Result<Vec<Pair>> {
        use futures::{StreamExt, TryStreamExt};
        futures::stream::iter(0..n)
            .map(|_| self.pair())
            .buffer_unordered(concurrency)
            .try_collect()
            .await
    }

    /// Books a 30-minute therapy video session for the pair; answers the session, or the
    /// refusal as an error.
    pub async fn book(&self, pair: Pair, starts_at: DateTime<Utc>) -> anyhow::Result<Booked> {
        let body = json!({"client_id": pair.client, "provider_id": pair.provider,
                          "service": "therapy", "modality": "video", "duration_minutes": 30,
                          "starts_at": starts_at, "time_zone": "America/New_York",
                          "accept_cancellation_policy": true});
        let token = Some(self.token(Role::Client, pair.client));
        let answer = self
            .expect(StatusCode::CREATED, Method::POST, "/v1/sessions", token, Some(body))
            .await?;
        let id = serde_json::from_value(answer["id"].clone()).context("a session id")?;
        Ok(Booked { id, pair })
    }

    /// Books as `book` does, then confirms as the provider.
    pub async fn book_confirmed(
        &self,
        pair: Pair,
        starts_at: DateTime<Utc>,
    ) -> anyhow::Result<Booked> {
        let session = self.book(pair, starts_at).await?;
        let path = format!("/v1/sessions/{}/confirm", session.id);
        let token = Some(self.token(Role::Provider, pair.provider));
        self.expect(StatusCode::OK, Method::POST, &path, token, Some(json!({}))).await?;
        Ok(session)
    }

    /// Joins as `role` through the person's join link; answers the media room page it leads to.
    pub async fn join(&self, session: &Booked, role: Role) -> anyhow::Result<String> {
        let token = match role {
            Role::Client => self.token(role, session.pair.client),
            _ => self.token(role, session.pair.provider),
        };
        let path = format!("/v1/sessions/{}/join", session.id);
        let link = self.expect(StatusCode::OK, Method::GET, &path, Some(token), None).await?;
        let response = self.http.get(link["url"].as_str().context("a join url")?).send().await?;
        if response.status() != StatusCode::SEE_OTHER {
            bail!("the join link answers {}", response.status());
        }
        Ok(response.headers()["location"].to_str()?.to_string())
    }

    /// Ends the media room behind a room page, as the built-in media service's button does.
    pub async fn end_room(&self, room_page: &str) -> anyhow::Result<()> {
        let (path, query) = room_page.split_once('?').context("a token in the room page")?;
        self.expect(StatusCode::OK, Method::POST, &format!("{path}/end?{query}"), None, None)
            .await?;
        Ok(())
    }

    /// Cancels as the client.
    pub async fn cancel(&self, session: &Booked) -> anyhow::Result<()> {
        let path = format!("/v1/sessions/{}/cancel", session.id);
        let token = Some(self.token(Role::Client, session.pair.client));
        self.expect(StatusCode::OK, Method::POST, &path, token, Some(json!({}))).await?;
        Ok(())
    }

    /// Polls the read model every 100 ms until the session is in `state` (60 s at most).
    pub async fn wait_for_state(&self, session: &Booked, state: &str) -> anyhow::Result<()> {
        let path = format!("/v1/sessions/{}", session.id);
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let token = Some(self.token(Role::Service, "bench"));
            let answer = self.expect(StatusCode::OK, Method::GET, &path, token, None).await?;
            if answer["state"] == state {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!("session {} never reached {state}: {answer}", session.id);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The main path: book an hour ahead, confirm, both join, the room ends.
    pub async fn main_path(&self, pair: Pair) -> anyhow::Result<Booked> {
        let session = self.book_confirmed(pair, in_minutes(60)).await?;
        let room = self.join(&session, Role::Client).await?;
        self.join(&session, Role::Provider).await?;
        self.wait_for_state(&session, "in_progress").await?;
        self.end_room(&room).await?;
        Ok(session)
    }

    /// Late cancel: book half an hour ahead (inside the late window), confirm, the client cancels.
    pub async fn late_cancel(&self, pair: Pair) -> anyhow::Result<Booked> {
        let session = self.book_confirmed(pair, in_minutes(30)).await?;
        self.cancel(&session).await?;
        Ok(session)
    }

    /// A no-show: the session starts in three seconds and only `present` joins; the grace of
    /// two seconds (and, for an absent provider, the offer of one second) then runs out.
    pub async fn no_show(&self, pair: Pair, present: Role) -> anyhow::Result<Booked> {
        let session = self.book_confirmed(pair, Utc::now() + TimeDelta::seconds(3)).await?;
        self.join(&session, present).await?;
        Ok(session)
    }
}

/// `minutes` from now.
pub fn in_minutes(minutes: i64) -> DateTime<Utc> {
    Utc::now() + TimeDelta::minutes(minutes)
}
