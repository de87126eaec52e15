//! The API as its callers see it: people and sessions driven over HTTP on loopback. A plain
//! driver sends each request once; a careful one ([`Driver::careful`]) behaves as a careful
//! backend does while processes crash under it: every `POST` carries an `Idempotency-Key`, and a
//! request that got no answer, a `5xx`, a `202` (whose `Location` it follows first) or
//! `409 idempotent_request_in_progress` is sent again, with the same key, until it gets a final
//! answer or its patience runs out.

use anyhow::{Context, bail};
use chrono::{DateTime, TimeDelta, Utc};
use livesessions_api::JwtKeys;
use livesessions_domain::{ClientId, ProviderId, Role, SessionId};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A client and a therapist of their own, so their bookings never compete for a slot or a
/// credit.
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

/// One answer of the API.
#[derive(Debug, Clone)]
pub struct Answer {
    /// Its status.
    pub status: StatusCode,
    /// Its JSON body (`Value::Null` when there is none).
    pub body: Value,
    /// Its `Location` header, if any.
    pub location: Option<String>,
}

impl Answer {
    /// The error code of an error answer (`""` for any other).
    pub fn code(&self) -> &str {
        self.body["error"]["code"].as_str().unwrap_or_default()
    }
}

/// A final answer other than the one a step wanted (its error code is
/// `error.answer.code()`).
#[derive(Debug)]
pub struct Unexpected {
    /// What was asked.
    pub what: String,
    /// What the API answered.
    pub answer: Answer,
}

impl std::fmt::Display for Unexpected {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {} {}", self.what, self.answer.status, self.answer.body)
    }
}

impl std::error::Error for Unexpected {}

/// The API of one running system.
#[derive(Clone)]
pub struct Driver {
    base: String,
    http: reqwest::Client,
    keys: JwtKeys,
    /// How long a careful driver keeps sending a request; `None` sends it once.
    patience: Option<Duration>,
    /// Why requests were sent again, and how often.
    retries: Arc<Mutex<BTreeMap<String, usize>>>,
}

impl Driver {
    /// A driver of the API at `base`, signing tokens with `keys`, that sends each request once.
    pub fn new(base: &str, keys: JwtKeys) -> anyhow::Result<Self> {
        let http =
            reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build()?;
        let retries = Arc::default();
        Ok(Self { base: base.into(), http, keys, patience: None, retries })
    }

    /// A careful driver (see the module's doc) that gives a request up after `patience`.
    pub fn careful(base: &str, keys: JwtKeys, patience: Duration) -> anyhow::Result<Self> {
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(30))
            .build()?;
        let retries = Arc::default();
        Ok(Self { base: base.into(), http, keys, patience: Some(patience), retries })
    }

    /// A bearer token for `sub` in `role`.
    pub fn token(&self, role: Role, sub: impl ToString) -> String {
        let token = self.keys.mint(&sub.to_string(), role, Duration::from_secs(24 * 3600));
        token.expect("the run's keys hold a secret")
    }

    /// Why requests were sent again (`no answer`, a status, or an error code), and how often.
    pub fn retries(&self) -> BTreeMap<String, usize> {
        self.retries.lock().expect("not poisoned").clone()
    }

    fn url(&self, path: &str) -> String {
        if path.starts_with("http") { path.to_string() } else { self.base.clone() + path }
    }

    async fn send_once(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<&Value>,
        key: Option<&str>,
    ) -> anyhow::Result<Answer> {
        let mut request = self.http.request(method, self.url(path));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(key) = key {
            request = request.header("Idempotency-Key", key);
        }
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request.send().await?;
        let status = response.status();
        let location =
            response.headers().get("location").and_then(|l| l.to_str().ok()).map(str::to_string);
        let text = response.text().await?;
        Ok(Answer { status, body: serde_json::from_str(&text).unwrap_or(Value::Null), location })
    }

    /// Sends a request to `path` (under the API's base unless it is a full URL) and answers
    /// the answer; a careful driver sends it again as the module's doc says.
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<String>,
        body: Option<Value>,
    ) -> anyhow::Result<Answer> {
        let Some(patience) = self.patience else {
            return self.send_once(method, path, token.as_deref(), body.as_ref(), None).await;
        };
        let key = (method == Method::POST).then(|| uuid::Uuid::new_v4().to_string());
        let started = Instant::now();
        let mut pause = Duration::from_millis(200);
        loop {
            let attempt = self
                .send_once(method.clone(), path, token.as_deref(), body.as_ref(), key.as_deref())
                .await;
            let cause = match &attempt {
                Err(_) => "no answer".to_string(),
                Ok(answer) if answer.status.is_server_error() => answer.status.to_string(),
                Ok(answer) if answer.status == StatusCode::ACCEPTED => answer.status.to_string(),
                Ok(answer) if answer.code() == "idempotent_request_in_progress" => {
                    format!("{} {}", answer.status, answer.code())
                }
                Ok(_) => return attempt,
            };
            *self.retries.lock().expect("not poisoned").entry(cause).or_default() += 1;
            if started.elapsed() > patience {
                return attempt
                    .with_context(|| format!("{method} {path}: no answer in {patience:?}"));
            }
            if let Ok(Answer { location: Some(location), .. }) = &attempt {
                // A 202: look where it points, as a careful backend does before asking again.
                let _ = self.send_once(Method::GET, location, token.as_deref(), None, None).await;
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_secs(2));
        }
    }

    /// Like `call`, failing unless the answer has status `want`.
    pub async fn expect(
        &self,
        want: StatusCode,
        method: Method,
        path: &str,
        token: Option<String>,
        body: Option<Value>,
    ) -> anyhow::Result<Value> {
        let answer = self.call(method.clone(), path, token, body).await?;
        if answer.status != want {
            return Err(Unexpected { what: format!("{method} {path}"), answer }.into());
        }
        Ok(answer.body)
    }

    /// Registers a new client on the standard subscription plan (four credits) and a new
    /// therapist.
    pub async fn pair(&self) -> anyhow::Result<Pair> {
        self.pair_on("subscription", "subscription-standard").await
    }

    /// Registers a new client with `coverage` on `plan`, and a new therapist.
    pub async fn pair_on(&self, coverage: &str, plan: &str) -> anyhow::Result<Pair> {
        let pair = Pair { client: ClientId::random(), provider: ProviderId::random() };
        let client = json!({"coverage": coverage, "plan": plan,
                            "time_zone": "America/New_York", "email": "client@example.com",
                            "display_name": "A. Client"});
        self.put_person(&format!("/v1/clients/{}", pair.client), client).await?;
        let provider = json!({"specialty": "therapist", "time_zone": "Europe/London",
                              "email": "provider@example.com", "display_name": "Dr. Provider"});
        self.put_person(&format!("/v1/providers/{}", pair.provider), provider).await?;
        Ok(pair)
    }

    /// `PUT`s a person as a service: `201` the first time, `200` when a retry finds them.
    async fn put_person(&self, path: &str, body: Value) -> anyhow::Result<()> {
        let token = Some(self.token(Role::Service, "driver"));
        let answer = self.call(Method::PUT, path, token, Some(body)).await?;
        if !matches!(answer.status, StatusCode::CREATED | StatusCode::OK) {
            return Err(Unexpected { what: format!("PUT {path}"), answer }.into());
        }
        Ok(())
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

    /// Asks for a change to the session (`confirm`, `cancel`, `reschedule`, …) as `role`;
    /// answers the answer, whatever it is.
    pub async fn change(
        &self,
        session: &Booked,
        action: &str,
        role: Role,
        body: Value,
    ) -> anyhow::Result<Answer> {
        let path = format!("/v1/sessions/{}/{action}", session.id);
        self.call(Method::POST, &path, Some(self.person_token(session, role)), Some(body)).await
    }

    /// Like [`Driver::change`] with an empty body, failing unless the answer is `200`;
    /// answers the session as the change left it.
    pub async fn changed(
        &self,
        session: &Booked,
        action: &str,
        role: Role,
    ) -> anyhow::Result<Value> {
        let answer = self.change(session, action, role, json!({})).await?;
        if answer.status != StatusCode::OK {
            return Err(Unexpected { what: format!("{action} {}", session.id), answer }.into());
        }
        Ok(answer.body)
    }

    /// The token of the session's client or provider, or of a service (or operator, finance)
    /// for any other role.
    fn person_token(&self, session: &Booked, role: Role) -> String {
        match role {
            Role::Client => self.token(role, session.pair.client),
            Role::Provider => self.token(role, session.pair.provider),
            _ => self.token(role, "driver"),
        }
    }

    /// Books as `book` does, then confirms as the provider.
    pub async fn book_confirmed(
        &self,
        pair: Pair,
        starts_at: DateTime<Utc>,
    ) -> anyhow::Result<Booked> {
        let session = self.book(pair, starts_at).await?;
        self.changed(&session, "confirm", Role::Provider).await?;
        Ok(session)
    }

    /// Joins as `role` through the person's join link; answers the media room page it leads to.
    pub async fn join(&self, session: &Booked, role: Role) -> anyhow::Result<String> {
        let token = self.person_token(session, role);
        let path = format!("/v1/sessions/{}/join", session.id);
        let link = self.expect(StatusCode::OK, Method::GET, &path, Some(token), None).await?;
        let url = link["url"].as_str().context("a join url")?;
        let answer = self.call(Method::GET, url, None, None).await?;
        match (answer.status, &answer.location) {
            (StatusCode::SEE_OTHER, Some(room)) => Ok(room.clone()),
            _ => {
                Err(Unexpected { what: format!("the join link of {}", session.id), answer }.into())
            }
        }
    }

    /// Ends the media room behind a room page, as the built-in media service's button does.
    pub async fn end_room(&self, room_page: &str) -> anyhow::Result<()> {
        let (path, query) = room_page.split_once('?').context("a token in the room page")?;
        self.expect(StatusCode::OK, Method::POST, &format!("{path}/end?{query}"), None, None)
            .await?;
        Ok(())
    }

    /// Cancels as the client.
    pub async fn cancel(&self, session: &Booked) -> anyhow::Result<Value> {
        self.changed(session, "cancel", Role::Client).await
    }

    /// The session as the read model has it (`GET /v1/sessions/{id}` as a service).
    pub async fn session(&self, id: SessionId) -> anyhow::Result<Answer> {
        let token = Some(self.token(Role::Service, "driver"));
        self.call(Method::GET, &format!("/v1/sessions/{id}"), token, None).await
    }

    /// Polls the read model every 100 ms until the session is in `state` (60 s at most, or a
    /// careful driver's patience).
    pub async fn wait_for_state(&self, session: &Booked, state: &str) -> anyhow::Result<()> {
        let deadline = Instant::now() + self.patience.unwrap_or(Duration::from_secs(60));
        loop {
            let answer = self.session(session.id).await?;
            if answer.status == StatusCode::OK && answer.body["state"] == state {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!(
                    "session {} never reached {state}: {} {}",
                    session.id,
                    answer.status,
                    answer.body
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The main path: book an hour ahead, confirm, both join, the room ends.
    pub async fn main_path(&self, pair: Pair) -> anyhow::Result<Booked> {
        let session = self.book_confirmed(pair, in_minutes(60)).await?;
        self.take_place(&session).await?;
        Ok(session)
    }

    /// A confirmed session takes place: both join by their links, it is in progress, the room
    /// ends.
    pub async fn take_place(&self, session: &Booked) -> anyhow::Result<()> {
        let room = self.join(session, Role::Client).await?;
        self.join(session, Role::Provider).await?;
        self.wait_for_state(session, "in_progress").await?;
        self.end_room(&room).await
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
