//! The `http.*` and `auth.*` configuration keys.

use livesessions_domain::duration;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::PathBuf;
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
    /// The HS256 secret. Unset: the development secret (with a warning logged) when no public
    /// key is configured, and no HS256 token at all when one is.
    pub jwt_secret: Option<String>,
    /// `auth.public_keys.<kid>`: public keys in PEM files, each named by the `kid` its tokens
    /// carry and pinned to one algorithm.
    pub public_keys: BTreeMap<String, PublicKeySettings>,
    /// A JWKS document (JSON file) with more public keys, each with its `kid`.
    pub jwks_file: Option<PathBuf>,
    /// A JWKS document fetched at start (which fails without it), again every `jwks_refresh`,
    /// and when a token names an unknown `kid`, at most once every `jwks_min_interval`.
    pub jwks_url: Option<String>,
    /// How often the `jwks_url` document is fetched again.
    #[serde(with = "duration::text")]
    pub jwks_refresh: Duration,
    /// The least time between two fetches of `jwks_url` prompted by unknown `kid`s.
    #[serde(with = "duration::text")]
    pub jwks_min_interval: Duration,
    /// When set, a token must carry this `iss`.
    pub issuer: Option<String>,
    /// When set, a token's `aud` must name this audience.
    pub audience: Option<String>,
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
            public_keys: BTreeMap::new(),
            jwks_file: None,
            jwks_url: None,
            jwks_refresh: Duration::from_secs(15 * 60),
            jwks_min_interval: Duration::from_secs(30),
            issuer: None,
            audience: None,
            leeway: Duration::from_secs(5),
            max_token_lifetime: Duration::from_secs(24 * 60 * 60),
        }
    }
}

/// One public key of `auth.public_keys`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PublicKeySettings {
    /// The one algorithm tokens signed with this key may name.
    pub algorithm: PublicKeyAlgorithm,
    /// The PEM file holding the public key (`-----BEGIN PUBLIC KEY-----`).
    pub pem_file: PathBuf,
}

/// The asymmetric algorithms bearer tokens may be signed with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum PublicKeyAlgorithm {
    /// RSASSA-PKCS1-v1_5 with SHA-256.
    RS256,
    /// ECDSA on P-256 with SHA-256.
    ES256,
    /// Ed25519.
    EdDSA,
}

/// The secret used when `auth.jwt_secret` is unset. Never use it in production.
pub const DEVELOPMENT_JWT_SECRET: &str = "livesessions-development-secret-not-for-production";

impl AuthSettings {
    /// Whether any public key is configured.
    pub fn has_public_keys(&self) -> bool {
        !self.public_keys.is_empty() || self.jwks_file.is_some() || self.jwks_url.is_some()
    }

    /// The HS256 secret tokens may be signed with: the configured one; without it, the
    /// development one (logging a warning) unless public keys are configured, when HS256 tokens
    /// are refused.
    pub fn secret(&self) -> Option<&str> {
        match &self.jwt_secret {
            Some(secret) => Some(secret),
            None if self.has_public_keys() => None,
            None => {
                tracing::warn!("auth.jwt_secret is not set: using the development secret");
                Some(DEVELOPMENT_JWT_SECRET)
            }
        }
    }
}
