//! Configuration, layered as API.md says: built-in defaults, then an optional TOML file
//! (`--config FILE`), then environment variables `LIVESESSIONS__SECTION__KEY`, which win.
//! Durations are written `24h`, `10m`, `90s`, `500ms`; lists in the environment are
//! comma-separated (`LIVESESSIONS__POLICY__REMINDER_OFFSETS=24h,1h`).

use config::{Config, Environment, File, FileFormat};
use livesessions_activities::ActivitySettings;
use livesessions_activities::email::EmailSettings;
use livesessions_activities::media::MediaSettings;
use livesessions_activities::payments::BillingSettings;
use livesessions_activities::webhooks::WebhookSettings;
use livesessions_api::{AuthSettings, HttpSettings};
use livesessions_domain::{Plans, Policy};
use livesessions_worker::TemporalSettings;
use serde::Deserialize;
use std::collections::HashMap;
use std::path::Path;

/// Every setting of the service.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Settings {
    /// `http.*`: where the API listens.
    pub http: HttpSettings,
    /// `database.*`: which database.
    pub database: DatabaseSettings,
    /// `temporal.*`: which Temporal server, namespace and task queue.
    pub temporal: TemporalSettings,
    /// `auth.*`: how bearer tokens are verified.
    pub auth: AuthSettings,
    /// `billing.*`: the payment processor.
    pub billing: BillingSettings,
    /// `email.*`: how email is sent.
    pub email: EmailSettings,
    /// `webhooks.*`: where events for backend services go.
    pub webhooks: WebhookSettings,
    /// `media.*`: the media service and its signed events.
    pub media: MediaSettings,
    /// `policy.*`: the policy new sessions start with.
    pub policy: Policy,
    /// `plans.<id>.*`: the plan table.
    pub plans: Plans,
    /// `log.*`: how log lines are written.
    pub log: crate::telemetry::LogSettings,
}

/// `database.*`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DatabaseSettings {
    /// `postgres://…` or `sqlite://…`.
    pub url: String,
}

impl Default for DatabaseSettings {
    fn default() -> Self {
        Self { url: "sqlite://./.data/livesessions.db".into() }
    }
}

impl Settings {
    /// The sections the activities need.
    pub fn activities(&self) -> ActivitySettings {
        ActivitySettings {
            billing: self.billing.clone(),
            email: self.email.clone(),
            webhooks: self.webhooks.clone(),
            media: self.media.clone(),
            plans: self.plans.clone(),
            collection_schedule: self.policy.collection_schedule.clone(),
        }
    }

    /// Loads the settings from the defaults, `file` if given, and the process environment.
    pub fn load(file: Option<&Path>) -> anyhow::Result<Self> {
        Self::load_from(file, None)
    }

    /// Like [`Settings::load`], with `environment` standing in for the process environment.
    pub fn load_from(
        file: Option<&Path>,
        environment: Option<HashMap<String, String>>,
    ) -> anyhow::Result<Self> {
        let mut builder = Config::builder();
        if let Some(path) = file {
            if !path.is_file() {
                anyhow::bail!("configuration file {} does not exist", path.display());
            }
            builder = builder.add_source(File::from(path).format(FileFormat::Toml));
        }
        let env = Environment::with_prefix("LIVESESSIONS")
            .prefix_separator("__")
            .separator("__")
            .source(environment);
        let config = builder.add_source(env).build()?;
        // `Policy` itself ignores unknown keys (running sessions read it back from their input
        // across releases), so a typo under `policy` is refused here.
        if let Ok(table) = config.get_table("policy") {
            let known = serde_json::to_value(Policy::default())?;
            if let Some(key) = table.keys().find(|key| known.get(key.as_str()).is_none()) {
                anyhow::bail!("invalid configuration: policy.{key} is not a policy key");
            }
        }
        let settings =
            config.try_deserialize().map_err(|e| anyhow::anyhow!("invalid configuration: {e}"))?;
        Ok(settings)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use livesessions_domain::CarryOver;
    use livesessions_domain::plan::DEFAULT_PERIOD;
    use std::time::Duration;

    fn env(pairs: &[(&str, &str)]) -> Option<HashMap<String, String>> {
        Some(pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect())
    }

    #[test]
    fn defaults_are_the_configuration_table() {
        let settings = Settings::load_from(None, env(&[])).unwrap();
        assert_eq!(settings.http.addr, "127.0.0.1:8080");
        assert_eq!(settings.temporal.address, "http://127.0.0.1:7233");
        assert_eq!(settings.temporal.namespace, "default");
        assert_eq!(settings.temporal.task_queue, "live-sessions");
        assert!(settings.database.url.starts_with("sqlite://./.data/"));
        assert_eq!(settings.policy, Policy::default());
    }

    #[test]
    fn the_environment_wins_over_the_file() {
        let dir = std::env::temp_dir().join(format!("ls-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("settings.toml");
        std::fs::write(&file, "[policy]\nconfirm_window = \"2h\"\njoin_grace = \"5m\"\n[http]\naddr = \"0.0.0.0:9000\"\n").unwrap();
        let settings = Settings::load_from(
            Some(&file),
            env(&[
                ("LIVESESSIONS__POLICY__CONFIRM_WINDOW", "90s"),
                ("LIVESESSIONS__POLICY__REMINDER_OFFSETS", "30m,5m"),
                ("LIVESESSIONS__DATABASE__URL", "postgres://x@127.0.0.1/db"),
            ]),
        )
        .unwrap();
        assert_eq!(settings.policy.confirm_window, Duration::from_secs(90));
        assert_eq!(settings.policy.join_grace, Duration::from_secs(300));
        assert_eq!(
            settings.policy.reminder_offsets,
            vec![Duration::from_secs(1800), Duration::from_secs(300)]
        );
        assert_eq!(settings.http.addr, "0.0.0.0:9000");
        assert_eq!(settings.database.url, "postgres://x@127.0.0.1/db");
    }

    #[test]
    fn a_plan_file_names_its_billing_period_and_carry_over_or_takes_the_defaults() {
        let dir = std::env::temp_dir().join(format!("ls-plans-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("plans.toml");
        let plan = |id: &str, extra: &str| {
            format!(
                "[plans.{id}]\ncoverage = \"subscription\"\ncurrency = \"USD\"\nmodalities = [\"video\"]\n\
                 lengths = [{{ minutes = 45, price_minor = 8500 }}]\ncredits = 4\n{extra}"
            )
        };
        let text = [
            plan("weekly", "period = \"7d\"\ncarry_over = 2\n"),
            plan("none", "carry_over = \"none\"\n"),
            plan("older", ""),
        ];
        std::fs::write(&file, text.concat()).unwrap();
        let settings = Settings::load_from(Some(&file), env(&[])).unwrap();
        let plan = |id: &str| settings.plans.get(id).cloned().unwrap();
        let week = Duration::from_secs(7 * 86_400);
        assert_eq!((plan("weekly").period, plan("weekly").carry_over), (week, CarryOver::UpTo(2)));
        assert_eq!(plan("none").carry_over, CarryOver::None);
        assert_eq!(
            (plan("older").period, plan("older").carry_over),
            (DEFAULT_PERIOD, CarryOver::All)
        );
    }

    #[test]
    fn public_keys_layer_like_every_other_key() {
        use livesessions_api::PublicKeyAlgorithm;
        let dir = std::env::temp_dir().join(format!("ls-auth-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("settings.toml");
        let toml = "[auth]\nissuer = \"https://idp.example\"\njwks_file = \"/etc/jwks.json\"\n\
                    [auth.public_keys.Key-2026-01]\nalgorithm = \"RS256\"\npem_file = \"/etc/a.pem\"\n";
        std::fs::write(&file, toml).unwrap();
        let settings = Settings::load_from(
            Some(&file),
            env(&[
                ("LIVESESSIONS__AUTH__AUDIENCE", "livesessions"),
                ("LIVESESSIONS__AUTH__JWKS_URL", "https://idp.example/jwks.json"),
                ("LIVESESSIONS__AUTH__JWKS_REFRESH", "5m"),
                ("LIVESESSIONS__AUTH__PUBLIC_KEYS__NEXT__ALGORITHM", "EdDSA"),
                ("LIVESESSIONS__AUTH__PUBLIC_KEYS__NEXT__PEM_FILE", "/etc/b.pem"),
            ]),
        )
        .unwrap();
        let auth = &settings.auth;
        assert_eq!(auth.issuer.as_deref(), Some("https://idp.example"));
        assert_eq!(auth.audience.as_deref(), Some("livesessions"));
        assert_eq!(auth.jwks_file.as_deref(), Some(Path::new("/etc/jwks.json")));
        assert_eq!(auth.jwks_url.as_deref(), Some("https://idp.example/jwks.json"));
        assert_eq!(auth.jwks_refresh, Duration::from_secs(300));
        assert_eq!(auth.jwks_min_interval, Duration::from_secs(30));
        let keys: Vec<_> =
            auth.public_keys.iter().map(|(kid, key)| (kid.as_str(), key.algorithm)).collect();
        assert_eq!(
            keys,
            [("Key-2026-01", PublicKeyAlgorithm::RS256), ("next", PublicKeyAlgorithm::EdDSA)]
        );
        let hs = Settings::load_from(
            None,
            env(&[
                ("LIVESESSIONS__AUTH__PUBLIC_KEYS__K__ALGORITHM", "HS256"),
                ("LIVESESSIONS__AUTH__PUBLIC_KEYS__K__PEM_FILE", "/etc/k.pem"),
            ]),
        )
        .unwrap_err();
        let hs = hs.to_string();
        assert!(hs.contains("HS256") && hs.contains("auth.public_keys.k.algorithm"), "{hs}");
    }

    #[test]
    fn logs_are_text_unless_json_is_asked_for() {
        use crate::telemetry::LogFormat;
        assert_eq!(Settings::load_from(None, env(&[])).unwrap().log.format, LogFormat::Text);
        let json = Settings::load_from(None, env(&[("LIVESESSIONS__LOG__FORMAT", "json")]));
        assert_eq!(json.unwrap().log.format, LogFormat::Json);
        let bad = Settings::load_from(None, env(&[("LIVESESSIONS__LOG__FORMAT", "xml")]));
        assert!(bad.unwrap_err().to_string().contains("xml"));
    }

    #[test]
    fn a_bad_value_or_an_unknown_key_is_a_clear_error() {
        let bad = Settings::load_from(None, env(&[("LIVESESSIONS__POLICY__JOIN_GRACE", "soon")]))
            .unwrap_err();
        assert!(bad.to_string().contains("not a duration"), "{bad}");
        let unknown =
            Settings::load_from(None, env(&[("LIVESESSIONS__POLICY__GRACE", "1m")])).unwrap_err();
        assert!(unknown.to_string().contains("grace"), "{unknown}");
    }
}
