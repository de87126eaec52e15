//! The end-to-end test harness: the real application on a random port, against a real Temporal
//! dev server (one per test binary, on a free port, store in memory) and a real database (a fresh
//! PostgreSQL database or a fresh SQLite file per test). Nothing is mocked, except in
//! [`fakes`]: the workflow alone, on the same server, with in-memory activities.
//!
//! `./dev test` installs the temporal CLI and points `LIVESESSIONS_TEMPORAL_CLI` at it, and
//! names the PostgreSQL server in `LIVESESSIONS_TEST_DATABASE_URL`.

pub mod fakes;
pub mod mail;

use chrono::{DateTime, Utc};
use livesessions::Settings;
use livesessions::startup::Application;
use livesessions_activities::Db;
use livesessions_api::{AuthSettings, JwtKeys};
use livesessions_domain::{
    ClientId, Plans, Policy, ProviderId, Role, SessionId, SessionSnapshot, SessionState,
};
use livesessions_worker::{DevServer, DevServerOptions, Sessions, TemporalSettings};
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

/// Which database a test runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// A fresh database on the PostgreSQL server of `LIVESESSIONS_TEST_DATABASE_URL`.
    Postgres,
    /// A fresh SQLite file.
    Sqlite,
}

/// This crate's folder (`tests/`), as `cargo test` tells the running test: read when the test
/// runs, not baked in at build time, so a build cache shared between checkouts never points a
/// test at another checkout's files.
pub fn crate_dir() -> PathBuf {
    PathBuf::from(
        std::env::var_os("CARGO_MANIFEST_DIR").expect("cargo test sets CARGO_MANIFEST_DIR"),
    )
}

/// The temporal CLI: `LIVESESSIONS_TEMPORAL_CLI`, else the one `./dev` installs.
pub fn temporal_cli() -> PathBuf {
    match std::env::var_os("LIVESESSIONS_TEMPORAL_CLI") {
        Some(path) => PathBuf::from(path),
        None => crate_dir().join("../.tools/temporal/bin/temporal"),
    }
}

/// The address of this test binary's Temporal dev server, started on first use. It allows time
/// skipping and knows the session search attributes.
pub fn temporal_address() -> String {
    static SERVER: OnceLock<DevServer> = OnceLock::new();
    SERVER
        .get_or_init(|| {
            let options = DevServerOptions {
                cli: temporal_cli(),
                port: None,
                ui_port: None,
                db_file: None,
                time_skipping: true,
                log_file: None,
            };
            DevServer::start(&options)
                .expect("the Temporal dev server starts (run the tests with ./dev test)")
        })
        .address()
}

fn postgres_admin_url() -> String {
    std::env::var("LIVESESSIONS_TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres:postgres@127.0.0.1:5432/postgres".into())
}

/// A database made for one test and removed after it (a [`TestApp`] makes its own; a test
/// that needs an empty, unmigrated one makes it with [`TestDatabase::create`]).
pub struct TestDatabase {
    url: String,
    cleanup: Cleanup,
}

enum Cleanup {
    DropPostgres { admin_url: String, name: String },
    RemoveFile(PathBuf),
}

impl TestDatabase {
    /// A fresh, empty database on `backend`.
    pub async fn create(backend: Backend) -> Self {
        let name = format!("ls_test_{}", uuid::Uuid::new_v4().simple());
        match backend {
            Backend::Postgres => {
                let admin_url = postgres_admin_url();
                let admin = Db::connect(&admin_url)
                    .await
                    .expect("PostgreSQL answers (run the tests with ./dev test)");
                let Db::Postgres(pool) = &admin else { unreachable!("a postgres:// URL") };
                sqlx::query(&format!("CREATE DATABASE {name}"))
                    .execute(pool)
                    .await
                    .expect("create the test database");
                admin.close().await;
                let (base, _) = admin_url.rsplit_once('/').expect("the URL names a database");
                Self {
                    url: format!("{base}/{name}"),
                    cleanup: Cleanup::DropPostgres { admin_url, name },
                }
            }
            Backend::Sqlite => {
                let path = std::env::temp_dir().join(format!("{name}.db"));
                Self {
                    url: format!("sqlite://{}", path.display()),
                    cleanup: Cleanup::RemoveFile(path),
                }
            }
        }
    }
}

impl TestDatabase {
    /// Its connection URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// A fresh database on `backend` with the schema as it was before the migration named
    /// `first_left_out` (its file name's leading timestamp), and a pool on it; `Db::migrate`
    /// then applies the rest.
    pub async fn migrated_before(backend: Backend, first_left_out: &str) -> (Self, Db) {
        let database = Self::create(backend).await;
        let db = Db::connect(database.url()).await.expect("the database");
        let dialect = match backend {
            Backend::Postgres => "postgres",
            Backend::Sqlite => "sqlite",
        };
        let every = crate_dir().join("../migrations").join(dialect);
        let earlier = std::env::temp_dir().join(format!("ls-migrations-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&earlier).expect("a folder for the earlier migrations");
        for file in std::fs::read_dir(&every).expect("the migrations") {
            let file = file.expect("a migration");
            if file.file_name().to_string_lossy().as_ref() < first_left_out {
                std::fs::copy(file.path(), earlier.join(file.file_name())).expect("a copy");
            }
        }
        let migrator = sqlx::migrate::Migrator::new(earlier.as_path()).await.expect("a migrator");
        livesessions_activities::with_pool!(&db, |pool| migrator.run(pool).await)
            .expect("the earlier schema");
        std::fs::remove_dir_all(&earlier).expect("the copies removed");
        (database, db)
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        match &self.cleanup {
            Cleanup::DropPostgres { admin_url, name } => {
                let (admin_url, name) = (admin_url.clone(), name.clone());
                // Drop runs inside the test's runtime; a runtime of its own on another thread
                // can block on the async driver.
                let _ = std::thread::spawn(move || {
                    let runtime =
                        tokio::runtime::Builder::new_current_thread().enable_all().build().ok()?;
                    runtime.block_on(async {
                        let admin = Db::connect(&admin_url).await.ok()?;
                        if let Db::Postgres(pool) = &admin {
                            let _ = sqlx::query(&format!(
                                "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
                            ))
                            .execute(pool)
                            .await;
                        }
                        admin.close().await;
                        Some(())
                    })
                })
                .join();
            }
            Cleanup::RemoveFile(path) => {
                for suffix in ["", "-wal", "-shm"] {
                    let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
                }
            }
        }
    }
}

/// The policy tests use unless they say otherwise: the defaults, with no booking notice so a
/// session can start within the test's minute.
pub fn test_policy() -> Policy {
    Policy { booking_notice: Duration::ZERO, ..Policy::default() }
}

/// Calls `attempt` every 100 ms until it answers `Ok`, for 30 s at most; then fails the test
/// with `what` and the last answer.
pub async fn eventually<T, Attempt, Answer>(what: &str, attempt: Attempt) -> T
where
    Attempt: Fn() -> Answer,
    Answer: std::future::Future<Output = Result<T, String>>,
{
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match attempt().await {
            Ok(value) => return value,
            Err(last) => {
                assert!(Instant::now() < deadline, "never reached: {what}; last seen: {last}")
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// How a test app runs.
#[derive(Debug, Clone)]
pub struct TestOptions {
    /// Run a worker inside the test process (off: start [`TestApp::worker_process`] instead).
    pub worker: bool,
    /// `billing.processor_timeout`.
    pub processor_timeout: Duration,
    /// Send email to this port's SMTP server (plain, on loopback); otherwise to an outbox folder.
    pub smtp_port: Option<u16>,
    /// `webhooks.urls` (signed with the secret `test-webhook-secret`).
    pub webhook_urls: Vec<String>,
    /// `media.webhook_secret`.
    pub media_secret: Option<String>,
    /// `media.service = "hosted"` with this `media.hosted.base_url`.
    pub hosted_media: Option<String>,
    /// `temporal.request_timeout`: how long the API waits for a workflow's answer.
    pub request_timeout: Option<Duration>,
    /// `plans.*`, instead of the default plan table.
    pub plans: Option<Plans>,
    /// `auth.*`, but for `jwt_secret`: every test app has its own.
    pub auth: AuthSettings,
    /// `temporal.address` and `temporal.tls.*`: reach the shared dev server through this
    /// address (a TLS proxy in front of it) instead of its plaintext port.
    pub temporal_tls: Option<(String, livesessions_worker::TemporalTls)>,
    /// `temporal.metrics_addr`: where the worker serves its Prometheus metrics.
    pub worker_metrics_addr: Option<String>,
}

/// The webhook signing secret of test apps.
pub const WEBHOOK_SECRET: &str = "test-webhook-secret";

impl Default for TestOptions {
    fn default() -> Self {
        Self {
            worker: true,
            processor_timeout: Duration::from_secs(10),
            smtp_port: None,
            webhook_urls: Vec::new(),
            media_secret: None,
            hosted_media: None,
            request_timeout: None,
            plans: None,
            auth: AuthSettings::default(),
            temporal_tls: None,
            worker_metrics_addr: None,
        }
    }
}

/// One running application (API and worker on their own runtime thread) with its own database
/// and task queue, on the shared Temporal server.
pub struct TestApp {
    /// `http://127.0.0.1:<port>`.
    pub address: String,
    /// An HTTP client that does not follow redirects.
    pub http: reqwest::Client,
    /// The application's database, for checks the API does not expose.
    pub db: Db,
    /// Typed access to the session workflows (queries, histories).
    pub sessions: Sessions,
    /// The Temporal client.
    pub temporal: temporalio_client::Client,
    /// The application's task queue (unique per test).
    pub task_queue: String,
    keys: JwtKeys,
    backend: Backend,
    settings: Settings,
    stop: CancellationToken,
    thread: Option<std::thread::JoinHandle<anyhow::Result<()>>>,
    _database: TestDatabase,
}

impl TestApp {
    /// Starts the application on `backend` with `policy`.
    pub async fn spawn(backend: Backend, policy: Policy) -> Self {
        Self::spawn_with(backend, policy, TestOptions::default()).await
    }

    /// Starts the application on `backend` with `policy`, as `options` say.
    pub async fn spawn_with(backend: Backend, policy: Policy, options: TestOptions) -> Self {
        let temporal_address =
            tokio::task::spawn_blocking(temporal_address).await.expect("dev server thread");
        let database = TestDatabase::create(backend).await;
        let secret = uuid::Uuid::new_v4().to_string();
        let task_queue = format!("test-{}", uuid::Uuid::new_v4().simple());
        let mut settings = Settings::default();
        settings.http.addr = "127.0.0.1:0".into();
        settings.database.url = database.url.clone();
        settings.temporal = TemporalSettings {
            address: temporal_address,
            task_queue: task_queue.clone(),
            ..TemporalSettings::default()
        };
        if let Some((address, tls)) = &options.temporal_tls {
            settings.temporal.address = address.clone();
            settings.temporal.tls = tls.clone();
        }
        settings.temporal.metrics_addr = options.worker_metrics_addr.clone();
        if let Some(timeout) = options.request_timeout {
            settings.temporal.request_timeout = timeout;
        }
        settings.auth = AuthSettings { jwt_secret: Some(secret), ..options.auth.clone() };
        settings.policy = policy;
        if let Some(plans) = &options.plans {
            settings.plans = plans.clone();
        }
        settings.billing.processor_timeout = options.processor_timeout;
        settings.email.outbox_dir =
            std::env::temp_dir().join(format!("ls-outbox-{}", uuid::Uuid::new_v4().simple()));
        if let Some(port) = options.smtp_port {
            settings.email.transport = livesessions_activities::email::TransportKind::Smtp;
            settings.email.smtp.port = port;
            settings.email.smtp.security = livesessions_activities::email::SmtpSecurity::None;
            settings.email.smtp.timeout = Duration::from_secs(3);
        }
        if !options.webhook_urls.is_empty() {
            settings.webhooks.urls = options.webhook_urls.clone();
            settings.webhooks.secret = Some(WEBHOOK_SECRET.into());
        }
        settings.media.webhook_secret = options.media_secret.clone();
        if let Some(base_url) = &options.hosted_media {
            settings.media.service = livesessions_activities::media::MediaServiceName::Hosted;
            settings.media.hosted.base_url = base_url.clone();
            settings.media.hosted.api_key = Some("hosted-key".into());
        }

        let stop = CancellationToken::new();
        let (ready_tx, ready_rx) = tokio::sync::oneshot::channel();
        let app_stop = stop.clone();
        let app_settings = settings.clone();
        let thread = std::thread::spawn(move || -> anyhow::Result<()> {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()?;
            runtime.block_on(async move {
                let app = match Application::build(app_settings).await {
                    Ok(app) => app,
                    Err(e) => {
                        let _ = ready_tx.send(Err(e.to_string()));
                        return Ok(());
                    }
                };
                let api = app.bind_api().await?;
                let _ = ready_tx.send(Ok(api.local_addr()));
                if options.worker {
                    app.run(api, app_stop).await
                } else {
                    api.serve(async move { app_stop.cancelled().await }).await
                }
            })
        });
        let addr = ready_rx.await.expect("the app thread answers").expect("the application starts");
        let db = Db::connect(&settings.database.url).await.expect("the test database");
        let temporal =
            livesessions_worker::connect(&settings.temporal).await.expect("Temporal answers");
        livesessions_activities::install_crypto_provider();
        let app = Self {
            address: format!("http://{addr}"),
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .expect("an HTTP client"),
            db,
            sessions: Sessions::new(temporal.clone(), &settings.temporal),
            temporal,
            task_queue,
            keys: JwtKeys::from_settings(&settings.auth).expect("the test's auth settings"),
            backend,
            settings: settings.clone(),
            stop,
            thread: Some(thread),
            _database: database,
        };
        app.wait_until_healthy().await;
        app
    }

    async fn wait_until_healthy(&self) {
        eventually("the API is healthy", || async {
            match self.http.get(format!("{}/healthz", self.address)).send().await {
                Ok(response) if response.status() == StatusCode::OK => Ok(()),
                other => Err(format!("{other:?}")),
            }
        })
        .await
    }

    /// Billing over this test's database and the sandbox processor, as the worker has it.
    pub fn billing(&self) -> livesessions_activities::Billing {
        let settings = livesessions_activities::payments::BillingSettings::default();
        livesessions_activities::Billing::new(
            self.db.clone(),
            settings.processor(&self.db),
            settings.processor_timeout,
        )
    }

    /// The subscription activities over this test's database and plan table, as the worker has
    /// them.
    pub fn renewals(&self) -> livesessions_activities::Renewals {
        livesessions_activities::Renewals::new(self.db.clone(), self.settings.plans.clone())
    }

    /// Starts a worker for this app in a process of its own (`program` is the `test-worker`
    /// binary: `env!("CARGO_BIN_EXE_test-worker")`), configured through the environment.
    pub fn worker_process(&self, program: &str) -> std::process::Child {
        let settings = &self.settings;
        std::process::Command::new(program)
            .env("LIVESESSIONS__DATABASE__URL", &settings.database.url)
            .env("LIVESESSIONS__TEMPORAL__ADDRESS", &settings.temporal.address)
            .env("LIVESESSIONS__TEMPORAL__TASK_QUEUE", &settings.temporal.task_queue)
            .env(
                "LIVESESSIONS__BILLING__PROCESSOR_TIMEOUT",
                livesessions_domain::duration::format(settings.billing.processor_timeout),
            )
            .env("LIVESESSIONS__HTTP__PUBLIC_URL", &self.address)
            .env("RUST_LOG", "warn")
            .stdin(std::process::Stdio::null())
            .spawn()
            .expect("the test worker starts")
    }

    /// A valid bearer token for `sub` in `role`.
    pub fn token(&self, role: Role, sub: impl ToString) -> String {
        self.keys.mint(&sub.to_string(), role, Duration::from_secs(3600)).expect("a secret mints")
    }

    /// A token with exactly these claims, signed with the app's secret.
    pub fn token_with(&self, claims: Value) -> String {
        let secret = self.settings.auth.jwt_secret.as_deref().expect("test apps set a secret");
        let key = jsonwebtoken::EncodingKey::from_secret(secret.as_bytes());
        jsonwebtoken::encode(&jsonwebtoken::Header::default(), &claims, &key).expect("signed")
    }

    /// A token for the `service` role.
    pub fn service_token(&self) -> String {
        self.token(Role::Service, "test-service")
    }

    /// Sends a request; answers the status and the JSON body (`Value::Null` when there is none).
    pub async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let url = if path.starts_with("http") {
            path.to_string()
        } else {
            format!("{}{path}", self.address)
        };
        let mut request = self.http.request(method, url);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        answer(request).await
    }

    /// `GET` with a token.
    pub async fn get(&self, path: &str, token: &str) -> (StatusCode, Value) {
        self.call(reqwest::Method::GET, path, Some(token), None).await
    }

    /// `POST` with a token and a JSON body.
    pub async fn post(&self, path: &str, token: &str, body: Value) -> (StatusCode, Value) {
        self.call(reqwest::Method::POST, path, Some(token), Some(body)).await
    }

    /// `POST` with a token, a JSON body and an `Idempotency-Key`; answers the status, the
    /// `Location` header and the JSON body.
    pub async fn post_with_key(
        &self,
        path: &str,
        token: &str,
        body: Value,
        key: &str,
    ) -> (StatusCode, Option<String>, Value) {
        let request = self
            .http
            .post(format!("{}{path}", self.address))
            .bearer_auth(token)
            .header("Idempotency-Key", key)
            .json(&body);
        let response = request.send().await.expect("the API answers");
        let location = response.headers().get("location").and_then(|v| v.to_str().ok());
        let location = location.map(str::to_string);
        let (status, body) = answer_of(response).await;
        (status, location, body)
    }

    /// Registers a new client on a plan; answers their id.
    pub async fn new_client(&self, coverage: &str, plan: &str) -> ClientId {
        let id = ClientId::random();
        let body = json!({"coverage": coverage, "plan": plan, "time_zone": "America/New_York",
                          "email": "client@example.com", "display_name": "A. Client"});
        let (status, answer) = self
            .call(
                reqwest::Method::PUT,
                &format!("/v1/clients/{id}"),
                Some(&self.service_token()),
                Some(body),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{answer}");
        id
    }

    /// Registers a new provider; answers their id.
    pub async fn new_provider(&self, specialty: &str) -> ProviderId {
        let id = ProviderId::random();
        let body = json!({"specialty": specialty, "time_zone": "Europe/London",
                          "email": "provider@example.com", "display_name": "Dr. Provider"});
        let (status, answer) = self
            .call(
                reqwest::Method::PUT,
                &format!("/v1/providers/{id}"),
                Some(&self.service_token()),
                Some(body),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{answer}");
        id
    }

    /// A subscription client (standard plan) and a therapist, both new.
    pub async fn subscriber_and_therapist(&self) -> (ClientId, ProviderId) {
        (
            self.new_client("subscription", "subscription-standard").await,
            self.new_provider("therapist").await,
        )
    }

    /// Requests a 30-minute therapy video session as the client; answers status and body.
    pub async fn request_session(
        &self,
        client: ClientId,
        provider: ProviderId,
        starts_at: DateTime<Utc>,
    ) -> (StatusCode, Value) {
        let body = json!({"client_id": client, "provider_id": provider, "service": "therapy", "modality": "video",
                          "duration_minutes": 30, "starts_at": starts_at, "time_zone": "America/New_York",
                          "accept_cancellation_policy": true});
        self.post("/v1/sessions", &self.token(Role::Client, client), body).await
    }

    /// Polls `GET /v1/sessions/{id}` until the session is in `state` (30 s at most).
    pub async fn wait_for_state(&self, id: SessionId, state: SessionState) -> SessionSnapshot {
        self.wait_for(id, state.as_str(), |session| session.state == state).await
    }

    /// The kinds of the messages in a client's room, oldest first.
    pub async fn room_message_kinds(&self, client: ClientId) -> Vec<String> {
        let (status, body) =
            self.get(&format!("/v1/rooms/{client}/messages"), &self.service_token()).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body["messages"]
            .as_array()
            .expect("messages")
            .iter()
            .map(|m| m["kind"].as_str().unwrap_or_default().to_string())
            .collect()
    }

    /// The media room of a confirmed session and `party`'s join token, once the session's
    /// workflow has opened the room (30 s at most).
    pub async fn room_and_join_token(
        &self,
        session: SessionId,
        party: livesessions_domain::Party,
    ) -> (livesessions_domain::RoomId, String) {
        use livesessions_activities::storage::media_rooms;
        eventually("the session's room is opened", || async {
            let room = media_rooms::room_of(&self.db, session).await.map_err(|e| e.to_string())?;
            let token =
                media_rooms::token_of(&self.db, session, party).await.map_err(|e| e.to_string())?;
            match (room, token) {
                (Some(room), Some(token)) => Ok((room, token.token)),
                other => Err(format!("{other:?}")),
            }
        })
        .await
    }

    /// Records a no-show fee of USD 65.00 that the session's client owes as outstanding (its
    /// collection starts when it is waived); answers the fee's key.
    pub async fn owe_fee(&self, session: &SessionSnapshot) -> String {
        use livesessions_activities::storage::fee_collections;
        use livesessions_domain::{Currency, FeeKind, Money};
        let fee = livesessions_workflows::activities::FeeCharge {
            key: format!("{}:no_show_fee:r9", session.workflow_id),
            client_id: session.client_id,
            session_id: session.id,
            kind: FeeKind::NoShowFee,
            amount: Money::new(6_500, Currency::parse("USD").expect("a currency")),
        };
        let mut tx = self.db.begin_write().await.expect("a transaction");
        fee_collections::open(&mut tx, &fee, None, Utc::now()).await.expect("an owed fee");
        tx.commit().await.expect("committed");
        fee.key
    }

    /// A client's credits as `(available, reserved)`.
    pub async fn credits(&self, client: ClientId) -> (i64, i64) {
        let (status, body) =
            self.get(&format!("/v1/clients/{client}/credits"), &self.service_token()).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        (
            body["available"].as_i64().expect("available"),
            body["reserved"].as_i64().expect("reserved"),
        )
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.stop.cancel();
        if let Some(thread) = self.thread.take() {
            match thread.join() {
                Ok(Ok(())) => {}
                Ok(Err(e)) => eprintln!("the application stopped with an error: {e:#}"),
                Err(_) => eprintln!("the application thread panicked"),
            }
        }
    }
}

/// Declares each named test twice, once per database: `async fn name(backend: Backend)` becomes
/// `postgres::name` and `sqlite::name`.
#[macro_export]
macro_rules! on_both_databases {
    ($($name:ident),+ $(,)?) => {
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::Backend::Postgres).await
                }
            )+
        }
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::Backend::Sqlite).await
                }
            )+
        }
    };
}

/// Sends `request`; answers the status and the JSON body (`Value::Null` when there is none).
async fn answer(request: reqwest::RequestBuilder) -> (StatusCode, Value) {
    answer_of(request.send().await.expect("the API answers")).await
}

/// The status and the JSON body of `response` (`Value::Null` when there is none).
async fn answer_of(response: reqwest::Response) -> (StatusCode, Value) {
    let status = response.status();
    let text = response.text().await.expect("a body");
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

/// Money moved for a session: `(ledger kind, amount_minor, key)`.
pub type ChargeRow = (String, i64, String);

impl TestApp {
    /// The money the ledger moved for a session (purchases, fees, refunds), oldest first; fees
    /// count whether charged or outstanding. An insurance authorization's estimate moves none.
    pub async fn charges(&self, session: SessionId) -> Vec<ChargeRow> {
        use livesessions_activities::storage::ledger::{self, EntryKind, LedgerFilter, accounts};
        let filter = LedgerFilter { session_id: Some(session), ..Default::default() };
        ledger::entries(&self.db, &filter)
            .await
            .expect("ledger entries")
            .into_iter()
            .filter(|entry| entry.kind != EntryKind::InsuranceAuthorization)
            .filter_map(|entry| {
                let money: i64 = entry
                    .postings
                    .iter()
                    .filter(|p| {
                        p.unit != accounts::CREDIT && p.unit != accounts::AUTH && p.amount > 0
                    })
                    .map(|p| p.amount)
                    .sum();
                (money != 0).then(|| (entry.kind.to_string(), money, entry.key))
            })
            .collect()
    }

    /// Books a 30-minute therapy video session; panics unless it is created.
    pub async fn book(
        &self,
        client: ClientId,
        provider: ProviderId,
        starts_at: DateTime<Utc>,
    ) -> SessionSnapshot {
        let (status, body) = self.request_session(client, provider, starts_at).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        serde_json::from_value(body).expect("a session")
    }

    /// Books as `book` does, then confirms as the provider.
    pub async fn book_confirmed(
        &self,
        client: ClientId,
        provider: ProviderId,
        starts_at: DateTime<Utc>,
    ) -> SessionSnapshot {
        let requested = self.book(client, provider, starts_at).await;
        self.confirm(&requested).await
    }

    /// Asks, as the session's client, to move it to `starts_at`; answers status and body.
    pub async fn reschedule(
        &self,
        session: &SessionSnapshot,
        starts_at: DateTime<Utc>,
        accept_policy: bool,
    ) -> (StatusCode, Value) {
        let body = json!({"starts_at": starts_at, "accept_cancellation_policy": accept_policy});
        self.post(
            &format!("/v1/sessions/{}/reschedule", session.id),
            &self.token(Role::Client, session.client_id),
            body,
        )
        .await
    }

    /// Confirms as the provider; panics unless it succeeds.
    pub async fn confirm(&self, session: &SessionSnapshot) -> SessionSnapshot {
        let (status, body) = self
            .post(
                &format!("/v1/sessions/{}/confirm", session.id),
                &self.token(Role::Provider, session.provider_id),
                json!({}),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        serde_json::from_value(body).expect("a session")
    }

    /// Joins as `role` through the person's own join link (403/409 fail the test); answers the
    /// media room page it leads to.
    pub async fn join(&self, session: &SessionSnapshot, role: Role) -> String {
        let person = match role {
            Role::Client => session.client_id.to_string(),
            _ => session.provider_id.to_string(),
        };
        let (status, link) = self
            .get(&format!("/v1/sessions/{}/join", session.id), &self.token(role, &person))
            .await;
        assert_eq!(status, StatusCode::OK, "{link}");
        let response = self
            .http
            .get(link["url"].as_str().expect("a url"))
            .send()
            .await
            .expect("the join link answers");
        assert_eq!(response.status(), StatusCode::SEE_OTHER);
        response.headers()["location"].to_str().expect("a location").to_string()
    }

    /// Both people join (as the media service reports them), then the room ends: the session
    /// takes place and completes.
    pub async fn take_place(&self, session: &SessionSnapshot) {
        use livesessions_domain::Party;
        for party in [Party::Client, Party::Provider] {
            let join = livesessions_workflows::Join { party, at: Utc::now() };
            self.sessions.joined(session.id, join).await.expect("the join is told");
        }
        self.sessions.room_ended(session.id).await.expect("the room's end is told");
    }

    /// Ends the media room behind a room page link, as the built-in media service's button does.
    pub async fn end_room(&self, room_page: &str) {
        let (path, query) = room_page.split_once('?').expect("a token in the room page link");
        let (status, _) =
            self.call(reqwest::Method::POST, &format!("{path}/end?{query}"), None, None).await;
        assert_eq!(status, StatusCode::OK);
    }

    /// Polls the read model until `done` holds for the session (30 s at most).
    pub async fn wait_for(
        &self,
        id: SessionId,
        what: &str,
        done: impl Fn(&SessionSnapshot) -> bool,
    ) -> SessionSnapshot {
        let token = self.service_token();
        eventually(what, || async {
            let (status, body) = self.get(&format!("/v1/sessions/{id}"), &token).await;
            assert_eq!(status, StatusCode::OK, "{body}");
            let session: SessionSnapshot = serde_json::from_value(body).expect("a session");
            if done(&session) { Ok(session) } else { Err(format!("{session:?}")) }
        })
        .await
    }

    /// Polls a client's room until it shows `count` messages (30 s at most); answers their kinds.
    pub async fn wait_for_messages(&self, client: ClientId, count: usize) -> Vec<String> {
        eventually(&format!("{count} room messages"), || async {
            let kinds = self.room_message_kinds(client).await;
            if kinds.len() >= count { Ok(kinds) } else { Err(format!("{kinds:?}")) }
        })
        .await
    }

    /// Turns on the dev server's time skipping for one workflow (TEMPORAL_RUST.md, section 5):
    /// while it waits on timers only, the server jumps to the next one. A workflow that has
    /// already completed needs none.
    pub async fn skip_time(&self, workflow_id: &str) {
        use temporalio_client::tonic::IntoRequest;
        use temporalio_common::protos::temporal::api::common::v1::{
            TimeSkippingConfig, WorkflowExecution,
        };
        use temporalio_common::protos::temporal::api::workflow::v1::WorkflowExecutionOptions;
        use temporalio_common::protos::temporal::api::workflowservice::v1::UpdateWorkflowExecutionOptionsRequest;
        let mut request = UpdateWorkflowExecutionOptionsRequest {
            namespace: "default".into(),
            workflow_execution: Some(WorkflowExecution {
                workflow_id: workflow_id.into(),
                run_id: String::new(),
            }),
            workflow_execution_options: Some(WorkflowExecutionOptions {
                time_skipping_config: Some(TimeSkippingConfig {
                    enabled: true,
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        };
        request
            .update_mask
            .get_or_insert_with(Default::default)
            .paths
            .push("time_skipping_config".into());
        let answer = self
            .temporal
            .connection()
            .workflow_service()
            .update_workflow_execution_options(request.into_request())
            .await;
        if let Err(status) = answer {
            assert!(
                status.message().contains("already completed"),
                "time skipping turns on: {status}"
            );
        }
    }
}

/// Where recorded histories are kept: `tests/histories/<release>/`, one directory per release
/// (the workspace version), each replayed by `tests/tests/replay.rs` against the current code.
pub fn histories_dir() -> PathBuf {
    crate_dir().join("histories")
}

/// This release's directory of recorded histories: the only one recording writes to. Those of
/// earlier releases are never written again (running sessions of those releases look like them).
pub fn release_histories_dir() -> PathBuf {
    histories_dir().join(env!("CARGO_PKG_VERSION"))
}

impl TestApp {
    /// Replays the history of every workflow this test ran against the current workflow code
    /// (no non-determinism), and, when `LIVESESSIONS_RECORD_HISTORIES` is set, keeps those of
    /// PostgreSQL runs in `tests/histories/<release>/<name>-<n>.json` for the replay test.
    pub async fn check_histories(&self, name: &str) {
        use livesessions_activities::with_pool;
        use temporalio_client::{WorkflowFetchHistoryOptions, WorkflowHistory};
        let ids: Vec<String> = with_pool!(&self.db, |pool| {
            sqlx::query_scalar(
                "SELECT workflow_id FROM sessions UNION ALL SELECT workflow_id FROM messaging_sessions ORDER BY 1",
            )
            .fetch_all(pool)
            .await
        })
        .expect("workflow ids");
        assert!(!ids.is_empty(), "the test ran no workflow");
        let replayer = livesessions_worker::replay::replayer().expect("a replayer");
        let record = std::env::var_os("LIVESESSIONS_RECORD_HISTORIES").is_some()
            && self.backend == Backend::Postgres;
        for (n, id) in ids.iter().enumerate() {
            let handle = self
                .temporal
                .get_workflow_handle::<livesessions_workflows::LiveSession>(id.clone());
            let json = handle
                .fetch_history(WorkflowFetchHistoryOptions::default())
                .to_json()
                .await
                .expect("a history");
            let history = WorkflowHistory::from_json(&json).expect("the history reads back");
            replayer
                .replay_workflow(history)
                .await
                .unwrap_or_else(|e| panic!("{id} does not replay: {e}"));
            if record {
                std::fs::create_dir_all(release_histories_dir())
                    .expect("tests/histories/<release>");
                std::fs::write(release_histories_dir().join(format!("{name}-{n}.json")), &json)
                    .expect("a fixture");
            }
        }
    }
}
