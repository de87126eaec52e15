//! Bearer tokens (JWT, HS256) and what each role may see and do (API.md, "Who is calling").

use crate::error::ApiError;
use crate::state::AppState;
use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use livesessions_domain::{ClientId, ProviderId, Role, SessionSnapshot};
use serde::{Deserialize, Serialize};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The claims of a bearer token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// The person's or service's id.
    pub sub: String,
    /// Their role.
    pub role: Role,
    /// Expiry, seconds since the epoch.
    pub exp: u64,
}

/// Signs and verifies bearer tokens with one HS256 secret.
#[derive(Clone)]
pub struct JwtKeys {
    encoding: EncodingKey,
    decoding: DecodingKey,
}

impl JwtKeys {
    /// Keys from the configured secret.
    pub fn from_secret(secret: &str) -> Self {
        Self {
            encoding: EncodingKey::from_secret(secret.as_bytes()),
            decoding: DecodingKey::from_secret(secret.as_bytes()),
        }
    }

    /// A token for `sub` in `role`, valid for `ttl`.
    pub fn mint(&self, sub: &str, role: Role, ttl: Duration) -> String {
        let exp =
            (SystemTime::now() + ttl).duration_since(UNIX_EPOCH).unwrap_or_default().as_secs();
        let claims = Claims { sub: sub.to_string(), role, exp };
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .expect("HS256 signing of plain claims cannot fail")
    }

    /// The claims of a valid, unexpired token.
    pub fn verify(&self, token: &str) -> Result<Claims, ApiError> {
        jsonwebtoken::decode::<Claims>(token, &self.decoding, &Validation::new(Algorithm::HS256))
            .map(|data| data.claims)
            .map_err(|e| ApiError::Unauthorized(format!("the bearer token is not valid: {e}")))
    }
}

/// The verified caller of a `/v1` request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// Their id (a UUID for clients and providers).
    pub sub: String,
    /// Their role.
    pub role: Role,
}

impl Caller {
    /// Answers `403` unless the caller has one of `roles`.
    pub fn require(&self, roles: &[Role]) -> Result<(), ApiError> {
        if roles.contains(&self.role) { Ok(()) } else { Err(ApiError::Forbidden) }
    }

    /// Whether the caller is this client.
    pub fn is_client(&self, id: ClientId) -> bool {
        self.role == Role::Client && self.sub == id.to_string()
    }

    /// Whether the caller is this provider.
    pub fn is_provider(&self, id: ProviderId) -> bool {
        self.role == Role::Provider && self.sub == id.to_string()
    }

    /// Whether the caller may see this session: its client, its provider, services, operators.
    pub fn may_see(&self, session: &SessionSnapshot) -> bool {
        match self.role {
            Role::Service | Role::Operator => true,
            Role::Client => self.is_client(session.client_id),
            Role::Provider => self.is_provider(session.provider_id),
            Role::Finance => false,
        }
    }
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let header = parts.headers.get(AUTHORIZATION).ok_or_else(|| {
            ApiError::Unauthorized("an Authorization: Bearer <token> header is required".into())
        })?;
        let token =
            header.to_str().ok().and_then(|value| value.strip_prefix("Bearer ")).ok_or_else(
                || ApiError::Unauthorized("the Authorization header must be Bearer <token>".into()),
            )?;
        let claims = state.keys.verify(token.trim())?;
        Ok(Caller { sub: claims.sub, role: claims.role })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_minted_token_verifies_and_a_foreign_one_does_not() {
        let keys = JwtKeys::from_secret("one secret");
        let token = keys.mint("svc", Role::Service, Duration::from_secs(60));
        assert_eq!(keys.verify(&token).unwrap().role, Role::Service);
        let other = JwtKeys::from_secret("another secret");
        assert!(matches!(other.verify(&token), Err(ApiError::Unauthorized(_))));
    }

    #[test]
    fn an_expired_token_is_refused() {
        let keys = JwtKeys::from_secret("s");
        let claims = Claims { sub: "x".into(), role: Role::Client, exp: 1 };
        let token =
            jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &keys.encoding).unwrap();
        assert!(matches!(keys.verify(&token), Err(ApiError::Unauthorized(_))));
    }
}
