//! Outbound webhooks: each event is posted to every configured URL with its id and an
//! HMAC-SHA256 signature (`X-Livesessions-Signature: v1=<hex>` over `<timestamp>.<body>`,
//! timestamp in `X-Livesessions-Timestamp`). A delivery counts only when every URL answered
//! 2xx; otherwise it is retried (by Temporal), so each receiver gets each event at least once
//! and should drop repeats by `X-Livesessions-Event-Id`.

use crate::signature;
use livesessions_workflows::activities::WebhookEvent;
use serde::Deserialize;
use std::time::Duration;

/// The `webhooks.*` keys.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WebhookSettings {
    /// Where events go; none means no events. In the environment: comma-separated.
    #[serde(deserialize_with = "urls")]
    pub urls: Vec<String>,
    /// The signing secret (required with URLs).
    pub secret: Option<String>,
}

fn urls<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Urls {
        List(Vec<String>),
        CommaSeparated(String),
    }
    Ok(match Urls::deserialize(d)? {
        Urls::List(list) => list,
        Urls::CommaSeparated(text) => {
            text.split(',').map(str::trim).filter(|u| !u.is_empty()).map(String::from).collect()
        }
    })
}

impl WebhookSettings {
    /// Whether events are sent at all.
    pub fn enabled(&self) -> bool {
        !self.urls.is_empty()
    }
}

/// Posts events to the configured URLs.
pub struct Webhooks {
    http: reqwest::Client,
    urls: Vec<String>,
    secret: String,
}

impl Webhooks {
    /// Webhooks as `settings` say.
    pub fn new(settings: &WebhookSettings) -> anyhow::Result<Self> {
        let secret = match (&settings.secret, settings.enabled()) {
            (Some(secret), _) => secret.clone(),
            (None, false) => String::new(),
            (None, true) => anyhow::bail!("webhooks.secret is required when webhooks.urls are set"),
        };
        crate::install_crypto_provider();
        let http = reqwest::Client::builder().timeout(Duration::from_secs(10)).build()?;
        Ok(Self { http, urls: settings.urls.clone(), secret })
    }

    /// Posts `event` to every URL; an error names the first that did not accept it.
    pub async fn deliver(&self, event: &WebhookEvent) -> anyhow::Result<()> {
        let body = serde_json::to_vec(event)?;
        for url in &self.urls {
            let timestamp = chrono::Utc::now().timestamp();
            let response = self
                .http
                .post(url)
                .header("content-type", "application/json")
                .header("X-Livesessions-Event-Id", &event.id)
                .header("X-Livesessions-Timestamp", timestamp.to_string())
                .header("X-Livesessions-Signature", signature::sign(&self.secret, timestamp, &body))
                .body(body.clone())
                .send()
                .await?;
            if !response.status().is_success() {
                anyhow::bail!("{url} answered {}", response.status());
            }
        }
        Ok(())
    }
}
