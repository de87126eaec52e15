//! Building the application from its settings: the database (migrated on start-up), the
//! Temporal client, the API server and the worker, and running them together until shutdown.

use crate::configuration::Settings;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use livesessions_activities::{Billing, Db};
use livesessions_api::{AppState, JwtKeys};
use livesessions_worker::{
    CreditAdjustments, FeeCollections, Purchases, SessionWorker, Sessions, Subscriptions,
};
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use temporalio_client::Client;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// The parts every process of the service needs.
pub struct Application {
    settings: Settings,
    keys: JwtKeys,
    db: Db,
    client: Client,
}

/// The API, bound to its address and ready to serve.
pub struct ApiServer {
    listener: TcpListener,
    router: axum::Router,
    public_url: String,
    header_read_timeout: Duration,
}

impl ApiServer {
    /// Where it listens.
    pub fn local_addr(&self) -> SocketAddr {
        self.listener.local_addr().expect("a bound listener has an address")
    }

    /// Serves until `shutdown` resolves, then finishes the requests in flight. A connection
    /// that does not send a request's headers within `http.header_read_timeout` is closed, so
    /// half-open connections cannot pile up.
    pub async fn serve(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let ApiServer { listener, router, header_read_timeout, .. } = self;
        let mut builder = auto::Builder::new(TokioExecutor::new());
        builder.http1().timer(TokioTimer::new()).header_read_timeout(header_read_timeout);
        let graceful = GracefulShutdown::new();
        let mut shutdown = std::pin::pin!(shutdown);
        loop {
            let stream = tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok((stream, _)) => stream,
                    Err(error) => {
                        // Out of file descriptors, most likely: let connections close first.
                        tracing::warn!(%error, "cannot accept a connection");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                },
                () = &mut shutdown => break,
            };
            let (builder, router, watcher) = (builder.clone(), router.clone(), graceful.watcher());
            tokio::spawn(async move {
                // hyper's header timer starts at the first byte; a silent connection ends here.
                if tokio::time::timeout(header_read_timeout, stream.peek(&mut [0; 1]))
                    .await
                    .is_err()
                {
                    return;
                }
                let service = TowerToHyperService::new(router);
                let connection = builder.serve_connection(TokioIo::new(stream), service);
                if let Err(error) = watcher.watch(connection).await {
                    tracing::debug!(error = %error, "connection ended with an error");
                }
            });
        }
        drop(listener);
        graceful.shutdown().await;
        Ok(())
    }
}

impl Application {
    /// Reads the bearer-token keys, then connects to the database (applying migrations) and to
    /// Temporal, refusing a namespace that is missing or lacks the session search attributes
    /// (`livesessions setup` registers them).
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        let keys = JwtKeys::from_settings(&settings.auth)?;
        let db = Db::connect(&settings.database.url).await?;
        db.migrate().await?;
        let client = livesessions_worker::connect(&settings.temporal).await?;
        livesessions_worker::setup::check(&client, &settings.temporal.namespace).await?;
        Ok(Self { settings, keys, db, client })
    }

    /// The settings it was built with.
    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// The bearer-token keys.
    pub fn keys(&self) -> &JwtKeys {
        &self.keys
    }

    /// The database.
    pub fn db(&self) -> &Db {
        &self.db
    }

    /// The base of the links people get: `http.public_url`, or the API's own address.
    fn public_url(&self, api: &str) -> String {
        match &self.settings.http.public_url {
            Some(url) => url.trim_end_matches('/').to_string(),
            None => format!("http://{api}"),
        }
    }

    /// Binds the API to `http.addr`, with the keys of `auth.jwks_url` fetched. Join links use
    /// `http.public_url`, or the bound address.
    pub async fn bind_api(&self) -> anyhow::Result<ApiServer> {
        let listener = TcpListener::bind(&self.settings.http.addr)
            .await
            .map_err(|e| anyhow::anyhow!("cannot listen on {}: {e}", self.settings.http.addr))?;
        let public_url = self.public_url(&listener.local_addr()?.to_string());
        let processor = self.settings.billing.processor(&self.db);
        let billing = Billing::new(
            self.db.clone(),
            processor.clone(),
            self.settings.billing.processor_timeout,
        );
        let state = AppState {
            db: self.db.clone(),
            sessions: Sessions::new(self.client.clone(), &self.settings.temporal),
            purchases: Purchases::new(self.client.clone(), &self.settings.temporal),
            credit_adjustments: CreditAdjustments::new(
                self.client.clone(),
                &self.settings.temporal,
            ),
            subscriptions: Subscriptions::new(self.client.clone(), &self.settings.temporal),
            fees: FeeCollections::new(
                self.client.clone(),
                &self.settings.temporal,
                self.settings.policy.collection_schedule.clone(),
            ),
            billing: Arc::new(billing),
            processor,
            keys: self.keys.clone().with_jwks_url(&self.settings.auth).await?,
            policy: Arc::new(self.settings.policy.clone()),
            plans: Arc::new(self.settings.plans.clone()),
            public_url: public_url.as_str().into(),
            webhooks: self.settings.webhooks.enabled(),
            media: Arc::new(self.settings.media.clone()),
            metrics: livesessions_api::metrics::HttpMetrics::new(),
        };
        Ok(ApiServer {
            listener,
            router: livesessions_api::router(state),
            public_url,
            header_read_timeout: self.settings.http.header_read_timeout,
        })
    }

    /// A worker for the configured task queue; its messages link to `public_url`.
    fn worker_linking_to(&self, public_url: &str) -> anyhow::Result<SessionWorker> {
        SessionWorker::new(
            self.client.clone(),
            &self.settings.temporal,
            self.db.clone(),
            &self.settings.activities(),
            public_url,
        )
    }

    /// A worker on its own (`livesessions worker`): its links use `http.public_url`, or
    /// `http.addr`.
    pub fn worker(&self) -> anyhow::Result<SessionWorker> {
        self.worker_linking_to(&self.public_url(&self.settings.http.addr))
    }

    /// Runs the API and the worker until `stop` is cancelled or either of them fails; then stops
    /// both. The worker is not `Send`, so this runs on the calling task.
    pub async fn run(self, api: ApiServer, stop: CancellationToken) -> anyhow::Result<()> {
        let worker = self.worker_linking_to(&api.public_url)?;
        let stop_worker = worker.shutdown_handle();
        let api_stop = stop.clone();
        let serving = async {
            let result = api.serve(async move { api_stop.cancelled().await }).await;
            stop.cancel();
            result
        };
        let working = async {
            let result = worker.run().await;
            stop.cancel();
            result
        };
        let stopping = async {
            stop.cancelled().await;
            stop_worker();
        };
        let (served, worked, ()) = tokio::join!(serving, working, stopping);
        self.db.close().await;
        served.and(worked)
    }
}

/// Resolves on Ctrl-C (SIGINT) or SIGTERM, whichever comes first.
pub async fn shutdown_signal() {
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("a SIGTERM handler can be installed");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = terminate.recv() => {}
    }
    tracing::info!("stopping");
}

/// `livesessions worker`: a worker on its own until SIGINT or SIGTERM.
pub async fn run_worker(settings: Settings) -> anyhow::Result<()> {
    let app = Application::build(settings).await?;
    let worker = app.worker()?;
    let temporal = &app.settings().temporal;
    tracing::info!(task_queue = %temporal.task_queue, namespace = %temporal.namespace, "worker started");
    let stop = worker.shutdown_handle();
    tokio::spawn(async move {
        shutdown_signal().await;
        stop();
    });
    worker.run().await
}
