//! The `http.*` and `auth.*` configuration keys.

use livesessions_domain::duration;
use serde::Deserialize;
use std::time::Duration;

/// Where the API listens and the address people reach it by.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpSettings {
    /// The listening address, e.g. `127.0.0.1:8080` (port 0 picks a free port).
    pub addr: String,
    /// The base of the links the API hands out (join links); defaults to `http://<addr>`.
    pub public_url: Option<String>,
    /// How long a connection may take to send a request's headers before it is closed.
    #[serde(with = "duration::text")]
    pub header_read_timeout: Duration,
}

impl Default for HttpSettings {
    fn default() -> Self {
        Self {
            addr: "127.0.0.1:8080".into(),
            public_url: None,
            header_read_timeout: Duration::from_secs(10),
        }
    }
}

/// How bearer tokens are verified.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthSettings {
    /// The HS256 secret; unset means the development secret, with a warning logged.
    pub jwt_secret: Option<String>,
    /// How far past `exp` (or before `nbf`) a token still counts, for clock skew.
    #[serde(with = "duration::text")]
    pub leeway: Duration,
    /// The longest a token may be valid: `exp` minus `iat` (or minus now, if earlier or absent).
    #[serde(with = "duration::text")]
    pub max_token_lifetime: Duration,
}

impl Default for AuthSettings {
    fn default() -> Self {
        Self {
            jwt_secret: None,
            leeway: Duration::from_secs(5),
            max_token_lifetime: Duration::from_secs(24 * 60 * 60),
        }
    }
}

/// The secret used when `auth.jwt_secret` is unset. Never use it in production.
pub const DEVELOPMENT_JWT_SECRET: &str = "livesessions-development-secret-not-for-production";

impl AuthSettings {
    /// The configured secret, or the development one (logging a warning).
    pub fn secret(&self) -> &str {
        match &self.jwt_secret {
            Some(secret) => secret,
            None => {
                tracing::warn!("auth.jwt_secret is not set: using the development secret");
                DEVELOPMENT_JWT_SECRET
            }
        }
    }
}
