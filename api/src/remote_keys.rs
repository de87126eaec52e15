//! The public keys of `auth.jwks_url`: fetched at start, again every `auth.jwks_refresh`, and
//! when a token names a `kid` no key has, at most once every `auth.jwks_min_interval`, so
//! tokens cannot make the service hammer the identity provider. A failed fetch keeps the keys
//! of the last good one.

use crate::public_keys::{self, PublicKey, PublicKeys};
use crate::settings::AuthSettings;
use anyhow::{anyhow, bail};
use std::sync::{Arc, RwLock};
use std::time::Duration;
use tokio::sync::Mutex;
use tokio::time::Instant;

/// How long one fetch of the document may take.
const FETCH_TIMEOUT: Duration = Duration::from_secs(10);

/// The keys of the JWKS URL, kept fresh.
pub struct RemoteKeys {
    url: String,
    http: reqwest::Client,
    keys: RwLock<PublicKeys>,
    last_fetch: Mutex<Instant>,
    min_interval: Duration,
}

impl RemoteKeys {
    /// Fetches `auth.jwks_url` (an error when it is not an http(s) URL, cannot be fetched or
    /// holds no usable key) and refreshes it every `auth.jwks_refresh` (more than zero) from then
    /// on, in a task of the current runtime.
    pub async fn start(url: &str, settings: &AuthSettings) -> anyhow::Result<Arc<Self>> {
        let scheme = reqwest::Url::parse(url).map(|url| url.scheme().to_string());
        if !matches!(scheme.as_deref(), Ok("http" | "https")) {
            bail!("auth.jwks_url {url:?} is not an http or https URL");
        }
        if settings.jwks_refresh.is_zero() {
            bail!("auth.jwks_refresh must be longer than 0s");
        }
        livesessions_activities::install_crypto_provider();
        let http = reqwest::Client::builder().timeout(FETCH_TIMEOUT).build()?;
        let remote = Self {
            url: url.to_string(),
            http,
            keys: RwLock::new(PublicKeys::new()),
            last_fetch: Mutex::new(Instant::now()),
            min_interval: settings.jwks_min_interval,
        };
        let keys = remote.fetch().await.map_err(|e| anyhow!("auth.jwks_url {url}: {e}"))?;
        *remote.keys.write().expect("no writer panics") = keys;
        let remote = Arc::new(remote);
        let every = settings.jwks_refresh;
        let weak = Arc::downgrade(&remote);
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(every).await;
                let Some(remote) = weak.upgrade() else { return };
                remote.refresh(&mut *remote.last_fetch.lock().await).await;
            }
        });
        Ok(remote)
    }

    /// The key named `kid`, if the document has it.
    pub fn get(&self, kid: &str) -> Option<PublicKey> {
        self.keys.read().expect("no writer panics").get(kid).cloned()
    }

    /// Fetches the document again for a token naming an unknown `kid`, unless the last fetch was
    /// less than `auth.jwks_min_interval` ago. Concurrent callers wait for one fetch.
    pub async fn refresh_for_unknown_kid(&self) {
        let mut last_fetch = self.last_fetch.lock().await;
        if last_fetch.elapsed() >= self.min_interval {
            self.refresh(&mut last_fetch).await;
        }
    }

    /// Fetches the document and keeps its keys, or logs why it could not.
    async fn refresh(&self, last_fetch: &mut Instant) {
        *last_fetch = Instant::now();
        match self.fetch().await {
            Ok(keys) => *self.keys.write().expect("no writer panics") = keys,
            Err(error) => tracing::warn!(url = %self.url, "JWKS not refreshed: {error}"),
        }
    }

    /// The usable keys the URL answers now.
    async fn fetch(&self) -> anyhow::Result<PublicKeys> {
        let response = self.http.get(&self.url).send().await?;
        let status = response.status();
        if !status.is_success() {
            anyhow::bail!("answered {status}");
        }
        let text = response.text().await?;
        Ok(public_keys::from_jwks(&text, &self.url)?.into_iter().collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::public_keys::test_key_file;
    use axum::http::StatusCode;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// A JWKS endpoint: what it answers, and how often it was asked.
    #[derive(Default)]
    struct Endpoint {
        answer: std::sync::Mutex<(u16, String)>,
        fetches: AtomicUsize,
    }

    impl Endpoint {
        /// Answers the test keys named `kids`.
        fn serve(&self, kids: &[&str]) {
            let text = std::fs::read_to_string(test_key_file("jwks.json")).unwrap();
            let mut document: serde_json::Value = serde_json::from_str(&text).unwrap();
            let keys = document["keys"].as_array_mut().unwrap();
            keys.retain(|key| kids.contains(&key["kid"].as_str().unwrap()));
            *self.answer.lock().unwrap() = (200, document.to_string());
        }

        fn fetches(&self) -> usize {
            self.fetches.load(Ordering::SeqCst)
        }
    }

    /// Starts `endpoint` on a free port; answers its URL.
    async fn listen(endpoint: Arc<Endpoint>) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/jwks.json", listener.local_addr().unwrap());
        let router = axum::Router::new().route(
            "/jwks.json",
            axum::routing::get(move || async move {
                endpoint.fetches.fetch_add(1, Ordering::SeqCst);
                let (status, body) = endpoint.answer.lock().unwrap().clone();
                (StatusCode::from_u16(status).unwrap(), body)
            }),
        );
        tokio::spawn(async move { axum::serve(listener, router).await });
        url
    }

    fn settings(refresh: Duration, min_interval: Duration) -> AuthSettings {
        AuthSettings {
            jwks_refresh: refresh,
            jwks_min_interval: min_interval,
            ..Default::default()
        }
    }

    #[tokio::test]
    async fn unknown_kids_fetch_the_document_again_at_most_once_per_interval() {
        let endpoint = Arc::new(Endpoint::default());
        endpoint.serve(&["ec-1"]);
        let url = listen(endpoint.clone()).await;
        let interval = Duration::from_millis(500);
        let remote =
            RemoteKeys::start(&url, &settings(Duration::from_secs(3600), interval)).await.unwrap();
        assert_eq!(endpoint.fetches(), 1);
        assert!(remote.get("ec-1").is_some() && remote.get("ed-1").is_none());

        endpoint.serve(&["ed-1"]);
        remote.refresh_for_unknown_kid().await;
        assert_eq!(endpoint.fetches(), 1, "fetched again within the interval");
        tokio::time::sleep(interval).await;
        remote.refresh_for_unknown_kid().await;
        remote.refresh_for_unknown_kid().await;
        assert_eq!(endpoint.fetches(), 2);
        assert!(remote.get("ed-1").is_some() && remote.get("ec-1").is_none(), "rotated");
    }

    #[tokio::test]
    async fn the_document_is_fetched_again_periodically_and_a_failure_keeps_the_keys() {
        let endpoint = Arc::new(Endpoint::default());
        endpoint.serve(&["ec-1"]);
        let url = listen(endpoint.clone()).await;
        let refresh = Duration::from_millis(100);
        let remote = RemoteKeys::start(&url, &settings(refresh, Duration::ZERO)).await.unwrap();
        endpoint.serve(&["ec-1", "ed-1"]);
        tokio::time::sleep(refresh * 4).await;
        assert!(remote.get("ed-1").is_some(), "refreshed after {} fetches", endpoint.fetches());

        *endpoint.answer.lock().unwrap() = (503, String::new());
        let fetches = endpoint.fetches();
        tokio::time::sleep(refresh * 4).await;
        assert!(endpoint.fetches() > fetches);
        assert!(remote.get("ec-1").is_some() && remote.get("ed-1").is_some());
    }

    #[tokio::test]
    async fn a_url_without_usable_keys_stops_the_start() {
        let endpoint = Arc::new(Endpoint::default());
        let url = listen(endpoint.clone()).await;
        let settings = AuthSettings::default();
        for (answer, expected) in [
            ((404, String::new()), "answered 404"),
            ((200, r#"{"keys": []}"#.to_string()), "no RS256, ES256 or EdDSA signature key"),
        ] {
            *endpoint.answer.lock().unwrap() = answer;
            let error = RemoteKeys::start(&url, &settings).await.err().expect("refused");
            let error = error.to_string();
            assert!(error.starts_with(&format!("auth.jwks_url {url}: ")), "{error}");
            assert!(error.contains(expected), "{error}");
        }
        endpoint.serve(&["ec-1"]);
        let never = AuthSettings { jwks_refresh: Duration::ZERO, ..AuthSettings::default() };
        for (url, settings, expected) in [
            ("file:///etc/jwks.json", &settings, "is not an http or https URL"),
            ("idp.example/jwks.json", &settings, "is not an http or https URL"),
            (url.as_str(), &never, "auth.jwks_refresh must be longer than 0s"),
        ] {
            let error = RemoteKeys::start(url, settings).await.err().expect("refused");
            assert!(error.to_string().contains(expected), "{url}: {error}");
        }
    }
}
