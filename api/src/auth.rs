//! Bearer tokens (JWT, HS256) and what each role may see and do (API.md, "Who is calling").

use crate::error::ApiError;
use crate::settings::AuthSettings;
use crate::state::AppState;
use axum::extract::FromRequestParts;
use axum::http::HeaderMap;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use livesessions_domain::text::check_characters;
use livesessions_domain::{ClientId, ProviderId, Role, SessionSnapshot};
use serde::{Deserialize, Serialize};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The claims of a bearer token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// The person's or service's id (not empty).
    pub sub: String,
    /// Their role.
    pub role: Role,
    /// Expiry, seconds since the epoch.
    pub exp: u64,
    /// When it was issued, seconds since the epoch (optional; the lifetime counts from it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iat: Option<u64>,
}

/// Signs and verifies bearer tokens with one HS256 secret, with a leeway for clock skew and a
/// maximum lifetime.
#[derive(Clone)]
pub struct JwtKeys {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    max_lifetime: u64,
}

/// Seconds since the epoch.
fn unix_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().as_secs()
}

/// What a person is told about a token that does not verify: never the parser's own words.
fn refusal(error: &jsonwebtoken::errors::Error) -> ApiError {
    use jsonwebtoken::errors::ErrorKind;
    let message = match error.kind() {
        ErrorKind::ExpiredSignature => "the bearer token has expired".to_string(),
        ErrorKind::ImmatureSignature => "the bearer token is not valid yet (nbf)".to_string(),
        ErrorKind::InvalidSignature => "the bearer token's signature does not verify".to_string(),
        ErrorKind::InvalidAlgorithm => "the bearer token must be signed with HS256".to_string(),
        ErrorKind::MissingRequiredClaim(claim) => format!("the bearer token has no {claim} claim"),
        _ => "the bearer token is not a well-formed JWT with the expected claims".to_string(),
    };
    ApiError::Unauthorized(message)
}

impl JwtKeys {
    /// Keys from the `auth.*` settings.
    pub fn from_settings(settings: &AuthSettings) -> Self {
        let secret = settings.secret().as_bytes();
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = settings.leeway.as_secs();
        validation.validate_nbf = true;
        validation.set_required_spec_claims(&["exp", "sub"]);
        Self {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
            validation,
            max_lifetime: settings.max_token_lifetime.as_secs(),
        }
    }

    /// Keys for `secret`, with the default leeway and maximum lifetime.
    pub fn from_secret(secret: &str) -> Self {
        Self::from_settings(&AuthSettings {
            jwt_secret: Some(secret.to_string()),
            ..AuthSettings::default()
        })
    }

    /// A token for `sub` in `role`, valid for `ttl` from now.
    pub fn mint(&self, sub: &str, role: Role, ttl: Duration) -> String {
        let now = unix_now();
        let claims =
            Claims { sub: sub.to_string(), role, exp: now + ttl.as_secs(), iat: Some(now) };
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .expect("HS256 signing of plain claims cannot fail")
    }

    /// The claims of a valid token: signed with the secret, not expired (nor before `nbf`) by
    /// more than the leeway, with a subject, and valid no longer than the maximum lifetime,
    /// counted from `iat` or from now, whichever is earlier.
    pub fn verify(&self, token: &str) -> Result<Claims, ApiError> {
        let claims = jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation)
            .map_err(|e| refusal(&e))?
            .claims;
        if claims.sub.is_empty() || check_characters("sub", &claims.sub, false).is_err() {
            return Err(ApiError::Unauthorized(
                "the bearer token's sub is empty or not text".into(),
            ));
        }
        let now = unix_now();
        let from = claims.iat.map_or(now, |iat| iat.min(now));
        if claims.exp.saturating_sub(from) > self.max_lifetime + self.validation.leeway {
            return Err(ApiError::Unauthorized(
                "the bearer token is valid for longer than auth.max_token_lifetime allows".into(),
            ));
        }
        Ok(claims)
    }
}

/// The token of an `Authorization: Bearer <token>` header; the scheme is case-insensitive.
pub fn bearer_token(headers: &HeaderMap) -> Result<&str, ApiError> {
    let header = headers.get(AUTHORIZATION).ok_or_else(|| {
        ApiError::Unauthorized("an Authorization: Bearer <token> header is required".into())
    })?;
    header
        .to_str()
        .ok()
        .and_then(|value| value.trim().split_once(' '))
        .filter(|(scheme, token)| scheme.eq_ignore_ascii_case("bearer") && !token.trim().is_empty())
        .map(|(_, token)| token.trim())
        .ok_or_else(|| {
            ApiError::Unauthorized("the Authorization header must be Bearer <token>".into())
        })
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
        let claims = state.keys.verify(bearer_token(&parts.headers)?)?;
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
        let claims = Claims { sub: "x".into(), role: Role::Client, exp: 1, iat: None };
        let token =
            jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &keys.encoding).unwrap();
        assert!(matches!(keys.verify(&token), Err(ApiError::Unauthorized(_))));
    }

    #[test]
    fn the_bearer_scheme_is_case_insensitive() {
        for (value, token) in [("Bearer a.b.c", Some("a.b.c")), ("bEaReR  a.b.c ", Some("a.b.c"))] {
            let mut headers = HeaderMap::new();
            headers.insert(AUTHORIZATION, value.parse().unwrap());
            assert_eq!(bearer_token(&headers).ok(), token, "{value}");
        }
        for value in ["Basic a.b.c", "Bearer", "Bearer  ", "Bearera.b.c"] {
            let mut headers = HeaderMap::new();
            headers.insert(AUTHORIZATION, value.parse().unwrap());
            assert!(bearer_token(&headers).is_err(), "{value}");
        }
    }
}
